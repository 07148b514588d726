//! The household unit (household, members, adoptions) and its visits: the one write path
//! that online edits and offline sync share.
//!
//! Every write to a unit first bumps the household's version with a single UPDATE, which also
//! locks the row on PostgreSQL (SQLite has one writer anyway), so writes to one household are
//! serialized and each gets its own version.

use super::changes::{self, Change};
use super::scope::{self, Principal};
use super::{campaigns, PageReq};
use crate::db::schema::{adoptions, areas, households, members, visits};
use crate::db::Conn;
use crate::domain::fields::Patch;
use crate::domain::merge::{self, FieldMetas, Loss, Writer};
use crate::domain::{
    text, AreaId, CampaignId, EntityId, HouseholdId, MemberId, Time, UserId, VisitId,
};
use crate::error::{ApiError, ApiResult, Kind};
use crate::with_conn;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = households)]
pub struct Household {
    pub id: HouseholdId,
    /// The village the household lives in.
    pub area_id: AreaId,
    pub address: String,
    pub head_name: String,
    pub phone: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub notes: String,
    /// Version of the household unit (household, members, adoptions); the ETag.
    pub version: i64,
    #[serde(skip)]
    pub field_meta: String,
    #[serde(skip)]
    pub search_key: String,
    pub created_by: UserId,
    pub created_at: Time,
    pub updated_at: Time,
    pub deleted_at: Option<Time>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = members)]
pub struct Member {
    pub id: MemberId,
    pub household_id: HouseholdId,
    pub full_name: String,
    pub birth_year: Option<i32>,
    /// `male`, `female` or `other`.
    pub sex: Option<String>,
    pub phone: Option<String>,
    /// `yes`, `no` or `unknown`.
    pub smartphone: String,
    /// `none`, `quarantine_centralized`, `quarantine_home` or `testing_required`.
    pub priority: String,
    pub notes: String,
    /// Unit version of this member's last write; the ETag.
    pub version: i64,
    #[serde(skip)]
    pub field_meta: String,
    #[serde(skip)]
    pub search_key: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub deleted_at: Option<Time>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = adoptions)]
pub struct Adoption {
    pub member_id: MemberId,
    pub campaign_id: CampaignId,
    pub household_id: HouseholdId,
    /// `not_yet`, `installed`, `installed_with_help`, `already_installed`, `refused`,
    /// `no_smartphone`, `incompatible` or `later`.
    pub status: String,
    pub recorded_at: Time,
    pub recorded_by: UserId,
    /// Unit version of this adoption's last write; the ETag.
    pub version: i64,
    #[serde(skip)]
    pub field_meta: String,
}

#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = visits)]
pub struct Visit {
    pub id: VisitId,
    pub household_id: HouseholdId,
    pub campaign_id: CampaignId,
    pub canvasser_id: UserId,
    pub visited_at: Time,
    /// `met`, `not_home`, `refused`, `come_back_later` or `moved_away`.
    pub outcome: String,
    pub notes: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub created_at: Time,
}

/// The editable fields, as merged field by field.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HouseholdFields {
    area_id: AreaId,
    address: String,
    head_name: String,
    phone: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    notes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberFields {
    household_id: HouseholdId,
    full_name: String,
    birth_year: Option<i32>,
    sex: Option<String>,
    phone: Option<String>,
    smartphone: String,
    priority: String,
    notes: String,
}

/// The outcome of a write to a household unit.
#[derive(Debug, Clone)]
pub struct Written {
    pub household_id: HouseholdId,
    /// The household's village after the write.
    pub area_id: AreaId,
    pub household_version: i64,
    /// Values that lost to concurrent writes (kept for conflict review).
    pub losses: Vec<Loss>,
    /// The values of the written fields after the merge.
    pub values: Map<String, Value>,
}

fn written_values(state: &Map<String, Value>, patch: &Patch) -> Map<String, Value> {
    patch
        .fields()
        .keys()
        .filter_map(|k| Some((k.clone(), state.get(k)?.clone())))
        .collect()
}

fn to_map<T: Serialize>(v: &T) -> ApiResult<Map<String, Value>> {
    match serde_json::to_value(v).map_err(ApiError::internal)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::internal(anyhow::anyhow!(
            "fields are not an object"
        ))),
    }
}

fn from_map<T: DeserializeOwned>(m: Map<String, Value>) -> ApiResult<T> {
    serde_json::from_value(Value::Object(m)).map_err(ApiError::internal)
}

