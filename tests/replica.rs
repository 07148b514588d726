//! Reports on a streaming replica (`GOCUA_REPORTS_DATABASE_URL`, docs/SCALING.md), against a
//! real hot standby: the test makes its own PostgreSQL primary and standby (`initdb`,
//! `pg_basebackup -R`, `pg_ctl`, as the `postgres` user, on free ports, in temporary
//! folders), since the machine's own cluster allows no replication connections. Run in the
//! PostgreSQL pass of the suite (`GOCUA_TEST_DATABASE=postgres`).

mod common;

use common::process::free_port;
use common::TestApp;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// PostgreSQL's programs (Debian keeps them out of the PATH).
fn bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("PostgreSQL's programs are not in {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions.pop().unwrap().join("bin").join(name)
}

/// Runs one of PostgreSQL's programs as the `postgres` user; panics with its output if it
/// fails.
fn as_postgres(program: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin(program))
        .args(args)
        .output()
        .expect("runuser runs");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A primary and its hot standby, each in a folder of its own, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    primary: u16,
    standby: u16,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let own = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(own.success(), "the test runs as root, to act as postgres");
        let (primary, standby) = (free_port(), free_port());
        let c = Cluster {
            dir,
            primary,
            standby,
        };
        let p = c.path("primary");
        as_postgres(
            "initdb",
            &[
                "-D",
                &p,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        c.configure("primary", primary);
        c.pg_ctl("primary", "start");
        let port = primary.to_string();
        as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &c.path("standby"),
                "-R",
                "-X",
                "stream",
            ],
        );
        c.configure("standby", standby);
        c.pg_ctl("standby", "start");
        c
    }

    fn path(&self, node: &str) -> String {
        self.dir.path().join(node).display().to_string()
    }

    /// Its port, sockets in the test's folder, and what streaming needs.
    fn configure(&self, node: &str, port: u16) {
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n",
            self.dir.path().display()
        );
        let file = self.dir.path().join(node).join("postgresql.conf");
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str(&conf);
        std::fs::write(&file, text).unwrap();
    }

    fn pg_ctl(&self, node: &str, action: &str) {
        let log = self
            .dir
            .path()
            .join(format!("{node}.log"))
            .display()
            .to_string();
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.path(node),
                "-l",
                &log,
                "-w",
                "-m",
                "fast",
                action,
            ],
        );
    }

    fn url(&self, port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in ["standby", "primary"] {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin("pg_ctl"))
                .args(["-D", &self.path(node), "-m", "immediate", "stop"])
                .output();
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// gocua's report connections the standby serves.
fn report_connections(url: &str) -> i64 {
    let mut c = PgConnection::establish(url).unwrap();
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = 'gocua' AND application_name = 'gocua_reports'",
    )
    .get_result::<Count>(&mut c)
    .unwrap()
    .n
}

/// The households of the village in the progress report.
async fn households(
    app: &TestApp,
    token: &str,
    commune: &str,
    campaign: &str,
    village: &str,
) -> i64 {
    let r = app
        .get(
            &format!("/api/v1/reports/progress?area={commune}&campaign={campaign}"),
            token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["area_id"] == village)
        .map(|row| row["households"].as_i64().unwrap())
        .unwrap_or_else(|| panic!("the village in {}", r.text))
}

