//! Health, readiness, metrics, compression and the OpenAPI document.

mod common;

use common::TestApp;
use reqwest::Method;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let started = std::time::Instant::now();
    let app = TestApp::spawn().await;
    let h = app.request(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(h.body["status"], "ok");
    let r = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(r.body["status"], "ready");
    let admin = app.admin().await;
    app.get("/api/v1/me", &admin).await;
    let body = serde_json::json!({"name": "Bluezone 2020", "starts_on": "2020-08-01"});
    app.post("/api/v1/campaigns", &admin, body).await;
    app.get(
        &format!("/api/v1/households/{}", uuid::Uuid::new_v4()),
        &admin,
    )
    .await;

    let m = app.request(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(m.status, 200);
    assert!(
        m.text.contains(
            r#"gocua_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1"#
        ),
        "{}",
        m.text
    );
    // Routes are labelled by pattern, not by id.
    assert!(
        m.text
            .contains(r#"route="/api/v1/households/{id}",status="404"} 1"#),
        "{}",
        m.text
    );
    assert!(m
        .text
        .contains("gocua_http_request_duration_seconds_bucket"));
    assert!(
        m.text.contains("gocua_db_pool_max_connections 4"),
        "{}",
        m.text
    );
    let gauge = |name: &str| {
        m.text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| v.parse::<u64>().unwrap())
    };
    if common::backend() == "sqlite" {
        // The campaign went through the writer; nothing waits now.
        let (txs, groups) = (
            gauge("gocua_sqlite_write_transactions").unwrap(),
            gauge("gocua_sqlite_group_commits").unwrap(),
        );
        assert!(txs >= 1 && (1..=txs).contains(&groups), "{}", m.text);
        // Every answered commit was synced, some groups sharing a sync.
        let syncs = gauge("gocua_sqlite_wal_syncs").unwrap();
        assert!((1..=groups).contains(&syncs), "{}", m.text);
        assert_eq!(gauge("gocua_sqlite_writer_queue"), Some(0));
        // The writer cannot have been busy for longer than the server has run.
        let busy = gauge("gocua_sqlite_writer_busy_milliseconds").unwrap();
        assert!(busy <= started.elapsed().as_millis() as u64, "{}", m.text);
        // A few writes leave the WAL short: the checkpoint thread keeps up alone.
        assert_eq!(gauge("gocua_sqlite_wal_catch_ups"), Some(0), "{}", m.text);
    } else {
        assert_eq!(gauge("gocua_sqlite_write_transactions"), Some(0));
        assert_eq!(gauge("gocua_sqlite_writer_busy_milliseconds"), Some(0));
        assert_eq!(gauge("gocua_sqlite_wal_syncs"), Some(0));
        assert_eq!(gauge("gocua_sqlite_wal_catch_ups"), Some(0));
    }
}

#[tokio::test]
async fn responses_are_compressed_when_accepted() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.import_districts(&admin, &["181"]).await;
    let plain = app
        .client
        .get(format!(
            "{}/api/v1/areas?per_page=100&level=commune",
            app.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    let gz = app
        .client
        .get(format!(
            "{}/api/v1/areas?per_page=100&level=commune",
            app.base
        ))
        .bearer_auth(&admin)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz_len = gz.bytes().await.unwrap().len();
    assert!(gz_len * 3 < plain_len, "gzip {gz_len} vs plain {plain_len}");
}

#[tokio::test]
async fn openapi_is_committed_and_served() {
    let generated = gocua::api::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json` and commit it"
    );
    let app = TestApp::spawn().await;
    let served = app
        .request(Method::GET, "/api-docs/openapi.json", None, None, &[])
        .await;
    assert_eq!(
        served.body,
        serde_json::from_str::<serde_json::Value>(&generated).unwrap()
    );
    let paths = served.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/login",
        "/api/v1/households",
        "/api/v1/households/{id}",
        "/api/v1/areas/import",
    ] {
        assert!(paths.contains_key(p), "{p} is documented");
    }
    let ui = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
}

/// Pooled connections are not tested when taken (a round trip per request): when the
/// database drops them (a restart, an administrator's `pg_terminate_backend`), a request on
/// one answers 503 `unavailable`, that connection is replaced, and the next requests work.
#[tokio::test]
async fn dropped_database_connections_answer_503_once_then_are_replaced() {
    if common::backend() != "postgres" {
        return;
    }
    let app = TestApp::spawn_with(|s| s.pool_size = 3).await;
    let admin = app.admin().await;
    // Open the whole pool: three requests at once.
    let me = app.get("/api/v1/me", &admin).await.body;
    let all = futures_util::future::join_all((0..3).map(|_| app.get("/api/v1/me", &admin))).await;
    assert!(all.iter().all(|r| r.status == 200 && r.body == me));
    let killed = app
        .number(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()"
                .into(),
        )
        .await;
    assert!(killed >= 1, "the server's other connections were open");
    let mut failed = 0;
    for _ in 0..6 {
        let r = app.get("/api/v1/me", &admin).await;
        if r.status == 503 {
            r.assert_problem(503, "unavailable");
            failed += 1;
        } else {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body, me);
        }
    }
    assert!(failed <= 3, "at most once per pooled connection: {failed}");
    for _ in 0..6 {
        let r = app.get("/api/v1/me", &admin).await;
        assert_eq!((r.status.as_u16(), &r.body), (200, &me), "{}", r.text);
    }
}

/// Every answer carries the security headers: a JSON answer, a problem, a page, a metric.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let answers = [
        app.get("/api/v1/me", &admin).await,
        app.get(
            &format!("/api/v1/households/{}", uuid::Uuid::new_v4()),
            &admin,
        )
        .await,
        app.request(Method::GET, "/api/v1/me", None, None, &[])
            .await,
        app.request(Method::GET, "/", None, None, &[]).await,
        app.request(Method::GET, "/field/", None, None, &[]).await,
        app.request(Method::GET, "/metrics", None, None, &[]).await,
        app.request(Method::GET, "/no/such/page", None, None, &[])
            .await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 404, 401, 200, 200, 200, 404]);
    for r in &answers {
        let h = |name: &str| r.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(h("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(h("referrer-policy").as_deref(), Some("no-referrer"));
    }
    // Pages keep their own policy.
    assert!(answers[3].headers.contains_key("content-security-policy"));
}

/// Every answer names its request (`X-Request-Id`); a problem body carries the same id; an
/// id sent by a proxy in front is kept when it is short and plain, replaced otherwise.
#[tokio::test]
async fn every_answer_names_its_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = |r: &common::Res| {
        r.headers
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .expect("an X-Request-Id")
    };
    let ok = app.get("/api/v1/me", &admin).await;
    assert_eq!(ok.status, 200);
    let missing = app
        .get(
            &format!("/api/v1/households/{}", uuid::Uuid::new_v4()),
            &admin,
        )
        .await;
    missing.assert_problem(404, "not_found");
    assert_eq!(
        missing.body["request_id"].as_str(),
        Some(id(&missing).as_str())
    );
    assert_ne!(id(&ok), id(&missing), "each request has its own id");
    let mine = app
        .request(
            Method::GET,
            "/api/v1/me",
            None,
            None,
            &[("x-request-id", "proxy-42")],
        )
        .await;
    mine.assert_problem(401, "missing_token");
    assert_eq!(
        (id(&mine).as_str(), &mine.body["request_id"]),
        ("proxy-42", &serde_json::json!("proxy-42"))
    );
    let long = "x".repeat(65);
    let replaced = app
        .request(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", long.as_str())],
        )
        .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(id(&replaced).len(), 32, "a new id: {}", id(&replaced));
}
