//! Sync benchmark: push throughput and latency of gocua against the simplest durable SQL
//! (per row: one upsert of the record and one insert into an op log; one transaction per
//! batch; same concurrency), each the median of three interleaved rounds, and pull time and
//! bytes for a commune of 5,000 households.
//!
//! `cargo bench --bench sync -- [sqlite|postgres|both]` (default both). PostgreSQL is
//! `GOCUA_BENCH_PG_URL` (default postgres://postgres@127.0.0.1:5432); a fresh database
//! `gocua_bench` is made on it. Figures are in docs/BENCHMARKS.md.

#[path = "../tests/common/client.rs"]
mod client;
#[path = "support/mod.rs"]
mod support;

use client::Device;
use diesel::connection::SimpleConnection;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Text};
use diesel::{Connection, QueryResult, RunQueryDsl};
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};
use support::{admin_with_binh_gia, call, get, login, post, start, Server, PASSWORD};
use uuid::Uuid;

/// The allocator of the gocua binary (`src/main.rs`), so that the server in this process
/// runs as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEVICES: usize = 16;
const BATCH: usize = 100;
const HOUSEHOLDS_PER_BATCH: usize = 20; // each with 4 members: 100 ops
const CREATE_BATCHES: usize = 16; // per device: 16 × 20 × 16 = 5,120 households
const VISITS_PER_DEVICE: usize = 320; // 5,120 visits
const UPDATE_BATCHES: usize = 8;
/// Rounds of each side, interleaved (gocua's, then the baseline's, on the same ops).
const ROUNDS: usize = 5;

struct Fixture {
    admin: String,
    supervisor: String,
    canvasser: String,
    villages: Vec<String>,
    campaign: String,
}

async fn fixture(s: &Server, pool: &gocua::db::Pool) -> Fixture {
    let c = reqwest::Client::new();
    let admin = admin_with_binh_gia(&c, s, pool).await;
    let commune = get(&c, s, "/api/v1/areas?code=06073", &admin).await;
    let commune = commune["items"][0]["id"].as_str().unwrap().to_owned();
    let mut villages = Vec::new();
    for i in 0..10 {
        let body = json!({"parent_id": commune, "name": format!("Thôn {i}")});
        let v = post(&c, s, "/api/v1/areas", &admin, body).await;
        villages.push(v["id"].as_str().unwrap().to_owned());
    }
    let body = json!({"name": "Bluezone 2020", "starts_on": "2020-08-01", "ends_on": "2020-12-31"});
    let camp = post(&c, s, "/api/v1/campaigns", &admin, body).await;
    for (u, role) in [("xa", "supervisor"), ("canbo", "canvasser")] {
        let body =
            json!({"username": u, "password": PASSWORD, "role": role, "area_ids": [commune]});
        post(&c, s, "/api/v1/users", &admin, body).await;
    }
    Fixture {
        supervisor: login(&c, s, "xa").await,
        canvasser: login(&c, s, "canbo").await,
        admin,
        villages,
        campaign: camp["id"].as_str().unwrap().to_owned(),
    }
}

/// The queued batches of every device for one phase.
type Batches = Vec<Vec<Value>>;

fn take_batches(d: &mut Device) -> Batches {
    let ops: Vec<Value> = std::mem::take(&mut d.queue);
    ops.chunks(BATCH).map(|c| c.to_vec()).collect()
}

struct Phase {
    ops: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    /// CPU time of the whole process (server, client and baseline threads) in the phase.
    cpu: Duration,
}

/// CPU time this process has used so far (user and system, all threads), from /proc.
fn process_cpu() -> Duration {
    cpu_of("/proc/self/stat")
}

/// CPU time the SQLite writer thread has used so far (zero on PostgreSQL: no such thread).
fn writer_cpu() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    tasks
        .map(|t| t.path())
        .find(|t| {
            let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
            comm.trim() == "gocua-sqlite-wr" // the name, cut to 15 bytes
        })
        .map(|t| cpu_of(t.join("stat")))
        .unwrap_or_default()
}

/// User plus system time from a /proc `stat` file.
fn cpu_of(path: impl AsRef<std::path::Path>) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and
    // 13th, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

impl Phase {
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    /// Microseconds of CPU (all threads) per op.
    fn cpu_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops as f64
    }
    fn pct(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l[i].as_secs_f64() * 1000.0
    }
}

