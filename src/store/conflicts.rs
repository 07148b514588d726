//! Conflict records: values that lost to a concurrent write, and edits of deleted records.

use super::error::{Error, Result};
use super::scope::{self, Principal};
use super::PageReq;
use crate::db::any::any_of;
use crate::db::prepared::Condition;
use crate::db::schema::conflicts;
use crate::db::Conn;
use crate::domain::household::{ConflictReason, ConflictStatus, Record, Resolution};
use crate::domain::merge::Loss;
use crate::domain::{
    AreaId, CampaignId, ConflictId, DeviceId, EntityId, HouseholdId, MemberId, Time, UserId,
};
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conflicts)]
pub struct ConflictRow {
    pub id: ConflictId,
    pub household_id: HouseholdId,
    pub area_id: AreaId,
    pub entity: Record,
    pub entity_id: EntityId,
    pub campaign_id: Option<CampaignId>,
    pub field: String,
    pub reason: ConflictReason,
    pub kept_value: String,
    pub kept_by: String,
    pub kept_hlc: String,
    pub lost_value: String,
    pub lost_by: String,
    pub lost_hlc: String,
    pub visible_from: Option<i64>,
    pub visible_to: Option<i64>,
    pub device_id: Option<DeviceId>,
    pub seq: Option<i64>,
    pub status: ConflictStatus,
    pub resolution: Option<Resolution>,
    pub resolved_value: Option<String>,
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<Time>,
    pub created_at: Time,
}

/// A conflict as supervisors review it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    pub id: ConflictId,
    pub household_id: HouseholdId,
    /// The household's village.
    pub area_id: AreaId,
    pub entity: Record,
    pub entity_id: EntityId,
    pub campaign_id: Option<CampaignId>,
    /// The field, or `*` for an edit of a deleted record (the whole edit is `lost_value`).
    pub field: String,
    pub reason: ConflictReason,
    #[schema(value_type = Object)]
    pub kept_value: Value,
    pub kept_by: String,
    pub kept_hlc: String,
    #[schema(value_type = Object)]
    pub lost_value: Value,
    pub lost_by: String,
    pub lost_hlc: String,
    pub device_id: Option<DeviceId>,
    pub seq: Option<i64>,
    pub status: ConflictStatus,
    pub resolution: Option<Resolution>,
    #[schema(value_type = Option<Object>)]
    pub resolved_value: Option<Value>,
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<Time>,
    pub created_at: Time,
    /// The field's value now, for an open conflict (as the review reads it).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_value: Option<Value>,
    /// The household's head and address, as the review reads them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household_head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household_address: Option<String>,
    /// The username of who wrote the lost value (a device's owner, or an online editor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_by_name: Option<String>,
    /// The state the review read (its status and the field's value now): send it as
    /// `If-Match` with a resolution, which fails with 412 if either changed meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

impl From<ConflictRow> for Conflict {
    fn from(r: ConflictRow) -> Self {
        Conflict {
            id: r.id,
            household_id: r.household_id,
            area_id: r.area_id,
            entity: r.entity,
            entity_id: r.entity_id,
            campaign_id: r.campaign_id,
            field: r.field,
            reason: r.reason,
            kept_value: json(&r.kept_value),
            kept_by: r.kept_by,
            kept_hlc: r.kept_hlc,
            lost_value: json(&r.lost_value),
            lost_by: r.lost_by,
            lost_hlc: r.lost_hlc,
            device_id: r.device_id,
            seq: r.seq,
            status: r.status,
            resolution: r.resolution,
            resolved_value: r.resolved_value.as_deref().map(json),
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at,
            created_at: r.created_at,
            current_value: None,
            household_head: None,
            household_address: None,
            lost_by_name: None,
            etag: None,
        }
    }
}

/// Where a conflict comes from.
pub struct Origin {
    pub household_id: HouseholdId,
    pub area_id: AreaId,
    pub entity: Record,
    pub entity_id: EntityId,
    pub campaign_id: Option<CampaignId>,
    pub device_id: Option<DeviceId>,
    pub seq: Option<i64>,
}

fn insert(
    conn: &mut Conn<'_>,
    o: &Origin,
    field: &str,
    reason: ConflictReason,
    loss: &Loss,
) -> Result<ConflictId> {
    let id = ConflictId::random();
    let text = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    with_conn!(conn, |c| diesel::insert_into(conflicts::table)
        .values((
            conflicts::id.eq(id),
            conflicts::household_id.eq(o.household_id),
            conflicts::area_id.eq(o.area_id),
            conflicts::entity.eq(o.entity),
            conflicts::entity_id.eq(o.entity_id),
            conflicts::campaign_id.eq(o.campaign_id),
            conflicts::field.eq(field),
            conflicts::reason.eq(reason),
            conflicts::kept_value.eq(text(&loss.kept)),
            conflicts::kept_by.eq(&loss.kept_by),
            conflicts::kept_hlc.eq(&loss.kept_hlc),
            conflicts::lost_value.eq(text(&loss.lost)),
            conflicts::lost_by.eq(&loss.lost_by),
            conflicts::lost_hlc.eq(&loss.lost_hlc),
            conflicts::visible_from.eq(loss.visible.map(|v| v.0)),
            conflicts::visible_to.eq(loss.visible.map(|v| v.1)),
            conflicts::device_id.eq(o.device_id),
            conflicts::seq.eq(o.seq),
            conflicts::status.eq(ConflictStatus::Open),
            conflicts::created_at.eq(Time::now()),
        ))
        .execute(c))?;
    Ok(id)
}

