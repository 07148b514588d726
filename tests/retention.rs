//! Retention and erasure: a campaign's personal data is anonymized once its retention period
//! has run out, one person is erased on request. Afterwards no text column of any table holds
//! a removed value, every report figure is what it was, devices hold the anonymized records
//! after their next pull, and each applied run is one audit entry.

mod common;

use common::client::Device;
use common::{TestApp, World};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every text column of every table: (table, column).
async fn text_columns(app: &TestApp) -> Vec<(String, String)> {
    app.db(|conn| {
        #[derive(diesel::QueryableByName)]
        struct Col {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            c: String,
        }
        let sql = match conn.backend() {
            gocua::db::Backend::Postgres => {
                "SELECT table_name::text AS t, column_name::text AS c \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
            }
            gocua::db::Backend::Sqlite => {
                "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND lower(p.type) IN ('text', '')"
            }
        };
        let cols: Vec<Col> = gocua::with_conn!(conn, |c| diesel::RunQueryDsl::load(
            diesel::sql_query(sql),
            c
        ))
        .unwrap();
        cols.into_iter().map(|c| (c.t, c.c)).collect()
    })
    .await
}

/// Where each of `values` (or its search form: lower case, no accents) is still stored.
async fn traces(app: &TestApp, values: &[&str]) -> Vec<String> {
    let cols = text_columns(app).await;
    assert!(cols.len() > 50, "{cols:?}");
    let mut found = Vec::new();
    for v in values {
        let folded = gocua::domain::text::search_key(v).trim().to_owned();
        for needle in [v.to_string(), folded] {
            for (t, c) in &cols {
                let sql = format!(
                    "SELECT COUNT(*) AS n FROM {t} WHERE CAST({c} AS text) LIKE '%{}%'",
                    needle.replace('\'', "''")
                );
                if app.number(sql).await > 0 {
                    found.push(format!("{t}.{c} holds `{needle}`"));
                }
            }
        }
    }
    found
}

