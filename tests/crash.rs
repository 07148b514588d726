//! Crash safety: the server process is killed (SIGKILL) while batches are in flight and
//! restarted on the same database; the devices resend, and the final state is the one reached
//! without a crash.

mod common;

use common::client::{household, Device};
use common::process::Server;
use common::{TestDb, PASSWORD};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

const VILLAGE: &str = "0c0c0c0c-0000-4000-8000-000000000001";
const CAMPAIGN: &str = "0c0c0c0c-0000-4000-8000-0000000000c1";

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Result<(u16, Value)> {
    let mut req = client.post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// The same operations for every run: three devices, each registering households with
/// members, recording visits and editing, queued up front.
fn devices(token: &str) -> Vec<Device> {
    (0..3u64)
        .map(|i| {
            let mut d = Device::new(token);
            d.id = Uuid::from_u64_pair(0xdead, i);
            d.fixed_clock = Some(1_598_000_000_000 + i as i64 * 7);
            for k in 0..8u64 {
                let h = Uuid::from_u64_pair(i, k);
                d.queue_op(
                    "household.upsert",
                    h,
                    h,
                    household(VILLAGE, &format!("Hộ {i}-{k}"), "Bản Chu"),
                );
                let m = Uuid::from_u64_pair(i, 100 + k);
                d.queue_op(
                    "member.upsert",
                    m,
                    h,
                    json!({"full_name": format!("Thành viên {i}-{k}")}),
                );
                d.queue_op(
                    "adoption.set",
                    m,
                    h,
                    json!({"campaign_id": CAMPAIGN, "status": "installed"}),
                );
                d.queue_op(
                    "visit.record",
                    Uuid::from_u64_pair(i, 200 + k),
                    h,
                    json!({"campaign_id": CAMPAIGN,
                    "visited_at": "2020-08-21T03:04:05Z", "outcome": "met"}),
                );
                // Everyone edits the first household of device 0: concurrent edits.
                let shared = Uuid::from_u64_pair(0, 0);
                if i != 0 || k > 0 {
                    d.queue_op(
                        "household.upsert",
                        shared,
                        shared,
                        json!({"notes": format!("ghi chú {i}-{k}")}),
                    );
                }
            }
            d
        })
        .collect()
}

async fn scenario(crash_after: &[(usize, bool)]) -> (BTreeMap<String, Value>, i64, i64) {
    let db = TestDb::new();
    let mut server = Server::start(&db.url);
    let client = reqwest::Client::new();
    // The first admin, created directly in the database as `gocua user add` does.
    common::admin::create_admin(&db.pool(), PASSWORD).await;
    let (_, login) = post(
        &client,
        &server.base,
        "/api/v1/auth/login",
        None,
        json!({"username": "admin", "password": PASSWORD}),
    )
    .await
    .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let csv = std::fs::read_to_string(common::unit_data("units-2025-01-04.csv")).unwrap();
    let rows: String = csv
        .lines()
        .filter(|l| l.contains(",181,") || l.starts_with("Tỉnh Thành"))
        .map(|l| format!("{l}\n"))
        .collect();
    client
        .post(format!("{}/api/v1/areas/import", server.base))
        .bearer_auth(&token)
        .body(rows)
        .send()
        .await
        .unwrap();
    let commune: Value = client
        .get(format!("{}/api/v1/areas?code=06073", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let commune = commune["items"][0]["id"].as_str().unwrap().to_owned();
    post(
        &client,
        &server.base,
        "/api/v1/areas",
        Some(&token),
        json!({"id": VILLAGE, "parent_id": commune, "name": "Thôn Nà Pàn"}),
    )
    .await
    .unwrap();
    post(
        &client,
        &server.base,
        "/api/v1/campaigns",
        Some(&token),
        json!({"id": CAMPAIGN, "name": "Bluezone 2020",
        "starts_on": "2020-08-01", "ends_on": "2020-12-31"}),
    )
    .await
    .unwrap();

    let mut devs = devices(&token);
    let mut batch = 0usize;
    let mut crashes = crash_after.iter().copied().peekable();
    while devs.iter().any(|d| !d.queue.is_empty()) {
        for d in devs.iter_mut().filter(|d| !d.queue.is_empty()) {
            batch += 1;
            let body = d.push_body(5);
            if crashes.peek().map(|c| c.0) == Some(batch) {
                let (_, after_commit) = crashes.next().unwrap();
                let (c, base, t) = (client.clone(), server.base.clone(), token.clone());
                let in_flight = tokio::spawn(async move {
                    post(&c, &base, "/api/v1/sync/push", Some(&t), body).await
                });
                if after_commit {
                    // The batch committed; the process dies before the device hears back.
                    let (status, _) = in_flight.await.unwrap().unwrap();
                    assert_eq!(status, 200);
                    server.kill();
                } else {
                    // The batch is on its way when the process dies: it may commit or not.
                    tokio::task::yield_now().await;
                    server.kill();
                    let _ = in_flight.await;
                }
                server = Server::start(&db.url);
                continue;
            }
            match post(
                &client,
                &server.base,
                "/api/v1/sync/push",
                Some(&token),
                body,
            )
            .await
            {
                Ok((200, res)) => d.on_push(&res),
                other => panic!("push failed: {other:?}"),
            }
        }
    }
    let mut fresh = Device::new(&token);
    loop {
        let res: Value = client
            .get(format!("{}{}", server.base, fresh.pull_path(100)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !fresh.on_pull(&res) {
            break;
        }
    }
    let state: BTreeMap<String, Value> = fresh
        .copy
        .iter()
        .map(|(k, (_, v))| {
            let mut v = v.clone();
            v.as_object_mut().map(|o| o.remove("canvasser_id"));
            (k.clone(), v)
        })
        .collect();
    let conflicts: Value = client
        .get(format!(
            "{}/api/v1/conflicts?status=open&per_page=500",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for d in &devs {
        assert_eq!(d.acked.len() as i64, d.seqs_used(), "every op answered");
    }
    drop(server);
    (
        state,
        conflicts["total"].as_i64().unwrap(),
        devs.iter().map(|d| d.seqs_used()).sum(),
    )
}

#[tokio::test]
async fn killing_the_server_mid_stream_changes_nothing() {
    let (calm, calm_conflicts, ops) = scenario(&[]).await;
    let (crashed, crashed_conflicts, _) =
        scenario(&[(3, false), (8, true), (15, false), (21, true)]).await;
    assert_eq!(
        calm.keys().filter(|k| k.starts_with("household/")).count(),
        24
    );
    assert_eq!(
        calm.keys().filter(|k| k.starts_with("visit/")).count(),
        24,
        "every visit stored once"
    );
    assert_eq!(crashed, calm, "the same final state after four crashes");
    assert_eq!(crashed_conflicts, calm_conflicts);
    assert!(ops > 100);
}
