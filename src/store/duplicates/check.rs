//! The check (docs/DUPLICATES.md): each live household's index keys
//! (`domain::duplicates::Index`: its phones by commune, its head name by village), kept in the
//! transaction of every write that changes them, and the pairs they make, proposed once. Two
//! households that share a phone are a pair; two that share a head name are compared by the
//! rules that read names (`rules::keys`). The stored keys are `keys`; the scan of a whole
//! database is `scan`.

use super::keys::{delete_keys, insert_keys, make_placeholders, probe, Found, Holder};
use crate::store::error::Result;

use crate::db::any::any_of;
use crate::db::schema::{areas, duplicates, households, members};
use crate::db::unnest;
use crate::db::Conn;
use crate::domain::duplicates::{self as rules, Facts, Index, PersonFacts};
use crate::domain::vocabulary::{DuplicateRule, DuplicateStatus};
use crate::domain::{AreaId, DuplicateId, EntityId, HouseholdId, MemberId, Time};
use crate::store::work::{HeldKey, Restated, Touched};
use crate::with_conn;
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Households read per statement.
pub(super) const CHUNK: usize = 500;

/// A key that more households than this share (a commune's office phone given for
/// everyone, a placeholder number, the same head name and address written for many) tells
/// nothing: it makes no pairs.
pub const MAX_SHARED: i64 = 5;

/// A head name that more households of a village than this hold is compared no further:
/// reading them all at each write would cost more than the pairs are worth.
pub const MAX_SAME_HEAD: i64 = 50;