/// Pushes every device's batches through gocua, devices in parallel. The requests are
/// serialized before the clock starts and the answers parsed (and checked) after it stops:
/// phones do both on their own CPUs, and on this machine the client shares the server's.
async fn push_phase(s: &Server, token: &str, devices: &[(Uuid, Batches)]) -> Phase {
    let bodies: Vec<Vec<Vec<u8>>> = devices
        .iter()
        .map(|(id, batches)| {
            let body = |b: &Vec<Value>| serde_json::to_vec(&json!({"device_id": id, "ops": b}));
            batches.iter().map(|b| body(b).unwrap()).collect()
        })
        .collect();
    let start = Instant::now();
    let cpu = process_cpu();
    let mut tasks = Vec::new();
    for bodies in bodies {
        let (c, url, token) = (
            reqwest::Client::new(),
            format!("{}/api/v1/sync/push", s.base),
            token.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for body in bodies {
                let t = Instant::now();
                let res = c
                    .post(&url)
                    .bearer_auth(&token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let raw = res.bytes().await.unwrap();
                answers.push((t.elapsed(), status, raw));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    let (wall, cpu) = (start.elapsed(), process_cpu().saturating_sub(cpu));
    for (_, status, raw) in &answers {
        let r: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
        let ok = |x: &Value| x["status"] == "applied" || x["status"] == "merged";
        assert!(status.is_success(), "{status}: {r}");
        assert!(r["results"].as_array().unwrap().iter().all(ok), "{r}");
    }
    let ops = devices
        .iter()
        .map(|(_, b)| b.iter().map(Vec::len).sum::<usize>())
        .sum();
    Phase {
        ops,
        wall,
        latencies: answers.into_iter().map(|a| a.0).collect(),
        cpu,
    }
}

/// The baseline's upsert of one record, a statement kept prepared (diesel caches it under its
/// static query id; `sql_query` would be parsed again at every call).
struct Upsert<'a> {
    key: &'a str,
    household: &'a str,
    data: &'a str,
}

impl<DB: diesel::backend::Backend> QueryFragment<DB> for Upsert<'_>
where
    str: ToSql<Text, DB>,
    DB: HasSqlType<Text>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO bench_records (id, household_id, data) VALUES (");
        out.push_bind_param::<Text, str>(self.key)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.household)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.data)?;
        out.push_sql(") ON CONFLICT (id) DO UPDATE SET data = excluded.data");
        Ok(())
    }
}

impl QueryId for Upsert<'_> {
    type QueryId = Upsert<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<C> RunQueryDsl<C> for Upsert<'_> {}

/// The baseline's op-log insert, kept prepared.
struct Log<'a> {
    device: &'a str,
    seq: i64,
    key: &'a str,
    data: &'a str,
}

impl<DB: diesel::backend::Backend> QueryFragment<DB> for Log<'_>
where
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    DB: HasSqlType<Text> + HasSqlType<BigInt>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO bench_oplog (device_id, seq, entity_id, data) VALUES (");
        out.push_bind_param::<Text, str>(self.device)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, i64>(&self.seq)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.key)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, str>(self.data)?;
        out.push_sql(")");
        Ok(())
    }
}

impl QueryId for Log<'_> {
    type QueryId = Log<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<C> RunQueryDsl<C> for Log<'_> {}

/// One batch of the baseline in the caller's transaction: per row, the upsert and the log.
fn baseline_batch<C>(c: &mut C, device: &str, batch: &[Value]) -> QueryResult<()>
where
    C: Connection,
    Upsert<'static>: QueryFragment<C::Backend>,
    Log<'static>: QueryFragment<C::Backend>,
    for<'a> Upsert<'a>: diesel::query_dsl::methods::ExecuteDsl<C>,
    for<'a> Log<'a>: diesel::query_dsl::methods::ExecuteDsl<C>,
{
    for op in batch {
        let key = match op["type"].as_str().unwrap() {
            "adoption.set" => format!(
                "{}/{}",
                op["entity_id"].as_str().unwrap(),
                op["data"]["campaign_id"]
            ),
            _ => op["entity_id"].as_str().unwrap().to_owned(),
        };
        let data = op["data"].to_string();
        Upsert {
            key: &key,
            household: op["household_id"].as_str().unwrap(),
            data: &data,
        }
        .execute(c)?;
        Log {
            device,
            seq: op["seq"].as_i64().unwrap(),
            key: &key,
            data: &data,
        }
        .execute(c)?;
    }
    Ok(())
}

