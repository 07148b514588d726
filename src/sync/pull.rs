//! `GET /sync/pull`: what changed in the caller's areas since a cursor, never skipping a
//! change.
//!
//! A pull starts with a snapshot of the current state of the caller's scope (paged by
//! household), taken after noting the head of the change log; then it follows the log from
//! that head. On PostgreSQL log rows carry their writing transaction's id and only rows below
//! the oldest transaction still running in the reader's snapshot are served, so a
//! transaction that commits late can never fall behind a cursor. On SQLite writers are
//! serialized and the log id is commit-ordered.

use crate::db::prepared::{fixed_query, fixed_query_with, Condition};
use crate::db::schema::changes;
use crate::db::{Backend, Conn};
use crate::domain::{AreaId, DeviceId, EntityId, HouseholdId, MemberId, VisitId};
use crate::error::{ApiError, ApiResult};
use crate::store::areas;
use crate::store::areas::Area;
use crate::store::campaigns::{self, Campaign, Target};
use crate::store::households::{bulk, Adoption, Household, Member, Visit};
use crate::store::scope::{self, Principal};
use crate::with_conn;
use base64::Engine;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 500;
pub const MAX_LIMIT: i64 = 2000;

/// A position in the change log: (transaction id, row id); the transaction id is 0 on SQLite.
type Pos = (i64, i64);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "p")]
enum Phase {
    /// Downloading current state, households after `after`; the log continues from `pos`.
    #[serde(rename = "s")]
    Snapshot {
        pos: Pos,
        after: Option<HouseholdId>,
    },
    /// Following the log after `pos`.
    #[serde(rename = "l")]
    Log { pos: Pos },
}

impl Phase {
    fn pos(&self) -> Pos {
        match self {
            Phase::Snapshot { pos, .. } | Phase::Log { pos } => *pos,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    v: u8,
    /// Signature of the scope the cursor was made for.
    s: String,
    #[serde(flatten)]
    phase: Phase,
}

impl Cursor {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> ApiResult<Cursor> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
            .filter(|c| c.v == 1)
            .ok_or_else(|| {
                ApiError::bad_request("bad_cursor", "the cursor is not one this server gave out")
            })
    }
}

/// One entity's whole current state (`data`), or its deletion.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChangeOut {
    /// `household`, `member`, `adoption` or `visit`.
    pub entity: &'static str,
    /// The entity's id; for an adoption, the member's id (`data.campaign_id` tells which).
    pub id: Uuid,
    pub household_id: Option<HouseholdId>,
    /// `upsert` or `delete`.
    pub op: &'static str,
    /// Household unit version of the entity's last write (visits: 1).
    pub version: i64,
    /// The entity's fields (null for a delete).
    #[schema(value_type = Object)]
    pub data: Value,
}

/// What a device needs besides households: its areas (none for an admin, whose scope is the
/// whole country), the campaigns and their targets in its areas.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reference {
    pub areas: Vec<Area>,
    pub campaigns: Vec<Campaign>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PullResponse {
    pub changes: Vec<ChangeOut>,
    /// Opaque; send it back as `cursor`.
    pub cursor: String,
    /// More is waiting: pull again at once.
    pub has_more: bool,
    /// This device's last consumed seq whose effects are all in this pull or earlier ones
    /// (0 while a snapshot is still downloading).
    pub last_seq: i64,
    /// Drop the local copy of the scope and rebuild it from this pull on.
    pub reset: bool,
    /// Sent with the first and the last page of a round.
    pub reference: Option<Reference>,
}

