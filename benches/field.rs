//! The field app on a phone's screen in headless Chromium, with a large ward's 5,000
//! households (and 20,000 members) in the canvasser's scope: the first download into
//! IndexedDB, opening the app again, a search and an edit, on this machine and on a low-end
//! phone (CPU throttled ×4, a 2G/3G link); and the bytes of the first download and of the app
//! shell as they travel, compressed.
//!
//! `cargo bench --locked --bench field -- sqlite` (or `postgres`, or `both`, the default);
//! needs Debian's chromium and chromium-driver. Prints Markdown tables for
//! docs/BENCHMARKS.md.

#[path = "../tests/common/browser.rs"]
mod browser;
mod support;

use browser::Browser;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Instant;
use uuid::Uuid;

const HOUSEHOLDS: usize = 5000;
const MEMBERS: usize = 4;
const SHELL: &[&str] = &[
    "",
    "app.js",
    "sync.js",
    "text.js",
    "duplicates.js",
    "vocabulary.js",
    "schedule.js",
    "units.js",
    "idbstore.js",
    "memstore.js",
    "app.css",
    "manifest.webmanifest",
    "icon.svg",
    "icon-192.png",
    "icon-512.png",
    "sw.js",
];
const FAMILY: &[&str] = &["Nguyễn", "Hoàng", "Nông", "Lý", "Vi", "Đinh", "Hà", "Lương"];
const GIVEN: &[&str] = &[
    "Văn Mạnh",
    "Thị Hoa",
    "Văn Đức",
    "Thị Lan",
    "Văn Bảo",
    "Thị Mai",
];

/// 5,000 households of four members in canbo's first village, pushed as canbo's device.
async fn seed(http: &reqwest::Client, base: &str) {
    let token = token(http, base).await;
    let me = support::call(
        http,
        Method::GET,
        format!("{base}/api/v1/me"),
        Some(&token),
        None,
    )
    .await;
    let village = me["area_ids"][0].as_str().unwrap().to_owned();
    let device = Uuid::new_v4();
    let mut ops = Vec::new();
    let mut seq = 0;
    let mut op = |kind: &str, entity: Uuid, hh: Uuid, data: Value| {
        seq += 1;
        json!({"seq": seq, "op_id": Uuid::new_v4(), "type": kind, "entity_id": entity,
               "household_id": hh, "hlc": format!("2020-08-21T03:04:05.000Z-{:04}", seq % 10000),
               "data": data})
    };
    for i in 0..HOUSEHOLDS {
        let h = Uuid::new_v4();
        let family = FAMILY[i % FAMILY.len()];
        ops.push(op(
            "household.upsert",
            h,
            h,
            json!({"area_id": village, "address": format!("Số {i}, xóm {}", i / 50),
                   "head_name": format!("{family} {}", GIVEN[i % GIVEN.len()])}),
        ));
        for m in 0..MEMBERS {
            ops.push(op(
                "member.upsert",
                Uuid::new_v4(),
                h,
                json!({"full_name": format!("{family} {}", GIVEN[(i + m) % GIVEN.len()]),
                       "birth_year": 1950 + (i + m) % 60}),
            ));
        }
    }
    for chunk in ops.chunks(500) {
        support::call(
            http,
            Method::POST,
            format!("{base}/api/v1/sync/push"),
            Some(&token),
            Some(json!({"device_id": device, "ops": chunk})),
        )
        .await;
    }
}

/// Bytes of the shell as the server sends it with `Accept-Encoding: enc`.
async fn shell_bytes(base: &str, encoding: &str) -> usize {
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    let mut total = 0;
    for f in SHELL {
        let r = http
            .get(format!("{base}/field/{f}"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "/field/{f}");
        total += r.bytes().await.unwrap().len();
    }
    total
}

fn main() {
    support::run_on_backends("gocua_bench_field", |name, url| async move {
        bench(name, &url).await
    });
}

/// A phone as the bench sets it up: this machine's as it is, or a low-end one.
#[derive(Clone, Copy)]
enum Phone {
    ThisMachine,
    /// Chromium's CPU throttled four times, and a 2G/3G link: 400 ms round trip, 400 kbit/s
    /// each way.
    LowEnd,
}

impl Phone {
    fn name(self) -> &'static str {
        match self {
            Phone::ThisMachine => "this machine",
            Phone::LowEnd => "low-end phone: CPU ×4, 400 ms, 400 kbit/s",
        }
    }
}

