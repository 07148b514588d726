//! The check (docs/DUPLICATES.md): each live household's keys (`domain::duplicates`), kept
//! in the transaction of every write that changes what the rules read, and the pairs the new
//! keys make, proposed once; and the scan of a whole database.

use crate::store::error::Result;

use crate::db::any::any_of;
use crate::db::schema::{areas, duplicate_keys, duplicates, households, members};
use crate::db::Conn;
use crate::domain::duplicates::{self as rules, Facts, PersonFacts};
use crate::domain::vocabulary::{DuplicateRule, DuplicateStatus};
use crate::domain::{AreaId, DuplicateId, HouseholdId, Time};
use crate::with_conn;
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Households read per statement.
pub(super) const CHUNK: usize = 500;

/// A key that more households than this share (a commune's office phone given for
/// everyone, a placeholder number) tells nothing: it makes no pairs.
pub const MAX_SHARED: i64 = 5;

/// A key of a household as stored: its rule, scope and text.
type StoredKey = (HouseholdId, String, AreaId, String);

type HouseholdFacts = (
    HouseholdId,
    AreaId,
    String,
    String,
    Option<String>,
    Option<Time>,
);

/// Recomputes the keys of these households and records the new pairs they make: in the
/// caller's transaction, after the writes. Answers how many pairs are new.
pub fn refresh(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<usize> {
    let mut found = 0;
    for chunk in ids.chunks(CHUNK) {
        found += refresh_chunk(conn, chunk)?;
    }
    Ok(found)
}

fn refresh_chunk(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let (wanted, village_of) = keys_of(conn, ids)?;
    let stored: Vec<StoredKey> = with_conn!(conn, |c| duplicate_keys::table
        .filter(any_of(duplicate_keys::household_id, ids))
        .select((
            duplicate_keys::household_id,
            duplicate_keys::rule,
            duplicate_keys::scope_id,
            duplicate_keys::key,
        ))
        .load(c))?;
    let stored: HashSet<StoredKey> = stored.into_iter().collect();
    // Only the keys that changed are written, and only the new ones are matched: a key kept
    // has made its pairs already.
    let removed: Vec<&StoredKey> = stored.difference(&wanted).collect();
    let added: Vec<&StoredKey> = wanted.difference(&stored).collect();
    if removed.is_empty() && added.is_empty() {
        return Ok(0);
    }
    for part in removed.chunks(CHUNK / 2) {
        delete_keys(conn, part)?;
    }
    // Tuples of values, not a record struct: diesel writes them as one multi-row statement
    // on SQLite (a struct's fields could be DEFAULT, which SQLite's VALUES cannot say, so
    // diesel inserts such records one statement each).
    let rows: Vec<_> = added
        .iter()
        .map(|(h, rule, scope, key)| {
            (
                duplicate_keys::household_id.eq(*h),
                duplicate_keys::rule.eq(rule.clone()),
                duplicate_keys::scope_id.eq(*scope),
                duplicate_keys::key.eq(key.clone()),
            )
        })
        .collect();
    crate::insert_rows!(conn, duplicate_keys::table, rows.as_slice())?;
    let pairs = pairs_of(conn, &added, &village_of)?;
    let now = Time::now();
    let rows: Vec<NewPair> = pairs
        .iter()
        .map(|(a, area_a, b, area_b, rule)| NewPair {
            id: DuplicateId::random(),
            household_a: *a,
            household_b: *b,
            area_a: *area_a,
            area_b: *area_b,
            rule,
            status: DuplicateStatus::Open.as_str(),
            created_at: now,
        })
        .collect();
    // A pair found again (the two shared another key before) is left as it is: dismissed
    // stays dismissed. SQLite's statement for one row stays prepared; PostgreSQL takes many
    // rows a round trip.
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
            for row in &rows {
                new += diesel::insert_or_ignore_into(duplicates::table)
                    .values(row)
                    .execute(&mut **c)?;
            }
        }
    }
    Ok(new)
}

