//! The scan of a whole database (`gocua duplicates scan`, docs/DUPLICATES.md): every
//! household's keys made again, and the pairs they make.

use super::check::{
    communes_of, compare, facts_of, insert_pairs, keys_of, record, tidy, Groups, HouseholdFacts,
    Person, StoredKey, CHUNK, HOUSEHOLD_FACTS, PERSON_FACTS,
};
use super::keys::Holder;
use crate::store::error::Result;

use crate::db::any::any_of;
use crate::db::schema::{areas, duplicate_keys, households, members};
use crate::db::Conn;
use crate::domain::duplicates as rules;
use crate::domain::vocabulary::DuplicateRule;
use crate::domain::{AreaId, EntityId, HouseholdId, Time};
use crate::with_conn;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::collections::HashMap;

/// Makes the keys of these households again from their stored rows and answers the new
/// pairs they make (the scan, for households written while it read): their keys are
/// deleted by reading the whole table, which has no household index (a write knows the keys
/// it removes).
pub(super) fn reload(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<usize> {
    with_conn!(conn, |c| diesel::delete(
        duplicate_keys::table.filter(any_of(duplicate_keys::household_id, ids))
    )
    .execute(c))?;
    let (rows, people) = facts_of(conn, ids)?;
    let communes = communes_of(conn, rows.iter().map(|r| r.1).collect())?;
    let keys = keys_of(&rows, &people, &communes);
    let names: Vec<(HouseholdId, AreaId, String)> = rows
        .iter()
        .filter(|r| r.5.is_none())
        .map(|r| (r.0, r.1, rules::head_key(&r.2)))
        .filter(|n| !n.2.is_empty())
        .collect();
    record(conn, &[], keys, &names)
}

/// Households the scan reads a statement.
pub(super) const SCAN_CHUNK: usize = 5_000;

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
pub(super) struct SharedKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(embed)]
    holder: Holder,
}

/// A key as a row of `scan_keys`.
#[derive(Insertable)]
#[diesel(table_name = scan_keys)]
#[diesel(treat_none_as_default_value = false)]
pub(super) struct ScanKey<'a> {
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
pub(super) fn replace_keys(conn: &mut Conn<'_>) -> Result<()> {
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
pub(super) const SHARED_KEYS: &str = "SELECT DISTINCT d.kind, d.household_id, d.scope_id, d.key, \
     d.village_id AS area_id \
     FROM (SELECT kind, scope_id, key FROM duplicate_keys k WHERE NOT EXISTS (SELECT 1 FROM \
     duplicate_placeholders p WHERE p.kind = k.kind AND p.key = k.key AND p.scope_id = \
     k.scope_id) GROUP BY kind, scope_id, key HAVING count(DISTINCT household_id) BETWEEN 2 AND \
     CASE WHEN kind = 'phone' THEN 5 ELSE 50 END) g \
     JOIN duplicate_keys d ON d.kind = g.kind AND d.scope_id = g.scope_id AND d.key = g.key";
