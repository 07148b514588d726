//! The report tests' oracle: the test's own model of what it sent (households, persons,
//! statuses and visits, each with its device's clock), the scenario that sends it through
//! sync, and the figures every report must show, computed from the model alone, never by
//! the server's queries.

use super::common::client::Device;
use super::common::World;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use gocua::rng::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

pub const INSTALLED: &[&str] = &["installed", "installed_with_help", "already_installed"];
pub const STATUSES: &[&str] = &[
    "not_yet",
    "installed",
    "installed_with_help",
    "already_installed",
    "refused",
    "no_smartphone",
    "incompatible",
    "later",
];
pub const OUTCOMES: &[&str] = &[
    "met",
    "not_home",
    "refused",
    "come_back_later",
    "moved_away",
];
pub const PRIORITIES: &[&str] = &[
    "quarantine_centralized",
    "quarantine_home",
    "testing_required",
];

#[derive(Clone)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub priority: &'static str,
    pub smartphone: &'static str,
    /// Status, when (ms), by whom (canvasser index).
    pub status: Option<(&'static str, i64, usize)>,
    pub deleted: bool,
}

#[derive(Clone)]
pub struct Visit {
    pub id: Uuid,
    pub at: i64,
    pub outcome: &'static str,
    pub by: usize,
    pub campaign: usize,
    pub point: Option<(f64, f64)>,
}

#[derive(Clone)]
pub struct Home {
    pub id: Uuid,
    pub village: usize,
    pub address: String,
    pub point: Option<(f64, f64)>,
    pub deleted: bool,
    pub people: Vec<Person>,
    pub visits: Vec<Visit>,
}

impl Home {
    pub fn live_people(&self) -> impl Iterator<Item = &Person> {
        let deleted = self.deleted;
        self.people.iter().filter(move |p| !p.deleted && !deleted)
    }
    /// The latest visit in campaign 0, by time then id.
    pub fn last_visit(&self) -> Option<&Visit> {
        self.visits
            .iter()
            .filter(|v| v.campaign == 0)
            .max_by_key(|v| (v.at, v.id.to_string()))
    }
}

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn at(s: &str) -> i64 {
    ms(s.parse::<DateTime<Utc>>().unwrap())
}

/// The Vietnam (UTC+7) day of an instant.
pub fn vn_day(t: i64) -> NaiveDate {
    (Utc.timestamp_millis_opt(t).unwrap() + Duration::hours(7)).date_naive()
}

pub fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_000.0_f64;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((b.0 - a.0).to_radians() / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

pub fn pct(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| ((part as f64) * 100.0 / whole as f64 * 100.0).round() / 100.0)
}

pub fn close(a: &Value, b: Option<f64>, what: &str) {
    match b {
        None => assert!(a.is_null(), "{what}: expected none, got {a}"),
        Some(b) => {
            let a = a
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: expected {b}, got {a}"));
            assert!((a - b).abs() < 0.011, "{what}: expected {b}, got {a}");
        }
    }
}

/// Everything the test sent, and the server it went to.
pub struct Scenario {
    pub w: World,
    /// Campaign 0 (the one reported on) and campaign 1 (another, whose visits must not count).
    pub campaigns: [String; 2],
    /// v1, v2 (Hoa Thám), v_other (Hưng Đạo), with their names.
    pub villages: Vec<(String, String)>,
    pub homes: Vec<Home>,
    /// Canvasser usernames and ids: c1 works Hoa Thám, c2 Hưng Đạo.
    pub canvassers: Vec<(String, String)>,
    /// Supervisor tokens: `huyen` (district), `xa` (Hoa Thám).
    pub huyen: String,
    pub xa: String,
    pub c1: String,
}

pub const CAMPAIGN_START: &str = "2020-08-01";
pub const CAMPAIGN_END: &str = "2020-08-31";

