//! The stored keys of the duplicate check (docs/DUPLICATES.md): inserting and deleting them,
//! reading a key's holders, and the placeholder phones.

use super::check::{StoredKey, CHUNK, MAX_SAME_HEAD, MAX_SHARED};
use crate::store::error::Result;

use crate::db::schema::{duplicate_keys, duplicate_placeholders};
use crate::db::unnest;
use crate::db::Conn;
use crate::domain::duplicates::Index;
use crate::domain::{AreaId, EntityId, HouseholdId};
use crate::with_conn;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};

/// Makes these phones (scope, number) placeholders, in their order (two writes that make
/// the same ones wait for each other, never in a circle). Their holders stored so far are
/// left as they are: deleting them would lock other households' rows.
pub(super) fn make_placeholders(conn: &mut Conn<'_>, phones: &[(AreaId, String)]) -> Result<()> {
    let kind = Index::Phone.as_str();
    let mut phones = phones.to_vec();
    phones.sort();
    phones.dedup();
    match conn {
        Conn::Pg(c) => {
            unnest::into("duplicate_placeholders")
                .column(duplicate_placeholders::kind, vec![kind; phones.len()])
                .column(
                    duplicate_placeholders::scope_id,
                    phones.iter().map(|p| p.0).collect(),
                )
                .column(
                    duplicate_placeholders::key,
                    phones.iter().map(|p| p.1.as_str()).collect(),
                )
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        Conn::Sqlite(c) => {
            for (scope, key) in &phones {
                diesel::insert_or_ignore_into(duplicate_placeholders::table)
                    .values((
                        duplicate_placeholders::kind.eq(kind),
                        duplicate_placeholders::scope_id.eq(*scope),
                        duplicate_placeholders::key.eq(key),
                    ))
                    .execute(&mut **c)?;
            }
        }
    }
    Ok(())
}

/// Inserts these keys, many a statement (on PostgreSQL one, of arrays); a key already
/// stored is left as it is.
pub(super) fn insert_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
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
            unnest::into("duplicate_keys")
                .column(duplicate_keys::kind, keys.iter().map(|k| k.0).collect())
                .column(duplicate_keys::scope_id, keys.iter().map(|k| k.1).collect())
                .column(
                    duplicate_keys::key,
                    keys.iter().map(|k| k.2.as_str()).collect(),
                )
                .column(
                    duplicate_keys::household_id,
                    keys.iter().map(|k| k.3).collect(),
                )
                .column(
                    duplicate_keys::source_id,
                    keys.iter().map(|k| k.4).collect(),
                )
                .column(
                    duplicate_keys::village_id,
                    keys.iter().map(|k| k.5).collect(),
                )
                .on_conflict_do_nothing()
                .execute(c)?;
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

/// Deletes these stored keys by their primary key, many a statement: on SQLite 32 at most
/// as bound values, their number rounded up to a power of two by repeating the last (so each
/// connection keeps six statements prepared); on PostgreSQL `CHUNK` as five arrays (one
/// statement, read by the primary key whatever the number: a list of values there may be
/// hashed against the whole table).
pub(super) fn delete_keys(conn: &mut Conn<'_>, keys: &[StoredKey]) -> Result<()> {
    let size = match conn {
        Conn::Sqlite(_) => SQLITE_BATCH,
        Conn::Pg(_) => CHUNK,
    };
    for part in keys.chunks(size) {
        let q = match conn {
            Conn::Sqlite(_) => {
                let mut part: Vec<&StoredKey> = part.iter().collect();
                if let Some(last) = part.last().copied() {
                    part.resize(part.len().next_power_of_two(), last);
                }
                DeleteKeys {
                    keys: part,
                    ..DeleteKeys::default()
                }
            }
            Conn::Pg(_) => DeleteKeys {
                keys: Vec::new(),
                kinds: part.iter().map(|k| k.0).collect(),
                scopes: part.iter().map(|k| k.1).collect(),
                texts: part.iter().map(|k| k.2.as_str()).collect(),
                households: part.iter().map(|k| k.3).collect(),
                sources: part.iter().map(|k| k.4).collect(),
            },
        };
        with_conn!(conn, |c| q.execute(c))?;
    }
    Ok(())
}

/// The statement of `delete_keys`: SQLite's keys, or PostgreSQL's arrays.
#[derive(Default)]
struct DeleteKeys<'a> {
    keys: Vec<&'a StoredKey>,
    kinds: Vec<&'static str>,
    scopes: Vec<AreaId>,
    texts: Vec<&'a str>,
    households: Vec<HouseholdId>,
    sources: Vec<EntityId>,
}

