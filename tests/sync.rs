//! The sync protocol's invariants, one test each, over real HTTP (see docs/SYNC.md).

mod common;

use common::client::{household, Device};
use common::{backend, World, PASSWORD};
use diesel::{ExpressionMethods, RunQueryDsl};
use gocua::domain::Time;
use gocua::store::weeks::Week;
use serde_json::{json, Value};
use uuid::Uuid;

fn statuses(r: &common::Res) -> Vec<String> {
    r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn exactly_once_and_replays_answer_the_same() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let token = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let mut d = Device::new(&token);
    let h = Uuid::new_v4();
    let m = Uuid::new_v4();
    d.queue_op(
        "household.upsert",
        h,
        h,
        household(&w.v1, "Hoàng Văn Mạnh", "Nà Pàn"),
    );
    d.queue_op(
        "member.upsert",
        m,
        h,
        json!({"full_name": "Hoàng Thị Hoa", "priority": "quarantine_home"}),
    );
    d.queue_op(
        "adoption.set",
        m,
        h,
        json!({"campaign_id": camp, "status": "installed_with_help"}),
    );
    d.queue_op(
        "visit.record",
        Uuid::new_v4(),
        h,
        json!({"campaign_id": camp, "visited_at": "2020-08-21T03:04:05Z", "outcome": "met"}),
    );
    d.queue_op("member.upsert", Uuid::new_v4(), h, json!({"full_name": ""}));
    let body = d.push_body(100);

    let first = app.post("/api/v1/sync/push", &token, body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        statuses(&first),
        ["applied", "applied", "applied", "applied", "rejected"]
    );
    assert_eq!(first.body["last_seq"], 5);
    assert_eq!(
        first.body["results"][4]["error"]["code"],
        "validation_failed"
    );
    assert_eq!(
        first.body["results"][4]["error"]["fields"][0]["field"],
        "full_name"
    );
    assert_eq!(first.body["results"][2]["household_version"], 3);

    // The response was lost: the device resends the same batch, twice.
    for _ in 0..2 {
        let again = app.post("/api/v1/sync/push", &token, body.clone()).await;
        assert_eq!(
            again.body, first.body,
            "a replay answers the stored results"
        );
    }
    let detail = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(detail.body["version"], 3, "nothing applied twice");
    assert_eq!(detail.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        detail.body["members"][0]["adoptions"][0]["status"],
        "installed_with_help"
    );
    assert_eq!(app.count("visits").await, 1);
    // The results of the batch's five seqs, in one row.
    assert_eq!(app.stored_results().await, 5);
    assert_eq!(app.count("device_batches").await, 1);

    // The same seq with another payload is a client bug: refused, nothing changed.
    let mut other = body.clone();
    other["ops"][0]["data"]["head_name"] = json!("Người khác");
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": [other["ops"][0].clone()]}),
        )
        .await;
    assert_eq!(r.body["results"][0]["status"], "rejected");
    assert_eq!(r.body["results"][0]["error"]["code"], "seq_reused");
    let detail = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(detail.body["head_name"], "Hoàng Văn Mạnh");
    assert_eq!(detail.body["version"], 3);

    // Results stored one row per op, as before migration 2026-11-28-000003, answer the same
    // replays once migrated to one row per batch: undo the migration (its down script
    // splits the batch into per-op rows) and those after it, then run them again.
    let per_op = app
        .db(|conn| {
            migrations_redone(conn, "20261128000003", |conn| {
                gocua::with_conn!(conn, |c| {
                    #[derive(diesel::QueryableByName)]
                    struct Op {
                        #[diesel(sql_type = diesel::sql_types::BigInt)]
                        seq: i64,
                        #[diesel(sql_type = diesel::sql_types::Text)]
                        result: String,
                    }
                    let ops: Vec<Op> = diesel::RunQueryDsl::load(
                        diesel::sql_query("SELECT seq, result FROM device_ops ORDER BY seq"),
                        c,
                    )
                    .unwrap();
                    ops.into_iter()
                        .map(|o| (o.seq, serde_json::from_str::<Value>(&o.result).unwrap()))
                        .collect::<Vec<_>>()
                })
            })
        })
        .await;
    let want: Vec<(i64, Value)> = (1..=5)
        .map(|seq| (seq, first.body["results"][seq as usize - 1].clone()))
        .collect();
    assert_eq!(per_op, want);
    assert_eq!(app.count("device_batches").await, 5);
    let again = app.post("/api/v1/sync/push", &token, body.clone()).await;
    assert_eq!(again.body, first.body, "a replay after the migration");
}

#[tokio::test]
async fn ops_apply_in_order_and_nothing_past_a_gap() {
    let w = World::new().await;
    let app = &w.app;
    let token = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let mut d = Device::new(&token);
    let h = Uuid::new_v4();
    d.queue_op("household.upsert", h, h, household(&w.v1, "A", "1"));
    d.queue_op("household.upsert", h, h, json!({"head_name": "B"}));
    d.queue_op("household.upsert", h, h, json!({"head_name": "C"}));
    d.queue_op("household.upsert", h, h, json!({"head_name": "D"}));
    let ops = d.push_body(10)["ops"].as_array().unwrap().clone();

    // Seq 3 and 4 arrive first: a gap, nothing applied.
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": [ops[2], ops[3]]}),
        )
        .await;
    assert_eq!(statuses(&r), ["gap", "gap"]);
    assert_eq!(r.body["last_seq"], 0);
    assert_eq!(app.count("households").await, 0);
    // 1 and 3: 1 applies, 3 is past a gap.
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": [ops[0], ops[2]]}),
        )
        .await;
    assert_eq!(statuses(&r), ["applied", "gap"]);
    assert_eq!(r.body["last_seq"], 1);
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": ops}),
        )
        .await;
    assert_eq!(statuses(&r), ["applied", "applied", "applied", "applied"]);
    assert_eq!(r.body["last_seq"], 4);
    let detail = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(detail.body["head_name"], "D", "applied in seq order");

    // Seqs out of order inside one batch are a client bug, refused whole.
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": [ops[1], ops[0]]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let r = app
        .post(
            "/api/v1/sync/push",
            &token,
            json!({"device_id": d.id, "ops": [{"op_id": Uuid::new_v4()}]}),
        )
        .await;
    assert_eq!(
        r.field_codes(),
        vec![("ops[0].seq".into(), "required".into())]
    );
}

