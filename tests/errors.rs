//! Bad input gets a clear problem+json error and writes nothing.

mod common;

use common::World;
use serde_json::json;

async fn raw(
    w: &World,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> common::Res {
    let res = w
        .app
        .client
        .request(method, format!("{}{}", w.app.base, path))
        .bearer_auth(&w.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    common::TestApp::read(res).await
}

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_write_nothing() {
    let w = World::new().await;
    let before = w.app.count("households").await;

    let truncated = raw(
        &w,
        reqwest::Method::POST,
        "/api/v1/households",
        "application/json",
        r#"{"area_id": "x", "head_na"#,
    )
    .await;
    truncated.assert_problem(400, "malformed_json");

    let wrong = w
        .app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"area_id": w.v1, "head_name": 42, "address": ["a"], "lat": "north", "lon": 500}),
        )
        .await;
    wrong.assert_problem(422, "validation_failed");
    assert_eq!(
        wrong.field_codes(),
        vec![
            ("address".into(), "type".into()),
            ("head_name".into(), "type".into()),
            ("lat".into(), "type".into()),
            ("lon".into(), "range".into()),
        ]
    );

    let unknown = w
        .app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"area_id": w.v1, "head_name": "A", "address": "B", "visited": true}),
        )
        .await;
    unknown.assert_problem(422, "validation_failed");
    assert_eq!(
        unknown.field_codes(),
        vec![("visited".into(), "unknown_field".into())]
    );

    let not_object = w
        .app
        .post("/api/v1/households", &w.admin, json!([1, 2]))
        .await;
    not_object.assert_problem(422, "validation_failed");

    let text = raw(
        &w,
        reqwest::Method::POST,
        "/api/v1/households",
        "text/plain",
        "hello",
    )
    .await;
    text.assert_problem(415, "unsupported_media_type");

    let login_extra = w
        .app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "x", "otp": 1})),
            &[],
        )
        .await;
    login_extra.assert_problem(422, "validation_failed");
    assert_eq!(
        login_extra.field_codes(),
        vec![("otp".into(), "unknown_field".into())]
    );
    let login_missing = w
        .app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin"})),
            &[],
        )
        .await;
    assert_eq!(
        login_missing.field_codes(),
        vec![("password".into(), "required".into())]
    );
    let login_type = w
        .app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": 1, "password": "x"})),
            &[],
        )
        .await;
    login_type.assert_problem(422, "validation_failed");

    assert_eq!(w.app.count("households").await, before);
    assert_eq!(w.app.count("changes").await, 0);
}

#[tokio::test]
async fn oversized_bodies_get_413_with_the_limit() {
    let w = World::new().await;
    let big = "x".repeat(1024 * 1024 + 10);
    let body = json!({"area_id": w.v1, "head_name": "A", "address": "B", "notes": big}).to_string();
    let r = raw(
        &w,
        reqwest::Method::POST,
        "/api/v1/households",
        "application/json",
        body,
    )
    .await;
    r.assert_problem(413, "body_too_large");
    assert!(
        r.body["detail"].as_str().unwrap().contains("1048576"),
        "{}",
        r.text
    );
    assert_eq!(w.app.count("households").await, 0);

    // A field over its own limit is a validation error.
    let r = w
        .app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"area_id": w.v1, "head_name": "A", "address": "B", "notes": "x".repeat(2001)}),
        )
        .await;
    assert_eq!(r.field_codes(), vec![("notes".into(), "too_long".into())]);

    let huge_csv = "a".repeat(17 * 1024 * 1024);
    let r = raw(
        &w,
        reqwest::Method::POST,
        "/api/v1/areas/import",
        "text/csv",
        huge_csv,
    )
    .await;
    r.assert_problem(413, "body_too_large");
}

#[tokio::test]
async fn unknown_ids_bad_paths_and_routes() {
    let w = World::new().await;
    let id = uuid::Uuid::new_v4();
    w.app
        .get(&format!("/api/v1/households/{id}"), &w.admin)
        .await
        .assert_problem(404, "not_found");
    w.app
        .get(&format!("/api/v1/members/{id}"), &w.admin)
        .await
        .assert_problem(404, "not_found");
    w.app
        .get(&format!("/api/v1/visits/{id}"), &w.admin)
        .await
        .assert_problem(404, "not_found");
    w.app
        .get(&format!("/api/v1/campaigns/{id}"), &w.admin)
        .await
        .assert_problem(404, "not_found");
    w.app
        .patch(
            &format!("/api/v1/households/{id}"),
            &w.admin,
            json!({"notes": "x"}),
            "\"1\"",
        )
        .await
        .assert_problem(404, "not_found");
    w.app
        .get("/api/v1/households/not-a-uuid", &w.admin)
        .await
        .assert_problem(400, "bad_path");
    w.app
        .get("/api/v1/households?visited=perhaps", &w.admin)
        .await
        .assert_problem(400, "bad_query");
    w.app
        .get("/api/v1/households?colour=red", &w.admin)
        .await
        .assert_problem(400, "bad_query");
    w.app
        .get("/api/v1/nothing-here", &w.admin)
        .await
        .assert_problem(404, "no_route");
    // The record (and the caller's right to it) first, then the If-Match it came with.
    let r = w
        .app
        .patch(
            &format!("/api/v1/households/{id}"),
            &w.admin,
            json!({"notes": "x"}),
            "three",
        )
        .await;
    r.assert_problem(404, "not_found");
    let h = w
        .app
        .household(&w.admin, &w.v1, "Hoàng Văn Mạnh", "Nà Pàn")
        .await;
    let r = w
        .app
        .patch(
            &format!("/api/v1/households/{}", h["id"].as_str().unwrap()),
            &w.admin,
            json!({"notes": "x"}),
            "three",
        )
        .await;
    r.assert_problem(400, "bad_if_match");
    let r = w
        .app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"id": "nope", "area_id": w.v1, "head_name": "A", "address": "B"}),
        )
        .await;
    assert_eq!(r.field_codes(), vec![("id".into(), "format".into())]);
    assert_eq!(
        w.app.count("households").await,
        1,
        "only the one made above"
    );
}

#[tokio::test]
async fn server_errors_do_not_leak_internals() {
    let w = World::new().await;
    let h = w.app.household(&w.admin, &w.v1, "A", "B").await;
    w.app
        .db(|conn| {
            use diesel::connection::SimpleConnection;
            gocua::with_conn!(conn, |c| c.batch_execute("DROP TABLE visits")).unwrap()
        })
        .await;
    let r = w
        .app
        .get(
            &format!("/api/v1/households/{}", h["id"].as_str().unwrap()),
            &w.admin,
        )
        .await;
    r.assert_problem(500, "internal");
    assert_eq!(r.body["detail"], "an internal error occurred");
    assert!(!r.text.to_lowercase().contains("visits"), "{}", r.text);
}
