//! The field app on a phone's screen in headless Chromium, with 2,000 households (and
//! 8,000 members) in the canvasser's scope: the first download into IndexedDB, opening the
//! app again, and a search; and the size of the app shell as it travels, compressed.
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

const HOUSEHOLDS: usize = 2000;
const MEMBERS: usize = 4;
const SHELL: &[&str] = &[
    "",
    "app.js",
    "sync.js",
    "text.js",
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

/// 2,000 households of four members in canbo's first village, pushed as canbo's device.
async fn seed(http: &reqwest::Client, base: &str) {
    let login = support::call(
        http,
        Method::POST,
        format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": "canbo", "password": gocua::demo::PASSWORD})),
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
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

async fn bench(backend: &str, url: &str) {
    let Some(b) = Browser::start_with(&["--window-size=500,900"]).await else {
        eprintln!("no chromedriver: install Debian's chromium and chromium-driver");
        return;
    };
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

    b.phone().await;
    b.goto(&format!("{}/field/", server.base)).await;
    b.wait_for("return document.getElementById('login') !== null")
        .await;
    b.type_into("#username", "canbo").await;
    b.type_into("#password", gocua::demo::PASSWORD).await;
    let clicked = Instant::now();
    b.click("#login button[type=submit]").await;
    b.wait_for(&format!(
        "const l = document.getElementById('households'); return l && Number(l.dataset.count) >= {HOUSEHOLDS}"
    ))
    .await;
    let first = clicked.elapsed().as_secs_f64() * 1000.0;
    let sync_ms = b.script("return window.gocua.timings.lastSyncMs").await;
    b.wait_for("return navigator.serviceWorker.controller !== null")
        .await;

    let mut opens = Vec::new();
    for _ in 0..5 {
        b.script("location.reload(); return true;").await;
        let open = b
            .wait_for("return window.gocua && window.gocua.timings.openMs")
            .await;
        opens.push(open.as_f64().unwrap());
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
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("| {backend} | value |");
    println!("|---|---|");
    println!("| first download, login click to list (ms) | {first:.0} |");
    println!(
        "| of which the sync: pull and IndexedDB writes (ms) | {:.0} |",
        sync_ms.as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "| open again, page load to list, median of 5 (ms) | {:.0} |",
        median(&mut opens)
    );
    println!(
        "| search, filter and list built, median of 5 (ms) | {:.1} |",
        median(&mut searches)
    );
    println!("| households found by the last search | {shown} |");
    for enc in ["br", "gzip", "identity"] {
        println!(
            "| app shell, `Accept-Encoding: {enc}` (bytes) | {} |",
            shell_bytes(&server.base, enc).await
        );
    }
    b.call("DELETE", "", Value::Null).await;
}