#[tokio::test]
async fn concurrent_edits_merge_by_hlc_and_keep_the_loser() {
    let w = World::new().await;
    let app = &w.app;
    let a_token = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
    let b_token = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
    let mut a = Device::new(&a_token);
    let mut b = Device::new(&b_token);
    // Simulated clocks a few minutes back, so that the HLC order is the one written here.
    let t = chrono::Utc::now().timestamp_millis() - 300_000;
    a.fixed_clock = Some(t);
    let h = Uuid::new_v4();
    a.queue_op(
        "household.upsert",
        h,
        h,
        household(&w.v1, "Hoàng Văn Mạnh", "Nà Pàn"),
    );
    app.sync(&mut a).await;
    app.sync(&mut b).await;
    assert_eq!(b.seen[&h], 1);

    // Both edit offline; B edits later (a higher HLC), and also changes the notes.
    a.fixed_clock = Some(t + 1_000);
    b.fixed_clock = Some(t + 6_000);
    a.queue_op(
        "household.upsert",
        h,
        h,
        json!({"head_name": "Hoàng Văn Mạnh (A)", "phone": "0912345678"}),
    );
    b.queue_op(
        "household.upsert",
        h,
        h,
        json!({"head_name": "Hoàng Văn Mạnh (B)", "notes": "cách ly"}),
    );
    // B arrives first, A second: A's head_name loses, its phone applies.
    let rb = app.push(&mut b, 10).await;
    assert_eq!(statuses(&rb), ["applied"]);
    let ra = app.push(&mut a, 10).await;
    assert_eq!(statuses(&ra), ["merged"]);
    let conflict_ids = ra.body["results"][0]["conflict_ids"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(conflict_ids.len(), 1);

    let d = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(d.body["head_name"], "Hoàng Văn Mạnh (B)");
    assert_eq!(d.body["phone"], "0912345678");
    assert_eq!(d.body["notes"], "cách ly");

    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let list = app.get("/api/v1/conflicts?status=open", &xa).await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    let c = &list.body["items"][0];
    assert_eq!(c["id"], conflict_ids[0]);
    assert_eq!(
        (c["field"].as_str(), c["reason"].as_str()),
        (Some("head_name"), Some("concurrent_edit"))
    );
    assert_eq!(c["lost_value"], "Hoàng Văn Mạnh (A)");
    assert_eq!(c["lost_by"], a.id.to_string());
    assert_eq!(c["kept_value"], "Hoàng Văn Mạnh (B)");
    // Other supervisors do not see it; canvassers cannot review.
    let other = app
        .user(&w.admin, "xa2", "supervisor", &[&w.hung_dao])
        .await;
    assert_eq!(app.get("/api/v1/conflicts", &other).await.body["total"], 0);
    app.get("/api/v1/conflicts", &a_token)
        .await
        .assert_problem(403, "forbidden");

    // Taking the other value writes a new version that syncs out.
    let id = c["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &xa,
            json!({"action": "take_other"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "resolved");
    assert_eq!(r.body["resolved_value"], "Hoàng Văn Mạnh (A)");
    app.post(
        &format!("/api/v1/conflicts/{id}/resolve"),
        &xa,
        json!({"action": "keep"}),
    )
    .await
    .assert_problem(409, "already_resolved");
    app.sync(&mut b).await;
    let (_, data) = &b.copy[&format!("household/{h}")];
    assert_eq!(data["head_name"], "Hoàng Văn Mạnh (A)");
    assert_eq!(b.seen[&h], 4);
    w.app.assert_tallies().await;
}

#[tokio::test]
async fn the_same_ops_in_any_order_give_the_same_state_and_conflicts() {
    async fn run(order_ab: bool) -> (Value, Vec<(String, Value)>) {
        let w = World::new().await;
        let app = &w.app;
        let a_token = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
        let b_token = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
        let h: Uuid = "6f1f6f3e-8d5b-4c1e-9f51-2f0b1d2c3a4b".parse().unwrap();
        let r = app
            .post(
                "/api/v1/households",
                &w.admin,
                json!({"id": h, "area_id": w.v1, "head_name": "X", "address": "Y"}),
            )
            .await;
        assert_eq!(r.status, 201);
        let mut a = Device::new(&a_token);
        let mut b = Device::new(&b_token);
        a.id = "00000000-0000-4000-8000-00000000000a".parse().unwrap();
        b.id = "00000000-0000-4000-8000-00000000000b".parse().unwrap();
        app.pull_all(&mut a).await;
        app.pull_all(&mut b).await;
        // Fixed stamps, so that both runs carry the same ops.
        let op = |d: &Device, seq: i64, hlc: &str, data: Value| {
            json!({"seq": seq, "op_id": Uuid::new_v4(), "type": "household.upsert", "entity_id": h, "household_id": h,
                "base_version": d.seen[&h], "hlc": hlc, "data": data})
        };
        let ops_a = vec![
            op(
                &a,
                1,
                "2020-08-21T03:00:00.000Z-0000",
                json!({"head_name": "A1", "notes": "a"}),
            ),
            op(
                &a,
                2,
                "2020-08-21T03:00:05.000Z-0000",
                json!({"address": "A2"}),
            ),
        ];
        let ops_b = vec![
            op(
                &b,
                1,
                "2020-08-21T03:00:02.000Z-0000",
                json!({"head_name": "B1", "address": "B1"}),
            ),
            op(
                &b,
                2,
                "2020-08-21T03:00:02.000Z-0000",
                json!({"notes": "b"}),
            ),
        ];
        let send = |d: Uuid, ops: Vec<Value>, token: String| {
            let app = &w.app;
            async move {
                app.post(
                    "/api/v1/sync/push",
                    &token,
                    json!({"device_id": d, "ops": ops}),
                )
                .await
            }
        };
        if order_ab {
            send(a.id, ops_a, a_token.clone()).await;
            send(b.id, ops_b, b_token.clone()).await;
        } else {
            send(b.id, ops_b, b_token.clone()).await;
            send(a.id, ops_a, a_token.clone()).await;
        }
        let d = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
        let state = json!({"head_name": d.body["head_name"], "address": d.body["address"], "notes": d.body["notes"]});
        let c = app.get("/api/v1/conflicts?per_page=100", &w.admin).await;
        let mut lost: Vec<(String, Value)> = c.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["field"].as_str().unwrap().to_owned(),
                    c["lost_value"].clone(),
                )
            })
            .collect();
        lost.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.to_string().cmp(&y.1.to_string())));
        (state, lost)
    }
    let (s1, c1) = run(true).await;
    let (s2, c2) = run(false).await;
    assert_eq!(
        s1,
        json!({"head_name": "B1", "address": "A2", "notes": "b"})
    );
    assert_eq!(s1, s2);
    assert_eq!(
        c1,
        vec![
            ("address".into(), json!("B1")),
            ("head_name".into(), json!("A1")),
            ("notes".into(), json!("a"))
        ]
    );
    assert_eq!(c1, c2);
}

