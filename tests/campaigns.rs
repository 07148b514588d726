//! Campaigns and their targets.

mod common;

use common::World;
use serde_json::json;

#[tokio::test]
async fn campaigns_and_targets() {
    let w = World::new().await;
    let app = &w.app;
    let id = uuid::Uuid::new_v4().to_string();
    let c = app
        .post(
            "/api/v1/campaigns",
            &w.admin,
            json!({"id": id, "name": "Bluezone 2020", "description": "Cài Bluezone",
            "starts_on": "2020-08-01", "ends_on": "2020-12-31"}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    assert_eq!(c.body["id"], id);
    assert_eq!(c.body["starts_on"], "2020-08-01");
    let dup = app
        .post(
            "/api/v1/campaigns",
            &w.admin,
            json!({"name": "Bluezone 2020", "starts_on": "2020-08-01", "ends_on": "2020-12-31"}),
        )
        .await;
    dup.assert_problem(409, "duplicate");
    let bad = app
        .post(
            "/api/v1/campaigns",
            &w.admin,
            json!({"name": "X", "starts_on": "2020-08-01", "ends_on": "2020-07-01"}),
        )
        .await;
    assert_eq!(bad.field_codes(), vec![("ends_on".into(), "range".into())]);
    let bad = app
        .post(
            "/api/v1/campaigns",
            &w.admin,
            json!({"name": "X", "starts_on": "2020-13-01", "ends_on": "2020-07-01"}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");

    let t = app
        .put(
            &format!("/api/v1/campaigns/{id}/targets/{}", w.hoa_tham),
            &w.admin,
            json!({"kind": "rate_registered", "value": 70}),
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["value"], 70.0);
    for (kind, value, code) in [
        ("rate_registered", 120.0, "range"),
        ("count", 2.5, "range"),
        ("rate_other", 50.0, "choice"),
    ] {
        let r = app
            .put(
                &format!("/api/v1/campaigns/{id}/targets/{}", w.hoa_tham),
                &w.admin,
                json!({"kind": kind, "value": value}),
            )
            .await;
        assert_eq!(
            r.field_codes(),
            vec![(
                if code == "choice" { "kind" } else { "value" }.into(),
                code.into()
            )],
            "{}",
            r.text
        );
    }
    // A commune supervisor may set targets inside their commune only.
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let r = app
        .put(
            &format!("/api/v1/campaigns/{id}/targets/{}", w.v1),
            &xa,
            json!({"kind": "count", "value": 40}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .put(
            &format!("/api/v1/campaigns/{id}/targets/{}", w.hung_dao),
            &xa,
            json!({"kind": "count", "value": 40}),
        )
        .await;
    r.assert_problem(403, "out_of_scope");
    app.put(
        &format!("/api/v1/campaigns/{id}/targets/{}", w.district),
        &w.admin,
        json!({"kind": "rate_smartphone", "value": 80}),
    )
    .await;

    // Replacing a target keeps one row.
    let r = app
        .put(
            &format!("/api/v1/campaigns/{id}/targets/{}", w.hoa_tham),
            &w.admin,
            json!({"kind": "rate_smartphone", "value": 75}),
        )
        .await;
    assert_eq!(r.body["kind"], "rate_smartphone");
    let all = app
        .get(&format!("/api/v1/campaigns/{id}/targets"), &w.admin)
        .await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 3);
    // The supervisor sees only the targets of their areas.
    let mine = app
        .get(&format!("/api/v1/campaigns/{id}/targets"), &xa)
        .await;
    let mut areas: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["area_id"].as_str().unwrap())
        .collect();
    areas.sort();
    let mut expected = vec![w.hoa_tham.as_str(), w.v1.as_str()];
    expected.sort();
    assert_eq!(areas, expected);
    assert_eq!(
        app.get("/api/v1/campaigns", &xa).await.body["items"][0]["name"],
        "Bluezone 2020"
    );
}
