//! The canvassers' field app (`/field/`) in headless Chromium over WebDriver, against a
//! `gocua serve --demo` process: work offline, reload offline, sync when the network comes
//! back; two phones on one household; the server killed while the app pushes; a rejected
//! op shown. Screenshots at a phone's width go to `docs/img/`.
//!
//! Without chromedriver the tests are skipped locally and fail in CI (`CI` set).

mod common;

use common::browser::{save, wait_until, Browser};
use common::process::{free_port, Server};
use common::TestDb;
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "gocua-demo";

/// One browser test at a time: each runs one or two Chromiums and a server, which is as much
/// as two cores carry without starving the pages' timers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const PHONE: &str = "--window-size=500,900";

/// The demo on its own database, served by a process on a fixed port (a restarted server
/// must keep the app's origin).
struct Field {
    db: TestDb,
    port: u16,
    server: Option<Server>,
    http: reqwest::Client,
    env: Vec<(&'static str, &'static str)>,
}

impl Field {
    fn start(env: &[(&'static str, &'static str)]) -> Field {
        let mut f = Field {
            db: TestDb::new(),
            port: free_port(),
            server: None,
            http: reqwest::Client::new(),
            env: env.to_vec(),
        };
        f.restart();
        f
    }

    fn restart(&mut self) {
        self.server = Some(Server::start_with(
            &self.db.url,
            &format!("127.0.0.1:{}", self.port),
            &self.env,
            &["--demo"],
        ));
    }

    fn kill(&mut self) {
        self.server.take().expect("a running server").kill();
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base());
        let mut req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let etag = res
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = res.status().as_u16();
        let mut v: Value = res.json().await.unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("_status".into(), status.into());
            m.insert("_etag".into(), etag.into());
        }
        v
    }

    async fn token(&self, user: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base()))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().expect("a token").to_owned()
    }
}

/// Opens the app on a phone's screen, logs in, and waits for the first download.
async fn log_in(b: &Browser, f: &Field, user: &str) {
    open(b, f).await;
    sign_in(b, user).await;
}

/// Logs in on the open login screen and waits for the first download and for the worker.
async fn sign_in(b: &Browser, user: &str) {
    b.type_into("#username", user).await;
    b.type_into("#password", PASSWORD).await;
    b.click("#login button[type=submit]").await;
    b.wait_for_within(
        "const l = document.getElementById('households'); \
         return l && Number(l.dataset.count) > 0 && document.getElementById('pending').dataset.count === '0' \
           && window.gocua.engine.meta.last_sync !== null",
        60,
    )
    .await;
    // The shell is cached and the worker controls the page: it can reload offline.
    b.wait_for_within("return navigator.serviceWorker.controller !== null", 60)
        .await;
}

async fn open(b: &Browser, f: &Field) {
    b.phone().await;
    b.goto(&format!("{}/field/", f.base())).await;
    b.wait_for("return document.getElementById('login') !== null")
        .await;
    assert_eq!(b.script("return window.innerWidth").await, 390);
}

/// Saves a screenshot of the top of the screen.
async fn shot(b: &Browser, name: &str) {
    b.script("window.scrollTo(0, 0); return true;").await;
    save(&b.screenshot().await, name);
}

async fn pending(b: &Browser) -> i64 {
    b.script("return Number(document.getElementById('pending').dataset.count)")
        .await
        .as_i64()
        .unwrap()
}

async fn wait_synced(b: &Browser) {
    b.wait_for(
        "return document.getElementById('pending').dataset.count === '0' \
         && !window.gocua.engine.syncing",
    )
    .await;
}

/// Fills a form field by name inside the element matching `scope`.
async fn fill(b: &Browser, scope: &str, name: &str, value: &str) {
    b.replace_text(&format!("{scope} [name={name}]"), value)
        .await;
}