async fn readyz(app: &TestApp) -> Value {
    let r = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// A report-reads counter of `/metrics`.
async fn report_reads(app: &TestApp, on: &str, reason: &str) -> i64 {
    let metrics = app.request(Method::GET, "/metrics", None, None, &[]).await;
    let key = format!("gocua_report_reads{{on=\"{on}\",reason=\"{reason}\"}} ");
    metrics
        .text
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn reports_read_the_replica_see_writes_once_replayed_and_fall_back_when_it_is_behind_or_down()
{
    if common::backend() != "postgres" {
        eprintln!("skipped: runs in the PostgreSQL pass (GOCUA_TEST_DATABASE=postgres)");
        return;
    }
    let cluster = Cluster::start();
    let mut admin = PgConnection::establish(&cluster.url(cluster.primary, "postgres")).unwrap();
    diesel::sql_query("CREATE DATABASE gocua")
        .execute(&mut admin)
        .unwrap();
    let primary = cluster.url(cluster.primary, "gocua");
    let replica = format!(
        "{}?application_name=gocua_reports",
        cluster.url(cluster.standby, "gocua")
    );
    let standby_admin = cluster.url(cluster.standby, "postgres");
    let app = TestApp::spawn_with(|s| {
        s.database_url = primary.clone();
        s.reports_database_url = Some(replica);
        s.reports_max_lag_seconds = 1.0;
    })
    .await;
    let token = app.admin().await;
    app.import_districts(&token, &["181"]).await;
    let commune = app.area(&token, "06073").await;
    let village = app.village(&token, &commune, "Thôn Nà Pàn").await;
    let r = app
        .post(
            "/api/v1/campaigns",
            &token,
            json!({"name": "Bluezone 2020", "starts_on": "2020-08-01", "ends_on": "2020-12-31"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let campaign = r.body["id"].as_str().unwrap().to_owned();

    // A report reads the replica, and sees a write once the standby replayed it.
    app.household(&token, &village, "Hoàng Văn Mạnh", "Số 1")
        .await;
    let seen = common::browser::wait_until(Duration::from_secs(30), || async {
        (households(&app, &token, &commune, &campaign, &village).await == 1).then_some(())
    })
    .await;
    assert!(seen.is_some(), "the replayed write is in the report");
    assert!(
        report_connections(&standby_admin) > 0,
        "the standby served it"
    );
    assert_eq!(readyz(&app).await["reports"]["reads"], "replica");
    assert!(report_reads(&app, "replica", "ready").await > 0);

    // The standby stops replaying: once it is more than a second behind, reports read the
    // primary, and see a new write at once.
    let mut standby = PgConnection::establish(&standby_admin).unwrap();
    diesel::sql_query("SELECT pg_wal_replay_pause()")
        .execute(&mut standby)
        .unwrap();
    app.household(&token, &village, "Nông Thị Lan", "Số 2")
        .await;
    let behind = common::browser::wait_until(Duration::from_secs(30), || async {
        let r = readyz(&app).await;
        (r["reports"]["reason"] == "behind").then_some(r)
    })
    .await;
    assert!(behind.is_some(), "the standby is seen behind");
    assert_eq!(
        households(&app, &token, &commune, &campaign, &village).await,
        2
    );
    assert!(report_reads(&app, "primary", "behind").await > 0);
    diesel::sql_query("SELECT pg_wal_replay_resume()")
        .execute(&mut standby)
        .unwrap();
    drop(standby);
    let caught_up = common::browser::wait_until(Duration::from_secs(30), || async {
        (readyz(&app).await["reports"]["reads"] == "replica").then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "the standby caught up");

    // The standby goes down, while reports still count on it: no report fails; they read
    // the primary (those sent to the replica in the second before it is asked again are
    // read again on the primary).
    cluster.pg_ctl("standby", "stop");
    app.household(&token, &village, "Vi Văn Tải", "Số 3").await;
    for _ in 0..5 {
        assert_eq!(
            households(&app, &token, &commune, &campaign, &village).await,
            3
        );
    }
    let audit = app.get("/api/v1/audit?per_page=5", &token).await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let export = app
        .get(
            &format!("/api/v1/reports/progress.csv?area={commune}&campaign={campaign}"),
            &token,
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert!(export.text.contains("Nà Pàn"), "{}", export.text);
    let down = common::browser::wait_until(Duration::from_secs(30), || async {
        let r = readyz(&app).await;
        (r["reports"] == json!({"reads": "primary", "reason": "down"})).then_some(())
    })
    .await;
    assert!(down.is_some(), "the standby is seen down");
    assert_eq!(
        households(&app, &token, &commune, &campaign, &village).await,
        3
    );
    assert!(report_reads(&app, "primary", "down").await > 0);
}
