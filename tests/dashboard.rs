//! The dashboard in headless Chromium, driven over WebDriver (chromedriver): log in to the
//! demo as the supervisor of Lạng Sơn, see the 8 communes that Bình Gia's 19 became on the
//! map of July 2025 with their bars, drill into one, and save a screenshot
//! (`docs/img/dashboard.png`, shown in the README).
//!
//! Without chromedriver the test is skipped locally and fails in CI (`CI` set).

mod common;

use common::browser::{save, Browser};
use common::TestApp;
use serde_json::{json, Value};

/// The new communes that Bình Gia's (district 181) became, from the official conversion
/// table, names cleaned of doubled spaces.
fn binh_gia_communes() -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(common::unit_data("reorganization-2025-07-01.csv"))
        .unwrap();
    let mut names: Vec<String> = r
        .records()
        .map(Result::unwrap)
        .filter(|row| row.get(6).is_some_and(|d| d.trim().ends_with("(181)")))
        .map(|row| row[1].split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    names.sort();
    names.dedup();
    names
}

const ROW_NAMES: &str = "return Array.from(document.querySelectorAll('#areas .area-row .name'))\
    .map(e => e.firstChild.textContent);";

#[tokio::test]
async fn dashboard_shows_the_district_and_drills_into_a_commune() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || gocua::demo::seed_pool(&pool).unwrap())
        .await
        .unwrap()
        .expect("the demo is seeded");
    let expected = binh_gia_communes();
    assert_eq!(expected.len(), 8);

    b.goto(&format!("{}/", app.base)).await;
    b.wait_for("return !document.getElementById('login').hidden")
        .await;
    b.type_into("#username", "huyen").await;
    b.type_into("#password", gocua::demo::PASSWORD).await;
    b.click("#login-button").await;

    // Eight rows, each with a bar, once the report is in.
    b.wait_for("return document.querySelectorAll('#areas .area-row').length === 8")
        .await;
    let mut names: Vec<String> = serde_json::from_value(b.script(ROW_NAMES).await).unwrap();
    names.sort();
    assert_eq!(names, expected);
    let bars = b
        .script("return document.querySelectorAll('#areas .area-row .bar .fill').length")
        .await;
    assert_eq!(bars, 8);

    // The bars show what the API reports.
    let login = app.login("huyen", gocua::demo::PASSWORD).await;
    let huyen = login.body["access_token"].as_str().unwrap().to_owned();
    let campaign = app.get("/api/v1/campaigns", &huyen).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = app
        .get(
            &format!("/api/v1/reports/progress?campaign={campaign}"),
            &huyen,
        )
        .await;
    let shown: Value = b
        .script(
            "return Array.from(document.querySelectorAll('#areas .area-row'))\
             .map(r => [r.dataset.id, r.querySelector('.bar').dataset.progress]);",
        )
        .await;
    for row in report.body["children"].as_array().unwrap() {
        let id = row["area_id"].as_str().unwrap();
        let on_page = shown
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("{} is on the page", row["name"]));
        let expected = row["target_progress"]
            .as_f64()
            .map_or(String::new(), |p| p.to_string());
        assert_eq!(on_page[1].as_str().unwrap(), expected, "{}", row["name"]);
    }
    let conflicts = b
        .wait_for(
            "const f = Array.from(document.querySelectorAll('.figure'))\
             .find(f => f.textContent.includes('xung đột')); return f && f.textContent;",
        )
        .await;
    assert!(conflicts.as_str().unwrap().starts_with('0'), "{conflicts}");

    // Drill into Hoa Thám: its villages replace the communes.
    let hoa_tham = report.body["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "06073")
        .unwrap()["area_id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click(&format!("#areas .area-row[data-id='{hoa_tham}']"))
        .await;
    b.wait_for(
        "const r = document.querySelectorAll('#areas .area-row'); \
         return r.length > 0 && Array.from(r).every(x => x.dataset.level === 'village');",
    )
    .await;
    let villages = app
        .get(&format!("/api/v1/areas?parent={hoa_tham}"), &huyen)
        .await;
    let mut expected: Vec<&str> = villages.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    expected.sort();
    let mut names: Vec<String> = serde_json::from_value(b.script(ROW_NAMES).await).unwrap();
    names.sort();
    assert_eq!(names, expected);
    let crumbs = b
        .script("return document.getElementById('crumbs').textContent")
        .await;
    assert_eq!(crumbs, "Tỉnh Lạng Sơn›Xã Hoa Thám");
    // The list holds the villages and nothing else (no stray text where no row waits).
    let stray = b
        .script(
            "return Array.from(document.getElementById('areas').childNodes)\
             .filter(n => n.nodeType !== 1 || !n.classList.contains('area-row')).length",
        )
        .await;
    assert_eq!(stray, 0);
    // The trend and the list follow: Hoa Thám's, not the district's arriving late.
    b.wait_for(&format!(
        "return document.getElementById('trend').dataset.area === '{hoa_tham}' \
         && document.getElementById('list').dataset.area === '{hoa_tham}'"
    ))
    .await;
    let trend = app
        .get(
            &format!("/api/v1/reports/trend?campaign={campaign}&area={hoa_tham}"),
            &huyen,
        )
        .await;
    let cumulative = trend.body["series"][0]["cumulative"].as_array().unwrap();
    let shown = b
        .script("return document.querySelector('#trend p').textContent")
        .await;
    let total = cumulative.last().unwrap().as_i64().unwrap();
    assert!(
        shown
            .as_str()
            .unwrap()
            .starts_with(&format!("Lũy kế: {total} người")),
        "{shown}"
    );
    let pending = app
        .get(
            &format!("/api/v1/lists/priority-pending?campaign={campaign}&area={hoa_tham}"),
            &huyen,
        )
        .await;
    let rows = b
        .script("return document.querySelectorAll('#list tbody tr').length")
        .await;
    assert_eq!(rows, pending.body["total"]);

    save(&b.screenshot().await, "dashboard.png");

    // On a phone's width nothing runs off the side: rows and tables stack.
    b.call("POST", "/window/rect", json!({"width": 390, "height": 844}))
        .await;
    b.wait_for("return window.innerWidth <= 400").await;
    let overflow = b
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
    assert_eq!(overflow, 0, "no horizontal scrolling on a phone");
    save(&b.screenshot().await, "dashboard-phone.png");
    b.call("DELETE", "", Value::Null).await;
}
