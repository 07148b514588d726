//! `POST /sync/push`: each (device, seq) takes effect exactly once, in order, and a replay
//! answers the stored result.

use super::{Error, Result};
use crate::db::Conn;
use crate::domain::fields::{self, FieldError, Mode, Patch};
use crate::domain::hlc::Hlc;
use crate::domain::household::records::{ADOPTION, HOUSEHOLD, MEMBER, VISIT};
use crate::domain::household::{ChangeOp, Error as Rule, OpKind, Record};
use crate::domain::{
    AreaId, CampaignId, ConflictId, DeviceId, EntityId, HouseholdId, MemberId, VisitId,
};
use crate::store::changes::Change;
use crate::store::devices;
use crate::store::error as store;
use crate::store::households::{NewHousehold, NewMember};
use crate::store::scope::Principal;
use crate::write::{self, BookEntry, Context, Done, FromOp, Refused, Transaction, Write};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use uuid::Uuid;

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
    /// The household the op was applied to instead of the one it named, which a supervisor
    /// had merged into it (`docs/SYNC.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirected_to: Option<HouseholdId>,
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
            redirected_to: None,
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
pub async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
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
    Household(Result<NewHousehold, Rule>, Result<Patch, Rule>),
    Member(Result<NewMember, Rule>),
}