pub async fn scenario(seed: u64) -> Scenario {
    let w = World::new().await;
    let app = &w.app;
    let mut campaigns = Vec::new();
    for (name, from, to) in [
        ("Bluezone 2020", CAMPAIGN_START, CAMPAIGN_END),
        ("PC-Covid 2021", "2021-01-01", "2021-12-31"),
    ] {
        let r = app
            .post(
                "/api/v1/campaigns",
                &w.admin,
                json!({"name": name, "starts_on": from, "ends_on": to}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        campaigns.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let c = &campaigns[0];
    // District: 60% of registered persons; Hoa Thám: 50% of smartphone owners; v1: 6 installs.
    // Hưng Đạo and v2 have none of their own.
    for (area, kind, value) in [
        (&w.district, "rate_registered", 60.0),
        (&w.hoa_tham, "rate_smartphone", 50.0),
        (&w.v1, "count", 6.0),
    ] {
        let r = app
            .put(
                &format!("/api/v1/campaigns/{c}/targets/{area}"),
                &w.admin,
                json!({"kind": kind, "value": value}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let huyen = app
        .user(&w.admin, "huyen", "supervisor", &[&w.district])
        .await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let c1 = app.user(&w.admin, "c1", "canvasser", &[&w.v1, &w.v2]).await;
    let c2 = app.user(&w.admin, "c2", "canvasser", &[&w.v_other]).await;
    let mut canvassers = Vec::new();
    for name in ["c1", "c2"] {
        let r = app.get("/api/v1/users?per_page=500", &w.admin).await;
        let id = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        canvassers.push((name.to_owned(), id));
    }
    let villages = vec![
        (w.v1.clone(), "Thôn Nà Pàn".to_owned()),
        (w.v2.clone(), "Thôn Khuổi Hẩu".to_owned()),
        (w.v_other.clone(), "Thôn Bản Chu".to_owned()),
    ];

    // The model: households, persons, statuses and visits with their times.
    let mut rng = Rng(seed);
    let day0 = at("2020-08-01T00:00:00Z");
    let mut homes = Vec::new();
    for (vi, _) in villages.iter().enumerate() {
        for k in 0..(6 + rng.below(4)) {
            let by = usize::from(vi == 2);
            let point = rng.chance(85).then(|| {
                (
                    21.9 + rng.below(1000) as f64 / 10_000.0,
                    106.3 + rng.below(1000) as f64 / 10_000.0,
                )
            });
            let mut people = Vec::new();
            for n in 0..(1 + rng.below(5)) {
                let status = rng.chance(70).then(|| {
                    (
                        rng.pick(STATUSES),
                        day0 + rng.below(31 * 24 * 3600) as i64 * 1000,
                        by,
                    )
                });
                people.push(Person {
                    id: Uuid::new_v4(),
                    name: format!("Người {vi}-{k}-{n}"),
                    priority: if rng.chance(30) {
                        rng.pick(PRIORITIES)
                    } else {
                        "none"
                    },
                    smartphone: rng.pick(&["yes", "yes", "no", "unknown"]),
                    status,
                    deleted: false,
                });
            }
            let mut visits = Vec::new();
            for _ in 0..rng.below(4) {
                let far = rng.chance(15);
                visits.push(Visit {
                    id: Uuid::new_v4(),
                    at: day0 + rng.below(31 * 24 * 60) as i64 * 60_000,
                    outcome: rng.pick(OUTCOMES),
                    by,
                    campaign: usize::from(rng.chance(10)),
                    point: point.map(|(la, lo)| {
                        if far {
                            (la + 0.01, lo)
                        } else {
                            (la + 0.0003, lo)
                        }
                    }),
                });
            }
            homes.push(Home {
                id: Uuid::new_v4(),
                village: vi,
                address: format!("Số {}, {}", k + 1, villages[vi].1),
                point,
                deleted: false,
                people,
                visits,
            });
        }
    }
    // Edge cases placed by hand: an install before the campaign (counts on its first day),
    // one just after 17:00 UTC (the next day in Vietnam), a deleted household and a deleted
    // installed person, a visit in the other campaign only.
    homes[0].people[0].status = Some(("installed", at("2020-07-28T09:00:00Z"), 0));
    homes[1].people[0].status = Some(("installed_with_help", at("2020-08-05T17:30:00Z"), 0));
    homes[2].deleted = true;
    homes[3].people[0].status = Some(("installed", at("2020-08-06T03:00:00Z"), 0));
    homes[3].people[0].deleted = true;
    homes[4].visits = vec![Visit {
        id: Uuid::new_v4(),
        at: at("2020-08-07T02:00:00Z"),
        outcome: "met",
        by: 0,
        campaign: 1,
        point: None,
    }];
    // Activity thresholds on 2020-08-20 (c1): homes 5..=8 of village 0 get a point; visits at
    // 290 m and 310 m from it, and visits of other households 59, 60 and 61 s apart.
    let base = at("2020-08-20T02:00:00Z");
    let point = (21.95, 106.35);
    let north = |m: f64| (point.0 + m / 111_195.0, point.1);
    for h in &mut homes[5..=8] {
        h.point = Some(point);
        h.deleted = false;
    }
    let plan: [(usize, i64, f64); 6] = [
        (5, 0, 290.0),
        (6, 59_000, 310.0),
        (7, 119_000, 0.0),
        (8, 180_000, 0.0),
        (8, 185_000, 0.0), // same household again: not flagged
        (5, 246_000, 0.0),
    ];
    for (h, dt, m) in plan {
        homes[h].visits.push(Visit {
            id: Uuid::new_v4(),
            at: base + dt,
            outcome: "met",
            by: 0,
            campaign: 0,
            point: Some(north(m)),
        });
    }

    // Everything goes in through the canvassers' devices, in time order per device.
    let mut devices = [Device::new(&c1), Device::new(&c2)];
    let created = at("2020-07-20T00:00:00Z");
    let mut ops: Vec<(usize, i64, &str, Uuid, Uuid, Value)> = Vec::new();
    for h in &homes {
        let by = usize::from(h.village == 2);
        let mut data = json!({"area_id": villages[h.village].0, "address": h.address,
            "head_name": format!("Chủ hộ {}", h.address)});
        if let Some((la, lo)) = h.point {
            data["lat"] = json!(la);
            data["lon"] = json!(lo);
        }
        ops.push((by, created, "household.upsert", h.id, h.id, data));
        for p in &h.people {
            ops.push((
                by,
                created,
                "member.upsert",
                p.id,
                h.id,
                json!({"household_id": h.id,
                "full_name": p.name, "priority": p.priority, "smartphone": p.smartphone}),
            ));
            if let Some((status, t, who)) = p.status {
                ops.push((
                    who,
                    t,
                    "adoption.set",
                    p.id,
                    h.id,
                    json!({"campaign_id": campaigns[0], "status": status}),
                ));
            }
        }
        for v in &h.visits {
            let mut data = json!({"household_id": h.id, "campaign_id": campaigns[v.campaign],
                "visited_at": Utc.timestamp_millis_opt(v.at).unwrap().to_rfc3339(),
                "outcome": v.outcome});
            if let Some((la, lo)) = v.point {
                data["lat"] = json!(la);
                data["lon"] = json!(lo);
            }
            ops.push((v.by, v.at, "visit.record", v.id, h.id, data));
        }
        let end = at("2020-09-10T00:00:00Z");
        for p in h.people.iter().filter(|p| p.deleted) {
            ops.push((by, end, "member.delete", p.id, h.id, json!({})));
        }
        if h.deleted {
            ops.push((by, end + 1, "household.delete", h.id, h.id, json!({})));
        }
    }
    ops.sort_by_key(|o| o.1);
    for (by, t, kind, entity, home, data) in ops {
        devices[by].fixed_clock = Some(t);
        devices[by].queue_op(kind, entity, home, data);
    }
    for d in devices.iter_mut() {
        app.sync(d).await;
        assert!(
            d.acked.values().all(|r| r["status"] == "applied"),
            "every op applies: {:?}",
            d.acked.values().find(|r| r["status"] != "applied")
        );
    }
    assert!(app.assert_tallies().await > 0);
    Scenario {
        w,
        campaigns: [campaigns[0].clone(), campaigns[1].clone()],
        villages,
        homes,
        canvassers,
        huyen,
        xa,
        c1,
    }
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Counts {
    pub households: i64,
    pub visited: i64,
    pub persons: i64,
    pub smartphone: i64,
    pub installed: i64,
    pub priority: i64,
    pub priority_installed: i64,
}

impl Scenario {
    pub fn counts(&self, villages: &[usize]) -> Counts {
        let mut c = Counts::default();
        for h in self
            .homes
            .iter()
            .filter(|h| villages.contains(&h.village) && !h.deleted)
        {
            c.households += 1;
            c.visited += i64::from(h.visits.iter().any(|v| v.campaign == 0));
            for p in h.live_people() {
                let installed = p.status.is_some_and(|(s, _, _)| INSTALLED.contains(&s));
                c.persons += 1;
                c.smartphone += i64::from(p.smartphone == "yes");
                c.installed += i64::from(installed);
                c.priority += i64::from(p.priority != "none");
                c.priority_installed += i64::from(installed && p.priority != "none");
            }
        }
        c
    }

    pub fn path(&self, p: &str) -> String {
        format!("{p}campaign={}", self.campaigns[0])
    }

    pub fn home(&self, id: &str) -> &Home {
        self.homes.iter().find(|h| h.id.to_string() == id).unwrap()
    }
}

/// Checks one progress row against counts and a target (kind, value, inherited).
pub fn check_row(row: &Value, c: Counts, target: Option<(&str, f64, bool)>) {
    let name = row["name"].as_str().unwrap().to_owned();
    assert_eq!(row["households"], c.households, "{name} households");
    assert_eq!(row["households_visited"], c.visited, "{name} visited");
    assert_eq!(row["persons"], c.persons, "{name} persons");
    assert_eq!(row["smartphone_owners"], c.smartphone, "{name} smartphone");
    assert_eq!(row["installed"], c.installed, "{name} installed");
    assert_eq!(row["priority_total"], c.priority, "{name} priority");
    assert_eq!(row["priority_installed"], c.priority_installed, "{name}");
    assert_eq!(
        row["priority_pending"],
        c.priority - c.priority_installed,
        "{name}"
    );
    let base = match target {
        Some(("rate_smartphone", _, _)) => c.smartphone,
        _ => c.persons,
    };
    assert_eq!(row["denominator_value"], base, "{name} denominator");
    close(
        &row["rate"],
        pct(c.installed, base),
        &format!("{name} rate"),
    );
    match target {
        None => {
            assert!(row["target"].is_null(), "{name}: {row}");
            assert!(row["remaining"].is_null());
        }
        Some((kind, value, inherited)) => {
            assert_eq!(row["target"]["kind"], kind, "{name}");
            assert_eq!(row["target"]["value"], value, "{name}");
            assert_eq!(row["target_inherited"], inherited, "{name}");
            let need = if kind == "count" {
                value as i64
            } else {
                // Smallest whole number of installs reaching the rate.
                (0..=base)
                    .find(|n| *n as f64 * 100.0 >= value * base as f64)
                    .unwrap()
            };
            assert_eq!(row["target_installs"], need, "{name} target installs");
            assert_eq!(row["remaining"], (need - c.installed).max(0), "{name}");
            close(
                &row["target_progress"],
                pct(c.installed, need),
                &format!("{name} progress"),
            );
        }
    }
}

pub fn child<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["area_id"] == id)
        .unwrap_or_else(|| panic!("{id} among the children"))
}

/// Expected activity rows: (day, username) -> (visits, households, installs, median, far, too soon).
pub type ActivityRows = BTreeMap<(String, String), (i64, i64, i64, Option<f64>, i64, i64)>;

pub fn expected_activity(s: &Scenario, villages: &[usize], max_m: f64, gap_s: i64) -> ActivityRows {
    let mut visits: HashMap<(NaiveDate, usize), Vec<(&Visit, &Home)>> = HashMap::new();
    for h in s.homes.iter().filter(|h| villages.contains(&h.village)) {
        for v in h.visits.iter().filter(|v| v.campaign == 0) {
            visits.entry((vn_day(v.at), v.by)).or_default().push((v, h));
        }
    }
    let mut installs: HashMap<(NaiveDate, usize), i64> = HashMap::new();
    for h in s.homes.iter().filter(|h| villages.contains(&h.village)) {
        for p in h.live_people() {
            if let Some((st, t, by)) = p.status {
                if INSTALLED.contains(&st) {
                    *installs.entry((vn_day(t), by)).or_default() += 1;
                    visits.entry((vn_day(t), by)).or_default();
                }
            }
        }
    }
    let mut out = ActivityRows::new();
    for ((day, by), mut vs) in visits {
        vs.sort_by_key(|(v, _)| (v.at, v.id.to_string()));
        let homes: BTreeSet<Uuid> = vs.iter().map(|(_, h)| h.id).collect();
        let mut gaps: Vec<f64> = vs
            .windows(2)
            .map(|p| (p[1].0.at - p[0].0.at) as f64 / 60_000.0)
            .collect();
        gaps.sort_by(f64::total_cmp);
        let median = match gaps.len() {
            0 => None,
            n if n % 2 == 1 => Some(gaps[n / 2]),
            n => Some((gaps[n / 2 - 1] + gaps[n / 2]) / 2.0),
        };
        let far = vs
            .iter()
            .filter(|(v, h)| match (v.point, h.point) {
                (Some(a), Some(b)) => haversine(a, b) > max_m,
                _ => false,
            })
            .count() as i64;
        let soon = vs
            .windows(2)
            .filter(|p| p[0].1.id != p[1].1.id && p[1].0.at - p[0].0.at < gap_s * 1000)
            .count() as i64;
        out.insert(
            (day.to_string(), s.canvassers[by].0.clone()),
            (
                vs.len() as i64,
                homes.len() as i64,
                installs.get(&(day, by)).copied().unwrap_or(0),
                median,
                far,
                soon,
            ),
        );
    }
    out
}

pub fn activity_rows(body: &Value) -> ActivityRows {
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["day"].as_str().unwrap().to_owned(),
                    r["username"].as_str().unwrap().to_owned(),
                ),
                (
                    r["visits"].as_i64().unwrap(),
                    r["households"].as_i64().unwrap(),
                    r["installs"].as_i64().unwrap(),
                    r["median_minutes_between_visits"].as_f64(),
                    r["far_visits"].as_i64().unwrap(),
                    r["too_soon_visits"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

pub fn same_activity(got: &ActivityRows, want: &ActivityRows) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in want {
        let g = got[k];
        assert_eq!(
            (g.0, g.1, g.2, g.4, g.5),
            (w.0, w.1, w.2, w.4, w.5),
            "{k:?}"
        );
        close(
            &json!(g.3),
            w.3.map(|m| (m * 100.0).round() / 100.0),
            &format!("{k:?} median"),
        );
    }
}