fn metas(json: &str) -> ApiResult<FieldMetas> {
    serde_json::from_str(json).map_err(ApiError::internal)
}

fn metas_json(m: &FieldMetas) -> ApiResult<String> {
    serde_json::to_string(m).map_err(ApiError::internal)
}

/// A client-chosen id that is taken: a unique violation on insert (cheaper than a lookup first).
fn exists_or(e: diesel::result::Error, what: &str) -> ApiError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => ApiError::conflict("exists", format!("a {what} with this id exists")),
        e => e.into(),
    }
}

fn version_mismatch(current: i64) -> ApiError {
    ApiError::new(
        Kind::PreconditionFailed,
        "version_mismatch",
        format!("the record changed since you read it; its version is now {current}"),
    )
}

fn deleted(what: &str) -> ApiError {
    ApiError::conflict("deleted", format!("this {what} was deleted"))
}

/// A household's village: exists, is a village, and lies in the caller's areas.
fn require_village(conn: &mut Conn<'_>, who: &Principal, area: AreaId) -> ApiResult<()> {
    let found: Option<(String, String)> = with_conn!(conn, |c| areas::table
        .find(area)
        .select((areas::path, areas::level))
        .first(c)
        .optional())?;
    let (path, level) = found.ok_or_else(|| ApiError::not_found("area"))?;
    if !who.covers(&path) {
        return Err(ApiError::out_of_scope());
    }
    if level != "village" {
        return Err(ApiError::invalid(
            "area_id",
            "level",
            "households belong to a village",
        ));
    }
    Ok(())
}

/// Bumps the unit version, locking the household row; `None` if there is no such household.
fn bump(conn: &mut Conn<'_>, id: HouseholdId, now: Time) -> ApiResult<Option<i64>> {
    Ok(with_conn!(conn, |c| diesel::update(
        households::table.find(id)
    )
    .set((
        households::version.eq(households::version + 1),
        households::updated_at.eq(now)
    ))
    .returning(households::version)
    .get_result::<i64>(c)
    .optional())?)
}

fn load_household(conn: &mut Conn<'_>, id: HouseholdId) -> ApiResult<Option<(Household, String)>> {
    Ok(with_conn!(conn, |c| households::table
        .inner_join(areas::table)
        .filter(households::id.eq(id))
        .select((Household::as_select(), areas::path))
        .first(c)
        .optional())?)
}

/// The household, if the caller may see it (deleted ones included).
pub fn get_household(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: HouseholdId,
) -> ApiResult<Household> {
    let (h, path) = load_household(conn, id)?.ok_or_else(|| ApiError::not_found("household"))?;
    if !who.covers(&path) {
        return Err(ApiError::out_of_scope());
    }
    Ok(h)
}

pub fn household_exists(conn: &mut Conn<'_>, id: HouseholdId) -> ApiResult<bool> {
    Ok(load_household(conn, id)?.is_some())
}

pub fn create_household(
    conn: &mut Conn<'_>,
    who: &Principal,
    w: &Writer,
    id: HouseholdId,
    patch: &Patch,
) -> ApiResult<Written> {
    let fields: HouseholdFields = from_map(patch.fields().clone())?;
    require_village(conn, who, fields.area_id)?;
    let now = Time::now();
    let mut state = Map::new();
    let mut m = FieldMetas::new();
    merge::merge(&mut state, &mut m, patch.fields(), w, 1);
    let values = written_values(&state, patch);
    let search = text::search_key(&format!("{} {}", fields.head_name, fields.address));
    with_conn!(conn, |c| diesel::insert_into(households::table)
        .values((
            households::id.eq(id),
            households::area_id.eq(fields.area_id),
            households::address.eq(&fields.address),
            households::head_name.eq(&fields.head_name),
            households::phone.eq(&fields.phone),
            households::lat.eq(fields.lat),
            households::lon.eq(fields.lon),
            households::notes.eq(&fields.notes),
            households::version.eq(1),
            households::field_meta.eq(metas_json(&m)?),
            households::search_key.eq(search),
            households::created_by.eq(who.user_id),
            households::created_at.eq(now),
            households::updated_at.eq(now),
        ))
        .execute(c))
    .map_err(|e| exists_or(e, "household"))?;
    changes::record(
        conn,
        change("household", EntityId(id.0), id, fields.area_id, "upsert", 1),
    )?;
    Ok(Written {
        household_id: id,
        area_id: fields.area_id,
        household_version: 1,
        losses: Vec::new(),
        values,
    })
}

