//! The change log that devices pull: one row per write, in commit order. Writers append to
//! it (`insert`, from the flush of the write path); pulls read it here: its head as a
//! snapshot sees it, a page of rows after a position, the batch markers of a device, and
//! the horizon below which rows were pruned.
//!
//! On PostgreSQL log rows carry their writing transaction's id and only rows below the
//! oldest transaction still running in the reader's snapshot are final, so a transaction
//! that commits late can never fall behind a reader. On SQLite writers are serialized and
//! the row id is commit-ordered; the transaction id is 0.

use super::error::Result;
use crate::db::prepared::{fixed_query, fixed_query_with, Condition};
use crate::db::schema::changes;
use crate::db::unnest;
use crate::db::{Backend, Conn};
use crate::domain::{AreaId, DeviceId, EntityId, HouseholdId, Time, UserId};
use crate::with_conn;
use diesel::dsl::Eq;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// A position in the change log: the writing transaction's id (0 on SQLite), then the row's
/// id; positions order as the log is read. Sent in cursors as `[txid, id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "(i64, i64)", into = "(i64, i64)")]
pub struct Position {
    pub txid: i64,
    pub id: i64,
}

impl Position {
    pub const START: Position = Position { txid: 0, id: 0 };
}

impl From<(i64, i64)> for Position {
    fn from((txid, id): (i64, i64)) -> Self {
        Position { txid, id }
    }
}

impl From<Position> for (i64, i64) {
    fn from(p: Position) -> Self {
        (p.txid, p.id)
    }
}

pub struct Change {
    pub entity: &'static str,
    pub entity_id: EntityId,
    pub household_id: Option<HouseholdId>,
    pub area_id: Option<AreaId>,
    pub op: &'static str,
    pub version: i64,
}

/// A change-log row's values.
type Values = (
    Eq<changes::entity, &'static str>,
    Eq<changes::entity_id, EntityId>,
    Eq<changes::household_id, Option<HouseholdId>>,
    Eq<changes::area_id, Option<AreaId>>,
    Eq<changes::op, &'static str>,
    Eq<changes::version, i64>,
    Eq<changes::created_at, Time>,
);

impl Change {
    /// The row to insert, stamped `now`.
    pub fn values(&self, now: Time) -> Values {
        (
            changes::entity.eq(self.entity),
            changes::entity_id.eq(self.entity_id),
            changes::household_id.eq(self.household_id),
            changes::area_id.eq(self.area_id),
            changes::op.eq(self.op),
            changes::version.eq(self.version),
            changes::created_at.eq(now),
        )
    }
}

/// Appends `rows` to the log, stamped `now`, in one statement and in their order (a batch's
/// marker comes last). On PostgreSQL each row also gets its writing transaction's id (the
/// column's default), and the rows go as one array a column (`db::unnest`); on SQLite the autoincrement id is commit-ordered (one
/// writer at a time), and `insert_rows!` keeps its statements prepared.
pub fn insert(conn: &mut Conn<'_>, rows: &[Change], now: Time) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Pg(c) => {
            unnest::into("changes")
                .column(changes::entity, rows.iter().map(|r| r.entity).collect())
                .column(
                    changes::entity_id,
                    rows.iter().map(|r| r.entity_id).collect(),
                )
                .column(
                    changes::household_id,
                    rows.iter().map(|r| r.household_id).collect(),
                )
                .column(changes::area_id, rows.iter().map(|r| r.area_id).collect())
                .column(changes::op, rows.iter().map(|r| r.op).collect())
                .column(changes::version, rows.iter().map(|r| r.version).collect())
                .column(changes::created_at, vec![now; rows.len()])
                .execute(c)?;
        }
        Conn::Sqlite(_) => {
            let values: Vec<_> = rows.iter().map(|r| r.values(now)).collect();
            crate::insert_rows!(conn, changes::table, &values[..])?;
        }
    }
    Ok(())
}

/// One transaction id, as the raw queries below return it.
#[derive(QueryableByName)]
struct Xid {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    x: i64,
}

