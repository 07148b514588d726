//! Possible duplicate households, for review (docs/DUPLICATES.md): supervisors of the area
//! and admins.

use super::{AppState, Auth, Deferred, Origin, Page, PageParams, SUPERVISORS};
use crate::domain::household::Precondition;
use crate::domain::vocabulary::DuplicateStatus;
use crate::domain::{AreaId, DuplicateId, HouseholdId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::audit;
use crate::store::duplicates::{self, Pair};
use crate::write::{Context, Transaction, Write};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/duplicates", web::get().to(list))
        .route("/duplicates/{id}", web::get().to(get))
        .route("/duplicates/{id}/merge", web::post().to(merge))
        .route("/duplicates/{id}/dismiss", web::post().to(dismiss));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DuplicateQuery {
    /// Only pairs with a household in this area's subtree.
    pub area: Option<AreaId>,
    /// `open`, `merged` or `dismissed` (default: all).
    pub status: Option<DuplicateStatus>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// The household kept: one of the pair's two. The other is merged into it.
    pub keep: HouseholdId,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismissal {
    /// Why the two are different households (kept with the pair).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: String,
}

#[utoipa::path(get, path = "/api/v1/duplicates", tag = "households", params(DuplicateQuery), security(("bearer" = [])),
    description = "Pairs of households that may be one, newest first, each with the rule that matched and the two households summarized (members, visits, statuses, who registered each and when). Supervisors of the area and admins.",
    responses((status = 200, body = Page<Pair>), (status = 403, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<DuplicateQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    let (items, total) = state
        .as_user(auth, move |conn, who| {
            Ok(duplicates::list(conn, who, q.area, q.status, page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[utoipa::path(get, path = "/api/v1/duplicates/{id}", tag = "households", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Pair), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<DuplicateId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let pair = state
        .as_user(auth, move |conn, who| {
            who.require_role(SUPERVISORS)?;
            Ok(duplicates::get(conn, who, id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(pair))
}

#[utoipa::path(post, path = "/api/v1/duplicates/{id}/merge", tag = "households", params(("id" = uuid::Uuid, Path)),
    request_body = Merge, security(("bearer" = [])),
    description = "The two are one household: the other is merged into `keep`, in one write. The kept household keeps its id and values and takes the other's where its own are empty; members move to it (one who is the same person as a kept member, by folded name and birth year or by phone, merges into that member); statuses merge by their clocks; visits move; values that differ are booked as conflicts of the kept records. The merged household and members are deleted naming their survivor (`merged_into` in the pull), and edits still queued against them apply to the survivor.",
    responses((status = 200, body = Pair), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "`not_open`: merged or dismissed already", body = Problem),
        (status = 422, description = "`keep` is not one of the pair's households", body = Problem)))]
pub async fn merge(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<DuplicateId>,
    body: Deferred<web::Json<Merge>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let pair = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(SUPERVISORS)?;
            let keep = body.get()?.into_inner().keep;
            let (_, gone) = duplicates::to_merge(conn, who, id, keep)?;
            let mut tx = Transaction::new();
            tx.preload_whole(conn, &[keep, gone])?;
            let ctx = Context::online(who, Precondition::Resolution);
            let done = tx
                .apply(conn, who, &ctx, Write::MergeHouseholds(keep, gone))
                .map_err(|r| r.error)?;
            tx.commit(conn)?;
            let pair = duplicates::mark_merged(conn, who, id, keep, gone)?;
            let village = crate::store::areas::get(conn, done.area_id)?;
            let action = audit::Action::new("households_merged", format!("household/{}", keep.0))
                .in_area(village.id, &village.path)
                .with(json!({"kept": keep, "merged": gone, "duplicate": id, "rule": pair.rule}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(pair)
        })
        .await?;
    Ok(HttpResponse::Ok().json(pair))
}

#[utoipa::path(post, path = "/api/v1/duplicates/{id}/dismiss", tag = "households", params(("id" = uuid::Uuid, Path)),
    request_body = Dismissal, security(("bearer" = [])),
    description = "The two are different households: the pair is closed and never proposed again, whatever later edits do.",
    responses((status = 200, body = Pair), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "`not_open`: merged or dismissed already", body = Problem)))]
pub async fn dismiss(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<DuplicateId>,
    body: Deferred<web::Json<Dismissal>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let pair = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(SUPERVISORS)?;
            duplicates::get(conn, who, id)?;
            let reason = body.get()?.into_inner().reason;
            if reason.chars().count() > 500 {
                return Err(ApiError::invalid("reason", "length", "500 characters at most"));
            }
            let pair = duplicates::dismiss(conn, who, id, &reason)?;
            let first = &pair.households[0];
            let village = crate::store::areas::get(conn, first.area_id)?;
            let action = audit::Action::new("duplicate_dismissed", format!("duplicate/{}", id.0))
                .in_area(village.id, &village.path)
                .with(json!({"households": pair.households.iter().map(|h| h.id).collect::<Vec<_>>(), "rule": pair.rule}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(pair)
        })
        .await?;
    Ok(HttpResponse::Ok().json(pair))
}
