//! The API contract: authorization before input, what the OpenAPI document declares, 405
//! with `Allow`, and lenient readings a client may rely on (`base_version: null`).

mod common;

use common::client::{household, Device};
use common::{Res, World};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Sends `body` as is, with a content type, for bodies that are not JSON values.
async fn raw(w: &World, method: Method, path: &str, token: &str, ct: &str, body: &str) -> Res {
    let res = w
        .app
        .client
        .request(method, format!("{}{}", w.app.base, path))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    common::TestApp::read(res).await
}

/// Rows of every table a write could touch, to show that nothing changed.
async fn footprint(w: &World) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "users",
        "user_areas",
        "areas",
        "campaigns",
        "targets",
        "households",
        "members",
        "adoptions",
        "visits",
        "conflicts",
    ] {
        out.push(w.app.count(t).await);
    }
    out
}

#[tokio::test]
async fn a_caller_without_the_role_or_the_scope_hears_403_whatever_it_sent() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    // A canvasser of v1; the records below are in v_other, outside its scope.
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let other = app
        .household(&w.admin, &w.v_other, "Lý Văn Bảo", "Bản Chu")
        .await;
    let h = other["id"].as_str().unwrap().to_owned();
    let m = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": h, "full_name": "Lý Thị Mai"}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    let m = m.body["id"].as_str().unwrap().to_owned();
    let admin_id = app.get("/api/v1/me", &w.admin).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = footprint(&w).await;

    let nowhere = Uuid::new_v4();
    // Every mutating endpoint, with a body that would otherwise be refused.
    let mutating: Vec<(Method, String)> = vec![
        (Method::POST, "/api/v1/users".into()),
        (Method::PATCH, format!("/api/v1/users/{admin_id}")),
        (Method::PUT, format!("/api/v1/users/{admin_id}/areas")),
        (Method::POST, "/api/v1/areas".into()),
        (Method::POST, "/api/v1/campaigns".into()),
        (
            Method::PUT,
            format!("/api/v1/campaigns/{camp}/targets/{}", w.hoa_tham),
        ),
        (Method::POST, format!("/api/v1/conflicts/{nowhere}/resolve")),
        (Method::PATCH, format!("/api/v1/households/{h}")),
        (Method::DELETE, format!("/api/v1/households/{h}")),
        (Method::PATCH, format!("/api/v1/members/{m}")),
        (Method::DELETE, format!("/api/v1/members/{m}")),
        (Method::PUT, format!("/api/v1/members/{m}/adoptions/{camp}")),
    ];
    for (method, path) in &mutating {
        for body in [
            r#"{"full_name": "#,
            r#"{"status": 42, "name": [], "area_ids": "x"}"#,
        ] {
            let r = raw(&w, method.clone(), path, &canbo, "application/json", body).await;
            assert_eq!(r.status, 403, "{method} {path} with {body}: {}", r.text);
            assert_eq!(r.body["status"], 403, "{method} {path}: {}", r.text);
        }
    }
    // The unit list import: not even a CSV.
    let r = raw(
        &w,
        Method::POST,
        "/api/v1/areas/import",
        &canbo,
        "text/csv",
        "not,a,unit,list",
    )
    .await;
    r.assert_problem(403, "forbidden");
    // Creates that name a record outside the caller's areas, with the rest of the body wrong.
    let creates = [
        (
            "/api/v1/households",
            json!({"area_id": w.v_other, "head_name": 7}),
        ),
        (
            "/api/v1/members",
            json!({"household_id": h, "birth_year": "old"}),
        ),
        (
            "/api/v1/visits",
            json!({"household_id": h, "outcome": "maybe"}),
        ),
    ];
    for (path, body) in creates {
        app.post(path, &canbo, body)
            .await
            .assert_problem(403, "out_of_scope");
    }
    // Queries of role-bound reads, malformed.
    for path in [
        "/api/v1/users?page=first",
        "/api/v1/conflicts?status=whatever&per_page=0",
        "/api/v1/reports/activity?campaign=not-a-uuid",
        "/api/v1/reports/activity.csv?min_gap_seconds=x",
    ] {
        app.get(path, &canbo).await.assert_problem(403, "forbidden");
    }
    assert_eq!(footprint(&w).await, before, "nothing was written");

    // The same bad input from a caller who may call: the input's own error.
    let r = raw(
        &w,
        Method::POST,
        "/api/v1/campaigns",
        &w.admin,
        "application/json",
        r#"{"name": "#,
    )
    .await;
    r.assert_problem(400, "malformed_json");
    app.get("/api/v1/users?page=first", &w.admin)
        .await
        .assert_problem(400, "bad_query");
}