fn change(
    entity: &'static str,
    entity_id: EntityId,
    h: HouseholdId,
    area: AreaId,
    op: &'static str,
    version: i64,
) -> Change {
    Change {
        entity,
        entity_id,
        household_id: Some(h),
        area_id: Some(area),
        op,
        version,
    }
}

/// Locks and loads a live household the caller covers, returning it with its new version.
fn lock_unit(conn: &mut Conn<'_>, who: &Principal, id: HouseholdId) -> ApiResult<(Household, i64)> {
    let now = Time::now();
    let version = bump(conn, id, now)?.ok_or_else(|| ApiError::not_found("household"))?;
    let h = get_household(conn, who, id)?;
    if h.deleted_at.is_some() {
        return Err(deleted("household"));
    }
    Ok((h, version))
}

/// Applies changed fields to a household. `expected` is the `If-Match` version of an online
/// edit; offline edits pass `None` and are merged against `w.base_version`.
pub fn update_household(
    conn: &mut Conn<'_>,
    who: &Principal,
    w: &Writer,
    id: HouseholdId,
    patch: &Patch,
    expected: Option<i64>,
) -> ApiResult<Written> {
    let (h, version) = lock_unit(conn, who, id)?;
    if expected.is_some_and(|e| e != version - 1) {
        return Err(version_mismatch(version - 1));
    }
    if let Some(area) = patch.get("area_id").and_then(Value::as_str) {
        let area: AreaId = area.parse().map_err(ApiError::internal)?;
        require_village(conn, who, area)?;
    }
    let fields = HouseholdFields {
        area_id: h.area_id,
        address: h.address.clone(),
        head_name: h.head_name.clone(),
        phone: h.phone.clone(),
        lat: h.lat,
        lon: h.lon,
        notes: h.notes.clone(),
    };
    let mut state = to_map(&fields)?;
    let mut m = metas(&h.field_meta)?;
    let losses = merge::merge(&mut state, &mut m, patch.fields(), w, version);
    let values = written_values(&state, patch);
    let f: HouseholdFields = from_map(state)?;
    let search = text::search_key(&format!("{} {}", f.head_name, f.address));
    with_conn!(conn, |c| diesel::update(households::table.find(id))
        .set((
            households::area_id.eq(f.area_id),
            households::address.eq(&f.address),
            households::head_name.eq(&f.head_name),
            households::phone.eq(&f.phone),
            households::lat.eq(f.lat),
            households::lon.eq(f.lon),
            households::notes.eq(&f.notes),
            households::field_meta.eq(metas_json(&m)?),
            households::search_key.eq(search),
        ))
        .execute(c))?;
    let moved = f.area_id != h.area_id;
    if moved {
        // Devices of the old village drop the household (and with it its members,
        // adoptions and visits); the new village's devices get the whole unit below.
        changes::record(
            conn,
            change(
                "household",
                EntityId(id.0),
                id,
                h.area_id,
                "delete",
                version,
            ),
        )?;
    }
    changes::record(
        conn,
        change(
            "household",
            EntityId(id.0),
            id,
            f.area_id,
            "upsert",
            version,
        ),
    )?;
    if moved {
        rerecord_children(conn, id, f.area_id)?;
    }
    Ok(Written {
        household_id: id,
        area_id: f.area_id,
        household_version: version,
        losses,
        values,
    })
}

/// Records a change for every member, adoption and visit of a household that moved to
/// `area`, so that devices of that village receive the whole unit.
fn rerecord_children(conn: &mut Conn<'_>, id: HouseholdId, area: AreaId) -> ApiResult<()> {
    let (ms, ads, vs) = with_conn!(conn, |c| {
        let ms: Vec<(MemberId, i64, Option<Time>)> = members::table
            .filter(members::household_id.eq(id))
            .select((members::id, members::version, members::deleted_at))
            .load(c)?;
        let ads: Vec<(MemberId, i64)> = adoptions::table
            .filter(adoptions::household_id.eq(id))
            .select((adoptions::member_id, adoptions::version))
            .load(c)?;
        let vs: Vec<VisitId> = visits::table
            .filter(visits::household_id.eq(id))
            .select(visits::id)
            .load(c)?;
        Ok::<_, diesel::result::Error>((ms, ads, vs))
    })?;
    for (m, version, deleted) in ms {
        let op = if deleted.is_some() {
            "delete"
        } else {
            "upsert"
        };
        changes::record(conn, change("member", EntityId(m.0), id, area, op, version))?;
    }
    for (m, version) in ads {
        changes::record(
            conn,
            change("adoption", EntityId(m.0), id, area, "upsert", version),
        )?;
    }
    for v in vs {
        changes::record(conn, change("visit", EntityId(v.0), id, area, "upsert", 1))?;
    }
    Ok(())
}

