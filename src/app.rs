//! Builds the HTTP server: `Application::build(settings)` binds (port 0 in tests) and returns
//! the bound port and a server to run.

use crate::api::contract::Routes;
use crate::api::extract;
use crate::api::{self, AppState};
use crate::auth::TokenKeys;
use crate::config::Settings;
use crate::db::Pool;
use crate::error::{ApiError, Kind};
use crate::telemetry::{self, Metrics};
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{self, Compress, ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub struct Application {
    port: u16,
    server: Server,
    pub pool: Pool,
}

impl Application {
    /// Connects, runs pending migrations and binds.
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = connect(&settings)?;
        pool.migrate()?;
        Self::build_with_pool(settings, pool)
    }

    pub fn build_with_pool(settings: Settings, pool: Pool) -> anyhow::Result<Application> {
        let secret = settings.jwt_secret.clone().context(
            "GOCUA_JWT_SECRET is required (at least 32 bytes); only `serve --demo` makes one up",
        )?;
        anyhow::ensure!(
            secret.expose_secret().len() >= 32,
            "GOCUA_JWT_SECRET must be at least 32 bytes"
        );
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let shutdown = settings.shutdown_seconds;
        let blocking_threads = settings.pool_size.max(2) as usize;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            keys: TokenKeys::rotated(&secret, &settings.jwt_previous_secrets),
            logins: Arc::new(crate::throttle::LoginThrottle::new(
                crate::throttle::Limits {
                    free_failures: settings.login_free_failures,
                    address_failures: settings.login_address_failures,
                    max_delay: Duration::from_secs(settings.login_max_delay_seconds),
                    window: Duration::from_secs(settings.login_window_seconds),
                },
            )),
            settings: Arc::new(settings),
        });
        let metrics = web::Data::new(Metrics::new());
        let openapi = api::ApiDoc::openapi();
        let routes = web::Data::new(Routes::of(&openapi));
        let server = HttpServer::new(move || {
            let max = state.settings.max_body_bytes;
            App::new()
                .wrap(ErrorHandlers::new().default_handler(problem_fallback))
                .wrap(security_headers())
                .wrap(Compress::default())
                .wrap(middleware::from_fn(telemetry::track))
                .app_data(state.clone())
                .app_data(metrics.clone())
                .app_data(routes.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(max)
                        .error_handler(extract::json_error),
                )
                .app_data(web::PayloadConfig::new(max))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error))
                .app_data(web::PathConfig::default().error_handler(extract::path_error))
                .route("/healthz", web::get().to(api::ops::healthz))
                .route("/readyz", web::get().to(api::ops::readyz))
                .route("/metrics", web::get().to(api::ops::metrics))
                .service(
                    web::scope("/api/v1").configure(|cfg| api::configure(cfg, &state.settings)),
                )
                .service(
                    SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", openapi.clone()),
                )
                .route("/docs", web::get().to(|| redirect("/docs/")))
                .configure(api::dashboard::configure)
                .configure(api::field::configure)
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(shutdown)
        // Database work runs on each worker's blocking threads, and holds a connection: more
        // threads than connections would only wait for one, each with its own allocator
        // caches (hundreds of MiB under a few hundred devices at once).
        .worker_max_blocking_threads(blocking_threads)
        // Responses go out as soon as they are written: with Nagle's algorithm a response
        // written in parts (compressed, chunked) waits for the client's delayed ACK, 40 ms.
        .tcp_nodelay(true)
        .listen(listener)?
        .run();
        Ok(Application { port, server, pool })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT or SIGTERM, then lets running requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Headers on every answer, unless the handler set its own: no content-type sniffing, no
/// framing by another site (the pages show personal data), no referrer sent on (a URL may
/// hold an id or a filter). Pages add their Content-Security-Policy (`api::embedded`).
fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

pub fn connect(settings: &Settings) -> anyhow::Result<Pool> {
    Pool::connect(
        &settings.database_url,
        settings.pool_size,
        Duration::from_secs(settings.pool_timeout_seconds),
    )
    .map_err(anyhow::Error::from)
}

async fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// 405 with `Allow` for a documented path asked with another method (RFC 9110), else 404.
async fn not_found(req: HttpRequest, routes: web::Data<Routes>) -> HttpResponse {
    match routes.allowed(req.path()) {
        Some(allow) => {
            let mut res = ApiError::new(
                Kind::MethodNotAllowed,
                "method_not_allowed",
                format!("{} takes {allow}, not {}", req.path(), req.method()),
            )
            .error_response();
            if let Ok(v) = header::HeaderValue::from_str(&allow) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            res
        }
        None => ApiError::new(
            Kind::NotFound,
            "no_route",
            format!("no resource at {} {}", req.method(), req.path()),
        )
        .error_response(),
    }
}

/// Turns every error response that is not problem+json yet (405, 413 from raw bodies, …)
/// into one.
fn problem_fallback<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (kind, code, detail) = match status.as_u16() {
        404 => (Kind::NotFound, "no_route", "no such resource".to_owned()),
        405 => (
            Kind::MethodNotAllowed,
            "method_not_allowed",
            "this method is not allowed here".to_owned(),
        ),
        413 => (
            Kind::PayloadTooLarge,
            "body_too_large",
            "the request body is larger than this endpoint accepts".to_owned(),
        ),
        415 => (
            Kind::UnsupportedMediaType,
            "unsupported_media_type",
            "unsupported Content-Type".to_owned(),
        ),
        s if s < 500 => (
            Kind::BadRequest,
            "bad_request",
            "the request could not be processed".to_owned(),
        ),
        503 => (
            Kind::Unavailable,
            "unavailable",
            "the service is temporarily unavailable; retry later".to_owned(),
        ),
        _ => (
            Kind::Internal,
            "internal",
            "an internal error occurred".to_owned(),
        ),
    };
    let mut problem = ApiError::new(kind, code, detail).problem();
    problem.status = status.as_u16();
    problem.title = status.canonical_reason().unwrap_or("Error").to_owned();
    let (req, _) = res.into_parts();
    let mut body = HttpResponse::build(status);
    body.content_type("application/problem+json");
    if status == actix_web::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = req
            .app_data::<web::Data<Routes>>()
            .and_then(|routes| routes.allowed(req.path()));
        if let Some(allow) = allow {
            body.insert_header((header::ALLOW, allow));
        }
    }
    let body = body.body(serde_json::to_string(&problem).unwrap_or_default());
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, body).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