/// The baseline: the same rows, per row one upsert of the record and one insert into an op
/// log, one transaction per batch, one connection per device, devices in parallel.
fn baseline_phase(url: &str, devices: &[(Uuid, Batches)]) -> Phase {
    let start = Instant::now();
    let cpu = process_cpu();
    let handles: Vec<_> = devices
        .iter()
        .cloned()
        .map(|(id, batches)| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let device = id.to_string();
                let mut lat = Vec::new();
                if url.starts_with("postgres") {
                    let mut conn = diesel::PgConnection::establish(&url).unwrap();
                    for b in &batches {
                        let t = Instant::now();
                        conn.transaction(|c| baseline_batch(c, &device, b)).unwrap();
                        lat.push(t.elapsed());
                    }
                } else {
                    let path = gocua::db::sqlite_path(&url).unwrap().to_owned();
                    let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
                    conn.batch_execute("PRAGMA busy_timeout = 60000; PRAGMA synchronous = FULL;")
                        .unwrap();
                    for b in &batches {
                        let t = Instant::now();
                        conn.immediate_transaction(|c| baseline_batch(c, &device, b))
                            .unwrap();
                        lat.push(t.elapsed());
                    }
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().unwrap());
    }
    let ops = devices
        .iter()
        .map(|(_, b)| b.iter().map(Vec::len).sum::<usize>())
        .sum();
    Phase {
        ops,
        wall: start.elapsed(),
        latencies,
        cpu: process_cpu().saturating_sub(cpu),
    }
}

/// (Re)creates the baseline's empty tables.
fn baseline_tables(url: &str) {
    let sql = "DROP TABLE IF EXISTS bench_records; DROP TABLE IF EXISTS bench_oplog; \
               CREATE TABLE bench_records (id text PRIMARY KEY, household_id text NOT NULL, data text NOT NULL); \
               CREATE TABLE bench_oplog (id INTEGER PRIMARY KEY, device_id text NOT NULL, seq bigint NOT NULL, entity_id text NOT NULL, data text NOT NULL);";
    if url.starts_with("postgres") {
        let mut c = diesel::PgConnection::establish(url).unwrap();
        c.batch_execute(&sql.replace("id INTEGER PRIMARY KEY", "id bigserial PRIMARY KEY"))
            .unwrap();
    } else {
        let mut c =
            diesel::SqliteConnection::establish(gocua::db::sqlite_path(url).unwrap()).unwrap();
        c.batch_execute(sql).unwrap();
    }
}

/// The round with the median throughput, and every round's ops/s.
fn median(mut rounds: Vec<Phase>) -> (Phase, Vec<u64>) {
    let all = rounds
        .iter()
        .map(|p| p.ops_per_s().round() as u64)
        .collect();
    rounds.sort_by(|a, b| a.ops_per_s().total_cmp(&b.ops_per_s()));
    (rounds.swap_remove(rounds.len() / 2), all)
}

/// The SQLite writer's (write transactions, group commits, busy milliseconds) so far, from
/// `/metrics`.
async fn writer_stats(s: &Server) -> (u64, u64, u64) {
    let text = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        gauge("gocua_sqlite_write_transactions"),
        gauge("gocua_sqlite_group_commits"),
        gauge("gocua_sqlite_writer_busy_milliseconds"),
    )
}

/// Pulls until done with gzip; returns (seconds, compressed bytes, changes, device).
async fn pull_all(s: &Server, token: &str, mut d: Device) -> (f64, usize, usize, Device) {
    let c = reqwest::Client::builder().gzip(false).build().unwrap();
    let start = Instant::now();
    let (mut bytes, mut changes) = (0, 0);
    loop {
        let res = c
            .get(format!("{}{}", s.base, d.pull_path(2000)))
            .bearer_auth(token)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-encoding"], "gzip");
        let raw = res.bytes().await.unwrap();
        bytes += raw.len();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        changes += page["changes"].as_array().unwrap().len();
        if !d.on_pull(&page) {
            break;
        }
    }
    (start.elapsed().as_secs_f64(), bytes, changes, d)
}

/// One round's ops: every device's new households with members, visits to them, and updates
/// of them; and the new households' ids per device.
struct Round {
    create: Vec<(Uuid, Batches)>,
    visits: Vec<(Uuid, Batches)>,
    update: Vec<(Uuid, Batches)>,
    created: Vec<Vec<Uuid>>,
}

