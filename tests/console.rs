//! The console's API (docs/CONSOLE.md): supervisors manage the canvassers of their areas and
//! no one else, one-time passwords must be changed first, accounts come from a spreadsheet
//! all or nothing, phones report what waits on them, coverage says who covers what, and a
//! conflict changed meanwhile is not resolved blind.

mod common;

use common::client::{household, Device};
use common::{TestApp, World, PASSWORD};
use serde_json::{json, Value};
use uuid::Uuid;

/// Logs in with a one-time password, sets `new`, and answers the new access token.
async fn first_login(app: &TestApp, username: &str, one_time: &str, new: &str) -> String {
    let r = app.login(username, one_time).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["must_change_password"], true);
    // A refreshed session still says so: the app asks for the new password whichever token.
    let refreshed = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r.body["refresh_token"]})),
            &[],
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(refreshed.body["must_change_password"], true);
    let token = refreshed.body["access_token"].as_str().unwrap().to_owned();
    app.get("/api/v1/me", &token)
        .await
        .assert_problem(403, "password_change_required");
    let r = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current": one_time, "new": new}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    token
}

#[tokio::test]
async fn a_supervisor_manages_the_canvassers_of_their_areas_and_no_one_else() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    app.user(&w.admin, "xa2", "supervisor", &[&w.hung_dao])
        .await;
    let other_token = app
        .user(&w.admin, "cb.other", "canvasser", &[&w.v_other])
        .await;
    drop(other_token);

    // A canvasser for one village, with a one-time password.
    let r = app
        .post(
            "/api/v1/users",
            &xa,
            json!({"username": "cb.napan", "full_name": "Lò Thị Hoa", "role": "canvasser",
                   "area_ids": [w.v1], "phone": "0912 345 678"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["must_change_password"], true);
    let one_time = r.body["one_time_password"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();

    // The canvasser must set their own password before anything else.
    let token = first_login(app, "cb.napan", &one_time, "mật khẩu của Hoa").await;
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["area_ids"], json!([w.v1]));
    app.login("cb.napan", &one_time)
        .await
        .assert_problem(401, "invalid_credentials");

    // What a supervisor may not do, each refused with nothing written.
    let users_before = app.count("users").await;
    let audit_before = app.count("audit_log").await;
    let tries = [
        app.post(
            "/api/v1/users",
            &xa,
            json!({"username": "gs.moi", "role": "supervisor", "area_ids": [w.v1]}),
        )
        .await,
        app.post(
            "/api/v1/users",
            &xa,
            json!({"username": "cb.ngoai", "role": "canvasser", "area_ids": [w.v_other]}),
        )
        .await,
        app.post(
            "/api/v1/users",
            &xa,
            json!({"username": "cb.khong", "role": "canvasser", "area_ids": []}),
        )
        .await,
        app.patch(
            &format!("/api/v1/users/{id}"),
            &xa,
            json!({"role": "supervisor"}),
            "",
        )
        .await,
        app.put(
            &format!("/api/v1/users/{id}/areas"),
            &xa,
            json!({"area_ids": [w.v1, w.v_other]}),
        )
        .await,
    ];
    let codes: Vec<(u16, String)> = tries
        .iter()
        .map(|r| {
            (
                r.status.as_u16(),
                r.body["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (403, "admins_only".to_owned()),
            (403, "out_of_scope".to_owned()),
            (403, "no_area".to_owned()),
            (403, "admins_only".to_owned()),
            (403, "out_of_scope".to_owned()),
        ]
    );
    let admin_id = app.listed_user(&w.admin, "admin").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let xa2_id = app.listed_user(&w.admin, "xa2").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_id = app.listed_user(&w.admin, "cb.other").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for target in [&admin_id, &xa2_id] {
        app.post(
            &format!("/api/v1/users/{target}/password-reset"),
            &xa,
            json!({}),
        )
        .await
        .assert_problem(403, "admins_only");
    }
    app.patch(
        &format!("/api/v1/users/{other_id}"),
        &xa,
        json!({"active": false}),
        "",
    )
    .await
    .assert_problem(403, "out_of_scope");
    assert_eq!(app.count("users").await, users_before);
    assert_eq!(app.count("audit_log").await, audit_before);
    assert_eq!(app.listed_user(&w.admin, "cb.other").await["active"], true);
    assert_eq!(
        app.listed_user(&w.admin, "cb.napan").await["role"],
        "canvasser"
    );
    assert_eq!(app.login("admin", PASSWORD).await.status, 200);

    // The supervisor's team: the users of their areas (and themself), not Hưng Đạo's.
    let team = app.get("/api/v1/users", &xa).await;
    let mut names: Vec<&str> = team.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cb.napan", "xa"]);
    app.get(&format!("/api/v1/users/{other_id}"), &xa)
        .await
        .assert_problem(403, "out_of_scope");

    // Deactivating ends the canvasser's sessions at once; reactivating lets them back.
    let r = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &xa,
            json!({"active": false}),
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false);
    app.get("/api/v1/me", &token)
        .await
        .assert_problem(401, "user_inactive");
    let r = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &xa,
            json!({"active": true}),
            "",
        )
        .await;
    assert_eq!(r.body["active"], true);
    app.get("/api/v1/me", &token)
        .await
        .assert_problem(401, "session_revoked");

    // A reset gives a new one-time password, which works once.
    let r = app
        .post(
            &format!("/api/v1/users/{id}/password-reset"),
            &xa,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let again = r.body["one_time_password"].as_str().unwrap().to_owned();
    assert_ne!(again, one_time);
    app.login("cb.napan", "mật khẩu của Hoa")
        .await
        .assert_problem(401, "invalid_credentials");
    first_login(app, "cb.napan", &again, "mật khẩu mới của Hoa").await;
    app.login("cb.napan", &again)
        .await
        .assert_problem(401, "invalid_credentials");

    // Each action is in the audit trail, which the supervisor reads for their area.
    let trail = app
        .get(&format!("/api/v1/audit?area={}", w.hoa_tham), &xa)
        .await;
    let actions: Vec<&str> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user_created",
        "user_changed",
        "password_reset",
        "password_changed",
    ] {
        assert!(
            actions.contains(&a) || a == "password_changed",
            "{a}: {actions:?}"
        );
    }
    let all = app
        .get("/api/v1/audit?action=password_changed", &w.admin)
        .await;
    assert_eq!(all.body["total"], 2, "{}", all.text);
}

#[tokio::test]
async fn a_new_password_is_checked_and_a_wrong_current_one_changes_nothing() {
    let w = World::new().await;
    let app = &w.app;
    let r = app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "cb.a", "role": "canvasser", "area_ids": [w.v1]}),
        )
        .await;
    let one_time = r.body["one_time_password"].as_str().unwrap().to_owned();
    let token = app.login("cb.a", &one_time).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |current: &str, new: &str| json!({"current": current, "new": new});
    let r = app
        .post(
            "/api/v1/auth/password",
            &token,
            change("sai mật khẩu", "mật khẩu mới 1"),
        )
        .await;
    assert_eq!(
        r.field_codes(),
        [("current".into(), "wrong_password".into())]
    );
    let r = app
        .post("/api/v1/auth/password", &token, change(&one_time, "ngắn"))
        .await;
    assert_eq!(r.field_codes(), [("new".into(), "too_short".into())]);
    let r = app
        .post(
            "/api/v1/auth/password",
            &token,
            change(&one_time, &one_time),
        )
        .await;
    assert_eq!(r.field_codes(), [("new".into(), "unchanged".into())]);
    // Still a one-time password: everything else is refused.
    app.get("/api/v1/campaigns", &token)
        .await
        .assert_problem(403, "password_change_required");
    assert_eq!(app.login("cb.a", &one_time).await.status, 200);
}

