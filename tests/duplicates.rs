//! Possible duplicate households (docs/DUPLICATES.md): the three rules and their near
//! misses, found after every kind of write, reviewed by the area's supervisors, dismissed for
//! good.

mod common;

use common::client::{household, Device};
use common::{TestApp, World};
use serde_json::{json, Value};
use uuid::Uuid;

/// The open pairs the caller sees: (rule, the two head names sorted).
async fn pairs(app: &TestApp, token: &str) -> Vec<(String, Vec<String>)> {
    let r = app
        .get("/api/v1/duplicates?status=open&per_page=500", token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut out: Vec<(String, Vec<String>)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut names: Vec<String> = p["households"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["head_name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            (p["rule"].as_str().unwrap().to_owned(), names)
        })
        .collect();
    out.sort();
    out
}

fn pair(rule: &str, a: &str, b: &str) -> (String, Vec<String>) {
    let mut names = vec![a.to_owned(), b.to_owned()];
    names.sort();
    (rule.to_owned(), names)
}

async fn member(app: &TestApp, token: &str, household: &Value, name: &str, year: i64) {
    let r = app
        .post(
            "/api/v1/members",
            token,
            json!({"household_id": household["id"], "full_name": name, "birth_year": year}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn the_three_rules_and_their_near_misses() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let post = |village: &str, head: &str, address: &str, phone: Option<&str>| {
        let body =
            json!({"area_id": village, "head_name": head, "address": address, "phone": phone});
        let xa = xa.clone();
        async move {
            let r = app.post("/api/v1/households", &xa, body).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.body
        }
    };
    // 1. The same phone in the commune, written two ways, in two villages.
    post(&w.v1, "Lò Văn Tám", "Số 1", Some("+84 912 345 678")).await;
    post(&w.v2, "Lò Thị Hoa", "Bản trên", Some("0912.345.678")).await;
    // 2. The same head name and address in the village, accents and case aside.
    post(&w.v1, "Nông Văn Đức", "Số 9, Nà Pàn", None).await;
    post(&w.v1, "nong van duc", "so 9 na pan", None).await;
    // 3. The same head name in the village and a person of each with the same name and year.
    let a = post(&w.v2, "Hà Văn Bình", "Nhà 1", None).await;
    let b = post(&w.v2, "Hà Văn Bình", "Nhà gần suối", None).await;
    member(app, &xa, &a, "Hà Thị Mai", 1990).await;
    member(app, &xa, &b, "Ha Thi Mai", 1990).await;
    // Near misses: a letter apart (same address); the same name in two villages with other
    // phones; the same person's name but another birth year.
    post(&w.v1, "Nguyễn Văn An", "Số 5", Some("0913000001")).await;
    post(&w.v1, "Nguyễn Văn Anh", "Số 5", Some("0913000002")).await;
    post(&w.v1, "Triệu Văn Lâm", "Số 7", Some("0914000001")).await;
    post(&w.v2, "Triệu Văn Lâm", "Số 7", Some("0914000002")).await;
    let c = post(&w.v1, "Hoàng Văn Sáu", "Số 11", None).await;
    let d = post(&w.v1, "Hoàng Văn Sáu", "Số 12", None).await;
    member(app, &xa, &c, "Hoàng Thị Lan", 2001).await;
    member(app, &xa, &d, "Hoàng Thị Lan", 2002).await;

    assert_eq!(
        pairs(app, &xa).await,
        [
            pair("name_address", "Nông Văn Đức", "nong van duc"),
            pair("name_person", "Hà Văn Bình", "Hà Văn Bình"),
            pair("phone", "Lò Thị Hoa", "Lò Văn Tám"),
        ]
    );
    // Each pair names the rule and summarizes both households.
    let r = app.get("/api/v1/duplicates?status=open", &xa).await;
    let item = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["rule"] == "name_person")
        .unwrap()
        .clone();
    assert_eq!(item["households"][0]["members"][0]["birth_year"], 1990);
    assert_eq!(item["households"][0]["created_by"], "xa");
    assert_eq!(item["households"][0]["visits"], 0);
    w.app.assert_tallies().await;
}

#[tokio::test]
async fn a_pair_dismissed_is_never_proposed_again() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let a = app.household(&xa, &w.v1, "Lý Văn Bảo", "Số 3").await;
    let b = app.household(&xa, &w.v1, "Lý Văn Bảo", "Số 3").await;
    let r = app.get("/api/v1/duplicates?status=open", &xa).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    let id = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    // A canvasser cannot review; a supervisor of another commune does not see the pair.
    let cb = app.user(&w.admin, "cb", "canvasser", &[&w.v1]).await;
    app.get("/api/v1/duplicates", &cb)
        .await
        .assert_problem(403, "forbidden");
    let other = app.user(&w.admin, "xb", "supervisor", &[&w.hung_dao]).await;
    assert_eq!(app.get("/api/v1/duplicates", &other).await.body["total"], 0);
    app.post(
        &format!("/api/v1/duplicates/{id}/dismiss"),
        &other,
        json!({}),
    )
    .await
    .assert_problem(403, "out_of_scope");

    let r = app
        .post(
            &format!("/api/v1/duplicates/{id}/dismiss"),
            &xa,
            json!({"reason": "Hai anh em cùng tên, hai nhà"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "dismissed");
    app.post(&format!("/api/v1/duplicates/{id}/dismiss"), &xa, json!({}))
        .await
        .assert_problem(409, "not_open");
    // Further edits that match again (a shared phone now too) propose nothing new.
    for h in [&a, &b] {
        let r = app
            .patch(
                &format!("/api/v1/households/{}", h["id"].as_str().unwrap()),
                &xa,
                json!({"phone": "0988 777 666"}),
                &format!("\"{}\"", h["version"]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(pairs(app, &xa).await, []);
    let all = app.get("/api/v1/duplicates", &xa).await;
    assert_eq!(all.body["total"], 1);
    assert_eq!(
        all.body["items"][0]["reason"],
        "Hai anh em cùng tên, hai nhà"
    );
    let trail = app
        .get("/api/v1/audit?action=duplicate_dismissed", &xa)
        .await;
    assert_eq!(trail.body["total"], 1, "{}", trail.text);
}

#[tokio::test]
async fn two_phones_offline_register_one_household_and_the_server_says_so() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let a_token = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
    let b_token = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
    let (mut a, mut b) = (Device::new(&a_token), Device::new(&b_token));
    let (ha, hb) = (Uuid::new_v4(), Uuid::new_v4());
    a.queue_op(
        "household.upsert",
        ha,
        ha,
        household(&w.v1, "Vi Văn Hùng", "Khau Bung"),
    );
    b.queue_op(
        "household.upsert",
        hb,
        hb,
        household(&w.v1, "Vi Văn  Hùng", "khau bung"),
    );
    app.sync(&mut a).await;
    assert_eq!(pairs(app, &xa).await, []);
    app.sync(&mut b).await;
    assert_eq!(
        pairs(app, &xa).await,
        [pair("name_address", "Vi Văn  Hùng", "Vi Văn Hùng")]
    );
    // A household deleted meanwhile leaves no open pair behind.
    let h = app.get(&format!("/api/v1/households/{hb}"), &xa).await;
    let r = app
        .delete(&format!("/api/v1/households/{hb}"), &xa, &h.etag())
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(pairs(app, &xa).await, []);
}

#[tokio::test]
async fn the_register_import_finds_a_household_a_phone_registered_under_another_address() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let phone = app
        .post(
            "/api/v1/households",
            &xa,
            json!({"area_id": w.v1, "head_name": "Hoàng Văn Mạnh", "address": "Đầu bản", "phone": "0912 111 222"}),
        )
        .await;
    assert_eq!(phone.status, 201, "{}", phone.text);
    let csv = "Mã hộ,Thôn,Chủ hộ,Địa chỉ,Điện thoại hộ,Họ tên,Năm sinh\n\
               NP-01,Nà Pàn,Hoàng Văn Mạnh,Số 9,+84912111222,Hoàng Văn Mạnh,1968\n";
    let r = app
        .post_csv(
            &format!("/api/v1/households/import?commune={}", "06073"),
            &xa,
            csv.to_owned(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        pairs(app, &xa).await,
        [pair("phone", "Hoàng Văn Mạnh", "Hoàng Văn Mạnh")]
    );
}

#[tokio::test]
async fn the_field_app_warns_before_saving_and_the_console_dismisses() {
    use common::browser::{save, Browser};
    let Some(b) = Browser::start().await else {
        return;
    };
    let w = World::new().await;
    let app = &w.app;
    w.campaign().await;
    app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let xa = app.token("xa").await;
    app.user(&w.admin, "cb", "canvasser", &[&w.v1]).await;
    let known = app.household(&xa, &w.v1, "Vi Văn Hùng", "Khau Bung").await;

    // The canvasser types the household again: the app shows the one it has.
    b.phone().await;
    b.field_login(&app.base, "cb", common::PASSWORD).await;
    b.wait_for("const l = document.getElementById('households'); return l && Number(l.dataset.count) === 1")
        .await;
    b.script("location.hash = '#/new'; return true;").await;
    b.wait_for("return document.getElementById('new') !== null")
        .await;
    b.replace_text("#new [name=head_name]", "vi van hung").await;
    b.replace_text("#new [name=address]", "Khau  Bung").await;
    b.click("#new button[type=submit]").await;
    let warned = b
        .wait_for("const w = document.getElementById('maybe-same'); return w && !w.hidden && w.textContent")
        .await;
    assert!(warned.as_str().unwrap().contains("Vi Văn Hùng"), "{warned}");
    assert!(
        warned
            .as_str()
            .unwrap()
            .contains("cùng tên chủ hộ và địa chỉ"),
        "{warned}"
    );
    let pending = b.script("return window.gocua.engine.pendingCount()").await;
    assert_eq!(pending, 0, "nothing is saved yet");
    b.script(
        "document.getElementById('maybe-same').scrollIntoView({block: 'center'}); return true",
    )
    .await;
    save(&b.screenshot().await, "duplicates-field.png");
    // It is another household after all: saved all the same, and synced.
    b.click("#not-same").await;
    b.wait_for("const s = document.getElementById('household'); return s && s.dataset.id")
        .await;
    b.wait_for_within(
        "return window.gocua.engine.pendingCount() === 0 && window.gocua.engine.meta.last_sync !== null",
        30,
    )
    .await;
    let r = app.get("/api/v1/duplicates?status=open", &xa).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);

    // The supervisor sees the pair side by side and dismisses it.
    b.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;
    b.dashboard_login(&app.base, "xa", common::PASSWORD).await;
    b.wait_for("return document.querySelectorAll('#areas .area-row').length === 2")
        .await;
    b.click("#screens button[data-screen=duplicates]").await;
    b.wait_for("return document.querySelectorAll('#duplicates .pair .side').length === 2")
        .await;
    let sides = b
        .script("return Array.from(document.querySelectorAll('#duplicates .side')).map(s => s.dataset.id)")
        .await;
    assert!(sides.as_array().unwrap().contains(&known["id"].clone()));
    save(&b.screenshot().await, "console-duplicates.png");
    b.type_into("#duplicates .d-reason", "Hai hộ khác nhau")
        .await;
    b.click("#duplicates .d-dismiss").await;
    b.wait_for("return document.getElementById('duplicates') !== null && document.querySelectorAll('#duplicates .pair').length === 0")
        .await;
    let r = app.get("/api/v1/duplicates?status=dismissed", &xa).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["reason"], "Hai hộ khác nhau");

    // Another pair is one household: the supervisor keeps the first and merges, asked first.
    let kept = app.household(&xa, &w.v1, "Lục Văn Sơn", "Nà Pàn").await;
    app.household(&xa, &w.v1, "Lục Văn Sơn", "Na Pan").await;
    b.click("#screens button[data-screen=duplicates]").await;
    b.wait_for("return document.querySelectorAll('#duplicates .pair .d-keep').length === 2")
        .await;
    let keep = kept["id"].as_str().unwrap();
    b.click(&format!("#duplicates .d-keep[data-keep='{keep}']"))
        .await;
    b.wait_for("return document.querySelector('#duplicates .d-merge') !== null")
        .await;
    b.click("#duplicates .d-merge").await;
    let done = b
        .wait_for("const e = document.querySelector('#duplicates .error'); if (e && e.textContent) return e.textContent; return document.getElementById('duplicates') !== null && document.querySelectorAll('#duplicates .pair').length === 0")
        .await;
    assert_eq!(done, true, "{done}");
    let r = app.get("/api/v1/duplicates?status=merged", &xa).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["kept_id"], kept["id"]);
    w.app.assert_tallies().await;
}

#[tokio::test]
async fn a_phone_given_for_many_households_makes_no_pairs() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    // The commune office's number, written on six households' forms.
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = app
            .post(
                "/api/v1/households",
                &xa,
                json!({"area_id": if i % 2 == 0 { &w.v1 } else { &w.v2 }, "head_name": format!("Chủ hộ {i}"),
                       "address": format!("Số {i}"), "phone": "0205 3888 000"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    // Up to five sharing it, each pair was proposed; the sixth makes none.
    let found = pairs(app, &xa).await;
    assert_eq!(found.len(), 10, "{found:?}");
    assert!(found
        .iter()
        .all(|(rule, names)| rule == "phone" && !names.contains(&"Chủ hộ 5".to_owned())));
    // The number is a placeholder now: its six holders' keys stay, but no later holder's is
    // stored.
    let held =
        "SELECT COUNT(*) AS n FROM duplicate_keys WHERE kind = 'phone' AND key = '02053888000'";
    assert_eq!(app.number(held.into()).await, 6);
    assert_eq!(app.count("duplicate_placeholders").await, 1);
    // It stays one when households drop it: a seventh registered with it makes no pair.
    for id in &ids[..3] {
        let r = app
            .patch(
                &format!("/api/v1/households/{id}"),
                &xa,
                json!({"phone": null}),
                "\"1\"",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = app
        .post(
            "/api/v1/households",
            &xa,
            json!({"area_id": &w.v1, "head_name": "Chủ hộ 6", "address": "Số 6", "phone": "+84 205 3888 000"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(pairs(app, &xa).await.len(), 10);
    assert_eq!(app.number(held.into()).await, 3);
    app.assert_duplicate_keys().await;
    // The scan finds no pair in it either.
    assert_eq!(pairs(app, &xa).await.len(), 10);
}

/// The live members of a household, by name: (name, birth year, phone, notes).
async fn members_of(app: &TestApp, token: &str, h: Uuid) -> Vec<(String, Value, Value, Value)> {
    let r = app.get(&format!("/api/v1/households/{h}"), token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut out: Vec<_> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["full_name"].as_str().unwrap().to_owned(),
                m["birth_year"].clone(),
                m["phone"].clone(),
                m["notes"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Two phones offline register one household with different members, statuses and visits; a
/// supervisor merges them; edits still queued on one phone against the merged household and
/// its merged member apply to the survivor; every phone ends with the server's copy.
#[tokio::test]
async fn a_merge_loses_nothing_and_queued_edits_follow_it() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let a_token = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
    let b_token = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
    let (mut a, mut b) = (Device::new(&a_token), Device::new(&b_token));
    let t = chrono::Utc::now().timestamp_millis() - 3_600_000;
    a.fixed_clock = Some(t);
    b.fixed_clock = Some(t + 60_000);
    let (ha, hb) = (Uuid::new_v4(), Uuid::new_v4());
    let (mai_a, nam, mai_b, tu) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let visit = |h: Uuid| json!({"household_id": h, "campaign_id": camp, "visited_at": "2020-09-01T03:00:00Z", "outcome": "met"});
    let mut kept = household(&w.v1, "Vi Văn Hùng", "Khau Bung");
    kept["notes"] = json!("Cạnh suối");
    a.queue_op("household.upsert", ha, ha, kept);
    a.queue_op(
        "member.upsert",
        mai_a,
        ha,
        json!({"household_id": ha, "full_name": "Vi Thị Mai", "birth_year": 1990}),
    );
    a.queue_op(
        "member.upsert",
        nam,
        ha,
        json!({"household_id": ha, "full_name": "Vi Văn Nam", "birth_year": 2010}),
    );
    a.queue_op(
        "adoption.set",
        mai_a,
        ha,
        json!({"campaign_id": camp, "status": "installed"}),
    );
    a.queue_op("visit.record", Uuid::new_v4(), ha, visit(ha));
    let mut other = household(&w.v1, "Vi Văn  Hùng", "khau bung");
    other["notes"] = json!("Nhà sàn");
    other["phone"] = json!("0912345678");
    b.queue_op("household.upsert", hb, hb, other);
    b.queue_op("member.upsert", mai_b, hb, json!({"household_id": hb, "full_name": "Vi Thi Mai", "birth_year": 1990, "phone": "0987000111"}));
    b.queue_op(
        "member.upsert",
        tu,
        hb,
        json!({"household_id": hb, "full_name": "Vi Văn Tư", "birth_year": 1985}),
    );
    b.queue_op(
        "adoption.set",
        mai_b,
        hb,
        json!({"campaign_id": camp, "status": "refused"}),
    );
    b.queue_op("visit.record", Uuid::new_v4(), hb, visit(hb));
    app.sync(&mut a).await;
    app.sync(&mut b).await;
    assert_eq!(
        pairs(app, &xa).await,
        [pair("name_address", "Vi Văn  Hùng", "Vi Văn Hùng")]
    );
    let id = app.get("/api/v1/duplicates?status=open", &xa).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Phone b goes on offline: edits of the household, of its member Mai, a new member, a
    // status and a visit, all against the household about to be merged.
    let new_member = Uuid::new_v4();
    b.fixed_clock = Some(chrono::Utc::now().timestamp_millis() + 60_000);
    b.queue_op(
        "household.upsert",
        hb,
        hb,
        json!({"lat": 21.9, "lon": 106.3}),
    );
    b.queue_op("member.upsert", mai_b, hb, json!({"notes": "Đi làm xa"}));
    b.queue_op(
        "member.upsert",
        new_member,
        hb,
        json!({"household_id": hb, "full_name": "Vi Văn Út", "birth_year": 2020}),
    );
    b.queue_op(
        "adoption.set",
        tu,
        hb,
        json!({"campaign_id": camp, "status": "installed"}),
    );
    b.queue_op("visit.record", Uuid::new_v4(), hb, visit(hb));

    // Only the area's supervisors merge; the kept household is one of the two.
    app.post(
        &format!("/api/v1/duplicates/{id}/merge"),
        &a_token,
        json!({"keep": ha}),
    )
    .await
    .assert_problem(403, "forbidden");
    let r = app
        .post(
            &format!("/api/v1/duplicates/{id}/merge"),
            &xa,
            json!({"keep": Uuid::new_v4()}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.field_codes(),
        [("keep".to_owned(), "not_in_pair".to_owned())]
    );
    assert_eq!(
        pairs(app, &xa).await.len(),
        1,
        "a refused merge changes nothing"
    );
    let r = app
        .post(
            &format!("/api/v1/duplicates/{id}/merge"),
            &xa,
            json!({"keep": ha}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "merged");
    assert_eq!(r.body["kept_id"], ha.to_string());
    app.post(
        &format!("/api/v1/duplicates/{id}/merge"),
        &xa,
        json!({"keep": ha}),
    )
    .await
    .assert_problem(409, "not_open");

    // The kept household keeps its values and takes the other's where it had none.
    let h = app.get(&format!("/api/v1/households/{ha}"), &xa).await;
    assert_eq!(h.body["notes"], "Cạnh suối", "{}", h.text);
    assert_eq!(h.body["phone"], "0912345678");
    app.get(&format!("/api/v1/households/{hb}"), &xa)
        .await
        .assert_problem(404, "deleted");
    let gone = format!(
        "SELECT COUNT(*) AS n FROM households WHERE id = '{hb}' AND merged_into = '{ha}' AND deleted_at IS NOT NULL"
    );
    assert_eq!(app.number(gone).await, 1);
    // Mai is one person: merged, her phone kept; Tư moved; Nam stayed.
    assert_eq!(
        members_of(app, &xa, ha).await,
        [
            (
                "Vi Thị Mai".to_owned(),
                json!(1990),
                json!("0987000111"),
                json!("")
            ),
            ("Vi Văn Nam".to_owned(), json!(2010), Value::Null, json!("")),
            ("Vi Văn Tư".to_owned(), json!(1985), Value::Null, json!("")),
        ]
    );
    // What differed is in conflict records of the kept household: its notes, Mai's status
    // (the later one, phone b's, stays).
    let books = app.get("/api/v1/conflicts?per_page=500", &xa).await;
    assert_eq!(books.status, 200, "{}", books.text);
    let mut lost: Vec<(String, Value)> = books.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["household_id"] == ha.to_string())
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_owned(),
                c["lost_value"].clone(),
            )
        })
        .collect();
    lost.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        lost,
        [
            ("notes".to_owned(), json!("Nhà sàn")),
            ("status".to_owned(), json!("installed")),
        ],
        "{}",
        books.text
    );
    let status = app
        .number(format!(
            "SELECT COUNT(*) AS n FROM adoptions WHERE member_id = '{mai_a}' AND status = 'refused'"
        ))
        .await;
    assert_eq!(status, 1);
    assert_eq!(
        app.number(format!(
            "SELECT COUNT(*) AS n FROM visits WHERE household_id = '{ha}'"
        ))
        .await,
        2
    );
    let trail = app.get("/api/v1/audit?action=households_merged", &xa).await;
    assert_eq!(trail.body["total"], 1, "{}", trail.text);
    app.assert_tallies().await;

    // Phone b pushes what it queued: every op applies to the survivor, none is rejected.
    let r = app.push(&mut b, 100).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for res in r.body["results"].as_array().unwrap() {
        assert!(
            res["status"] == "applied" || res["status"] == "merged",
            "{res}"
        );
        assert_eq!(res["redirected_to"], ha.to_string(), "{res}");
    }
    let members = members_of(app, &xa, ha).await;
    assert_eq!(members.len(), 4, "{members:?}");
    assert_eq!(
        members[0].3,
        json!("Đi làm xa"),
        "Mai's edit went to her survivor"
    );
    assert!(members.iter().any(|m| m.0 == "Vi Văn Út"));
    let h = app.get(&format!("/api/v1/households/{ha}"), &xa).await;
    assert_eq!(h.body["lat"], 21.9, "{}", h.text);
    assert_eq!(
        app.number(format!(
            "SELECT COUNT(*) AS n FROM visits WHERE household_id = '{ha}'"
        ))
        .await,
        3
    );
    assert_eq!(
        app.number(format!(
            "SELECT COUNT(*) AS n FROM adoptions WHERE member_id = '{tu}' AND status = 'installed' AND household_id = '{ha}'"
        ))
        .await,
        1
    );
    app.assert_tallies().await;
    app.assert_duplicate_keys().await;
    assert_eq!(
        app.number("SELECT COUNT(*) AS n FROM households WHERE deleted_at IS NULL".into())
            .await,
        1
    );

    // The pull tells phone b where the household went; both phones end with the server's copy.
    let page = app.get(&b.pull_path(500), &b_token).await;
    let tomb = page.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["entity"] == "household" && c["id"] == hb.to_string())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(tomb["op"], "delete", "{}", page.text);
    assert_eq!(tomb["merged_into"], ha.to_string());
    app.pull_all(&mut b).await;
    app.pull_all(&mut a).await;
    let mut fresh = Device::new(&a_token);
    app.pull_all(&mut fresh).await;
    assert!(!b.copy.contains_key(&format!("household/{hb}")));
    assert_eq!(a.copy, fresh.copy);
    assert_eq!(b.copy, fresh.copy);
}

/// The field app drops a household merged on the server, opens the survivor when the merged
/// one's page was open, and tells the canvasser.
#[tokio::test]
async fn the_field_app_follows_a_merge() {
    use common::browser::{save, Browser};
    let Some(b) = Browser::start().await else {
        return;
    };
    let w = World::new().await;
    let app = &w.app;
    w.campaign().await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    app.user(&w.admin, "cb", "canvasser", &[&w.v1]).await;
    let kept = app.household(&xa, &w.v1, "Lục Văn Sơn", "Nà Pàn").await;
    let gone = app.household(&xa, &w.v1, "Luc Van Son", "Na Pan").await;
    let (kept, gone) = (
        kept["id"].as_str().unwrap().to_owned(),
        gone["id"].as_str().unwrap().to_owned(),
    );
    b.phone().await;
    b.field_login(&app.base, "cb", common::PASSWORD).await;
    b.wait_for("const l = document.getElementById('households'); return l && Number(l.dataset.count) === 2")
        .await;
    b.script(&format!("location.hash = '#/h/{gone}'; return true"))
        .await;
    b.wait_for(&format!(
        "const s = document.getElementById('household'); return s && s.dataset.id === '{gone}'"
    ))
    .await;

    let r = app.get("/api/v1/duplicates?status=open", &xa).await;
    let id = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/duplicates/{id}/merge"),
            &xa,
            json!({"keep": kept}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    b.click("#sync").await;
    b.wait_for(&format!(
        "const s = document.getElementById('household'); return s && s.dataset.id === '{kept}'"
    ))
    .await;
    let told = b
        .wait_for("const m = document.querySelector('#alerts .merged'); return m && m.textContent")
        .await;
    assert!(
        told.as_str()
            .unwrap()
            .contains("Hộ Luc Van Son đã được gộp vào hộ Lục Văn Sơn"),
        "{told}"
    );
    let listed = b
        .script("return window.gocua.engine.view().households.size")
        .await;
    assert_eq!(listed, 1);
    save(&b.screenshot().await, "field-merged.png");
}

#[tokio::test]
async fn a_household_moved_within_its_commune_is_paired_in_its_new_village() {
    let w = World::new().await;
    let app = &w.app;
    let r = app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"area_id": w.v1, "head_name": "Lý Văn Một", "address": "Số 1", "phone": "0915000001"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let path = format!("/api/v1/households/{}", r.body["id"].as_str().unwrap());
    let moved = app
        .patch(&path, &w.admin, json!({"area_id": w.v2}), "\"1\"")
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let r = app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"area_id": w.v2, "head_name": "Lý Thị Hai", "address": "Số 2", "phone": "+84915000001"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The pair is of the second village alone: the moved household's phone is held there now.
    let admin = &w.admin;
    let open = |area: String| async move {
        let q = format!("/api/v1/duplicates?status=open&area={area}");
        let r = app.get(&q, admin).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"].as_array().unwrap().len()
    };
    assert_eq!(open(w.v2.clone()).await, 1);
    assert_eq!(open(w.v1.clone()).await, 0);
    assert_eq!(
        pairs(app, &w.admin).await,
        [pair("phone", "Lý Thị Hai", "Lý Văn Một")]
    );
}

#[tokio::test]
async fn a_head_name_held_by_more_than_fifty_households_of_a_village_is_compared_no_further() {
    let w = World::new().await;
    let app = &w.app;
    let head = "Lương Văn Cường";
    for i in 1..=49 {
        app.household(&w.admin, &w.v1, head, &format!("Số {i}"))
            .await;
    }
    // The 50th holder of the name: at the cap, the same head name and address make a pair.
    app.household(&w.admin, &w.v1, head, "Số 1").await;
    assert_eq!(
        pairs(app, &w.admin).await,
        [pair("name_address", head, head)]
    );
    // A 51st holder with the same address as the second is compared no further; households
    // of another village are counted apart.
    app.household(&w.admin, &w.v1, head, "Số 2").await;
    assert_eq!(pairs(app, &w.admin).await.len(), 1);
    app.household(&w.admin, &w.v2, head, "Số 2").await;
    app.household(&w.admin, &w.v2, head, "Số 2").await;
    assert_eq!(
        pairs(app, &w.admin).await,
        [
            pair("name_address", head, head),
            pair("name_address", head, head)
        ]
    );
}
