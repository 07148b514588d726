//! Households, members, adoptions and visits over REST. Every write goes through the one
//! write path of offline sync and resolutions (`write`), conflict books included.

use super::contract;
use super::{
    body_id, etag, if_match, require_if_match, AppState, Auth, Deferred, Page, PageParams,
};
use crate::db::Conn;
use crate::domain;
use crate::domain::fields::{self, Mode, Patch};
use crate::domain::household::records::{ADOPTION, HOUSEHOLD, MEMBER, VISIT};
use crate::domain::household::{AdoptionStatus, Precondition, Priority};
use crate::domain::{AreaId, CampaignId, HouseholdId, MemberId, VisitId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::areas;
use crate::store::error::{Error as StoreError, Result as StoreResult};
use crate::store::households::{
    self as hh, HouseholdDetail, HouseholdFilter, HouseholdItem, Member, NewHousehold, NewMember,
    Visit,
};
use crate::store::scope::Principal;
use crate::write::{self, Context, Transaction, Write};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/households", web::get().to(list))
        .route("/households", web::post().to(create))
        .route("/households/{id}", web::get().to(get))
        .route("/households/{id}", web::patch().to(update))
        .route("/households/{id}", web::delete().to(delete))
        .route("/members", web::post().to(create_member))
        .route("/members/{id}", web::get().to(get_member))
        .route("/members/{id}", web::patch().to(update_member))
        .route("/members/{id}", web::delete().to(delete_member))
        .route(
            "/members/{id}/adoptions/{campaign_id}",
            web::put().to(set_adoption),
        )
        .route("/visits", web::post().to(create_visit))
        .route("/visits/{id}", web::get().to(get_visit));
}

/// An online edit of the version the user read (`If-Match`; `None`: a create, or an
/// adoption that may not exist yet), through the one write path.
fn edit(conn: &mut Conn<'_>, who: &Principal, read: Option<i64>, w: Write) -> ApiResult<()> {
    write::one(
        conn,
        who,
        &Context::online(who, Precondition::IfMatch(read)),
        w,
    )?;
    Ok(())
}

fn parse(entity: &fields::Entity, body: &Value, mode: Mode) -> ApiResult<Patch> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("", "not_an_object", "expected a JSON object"))?;
    Patch::parse_map(entity, obj, &["id"], mode).map_err(ApiError::validation)
}

/// The record a create names (`area_id`, `household_id`), checked against the caller's
/// areas before the rest of the body: an outsider hears 403 whatever else it sent. A name
/// that is no id, or of no record, is left to the validation.
fn named_parent_in_scope(conn: &mut Conn<'_>, who: &Principal, body: &Value) -> ApiResult<()> {
    let named = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
    };
    let found = |r: StoreResult<()>| match r {
        Err(StoreError::Domain(domain::Error::NotFound(_))) => Ok(()),
        r => r.map_err(ApiError::from),
    };
    if let Some(area) = named("area_id") {
        found(areas::get(conn, AreaId(area)).and_then(|a| who.require_covers(&a.path)))?;
    }
    if let Some(household) = named("household_id") {
        found(hh::get_household(conn, who, HouseholdId(household)).map(|_| ()))?;
    }
    Ok(())
}