/// Records the losing values of concurrent edits.
pub fn record_losses(conn: &mut Conn<'_>, o: &Origin, losses: &[Loss]) -> Result<Vec<ConflictId>> {
    losses
        .iter()
        .map(|l| insert(conn, o, &l.field, ConflictReason::ConcurrentEdit, l))
        .collect()
}

/// What the author of a write had seen of the open conflicts on its record.
pub enum Seen {
    /// The record as it is now, with its open conflicts (an online edit, a resolution).
    Everything,
    /// Unit version `base` (a device), as writer `by` at clock `hlc`.
    Base { by: String, hlc: String, base: i64 },
}

/// Closes open conflicts that a write made moot, so that the open conflicts are the same
/// whatever order concurrent ops arrive in. A device's write of a field, having seen version
/// `base`, supersedes the losing value of that field that it had seen (the field's value at
/// version `base`) and the device's own older losing values; a losing value that is now the
/// field's value is no longer lost. An online write or a resolution was made with the record
/// and its open conflicts in view: it supersedes every open losing value of the fields it
/// writes.
pub fn supersede(
    conn: &mut Conn<'_>,
    o: &Origin,
    values: &serde_json::Map<String, Value>,
    seen: &Seen,
) -> Result<()> {
    let now = Time::now();
    for (field, value) in values {
        let value = serde_json::to_string(value).unwrap_or_default();
        with_conn!(conn, |c| {
            let mut q = diesel::update(conflicts::table)
                .filter(conflicts::entity_id.eq(o.entity_id))
                .filter(conflicts::field.eq(field))
                .filter(conflicts::status.eq(ConflictStatus::Open))
                .filter(conflicts::reason.eq(ConflictReason::ConcurrentEdit))
                .into_boxed();
            if let Seen::Base { by, hlc, base } = seen {
                q = q.filter(
                    conflicts::lost_by
                        .eq(by)
                        .and(conflicts::lost_hlc.lt(hlc))
                        .or(conflicts::lost_value.eq(&value))
                        .or(conflicts::visible_from
                            .le(base)
                            .and(conflicts::visible_to.gt(base))),
                );
            }
            if let Some(campaign) = o.campaign_id {
                q = q.filter(conflicts::campaign_id.eq(campaign));
            }
            q.set((
                conflicts::status.eq(ConflictStatus::Resolved),
                conflicts::resolution.eq(Some(Resolution::Superseded)),
                conflicts::resolved_at.eq(Some(now)),
            ))
            .execute(c)
        })?;
    }
    Ok(())
}

/// Which of these entities have open conflicts (one query for a whole batch).
pub fn entities_with_open(
    conn: &mut Conn<'_>,
    ids: &[EntityId],
) -> Result<std::collections::HashSet<EntityId>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<EntityId> = with_conn!(conn, |c| conflicts::table
        .filter(any_of(conflicts::entity_id, ids))
        // A literal, not a bound value: SQLite plans the use of the partial index
        // `conflicts_entity_open` from a bound value, and so prepares the statement again
        // whenever it is bound anew.
        .filter(Condition("conflicts.status = 'open'"))
        .select(conflicts::entity_id)
        .distinct()
        .load(c))?;
    Ok(found.into_iter().collect())
}

/// Records an edit of a deleted record, which is kept here and not applied.
pub fn record_deleted(
    conn: &mut Conn<'_>,
    o: &Origin,
    edit: &Value,
    by: &str,
    hlc: &str,
) -> Result<ConflictId> {
    let loss = Loss {
        field: "*".into(),
        kept: Value::Null,
        kept_by: "deleted".into(),
        kept_hlc: String::new(),
        lost: edit.clone(),
        lost_by: by.into(),
        lost_hlc: hlc.into(),
        visible: None,
    };
    insert(conn, o, "*", ConflictReason::Deleted, &loss)
}