/// Soft-deletes a household; it travels to devices as a tombstone.
pub fn delete_household(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: HouseholdId,
    expected: Option<i64>,
) -> ApiResult<Written> {
    let (h, version) = lock_unit(conn, who, id)?;
    if expected.is_some_and(|e| e != version - 1) {
        return Err(version_mismatch(version - 1));
    }
    with_conn!(conn, |c| diesel::update(households::table.find(id))
        .set(households::deleted_at.eq(Some(Time::now())))
        .execute(c))?;
    changes::record(
        conn,
        change(
            "household",
            EntityId(id.0),
            id,
            h.area_id,
            "delete",
            version,
        ),
    )?;
    Ok(Written {
        household_id: id,
        area_id: h.area_id,
        household_version: version,
        losses: Vec::new(),
        values: Map::new(),
    })
}

fn load_member(conn: &mut Conn<'_>, id: MemberId) -> ApiResult<Option<Member>> {
    Ok(with_conn!(conn, |c| members::table
        .find(id)
        .select(Member::as_select())
        .first(c)
        .optional())?)
}

/// The household of a member (deleted or not), if the member exists.
pub fn member_household(conn: &mut Conn<'_>, id: MemberId) -> ApiResult<Option<HouseholdId>> {
    Ok(load_member(conn, id)?.map(|m| m.household_id))
}

/// The village of a household, if it exists.
pub fn household_area(conn: &mut Conn<'_>, id: HouseholdId) -> ApiResult<Option<AreaId>> {
    Ok(load_household(conn, id)?.map(|(h, _)| h.area_id))
}

/// The member, if the caller may see its household.
pub fn get_member(conn: &mut Conn<'_>, who: &Principal, id: MemberId) -> ApiResult<Member> {
    let m = load_member(conn, id)?.ok_or_else(|| ApiError::not_found("member"))?;
    get_household(conn, who, m.household_id)?;
    Ok(m)
}

pub fn create_member(
    conn: &mut Conn<'_>,
    who: &Principal,
    w: &Writer,
    id: MemberId,
    patch: &Patch,
) -> ApiResult<Written> {
    let fields: MemberFields = from_map(patch.fields().clone())?;
    let (h, version) = match lock_unit(conn, who, fields.household_id) {
        Err(e) if e.kind == Kind::NotFound => {
            return Err(ApiError::invalid(
                "household_id",
                "unknown_household",
                "no such household",
            ))
        }
        r => r?,
    };
    let mut state = Map::new();
    let mut m = FieldMetas::new();
    merge::merge(&mut state, &mut m, patch.fields(), w, version);
    let values = written_values(&state, patch);
    let now = Time::now();
    with_conn!(conn, |c| diesel::insert_into(members::table)
        .values((
            members::id.eq(id),
            members::household_id.eq(h.id),
            members::full_name.eq(&fields.full_name),
            members::birth_year.eq(fields.birth_year),
            members::sex.eq(&fields.sex),
            members::phone.eq(&fields.phone),
            members::smartphone.eq(&fields.smartphone),
            members::priority.eq(&fields.priority),
            members::notes.eq(&fields.notes),
            members::version.eq(version),
            members::field_meta.eq(metas_json(&m)?),
            members::search_key.eq(text::search_key(&fields.full_name)),
            members::created_at.eq(now),
            members::updated_at.eq(now),
        ))
        .execute(c))
    .map_err(|e| exists_or(e, "member"))?;
    changes::record(
        conn,
        change("member", EntityId(id.0), h.id, h.area_id, "upsert", version),
    )?;
    Ok(Written {
        household_id: h.id,
        area_id: h.area_id,
        household_version: version,
        losses: Vec::new(),
        values,
    })
}

/// Locks the unit of a member and loads both; the member must be live.
fn lock_member(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: MemberId,
) -> ApiResult<(Household, Member, i64)> {
    let household = load_member(conn, id)?
        .ok_or_else(|| ApiError::not_found("member"))?
        .household_id;
    let (h, version) = lock_unit(conn, who, household)?;
    let m = load_member(conn, id)?.ok_or_else(|| ApiError::not_found("member"))?;
    if m.deleted_at.is_some() {
        return Err(deleted("member"));
    }
    Ok((h, m, version))
}