#[tokio::test]
async fn deletes_reach_every_device_and_stale_updates_do_not_resurrect() {
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let a_token = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
    let b_token = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
    let mut a = Device::new(&a_token);
    let mut b = Device::new(&b_token);
    let h = Uuid::new_v4();
    let m = Uuid::new_v4();
    a.queue_op("household.upsert", h, h, household(&w.v1, "A", "1"));
    a.queue_op("member.upsert", m, h, json!({"full_name": "M"}));
    a.queue_op(
        "adoption.set",
        m,
        h,
        json!({"campaign_id": camp, "status": "installed"}),
    );
    app.sync(&mut a).await;
    app.sync(&mut b).await;
    assert!(b.copy.contains_key(&format!("member/{m}")));
    assert_eq!(b.copy.len(), 3);

    a.queue_op("household.delete", h, h, json!({}));
    app.sync(&mut a).await;
    // B edits the household and its member offline, unaware of the delete.
    b.queue_op("household.upsert", h, h, json!({"head_name": "B"}));
    b.queue_op("member.upsert", m, h, json!({"full_name": "M2"}));
    let r = app.push(&mut b, 10).await;
    assert_eq!(statuses(&r), ["rejected", "rejected"]);
    assert_eq!(r.body["results"][0]["error"]["code"], "deleted");
    assert_eq!(
        r.body["results"][0]["conflict_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.get(&format!("/api/v1/households/{h}"), &w.admin)
        .await
        .assert_problem(404, "deleted");
    let c = app.get("/api/v1/conflicts?status=open", &w.admin).await;
    assert_eq!(c.body["total"], 2);
    let lost: Vec<&Value> = c.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["lost_value"])
        .collect();
    assert!(lost.contains(&&json!({"head_name": "B"})), "{}", c.text);

    app.pull_all(&mut b).await;
    assert!(b.copy.is_empty(), "the tombstone reached B: {:?}", b.copy);
    // A deleted-record conflict can only be dismissed.
    let id = c.body["items"][0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &w.admin,
            json!({"action": "take_other"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let r = app
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &w.admin,
            json!({"action": "keep"}),
        )
        .await;
    assert_eq!(r.body["status"], "resolved");
    w.app.assert_tallies().await;
}

#[tokio::test]
async fn devices_receive_only_their_scope_and_a_reset_when_it_changes() {
    let w = World::new().await;
    let app = &w.app;
    let mine = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let mut d = Device::new(&mine);
    let inside = app.household(&w.admin, &w.v1, "Trong", "1").await;
    let outside = app.household(&w.admin, &w.v_other, "Ngoài", "2").await;
    app.household(&w.admin, &w.v2, "Bên cạnh", "3").await;
    app.pull_all(&mut d).await;
    let keys: Vec<&String> = d.copy.keys().collect();
    assert_eq!(
        keys,
        vec![&format!("household/{}", inside["id"].as_str().unwrap())]
    );
    assert_eq!(d.resets, 1);

    // Later writes outside the scope never arrive; a household moved out arrives as a delete.
    let out_id = outside["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/households/{out_id}"),
        &w.admin,
        json!({"notes": "x"}),
        "\"1\"",
    )
    .await;
    let in_id = inside["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/households/{in_id}"),
            &w.admin,
            json!({"area_id": w.v2}),
            "\"1\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.pull_all(&mut d).await;
    assert!(d.copy.is_empty(), "{:?}", d.copy);

    // The device's areas change: the next pull resets and re-downloads the new scope.
    let me = app.get("/api/v1/me", &mine).await;
    let uid = me.body["id"].as_str().unwrap();
    app.put(
        &format!("/api/v1/users/{uid}/areas"),
        &w.admin,
        json!({"area_ids": [w.v2]}),
    )
    .await;
    let page = app.get(&d.pull_path(100), &mine).await;
    assert_eq!(page.body["reset"], true);
    d.on_pull(&page.body);
    app.pull_all(&mut d).await;
    assert_eq!(d.resets, 2);
    assert_eq!(d.copy.len(), 2, "both households of v2: {:?}", d.copy);
    let areas: Vec<&str> = page.body["reference"]["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(areas, vec![w.v2.as_str()]);

    // Pushing into another's village is rejected, not applied.
    let h = Uuid::new_v4();
    d.queue_op("household.upsert", h, h, household(&w.v_other, "X", "Y"));
    let r = app.push(&mut d, 10).await;
    assert_eq!(r.body["results"][0]["error"]["code"], "out_of_scope");
}

#[tokio::test]
async fn a_device_belongs_to_one_user_and_batches_are_bounded() {
    let w = World::new().await;
    let app = &w.app;
    let a = app.user(&w.admin, "cb.a", "canvasser", &[&w.v1]).await;
    let b = app.user(&w.admin, "cb.b", "canvasser", &[&w.v1]).await;
    let mut d = Device::new(&a);
    let h = Uuid::new_v4();
    d.queue_op("household.upsert", h, h, household(&w.v1, "A", "1"));
    app.push(&mut d, 10).await;
    let r = app
        .post(
            "/api/v1/sync/push",
            &b,
            json!({"device_id": d.id, "ops": []}),
        )
        .await;
    r.assert_problem(403, "device_not_yours");
    app.get(&format!("/api/v1/sync/pull?device_id={}", d.id), &b)
        .await
        .assert_problem(403, "device_not_yours");

    let ops: Vec<Value> = (1..=501).map(|s| json!({"seq": s})).collect();
    let r = app
        .post(
            "/api/v1/sync/push",
            &a,
            json!({"device_id": d.id, "ops": ops}),
        )
        .await;
    r.assert_problem(413, "batch_too_large");
    assert!(
        r.body["detail"].as_str().unwrap().contains("500 ops"),
        "{}",
        r.text
    );
    let huge = json!({"device_id": d.id, "ops": [{"seq": 2, "data": {"notes": "x".repeat(5 * 1024 * 1024)}}]});
    let r = app.post("/api/v1/sync/push", &a, huge).await;
    r.assert_problem(413, "batch_too_large");
    app.get(
        &format!("/api/v1/sync/pull?device_id={}&cursor=nonsense", d.id),
        &a,
    )
    .await
    .assert_problem(400, "bad_cursor");
    assert_eq!(app.stored_results().await, 1);
    let _ = PASSWORD;
}

#[tokio::test]
async fn a_transient_failure_answers_503_and_applies_nothing() {
    let app = common::TestApp::spawn_with(|s| {
        s.pool_size = 2;
        s.pool_timeout_seconds = 1;
    })
    .await;
    let admin = app.admin().await;
    app.import_districts(&admin, &["181"]).await;
    let commune = app.area(&admin, "06073").await;
    let v1 = app.village(&admin, &commune, "Thôn Nà Pàn").await;
    let mut d = Device::new(&admin);
    let h = Uuid::new_v4();
    d.queue_op("household.upsert", h, h, household(&v1, "A", "1"));
    // Every connection of the server's pool is taken: the database is out of reach.
    let pool = app.pool.clone();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _a = pool.get().unwrap();
        let _b = pool.get().unwrap();
        ready_tx.send(()).unwrap();
        hold_rx.recv().unwrap();
    });
    tokio::task::spawn_blocking(move || ready_rx.recv().unwrap())
        .await
        .unwrap();
    let r = app.post("/api/v1/sync/push", &admin, d.push_body(10)).await;
    r.assert_problem(503, "unavailable");
    assert_eq!(r.headers["retry-after"], "5");
    hold_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(app.count("households").await, 0);
    assert_eq!(app.stored_results().await, 0);
    let r = app.push(&mut d, 10).await;
    assert_eq!(statuses(&r), ["applied"]);
}

#[tokio::test]
async fn concurrent_batches_on_the_same_households_neither_deadlock_nor_fail() {
    let w = World::new().await;
    let app = &w.app;
    let token = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let households: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut seed = Device::new(&token);
    for h in &households {
        seed.queue_op("household.upsert", *h, *h, household(&w.v1, "Chung", "1"));
    }
    app.sync(&mut seed).await;
    // Eight devices each edit all five households, in different orders, at the same time.
    let mut devices: Vec<Device> = (0..8).map(|_| Device::new(&token)).collect();
    for (i, d) in devices.iter_mut().enumerate() {
        app.pull_all(d).await;
        for k in 0..5 {
            let h = households[(i + k * 3) % 5];
            d.queue_op(
                "household.upsert",
                h,
                h,
                json!({"notes": format!("thiết bị {i}")}),
            );
            d.queue_op(
                "member.upsert",
                Uuid::new_v4(),
                h,
                json!({"full_name": format!("Người {i}-{k}")}),
            );
        }
    }
    let pushes = devices
        .iter()
        .map(|d| app.post("/api/v1/sync/push", &token, d.push_body(100)));
    let results = futures_util::future::join_all(pushes).await;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            statuses(r).iter().all(|s| s == "applied" || s == "merged"),
            "{}",
            r.text
        );
    }
    // Every op took effect once: 8 × 5 members, and 1 + 8 × 2 versions per household.
    assert_eq!(app.count("members").await, 40);
    for h in &households {
        let d = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
        assert_eq!(d.body["version"], 17, "{}", d.text);
        assert_eq!(d.body["members"].as_array().unwrap().len(), 8);
    }
    w.app.assert_tallies().await;
}

