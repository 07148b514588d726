//! Campaigns and their targets.

use super::{AppState, Auth, Deferred, Origin};
use crate::auth::Role;
use crate::domain::vocabulary::Denominator;
use crate::domain::{AreaId, CampaignId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::audit;
use crate::store::{self, campaigns::Campaign, campaigns::Fields, campaigns::Target};
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/campaigns", web::get().to(list))
        .route("/campaigns", web::post().to(create))
        .route("/campaigns/{id}", web::get().to(get))
        .route("/campaigns/{id}", web::patch().to(update))
        .route("/campaigns/{id}/targets", web::get().to(targets))
        .route(
            "/campaigns/{id}/targets/{area_id}",
            web::put().to(set_target),
        )
        .route(
            "/campaigns/{id}/targets/{area_id}",
            web::delete().to(clear_target),
        );
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    pub id: Option<CampaignId>,
    #[schema(max_length = 200, pattern = r"\S")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Whom an area's rate counts over where no rate target says (default `registered`).
    #[serde(default)]
    pub denominator: Option<Denominator>,
}

/// The fields to change; the others stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    #[schema(max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    pub description: Option<String>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub denominator: Option<Denominator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// `rate_registered`, `rate_smartphone` (percent, above 0 and at most 100) or `count`.
    pub kind: String,
    pub value: f64,
}

/// Its schema ties the value's range to the kind (`contract::target_input`).
impl utoipa::PartialSchema for TargetInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::contract::target_input()
    }
}
impl ToSchema for TargetInput {}

#[derive(Serialize, ToSchema)]
pub struct CampaignList {
    pub items: Vec<Campaign>,
}

#[derive(Serialize, ToSchema)]
pub struct TargetList {
    pub items: Vec<Target>,
}

#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])), responses((status = 200, body = CampaignList)))]
pub async fn list(state: web::Data<AppState>, auth: Auth) -> ApiResult<HttpResponse> {
    let items = state
        .as_user(auth, |conn, _| {
            store::campaigns::list(conn).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(CampaignList { items }))
}

#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = NewCampaign, security(("bearer" = [])), responses(
    (status = 201, body = Campaign), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    body: Deferred<web::Json<NewCampaign>>,
) -> ApiResult<HttpResponse> {
    let campaign = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin])?;
            let c = body.get()?.into_inner();
            let id = c.id.unwrap_or_else(CampaignId::random);
            let fields = Fields {
                name: c.name,
                description: c.description,
                starts_on: c.starts_on,
                ends_on: c.ends_on,
                denominator: c.denominator.unwrap_or(Denominator::Registered),
            };
            let campaign = store::campaigns::create(conn, id, &fields)?;
            let action = audit::Action::new("campaign_created", format!("campaign/{}", id.0))
                .with(json!({"name": campaign.name}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(campaign)
        })
        .await?;
    Ok(HttpResponse::Created().json(campaign))
}

#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = uuid::Uuid, Path)), request_body = CampaignPatch,
    security(("bearer" = [])), responses((status = 200, body = Campaign), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Another campaign has that name", body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<CampaignId>,
    body: Deferred<web::Json<CampaignPatch>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let campaign = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin])?;
            let before = store::campaigns::get(conn, id)?;
            let p = body.get()?.into_inner();
            let fields = Fields {
                name: p.name.unwrap_or(before.name),
                description: p.description.unwrap_or(before.description),
                starts_on: p.starts_on.unwrap_or(before.starts_on),
                ends_on: p.ends_on.unwrap_or(before.ends_on),
                denominator: p
                    .denominator
                    .or_else(|| Denominator::parse(&before.denominator))
                    .unwrap_or(Denominator::Registered),
            };
            let campaign = store::campaigns::update(conn, id, &fields)?;
            let action = audit::Action::new("campaign_changed", format!("campaign/{}", id.0))
                .with(json!({"name": campaign.name}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(campaign)
        })
        .await?;
    Ok(HttpResponse::Ok().json(campaign))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Campaign), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<CampaignId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let c = state
        .as_user(auth, move |conn, _| {
            store::campaigns::get(conn, id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(c))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}/targets", tag = "campaigns", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Targets of the areas the caller may see", body = TargetList), (status = 404, body = Problem)))]
pub async fn targets(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<CampaignId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let items = state
        .as_user(auth, move |conn, who| {
            store::campaigns::get(conn, id)?;
            store::campaigns::targets(conn, id, who.prefixes()).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(TargetList { items }))
}

#[utoipa::path(put, path = "/api/v1/campaigns/{id}/targets/{area_id}", tag = "campaigns",
    params(("id" = uuid::Uuid, Path), ("area_id" = uuid::Uuid, Path)), request_body = TargetInput, security(("bearer" = [])),
    responses((status = 200, body = Target), (status = 403, description = "Not an admin, or a supervisor outside their areas", body = Problem),
        (status = 422, body = Problem)))]
pub async fn set_target(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    path: web::Path<(CampaignId, AreaId)>,
    body: Deferred<web::Json<TargetInput>>,
) -> ApiResult<HttpResponse> {
    let (id, area) = path.into_inner();
    let target = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            who.require_area(conn, area)?;
            let t = body.get()?.into_inner();
            let target = store::campaigns::set_target(conn, id, area, &t.kind, t.value)?;
            let a = store::areas::get(conn, area)?;
            let action = audit::Action::new("target_set", format!("campaign/{}", id.0))
                .in_area(a.id, &a.path)
                .with(json!({"kind": target.kind, "value": target.value}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(target)
        })
        .await?;
    Ok(HttpResponse::Ok().json(target))
}

#[utoipa::path(delete, path = "/api/v1/campaigns/{id}/targets/{area_id}", tag = "campaigns",
    params(("id" = uuid::Uuid, Path), ("area_id" = uuid::Uuid, Path)), security(("bearer" = [])),
    description = "Removes the area's own target: it inherits its parent's rate target again.",
    responses((status = 204, description = "Removed, or there was none"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn clear_target(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    path: web::Path<(CampaignId, AreaId)>,
) -> ApiResult<HttpResponse> {
    let (id, area) = path.into_inner();
    state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            let path = who.require_area(conn, area)?;
            if store::campaigns::clear_target(conn, id, area)? {
                let action = audit::Action::new("target_cleared", format!("campaign/{}", id.0))
                    .in_area(area, &path);
                audit::record(conn, &origin.of(who), &action)?;
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