pub fn update_member(
    conn: &mut Conn<'_>,
    who: &Principal,
    w: &Writer,
    id: MemberId,
    patch: &Patch,
    expected: Option<i64>,
) -> ApiResult<Written> {
    let (h, cur, version) = lock_member(conn, who, id)?;
    if expected.is_some_and(|e| e != cur.version) {
        return Err(version_mismatch(cur.version));
    }
    let fields = MemberFields {
        household_id: cur.household_id,
        full_name: cur.full_name.clone(),
        birth_year: cur.birth_year,
        sex: cur.sex.clone(),
        phone: cur.phone.clone(),
        smartphone: cur.smartphone.clone(),
        priority: cur.priority.clone(),
        notes: cur.notes.clone(),
    };
    let mut state = to_map(&fields)?;
    let mut m = metas(&cur.field_meta)?;
    let losses = merge::merge(&mut state, &mut m, patch.fields(), w, version);
    let values = written_values(&state, patch);
    let f: MemberFields = from_map(state)?;
    with_conn!(conn, |c| diesel::update(members::table.find(id))
        .set((
            members::full_name.eq(&f.full_name),
            members::birth_year.eq(f.birth_year),
            members::sex.eq(&f.sex),
            members::phone.eq(&f.phone),
            members::smartphone.eq(&f.smartphone),
            members::priority.eq(&f.priority),
            members::notes.eq(&f.notes),
            members::version.eq(version),
            members::field_meta.eq(metas_json(&m)?),
            members::search_key.eq(text::search_key(&f.full_name)),
            members::updated_at.eq(Time::now()),
        ))
        .execute(c))?;
    changes::record(
        conn,
        change("member", EntityId(id.0), h.id, h.area_id, "upsert", version),
    )?;
    Ok(Written {
        household_id: h.id,
        area_id: h.area_id,
        household_version: version,
        losses,
        values,
    })
}

pub fn delete_member(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: MemberId,
    expected: Option<i64>,
) -> ApiResult<Written> {
    let (h, cur, version) = lock_member(conn, who, id)?;
    if expected.is_some_and(|e| e != cur.version) {
        return Err(version_mismatch(cur.version));
    }
    let now = Time::now();
    with_conn!(conn, |c| diesel::update(members::table.find(id))
        .set((
            members::deleted_at.eq(Some(now)),
            members::version.eq(version),
            members::updated_at.eq(now)
        ))
        .execute(c))?;
    changes::record(
        conn,
        change("member", EntityId(id.0), h.id, h.area_id, "delete", version),
    )?;
    Ok(Written {
        household_id: h.id,
        area_id: h.area_id,
        household_version: version,
        losses: Vec::new(),
        values: Map::new(),
    })
}

/// What an adoption write requires of the existing record.
#[derive(Debug, Clone, Copy)]
pub enum AdoptionPrecondition {
    /// Online edit: an existing adoption needs its version (`If-Match`).
    IfMatch(Option<i64>),
    /// Offline edit: merged against the writer's base version.
    Merge,
}

pub fn get_adoption(
    conn: &mut Conn<'_>,
    member: MemberId,
    campaign: CampaignId,
) -> ApiResult<Option<Adoption>> {
    Ok(with_conn!(conn, |c| adoptions::table
        .find((member, campaign))
        .select(Adoption::as_select())
        .first(c)
        .optional())?)
}