impl diesel::query_builder::QueryId for DeleteKeys<'_> {
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C> RunQueryDsl<C> for DeleteKeys<'_> {}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for DeleteKeys<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use crate::db::sql::Uid;
        use diesel::sql_types::Text;
        // The keys as a table first: SQLite then reads them by the primary key (a list of
        // values after `IN` it compares with every row).
        out.push_sql("WITH w (kind, scope_id, key, household_id, source_id) AS (VALUES ");
        for (i, (kind, scope, key, h, source, _)) in self.keys.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, &str>(kind)?;
            out.push_sql(", ");
            out.push_bind_param::<Uid, AreaId>(scope)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, String>(key)?;
            out.push_sql(", ");
            out.push_bind_param::<Uid, HouseholdId>(h)?;
            out.push_sql(", ");
            out.push_bind_param::<Uid, EntityId>(source)?;
            out.push_sql(")");
        }
        out.push_sql(
            ") DELETE FROM duplicate_keys WHERE (kind, scope_id, key, household_id, source_id) \
             IN (SELECT kind, scope_id, key, household_id, source_id FROM w)",
        );
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for DeleteKeys<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use crate::db::sql::Uid;
        use diesel::sql_types::{Array, Text};
        out.push_sql("DELETE FROM duplicate_keys d USING unnest(");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Uid>, Vec<AreaId>>(&self.scopes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.texts)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Uid>, Vec<HouseholdId>>(&self.households)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Uid>, Vec<EntityId>>(&self.sources)?;
        out.push_sql(
            ") AS w(kind, scope_id, key, household_id, source_id) WHERE d.kind = w.kind \
             AND d.scope_id = w.scope_id AND d.key = w.key AND d.household_id = w.household_id \
             AND d.source_id = w.source_id",
        );
        Ok(())
    }
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

/// What `probe` found of the keys a write adds, before it stores them.
#[derive(Default)]
pub(super) struct Found {
    /// The phones that are placeholders.
    pub(super) placeholders: HashSet<(AreaId, String)>,
    /// The phones that more than `MAX_SHARED` households hold already: they become
    /// placeholders.
    pub(super) full_phones: HashSet<(AreaId, String)>,
    /// The head names that more than `MAX_SAME_HEAD` households of a village hold already:
    /// they are compared no further.
    pub(super) full_heads: HashSet<(AreaId, String)>,
    /// The stored holders of the other phones, and of the other head names.
    pub(super) phones: Vec<Holder>,
    pub(super) heads: Vec<Holder>,
}

impl Found {
    /// Whether a phone makes no pairs: a placeholder, or one too many households hold.
    pub(super) fn closed(&self, phone: &(AreaId, String)) -> bool {
        self.placeholders.contains(phone) || self.full_phones.contains(phone)
    }
}