/// 30 accounts of Hoa Thám's villages, each a row: username, name, role, area, phone.
fn accounts_file(rows: &[(String, String, String, String, String)]) -> String {
    let mut csv = String::from(
        "Danh sách tài khoản cán bộ\nTên đăng nhập,Họ tên,Vai trò,Địa bàn,Điện thoại\n",
    );
    for (u, n, r, a, p) in rows {
        csv.push_str(&format!("{u},{n},{r},{a},{p}\n"));
    }
    csv
}

#[tokio::test]
async fn accounts_from_a_spreadsheet_are_made_all_or_nothing() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let mut rows: Vec<(String, String, String, String, String)> = (1..=30)
        .map(|i| {
            let village = if i % 2 == 0 {
                "Thôn Nà Pàn"
            } else {
                "Khuổi Hẩu"
            };
            (
                format!("cb{i:02}"),
                format!("Cán bộ số {i}"),
                "Cán bộ".to_owned(),
                format!("Xã Hoa Thám / {village}"),
                format!("09123456{i:02}"),
            )
        })
        .collect();
    rows[4].3 = "Xã Hoa Thám / Thôn Không Có".into();
    rows[9].2 = "Trưởng thôn".into();
    let users_before = app.count("users").await;
    let r = app
        .post_csv("/api/v1/users/import", &xa, accounts_file(&rows))
        .await;
    r.assert_problem(422, "accounts_refused");
    let errors: Vec<(u64, String, String)> = r.body["report"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (7, "Địa bàn".to_owned(), "unknown_area".to_owned()),
            (12, "Vai trò".to_owned(), "choice".to_owned()),
        ]
    );
    assert_eq!(app.count("users").await, users_before);

    // A supervisor cannot make a supervisor, nor an account outside their commune.
    let mut outside = rows.clone();
    outside[4].3 = "Xã Hưng Đạo".into();
    outside[9].2 = "Giám sát".into();
    let r = app
        .post_csv("/api/v1/users/import", &xa, accounts_file(&outside))
        .await;
    let codes: Vec<&str> = r.body["report"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["out_of_scope", "admins_only"], "{}", r.text);

    // Fixed: the dry run makes nothing and gives no password; the real run makes all 30.
    rows[4].3 = "Xã Hoa Thám / Thôn Nà Pàn".into();
    rows[9].2 = "canvasser".into();
    let dry = app
        .post_csv(
            "/api/v1/users/import?dry_run=true",
            &xa,
            accounts_file(&rows),
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.body["accounts"].as_array().unwrap().len(), 30);
    assert!(dry.body["accounts"][0]["one_time_password"].is_null());
    assert_eq!(app.count("users").await, users_before);
    let r = app
        .post_csv("/api/v1/users/import", &xa, accounts_file(&rows))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["written"], true);
    assert_eq!(app.count("users").await, users_before + 30);
    let made = r.body["accounts"].as_array().unwrap().clone();
    assert_eq!(made[1]["area_ids"], json!([w.v1]));
    assert_eq!(made[0]["area_ids"], json!([w.v2]));
    assert_eq!(made[0]["phone"], "0912345601");
    // The same file again: every username is taken now.
    let r = app
        .post_csv("/api/v1/users/import", &xa, accounts_file(&rows))
        .await;
    assert_eq!(r.body["report"]["errors"].as_array().unwrap().len(), 30);

    // Each one-time password works, once.
    for a in &made {
        let (u, p) = (
            a["username"].as_str().unwrap(),
            a["one_time_password"].as_str().unwrap(),
        );
        first_login(app, u, p, &format!("riêng của {u}")).await;
        app.login(u, p)
            .await
            .assert_problem(401, "invalid_credentials");
        assert_eq!(app.login(u, &format!("riêng của {u}")).await.status, 200);
    }
}