#[tokio::test]
async fn a_device_clock_ahead_of_the_server_does_not_win() {
    let w = World::new().await;
    let app = &w.app;
    let token = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let h = app.household(&w.admin, &w.v1, "Gốc", "1").await;
    let h: Uuid = h["id"].as_str().unwrap().parse().unwrap();
    let mut ahead = Device::new(&token);
    let mut honest = Device::new(&token);
    app.pull_all(&mut ahead).await;
    app.pull_all(&mut honest).await;
    // One hour ahead: its stamp is capped at the server's receive time.
    ahead.clock_skew_ms = 3_600_000;
    ahead.queue_op(
        "household.upsert",
        h,
        h,
        json!({"head_name": "Đồng hồ nhanh"}),
    );
    app.push(&mut ahead, 10).await;
    honest.queue_op(
        "household.upsert",
        h,
        h,
        json!({"head_name": "Đồng hồ đúng"}),
    );
    let r = app.push(&mut honest, 10).await;
    assert_eq!(statuses(&r), ["applied"], "{}", r.text);
    let d = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(d.body["head_name"], "Đồng hồ đúng");
    let device = gocua::domain::DeviceId(ahead.id);
    let max_skew = || {
        app.db(move |conn| {
            use diesel::prelude::*;
            use gocua::db::schema::devices;
            gocua::with_conn!(conn, |c| devices::table
                .find(device)
                .select(devices::max_skew_ms)
                .first::<i64>(c))
            .unwrap()
        })
    };
    let skew = max_skew().await;
    assert!(skew > 3_500_000, "the skew is recorded: {skew}");
    // A later batch with a right clock keeps the largest skew seen.
    ahead.clock_skew_ms = 0;
    ahead.queue_op("household.upsert", h, h, json!({"notes": "đã chỉnh giờ"}));
    let r = app.push(&mut ahead, 10).await;
    assert_eq!(statuses(&r), ["applied"], "{}", r.text);
    assert_eq!(max_skew().await, skew);
}