/// A new pair as stored.
#[derive(Insertable)]
#[diesel(table_name = duplicates)]
struct NewPair<'a> {
    id: DuplicateId,
    household_a: HouseholdId,
    household_b: HouseholdId,
    area_a: AreaId,
    area_b: AreaId,
    rule: &'a str,
    status: &'a str,
    created_at: Time,
}

/// Deletes these stored keys by their primary key: on SQLite one prepared statement per key
/// (no round trip, and a statement of another length would be parsed anew), on PostgreSQL
/// all of them in one statement.
fn delete_keys(conn: &mut Conn<'_>, keys: &[&StoredKey]) -> Result<()> {
    use crate::db::sql::Uid;
    use diesel::sql_types::Text;
    if keys.is_empty() {
        return Ok(());
    }
    if let Conn::Sqlite(c) = conn {
        for (h, rule, _, key) in keys.iter().copied() {
            diesel::delete(
                duplicate_keys::table
                    .filter(duplicate_keys::household_id.eq(*h))
                    .filter(duplicate_keys::rule.eq(rule))
                    .filter(duplicate_keys::key.eq(key)),
            )
            .execute(&mut **c)?;
        }
        return Ok(());
    }
    let pg = matches!(conn, Conn::Pg(_));
    let mut n = 0;
    let mut next = || {
        n += 1;
        match pg {
            true => format!("${n}"),
            false => "?".to_owned(),
        }
    };
    let values: Vec<String> = keys
        .iter()
        .map(|_| format!("({}, {}, {})", next(), next(), next()))
        .collect();
    let sql = format!(
        "DELETE FROM duplicate_keys WHERE (household_id, rule, key) IN (VALUES {})",
        values.join(", ")
    );
    with_conn!(conn, |c: DB| {
        let mut q = diesel::sql_query(&sql).into_boxed::<DB>();
        for (h, rule, _, key) in keys.iter().copied() {
            q = q
                .bind::<Uid, _>(*h)
                .bind::<Text, _>(rule.as_str())
                .bind::<Text, _>(key.as_str());
        }
        q.execute(c)
    })?;
    Ok(())
}

/// The keys these households should have (none for a deleted one), and each one's village.
fn keys_of(
    conn: &mut Conn<'_>,
    ids: &[HouseholdId],
) -> Result<(HashSet<StoredKey>, HashMap<HouseholdId, AreaId>)> {
    let rows: Vec<HouseholdFacts> = with_conn!(conn, |c| households::table
        .filter(any_of(households::id, ids))
        .select((
            households::id,
            households::area_id,
            households::head_name,
            households::address,
            households::phone,
            households::deleted_at,
        ))
        .load(c))?;
    let people: Vec<(HouseholdId, String, Option<i32>, Option<String>)> =
        with_conn!(conn, |c| members::table
            .filter(any_of(members::household_id, ids))
            .filter(members::deleted_at.is_null())
            .select((
                members::household_id,
                members::full_name,
                members::birth_year,
                members::phone,
            ))
            .load(c))?;
    let mut people_of: HashMap<HouseholdId, Vec<PersonFacts>> = HashMap::new();
    for (h, full_name, birth_year, phone) in people {
        people_of.entry(h).or_default().push(PersonFacts {
            full_name,
            birth_year: birth_year.map(i64::from),
            phone,
        });
    }
    let villages: BTreeSet<AreaId> = rows.iter().map(|r| r.1).collect();
    let villages: Vec<AreaId> = villages.into_iter().collect();
    let communes: HashMap<AreaId, Option<AreaId>> = with_conn!(conn, |c| areas::table
        .filter(any_of(areas::id, &villages))
        .select((areas::id, areas::parent_id))
        .load::<(AreaId, Option<AreaId>)>(c))?
    .into_iter()
    .collect();
    let mut wanted = HashSet::new();
    let mut village_of = HashMap::new();
    for (id, village, head_name, address, phone, deleted) in rows {
        village_of.insert(id, village);
        if deleted.is_some() {
            continue;
        }
        let facts = Facts {
            head_name,
            address,
            phone,
            members: people_of.remove(&id).unwrap_or_default(),
        };
        let commune = communes.get(&village).copied().flatten().unwrap_or(village);
        for k in rules::keys(&facts) {
            let scope = match k.rule {
                DuplicateRule::Phone => commune,
                _ => village,
            };
            wanted.insert((id, k.rule.as_str().to_owned(), scope, k.key));
        }
    }
    Ok((wanted, village_of))
}