fn no_id(body: &Value) -> ApiResult<()> {
    if body.get("id").is_some() {
        return Err(ApiError::invalid("id", "immutable", "cannot be changed"));
    }
    Ok(())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HouseholdQuery {
    /// Only households in this area's subtree (it must be inside the caller's areas).
    pub area: Option<AreaId>,
    /// The campaign that `visited` and `adoption_status` refer to.
    pub campaign: Option<CampaignId>,
    /// Visited (in the campaign, if given) or never visited.
    pub visited: Option<bool>,
    /// Households with a live member of this priority category.
    #[param(schema_with = contract::priorities)]
    pub priority: Option<String>,
    /// Households with a live member of this adoption status in the campaign (`not_yet` also
    /// counts members with no status recorded).
    #[param(schema_with = contract::adoption_statuses)]
    pub adoption_status: Option<String>,
    /// Words that must all appear in the head's name, the address or a member's name,
    /// ignoring diacritics and case.
    pub q: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

impl HouseholdQuery {
    /// The filter, with the category and status checked.
    pub fn filter(self) -> ApiResult<HouseholdFilter> {
        /// A value of a closed set, or the field's error listing the set.
        fn choice<T>(
            field: &str,
            value: Option<String>,
            parse: fn(&str) -> Option<T>,
            names: &[&str],
        ) -> ApiResult<Option<T>> {
            value
                .map(|v| {
                    parse(&v).ok_or_else(|| {
                        ApiError::invalid(
                            field,
                            "choice",
                            format!("must be one of: {}", names.join(", ")),
                        )
                    })
                })
                .transpose()
        }
        Ok(HouseholdFilter {
            priority: choice("priority", self.priority, Priority::parse, Priority::NAMES)?,
            adoption_status: choice(
                "adoption_status",
                self.adoption_status,
                AdoptionStatus::parse,
                AdoptionStatus::NAMES,
            )?,
            area: self.area,
            campaign: self.campaign,
            visited: self.visited,
            q: self.q,
        })
    }
}

/// The request bodies, as their schemas: each is made from the entity's field declarations
/// (`domain::fields`), the same that the validator reads.
macro_rules! body_schema {
    ($($(#[$doc:meta])* $name:ident = $entity:expr, $mode:expr, $id:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                contract::entity_schema(&$entity, $mode, $id)
            }
        }
        impl ToSchema for $name {}
    )*};
}

body_schema! {
    /// Body of `POST /households`.
    HouseholdInput = HOUSEHOLD, Mode::Create, true;
    /// Body of `PATCH /households/{id}`: the fields to change.
    HouseholdPatch = HOUSEHOLD, Mode::Update, false;
    /// Body of `POST /members`.
    MemberInput = MEMBER, Mode::Create, true;
    /// Body of `PATCH /members/{id}`: the fields to change.
    MemberPatch = MEMBER, Mode::Update, false;
    /// Body of `PUT /members/{id}/adoptions/{campaign_id}`.
    AdoptionInput = ADOPTION, Mode::Create, false;
    /// Body of `POST /visits`.
    VisitInput = VISIT, Mode::Create, true;
}

#[derive(Serialize, ToSchema)]
pub struct MemberWithAdoptions {
    #[serde(flatten)]
    pub member: Member,
    pub adoptions: Vec<hh::Adoption>,
}

#[utoipa::path(get, path = "/api/v1/households", tag = "households", params(HouseholdQuery), security(("bearer" = [])), responses(
    (status = 200, body = Page<HouseholdItem>), (status = 403, body = Problem), (status = 422, body = Problem),
))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<HouseholdQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    let f = q.filter()?;
    let (items, total) = state
        .as_user(auth, move |conn, who| {
            hh::list_households(conn, who, &f, page, true).map_err(ApiError::from)
        })
        .await?;
    let total = total.unwrap_or_default();
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[utoipa::path(post, path = "/api/v1/households", tag = "households", request_body = HouseholdInput, security(("bearer" = [])), responses(
    (status = 201, body = HouseholdDetail, headers(("ETag" = String))),
    (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    body: Deferred<web::Json<Value>>,
) -> ApiResult<HttpResponse> {
    let d = state
        .as_user_tx(auth, move |conn, who| {
            let body = body.get()?;
            named_parent_in_scope(conn, who, &body)?;
            let id = HouseholdId(body_id(&body)?.unwrap_or_else(uuid::Uuid::new_v4));
            let patch = parse(&HOUSEHOLD, &body, Mode::Create)?;
            edit(
                conn,
                who,
                None,
                Write::CreateHousehold(id, &NewHousehold::new(&patch)?),
            )?;
            hh::household_detail(conn, who, id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(d.household.version))
        .json(d))
}

#[utoipa::path(get, path = "/api/v1/households/{id}", tag = "households", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "With live members, their adoptions and recent visits", body = HouseholdDetail, headers(("ETag" = String))),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<HouseholdId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let d = state
        .as_user(auth, move |conn, who| {
            hh::household_detail(conn, who, id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(d.household.version))
        .json(d))
}

#[utoipa::path(patch, path = "/api/v1/households/{id}", tag = "households", params(("id" = uuid::Uuid, Path),
    ("If-Match" = String, Header, description = "The version (ETag) you read")), request_body = HouseholdPatch, security(("bearer" = [])),
    responses((status = 200, body = HouseholdDetail, headers(("ETag" = String))), (status = 409, description = "Deleted", body = Problem),
        (status = 412, description = "Stale version: nothing changed", body = Problem), (status = 428, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<HouseholdId>,
    body: Deferred<web::Json<Value>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let expected = require_if_match(&req);
    let d = state
        .as_user_tx(auth, move |conn, who| {
            // The household is read once: here, into the write's identity map (locked on
            // PostgreSQL), where the write finds it and the answer takes it as written.
            let mut tx = Transaction::new();
            tx.household(conn, who, id)?;
            let body = body.get()?;
            no_id(&body)?;
            let patch = parse(&HOUSEHOLD, &body, Mode::Update)?;
            let ctx = Context::online(who, Precondition::IfMatch(Some(expected?)));
            tx.apply(conn, who, &ctx, Write::UpdateHousehold(id, &patch))
                .map_err(|r| r.error)?;
            let written = tx.household(conn, who, id)?;
            tx.commit(conn)?;
            hh::detail_of(conn, written).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(d.household.version))
        .json(d))
}

#[utoipa::path(delete, path = "/api/v1/households/{id}", tag = "households", params(("id" = uuid::Uuid, Path),
    ("If-Match" = String, Header)), security(("bearer" = [])),
    responses((status = 204, description = "Deleted (kept as a tombstone for devices)"), (status = 412, body = Problem), (status = 428, body = Problem)))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<HouseholdId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let expected = require_if_match(&req);
    state
        .as_user_tx(auth, move |conn, who| {
            hh::get_household(conn, who, id)?;
            edit(conn, who, Some(expected?), Write::DeleteHousehold(id))
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn member_view(
    conn: &mut crate::db::Conn<'_>,
    who: &Principal,
    id: MemberId,
) -> ApiResult<MemberWithAdoptions> {
    let member = hh::get_member(conn, who, id)?;
    if member.deleted_at.is_some() {
        return Err(ApiError::new(
            crate::error::Kind::NotFound,
            "deleted",
            "this member was deleted",
        ));
    }
    let detail = hh::household_detail(conn, who, member.household_id)?;
    let adoptions = detail
        .members
        .into_iter()
        .find(|m| m.member.id == id)
        .map(|m| m.adoptions)
        .unwrap_or_default();
    Ok(MemberWithAdoptions { member, adoptions })
}

#[utoipa::path(post, path = "/api/v1/members", tag = "households", request_body = MemberInput, security(("bearer" = [])), responses(
    (status = 201, body = MemberWithAdoptions, headers(("ETag" = String))), (status = 409, body = Problem), (status = 422, body = Problem),
))]
pub async fn create_member(
    state: web::Data<AppState>,
    auth: Auth,
    body: Deferred<web::Json<Value>>,
) -> ApiResult<HttpResponse> {
    let m = state
        .as_user_tx(auth, move |conn, who| {
            let body = body.get()?;
            named_parent_in_scope(conn, who, &body)?;
            let id = MemberId(body_id(&body)?.unwrap_or_else(uuid::Uuid::new_v4));
            let patch = parse(&MEMBER, &body, Mode::Create)?;
            edit(
                conn,
                who,
                None,
                Write::CreateMember(id, &NewMember::new(&patch)?),
            )?;
            member_view(conn, who, id)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(m.member.version))
        .json(m))
}

#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "households", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = MemberWithAdoptions, headers(("ETag" = String))), (status = 404, body = Problem)))]
pub async fn get_member(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<MemberId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let m = state
        .as_user(auth, move |conn, who| member_view(conn, who, id))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(m.member.version))
        .json(m))
}

