//! Health, readiness and metrics.

use super::AppState;
use crate::db::replica::Verdict;
use crate::error::ApiError;
use crate::telemetry::Metrics;
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "The database answers; with a reports replica, `reports` says where reports read now (`replica` or `primary`) and why"),
    (status = 503, description = "The database does not answer", body = crate::error::Problem),
))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .pool
        .run(|conn| {
            crate::with_conn!(conn, |c| c.batch_execute("SELECT 1")).map_err(ApiError::unavailable)
        })
        .await?;
    let Some(replica) = state.reports.clone() else {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })));
    };
    // The replica's state does not make gocua unready: reports then read the primary.
    let verdict = web::block(move || replica.verdict())
        .await
        .map_err(ApiError::internal)?;
    let reports = match verdict {
        Verdict::Ready { lag } => serde_json::json!({"reads": "replica", "lag_seconds": lag}),
        Verdict::Behind { lag } => {
            serde_json::json!({"reads": "primary", "reason": "behind", "lag_seconds": lag})
        }
        // Why is in the log, not in this unauthenticated answer.
        Verdict::Down(error) => {
            tracing::warn!(%error, "the reports replica does not answer");
            serde_json::json!({"reads": "primary", "reason": "down"})
        }
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "reports": reports })))
}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(state: web::Data<AppState>, metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render(&state.pool, state.reports.as_deref()))
}