#[tokio::test]
async fn coverage_equals_what_a_supervisors_pull_counts() {
    let w = World::new().await;
    let app = &w.app;
    let campaign = w.campaign().await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let cb = app.user(&xa, "cb.napan", "canvasser", &[&w.v1]).await;
    app.user(&w.admin, "cb.other", "canvasser", &[&w.v_other])
        .await;

    // Households in both villages of Hoa Thám, visits in Nà Pàn.
    let mut d = Device::new(&cb);
    let mut ids = Vec::new();
    for i in 0..3 {
        let h = Uuid::new_v4();
        d.queue_op(
            "household.upsert",
            h,
            h,
            household(&w.v1, &format!("Chủ hộ {i}"), "Nà Pàn"),
        );
        ids.push(h);
    }
    let visit = Uuid::new_v4();
    d.queue_op(
        "visit.record",
        visit,
        ids[0],
        json!({"campaign_id": campaign, "visited_at": "2020-09-01T03:00:00Z", "outcome": "met"}),
    );
    app.sync(&mut d).await;
    assert_eq!(app.count("visits").await, 1);
    app.household(&w.admin, &w.v2, "Chủ hộ Khuổi Hẩu", "Khuổi Hẩu")
        .await;

    // The phone reports 2 changes it cannot send.
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": d.id, "app_version": "field-abc123", "pending_changes": 2,
                   "oldest_pending_at": "2020-09-02T01:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["pending_changes"], 2);

    let rows = &coverage_rows(app, &campaign, &w.hoa_tham, &xa).await;
    // Villages nobody covers first.
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Thôn Khuổi Hẩu", "Thôn Nà Pàn"]);
    assert_eq!(rows[0]["canvassers"], json!([]));
    assert_eq!(rows[1]["canvassers"][0]["username"], "cb.napan");
    assert!(rows[1]["canvassers"][0]["last_sync_at"].is_string());
    assert_eq!(rows[1]["pending_changes"], 2);
    assert_eq!(rows[1]["oldest_pending_at"], "2020-09-02T01:00:00Z");
    assert!(rows[0]["pending_changes"].is_null());

    // The same counts from the supervisor's own pull.
    let mut mine = Device::new(&xa);
    app.pull_all(&mut mine).await;
    for row in rows {
        let village = row["area_id"].as_str().unwrap();
        let households: Vec<&str> = mine
            .copy
            .iter()
            .filter(|(k, (_, v))| k.starts_with("household/") && v["area_id"] == village)
            .map(|(k, _)| &k["household/".len()..])
            .collect();
        let visited = mine
            .copy
            .iter()
            .filter(|(k, (_, v))| {
                k.starts_with("visit/")
                    && v["campaign_id"] == campaign.as_str()
                    && households.contains(&v["household_id"].as_str().unwrap_or(""))
            })
            .map(|(_, (_, v))| v["household_id"].as_str().unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert_eq!(row["households"], households.len(), "{}", row);
        assert_eq!(row["households_visited"], visited, "{}", row);
    }
    assert_eq!(rows[1]["last_visit_at"], "2020-09-01T03:00:00Z");

    // The export says the same; canvassers and other communes are refused.
    let csv = app
        .get(
            &format!(
                "/api/v1/reports/coverage.csv?campaign={campaign}&area={}",
                w.hoa_tham
            ),
            &xa,
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.text.contains("Chưa có ai phụ trách"), "{}", csv.text);
    assert!(csv.text.contains("cb.napan"));
    app.get(
        &format!(
            "/api/v1/reports/coverage?campaign={campaign}&area={}",
            w.hoa_tham
        ),
        &cb,
    )
    .await
    .assert_problem(403, "forbidden");
    app.get(
        &format!(
            "/api/v1/reports/coverage?campaign={campaign}&area={}",
            w.hung_dao
        ),
        &xa,
    )
    .await
    .assert_problem(403, "out_of_scope");

    // The team shows the phone and what it reported.
    let team = app.get("/api/v1/users?q=napan", &xa).await;
    let phone = &team.body["items"][0]["phones"][0];
    assert_eq!(phone["app_version"], "field-abc123");
    assert_eq!(phone["pending_changes"], 2);
    assert!(team.body["items"][0]["last_login_at"].is_string());

    // A report of another user's device, or a bad one, changes nothing.
    let xa2 = app.user(&w.admin, "xa2", "canvasser", &[&w.v2]).await;
    app.post(
        "/api/v1/sync/report",
        &xa2,
        json!({"device_id": d.id, "app_version": "x", "pending_changes": 0}),
    )
    .await
    .assert_problem(403, "device_not_yours");
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": d.id, "app_version": "x", "pending_changes": -1}),
        )
        .await;
    assert_eq!(
        r.field_codes(),
        [("pending_changes".into(), "range".into())]
    );
    let team = app.get("/api/v1/users?q=napan", &xa).await;
    assert_eq!(team.body["items"][0]["phones"][0]["pending_changes"], 2);
    // A count written as a whole number with a decimal point (as some phones' JSON does)
    // is the same count.
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": d.id, "app_version": "field-abc123", "pending_changes": 3.0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["pending_changes"], 3);
    let team = app.get("/api/v1/users?q=napan", &xa).await;
    assert_eq!(team.body["items"][0]["phones"][0]["pending_changes"], 3);
}