fn row(conn: &mut Conn<'_>, id: ConflictId) -> Result<ConflictRow> {
    with_conn!(conn, |c| conflicts::table
        .find(id)
        .select(ConflictRow::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| Error::not_found("conflict"))
}

/// A conflict the caller may see (its household's village is in their areas).
pub fn get(conn: &mut Conn<'_>, who: &Principal, id: ConflictId) -> Result<ConflictRow> {
    let r = row(conn, id)?;
    who.require_area(conn, r.area_id)?;
    Ok(r)
}

pub fn list(
    conn: &mut Conn<'_>,
    who: &Principal,
    status: Option<ConflictStatus>,
    area: Option<AreaId>,
    page: PageReq,
) -> Result<(Vec<Conflict>, i64)> {
    let bound = match area {
        Some(a) => Some(vec![who.require_area(conn, a)?]),
        None => who.prefixes().map(<[String]>::to_vec),
    };
    let ids = match &bound {
        Some(p) => Some(scope::area_ids_under(conn, p)?),
        None => None,
    };
    let run = |c: &mut Conn<'_>, count: bool| -> Result<(Vec<ConflictRow>, i64)> {
        with_conn!(c, |c| {
            let mut q = conflicts::table.into_boxed();
            if let Some(ids) = &ids {
                q = q.filter(conflicts::area_id.eq_any(ids));
            }
            if let Some(s) = status {
                q = q.filter(conflicts::status.eq(s));
            }
            if count {
                Ok((Vec::new(), q.count().get_result(c)?))
            } else {
                let rows = q
                    .select(ConflictRow::as_select())
                    .order((conflicts::created_at.desc(), conflicts::id))
                    .limit(page.per_page)
                    .offset(page.offset())
                    .load(c)?;
                Ok((rows, 0))
            }
        })
    };
    let (_, total) = run(conn, true)?;
    let (rows, _) = run(conn, false)?;
    Ok((rows.into_iter().map(Conflict::from).collect(), total))
}

/// Marks a conflict resolved; the caller has written the resolution as a new version.
pub fn mark_resolved(
    conn: &mut Conn<'_>,
    id: ConflictId,
    resolution: Resolution,
    value: &Value,
    by: UserId,
) -> Result<Conflict> {
    let updated = with_conn!(conn, |c| diesel::update(
        conflicts::table
            .find(id)
            .filter(conflicts::status.eq(ConflictStatus::Open))
    )
    .set((
        conflicts::status.eq(ConflictStatus::Resolved),
        conflicts::resolution.eq(Some(resolution)),
        conflicts::resolved_value.eq(Some(serde_json::to_string(value).unwrap_or_default())),
        conflicts::resolved_by.eq(Some(by)),
        conflicts::resolved_at.eq(Some(Time::now())),
    ))
    .execute(c))?;
    if updated == 0 {
        return Err(Error::conflict(
            "already_resolved",
            "this conflict is already resolved",
        ));
    }
    Ok(row(conn, id)?.into())
}

/// What anonymization emptied in one household: all its records (`member` none), or one
/// member's; and the household's `household_fields`.
#[derive(Debug, Clone, Copy)]
pub struct Scrub {
    pub household: HouseholdId,
    pub member: Option<MemberId>,
    pub household_fields: &'static [&'static str],
}

impl Scrub {
    /// The fields of a conflict's record that this scrub removes.
    fn fields(&self, r: &ConflictRow) -> &'static [&'static str] {
        use crate::domain::household::retention::MEMBER_FIELDS;
        if r.household_id != self.household {
            return &[];
        }
        match r.entity {
            Record::Household => self.household_fields,
            Record::Member if self.member.is_none_or(|m| m.0 == r.entity_id.0) => MEMBER_FIELDS,
            // An adoption's edit of a deleted record can carry nothing personal but its
            // status; a visit has no conflicts.
            _ => &[],
        }
    }
}

/// Takes the values that anonymization removed out of the conflicts of these households, in
/// one read. Answers how many conflicts changed.
pub fn scrub(conn: &mut Conn<'_>, scrubs: &[Scrub]) -> Result<usize> {
    use crate::domain::household::retention::scrub_value;
    if scrubs.is_empty() {
        return Ok(0);
    }
    let households: Vec<HouseholdId> = scrubs.iter().map(|s| s.household).collect();
    let rows: Vec<ConflictRow> = with_conn!(conn, |c| conflicts::table
        .filter(any_of(conflicts::household_id, &households))
        .select(ConflictRow::as_select())
        .load(c))?;
    let mut changed = 0;
    for r in rows {
        let mut personal: Vec<&str> = scrubs.iter().flat_map(|s| s.fields(&r)).copied().collect();
        personal.sort_unstable();
        personal.dedup();
        let scrub = |text: &str| {
            let v = serde_json::from_str(text).unwrap_or(Value::Null);
            scrub_value(&r.field, &personal, v).to_string()
        };
        let (kept, lost) = (scrub(&r.kept_value), scrub(&r.lost_value));
        let resolved = r.resolved_value.as_deref().map(scrub);
        if kept == r.kept_value && lost == r.lost_value && resolved == r.resolved_value {
            continue;
        }
        with_conn!(conn, |c| diesel::update(conflicts::table.find(r.id))
            .set((
                conflicts::kept_value.eq(&kept),
                conflicts::lost_value.eq(&lost),
                conflicts::resolved_value.eq(&resolved),
            ))
            .execute(c))?;
        changed += 1;
    }
    Ok(changed)
}
