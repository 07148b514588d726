//! Offline sync endpoints.

use super::{AppState, Auth};
use crate::domain::DeviceId;
use crate::error::{ApiError, ApiResult, Kind, Problem};
use crate::store::devices::{self, Phone};
use crate::store::scope::Principal;
use crate::sync::pull::{self, PullResponse};
use crate::sync::push::{self, Batch, PushResponse};
use actix_web::error::JsonPayloadError;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig, max_bytes: usize) {
    cfg.service(
        web::resource("/sync/push")
            .app_data(
                web::JsonConfig::default()
                    .limit(max_bytes)
                    .error_handler(push_body_error),
            )
            .route(web::post().to(push)),
    )
    .route("/sync/pull", web::get().to(pull))
    .route("/sync/report", web::post().to(report));
}

fn too_large(state: &AppState) -> ApiError {
    ApiError::new(
        Kind::PayloadTooLarge,
        "batch_too_large",
        format!(
            "a batch may hold at most {} ops and {} bytes; split it and push the parts in order",
            state.settings.sync_max_ops, state.settings.sync_max_bytes
        ),
    )
}

fn push_body_error(err: JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    match (&err, req.app_data::<web::Data<AppState>>()) {
        (
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. },
            Some(state),
        ) => too_large(state).into(),
        _ => super::extract::json_error(err, req),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub device_id: uuid::Uuid,
    /// Operations in `seq` order (see `Op`).
    #[schema(value_type = Vec<push::Op>)]
    pub ops: Vec<Value>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    pub device_id: uuid::Uuid,
    /// The cursor of the previous pull; none for the first.
    pub cursor: Option<String>,
    /// Households per snapshot page, or log rows per page (1 to 2000, default 500).
    #[param(minimum = 1, maximum = 2000)]
    pub limit: Option<i64>,
    /// `compact`: snapshot pages come as `units` (SYNC.md, "The compact first download");
    /// `full` (the default): every page as `changes`.
    pub format: Option<PullFormat>,
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PullFormat {
    Full,
    Compact,
}

#[utoipa::path(post, path = "/api/v1/sync/push", tag = "sync", request_body = PushRequest, security(("bearer" = [])), responses(
    (status = 200, description = "One result per op, in order", body = PushResponse),
    (status = 403, description = "The device belongs to another user", body = Problem),
    (status = 413, description = "Too many ops or bytes: the limits are stated", body = Problem),
    (status = 422, description = "An op without a valid seq, or seqs out of order: nothing applied", body = Problem),
    (status = 503, description = "Transient failure: nothing applied, resend the batch", body = Problem),
))]
pub async fn push(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<PushRequest>,
) -> ApiResult<HttpResponse> {
    let PushRequest { device_id, ops } = body.into_inner();
    if ops.len() > state.settings.sync_max_ops {
        return Err(too_large(&state));
    }
    let received = chrono::Utc::now();
    let batch = std::sync::Arc::new(Batch::parse(device_id, ops, received)?);
    let res = push::with_retries(|| {
        let (batch, claims) = (batch.clone(), auth.0.clone());
        // A batch only reads and writes the database: it may run again.
        state.pool.tx_rerunnable(move |conn| {
            let who = Principal::load(conn, &claims)?;
            push::push(conn, &who, &batch)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(res))
}

#[utoipa::path(get, path = "/api/v1/sync/pull", tag = "sync", params(PullQuery), security(("bearer" = [])), responses(
    (status = 200, body = PullResponse),
    (status = 400, description = "A cursor this server did not give out", body = Problem),
    (status = 403, description = "The device belongs to another user", body = Problem),
))]
pub async fn pull(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    q: web::Query<PullQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(pull::DEFAULT_LIMIT);
    if !(1..=pull::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "range",
            format!("must be 1 to {}", pull::MAX_LIMIT),
        ));
    }
    let compact = q.format == Some(PullFormat::Compact);
    let device = DeviceId(q.device_id);
    let res = state
        .pool
        .run(move |conn| pull::pull_for(conn, &auth.0, device, q.cursor, limit, compact))
        .await?;
    super::compressed::json(&req, res).await
}