#[tokio::test]
async fn a_base_version_of_null_or_none_means_zero() {
    let w = World::new().await;
    let app = &w.app;
    let token = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let d = Device::new(&token);
    let (h1, h2, m) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let op = |seq: Value, entity: Uuid, hh: Uuid, kind: &str, data: Value| {
        json!({"seq": seq, "op_id": Uuid::new_v4(), "type": kind, "entity_id": entity,
               "household_id": hh, "hlc": "2020-08-21T03:04:05.123Z-0001", "data": data})
    };
    let mut with_null = op(
        json!(1),
        h1,
        h1,
        "household.upsert",
        household(&w.v1, "Hoàng Văn Mạnh", "Nà Pàn"),
    );
    with_null["base_version"] = Value::Null;
    // No base_version at all, and a seq written as 2.0: a JSON integer all the same.
    let absent = op(
        json!(2.0),
        h2,
        h2,
        "household.upsert",
        household(&w.v1, "Nông Văn Đức", "Khuổi Hẩu"),
    );
    let mut member = op(
        json!(3),
        m,
        h1,
        "member.upsert",
        json!({"full_name": "Hoàng Thị Hoa", "birth_year": 1990.0}),
    );
    member["base_version"] = Value::Null;
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": [with_null, absent, member]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "applied", "applied"], "{}", r.text);
    assert_eq!(r.body["last_seq"], 3);

    let got = app.get(&format!("/api/v1/households/{h1}"), &token).await;
    assert_eq!(got.body["head_name"], "Hoàng Văn Mạnh");
    assert_eq!(got.body["members"][0]["full_name"], "Hoàng Thị Hoa");
    assert_eq!(got.body["members"][0]["birth_year"], 1990);
    let got = app.get(&format!("/api/v1/households/{h2}"), &token).await;
    assert_eq!(got.body["address"], "Khuổi Hẩu");
}

#[tokio::test]
async fn a_known_path_asked_with_another_method_answers_405_with_allow() {
    let w = World::new().await;
    let app = &w.app;
    for (method, path, allow) in [
        (Method::TRACE, "/api/v1/areas".to_owned(), "GET, POST"),
        (Method::DELETE, "/api/v1/sync/push".into(), "POST"),
        (Method::PUT, "/api/v1/areas/import".into(), "POST"),
        (
            Method::POST,
            format!("/api/v1/households/{}", Uuid::new_v4()),
            "GET, DELETE, PATCH",
        ),
    ] {
        let r = app
            .request(method.clone(), &path, Some(&w.admin), None, &[])
            .await;
        r.assert_problem(405, "method_not_allowed");
        assert_eq!(
            r.headers.get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
    }
    app.request(Method::GET, "/api/v1/nowhere", Some(&w.admin), None, &[])
        .await
        .assert_problem(404, "no_route");
}

/// Every `$ref` in `v` (recursively).
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_served_document_declares_every_error_as_problem_json() {
    let w = World::new().await;
    let doc = w.app.get("/api-docs/openapi.json", &w.admin).await.body;
    let mut found = BTreeSet::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in &found {
        let name = r.strip_prefix("#/components/schemas/").expect(r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} names no schema"
        );
    }
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "{method} {path}: its operationId is not unique"
            );
            let responses = op["responses"].as_object().unwrap();
            for (status, res) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = res["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                }
            }
            assert!(responses.contains_key("500"), "{method} {path}");
            if op.get("security").is_some() {
                for s in ["401", "403"] {
                    assert!(responses.contains_key(s), "{method} {path} lacks {s}");
                }
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(s), "{method} {path} lacks {s}");
                }
            }
        }
    }
    // Exports declare their real media types.
    let export = &doc["paths"]["/api/v1/households.{format}"]["get"]["responses"]["200"];
    let types: Vec<&String> = export["content"].as_object().unwrap().keys().collect();
    assert_eq!(
        types,
        [
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "text/csv"
        ]
    );
    // Constraints the server enforces are stated.
    let params = doc["paths"]["/api/v1/households"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let per_page = params.iter().find(|p| p["name"] == "per_page").unwrap();
    assert_eq!(per_page["schema"]["minimum"], 1);
    assert_eq!(per_page["schema"]["maximum"], 500);
}
