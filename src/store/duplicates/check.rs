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
use crate::store::work::Touched;
use crate::with_conn;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Households read per statement.
pub(super) const CHUNK: usize = 500;

/// A key that more households than this share (a commune's office phone given for
/// everyone, a placeholder number) tells nothing: it makes no pairs.
pub const MAX_SHARED: i64 = 5;

/// A key of a household as stored: its rule, scope and text.
type StoredKey = (HouseholdId, String, AreaId, String);

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

/// What the rules read of a member, with its household, as selected.
const PERSON_FACTS: (
    members::household_id,
    members::full_name,
    members::birth_year,
    members::phone,
) = (
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

/// Brings up to date the keys of the households a write touched and records the new pairs
/// they make: in the caller's transaction, after the writes. A new household's keys come
/// from what the write holds in memory (none are stored yet); a stored household's are read
/// and compared with the stored ones. Answers how many pairs are new.
pub fn refresh(conn: &mut Conn<'_>, touched: &Touched) -> Result<usize> {
    let mut added = Vec::new();
    if !touched.new.is_empty() {
        let villages: BTreeSet<AreaId> = touched.new.iter().map(|n| n.1).collect();
        let communes = communes_of(conn, villages)?;
        for (id, village, facts) in &touched.new {
            keys_into(&mut added, *id, *village, facts, &communes);
        }
        insert_keys(conn, &added)?;
    }
    for chunk in touched.stored.chunks(CHUNK) {
        added.extend(write_keys(conn, chunk)?);
    }
    if added.is_empty() {
        return Ok(0);
    }
    let pairs = pairs_of(conn, &added)?;
    insert_pairs(conn, &pairs)
}

/// The commune of each of these villages.
fn communes_of(
    conn: &mut Conn<'_>,
    villages: BTreeSet<AreaId>,
) -> Result<HashMap<AreaId, Option<AreaId>>> {
    let villages: Vec<AreaId> = villages.into_iter().collect();
    Ok(with_conn!(conn, |c| areas::table
        .filter(any_of(areas::id, &villages))
        .select((areas::id, areas::parent_id))
        .load::<(AreaId, Option<AreaId>)>(c))?
    .into_iter()
    .collect())
}

/// Adds the keys of a live household to `out`, each with its scope.
fn keys_into(
    out: &mut Vec<StoredKey>,
    id: HouseholdId,
    village: AreaId,
    facts: &Facts,
    communes: &HashMap<AreaId, Option<AreaId>>,
) {
    let commune = communes.get(&village).copied().flatten().unwrap_or(village);
    for k in rules::keys(facts) {
        let scope = match k.rule {
            DuplicateRule::Phone => commune,
            _ => village,
        };
        out.push((id, k.rule.as_str().to_owned(), scope, k.key));
    }
}

/// Brings the stored keys of these households to what they should be: only the keys that
/// changed are written. Answers the keys added (only they are matched: a key kept has made
/// its pairs already).
fn write_keys(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<Vec<StoredKey>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut wanted = keys_of(conn, ids)?;
    let stored: Vec<StoredKey> = with_conn!(conn, |c| duplicate_keys::table
        .filter(any_of(duplicate_keys::household_id, ids))
        .select((
            duplicate_keys::household_id,
            duplicate_keys::rule,
            duplicate_keys::scope_id,
            duplicate_keys::key,
        ))
        .load(c))?;
    let removed: Vec<&StoredKey> = stored.iter().filter(|k| !wanted.remove(*k)).collect();
    for part in removed.chunks(CHUNK / 2) {
        delete_keys(conn, part)?;
    }
    let added: Vec<StoredKey> = wanted.into_iter().collect();
    insert_keys(conn, &added)?;
    Ok(added)
}

/// Records these pairs, each once: a pair found again (the two shared another key before) is
/// left as it is, so dismissed stays dismissed. Answers how many are new. SQLite's statement
/// for one row stays prepared; PostgreSQL takes many rows a round trip.
fn insert_pairs(conn: &mut Conn<'_>, pairs: &[Pair4]) -> Result<usize> {
    let now = Time::now();
    let rows: Vec<NewPair> = pairs
        .iter()
        .map(|(a, area_a, b, area_b, rule)| NewPair {
            id: DuplicateId::random(),
            household_a: *a,
            household_b: *b,
            area_a: *area_a,
            area_b: *area_b,
            rule: rule.as_str(),
            status: DuplicateStatus::Open.as_str(),
            created_at: now,
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

/// Inserts these keys, many a statement.
fn insert_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
    let row = |(h, rule, scope, key): &StoredKey| {
        (
            duplicate_keys::household_id.eq(*h),
            duplicate_keys::rule.eq(rule.clone()),
            duplicate_keys::scope_id.eq(*scope),
            duplicate_keys::key.eq(key.clone()),
        )
    };
    // Tuples of values, not a record struct: diesel writes them as one multi-row statement
    // on SQLite too (a struct's fields could be DEFAULT, which SQLite's VALUES cannot say, so
    // diesel inserts such records one statement each).
    for part in keys.chunks(CHUNK) {
        let rows: Vec<_> = part.iter().map(row).collect();
        crate::insert_rows!(conn, duplicate_keys::table, rows.as_slice())?;
    }
    Ok(())
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
        for (h, rule, scope, key) in keys.iter().copied() {
            diesel::delete(
                duplicate_keys::table
                    .filter(duplicate_keys::rule.eq(rule))
                    .filter(duplicate_keys::scope_id.eq(*scope))
                    .filter(duplicate_keys::key.eq(key))
                    .filter(duplicate_keys::household_id.eq(*h)),
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
        .map(|_| format!("({}, {}, {}, {})", next(), next(), next(), next()))
        .collect();
    let sql = format!(
        "DELETE FROM duplicate_keys WHERE (rule, scope_id, key, household_id) IN (VALUES {})",
        values.join(", ")
    );
    with_conn!(conn, |c: DB| {
        let mut q = diesel::sql_query(&sql).into_boxed::<DB>();
        for (h, rule, scope, key) in keys.iter().copied() {
            q = q
                .bind::<Text, _>(rule.as_str())
                .bind::<Uid, _>(*scope)
                .bind::<Text, _>(key.as_str())
                .bind::<Uid, _>(*h);
        }
        q.execute(c)
    })?;
    Ok(())
}

/// The keys these households should have (none for a deleted one).
fn keys_of(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<HashSet<StoredKey>> {
    let rows: Vec<HouseholdFacts> = with_conn!(conn, |c| households::table
        .filter(any_of(households::id, ids))
        .select(HOUSEHOLD_FACTS)
        .load(c))?;
    let people: Vec<(HouseholdId, String, Option<i32>, Option<String>)> =
        with_conn!(conn, |c| members::table
            .filter(any_of(members::household_id, ids))
            .filter(members::deleted_at.is_null())
            .select(PERSON_FACTS)
            .load(c))?;
    let communes = communes_of(conn, rows.iter().map(|r| r.1).collect())?;
    Ok(household_keys(rows, people, &communes)
        .into_iter()
        .collect())
}

/// The keys of these households (none for a deleted one), given their live members and the
/// commune of each village.
fn household_keys(
    rows: Vec<HouseholdFacts>,
    people: Vec<(HouseholdId, String, Option<i32>, Option<String>)>,
    communes: &HashMap<AreaId, Option<AreaId>>,
) -> Vec<StoredKey> {
    let mut people_of: HashMap<HouseholdId, Vec<PersonFacts>> = HashMap::new();
    for (h, full_name, birth_year, phone) in people {
        people_of.entry(h).or_default().push(PersonFacts {
            full_name,
            birth_year: birth_year.map(i64::from),
            phone,
        });
    }
    let mut wanted = Vec::new();
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
        keys_into(&mut wanted, id, village, &facts, communes);
    }
    wanted
}

/// The pairs these new keys make with the other holders of each. A key held by more than
/// `MAX_SHARED` households makes none: no more than `MAX_SHARED + 1` of its holders are read.
fn pairs_of(conn: &mut Conn<'_>, added: &[StoredKey]) -> Result<Vec<Pair4>> {
    let mut mine: HashMap<(&str, AreaId, &str), Vec<HouseholdId>> = HashMap::new();
    for (h, rule, scope, key) in added {
        mine.entry((rule.as_str(), *scope, key.as_str()))
            .or_default()
            .push(*h);
    }
    let mut wanted: Vec<(&str, AreaId, &str)> = mine.keys().copied().collect();
    wanted.sort();
    let mut groups = Groups::default();
    for part in wanted.chunks(CHUNK) {
        groups.add(holders_of(conn, part)?);
    }
    Ok(groups.pairs(|rule, scope, key| {
        Some(
            mine.get(&(rule, scope, key))
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    }))
}

/// The holders of keys, by key.
#[derive(Default)]
struct Groups(HashMap<(String, AreaId, String), Vec<(HouseholdId, AreaId)>>);

impl Groups {
    fn add(&mut self, holders: Vec<Holder>) {
        for r in holders {
            self.0
                .entry((r.rule, r.scope_id, r.key))
                .or_default()
                .push((r.household_id, r.area_id));
        }
    }

    /// The pairs of each key's holders that `ours` names one of (all of them where it names
    /// none), ordered, one per two households, under the first rule found (phone, then name
    /// and address, then name and a person); none for a key held by more than `MAX_SHARED`
    /// households.
    fn pairs<'k>(
        &'k self,
        ours: impl Fn(&'k str, AreaId, &'k str) -> Option<&'k [HouseholdId]>,
    ) -> Vec<Pair4> {
        let mut pairs: Vec<Pair4> = Vec::new();
        for ((rule, scope, key), holders) in &self.0 {
            if holders.len() as i64 > MAX_SHARED {
                continue;
            }
            let ours = ours(rule, *scope, key);
            for (i, a) in holders.iter().enumerate() {
                for b in &holders[i + 1..] {
                    let one_ours = ours.is_none_or(|o| o.contains(&a.0) || o.contains(&b.0));
                    if a.0 == b.0 || !one_ours {
                        continue;
                    }
                    let (a, b) = match a.0 < b.0 {
                        true => (a, b),
                        false => (b, a),
                    };
                    pairs.push((a.0, a.1, b.0, b.1, rule.clone()));
                }
            }
        }
        pairs.sort_by_key(|x| (x.0, x.2, rank(&x.4)));
        pairs.dedup_by(|x, y| x.0 == y.0 && x.2 == y.2);
        pairs
    }
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

/// The holders of these keys (rule, scope, key), at most `MAX_SHARED + 1` of each, read by
/// the primary key in one statement: on SQLite the keys with more are left out before any of
/// their rows is read; on PostgreSQL each key's holders are read to one past the cap. The
/// statement's text is the same whatever the keys (bound as arrays or JSON), so each
/// connection keeps it prepared.
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

/// Households the scan reads a statement.
const SCAN_CHUNK: usize = 5_000;

diesel::table! {
    /// The scan's keys, before they replace the stored ones: a temporary table of the
    /// scan's own connection.
    scan_keys (rule, scope_id, key, household_id) {
        rule -> Text,
        scope_id -> crate::db::sql::Uid,
        key -> Text,
        household_id -> crate::db::sql::Uid,
    }
}

/// Rebuilds every household's keys and records the pairs they make (`gocua duplicates
/// scan`). First every household's keys are computed, a chunk of households at a time, into
/// a temporary table, in short transactions (on SQLite each takes the write lock while it
/// fills the table). Then one transaction replaces the stored keys with them (inserted in the
/// order of the table's key, which is much faster than thousands of small diffs), brings up to date the keys of the households changed meanwhile
/// (those with a change logged since a minute before the scan began), and records the pairs
/// of every key that 2 to `MAX_SHARED` households hold, found by one grouping of the keys.
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
         rule text NOT NULL, scope_id {column} NOT NULL, key text NOT NULL, \
         household_id {column} NOT NULL)"
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
        let people: Vec<(HouseholdId, String, Option<i32>, Option<String>)> =
            with_conn!(conn, |c: DB| {
                let mut q = members::table
                    .filter(members::household_id.le(last))
                    .filter(members::deleted_at.is_null())
                    .select(PERSON_FACTS)
                    .into_boxed::<DB>();
                if let Some(a) = after {
                    q = q.filter(members::household_id.gt(a));
                }
                q.load(c)
            })?;
        let keys = household_keys(rows, people, &communes);
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
        let mut new = refresh(
            conn,
            &Touched {
                new: Vec::new(),
                stored: changed,
            },
        )?;
        let mut groups = Groups::default();
        groups.add(with_conn!(conn, |c| diesel::sql_query(SHARED_KEYS).load(c))?);
        let pairs = groups.pairs(|_, _, _| None);
        for part in pairs.chunks(CHUNK) {
            new += insert_pairs(conn, part)?;
        }
        Ok(new)
    })?;
    with_conn!(conn, |c| c.batch_execute("DROP TABLE scan_keys"))?;
    conn.temporary_in_files(false)?;
    Ok((read, new))
}

/// A key as a row of `scan_keys`.
#[derive(Insertable)]
#[diesel(table_name = scan_keys)]
#[diesel(treat_none_as_default_value = false)]
struct ScanKey<'a> {
    rule: &'a str,
    scope_id: AreaId,
    key: &'a str,
    household_id: HouseholdId,
}

impl<'a> ScanKey<'a> {
    fn of((h, rule, scope, key): &'a StoredKey) -> Self {
        ScanKey {
            rule,
            scope_id: *scope,
            key,
            household_id: *h,
        }
    }
}

/// Replaces the stored keys with the scan's, inserted in the order of the table's key; the
/// household index is dropped first and made again after, in one sort.
fn replace_keys(conn: &mut Conn<'_>) -> Result<()> {
    let copy = "INSERT INTO duplicate_keys (rule, scope_id, key, household_id) \
                SELECT rule, scope_id, key, household_id FROM scan_keys \
                ORDER BY rule, scope_id, key, household_id";
    let sql = match conn {
        Conn::Sqlite(_) => format!(
            "DELETE FROM duplicate_keys; DROP INDEX duplicate_keys_household; {copy}; \
             CREATE INDEX duplicate_keys_household ON duplicate_keys (household_id);"
        ),
        Conn::Pg(_) => format!(
            "SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '256MB'; \
             TRUNCATE duplicate_keys; \
             DROP INDEX duplicate_keys_household; {copy}; \
             CREATE INDEX duplicate_keys_household ON duplicate_keys (household_id);"
        ),
    };
    with_conn!(conn, |c| c.batch_execute(&sql))?;
    Ok(())
}

/// The holders of every key that 2 to `MAX_SHARED` households hold, with their villages.
const SHARED_KEYS: &str = "SELECT d.household_id, d.rule, d.scope_id, d.key, h.area_id \
     FROM (SELECT rule, scope_id, key FROM duplicate_keys GROUP BY rule, scope_id, key \
     HAVING count(*) BETWEEN 2 AND 5) g \
     JOIN duplicate_keys d ON d.rule = g.rule AND d.scope_id = g.scope_id AND d.key = g.key \
     JOIN households h ON h.id = d.household_id";
const _: () = assert!(MAX_SHARED == 5, "SHARED_KEYS counts MAX_SHARED");