#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "households", params(("id" = uuid::Uuid, Path), ("If-Match" = String, Header)),
    request_body = MemberPatch, security(("bearer" = [])),
    responses((status = 200, body = MemberWithAdoptions, headers(("ETag" = String))), (status = 412, body = Problem), (status = 428, body = Problem), (status = 422, body = Problem)))]
pub async fn update_member(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<MemberId>,
    body: Deferred<web::Json<Value>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let expected = require_if_match(&req);
    let m = state
        .as_user_tx(auth, move |conn, who| {
            hh::get_member(conn, who, id)?;
            let body = body.get()?;
            no_id(&body)?;
            let patch = parse(&MEMBER, &body, Mode::Update)?;
            let expected = expected?;
            edit(conn, who, Some(expected), Write::UpdateMember(id, &patch))?;
            member_view(conn, who, id)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(m.member.version))
        .json(m))
}

#[utoipa::path(delete, path = "/api/v1/members/{id}", tag = "households", params(("id" = uuid::Uuid, Path), ("If-Match" = String, Header)),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), (status = 412, body = Problem), (status = 428, body = Problem)))]
pub async fn delete_member(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<MemberId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let expected = require_if_match(&req);
    state
        .as_user_tx(auth, move |conn, who| {
            hh::get_member(conn, who, id)?;
            edit(conn, who, Some(expected?), Write::DeleteMember(id))
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/api/v1/members/{id}/adoptions/{campaign_id}", tag = "households",
    params(("id" = uuid::Uuid, Path), ("campaign_id" = uuid::Uuid, Path),
        ("If-Match" = Option<String>, Header, description = "Required when the adoption exists: its version")),
    request_body = AdoptionInput, security(("bearer" = [])),
    responses((status = 200, body = hh::Adoption, headers(("ETag" = String))), (status = 412, body = Problem), (status = 428, body = Problem), (status = 422, body = Problem)))]
pub async fn set_adoption(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: web::Path<(MemberId, CampaignId)>,
    body: Deferred<web::Json<Value>>,
) -> ApiResult<HttpResponse> {
    let (member, campaign) = path.into_inner();
    let expected = if_match(&req);
    let a = state
        .as_user_tx(auth, move |conn, who| {
            hh::get_member(conn, who, member)?;
            let patch = parse(&ADOPTION, &body.get()?.into_inner(), Mode::Create)?;
            let expected = expected?;
            edit(
                conn,
                who,
                expected,
                Write::SetAdoption(member, campaign, &patch),
            )?;
            hh::get_adoption(conn, member, campaign)?.ok_or_else(|| ApiError::not_found("adoption"))
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header(etag(a.version)).json(a))
}

#[utoipa::path(post, path = "/api/v1/visits", tag = "households", request_body = VisitInput, security(("bearer" = [])), responses(
    (status = 201, body = Visit), (status = 200, description = "The same visit was already recorded", body = Visit),
    (status = 409, description = "Another visit has this id", body = Problem), (status = 422, body = Problem),
))]
pub async fn create_visit(
    state: web::Data<AppState>,
    auth: Auth,
    body: Deferred<web::Json<Value>>,
) -> ApiResult<HttpResponse> {
    let write::RecordedVisit {
        visit,
        new: created,
    } = state
        .as_user_tx(auth, move |conn, who| {
            let body = body.get()?;
            named_parent_in_scope(conn, who, &body)?;
            let id = VisitId(body_id(&body)?.unwrap_or_else(uuid::Uuid::new_v4));
            let patch = parse(&VISIT, &body, Mode::Create)?;
            let done = write::one(
                conn,
                who,
                &Context::online(who, Precondition::IfMatch(None)),
                Write::RecordVisit(id, &patch),
            )?;
            done.visit.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("a visit write without its visit"))
            })
        })
        .await?;
    Ok(if created {
        HttpResponse::Created().json(visit)
    } else {
        HttpResponse::Ok().json(visit)
    })
}

#[utoipa::path(get, path = "/api/v1/visits/{id}", tag = "households", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Visit), (status = 404, body = Problem)))]
pub async fn get_visit(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<VisitId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .as_user(auth, move |conn, who| {
            hh::visit(conn, who, id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
