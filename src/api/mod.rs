//! HTTP handlers, one file per resource. Thin: parse, authorize, call the store, map.

pub mod areas;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod compressed;
pub mod conflicts;
pub mod contract;
pub mod dashboard;
pub mod duplicates;
pub mod extract;
pub mod fallback;
pub mod field;
pub mod households;
pub mod ops;
pub mod privacy;
pub mod qr;
pub mod register;
pub mod reports;
pub mod stream;
pub mod sync;
pub mod users;

pub use extract::Deferred;

use crate::api::contract::ProblemResponses;
use crate::auth::{Claims, Role, TokenKeys};
use crate::config::Settings;
use crate::db::{Conn, Pool};
use crate::domain::fields::FieldError;
use crate::error::{ApiError, ApiResult, Kind};
use crate::store::scope::Principal;
use crate::store::PageReq;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::{ready, Ready};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// Who may call a role-bound endpoint.
pub const ADMIN: &[Role] = &[Role::Admin];
pub const SUPERVISORS: &[Role] = &[Role::Admin, Role::Supervisor];
pub const ANYONE: &[Role] = &[Role::Admin, Role::Supervisor, Role::Canvasser];

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    /// The streaming replica reports read, when there is one.
    pub reports: Option<Arc<crate::db::replica::Replica>>,
    pub keys: TokenKeys,
    pub settings: Arc<Settings>,
    pub logins: Arc<crate::throttle::LoginThrottle>,
}

impl AppState {
    /// The replica's pool when a report should read it now: there is one, it answers and
    /// it is close enough behind the primary. Each report's choice is counted (`/metrics`).
    async fn replica_read(&self) -> ApiResult<Option<Pool>> {
        let Some(replica) = self.reports.clone() else {
            return Ok(None);
        };
        // A blocking thread only when the replica must be asked (at most once a second).
        let verdict = match replica.standing() {
            Some(v) => v,
            None => {
                let r = replica.clone();
                web::block(move || r.verdict())
                    .await
                    .map_err(ApiError::internal)?
            }
        };
        replica.count(&verdict);
        Ok(verdict.reads_replica().then(|| replica.pool()))
    }

    /// Where a report reads now: the replica (`replica_read`), else the primary.
    pub async fn reports_pool(&self) -> ApiResult<Pool> {
        Ok(self
            .replica_read()
            .await?
            .unwrap_or_else(|| self.pool.clone()))
    }

    /// Runs a report's read `f` for the authenticated caller where reports read
    /// (`reports_pool`); a read that fails on the replica (it went down) is read again on
    /// the primary, so that no request fails for it.
    pub async fn report_as_user<T, F>(&self, auth: Auth, f: F) -> ApiResult<T>
    where
        F: Fn(&mut Conn<'_>, &Principal) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        if let (Some(pool), Some(replica)) = (self.replica_read().await?, &self.reports) {
            match as_user_on(&pool, Auth(auth.0.clone()), f.clone()).await {
                Err(e) if e.status_code().is_server_error() => {
                    tracing::warn!(error = %e, "a report's read failed on the replica; reading the primary");
                    let down = crate::db::replica::Verdict::Down(e.to_string());
                    replica.count(&down);
                    replica.failed(down);
                }
                done => return done,
            }
        }
        self.as_user(auth, f).await
    }

    /// Runs `f` for the authenticated caller, on the blocking pool.
    pub async fn as_user<T, F>(&self, auth: Auth, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Conn<'_>, &Principal) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        as_user_on(&self.pool, auth, f).await
    }

    /// Fails unless the caller has one of `roles`: the first thing a role-bound handler
    /// does, before it reads its input.
    pub async fn require_role(&self, auth: &Auth, roles: &'static [Role]) -> ApiResult<()> {
        self.as_user(Auth(auth.0.clone()), move |_, who| {
            who.require_role(roles).map_err(ApiError::from)
        })
        .await
    }

    /// Like `as_user`, inside one transaction.
    pub async fn as_user_tx<T, F>(&self, auth: Auth, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Conn<'_>, &Principal) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.pool
            .tx(move |conn| {
                let who = Principal::load(conn, &auth.0)?;
                f(conn, &who)
            })
            .await
    }

    /// Like `as_user_tx`, for a transaction that may run more than once (see
    /// `Pool::tx_rerunnable`).
    pub async fn as_user_tx_rerunnable<T, F>(&self, auth: Auth, f: F) -> ApiResult<T>
    where
        F: Fn(&mut Conn<'_>, &Principal) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.pool
            .tx_rerunnable(move |conn| {
                let who = Principal::load(conn, &auth.0)?;
                f(conn, &who)
            })
            .await
    }
}

