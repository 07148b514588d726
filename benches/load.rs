//! Load test: many devices syncing at once, as a district's phones do. N devices of M
//! canvassers (one demo village each), each looping: queue 1–10 mixed ops (new households
//! with a member, edits of notes, statuses, visits), push them, pull what changed, wait
//! 0–2 s; for a set duration, against a server on the demo database that this process
//! starts. Reports syncs/s, client-side p50/p99 per route, the server's own histogram
//! (share of answers within 250 ms), errors, and the process's peak resident memory and CPU
//! per sync; fails on any error or on an acknowledged op that is not in the database.
//!
//! `cargo bench --locked --bench load -- [sqlite|postgres|both] [--devices N]
//! [--canvassers M] [--seconds S]` (default both, 200 devices, 50 canvassers, 40 s).
//! The generator runs in the server's process, on the same two cores.

#[path = "../tests/common/client.rs"]
mod client;
#[path = "support/mod.rs"]
mod support;

use client::Device;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{call, start, Rng, Server};
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{name} N")))
        .unwrap_or(default)
}

/// What the devices saw.
#[derive(Default)]
struct Seen {
    push_ms: Vec<f64>,
    pull_ms: Vec<f64>,
    syncs: u64,
    ops: u64,
    errors: Vec<String>,
    /// Households whose creation was acknowledged as applied.
    created: Vec<Uuid>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Queues 1–10 ops: a new household with a member, or work on households the device holds.
fn queue(d: &mut Device, r: &mut Rng, village: &str, campaign: &str, mine: &mut Vec<Uuid>) {
    for _ in 0..1 + r.below(10) {
        let pick = (!mine.is_empty()).then(|| mine[r.below(mine.len() as u64) as usize]);
        match (r.below(4), pick) {
            (0, Some(h)) => {
                d.queue_op(
                    "household.upsert",
                    h,
                    h,
                    json!({"notes": format!("ghi chú {}", r.below(1000))}),
                );
            }
            (1, Some(h)) => {
                d.queue_op(
                    "visit.record",
                    Uuid::new_v4(),
                    h,
                    json!({"campaign_id": campaign, "visited_at": chrono::Utc::now().to_rfc3339(), "outcome": "met"}),
                );
            }
            _ => {
                let h = Uuid::new_v4();
                d.queue_op(
                    "household.upsert",
                    h,
                    h,
                    json!({"area_id": village, "head_name": "Hoàng Văn Mạnh", "address": format!("Số {}", r.below(500))}),
                );
                let m = Uuid::new_v4();
                d.queue_op(
                    "member.upsert",
                    m,
                    h,
                    json!({"full_name": "Nông Thị Hoa", "smartphone": "yes"}),
                );
                d.queue_op(
                    "adoption.set",
                    m,
                    h,
                    json!({"campaign_id": campaign, "status": "installed"}),
                );
                mine.push(h);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn device_loop(
    s: Arc<Server>,
    c: reqwest::Client,
    token: String,
    village: String,
    campaign: String,
    until: Instant,
    seed: u64,
    seen: Arc<Mutex<Seen>>,
) {
    let mut d = Device::new(&token);
    let mut r = Rng(seed);
    let mut mine = Vec::new();
    while Instant::now() < until {
        queue(&mut d, &mut r, &village, &campaign, &mut mine);
        let ops = d.queue.len() as u64;
        let body = d.push_body(100);
        let creates: Vec<(i64, Uuid)> = d
            .queue
            .iter()
            .filter(|op| op["type"] == "household.upsert" && op["data"]["area_id"].is_string())
            .map(|op| {
                (
                    op["seq"].as_i64().unwrap(),
                    op["entity_id"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let t = Instant::now();
        let res = c
            .post(format!("{}/api/v1/sync/push", s.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await;
        let push_ms = t.elapsed().as_secs_f64() * 1000.0;
        let answer: Value = match res {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
            Ok(r) => {
                seen.lock()
                    .unwrap()
                    .errors
                    .push(format!("push: {}", r.status()));
                continue;
            }
            Err(e) => {
                seen.lock().unwrap().errors.push(format!("push: {e}"));
                continue;
            }
        };
        let mut applied = Vec::new();
        for res in answer["results"].as_array().into_iter().flatten() {
            let seq = res["seq"].as_i64().unwrap_or(0);
            match res["status"].as_str() {
                Some("applied" | "duplicate") => {
                    if let Some((_, h)) = creates.iter().find(|(s, _)| *s == seq) {
                        applied.push(*h);
                    }
                }
                Some("gap") => {}
                other => seen
                    .lock()
                    .unwrap()
                    .errors
                    .push(format!("op {seq}: {other:?} {res}")),
            }
        }
        d.on_push(&answer);
        let t = Instant::now();
        let mut more = true;
        while more {
            let res = c
                .get(format!("{}{}", s.base, d.pull_path(500)))
                .bearer_auth(&token)
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    let page: Value = r.json().await.unwrap_or(Value::Null);
                    more = d.on_pull(&page);
                }
                other => {
                    seen.lock()
                        .unwrap()
                        .errors
                        .push(format!("pull: {:?}", other.map(|r| r.status())));
                    more = false;
                }
            }
        }
        let pull_ms = t.elapsed().as_secs_f64() * 1000.0;
        {
            let mut s = seen.lock().unwrap();
            s.push_ms.push(push_ms);
            s.pull_ms.push(pull_ms);
            s.syncs += 1;
            s.ops += ops;
            s.created.extend(applied);
        }
        tokio::time::sleep(Duration::from_millis(r.below(2000))).await;
    }
}

/// The share of a route's answers within 250 ms, from the server's histogram.
fn within_250ms(metrics: &str, route: &str) -> Option<f64> {
    let line = |le: &str| {
        metrics.lines().find_map(|l| {
            (l.starts_with("gocua_http_request_duration_seconds_bucket")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("le=\"{le}\"")))
            .then(|| l.rsplit(' ').next()?.parse::<f64>().ok())
            .flatten()
        })
    };
    Some(line("0.25")? / line("+Inf")?)
}

fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
        / 1024.0
}

async fn bench(name: &'static str, url: String) {
    let devices = arg("--devices", 200) as usize;
    let canvassers = arg("--canvassers", 50) as usize;
    let seconds = arg("--seconds", 40);
    let (server, pool) = start(&url, 16);
    let s = Arc::new(server);
    let p = pool.clone();
    tokio::task::spawn_blocking(move || gocua::demo::seed_pool(&p).unwrap())
        .await
        .unwrap()
        .expect("the demo is seeded");
    let c = reqwest::Client::new();
    let login = |u: &str| {
        let body = json!({"username": u, "password": gocua::demo::PASSWORD});
        let c = c.clone();
        let url = format!("{}/api/v1/auth/login", s.base);
        async move {
            call(&c, reqwest::Method::POST, url, None, Some(body)).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let admin = login("admin").await;
    let get = |path: &str| {
        let c = c.clone();
        let url = format!("{}{path}", s.base);
        let admin = admin.clone();
        async move { call(&c, reqwest::Method::GET, url, Some(&admin), None).await }
    };
    let villages: Vec<String> = get("/api/v1/areas?level=village&per_page=500").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let campaign = get("/api/v1/campaigns").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let households_before = get("/api/v1/households?per_page=1").await["total"]
        .as_u64()
        .unwrap();
    let mut users = Vec::new();
    for i in 0..canvassers {
        let village = villages[i % villages.len()].clone();
        let body = json!({"username": format!("load{i}"), "password": gocua::demo::PASSWORD,
            "role": "canvasser", "area_ids": [village]});
        call(
            &c,
            reqwest::Method::POST,
            format!("{}/api/v1/users", s.base),
            Some(&admin),
            Some(body),
        )
        .await;
        users.push((login(&format!("load{i}")).await, village));
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for k in 0..devices {
        let (token, village) = users[k % users.len()].clone();
        tasks.push(tokio::spawn(device_loop(
            s.clone(),
            c.clone(),
            token,
            village,
            campaign.clone(),
            until,
            k as u64 + 1,
            seen.clone(),
        )));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu0;
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    let households_after = get("/api/v1/households?per_page=1").await["total"]
        .as_u64()
        .unwrap();
    seen.created.sort();
    seen.created.dedup();
    let lost = (households_before + seen.created.len() as u64).saturating_sub(households_after);
    println!(
        "{name}: {devices} devices of {canvassers} canvassers for {seconds} s: {} syncs ({:.1}/s), {} ops, {} errors, {lost} acknowledged households missing",
        seen.syncs,
        seen.syncs as f64 / wall,
        seen.ops,
        seen.errors.len()
    );
    println!(
        "{name}: client push p50 {:.1} ms p99 {:.1} ms; pull (all pages) p50 {:.1} ms p99 {:.1} ms",
        pct(&mut seen.push_ms, 0.5),
        pct(&mut seen.push_ms, 0.99),
        pct(&mut seen.pull_ms, 0.5),
        pct(&mut seen.pull_ms, 0.99)
    );
    println!(
        "{name}: server within 250 ms: push {:.0}%, pull {:.0}%; CPU per sync {:.2} ms (server and generator); peak resident {:.0} MiB (both)",
        within_250ms(&metrics, "/api/v1/sync/push").unwrap_or(0.0) * 100.0,
        within_250ms(&metrics, "/api/v1/sync/pull").unwrap_or(0.0) * 100.0,
        cpu * 1000.0 / seen.syncs.max(1) as f64,
        peak_rss_mib()
    );
    for e in seen.errors.iter().take(5) {
        println!("    {e}");
    }
    assert!(seen.errors.is_empty(), "{name}: errors");
    assert_eq!(lost, 0, "{name}: acknowledged households missing");
}

fn main() {
    support::run_on_backends("gocua_bench_load", bench);
}
