//! The conflict books are kept by the one write path, whoever writes: a REST overwrite made
//! with the record in view closes the open conflicts of the fields it writes, and a
//! resolution closes the other conflicts of its field, which it makes moot.

mod common;

use common::client::{household, Device};
use common::{TestApp, World};
use serde_json::{json, Value};
use uuid::Uuid;

/// The conflicts of household (or member) `entity`, as (field, status, resolution), sorted.
async fn books(app: &TestApp, admin: &str, entity: &str) -> Vec<(String, String, Value)> {
    let all = app.get("/api/v1/conflicts?per_page=500", admin).await;
    let mut out: Vec<(String, String, Value)> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["entity_id"] == entity)
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
                c["resolution"].clone(),
            )
        })
        .collect();
    out.sort_by_key(|c| format!("{c:?}"));
    out
}

/// A household that a device of `token` creates in `village`.
async fn new_household(app: &TestApp, token: &str, village: &str) -> Uuid {
    let h = Uuid::new_v4();
    let mut first = Device::new(token);
    first.queue_op(
        "household.upsert",
        h,
        h,
        household(village, "Lò Văn Páo", "Nà Pàn"),
    );
    app.sync(&mut first).await;
    h
}

/// Devices of `token` that have all synced household `h`, each editing it offline at its
/// own clock (a few minutes back, so that the order of the clocks is the one given).
async fn concurrent_edits(
    app: &TestApp,
    token: &str,
    h: Uuid,
    edits: &[(i64, Value)],
) -> Vec<Device> {
    let mut devices = Vec::new();
    for _ in edits {
        let mut d = Device::new(token);
        app.sync(&mut d).await;
        assert!(d.copy.contains_key(&format!("household/{h}")));
        devices.push(d);
    }
    let t = chrono::Utc::now().timestamp_millis() - 600_000;
    for (d, (offset, data)) in devices.iter_mut().zip(edits) {
        d.fixed_clock = Some(t + offset);
        d.queue_op("household.upsert", h, h, data.clone());
    }
    for d in devices.iter_mut() {
        let r = app.push(d, 10).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    devices
}

#[tokio::test]
async fn a_rest_overwrite_closes_the_open_conflicts_of_the_fields_it_writes() {
    let w = World::new().await;
    let app = &w.app;
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let h = new_household(app, &canbo, &w.v1).await;
    // Two devices of canbo edit the notes and the phone concurrently: the earlier clock
    // loses on both fields.
    concurrent_edits(
        app,
        &canbo,
        h,
        &[
            (1_000, json!({"notes": "ốm", "phone": "0911111111"})),
            (2_000, json!({"notes": "cách ly", "phone": "0922222222"})),
        ],
    )
    .await;
    let open = |f: &str| (f.to_owned(), "open".to_owned(), Value::Null);
    assert_eq!(
        books(app, &w.admin, &h.to_string()).await,
        [open("notes"), open("phone")]
    );

    // xa overwrites the notes with the version they read: that conflict is moot.
    let path = format!("/api/v1/households/{h}");
    let read = app.get(&path, &xa).await;
    let r = app
        .patch(&path, &xa, json!({"notes": "đã gọi điện"}), &read.etag())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["notes"], "đã gọi điện");
    let superseded = |f: &str| (f.to_owned(), "resolved".to_owned(), json!("superseded"));
    assert_eq!(
        books(app, &w.admin, &h.to_string()).await,
        [superseded("notes"), open("phone")]
    );

    // A stale overwrite changes nothing, the books included.
    let r = app
        .patch(&path, &xa, json!({"phone": "0933333333"}), &read.etag())
        .await;
    r.assert_problem(412, "version_mismatch");
    assert_eq!(
        books(app, &w.admin, &h.to_string()).await,
        [superseded("notes"), open("phone")]
    );
    let current = app.get(&path, &xa).await;
    let r = app
        .patch(&path, &xa, json!({"phone": "0933333333"}), &current.etag())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        books(app, &w.admin, &h.to_string()).await,
        [superseded("notes"), superseded("phone")]
    );
}