/// The pairs these new keys make with the other holders of each (ordered, one per two
/// households, under the first rule found: phone, then name and address, then name and a
/// person). A key held by more than `MAX_SHARED` households makes none: no more than
/// `MAX_SHARED + 1` of its holders are read, by the index. One statement for all the keys.
fn pairs_of(
    conn: &mut Conn<'_>,
    added: &[&StoredKey],
    village_of: &HashMap<HouseholdId, AreaId>,
) -> Result<Vec<Pair4>> {
    let mut holders: HashMap<(&str, AreaId, &str), Vec<HouseholdId>> = HashMap::new();
    for (h, rule, scope, key) in added.iter().copied() {
        holders
            .entry((rule.as_str(), *scope, key.as_str()))
            .or_default()
            .push(*h);
    }
    let mut wanted: Vec<(&str, AreaId, &str)> = holders.keys().copied().collect();
    wanted.sort();
    let mut pairs: Vec<Pair4> = Vec::new();
    for part in wanted.chunks(CHUNK) {
        let mut others: HashMap<(String, AreaId, String), Vec<(HouseholdId, AreaId)>> =
            HashMap::new();
        for r in holders_of(conn, part)? {
            others
                .entry((r.rule, r.scope_id, r.key))
                .or_default()
                .push((r.household_id, r.area_id));
        }
        for ((rule, scope, key), theirs) in others {
            if theirs.len() as i64 > MAX_SHARED {
                continue;
            }
            let mine = holders
                .get(&(rule.as_str(), scope, key.as_str()))
                .into_iter()
                .flatten();
            for mine in mine {
                for (other, other_village) in theirs.iter().filter(|o| o.0 != *mine) {
                    let here = village_of[mine];
                    let (a, b) = match *mine < *other {
                        true => ((*mine, here), (*other, *other_village)),
                        false => ((*other, *other_village), (*mine, here)),
                    };
                    pairs.push((a.0, a.1, b.0, b.1, rule.clone()));
                }
            }
        }
    }
    pairs.sort_by_key(|x| (x.0, x.2, rank(&x.4)));
    pairs.dedup_by(|x, y| x.0 == y.0 && x.2 == y.2);
    Ok(pairs)
}

/// A holder of a key, with its village.
#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = crate::db::sql::Uid)]
    household_id: HouseholdId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    rule: String,
    #[diesel(sql_type = crate::db::sql::Uid)]
    scope_id: AreaId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = crate::db::sql::Uid)]
    area_id: AreaId,
}

/// The holders of these keys (rule, scope, key), at most `MAX_SHARED + 1` of each: on SQLite
/// the keys with more are left out before any of their rows is read; on PostgreSQL each key's
/// holders are read to one past the cap. The statement's text is the same whatever the keys
/// (bound as arrays), so each connection keeps it prepared.
fn holders_of(conn: &mut Conn<'_>, keys: &[(&str, AreaId, &str)]) -> Result<Vec<Holder>> {
    let q = Holders {
        json: match conn {
            Conn::Sqlite(_) => serde_json::to_string(keys).unwrap_or_default(),
            Conn::Pg(_) => String::new(),
        },
        rules: keys.iter().map(|k| k.0).collect(),
        scopes: keys.iter().map(|k| k.1).collect(),
        keys: keys.iter().map(|k| k.2).collect(),
    };
    Ok(with_conn!(conn, |c| q.load(c))?)
}