/// Sets a member's adoption status for a campaign.
pub fn set_adoption(
    conn: &mut Conn<'_>,
    who: &Principal,
    w: &Writer,
    member: MemberId,
    campaign: CampaignId,
    patch: &Patch,
    pre: AdoptionPrecondition,
) -> ApiResult<Written> {
    campaigns::get(conn, campaign)?;
    let (h, _, version) = lock_member(conn, who, member)?;
    let existing = get_adoption(conn, member, campaign)?;
    if let (AdoptionPrecondition::IfMatch(expected), Some(a)) = (pre, &existing) {
        match expected {
            None => {
                return Err(ApiError::new(
                    Kind::PreconditionRequired,
                    "if_match_required",
                    format!(
                        "this adoption exists: send If-Match with its version ({})",
                        a.version
                    ),
                ))
            }
            Some(e) if e != a.version => return Err(version_mismatch(a.version)),
            _ => {}
        }
    }
    let (mut state, mut m) = match &existing {
        Some(a) => (
            to_map(&serde_json::json!({ "status": a.status }))?,
            metas(&a.field_meta)?,
        ),
        None => (Map::new(), FieldMetas::new()),
    };
    let losses = merge::merge(&mut state, &mut m, patch.fields(), w, version);
    let values = written_values(&state, patch);
    let status = state
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("not_yet")
        .to_owned();
    let now = Time::now();
    let meta = metas_json(&m)?;
    with_conn!(conn, |c| {
        diesel::delete(adoptions::table.find((member, campaign))).execute(c)?;
        diesel::insert_into(adoptions::table)
            .values((
                adoptions::member_id.eq(member),
                adoptions::campaign_id.eq(campaign),
                adoptions::household_id.eq(h.id),
                adoptions::status.eq(&status),
                adoptions::recorded_at.eq(now),
                adoptions::recorded_by.eq(who.user_id),
                adoptions::version.eq(version),
                adoptions::field_meta.eq(&meta),
            ))
            .execute(c)
    })?;
    changes::record(
        conn,
        change(
            "adoption",
            EntityId(member.0),
            h.id,
            h.area_id,
            "upsert",
            version,
        ),
    )?;
    Ok(Written {
        household_id: h.id,
        area_id: h.area_id,
        household_version: version,
        losses,
        values,
    })
}

/// Records a visit. Visits are facts: resending the same visit returns it unchanged; another
/// visit under a used id is refused.
pub fn record_visit(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: VisitId,
    patch: &Patch,
) -> ApiResult<(Visit, bool)> {
    #[derive(Deserialize)]
    struct VisitFields {
        household_id: HouseholdId,
        campaign_id: CampaignId,
        visited_at: Time,
        outcome: String,
        notes: String,
        lat: Option<f64>,
        lon: Option<f64>,
    }
    let f: VisitFields = from_map(patch.fields().clone())?;
    let h = match get_household(conn, who, f.household_id) {
        Err(e) if e.kind == Kind::NotFound => {
            return Err(ApiError::invalid(
                "household_id",
                "unknown_household",
                "no such household",
            ))
        }
        r => r?,
    };
    if let Err(e) = campaigns::get(conn, f.campaign_id) {
        return Err(if e.kind == Kind::NotFound {
            ApiError::invalid("campaign_id", "unknown_campaign", "no such campaign")
        } else {
            e
        });
    }
    let visit = Visit {
        id,
        household_id: f.household_id,
        campaign_id: f.campaign_id,
        canvasser_id: who.user_id,
        visited_at: f.visited_at,
        outcome: f.outcome,
        notes: f.notes,
        lat: f.lat,
        lon: f.lon,
        created_at: Time::now(),
    };
    if let Some(existing) = get_visit(conn, id)? {
        let same = Visit {
            created_at: existing.created_at,
            canvasser_id: existing.canvasser_id,
            ..visit.clone()
        };
        return if same == existing {
            Ok((existing, false))
        } else {
            Err(ApiError::conflict(
                "id_reused",
                "another visit was recorded under this id",
            ))
        };
    }
    with_conn!(conn, |c| diesel::insert_into(visits::table)
        .values(&visit)
        .execute(c))?;
    changes::record(
        conn,
        change("visit", EntityId(id.0), h.id, h.area_id, "upsert", 1),
    )?;
    Ok((visit, true))
}

fn get_visit(conn: &mut Conn<'_>, id: VisitId) -> ApiResult<Option<Visit>> {
    Ok(with_conn!(conn, |c| visits::table
        .find(id)
        .select(Visit::as_select())
        .first(c)
        .optional())?)
}

/// A visit, if the caller may see its household.
pub fn visit(conn: &mut Conn<'_>, who: &Principal, id: VisitId) -> ApiResult<Visit> {
    let v = get_visit(conn, id)?.ok_or_else(|| ApiError::not_found("visit"))?;
    get_household(conn, who, v.household_id)?;
    Ok(v)
}

/// A member with their adoptions, as a household's detail shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberDetail {
    #[serde(flatten)]
    pub member: Member,
    pub adoptions: Vec<Adoption>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdDetail {
    #[serde(flatten)]
    pub household: Household,
    /// Live members, oldest first.
    pub members: Vec<MemberDetail>,
    /// The 20 latest visits, newest first.
    pub recent_visits: Vec<Visit>,
}