#[tokio::test]
async fn a_rest_edit_of_a_member_or_an_adoption_closes_their_conflicts() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let h = new_household(app, &canbo, &w.v1).await;
    let m = Uuid::new_v4();
    let mut first = Device::new(&canbo);
    first.queue_op("member.upsert", m, h, json!({"full_name": "Lò Thị Mai"}));
    app.sync(&mut first).await;
    let mut devices = Vec::new();
    for _ in 0..2 {
        let mut d = Device::new(&canbo);
        app.sync(&mut d).await;
        devices.push(d);
    }
    let t = chrono::Utc::now().timestamp_millis() - 600_000;
    for (i, d) in devices.iter_mut().enumerate() {
        d.fixed_clock = Some(t + 1_000 * i as i64);
        let priority = ["quarantine_home", "testing_required"][i];
        d.queue_op("member.upsert", m, h, json!({ "priority": priority }));
        let status = ["refused", "installed"][i];
        d.queue_op(
            "adoption.set",
            m,
            h,
            json!({"campaign_id": camp, "status": status}),
        );
        app.sync(d).await;
    }
    let open = |f: &str| (f.to_owned(), "open".to_owned(), Value::Null);
    assert_eq!(
        books(app, &w.admin, &m.to_string()).await,
        [open("priority"), open("status")]
    );

    let path = format!("/api/v1/members/{m}");
    let read = app.get(&path, &w.admin).await;
    assert_eq!(read.body["priority"], "testing_required");
    let r = app
        .patch(&path, &w.admin, json!({"priority": "none"}), &read.etag())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let superseded = |f: &str| (f.to_owned(), "resolved".to_owned(), json!("superseded"));
    assert_eq!(
        books(app, &w.admin, &m.to_string()).await,
        [superseded("priority"), open("status")]
    );

    let adoption = format!("/api/v1/members/{m}/adoptions/{camp}");
    let version = app.get(&path, &w.admin).await.body["adoptions"][0]["version"].clone();
    let if_match = format!("\"{version}\"");
    let r = app
        .request(
            reqwest::Method::PUT,
            &adoption,
            Some(&w.admin),
            Some(json!({"status": "installed_with_help"})),
            &[("If-Match", &if_match)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "installed_with_help");
    assert_eq!(
        books(app, &w.admin, &m.to_string()).await,
        [superseded("priority"), superseded("status")]
    );
}

#[tokio::test]
async fn a_resolution_closes_the_other_conflicts_of_its_field_and_no_other() {
    let w = World::new().await;
    let app = &w.app;
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let h = new_household(app, &canbo, &w.v1).await;
    // Three concurrent edits of the notes (two lose), and two of the address (one loses).
    let mut devices = concurrent_edits(
        app,
        &canbo,
        h,
        &[
            (1_000, json!({"notes": "một", "address": "Bản Một"})),
            (2_000, json!({"notes": "hai"})),
            (3_000, json!({"notes": "ba", "address": "Bản Ba"})),
        ],
    )
    .await;
    let list = app.get("/api/v1/conflicts?status=open", &xa).await;
    assert_eq!(list.body["total"], 3, "{}", list.text);
    let notes: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["field"] == "notes")
        .collect();
    assert_eq!(notes.len(), 2);
    let chosen = notes.iter().find(|c| c["lost_value"] == "hai").unwrap();
    let id = chosen["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &xa,
            json!({"action": "take_other"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            &r.body["status"],
            &r.body["resolution"],
            &r.body["resolved_value"]
        ),
        (&json!("resolved"), &json!("take_other"), &json!("hai"))
    );
    let all = app.get("/api/v1/conflicts?per_page=500", &xa).await;
    let by_lost = |v: &str| {
        all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["lost_value"] == v)
            .map(|c| (c["status"].clone(), c["resolution"].clone()))
            .unwrap()
    };
    assert_eq!(by_lost("hai"), (json!("resolved"), json!("take_other")));
    assert_eq!(by_lost("một"), (json!("resolved"), json!("superseded")));
    assert_eq!(
        by_lost("Bản Một"),
        (json!("open"), Value::Null),
        "another field"
    );
    // The resolution is in the audit trail, once, about the household's village.
    let trail = app.get("/api/v1/audit?action=conflict_resolved", &xa).await;
    assert_eq!(trail.body["total"], 1, "{}", trail.text);
    let e = &trail.body["items"][0];
    assert_eq!(
        (&e["actor"], &e["subject"], &e["area_id"]),
        (&json!("xa"), &json!(format!("conflict/{id}")), &json!(w.v1))
    );
    // The resolution is a new version that devices receive.
    let d = &mut devices[2];
    app.sync(d).await;
    assert_eq!(d.copy[&format!("household/{h}")].1["notes"], "hai");
    assert_eq!(
        app.get(&format!("/api/v1/households/{h}"), &xa).await.body["notes"],
        "hai"
    );
    w.app.assert_tallies().await;
}
