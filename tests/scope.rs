//! A user sees and changes only data inside their areas; roles gate management.

mod common;

use common::World;
use serde_json::json;

#[tokio::test]
async fn canvasser_cannot_read_or_change_households_outside_their_areas() {
    let w = World::new().await;
    let app = &w.app;
    let mine = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let other = app
        .user(&w.admin, "canbo2", "canvasser", &[&w.v_other])
        .await;

    let inside = app
        .household(&mine, &w.v1, "Hoàng Văn Mạnh", "Thôn Nà Pàn")
        .await;
    let outside = app
        .household(&other, &w.v_other, "Nông Thị Hoa", "Thôn Bản Chu")
        .await;
    let outside_id = outside["id"].as_str().unwrap();

    // Read.
    app.get(&format!("/api/v1/households/{outside_id}"), &mine)
        .await
        .assert_problem(403, "out_of_scope");
    // List: only their own.
    let list = app.get("/api/v1/households", &mine).await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    assert_eq!(list.body["items"][0]["id"], inside["id"]);
    app.get(&format!("/api/v1/households?area={}", w.hung_dao), &mine)
        .await
        .assert_problem(403, "out_of_scope");
    // Change.
    let r = app
        .patch(
            &format!("/api/v1/households/{outside_id}"),
            &mine,
            json!({"head_name": "Kẻ lạ"}),
            "\"1\"",
        )
        .await;
    r.assert_problem(403, "out_of_scope");
    app.delete(&format!("/api/v1/households/{outside_id}"), &mine, "\"1\"")
        .await
        .assert_problem(403, "out_of_scope");
    // Create in another village, or add a member to another's household.
    let r = app
        .post(
            "/api/v1/households",
            &mine,
            json!({"area_id": w.v_other, "head_name": "X", "address": "Y"}),
        )
        .await;
    r.assert_problem(403, "out_of_scope");
    let r = app
        .post(
            "/api/v1/members",
            &mine,
            json!({"household_id": outside_id, "full_name": "X"}),
        )
        .await;
    r.assert_problem(403, "out_of_scope");

    // Nothing changed.
    let stored = app
        .get(&format!("/api/v1/households/{outside_id}"), &other)
        .await;
    assert_eq!(stored.body["head_name"], "Nông Thị Hoa");
    assert_eq!(stored.body["version"], 1);
    assert_eq!(stored.body["members"], json!([]));
    assert_eq!(app.count("households").await, 2);
}

