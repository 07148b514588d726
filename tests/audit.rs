//! The audit trail: each audited action leaves exactly one entry naming its actor, subject
//! and area; supervisors read the entries of their areas only; nothing changes an entry.

mod common;

use common::{World, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

/// Every entry, oldest first: (action, actor, subject, area id).
async fn trail(w: &World) -> Vec<(String, String, String, Option<String>)> {
    let r = w.app.get("/api/v1/audit?per_page=500", &w.admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut rows: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["subject"].as_str().unwrap().to_owned(),
                e["area_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    rows.reverse();
    rows
}

fn entry(
    action: &str,
    actor: &str,
    subject: &str,
    area: Option<&str>,
) -> (String, String, String, Option<String>) {
    (
        action.into(),
        actor.into(),
        subject.into(),
        area.map(str::to_owned),
    )
}

async fn user_id(w: &World, username: &str) -> String {
    let r = w.app.get("/api/v1/users?per_page=500", &w.admin).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn each_action_leaves_one_entry_and_supervisors_read_their_areas_only() {
    let w = World::new().await;
    let app = &w.app;
    let before = trail(&w).await;
    // The fixture: the admin's login, the units imported, three villages.
    let actions: Vec<&str> = before.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "login",
            "areas_imported",
            "village_created",
            "village_created",
            "village_created"
        ]
    );
    assert_eq!(
        before[4],
        entry(
            "village_created",
            "admin",
            &format!("area/{}", w.v_other),
            Some(&w.v_other)
        )
    );

    // Users: created, changed, their areas set; logins, failed ones.
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    app.user(&w.admin, "xb", "supervisor", &[&w.hung_dao]).await;
    let xb_id = user_id(&w, "xb").await;
    let r = app
        .patch(
            &format!("/api/v1/users/{xb_id}"),
            &w.admin,
            json!({"full_name": "Nông Văn B", "role": "supervisor"}),
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .put(
            &format!("/api/v1/users/{xb_id}/areas"),
            &w.admin,
            json!({"area_ids": [w.hung_dao, w.v2]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.login("xa", "wrong")
        .await
        .assert_problem(401, "invalid_credentials");
    app.login("nobody", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");

    // A village by a supervisor; an export of a search; a refresh token used twice.
    let v3 = app.village(&xa, &w.hoa_tham, "Thôn Mới").await;
    for (head, address) in [("Hoàng Văn Mạnh", "1"), ("Nông Thị Hoa", "2")] {
        app.household(&xa, &w.v1, head, address).await;
    }
    let path = format!("/api/v1/households.csv?area={}&q=Hoàng", w.hoa_tham);
    let csv = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&xa)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert_eq!(
        csv.lines().count(),
        3,
        "title, headers, one household: {csv}"
    );
    // The export is recorded once its last row is sent: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !trail(&w).await.iter().any(|e| e.0 == "export") {
        assert!(
            std::time::Instant::now() < deadline,
            "the export was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let login = app.login("xb", PASSWORD).await;
    let refresh = json!({"refresh_token": login.body["refresh_token"]});
    for status in [200, 401] {
        let r = app
            .request(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(refresh.clone()),
                &[],
            )
            .await;
        assert_eq!(r.status, status, "{}", r.text);
    }

    let after = trail(&w).await;
    let xb_subject = format!("user/{xb_id}");
    // An entry about a user is in the user's first area (by id), which its supervisors read.
    let xb_first = std::cmp::min(&w.hung_dao, &w.v2).clone();
    let new: Vec<_> = after[before.len()..]
        .iter()
        .filter(|e| e.0 != "login")
        .cloned()
        .collect();
    assert_eq!(
        new,
        [
            entry(
                "user_created",
                "admin",
                &format!("user/{}", user_id(&w, "xa").await),
                Some(&w.hoa_tham)
            ),
            entry("user_created", "admin", &xb_subject, Some(&w.hung_dao)),
            entry("user_changed", "admin", &xb_subject, Some(&w.hung_dao)),
            entry("user_areas_set", "admin", &xb_subject, Some(&xb_first)),
            entry("login_failed", "xa", "", None),
            entry("login_failed", "nobody", "", None),
            entry("village_created", "xa", &format!("area/{v3}"), Some(&v3)),
            entry(
                "export",
                "xa",
                &format!("/api/v1/households.csv?area={}&q=…", w.hoa_tham),
                Some(&w.hoa_tham)
            ),
            entry(
                "refresh_reused",
                "xb",
                &after
                    .iter()
                    .rev()
                    .find(|e| e.0 == "login" && e.1 == "xb")
                    .unwrap()
                    .2
                    .clone(),
                None
            ),
        ]
    );
    let logins: Vec<_> = after[before.len()..]
        .iter()
        .filter(|e| e.0 == "login")
        .map(|e| e.1.clone())
        .collect();
    assert_eq!(logins, ["xa", "xb", "xb"]);

    // The details: what changed, how many rows, from where, never the words searched.
    let r = app.get("/api/v1/audit?per_page=500", &w.admin).await;
    let find = |action: &str| -> Value {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap()
            .clone()
    };
    let detail =
        |e: &Value| -> Value { serde_json::from_str(e["detail"].as_str().unwrap()).unwrap() };
    assert_eq!(
        detail(&find("user_changed")),
        json!({"full_name": "changed"}),
        "the role did not change"
    );
    let areas = detail(&find("user_areas_set"));
    let mut to: Vec<&str> = areas["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    to.sort();
    let mut expected = [w.hung_dao.as_str(), w.v2.as_str()];
    expected.sort();
    assert_eq!(
        (&areas["from"], to),
        (&json!([w.hung_dao]), expected.to_vec())
    );
    let export = find("export");
    assert_eq!(detail(&export)["rows"], 1);
    assert_eq!(detail(&export)["complete"], true);
    assert_eq!(detail(&export)["format"], "csv");
    assert_eq!(export["address"], "127.0.0.1");
    assert!(!r.text.contains("Hoàng"), "a search text is not kept");
    // What an entry has not, it leaves out (no null to link into a path).
    let failed = find("login_failed");
    assert!(
        !failed.as_object().unwrap().contains_key("actor_id"),
        "{failed}"
    );
    for e in r.body["items"].as_array().unwrap() {
        for k in ["actor_id", "area_id"] {
            assert!(e.get(k).is_none_or(|v| !v.is_null()), "{e}");
        }
    }

    // Supervisors read the entries about their areas; canvassers nothing.
    let areas_of = |token: String| async move {
        let r = app.get("/api/v1/audit?per_page=500", &token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["area_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let xa_reads = areas_of(xa.clone()).await;
    let set = ("user_areas_set".to_owned(), xb_first.clone());
    let mut expected = vec![
        ("export".to_owned(), w.hoa_tham.clone()),
        ("village_created".to_owned(), v3.clone()),
    ];
    if xb_first == w.v2 {
        expected.push(set.clone());
    }
    expected.extend([
        ("user_created".to_owned(), w.hoa_tham.clone()),
        ("village_created".to_owned(), w.v2.clone()),
        ("village_created".to_owned(), w.v1.clone()),
    ]);
    assert_eq!(xa_reads, expected);
    let xb = app.token("xb").await;
    // Both of xb's areas are now xb's: the entry is theirs whichever it is in.
    let mut expected = vec![set];
    expected.extend([
        ("user_changed".to_owned(), w.hung_dao.clone()),
        ("user_created".to_owned(), w.hung_dao.clone()),
        ("village_created".to_owned(), w.v_other.clone()),
        ("village_created".to_owned(), w.v2.clone()),
    ]);
    assert_eq!(areas_of(xb).await, expected);
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    app.get("/api/v1/audit", &canbo)
        .await
        .assert_problem(403, "forbidden");
    let r = app
        .get("/api/v1/audit?action=login&actor=xb", &w.admin)
        .await;
    assert_eq!(r.body["total"], 3, "{}", r.text);

    // Nothing changes an entry: no route writes, and the database refuses.
    for method in [Method::POST, Method::DELETE, Method::PATCH] {
        let r = app
            .request(
                method,
                "/api/v1/audit",
                Some(&w.admin),
                Some(json!({})),
                &[],
            )
            .await;
        r.assert_problem(405, "method_not_allowed");
    }
    let refused = app
        .db(|conn| {
            use diesel::connection::SimpleConnection;
            let update = gocua::with_conn!(conn, |c| c
                .batch_execute("UPDATE audit_log SET actor = 'x'"));
            let delete = gocua::with_conn!(conn, |c| c.batch_execute("DELETE FROM audit_log"));
            (update.is_err(), delete.is_err())
        })
        .await;
    assert_eq!(refused, (true, true));
    assert_eq!(app.count("audit_log").await as usize, trail(&w).await.len());

    // The CSV holds the same entries, and is itself recorded.
    let csv = app
        .client
        .get(format!("{}/api/v1/audit.csv?action=login_failed", app.base))
        .bearer_auth(&w.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].contains("Nhật ký hoạt động") && lines[0].contains("CÓ DỮ LIỆU CÁ NHÂN"),
        "{csv}"
    );
    assert!(
        lines[1].contains("Thời điểm") && lines[1].contains("Hành động"),
        "{csv}"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[2].contains("login_failed") && lines[2].contains("nobody"),
        "{csv}"
    );
}
