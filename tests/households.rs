//! Households, members, adoptions and visits over REST, with optimistic concurrency.

mod common;

use common::World;
use serde_json::{json, Value};

#[tokio::test]
async fn household_lifecycle_with_client_ids_and_etags() {
    let w = World::new().await;
    let app = &w.app;
    let id = uuid::Uuid::new_v4().to_string();
    let r = app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"id": id, "area_id": w.v1, "head_name": " Hoàng Văn Mạnh ",
            "address": "Thôn Nà Pàn", "phone": "0912 345 678", "lat": 21.95, "lon": 106.31}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["head_name"], "Hoàng Văn Mạnh");
    assert_eq!(r.body["phone"], "0912345678");
    assert_eq!(r.body["notes"], "");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.etag(), "\"1\"");

    // The same id again is a conflict, not an overwrite.
    let again = app
        .post(
            "/api/v1/households",
            &w.admin,
            json!({"id": id, "area_id": w.v1, "head_name": "X", "address": "Y"}),
        )
        .await;
    again.assert_problem(409, "exists");

    // Update needs If-Match; a stale one changes nothing.
    let path = format!("/api/v1/households/{id}");
    let no_match = app
        .request(
            reqwest::Method::PATCH,
            &path,
            Some(&w.admin),
            Some(json!({"notes": "x"})),
            &[],
        )
        .await;
    no_match.assert_problem(428, "if_match_required");
    let ok = app
        .patch(
            &path,
            &w.admin,
            json!({"notes": "Có 2 người cách ly", "phone": null}),
            "\"1\"",
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["notes"], "Có 2 người cách ly");
    assert_eq!(ok.body["phone"], Value::Null);
    assert_eq!(ok.etag(), "\"2\"");
    let stale = app
        .patch(&path, &w.admin, json!({"head_name": "Người khác"}), "\"1\"")
        .await;
    stale.assert_problem(412, "version_mismatch");
    let now = app.get(&path, &w.admin).await;
    assert_eq!(now.body["head_name"], "Hoàng Văn Mạnh");
    assert_eq!(now.body["version"], 2);
    assert_eq!(now.etag(), "\"2\"");

    // Moving to a commune (not a village) is refused field by field.
    let r = app
        .patch(&path, &w.admin, json!({"area_id": w.hoa_tham}), "\"2\"")
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.field_codes(), vec![("area_id".into(), "level".into())]);
    let r = app
        .patch(&path, &w.admin, json!({"area_id": w.v2}), "W/\"2\"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["area_id"], w.v2);
    let stored = app.get(&path, &w.admin).await;
    assert_eq!(stored.body["area_id"], w.v2);
    assert_eq!(stored.body["notes"], "Có 2 người cách ly");

    // Per-field versions are kept for reconciliation.
    let meta: String = app
        .db({
            let id = id.clone();
            move |conn| {
                use diesel::prelude::*;
                use gocua::db::schema::households;
                let hid: gocua::domain::HouseholdId = id.parse().unwrap();
                gocua::with_conn!(conn, |c| households::table
                    .find(hid)
                    .select(households::field_meta)
                    .first(c))
                .unwrap()
            }
        })
        .await;
    let meta = gocua::domain::merge::decode(&meta).unwrap();
    assert_eq!(meta["head_name"].v, 1);
    assert_eq!(meta["notes"].v, 2);
    assert_eq!(meta["area_id"].v, 3);

    // Soft delete: gone from reads and lists, kept as a tombstone.
    app.delete(&path, &w.admin, "\"2\"")
        .await
        .assert_problem(412, "version_mismatch");
    let del = app.delete(&path, &w.admin, "\"3\"").await;
    assert_eq!(del.status, 204, "{}", del.text);
    app.get(&path, &w.admin)
        .await
        .assert_problem(404, "deleted");
    assert_eq!(
        app.get("/api/v1/households", &w.admin).await.body["total"],
        0
    );
    app.patch(&path, &w.admin, json!({"notes": "y"}), "\"4\"")
        .await
        .assert_problem(409, "deleted");
    assert_eq!(app.count("households").await, 1);
    let ops: Vec<(String, i64)> = app
        .db(|conn| {
            use diesel::prelude::*;
            use gocua::db::schema::changes;
            gocua::with_conn!(conn, |c| changes::table
                .select((changes::op, changes::version))
                .order(changes::id)
                .load(c))
            .unwrap()
        })
        .await;
    // Version 3 moved the household to another village: a delete for the old village's
    // devices, then the upsert for the new one.
    assert_eq!(
        ops,
        vec![
            ("upsert".into(), 1),
            ("upsert".into(), 2),
            ("delete".into(), 3),
            ("upsert".into(), 3),
            ("delete".into(), 4)
        ]
    );
    w.app.assert_tallies().await;
}