#[tokio::test]
async fn canvasser_cannot_manage_users_or_areas_or_campaigns() {
    let w = World::new().await;
    let app = &w.app;
    let c = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    app.get("/api/v1/users", &c)
        .await
        .assert_problem(403, "forbidden");
    let r = app
        .post(
            "/api/v1/users",
            &c,
            json!({"username": "evil", "password": "password123", "role": "admin"}),
        )
        .await;
    r.assert_problem(403, "forbidden");
    app.post(
        "/api/v1/areas",
        &c,
        json!({"parent_id": w.hoa_tham, "name": "Thôn Mới"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let r = app
        .post(
            "/api/v1/campaigns",
            &c,
            json!({"name": "X", "starts_on": "2020-01-01", "ends_on": "2020-02-01"}),
        )
        .await;
    r.assert_problem(403, "forbidden");
    assert_eq!(app.count("users").await, 2);
    assert_eq!(app.count("campaigns").await, 0);
}

#[tokio::test]
async fn supervisor_sees_their_subtree_and_admin_sees_all() {
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let huyen = app
        .user(&w.admin, "huyen", "supervisor", &[&w.district])
        .await;
    app.household(&w.admin, &w.v1, "A", "1").await;
    app.household(&w.admin, &w.v2, "B", "2").await;
    app.household(&w.admin, &w.v_other, "C", "3").await;

    let heads = |r: &common::Res| {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["head_name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(heads(&app.get("/api/v1/households", &xa).await), ["A", "B"]);
    assert_eq!(
        heads(&app.get("/api/v1/households", &huyen).await),
        ["A", "B", "C"]
    );
    assert_eq!(
        heads(
            &app.get(&format!("/api/v1/households?area={}", w.v2), &huyen)
                .await
        ),
        ["B"]
    );
    assert_eq!(
        heads(&app.get("/api/v1/households", &w.admin).await),
        ["A", "B", "C"]
    );

    // Areas: the commune supervisor's top area is their commune; other communes are hidden.
    let top = app.get("/api/v1/areas", &xa).await;
    assert_eq!(top.body["total"], 1);
    assert_eq!(top.body["items"][0]["code"], "06073");
    app.get(&format!("/api/v1/areas/{}", w.hung_dao), &xa)
        .await
        .assert_problem(403, "out_of_scope");
    let found = app.get("/api/v1/areas?q=hung%20dao", &xa).await;
    assert_eq!(found.body["total"], 0, "{}", found.text);
    let found = app.get("/api/v1/areas?q=hung%20dao", &huyen).await;
    assert_eq!(found.body["total"], 1, "{}", found.text);

    // A supervisor creates villages only under communes they cover.
    let r = app
        .post(
            "/api/v1/areas",
            &xa,
            json!({"parent_id": w.hung_dao, "name": "Thôn Lạ"}),
        )
        .await;
    r.assert_problem(403, "out_of_scope");
    let r = app
        .post(
            "/api/v1/areas",
            &xa,
            json!({"parent_id": w.hoa_tham, "name": "  Thôn   Pác Khuông "}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "Thôn Pác Khuông");
    assert_eq!(r.body["level"], "village");
    let dup = app
        .post(
            "/api/v1/areas",
            &xa,
            json!({"parent_id": w.hoa_tham, "name": "Thôn Pác Khuông"}),
        )
        .await;
    dup.assert_problem(409, "duplicate");
    let r = app
        .post(
            "/api/v1/areas",
            &xa,
            json!({"parent_id": w.v1, "name": "Xóm"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn admin_manages_users_and_assignments() {
    let w = World::new().await;
    let app = &w.app;
    let r = app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "Xa.HoaTham", "password": "12345678", "role": "supervisor",
            "full_name": "UBND xã", "area_ids": [w.hoa_tham]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["username"], "xa.hoatham");
    assert_eq!(r.body["area_ids"], json!([w.hoa_tham]));
    assert!(r.body.get("password_hash").is_none());
    let id = r.body["id"].as_str().unwrap().to_owned();

    let dup = app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "xa.hoatham", "password": "12345678", "role": "canvasser"}),
        )
        .await;
    dup.assert_problem(409, "username_taken");
    let bad = app
        .post(
            "/api/v1/users",
            &w.admin,
            json!({"username": "x", "password": "short", "role": "canvasser"}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(
        bad.field_codes(),
        vec![
            ("username".into(), "format".into()),
            ("password".into(), "too_short".into())
        ]
    );
    let bad_area = app
        .put(
            &format!("/api/v1/users/{id}/areas"),
            &w.admin,
            json!({"area_ids": [uuid::Uuid::new_v4()]}),
        )
        .await;
    bad_area.assert_problem(422, "validation_failed");

    let r = app
        .put(
            &format!("/api/v1/users/{id}/areas"),
            &w.admin,
            json!({"area_ids": [w.district, w.v_other]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut expected = vec![w.district.clone(), w.v_other.clone()];
    expected.sort();
    assert_eq!(r.body["area_ids"], json!(expected));

    let list = app.get("/api/v1/users?per_page=1", &w.admin).await;
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["per_page"], 1);
    // The list shows each user's own assignments.
    let all = app.get("/api/v1/users", &w.admin).await;
    let by_name = |n: &str| {
        all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("xa.hoatham")["area_ids"], json!(expected));
    assert_eq!(by_name("admin")["area_ids"], json!([]));
}