/// What a phone says of itself at each sync.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    pub device_id: uuid::Uuid,
    /// The field app's version, as it names it.
    #[schema(min_length = 1, max_length = 40)]
    pub app_version: String,
    /// Changes made on the phone and not yet acknowledged by the server.
    #[schema(value_type = i64, minimum = 0, maximum = 1000000000)]
    pub pending_changes: serde_json::Number,
    /// When the oldest of them was made; none when nothing waits.
    pub oldest_pending_at: Option<crate::domain::Time>,
    /// The storage the app uses, as the browser tells it (`navigator.storage.estimate`).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1000000000000000_i64)]
    pub storage_used_bytes: Option<serde_json::Number>,
    /// The room the app has left; under 50 MiB the console shows the phone in trouble.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1000000000000000_i64)]
    pub storage_free_bytes: Option<serde_json::Number>,
    /// The app's last errors (at most 10), as codes: no message, no personal data.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub last_errors: Vec<devices::PhoneError>,
}

/// Largest storage figure a report may give (1 PB).
const MAX_STORAGE_BYTES: i64 = 1_000_000_000_000_000;
/// Most errors a report may list.
const MAX_ERRORS: usize = 10;

#[utoipa::path(post, path = "/api/v1/sync/report", tag = "sync", request_body = DeviceReport, security(("bearer" = [])),
    description = "The field app's report at each sync, after its push (and when the user sends it from the settings screen): its version, the changes waiting on the phone, the storage it uses and has left, and its last errors as codes. The coverage report and the team show them, so that a phone that cannot send, or is running out of room, is seen.",
    responses(
    (status = 200, body = Phone),
    (status = 403, description = "The device belongs to another user", body = Problem),
    (status = 422, body = Problem),
))]
pub async fn report(
    state: web::Data<AppState>,
    auth: Auth,
    body: super::Deferred<web::Json<DeviceReport>>,
) -> ApiResult<HttpResponse> {
    let r = body.get()?.into_inner();
    let version = r.app_version;
    if version.is_empty() || version.chars().count() > 40 {
        return Err(ApiError::invalid(
            "app_version",
            "length",
            "1 to 40 characters",
        ));
    }
    let pending = whole(&r.pending_changes, 1_000_000_000).ok_or_else(|| {
        ApiError::invalid(
            "pending_changes",
            "range",
            "a whole number, 0 to 1000000000",
        )
    })?;
    let report = devices::Report {
        app_version: version,
        pending_changes: pending,
        oldest_pending_at: r.oldest_pending_at,
        storage_used_bytes: storage("storage_used_bytes", r.storage_used_bytes.as_ref())?,
        storage_free_bytes: storage("storage_free_bytes", r.storage_free_bytes.as_ref())?,
        last_errors: errors(r.last_errors)?,
    };
    let phone = state
        .as_user_tx(auth, move |conn, who| {
            Ok(devices::report(
                conn,
                DeviceId(r.device_id),
                who.user_id,
                &report,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(phone))
}

/// A whole number from 0 to `max`, however written (`3` or `3.0`, as some phones' JSON
/// writes it).
fn whole(n: &serde_json::Number, max: i64) -> Option<i64> {
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
        .filter(|n| (0..=max).contains(n))
}

fn storage(field: &'static str, bytes: Option<&serde_json::Number>) -> ApiResult<Option<i64>> {
    bytes
        .map(|b| {
            whole(b, MAX_STORAGE_BYTES).ok_or_else(|| {
                ApiError::invalid(field, "range", "a whole number of bytes, 0 to 10^15")
            })
        })
        .transpose()
}

/// The reported errors, if each is a code (so that no message, and no personal data in
/// one, is stored).
fn errors(list: Vec<devices::PhoneError>) -> ApiResult<Vec<devices::PhoneError>> {
    if list.len() > MAX_ERRORS {
        return Err(ApiError::invalid("last_errors", "length", "at most 10"));
    }
    let code = |c: &str| {
        (1..=60).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b))
    };
    if let Some(bad) = list.iter().position(|e| !code(&e.code)) {
        return Err(ApiError::invalid(
            "last_errors",
            "format",
            format!(
                "error {bad}: a code of 1 to 60 lowercase letters, digits and _ . : -, no message"
            ),
        ));
    }
    Ok(list)
}
