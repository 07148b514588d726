//! Load test, in full: many devices syncing at once, as a district's phones do, while the
//! demo's supervisors read their reports (the generator is `tests/common/load.rs`; the
//! test `tests/load.rs` runs it for a few seconds). The servers are `gocua serve`
//! processes on one demo database, the generator is this process, all on the same cores.
//!
//! First one device alone: p50 of a push of 5 new households and of an empty incremental
//! pull. Then the load: syncs/s, client p50/p99 per route, each route's share of answers
//! within 250 ms and its p99 bucket by the servers' own histograms (summed), errors, CPU per
//! sync of the gocua processes and of PostgreSQL's, and each gocua process's peak resident
//! memory; all but the memory counted from when every device has its first download.
//! Fails on any error or any acknowledged household lost.
//!
//! `cargo bench --locked --bench load -- [sqlite|postgres|both] [--devices N]
//! [--canvassers M] [--seconds S] [--processes P] [--pool C] [--supervisor-pause MS]
//! [--households H] [--analyze] [--statements]` (default both, 200 devices, 50 canvassers,
//! 40 s, 1 process, pool 16, each supervisor reading every 1000 ms; 0: no supervisors; no
//! households beyond the demo's). Several processes only on PostgreSQL: a SQLite database
//! is served by one process. `--households` adds H households in villages of their own
//! (`more_households`); `--analyze` runs `ANALYZE` on PostgreSQL before the load;
//! `--statements` prints what PostgreSQL ran (`Statements`).

#[path = "../tests/common/client.rs"]
mod client;
#[path = "../tests/common/load.rs"]
mod load;
#[path = "../tests/common/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use client::Device;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Instant;
use support::{arg, SECRET};
use uuid::Uuid;

fn gocua(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gocua"));
    cmd.env("GOCUA_DATABASE_URL", url)
        .env("GOCUA_JWT_SECRET", SECRET)
        .env("GOCUA_LOG_LEVEL", "error")
        .stderr(Stdio::inherit());
    cmd
}

/// Seconds of CPU (user and system) in a `/proc/PID/stat` line.
fn cpu_seconds(stat: &str) -> f64 {
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn proc_file(pid: u32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap_or_default()
}

/// Peak resident memory (VmHWM) of a process, MiB.
fn peak_mib(pid: u32) -> f64 {
    proc_file(pid, "status")
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Seconds of CPU used so far by the processes named `postgres` (the database's backends
/// and its own workers; those that exited are not counted).
fn postgres_cpu() -> f64 {
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if stat.contains("(postgres)") {
            total += cpu_seconds(&stat);
        }
    }
    total
}

/// The servers' latency histograms, summed: route → [(upper bound, count)].
fn histograms(texts: &[String]) -> std::collections::BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for line in texts.iter().flat_map(|t| t.lines()) {
        let Some(rest) = line.strip_prefix("gocua_http_request_duration_seconds_bucket{") else {
            continue;
        };
        let label = |k: &str| rest.split(&format!("{k}=\"")).nth(1)?.split('"').next();
        let (Some(route), Some(le)) = (label("route"), label("le")) else {
            continue;
        };
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let buckets = out.entry(route.to_owned()).or_default();
        match buckets.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += n,
            None => buckets.push((le, n)),
        }
    }
    out
}

