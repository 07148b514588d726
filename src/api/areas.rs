//! The administrative tree: browse, create villages, import the official list.

use super::contract;
use super::{AppState, Auth, Deferred, Page, PageParams};
use crate::auth::Role;
use crate::domain::AreaId;
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::areas::{Area, AreaFilter, ImportReport};
use crate::{importer, store};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The official list is about 0.8 MB; allow some room.
pub const IMPORT_LIMIT: usize = 16 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/areas", web::get().to(list))
        .route("/areas", web::post().to(create_village))
        .service(
            web::resource("/areas/import")
                .app_data(web::PayloadConfig::new(IMPORT_LIMIT))
                .route(web::post().to(import)),
        )
        .route("/areas/{id}", web::get().to(get));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AreaQuery {
    /// Children of this area.
    pub parent: Option<AreaId>,
    /// `province`, `district`, `commune` or `village`.
    #[param(schema_with = contract::area_levels)]
    pub level: Option<String>,
    /// Official code.
    pub code: Option<String>,
    /// Name search, ignoring diacritics and case.
    pub q: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVillage {
    /// Client-chosen id (optional).
    pub id: Option<AreaId>,
    /// The commune.
    pub parent_id: AreaId,
    #[schema(max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Thôn, Bản, Tổ dân phố… (default Thôn).
    pub kind: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/areas", tag = "areas", params(AreaQuery), security(("bearer" = [])), responses(
    (status = 200, description = "Without filters: the caller's top areas", body = Page<Area>),
))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<AreaQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    if let Some(l) = &q.level {
        if !store::areas::LEVELS.contains(&l.as_str()) {
            return Err(ApiError::invalid(
                "level",
                "choice",
                "must be province, district, commune or village",
            ));
        }
    }
    let f = AreaFilter {
        parent: q.parent,
        level: q.level,
        code: q.code,
        q: q.q,
    };
    let (items, total) = state
        .as_user(auth, move |conn, who| {
            store::areas::list(conn, who, &f, page).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[utoipa::path(get, path = "/api/v1/areas/{id}", tag = "areas", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = Area), (status = 403, body = Problem), (status = 404, body = Problem),
))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<AreaId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let area = state
        .as_user(auth, move |conn, who| {
            who.require_area(conn, id)?;
            store::areas::get(conn, id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(area))
}

#[utoipa::path(post, path = "/api/v1/areas", tag = "areas", request_body = NewVillage, security(("bearer" = [])), responses(
    (status = 201, description = "The village", body = Area), (status = 403, body = Problem),
    (status = 409, body = Problem), (status = 422, body = Problem),
))]
pub async fn create_village(
    state: web::Data<AppState>,
    auth: Auth,
    body: Deferred<web::Json<NewVillage>>,
) -> ApiResult<HttpResponse> {
    let area = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            let v = body.get()?.into_inner();
            let id = v.id.unwrap_or_else(AreaId::random);
            store::areas::create_village(conn, who, id, v.parent_id, &v.name, v.kind.as_deref())
                .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Created().json(area))
}

#[utoipa::path(post, path = "/api/v1/areas/import", tag = "areas",
    request_body(content = String, content_type = "text/csv", description = "The GSO unit list (units-2025-01-04.csv format)"),
    security(("bearer" = [])), responses(
    (status = 200, description = "What changed; importing the same list again changes nothing", body = ImportReport),
    (status = 400, description = "The file is not a unit list; the problem names the line", body = Problem),
    (status = 403, body = Problem), (status = 413, body = Problem),
))]
pub async fn import(
    state: web::Data<AppState>,
    auth: Auth,
    body: Deferred<web::Bytes>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, &[Role::Admin]).await?;
    let units = importer::parse_units(&body.get()?)
        .map_err(|e| ApiError::bad_request("bad_unit_list", e.to_string()))?;
    let report = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin])?;
            store::areas::import(conn, &units).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