/// Reads, in one statement a chunk, what is stored of these phones and head names (scope,
/// key) before a write stores its own keys of them: which phones are placeholders, and each
/// key's holders, each household once, up to one past its kind's cap (`MAX_SHARED` phones,
/// `MAX_SAME_HEAD` head names). A key with more is full: on SQLite a head name is marked so
/// before any of its rows is read; on PostgreSQL each key's holders are read to one past the
/// cap. Each connection keeps the statements prepared (see `Probe`).
pub(super) fn probe(
    conn: &mut Conn<'_>,
    phones: &[(AreaId, &str)],
    heads: &[(AreaId, &str)],
) -> Result<Found> {
    let mut found = Found::default();
    let all: Vec<ProbeKey> = phones
        .iter()
        .map(|k| (Index::Phone.as_str(), k.0, k.1))
        .chain(heads.iter().map(|k| (Index::Head.as_str(), k.0, k.1)))
        .collect();
    let size = match conn {
        Conn::Sqlite(_) => SQLITE_BATCH,
        Conn::Pg(_) => CHUNK,
    };
    let mut rows: Vec<Probed> = Vec::new();
    for part in all.chunks(size) {
        let q = Probe::new(conn, part);
        rows.extend(with_conn!(conn, |c| q.load::<Probed>(c))?);
    }
    let phone = Index::Phone.as_str();
    // Each key's holders, each household once.
    let mut holders: HashMap<(bool, AreaId, String), Vec<Holder>> = HashMap::new();
    for r in rows {
        let is_phone = r.kind == phone;
        match (r.mark.as_deref(), r.household_id, r.area_id) {
            (Some("placeholder"), _, _) => {
                found.placeholders.insert((r.scope_id, r.key));
            }
            (Some(_), _, _) if is_phone => {
                found.full_phones.insert((r.scope_id, r.key));
            }
            (Some(_), _, _) => {
                found.full_heads.insert((r.scope_id, r.key));
            }
            (None, Some(household_id), Some(area_id)) => {
                let key = (is_phone, r.scope_id, r.key);
                let hs = holders.entry(key.clone()).or_default();
                if !hs.iter().any(|h| h.household_id == household_id) {
                    hs.push(Holder {
                        household_id,
                        scope_id: key.1,
                        key: key.2,
                        area_id,
                    });
                }
            }
            (None, _, _) => {}
        }
    }
    for ((is_phone, scope, key), hs) in holders {
        let (cap, full, out) = match is_phone {
            true => (MAX_SHARED, &mut found.full_phones, &mut found.phones),
            false => (MAX_SAME_HEAD, &mut found.full_heads, &mut found.heads),
        };
        match hs.len() as i64 > cap {
            true => {
                full.insert((scope, key));
            }
            false => out.extend(hs),
        }
    }
    Ok(found)
}

/// A row of `probe`: a holder of a key, or, with no holder, the key's mark (`placeholder`,
/// or `full` on SQLite).
#[derive(QueryableByName)]
struct Probed {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = crate::db::sql::Uid)]
    scope_id: AreaId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<crate::db::sql::Uid>)]
    household_id: Option<HouseholdId>,
    #[diesel(sql_type = diesel::sql_types::Nullable<crate::db::sql::Uid>)]
    area_id: Option<AreaId>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    mark: Option<String>,
}

/// A key probed: its kind, scope and text.
type ProbeKey<'a> = (&'static str, AreaId, &'a str);

/// Keys a statement on SQLite, at most (`probe`, `delete_keys`), each as bound values.
const SQLITE_BATCH: usize = 32;

/// The query of `probe`: on SQLite the keys as bound values, their number rounded up to a
/// power of two by repeating the last (a key probed twice answers the same rows twice), so
/// that each connection keeps six statements prepared; on PostgreSQL as three arrays.
struct Probe<'a> {
    /// SQLite's keys.
    keys: Vec<ProbeKey<'a>>,
    /// PostgreSQL's arrays.
    kinds: Vec<&'static str>,
    scopes: Vec<AreaId>,
    texts: Vec<&'a str>,
}

impl<'a> Probe<'a> {
    fn new(conn: &Conn<'_>, keys: &[ProbeKey<'a>]) -> Self {
        match conn {
            Conn::Sqlite(_) => {
                let mut keys = keys.to_vec();
                if let Some(last) = keys.last().copied() {
                    keys.resize(keys.len().next_power_of_two(), last);
                }
                Probe {
                    keys,
                    kinds: Vec::new(),
                    scopes: Vec::new(),
                    texts: Vec::new(),
                }
            }
            Conn::Pg(_) => Probe {
                keys: Vec::new(),
                kinds: keys.iter().map(|k| k.0).collect(),
                scopes: keys.iter().map(|k| k.1).collect(),
                texts: keys.iter().map(|k| k.2).collect(),
            },
        }
    }
}

const _: () = assert!(
    MAX_SHARED == 5 && MAX_SAME_HEAD == 50,
    "PROBE_SQLITE, PROBE_PG, replace_keys and SHARED_KEYS count MAX_SHARED and MAX_SAME_HEAD"
);

