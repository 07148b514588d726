//! Builds the HTTP server: `Application::build(settings)` binds (port 0 in tests) and returns
//! the bound port and a server to run.

use crate::api::contract::Routes;
use crate::api::{self, AppState};
use crate::api::{extract, fallback};
use crate::auth::TokenKeys;
use crate::config::Settings;
use crate::db::Pool;
use crate::telemetry::{self, Metrics};
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{self, Compress, ErrorHandlers};
use actix_web::{web, App, HttpResponse, HttpServer};
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
        crate::store::migrate(&pool)?;
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
        api::field::set_release(&settings.field_release);
        let blocking_threads = settings.pool_size.max(2) as usize;
        let reports = match &settings.reports_database_url {
            Some(url) => {
                anyhow::ensure!(
                    matches!(pool, Pool::Pg(_)),
                    "GOCUA_REPORTS_DATABASE_URL is a replica of a PostgreSQL primary; the database is SQLite"
                );
                Some(Arc::new(crate::db::replica::Replica::connect(
                    url,
                    settings.pool_size,
                    settings.reports_max_lag_seconds,
                )?))
            }
            None => None,
        };
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            reports,
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
                .wrap(ErrorHandlers::new().default_handler(fallback::problem_fallback))
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
                .default_service(web::to(fallback::not_found))
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
