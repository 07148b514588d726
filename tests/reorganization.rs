//! The July 2025 reorganization: the official conversion table applied to the official
//! January 2025 list (counts worked out here from the files themselves), a dry run that
//! writes nothing, a second run that changes nothing, villages, households, users, targets
//! and devices following, the map of an earlier day, and bad tables refused whole.

mod common;

use common::client::{household, Device};
use common::{unit_data, TestApp, World};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

const EFFECTIVE: &str = "2025-07-01";

/// The cells of the table's conversion rows (section and header rows left out), with their
/// 1-based line numbers.
fn table_rows() -> Vec<(u64, Vec<String>)> {
    let data = std::fs::read(unit_data("reorganization-2025-07-01.csv")).unwrap();
    let mut out = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&data[..]);
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.unwrap();
        let cells: Vec<String> = rec.iter().map(|c| c.trim().to_owned()).collect();
        if i < 2 || cells.iter().skip(1).all(String::is_empty) {
            continue;
        }
        out.push((i as u64 + 1, cells));
    }
    out
}

/// The code in "Name (code)".
fn code_in(cell: &str) -> Option<String> {
    let (_, rest) = cell.rsplit_once('(')?;
    Some(rest.trim_end_matches(')').to_owned())
}

/// The table's header and the rows whose old district is one of `districts`, as a file.
fn table_of(districts: &[&str]) -> String {
    let text = std::fs::read_to_string(unit_data("reorganization-2025-07-01.csv")).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.unwrap();
        let district = rec.get(6).and_then(code_in);
        if i < 2 || district.as_deref().is_some_and(|d| districts.contains(&d)) {
            w.write_record(&rec).unwrap();
        }
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

async fn reorganize(app: &TestApp, token: &str, query: &str, table: &str) -> common::Res {
    let path = format!("/api/v1/areas/reorganizations?effective={EFFECTIVE}{query}");
    app.post_csv(&path, token, table.to_owned()).await
}

async fn import_all(app: &TestApp, admin: &str) {
    let data = std::fs::read(unit_data("units-2025-01-04.csv")).unwrap();
    let r = app.post_csv("/api/v1/areas/import", admin, data).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// What the database holds of the tree: (level, in effect) -> count, and the links.
async fn tree_counts(app: &TestApp) -> (BTreeMap<String, i64>, i64, i64) {
    let mut m = BTreeMap::new();
    for level in ["province", "district", "commune", "village"] {
        for (state, cond) in [("current", "IS NULL"), ("retired", "IS NOT NULL")] {
            let n = app
                .number(format!(
                    "SELECT COUNT(*) AS n FROM areas WHERE level = '{level}' AND retired_at {cond}"
                ))
                .await;
            m.insert(format!("{level} {state}"), n);
        }
    }
    (
        m,
        app.count("area_links").await,
        app.count("reorganizations").await,
    )
}

#[tokio::test]
async fn the_official_table_over_the_official_list() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    import_all(&app, &admin).await;
    let table = std::fs::read_to_string(unit_data("reorganization-2025-07-01.csv")).unwrap();

    // The counts, from the files.
    let list = std::fs::read_to_string(unit_data("units-2025-01-04.csv")).unwrap();
    let mut old_provinces = BTreeSet::new();
    let mut old_districts = BTreeSet::new();
    let mut old_communes = BTreeSet::new();
    for rec in csv::Reader::from_reader(list.as_bytes()).records() {
        let rec = rec.unwrap();
        old_provinces.insert(rec[1].trim().to_owned());
        old_districts.insert(rec[3].trim().to_owned());
        if !rec[5].trim().is_empty() {
            old_communes.insert(rec[5].trim().to_owned());
        }
    }
    let rows = table_rows();
    let new_provinces: BTreeSet<String> = rows.iter().filter_map(|(_, c)| code_in(&c[0])).collect();
    let new_communes: BTreeSet<&str> = rows.iter().map(|(_, c)| c[2].as_str()).collect();
    let named: BTreeSet<&str> = rows.iter().map(|(_, c)| c[4].as_str()).collect();
    let unmatched: Vec<u64> = rows
        .iter()
        .filter(|(_, c)| !c[4].is_empty() && !old_communes.contains(&c[4]))
        .map(|(l, _)| *l)
        .collect();
    let special_zones = rows
        .iter()
        .filter(|(_, c)| c[4].is_empty() && c[5].starts_with("Sắp xếp toàn bộ"))
        .count();
    let without_code = rows.iter().filter(|(_, c)| c[4].is_empty()).count() - special_zones;
    let not_in_table = old_communes
        .iter()
        .filter(|c| !named.contains(c.as_str()))
        .count();
    assert_eq!((new_provinces.len(), new_communes.len()), (34, 3321));
    assert!(!unmatched.is_empty() && without_code > 0 && not_in_table > 0);

    let before = tree_counts(&app).await;
    // Rows naming codes the list does not have refuse the table, naming the first line.
    let r = reorganize(&app, &admin, "&dry_run=true", &table).await;
    r.assert_problem(400, "unmatched_codes");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("line {}:", unmatched[0])),
        "{}",
        r.text
    );
    // A dry run accepting them reports everything and writes nothing.
    let dry = reorganize(&app, &admin, "&dry_run=true&accept_unmatched=true", &table).await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(tree_counts(&app).await, before, "a dry run writes nothing");
    let d = &dry.body;
    assert_eq!(d["dry_run"], true);
    assert_eq!(d["changed"], false);
    assert_eq!(d["rows"], rows.len());
    assert_eq!(d["provinces_created"], new_provinces.len());
    assert_eq!(d["communes_created"], new_communes.len());
    assert_eq!(
        d["retired"],
        json!({"provinces": old_provinces.len(), "districts": old_districts.len(), "communes": old_communes.len()})
    );
    let lines: Vec<u64> = d["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, unmatched);
    assert_eq!(d["without_code"].as_array().unwrap().len(), without_code);
    assert_eq!(d["not_in_table"].as_array().unwrap().len(), not_in_table);
    // A new commune spelled another way than in its first row (squashed spaces aside).
    let mut first: BTreeMap<&str, String> = BTreeMap::new();
    let mut variants = 0;
    for (_, c) in &rows {
        let name = c[1].split_whitespace().collect::<Vec<_>>().join(" ");
        match first.get(c[2].as_str()) {
            Some(n) if *n != name => variants += 1,
            Some(_) => {}
            None => {
                first.insert(&c[2], name);
            }
        }
    }
    assert_eq!(d["name_variants"].as_array().unwrap().len(), variants);
    assert_eq!(d["villages_pending"], 0);
    assert_eq!(d["provinces_kept"], json!([]));

    let applied = reorganize(&app, &admin, "&accept_unmatched=true", &table).await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    let a = &applied.body;
    assert_eq!(a["changed"], true);
    for k in [
        "provinces_created",
        "communes_created",
        "retired",
        "links",
        "unmatched",
        "not_in_table",
    ] {
        assert_eq!(a[k], d[k], "{k}: the dry run said what the run did");
    }
    let (after, links, runs) = tree_counts(&app).await;
    assert_eq!(after["province current"], 34);
    assert_eq!(after["commune current"], 3321);
    assert_eq!(after["district current"], 0);
    assert_eq!(after["province retired"], old_provinces.len() as i64);
    assert_eq!(after["district retired"], old_districts.len() as i64);
    assert_eq!(after["commune retired"], old_communes.len() as i64);
    let l = &a["links"];
    assert_eq!(
        links,
        l["whole"].as_i64().unwrap() + l["part"].as_i64().unwrap() + l["rename"].as_i64().unwrap()
    );
    assert_eq!(runs, 1);

    // A second run changes nothing and says so.
    let again = reorganize(&app, &admin, "&accept_unmatched=true", &table).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["changed"], false);
    assert!(again.body["already_applied_at"].is_string());
    assert_eq!(tree_counts(&app).await, (after, links, runs));
    let listed = app.get("/api/v1/areas/reorganizations", &admin).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["report"]["communes_created"], 3321);

    // Today's map by default; the map of a day on request. One code, two units.
    let top = app.get("/api/v1/areas?per_page=100", &admin).await;
    assert_eq!(top.body["total"], 34);
    let then = app
        .get("/api/v1/areas?per_page=100&as_of=2020-12-31", &admin)
        .await;
    assert_eq!(then.body["total"], old_provinces.len());
    let now = app.get("/api/v1/areas?code=06103", &admin).await;
    assert_eq!(now.body["total"], 1);
    assert_eq!(now.body["items"][0]["name"], "Xã Thiện Long");
    assert_eq!(now.body["items"][0]["valid_from"], EFFECTIVE);
    let old = app
        .get("/api/v1/areas?code=06103&as_of=2025-06-30", &admin)
        .await;
    assert_eq!(old.body["items"][0]["name"], "Xã Hòa Bình");
    assert_eq!(old.body["items"][0]["valid_to"], EFFECTIVE);
    assert_eq!(
        old.body["items"][0]["successor_id"],
        now.body["items"][0]["id"]
    );
    let quirks = a["province_mismatches"].as_array().unwrap();
    println!(
        "{} rows; {} provinces and {} communes created; retired {}; links {}; {} codes reused; \
         unmatched lines {:?}; {} rows without a code; {} communes not in the table; {} province cells disagreeing with the tree",
        rows.len(),
        a["provinces_created"],
        a["communes_created"],
        a["retired"],
        a["links"],
        a["codes_reused"],
        lines,
        without_code,
        not_in_table,
        quirks.len()
    );
    app.assert_tallies().await;
    app.assert_duplicate_keys().await;
}