impl New {
    fn of(op: &Op) -> New {
        match OpKind::parse(&op.kind) {
            Some(OpKind::HouseholdUpsert) => New::Household(
                patch(&HOUSEHOLD, &op.data, Mode::Create).and_then(|p| NewHousehold::new(&p)),
                patch(&HOUSEHOLD, &op.data, Mode::Update),
            ),
            Some(OpKind::MemberUpsert) => New::Member((|| {
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
fn not_prepared() -> Rule {
    Rule::Malformed("an upsert's create values were not worked out".into())
}

impl Batch {
    pub fn parse(device: Uuid, ops: Vec<Value>, received: DateTime<Utc>) -> Result<Batch> {
        let mut out: Vec<BatchOp> = Vec::with_capacity(ops.len());
        for (i, v) in ops.into_iter().enumerate() {
            let seq = v
                .get("seq")
                .and_then(Value::as_number)
                .and_then(fields::integer)
                .filter(|s| *s >= 1)
                .ok_or_else(|| {
                    Error::bad_batch(
                        format!("ops[{i}].seq"),
                        "required",
                        "every op needs an integer seq of 1 or more",
                    )
                })?;
            if out.last().is_some_and(|prev| prev.seq >= seq) {
                return Err(Error::bad_batch(
                    format!("ops[{i}].seq"),
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

/// Applies a batch in the caller's transaction: every op in memory through the one write
/// path (`write`), then one commit that writes the rows and the conflict books in op
/// order.
pub fn push(conn: &mut Conn<'_>, who: &Principal, batch: &Batch) -> Result<PushResponse> {
    let (start, mut max_skew) = devices::claim(conn, batch.device, who.user_id)?;
    let replayed: Vec<i64> = batch
        .ops
        .iter()
        .map(|o| o.seq)
        .filter(|s| *s <= start)
        .collect();
    let stored = devices::stored_ops(conn, batch.device, &replayed)?;
    let mut tx = Transaction::new();
    preload(conn, &mut tx, batch, start)?;
    let mut last_seq = start;
    let mut results = Vec::with_capacity(batch.ops.len());
    // The ops of seqs start + 1 onwards.
    let mut consumed: Vec<Consumed> = Vec::new();
    let mut gap = false;
    for o in &batch.ops {
        let (seq, op_id) = (o.seq, o.op_id);
        if gap {
            results.push(OpResult::new(seq, op_id, "gap"));
        } else if seq <= last_seq {
            results.push(match stored.get(&seq) {
                // The hash covers the whole op, its op_id included.
                Some(s) if s.op_hash == o.hash => {
                    serde_json::from_value(s.result.clone()).map_err(store::Error::corrupt)?
                }
                // Every consumed seq's answer is stored with its batch, until `gocua sync
                // prune` deletes batches older than each device's latest.
                None => OpResult::rejected(
                    seq,
                    op_id,
                    "answer_pruned",
                    "this seq was consumed long ago and its answer is no longer kept; nothing changed",
                ),
                Some(_) => OpResult::rejected(
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
            let (result, skew, book) = apply(conn, &mut tx, who, batch.device, o)?;
            max_skew = max_skew.max(skew);
            consumed.push(Consumed {
                result: results.len(),
                hash: o.hash.clone(),
                book,
            });
            last_seq = seq;
            results.push(result);
        }
    }
    if last_seq == start {
        return Ok(PushResponse { results, last_seq });
    }
    // A marker in the change stream: a pull that has passed it has passed every effect of
    // ops up to `last_seq` (the log's rows of this batch go in one statement, the marker
    // last).
    tx.log(Change {
        entity: "device",
        entity_id: EntityId(batch.device.0),
        household_id: None,
        area_id: None,
        op: ChangeOp::Upsert.as_str(),
        version: last_seq,
    });
    let (mut booked, tallies) = tx.commit_but_tallies(conn)?;
    let mut ops = Vec::with_capacity(consumed.len());
    for c in consumed {
        let result = &mut results[c.result];
        if let Some(entry) = c.book {
            result.conflict_ids = booked.take(entry);
        }
        let result = serde_json::to_string(&*result).map_err(store::Error::corrupt)?;
        ops.push((c.hash, result));
    }
    devices::store_batch(conn, batch.device, start + 1, &ops)?;
    devices::set_last_seq(conn, batch.device, last_seq, max_skew)?;
    tallies.store(conn)?;
    Ok(PushResponse { results, last_seq })
}

/// An op this batch consumed: its result's place in the answer, its hash, and its entry in
/// the conflict books.
struct Consumed {
    result: usize,
    hash: String,
    book: Option<BookEntry>,
}

/// Loads what the new ops of a batch name, in a few queries.
fn preload(conn: &mut Conn<'_>, tx: &mut Transaction, batch: &Batch, start: i64) -> Result<()> {
    let (mut hs, mut ms, mut vs, mut areas) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for o in batch.ops.iter().filter(|o| o.seq > start) {
        let Ok(op) = &o.op else {
            continue;
        };
        if let Some(h) = op.household_id {
            hs.push(HouseholdId(h));
        }
        match OpKind::parse(&op.kind).map(OpKind::record) {
            Some(Record::Household) => {
                hs.push(HouseholdId(op.entity_id));
                let area = op.data.get("area_id").and_then(Value::as_str);
                if let Some(a) = area.and_then(|s| s.parse::<Uuid>().ok()) {
                    areas.push(AreaId(a));
                }
            }
            Some(Record::Member | Record::Adoption) => ms.push(MemberId(op.entity_id)),
            Some(Record::Visit) => vs.push(VisitId(op.entity_id)),
            None => {}
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
    Ok(tx.preload(conn, &hs, &ms, &vs, &areas)?)
}

/// Applies one op through the write path. Permanent failures become `rejected` results (the
/// seq is consumed; an edit of a deleted record is kept for review); transient ones and bugs
/// abort the batch. Answers the result, the clock skew clamped off, and the op's entry in
/// the conflict books.
fn apply(
    conn: &mut Conn<'_>,
    tx: &mut Transaction,
    who: &Principal,
    device: DeviceId,
    o: &BatchOp,
) -> Result<(OpResult, i64, Option<BookEntry>)> {
    let (seq, op_id) = (o.seq, o.op_id);
    let invalid = |message: String| {
        Ok((
            OpResult::rejected(seq, op_id, "invalid_op", message),
            0,
            None,
        ))
    };
    let op = match &o.op {
        Ok(op) => op,
        Err(e) => return invalid(e.clone()),
    };
    let Some(kind) = OpKind::parse(&op.kind) else {
        let all: Vec<&str> = OpKind::ALL.iter().map(|k| k.as_str()).collect();
        return invalid(format!(
            "unknown type `{}`; one of {}",
            op.kind,
            all.join(", ")
        ));
    };
    let (hlc, skew) = match &o.hlc {
        Ok(h) => *h,
        Err(e) => return invalid(e.clone()),
    };
    let from = FromOp {
        device,
        seq,
        data: &op.data,
    };
    let mut ctx = Context::device(hlc, op.base_version, from);
    // An op made in a household since merged had seen that household's versions, not its
    // survivor's: it merges by clocks alone.
    if let Some(named) = op.household_id.map(HouseholdId) {
        if tx.survivor(conn, named).is_ok_and(|to| to != named) {
            ctx = ctx.redirected();
        }
    }
    let done = apply_kind(conn, tx, who, kind, op, &o.new, &ctx);
    match done.map(|d| moved_by_merge(conn, tx, op, d)) {
        Ok(done) => {
            let mut result = OpResult::new(seq, op_id, "applied");
            result.household_version = done.household_version;
            result.redirected_to = done.redirected_to;
            if done.merged {
                result.status = "merged".into();
            }
            Ok((result, skew, done.book))
        }
        Err(Refused {
            error: write::Error::Rule(rule),
            book,
        }) if !matches!(rule, Rule::Malformed(_)) => {
            let refusal = rule.refusal();
            let mut result = OpResult::rejected(seq, op_id, refusal.code, refusal.message);
            if let Some(err) = result.error.as_mut() {
                err.fields = refusal
                    .fields
                    .into_iter()
                    .map(|f| OpFieldError {
                        field: f.field,
                        code: f.code.into(),
                        message: f.message,
                    })
                    .collect();
            }
            Ok((result, skew, book))
        }
        Err(Refused { error, .. }) => Err(error.into()),
    }
}

fn patch(
    entity: &crate::domain::fields::Entity,
    data: &Map<String, Value>,
    mode: Mode,
) -> Result<Patch, Rule> {
    Patch::parse_map(entity, data, &[], mode).map_err(Rule::Invalid)
}

fn require_household_id(op: &Op) -> Result<HouseholdId, Rule> {
    op.household_id.map(HouseholdId).ok_or_else(|| {
        Rule::Invalid(vec![FieldError::new(
            "household_id",
            "required",
            "this op needs household_id",
        )])
    })
}

/// What a refused op's `Refused` is made of when no write was tried.
fn refused(e: impl Into<write::Error>) -> Refused {
    Refused {
        error: e.into(),
        book: None,
    }
}

/// A write to a member that a merge moved names the household it was made in, when the op
/// named the merged one.
fn moved_by_merge(conn: &mut Conn<'_>, tx: &mut Transaction, op: &Op, done: Done) -> Done {
    let named = match op.household_id {
        Some(h) if done.redirected_to.is_none() && h != done.household_id.0 => HouseholdId(h),
        _ => return done,
    };
    match tx.survivor(conn, named) {
        Ok(to) if to == done.household_id => Done {
            redirected_to: Some(to),
            ..done
        },
        _ => done,
    }
}

/// A write made to the household `to` instead of the merged one its op named.
fn redirected(done: Result<Done, Refused>, to: HouseholdId) -> Result<Done, Refused> {
    done.map(|d| Done {
        redirected_to: Some(to),
        ..d
    })
}

/// A no-op: deleting what is already deleted.
fn nothing(household: HouseholdId, area: AreaId) -> Done {
    Done {
        household_id: household,
        area_id: area,
        household_version: None,
        merged: false,
        visit: None,
        book: None,
        redirected_to: None,
    }
}

/// The op's meaning in writes: an upsert creates or updates; deleting a deleted record
/// changes nothing; a member's or visit's household may come with the op.
fn apply_kind(
    conn: &mut Conn<'_>,
    tx: &mut Transaction,
    who: &Principal,
    kind: OpKind,
    op: &Op,
    new: &New,
    ctx: &Context,
) -> Result<Done, Refused> {
    let id = op.entity_id;
    match kind {
        OpKind::HouseholdUpsert => {
            let hid = HouseholdId(id);
            if op.household_id.is_some_and(|h| h != id) {
                return Err(refused(Rule::Invalid(vec![FieldError::new(
                    "household_id",
                    "mismatch",
                    "must equal entity_id for a household",
                )])));
            }
            let New::Household(create, update) = new else {
                return Err(refused(not_prepared()));
            };
            if tx.household_exists(conn, hid).map_err(refused)? {
                let update = update.as_ref().map_err(|e| refused(e.clone()))?;
                let to = tx.survivor(conn, hid).map_err(refused)?;
                if to != hid {
                    let ctx = ctx.redirected();
                    let done = tx.apply(conn, who, &ctx, Write::UpdateHousehold(to, update));
                    return redirected(done, to);
                }
                tx.apply(conn, who, ctx, Write::UpdateHousehold(hid, update))
            } else {
                let create = create.as_ref().map_err(|e| refused(e.clone()))?;
                tx.apply(conn, who, ctx, Write::CreateHousehold(hid, create))
            }
        }
        OpKind::HouseholdDelete => {
            let hid = HouseholdId(id);
            let h = tx.household(conn, who, hid).map_err(refused)?;
            if h.deleted_at.is_some() {
                return Ok(nothing(h.id, h.area_id));
            }
            tx.apply(conn, who, ctx, Write::DeleteHousehold(hid))
        }
        OpKind::MemberUpsert => {
            let mid = MemberId(id);
            match tx.member_household(conn, mid).map_err(refused)? {
                Some(_) => {
                    let to = tx.member_survivor(conn, mid).map_err(refused)?;
                    let current = tx
                        .member_household(conn, to)
                        .map_err(refused)?
                        .ok_or_else(|| refused(Rule::NotFound("member")))?;
                    let mut data = op.data.clone();
                    // A device may resend the household it already had, or the one merged
                    // into it: that is no change.
                    let named = data
                        .get("household_id")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<Uuid>().ok())
                        .map(HouseholdId);
                    let moved = match named {
                        Some(h) if h == current => {
                            data.remove("household_id");
                            false
                        }
                        Some(h) if tx.survivor(conn, h).map_err(refused)? == current => {
                            data.remove("household_id");
                            true
                        }
                        _ => false,
                    };
                    let p = patch(&MEMBER, &data, Mode::Update).map_err(refused)?;
                    if to != mid || moved {
                        let ctx = ctx.redirected();
                        let done = tx.apply(conn, who, &ctx, Write::UpdateMember(to, &p));
                        return redirected(done, current);
                    }
                    tx.apply(conn, who, ctx, Write::UpdateMember(mid, &p))
                }
                None => {
                    let New::Member(new) = new else {
                        return Err(refused(not_prepared()));
                    };
                    let new = new.as_ref().map_err(|e| refused(e.clone()))?;
                    let named = new.fields.household_id;
                    let to = match tx.household_exists(conn, named).map_err(refused)? {
                        true => tx.survivor(conn, named).map_err(refused)?,
                        false => named,
                    };
                    if to != named {
                        let mut moved = new.clone();
                        moved.fields.household_id = to;
                        let ctx = ctx.redirected();
                        let done = tx.apply(conn, who, &ctx, Write::CreateMember(mid, &moved));
                        return redirected(done, to);
                    }
                    tx.apply(conn, who, ctx, Write::CreateMember(mid, new))
                }
            }
        }
        OpKind::MemberDelete => {
            let mid = MemberId(id);
            let m = tx.member(conn, who, mid).map_err(refused)?;
            let to = tx.member_survivor(conn, mid).map_err(refused)?;
            if to != mid {
                let survivor = tx.member(conn, who, to).map_err(refused)?;
                if survivor.deleted_at.is_none() {
                    let ctx = ctx.redirected();
                    let done = tx.apply(conn, who, &ctx, Write::DeleteMember(to));
                    return redirected(done, survivor.household_id);
                }
            }
            if m.deleted_at.is_some() {
                let h = tx.household(conn, who, m.household_id).map_err(refused)?;
                return Ok(nothing(h.id, h.area_id));
            }
            tx.apply(conn, who, ctx, Write::DeleteMember(mid))
        }
        OpKind::AdoptionSet => {
            let mut data = op.data.clone();
            let campaign = data
                .remove("campaign_id")
                .and_then(|v| v.as_str().and_then(|s| s.parse::<CampaignId>().ok()))
                .ok_or_else(|| {
                    refused(Rule::Invalid(vec![FieldError::new(
                        "campaign_id",
                        "required",
                        "adoption.set needs data.campaign_id",
                    )]))
                })?;
            let p = patch(&ADOPTION, &data, Mode::Create).map_err(refused)?;
            let to = tx.member_survivor(conn, MemberId(id)).map_err(refused)?;
            if to.0 != id {
                let household = tx.member_household(conn, to).map_err(refused)?;
                let ctx = ctx.redirected();
                let done = tx.apply(conn, who, &ctx, Write::SetAdoption(to, campaign, &p));
                return match household {
                    Some(h) => redirected(done, h),
                    None => done,
                };
            }
            tx.apply(
                conn,
                who,
                ctx,
                Write::SetAdoption(MemberId(id), campaign, &p),
            )
        }
        OpKind::VisitRecord => {
            let mut data = op.data.clone();
            if !data.contains_key("household_id") {
                let household = require_household_id(op).map_err(refused)?;
                data.insert("household_id".into(), Value::String(household.to_string()));
            }
            let named = data
                .get("household_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Uuid>().ok())
                .map(HouseholdId);
            if let Some(named) = named {
                if tx.household_exists(conn, named).map_err(refused)? {
                    let to = tx.survivor(conn, named).map_err(refused)?;
                    if to != named {
                        data.insert("household_id".into(), Value::String(to.to_string()));
                        let p = patch(&VISIT, &data, Mode::Create).map_err(refused)?;
                        let done = tx.apply(conn, who, ctx, Write::RecordVisit(VisitId(id), &p));
                        return redirected(done, to);
                    }
                }
            }
            let p = patch(&VISIT, &data, Mode::Create).map_err(refused)?;
            tx.apply(conn, who, ctx, Write::RecordVisit(VisitId(id), &p))
        }
    }
}