#[tokio::test]
async fn members_adoptions_and_visits() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let h = app
        .household(&w.admin, &w.v1, "Lý Văn Đức", "Bản Chu")
        .await;
    let hid = h["id"].as_str().unwrap();

    let m = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": hid, "full_name": "Lý Thị Mai", "birth_year": 1990,
            "sex": "female", "smartphone": "yes", "priority": "quarantine_home"}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    let mid = m.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        m.body["version"], 2,
        "a member write bumps the household unit"
    );
    assert_eq!(m.body["adoptions"], json!([]));
    let bad = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": uuid::Uuid::new_v4(), "full_name": "X"}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(
        bad.field_codes(),
        vec![("household_id".into(), "unknown_household".into())]
    );

    let mpath = format!("/api/v1/members/{mid}");
    let moved = app
        .patch(
            &mpath,
            &w.admin,
            json!({"household_id": uuid::Uuid::new_v4()}),
            "\"2\"",
        )
        .await;
    assert_eq!(
        moved.field_codes(),
        vec![("household_id".into(), "immutable".into())]
    );
    let up = app
        .patch(&mpath, &w.admin, json!({"smartphone": "no"}), "\"2\"")
        .await;
    assert_eq!(up.status, 200, "{}", up.text);
    assert_eq!(up.body["smartphone"], "no");
    assert_eq!(up.etag(), "\"3\"");

    // Adoption: created without If-Match, then If-Match is required.
    let apath = format!("/api/v1/members/{mid}/adoptions/{camp}");
    let a = app
        .put(&apath, &w.admin, json!({"status": "installed_with_help"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "installed_with_help");
    assert_eq!(a.etag(), "\"4\"");
    app.put(&apath, &w.admin, json!({"status": "refused"}))
        .await
        .assert_problem(428, "if_match_required");
    let bad = app.put(&apath, &w.admin, json!({"status": "maybe"})).await;
    assert_eq!(bad.field_codes(), vec![("status".into(), "choice".into())]);
    let a2 = app
        .request(
            reqwest::Method::PUT,
            &apath,
            Some(&w.admin),
            Some(json!({"status": "refused"})),
            &[("if-match", "\"4\"")],
        )
        .await;
    assert_eq!(a2.status, 200, "{}", a2.text);
    assert_eq!(a2.body["status"], "refused");
    let stale = app
        .request(
            reqwest::Method::PUT,
            &apath,
            Some(&w.admin),
            Some(json!({"status": "installed"})),
            &[("if-match", "\"4\"")],
        )
        .await;
    stale.assert_problem(412, "version_mismatch");
    let unknown = app
        .put(
            &format!("/api/v1/members/{mid}/adoptions/{}", uuid::Uuid::new_v4()),
            &w.admin,
            json!({"status": "installed"}),
        )
        .await;
    unknown.assert_problem(404, "not_found");

    // Visits are facts: resending the same one is harmless; another under its id is refused.
    let vid = uuid::Uuid::new_v4().to_string();
    let visit = json!({"id": vid, "household_id": hid, "campaign_id": camp, "visited_at": "2020-08-21T10:04:05+07:00",
        "outcome": "met", "lat": 21.95, "lon": 106.31});
    let v = app.post("/api/v1/visits", &w.admin, visit.clone()).await;
    assert_eq!(v.status, 201, "{}", v.text);
    assert_eq!(v.body["visited_at"], "2020-08-21T03:04:05Z");
    let again = app.post("/api/v1/visits", &w.admin, visit.clone()).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, v.body);
    let mut other = visit.clone();
    other["outcome"] = json!("not_home");
    app.post("/api/v1/visits", &w.admin, other)
        .await
        .assert_problem(409, "id_reused");
    assert_eq!(app.count("visits").await, 1);

    let d = app
        .get(&format!("/api/v1/households/{hid}"), &w.admin)
        .await;
    assert_eq!(d.body["version"], 5);
    assert_eq!(d.body["members"][0]["full_name"], "Lý Thị Mai");
    assert_eq!(d.body["members"][0]["adoptions"][0]["status"], "refused");
    assert_eq!(d.body["recent_visits"][0]["id"], vid);

    // Deleting the member hides it.
    let del = app.delete(&mpath, &w.admin, "\"3\"").await;
    assert_eq!(del.status, 204, "{}", del.text);
    app.get(&mpath, &w.admin)
        .await
        .assert_problem(404, "deleted");
    let d = app
        .get(&format!("/api/v1/households/{hid}"), &w.admin)
        .await;
    assert_eq!(d.body["members"], json!([]));
    w.app.assert_tallies().await;
    w.app.assert_duplicate_keys().await;
}

