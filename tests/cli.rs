//! The command line: migrate, user add, areas import (twice), and clear connection errors.

mod common;

use common::{unit_data, TestDb};
use std::io::Write;
use std::process::{Command, Stdio};

fn gocua(db: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gocua"))
        .args(args)
        .env("GOCUA_DATABASE_URL", db)
        .env("GOCUA_LOG_LEVEL", "warn")
        .env_remove("GOCUA_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn migrate_add_users_and_import_areas_from_the_command_line() {
    let db = TestDb::new();
    let (ok, out, err) = gocua(&db.url, &["migrate"], "");
    assert!(ok, "{out}{err}");

    let file = unit_data("units-2025-01-04.csv");
    let file = file.to_str().unwrap();
    let (ok, out, err) = gocua(&db.url, &["areas", "import", file], "");
    assert!(ok, "{err}");
    assert!(out.contains("0 updated, 0 unchanged"), "{out}");
    let (ok, out, _) = gocua(&db.url, &["areas", "import", file], "");
    assert!(ok);
    assert!(
        out.contains("0 inserted, 0 updated") && out.contains("Nothing changed"),
        "{out}"
    );
    // The list built into the binary is the same file: importing it changes nothing.
    let (ok, out, err) = gocua(&db.url, &["areas", "import", "--official"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("10051 communes") && out.contains("Nothing changed"),
        "{out}"
    );
    let (ok, _, err) = gocua(&db.url, &["areas", "import"], "");
    assert!(!ok && err.contains("<FILE>"), "{err}");

    let (ok, out, err) = gocua(
        &db.url,
        &[
            "user",
            "add",
            "--username",
            "xa",
            "--role",
            "supervisor",
            "--area",
            "06073",
        ],
        "gocua-secret-1\n",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Created xa (supervisor)"), "{out}");
    let (ok, _, err) = gocua(
        &db.url,
        &["user", "add", "--username", "xa", "--role", "supervisor"],
        "gocua-secret-1\n",
    );
    assert!(!ok);
    assert!(err.contains("taken"), "{err}");
    let (ok, _, err) = gocua(
        &db.url,
        &["user", "add", "--username", "yy", "--role", "boss"],
        "gocua-secret-1\n",
    );
    assert!(!ok && err.contains("role"), "{err}");
    let (ok, _, err) = gocua(
        &db.url,
        &["user", "add", "--username", "zz", "--role", "admin"],
        "short\n",
    );
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, _, err) = gocua(
        &db.url,
        &[
            "user",
            "add",
            "--username",
            "ww",
            "--role",
            "canvasser",
            "--area",
            "99999",
        ],
        "gocua-secret-1\n",
    );
    assert!(!ok && err.contains("99999"), "{err}");

    // The user can log in to a server on that database and sees their commune.
    let mut settings = common::settings(&db.url);
    settings.bind = "127.0.0.1:0".into();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = gocua::app::Application::build(settings).unwrap();
            tx.send((app.port(), app.handle())).unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    let (port, handle) = tokio::task::spawn_blocking(move || rx.recv().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "xa", "password": "gocua-secret-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let areas: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/areas"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(areas["items"][0]["name"], "Xã Hoa Thám");
    drop(handle.stop(false));
    t.join().unwrap();
}

#[test]
fn connection_errors_show_the_real_cause() {
    let (ok, _, err) = gocua("sqlite:///no/such/dir/gocua.db", &["migrate"], "");
    assert!(!ok);
    assert!(
        err.contains("cannot connect to the database") && err.contains("unable to open"),
        "{err}"
    );
    let (ok, _, err) = gocua("mysql://localhost/x", &["migrate"], "");
    assert!(!ok && err.contains("unsupported database URL"), "{err}");
    if common::backend() == "postgres" {
        let (ok, _, err) = gocua(
            "postgres://postgres@127.0.0.1:5432/gocua_no_such_db",
            &["migrate"],
            "",
        );
        assert!(!ok);
        assert!(
            err.contains("gocua_no_such_db") && err.contains("does not exist"),
            "{err}"
        );
    }
    let (ok, _, err) = gocua("sqlite::memory:", &["serve"], "");
    assert!(!ok && err.contains("GOCUA_JWT_SECRET"), "{err}");
}

/// `gocua areas reorganize`: a dry run, the run, a second run, and a bad table.
#[tokio::test]
async fn reorganize_from_the_command_line() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let units = std::fs::read_to_string(unit_data("units-2025-01-04.csv")).unwrap();
    let mut lines = units.lines();
    let mut list = format!("{}\n", lines.next().unwrap());
    for l in lines.filter(|l| l.split(',').nth(3) == Some("181")) {
        list.push_str(l);
        list.push('\n');
    }
    let table = std::fs::read_to_string(unit_data("reorganization-2025-07-01.csv")).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .enumerate()
        .filter(|(i, l)| *i < 2 || l.contains("(181)"))
        .map(|(_, l)| l)
        .collect();
    let list_file = dir.path().join("list.csv");
    let table_file = dir.path().join("table.csv");
    std::fs::write(&list_file, list).unwrap();
    std::fs::write(&table_file, rows.join("\n") + "\n").unwrap();
    let (list_file, table_file) = (list_file.to_str().unwrap(), table_file.to_str().unwrap());
    let (ok, _, err) = gocua(&db.url, &["areas", "import", list_file], "");
    assert!(ok, "{err}");

    let run = |extra: &[&str]| {
        let mut args = vec![
            "areas",
            "reorganize",
            table_file,
            "--effective",
            "2025-07-01",
        ];
        args.extend_from_slice(extra);
        gocua(&db.url, &args, "")
    };
    let (ok, out, err) = run(&["--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Dry run, nothing written"), "{out}");
    assert!(out.contains("created: 1 provinces, 8 communes"), "{out}");
    let (ok, out, err) = run(&[]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("Applied the conversion table (19 rows)"),
        "{out}"
    );
    assert!(
        out.contains("retired: 1 provinces, 1 districts, 19 communes"),
        "{out}"
    );
    let (ok, out, _) = run(&["--json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["already_applied_at"].is_string(), "{out}");
    let (ok, out, _) = run(&[]);
    assert!(
        ok && out.starts_with("Nothing changed: this table was already applied"),
        "{out}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{}\n{}\nTỉnh Lạng Sơn (20),Xã X,06073\n", rows[0], rows[1]),
    )
    .unwrap();
    let (ok, _, err) = gocua(
        &db.url,
        &[
            "areas",
            "reorganize",
            bad.to_str().unwrap(),
            "--effective",
            "2025-07-01",
        ],
        "",
    );
    assert!(!ok && err.contains("line 3:"), "{err}");
    let (ok, _, err) = gocua(&db.url, &["areas", "reorganize", table_file], "");
    assert!(!ok && err.contains("--effective"), "{err}");
    // The audit trail holds the import and the one reorganization applied, by the command
    // line; the dry run, the repeats and the refused tables left nothing.
    assert_eq!(
        audited(&db),
        [
            ("areas_imported".into(), "cli".into()),
            ("reorganization_applied".into(), "cli".into())
        ]
    );
}

/// The audit trail's (action, actor), oldest first.
fn audited(db: &TestDb) -> Vec<(String, String)> {
    let pool = db.pool();
    let mut pc = pool.get().unwrap();
    let f = gocua::store::audit::Filter::default();
    let page = gocua::store::PageReq {
        page: 1,
        per_page: 500,
    };
    let (rows, _) = gocua::store::audit::list(&mut pc.conn(), &f, page, false).unwrap();
    rows.into_iter()
        .rev()
        .map(|e| (e.action, e.actor))
        .collect()
}

/// Runs SQL on the test database directly.
fn sql(db: &TestDb, statements: &str) {
    use diesel::connection::SimpleConnection;
    let pool = db.pool();
    let mut pc = pool.get().unwrap();
    gocua::with_conn!(&mut pc.conn(), |c| c.batch_execute(statements)).unwrap();
}

#[tokio::test]
async fn report_tallies_are_built_for_an_older_database_checked_and_rebuilt() {
    let db = TestDb::new();
    let (ok, out, err) = gocua(&db.url, &["demo", "seed"], "");
    assert!(ok && out.contains("Demo data seeded"), "{out}{err}");
    let (ok, out, err) = gocua(&db.url, &["tallies", "check"], "");
    assert!(
        ok && out.contains("The tallies match the rows."),
        "{out}{err}"
    );

    // A database from before the tallies: they are counted at the next start.
    sql(
        &db,
        "DELETE FROM tally_state; DELETE FROM tally_villages; DELETE FROM tally_campaigns; \
         DELETE FROM tally_days;",
    );
    let (ok, _, err) = gocua(&db.url, &["migrate"], "");
    assert!(ok, "{err}");
    let (ok, out, err) = gocua(&db.url, &["tallies", "check"], "");
    assert!(ok && out.contains("match"), "{out}{err}");
    let counted = db.pool();
    let n = {
        let mut pc = counted.get().unwrap();
        gocua::store::tallies::read_all(&mut pc.conn()).unwrap()
    };
    assert!(n.villages.len() >= 4 && !n.days.is_empty(), "{n:?}");

    // Rows written around gocua: the check names the village, the rebuild mends it.
    sql(
        &db,
        "UPDATE tally_villages SET households = households + 1 \
         WHERE area_id = (SELECT area_id FROM tally_villages ORDER BY area_id LIMIT 1)",
    );
    let (ok, out, err) = gocua(&db.url, &["tallies", "check"], "");
    assert!(!ok, "{out}");
    assert!(err.contains("the tallies of 1 villages differ"), "{err}");
    assert!(
        out.starts_with("village ") && out.contains("households"),
        "{out}"
    );
    let (ok, out, err) = gocua(&db.url, &["tallies", "rebuild"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Counted {} villages anew", n.villages.len())),
        "{out}"
    );
    let (ok, out, err) = gocua(&db.url, &["tallies", "check"], "");
    assert!(ok && out.contains("match"), "{out}{err}");
    assert_eq!(
        audited(&db).last(),
        Some(&("tallies_rebuilt".to_owned(), "cli".to_owned()))
    );
    let (ok, out, err) = gocua(&db.url, &["sync", "prune", "--days", "0"], "");
    assert!(ok, "{out}{err}");
    assert_eq!(
        audited(&db).last(),
        Some(&("sync_pruned".to_owned(), "cli".to_owned()))
    );
}

/// The pairs of possible duplicates, by rule, and the keys, read directly.
fn duplicate_counts(db: &TestDb) -> (Vec<(String, i64)>, i64) {
    let (pairs, keys, _) = duplicate_counts_and_heads(db);
    (pairs, keys)
}

/// `duplicate_counts`, and the live households with their head name's key.
fn duplicate_counts_and_heads(db: &TestDb) -> (Vec<(String, i64)>, i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct Rule {
        #[diesel(sql_type = diesel::sql_types::Text)]
        rule: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let pool = db.pool();
    let mut pc = pool.get().unwrap();
    let mut conn = pc.conn();
    gocua::with_conn!(&mut conn, |c| {
        let mut pairs: Vec<Rule> = diesel::RunQueryDsl::load(
            diesel::sql_query("SELECT rule, COUNT(*) AS n FROM duplicates GROUP BY rule"),
            c,
        )
        .unwrap();
        pairs.sort_by(|a, b| a.rule.cmp(&b.rule));
        let keys: N = diesel::RunQueryDsl::get_result(
            diesel::sql_query("SELECT COUNT(*) AS n FROM duplicate_keys"),
            c,
        )
        .unwrap();
        let heads: N = diesel::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT COUNT(*) AS n FROM households h WHERE h.deleted_at IS NULL AND EXISTS \
                 (SELECT 1 FROM duplicate_keys k WHERE k.household_id = h.id AND k.kind = 'head')",
            ),
            c,
        )
        .unwrap();
        (
            pairs.into_iter().map(|r| (r.rule, r.n)).collect(),
            keys.n,
            heads.n,
        )
    })
}

/// `gocua duplicates scan` finds the pairs of a database written before the write path kept
/// them: the demo's household registered twice.
#[tokio::test]
async fn duplicates_scan_finds_the_pairs_of_an_existing_database() {
    let db = TestDb::new();
    let (ok, _, err) = gocua(&db.url, &["demo", "seed"], "");
    assert!(ok, "{err}");
    let (pairs, keys, heads) = duplicate_counts_and_heads(&db);
    assert_eq!(pairs, [("name_address".to_owned(), 1)]);
    // Every live household holds its head name's key, and some a phone.
    let households = gocua::with_conn!(&mut db.pool().get().unwrap().conn(), |c| {
        use diesel::prelude::*;
        gocua::db::schema::households::table
            .filter(gocua::db::schema::households::deleted_at.is_null())
            .count()
            .get_result::<i64>(c)
    })
    .unwrap();
    assert!(households > 100, "{households}");
    assert_eq!(heads, households);
    assert!(keys > households, "{keys}");
    // As an older database: no keys, no pairs.
    {
        let pool = db.pool();
        let mut pc = pool.get().unwrap();
        let mut conn = pc.conn();
        gocua::with_conn!(&mut conn, |c| {
            diesel::connection::SimpleConnection::batch_execute(
                c,
                "DELETE FROM duplicates; DELETE FROM duplicate_keys;",
            )
        })
        .unwrap();
    }
    let (ok, out, err) = gocua(&db.url, &["duplicates", "scan"], "");
    assert!(ok, "{err}");
    assert!(out.contains("1 new pairs"), "{out}");
    assert_eq!(duplicate_counts(&db), (pairs.clone(), keys));
    // Again: the same keys, nothing new.
    let (ok, out, _) = gocua(&db.url, &["duplicates", "scan"], "");
    assert!(ok);
    assert!(out.contains(": 0 new pairs"), "{out}");
    assert_eq!(duplicate_counts(&db), (pairs, keys));
}
