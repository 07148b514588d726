//! The load generator of the load test (`tests/load.rs`, a few seconds) and of the load
//! bench (`benches/load.rs`, in full): on a demo database served by one or several
//! servers, N devices of M canvassers (one demo village each, devices spread over the
//! servers) each loop: queue 1–10 mixed ops (a new household with a member and a status,
//! an edit of a household's notes, a visit), push them, pull what changed, wait; and the
//! demo's supervisors read their progress report and work lists meanwhile. It counts every
//! error and checks that nothing acknowledged is lost: every household whose creation was
//! acknowledged is in its device's copy after a last pull, and in the database's count.
#![allow(dead_code)]

use super::client::Device;
use gocua::rng::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The demo's password (`gocua::demo::PASSWORD`).
const PASSWORD: &str = gocua::demo::PASSWORD;

pub struct Plan {
    pub devices: usize,
    pub canvassers: usize,
    /// How long the devices loop.
    pub seconds: f64,
    /// A device waits up to this long between two syncs (uniformly from 0).
    pub max_pause_ms: u64,
    /// Supervisors read every this long (each of the demo's two); 0: no supervisors.
    pub supervisor_pause_ms: u64,
    /// Notified once every device has its first download (all at the same instant, a burst
    /// that is not the steady state) and the timed loops begin.
    pub started: Option<Arc<tokio::sync::Notify>>,
}

/// What the devices and supervisors saw.
#[derive(Default)]
pub struct Outcome {
    pub wall: f64,
    pub syncs: u64,
    pub ops: u64,
    pub errors: Vec<String>,
    /// Households whose creation was acknowledged.
    pub created: usize,
    /// Acknowledged households missing from the database's count.
    pub lost_in_database: u64,
    /// Acknowledged households missing from their device's copy after a last pull.
    pub lost_on_devices: usize,
    /// Client-side milliseconds per route ("push", "pull" for all pages of one sync, and
    /// the supervisors' reads by path).
    pub ms: BTreeMap<String, Vec<f64>>,
}

impl Outcome {
    fn record(&mut self, route: &str, ms: f64) {
        self.ms.entry(route.to_owned()).or_default().push(ms);
    }