/// Each server's `/metrics`.
async fn metrics(bases: &[String]) -> Vec<String> {
    let mut texts = Vec::new();
    for b in bases {
        texts.push(
            reqwest::get(format!("{b}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    texts
}

/// (share within 250 ms, the upper bound of the bucket that holds the p99) of a route.
fn server_view(buckets: &[(f64, f64)]) -> (f64, f64) {
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    let within = buckets.iter().find(|b| b.0 == 0.25).map_or(0.0, |b| b.1);
    let p99 = buckets
        .iter()
        .filter(|b| b.1 >= total * 0.99)
        .map(|b| b.0)
        .fold(f64::INFINITY, f64::min);
    (within / total.max(1.0), p99)
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `pg_stat_statements` of the bench's database (`--statements`): the library must be in
/// the cluster's `shared_preload_libraries`. Times are PostgreSQL's own: planning is left
/// out unless `pg_stat_statements.track_planning` is on.
struct Statements {
    conn: diesel::PgConnection,
}

#[derive(diesel::QueryableByName)]
struct Statement {
    #[diesel(sql_type = diesel::sql_types::Text)]
    query: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    calls: i64,
    /// Times it was planned (counted with `pg_stat_statements.track_planning` on).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    plans: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    ms: f64,
}

impl Statements {
    fn open(url: &str) -> Option<Statements> {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if !support::flag("--statements") || !url.starts_with("postgres") {
            return None;
        }
        let mut conn = diesel::PgConnection::establish(url).expect("PostgreSQL reachable");
        conn.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .expect("pg_stat_statements installed");
        Some(Statements { conn })
    }

    fn reset(&mut self) {
        use diesel::RunQueryDsl;
        diesel::sql_query("SELECT pg_stat_statements_reset()::text")
            .execute(&mut self.conn)
            .expect("pg_stat_statements preloaded (shared_preload_libraries)");
    }

    /// What the database ran since the last reset, costliest first (this connection's own
    /// reads left out).
    fn read(&mut self) -> Vec<Statement> {
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "SELECT query, calls, plans, total_exec_time + total_plan_time AS ms \
             FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND query NOT LIKE '%pg_stat_statements%' \
             ORDER BY ms DESC",
        )
        .load(&mut self.conn)
        .unwrap()
    }

    /// Prints what ran since the last reset: statements and their time per `per` (a request
    /// or a sync), and the `top` costliest.
    fn print(&mut self, what: &str, per: u64, top: usize) {
        let rows = self.read();
        let per = per.max(1) as f64;
        let calls: i64 = rows.iter().map(|r| r.calls).sum();
        let ms: f64 = rows.iter().map(|r| r.ms).sum();
        println!(
            "  {what}: {:.1} statements, {:.3} ms of PostgreSQL's time each ({} kinds)",
            calls as f64 / per,
            ms / per,
            rows.len()
        );
        for r in rows.iter().take(top) {
            let q: String = r.query.split_whitespace().collect::<Vec<_>>().join(" ");
            let q: String = q.chars().take(110).collect();
            println!(
                "    {:>7.2} calls {:>5.2} plans {:>7.3} ms  {q}",
                r.calls as f64 / per,
                r.plans as f64 / per,
                r.ms / per
            );
        }
    }
}

/// One device alone: p50 of a push of 5 new households, of the pull that brings them back
/// and of an empty incremental pull.
async fn alone(base: &str, statements: &mut Option<Statements>) -> (f64, f64, f64) {
    let c = reqwest::Client::new();
    let token = load::login(&c, base, "canbo").await;
    let village = load::get(&c, base, "/api/v1/areas?level=village&per_page=1", &token).await
        ["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut d = Device::new(&token);
    let pull = |d: &Device| {
        let url = format!("{base}{}", d.pull_path(500));
        let (c, token) = (c.clone(), token.clone());
        async move {
            load::send(&c, reqwest::Method::GET, url, Some(&token), None)
                .await
                .unwrap()
        }
    };
    while d.on_pull(&pull(&d).await) {}
    let (mut push_ms, mut changes_ms, mut pull_ms) = (Vec::new(), Vec::new(), Vec::new());
    // With `--statements`, one more round, profiled; its times are left out.
    let rounds = if statements.is_some() { 61 } else { 60 };
    for round in 0..rounds {
        let mut profile = statements.as_mut().filter(|_| round == 60);
        for i in 0..5 {
            let h = Uuid::new_v4();
            d.queue_op(
                "household.upsert",
                h,
                h,
                json!({"area_id": village, "head_name": "Lý Văn Pao", "address": format!("Số {round}-{i}")}),
            );
        }
        let url = format!("{base}/api/v1/sync/push");
        let body = d.push_body(100);
        if let Some(s) = &mut profile {
            s.reset();
        }
        let t = Instant::now();
        let res = load::send(&c, reqwest::Method::POST, url, Some(&token), Some(&body))
            .await
            .unwrap();
        push_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if let Some(s) = &mut profile {
            s.print("a push of 5 new households", 1, 40);
            s.reset();
        }
        d.on_push(&res);
        assert!(d.queue.is_empty(), "{res}");
        // The pull that brings the batch back (one page), then an empty one.
        let t = Instant::now();
        let page = pull(&d).await;
        changes_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page["changes"].as_array().map(Vec::len), Some(5), "{page}");
        assert!(!d.on_pull(&page), "one page: {page}");
        if let Some(s) = &mut profile {
            s.print("the pull of those households", 1, 40);
            s.reset();
        }
        let t = Instant::now();
        let page = pull(&d).await;
        pull_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if let Some(s) = &mut profile {
            s.print("an empty pull", 1, 40);
        }
        assert_eq!(page["changes"].as_array().map(Vec::len), Some(0), "{page}");
        d.on_pull(&page);
    }
    push_ms.truncate(60);
    changes_ms.truncate(60);
    pull_ms.truncate(60);
    (p50(push_ms), p50(changes_ms), p50(pull_ms))
}

/// `--households N`: a database of a realistic size. N households (with 4 members each, their
/// statuses and visits) in new villages of about 600 households, named "Tổ …", under the
/// demo's communes: the supervisors see them, the canvassers (on the demo's villages, named
/// "Thôn …") do not pull them. Written straight into the tables, counted into the tallies,
/// then `VACUUM (ANALYZE)` on PostgreSQL. Their creation is not in the change log.
async fn more_households(url: &str, households: usize) {
    let (server, pool) = support::start(url, 4);
    let c = reqwest::Client::new();
    let admin = load::login(&c, &server.base, "admin").await;
    let demo = load::get(
        &c,
        &server.base,
        "/api/v1/areas?level=village&per_page=500",
        &admin,
    )
    .await;
    let mut communes: Vec<String> = demo["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["parent_id"].as_str().unwrap().to_owned())
        .collect();
    communes.sort();
    communes.dedup();
    let mut villages = Vec::new();
    for i in 0..households.div_ceil(600) {
        let body = json!({"parent_id": communes[i % communes.len()], "name": format!("Tổ {i}")});
        let url = format!("{}/api/v1/areas", server.base);
        let v = load::send(&c, reqwest::Method::POST, url, Some(&admin), Some(&body))
            .await
            .unwrap();
        villages.push(v["id"].as_str().unwrap().to_owned());
    }
    let campaign = load::get(&c, &server.base, "/api/v1/campaigns", &admin).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = load::get(&c, &server.base, "/api/v1/me", &admin).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || {
        support::seed_households(&pool, &villages, 0, households, 0, &campaign, &me, true)
    })
    .await
    .unwrap();
    println!("(seeding took {:.1} s)", t.elapsed().as_secs_f64());
    drop(server);
}

async fn bench(name: &'static str, url: String) {
    let plan = load::Plan {
        devices: arg("--devices", 200) as usize,
        canvassers: arg("--canvassers", 50) as usize,
        seconds: arg("--seconds", 40) as f64,
        max_pause_ms: 2000,
        supervisor_pause_ms: arg("--supervisor-pause", 1000),
        started: Some(Default::default()),
    };
    let processes = if name == "SQLite" {
        1
    } else {
        arg("--processes", 1)
    };
    let pool = arg("--pool", 16);
    let seeded = gocua(&url)
        .args(["demo", "seed"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(seeded.success(), "the demo is seeded");
    let households = arg("--households", 0) as usize;
    if households > 0 {
        more_households(&url, households).await;
    }
    if support::flag("--analyze") && url.starts_with("postgres") {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut c = diesel::PgConnection::establish(&url).expect("PostgreSQL reachable");
        c.batch_execute("ANALYZE").expect("ANALYZE");
    }
    let size = pool.to_string();
    let env = [("GOCUA_POOL_SIZE", size.as_str())];
    let procs: Vec<process::Server> = (0..processes)
        .map(|_| process::Server::start_with(&url, "127.0.0.1:0", &env, &[]))
        .collect();
    let bases: Vec<String> = procs.iter().map(|p| p.base.clone()).collect();
    let mut statements = Statements::open(&url);
    let (push_alone, changes_alone, pull_alone) = alone(&bases[0], &mut statements).await;
    println!(
        "{name}: one device alone: push of 5 new households p50 {push_alone:.2} ms; the pull of them p50 {changes_alone:.2} ms; empty incremental pull p50 {pull_alone:.2} ms"
    );
    if let Some(s) = &mut statements {
        s.reset();
    }
    // What the servers and PostgreSQL have done when the timed loops begin, after the devices'
    // first downloads (200 at the same instant: a burst, measured apart by the sync bench):
    // left out of the figures below.
    let pids: Vec<u32> = procs.iter().map(process::Server::pid).collect();
    let cpu = move |pids: &[u32]| -> f64 {
        pids.iter()
            .map(|p| cpu_seconds(&proc_file(*p, "stat")))
            .sum()
    };
    let at_start = {
        let (started, pids, bases) = (plan.started.clone().unwrap(), pids.clone(), bases.clone());
        tokio::spawn(async move {
            started.notified().await;
            (cpu(&pids), postgres_cpu(), metrics(&bases).await)
        })
    };
    let out = load::run(&bases, &plan).await;
    let (cpu0, pg0, texts0) = at_start.await.unwrap();
    let cpu = cpu(&pids) - cpu0;
    let pg = postgres_cpu() - pg0;
    let mut hist = histograms(&metrics(&bases).await);
    for (route, buckets) in histograms(&texts0) {
        for (le, n) in buckets {
            let now = hist.entry(route.clone()).or_default();
            if let Some(b) = now.iter_mut().find(|b| b.0 == le) {
                b.1 -= n;
            }
        }
    }
    println!(
        "{name}: {} devices of {} canvassers, {processes} process(es) of pool {pool}, {} s: {} syncs ({:.1}/s), {} ops, {} errors, {} acknowledged households ({} missing from the database, {} from devices)",
        plan.devices,
        plan.canvassers,
        plan.seconds,
        out.syncs,
        out.syncs as f64 / out.wall,
        out.ops,
        out.errors.len(),
        out.created,
        out.lost_in_database,
        out.lost_on_devices,
    );
    for (route, server) in [
        ("push", "/api/v1/sync/push"),
        ("pull", "/api/v1/sync/pull"),
        ("progress", "/api/v1/reports/progress"),
        ("unvisited", "/api/v1/lists/unvisited"),
        ("priority-pending", "/api/v1/lists/priority-pending"),
    ] {
        let (within, p99) = hist.get(server).map_or((0.0, 0.0), |b| server_view(b));
        println!(
            "{name}:   {route:<16} client p50 {:>7.1} ms p99 {:>7.1} ms ({} calls); server: {:.1}% within 250 ms, p99 ≤ {} ms",
            out.quantile(route, 0.5),
            out.quantile(route, 0.99),
            out.ms.get(route).map_or(0, Vec::len),
            within * 100.0,
            p99 * 1000.0,
        );
    }
    println!(
        "{name}: CPU per sync: gocua {:.2} ms (all processes), PostgreSQL {:.2} ms (supervisors' reads included); peak resident per gocua process: {}",
        cpu * 1000.0 / out.syncs.max(1) as f64,
        pg * 1000.0 / out.syncs.max(1) as f64,
        procs
            .iter()
            .map(|p| format!("{:.0} MiB", peak_mib(p.pid())))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(s) = &mut statements {
        s.print(
            "the load, per sync (supervisors' reads included)",
            out.syncs,
            25,
        );
    }
    for e in out.errors.iter().take(5) {
        println!("    {e}");
    }
    assert!(out.errors.is_empty(), "{name}: errors");
    assert_eq!(
        out.lost_in_database + out.lost_on_devices as u64,
        0,
        "{name}: lost"
    );
}

fn main() {
    support::run_on_backends("gocua_bench_load", bench);
}
