//! Logs (JSON, or readable on a terminal) and Prometheus metrics.

use crate::db::replica::Replica;
use crate::db::Pool;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::io::IsTerminal;
use std::time::Instant;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_env("GOCUA_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = match format {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    /// SQLite only: the writer's queue, transactions and group commits.
    writer: [IntGauge; 6],
    /// With a reports replica: reports read on it, and on the primary instead (behind, down).
    report_reads: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "gocua_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "gocua_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let pool_connections = gauge("gocua_db_pool_connections", "open database connections");
        let pool_idle = gauge(
            "gocua_db_pool_idle_connections",
            "idle database connections",
        );
        let pool_max = gauge("gocua_db_pool_max_connections", "pool size");
        let writer = [
            gauge(
                "gocua_sqlite_writer_queue",
                "SQLite: write transactions waiting for the writer",
            ),
            gauge(
                "gocua_sqlite_write_transactions",
                "SQLite: write transactions run since start",
            ),
            gauge(
                "gocua_sqlite_group_commits",
                "SQLite: group transactions run since start (write transactions per group commit = the ratio)",
            ),
            gauge(
                "gocua_sqlite_writer_busy_milliseconds",
                "SQLite: time the writer has spent running transactions since start (near wall time: saturated)",
            ),
            gauge(
                "gocua_sqlite_wal_syncs",
                "SQLite: syncs of the WAL to disk since start (the sync thread's, each for one or more group commits, and those of pulls that read a commit not yet synced)",
            ),
            gauge(
                "gocua_sqlite_wal_catch_ups",
                "SQLite: checkpoints the writer ran itself since start, so that a WAL grown long under a steady load starts over",
            ),
        ];
        let report_reads = IntGaugeVec::new(
            Opts::new(
                "gocua_report_reads",
                "With GOCUA_REPORTS_DATABASE_URL: reports read since start, by where (replica, or primary when the replica was behind or down)",
            ),
            &["on", "reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(report_reads.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(pool_connections.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(pool_idle.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(pool_max.clone()))
            .expect("unique metric");
        for g in &writer {
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            writer,
            report_reads,
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The text exposition, with the pool gauges read now.
    pub fn render(&self, pool: &Pool, replica: Option<&Replica>) -> String {
        if let Some(r) = replica {
            use std::sync::atomic::Ordering::Relaxed;
            let n =
                |a: &std::sync::atomic::AtomicU64| a.load(Relaxed).try_into().unwrap_or(i64::MAX);
            for (on, reason, count) in [
                ("replica", "ready", n(&r.replica_reads)),
                ("primary", "behind", n(&r.fallbacks_behind)),
                ("primary", "down", n(&r.fallbacks_down)),
            ] {
                self.report_reads
                    .with_label_values(&[on, reason])
                    .set(count);
            }
        }
        let (open, idle, max) = pool.state();
        self.pool_connections.set(open.into());
        self.pool_idle.set(idle.into());
        self.pool_max.set(max.into());
        if let Some(writer) = pool.writer() {
            use std::sync::atomic::Ordering::Relaxed;
            let stats = &writer.stats;
            let counts = [
                stats.queued.load(Relaxed).max(0),
                stats
                    .transactions
                    .load(Relaxed)
                    .try_into()
                    .unwrap_or(i64::MAX),
                stats.groups.load(Relaxed).try_into().unwrap_or(i64::MAX),
                (stats.busy_us.load(Relaxed) / 1000)
                    .try_into()
                    .unwrap_or(i64::MAX),
                writer
                    .durable
                    .syncs
                    .load(Relaxed)
                    .try_into()
                    .unwrap_or(i64::MAX),
                stats.catch_ups.load(Relaxed).try_into().unwrap_or(i64::MAX),
            ];
            for (g, n) in self.writer.iter().zip(counts) {
                g.set(n);
            }
        }
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered (`X-Request-Id`), none outside a request.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(String::clone).ok()
}

/// The request's id: the one a proxy in front sent (`X-Request-Id`, up to 64 visible ASCII
/// characters), or a new one.
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Middleware: gives the request an id (answered as `X-Request-Id`, in problem bodies, and on
/// every log line the request writes), and counts every request by matched route pattern
/// (not raw path, so that ids do not explode the label set), status and latency.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let start = Instant::now();
    let method = req.method().to_string();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let path = req.path().to_owned();
    let id = request_id_of(&req);
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span))
        .await?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            v,
        );
    }
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    if let Some(m) = metrics {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        m.observe(&method, &route, status, elapsed.as_secs_f64());
    }
    tracing::info!(request_id = %id, %method, %path, status, ms = elapsed.as_secs_f64() * 1000.0, "request");
    Ok(res)
}
