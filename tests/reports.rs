//! Supervisor reports over real HTTP: the data goes in through sync pushes (canvassers'
//! devices with their own clocks), and every expected figure is computed here from the
//! test's own model of what was sent, never by the server's queries.

mod common;
#[path = "reports/oracle.rs"]
mod oracle;

use chrono::NaiveDate;
use common::TestApp;
use oracle::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

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
        // One page of them all holds them in the same order as pages of 7 and of 2.
        let r = app.get(&format!("{path}&per_page=500&page=1"), token).await;
        assert_eq!(r.body["items"], json!(items), "{path}");
        let mut pairs = Vec::new();
        for page in 1..=(total + 1) / 2 {
            let r = app
                .get(&format!("{path}&per_page=2&page={page}"), token)
                .await;
            pairs.extend(r.body["items"].as_array().unwrap().clone());
        }
        assert_eq!(json!(pairs), json!(items), "{path}");
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
        // In the same order: an export reads the villages its page holds whole together.
        let want: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[name_key].as_str().unwrap().to_owned())
            .collect();
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
            let got: Vec<String> = rows.iter().map(|r| r[col].clone()).collect();
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
    let cat = headers
        .iter()
        .position(|h| h == "Đối tượng ưu tiên")
        .unwrap();
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
        let id = headers.iter().position(|h| h == "Mã gocua").unwrap();
        let got: BTreeSet<String> = rows.iter().map(|r| r[id].clone()).collect();
        assert_eq!(got, want, "households.{ext}");
        assert_eq!(rows.len(), want.len());
        let members = headers.iter().position(|h| h == "Số nhân khẩu").unwrap();
        for row in &rows {
            assert_eq!(
                row[members],
                s.home(&row[id]).live_people().count().to_string()
            );
        }
    }
    // An admin with no area named exports every live household.
    let bytes = download(app, "/api/v1/households.csv", &s.w.admin, "csv").await;
    let (headers, rows) = csv_rows(&bytes);
    let id = headers.iter().position(|h| h == "Mã gocua").unwrap();
    let got: BTreeSet<String> = rows.iter().map(|r| r[id].clone()).collect();
    let all: BTreeSet<String> = s
        .homes
        .iter()
        .filter(|h| !h.deleted)
        .map(|h| h.id.to_string())
        .collect();
    assert_eq!(got, all);
    let village = rows
        .iter()
        .find(|r| r[id] == s.homes[0].id.to_string())
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
