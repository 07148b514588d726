//! The administrative tree: browse, create villages, import the official list.

use super::contract;
use super::{AppState, Auth, Deferred, Origin, Page, PageParams};
use crate::auth::Role;
use crate::domain::AreaId;
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::areas::{Area, AreaFilter, ImportReport};
use crate::store::audit::{self, Action};
use crate::store::map::PendingVillage;
use crate::store::reorganize::{self, Applied, Options, Report, TargetToSet};
use crate::store::scope::Principal;
use crate::{importer, store};
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
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
        .service(
            web::resource("/areas/reorganizations")
                .app_data(web::PayloadConfig::new(IMPORT_LIMIT))
                .route(web::post().to(reorganize))
                .route(web::get().to(reorganizations)),
        )
        .route("/areas/pending", web::get().to(pending))
        .route("/areas/targets-to-set", web::get().to(targets_to_set))
        .route("/areas/{id}/place", web::post().to(place))
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
    /// The map of that day (`2020-12-31`): areas in effect then, villages where they were.
    /// Default: today's map.
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
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
        as_of: q.as_of,
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
    origin: Origin,
    body: Deferred<web::Json<NewVillage>>,
) -> ApiResult<HttpResponse> {
    let area = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            let v = body.get()?.into_inner();
            let id = v.id.unwrap_or_else(AreaId::random);
            let village = store::areas::create_village(
                conn,
                who,
                id,
                v.parent_id,
                &v.name,
                v.kind.as_deref(),
            )?;
            let action = Action::new("village_created", format!("area/{}", village.id.0))
                .in_area(village.id, &village.path);
            audit::record(conn, &origin.of(who), &action)?;
            Ok(village)
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
    origin: Origin,
    body: Deferred<web::Bytes>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, &[Role::Admin]).await?;
    let units = importer::parse_areas(&body.get()?)
        .map_err(|e| ApiError::bad_request("bad_unit_list", e.to_string()))?;
    let report = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin])?;
            let report = store::areas::import(conn, &units)?;
            let action = Action::new("areas_imported", "areas").with(json!({
                "units": report.units, "inserted": report.inserted, "updated": report.updated
            }));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(report)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReorganizeQuery {
    /// The day the new map takes effect (`2025-07-01`).
    #[param(value_type = String, format = Date)]
    pub effective: NaiveDate,
    /// Work out and answer what would change, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Apply even though some rows name an old code that the current map does not have;
    /// those rows are left out and listed.
    #[serde(default)]
    pub accept_unmatched: bool,
    /// A name for the table, kept with the reorganization (default `upload`).
    pub source: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/areas/reorganizations", tag = "areas", params(ReorganizeQuery),
    request_body(content = String, content_type = "text/csv", description = "The official conversion table (reorganization-2025-07-01.csv format)"),
    security(("bearer" = [])), responses(
    (status = 200, description = "What changed, or with `dry_run` what would; a table already applied changes nothing and says when it was applied", body = Report),
    (status = 400, description = "The table is unreadable or does not fit the current map; the problem names the line", body = Problem),
    (status = 403, body = Problem), (status = 409, description = "Another table with this effective day was applied", body = Problem), (status = 413, body = Problem),
))]
pub async fn reorganize(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    q: web::Query<ReorganizeQuery>,
    body: Deferred<web::Bytes>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, &[Role::Admin]).await?;
    let q = q.into_inner();
    let rows = importer::reorganization::parse(&body.get()?)
        .map_err(|e| ApiError::bad_request("bad_conversion_table", e.to_string()))?;
    let source = q.source.unwrap_or_else(|| "upload".into());
    if source.chars().count() > 200 {
        return Err(ApiError::invalid(
            "source",
            "length",
            "at most 200 characters",
        ));
    }
    // Outside the SQLite writer, on a connection of its own (see `Conn::large_transaction`).
    let report = state
        .pool
        .run(move |conn| {
            conn.large_transaction(|conn| {
                let who = &Principal::load(conn, &auth.0)?;
                who.require_role(&[Role::Admin])?;
                let o = Options {
                    effective: q.effective,
                    dry_run: q.dry_run,
                    accept_unmatched: q.accept_unmatched,
                    source,
                    by: Some(who.user_id),
                };
                let report = reorganize::reorganize(conn, &rows, &o)?;
                if !o.dry_run && report.already_applied_at.is_none() {
                    audit::record(conn, &origin.of(who), &reorganized(&o))?;
                }
                Ok::<_, ApiError>(report)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(get, path = "/api/v1/areas/reorganizations", tag = "areas", security(("bearer" = [])), responses(
    (status = 200, description = "The reorganizations applied, newest first, with their reports", body = Vec<Applied>),
    (status = 403, body = Problem),
))]
pub async fn reorganizations(state: web::Data<AppState>, auth: Auth) -> ApiResult<HttpResponse> {
    let list = state
        .as_user(auth, move |conn, who| {
            who.require_role(&[Role::Admin])?;
            reorganize::list(conn).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/api/v1/areas/pending", tag = "areas", security(("bearer" = [])), responses(
    (status = 200, description = "Villages of split communes waiting to be placed, with their candidate communes: all for an admin, else those in or for the caller's areas", body = Vec<PendingVillage>),
    (status = 403, body = Problem),
))]
pub async fn pending(state: web::Data<AppState>, auth: Auth) -> ApiResult<HttpResponse> {
    let list = state
        .as_user(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            store::map::pending(conn, who).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The new commune: one of the village's candidates (an admin may name any commune in
    /// effect).
    pub commune_id: AreaId,
}

#[utoipa::path(post, path = "/api/v1/areas/{id}/place", tag = "areas", params(("id" = uuid::Uuid, Path)),
    request_body = Placement, security(("bearer" = [])), responses(
    (status = 200, description = "The village under its commune; its households follow (devices of the areas concerned start over with a full download)", body = Area),
    (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, description = "The village is not waiting to be placed", body = Problem), (status = 422, body = Problem),
))]
pub async fn place(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<AreaId>,
    body: Deferred<web::Json<Placement>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let area = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            let p = body.get()?.into_inner();
            let village = store::map::place(conn, who, id, p.commune_id)?;
            let action = Action::new("village_placed", format!("area/{}", village.id.0))
                .in_area(village.id, &village.path)
                .with(json!({"commune_id": p.commune_id}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(village)
        })
        .await?;
    Ok(HttpResponse::Ok().json(area))
}

#[utoipa::path(get, path = "/api/v1/areas/targets-to-set", tag = "areas", security(("bearer" = [])), responses(
    (status = 200, description = "Targets set on units a reorganization retired, each with the caller's successor units that have no target of their own in that campaign yet: to set again (all for an admin)", body = Vec<TargetToSet>),
    (status = 403, body = Problem),
))]
pub async fn targets_to_set(state: web::Data<AppState>, auth: Auth) -> ApiResult<HttpResponse> {
    let list = state
        .as_user(auth, move |conn, who| {
            who.require_role(&[Role::Admin, Role::Supervisor])?;
            reorganize::targets_to_set(conn, who).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The audit entry of an applied reorganization (here and on the command line).
pub fn reorganized(o: &Options) -> Action {
    Action::new("reorganization_applied", "areas")
        .with(json!({"effective": o.effective, "source": o.source, "accept_unmatched": o.accept_unmatched}))
}