/// The figures of a campaign's reports: progress, trend and the work lists' totals.
async fn figures(app: &TestApp, admin: &str, campaign: &str, area: &str) -> Value {
    let mut out = json!({});
    for path in ["reports/progress", "reports/trend"] {
        let r = app
            .get(
                &format!("/api/v1/{path}?campaign={campaign}&area={area}"),
                admin,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        out[path] = r.body;
    }
    for list in ["priority-pending", "unvisited", "revisit"] {
        let r = app
            .get(
                &format!("/api/v1/lists/{list}?campaign={campaign}&area={area}"),
                admin,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        out[list] = r.body["total"].clone();
    }
    out
}

async fn campaign(app: &TestApp, admin: &str, name: &str, from: &str, to: &str) -> String {
    let r = app
        .post(
            "/api/v1/campaigns",
            admin,
            json!({"name": name, "starts_on": from, "ends_on": to}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

fn member(h: Uuid, name: &str, year: i32, extra: Value) -> Value {
    let mut data = json!({"household_id": h, "full_name": name, "birth_year": year});
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    data
}

/// The personal values the scenario stores for household A, all removed by the
/// anonymization of the 2020 campaign.
const A_VALUES: &[&str] = &[
    "Lầu Văn Pủa",
    "Xóm suối Khuổi Rằng số 7",
    "0912345678",
    "Nhà sàn cạnh cối giã gạo",
    "Nông Thị Lựu",
    "Cách ly tại nhà đến 20/8",
    "Hoàng Thị Én",
    "Đã chuyển xuống Lạng Sơn",
    "Gặp chủ hộ ở nương ngô",
    "Nông Thị Lưu Ly",
];

#[tokio::test]
async fn a_campaign_past_its_retention_is_anonymized_and_its_figures_stay() {
    let w = World::new().await;
    let app = &w.app;
    let old = campaign(app, &w.admin, "Bluezone 2020", "2020-08-01", "2020-12-31").await;
    // Ended, but within its retention period (180 days by default) until 2027.
    let recent = campaign(app, &w.admin, "Tiêm chủng 2026", "2026-06-01", "2026-09-30").await;
    let canbo = app
        .user(&w.admin, "canbo", "canvasser", &[&w.v1, &w.v2])
        .await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;

    // Household A, of the 2020 campaign only: three members (one deleted), a visit, statuses.
    let (a, thu, luu, en) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let mut d = Device::new(&canbo);
    d.queue_op(
        "household.upsert",
        a,
        a,
        json!({"area_id": w.v1, "head_name": "Lầu Văn Pủa", "address": "Xóm suối Khuổi Rằng số 7",
            "phone": "0912345678", "notes": "Nhà sàn cạnh cối giã gạo", "lat": 21.8512, "lon": 106.3345}),
    );
    d.queue_op(
        "member.upsert",
        thu,
        a,
        member(
            a,
            "Lầu Văn Pủa",
            1967,
            json!({"phone": "0912345678", "priority": "quarantine_home", "smartphone": "yes",
                "notes": "Cách ly tại nhà đến 20/8"}),
        ),
    );
    d.queue_op(
        "member.upsert",
        luu,
        a,
        member(a, "Nông Thị Lựu", 1989, json!({"smartphone": "yes"})),
    );
    d.queue_op(
        "member.upsert",
        en,
        a,
        member(a, "Hoàng Thị Én", 2001, json!({})),
    );
    for (m, status) in [(thu, "installed"), (luu, "refused")] {
        d.queue_op(
            "adoption.set",
            m,
            a,
            json!({"campaign_id": old, "status": status}),
        );
    }
    d.queue_op(
        "visit.record",
        Uuid::new_v4(),
        a,
        json!({"household_id": a, "campaign_id": old, "visited_at": "2020-08-21T03:00:00Z",
            "outcome": "come_back_later", "notes": "Gặp chủ hộ ở nương ngô", "lat": 21.8513, "lon": 106.3346}),
    );
    // Household B, also of the recent campaign: kept.
    let (b, mai) = (Uuid::new_v4(), Uuid::new_v4());
    d.queue_op(
        "household.upsert",
        b,
        b,
        json!({"area_id": w.v2, "head_name": "Lương Thị Mai", "address": "Bản Khuổi Hẩu",
            "phone": "0987654321"}),
    );
    d.queue_op(
        "member.upsert",
        mai,
        b,
        member(
            b,
            "Lương Thị Mai",
            1975,
            json!({"priority": "testing_required"}),
        ),
    );
    d.queue_op(
        "visit.record",
        Uuid::new_v4(),
        b,
        json!({"household_id": b, "campaign_id": old, "visited_at": "2020-09-02T03:00:00Z", "outcome": "met"}),
    );
    d.queue_op(
        "adoption.set",
        mai,
        b,
        json!({"campaign_id": recent, "status": "installed"}),
    );
    app.sync(&mut d).await;
    assert!(
        d.acked.values().all(|r| r["status"] == "applied"),
        "{:?}",
        d.acked
    );

    // The conflict books hold personal values: a name that lost to a concurrent edit, and
    // the edit of a deleted member.
    let mut others: Vec<Device> = Vec::new();
    for _ in 0..2 {
        let mut o = Device::new(&canbo);
        app.sync(&mut o).await;
        others.push(o);
    }
    let t = chrono::Utc::now().timestamp_millis() - 600_000;
    for (i, o) in others.iter_mut().enumerate() {
        o.fixed_clock = Some(t + 1_000 * i as i64);
        let name = ["Nông Thị Lưu Ly", "Nông Thị Lựu"][i];
        o.queue_op("member.upsert", luu, a, json!({ "full_name": name }));
        app.sync(o).await;
    }
    let read = app.get(&format!("/api/v1/members/{en}"), &w.admin).await;
    let r = app
        .delete(&format!("/api/v1/members/{en}"), &w.admin, &read.etag())
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    d.queue_op(
        "member.upsert",
        en,
        a,
        json!({"notes": "Đã chuyển xuống Lạng Sơn"}),
    );
    app.sync(&mut d).await;
    let books = app.get("/api/v1/conflicts?per_page=500", &w.admin).await;
    let fields: Vec<&str> = books.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 2, "{}", books.text);
    assert!(
        fields.contains(&"full_name") && fields.contains(&"*"),
        "{fields:?}"
    );
    let before = traces(app, A_VALUES).await;
    assert!(before.len() >= A_VALUES.len(), "{before:?}");
    let figures_before = (
        figures(app, &w.admin, &old, &w.district).await,
        figures(app, &w.admin, &recent, &w.district).await,
    );
    let pull_version = d.seen[&a];

    // Only admins; not while the retention period runs; unknown campaigns are 404.
    let anonymize = |c: &str| format!("/api/v1/campaigns/{c}/anonymize");
    let r = app.post(&anonymize(&old), &xa, json!({})).await;
    r.assert_problem(403, "forbidden");
    let r = app.post(&anonymize(&old), &canbo, json!({})).await;
    r.assert_problem(403, "forbidden");
    let r = app
        .post(
            &format!("{}?apply=true", anonymize(&recent)),
            &w.admin,
            json!({}),
        )
        .await;
    r.assert_problem(409, "retention_running");
    assert!(
        r.body["detail"].as_str().unwrap().contains("2027-03-30"),
        "{}",
        r.text
    );
    let r = app
        .post(&anonymize(&Uuid::new_v4().to_string()), &w.admin, json!({}))
        .await;
    r.assert_problem(404, "not_found");
    let r = app
        .post(
            &format!("{}?apply=maybe", anonymize(&old)),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A dry run says what would go, and writes nothing.
    let r = app.post(&anonymize(&old), &w.admin, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let expected = json!({"campaign_id": old, "campaign": "Bluezone 2020", "ends_on": "2020-12-31",
        "retention_days": 180, "anonymizable_from": "2021-06-30", "dry_run": true,
        "households": 1, "members": 3, "visits": 1, "conflicts": 2, "kept": 1, "already_anonymized": 0});
    assert_eq!(r.body, expected);
    assert_eq!(traces(app, A_VALUES).await, before);

    // Applied.
    let r = app
        .post(
            &format!("{}?apply=true", anonymize(&old)),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut applied = expected.clone();
    applied["dry_run"] = json!(false);
    assert_eq!(r.body, applied);
    let left = traces(app, A_VALUES).await;
    assert!(left.is_empty(), "{left:#?}");
    let positions = app
        .number(format!(
            "SELECT COUNT(*) AS n FROM households h JOIN visits v ON v.household_id = h.id \
             WHERE h.id = '{a}' AND (h.lat IS NOT NULL OR h.lon IS NOT NULL OR v.lat IS NOT NULL \
             OR v.lon IS NOT NULL)"
        ))
        .await;
    assert_eq!(positions, 0);
    // Household B, of a campaign within its retention, is untouched.
    assert!(traces(app, &["Lương Thị Mai", "0987654321"]).await.len() >= 3);

    // The members keep their decade of birth, statuses and priority; figures are unchanged.
    let read = app.get(&format!("/api/v1/members/{thu}"), &w.admin).await;
    assert_eq!(read.body["full_name"], "");
    assert_eq!(read.body["birth_year"], Value::Null);
    assert_eq!(read.body["birth_decade"], 1960);
    assert_eq!(read.body["priority"], "quarantine_home");
    assert_eq!(read.body["smartphone"], "yes");
    assert!(read.body["anonymized_at"].is_string(), "{}", read.text);
    let figures_after = (
        figures(app, &w.admin, &old, &w.district).await,
        figures(app, &w.admin, &recent, &w.district).await,
    );
    assert_eq!(figures_after, figures_before);
    app.assert_tallies().await;

    // Devices receive the anonymized records at their next pull.
    app.pull_all(&mut d).await;
    assert!(d.seen[&a] > pull_version);
    let copy = serde_json::to_string(&d.copy).unwrap();
    for v in A_VALUES {
        assert!(!copy.contains(v), "the device still holds `{v}`");
    }
    let (_, m) = &d.copy[&format!("member/{luu}")];
    assert_eq!(
        (
            m["full_name"].clone(),
            m["birth_decade"].clone(),
            m["smartphone"].clone()
        ),
        (json!(""), json!(1980), json!("yes"))
    );
    assert!(copy.contains("Lương Thị Mai"));

    // An edit made before the anonymization and pushed after it loses, and leaves no trace.
    let late = &mut others[0];
    late.queue_op(
        "household.upsert",
        a,
        a,
        json!({"head_name": "Lầu Văn Pủa", "notes": "Nhà sàn cạnh cối giã gạo"}),
    );
    // Nor is an edit of the deleted member kept for review any more.
    late.queue_op(
        "member.upsert",
        en,
        a,
        json!({"notes": "Đã chuyển xuống Lạng Sơn"}),
    );
    app.sync(late).await;
    assert!(traces(app, A_VALUES).await.is_empty());
    assert_eq!(app.count("conflicts").await, 2);

    // Again: nothing left to do.
    let r = app
        .post(
            &format!("{}?apply=true", anonymize(&old)),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (
            r.body["households"].clone(),
            r.body["already_anonymized"].clone(),
            r.body["kept"].clone()
        ),
        (json!(0), json!(1), json!(1))
    );

    // Each applied run is one audit entry; dry runs and refusals none.
    let audit = app
        .get("/api/v1/audit?action=campaign_anonymized", &w.admin)
        .await;
    let entries: Vec<(Value, Value, Value)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].clone(),
                e["subject"].clone(),
                e["detail"].clone(),
            )
        })
        .collect();
    let subject = json!(format!("campaign/{old}"));
    let detail = |n: i64, m: i64, v: i64, c: i64| {
        json!(
            json!({"households": n, "members": m, "visits": v, "conflicts": c, "kept": 1})
                .to_string()
        )
    };
    assert_eq!(
        entries,
        [
            (json!("admin"), subject.clone(), detail(0, 0, 0, 0)),
            (json!("admin"), subject, detail(1, 3, 1, 2)),
        ]
    );
}

#[tokio::test]
async fn an_erased_person_disappears_from_devices_at_their_next_pull() {
    let w = World::new().await;
    let app = &w.app;
    let canbo = app.user(&w.admin, "canbo", "canvasser", &[&w.v1]).await;
    let xa = app.user(&w.admin, "xa", "supervisor", &[&w.hoa_tham]).await;
    let (h, sang, hoa) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut d = Device::new(&canbo);
    d.queue_op(
        "household.upsert",
        h,
        h,
        json!({"area_id": w.v1, "head_name": "Triệu Văn Sáng", "address": "Bản Nà Lẹng",
            "phone": "0977111222"}),
    );
    d.queue_op(
        "member.upsert",
        sang,
        h,
        member(
            h,
            "Triệu Văn Sáng",
            1958,
            json!({"phone": "0977111222", "notes": "Chờ xét nghiệm lần hai", "priority": "testing_required"}),
        ),
    );
    d.queue_op(
        "member.upsert",
        hoa,
        h,
        member(h, "Triệu Thị Hoa", 1990, json!({})),
    );
    app.sync(&mut d).await;
    // Another device queues an edit of the person offline, before the erasure.
    let mut late = Device::new(&canbo);
    app.sync(&mut late).await;
    late.queue_op(
        "member.upsert",
        sang,
        h,
        json!({"full_name": "Triệu Văn Sáng (ông)"}),
    );
    let erase = format!("/api/v1/members/{sang}/erase");
    let gone = ["Triệu Văn Sáng", "0977111222", "Chờ xét nghiệm lần hai"];
    let before = traces(app, &gone).await;

    for token in [&xa, &canbo] {
        app.post(&erase, token, json!({}))
            .await
            .assert_problem(403, "forbidden");
    }
    app.post(
        &format!("/api/v1/members/{}/erase", Uuid::new_v4()),
        &w.admin,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    let r = app.post(&erase, &w.admin, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let expected = json!({"household_id": h, "member_id": sang, "dry_run": true, "members": 1,
        "visits": 0, "head_of_household": true, "conflicts": 0, "already_erased_at": null});
    assert_eq!(r.body, expected);
    assert_eq!(traces(app, &gone).await, before);

    let r = app
        .post(&format!("{erase}?apply=true"), &w.admin, json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dry_run"], false);
    let left = traces(app, &gone).await;
    assert!(left.is_empty(), "{left:#?}");
    // The household's other member and address stay.
    let household = app.get(&format!("/api/v1/households/{h}"), &w.admin).await;
    assert_eq!(
        (
            household.body["head_name"].clone(),
            household.body["address"].clone(),
            household.body["phone"].clone()
        ),
        (json!(""), json!("Bản Nà Lẹng"), Value::Null)
    );

    app.pull_all(&mut d).await;
    let copy = serde_json::to_string(&d.copy).unwrap();
    for v in gone {
        assert!(!copy.contains(v), "the device still holds `{v}`");
    }
    assert!(copy.contains("Triệu Thị Hoa"));
    let (_, m) = &d.copy[&format!("member/{sang}")];
    assert_eq!(
        (
            m["full_name"].clone(),
            m["birth_decade"].clone(),
            m["priority"].clone()
        ),
        (json!(""), json!(1950), json!("testing_required"))
    );

    // The edit queued before the erasure loses to it and is not kept for review.
    app.sync(&mut late).await;
    assert!(traces(app, &["Triệu Văn Sáng"]).await.is_empty());
    assert_eq!(app.count("conflicts").await, 0);

    // Erasing the whole household, from the command line: a dry run, then applied.
    let gocua = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gocua"))
            .args(args)
            .env("GOCUA_DATABASE_URL", &app.db.url)
            .env("GOCUA_LOG_LEVEL", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let id = h.to_string();
    let (ok, out, err) = gocua(&["privacy", "erase", "--household", &id]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Dry run, nothing written"), "{out}");
    assert!(traces(app, &["Triệu Thị Hoa", "Bản Nà Lẹng"]).await.len() >= 2);
    let (ok, out, err) = gocua(&["privacy", "erase", "--household", &id, "--apply"]);
    assert!(ok, "{err}");
    assert!(out.contains("(2 members, 0 visits)"), "{out}");
    assert!(traces(app, &["Triệu Thị Hoa", "Bản Nà Lẹng"])
        .await
        .is_empty());
    let (ok, _, err) = gocua(&["privacy", "anonymize", "--campaign", "Không có"]);
    assert!(!ok && err.contains("no campaign named `Không có`"), "{err}");
    app.assert_tallies().await;
    app.assert_duplicate_keys().await;

    let audit = app.get("/api/v1/audit", &w.admin).await;
    let erasures: Vec<(Value, Value, Value)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().ends_with("_erased"))
        .map(|e| {
            (
                e["action"].clone(),
                e["actor"].clone(),
                e["subject"].clone(),
            )
        })
        .collect();
    assert_eq!(
        erasures,
        [
            (
                json!("household_erased"),
                json!("cli"),
                json!(format!("household/{h}"))
            ),
            (
                json!("member_erased"),
                json!("admin"),
                json!(format!("member/{sang}"))
            ),
        ]
    );
    // Supervisors read the entries of their areas: the erasure is in theirs.
    let theirs = app.get("/api/v1/audit?action=member_erased", &xa).await;
    assert_eq!(theirs.body["total"], 1, "{}", theirs.text);
}