/// Bình Gia (181, merged whole) and Bình Giang (296, some communes split), with villages,
/// households, a campaign, targets, users and a device with ops queued before the day.
struct Before {
    w: World,
    camp: String,
    canbo: String,
    xa_id: String,
    device: Device,
    queued: Uuid,
    split_village: String,
    split_households: usize,
    progress_district: Value,
    progress_commune: Value,
}

async fn before() -> Before {
    let w = World::new().await;
    let app = &w.app;
    app.import_districts(&w.admin, &["296"]).await;
    let camp = w.campaign().await;
    // A second Nà Pàn, in Hưng Đạo: the merged commune gets two of that name.
    let clash = app.village(&w.admin, &w.hung_dao, "Thôn Nà Pàn").await;
    let mut homes = Vec::new();
    for (v, n) in [(&w.v1, 3), (&w.v2, 2), (&w.v_other, 2), (&clash, 1)] {
        for i in 0..n {
            homes.push(
                app.household(&w.admin, v, &format!("Hộ {i}"), &format!("Số {i}"))
                    .await,
            );
        }
    }
    // A member installed, so that rates are not all zero.
    let h0 = homes[0]["id"].as_str().unwrap();
    let m = app
        .post(
            "/api/v1/members",
            &w.admin,
            json!({"household_id": h0, "full_name": "Hoàng Thị Hoa", "priority": "quarantine_home"}),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.text);
    let m = m.body["id"].as_str().unwrap().to_owned();
    let s = app
        .put(
            &format!("/api/v1/members/{m}/adoptions/{camp}"),
            &w.admin,
            json!({"status": "installed"}),
        )
        .await;
    assert!(s.status.is_success(), "{}", s.text);
    for (area, value) in [(&w.district, 60.0), (&w.hoa_tham, 70.0)] {
        let t = app
            .put(
                &format!("/api/v1/campaigns/{camp}/targets/{area}"),
                &w.admin,
                json!({"kind": "rate_registered", "value": value}),
            )
            .await;
        assert!(t.status.is_success(), "{}", t.text);
    }
    // Vĩnh Hồng (10960) went in parts to Kẻ Sặt (10945) and Bình Giang (10966).
    let vinh_hong = app.area(&w.admin, "10960").await;
    let split_village = app.village(&w.admin, &vinh_hong, "Thôn Lý Đông").await;
    let split_households = 2;
    for i in 0..split_households {
        app.household(&w.admin, &split_village, &format!("Hộ Lý Đông {i}"), "x")
            .await;
    }
    let xa_id = {
        let r = app
            .post("/api/v1/users", &w.admin, json!({"username": "xa", "password": common::PASSWORD, "role": "supervisor", "area_ids": [w.hoa_tham, w.hung_dao]}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    };
    app.user(&w.admin, "huyen", "supervisor", &[&w.district])
        .await;
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    // The canvasser's phone holds the village, and queues work offline before the day.
    let mut device = Device::new(&canbo);
    app.pull_all(&mut device).await;
    assert_eq!(
        device.copy.len(),
        5,
        "three households, a member, an adoption"
    );
    let queued = Uuid::new_v4();
    device.queue_op(
        "household.upsert",
        queued,
        queued,
        household(&w.v1, "Nông Văn Đức", "Số 9, Nà Pàn"),
    );
    let progress = |area: &str| format!("/api/v1/reports/progress?campaign={camp}&area={area}");
    let progress_district = app.get(&progress(&w.district), &w.admin).await.body;
    let progress_commune = app.get(&progress(&w.hoa_tham), &w.admin).await.body;
    assert_eq!(progress_district["area"]["households"], 8);
    Before {
        w,
        camp,
        canbo,
        xa_id,
        device,
        queued,
        split_village,
        split_households,
        progress_district,
        progress_commune,
    }
}

#[tokio::test]
async fn villages_households_users_targets_and_devices_follow() {
    let mut b = before().await;
    let w = &b.w;
    let app = &w.app;
    let table = table_of(&["181", "296"]);
    let r = reorganize(app, &w.admin, "", &table).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rep = &r.body;
    let new_communes: BTreeSet<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(table.as_bytes())
        .records()
        .skip(2)
        .map(|r| r.unwrap()[2].trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(rep["communes_created"], new_communes.len(), "{}", r.text);
    assert_eq!(rep["villages_moved"], 4);
    assert_eq!(rep["households_moved"], 8);
    assert_eq!(rep["villages_pending"], 1);
    assert_eq!(rep["households_pending"], b.split_households);
    // The village of the commune that gave the new one its code keeps its name.
    assert_eq!(rep["villages_renamed"][0]["to"], "Thôn Nà Pàn (Hưng Đạo)");
    // xa followed Hoa Thám and Hưng Đạo into the new Hoa Thám; huyen's district went to 8
    // communes: an admin decides.
    assert_eq!(rep["assignments_followed"], 2);
    let decide = rep["assignments_to_decide"].as_array().unwrap();
    assert_eq!(decide.len(), 1);
    assert_eq!(decide[0]["username"], "huyen");
    assert_eq!(decide[0]["successors"].as_array().unwrap().len(), 8);
    let to_set: Vec<&str> = rep["targets_to_set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["area"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(to_set.len(), 2);
    assert!(to_set.contains(&"181") && to_set.contains(&"06073"));

    let hoa_tham = app.area(&w.admin, "06073").await;
    assert_ne!(hoa_tham, w.hoa_tham, "a new unit with the old code");
    let province = app.area(&w.admin, "20").await;
    let xa = app
        .get(&format!("/api/v1/users/{}", b.xa_id), &w.admin)
        .await;
    assert_eq!(xa.body["area_ids"], json!([hoa_tham]));

    // xa is to set Hoa Thám's target again; once set, it is off the list.
    let xa_token = app.token("xa").await;
    let to_set = app.get("/api/v1/areas/targets-to-set", &xa_token).await;
    assert_eq!(to_set.status, 200, "{}", to_set.text);
    let items = to_set.body.as_array().unwrap();
    // Hoa Thám's own target, and the district's (Hoa Thám is one of its 8 successors).
    assert_eq!(items.len(), 2, "{}", to_set.text);
    assert!(items.iter().all(|t| t["successors"]
        == json!([{"id": hoa_tham, "code": "06073", "name": "Xã Hoa Thám", "level": "commune"}])));
    let t = app
        .put(
            &format!("/api/v1/campaigns/{}/targets/{hoa_tham}", b.camp),
            &xa_token,
            json!({"kind": "rate_registered", "value": 70.0}),
        )
        .await;
    assert!(t.status.is_success(), "{}", t.text);
    let to_set = app.get("/api/v1/areas/targets-to-set", &xa_token).await;
    assert_eq!(to_set.body, json!([]));
    let all = app.get("/api/v1/areas/targets-to-set", &w.admin).await;
    assert_eq!(
        all.body.as_array().unwrap().len(),
        1,
        "the district's, for its 7 other communes"
    );
    assert_eq!(all.body[0]["successors"].as_array().unwrap().len(), 7);

    // The villages are under the new commune, with their ids; so are their households.
    let kids = app
        .get(&format!("/api/v1/areas?parent={hoa_tham}"), &w.admin)
        .await;
    let ids: BTreeSet<&str> = kids.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(w.v1.as_str()) && ids.contains(w.v_other.as_str()));
    assert_eq!(ids.len(), 4);
    let progress = |area: &str, extra: &str| {
        format!(
            "/api/v1/reports/progress?campaign={}&area={area}{extra}",
            b.camp
        )
    };
    let p = app.get(&progress(&province, ""), &w.admin).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let row = p.body["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "06073")
        .unwrap()
        .clone();
    assert_eq!(row["households"], 8);
    assert_eq!(row["installed"], 1);
    assert_eq!(p.body["area"]["households"], 8);
    assert_eq!(p.body["children"].as_array().unwrap().len(), 8);
    // xa reads their new commune; its households are listed and exported.
    let unvisited = app
        .get(
            &format!("/api/v1/lists/unvisited?campaign={}&per_page=100", b.camp),
            &xa_token,
        )
        .await;
    assert_eq!(unvisited.body["total"], 8, "{}", unvisited.text);
    let csv = app
        .get(
            &format!("/api/v1/households.csv?area={hoa_tham}"),
            &xa_token,
        )
        .await;
    assert_eq!(csv.status, 200);
    // The title row, the headers, the households.
    assert_eq!(csv.text.lines().count(), 1 + 1 + 8, "{}", csv.text);
    assert!(csv.text.contains("Thôn Nà Pàn (Hưng Đạo)"), "{}", csv.text);

    // The map of a day before: the report taken before, the same.
    let then = app
        .get(&progress(&w.district, "&as_of=2025-06-30"), &w.admin)
        .await;
    assert_eq!(then.status, 200, "{}", then.text);
    assert_eq!(then.body, b.progress_district);
    let then = app
        .get(&progress(&w.hoa_tham, "&as_of=2020-12-31"), &xa_token)
        .await;
    assert_eq!(
        then.status, 200,
        "xa reads what became theirs: {}",
        then.text
    );
    assert_eq!(then.body, b.progress_commune);
    // A retired unit on today's map is no day's unit.
    let r = app
        .get(&progress(&w.district, "&as_of=2025-07-01"), &w.admin)
        .await;
    r.assert_problem(422, "validation_failed");
    let export = app
        .get(
            &format!(
                "/api/v1/reports/progress.csv?campaign={}&area={}&as_of=2020-12-31",
                b.camp, w.district
            ),
            &w.admin,
        )
        .await;
    // Units named as they were: the district and its 19 communes, Hưng Đạo among them
    // (after the title row and the headers).
    assert_eq!(
        export.text.lines().count(),
        1 + 1 + 1 + 19,
        "{}",
        export.text
    );
    assert!(export.text.contains(",Xã Hưng Đạo,"), "{}", export.text);

    // The device starts over, holds the same households, and its queued op lands.
    app.pull_all(&mut b.device).await;
    assert_eq!(b.device.resets, 2, "a reset after the move");
    assert_eq!(b.device.copy.len(), 5);
    let pushed = app.push(&mut b.device, 10).await;
    assert_eq!(
        pushed.body["results"][0]["status"], "applied",
        "{}",
        pushed.text
    );
    let h = app
        .get(&format!("/api/v1/households/{}", b.queued), &xa_token)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.body["area_id"], w.v1);
    app.pull_all(&mut b.device).await;
    assert_eq!(b.device.copy.len(), 6);
    let _ = &b.canbo;

    // The split village waits; the new commune's supervisor places it.
    let pending = app.get("/api/v1/areas/pending", &w.admin).await;
    assert_eq!(
        pending.body.as_array().unwrap().len(),
        1,
        "{}",
        pending.text
    );
    let cands: BTreeSet<&str> = pending.body[0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(cands, BTreeSet::from(["10945", "10966"]));
    assert_eq!(pending.body[0]["households"], b.split_households);
    let binh_giang = app.area(&w.admin, "10966").await;
    let hai_phong = app.area(&w.admin, "31").await;
    let p = app.get(&progress(&hai_phong, ""), &w.admin).await;
    assert_eq!(p.body["not_yet_assigned"]["villages"], 1, "{}", p.text);
    assert_eq!(p.body["not_yet_assigned"]["households"], b.split_households);
    let sup = app
        .user(&w.admin, "binhgiang", "supervisor", &[&binh_giang])
        .await;
    let mine = app.get("/api/v1/areas/pending", &sup).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    let place = format!("/api/v1/areas/{}/place", b.split_village);
    let r = app
        .post(&place, &xa_token, json!({"commune_id": binh_giang}))
        .await;
    r.assert_problem(403, "out_of_scope");
    let r = app
        .post(&place, &sup, json!({"commune_id": hoa_tham}))
        .await;
    r.assert_problem(403, "forbidden");
    let r = app
        .post(&place, &sup, json!({"commune_id": binh_giang}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["parent_id"], binh_giang);
    let r = app
        .post(&place, &sup, json!({"commune_id": binh_giang}))
        .await;
    r.assert_problem(409, "not_pending");
    assert_eq!(
        app.get("/api/v1/areas/pending", &w.admin).await.body,
        json!([])
    );
    let p = app.get(&progress(&binh_giang, ""), &sup).await;
    assert_eq!(p.body["area"]["households"], b.split_households);
    assert!(p.body["not_yet_assigned"].is_null());
    let list = app.get("/api/v1/households?per_page=100", &sup).await;
    assert_eq!(list.body["total"], b.split_households);
    w.app.assert_tallies().await;
    w.app.assert_duplicate_keys().await;
    // The audit trail holds the reorganization and the one placement that happened (the
    // refused ones left nothing), by whom, about which village.
    let entries = |action: &str| {
        format!(
            "SELECT count(*) AS n FROM audit_log a JOIN users u ON u.id = a.actor_id \
             WHERE a.action = '{action}' AND a.actor = u.username AND u.username = '{}' \
             AND (a.action <> 'village_placed' OR a.area_id = '{}')",
            if action == "village_placed" {
                "binhgiang"
            } else {
                "admin"
            },
            b.split_village
        )
    };
    assert_eq!(app.number(entries("reorganization_applied")).await, 1);
    assert_eq!(app.number(entries("village_placed")).await, 1);
    let both = "SELECT count(*) AS n FROM audit_log \
                WHERE action IN ('reorganization_applied', 'village_placed')";
    assert_eq!(app.number(both.into()).await, 2, "no other such entry");
}

#[tokio::test]
async fn bad_tables_are_refused_naming_the_line_and_change_nothing() {
    let w = World::new().await;
    let app = &w.app;
    let table = table_of(&["181"]);
    let before = tree_counts(app).await;
    let lines: Vec<&str> = table.lines().collect();
    // Cut in the middle of a row.
    let cut = format!("{}\n{}", lines[..5].join("\n"), &lines[5][..30]);
    let r = reorganize(app, &w.admin, "", &cut).await;
    r.assert_problem(400, "bad_conversion_table");
    assert!(
        r.body["detail"].as_str().unwrap().starts_with("line 6:"),
        "{}",
        r.text
    );
    // An old province the map does not have.
    let unknown = table.replacen(",Tỉnh Lạng Sơn (20)", ",Tỉnh Atlantis (99)", 1);
    let line = unknown
        .lines()
        .position(|l| l.contains("Atlantis"))
        .unwrap()
        + 1;
    let r = reorganize(app, &w.admin, "", &unknown).await;
    r.assert_problem(400, "unknown_province");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("line {line}: old province `Tỉnh Atlantis (99)`")),
        "{}",
        r.text
    );
    // An old code that names no unit.
    let nowhere = table.replacen(",06067,", ",06999,", 1);
    let line = nowhere.lines().position(|l| l.contains("06999")).unwrap() + 1;
    let r = reorganize(app, &w.admin, "", &nowhere).await;
    r.assert_problem(400, "unmatched_codes");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("line {line}: old code 06999")),
        "{}",
        r.text
    );
    // Not an admin; no effective day; an empty table.
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    reorganize(app, &xa, "", &table)
        .await
        .assert_problem(403, "forbidden");
    let res = app
        .client
        .post(format!("{}/api/v1/areas/reorganizations", app.base))
        .bearer_auth(&w.admin)
        .body(table.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(TestApp::read(res).await.status, 400);
    reorganize(app, &w.admin, "", "")
        .await
        .assert_problem(400, "bad_conversion_table");
    assert_eq!(tree_counts(app).await, before, "nothing changed");
    // Applied once; another table for the same day is refused.
    assert_eq!(reorganize(app, &w.admin, "", &table).await.status, 200);
    let other = table_of(&["181", "182"]);
    reorganize(app, &w.admin, "&accept_unmatched=true", &other)
        .await
        .assert_problem(409, "reorganized");
    // The old map's list cannot come back over the new one.
    let list = std::fs::read(unit_data("units-2025-01-04.csv")).unwrap();
    app.post_csv("/api/v1/areas/import", &w.admin, list)
        .await
        .assert_problem(409, "reorganized");
    // Placing: an unknown village, a village that is not waiting.
    let r = app
        .post(
            &format!("/api/v1/areas/{}/place", Uuid::new_v4()),
            &w.admin,
            json!({"commune_id": w.hoa_tham}),
        )
        .await;
    r.assert_problem(404, "not_found");
    let hoa_tham = app.area(&w.admin, "06073").await;
    let r = app
        .post(
            &format!("/api/v1/areas/{}/place", w.v1),
            &w.admin,
            json!({"commune_id": hoa_tham}),
        )
        .await;
    r.assert_problem(409, "not_pending");
}

#[tokio::test]
async fn a_supervisor_places_a_waiting_village_on_the_dashboard() {
    let Some(br) = common::browser::Browser::start().await else {
        return;
    };
    let b = before().await;
    let w = &b.w;
    let app = &w.app;
    let r = reorganize(app, &w.admin, "", &table_of(&["181", "296"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let binh_giang = app.area(&w.admin, "10966").await;
    app.user(&w.admin, "binhgiang", "supervisor", &[&binh_giang])
        .await;

    br.goto(&format!("{}/", app.base)).await;
    br.wait_for("return !document.getElementById('login').hidden")
        .await;
    br.type_into("#username", "binhgiang").await;
    br.type_into("#password", common::PASSWORD).await;
    br.click("#login-button").await;
    // The waiting village, with its candidates; the commune's report counts it apart.
    br.wait_for("return document.querySelectorAll('#pending-list .pending-row').length === 1")
        .await;
    br.wait_for("return !!document.getElementById('unassigned')")
        .await;
    let options = br
        .script(
            "return [...document.querySelectorAll('#pending-list option')].map(o => o.textContent)",
        )
        .await;
    assert_eq!(options, json!(["Xã Kẻ Sặt", "Xã Bình Giang"]));
    br.script(&format!(
        "document.querySelector('#pending-list select').value = '{binh_giang}'; return true"
    ))
    .await;
    br.click("#pending-list button").await;
    br.wait_for("return document.getElementById('pending').hidden")
        .await;
    br.wait_for("return !document.getElementById('unassigned') && document.querySelectorAll('#areas .area-row').length === 1")
        .await;
    let village = app
        .get(&format!("/api/v1/areas/{}", b.split_village), &w.admin)
        .await;
    assert_eq!(village.body["parent_id"], binh_giang);
    assert_eq!(
        app.get("/api/v1/areas/pending", &w.admin).await.body,
        json!([])
    );
}
