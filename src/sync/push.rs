//! `POST /sync/push`: each (device, seq) takes effect exactly once, in order, and a replay
//! answers the stored result.

use crate::db::Conn;
use crate::domain::fields::{self, Mode, Patch, ADOPTION, HOUSEHOLD, MEMBER, VISIT};
use crate::domain::hlc::Hlc;
use crate::domain::merge::Writer;
use crate::domain::{
    AreaId, CampaignId, ConflictId, DeviceId, EntityId, HouseholdId, MemberId, VisitId,
};
use crate::error::{ApiError, ApiResult, Kind};
use crate::store::changes::{self, Change};
use crate::store::conflicts::{self, Origin};
use crate::store::devices;
use crate::store::households::{AdoptionPrecondition, Written};
use crate::store::scope::Principal;
use crate::store::work::{NewHousehold, NewMember, Work};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use uuid::Uuid;

pub const OP_TYPES: &[&str] = &[
    "household.upsert",
    "household.delete",
    "member.upsert",
    "member.delete",
    "adoption.set",
    "visit.record",
];

/// One queued operation, as a device sends it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Op {
    /// 1, 2, 3… per device, never reused.
    #[serde(deserialize_with = "integer")]
    #[schema(minimum = 1)]
    pub seq: i64,
    /// Client-generated id of this operation.
    pub op_id: Uuid,
    /// `household.upsert`, `household.delete`, `member.upsert`, `member.delete`,
    /// `adoption.set` or `visit.record`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The household's, the member's (also for `adoption.set`) or the visit's id.
    pub entity_id: Uuid,
    #[serde(default)]
    pub household_id: Option<Uuid>,
    /// The household version the device had seen when it made the edit; 0, null or absent:
    /// none.
    #[serde(default, deserialize_with = "null_as_zero")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub base_version: i64,
    /// The device's hybrid logical clock, e.g. `2020-08-21T03:04:05.123Z-0001`.
    pub hlc: String,
    /// Changed fields (upserts), `{campaign_id, status}` (adoption.set) or the visit.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// A JSON integer, `7.0` included (see `fields::integer`).
fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    fields::integer(&n).ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer")))
}

/// A client that has never seen the household may send `null`: the same as 0.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(0),
        Some(n) => fields::integer(&n)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpError {
    pub code: String,
    pub message: String,
    /// For validation failures: one entry per bad field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<OpFieldError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpFieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpResult {
    pub seq: i64,
    pub op_id: Option<Uuid>,
    /// `applied`, `merged`, `rejected` or `gap`.
    pub status: String,
    pub household_version: Option<i64>,
    pub conflict_ids: Vec<ConflictId>,
    pub error: Option<OpError>,
}

impl OpResult {
    fn new(seq: i64, op_id: Option<Uuid>, status: &str) -> Self {
        OpResult {
            seq,
            op_id,
            status: status.into(),
            household_version: None,
            conflict_ids: Vec::new(),
            error: None,
        }
    }

    fn rejected(seq: i64, op_id: Option<Uuid>, code: &str, message: impl Into<String>) -> Self {
        OpResult {
            error: Some(OpError {
                code: code.into(),
                message: message.into(),
                fields: Vec::new(),
            }),
            ..Self::new(seq, op_id, "rejected")
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushResponse {
    pub results: Vec<OpResult>,
    /// The last seq of this device that the server has consumed.
    pub last_seq: i64,
}

/// Runs a batch (`attempt`: one transaction), trying it again after a deadlock or a busy
/// database, up to four more times with a growing pause; other errors are final.
pub async fn with_retries<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && tries < 4 => {
                tries += 1;
                tracing::warn!(attempt = tries, error = ?e, "retrying a sync batch");
                tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
            }
            r => return r,
        }
    }
}

/// A batch whose envelope is sound: every op has a positive integer `seq`. Each op is also
/// parsed and hashed here, before the batch waits for the database, and what needs no
/// database is worked out: its HLC, and the values a create would write (`New`).
pub struct Batch {
    pub device: DeviceId,
    pub ops: Vec<BatchOp>,
}

pub struct BatchOp {
    pub seq: i64,
    pub op_id: Option<Uuid>,
    /// SHA-256 of the op as sent, its first 128 bits in hex (serde_json's maps keep keys
    /// sorted, so equal ops hash alike): a replay must match it.
    pub hash: String,
    /// The op, or why it cannot be one (it is then rejected as `invalid_op`).
    pub op: Result<Op, String>,
    /// Its HLC clamped to the receive time, with the skew clamped off (ms), or why it is no
    /// HLC.
    hlc: Result<(Hlc, i64), String>,
    /// What a create of its household or member would write (for upserts).
    new: New,
}