fn round_ops(f: &Fixture, devices: &mut [Device], round: usize) -> Round {
    let mut created: Vec<Vec<Uuid>> = vec![Vec::new(); DEVICES];
    for (i, d) in devices.iter_mut().enumerate() {
        for b in 0..CREATE_BATCHES {
            for k in 0..HOUSEHOLDS_PER_BATCH {
                let h = Uuid::new_v4();
                created[i].push(h);
                let village = &f.villages[(i + b + k) % f.villages.len()];
                d.queue_op("household.upsert", h, h, json!({"area_id": village, "head_name": format!("Hoàng Văn Mạnh {round}-{i}-{b}-{k}"),
                    "address": format!("Số {k}, thôn {b}"), "phone": "0912345678", "lat": 21.95, "lon": 106.31}));
                for m in 0..4 {
                    d.queue_op("member.upsert", Uuid::new_v4(), h, json!({"full_name": format!("Nông Thị Hoa {m}"),
                        "birth_year": 1960 + m, "sex": "female", "smartphone": "yes", "priority": if m == 0 { "quarantine_home" } else { "none" }}));
                }
            }
        }
    }
    let create = devices
        .iter_mut()
        .map(|d| (d.id, take_batches(d)))
        .collect();
    for (i, d) in devices.iter_mut().enumerate() {
        for k in 0..VISITS_PER_DEVICE {
            let h = created[i][k % created[i].len()];
            d.queue_op("visit.record", Uuid::new_v4(), h, json!({"campaign_id": f.campaign, "visited_at": "2020-08-21T03:04:05Z", "outcome": "met"}));
        }
    }
    let visits = devices
        .iter_mut()
        .map(|d| (d.id, take_batches(d)))
        .collect();
    for (i, d) in devices.iter_mut().enumerate() {
        for k in 0..UPDATE_BATCHES * BATCH {
            let h = created[i][k % created[i].len()];
            d.queue_op(
                "household.upsert",
                h,
                h,
                json!({"notes": format!("Đã gặp lần {k}"), "phone": format!("09{:08}", k)}),
            );
        }
    }
    let update = devices
        .iter_mut()
        .map(|d| (d.id, take_batches(d)))
        .collect();
    Round {
        create,
        visits,
        update,
        created,
    }
}

/// The gocua phases of every round, the baseline's, and the SQLite writer's busy milliseconds
/// in each kind of gocua phase.
#[derive(Default)]
struct Rounds {
    create: Vec<Phase>,
    visits: Vec<Phase>,
    update: Vec<Phase>,
    b_create: Vec<Phase>,
    b_update: Vec<Phase>,
    busy_ms: [u64; 3],
    writer_cpu: [Duration; 3],
}

impl Rounds {
    /// Pushes a round through gocua, then writes it by the baseline. Both sides keep their
    /// rows from round to round: the later rounds of each write into larger tables.
    async fn run(&mut self, s: &Server, token: &str, url: &str, r: &Round) {
        for (k, ops) in [&r.create, &r.visits, &r.update].into_iter().enumerate() {
            let (before, cpu) = (writer_stats(s).await.2, writer_cpu());
            let phase = push_phase(s, token, ops).await;
            self.busy_ms[k] += writer_stats(s).await.2 - before;
            self.writer_cpu[k] += writer_cpu().saturating_sub(cpu);
            [&mut self.create, &mut self.visits, &mut self.update][k].push(phase);
        }
        self.b_create.push(baseline_phase(url, &r.create));
        self.b_update.push(baseline_phase(url, &r.update));
    }

    /// The writer thread's CPU time per op in each kind of phase, in microseconds.
    fn writer_us_per_op(&self) -> Vec<f64> {
        [&self.create, &self.visits, &self.update]
            .iter()
            .zip(self.writer_cpu)
            .map(|(p, cpu)| cpu.as_secs_f64() * 1e6 / p.iter().map(|p| p.ops).sum::<usize>() as f64)
            .collect()
    }

    /// The writer's busy time as a share of the wall time of each kind of phase.
    fn busy(&self) -> Vec<f64> {
        [&self.create, &self.visits, &self.update]
            .iter()
            .zip(self.busy_ms)
            .map(|(p, ms)| ms as f64 / 1000.0 / p.iter().map(|p| p.wall.as_secs_f64()).sum::<f64>())
            .collect()
    }
}

