//! The load test in short form (the full one is `cargo bench --bench load`): devices of
//! several canvassers syncing small batches at once while supervisors read their reports,
//! on the demo database; on PostgreSQL through three servers, two of them `gocua serve`
//! processes. No request may fail and nothing acknowledged may be lost.

mod common;

#[path = "common/load.rs"]
mod load;

use common::{backend, client, process, TestApp};

#[actix_web::test]
async fn many_devices_at_once_lose_nothing() {
    let app = TestApp::spawn_with(|s| s.pool_size = 8).await;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || gocua::demo::seed_pool(&pool).unwrap())
        .await
        .unwrap()
        .expect("the demo is seeded");
    // SQLite serves from one process (its writer is per process); PostgreSQL from three.
    let others: Vec<process::Server> = match backend().as_str() {
        "postgres" => (0..2)
            .map(|_| process::Server::start(&app.db.url))
            .collect(),
        _ => Vec::new(),
    };
    let mut bases = vec![app.base.clone()];
    bases.extend(others.iter().map(|s| s.base.clone()));
    let plan = load::Plan {
        devices: 24,
        canvassers: 8,
        seconds: 4.0,
        max_pause_ms: 300,
        supervisor_pause_ms: 200,
        started: None,
    };
    let out = load::run(&bases, &plan).await;
    assert!(
        out.errors.is_empty(),
        "errors: {:?}",
        &out.errors[..out.errors.len().min(5)]
    );
    assert!(
        out.syncs >= plan.devices as u64,
        "every device synced: {}",
        out.syncs
    );
    assert!(out.created > 0, "households were created");
    assert_eq!(
        out.lost_in_database, 0,
        "acknowledged households missing from the database"
    );
    assert_eq!(
        out.lost_on_devices, 0,
        "acknowledged households missing from a device's copy"
    );
    for route in ["progress", "unvisited", "priority-pending"] {
        assert!(
            out.ms.get(route).is_some_and(|v| !v.is_empty()),
            "{route} was read"
        );
    }
    // The database holds exactly the households acknowledged to the load's canvassers: no
    // op applied twice, none applied without an answer.
    let made = app
        .number(
            "SELECT count(*) AS n FROM households h JOIN users u ON u.id = h.created_by \
             WHERE u.username LIKE 'load%'"
                .into(),
        )
        .await;
    assert_eq!(made, out.created as i64);
    app.assert_tallies().await;
    // Syncs and the supervisors' reads leave nothing in the audit trail; making the load's
    // users and their logins do.
    let audited = app
        .number(
            "SELECT count(*) AS n FROM audit_log WHERE action NOT IN ('login', 'user_created')"
                .into(),
        )
        .await;
    assert_eq!(audited, 0);
    let logins = app
        .number("SELECT count(*) AS n FROM audit_log WHERE action = 'login'".into())
        .await;
    assert!(logins >= 8, "the canvassers' logins: {logins}");
}