#[tokio::test]
async fn list_filters_and_pages_with_a_total() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let h = app
            .household(
                &w.admin,
                if i < 5 { &w.v1 } else { &w.v_other },
                &format!("Chủ hộ {i}"),
                &format!("Số {i}"),
            )
            .await;
        ids.push(h["id"].as_str().unwrap().to_owned());
    }
    // Household 0: priority person who installed; 1: priority person not yet; 2: visited.
    let m0 = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": ids[0], "full_name": "A", "priority": "testing_required"}),
        )
        .await;
    let m1 = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": ids[1], "full_name": "B", "priority": "testing_required"}),
        )
        .await;
    app.post(
        "/api/v1/members",
        &w.admin,
        json!({"household_id": ids[3], "full_name": "C"}),
    )
    .await;
    let m0 = m0.body["id"].as_str().unwrap();
    app.put(
        &format!("/api/v1/members/{m0}/adoptions/{camp}"),
        &w.admin,
        json!({"status": "installed"}),
    )
    .await;
    let m1 = m1.body["id"].as_str().unwrap();
    app.put(
        &format!("/api/v1/members/{m1}/adoptions/{camp}"),
        &w.admin,
        json!({"status": "not_yet"}),
    )
    .await;
    let v = app
        .post("/api/v1/visits", &w.admin, json!({"household_id": ids[2], "campaign_id": camp, "visited_at": "2020-09-01T08:00:00Z", "outcome": "not_home"}))
        .await;
    assert_eq!(v.status, 201, "{}", v.text);

    let found = |r: &common::Res| -> Vec<String> {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let r = app
        .get("/api/v1/households?priority=testing_required", &w.admin)
        .await;
    assert_eq!(found(&r), sorted(vec![ids[0].clone(), ids[1].clone()]));
    let r = app
        .get(
            &format!("/api/v1/households?campaign={camp}&adoption_status=installed"),
            &w.admin,
        )
        .await;
    assert_eq!(found(&r), vec![ids[0].clone()]);
    // not_yet: a member with not_yet or with no status at all.
    let r = app
        .get(
            &format!("/api/v1/households?campaign={camp}&adoption_status=not_yet"),
            &w.admin,
        )
        .await;
    assert_eq!(found(&r), sorted(vec![ids[1].clone(), ids[3].clone()]));
    let r = app
        .get(
            &format!("/api/v1/households?campaign={camp}&visited=true"),
            &w.admin,
        )
        .await;
    assert_eq!(found(&r), vec![ids[2].clone()]);
    let r = app
        .get(
            &format!(
                "/api/v1/households?campaign={camp}&visited=false&area={}",
                w.v1
            ),
            &w.admin,
        )
        .await;
    assert_eq!(r.body["total"], 4);
    let r = app
        .get("/api/v1/households?adoption_status=installed", &w.admin)
        .await;
    r.assert_problem(422, "validation_failed");
    app.get("/api/v1/households?priority=vip", &w.admin)
        .await
        .assert_problem(422, "validation_failed");

    // Paging: totals stay, pages partition the list.
    let p1 = app
        .get("/api/v1/households?per_page=3&page=1", &w.admin)
        .await;
    let p3 = app
        .get("/api/v1/households?per_page=3&page=3", &w.admin)
        .await;
    assert_eq!(
        (p1.body["total"].as_i64(), p3.body["total"].as_i64()),
        (Some(7), Some(7))
    );
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(p3.body["items"].as_array().unwrap().len(), 1);
    let mut all = Vec::new();
    for page in 1..=3 {
        let p = app
            .get(
                &format!("/api/v1/households?per_page=3&page={page}"),
                &w.admin,
            )
            .await;
        all.extend(found(&p));
    }
    all.sort();
    assert_eq!(all, sorted(ids.clone()));
    assert!(p1.body["items"][0]["member_count"].as_i64().unwrap() <= 1);
    app.get("/api/v1/households?per_page=0", &w.admin)
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/households?per_page=501", &w.admin)
        .await
        .assert_problem(422, "validation_failed");
}

