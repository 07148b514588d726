//! The check (docs/DUPLICATES.md): each live household's index keys
//! (`domain::duplicates::Index`: its phones by commune, its head name by village), kept in the
//! transaction of every write that changes them, and the pairs they make, proposed once; and
//! the scan of a whole database. Two households that share a phone are a pair; two that
//! share a head name are compared by the rules that read names (`rules::keys`).

use crate::store::error::Result;

use crate::db::any::any_of;
use crate::db::schema::{
    areas, duplicate_keys, duplicate_placeholders, duplicates, households, members,
};
use crate::db::Conn;
use crate::domain::duplicates::{self as rules, Facts, Index, PersonFacts};
use crate::domain::vocabulary::{DuplicateRule, DuplicateStatus};
use crate::domain::{AreaId, DuplicateId, EntityId, HouseholdId, MemberId, Time};
use crate::store::work::{HeldKey, Restated, Touched};
use crate::with_conn;
use diesel::connection::SimpleConnection;
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
type StoredKey = (&'static str, AreaId, String, HouseholdId, EntityId, AreaId);

/// What the rules read of a household, with its id and village, as selected.
const HOUSEHOLD_FACTS: (
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
const PERSON_FACTS: (
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

type HouseholdFacts = (
    HouseholdId,
    AreaId,
    String,
    String,
    Option<String>,
    Option<Time>,
);

type Person = (MemberId, HouseholdId, String, Option<i32>, Option<String>);

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
    let villages: BTreeSet<AreaId> = added.iter().chain(&removed).map(|k| k.village).collect();
    let communes = communes_of(conn, villages)?;
    let old: HashSet<StoredKey> = removed.iter().map(|k| scoped(k, &communes)).collect();
    let new: HashSet<StoredKey> = added.iter().map(|k| scoped(k, &communes)).collect();
    // A key of a household moved within its scope is the same key in another village: it is
    // deleted and inserted again. One given before and after is neither.
    let removed: Vec<StoredKey> = old.difference(&new).cloned().collect();
    let mut added: Vec<StoredKey> = new.difference(&old).cloned().collect();
    // A placeholder's new holders are not stored. Those stored before it became one are
    // deleted as any key when their rows drop it.
    let placeholders = placeholders_of(conn, added.iter())?;
    if !placeholders.is_empty() {
        added.retain(|k| !is_placeholder(k, &placeholders));
    }
    for part in removed.chunks(CHUNK / 2) {
        delete_keys(conn, part)?;
    }
    let mut pairs = add_keys(conn, added)?;
    pairs.extend(name_pairs(conn, &touched.names)?);
    if pairs.is_empty() {
        return Ok(0);
    }
    insert_pairs(conn, &tidy(pairs))
}

/// The keys of the members a write did not touch, of households it moved, deleted or
/// restored: removed with the village before, added with the village now.
fn restated_keys(
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

/// The pairs of these households (each with its head name key) by the rules that read
/// names: each is compared with the other households of its village with the same head name.
fn name_pairs(conn: &mut Conn<'_>, names: &[(HouseholdId, AreaId, String)]) -> Result<Vec<Pair4>> {
    let mut pairs = Vec::new();
    for chunk in names.chunks(CHUNK) {
        let ours: HashSet<HouseholdId> = chunk.iter().map(|n| n.0).collect();
        let mut keys: Vec<(AreaId, &str)> = chunk.iter().map(|n| (n.1, n.2.as_str())).collect();
        keys.sort();
        keys.dedup();
        let holders = holders_of(conn, Index::Head, &keys)?;
        pairs.extend(compare(conn, holders, |h| ours.contains(&h))?);
    }
    Ok(pairs)
}

/// A held key as stored: a phone's scope is its village's commune.
fn scoped(k: &HeldKey, communes: &HashMap<AreaId, Option<AreaId>>) -> StoredKey {
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
fn communes_of(
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

/// Makes the keys of these households again from their stored rows and answers the new
/// pairs they make (the scan, for households written while it read): their keys are
/// deleted by reading the whole table, which has no household index (a write knows the keys
/// it removes).
fn reload(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<usize> {
    with_conn!(conn, |c| diesel::delete(
        duplicate_keys::table.filter(any_of(duplicate_keys::household_id, ids))
    )
    .execute(c))?;
    let (rows, people) = facts_of(conn, ids)?;
    let communes = communes_of(conn, rows.iter().map(|r| r.1).collect())?;
    let mut keys = keys_of(&rows, &people, &communes);
    let placeholders = placeholders_of(conn, keys.iter())?;
    keys.retain(|k| !is_placeholder(k, &placeholders));
    let names: Vec<(HouseholdId, AreaId, String)> = rows
        .iter()
        .filter(|r| r.5.is_none())
        .map(|r| (r.0, r.1, rules::head_key(&r.2)))
        .filter(|n| !n.2.is_empty())
        .collect();
    let mut pairs = add_keys(conn, keys)?;
    pairs.extend(name_pairs(conn, &names)?);
    insert_pairs(conn, &tidy(pairs))
}

/// What the rules read of these households, and their live members.
fn facts_of(
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
fn keys_of(
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

/// Stores these new keys (none of a placeholder) and answers the pairs their phones make
/// with their other holders: the households that added a phone are the ones it is matched
/// for. A phone that more than `MAX_SHARED` households hold becomes a placeholder
/// (`duplicate_placeholders`): it makes no pairs, and no later holder is stored, so a phone
/// written on every form costs a write one read.
fn add_keys(conn: &mut Conn<'_>, added: Vec<StoredKey>) -> Result<Vec<Pair4>> {
    insert_keys(conn, &added)?;
    let mut mine: HashMap<(AreaId, &str), Vec<HouseholdId>> = HashMap::new();
    for (kind, scope, key, h, _, _) in &added {
        if *kind == Index::Phone.as_str() {
            mine.entry((*scope, key.as_str())).or_default().push(*h);
        }
    }
    let mut wanted: Vec<(AreaId, &str)> = mine.keys().copied().collect();
    wanted.sort();
    let mut groups = Groups::default();
    for part in wanted.chunks(CHUNK) {
        for r in holders_of(conn, Index::Phone, part)? {
            groups.add(
                DuplicateRule::Phone.as_str(),
                r.scope_id,
                r.key,
                r.household_id,
                r.area_id,
            );
        }
    }
    let full: Vec<(AreaId, String)> = groups
        .0
        .iter()
        .filter(|(_, holders)| holders.len() as i64 > MAX_SHARED)
        .map(|((_, scope, key), _)| (*scope, key.clone()))
        .collect();
    if !full.is_empty() {
        make_placeholders(conn, &full)?;
    }
    Ok(groups.pairs(|(_, scope, key), h| {
        mine.get(&(*scope, key.as_str()))
            .is_some_and(|o| o.contains(&h))
    }))
}

/// The placeholder phones among these keys, as (scope, number).
fn placeholders_of<'a>(
    conn: &mut Conn<'_>,
    keys: impl Iterator<Item = &'a StoredKey>,
) -> Result<HashSet<(AreaId, String)>> {
    let phones: Vec<(AreaId, &str)> = keys
        .filter(|k| k.0 == Index::Phone.as_str())
        .map(|k| (k.1, k.2.as_str()))
        .collect();
    match phones.is_empty() {
        true => Ok(HashSet::new()),
        false => placeholders_among(conn, &phones),
    }
}

fn is_placeholder(k: &StoredKey, placeholders: &HashSet<(AreaId, String)>) -> bool {
    k.0 == Index::Phone.as_str() && placeholders.contains(&(k.1, k.2.clone()))
}

/// The placeholders among these phones (scope, number): read by number (the table's key
/// starts with it), one statement whose text is the same whatever the numbers.
fn placeholders_among(
    conn: &mut Conn<'_>,
    phones: &[(AreaId, &str)],
) -> Result<HashSet<(AreaId, String)>> {
    let wanted: HashSet<(AreaId, &str)> = phones.iter().copied().collect();
    let mut numbers: Vec<&str> = phones.iter().map(|p| p.1).collect();
    numbers.sort();
    numbers.dedup();
    let mut found = HashSet::new();
    for part in numbers.chunks(CHUNK) {
        let rows: Vec<(AreaId, String)> = with_conn!(conn, |c| duplicate_placeholders::table
            .filter(duplicate_placeholders::kind.eq(Index::Phone.as_str()))
            .filter(any_of(duplicate_placeholders::key, part))
            .select((
                duplicate_placeholders::scope_id,
                duplicate_placeholders::key
            ))
            .load(c))?;
        found.extend(
            rows.into_iter()
                .filter(|(scope, key)| wanted.contains(&(*scope, key.as_str()))),
        );
    }
    Ok(found)
}

/// Makes these phones (scope, number) placeholders, in their order (two writes that make
/// the same ones wait for each other, never in a circle). Their holders stored so far are
/// left as they are: deleting them would lock other households' rows.
fn make_placeholders(conn: &mut Conn<'_>, phones: &[(AreaId, String)]) -> Result<()> {
    let kind = Index::Phone.as_str();
    let mut phones = phones.to_vec();
    phones.sort();
    for (scope, key) in &phones {
        let row = (
            duplicate_placeholders::kind.eq(kind),
            duplicate_placeholders::scope_id.eq(*scope),
            duplicate_placeholders::key.eq(key.as_str()),
        );
        match conn {
            Conn::Pg(c) => {
                diesel::insert_into(duplicate_placeholders::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(&mut **c)?;
            }
            Conn::Sqlite(c) => {
                diesel::insert_or_ignore_into(duplicate_placeholders::table)
                    .values(row)
                    .execute(&mut **c)?;
            }
        }
    }
    Ok(())
}

/// The pairs that the households sharing a head name make by the rules that read names
/// (`rules::keys`: name and address, name and a person), given the holders of head keys;
/// each pair with a household that `ours` names. Groups of one holder are left out before
/// anything is read.
fn compare(
    conn: &mut Conn<'_>,
    holders: Vec<Holder>,
    ours: impl Fn(HouseholdId) -> bool,
) -> Result<Vec<Pair4>> {
    let mut heads: HashMap<(AreaId, String), Vec<HouseholdId>> = HashMap::new();
    for r in holders {
        heads
            .entry((r.scope_id, r.key))
            .or_default()
            .push(r.household_id);
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
fn tidy(mut pairs: Vec<Pair4>) -> Vec<Pair4> {
    pairs.sort_by_key(|x| (x.0, x.2, rank(x.4)));
    pairs.dedup_by(|x, y| x.0 == y.0 && x.2 == y.2);
    pairs
}

/// Records these pairs, each once: a pair found again (the two shared another key before) is
/// left as it is, so dismissed stays dismissed. Answers how many are new. Tuples of values,
/// many a statement (see `insert_keys`).
fn insert_pairs(conn: &mut Conn<'_>, pairs: &[Pair4]) -> Result<usize> {
    let now = Time::now();
    let open = DuplicateStatus::Open.as_str();
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
    match conn {
        Conn::Pg(c) => {
            for part in rows.chunks(CHUNK) {
                new += diesel::insert_into(duplicates::table)
                    .values(part)
                    .on_conflict_do_nothing()
                    .execute(&mut **c)?;
            }
        }
        Conn::Sqlite(c) => {
            let c: &mut diesel::SqliteConnection = c;
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
        }
    }
    Ok(new)
}

/// Inserts these keys, many a statement; a key already stored is left as it is.
fn insert_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
    let row = |(kind, scope, key, h, source, village): &StoredKey| {
        (
            duplicate_keys::kind.eq(*kind),
            duplicate_keys::scope_id.eq(*scope),
            duplicate_keys::key.eq(key.clone()),
            duplicate_keys::household_id.eq(*h),
            duplicate_keys::source_id.eq(*source),
            duplicate_keys::village_id.eq(*village),
        )
    };
    // Tuples of values, not a record struct: diesel writes them as one multi-row statement
    // on SQLite too (a struct's fields could be DEFAULT, which SQLite's VALUES cannot say, so
    // diesel inserts such records one statement each). Chunks of fixed sizes keep SQLite's
    // statements few and prepared.
    match conn {
        Conn::Pg(c) => {
            for part in keys.chunks(CHUNK) {
                let rows: Vec<_> = part.iter().map(row).collect();
                diesel::insert_into(duplicate_keys::table)
                    .values(rows)
                    .on_conflict_do_nothing()
                    .execute(&mut **c)?;
            }
        }
        Conn::Sqlite(c) => {
            let c: &mut diesel::SqliteConnection = c;
            let rows: Vec<_> = keys.iter().map(row).collect();
            let mut rest = rows.as_slice();
            while let Some((chunk, tail)) = rest.split_first_chunk::<32>() {
                diesel::insert_or_ignore_into(duplicate_keys::table)
                    .values(chunk)
                    .execute(c)?;
                rest = tail;
            }
            while let Some((chunk, tail)) = rest.split_first_chunk::<4>() {
                diesel::insert_or_ignore_into(duplicate_keys::table)
                    .values(chunk)
                    .execute(c)?;
                rest = tail;
            }
            for r in rest {
                diesel::insert_or_ignore_into(duplicate_keys::table)
                    .values(r)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Deletes these stored keys by their primary key, in one statement whose text is the same
/// whatever the keys on SQLite (bound as JSON, so it stays prepared), many keys a round trip
/// on PostgreSQL.
fn delete_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
    use crate::db::sql::Uid;
    use diesel::sql_types::Text;
    if keys.is_empty() {
        return Ok(());
    }
    if let Conn::Sqlite(c) = conn {
        let json = serde_json::to_string(keys).unwrap_or_default();
        diesel::sql_query(
            "DELETE FROM duplicate_keys WHERE (kind, scope_id, key, household_id, source_id) \
             IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
             json_extract(value, '$[4]') FROM json_each(?))",
        )
        .bind::<Text, _>(json)
        .execute(&mut **c)?;
        return Ok(());
    }
    let values: Vec<String> = (0..keys.len())
        .map(|i| {
            let n = i * 5;
            format!(
                "(${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            )
        })
        .collect();
    let sql = format!(
        "DELETE FROM duplicate_keys WHERE (kind, scope_id, key, household_id, source_id) \
         IN (VALUES {})",
        values.join(", ")
    );
    with_conn!(conn, |c: DB| {
        let mut q = diesel::sql_query(&sql).into_boxed::<DB>();
        for (kind, scope, key, h, source, _) in keys {
            q = q
                .bind::<Text, _>(*kind)
                .bind::<Uid, _>(*scope)
                .bind::<Text, _>(key.as_str())
                .bind::<Uid, _>(*h)
                .bind::<Uid, _>(*source);
        }
        q.execute(c)
    })?;
    Ok(())
}

/// The households that share a key, by key (rule, scope, key), each with its village.
#[derive(Default)]
struct Groups(HashMap<GroupKey, Vec<(HouseholdId, AreaId)>>);

/// A key as grouped: its rule, scope and text.
type GroupKey = (&'static str, AreaId, String);

impl Groups {
    /// Adds a holder of a key; a household is counted once.
    fn add(
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
    fn pairs(&self, ours: impl Fn(&GroupKey, HouseholdId) -> bool) -> Vec<Pair4> {
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

/// A holder of a key, with its village.
#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = crate::db::sql::Uid)]
    household_id: HouseholdId,
    #[diesel(sql_type = crate::db::sql::Uid)]
    scope_id: AreaId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = crate::db::sql::Uid)]
    area_id: AreaId,
}

/// The holders of these keys (scope, key) of a kind, each household once, up to one past
/// the kind's cap (`MAX_SHARED` phones, `MAX_SAME_HEAD` head names), read by the primary key
/// in one statement: on SQLite the keys with more are left out before any of their rows is
/// read; on PostgreSQL each key's holders are read to one past the cap. The statement's text
/// is the same whatever the keys (bound as arrays or JSON), so each connection keeps it
/// prepared.
fn holders_of(conn: &mut Conn<'_>, index: Index, keys: &[(AreaId, &str)]) -> Result<Vec<Holder>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let q = Holders {
        index,
        json: match conn {
            Conn::Sqlite(_) => serde_json::to_string(keys).unwrap_or_default(),
            Conn::Pg(_) => String::new(),
        },
        scopes: keys.iter().map(|k| k.0).collect(),
        keys: keys.iter().map(|k| k.1).collect(),
    };
    Ok(with_conn!(conn, |c| q.load(c))?)
}

/// The query of `holders_of`: the keys as a JSON array of `[scope, key]` for SQLite, as two
/// arrays for PostgreSQL.
struct Holders<'a> {
    index: Index,
    json: String,
    scopes: Vec<AreaId>,
    keys: Vec<&'a str>,
}

impl Holders<'_> {
    /// The SQL that leaves out a key with more holders than one past the cap (SQLite), and
    /// that reads to one past it (PostgreSQL).
    fn cap(&self) -> (&'static str, &'static str) {
        match self.index {
            // One past the cap: a phone that reaches it becomes a placeholder.
            Index::Phone => ("LIMIT 1 OFFSET 6)", "LIMIT 6)"),
            Index::Head => ("LIMIT 1 OFFSET 50)", "LIMIT 51)"),
        }
    }
}

const _: () = assert!(
    MAX_SHARED == 5 && MAX_SAME_HEAD == 50,
    "Holders::cap, replace_keys and SHARED_KEYS count MAX_SHARED and MAX_SAME_HEAD"
);

impl diesel::query_builder::QueryId for Holders<'_> {
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for Holders<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<C> RunQueryDsl<C> for Holders<'_> {}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for Holders<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        // The kind is written into the text: one prepared statement per kind.
        out.push_sql("WITH w AS (SELECT '");
        out.push_sql(self.index.as_str());
        out.push_sql(
            "' AS kind, json_extract(value, '$[0]') AS scope, json_extract(value, '$[1]') \
             AS key FROM json_each(",
        );
        out.push_bind_param::<diesel::sql_types::Text, String>(&self.json)?;
        out.push_sql(
            ")), n AS (SELECT kind, scope, key FROM w WHERE NOT EXISTS (SELECT 1 FROM \
             duplicate_keys y WHERE y.kind = w.kind AND y.scope_id = w.scope AND y.key = w.key \
             GROUP BY y.household_id ",
        );
        out.push_sql(self.cap().0);
        // `CROSS JOIN` keeps SQLite's join order: from the few keys wanted to their holders
        // (left to itself it may read every key of the kind first).
        out.push_sql(
            ") SELECT d.household_id AS household_id, d.scope_id AS scope_id, d.key AS key, \
             d.village_id AS area_id FROM n CROSS JOIN duplicate_keys d ON d.kind = n.kind AND \
             d.scope_id = n.scope AND d.key = n.key",
        );
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Holders<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use crate::db::sql::Uid;
        use diesel::sql_types::{Array, Text};
        out.push_sql(
            "SELECT d.household_id, n.scope AS scope_id, n.key, d.village_id AS area_id FROM \
             unnest(",
        );
        out.push_bind_param::<Array<Uid>, Vec<AreaId>>(&self.scopes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.keys)?;
        out.push_sql(
            ") AS n(scope, key) CROSS JOIN LATERAL (SELECT DISTINCT y.household_id, y.village_id FROM \
             duplicate_keys y WHERE y.kind = '",
        );
        out.push_sql(self.index.as_str());
        out.push_sql("' AND y.scope_id = n.scope AND y.key = n.key ");
        out.push_sql(self.cap().1);
        out.push_sql(" d");
        Ok(())
    }
}

/// Two households (each with its village) and the rule they share a key by.
type Pair4 = (HouseholdId, AreaId, HouseholdId, AreaId, &'static str);

fn rank(rule: &str) -> usize {
    DuplicateRule::NAMES
        .iter()
        .position(|r| *r == rule)
        .unwrap_or(usize::MAX)
}

/// Households the scan reads a statement.
const SCAN_CHUNK: usize = 5_000;

diesel::table! {
    /// The scan's keys, before they replace the stored ones: a temporary table of the
    /// scan's own connection.
    scan_keys (kind, scope_id, key, household_id, source_id) {
        kind -> Text,
        scope_id -> crate::db::sql::Uid,
        key -> Text,
        household_id -> crate::db::sql::Uid,
        source_id -> crate::db::sql::Uid,
        village_id -> crate::db::sql::Uid,
    }
}

/// Rebuilds every household's keys and records the pairs they make (`gocua duplicates
/// scan`, and `store::migrate` after the keys changed form). First every household's keys
/// are computed, a chunk of households at a time, into a temporary table, in short
/// transactions (on SQLite each takes the write lock while it fills the table). Then one
/// transaction replaces the stored keys with them (inserted in the order of the table's key,
/// which is much faster than thousands of small diffs), brings up to date the keys of the
/// households changed meanwhile (those with a change logged since a minute before the scan
/// began), records the pairs of every phone that 2 to `MAX_SHARED` households hold, and
/// compares the households of every head name that 2 to `MAX_SAME_HEAD` of a village hold.
/// Writes wait for that transaction. Answers the households read and the new pairs.
pub fn scan(conn: &mut Conn<'_>, mut progress: impl FnMut(usize)) -> Result<(usize, usize)> {
    let began = Time(Time::now().0 - chrono::Duration::minutes(1));
    // On SQLite the temporary table and the journals of the large transaction below go to
    // files (the setting drops temporary tables, so it comes first).
    conn.temporary_in_files(true)?;
    let column = match conn {
        Conn::Pg(_) => "uuid",
        Conn::Sqlite(_) => "text",
    };
    with_conn!(conn, |c| c.batch_execute(&format!(
        "DROP TABLE IF EXISTS scan_keys; CREATE TEMPORARY TABLE scan_keys (\
         kind text NOT NULL, scope_id {column} NOT NULL, key text NOT NULL, \
         household_id {column} NOT NULL, source_id {column} NOT NULL, \
         village_id {column} NOT NULL)"
    )))?;
    let communes: HashMap<AreaId, Option<AreaId>> = with_conn!(conn, |c| areas::table
        .select((areas::id, areas::parent_id))
        .load::<(AreaId, Option<AreaId>)>(c))?
    .into_iter()
    .collect();
    let mut after: Option<HouseholdId> = None;
    let mut read = 0;
    loop {
        let rows: Vec<HouseholdFacts> = with_conn!(conn, |c: DB| {
            let mut q = households::table
                .select(HOUSEHOLD_FACTS)
                .order(households::id)
                .limit(SCAN_CHUNK as i64)
                .into_boxed::<DB>();
            if let Some(a) = after {
                q = q.filter(households::id.gt(a));
            }
            q.load(c)
        })?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        let n = rows.len();
        // Only the members' phones give keys.
        let people: Vec<Person> = with_conn!(conn, |c: DB| {
            let mut q = members::table
                .filter(members::household_id.le(last))
                .filter(members::deleted_at.is_null())
                .filter(members::phone.is_not_null())
                .select(PERSON_FACTS)
                .into_boxed::<DB>();
            if let Some(a) = after {
                q = q.filter(members::household_id.gt(a));
            }
            q.load(c)
        })?;
        let keys = keys_of(&rows, &people, &communes);
        conn.transaction(|conn| -> Result<()> {
            match conn {
                Conn::Sqlite(c) => {
                    for k in &keys {
                        diesel::insert_into(scan_keys::table)
                            .values(ScanKey::of(k))
                            .execute(&mut **c)?;
                    }
                }
                Conn::Pg(c) => {
                    let rows: Vec<ScanKey> = keys.iter().map(ScanKey::of).collect();
                    diesel::copy_from(scan_keys::table)
                        .from_insertable(&rows)
                        .execute(&mut **c)?;
                }
            }
            Ok(())
        })?;
        read += n;
        after = Some(last);
        progress(read);
    }
    let new = conn.transaction(|conn| -> Result<usize> {
        replace_keys(conn)?;
        let changed: Vec<HouseholdId> = with_conn!(conn, |c| crate::db::schema::changes::table
            .filter(crate::db::schema::changes::created_at.ge(began))
            .filter(crate::db::schema::changes::household_id.is_not_null())
            .select(crate::db::schema::changes::household_id.assume_not_null())
            .distinct()
            .load(c))?;
        let mut new = 0;
        for chunk in changed.chunks(CHUNK) {
            new += reload(conn, chunk)?;
        }
        let shared: Vec<SharedKey> = with_conn!(conn, |c| diesel::sql_query(SHARED_KEYS).load(c))?;
        let mut phones = Groups::default();
        let mut heads = Vec::new();
        for s in shared {
            let h = s.holder;
            match s.kind.as_str() {
                "phone" => phones.add(
                    DuplicateRule::Phone.as_str(),
                    h.scope_id,
                    h.key,
                    h.household_id,
                    h.area_id,
                ),
                _ => heads.push(h),
            }
        }
        let mut pairs = phones.pairs(|_, _| true);
        pairs.extend(compare(conn, heads, |_| true)?);
        for part in tidy(pairs).chunks(CHUNK) {
            new += insert_pairs(conn, part)?;
        }
        Ok(new)
    })?;
    with_conn!(conn, |c| c.batch_execute("DROP TABLE scan_keys"))?;
    conn.temporary_in_files(false)?;
    Ok((read, new))
}

/// A holder of a key that 2 to its cap of households share, with the key's kind.
#[derive(QueryableByName)]
struct SharedKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(embed)]
    holder: Holder,
}

/// A key as a row of `scan_keys`.
#[derive(Insertable)]
#[diesel(table_name = scan_keys)]
#[diesel(treat_none_as_default_value = false)]
struct ScanKey<'a> {
    kind: &'a str,
    scope_id: AreaId,
    key: &'a str,
    household_id: HouseholdId,
    source_id: EntityId,
    village_id: AreaId,
}

impl<'a> ScanKey<'a> {
    fn of((kind, scope, key, h, source, village): &'a StoredKey) -> Self {
        ScanKey {
            kind,
            scope_id: *scope,
            key,
            household_id: *h,
            source_id: *source,
            village_id: *village,
        }
    }
}

/// Replaces the stored keys with the scan's, inserted in the order of the table's key (an
/// append to its one B-tree); the phones that more than `MAX_SHARED` households hold become
/// placeholders.
fn replace_keys(conn: &mut Conn<'_>) -> Result<()> {
    let placeholders = "INTO duplicate_placeholders (kind, scope_id, key) SELECT kind, \
                        scope_id, key FROM scan_keys WHERE kind = 'phone' GROUP BY kind, \
                        scope_id, key HAVING count(DISTINCT household_id) > 5";
    let copy = "INSERT INTO duplicate_keys (kind, scope_id, key, household_id, source_id, \
                village_id) SELECT kind, scope_id, key, household_id, source_id, village_id \
                FROM scan_keys ORDER BY kind, scope_id, key, household_id, source_id";
    let sql = match conn {
        Conn::Sqlite(_) => {
            format!("INSERT OR IGNORE {placeholders}; DELETE FROM duplicate_keys; {copy};")
        }
        Conn::Pg(_) => format!(
            "SET LOCAL work_mem = '256MB'; INSERT {placeholders} ON CONFLICT DO NOTHING; \
             TRUNCATE duplicate_keys; {copy};"
        ),
    };
    with_conn!(conn, |c| c.batch_execute(&sql))?;
    Ok(())
}

/// The holders of every phone, not a placeholder, that 2 to `MAX_SHARED` households hold and
/// of every head name that 2 to `MAX_SAME_HEAD` households of a village hold, with their
/// villages.
const SHARED_KEYS: &str = "SELECT DISTINCT d.kind, d.household_id, d.scope_id, d.key, \
     d.village_id AS area_id \
     FROM (SELECT kind, scope_id, key FROM duplicate_keys k WHERE NOT EXISTS (SELECT 1 FROM \
     duplicate_placeholders p WHERE p.kind = k.kind AND p.key = k.key AND p.scope_id = \
     k.scope_id) GROUP BY kind, scope_id, key HAVING count(DISTINCT household_id) BETWEEN 2 AND \
     CASE WHEN kind = 'phone' THEN 5 ELSE 50 END) g \
     JOIN duplicate_keys d ON d.kind = g.kind AND d.scope_id = g.scope_id AND d.key = g.key";