/// The values a household or member upsert writes if its record does not exist yet (and a
/// household's update patch), worked out with the op, before the batch waits for the
/// database (on SQLite, for the one writer).
enum New {
    None,
    /// A household's create values, and its update patch (if it exists by then).
    Household(ApiResult<NewHousehold>, ApiResult<Patch>),
    Member(ApiResult<NewMember>),
}

impl New {
    fn of(op: &Op) -> New {
        match op.kind.as_str() {
            "household.upsert" => New::Household(
                patch(&HOUSEHOLD, &op.data, Mode::Create).and_then(|p| NewHousehold::new(&p)),
                patch(&HOUSEHOLD, &op.data, Mode::Update),
            ),
            "member.upsert" => New::Member((|| {
                let mut data = Cow::Borrowed(&op.data);
                if !data.contains_key("household_id") {
                    let household = require_household_id(op)?.to_string();
                    data.to_mut()
                        .insert("household_id".into(), Value::String(household));
                }
                NewMember::new(&patch(&MEMBER, &data, Mode::Create)?)
            })()),
            _ => New::None,
        }
    }
}

/// What `New` was not made for: a bug, not a bad op.
fn not_prepared() -> ApiError {
    ApiError::internal(anyhow::anyhow!(
        "an upsert's create values were not worked out"
    ))
}

