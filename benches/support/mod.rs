//! What the benchmarks share: an in-process server on a free port, a JSON call, and the
//! loop over the two databases.

#![allow(dead_code)]

#[path = "../../tests/common/admin.rs"]
mod admin;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use gocua::app::Application;
use gocua::config::Settings;
use gocua::rng::Rng;
use serde_json::{json, Value};
use std::future::Future;
use uuid::Uuid;

pub const SECRET: &str = "bench-secret-bench-secret-bench-secret-00";
pub const PASSWORD: &str = "bench password";
const MEMBERS_PER_HOUSEHOLD: usize = 4;

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{name} N")))
        .unwrap_or(default)
}

/// Whether the flag `name` is among the arguments.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

pub struct Server {
    pub base: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start(url: &str, pool_size: u32) -> (Server, gocua::db::Pool) {
    let settings = Settings {
        database_url: url.to_owned(),
        bind: "127.0.0.1:0".into(),
        jwt_secret: Some(SECRET.to_owned().into()),
        pool_size,
        log_level: "error".into(),
        ..Settings::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings).expect("the app builds");
            tx.send((app.port(), app.handle(), app.pool.clone()))
                .unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    let (port, handle, pool) = rx.recv().unwrap();
    (
        Server {
            base: format!("http://127.0.0.1:{port}"),
            handle,
            thread: Some(thread),
        },
        pool,
    )
}

pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut r = c.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// Runs `bench` on SQLite (a temporary file) and on PostgreSQL (a fresh database `db` on
/// `GOCUA_BENCH_PG_URL`, default postgres://postgres@127.0.0.1:5432), as the first argument
/// says: `sqlite`, `postgres` or `both` (default).
pub fn run_on_backends<F, Fut>(db: &str, bench: F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let which = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "both".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if which == "sqlite" || which == "both" {
        // GOCUA_BENCH_SQLITE keeps the database in that file, to look into afterwards.
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::var("GOCUA_BENCH_SQLITE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| dir.path().join("bench.db"));
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        rt.block_on(bench("SQLite", url));
    }
    if which == "postgres" || which == "both" {
        let base = std::env::var("GOCUA_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let mut admin = diesel::PgConnection::establish(&format!("{base}/postgres"))
            .expect("PostgreSQL reachable");
        let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        admin.batch_execute(&drop).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        rt.block_on(bench("PostgreSQL", format!("{base}/{db}")));
        // GOCUA_BENCH_PG_KEEP keeps the database, to look into afterwards.
        if std::env::var_os("GOCUA_BENCH_PG_KEEP").is_none() {
            admin.batch_execute(&drop).unwrap();
        }
    }
}

/// Logs a user in; returns the access token.
pub async fn login(c: &reqwest::Client, s: &Server, username: &str) -> String {
    let v = call(
        c,
        reqwest::Method::POST,
        format!("{}/api/v1/auth/login", s.base),
        None,
        Some(json!({"username": username, "password": PASSWORD})),
    )
    .await;
    v["access_token"].as_str().unwrap().to_owned()
}

/// Creates the admin straight in the database (as `gocua user add` does), logs in, and
/// imports Bình Gia's official rows (the demo's copy); returns the admin's token.
pub async fn admin_with_binh_gia(
    c: &reqwest::Client,
    s: &Server,
    pool: &gocua::db::Pool,
) -> String {
    admin::create_admin(pool, PASSWORD).await;
    let admin = login(c, s, "admin").await;
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/demo/binh_gia.csv"
    ))
    .unwrap();
    let res = c
        .post(format!("{}/api/v1/areas/import", s.base))
        .bearer_auth(&admin)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    admin
}

/// A GET, a POST or a PUT of JSON as `token`, through `call`.
pub async fn get(c: &reqwest::Client, s: &Server, path: &str, token: &str) -> Value {
    call(
        c,
        reqwest::Method::GET,
        format!("{}{path}", s.base),
        Some(token),
        None,
    )
    .await
}

pub async fn post(c: &reqwest::Client, s: &Server, path: &str, token: &str, body: Value) -> Value {
    call(
        c,
        reqwest::Method::POST,
        format!("{}{path}", s.base),
        Some(token),
        Some(body),
    )
    .await
}

pub async fn put(c: &reqwest::Client, s: &Server, path: &str, token: &str, body: Value) -> Value {
    call(
        c,
        reqwest::Method::PUT,
        format!("{}{path}", s.base),
        Some(token),
        Some(body),
    )
    .await
}

/// The peak resident memory of a child so far (VmHWM), in MiB; polled while it runs.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Runs the command to its end: seconds, peak resident MiB, and what it printed.
pub fn run(url: &str, args: &[&str]) -> (f64, f64, String) {
    let t = std::time::Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gocua"))
        .args(args)
        .env("GOCUA_DATABASE_URL", url)
        .env("GOCUA_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its output is read as it comes: a child writing more than a pipe holds would wait.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
        out
    });
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(p) = peak_rss_mib(child.id()) {
            peak = peak.max(p);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert!(status.success(), "{args:?}: {text}");
    (secs, peak, text)
}

/// The number after `name` on the command line (`--households 1000`), or `default`.
pub fn number_arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// The district 181 (`admin_with_binh_gia`), its communes, and villages made under each
/// commune, `per_commune` each: their ids.
pub async fn district_villages(
    c: &reqwest::Client,
    s: &Server,
    admin: &str,
    per_commune: u64,
) -> (String, Vec<String>, Vec<String>) {
    let district = get(c, s, "/api/v1/areas?code=181", admin).await;
    let district = district["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/areas?parent={district}&per_page=100");
    let communes: Vec<String> = get(c, s, &path, admin).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let mut villages = Vec::new();
    for (i, commune) in communes.iter().enumerate() {
        for k in 0..per_commune {
            let body = json!({"parent_id": commune, "name": format!("Thôn {i}-{k}")});
            let v = post(c, s, "/api/v1/areas", admin, body).await;
            villages.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    (district, communes, villages)
}

/// Writes rows straight into tables (`(table, columns, rows of SQL values)`), 1,000 a
/// statement, bypassing the write path, then runs `ANALYZE`.
pub fn insert_straight(pool: &gocua::db::Pool, tables: &[(&str, &str, &Vec<String>)]) {
    let mut pc = pool.get().unwrap();
    let mut conn = pc.conn();
    for (table, cols, rows) in tables {
        for (i, chunk) in rows.chunks(1000).enumerate() {
            let sql = format!("INSERT INTO {table} ({cols}) VALUES {}", chunk.join(","));
            gocua::with_conn!(&mut conn, |c| c.batch_execute(&sql)).unwrap();
            // The server's writer runs SQLite's checkpoints, and these inserts bypass it:
            // without one now and then the WAL grows by the whole database (70 GB at a
            // million households).
            if let gocua::db::Conn::Sqlite(c) = &mut conn {
                if i % 200 == 199 {
                    c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
                }
            }
        }
    }
    gocua::with_conn!(&mut conn, |c| c.batch_execute("ANALYZE")).unwrap();
}

fn ts(day: u64, minute: u64) -> String {
    format!(
        "2020-08-{:02}T{:02}:{:02}:00.000000Z",
        1 + day,
        (minute / 60) % 24,
        minute % 60
    )
}

/// Writes `total` households spread over `villages`, their members, adoptions and visits in
/// `campaign`, 1,000 rows a statement, straight into the tables, then counts them into the
/// report tallies. `first` villages get `in_first` of the households when it is not 0 (the
/// other villages the rest), an even share with the others when it is. `vacuum`: `VACUUM
/// (ANALYZE)` on PostgreSQL after, as an operator would after a bulk load.
#[allow(clippy::too_many_arguments)]
pub fn seed_households(
    pool: &gocua::db::Pool,
    villages: &[String],
    first: usize,
    total: usize,
    in_first: usize,
    campaign: &str,
    user: &str,
    vacuum: bool,
) {
    let mut rng = Rng(7);
    let mut homes = Vec::new();
    let mut people = Vec::new();
    let mut adoptions = Vec::new();
    let mut visits = Vec::new();
    let now = "2020-07-25T00:00:00.000000Z";
    for i in 0..total {
        let h = Uuid::new_v4();
        let v = if in_first == 0 {
            &villages[i % villages.len()]
        } else if i < in_first {
            &villages[i % first]
        } else {
            &villages[first + i % (villages.len() - first)]
        };
        let lat = 21.9 + rng.below(1000) as f64 / 10_000.0;
        let lon = 106.3 + rng.below(1000) as f64 / 10_000.0;
        homes.push(format!(
            "('{h}','{v}','Số {i}, thôn {}','Hoàng Văn Mạnh {i}','0912345678',{lat},{lon},'',1,'{{}}',' hoang van manh',\
             '{user}','{now}','{now}')",
            i % 97
        ));
        for m in 0..MEMBERS_PER_HOUSEHOLD {
            let id = Uuid::new_v4();
            let phone = ["yes", "yes", "no", "unknown"][rng.below(4) as usize];
            let priority = match rng.below(100) {
                0..=2 => "quarantine_centralized",
                3..=5 => "quarantine_home",
                6..=8 => "testing_required",
                _ => "none",
            };
            people.push(format!(
                "('{id}','{h}','Nông Thị Hoa {i}-{m}',{},'female','{phone}','{priority}','',1,'{{}}',' nong thi hoa','{now}','{now}')",
                1950 + rng.below(60)
            ));
            if rng.below(100) < 70 {
                let status = [
                    "installed",
                    "installed_with_help",
                    "already_installed",
                    "refused",
                    "not_yet",
                    "later",
                ][rng.below(6) as usize];
                adoptions.push(format!(
                    "('{id}','{campaign}','{h}','{status}','{}','{user}',1,'{{}}')",
                    ts(rng.below(30), rng.below(1440))
                ));
            }
        }
        for _ in 0..rng.below(3) {
            visits.push(format!(
                "('{}','{h}','{campaign}','{user}','{}','{}','',{lat},{lon},'{now}')",
                Uuid::new_v4(),
                ts(rng.below(30), rng.below(1440)),
                ["met", "met", "not_home", "come_back_later", "refused"][rng.below(5) as usize]
            ));
        }
    }
    let tables: [(&str, &str, &Vec<String>); 4] = [
        ("households", "id, area_id, address, head_name, phone, lat, lon, notes, version, field_meta, search_key, created_by, created_at, updated_at", &homes),
        ("members", "id, household_id, full_name, birth_year, sex, smartphone, priority, notes, version, field_meta, search_key, created_at, updated_at", &people),
        ("adoptions", "member_id, campaign_id, household_id, status, recorded_at, recorded_by, version, field_meta", &adoptions),
        ("visits", "id, household_id, campaign_id, canvasser_id, visited_at, outcome, notes, lat, lon, created_at", &visits),
    ];
    insert_straight(pool, &tables);
    let mut pc = pool.get().unwrap();
    let mut conn = pc.conn();
    println!(
        "seeded {} households, {} members, {} adoptions, {} visits in {} villages",
        homes.len(),
        people.len(),
        adoptions.len(),
        visits.len(),
        villages.len()
    );
    // These rows bypassed the write path, which keeps the reports' tallies: count them as
    // `gocua tallies rebuild` does (and as the first start after the tallies came does).
    let t = std::time::Instant::now();
    let done = conn
        .large_transaction(gocua::store::tallies::rebuild)
        .unwrap();
    println!(
        "tallies rebuilt: {} villages, {} rows, in {:.1} s",
        done.villages,
        done.rows,
        t.elapsed().as_secs_f64()
    );
    if vacuum {
        // As an operator would after a bulk load: autovacuum would otherwise be vacuuming the
        // new tables (for their visibility maps) while the requests are timed.
        let t = std::time::Instant::now();
        if let gocua::db::Conn::Pg(c) = &mut conn {
            diesel::connection::SimpleConnection::batch_execute(&mut **c, "VACUUM (ANALYZE)")
                .unwrap();
        }
        println!("vacuumed in {:.1} s", t.elapsed().as_secs_f64());
    }
}