/// Transaction ids (32-bit, as `pg_stat_activity` shows them) running in other databases of
/// the cluster; none on SQLite. Read before a pull's snapshot is taken, it names for sure the
/// transactions of other databases that the snapshot sees running, even those that end before
/// `head` looks (which `head` alone would have to count, holding the pull back).
pub fn other_databases_xids(conn: &mut Conn<'_>) -> Result<Vec<i64>> {
    Ok(match conn {
        Conn::Pg(c) => fixed_query(
            "SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
             WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()",
        )
        .load::<Xid>(*c)?
        .into_iter()
        .map(|r| r.x)
        .collect(),
        Conn::Sqlite(_) => Vec::new(),
    })
}

/// The head of the log as this snapshot sees it: every row before it is final. `others`:
/// transactions of other databases, from `other_databases_xids`.
pub fn head(conn: &mut Conn<'_>, others: &[i64]) -> Result<Position> {
    match conn {
        Conn::Pg(c) => {
            // The oldest transaction still running in this snapshot, ignoring those known to
            // run in other databases (transaction ids are cluster-wide, but only this
            // database's writers can add to its log): listed in `others`, or listed now. One
            // that started after `others` was read and ended since the snapshot is in neither
            // and so counts: that errs on the safe side. Snapshot ids are 64-bit; the
            // activity view shows their low 32 bits.
            let x: Xid =
                fixed_query_with::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(
                    "SELECT COALESCE(
                    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
                     WHERE (x::text::bigint & 4294967295) <> ALL(",
                    others,
                    ")
                       AND (x::text::bigint & 4294967295) NOT IN (
                           SELECT backend_xid::text::bigint FROM pg_stat_activity
                           WHERE backend_xid IS NOT NULL
                             AND datname IS DISTINCT FROM current_database())),
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint) AS x",
                )
                .get_result(*c)?;
            Ok(Position { txid: x.x, id: 0 })
        }
        Conn::Sqlite(_) => {
            // The writer answers a commit once the WAL is synced, but other connections can
            // read it before: `gocua_durable` makes sure what this pull hands out is on disk
            // (it syncs the WAL if the last sync was before this head).
            let max: i64 = with_conn!(conn, |c| changes::table
                .select(crate::db::writer::gocua_durable(diesel::dsl::sql::<
                    diesel::sql_types::BigInt,
                >(
                    "COALESCE(MAX(id), 0)"
                )))
                .first(c))?;
            // After a prune the table may be empty: the head is never below the horizon.
            let pruned = pruned_below(conn)?.map_or(0, |p| p.id);
            Ok(Position {
                txid: 0,
                id: max.max(pruned),
            })
        }
    }
}

/// Transactions at or above this id may still be running, at a log head read by `head`
/// (PostgreSQL); none on SQLite.
pub fn running_from(conn: &Conn<'_>, head: Position) -> i64 {
    match conn.backend() {
        Backend::Postgres => head.txid,
        Backend::Sqlite => i64::MAX,
    }
}

/// The log position up to which rows were pruned, if any.
pub fn pruned_below(conn: &mut Conn<'_>) -> Result<Option<Position>> {
    use crate::db::schema::sync_horizon;
    Ok(with_conn!(conn, |c| sync_horizon::table
        .select((sync_horizon::txid, sync_horizon::change_id))
        .first::<(i64, i64)>(c)
        .optional())?
    .map(Position::from))
}

/// A device's owner, if it is registered, and the log's pruning horizon.
pub struct DeviceAndHorizon {
    pub owner: Option<UserId>,
    pub pruned_below: Option<Position>,
}

/// The owner of a device and `pruned_below`, in one statement.
pub fn device_and_horizon(conn: &mut Conn<'_>, device: DeviceId) -> Result<DeviceAndHorizon> {
    use crate::db::schema::{devices, sync_horizon};
    let (owner, txid, id) = with_conn!(conn, |c| diesel::select((
        devices::table
            .find(device)
            .select(devices::user_id)
            .single_value(),
        sync_horizon::table
            .select(sync_horizon::txid)
            .single_value(),
        sync_horizon::table
            .select(sync_horizon::change_id)
            .single_value(),
    ))
    .get_result::<(Option<UserId>, Option<i64>, Option<i64>)>(c))?;
    Ok(DeviceAndHorizon {
        owner,
        pruned_below: txid.zip(id).map(Position::from),
    })
}