pub fn household_detail(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: HouseholdId,
) -> ApiResult<HouseholdDetail> {
    let household = get_household(conn, who, id)?;
    if household.deleted_at.is_some() {
        return Err(ApiError::new(
            Kind::NotFound,
            "deleted",
            "this household was deleted",
        ));
    }
    let (ms, ads, recent_visits) = with_conn!(conn, |c| {
        let ms: Vec<Member> = members::table
            .filter(members::household_id.eq(id))
            .filter(members::deleted_at.is_null())
            .select(Member::as_select())
            .order((members::created_at, members::id))
            .load(c)?;
        let ads: Vec<Adoption> = adoptions::table
            .filter(adoptions::household_id.eq(id))
            .select(Adoption::as_select())
            .order(adoptions::campaign_id)
            .load(c)?;
        let vs: Vec<Visit> = visits::table
            .filter(visits::household_id.eq(id))
            .select(Visit::as_select())
            .order(visits::visited_at.desc())
            .limit(20)
            .load(c)?;
        Ok::<_, diesel::result::Error>((ms, ads, vs))
    })?;
    let members = ms
        .into_iter()
        .map(|member| MemberDetail {
            adoptions: ads
                .iter()
                .filter(|a| a.member_id == member.id)
                .cloned()
                .collect(),
            member,
        })
        .collect();
    Ok(HouseholdDetail {
        household,
        members,
        recent_visits,
    })
}

#[derive(Debug, Clone, Default)]
pub struct HouseholdFilter {
    pub area: Option<AreaId>,
    pub campaign: Option<CampaignId>,
    pub visited: Option<bool>,
    pub priority: Option<String>,
    pub adoption_status: Option<String>,
    pub q: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdItem {
    #[serde(flatten)]
    pub household: Household,
    /// Live members.
    pub member_count: i64,
}

/// Live households in the caller's areas (or the given subtree of them), filtered and paged.
pub fn list_households(
    conn: &mut Conn<'_>,
    who: &Principal,
    f: &HouseholdFilter,
    page: PageReq,
) -> ApiResult<(Vec<HouseholdItem>, i64)> {
    let bound: Option<Vec<String>> = match f.area {
        Some(a) => Some(vec![who.require_area(conn, a)?]),
        None => who.prefixes().map(<[String]>::to_vec),
    };
    let area_ids = match &bound {
        Some(prefixes) => Some(scope::area_ids_under(conn, prefixes)?),
        None => None,
    };
    if f.campaign.is_none() && f.adoption_status.is_some() {
        return Err(ApiError::invalid(
            "campaign",
            "required",
            "adoption_status needs a campaign",
        ));
    }
    if let Some(c) = f.campaign {
        campaigns::get(conn, c)?;
    }
    let terms = f.q.as_deref().map(text::search_terms).unwrap_or_default();
    let run = |c: &mut Conn<'_>, count: bool| -> ApiResult<(Vec<Household>, i64)> {
        with_conn!(c, |c| {
            let mut q = households::table
                .filter(households::deleted_at.is_null())
                .into_boxed();
            if let Some(ids) = &area_ids {
                q = q.filter(households::area_id.eq_any(ids));
            }
            if let Some(visited) = f.visited {
                let any_visit = visits::table
                    .filter(visits::household_id.eq(households::id))
                    .filter(
                        visits::campaign_id
                            .eq(f.campaign.unwrap_or(CampaignId(uuid::Uuid::nil())))
                            .or(f.campaign.is_none().into_sql::<diesel::sql_types::Bool>()),
                    );
                q = if visited {
                    q.filter(exists(any_visit))
                } else {
                    q.filter(not(exists(any_visit)))
                };
            }
            if let Some(p) = &f.priority {
                q = q.filter(
                    households::id.eq_any(
                        members::table
                            .filter(members::priority.eq(p))
                            .filter(members::deleted_at.is_null())
                            .select(members::household_id),
                    ),
                );
            }
            if let (Some(status), Some(campaign)) = (&f.adoption_status, f.campaign) {
                if status == "not_yet" {
                    let decided = adoptions::table
                        .filter(adoptions::member_id.eq(members::id))
                        .filter(adoptions::campaign_id.eq(campaign))
                        .filter(adoptions::status.ne("not_yet"));
                    q = q.filter(
                        households::id.eq_any(
                            members::table
                                .filter(members::deleted_at.is_null())
                                .filter(not(exists(decided)))
                                .select(members::household_id),
                        ),
                    );
                } else {
                    q = q.filter(
                        households::id.eq_any(
                            adoptions::table
                                .inner_join(members::table)
                                .filter(members::deleted_at.is_null())
                                .filter(adoptions::campaign_id.eq(campaign))
                                .filter(adoptions::status.eq(status))
                                .select(adoptions::household_id),
                        ),
                    );
                }
            }
            for t in &terms {
                let pattern = text::like_pattern(t);
                q = q.filter(
                    households::search_key
                        .like(pattern.clone())
                        .escape('\\')
                        .or(households::id.eq_any(
                            members::table
                                .filter(members::deleted_at.is_null())
                                .filter(members::search_key.like(pattern).escape('\\'))
                                .select(members::household_id),
                        )),
                );
            }
            if count {
                Ok((Vec::new(), q.count().get_result(c)?))
            } else {
                let rows = q
                    .select(Household::as_select())
                    .order((households::address, households::head_name, households::id))
                    .limit(page.per_page)
                    .offset(page.offset())
                    .load(c)?;
                Ok((rows, 0))
            }
        })
    };
    let (_, total) = run(conn, true)?;
    let (rows, _) = run(conn, false)?;
    let ids: Vec<HouseholdId> = rows.iter().map(|h| h.id).collect();
    let counts: Vec<(HouseholdId, i64)> = with_conn!(conn, |c| members::table
        .filter(members::household_id.eq_any(&ids))
        .filter(members::deleted_at.is_null())
        .group_by(members::household_id)
        .select((members::household_id, diesel::dsl::count_star()))
        .load(c))?;
    let items = rows
        .into_iter()
        .map(|household| HouseholdItem {
            member_count: counts
                .iter()
                .find(|(id, _)| *id == household.id)
                .map_or(0, |(_, n)| *n),
            household,
        })
        .collect();
    Ok((items, total))
}