impl Batch {
    pub fn parse(device: Uuid, ops: Vec<Value>, received: DateTime<Utc>) -> ApiResult<Batch> {
        let mut out: Vec<BatchOp> = Vec::with_capacity(ops.len());
        for (i, v) in ops.into_iter().enumerate() {
            let seq = v
                .get("seq")
                .and_then(Value::as_number)
                .and_then(fields::integer)
                .filter(|s| *s >= 1)
                .ok_or_else(|| {
                    ApiError::invalid(
                        &format!("ops[{i}].seq"),
                        "required",
                        "every op needs an integer seq of 1 or more",
                    )
                })?;
            if out.last().is_some_and(|prev| prev.seq >= seq) {
                return Err(ApiError::invalid(
                    &format!("ops[{i}].seq"),
                    "order",
                    "seqs must increase within a batch",
                ));
            }
            let op_id = v
                .get("op_id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok());
            let hash = hex::encode(
                &Sha256::digest(serde_json::to_vec(&v).unwrap_or_default())
                    [..devices::HASH_LEN / 2],
            );
            let op: Result<Op, String> = serde_json::from_value(v).map_err(|e| e.to_string());
            let (hlc, new) = match &op {
                Ok(op) => (
                    Hlc::parse(&op.hlc).map(|h| h.clamp_to(received)),
                    New::of(op),
                ),
                Err(e) => (Err(e.clone()), New::None),
            };
            out.push(BatchOp {
                seq,
                op_id,
                hash,
                op,
                hlc,
                new,
            });
        }
        Ok(Batch {
            device: DeviceId(device),
            ops: out,
        })
    }
}

/// Applies a batch in the caller's transaction: every op in memory on one unit of work,
/// then one flush, then the conflict records in op order.
pub fn push(conn: &mut Conn<'_>, who: &Principal, batch: &Batch) -> ApiResult<PushResponse> {
    let (start, mut max_skew) = devices::claim(conn, batch.device, who.user_id)?;
    let replayed: Vec<i64> = batch
        .ops
        .iter()
        .map(|o| o.seq)
        .filter(|s| *s <= start)
        .collect();
    let stored = devices::stored_ops(conn, batch.device, &replayed)?;
    let mut work = Work::new();
    preload(conn, &mut work, batch, start)?;
    let mut last_seq = start;
    let mut results = Vec::with_capacity(batch.ops.len());
    // (index in results, op hash, what to record after the flush), seqs start + 1 onwards
    let mut consumed: Vec<(usize, String, Post)> = Vec::new();
    let mut gap = false;
    for o in &batch.ops {
        let (seq, op_id) = (o.seq, o.op_id);
        if gap {
            results.push(OpResult::new(seq, op_id, "gap"));
        } else if seq <= last_seq {
            results.push(match stored.get(&seq) {
                // The hash covers the whole op, its op_id included.
                Some(s) if s.op_hash == o.hash => {
                    serde_json::from_value(s.result.clone()).map_err(ApiError::internal)?
                }
                _ => OpResult::rejected(
                    seq,
                    op_id,
                    "seq_reused",
                    "this seq was used by another operation; nothing changed",
                ),
            });
        } else if seq > last_seq + 1 {
            gap = true;
            results.push(OpResult::new(seq, op_id, "gap"));
        } else {
            let (result, skew, post) = apply(conn, &mut work, who, batch.device, o)?;
            max_skew = max_skew.max(skew);
            consumed.push((results.len(), o.hash.clone(), post));
            last_seq = seq;
            results.push(result);
        }
    }
    if last_seq == start {
        return Ok(PushResponse { results, last_seq });
    }
    // The entities that may have open conflicts: those stored before this batch (an
    // adoption's is its member).
    let entities: Vec<EntityId> = consumed
        .iter()
        .filter_map(|c| match &c.2 {
            Post::Losses { origin, .. } if work.stored(origin.entity_id.0) => {
                Some(origin.entity_id)
            }
            _ => None,
        })
        .collect();
    work.flush(conn)?;
    // Conflicts, in op order, now that the rows they point at are written.
    let mut open = conflicts::entities_with_open(conn, &entities)?;
    let mut ops = Vec::with_capacity(consumed.len());
    for (i, op_hash, post) in consumed {
        let result = &mut results[i];
        match post {
            Post::None => {}
            Post::Losses {
                origin,
                values,
                losses,
                by,
                hlc,
                base,
            } => {
                if open.contains(&origin.entity_id) {
                    conflicts::supersede(conn, &origin, &values, &by, &hlc, base)?;
                }
                if !losses.is_empty() {
                    open.insert(origin.entity_id);
                }
                result.conflict_ids = conflicts::record_losses(conn, &origin, &losses)?;
            }
            Post::Deleted {
                origin,
                edit,
                by,
                hlc,
            } => {
                result.conflict_ids =
                    vec![conflicts::record_deleted(conn, &origin, &edit, &by, &hlc)?];
            }
        }
        let result = serde_json::to_string(&*result).map_err(ApiError::internal)?;
        ops.push((op_hash, result));
    }
    devices::store_batch(conn, batch.device, start + 1, &ops)?;
    devices::set_last_seq(conn, batch.device, last_seq, max_skew)?;
    // A marker in the change stream: a pull that has passed it has passed every effect of
    // ops up to `last_seq` (they were written before it, in the same transaction).
    changes::record(
        conn,
        Change {
            entity: "device",
            entity_id: EntityId(batch.device.0),
            household_id: None,
            area_id: None,
            op: "upsert",
            version: last_seq,
        },
    )?;
    Ok(PushResponse { results, last_seq })
}

/// Loads what the new ops of a batch name, in a few queries.
fn preload(conn: &mut Conn<'_>, work: &mut Work, batch: &Batch, start: i64) -> ApiResult<()> {
    let (mut hs, mut ms, mut vs, mut areas) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for o in batch.ops.iter().filter(|o| o.seq > start) {
        let Ok(op) = &o.op else {
            continue;
        };
        if let Some(h) = op.household_id {
            hs.push(HouseholdId(h));
        }
        match op.kind.as_str() {
            "household.upsert" | "household.delete" => {
                hs.push(HouseholdId(op.entity_id));
                let area = op.data.get("area_id").and_then(Value::as_str);
                if let Some(a) = area.and_then(|s| s.parse::<Uuid>().ok()) {
                    areas.push(AreaId(a));
                }
            }
            "member.upsert" | "member.delete" | "adoption.set" => ms.push(MemberId(op.entity_id)),
            "visit.record" => vs.push(VisitId(op.entity_id)),
            _ => {}
        }
    }
    hs.sort();
    hs.dedup();
    ms.sort();
    ms.dedup();
    vs.sort();
    vs.dedup();
    areas.sort();
    areas.dedup();
    work.preload(conn, &hs, &ms, &vs, &areas)
}

/// What an applied op leaves to record once the batch is written.
enum Post {
    None,
    Losses {
        origin: Origin,
        values: Map<String, Value>,
        losses: Vec<crate::domain::merge::Loss>,
        by: String,
        hlc: String,
        base: i64,
    },
    Deleted {
        origin: Origin,
        edit: Value,
        by: String,
        hlc: String,
    },
}

/// What a successful op wrote.
struct Applied {
    written: Option<Written>,
    entity: &'static str,
    entity_id: EntityId,
    campaign_id: Option<CampaignId>,
}

/// Applies one op on the unit of work. Permanent failures become `rejected` results (the seq
/// is consumed) and are undone in memory; transient ones abort the batch.
fn apply(
    conn: &mut Conn<'_>,
    work: &mut Work,
    who: &Principal,
    device: DeviceId,
    o: &BatchOp,
) -> ApiResult<(OpResult, i64, Post)> {
    let (seq, op_id) = (o.seq, o.op_id);
    let op = match &o.op {
        Ok(op) => op,
        Err(e) => {
            return Ok((
                OpResult::rejected(seq, op_id, "invalid_op", e.clone()),
                0,
                Post::None,
            ))
        }
    };
    if !OP_TYPES.contains(&op.kind.as_str()) {
        let msg = format!("unknown type `{}`; one of {}", op.kind, OP_TYPES.join(", "));
        return Ok((
            OpResult::rejected(seq, op_id, "invalid_op", msg),
            0,
            Post::None,
        ));
    }
    let (hlc, skew) = match &o.hlc {
        Ok(h) => *h,
        Err(e) => {
            return Ok((
                OpResult::rejected(seq, op_id, "invalid_op", e.clone()),
                0,
                Post::None,
            ))
        }
    };
    let writer = Writer {
        by: device.to_string(),
        hlc,
        base_version: op.base_version,
    };
    work.begin();
    match apply_kind(conn, work, who, op, &o.new, &writer) {
        Ok(a) => {
            let mut result = OpResult::new(seq, op_id, "applied");
            let post = match a.written {
                Some(w) => {
                    result.household_version = Some(w.household_version);
                    if w.losses.iter().any(|l| l.lost_by == writer.by) {
                        result.status = "merged".into();
                    }
                    let origin = Origin {
                        household_id: w.household_id,
                        area_id: w.area_id,
                        entity: a.entity,
                        entity_id: a.entity_id,
                        campaign_id: a.campaign_id,
                        device_id: Some(device),
                        seq: Some(seq),
                    };
                    Post::Losses {
                        origin,
                        values: w.values,
                        losses: w.losses,
                        by: writer.by.clone(),
                        hlc: writer.hlc.to_string(),
                        base: writer.base_version,
                    }
                }
                None => Post::None,
            };
            Ok((result, skew, post))
        }
        Err(e) if e.is_transient() || e.kind == Kind::Internal => Err(e),
        Err(e) if e.code == "deleted" => {
            work.rollback();
            // The edit is kept for review, not applied, and brings nothing back.
            let result = OpResult::rejected(seq, op_id, "deleted", e.detail.clone());
            let post = match target(conn, work, op)? {
                Some((household, area, entity, entity_id, campaign)) => Post::Deleted {
                    origin: Origin {
                        household_id: household,
                        area_id: area,
                        entity,
                        entity_id,
                        campaign_id: campaign,
                        device_id: Some(device),
                        seq: Some(seq),
                    },
                    edit: Value::Object(op.data.clone()),
                    by: writer.by.clone(),
                    hlc: hlc.to_string(),
                },
                None => Post::None,
            };
            Ok((result, skew, post))
        }
        Err(e) => {
            work.rollback();
            let mut result = OpResult::rejected(seq, op_id, e.code, e.detail.clone());
            if let Some(err) = result.error.as_mut() {
                err.fields = e
                    .errors
                    .into_iter()
                    .map(|f| OpFieldError {
                        field: f.field,
                        code: f.code.into(),
                        message: f.message,
                    })
                    .collect();
            }
            Ok((result, skew, Post::None))
        }
    }
}

type Target = (
    HouseholdId,
    AreaId,
    &'static str,
    EntityId,
    Option<CampaignId>,
);

/// The unit an op aims at, for recording an edit of a deleted record.
fn target(conn: &mut Conn<'_>, work: &mut Work, op: &Op) -> ApiResult<Option<Target>> {
    let campaign = op
        .data
        .get("campaign_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    let (entity, household) = match op.kind.as_str() {
        "household.upsert" | "household.delete" => ("household", Some(HouseholdId(op.entity_id))),
        "member.upsert" | "member.delete" => (
            "member",
            work.member_household(conn, MemberId(op.entity_id))?,
        ),
        _ => (
            "adoption",
            work.member_household(conn, MemberId(op.entity_id))?,
        ),
    };
    let Some(household) = household else {
        return Ok(None);
    };
    let area = work.household_area(conn, household)?;
    Ok(area.map(|a| {
        (
            household,
            a,
            entity,
            EntityId(op.entity_id),
            if entity == "adoption" { campaign } else { None },
        )
    }))
}

fn patch(
    entity: &crate::domain::fields::Entity,
    data: &Map<String, Value>,
    mode: Mode,
) -> ApiResult<Patch> {
    Patch::parse_map(entity, data, &[], mode).map_err(ApiError::validation)
}

fn require_household_id(op: &Op) -> ApiResult<HouseholdId> {
    op.household_id
        .map(HouseholdId)
        .ok_or_else(|| ApiError::invalid("household_id", "required", "this op needs household_id"))
}

fn apply_kind(
    conn: &mut Conn<'_>,
    work: &mut Work,
    who: &Principal,
    op: &Op,
    new: &New,
    w: &Writer,
) -> ApiResult<Applied> {
    let id = op.entity_id;
    let applied = |written, entity, campaign_id| Applied {
        written: Some(written),
        entity,
        entity_id: EntityId(id),
        campaign_id,
    };
    match op.kind.as_str() {
        "household.upsert" => {
            let hid = HouseholdId(id);
            if op.household_id.is_some_and(|h| h != id) {
                return Err(ApiError::invalid(
                    "household_id",
                    "mismatch",
                    "must equal entity_id for a household",
                ));
            }
            let New::Household(create, update) = new else {
                return Err(not_prepared());
            };
            let written = if work.household_exists(conn, hid)? {
                let update = update.as_ref().map_err(Clone::clone)?;
                work.update_household(conn, who, w, hid, update, None)?
            } else {
                let create = create.as_ref().map_err(Clone::clone)?;
                work.create_household(conn, who, w, hid, create)?
            };
            Ok(applied(written, "household", None))
        }
        "household.delete" => {
            let hid = HouseholdId(id);
            let h = work.household(conn, who, hid)?;
            if h.deleted_at.is_some() {
                return Ok(Applied {
                    written: None,
                    entity: "household",
                    entity_id: EntityId(id),
                    campaign_id: None,
                });
            }
            Ok(applied(
                work.delete_household(conn, who, hid, None)?,
                "household",
                None,
            ))
        }
        "member.upsert" => {
            let mid = MemberId(id);
            let written = match work.member_household(conn, mid)? {
                Some(current) => {
                    let mut data = op.data.clone();
                    // A device may resend the household it already had: that is no change.
                    let same = data
                        .get("household_id")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<Uuid>().ok());
                    if same == Some(current.0) {
                        data.remove("household_id");
                    }
                    work.update_member(
                        conn,
                        who,
                        w,
                        mid,
                        &patch(&MEMBER, &data, Mode::Update)?,
                        None,
                    )?
                }
                None => {
                    let New::Member(new) = new else {
                        return Err(not_prepared());
                    };
                    work.create_member(conn, who, w, mid, new.as_ref().map_err(Clone::clone)?)?
                }
            };
            Ok(applied(written, "member", None))
        }
        "member.delete" => {
            let mid = MemberId(id);
            let m = work.member_of(conn, who, mid)?;
            if m.deleted_at.is_some() {
                return Ok(Applied {
                    written: None,
                    entity: "member",
                    entity_id: EntityId(id),
                    campaign_id: None,
                });
            }
            Ok(applied(
                work.delete_member(conn, who, mid, None)?,
                "member",
                None,
            ))
        }
        "adoption.set" => {
            let mut data = op.data.clone();
            let campaign = data
                .remove("campaign_id")
                .and_then(|v| v.as_str().and_then(|s| s.parse::<CampaignId>().ok()))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "campaign_id",
                        "required",
                        "adoption.set needs data.campaign_id",
                    )
                })?;
            let p = patch(&ADOPTION, &data, Mode::Create)?;
            let written = work.set_adoption(
                conn,
                who,
                w,
                MemberId(id),
                campaign,
                &p,
                AdoptionPrecondition::Merge,
            )?;
            Ok(applied(written, "adoption", Some(campaign)))
        }
        "visit.record" => {
            let mut data = op.data.clone();
            if !data.contains_key("household_id") {
                data.insert(
                    "household_id".into(),
                    Value::String(require_household_id(op)?.to_string()),
                );
            }
            let (visit, _) =
                work.record_visit(conn, who, VisitId(id), &patch(&VISIT, &data, Mode::Create)?)?;
            Ok(Applied {
                written: None,
                entity: "visit",
                entity_id: EntityId(visit.id.0),
                campaign_id: None,
            })
        }
        other => Err(ApiError::bad_request(
            "invalid_op",
            format!("unknown type {other}"),
        )),
    }
}