/// Every field an update may change goes through the merge and back into the stored record
/// with its own type: text, numbers, optional values set and cleared (each field is read and
/// set by name, `domain::household::rules::Fields`).
#[tokio::test]
async fn updates_write_every_mergeable_field() {
    let w = World::new().await;
    let app = &w.app;
    let h = app
        .household(&w.admin, &w.v1, "Lò Văn Páo", "Bản Phố")
        .await;
    let hid = h["id"].as_str().unwrap().to_owned();
    let household = json!({"address": "Bản Mới", "head_name": "Lò Thị Dung",
        "phone": "0987654321", "lat": 22.5, "lon": 104.25, "notes": "Đã gặp"});
    let cleared = json!({"phone": null, "lat": null, "lon": null});
    let path = format!("/api/v1/households/{hid}");
    set_then_clear(app, &w.admin, &path, 1, &household, &cleared).await;

    let m = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": hid, "full_name": "Lò Văn A"}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    let member = json!({"full_name": "Lò Thị B", "birth_year": 1975, "sex": "female",
        "phone": "0912345678", "smartphone": "yes", "priority": "quarantine_home",
        "notes": "Cách ly tại nhà"});
    let cleared = json!({"birth_year": null, "sex": null, "phone": null});
    let path = format!("/api/v1/members/{}", m.body["id"].as_str().unwrap());
    set_then_clear(app, &w.admin, &path, 4, &member, &cleared).await;
}

/// Patches `values` at `version`, then `cleared`, reading the record back after each.
async fn set_then_clear(
    app: &common::TestApp,
    token: &str,
    path: &str,
    version: i64,
    values: &Value,
    cleared: &Value,
) {
    let r = app
        .patch(path, token, values.clone(), &format!("\"{version}\""))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stored = app.get(path, token).await.body;
    for (field, value) in values.as_object().unwrap() {
        assert_eq!(&stored[field], value, "{field} after the update: {stored}");
    }
    let etag = format!("\"{}\"", version + 1);
    let r = app.patch(path, token, cleared.clone(), &etag).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stored = app.get(path, token).await.body;
    for (field, value) in values.as_object().unwrap() {
        let expected = cleared.get(field).unwrap_or(value);
        assert_eq!(&stored[field], expected, "{field} after clearing: {stored}");
    }
}