fn scope_signature(who: &Principal, last_move: Option<crate::domain::Time>) -> String {
    let mut h = Sha256::new();
    h.update(who.role.as_str());
    for p in &who.area_paths {
        h.update(b"|");
        h.update(p.as_bytes());
    }
    if let Some(t) = last_move {
        h.update(b"@");
        h.update(t.0.to_rfc3339().as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// One transaction id, as the raw queries below return it.
#[derive(QueryableByName)]
struct X {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    x: i64,
}

/// Transaction ids (32-bit, as `pg_stat_activity` shows them) running in other databases of
/// the cluster; none on SQLite. Read before a pull's snapshot is taken, it names for sure the
/// transactions of other databases that the snapshot sees running, even those that end before
/// `head` looks (which `head` alone would have to count, holding the pull back).
pub fn other_databases_xids(conn: &mut Conn<'_>) -> ApiResult<Vec<i64>> {
    Ok(match conn {
        Conn::Pg(c) => fixed_query(
            "SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
             WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()",
        )
        .load::<X>(*c)?
        .into_iter()
        .map(|r| r.x)
        .collect(),
        Conn::Sqlite(_) => Vec::new(),
    })
}

/// The head of the log as this snapshot sees it: every row before it is final. `others`:
/// transactions of other databases, from `other_databases_xids`.
fn head(conn: &mut Conn<'_>, others: &[i64]) -> ApiResult<Pos> {
    match conn {
        Conn::Pg(c) => {
            // The oldest transaction still running in this snapshot, ignoring those known to
            // run in other databases (transaction ids are cluster-wide, but only this
            // database's writers can add to its log): listed in `others`, or listed now. One
            // that started after `others` was read and ended since the snapshot is in neither
            // and so counts: that errs on the safe side. Snapshot ids are 64-bit; the
            // activity view shows their low 32 bits.
            let x: X = fixed_query_with::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(
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
            Ok((x.x, 0))
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
            let pruned = pruned_below(conn)?.map_or(0, |p| p.1);
            Ok((0, max.max(pruned)))
        }
    }
}

/// The log position up to which rows were pruned, if any.
fn pruned_below(conn: &mut Conn<'_>) -> ApiResult<Option<Pos>> {
    use crate::db::schema::sync_horizon;
    Ok(with_conn!(conn, |c| sync_horizon::table
        .select((sync_horizon::txid, sync_horizon::change_id))
        .first::<Pos>(c)
        .optional())?)
}

/// The owner of a device, if it is registered, and `pruned_below`, in one statement.
fn owner_and_horizon(
    conn: &mut Conn<'_>,
    device: DeviceId,
) -> ApiResult<(Option<crate::domain::UserId>, Option<Pos>)> {
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
    .get_result::<(Option<crate::domain::UserId>, Option<i64>, Option<i64>)>(c))?;
    Ok((owner, txid.zip(id)))
}

/// Deletes log rows written before `before` by transactions that have all ended, and moves
/// the horizon up: pulls from a cursor below it start over with a snapshot. Call
/// inside a transaction. Returns the number of rows deleted.
pub fn prune(conn: &mut Conn<'_>, before: crate::domain::Time) -> ApiResult<usize> {
    use crate::db::schema::sync_horizon;
    let now = head(conn, &[])?;
    let limit = horizon(conn, now);
    let last: Option<Pos> = with_conn!(conn, |c| changes::table
        .filter(changes::created_at.lt(before))
        .filter(changes::txid.lt(limit))
        .select((changes::txid, changes::id))
        .order((changes::txid.desc(), changes::id.desc()))
        .first(c)
        .optional())?;
    let Some(last) = last else { return Ok(0) };
    let deleted = with_conn!(conn, |c| diesel::delete(
        changes::table.filter(
            changes::txid
                .lt(last.0)
                .or(changes::txid.eq(last.0).and(changes::id.le(last.1)))
        )
    )
    .execute(c))?;
    let horizon = pruned_below(conn)?.unwrap_or((0, 0)).max(last);
    with_conn!(conn, |c| {
        diesel::delete(sync_horizon::table).execute(c)?;
        diesel::insert_into(sync_horizon::table)
            .values((
                sync_horizon::id.eq(1),
                sync_horizon::txid.eq(horizon.0),
                sync_horizon::change_id.eq(horizon.1),
                sync_horizon::pruned_at.eq(crate::domain::Time::now()),
            ))
            .execute(c)
    })?;
    Ok(deleted)
}

/// Transactions at or above this id may still be running (PostgreSQL); none on SQLite.
fn horizon(conn: &mut Conn<'_>, head: Pos) -> i64 {
    match conn.backend() {
        Backend::Postgres => head.0,
        Backend::Sqlite => i64::MAX,
    }
}

/// The highest seq of `device` whose batch marker lies at or before `end`.
fn last_seq_at(conn: &mut Conn<'_>, device: DeviceId, end: Pos, below_txid: i64) -> ApiResult<i64> {
    let dev = EntityId(device.0);
    let v: Option<i64> = with_conn!(conn, |c| changes::table
        // A literal, so that SQLite keeps the statement prepared (see
        // `conflicts::entities_with_open`): the partial index `changes_device`.
        .filter(Condition("changes.entity = 'device'"))
        .filter(changes::entity_id.eq(dev))
        .filter(
            changes::txid
                .lt(end.0)
                .or(changes::txid.eq(end.0).and(changes::id.le(end.1)))
        )
        .filter(changes::txid.lt(below_txid))
        .select(diesel::dsl::max(changes::version))
        .first(c))?;
    Ok(v.unwrap_or(0))
}

pub struct PullRequest {
    pub device: DeviceId,
    pub cursor: Option<String>,
    pub limit: i64,
    /// From `other_databases_xids`, read before the pull's transaction.
    pub other_xids: Vec<i64>,
}

/// A whole pull for the caller of an access token: the transactions of other databases are
/// read first, then everything else in one read snapshot (the order the no-skip rule needs;
/// see `other_databases_xids`).
pub fn pull_for(
    conn: &mut Conn<'_>,
    claims: &crate::auth::Claims,
    device: DeviceId,
    cursor: Option<String>,
    limit: i64,
) -> ApiResult<PullResponse> {
    let req = PullRequest {
        device,
        cursor,
        limit,
        other_xids: other_databases_xids(conn)?,
    };
    conn.read_transaction(|conn| {
        let who = Principal::load(conn, claims)?;
        pull(conn, &who, &req)
    })
}

/// Runs one pull; call it inside `Conn::read_transaction` so that all reads share a snapshot.
pub fn pull(conn: &mut Conn<'_>, who: &Principal, req: &PullRequest) -> ApiResult<PullResponse> {
    let (owner, pruned) = owner_and_horizon(conn, req.device)?;
    if let Some(owner) = owner {
        if owner != who.user_id {
            return Err(
                ApiError::forbidden("this device id is registered to another user")
                    .with_code("device_not_yours"),
            );
        }
    }
    if conn.backend() == Backend::Sqlite {
        // Every page, snapshot pages included, hands out only what is on disk: the head of
        // the log this snapshot sees is made durable (see `head`), and with it every commit
        // the snapshot sees.
        head(conn, &[])?;
    }
    // A village moved into or out of the caller's areas changes what they hold: start over.
    let signature = scope_signature(who, scope::last_move(conn, who)?);
    let cursor = req.cursor.as_deref().map(Cursor::decode).transpose()?;
    let behind = |p: Pos| pruned.is_some_and(|h| p < h);
    let (phase, reset) = match cursor {
        Some(c) if c.s == signature && !behind(c.phase.pos()) => (c.phase, false),
        // No cursor, the caller's areas changed, or the log was pruned past the cursor:
        // start over from a snapshot.
        _ => (
            Phase::Snapshot {
                pos: head(conn, &req.other_xids)?,
                after: None,
            },
            true,
        ),
    };
    let area_ids: Option<Vec<AreaId>> = match who.prefixes() {
        Some(p) => Some(scope::area_ids_under(conn, p)?),
        None => None,
    };
    let in_scope = |a: &AreaId| {
        area_ids
            .as_ref()
            .is_none_or(|ids| ids.binary_search(a).is_ok())
    };
    let (changes, next, has_more, last_seq) = match phase {
        Phase::Snapshot { pos, after } => {
            let hs = bulk::live_households_after(conn, area_ids.as_deref(), after, req.limit)?;
            let done = (hs.len() as i64) < req.limit;
            let next_after = hs.last().map(|h| h.id).or(after);
            let changes = unit_states(conn, hs)?;
            if done {
                // Every batch committed before `pos` is reflected in the pages just sent.
                let seq = last_seq_at(conn, req.device, pos, i64::MAX)?;
                (changes, Phase::Log { pos }, true, seq)
            } else {
                (
                    changes,
                    Phase::Snapshot {
                        pos,
                        after: next_after,
                    },
                    true,
                    0,
                )
            }
        }
        Phase::Log { pos } => {
            let now = head(conn, &req.other_xids)?;
            let below = horizon(conn, now);
            let dev = EntityId(req.device.0);
            let sqlite = conn.backend() == Backend::Sqlite;
            let rows: Vec<(i64, i64, String, EntityId, Option<AreaId>)> = with_conn!(conn, |c| {
                let mut q = changes::table.into_boxed();
                q = if sqlite {
                    // Every row has txid 0 and ids in commit order: the rowid order, with no
                    // index of its own (see the migration `changes_by_rowid`).
                    q.filter(changes::id.gt(pos.1)).order(changes::id)
                } else {
                    // `txid >= pos.0` again, alone: a bound the index `changes_area` (by
                    // area, then txid) can seek to.
                    q.filter(
                        changes::txid
                            .gt(pos.0)
                            .or(changes::txid.eq(pos.0).and(changes::id.gt(pos.1))),
                    )
                    .filter(changes::txid.ge(pos.0))
                    .filter(changes::txid.lt(below))
                    .order((changes::txid, changes::id))
                };
                q = match &area_ids {
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
                    changes::area_id,
                ))
                .limit(req.limit + 1)
                .load(c)
            })?;
            let has_more = rows.len() as i64 > req.limit;
            let rows = &rows[..rows.len().min(req.limit as usize)];
            let end = match (has_more, rows.last()) {
                (true, Some(r)) => (r.0, r.1),
                _ => pos.max(match conn.backend() {
                    Backend::Postgres => (now.0, 0),
                    Backend::Sqlite => now,
                }),
            };
            let seq = last_seq_at(conn, req.device, end, below)?;
            let touched: Vec<(String, EntityId)> = rows
                .iter()
                .filter(|r| r.2 != "device")
                .map(|r| (r.2.clone(), r.3))
                .collect();
            let changes = current_states(conn, &touched, &in_scope)?;
            (changes, Phase::Log { pos: end }, has_more, seq)
        }
    };
    let reference = if reset || !has_more {
        Some(reference(conn, who, area_ids.as_deref())?)
    } else {
        None
    };
    let cursor = Cursor {
        v: 1,
        s: signature,
        phase: next,
    }
    .encode();
    Ok(PullResponse {
        changes,
        cursor,
        has_more,
        last_seq,
        reset,
        reference,
    })
}

fn household_data(h: &Household) -> Value {
    json!({"area_id": h.area_id, "address": h.address, "head_name": h.head_name, "phone": h.phone,
        "lat": h.lat, "lon": h.lon, "notes": h.notes, "anonymized_at": h.anonymized_at})
}

fn member_data(m: &Member) -> Value {
    json!({"household_id": m.household_id, "full_name": m.full_name, "birth_year": m.birth_year, "sex": m.sex,
        "phone": m.phone, "smartphone": m.smartphone, "priority": m.priority, "notes": m.notes,
        "birth_decade": m.birth_decade, "anonymized_at": m.anonymized_at})
}

fn adoption_data(a: &Adoption) -> Value {
    json!({"member_id": a.member_id, "campaign_id": a.campaign_id, "status": a.status})
}

fn visit_data(v: &Visit) -> Value {
    json!({"household_id": v.household_id, "campaign_id": v.campaign_id, "canvasser_id": v.canvasser_id,
        "visited_at": v.visited_at, "outcome": v.outcome, "notes": v.notes, "lat": v.lat, "lon": v.lon})
}

fn upsert(
    entity: &'static str,
    id: Uuid,
    household: HouseholdId,
    version: i64,
    data: Value,
) -> ChangeOut {
    ChangeOut {
        entity,
        id,
        household_id: Some(household),
        op: "upsert",
        version,
        data,
    }
}

fn delete(
    entity: &'static str,
    id: Uuid,
    household: Option<HouseholdId>,
    version: i64,
) -> ChangeOut {
    ChangeOut {
        entity,
        id,
        household_id: household,
        op: "delete",
        version,
        data: Value::Null,
    }
}

/// Whole units (household, live members, their adoptions, visits) for a snapshot page.
fn unit_states(conn: &mut Conn<'_>, hs: Vec<Household>) -> ApiResult<Vec<ChangeOut>> {
    let ids: Vec<HouseholdId> = hs.iter().map(|h| h.id).collect();
    let ms = bulk::members_of(conn, &ids)?;
    let mids: Vec<MemberId> = ms.iter().map(|m| m.id).collect();
    let ads = bulk::adoptions_of_members(conn, &mids)?;
    let vs = bulk::visits_of(conn, &ids)?;
    let mut out = Vec::with_capacity(hs.len() + ms.len() + ads.len() + vs.len());
    for h in &hs {
        out.push(upsert(
            "household",
            h.id.0,
            h.id,
            h.version,
            household_data(h),
        ));
    }
    for m in &ms {
        out.push(upsert(
            "member",
            m.id.0,
            m.household_id,
            m.version,
            member_data(m),
        ));
    }
    for a in &ads {
        out.push(upsert(
            "adoption",
            a.member_id.0,
            a.household_id,
            a.version,
            adoption_data(a),
        ));
    }
    for v in &vs {
        out.push(upsert("visit", v.id.0, v.household_id, 1, visit_data(v)));
    }
    Ok(out)
}

/// The current state of each touched entity, once, in first-touched order: an upsert if it
/// is live and in scope, else a delete.
fn current_states(
    conn: &mut Conn<'_>,
    touched: &[(String, EntityId)],
    in_scope: &dyn Fn(&AreaId) -> bool,
) -> ApiResult<Vec<ChangeOut>> {
    let mut seen = HashSet::new();
    let touched: Vec<&(String, EntityId)> = touched
        .iter()
        .filter(|t| seen.insert((*t).clone()))
        .collect();
    let ids = |kind: &str| -> Vec<Uuid> {
        touched
            .iter()
            .filter(|t| t.0 == kind)
            .map(|t| t.1 .0)
            .collect()
    };
    let member_ids: Vec<MemberId> = ids("member")
        .into_iter()
        .chain(ids("adoption"))
        .map(MemberId)
        .collect();
    let members: HashMap<MemberId, Member> = bulk::members(conn, &member_ids)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let visits: HashMap<VisitId, Visit> = bulk::visits(
        conn,
        &ids("visit").into_iter().map(VisitId).collect::<Vec<_>>(),
    )?
    .into_iter()
    .map(|v| (v.id, v))
    .collect();
    let mut household_ids: Vec<HouseholdId> =
        ids("household").into_iter().map(HouseholdId).collect();
    household_ids.extend(members.values().map(|m| m.household_id));
    household_ids.extend(visits.values().map(|v| v.household_id));
    let households: HashMap<HouseholdId, Household> = bulk::households(conn, &household_ids)?
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    let adoption_members: Vec<MemberId> = ids("adoption").into_iter().map(MemberId).collect();
    let adoptions = bulk::adoptions_of_members(conn, &adoption_members)?;
    let visible = |h: &HouseholdId| {
        households
            .get(h)
            .filter(|h| h.deleted_at.is_none() && in_scope(&h.area_id))
    };

    let mut out = Vec::new();
    for (kind, id) in touched {
        match kind.as_str() {
            "household" => match households.get(&HouseholdId(id.0)) {
                Some(h) if visible(&h.id).is_some() => out.push(upsert(
                    "household",
                    h.id.0,
                    h.id,
                    h.version,
                    household_data(h),
                )),
                h => out.push(delete(
                    "household",
                    id.0,
                    Some(HouseholdId(id.0)),
                    h.map_or(0, |h| h.version),
                )),
            },
            "member" => match members.get(&MemberId(id.0)) {
                Some(m) if m.deleted_at.is_none() && visible(&m.household_id).is_some() => out
                    .push(upsert(
                        "member",
                        m.id.0,
                        m.household_id,
                        m.version,
                        member_data(m),
                    )),
                m => out.push(delete(
                    "member",
                    id.0,
                    m.map(|m| m.household_id),
                    m.map_or(0, |m| m.version),
                )),
            },
            "adoption" => {
                let live = members
                    .get(&MemberId(id.0))
                    .filter(|m| m.deleted_at.is_none() && visible(&m.household_id).is_some());
                if live.is_some() {
                    for a in adoptions.iter().filter(|a| a.member_id.0 == id.0) {
                        out.push(upsert(
                            "adoption",
                            a.member_id.0,
                            a.household_id,
                            a.version,
                            adoption_data(a),
                        ));
                    }
                }
            }
            "visit" => match visits.get(&VisitId(id.0)) {
                Some(v) if visible(&v.household_id).is_some() => {
                    out.push(upsert("visit", v.id.0, v.household_id, 1, visit_data(v)))
                }
                v => out.push(delete("visit", id.0, v.map(|v| v.household_id), 1)),
            },
            _ => {}
        }
    }
    Ok(out)
}

fn reference(
    conn: &mut Conn<'_>,
    who: &Principal,
    area_ids: Option<&[AreaId]>,
) -> ApiResult<Reference> {
    let areas: Vec<Area> = match area_ids {
        Some(ids) => areas::by_ids(conn, ids)?,
        None => Vec::new(),
    };
    let campaigns: Vec<Campaign> = campaigns::list(conn)?;
    let mut targets = Vec::new();
    for c in &campaigns {
        targets.extend(campaigns::targets(conn, c.id, who.prefixes())?);
    }
    Ok(Reference {
        areas,
        campaigns,
        targets,
    })
}