async fn bench(backend: &str, url: &str) {
    let (server, pool) = support::start(url, 8);
    tokio::task::spawn_blocking(move || gocua::demo::seed_pool(&pool).unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let started = Instant::now();
    seed(&http, &server.base).await;
    eprintln!(
        "{backend}: seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for phone in [Phone::ThisMachine, Phone::LowEnd] {
        let Some(b) = Browser::start_with(&["--window-size=500,900"]).await else {
            eprintln!("no chromedriver: install Debian's chromium and chromium-driver");
            return;
        };
        measure(&b, backend, &server.base, phone).await;
        b.call("DELETE", "", Value::Null).await;
    }
    let token = token(&http, &server.base).await;
    println!(
        "| {backend}: the first download as the server sends it | bytes | all pages answered in |"
    );
    println!("|---|---|---|");
    for (form, query) in [
        ("compact (the app)", "&limit=1000&format=compact"),
        ("full (apps before it)", "&limit=500"),
    ] {
        for enc in ["br", "gzip", "identity"] {
            let (bytes, ms) = download_bytes(&server.base, &token, enc, query).await;
            println!("| {form}, `Accept-Encoding: {enc}` | {bytes} | {ms:.0} ms |");
        }
    }
    for enc in ["br", "gzip", "identity"] {
        println!(
            "| app shell, `Accept-Encoding: {enc}` | {} |",
            shell_bytes(&server.base, enc).await
        );
    }
    println!();
}

/// A fresh phone logs in, downloads, opens the app again five times, searches, and taps an
/// install status.
async fn measure(b: &Browser, backend: &str, base: &str, phone: Phone) {
    b.phone().await;
    if let Phone::LowEnd = phone {
        b.cdp("Emulation.setCPUThrottlingRate", json!({"rate": 4}))
            .await;
        b.cdp("Network.enable", json!({})).await;
        b.cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": false, "latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 50_000}),
        )
        .await;
    }
    b.goto(&format!("{base}/field/")).await;
    b.wait_for_within("return document.getElementById('login') !== null", 120)
        .await;
    b.type_into("#username", "canbo").await;
    b.type_into("#password", gocua::demo::PASSWORD).await;
    let clicked = Instant::now();
    b.click("#login button[type=submit]").await;
    b.wait_for_within(
        &format!(
            "const l = document.getElementById('households'); return l && Number(l.dataset.count) >= {HOUSEHOLDS}"
        ),
        600,
    )
    .await;
    let first = clicked.elapsed().as_secs_f64() * 1000.0;
    let sync_ms = b.script("return window.gocua.timings.lastSyncMs").await;
    // What the pull pages cost on the wire (the browser's own count, compressed as it
    // asked: brotli, since Chromium counts 127.0.0.1 as a secure origin).
    let wire = b
        .script(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/sync/pull')) \
             .reduce((n, e) => n + e.transferSize, 0)",
        )
        .await;
    b.wait_for_within("return navigator.serviceWorker.controller !== null", 300)
        .await;
    // What the phone stores: the copy, the queue and the cached shell, as the browser counts.
    b.script(
        "window.usage = null; navigator.storage.estimate().then(e => { window.usage = e.usageDetails || { total: e.usage }; }); return true;",
    )
    .await;
    let usage = b.wait_for("return window.usage").await;

    let mut opens = Vec::new();
    let (mut starts, mut loads) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        b.script("location.reload(); return true;").await;
        let open = b
            .wait_for_within("return window.gocua && window.gocua.timings.openMs", 120)
            .await;
        opens.push(open.as_f64().unwrap());
        let t = b.script("return window.gocua.timings").await;
        starts.push(t["startMs"].as_f64().unwrap());
        loads.push(t["loadedMs"].as_f64().unwrap());
        let marks = b
            .script(
                "return Object.fromEntries(performance.getEntriesByType('mark') \
                 .filter(m => m.name.startsWith('gocua-')).map(m => [m.name, Math.round(m.startTime)]))",
            )
            .await;
        eprintln!("{} open again: marks {marks}, timings {t}", phone.name());
    }
    let mut searches = Vec::new();
    for q in [
        "nguyen van",
        "hoa",
        "dinh thi lan",
        "xom 3",
        "luong van bao",
    ] {
        let ms = b
            .script(&format!(
                "const q = document.getElementById('q'); const t = performance.now(); \
                 q.value = '{q}'; q.dispatchEvent(new Event('input')); \
                 return performance.now() - t;"
            ))
            .await;
        searches.push(ms.as_f64().unwrap());
    }
    let shown = b
        .script("return Number(document.getElementById('households').dataset.count)")
        .await;
    // An edit: a household opened, an install status tapped, five times.
    let id = b
        .script("return document.querySelector('#households li').dataset.id")
        .await;
    b.script(&format!(
        "location.hash = '#/h/{}'; return true;",
        id.as_str().unwrap()
    ))
    .await;
    let mut edits = Vec::new();
    for s in [
        "installed",
        "refused",
        "installed_with_help",
        "not_yet",
        "installed",
    ] {
        b.wait_for_within(
            &format!("return document.querySelector('.member .statuses button[data-status={s}]') !== null"),
            60,
        )
        .await;
        b.script("window.gocua.timings.lastEditMs = null; return true;")
            .await;
        // Found and tapped in one step: the screen may be drawn again (a sync) in between.
        b.script(&format!(
            "document.querySelector('.member .statuses button[data-status={s}]').click(); return true;"
        ))
        .await;
        let ms = b
            .wait_for_within("return window.gocua.timings.lastEditMs", 60)
            .await;
        edits.push(ms.as_f64().unwrap());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("| {backend}, {} | value |", phone.name());
    println!("|---|---|");
    println!("| first download, login click to list (ms) | {first:.0} |");
    println!(
        "| of which the sync: pull and IndexedDB writes (ms) | {:.0} |",
        sync_ms.as_f64().unwrap_or(f64::NAN)
    );
    println!("| the pull pages as the browser received them (bytes) | {wire} |");
    println!(
        "| storage used after it: IndexedDB, cached shell (bytes) | {}, {} |",
        usage["indexedDB"], usage["caches"]
    );
    println!(
        "| open again, page load to list, median of 5 (ms) | {:.0} |",
        median(&mut opens)
    );
    println!(
        "| of which: the app's code running, its copy read from IndexedDB (ms from page load) | {:.0}, {:.0} |",
        median(&mut starts),
        median(&mut loads)
    );
    println!(
        "| search, filter and list built, median of 5 (ms) | {:.1} |",
        median(&mut searches)
    );
    println!("| households found by the last search | {shown} |");
    println!(
        "| an edit, tap to screen, median of 5 (ms) | {:.1} |",
        median(&mut edits)
    );
    println!();
}