/// Bulk reads for sync pulls: the current rows of many households at once.
pub mod bulk {
    use super::*;

    pub fn households(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> ApiResult<Vec<Household>> {
        Ok(with_conn!(conn, |c| households::table
            .filter(households::id.eq_any(ids))
            .select(Household::as_select())
            .load(c))?)
    }

    /// Live households in the given villages (`None`: all), after `after` in id order.
    pub fn live_households_after(
        conn: &mut Conn<'_>,
        areas: Option<&[AreaId]>,
        after: Option<HouseholdId>,
        limit: i64,
    ) -> ApiResult<Vec<Household>> {
        Ok(with_conn!(conn, |c| {
            let mut q = households::table
                .filter(households::deleted_at.is_null())
                .into_boxed();
            if let Some(a) = areas {
                q = q.filter(households::area_id.eq_any(a));
            }
            if let Some(after) = after {
                q = q.filter(households::id.gt(after));
            }
            q.select(Household::as_select())
                .order(households::id)
                .limit(limit)
                .load(c)
        })?)
    }

    pub fn members(conn: &mut Conn<'_>, ids: &[MemberId]) -> ApiResult<Vec<Member>> {
        Ok(with_conn!(conn, |c| members::table
            .filter(members::id.eq_any(ids))
            .select(Member::as_select())
            .load(c))?)
    }

    pub fn members_of(conn: &mut Conn<'_>, households: &[HouseholdId]) -> ApiResult<Vec<Member>> {
        Ok(with_conn!(conn, |c| members::table
            .filter(members::household_id.eq_any(households))
            .filter(members::deleted_at.is_null())
            .select(Member::as_select())
            .order(members::id)
            .load(c))?)
    }

    pub fn adoptions_of_members(conn: &mut Conn<'_>, ids: &[MemberId]) -> ApiResult<Vec<Adoption>> {
        Ok(with_conn!(conn, |c| adoptions::table
            .filter(adoptions::member_id.eq_any(ids))
            .select(Adoption::as_select())
            .order((adoptions::member_id, adoptions::campaign_id))
            .load(c))?)
    }

    pub fn visits(conn: &mut Conn<'_>, ids: &[VisitId]) -> ApiResult<Vec<Visit>> {
        Ok(with_conn!(conn, |c| visits::table
            .filter(visits::id.eq_any(ids))
            .select(Visit::as_select())
            .load(c))?)
    }

    pub fn visits_of(conn: &mut Conn<'_>, households: &[HouseholdId]) -> ApiResult<Vec<Visit>> {
        Ok(with_conn!(conn, |c| visits::table
            .filter(visits::household_id.eq_any(households))
            .select(Visit::as_select())
            .order(visits::id)
            .load(c))?)
    }
}