/// The coverage report's rows of `area` for `campaign`, as `token` reads them.
async fn coverage_rows(app: &TestApp, campaign: &str, area: &str, token: &str) -> Vec<Value> {
    let c = app
        .get(
            &format!("/api/v1/reports/coverage?campaign={campaign}&area={area}"),
            token,
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    c.body["rows"].as_array().unwrap().clone()
}

/// A phone that reports little storage left or errors is shown in trouble on the coverage
/// report and on the team; a report whose errors are not codes (a message, a name) is
/// refused and changes nothing.
#[tokio::test]
async fn a_phone_in_trouble_is_seen_by_its_supervisor() {
    let w = World::new().await;
    let app = &w.app;
    let campaign = w.campaign().await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let cb = app.user(&xa, "cb.napan", "canvasser", &[&w.v1]).await;
    let ok = app.user(&xa, "cb.khuoi", "canvasser", &[&w.v2]).await;
    let coverage = || coverage_rows(app, &campaign, &w.hoa_tham, &xa);
    let trouble_of = |rows: &[Value], village: &str| -> Value {
        rows.iter()
            .find(|r| r["area_id"] == village)
            .map(|r| r["phones_in_trouble"].clone())
            .unwrap()
    };

    // A healthy phone: room left, no error.
    let healthy = Uuid::new_v4();
    let r = app
        .post(
            "/api/v1/sync/report",
            &ok,
            json!({"device_id": healthy, "app_version": "v1", "pending_changes": 0,
                   "storage_used_bytes": 2_000_000.0, "storage_free_bytes": 900_000_000_i64,
                   "last_errors": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["storage_free_bytes"], 900_000_000_i64);
    // A whole number written with a decimal point, as some phones' JSON does.
    assert_eq!(r.body["storage_used_bytes"], 2_000_000);
    // A phone with 30 MB left and two errors.
    let sick = Uuid::new_v4();
    let errors = json!([
        {"at": "2020-09-02T01:00:00Z", "code": "http_500"},
        {"at": "2020-09-03T08:30:00Z", "code": "storage_full"}
    ]);
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": sick, "app_version": "v1", "pending_changes": 4,
                   "storage_used_bytes": 40_000_000, "storage_free_bytes": 30 * 1024 * 1024,
                   "last_errors": errors}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["last_errors"], errors);

    let rows = coverage().await;
    assert_eq!(trouble_of(&rows, &w.v2), json!([]), "the healthy phone");
    let t = trouble_of(&rows, &w.v1);
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t[0]["username"], "cb.napan");
    assert_eq!(t[0]["device_id"], sick.to_string());
    assert_eq!(t[0]["storage_free_bytes"], 30 * 1024 * 1024);
    assert_eq!(
        t[0]["last_error"],
        json!({"at": "2020-09-03T08:30:00Z", "code": "storage_full"})
    );
    let team = app.get("/api/v1/users?q=napan", &xa).await;
    let phone = &team.body["items"][0]["phones"][0];
    assert_eq!(phone["storage_used_bytes"], 40_000_000);
    assert_eq!(phone["last_errors"], errors);

    // Errors that are not codes, too many, or storage out of range: refused, nothing kept.
    for (bad, field, code) in [
        (
            json!({"last_errors": [{"at": "2020-09-04T00:00:00Z", "code": "Nguyễn Văn An 0912345678"}]}),
            "last_errors",
            "format",
        ),
        (
            json!({"last_errors": vec![json!({"at": "2020-09-04T00:00:00Z", "code": "x"}); 11]}),
            "last_errors",
            "length",
        ),
        (
            json!({"storage_free_bytes": -1}),
            "storage_free_bytes",
            "range",
        ),
    ] {
        let mut body = json!({"device_id": sick, "app_version": "v2", "pending_changes": 0});
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let r = app.post("/api/v1/sync/report", &cb, body).await;
        assert_eq!(r.field_codes(), [(field.into(), code.into())], "{}", r.text);
    }
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": sick, "app_version": "v2", "pending_changes": 0,
                   "last_errors": [{"at": "2020-09-04T00:00:00Z", "code": "x", "message": "hết pin"}]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let team = app.get("/api/v1/users?q=napan", &xa).await;
    let phone = &team.body["items"][0]["phones"][0];
    assert_eq!(
        phone["app_version"], "v1",
        "the refused reports changed nothing"
    );
    assert_eq!(phone["last_errors"], errors);

    // Healthy again: room freed, no error in the past week; the phone leaves the list.
    let r = app
        .post(
            "/api/v1/sync/report",
            &cb,
            json!({"device_id": sick, "app_version": "v2", "pending_changes": 0,
                   "storage_free_bytes": 500_000_000}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["last_errors"], json!([]));
    assert_eq!(trouble_of(&coverage().await, &w.v1), json!([]));
}

/// The printable sheet's QR codes: an SVG image of the text, for a signed-in user; a text
/// too long or empty is refused.
#[tokio::test]
async fn qr_codes_are_svg_images_of_the_text() {
    let w = World::new().await;
    let app = &w.app;
    let r = app
        .get(
            "/api/v1/qr.svg?text=https%3A%2F%2Fgocua.example%2Ffield%2F",
            &w.admin,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.headers.get("content-type").unwrap().to_str().unwrap(),
        "image/svg+xml"
    );
    assert!(
        r.text.contains("<svg"),
        "{}",
        &r.text[..r.text.len().min(200)]
    );
    let other = app.get("/api/v1/qr.svg?text=another", &w.admin).await;
    assert_ne!(other.text, r.text, "the image is the text's");
    let long = "a".repeat(501);
    let r = app
        .get(&format!("/api/v1/qr.svg?text={long}"), &w.admin)
        .await;
    assert_eq!(r.field_codes(), [("text".into(), "length".into())]);
    let r = app.get("/api/v1/qr.svg?text=", &w.admin).await;
    assert_eq!(r.field_codes(), [("text".into(), "length".into())]);
    let r = app.get("/api/v1/qr.svg?text=x", "not-a-token").await;
    assert_eq!(r.status, 401, "{}", r.text);
}

#[tokio::test]
async fn a_conflict_changed_since_it_was_read_is_not_resolved_blind() {
    let w = World::new().await;
    let app = &w.app;
    let a_token = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
    let b_token = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let (_, mut b, h) = app
        .conflicting_phones(
            &a_token,
            &b_token,
            &w.v1,
            json!({"head_name": "Mạnh (A)", "address": "Nà Pàn (A)"}),
            json!({"head_name": "Mạnh (B)", "address": "Nà Pàn (B)"}),
        )
        .await;

    let list = app.get("/api/v1/conflicts?status=open", &xa).await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
    let of = |field: &str| {
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field)
            .cloned()
            .unwrap()
    };
    let (name, address) = (of("head_name"), of("address"));
    assert_eq!(name["current_value"], "Mạnh (B)");
    assert_eq!(name["household_head"], "Mạnh (B)");
    assert_eq!(address["current_value"], "Nà Pàn (B)");
    let resolve = |c: &Value, tag: String| {
        let url = format!(
            "{}/api/v1/conflicts/{}/resolve",
            app.base,
            c["id"].as_str().unwrap()
        );
        let token = xa.clone();
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("if-match", tag)
                .json(&json!({"action": "take_other"}))
                .send()
                .await
                .unwrap();
            TestApp::read(res).await
        }
    };

    // The head's name is edited meanwhile, which settles its conflict: the resolution read
    // an older state, and is told what the conflict is now.
    let hh = app.get(&format!("/api/v1/households/{h}"), &xa).await;
    let r = app
        .patch(
            &format!("/api/v1/households/{h}"),
            &xa,
            json!({"head_name": "Mạnh (sửa)"}),
            &hh.etag(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = resolve(&name, name["etag"].as_str().unwrap().to_owned()).await;
    r.assert_problem(412, "conflict_changed");
    assert_eq!(r.body["conflict"]["status"], "resolved");
    assert_eq!(r.body["conflict"]["resolution"], "superseded");
    assert_eq!(r.body["conflict"]["household_head"], "Mạnh (sửa)");
    let now = app.get(&format!("/api/v1/households/{h}"), &xa).await;
    assert_eq!(now.body["head_name"], "Mạnh (sửa)");

    // The address's conflict did not change: it goes through, and the device receives the
    // value taken.
    let r = resolve(&address, address["etag"].as_str().unwrap().to_owned()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "resolved");
    app.sync(&mut b).await;
    let copy = &b.copy[&format!("household/{h}")].1;
    assert_eq!(
        (copy["head_name"].as_str(), copy["address"].as_str()),
        (Some("Mạnh (sửa)"), Some("Nà Pàn (A)"))
    );
}

#[tokio::test]
async fn a_campaign_is_edited_and_its_targets_set_and_cleared() {
    let w = World::new().await;
    let app = &w.app;
    let campaign = w.campaign().await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let r = app
        .patch(
            &format!("/api/v1/campaigns/{campaign}"),
            &w.admin,
            json!({"denominator": "smartphone", "ends_on": "2021-01-31"}),
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["denominator"].as_str(), r.body["name"].as_str()),
        (Some("smartphone"), Some("Bluezone 2020"))
    );
    app.patch(
        &format!("/api/v1/campaigns/{campaign}"),
        &xa,
        json!({"name": "Khác"}),
        "",
    )
    .await
    .assert_problem(403, "forbidden");
    let r = app
        .patch(
            &format!("/api/v1/campaigns/{campaign}"),
            &w.admin,
            json!({"ends_on": "2019-01-01"}),
            "",
        )
        .await;
    assert_eq!(r.field_codes(), [("ends_on".into(), "range".into())]);
    let progress = |t: String| {
        let path = format!(
            "/api/v1/reports/progress?campaign={campaign}&area={}",
            w.hoa_tham
        );
        async move { app.get(&path, &t).await.body }
    };
    // No target: the campaign's denominator.
    let p = progress(xa.clone()).await;
    assert_eq!(p["area"]["denominator"], "smartphone");
    // A commune target, inherited by its villages, then a village's own, then cleared.
    let put = |area: String, value: f64| {
        let path = format!("/api/v1/campaigns/{campaign}/targets/{area}");
        let t = xa.clone();
        async move {
            app.put(
                &path,
                &t,
                json!({"kind": "rate_registered", "value": value}),
            )
            .await
        }
    };
    assert_eq!(put(w.hoa_tham.clone(), 60.0).await.status, 200);
    assert_eq!(put(w.v1.clone(), 80.0).await.status, 200);
    let p = progress(xa.clone()).await;
    let row = |p: &Value, id: &str| {
        p["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["area_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            row(&p, &w.v1)["target"]["value"].as_f64(),
            row(&p, &w.v1)["target_inherited"].as_bool()
        ),
        (Some(80.0), Some(false))
    );
    assert_eq!(
        (
            row(&p, &w.v2)["target"]["value"].as_f64(),
            row(&p, &w.v2)["target_inherited"].as_bool()
        ),
        (Some(60.0), Some(true))
    );
    let r = app
        .delete(
            &format!("/api/v1/campaigns/{campaign}/targets/{}", w.v1),
            &xa,
            "",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let p = progress(xa.clone()).await;
    assert_eq!(
        (
            row(&p, &w.v1)["target"]["value"].as_f64(),
            row(&p, &w.v1)["target_inherited"].as_bool()
        ),
        (Some(60.0), Some(true))
    );
    app.delete(
        &format!("/api/v1/campaigns/{campaign}/targets/{}", w.v_other),
        &xa,
        "",
    )
    .await
    .assert_problem(403, "out_of_scope");
    let trail = app.get("/api/v1/audit?action=target_set", &xa).await;
    assert_eq!(trail.body["total"], 2, "{}", trail.text);
}
