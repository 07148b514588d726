//! Health, readiness and metrics.

use super::AppState;
use crate::error::ApiError;
use crate::telemetry::Metrics;
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "The database answers"),
    (status = 503, description = "The database does not answer", body = crate::error::Problem),
))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .pool
        .run(|conn| {
            crate::with_conn!(conn, |c| c.batch_execute("SELECT 1")).map_err(ApiError::unavailable)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(state: web::Data<AppState>, metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render(&state.pool))
}