/// canbo's access token.
async fn token(http: &reqwest::Client, base: &str) -> String {
    let login = support::call(
        http,
        Method::POST,
        format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": "canbo", "password": gocua::demo::PASSWORD})),
    )
    .await;
    login["access_token"].as_str().unwrap().to_owned()
}

/// Bytes of a whole first download (every pull page of a new device, asked with `query`) as
/// the server sends it with `Accept-Encoding: enc`, and the time its pages took to come on
/// this machine.
async fn download_bytes(base: &str, token: &str, encoding: &str, query: &str) -> (usize, f64) {
    let raw = reqwest::Client::builder().gzip(false).build().unwrap();
    let plain = reqwest::Client::new();
    let device = Uuid::new_v4();
    let mut cursor: Option<String> = None;
    let mut total = 0;
    let mut spent = 0.0;
    loop {
        let mut url = format!("{base}/api/v1/sync/pull?device_id={device}{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let started = Instant::now();
        let r = raw
            .get(&url)
            .bearer_auth(token)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{url}");
        total += r.bytes().await.unwrap().len();
        spent += started.elapsed().as_secs_f64() * 1000.0;
        // The same page again, decoded, for its cursor.
        let page: Value = plain
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !page["has_more"].as_bool().unwrap_or(false) {
            return (total, spent);
        }
        cursor = page["cursor"].as_str().map(str::to_owned);
    }
}