/// What `prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub rows: i64,
    /// Whole weeks dropped (PostgreSQL; `weeks`).
    pub weeks: usize,
}

/// Prunes the log of what was written before `before` by transactions that have all ended,
/// and moves the horizon up: pulls from a cursor below it start over with a snapshot. On
/// PostgreSQL whole weeks go, those that ended before `before` (`weeks::drop_ended`); on
/// SQLite, rows. Call inside a transaction.
pub fn prune(conn: &mut Conn<'_>, before: Time) -> Result<Pruned> {
    use crate::db::schema::sync_horizon;
    let now = head(conn, &[])?;
    let limit = running_from(conn, now);
    let (pruned, last) = match conn.backend() {
        Backend::Postgres => {
            super::weeks::prepare(conn)?;
            let dropped = super::weeks::drop_ended(conn, before, limit)?;
            let pruned = Pruned {
                rows: dropped.rows,
                weeks: dropped.weeks,
            };
            (pruned, dropped.last.map(Position::from))
        }
        Backend::Sqlite => {
            let last: Option<(i64, i64)> = with_conn!(conn, |c| changes::table
                .filter(changes::created_at.lt(before))
                .filter(changes::txid.lt(limit))
                .select((changes::txid, changes::id))
                .order((changes::txid.desc(), changes::id.desc()))
                .first(c)
                .optional())?;
            let last = last.map(Position::from);
            let rows = match last {
                None => 0,
                Some(last) => with_conn!(conn, |c| diesel::delete(
                    changes::table.filter(
                        changes::txid
                            .lt(last.txid)
                            .or(changes::txid.eq(last.txid).and(changes::id.le(last.id)))
                    )
                )
                .execute(c))?,
            };
            let pruned = Pruned {
                rows: rows as i64,
                weeks: 0,
            };
            (pruned, last)
        }
    };
    let Some(last) = last else {
        return Ok(pruned);
    };
    let horizon = pruned_below(conn)?.unwrap_or(Position::START).max(last);
    with_conn!(conn, |c| {
        diesel::delete(sync_horizon::table).execute(c)?;
        diesel::insert_into(sync_horizon::table)
            .values((
                sync_horizon::id.eq(1),
                sync_horizon::txid.eq(horizon.txid),
                sync_horizon::change_id.eq(horizon.id),
                sync_horizon::pruned_at.eq(Time::now()),
            ))
            .execute(c)
    })?;
    Ok(pruned)
}

/// The highest seq of `device` whose batch marker lies at or before `end`, written by a
/// transaction below `below_txid`.
pub fn last_seq_at(
    conn: &mut Conn<'_>,
    device: DeviceId,
    end: Position,
    below_txid: i64,
) -> Result<i64> {
    let dev = EntityId(device.0);
    let v: Option<i64> = with_conn!(conn, |c| changes::table
        // A literal, so that SQLite keeps the statement prepared (see
        // `conflicts::entities_with_open`): the partial index `changes_device`.
        .filter(Condition("changes.entity = 'device'"))
        .filter(changes::entity_id.eq(dev))
        .filter(
            changes::txid
                .lt(end.txid)
                .or(changes::txid.eq(end.txid).and(changes::id.le(end.id)))
        )
        .filter(changes::txid.lt(below_txid))
        .select(diesel::dsl::max(changes::version))
        .first(c))?;
    Ok(v.unwrap_or(0))
}

/// A row of the log as a pull reads it.
pub struct Entry {
    pub at: Position,
    pub entity: String,
    pub entity_id: EntityId,
}

/// What a page of the log covers: the rows after `after` written by transactions below
/// `below_txid`, in the areas `areas` (all when `None`), and the batch markers of `device`.
pub struct PageOf<'a> {
    pub after: Position,
    pub below_txid: i64,
    pub areas: Option<&'a [AreaId]>,
    pub device: DeviceId,
}

/// Scopes of at most this many areas read the log area by area on PostgreSQL
/// (`area_by_area`).
const AREA_BY_AREA: usize = 32;

