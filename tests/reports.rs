//! Supervisor reports over real HTTP: the data goes in through sync pushes (canvassers'
//! devices with their own clocks), and every expected figure is computed here from the
//! test's own model of what was sent, never by the server's queries.

mod common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::client::Device;
use common::{TestApp, World};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

const INSTALLED: &[&str] = &["installed", "installed_with_help", "already_installed"];
const STATUSES: &[&str] = &[
    "not_yet",
    "installed",
    "installed_with_help",
    "already_installed",
    "refused",
    "no_smartphone",
    "incompatible",
    "later",
];
const OUTCOMES: &[&str] = &[
    "met",
    "not_home",
    "refused",
    "come_back_later",
    "moved_away",
];
const PRIORITIES: &[&str] = &[
    "quarantine_centralized",
    "quarantine_home",
    "testing_required",
];

/// A small deterministic generator (the data must be the same on every run).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone)]
struct Person {
    id: Uuid,
    name: String,
    priority: &'static str,
    smartphone: &'static str,
    /// Status, when (ms), by whom (canvasser index).
    status: Option<(&'static str, i64, usize)>,
    deleted: bool,
}

#[derive(Clone)]
struct Visit {
    id: Uuid,
    at: i64,
    outcome: &'static str,
    by: usize,
    campaign: usize,
    point: Option<(f64, f64)>,
}

#[derive(Clone)]
struct Home {
    id: Uuid,
    village: usize,
    address: String,
    point: Option<(f64, f64)>,
    deleted: bool,
    people: Vec<Person>,
    visits: Vec<Visit>,
}

impl Home {
    fn live_people(&self) -> impl Iterator<Item = &Person> {
        let deleted = self.deleted;
        self.people.iter().filter(move |p| !p.deleted && !deleted)
    }
    /// The latest visit in campaign 0, by time then id.
    fn last_visit(&self) -> Option<&Visit> {
        self.visits
            .iter()
            .filter(|v| v.campaign == 0)
            .max_by_key(|v| (v.at, v.id.to_string()))
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(s: &str) -> i64 {
    ms(s.parse::<DateTime<Utc>>().unwrap())
}

/// The Vietnam (UTC+7) day of an instant.
fn vn_day(t: i64) -> NaiveDate {
    (Utc.timestamp_millis_opt(t).unwrap() + Duration::hours(7)).date_naive()
}

fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_000.0_f64;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((b.0 - a.0).to_radians() / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

fn pct(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| ((part as f64) * 100.0 / whole as f64 * 100.0).round() / 100.0)
}

fn close(a: &Value, b: Option<f64>, what: &str) {
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
struct Scenario {
    w: World,
    /// Campaign 0 (the one reported on) and campaign 1 (another, whose visits must not count).
    campaigns: [String; 2],
    /// v1, v2 (Hoa Thám), v_other (Hưng Đạo), with their names.
    villages: Vec<(String, String)>,
    homes: Vec<Home>,
    /// Canvasser usernames and ids: c1 works Hoa Thám, c2 Hưng Đạo.
    canvassers: Vec<(String, String)>,
    /// Supervisor tokens: `huyen` (district), `xa` (Hoa Thám).
    huyen: String,
    xa: String,
    c1: String,
}

const CAMPAIGN_START: &str = "2020-08-01";
const CAMPAIGN_END: &str = "2020-08-31";

async fn scenario(seed: u64) -> Scenario {
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
struct Counts {
    households: i64,
    visited: i64,
    persons: i64,
    smartphone: i64,
    installed: i64,
    priority: i64,
    priority_installed: i64,
}

impl Scenario {
    fn counts(&self, villages: &[usize]) -> Counts {
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

    fn path(&self, p: &str) -> String {
        format!("{p}campaign={}", self.campaigns[0])
    }

    fn home(&self, id: &str) -> &Home {
        self.homes.iter().find(|h| h.id.to_string() == id).unwrap()
    }
}

/// Checks one progress row against counts and a target (kind, value, inherited).
fn check_row(row: &Value, c: Counts, target: Option<(&str, f64, bool)>) {
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

fn child<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["area_id"] == id)
        .unwrap_or_else(|| panic!("{id} among the children"))
}

#[tokio::test]
async fn progress_of_a_district_and_a_commune() {
    let s = scenario(11).await;
    let w = &s.w;
    let r = w
        .app
        .get(&s.path("/api/v1/reports/progress?"), &s.huyen)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = &r.body;
    assert_eq!(report["subject"]["area_id"], w.district.as_str());
    check_row(
        &report["area"],
        s.counts(&[0, 1, 2]),
        Some(("rate_registered", 60.0, false)),
    );
    // All 19 communes of the district, each exactly once.
    let kids = report["children"].as_array().unwrap();
    assert_eq!(kids.len(), 19);
    let hoa_tham = child(report, &w.hoa_tham);
    check_row(
        hoa_tham,
        s.counts(&[0, 1]),
        Some(("rate_smartphone", 50.0, false)),
    );
    let hung_dao = child(report, &w.hung_dao);
    check_row(
        hung_dao,
        s.counts(&[2]),
        Some(("rate_registered", 60.0, true)),
    );
    // The other 17 have nobody: no rate, no rank.
    for k in kids
        .iter()
        .filter(|k| k["area_id"] != w.hoa_tham.as_str() && k["area_id"] != w.hung_dao.as_str())
    {
        check_row(k, Counts::default(), Some(("rate_registered", 60.0, true)));
        assert!(k["rank"].is_null());
    }
    // Ranks: competition ranking of the two communes with a rate.
    let (a, b) = (
        hoa_tham["rate"].as_f64().unwrap(),
        hung_dao["rate"].as_f64().unwrap(),
    );
    let rank = |x: f64, y: f64| 1 + i64::from(y > x);
    assert_eq!(hoa_tham["rank"], rank(a, b));
    assert_eq!(hung_dao["rank"], rank(b, a));
    assert!(report["area"]["rank"].is_null());

    // The commune supervisor: the commune and its villages.
    let r = w.app.get(&s.path("/api/v1/reports/progress?"), &s.xa).await;
    assert_eq!(r.status, 200, "{}", r.text);
    check_row(
        &r.body["area"],
        s.counts(&[0, 1]),
        Some(("rate_smartphone", 50.0, false)),
    );
    let v1 = child(&r.body, &s.villages[0].0);
    check_row(v1, s.counts(&[0]), Some(("count", 6.0, false)));
    let v2 = child(&r.body, &s.villages[1].0);
    check_row(v2, s.counts(&[1]), Some(("rate_smartphone", 50.0, true)));
    assert_eq!(r.body["children"].as_array().unwrap().len(), 2);

    // A village: no children.
    let r = w
        .app
        .get(
            &s.path(&format!(
                "/api/v1/reports/progress?area={}&",
                s.villages[1].0
            )),
            &s.c1,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    check_row(
        &r.body["area"],
        s.counts(&[1]),
        Some(("rate_smartphone", 50.0, true)),
    );
    assert_eq!(r.body["children"], json!([]));

    // A count target is the commune's own; its villages take the district's rate instead
    // (a count cannot be split).
    let c = &s.campaigns[0];
    let r = w
        .app
        .put(
            &format!("/api/v1/campaigns/{c}/targets/{}", w.hung_dao),
            &w.admin,
            json!({"kind": "count", "value": 4.0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = w
        .app
        .get(
            &s.path(&format!("/api/v1/reports/progress?area={}&", w.hung_dao)),
            &s.huyen,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    check_row(&r.body["area"], s.counts(&[2]), Some(("count", 4.0, false)));
    check_row(
        child(&r.body, &s.villages[2].0),
        s.counts(&[2]),
        Some(("rate_registered", 60.0, true)),
    );
}

#[tokio::test]
async fn reports_stay_inside_the_callers_areas() {
    let s = scenario(12).await;
    let w = &s.w;
    let app = &w.app;
    for (token, area) in [
        (&s.xa, &w.district),
        (&s.xa, &w.hung_dao),
        (&s.c1, &w.hoa_tham),
        (&s.c1, &s.villages[2].0),
    ] {
        for path in [
            "/api/v1/reports/progress",
            "/api/v1/reports/trend",
            "/api/v1/lists/priority-pending",
            "/api/v1/lists/unvisited",
            "/api/v1/lists/revisit",
            "/api/v1/reports/progress.csv",
            "/api/v1/lists/revisit.xlsx",
        ] {
            let r = app
                .get(&s.path(&format!("{path}?area={area}&")), token)
                .await;
            r.assert_problem(403, "out_of_scope");
        }
    }
    // Activity checks are for supervisors.
    let r = app
        .get(
            &s.path(&format!(
                "/api/v1/reports/activity?area={}&",
                s.villages[0].0
            )),
            &s.c1,
        )
        .await;
    r.assert_problem(403, "forbidden");
    // No area named: the only assigned one; with two assigned (c1) it must be named.
    let r = app.get(&s.path("/api/v1/reports/trend?"), &s.xa).await;
    assert_eq!(r.body["subject"]["area_id"], w.hoa_tham.as_str());
    let r = app.get(&s.path("/api/v1/reports/progress?"), &s.c1).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(
        r.field_codes(),
        [("area".to_owned(), "required".to_owned())]
    );
    // Unknown campaign and area, bad ids, unknown parameters, no token.
    let r = app
        .get(
            &format!("/api/v1/reports/progress?campaign={}", Uuid::new_v4()),
            &s.xa,
        )
        .await;
    r.assert_problem(404, "not_found");
    let r = app
        .get(
            &s.path(&format!(
                "/api/v1/reports/progress?area={}&",
                Uuid::new_v4()
            )),
            &s.huyen,
        )
        .await;
    r.assert_problem(404, "not_found");
    let r = app
        .get("/api/v1/reports/progress?campaign=nope", &s.xa)
        .await;
    r.assert_problem(400, "bad_query");
    let r = app
        .get(&s.path("/api/v1/reports/progress?colour=red&"), &s.xa)
        .await;
    r.assert_problem(400, "bad_query");
    let r = app
        .get(&s.path("/api/v1/reports/progress.pdf?"), &s.xa)
        .await;
    r.assert_problem(400, "bad_path");
    let r = app
        .request(
            reqwest::Method::GET,
            &s.path("/api/v1/reports/progress.csv?"),
            None,
            None,
            &[],
        )
        .await;
    r.assert_problem(401, "missing_token");
    let r = app
        .get(
            &s.path("/api/v1/reports/activity?max_distance_m=0&min_gap_seconds=-1&from=2020-08-10&to=2020-08-01&"),
            &s.xa,
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields: Vec<String> = r.field_codes().into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["max_distance_m", "min_gap_seconds", "to"]);
}

#[tokio::test]
async fn trend_counts_installs_on_the_day_they_happened() {
    let s = scenario(13).await;
    let r = s.w.app.get(&s.path("/api/v1/reports/trend?"), &s.xa).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = &r.body;
    let start: NaiveDate = CAMPAIGN_START.parse().unwrap();
    let end: NaiveDate = CAMPAIGN_END.parse().unwrap();
    let days: Vec<String> = start
        .iter_days()
        .take_while(|d| *d <= end)
        .map(|d| d.to_string())
        .collect();
    assert_eq!(t["days"], json!(days));
    let series = t["series"].as_array().unwrap();
    assert_eq!(series.len(), 3, "Hoa Thám, then its two villages");
    assert_eq!(series[0]["area_id"], s.w.hoa_tham.as_str());
    for (area, villages) in [
        (&s.w.hoa_tham, vec![0, 1]),
        (&s.villages[0].0, vec![0]),
        (&s.villages[1].0, vec![1]),
    ] {
        let serie = series
            .iter()
            .find(|x| x["area_id"] == area.as_str())
            .unwrap();
        let mut per_day = vec![0i64; days.len()];
        let mut persons = 0;
        for h in s.homes.iter().filter(|h| villages.contains(&h.village)) {
            for p in h.live_people() {
                persons += 1;
                if let Some((_, t, _)) = p.status.filter(|(st, _, _)| INSTALLED.contains(st)) {
                    let d = vn_day(t).clamp(start, end);
                    per_day[(d - start).num_days() as usize] += 1;
                }
            }
        }
        assert_eq!(serie["persons"], persons);
        assert_eq!(serie["installs"], json!(per_day), "{}", serie["name"]);
        let mut sum = 0;
        for (i, n) in per_day.iter().enumerate() {
            sum += n;
            assert_eq!(serie["cumulative"][i], sum);
            close(
                &serie["cumulative_rate"][i],
                pct(sum, persons),
                "cumulative rate",
            );
        }
    }
    // The hand-placed installs: before the start (first day) and 17:30 UTC (next day).
    assert!(series[0]["installs"][0].as_i64().unwrap() >= 1);
    assert!(series[0]["installs"][5].as_i64().unwrap() >= 1, "6 August");
}

#[tokio::test]
async fn lists_hold_exactly_who_is_left() {
    let s = scenario(14).await;
    let app = &s.w.app;
    // Reads every page of a list (7 per page, to cross page bounds).
    /// Every item, and the set of their `key`s.
    async fn all(
        app: &TestApp,
        path: &str,
        token: &str,
        key: &str,
    ) -> (Vec<Value>, BTreeSet<String>) {
        let mut items = Vec::new();
        let mut total = 0;
        for page in 1.. {
            let r = app
                .get(&format!("{path}&per_page=7&page={page}"), token)
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            total = r.body["total"].as_i64().unwrap();
            let got = r.body["items"].as_array().unwrap().clone();
            let n = got.len();
            items.extend(got);
            if n < 7 {
                break;
            }
        }
        assert_eq!(items.len() as i64, total);
        let keys = items
            .iter()
            .map(|i| i[key].as_str().unwrap().to_owned())
            .collect();
        (items, keys)
    }
    for (token, villages, area) in [
        (&s.huyen, vec![0, 1, 2], None),
        (&s.xa, vec![0, 1], None),
        (&s.huyen, vec![2], Some(s.w.hung_dao.clone())),
    ] {
        let area = area.map_or(String::new(), |a| format!("area={a}&"));
        let homes: Vec<&Home> = s
            .homes
            .iter()
            .filter(|h| villages.contains(&h.village) && !h.deleted)
            .collect();

        // Priority persons not installed: every one, once, with the household's last visit.
        let path = s.path(&format!("/api/v1/lists/priority-pending?{area}"));
        let (items, got) = all(app, &path, token, "member_id").await;
        let want: BTreeSet<String> = homes
            .iter()
            .flat_map(|h| h.live_people())
            .filter(|p| p.priority != "none")
            .filter(|p| !p.status.is_some_and(|(st, _, _)| INSTALLED.contains(&st)))
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(got, want);
        assert_eq!(items.len(), want.len(), "no duplicates");
        for i in &items {
            let h = s.home(i["household_id"].as_str().unwrap());
            let p = h
                .people
                .iter()
                .find(|p| p.id.to_string() == i["member_id"])
                .unwrap();
            assert_eq!(i["priority"], p.priority);
            assert_eq!(i["full_name"], p.name.as_str());
            assert_eq!(i["status"], json!(p.status.map(|(st, _, _)| st)));
            assert_eq!(i["village"], s.villages[h.village].1.as_str());
            assert_eq!(i["address"], h.address.as_str());
            assert_eq!(
                i["last_visit"]["visit_id"],
                json!(h.last_visit().map(|v| v.id.to_string()))
            );
        }

        // Never visited in the campaign (a visit in the other campaign does not count).
        let path = s.path(&format!("/api/v1/lists/unvisited?{area}"));
        let (items, got) = all(app, &path, token, "household_id").await;
        let want: BTreeSet<String> = homes
            .iter()
            .filter(|h| !h.visits.iter().any(|v| v.campaign == 0))
            .map(|h| h.id.to_string())
            .collect();
        assert_eq!(got, want);
        if villages.contains(&0) {
            assert!(got.contains(&s.homes[4].id.to_string()));
        }
        for i in &items {
            let h = s.home(i["household_id"].as_str().unwrap());
            assert_eq!(i["members"], h.live_people().count());
            assert_eq!(
                i["priority_members"],
                h.live_people().filter(|p| p.priority != "none").count()
            );
        }

        // To visit again: the latest visit said "not home" or "come back later".
        let path = s.path(&format!("/api/v1/lists/revisit?{area}"));
        let (items, got) = all(app, &path, token, "household_id").await;
        let want: BTreeSet<String> = homes
            .iter()
            .filter(|h| {
                h.last_visit()
                    .is_some_and(|v| ["not_home", "come_back_later"].contains(&v.outcome))
            })
            .map(|h| h.id.to_string())
            .collect();
        assert_eq!(got, want);
        assert!(!want.is_empty(), "the scenario has households to revisit");
        for i in &items {
            let h = s.home(i["household_id"].as_str().unwrap());
            let last = h.last_visit().unwrap();
            assert_eq!(i["last_visit"]["visit_id"], last.id.to_string());
            assert_eq!(i["last_visit"]["outcome"], last.outcome);
        }
    }
}

/// Expected activity rows: (day, username) -> (visits, households, installs, median, far, too soon).
type ActivityRows = BTreeMap<(String, String), (i64, i64, i64, Option<f64>, i64, i64)>;

fn expected_activity(s: &Scenario, villages: &[usize], max_m: f64, gap_s: i64) -> ActivityRows {
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

fn activity_rows(body: &Value) -> ActivityRows {
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

fn same_activity(got: &ActivityRows, want: &ActivityRows) {
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

#[tokio::test]
async fn activity_checks_flag_far_and_hasty_visits_at_the_thresholds() {
    let s = scenario(15).await;
    let app = &s.w.app;
    let r = app
        .get(&s.path("/api/v1/reports/activity?"), &s.huyen)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["max_distance_m"], 300.0);
    assert_eq!(r.body["min_gap_seconds"], 60);
    same_activity(
        &activity_rows(&r.body),
        &expected_activity(&s, &[0, 1, 2], 300.0, 60),
    );

    // 20 August, c1: the 310 m visit is flagged, the 290 m one is not; of the gaps of 59,
    // 60 and 61 s between different households only the 59 s one is, and the second visit
    // of the same household 5 s later is not.
    let day = r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["day"] == "2020-08-20" && r["username"] == "c1")
        .unwrap();
    let flags = day["flags"].as_array().unwrap();
    let far: Vec<&Value> = flags
        .iter()
        .filter(|f| f["kind"] == "far_from_household")
        .collect();
    let planted_far = s.homes[6].visits.last().unwrap().id.to_string();
    assert!(far.iter().any(|f| f["visit_id"] == planted_far.as_str()));
    let planted_near = s.homes[5].visits[s.homes[5].visits.len() - 2]
        .id
        .to_string();
    assert!(!far.iter().any(|f| f["visit_id"] == planted_near.as_str()));
    let f = far
        .iter()
        .find(|f| f["visit_id"] == planted_far.as_str())
        .unwrap();
    close(&f["distance_m"], Some(310.0), "distance");
    let soon: Vec<&Value> = flags
        .iter()
        .filter(|f| f["kind"] == "too_soon_after_previous")
        .collect();
    assert!(soon.iter().any(|f| f["visit_id"] == planted_far.as_str()
        && f["seconds_since_previous"] == 59.0
        && f["previous_household_id"] == s.homes[5].id.to_string()));
    for h in [7, 8] {
        for v in &s.homes[h].visits {
            assert!(
                !soon.iter().any(|f| f["visit_id"] == v.id.to_string()),
                "60 s, 61 s and the same household are not flagged"
            );
        }
    }

    // Other thresholds and a period; a commune supervisor sees their commune only.
    let r = app
        .get(
            &s.path("/api/v1/reports/activity?max_distance_m=305&min_gap_seconds=61&from=2020-08-10&to=2020-08-20&"),
            &s.xa,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut want = expected_activity(&s, &[0, 1], 305.0, 61);
    want.retain(|(d, _), _| d.as_str() >= "2020-08-10" && d.as_str() <= "2020-08-20");
    same_activity(&activity_rows(&r.body), &want);
    assert!(r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["username"] == "c1"));
}

/// The body of an export, checked for its type.
async fn download(app: &TestApp, path: &str, token: &str, ext: &str) -> Vec<u8> {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    let cd = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.starts_with("attachment; filename=\"") && cd.ends_with(&format!(".{ext}\"")),
        "{cd}"
    );
    match ext {
        "csv" => assert_eq!(ct, "text/csv; charset=utf-8"),
        _ => assert_eq!(
            ct,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ),
    }
    res.bytes().await.unwrap().to_vec()
}

/// CSV rows after checking the BOM and the title row: headers, then data.
fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let (_, headers, rows) = csv_table(bytes);
    (headers, rows)
}

/// CSV: the title (alone on the first row), the headers and the data rows.
fn csv_table(bytes: &[u8]) -> (String, Vec<String>, Vec<Vec<String>>) {
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 BOM");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[3..]);
    let mut records = r.records().map(|r| {
        r.unwrap()
            .iter()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    });
    let title = records.next().unwrap();
    assert_eq!(title.len(), 1, "the title is alone on its row: {title:?}");
    let headers = records.next().unwrap();
    (title[0].clone(), headers, records.collect())
}

/// XLSX: the title, the headers (row 3) and the data rows, as text.
fn xlsx_rows(bytes: Vec<u8>) -> (String, Vec<String>, Vec<Vec<String>>) {
    use calamine::{Data, Reader};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range("Báo cáo").unwrap();
    let text = |c: &Data| match c {
        Data::Empty => String::new(),
        Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(text).collect()).collect();
    let title = rows[0][0].clone();
    let headers = rows[2].iter().filter(|h| !h.is_empty()).cloned().collect();
    (title, headers, rows[3..].to_vec())
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Number(n) if n.as_i64().is_some() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 {
                format!("{}", f as i64)
            } else {
                f.to_string()
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn exports_hold_the_same_figures_as_the_json() {
    let s = scenario(16).await;
    let app = &s.w.app;
    let json = app
        .get(&s.path("/api/v1/reports/progress?"), &s.huyen)
        .await
        .body;
    let rows: Vec<&Value> = std::iter::once(&json["area"])
        .chain(json["children"].as_array().unwrap())
        .collect();
    let expect: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let f = |k: &str| num(&r[k]);
            vec![
                f("code"),
                f("name"),
                f("households"),
                f("households_visited"),
                f("persons"),
                f("smartphone_owners"),
                f("installed"),
                f("rate"),
                f("target_installs"),
                f("remaining"),
                f("target_progress"),
                f("rank"),
                f("priority_total"),
                f("priority_installed"),
                f("priority_pending"),
            ]
        })
        .collect();
    // Columns of the export holding those fields, by their Vietnamese header.
    let pick = |headers: &[String], rows: &[Vec<String>]| -> Vec<Vec<String>> {
        let cols: Vec<usize> = [
            "Mã",
            "Đơn vị",
            "Số hộ",
            "Số hộ đã thăm",
            "Số nhân khẩu",
            "Số người có điện thoại thông minh",
            "Số người đã cài đặt",
            "Tỷ lệ (%)",
            "Số cài đặt theo chỉ tiêu",
            "Còn thiếu",
            "Đạt chỉ tiêu (%)",
            "Xếp hạng",
            "Đối tượng ưu tiên",
            "Ưu tiên đã cài",
            "Ưu tiên chưa cài",
        ]
        .iter()
        .map(|h| {
            headers
                .iter()
                .position(|x| x == h)
                .unwrap_or_else(|| panic!("{h}"))
        })
        .collect();
        rows.iter()
            .map(|r| {
                cols.iter()
                    .map(|c| r.get(*c).cloned().unwrap_or_default())
                    .collect()
            })
            .collect()
    };
    let csv = download(
        app,
        &s.path("/api/v1/reports/progress.csv?"),
        &s.huyen,
        "csv",
    )
    .await;
    let (title, headers, data) = csv_table(&csv);
    assert!(
        title.contains("Bluezone 2020") && !title.contains(gocua::reports::export::PERSONAL_DATA),
        "figures only: {title}"
    );
    assert_eq!(pick(&headers, &data), expect);
    let hoa_tham = data.iter().find(|r| r[0] == "06073").unwrap();
    assert_eq!(hoa_tham[2], "Xã", "levels in Vietnamese");
    assert!(hoa_tham.contains(&"Tỷ lệ trên người có điện thoại thông minh".to_owned()));

    let xlsx = download(
        app,
        &s.path("/api/v1/reports/progress.xlsx?"),
        &s.huyen,
        "xlsx",
    )
    .await;
    let (title, headers2, data) = xlsx_rows(xlsx);
    assert_eq!(headers2, headers);
    assert_eq!(pick(&headers2, &data), expect);
    assert!(
        title.starts_with("Tiến độ — Huyện Bình Gia — Chiến dịch: Bluezone 2020 — Ngày xuất: "),
        "{title}"
    );

    // Lists: the same persons and households as every page of the JSON.
    for (list, key, name_col, name_key) in [
        ("priority-pending", "member_id", "Họ tên", "full_name"),
        ("unvisited", "household_id", "Chủ hộ", "head_name"),
        ("revisit", "household_id", "Chủ hộ", "head_name"),
    ] {
        let r = app
            .get(
                &s.path(&format!("/api/v1/lists/{list}?per_page=500&")),
                &s.huyen,
            )
            .await;
        let mut want: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[name_key].as_str().unwrap().to_owned())
            .collect();
        want.sort();
        let _ = key;
        for ext in ["csv", "xlsx"] {
            let bytes = download(
                app,
                &s.path(&format!("/api/v1/lists/{list}.{ext}?")),
                &s.huyen,
                ext,
            )
            .await;
            let (headers, rows) = if ext == "csv" {
                csv_rows(&bytes)
            } else {
                let (title, h, r) = xlsx_rows(bytes);
                assert!(title.contains("Huyện Bình Gia") && title.contains("Bluezone 2020"));
                (h, r)
            };
            let col = headers.iter().position(|h| h == name_col).unwrap();
            let mut got: Vec<String> = rows.iter().map(|r| r[col].clone()).collect();
            got.sort();
            assert_eq!(got, want, "{list}.{ext}");
        }
    }
    // Priority categories and statuses in Vietnamese; the title says it holds personal data.
    let csv = download(
        app,
        &s.path("/api/v1/lists/priority-pending.csv?"),
        &s.huyen,
        "csv",
    )
    .await;
    let (title, headers, rows) = csv_table(&csv);
    assert!(
        title.starts_with("Đối tượng ưu tiên chưa cài đặt — Huyện Bình Gia")
            && title.ends_with(gocua::reports::export::PERSONAL_DATA),
        "{title}"
    );
    let cat = headers.iter().position(|h| h == "Đối tượng").unwrap();
    for r in &rows {
        assert!(
            ["Cách ly tập trung", "Cách ly tại nhà", "Phải xét nghiệm"].contains(&r[cat].as_str()),
            "{r:?}"
        );
    }

    // Trend: one row per area and day; activity: one row per canvasser and day.
    let t = app.get(&s.path("/api/v1/reports/trend?"), &s.xa).await.body;
    let (_, rows) =
        csv_rows(&download(app, &s.path("/api/v1/reports/trend.csv?"), &s.xa, "csv").await);
    assert_eq!(rows.len(), 3 * t["days"].as_array().unwrap().len());
    let last = &rows[t["days"].as_array().unwrap().len() - 1];
    assert_eq!(last[0], "Xã Hoa Thám");
    assert_eq!(last[1], "31/08/2020");
    assert_eq!(
        last[3],
        num(t["series"][0]["cumulative"]
            .as_array()
            .unwrap()
            .last()
            .unwrap())
    );
    let a = app
        .get(&s.path("/api/v1/reports/activity?"), &s.xa)
        .await
        .body;
    let (_, rows) = xlsx_rows(
        download(
            app,
            &s.path("/api/v1/reports/activity.xlsx?"),
            &s.xa,
            "xlsx",
        )
        .await,
    )
    .to_owned_rows();
    assert_eq!(rows.len(), a["rows"].as_array().unwrap().len());
    for (r, j) in rows.iter().zip(a["rows"].as_array().unwrap()) {
        assert_eq!(r[1], j["username"].as_str().unwrap());
        assert_eq!(r[3], num(&j["visits"]));
        assert_eq!(r[7], num(&j["far_visits"]));
        assert_eq!(r[8], num(&j["too_soon_visits"]));
    }

    // The household list of an area, every row once.
    let area = &s.w.hoa_tham;
    let r = app
        .get(
            &format!("/api/v1/households?area={area}&per_page=500"),
            &s.xa,
        )
        .await;
    let want: BTreeSet<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        want.len(),
        s.homes
            .iter()
            .filter(|h| h.village < 2 && !h.deleted)
            .count()
    );
    for ext in ["csv", "xlsx"] {
        let bytes = download(
            app,
            &format!("/api/v1/households.{ext}?area={area}"),
            &s.xa,
            ext,
        )
        .await;
        let (headers, rows) = if ext == "csv" {
            csv_rows(&bytes)
        } else {
            let (title, h, r) = xlsx_rows(bytes);
            assert!(
                title.ends_with(gocua::reports::export::PERSONAL_DATA),
                "{title}"
            );
            (h, r)
        };
        assert_eq!(headers[0], "Mã hộ");
        let got: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
        assert_eq!(got, want, "households.{ext}");
        assert_eq!(rows.len(), want.len());
        let members = headers.iter().position(|h| h == "Số nhân khẩu").unwrap();
        for row in &rows {
            assert_eq!(
                row[members],
                s.home(&row[0]).live_people().count().to_string()
            );
        }
    }
    // An admin with no area named exports every live household.
    let bytes = download(app, "/api/v1/households.csv", &s.w.admin, "csv").await;
    let (_, rows) = csv_rows(&bytes);
    let got: BTreeSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    let all: BTreeSet<String> = s
        .homes
        .iter()
        .filter(|h| !h.deleted)
        .map(|h| h.id.to_string())
        .collect();
    assert_eq!(got, all);
    let village = rows
        .iter()
        .find(|r| r[0] == s.homes[0].id.to_string())
        .unwrap();
    assert_eq!(village[1], s.villages[s.homes[0].village].1);

    // A filter the list refuses is refused by the export too, before any byte.
    let r = app
        .get("/api/v1/households.csv?adoption_status=installed", &s.xa)
        .await;
    r.assert_problem(422, "validation_failed");
    // Out of scope, refused before any byte.
    let r = app
        .get(
            &format!("/api/v1/households.csv?area={}", s.w.hung_dao),
            &s.xa,
        )
        .await;
    r.assert_problem(403, "out_of_scope");
}

trait Owned {
    fn to_owned_rows(self) -> (String, Vec<Vec<String>>);
}
impl Owned for (String, Vec<String>, Vec<Vec<String>>) {
    fn to_owned_rows(self) -> (String, Vec<Vec<String>>) {
        (self.0, self.2)
    }
}