#[tokio::test]
async fn a_cursor_older_than_the_pruned_log_starts_over() {
    let w = World::new().await;
    let app = &w.app;
    let mut d = Device::new(&w.admin);
    let a = app.household(&w.admin, &w.v1, "Sẽ xoá", "1").await;
    app.pull_all(&mut d).await;
    assert_eq!((d.resets, d.copy.len()), (1, 1));
    let b = app.household(&w.admin, &w.v1, "Mới", "2").await;
    let a_id = a["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/households/{a_id}"), &w.admin, "\"1\"")
            .await
            .status,
        204
    );

    // The log so far, tombstone included, was written 15 days ago; a household registered
    // now is in it too. The log is pruned to a week before the device comes back.
    let back = Time(chrono::Utc::now() - chrono::Duration::days(15));
    app.db(move |conn| {
        use gocua::db::schema::changes;
        gocua::with_conn!(conn, |c| diesel::update(changes::table)
            .set(changes::created_at.eq(back))
            .execute(c))
        .unwrap()
    })
    .await;
    let c = app.household(&w.admin, &w.v1, "Còn lại", "4").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gocua"))
        .args(["sync", "prune", "--days", "7"])
        .env("GOCUA_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Pruned"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(app.count("changes").await, 1, "the recent row stays");
    if backend() == "postgres" {
        // The old week was dropped whole, after its rows were moved out of the default
        // partition (the update put them there); this week and those ahead are ready.
        let weeks = app
            .db(|conn| gocua::store::weeks::list(conn).unwrap())
            .await;
        let now = Week::of(Time::now());
        assert!(!weeks.contains(&Week::of(back)), "{weeks:?}");
        assert_eq!(
            weeks.iter().filter(|w| **w >= now).count() as i64,
            gocua::store::weeks::WEEKS_AHEAD + 1,
            "{weeks:?}"
        );
        assert_eq!(app.count("changes_default").await, 0);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("(1 weeks dropped whole"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let page = app.get(&d.pull_path(100), &w.admin).await;
    assert_eq!(page.body["reset"], true, "{}", page.text);
    d.on_pull(&page.body);
    app.pull_all(&mut d).await;
    let mut keys: Vec<&String> = d.copy.keys().collect();
    keys.sort();
    let mut kept = [
        format!("household/{}", b["id"].as_str().unwrap()),
        format!("household/{}", c["id"].as_str().unwrap()),
    ];
    kept.sort();
    assert_eq!(
        keys,
        kept.iter().collect::<Vec<_>>(),
        "the deleted household is gone"
    );
    // Later changes flow as usual after the new start.
    app.household(&w.admin, &w.v1, "Sau", "3").await;
    app.pull_all(&mut d).await;
    assert_eq!(d.copy.len(), 3);
    assert_eq!(d.resets, 2);
}

#[tokio::test]
async fn on_postgres_the_log_is_kept_by_week_and_a_migrated_log_lands_in_its_weeks() {
    if backend() != "postgres" {
        return;
    }
    let w = World::new().await;
    let app = &w.app;
    app.household(&w.admin, &w.v1, "Cũ", "1").await;
    let back = Time(chrono::Utc::now() - chrono::Duration::days(20));
    let rows = app.count("changes").await;
    // One row of three weeks ago: no week is made for it, so it lands in the default
    // partition.
    app.db(move |conn| {
        use diesel::QueryDsl;
        use gocua::db::schema::changes;
        gocua::with_conn!(conn, |c| {
            let first: Option<i64> = changes::table
                .select(diesel::dsl::min(changes::id))
                .first(c)
                .unwrap();
            diesel::update(changes::table.filter(changes::id.eq(first.unwrap())))
                .set(changes::created_at.eq(back))
                .execute(c)
        })
        .unwrap();
    })
    .await;
    assert_eq!(app.count("changes_default").await, 1);

    // Undone and done again, the migration copies the log into its weeks, and the start
    // makes the weeks ahead.
    let weeks = app
        .db(|conn| {
            migrations_redone(conn, "20261207000016", |_| ());
            // As every start does after the migrations (`store::migrate`).
            conn.transaction(gocua::store::weeks::prepare).unwrap();
            gocua::store::weeks::list(conn).unwrap()
        })
        .await;
    assert_eq!(app.count("changes").await, rows);
    assert_eq!(app.count("changes_default").await, 0);
    assert!(weeks.contains(&Week::of(back)), "{weeks:?}");
    assert!(weeks.contains(&Week::of(Time::now())), "{weeks:?}");
    let in_old_week = app
        .number(format!(
            "SELECT COUNT(*) AS n FROM {}",
            Week::of(back).table()
        ))
        .await;
    assert_eq!(in_old_week, 1);
    // The log goes on after the migration: a new write lands in this week.
    app.household(&w.admin, &w.v1, "Mới", "2").await;
    assert_eq!(app.count("changes").await, rows + 1);
    assert_eq!(app.count("changes_default").await, 0);
}

#[tokio::test]
async fn a_first_download_sends_the_same_households_in_the_same_order_whatever_the_page_size() {
    // On PostgreSQL a small scope's page is read village by village and a large one's in id
    // order over the table (`bulk::live_households_after`): pages of 3 and of 100 go the two
    // ways here, and must send the same.
    let w = World::new().await;
    let app = &w.app;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let mut want = Vec::new();
    for i in 0..12 {
        let v = if i % 3 == 0 { &w.v2 } else { &w.v1 };
        let h = app.household(&w.admin, v, &format!("Hộ {i}"), "1").await;
        want.push(h["id"].as_str().unwrap().to_owned());
    }
    for i in 0..3 {
        app.household(&w.admin, &w.v_other, &format!("Ngoài {i}"), "1")
            .await;
    }
    let gone = want.remove(4);
    let r = app
        .delete(&format!("/api/v1/households/{gone}"), &w.admin, "\"1\"")
        .await;
    assert_eq!(r.status, 204);
    want.sort();
    for limit in [3, 100] {
        let mut d = Device::new(&xa);
        let mut sent = Vec::new();
        loop {
            let page = app.get(&d.pull_path(limit), &xa).await;
            assert_eq!(page.status, 200, "{}", page.text);
            for ch in page.body["changes"].as_array().unwrap() {
                if ch["entity"] == "household" {
                    sent.push(ch["id"].as_str().unwrap().to_owned());
                }
            }
            if !d.on_pull(&page.body) {
                break;
            }
        }
        assert_eq!(sent, want, "pages of {limit}");
    }
}

/// Undoes the migrations down to `version`, that one included (later ones first), runs
/// `meanwhile` on the database as it was before it, then runs them all again.
fn migrations_redone<T>(
    conn: &mut gocua::db::Conn<'_>,
    version: &str,
    meanwhile: impl FnOnce(&mut gocua::db::Conn<'_>) -> T,
) -> T {
    use diesel_migrations::MigrationHarness;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(common::backend());
    let migrations = diesel_migrations::FileBasedMigrations::from_path(dir).unwrap();
    gocua::with_conn!(conn, |c| while c
        .revert_last_migration(migrations.clone())
        .unwrap()
        .to_string()
        != version
    {});
    let out = meanwhile(conn);
    gocua::with_conn!(conn, |c| {
        c.run_pending_migrations(migrations.clone()).unwrap();
    });
    out
}

/// A pull answer with its cursor decoded and the log head in it left out. On PostgreSQL a
/// first page's head is the next transaction id when no transaction runs, which any write in
/// another database of the cluster (another test's) moves on between two requests.
fn same_but_head(answer: &Value) -> Value {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(answer["cursor"].as_str().unwrap())
        .unwrap();
    let mut cursor: Value = serde_json::from_slice(&raw).unwrap();
    assert!(cursor["pos"].is_array(), "{cursor}");
    cursor.as_object_mut().unwrap().remove("pos");
    let mut answer = answer.clone();
    answer["cursor"] = cursor;
    answer
}

/// The body of a pull answer sent in `coding`, decoded.
fn decoded(headers: &reqwest::header::HeaderMap, raw: &[u8]) -> Value {
    use std::io::Read;
    let mut out = Vec::new();
    match headers.get("content-encoding").map(|v| v.to_str().unwrap()) {
        Some("br") => {
            brotli::Decompressor::new(raw, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(raw)
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => out = raw.to_vec(),
    }
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test]
async fn a_large_pull_page_is_compressed_as_the_phone_takes_it_and_a_compact_page_says_the_same() {
    let w = World::new().await;
    let app = &w.app;
    let mut maker = Device::new(&w.admin);
    for i in 0..120 {
        let h = Uuid::new_v4();
        maker.queue_op(
            "household.upsert",
            h,
            h,
            household(&w.v1, &format!("Hoàng Văn Mạnh {i}"), &format!("Số {i}")),
        );
        maker.queue_op(
            "member.upsert",
            Uuid::new_v4(),
            h,
            json!({"full_name": format!("Hoàng Thị Lan {i}"), "birth_year": 1980}),
        );
    }
    let r = app
        .post("/api/v1/sync/push", &w.admin, maker.push_body(500))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A new device's first page, as each kind of client asks for it.
    let device = Uuid::new_v4();
    let admin = w.admin.as_str();
    let page = |format: &'static str, coding: &'static str| {
        let path = format!("/api/v1/sync/pull?device_id={device}&limit=500{format}");
        async move {
            let res = app
                .client
                .get(format!("{}{path}", app.base))
                .bearer_auth(admin)
                .header("accept-encoding", coding)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let headers = res.headers().clone();
            let raw = res.bytes().await.unwrap();
            let body = decoded(&headers, &raw);
            (headers, raw.len(), body)
        }
    };
    let (plain_headers, plain_bytes, plain) = page("", "identity").await;
    assert!(plain_headers.get("content-encoding").is_none());
    assert_eq!(plain["changes"].as_array().unwrap().len(), 240);
    for (coding, name) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
        let (headers, bytes, body) = page("", coding).await;
        assert_eq!(headers["content-encoding"], name);
        assert_eq!(headers["vary"], "accept-encoding");
        assert_eq!(
            same_but_head(&body),
            same_but_head(&plain),
            "{name} carries the same answer"
        );
        assert!(
            bytes * 5 < plain_bytes,
            "{name}: {bytes} of {plain_bytes} bytes"
        );
    }

    // The compact form: the same households, in fewer bytes, nothing in `changes`.
    let (_, compact_bytes, compact) = page("&format=compact", "identity").await;
    assert_eq!(compact["changes"], json!([]));
    let units = &compact["units"];
    assert_eq!(units["rows"].as_array().unwrap().len(), 120);
    assert_eq!(
        units["uuid_columns"],
        json!(["id", "area_id", "campaign_id", "canvasser_id"])
    );
    assert_eq!(units["columns"]["household"][0], "id");
    assert_eq!(units["columns"]["household"][1], "version");
    let first = &plain["changes"][0];
    let row = &units["rows"][0];
    use base64::Engine;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(row[0].as_str().unwrap())
        .unwrap();
    assert_eq!(
        Uuid::from_slice(&id).unwrap().to_string(),
        first["id"].as_str().unwrap()
    );
    let head = units["columns"]["household"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "head_name")
        .unwrap();
    assert_eq!(row[head], first["data"]["head_name"]);
    let members = row.as_array().unwrap()[units["columns"]["household"].as_array().unwrap().len()]
        .as_array()
        .unwrap();
    assert_eq!(members.len(), 1, "the household's member is in its row");
    assert!(
        compact_bytes * 2 < plain_bytes,
        "{compact_bytes} of {plain_bytes} bytes"
    );
    assert_eq!(
        same_but_head(&compact)["cursor"],
        same_but_head(&plain)["cursor"]
    );

    // A format the server does not know is refused, and the device's state is unchanged.
    let r = app
        .get(
            &format!("/api/v1/sync/pull?device_id={device}&format=tiny"),
            &w.admin,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(r.text.contains("`full` or `compact`"), "{}", r.text);
}

#[tokio::test]
async fn pruning_keeps_each_devices_latest_batch_so_that_its_replay_answers_the_same() {
    let w = World::new().await;
    let app = &w.app;
    // Device d pushes two batches, device e one.
    let mut d = Device::new(&w.admin);
    let h = Uuid::new_v4();
    d.queue_op(
        "household.upsert",
        h,
        h,
        household(&w.v1, "Nông Văn Đức", "Số 5"),
    );
    let first = d.push_body(500);
    let r = app.post("/api/v1/sync/push", &w.admin, first.clone()).await;
    assert_eq!(statuses(&r), ["applied"], "{}", r.text);
    d.on_push(&r.body);
    d.queue_op("household.upsert", h, h, json!({"notes": "hẹn chiều"}));
    d.queue_op("household.upsert", h, h, json!({"phone": "0912345678"}));
    let second = d.push_body(500);
    let latest = app
        .post("/api/v1/sync/push", &w.admin, second.clone())
        .await;
    assert_eq!(statuses(&latest), ["applied", "applied"], "{}", latest.text);
    let mut e = Device::new(&w.admin);
    let g = Uuid::new_v4();
    e.queue_op(
        "household.upsert",
        g,
        g,
        household(&w.v2, "Vi Thị Mai", "Số 9"),
    );
    let r = app
        .post("/api/v1/sync/push", &w.admin, e.push_body(500))
        .await;
    assert_eq!(statuses(&r), ["applied"], "{}", r.text);
    assert_eq!(app.count("device_batches").await, 3);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gocua"))
        .args(["sync", "prune", "--days", "0"])
        .env("GOCUA_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("and 1 op batches"), "{said}");
    assert_eq!(
        app.count("device_batches").await,
        2,
        "each device's latest is kept"
    );

    // The latest batch, sent again, gets its first answers; the pruned one is refused,
    // changing nothing.
    let again = app.post("/api/v1/sync/push", &w.admin, second).await;
    assert_eq!(again.body["results"], latest.body["results"]);
    let old = app.post("/api/v1/sync/push", &w.admin, first).await;
    assert_eq!(old.body["results"][0]["status"], "rejected", "{}", old.text);
    assert_eq!(
        old.body["results"][0]["error"]["code"], "answer_pruned",
        "{}",
        old.text
    );
    let hh = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(
        (
            hh.body["version"].as_i64(),
            &hh.body["notes"],
            &hh.body["phone"]
        ),
        (Some(3), &json!("hẹn chiều"), &json!("0912345678")),
        "{}",
        hh.text
    );
    let audit = app.get("/api/v1/audit?action=sync_pruned", &w.admin).await;
    let detail: Value =
        serde_json::from_str(audit.body["items"][0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["batches"], 1, "{}", audit.text);
}

#[tokio::test]
async fn a_pull_carries_the_targets_in_its_areas_of_every_campaign() {
    let w = World::new().await;
    let app = &w.app;
    let first = w.campaign().await;
    let r = app
        .post(
            "/api/v1/campaigns",
            &w.admin,
            json!({"name": "Tiêm chủng 2021", "starts_on": "2021-03-01", "ends_on": "2021-12-31"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.body["id"].as_str().unwrap().to_owned();
    // The commune and its villages are in the supervisor's areas; the district above it and
    // the village of another commune are not.
    for (campaign, area) in [
        (&first, &w.v1),
        (&first, &w.hoa_tham),
        (&first, &w.v_other),
        (&first, &w.district),
        (&second, &w.v2),
        (&second, &w.hung_dao),
    ] {
        let t = app
            .put(
                &format!("/api/v1/campaigns/{campaign}/targets/{area}"),
                &w.admin,
                json!({"kind": "count", "value": 10}),
            )
            .await;
        assert_eq!(t.status, 200, "{}", t.text);
    }
    let xa = app
        .user(&w.admin, "xa.targets", "supervisor", &[&w.hoa_tham])
        .await;
    let d = Device::new(&xa);
    let page = app.get(&d.pull_path(500), &xa).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let reference = &page.body["reference"];
    let campaigns: Vec<&str> = reference["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(campaigns.len(), 2, "{reference}");
    // By campaign as the campaigns are listed, then the commune before its village.
    let mut want: Vec<(&str, &str)> = Vec::new();
    for c in &campaigns {
        if *c == first {
            want.extend([(first.as_str(), w.hoa_tham.as_str()), (&first, &w.v1)]);
        } else {
            want.push((second.as_str(), w.v2.as_str()));
        }
    }
    let got: Vec<(&str, &str)> = reference["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["campaign_id"].as_str().unwrap(),
                t["area_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want, "{reference}");
}

/// Pulls every page (of `limit` changes) a device is owed; the households changed, in the
/// order the pages listed them.
async fn pull_households(app: &common::TestApp, d: &mut Device, limit: i64) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let page = app.get(&d.pull_path(limit), &d.token.clone()).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for ch in page.body["changes"].as_array().unwrap() {
            if ch["entity"] == "household" {
                seen.push(ch["id"].as_str().unwrap().to_owned());
            }
        }
        if !d.on_pull(&page.body) {
            return seen;
        }
    }
}

#[tokio::test]
async fn the_log_reads_in_its_order_for_a_scope_of_few_areas_and_of_many() {
    // On PostgreSQL a scope of up to 32 areas reads the log area by area and merges, a larger
    // one in one statement: both list the same changes in the same order, in pages of 2.
    let w = World::new().await;
    let app = &w.app;
    for i in 0..33 {
        app.village(&w.admin, &w.hoa_tham, &format!("Thôn {i}"))
            .await;
    }
    let few = app
        .user(&w.admin, "cb.two", "canvasser", &[&w.v1, &w.v2])
        .await;
    let many = app
        .user(&w.admin, "xa.many", "supervisor", &[&w.hoa_tham])
        .await;
    let writer = app
        .user(&w.admin, "cb.writer", "canvasser", &[&w.v1, &w.v2])
        .await;
    let mut readers = [Device::new(&few), Device::new(&many)];
    for d in &mut readers {
        assert!(pull_households(app, d, 2).await.is_empty());
    }
    let mut author = Device::new(&writer);
    assert!(pull_households(app, &mut author, 2).await.is_empty());
    let mut order = Vec::new();
    for round in 0..3 {
        for v in [&w.v2, &w.v1] {
            let h = Uuid::new_v4();
            author.queue_op(
                "household.upsert",
                h,
                h,
                household(v, &format!("Chủ hộ {round}"), "Bản"),
            );
            order.push(h.to_string());
        }
        let r = app
            .post("/api/v1/sync/push", &writer, author.push_body(100))
            .await;
        assert_eq!(statuses(&r), ["applied", "applied"], "{}", r.text);
        author.on_push(&r.body);
    }
    // One in a village outside both scopes.
    let h = Uuid::new_v4();
    let mut outsider = Device::new(&w.admin);
    outsider.queue_op(
        "household.upsert",
        h,
        h,
        household(&w.v_other, "Chủ hộ khác", "Bản"),
    );
    let r = app
        .post("/api/v1/sync/push", &w.admin, outsider.push_body(100))
        .await;
    assert_eq!(statuses(&r), ["applied"], "{}", r.text);
    for d in &mut readers {
        assert_eq!(pull_households(app, d, 2).await, order);
    }
    // The author's own batch markers come through: its pull says every op was seen.
    assert_eq!(pull_households(app, &mut author, 2).await, order);
    assert_eq!(author.last_seq, 6);
}

#[tokio::test]
async fn a_batch_that_creates_and_deletes_counts_in_the_tallies_as_its_rows_say() {
    // Households a push creates are counted from the rows written, not from the database:
    // deleted rows, the latest visit and the installs of live members only.
    let w = World::new().await;
    let app = &w.app;
    let camp = w.campaign().await;
    let token = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let mut d = Device::new(&token);
    let (h, gone) = (Uuid::new_v4(), Uuid::new_v4());
    let (kept, left, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    d.queue_op(
        "household.upsert",
        h,
        h,
        household(&w.v1, "Hoàng Văn Mạnh", "Nà Pàn"),
    );
    for (m, name, priority) in [
        (kept, "Hoàng Thị Hoa", "quarantine_home"),
        (left, "Hoàng Văn Đức", "testing_required"),
    ] {
        d.queue_op(
            "member.upsert",
            m,
            h,
            json!({"full_name": name, "priority": priority, "smartphone": "yes"}),
        );
        d.queue_op(
            "adoption.set",
            m,
            h,
            json!({"campaign_id": camp, "status": "installed"}),
        );
    }
    d.queue_op("member.delete", left, h, json!({}));
    for (at, outcome) in [
        ("2020-08-21T03:04:05Z", "met"),
        ("2020-08-22T03:04:05Z", "not_home"),
    ] {
        d.queue_op(
            "visit.record",
            Uuid::new_v4(),
            h,
            json!({"campaign_id": camp, "visited_at": at, "outcome": outcome}),
        );
    }
    d.queue_op(
        "household.upsert",
        gone,
        gone,
        household(&w.v1, "Lý Văn Pao", "Bản Chu"),
    );
    d.queue_op(
        "member.upsert",
        other,
        gone,
        json!({"full_name": "Lý Thị Mai"}),
    );
    d.queue_op("household.delete", gone, gone, json!({}));
    let r = app
        .post("/api/v1/sync/push", &token, d.push_body(100))
        .await;
    assert!(statuses(&r).iter().all(|s| s == "applied"), "{}", r.text);
    app.assert_tallies().await;
    let v1: Uuid = w.v1.parse().unwrap();
    let c: Uuid = camp.parse().unwrap();
    let t = app
        .db(|conn| gocua::store::tallies::read_all(conn).unwrap())
        .await;
    let village = t.villages[&gocua::domain::AreaId(v1)];
    assert_eq!(
        (
            village.households,
            village.persons,
            village.smartphone,
            village.priority
        ),
        (1, 1, 1, 1)
    );
    let key = (gocua::domain::AreaId(v1), gocua::domain::CampaignId(c));
    let in_campaign = t.campaigns[&key];
    assert_eq!(
        (
            in_campaign.visited,
            in_campaign.revisit,
            in_campaign.installed,
            in_campaign.priority_installed
        ),
        (1, 1, 1, 1)
    );
}
