//! Conflict review for supervisors.

use super::contract;
use super::{AppState, Auth, Deferred, Origin, Page, PageParams, SUPERVISORS};
use crate::domain::household::ConflictStatus;
use crate::domain::{AreaId, ConflictId};
use crate::error::{ApiError, ApiResult, Kind, Problem};
use crate::store::audit;
use crate::store::conflicts::{self, Conflict};
use crate::write::resolve::{self, Action, Changed};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/conflicts", web::get().to(list))
        .route("/conflicts/{id}/resolve", web::post().to(resolve));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    /// `open` or `resolved` (default: both).
    #[param(schema_with = contract::conflict_statuses)]
    pub status: Option<String>,
    /// Only conflicts in this area's subtree.
    pub area: Option<AreaId>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// `keep` (the current value), `take_other` (the losing value) or `set` (`value`).
    pub action: String,
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
}

#[utoipa::path(get, path = "/api/v1/conflicts", tag = "sync", params(ConflictQuery), security(("bearer" = [])), responses(
    (status = 200, description = "Newest first", body = Page<Conflict>), (status = 403, body = Problem),
))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<ConflictQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            ConflictStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "choice", "must be open or resolved"))?,
        ),
    };
    let (items, total) = state
        .as_user(auth, move |conn, who| {
            let (items, total) = conflicts::list(conn, who, status, q.area, page)?;
            let mut reviews = resolve::Reviews::default();
            let items = items
                .into_iter()
                .map(|c| reviews.review(conn, who, c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((items, total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[utoipa::path(post, path = "/api/v1/conflicts/{id}/resolve", tag = "sync", request_body = Resolution,
    params(("id" = uuid::Uuid, Path), ("If-Match" = Option<String>, Header, description = "The `etag` of the conflict as the review listed it")),
    security(("bearer" = [])), responses(
    (status = 200, description = "Resolved; the chosen value is written as a new version", body = Conflict),
    (status = 409, description = "Already resolved, or the record was deleted", body = Problem),
    (status = 412, description = "`conflict_changed`: with `If-Match`, the conflict or its field changed since it was read; `conflict` holds it now", body = Problem),
    (status = 422, description = "Bad action or value", body = Problem),
))]
pub async fn resolve(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    req: HttpRequest,
    id: web::Path<ConflictId>,
    body: Deferred<web::Json<Resolution>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let seen = req
        .headers()
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let outcome = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(SUPERVISORS)?;
            // The conflict's scope before the body.
            conflicts::get(conn, who, id)?;
            if let Some(seen) = &seen {
                match resolve::require_unchanged(conn, who, id, seen) {
                    Ok(()) => {}
                    Err(Changed::Now(now)) => return Ok(Err(now)),
                    Err(Changed::Failed(e)) => return Err(e.into()),
                }
            }
            let Resolution { action, value } = body.get()?.into_inner();
            let name = action.clone();
            let action = Action::parse(&action).ok_or_else(|| {
                ApiError::invalid("action", "choice", "must be keep, take_other or set")
            })?;
            let c = resolve::resolve(conn, who, id, action, value)?;
            let village = crate::store::areas::get(conn, c.area_id)?;
            let entry = audit::Action::new("conflict_resolved", format!("conflict/{}", id.0))
                .in_area(village.id, &village.path)
                .with(serde_json::json!({"action": name, "household_id": c.household_id}));
            audit::record(conn, &origin.of(who), &entry)?;
            Ok(Ok(resolve::review(conn, who, c)?))
        })
        .await?;
    match outcome {
        Ok(c) => Ok(HttpResponse::Ok().json(c)),
        Err(now) => {
            let mut answer = ApiError::new(
                Kind::PreconditionFailed,
                "conflict_changed",
                "this conflict changed since it was read: see `conflict` for it now",
            )
            .problem();
            answer.conflict = Some(serde_json::to_value(&now).unwrap_or_default());
            Ok(HttpResponse::PreconditionFailed()
                .content_type("application/problem+json")
                .json(answer))
        }
    }
}