/// A key as stored: its kind, scope, text, household, the row that gives it (these five are
/// its primary key), and the household's village.
pub(super) type StoredKey = (&'static str, AreaId, String, HouseholdId, EntityId, AreaId);

/// What the rules read of a household, with its id and village, as selected.
pub(super) const HOUSEHOLD_FACTS: (
    households::id,
    households::area_id,
    households::head_name,
    households::address,
    households::phone,
    households::deleted_at,
) = (
    households::id,
    households::area_id,
    households::head_name,
    households::address,
    households::phone,
    households::deleted_at,
);

/// What the rules read of a member, with its id and household, as selected.
pub(super) const PERSON_FACTS: (
    members::id,
    members::household_id,
    members::full_name,
    members::birth_year,
    members::phone,
) = (
    members::id,
    members::household_id,
    members::full_name,
    members::birth_year,
    members::phone,
);

pub(super) type HouseholdFacts = (
    HouseholdId,
    AreaId,
    String,
    String,
    Option<String>,
    Option<Time>,
);

pub(super) type Person = (MemberId, HouseholdId, String, Option<i32>, Option<String>);

/// Brings up to date the keys of the households a write touched and records the new pairs
/// they make: in the caller's transaction, after the writes. The keys removed and added come
/// from the write's rows (`Work::identity_touched`); only the phones of the members a write
/// did not touch, of a household it moved, deleted or restored, are read. Each phone added is
/// matched with its other holders; each household whose names changed is compared with the
/// households of its village that have the same head name. Answers how many pairs are new.
pub fn refresh(conn: &mut Conn<'_>, touched: &Touched) -> Result<usize> {
    let mut removed = touched.removed.clone();
    let mut added = touched.added.clone();
    if !touched.restated.is_empty() {
        restated_keys(conn, &touched.restated, &mut removed, &mut added)?;
    }
    let mut communes = touched.communes.clone();
    let unknown: BTreeSet<AreaId> = added
        .iter()
        .chain(&removed)
        .map(|k| k.village)
        .filter(|v| !communes.contains_key(v))
        .collect();
    communes.extend(communes_of(conn, unknown)?);
    let old: HashSet<StoredKey> = removed.iter().map(|k| scoped(k, &communes)).collect();
    let new: HashSet<StoredKey> = added.iter().map(|k| scoped(k, &communes)).collect();
    // A key of a household moved within its scope is the same key in another village: it is
    // deleted and inserted again. One given before and after is neither.
    let removed: Vec<StoredKey> = old.difference(&new).cloned().collect();
    let added: Vec<StoredKey> = new.difference(&old).cloned().collect();
    record(conn, &removed, added, &touched.names)
}

/// Deletes these keys, stores these, and records the pairs they and these households (each
/// with its head name key) make: each phone added is matched with its other holders, each
/// household named is compared with the households of its village that have the same head
/// name. One statement (`probe`) reads what is stored of the keys, after the deletes and
/// before the inserts. A phone that was a placeholder before this write is not stored. Answers
/// how many pairs are new.
pub(super) fn record(
    conn: &mut Conn<'_>,
    removed: &[StoredKey],
    added: Vec<StoredKey>,
    names: &[(HouseholdId, AreaId, String)],
) -> Result<usize> {
    delete_keys(conn, removed)?;
    let phone = Index::Phone.as_str();
    let mut phones: Vec<(AreaId, &str)> = added
        .iter()
        .filter(|k| k.0 == phone)
        .map(|k| (k.1, k.2.as_str()))
        .collect();
    phones.sort();
    phones.dedup();
    let mut heads: Vec<(AreaId, &str)> = names.iter().map(|n| (n.1, n.2.as_str())).collect();
    heads.sort();
    heads.dedup();
    if phones.is_empty() && heads.is_empty() {
        insert_keys(conn, &added)?;
        return Ok(0);
    }
    let mut found = probe(conn, &phones, &heads)?;
    let mut pairs = phone_pairs(conn, &added, &mut found)?;
    pairs.extend(name_pairs(conn, names, &mut found)?);
    let kept: Vec<StoredKey> = match found.placeholders.is_empty() {
        true => added,
        false => added
            .into_iter()
            .filter(|k| !(k.0 == phone && found.placeholders.contains(&(k.1, k.2.clone()))))
            .collect(),
    };
    insert_keys(conn, &kept)?;
    if pairs.is_empty() {
        return Ok(0);
    }
    insert_pairs(conn, &tidy(pairs))
}

/// The pairs of the phones added (not yet stored) with their stored holders (`probe`), each
/// with a household that adds it. A phone that a sixth household gets becomes a placeholder:
/// its holders stored until now and this write's stay; later ones are not stored.
fn phone_pairs(conn: &mut Conn<'_>, added: &[StoredKey], found: &mut Found) -> Result<Vec<Pair4>> {
    let (phone, rule) = (Index::Phone.as_str(), DuplicateRule::Phone.as_str());
    let mut groups = Groups::default();
    let mut mine: HashSet<(AreaId, &str, HouseholdId)> = HashSet::new();
    for (kind, scope, key, h, _, village) in added {
        if *kind == phone && !found.closed(&(*scope, key.clone())) {
            mine.insert((*scope, key.as_str(), *h));
            groups.add(rule, *scope, key.clone(), *h, *village);
        }
    }
    for r in std::mem::take(&mut found.phones) {
        groups.add(rule, r.scope_id, r.key, r.household_id, r.area_id);
    }
    let mut full: Vec<(AreaId, String)> = found.full_phones.drain().collect();
    full.extend(
        groups
            .0
            .iter()
            .filter(|(_, holders)| holders.len() as i64 > MAX_SHARED)
            .map(|((_, scope, key), _)| (*scope, key.clone())),
    );
    if !full.is_empty() {
        make_placeholders(conn, &full)?;
    }
    Ok(groups.pairs(|(_, scope, key), h| mine.contains(&(*scope, key.as_str(), h))))
}

/// The pairs of these households (each with its head name key) by the rules that read
/// names: each is compared with the households of its village with the same head name, stored
/// (`probe`) or named here, unless more than `MAX_SAME_HEAD` hold it.
fn name_pairs(
    conn: &mut Conn<'_>,
    names: &[(HouseholdId, AreaId, String)],
    found: &mut Found,
) -> Result<Vec<Pair4>> {
    let ours: HashSet<HouseholdId> = names.iter().map(|n| n.0).collect();
    let mut holders: Vec<Holder> = names
        .iter()
        .filter(|n| !found.full_heads.contains(&(n.1, n.2.clone())))
        .map(|(h, village, key)| Holder {
            household_id: *h,
            scope_id: *village,
            key: key.clone(),
            area_id: *village,
        })
        .collect();
    holders.append(&mut found.heads);
    compare(conn, holders, |h| ours.contains(&h))
}

/// The keys of the members a write did not touch, of households it moved, deleted or
/// restored: removed with the village before, added with the village now.
pub(super) fn restated_keys(
    conn: &mut Conn<'_>,
    restated: &[Restated],
    removed: &mut Vec<HeldKey>,
    added: &mut Vec<HeldKey>,
) -> Result<()> {
    let ids: Vec<HouseholdId> = restated.iter().map(|r| r.household).collect();
    let phones: Vec<(MemberId, HouseholdId, Option<String>)> =
        with_conn!(conn, |c| members::table
            .filter(any_of(members::household_id, &ids))
            .filter(members::deleted_at.is_null())
            .filter(members::phone.is_not_null())
            .select((members::id, members::household_id, members::phone))
            .load(c))?;
    for (id, household, phone) in phones {
        let Ok(i) = restated.binary_search_by_key(&household, |r| r.household) else {
            continue;
        };
        let r = &restated[i];
        let Some((index, key)) = rules::member_index(phone.as_deref()) else {
            continue;
        };
        if r.written.contains(&id) {
            continue;
        }
        let held = |village| HeldKey {
            index,
            village,
            key: key.clone(),
            household,
            source: EntityId(id.0),
        };
        removed.extend(r.before.map(held));
        added.extend(r.now.map(held));
    }
    Ok(())
}

/// A held key as stored: a phone's scope is its village's commune.
pub(super) fn scoped(k: &HeldKey, communes: &HashMap<AreaId, Option<AreaId>>) -> StoredKey {
    let scope = match k.index {
        Index::Phone => communes
            .get(&k.village)
            .copied()
            .flatten()
            .unwrap_or(k.village),
        Index::Head => k.village,
    };
    (
        k.index.as_str(),
        scope,
        k.key.clone(),
        k.household,
        k.source,
        k.village,
    )
}

/// The commune of each of these villages.
pub(super) fn communes_of(
    conn: &mut Conn<'_>,
    villages: BTreeSet<AreaId>,
) -> Result<HashMap<AreaId, Option<AreaId>>> {
    if villages.is_empty() {
        return Ok(HashMap::new());
    }
    let villages: Vec<AreaId> = villages.into_iter().collect();
    Ok(with_conn!(conn, |c| areas::table
        .filter(any_of(areas::id, &villages))
        .select((areas::id, areas::parent_id))
        .load::<(AreaId, Option<AreaId>)>(c))?
    .into_iter()
    .collect())
}

/// What the rules read of these households, and their live members.
pub(super) fn facts_of(
    conn: &mut Conn<'_>,
    ids: &[HouseholdId],
) -> Result<(Vec<HouseholdFacts>, Vec<Person>)> {
    let rows: Vec<HouseholdFacts> = with_conn!(conn, |c| households::table
        .filter(any_of(households::id, ids))
        .select(HOUSEHOLD_FACTS)
        .load(c))?;
    let people: Vec<Person> = with_conn!(conn, |c| members::table
        .filter(any_of(members::household_id, ids))
        .filter(members::deleted_at.is_null())
        .select(PERSON_FACTS)
        .load(c))?;
    Ok((rows, people))
}

/// The keys these households' rows give (none for a deleted one), given their live members
/// and the commune of each village.
pub(super) fn keys_of(
    rows: &[HouseholdFacts],
    people: &[Person],
    communes: &HashMap<AreaId, Option<AreaId>>,
) -> Vec<StoredKey> {
    let mut out = Vec::new();
    let mut live: HashMap<HouseholdId, AreaId> = HashMap::new();
    for (id, village, head_name, _, phone, deleted) in rows {
        if deleted.is_some() {
            continue;
        }
        live.insert(*id, *village);
        for (index, key) in rules::household_index(head_name, phone.as_deref()) {
            let k = HeldKey {
                index,
                village: *village,
                key,
                household: *id,
                source: EntityId(id.0),
            };
            out.push(scoped(&k, communes));
        }
    }
    for (id, household, _, _, phone) in people {
        let (Some(village), Some((index, key))) =
            (live.get(household), rules::member_index(phone.as_deref()))
        else {
            continue;
        };
        let k = HeldKey {
            index,
            village: *village,
            key,
            household: *household,
            source: EntityId(id.0),
        };
        out.push(scoped(&k, communes));
    }
    out
}

/// The pairs that the households sharing a head name make by the rules that read names
/// (`rules::keys`: name and address, name and a person), given the holders of head keys;
/// each pair with a household that `ours` names. Groups of one holder are left out before
/// anything is read.
pub(super) fn compare(
    conn: &mut Conn<'_>,
    holders: Vec<Holder>,
    ours: impl Fn(HouseholdId) -> bool,
) -> Result<Vec<Pair4>> {
    let mut heads: HashMap<(AreaId, String), Vec<HouseholdId>> = HashMap::new();
    for r in holders {
        let hs = heads.entry((r.scope_id, r.key)).or_default();
        if !hs.contains(&r.household_id) {
            hs.push(r.household_id);
        }
    }
    let mut ids: Vec<HouseholdId> = heads
        .into_values()
        .filter(|hs| hs.len() > 1 && hs.len() as i64 <= MAX_SAME_HEAD)
        .flatten()
        .collect();
    ids.sort();
    ids.dedup();
    let mut groups = Groups::default();
    for chunk in ids.chunks(CHUNK) {
        let (rows, people) = facts_of(conn, chunk)?;
        let mut people_of: HashMap<HouseholdId, Vec<PersonFacts>> = HashMap::new();
        for (_, h, full_name, birth_year, phone) in people {
            people_of.entry(h).or_default().push(PersonFacts {
                full_name,
                birth_year: birth_year.map(i64::from),
                phone,
            });
        }
        for (id, village, head_name, address, phone, deleted) in rows {
            if deleted.is_some() {
                continue;
            }
            let facts = Facts {
                head_name,
                address,
                phone,
                members: people_of.remove(&id).unwrap_or_default(),
            };
            for k in rules::keys(&facts) {
                if k.rule != DuplicateRule::Phone {
                    groups.add(k.rule.as_str(), village, k.key, id, village);
                }
            }
        }
    }
    Ok(groups.pairs(|_, h| ours(h)))
}

/// Orders pairs and keeps one per two households, under the first rule found (phone, then
/// name and address, then name and a person).
pub(super) fn tidy(mut pairs: Vec<Pair4>) -> Vec<Pair4> {
    pairs.sort_by_key(|x| (x.0, x.2, rank(x.4)));
    pairs.dedup_by(|x, y| x.0 == y.0 && x.2 == y.2);
    pairs
}

/// Records these pairs, each once: a pair found again (the two shared another key before) is
/// left as it is, so dismissed stays dismissed. Answers how many are new. On PostgreSQL one
/// statement of arrays; on SQLite tuples of values, many a statement (see `insert_keys`).
pub(super) fn insert_pairs(conn: &mut Conn<'_>, pairs: &[Pair4]) -> Result<usize> {
    let now = Time::now();
    let open = DuplicateStatus::Open.as_str();
    let n = pairs.len();
    let c = match conn {
        Conn::Pg(c) => {
            return Ok(unnest::into("duplicates")
                .column(
                    duplicates::id,
                    (0..n).map(|_| DuplicateId::random()).collect(),
                )
                .column(duplicates::household_a, pairs.iter().map(|p| p.0).collect())
                .column(duplicates::household_b, pairs.iter().map(|p| p.2).collect())
                .column(duplicates::area_a, pairs.iter().map(|p| p.1).collect())
                .column(duplicates::area_b, pairs.iter().map(|p| p.3).collect())
                .column(duplicates::rule, pairs.iter().map(|p| p.4).collect())
                .column(duplicates::status, vec![open; n])
                .column(duplicates::created_at, vec![now; n])
                .on_conflict_do_nothing()
                .execute(c)?)
        }
        Conn::Sqlite(c) => c,
    };
    let c: &mut diesel::SqliteConnection = c;
    let rows: Vec<_> = pairs
        .iter()
        .map(|(a, area_a, b, area_b, rule)| {
            (
                duplicates::id.eq(DuplicateId::random()),
                duplicates::household_a.eq(*a),
                duplicates::household_b.eq(*b),
                duplicates::area_a.eq(*area_a),
                duplicates::area_b.eq(*area_b),
                duplicates::rule.eq(*rule),
                duplicates::status.eq(open),
                duplicates::created_at.eq(now),
            )
        })
        .collect();
    let mut new = 0;
    let mut rest = rows.as_slice();
    while let Some((chunk, tail)) = rest.split_first_chunk::<16>() {
        new += diesel::insert_or_ignore_into(duplicates::table)
            .values(chunk)
            .execute(c)?;
        rest = tail;
    }
    for r in rest {
        new += diesel::insert_or_ignore_into(duplicates::table)
            .values(r)
            .execute(c)?;
    }
    Ok(new)
}

/// The households that share a key, by key (rule, scope, key), each with its village.
#[derive(Default)]
pub(super) struct Groups(HashMap<GroupKey, Vec<(HouseholdId, AreaId)>>);

/// A key as grouped: its rule, scope and text.
pub(super) type GroupKey = (&'static str, AreaId, String);

impl Groups {
    /// Adds a holder of a key; a household is counted once.
    pub(super) fn add(
        &mut self,
        rule: &'static str,
        scope: AreaId,
        key: String,
        h: HouseholdId,
        area: AreaId,
    ) {
        let holders = self.0.entry((rule, scope, key)).or_default();
        if !holders.iter().any(|x| x.0 == h) {
            holders.push((h, area));
        }
    }

    /// The pairs of each key's holders of which `ours` says yes to one, ordered, one per two
    /// households, under the first rule found; none for a key held by more than
    /// `MAX_SHARED` households.
    pub(super) fn pairs(&self, ours: impl Fn(&GroupKey, HouseholdId) -> bool) -> Vec<Pair4> {
        let mut pairs: Vec<Pair4> = Vec::new();
        for (k, holders) in &self.0 {
            if holders.len() as i64 > MAX_SHARED {
                continue;
            }
            for (i, a) in holders.iter().enumerate() {
                for b in &holders[i + 1..] {
                    if a.0 == b.0 || !(ours(k, a.0) || ours(k, b.0)) {
                        continue;
                    }
                    let (a, b) = match a.0 < b.0 {
                        true => (a, b),
                        false => (b, a),
                    };
                    pairs.push((a.0, a.1, b.0, b.1, k.0));
                }
            }
        }
        tidy(pairs)
    }
}

/// Two households (each with its village) and the rule they share a key by.
pub(super) type Pair4 = (HouseholdId, AreaId, HouseholdId, AreaId, &'static str);

pub(super) fn rank(rule: &str) -> usize {
    DuplicateRule::NAMES
        .iter()
        .position(|r| *r == rule)
        .unwrap_or(usize::MAX)
}
