//! The stored keys of the duplicate check (docs/DUPLICATES.md): inserting and deleting them,
//! reading a key's holders, and the placeholder phones.

use super::check::{StoredKey, CHUNK, MAX_SAME_HEAD, MAX_SHARED};
use crate::store::error::Result;

use crate::db::any::any_of;
use crate::db::schema::{duplicate_keys, duplicate_placeholders};
use crate::db::Conn;
use crate::domain::duplicates::Index;
use crate::domain::{AreaId, HouseholdId};
use crate::with_conn;
use diesel::prelude::*;
use std::collections::HashSet;

/// The placeholder phones among these keys, as (scope, number).
pub(super) fn placeholders_of<'a>(
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

pub(super) fn is_placeholder(k: &StoredKey, placeholders: &HashSet<(AreaId, String)>) -> bool {
    k.0 == Index::Phone.as_str() && placeholders.contains(&(k.1, k.2.clone()))
}

/// The placeholders among these phones (scope, number): read by number (the table's key
/// starts with it), one statement whose text is the same whatever the numbers.
pub(super) fn placeholders_among(
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
pub(super) fn make_placeholders(conn: &mut Conn<'_>, phones: &[(AreaId, String)]) -> Result<()> {
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

/// Inserts these keys, many a statement; a key already stored is left as it is.
pub(super) fn insert_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
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
pub(super) fn delete_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
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

/// A holder of a key, with its village.
#[derive(QueryableByName)]
pub(super) struct Holder {
    #[diesel(sql_type = crate::db::sql::Uid)]
    pub(super) household_id: HouseholdId,
    #[diesel(sql_type = crate::db::sql::Uid)]
    pub(super) scope_id: AreaId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(super) key: String,
    #[diesel(sql_type = crate::db::sql::Uid)]
    pub(super) area_id: AreaId,
}

/// The holders of these keys (scope, key) of a kind, each household once, up to one past
/// the kind's cap (`MAX_SHARED` phones, `MAX_SAME_HEAD` head names), read by the primary key
/// in one statement: on SQLite the keys with more are left out before any of their rows is
/// read; on PostgreSQL each key's holders are read to one past the cap. The statement's text
/// is the same whatever the keys (bound as arrays or JSON), so each connection keeps it
/// prepared.
pub(super) fn holders_of(
    conn: &mut Conn<'_>,
    index: Index,
    keys: &[(AreaId, &str)],
) -> Result<Vec<Holder>> {
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
pub(super) struct Holders<'a> {
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