/// Where a request comes from, for the audit trail: the client's address (see
/// `auth::client_address`) and the request's id.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub address: Option<String>,
    pub request_id: Option<String>,
    /// The path and query asked for, a search text (`q`) replaced by `…`.
    pub target: String,
}

impl Origin {
    /// The caller, as the audit trail names them.
    pub fn of(&self, who: &Principal) -> crate::store::audit::Actor {
        self.named(Some(who.user_id), &who.username)
    }

    pub fn named(
        &self,
        id: Option<crate::domain::UserId>,
        name: &str,
    ) -> crate::store::audit::Actor {
        crate::store::audit::Actor {
            id,
            name: name.to_owned(),
            address: self.address.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl FromRequest for Origin {
    type Error = ApiError;
    type Future = Ready<Result<Origin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.trusted_proxies.clone())
            .unwrap_or_default();
        let query: Vec<String> = req
            .query_string()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some(("q", _)) => "q=…".to_owned(),
                _ => p.to_owned(),
            })
            .collect();
        let target = match query.is_empty() {
            true => req.path().to_owned(),
            false => format!("{}?{}", req.path(), query.join("&")),
        };
        ready(Ok(Origin {
            address: auth::client_address(req, &trusted).map(|a| a.to_string()),
            request_id: crate::telemetry::request_id(),
            target,
        }))
    }
}

/// Runs `f` for the authenticated caller on `pool`'s blocking threads.
async fn as_user_on<T, F>(pool: &Pool, auth: Auth, f: F) -> ApiResult<T>
where
    F: FnOnce(&mut Conn<'_>, &Principal) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    pool.run(move |conn| {
        let who = Principal::load(conn, &auth.0)?;
        f(conn, &who)
    })
    .await
}

/// The verified claims of a `Bearer` access token.
pub struct Auth(pub Claims);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Ready<Result<Auth, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verify(req))
    }
}

fn verify(req: &HttpRequest) -> Result<Auth, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no app state")))?;
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing_token", "send Authorization: Bearer <access token>")
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_token",
                "the Authorization header is not a Bearer token",
            )
        })?;
    state.keys.verify(token.trim()).map(Auth).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => {
                ApiError::unauthorized("token_expired", "the access token has expired; refresh it")
            }
            _ => ApiError::unauthorized("invalid_token", "the access token is not valid"),
        }
    })
}

/// `page` (from 1) and `per_page` (1 to 500, default 50).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

impl PageParams {
    pub fn parse(page: Option<i64>, per_page: Option<i64>) -> ApiResult<PageReq> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(50);
        let mut errors = Vec::new();
        if page < 1 {
            errors.push(FieldError::new("page", "range", "must be 1 or more"));
        }
        if !(1..=PageReq::MAX_PER_PAGE).contains(&per_page) {
            errors.push(FieldError::new(
                "per_page",
                "range",
                format!("must be 1 to {}", PageReq::MAX_PER_PAGE),
            ));
        }
        if errors.is_empty() {
            Ok(PageReq { page, per_page })
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// One page of a list, with the total across all pages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, req: PageReq) -> Self {
        Page {
            items,
            total,
            page: req.page,
            per_page: req.per_page,
        }
    }
}

/// The version in `If-Match` (`"3"`, `W/"3"` or `3`); `None` when absent.
pub fn if_match(req: &HttpRequest) -> ApiResult<Option<i64>> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "bad_if_match",
            "If-Match must be a version ETag such as \"3\"",
        )
    })
}

