//! Reports benchmark: the progress report, the trend, the activity checks and the priority
//! list of a district of 50,000 households and 200,000 members, and its exports (time,
//! bytes, and the heap the export needs).
//!
//! `cargo bench --locked --bench reports -- [sqlite|postgres|both] [--households N]
//! [--villages-per-commune V] [--commune-households C] [--runs R] [--no-exports] [--sync]
//! [--vacuum] [--anonymize]` (default both, 50,000 households, 5 villages in each of the 19 communes,
//! 5 timed runs after a warm-up, exports measured; `--commune-households` puts C of the
//! households in the first commune and the rest in the others, instead of an even share;
//! `--sync` also times that commune's first download and a push of 5 new households by its
//! supervisor's device; `--vacuum` runs `VACUUM (ANALYZE)` on PostgreSQL after seeding;
//! `--anonymize` then times the anonymization of the whole campaign).
//! The data is written straight into the tables (the sync benchmark measures writing);
//! everything measured goes through HTTP. Figures are in docs/BENCHMARKS.md.

#[path = "../tests/common/client.rs"]
mod client;
#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use support::{admin_with_binh_gia, get, login, post, put, start, Server, PASSWORD};
use uuid::Uuid;

/// Counts live heap bytes and their peak, so that an export's memory can be measured, over
/// the allocator of the gocua binary (`src/main.rs`).
struct Counting;
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { INNER.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { INNER.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { INNER.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Reads a response as a stream (nothing buffered on the client side): bytes received.
async fn drain(res: reqwest::Response) -> usize {
    assert!(res.status().is_success(), "{}", res.status());
    let mut res = res;
    let mut n = 0;
    while let Some(chunk) = res.chunk().await.unwrap() {
        n += chunk.len();
    }
    n
}

/// One GET read as a stream: seconds until the last byte, and the bytes.
async fn timed(c: &reqwest::Client, s: &Server, path: &str, token: &str) -> (f64, usize) {
    let t = Instant::now();
    let res = c
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let bytes = drain(res).await;
    (t.elapsed().as_secs_f64(), bytes)
}

struct Timing {
    median: f64,
    min: f64,
    bytes: usize,
}

async fn time_get(c: &reqwest::Client, s: &Server, path: &str, token: &str) -> Timing {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..=support::arg("--runs", 5) {
        let (secs, n) = timed(c, s, path, token).await;
        bytes = n;
        times.push(secs);
    }
    times.remove(0); // warm-up
    times.sort_by(f64::total_cmp);
    Timing {
        median: times[times.len() / 2],
        min: times[0],
        bytes,
    }
}

/// One export: seconds, bytes, and the most heap the process (server and client) held
/// above what it held when the export began.
async fn export(c: &reqwest::Client, s: &Server, path: &str, token: &str) -> (f64, usize, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (secs, bytes) = timed(c, s, path, token).await;
    (
        secs,
        bytes,
        PEAK.load(Ordering::Relaxed).saturating_sub(before),
    )
}

async fn bench(name: &str, url: &str) {
    let (server, pool) = start(url, 8);
    let s = &server;
    let c = reqwest::Client::builder().gzip(true).build().unwrap();
    let admin = admin_with_binh_gia(&c, s, &pool).await;
    let me = get(&c, s, "/api/v1/me", &admin).await;
    let (district, communes, villages) =
        support::district_villages(&c, s, &admin, support::arg("--villages-per-commune", 5)).await;
    let body = json!({"name": "Bluezone 2020", "starts_on": "2020-08-01", "ends_on": "2020-08-31"});
    let campaign = post(&c, s, "/api/v1/campaigns", &admin, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for area in std::iter::once(&district).chain(&communes) {
        let path = format!("/api/v1/campaigns/{campaign}/targets/{area}");
        put(
            &c,
            s,
            &path,
            &admin,
            json!({"kind": "rate_registered", "value": 60.0}),
        )
        .await;
    }
    let body = json!({"username": "huyen", "password": PASSWORD, "role": "supervisor", "area_ids": [district]});
    post(&c, s, "/api/v1/users", &admin, body).await;
    // Made before the seeding, which outlasts the admin's token at a million households;
    // the others log in after it.
    let body = json!({"username": "xa", "password": PASSWORD, "role": "supervisor", "area_ids": [communes[0]]});
    post(&c, s, "/api/v1/users", &admin, body).await;
    let user = me["id"].as_str().unwrap().to_owned();
    let (p, v, camp_id) = (pool.clone(), villages.clone(), campaign.clone());
    let first = villages.len() / communes.len();
    let t = Instant::now();
    let total = support::arg("--households", 50_000) as usize;
    let in_first = support::arg("--commune-households", 0) as usize;
    let vacuum = support::flag("--vacuum");
    tokio::task::spawn_blocking(move || {
        support::seed_households(&p, &v, first, total, in_first, &camp_id, &user, vacuum)
    })
    .await
    .unwrap();
    println!("({name}: seeding took {:.1} s)", t.elapsed().as_secs_f64());
    let huyen = login(&c, s, "huyen").await;

    let q = format!("campaign={campaign}&area={district}");
    let rows: [(&str, String); 7] = [
        (
            "progress, district (19 communes)",
            format!("/api/v1/reports/progress?{q}"),
        ),
        (
            "progress, one commune",
            format!(
                "/api/v1/reports/progress?campaign={campaign}&area={}",
                communes[0]
            ),
        ),
        (
            "trend, district (31 days × 20 series)",
            format!("/api/v1/reports/trend?{q}"),
        ),
        (
            "priority list, first page of 50 + total",
            format!("/api/v1/lists/priority-pending?{q}&per_page=50"),
        ),
        (
            "unvisited list, first page of 50 + total",
            format!("/api/v1/lists/unvisited?{q}&per_page=50"),
        ),
        (
            "revisit list, first page of 50 + total",
            format!("/api/v1/lists/revisit?{q}&per_page=50"),
        ),
        (
            "activity checks, district, whole campaign",
            format!("/api/v1/reports/activity?{q}"),
        ),
    ];
    println!("\n### {name}\n");
    println!("| request (district supervisor, gzip) | median s | min s | bytes |");
    println!("|---|---|---|---|");
    for (what, path) in &rows {
        let t = time_get(&c, &server, path, &huyen).await;
        println!("| {what} | {:.3} | {:.3} | {} |", t.median, t.min, t.bytes);
    }
    if support::flag("--sync") {
        let xa = login(&c, s, "xa").await;
        sync(&c, s, &xa, &villages[0]).await;
    }
    if !support::flag("--no-exports") {
        exports(&c, &server, &q, &district, &huyen).await;
    }
    if support::flag("--anonymize") {
        anonymize(&c, &server, &campaign, &admin, &q, &huyen).await;
    }
    drop(server);
}

/// The first commune's supervisor's device: its first download (every page, compact, 1,000
/// households a page, as the field app asks), then pushes of 5 new households from one
/// device.
async fn sync(c: &reqwest::Client, s: &Server, token: &str, village: &str) {
    let runs = support::arg("--runs", 5) as usize;
    let mut pulls = Vec::new();
    let mut households = 0;
    for _ in 0..=runs {
        let device = Uuid::new_v4();
        let mut cursor = String::new();
        let t = Instant::now();
        households = 0;
        loop {
            let path =
                format!("/api/v1/sync/pull?device_id={device}&limit=1000&format=compact{cursor}");
            let page = get(c, s, &path, token).await;
            households += page["units"]["rows"].as_array().map_or(0, Vec::len);
            cursor = format!("&cursor={}", page["cursor"].as_str().unwrap());
            if page["has_more"] != true {
                break;
            }
        }
        pulls.push(t.elapsed().as_secs_f64());
    }
    let mut pushes = Vec::new();
    let mut d = client::Device::new(token);
    for _ in 0..=runs * 4 {
        for k in 0..5 {
            let h = Uuid::new_v4();
            let data = client::household(village, &format!("Lộc Văn Tư {h}"), &format!("Số {k}"));
            d.queue_op("household.upsert", h, h, data);
        }
        let t = Instant::now();
        let r = post(c, s, "/api/v1/sync/push", token, d.push_body(5)).await;
        pushes.push(t.elapsed().as_secs_f64());
        let applied = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["status"] == "applied");
        assert_eq!(applied.count(), 5, "{r}");
        d.on_push(&r);
    }
    println!(
        "
| sync (the first commune's supervisor, gzip) | median s | min s | households |"
    );
    println!("|---|---|---|---|");
    for (what, mut times, n) in [
        (
            "first download of the commune, compact, pages of 1,000",
            pulls,
            households,
        ),
        ("push of 5 new households", pushes, 5),
    ] {
        times.remove(0); // warm-up
        times.sort_by(f64::total_cmp);
        println!(
            "| {what} | {:.4} | {:.4} | {n} |",
            times[times.len() / 2],
            times[0]
        );
    }
}

/// Anonymizes the whole campaign (its retention ran out long ago) through the API: the dry
/// run, then the run itself, and checks that the progress report is unchanged.
async fn anonymize(
    c: &reqwest::Client,
    s: &Server,
    campaign: &str,
    admin: &str,
    q: &str,
    huyen: &str,
) {
    let progress = format!("/api/v1/reports/progress?{q}");
    let before = get(c, s, &progress, huyen).await;
    let path = format!("/api/v1/campaigns/{campaign}/anonymize");
    let t = Instant::now();
    let dry = post(c, s, &path, admin, json!({})).await;
    let dry_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let done = post(c, s, &format!("{path}?apply=true"), admin, json!({})).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        get(c, s, &progress, huyen).await,
        before,
        "progress changed"
    );
    let n = done["households"].as_u64().unwrap();
    println!("\n| anonymization of the campaign | seconds | households | members | visits | households/s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| dry run | {dry_s:.2} | {} | {} | {} | |",
        dry["households"], dry["members"], dry["visits"]
    );
    println!(
        "| applied | {secs:.2} | {n} | {} | {} | {:.0} |",
        done["members"],
        done["visits"],
        n as f64 / secs
    );
}

async fn exports(c: &reqwest::Client, server: &Server, q: &str, district: &str, huyen: &str) {
    println!("\n| export (streamed) | seconds | bytes | peak heap above the start, MiB |");
    println!("|---|---|---|---|");
    for (what, path) in [
        (
            "priority list, CSV",
            format!("/api/v1/lists/priority-pending.csv?{q}"),
        ),
        (
            "priority list, XLSX",
            format!("/api/v1/lists/priority-pending.xlsx?{q}"),
        ),
        (
            "households of the district, CSV",
            format!("/api/v1/households.csv?area={district}"),
        ),
        (
            "households of the district, XLSX",
            format!("/api/v1/households.xlsx?area={district}"),
        ),
    ] {
        let (secs, bytes, rise) = export(c, server, &path, huyen).await;
        println!(
            "| {what} | {secs:.2} | {bytes} | {:.1} |",
            rise as f64 / 1_048_576.0
        );
    }
}

fn main() {
    support::run_on_backends("gocua_bench_reports", |name, url| async move {
        bench(name, &url).await
    });
}