/// `probe` on SQLite, after the bound values: each phone marked a placeholder, or its
/// holders (a phone that is not a placeholder has at most a sixth: it became one then); each
/// head name's holders, or `full` when a 51st household holds it. `CROSS JOIN` keeps SQLite's
/// join order: from the few keys wanted to their holders (left to itself it may read every
/// key of the kind first).
const PROBE_SQLITE: &str = ") \
     SELECT w.kind AS kind, w.scope AS scope_id, w.key AS key, NULL AS household_id, \
     NULL AS area_id, 'placeholder' AS mark FROM w WHERE w.kind = 'phone' AND EXISTS \
     (SELECT 1 FROM duplicate_placeholders p WHERE p.kind = w.kind AND p.key = w.key \
     AND p.scope_id = w.scope) \
     UNION ALL \
     SELECT w.kind, w.scope, w.key, d.household_id, d.village_id, NULL FROM w \
     CROSS JOIN duplicate_keys d ON d.kind = w.kind AND d.scope_id = w.scope AND d.key = w.key \
     WHERE w.kind = 'phone' AND NOT EXISTS (SELECT 1 FROM duplicate_placeholders p \
     WHERE p.kind = w.kind AND p.key = w.key AND p.scope_id = w.scope) \
     UNION ALL \
     SELECT w.kind, w.scope, w.key, d.household_id, d.village_id, NULL FROM w \
     CROSS JOIN duplicate_keys d ON d.kind = w.kind AND d.scope_id = w.scope AND d.key = w.key \
     WHERE w.kind = 'head' AND NOT EXISTS (SELECT 1 FROM duplicate_keys y WHERE y.kind = w.kind \
     AND y.scope_id = w.scope AND y.key = w.key GROUP BY y.household_id LIMIT 1 OFFSET 50) \
     UNION ALL \
     SELECT w.kind, w.scope, w.key, NULL, NULL, 'full' FROM w WHERE w.kind = 'head' \
     AND EXISTS (SELECT 1 FROM duplicate_keys y WHERE y.kind = w.kind AND y.scope_id = w.scope \
     AND y.key = w.key GROUP BY y.household_id LIMIT 1 OFFSET 50)";

/// `probe` on PostgreSQL, after the three bound arrays: each phone's holders to a sixth, each
/// head name's to a 51st.
const PROBE_PG: &str = ") AS u(kind, scope, key)), \
     n AS (SELECT w.kind, w.scope, w.key, p.key IS NOT NULL AS placeholder FROM w \
     LEFT JOIN duplicate_placeholders p ON p.kind = w.kind AND p.key = w.key \
     AND p.scope_id = w.scope) \
     SELECT kind, scope AS scope_id, key, NULL::uuid AS household_id, NULL::uuid AS area_id, \
     'placeholder'::text AS mark FROM n WHERE placeholder \
     UNION ALL \
     SELECT n.kind, n.scope, n.key, d.household_id, d.village_id, NULL::text FROM n \
     CROSS JOIN LATERAL (SELECT DISTINCT y.household_id, y.village_id FROM duplicate_keys y \
     WHERE y.kind = 'phone' AND y.scope_id = n.scope AND y.key = n.key LIMIT 6) d \
     WHERE n.kind = 'phone' AND NOT n.placeholder \
     UNION ALL \
     SELECT n.kind, n.scope, n.key, d.household_id, d.village_id, NULL::text FROM n \
     CROSS JOIN LATERAL (SELECT DISTINCT y.household_id, y.village_id FROM duplicate_keys y \
     WHERE y.kind = 'head' AND y.scope_id = n.scope AND y.key = n.key LIMIT 51) d \
     WHERE n.kind = 'head'";

impl diesel::query_builder::QueryId for Probe<'_> {
    type QueryId = ();
    // Not a static id: the cache key is the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for Probe<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<C> RunQueryDsl<C> for Probe<'_> {}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for Probe<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use crate::db::sql::Uid;
        use diesel::sql_types::Text;
        out.push_sql("WITH w (kind, scope, key) AS NOT MATERIALIZED (VALUES ");
        for (i, (kind, scope, key)) in self.keys.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, &str>(kind)?;
            out.push_sql(", ");
            out.push_bind_param::<Uid, AreaId>(scope)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, &str>(key)?;
            out.push_sql(")");
        }
        out.push_sql(PROBE_SQLITE);
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Probe<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use crate::db::sql::Uid;
        use diesel::sql_types::{Array, Text};
        out.push_sql("WITH w AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Uid>, Vec<AreaId>>(&self.scopes)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, Vec<&str>>(&self.texts)?;
        out.push_sql(PROBE_PG);
        Ok(())
    }
}