/// `If-Match` required, as for every update of an existing record.
pub fn require_if_match(req: &HttpRequest) -> ApiResult<i64> {
    if_match(req)?.ok_or_else(|| {
        ApiError::new(
            Kind::PreconditionRequired,
            "if_match_required",
            "send If-Match with the version (ETag) you read",
        )
    })
}

pub fn etag(version: i64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// A file embedded in the binary (a page, a script, a style), under a Content-Security-Policy
/// and always checked again with the server (`no-cache`).
pub fn embedded(
    content_type: &str,
    csp: &'static str,
    body: impl actix_web::body::MessageBody + 'static,
) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// Reads an optional client-chosen `id` from a JSON body.
pub fn body_id(body: &Value) -> ApiResult<Option<uuid::Uuid>> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => uuid::Uuid::parse_str(s)
            .map(Some)
            .map_err(|_| ApiError::invalid("id", "format", "must be a UUID")),
        Some(_) => Err(ApiError::invalid("id", "type", "must be a UUID string")),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig, settings: &Settings) {
    sync::configure(cfg, settings.sync_max_bytes);
    conflicts::configure(cfg);
    auth::configure(cfg);
    users::configure(cfg);
    qr::configure(cfg);
    duplicates::configure(cfg);
    areas::configure(cfg);
    campaigns::configure(cfg);
    register::configure(cfg);
    households::configure(cfg);
    reports::configure(cfg);
    audit::configure(cfg);
    privacy::configure(cfg);
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "gocua", description = "Door-to-door canvassing campaigns: households, members, adoptions, visits."),
    modifiers(&BearerAuth, &ProblemResponses),
    paths(
        ops::healthz, ops::readyz, ops::metrics,
        auth::login, auth::refresh, auth::logout, auth::change_password, auth::me,
        users::list, users::create, users::import, users::get, users::update, users::set_areas,
        users::reset_password, qr::qr,
        areas::list, areas::get, areas::create_village, areas::import,
        areas::reorganize, areas::reorganizations, areas::pending, areas::place, areas::targets_to_set,
        campaigns::list, campaigns::create, campaigns::get, campaigns::update, campaigns::targets,
        campaigns::set_target, campaigns::clear_target,
        households::list, households::create, households::get, households::update, households::delete,
        households::create_member, households::get_member, households::update_member, households::delete_member,
        households::set_adoption, households::create_visit, households::get_visit,
        duplicates::list, duplicates::get, duplicates::merge, duplicates::dismiss,
        sync::push, sync::pull, sync::report, conflicts::list, conflicts::resolve,
        reports::progress, reports::progress_export, reports::trend, reports::trend_export,
        reports::coverage, reports::coverage_export, reports::activity, reports::activity_export,
        reports::priority_pending, reports::priority_pending_export,
        reports::unvisited, reports::unvisited_export, reports::revisit, reports::revisit_export,
        reports::households_export,
        audit::list, audit::export,
        privacy::anonymize, privacy::erase_member, privacy::erase_household,
        register::import, register::template,
    ),
    components(schemas(
        crate::error::Problem,
        FieldError,
        reports::ExportFormat,
        sync::PullFormat,
        crate::domain::vocabulary::DuplicateStatus
    )),
    tags(
        (name = "ops", description = "Health and metrics"),
        (name = "auth", description = "Login and tokens"),
        (name = "users", description = "Users and their areas: admins, and supervisors for the canvassers of their areas"),
        (name = "areas", description = "The administrative tree"),
        (name = "campaigns", description = "Campaigns and targets"),
        (name = "households", description = "Households, members, adoptions and visits"),
        (name = "sync", description = "Offline sync and conflict review (see docs/SYNC.md)"),
        (name = "reports", description = "Progress, trend, coverage, work lists, activity checks and their CSV/XLSX exports"),
        (name = "audit", description = "The audit trail: who did what, when, from where (read only)"),
        (name = "privacy", description = "Retention and erasure of personal data (admin; see docs/SECURITY.md)"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default() + "\n"
}