/// Up to `limit` rows of the log, in log order.
pub fn page(conn: &mut Conn<'_>, of: &PageOf<'_>, limit: i64) -> Result<Vec<Entry>> {
    let rows = match (conn.backend(), of.areas) {
        (Backend::Postgres, Some(areas)) if areas.len() <= AREA_BY_AREA => {
            area_by_area(conn, of, areas, limit)?
        }
        _ => in_one_statement(conn, of, limit)?,
    };
    Ok(rows
        .into_iter()
        .map(|(txid, id, entity, entity_id)| Entry {
            at: Position { txid, id },
            entity,
            entity_id,
        })
        .collect())
}

/// A log row as `page` reads it: txid, id, entity, entity id.
type PageRow = (i64, i64, String, EntityId);

/// `page` in one statement: on SQLite, and for the larger scopes on PostgreSQL.
fn in_one_statement(conn: &mut Conn<'_>, of: &PageOf<'_>, limit: i64) -> Result<Vec<PageRow>> {
    let (pos, dev) = (of.after, EntityId(of.device.0));
    let sqlite = conn.backend() == Backend::Sqlite;
    Ok(with_conn!(conn, |c| {
        let mut q = changes::table.into_boxed();
        q = if sqlite {
            // Every row has txid 0 and ids in commit order: the rowid order, with no
            // index of its own (see the migration `changes_by_rowid`).
            q.filter(changes::id.gt(pos.id)).order(changes::id)
        } else {
            // `txid >= pos.txid` again, alone: a bound the index `changes_area` (by
            // area, then txid) can seek to.
            q.filter(
                changes::txid
                    .gt(pos.txid)
                    .or(changes::txid.eq(pos.txid).and(changes::id.gt(pos.id))),
            )
            .filter(changes::txid.ge(pos.txid))
            .filter(changes::txid.lt(of.below_txid))
            .order((changes::txid, changes::id))
        };
        q = match of.areas {
            Some(ids) => q.filter(
                changes::area_id
                    .eq_any(ids)
                    .or(changes::entity.eq("device").and(changes::entity_id.eq(dev))),
            ),
            None => q.filter(changes::entity.ne("device").or(changes::entity_id.eq(dev))),
        };
        q.select((
            changes::txid,
            changes::id,
            changes::entity,
            changes::entity_id,
        ))
        .limit(limit)
        .load(c)
    })?)
}

/// `page` for a scope of a few areas (a canvasser's villages), on PostgreSQL: each area's
/// rows after the position, read alone from the index `changes_area` (area, then txid), and
/// the device's batch markers from `changes_device`, merged in log order. One statement for
/// all the areas (`page`'s other branch) is kept prepared with a plan made for no areas in
/// particular, which reads the log in txid order and skips the rows of other areas: every
/// row the whole country wrote since the device's last pull, for each page.
fn area_by_area(
    conn: &mut Conn<'_>,
    of: &PageOf<'_>,
    areas: &[AreaId],
    limit: i64,
) -> Result<Vec<PageRow>> {
    let Conn::Pg(c) = conn else {
        unreachable!("PostgreSQL only")
    };
    let markers = changes::table
        .into_boxed()
        // A literal, that the plan kept for every device can use the partial index.
        .filter(Condition("changes.entity = 'device'"))
        .filter(changes::entity_id.eq(EntityId(of.device.0)));
    let mut rows = read_after(c, markers, of, limit)?;
    for area in areas {
        let q = changes::table
            .into_boxed()
            .filter(changes::area_id.eq(*area));
        rows.extend(read_after(c, q, of, limit)?);
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1));
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(rows)
}

/// Up to `limit` of `q`'s rows after the page's position and below its running
/// transactions, in log order (`area_by_area`).
fn read_after(
    c: &mut diesel::PgConnection,
    q: changes::BoxedQuery<'_, diesel::pg::Pg>,
    of: &PageOf<'_>,
    limit: i64,
) -> QueryResult<Vec<PageRow>> {
    let pos = of.after;
    q.filter(
        changes::txid
            .gt(pos.txid)
            .or(changes::txid.eq(pos.txid).and(changes::id.gt(pos.id))),
    )
    .filter(changes::txid.ge(pos.txid))
    .filter(changes::txid.lt(of.below_txid))
    .order((changes::txid, changes::id))
    .select((
        changes::txid,
        changes::id,
        changes::entity,
        changes::entity_id,
    ))
    .limit(limit)
    .load(c)
}