async fn bench(name: &str, url: &str) {
    let (server, pool) = start(url, DEVICES as u32 + 2);
    let f = fixture(&server, &pool).await;
    let _ = &f.admin;
    let mut devices: Vec<Device> = (0..DEVICES).map(|_| Device::new(&f.canvasser)).collect();
    // Throughput swings from run to run on a shared two-core machine (and the baseline's
    // writers wait in SQLite's busy handler or on PostgreSQL's row locks): each side runs
    // ROUNDS rounds, interleaved, and the median round of each is compared.
    let mut rounds = Rounds::default();
    baseline_tables(url);
    let first = round_ops(&f, &mut devices, 0);
    rounds.run(&server, &f.canvasser, url, &first).await;

    // The pulls, while the commune holds the first round alone (5,120 households).
    let (full_s, full_bytes, full_changes, sup) =
        pull_all(&server, &f.supervisor, Device::new(&f.supervisor)).await;
    // 100 changes, then an incremental pull.
    let mut editor = Device::new(&f.canvasser);
    for k in 0..100 {
        let h = first.created[k % DEVICES][k];
        editor.queue_op(
            "household.upsert",
            h,
            h,
            json!({"notes": format!("Sửa {k}")}),
        );
    }
    let body = json!({"device_id": editor.id, "ops": editor.queue});
    call(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        format!("{}/api/v1/sync/push", server.base),
        Some(&f.canvasser),
        Some(body),
    )
    .await;
    let (inc_s, inc_bytes, inc_changes, _) = pull_all(&server, &f.supervisor, sup).await;

    for round in 1..ROUNDS {
        let r = round_ops(&f, &mut devices, round);
        rounds.run(&server, &f.canvasser, url, &r).await;
    }
    let (busy, writer_us) = (rounds.busy(), rounds.writer_us_per_op());
    let stats = writer_stats(&server).await;
    let (g_create, g_visits, g_update) = (
        median(std::mem::take(&mut rounds.create)),
        median(std::mem::take(&mut rounds.visits)),
        median(std::mem::take(&mut rounds.update)),
    );
    let b_create = median(std::mem::take(&mut rounds.b_create));
    let b_update = median(std::mem::take(&mut rounds.b_update));

    println!("\n### {name}\n");
    println!("| push phase | ops | gocua ops/s | gocua p50 ms | gocua p99 ms | baseline ops/s | baseline p50 ms | baseline p99 ms | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, g, b) in [
        (
            "new households with members",
            &g_create.0,
            Some(&b_create.0),
        ),
        ("visits", &g_visits.0, None),
        (
            "updates of existing households",
            &g_update.0,
            Some(&b_update.0),
        ),
    ] {
        match b {
            Some(b) => println!(
                "| {label} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.2} |",
                g.ops,
                g.ops_per_s(),
                g.pct(0.5),
                g.pct(0.99),
                b.ops_per_s(),
                b.pct(0.5),
                b.pct(0.99),
                g.ops_per_s() / b.ops_per_s()
            ),
            None => println!(
                "| {label} | {} | {:.0} | {:.1} | {:.1} | | | | |",
                g.ops,
                g.ops_per_s(),
                g.pct(0.5),
                g.pct(0.99)
            ),
        }
    }
    println!(
        "\nEach side: the median of {ROUNDS} interleaved rounds by ops/s (ops and latencies are \
         that round's). All rounds' ops/s: gocua creates {:?}, updates {:?}; baseline creates \
         {:?}, updates {:?}.",
        g_create.1, g_update.1, b_create.1, b_update.1
    );
    println!(
        "CPU of the whole process (server and client; baseline) per op: creates {:.0} µs ({:.0} µs), \
         visits {:.0} µs, updates {:.0} µs ({:.0} µs).",
        g_create.0.cpu_per_op(),
        b_create.0.cpu_per_op(),
        g_visits.0.cpu_per_op(),
        g_update.0.cpu_per_op(),
        b_update.0.cpu_per_op()
    );
    if !url.starts_with("postgres") {
        let (txs, groups, _) = stats;
        println!(
            "SQLite writer: {txs} write transactions in {groups} commits ({:.1} a commit); \
             busy {:.0}% / {:.0}% / {:.0}% of the creates / visits / updates phases; its \
             thread's CPU per op {:.1} / {:.1} / {:.1} µs (all rounds).",
            txs as f64 / groups as f64,
            busy[0] * 100.0,
            busy[1] * 100.0,
            busy[2] * 100.0,
            writer_us[0],
            writer_us[1],
            writer_us[2]
        );
    }
    println!("\n| pull (commune supervisor, gzip, after the first round) | changes | seconds | compressed bytes |");
    println!("|---|---|---|---|");
    println!("| first full download | {full_changes} | {full_s:.2} | {full_bytes} |");
    println!("| incremental after 100 changes | {inc_changes} | {inc_s:.3} | {inc_bytes} |");
    drop(server);
}

fn main() {
    support::run_on_backends(
        "gocua_bench",
        |name, url| async move { bench(name, &url).await },
    );
}