/// The query of `holders_of`: the keys as a JSON array of `[rule, scope, key]` for SQLite,
/// as three arrays for PostgreSQL.
struct Holders<'a> {
    json: String,
    rules: Vec<&'a str>,
    scopes: Vec<AreaId>,
    keys: Vec<&'a str>,
}

/// `MAX_SHARED` holders skipped, as SQL.
const PAST_THE_CAP: &str = "LIMIT 1 OFFSET 5)";
/// `MAX_SHARED + 1` holders, as SQL.
const TO_PAST_THE_CAP: &str = "LIMIT 6)";
const _: () = assert!(
    MAX_SHARED == 5,
    "PAST_THE_CAP and TO_PAST_THE_CAP count MAX_SHARED"
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
        out.push_sql(
            "WITH w AS (SELECT json_extract(value, '$[0]') AS rule, \
             json_extract(value, '$[1]') AS scope, json_extract(value, '$[2]') AS key \
             FROM json_each(",
        );
        out.push_bind_param::<diesel::sql_types::Text, String>(&self.json)?;
        out.push_sql(
            ")), n AS (SELECT rule, scope, key FROM w WHERE NOT EXISTS (SELECT 1 FROM \
             duplicate_keys y WHERE y.rule = w.rule AND y.scope_id = w.scope AND y.key = w.key ",
        );
        out.push_sql(PAST_THE_CAP);
        out.push_sql(
            ") SELECT d.household_id AS household_id, d.rule AS rule, d.scope_id AS scope_id, \
             d.key AS key, h.area_id AS area_id FROM n JOIN duplicate_keys d ON d.rule = n.rule \
             AND d.scope_id = n.scope AND d.key = n.key JOIN households h ON h.id = d.household_id",
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
        out.push_sql("SELECT d.household_id, d.rule, d.scope_id, d.key, h.area_id FROM unnest(");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.rules)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Uid>, Vec<AreaId>>(&self.scopes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.keys)?;
        out.push_sql(
            ") AS n(rule, scope, key) CROSS JOIN LATERAL (SELECT y.household_id, y.rule, \
             y.scope_id, y.key FROM duplicate_keys y WHERE y.rule = n.rule AND \
             y.scope_id = n.scope AND y.key = n.key ",
        );
        out.push_sql(TO_PAST_THE_CAP);
        out.push_sql(" d JOIN households h ON h.id = d.household_id");
        Ok(())
    }
}

/// Two households (each with its village) and the rule they share a key by.
type Pair4 = (HouseholdId, AreaId, HouseholdId, AreaId, String);

fn rank(rule: &str) -> usize {
    DuplicateRule::NAMES
        .iter()
        .position(|r| *r == rule)
        .unwrap_or(usize::MAX)
}

/// Rebuilds every household's keys and records the pairs they make (`gocua duplicates
/// scan`), a chunk at a time. Answers the households read and the new pairs.
pub fn scan(conn: &mut Conn<'_>, mut progress: impl FnMut(usize)) -> Result<(usize, usize)> {
    let mut after: Option<HouseholdId> = None;
    let (mut read, mut new) = (0, 0);
    loop {
        let ids: Vec<HouseholdId> = with_conn!(conn, |c: DB| {
            let mut q = households::table
                .select(households::id)
                .order(households::id)
                .limit(CHUNK as i64)
                .into_boxed::<DB>();
            if let Some(a) = after {
                q = q.filter(households::id.gt(a));
            }
            q.load(c)
        })?;
        let Some(last) = ids.last().copied() else {
            return Ok((read, new));
        };
        new += conn.transaction(|conn| refresh_chunk(conn, &ids))?;
        read += ids.len();
        progress(read);
        after = Some(last);
    }
}