async fn choose(b: &Browser, scope: &str, name: &str, value: &str) {
    b.script(&format!(
        "const s = document.querySelector(\"{scope} [name={name}]\"); s.value = '{value}'; \
         s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    ))
    .await;
}

async fn open_household(b: &Browser, id: &str) {
    b.script(&format!("location.hash = '#/h/{id}'; return true;"))
        .await;
    b.wait_for(&format!(
        "const s = document.getElementById('household'); return s && s.dataset.id === '{id}'"
    ))
    .await;
}

/// The id of the first household in the list.
async fn first_household(b: &Browser) -> String {
    let id = b
        .script("return document.querySelector('#households li').dataset.id")
        .await;
    id.as_str().unwrap().to_owned()
}

/// Edits a household's notes on its screen, the only change waiting afterwards.
async fn edit_notes(b: &Browser, id: &str, notes: &str) {
    open_household(b, id).await;
    b.click("#edit-household-box summary").await;
    fill(b, "#edit-household", "notes", notes).await;
    b.click("#edit-household button[type=submit]").await;
    b.wait_for("return document.getElementById('pending').dataset.count === '1'")
        .await;
}

#[tokio::test]
async fn offline_work_survives_a_reload_and_reaches_the_server_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    // Access tokens last 1 s (and the server's 5 s of leeway): one expires while offline.
    let f = Field::start(&[("GOCUA_ACCESS_TOKEN_SECONDS", "1")]);
    open(&b, &f).await;
    shot(&b, "field-login.png").await;
    sign_in(&b, "canbo").await;
    // The shell of this very version is what the worker cached.
    let sw = f
        .http
        .get(format!("{}/field/sw.js", f.base()))
        .send()
        .await
        .unwrap();
    let sw = sw.text().await.unwrap();
    let version = sw
        .lines()
        .find_map(|l| l.strip_prefix("const VERSION = \""))
        .and_then(|l| l.strip_suffix("\";"))
        .expect("the worker names its version")
        .to_owned();
    let caches = b
        .wait_for("return caches.keys().then(k => k.length ? k : null)")
        .await;
    assert_eq!(caches, json!([format!("gocua-field-{version}")]));
    // The phone's position, as the Geolocation API gives it.
    b.cdp(
        "Browser.grantPermissions",
        json!({"permissions": ["geolocation"], "origin": f.base()}),
    )
    .await;
    b.cdp(
        "Emulation.setGeolocationOverride",
        json!({"latitude": 21.95, "longitude": 106.38, "accuracy": 12}),
    )
    .await;
    shot(&b, "field-list.png").await;

    b.offline(true).await;
    b.wait_for("return document.getElementById('net').dataset.online === 'no'")
        .await;

    // A new household with three members, their statuses, two visits and an edit.
    b.click("#new-household").await;
    b.wait_for("return document.getElementById('new') !== null")
        .await;
    fill(&b, "#new", "head_name", "Hoàng Văn Ngoại").await;
    fill(&b, "#new", "address", "Số 99, Thôn Nà Pàn").await;
    shot(&b, "field-new.png").await;
    b.click("#new button[type=submit]").await;
    let id = b
        .wait_for("const s = document.getElementById('household'); return s && s.dataset.id")
        .await;
    let id = id.as_str().unwrap().to_owned();
    let people = [
        (
            "Hoàng Văn Ngoại",
            "1968",
            "quarantine_home",
            "installed_with_help",
        ),
        ("Hoàng Thị Lan", "1972", "none", "refused"),
        ("Hoàng Văn Tú", "2001", "testing_required", "installed"),
    ];
    for (i, (name, year, priority, _)) in people.iter().enumerate() {
        b.click("#add-member summary").await;
        fill(&b, "#add-member", "full_name", name).await;
        fill(&b, "#add-member", "birth_year", year).await;
        choose(&b, "#add-member", "priority", priority).await;
        b.click("#add-member button[type=submit]").await;
        b.wait_for(&format!(
            "return document.querySelectorAll('#household .member').length === {}",
            i + 1
        ))
        .await;
    }
    let members: Vec<String> = serde_json::from_value(
        b.script("return Array.from(document.querySelectorAll('#household .member')).map(m => m.dataset.id)")
            .await,
    )
    .unwrap();
    for (m, (_, _, _, status)) in members.iter().zip(&people) {
        b.click(&format!(
            "#household .member[data-id='{m}'] button[data-status={status}]"
        ))
        .await;
        b.wait_for(&format!(
            "const e = document.querySelector(\"#household .member[data-id='{m}'] button[data-status={status}]\"); \
             return e && e.getAttribute('aria-pressed') === 'true'"
        ))
        .await;
    }
    for (n, outcome) in ["not_home", "met"].iter().enumerate() {
        choose(&b, "#visit", "outcome", outcome).await;
        b.click("#visit button[type=submit]").await;
        b.wait_for(&format!(
            "return document.querySelectorAll('#visits li').length === {}",
            n + 1
        ))
        .await;
    }
    b.click("#edit-household-box summary").await;
    fill(&b, "#edit-household", "phone", "0912 345 678").await;
    b.click("#edit-household button[type=submit]").await;
    b.wait_for("return document.querySelector('#household p').textContent.includes('0912')")
        .await;
    assert_eq!(pending(&b).await, 1 + 3 + 3 + 2 + 1);
    shot(&b, "field-household.png").await;

    // The access token runs out while the phone is offline.
    let token = b
        .script("return window.gocua.engine.meta.access_token")
        .await;
    let expired = wait_until(Duration::from_secs(30), || async {
        let r = f
            .call("GET", "/api/v1/me", token.as_str().unwrap(), None)
            .await;
        (r["_status"] == 401).then_some(())
    })
    .await;
    assert!(expired.is_some(), "the access token expires");

    // Reload with no network: the worker serves the app, IndexedDB holds the data.
    b.script("location.reload(); return true;").await;
    b.wait_for("return window.gocua && window.gocua.ready === true")
        .await;
    open_household(&b, &id).await;
    assert_eq!(
        b.script("return document.querySelectorAll('#household .member').length")
            .await,
        3
    );
    assert_eq!(
        b.script("return document.querySelectorAll('#visits li').length")
            .await,
        2
    );
    assert_eq!(pending(&b).await, 10);

    // The network comes back: the app syncs by itself.
    b.offline(false).await;
    wait_synced(&b).await;

    let xa = f.token("xa").await;
    let hh = f
        .call("GET", &format!("/api/v1/households/{id}"), &xa, None)
        .await;
    assert_eq!(hh["_status"], 200, "{hh}");
    assert_eq!(hh["head_name"], "Hoàng Văn Ngoại");
    assert_eq!(hh["phone"], "0912345678");
    assert!(
        hh["lat"].as_f64().is_some_and(|l| (l - 21.95).abs() < 1e-6),
        "{hh}"
    );
    let got = hh["members"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (name, year, priority, status) in people {
        let m = got
            .iter()
            .find(|m| m["full_name"] == name)
            .unwrap_or_else(|| panic!("{name} is on the server"));
        assert_eq!(m["birth_year"], year.parse::<i64>().unwrap());
        assert_eq!(m["priority"], priority);
        assert_eq!(m["adoptions"].as_array().unwrap().len(), 1);
        assert_eq!(m["adoptions"][0]["status"], status);
    }
    let visits = hh["recent_visits"].as_array().unwrap();
    assert_eq!(visits.len(), 2);
    let mut outcomes: Vec<&str> = visits
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, ["met", "not_home"]);
    assert!(
        visits.iter().all(|v| v["lat"].as_f64().is_some()),
        "visits carry the position"
    );
    // Each record once: one household of that name.
    let found = f
        .call("GET", "/api/v1/households?q=hoang%20van%20ngoai", &xa, None)
        .await;
    assert_eq!(found["total"], 1, "{found}");
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn two_phones_edit_one_household_offline_and_end_with_the_same_record() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(a) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    let b = Browser::start_with(&[PHONE]).await.unwrap();
    let f = Field::start(&[]);
    // A second canvasser of canbo's villages.
    let admin = f.token("admin").await;
    let canbo = f.token("canbo").await;
    let me = f.call("GET", "/api/v1/me", &canbo, None).await;
    let created = f
        .call(
            "POST",
            "/api/v1/users",
            &admin,
            Some(json!({"username": "canbo2", "password": PASSWORD, "role": "canvasser", "area_ids": me["area_ids"]})),
        )
        .await;
    assert_eq!(created["_status"], 201, "{created}");
    log_in(&a, &f, "canbo").await;
    log_in(&b, &f, "canbo2").await;
    let id = first_household(&a).await;

    a.offline(true).await;
    b.offline(true).await;
    for (browser, notes) in [(&a, "Hẹn sáng thứ hai (A)"), (&b, "Chủ hộ đi làm rẫy (B)")]
    {
        edit_notes(browser, &id, notes).await;
    }
    // A edited first but reaches the server last: B's later edit wins, A's value is kept
    // for the supervisor, and A's phone says so on the household.
    b.offline(false).await;
    wait_synced(&b).await;
    a.offline(false).await;
    wait_synced(&a).await;
    b.click("#sync").await;
    wait_synced(&b).await;
    let notice = a
        .wait_for(
            "const n = document.querySelector('#household .notice'); return n && n.textContent",
        )
        .await;
    assert!(
        notice.as_str().unwrap().contains("Hẹn sáng thứ hai (A)"),
        "{notice}"
    );
    assert!(notice.as_str().unwrap().contains("giám sát"), "{notice}");
    assert_eq!(
        b.script("return document.querySelector('#household .notice')")
            .await,
        Value::Null
    );
    let shown = "return window.gocua.engine.view().households.get(arguments[0] || location.hash.split('/')[2]).notes";
    let on_a = a.script(shown).await;
    let on_b = b.script(shown).await;
    assert_eq!(on_a, on_b);
    assert_eq!(on_a, "Chủ hộ đi làm rẫy (B)");

    let xa = f.token("xa").await;
    let conflicts = f
        .call("GET", "/api/v1/conflicts?status=open", &xa, None)
        .await;
    let items = conflicts["items"].as_array().unwrap();
    let lost: Vec<&Value> = items
        .iter()
        .filter(|c| c["household_id"] == id.as_str() && c["field"] == "notes")
        .collect();
    assert_eq!(lost.len(), 1, "{conflicts}");
    assert!(
        lost[0]["lost_value"].to_string().contains("(A)"),
        "{}",
        lost[0]
    );
    a.call("DELETE", "", Value::Null).await;
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn the_server_killed_while_the_app_pushes_loses_and_doubles_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    let mut f = Field::start(&[]);
    log_in(&b, &f, "canbo").await;
    let xa = f.token("xa").await;
    let before = f.call("GET", "/api/v1/households", &xa, None).await["total"]
        .as_i64()
        .unwrap();
    b.offline(true).await;
    // 300 new households queued (three pushes of 100), made through the engine the screens use.
    b.script(
        "const e = window.gocua.engine; const v = e.meta.reference.areas.find(a => a.level === 'village').id; \
         (async () => { for (let i = 0; i < 300; i++) \
           await e.createHousehold({area_id: v, address: `Số ${i}, xóm Mới`, head_name: `Chủ hộ thử ${i}`}); \
           window.queued = true; })(); return true;",
    )
    .await;
    b.wait_for("return window.queued === true").await;
    assert_eq!(pending(&b).await, 300);
    // A slow signal: each request takes 800 ms, so the server can be killed while a push
    // is on its way, once the first push has been answered.
    b.network(false, 800).await;
    b.wait_for("return Number(document.getElementById('pending').dataset.count) < 300")
        .await;
    f.kill();
    assert!(pending(&b).await > 0, "the server died mid-sync");
    f.restart();
    b.offline(false).await;
    // The app tries again by itself and resends what was not answered.
    wait_synced(&b).await;
    let after = f
        .call("GET", "/api/v1/households?per_page=1", &xa, None)
        .await;
    assert_eq!(
        after["total"].as_i64().unwrap(),
        before + 300,
        "each household once"
    );
    let seq = b.script("return window.gocua.engine.meta.last_seq").await;
    assert_eq!(
        seq,
        b.script("return window.gocua.engine.meta.next_seq - 1")
            .await
    );
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn an_op_the_server_rejects_is_shown_and_the_queue_goes_on() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    let f = Field::start(&[]);
    log_in(&b, &f, "canbo").await;
    let id = first_household(&b).await;
    b.offline(true).await;
    edit_notes(&b, &id, "sửa khi không có sóng").await;
    // Meanwhile the supervisor deletes that household.
    let xa = f.token("xa").await;
    let cur = f
        .call("GET", &format!("/api/v1/households/{id}"), &xa, None)
        .await;
    let res = f
        .http
        .delete(format!("{}/api/v1/households/{id}", f.base()))
        .bearer_auth(&xa)
        .header("if-match", cur["_etag"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // And the canvasser goes on: a new household after the rejected edit.
    b.script("location.hash = '#/new'; return true;").await;
    b.wait_for("return document.getElementById('new') !== null")
        .await;
    fill(&b, "#new", "head_name", "Nông Văn Sau").await;
    fill(&b, "#new", "address", "Số 5").await;
    b.click("#new button[type=submit]").await;
    b.wait_for("return document.getElementById('household') !== null")
        .await;
    b.offline(false).await;
    wait_synced(&b).await;
    let text = b
        .wait_for(
            "const r = document.querySelector('.alert.rejection[data-code=deleted]'); return r && r.textContent",
        )
        .await;
    assert!(text.as_str().unwrap().contains("đã bị xóa"), "{text}");
    let found = f
        .call("GET", "/api/v1/households?q=nong%20van%20sau", &xa, None)
        .await;
    assert_eq!(
        found["total"], 1,
        "the op after the rejected one was applied"
    );
    // Read: the notice goes away.
    b.click(".alert.rejection button").await;
    b.wait_for("return document.querySelector('.alert.rejection') === null")
        .await;
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn search_and_filters_show_what_the_server_lists() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    let f = Field::start(&[]);
    log_in(&b, &f, "canbo").await;
    let canbo = f.token("canbo").await;
    let camp = f.call("GET", "/api/v1/campaigns", &canbo, None).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = "return Number(document.getElementById('households').dataset.count)";
    let ids = "return Array.from(document.querySelectorAll('#households li')).map(l => l.dataset.id).sort()";
    // Search, without diacritics, as the server searches.
    for q in ["van", "HOANG", "na lau", "dinh"] {
        b.replace_text("#q", q).await;
        let server = f
            .call(
                "GET",
                &format!("/api/v1/households?q={}", q.replace(' ', "%20")),
                &canbo,
                None,
            )
            .await;
        assert_eq!(b.script(shown).await, server["total"], "search {q}");
    }
    // Emptied by the user: the whole list again.
    b.script("const q = document.getElementById('q'); q.value = ''; q.dispatchEvent(new Event('input')); return true;")
        .await;
    let all = f.call("GET", "/api/v1/households", &canbo, None).await;
    assert_eq!(b.script(shown).await, all["total"]);
    // The three filters against the server's lists for the same campaign, village by
    // village (a canvasser's lists are asked per assigned area).
    let villages = f.call("GET", "/api/v1/me", &canbo, None).await["area_ids"].clone();
    let mut lists: Vec<Vec<String>> = vec![Vec::new(); 3];
    for v in villages.as_array().unwrap() {
        let q = format!("campaign={camp}&area={}&per_page=500", v.as_str().unwrap());
        for (i, (path, key)) in [
            (format!("/api/v1/households?visited=false&{q}"), "id"),
            (
                format!("/api/v1/lists/priority-pending?{q}"),
                "household_id",
            ),
            (format!("/api/v1/lists/revisit?{q}"), "household_id"),
        ]
        .iter()
        .enumerate()
        {
            let r = f.call("GET", path, &canbo, None).await;
            assert_eq!(r["_status"], 200, "{path}: {r}");
            for item in r["items"].as_array().unwrap() {
                lists[i].push(item[*key].as_str().unwrap().to_owned());
            }
        }
    }
    let [unvisited, priority, revisit] = lists.try_into().unwrap();
    let server_ids = |mut ids: Vec<String>| {
        ids.sort();
        ids.dedup();
        json!(ids)
    };
    for (filter, expected) in [
        ("unvisited", server_ids(unvisited)),
        ("priority", server_ids(priority)),
        ("revisit", server_ids(revisit)),
    ] {
        b.click(&format!("button[data-filter={filter}]")).await;
        b.wait_for(&format!(
            "return document.querySelector('button[data-filter={filter}]').getAttribute('aria-pressed') === 'true'"
        ))
        .await;
        assert_eq!(b.script(ids).await, expected, "filter {filter}");
        b.click(&format!("button[data-filter={filter}]")).await;
    }
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn a_person_erased_on_request_leaves_the_phone_at_its_next_sync() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    let f = Field::start(&[]);
    log_in(&b, &f, "canbo").await;
    let id = first_household(&b).await;
    let admin = f.token("admin").await;
    let household = f
        .call("GET", &format!("/api/v1/households/{id}"), &admin, None)
        .await;
    let person = household["members"][0].clone();
    let name = person["full_name"].as_str().unwrap().to_owned();
    open_household(&b, &id).await;
    let page = "return document.getElementById('household').innerText";
    assert!(b.script(page).await.as_str().unwrap().contains(&name));

    let path = format!(
        "/api/v1/members/{}/erase?apply=true",
        person["id"].as_str().unwrap()
    );
    let r = f.call("POST", &path, &admin, Some(json!({}))).await;
    assert_eq!(r["_status"], 200, "{r}");
    b.click("#sync").await;
    let text = b
        .wait_for(&format!(
            "const c = document.querySelector('.member[data-id=\"{}\"] .name'); \
             return c && c.textContent.startsWith('(đã ẩn danh)') && c.textContent",
            person["id"].as_str().unwrap()
        ))
        .await;
    let decade = person["birth_year"].as_i64().unwrap() / 10 * 10;
    assert!(
        text.as_str()
            .unwrap()
            .contains(&format!("thập niên {decade}")),
        "{text}"
    );
    let stored = b
        .script(&format!(
            "return JSON.stringify(window.gocua.engine.view().households.get('{id}'))"
        ))
        .await;
    assert!(
        !stored.as_str().unwrap().contains(&name),
        "the phone still holds {name}"
    );
    assert!(!b.script(page).await.as_str().unwrap().contains(&name));
    b.call("DELETE", "", Value::Null).await;
}

/// One browser on a phone's screen, over the demo of its own server, with the canvasser
/// `canbo` logged in; none without chromedriver.
async fn logged_in() -> Option<(tokio::sync::MutexGuard<'static, ()>, Browser, Field)> {
    let one = ONE_AT_A_TIME.lock().await;
    let b = Browser::start_with(&[PHONE]).await?;
    let f = Field::start(&[]);
    log_in(&b, &f, "canbo").await;
    Some((one, b, f))
}

/// Waits until the page runs a version other than these, ready.
async fn wait_version_other_than(b: &Browser, old: &[&str]) {
    let old = serde_json::to_string(old).unwrap();
    b.wait_for_within(
        &format!(
            "const m = document.querySelector('meta[name=gocua-version]'); \
             return m && !{old}.includes(m.content) && window.gocua && window.gocua.ready"
        ),
        60,
    )
    .await;
}

/// The version of the shell the page runs.
async fn version(b: &Browser) -> String {
    b.script("return document.querySelector('meta[name=gocua-version]').content")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// The server restarted under another release label: the next sync finds a new version.
async fn release(b: &Browser, f: &mut Field, label: &'static str) {
    f.kill();
    f.env.retain(|(k, _)| *k != "GOCUA_FIELD_RELEASE");
    f.env.push(("GOCUA_FIELD_RELEASE", label));
    f.restart();
    b.wait_for("return !window.gocua.engine.syncing").await;
    b.click("#sync").await;
}

#[tokio::test]
async fn a_new_version_waits_for_the_form_being_filled_and_then_takes_over() {
    let Some((_one, b, mut f)) = logged_in().await else {
        return;
    };
    let first = version(&b).await;
    // Half a new household typed in when the new version comes.
    b.script("location.hash = '#/new'; return true;").await;
    b.wait_for("return document.getElementById('new') !== null")
        .await;
    fill(&b, "#new", "head_name", "Lò Văn Cương").await;
    release(&b, &mut f, "2").await;
    b.wait_for_within("return !document.getElementById('update').hidden", 60)
        .await;
    shot(&b, "field-update.png").await;
    assert_eq!(version(&b).await, first, "the page was not reloaded");
    assert_eq!(
        b.script("return document.querySelector('#new [name=head_name]').value")
            .await,
        "Lò Văn Cương",
        "what was typed is still there"
    );
    // Saving the form lets the new version in: the page reloads into it, the household kept.
    fill(&b, "#new", "address", "Số 12, thôn Nà Pàn").await;
    b.click("#new button[type=submit]").await;
    wait_version_other_than(&b, &[&first]).await;
    let second = version(&b).await;
    assert_eq!(
        b.script("return document.getElementById('update').hidden")
            .await,
        true
    );
    wait_synced(&b).await;
    let xa = f.token("xa").await;
    let found = f
        .call("GET", "/api/v1/households?q=lo%20van%20cuong", &xa, None)
        .await;
    assert_eq!(found["total"], 1, "the household saved before the update");
    assert_eq!(found["items"][0]["address"], "Số 12, thôn Nà Pàn");

    // With no form holding input, the next version takes over by itself.
    release(&b, &mut f, "3").await;
    wait_version_other_than(&b, &[&second, &first]).await;
    // The user's tap applies it too, form or no form.
    b.script("location.hash = '#/new'; return true;").await;
    b.wait_for("return document.getElementById('new') !== null")
        .await;
    fill(&b, "#new", "head_name", "Lò Thị Mai").await;
    let third = version(&b).await;
    release(&b, &mut f, "4").await;
    b.wait_for_within("return !document.getElementById('update').hidden", 60)
        .await;
    b.click("#update-now").await;
    wait_version_other_than(&b, &[&third]).await;
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn the_app_out_of_sight_does_not_sync_and_syncs_when_back() {
    let Some((_one, b, _server)) = logged_in().await else {
        return;
    };
    // The page logs what it saw (after the app's own handler ran); the schedule's waits
    // shrink to a few hundred milliseconds, so that the syncs it lets run come fast.
    b.script(
        "window.seen = []; \
         document.addEventListener('visibilitychange', () => window.seen.push( \
           [document.visibilityState, window.gocua.syncs, window.gocua.schedule.armed])); \
         const s = window.gocua.schedule; s.every = 300; s.atMost = 600; s.after(true); return true;",
    )
    .await;
    let before = b
        .script("return window.gocua.syncs")
        .await
        .as_i64()
        .unwrap();
    b.wait_for(&format!("return window.gocua.syncs >= {}", before + 3))
        .await;
    // Another tab in front: this one is hidden, for ten of its periods (an absence cannot be
    // awaited; hidden tabs' timers still run once a second).
    let mine = b.call("GET", "/window", Value::Null).await;
    let other = b.call("POST", "/window/new", json!({"type": "tab"})).await;
    b.call("POST", "/window", json!({"handle": other["handle"]}))
        .await;
    b.goto("about:blank").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.call("DELETE", "/window", Value::Null).await;
    b.call("POST", "/window", json!({"handle": mine})).await;
    let seen = b
        .wait_for("return window.seen.length >= 2 && window.seen")
        .await;
    let hidden = &seen[0];
    let back = &seen[1];
    assert_eq!(hidden[0], "hidden", "{seen}");
    assert_eq!(
        hidden[2], false,
        "no periodic sync waits while hidden: {seen}"
    );
    assert_eq!(back[0], "visible", "{seen}");
    assert_eq!(
        back[1].as_i64().unwrap(),
        hidden[1].as_i64().unwrap() + 1,
        "no sync while hidden, one at once when back: {seen}"
    );
    // And the schedule goes on.
    let now = back[1].as_i64().unwrap();
    b.wait_for(&format!("return window.gocua.syncs >= {}", now + 2))
        .await;
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn an_edit_the_phone_cannot_store_keeps_the_form_says_why_and_queues_nothing() {
    let Some((_one, b, f)) = logged_in().await else {
        return;
    };
    // The browser says 30 MB are left: the app warns. (Chromium's DevTools quota override
    // does not reach IndexedDB here, so the figure is given to the page.)
    b.script(
        "navigator.storage.estimate = async () => ({ usage: 2e6, quota: 2e6 + 30 * 1048576 }); return true;",
    )
    .await;
    type_new_household(&b, "hẹn quay lại chiều").await;
    // The phone's storage refuses the write (its database closed under the app, as when
    // the system clears or locks it).
    b.script("window.gocua.engine.store.db.close(); return true;")
        .await;
    let form = save_refused(&b).await;
    let low = b
        .wait_for(
            "const a = document.querySelector('.alert.low-storage'); return a && a.textContent",
        )
        .await;
    assert!(low.as_str().unwrap().contains("còn 30.0 MB"), "{low}");
    shot(&b, "field-not-stored.png").await;
    assert_eq!(
        form, "#/new|Ma Văn Khánh|Số 40, thôn Khuổi Củng|hẹn quay lại chiều",
        "the form stays as it was typed"
    );
    assert_eq!(pending(&b).await, 0);
    // "Gửi báo cáo lỗi" on the settings screen: the supervisor sees the phone's trouble.
    b.script("location.hash = '#/me'; return true;").await;
    b.click("#send-report").await;
    let state = b
        .wait_for(
            "const s = document.getElementById('report-state'); \
             return s && s.textContent.startsWith('Đã gửi') && s.textContent",
        )
        .await;
    assert!(
        state.as_str().unwrap().contains("Cán bộ giám sát"),
        "{state}"
    );
    let xa = f.token("xa").await;
    let team = f.call("GET", "/api/v1/users?q=canbo", &xa, None).await;
    let phone = &team["items"][0]["phones"][0];
    assert_eq!(phone["storage_free_bytes"], 30 * 1024 * 1024, "{phone}");
    assert_eq!(phone["last_errors"][0]["code"], "storage_failed", "{phone}");
    assert_eq!(phone["pending_changes"], 0);
    // Opened again, the app holds no half of it: nothing waits, and the household is not
    // on the server.
    b.goto(&format!("{}/field/", f.base())).await;
    b.wait_for("return window.gocua && window.gocua.ready")
        .await;
    wait_synced(&b).await;
    let found = f
        .call("GET", "/api/v1/households?q=ma%20van%20khanh", &xa, None)
        .await;
    assert_eq!(found["total"], 0);
    b.call("DELETE", "", Value::Null).await;
}

#[tokio::test]
async fn a_phone_that_kept_its_copy_the_old_way_keeps_it_and_its_queue_after_the_update() {
    let Some((_one, b, f)) = logged_in().await else {
        return;
    };
    let households = b
        .script("return window.gocua.engine.view().households.size")
        .await;
    // An edit waits, offline.
    b.offline(true).await;
    let id = first_household(&b).await;
    edit_notes(&b, &id, "Ghi chú trước khi cập nhật").await;
    // The phone's storage as the previous version of the app kept it: one record per
    // entity in `entities` (IndexedDB version 1).
    b.script(
        "const e = window.gocua.engine; \
         const entities = [...e.entities], meta = { ...e.meta }, ops = [...e.ops.values()]; \
         window.v1 = null; e.store.db.close(); \
         indexedDB.deleteDatabase('gocua-field').onsuccess = () => { \
           const req = indexedDB.open('gocua-field', 1); \
           req.onupgradeneeded = () => { const db = req.result; db.createObjectStore('meta'); \
             db.createObjectStore('entities'); db.createObjectStore('ops', { keyPath: 'seq' }); }; \
           req.onsuccess = () => { const db = req.result; \
             const tx = db.transaction(['meta', 'entities', 'ops'], 'readwrite'); \
             for (const [k, v] of Object.entries(meta)) tx.objectStore('meta').put(v, k); \
             for (const [k, v] of entities) tx.objectStore('entities').put(v, k); \
             for (const op of ops) tx.objectStore('ops').put(op); \
             tx.oncomplete = () => { db.close(); window.v1 = entities.length; }; }; }; \
         return true;",
    )
    .await;
    let kept = b.wait_for("return window.v1").await;
    assert!(kept.as_i64().unwrap() > 10, "{kept}");

    // The new version opens it (offline, from the worker's cache), on its list.
    b.script("history.replaceState(null, '', location.pathname); location.reload(); return true;")
        .await;
    b.wait_for(&format!(
        "const l = document.getElementById('households'); \
         return l && window.gocua && window.gocua.ready && Number(l.dataset.count) === {households}"
    ))
    .await;
    assert_eq!(pending(&b).await, 1);
    b.script(
        "window.stored = null; const r = indexedDB.open('gocua-field'); \
         r.onsuccess = () => { const db = r.result; const tx = db.transaction(['copy', 'entities']); \
           const c = tx.objectStore('copy').count(), e = tx.objectStore('entities').count(); \
           tx.oncomplete = () => { window.stored = [db.version, c.result, e.result]; db.close(); }; }; \
         return true;",
    )
    .await;
    let stored = b.wait_for("return window.stored").await;
    let buckets = stored[1].as_i64().unwrap();
    assert_eq!(
        (stored[0].as_i64(), stored[2].as_i64()),
        (Some(2), Some(0)),
        "{stored}"
    );
    assert!((1..=64).contains(&buckets), "{stored}");
    assert_eq!(
        b.script("return window.gocua.engine.entities.size")
            .await
            .as_i64(),
        kept.as_i64(),
        "every record moved"
    );

    // Back online, the waiting edit reaches the server.
    b.offline(false).await;
    b.click("#sync").await;
    wait_synced(&b).await;
    let token = f.token("canbo").await;
    let h = f
        .call("GET", &format!("/api/v1/households/{id}"), &token, None)
        .await;
    assert_eq!(h["notes"], "Ghi chú trước khi cập nhật", "{h}");
}

/// Opens the new household form and types a household into it.
async fn type_new_household(b: &Browser, notes: &str) {
    b.script("location.hash = '#/new'; return true;").await;
    b.wait_for("return document.getElementById('new') !== null")
        .await;
    fill(b, "#new", "head_name", "Ma Văn Khánh").await;
    fill(b, "#new", "address", "Số 40, thôn Khuổi Củng").await;
    fill(b, "#new", "notes", notes).await;
}

/// Saves the new household's form, which the phone cannot store: the app says so. Answers
/// the route and the form's values as the screen then holds them.
async fn save_refused(b: &Browser) -> Value {
    b.click("#new button[type=submit]").await;
    let said = b
        .wait_for_within(
            "const a = document.querySelector('.alert.not-stored'); return a && a.textContent",
            30,
        )
        .await;
    assert!(said.as_str().unwrap().contains("CHƯA được lưu"), "{said}");
    b.script(
        "const f = document.getElementById('new'); \
         return [location.hash, f.elements.head_name.value, f.elements.address.value, f.elements.notes.value].join('|')",
    )
    .await
}

/// A Chromium profile on a 64 MB file system of its own, which the test can fill: a phone
/// with its storage nearly full. Needs root (to mount it); CI runs as root.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and mounts a small file system"
            );
            eprintln!("skipped: cannot mount a small file system here (not root)");
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the browser's last processes may still be closing their files.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test]
async fn an_edit_on_a_full_phone_is_refused_whole_kept_in_the_form_and_saved_once_there_is_room() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let profile = format!("--user-data-dir={}", disk.0.display());
    let Some(b) = Browser::start_with(&[PHONE, &profile]).await else {
        return;
    };
    let f = Field::start(&[]);
    log_in(&b, &f, "canbo").await;
    let seq = b
        .script("return window.gocua.engine.meta.next_seq || 1")
        .await;

    // Other data fills the phone (random bytes, which storage cannot compress): writes of
    // 1 MiB until the browser refuses one with QuotaExceededError, then of half as much,
    // down to 256 bytes.
    b.script(
        "window.filled = null; const r = indexedDB.open('other-app', 1); \
         r.onupgradeneeded = () => r.result.createObjectStore('x'); \
         r.onsuccess = () => { const db = r.result; let n = 0, size = 1 << 20, refused = null; \
           const step = () => { \
             const tx = db.transaction('x', 'readwrite'); \
             const a = new Uint8Array(size); \
             for (let i = 0; i < a.length; i += 65536) crypto.getRandomValues(a.subarray(i, i + 65536)); \
             tx.objectStore('x').put(a, n); \
             tx.oncomplete = () => { n += 1; n < 500 ? step() : (db.close(), window.filled = 'room left'); }; \
             tx.onabort = () => { refused = tx.error && tx.error.name; size /= 2; \
               if (size >= 256) step(); else { db.close(); window.filled = refused; } }; }; \
           step(); }; \
         return true;",
    )
    .await;
    let filled = b.wait_for_within("return window.filled", 120).await;
    assert_eq!(filled, "QuotaExceededError");

    // A new household, typed and saved on the full phone.
    type_new_household(&b, "nhà sàn").await;
    assert_eq!(
        save_refused(&b).await,
        "#/new|Ma Văn Khánh|Số 40, thôn Khuổi Củng|nhà sàn",
        "the form stays as it was typed"
    );
    assert_eq!(pending(&b).await, 0);
    let codes = b
        .script("return window.gocua.engine.lastErrors().map(e => e.code)")
        .await;
    assert_eq!(codes, json!(["storage_full"]));
    // Nothing of it in storage: no op, and the counter as it was.
    b.script(
        "window.stored = null; const r = indexedDB.open('gocua-field'); \
         r.onsuccess = () => { const db = r.result; const tx = db.transaction(['ops', 'meta']); \
           const o = tx.objectStore('ops').count(), s = tx.objectStore('meta').get('next_seq'); \
           tx.oncomplete = () => { window.stored = [o.result, s.result || 1]; db.close(); }; }; \
         return true;",
    )
    .await;
    let stored = b.wait_for("return window.stored").await;
    assert_eq!(stored, json!([0, seq]), "nothing half-written");

    // Room is made (the other data goes); the same form is saved, once.
    b.script(
        "window.freed = null; const d = indexedDB.deleteDatabase('other-app'); \
         d.onsuccess = () => { window.freed = true; }; return true;",
    )
    .await;
    b.wait_for("return window.freed").await;
    b.click("#new button[type=submit]").await;
    let id = b
        .wait_for("const s = document.getElementById('household'); return s && s.dataset.id")
        .await;
    b.click("#sync").await;
    wait_synced(&b).await;
    let token = f.token("canbo").await;
    let h = f
        .call(
            "GET",
            &format!("/api/v1/households/{}", id.as_str().unwrap()),
            &token,
            None,
        )
        .await;
    assert_eq!(h["head_name"], "Ma Văn Khánh", "{h}");
    let found = f
        .call("GET", "/api/v1/households?q=ma%20van%20khanh", &token, None)
        .await;
    assert_eq!(found["total"], 1, "saved once");
    drop(b);
}

#[tokio::test]
async fn a_first_download_cut_halfway_goes_on_from_the_page_it_stopped_at() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(b) = Browser::start_with(&[PHONE]).await else {
        return;
    };
    let f = Field::start(&[]);
    // 2,500 more households in canbo's first village: three pages of 1,000.
    let token = f.token("canbo").await;
    let me = f.call("GET", "/api/v1/me", &token, None).await;
    let village = me["area_ids"][0].as_str().unwrap().to_owned();
    let ops: Vec<Value> = (0..2500)
        .map(|i| {
            let h = uuid::Uuid::new_v4();
            json!({"seq": i + 1, "op_id": uuid::Uuid::new_v4(), "type": "household.upsert",
                   "entity_id": h, "household_id": h, "hlc": format!("2020-08-21T03:04:05.000Z-{:04}", i),
                   "data": {"area_id": village, "address": format!("Số {i}, xóm Mới"), "head_name": format!("Vi Văn Tải {i}")}})
        })
        .collect();
    let maker = uuid::Uuid::new_v4();
    for chunk in ops.chunks(500) {
        let r = f
            .call(
                "POST",
                "/api/v1/sync/push",
                &token,
                Some(json!({"device_id": maker, "ops": chunk})),
            )
            .await;
        assert_eq!(r["_status"], 200, "{r}");
    }
    let total = f
        .call("GET", "/api/v1/households?per_page=1", &token, None)
        .await["total"]
        .as_i64()
        .unwrap();
    assert!(total > 2500, "{total}");

    // The signal drops at the second page of the first download, and stays away.
    open(&b, &f).await;
    b.script(
        "const real = window.fetch; window.pulls = 0; \
         window.fetch = (url, init) => String(url).includes('/sync/pull') && ++window.pulls >= 2 \
           ? Promise.reject(new TypeError('network changed')) : real(url, init); \
         return true;",
    )
    .await;
    b.type_into("#username", "canbo").await;
    b.type_into("#password", PASSWORD).await;
    b.click("#login button[type=submit]").await;
    let kept = b
        .wait_for_within(
            "const e = window.gocua.engine; return window.pulls >= 2 && !e.syncing \
             && e.meta.cursor && e.view().households.size",
            60,
        )
        .await
        .as_i64()
        .unwrap();
    assert!(
        kept > 0 && kept < total,
        "the first page is kept: {kept} of {total}"
    );
    let cursor = b.script("return window.gocua.engine.meta.cursor").await;

    // The app is closed and opened again (the signal is back): the download goes on from
    // the cursor of the page stored, and the rest comes, nothing twice.
    b.script("location.reload(); return true;").await;
    b.wait_for_within(
        &format!(
            "const e = window.gocua && window.gocua.engine; return window.gocua && window.gocua.ready \
             && !e.syncing && e.meta.last_sync && e.view().households.size === {total}"
        ),
        60,
    )
    .await;
    let pulls = b
        .script(
            "return performance.getEntriesByType('resource').map(e => e.name) \
             .filter(n => n.includes('/api/v1/sync/pull')).map(n => new URL(n).searchParams.get('cursor'))",
        )
        .await;
    assert_eq!(
        pulls[0], cursor,
        "the first pull after opening again: {pulls}"
    );
    let households = b
        .script("return window.gocua.engine.view().households.size")
        .await;
    assert_eq!(households, total);
    drop(b);
}