    /// The `p` quantile (0 to 1) of a route's times, in ms.
    pub fn quantile(&self, route: &str, p: f64) -> f64 {
        let mut v = self.ms.get(route).cloned().unwrap_or_default();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
}

pub async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut r = c.request(method, &url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let res = r.send().await.map_err(|e| {
        let mut why = format!("{url}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why += &format!(": {s}");
            source = s.source();
        }
        why
    })?;
    let status = res.status();
    let text = res.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {}", &text[..text.len().min(300)]));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

pub async fn login(c: &reqwest::Client, base: &str, username: &str) -> String {
    let body = json!({"username": username, "password": PASSWORD});
    let v = send(
        c,
        reqwest::Method::POST,
        format!("{base}/api/v1/auth/login"),
        None,
        Some(&body),
    )
    .await
    .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

pub async fn get(c: &reqwest::Client, base: &str, path: &str, token: &str) -> Value {
    send(
        c,
        reqwest::Method::GET,
        format!("{base}{path}"),
        Some(token),
        None,
    )
    .await
    .unwrap()
}

/// Queues 1–10 ops: a new household with a member and a status, or an edit or a visit of a
/// household the device made. Returns the households created.
fn queue(d: &mut Device, r: &mut Rng, village: &str, campaign: &str, mine: &[Uuid]) -> Vec<Uuid> {
    let mut created = Vec::new();
    for _ in 0..1 + r.below(10) {
        let pick = (!mine.is_empty()).then(|| mine[r.below(mine.len() as u64) as usize]);
        match (r.below(4), pick) {
            (0, Some(h)) => {
                d.queue_op(
                    "household.upsert",
                    h,
                    h,
                    json!({"notes": format!("ghi chú {}", r.below(1000))}),
                );
            }
            (1, Some(h)) => {
                d.queue_op(
                    "visit.record",
                    Uuid::new_v4(),
                    h,
                    json!({"campaign_id": campaign, "visited_at": chrono::Utc::now().to_rfc3339(), "outcome": "met"}),
                );
            }
            _ => {
                let h = Uuid::new_v4();
                d.queue_op(
                    "household.upsert",
                    h,
                    h,
                    json!({"area_id": village, "head_name": "Hoàng Văn Mạnh", "address": format!("Số {}", r.below(500))}),
                );
                let m = Uuid::new_v4();
                d.queue_op(
                    "member.upsert",
                    m,
                    h,
                    json!({"full_name": "Nông Thị Hoa", "smartphone": "yes"}),
                );
                d.queue_op(
                    "adoption.set",
                    m,
                    h,
                    json!({"campaign_id": campaign, "status": "installed"}),
                );
                created.push(h);
            }
        }
    }
    created
}

/// Pulls every page; false (and an error recorded) when a page fails.
async fn pull_all(c: &reqwest::Client, base: &str, d: &mut Device, seen: &Mutex<Outcome>) -> bool {
    loop {
        let url = format!("{base}{}", d.pull_path(500));
        match send(c, reqwest::Method::GET, url, Some(&d.token.clone()), None).await {
            Ok(page) => {
                if !d.on_pull(&page) {
                    return true;
                }
            }
            Err(e) => {
                seen.lock().unwrap().errors.push(format!("pull: {e}"));
                return false;
            }
        }
    }
}

/// When the timed loops start: once every device and supervisor is ready.
struct Clock {
    start: Arc<tokio::sync::Barrier>,
    seconds: f64,
}

impl Clock {
    /// Waits for the others; answers when this loop ends.
    async fn start(&self) -> Instant {
        self.start.wait().await;
        Instant::now() + Duration::from_secs_f64(self.seconds)
    }
}

/// One device's loop, then a last pull that must hold every household it saw acknowledged.
#[allow(clippy::too_many_arguments)]
async fn device(
    c: reqwest::Client,
    base: String,
    token: String,
    village: String,
    campaign: String,
    clock: Clock,
    max_pause_ms: u64,
    seed: u64,
    seen: Arc<Mutex<Outcome>>,
) {
    let mut d = Device::new(&token);
    let mut r = Rng(seed);
    let mut mine: Vec<Uuid> = Vec::new();
    let mut pending: Vec<Uuid> = Vec::new();
    let mut acked: Vec<Uuid> = Vec::new();
    // A first pull, as a device does when it is set up: its copy of the village.
    pull_all(&c, &base, &mut d, &seen).await;
    let until = clock.start().await;
    while Instant::now() < until {
        pending.extend(queue(&mut d, &mut r, &village, &campaign, &mine));
        let ops = d.queue.len() as u64;
        let body = d.push_body(100);
        let t = Instant::now();
        let url = format!("{base}/api/v1/sync/push");
        let answer = send(&c, reqwest::Method::POST, url, Some(&token), Some(&body)).await;
        let push_ms = t.elapsed().as_secs_f64() * 1000.0;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                seen.lock().unwrap().errors.push(format!("push: {e}"));
                continue;
            }
        };
        for res in answer["results"].as_array().into_iter().flatten() {
            match res["status"].as_str() {
                Some("applied" | "duplicate" | "gap") => {}
                other => seen
                    .lock()
                    .unwrap()
                    .errors
                    .push(format!("op {}: {other:?} {res}", res["seq"])),
            }
        }
        d.on_push(&answer);
        // A household is acknowledged once no op of it waits in the queue.
        let queued: Vec<&str> = d
            .queue
            .iter()
            .filter_map(|op| op["household_id"].as_str())
            .collect();
        let (done, wait): (Vec<Uuid>, Vec<Uuid>) = pending
            .drain(..)
            .partition(|h| !queued.contains(&h.to_string().as_str()));
        pending = wait;
        mine.extend(&done);
        acked.extend(&done);
        let t = Instant::now();
        let ok = pull_all(&c, &base, &mut d, &seen).await;
        let pull_ms = t.elapsed().as_secs_f64() * 1000.0;
        {
            let mut s = seen.lock().unwrap();
            s.record("push", push_ms);
            if ok {
                s.record("pull", pull_ms);
            }
            s.syncs += 1;
            s.ops += ops;
        }
        tokio::time::sleep(Duration::from_millis(r.below(max_pause_ms.max(1)))).await;
    }
    let missing = if pull_all(&c, &base, &mut d, &seen).await {
        acked
            .iter()
            .filter(|h| !d.copy.contains_key(&format!("household/{h}")))
            .count()
    } else {
        acked.len()
    };
    let mut s = seen.lock().unwrap();
    s.created += acked.len();
    s.lost_on_devices += missing;
}

/// A supervisor reading their progress report and the first page of two work lists, in a
/// loop, until the devices are done.
async fn supervisor(
    c: reqwest::Client,
    base: String,
    token: String,
    campaign: String,
    clock: Clock,
    pause_ms: u64,
    seen: Arc<Mutex<Outcome>>,
) {
    let until = clock.start().await;
    let reads = [
        (
            "progress",
            format!("/api/v1/reports/progress?campaign={campaign}"),
        ),
        (
            "unvisited",
            format!("/api/v1/lists/unvisited?campaign={campaign}"),
        ),
        (
            "priority-pending",
            format!("/api/v1/lists/priority-pending?campaign={campaign}"),
        ),
    ];
    while Instant::now() < until {
        for (route, path) in &reads {
            let t = Instant::now();
            let res = send(
                &c,
                reqwest::Method::GET,
                format!("{base}{path}"),
                Some(&token),
                None,
            )
            .await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let mut s = seen.lock().unwrap();
            match res {
                Ok(_) => s.record(route, ms),
                Err(e) => s.errors.push(e),
            }
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
}

/// Runs the plan against the servers at `bases` (all on one demo database).
pub async fn run(bases: &[String], plan: &Plan) -> Outcome {
    // Idle connections are dropped before the server's keep-alive (5 s) would close them:
    // a request sent on a connection the server is closing fails before it is read, which
    // a phone would retry, but this generator counts as an error.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.devices + 8)
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let first = &bases[0];
    let admin = login(&c, first, "admin").await;
    let villages: Vec<String> = get(
        &c,
        first,
        "/api/v1/areas?level=village&per_page=500",
        &admin,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .iter()
        // The demo's villages ("Thôn …"): the load bench adds others of its own.
        .filter(|v| v["name"].as_str().is_some_and(|n| n.starts_with("Thôn ")))
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let campaign = get(&c, first, "/api/v1/campaigns", &admin).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let total = |c: reqwest::Client, admin: String| async move {
        get(&c, first, "/api/v1/households?per_page=1", &admin).await["total"]
            .as_u64()
            .unwrap()
    };
    let before = total(c.clone(), admin.clone()).await;
    let mut users = Vec::new();
    for i in 0..plan.canvassers {
        let village = villages[i % villages.len()].clone();
        let username = format!("load{i}");
        let body = json!({"username": username, "password": PASSWORD,
            "role": "canvasser", "area_ids": [village]});
        send(
            &c,
            reqwest::Method::POST,
            format!("{first}/api/v1/users"),
            Some(&admin),
            Some(&body),
        )
        .await
        .unwrap();
        users.push((login(&c, first, &username).await, village));
    }
    let seen = Arc::new(Mutex::new(Outcome::default()));
    let mut tasks = Vec::new();
    let supervisors = if plan.supervisor_pause_ms > 0 {
        &["huyen", "xa"][..]
    } else {
        &[]
    };
    // The devices' first downloads, then everyone starts at once.
    let start = Arc::new(tokio::sync::Barrier::new(
        plan.devices + supervisors.len() + 1,
    ));
    for (k, name) in supervisors.iter().enumerate() {
        let base = bases[k % bases.len()].clone();
        let token = login(&c, &base, name).await;
        tasks.push(tokio::spawn(supervisor(
            c.clone(),
            base,
            token,
            campaign.clone(),
            Clock {
                start: start.clone(),
                seconds: plan.seconds,
            },
            plan.supervisor_pause_ms,
            seen.clone(),
        )));
    }
    for k in 0..plan.devices {
        let (token, village) = users[k % users.len()].clone();
        tasks.push(tokio::spawn(device(
            c.clone(),
            bases[k % bases.len()].clone(),
            token,
            village,
            campaign.clone(),
            Clock {
                start: start.clone(),
                seconds: plan.seconds,
            },
            plan.max_pause_ms,
            k as u64 + 1,
            seen.clone(),
        )));
    }
    start.wait().await;
    let t0 = Instant::now();
    if let Some(started) = &plan.started {
        started.notify_one();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let after = total(c.clone(), admin.clone()).await;
    let mut out = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    out.wall = wall;
    out.lost_in_database = (before + out.created as u64).saturating_sub(after);
    out
}
