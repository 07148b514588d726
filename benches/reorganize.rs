//! Reorganization benchmark: the official July 2025 table applied by `gocua areas
//! reorganize` to the official January 2025 list holding 500,000 households (5 villages per
//! commune, spread evenly), with a supervisor per district and a target per district: the
//! wall time and the peak resident memory of the command, for a dry run, the run, and a
//! second run (which changes nothing).
//!
//! `cargo bench --locked --bench reorganize -- [sqlite|postgres|both] [--households N]`
//! (default both, 500,000). The data is written straight into the tables; the command runs
//! as its own process (the release binary), so that its memory is its own. Figures are in
//! docs/BENCHMARKS.md.

#[path = "support/mod.rs"]
mod support;
use support::run;

use diesel::connection::SimpleConnection;
use diesel::Connection;

use std::time::Instant;
use uuid::Uuid;

const VILLAGES_PER_COMMUNE: usize = 5;

fn seed(url: &str, households: usize) {
    // A plain connection (the schema is migrated by `gocua migrate`): nothing of it is left
    // open when the command runs.
    let units = gocua::importer::parse_areas(gocua::importer::OFFICIAL_UNITS).unwrap();
    let mut pg;
    let mut lite;
    let mut conn = match url.strip_prefix("sqlite://") {
        Some(path) => {
            lite = diesel::SqliteConnection::establish(path).unwrap();
            lite.batch_execute("PRAGMA foreign_keys = ON").unwrap();
            gocua::db::Conn::Sqlite(&mut lite)
        }
        None => {
            pg = diesel::PgConnection::establish(url).unwrap();
            gocua::db::Conn::Pg(&mut pg)
        }
    };
    conn.transaction(|c| gocua::store::areas::import(c, &units))
        .unwrap();
    // The communes and districts as imported: (id, path).
    let communes: Vec<(String, String)> = gocua::with_conn!(&mut conn, |c| {
        use diesel::prelude::*;
        use gocua::db::schema::areas;
        areas::table
            .filter(areas::level.eq("commune"))
            .select((areas::id, areas::path))
            .load::<(gocua::domain::AreaId, String)>(c)
            .unwrap()
            .into_iter()
            .map(|(id, p)| (id.0.to_string(), p))
            .collect()
    });
    let districts: Vec<String> = gocua::with_conn!(&mut conn, |c| {
        use diesel::prelude::*;
        use gocua::db::schema::areas;
        areas::table
            .filter(areas::level.eq("district"))
            .select(areas::id)
            .load::<gocua::domain::AreaId>(c)
            .unwrap()
            .into_iter()
            .map(|id| id.0.to_string())
            .collect()
    });
    let now = "2020-07-25T00:00:00.000000Z";
    let mut villages = Vec::new();
    let mut rows = Vec::new();
    for (i, (commune, path)) in communes.iter().enumerate() {
        for k in 0..VILLAGES_PER_COMMUNE {
            let id = Uuid::new_v4();
            // Villages of one name in neighbouring communes, as in life: renamed where merged.
            rows.push(format!(
                "('{id}',NULL,'Thôn {k}','village','Thôn','{commune}','{path}{id}/',' thon {k}','{now}','{now}')"
            ));
            villages.push(id.to_string());
            let _ = i;
        }
    }
    let mut batch = |table: &str, cols: &str, rows: &[String]| {
        for chunk in rows.chunks(1000) {
            let sql = format!("INSERT INTO {table} ({cols}) VALUES {}", chunk.join(","));
            gocua::with_conn!(&mut conn, |c| c.batch_execute(&sql)).unwrap();
        }
    };
    batch(
        "areas",
        "id, code, name, level, kind, parent_id, path, search_key, created_at, updated_at",
        &rows,
    );
    let admin = Uuid::new_v4();
    let users: Vec<String> = std::iter::once(format!(
        "('{admin}','admin','','x','admin',true,'{now}','{now}')"
    ))
    .chain(districts.iter().enumerate().map(|(i, _)| {
        format!(
            "('{}','huyen{i}','','x','supervisor',true,'{now}','{now}')",
            Uuid::new_v4()
        )
    }))
    .collect();
    batch(
        "users",
        "id, username, full_name, password_hash, role, active, created_at, updated_at",
        &users,
    );
    let assigned: Vec<String> = users[1..]
        .iter()
        .zip(&districts)
        .map(|(u, d)| format!("('{}','{d}')", &u[2..38]))
        .collect();
    batch("user_areas", "user_id, area_id", &assigned);
    let campaign = Uuid::new_v4();
    batch(
        "campaigns",
        "id, name, description, starts_on, ends_on, created_at, updated_at",
        &[format!(
            "('{campaign}','Bluezone 2020','','2020-08-01','2020-12-31','{now}','{now}')"
        )],
    );
    let targets: Vec<String> = districts
        .iter()
        .map(|d| format!("('{campaign}','{d}','rate_registered',60,'{now}')"))
        .collect();
    batch(
        "targets",
        "campaign_id, area_id, kind, value, updated_at",
        &targets,
    );
    let mut homes = Vec::with_capacity(1000);
    for i in 0..households {
        let v = &villages[i % villages.len()];
        homes.push(format!(
            "('{}','{v}','Số {i}','Hoàng Văn Mạnh','',NULL,NULL,'',1,'{{}}',' hoang van manh','{admin}','{now}','{now}')",
            Uuid::new_v4()
        ));
        if homes.len() == 1000 || i + 1 == households {
            batch(
                "households",
                "id, area_id, address, head_name, phone, lat, lon, notes, version, field_meta, search_key, created_by, created_at, updated_at",
                &homes,
            );
            homes.clear();
        }
    }
    gocua::with_conn!(&mut conn, |c| c.batch_execute("ANALYZE")).unwrap();
    println!(
        "seeded {} communes, {} villages, {} households, {} supervisors and targets",
        communes.len(),
        villages.len(),
        households,
        districts.len()
    );
}

fn main() {
    let households = support::number_arg("--households", 500_000);
    support::run_on_backends("gocua_bench_reorganize", |name, url| async move {
        run(&url, &["migrate"]);
        let t = Instant::now();
        let u = url.clone();
        tokio::task::spawn_blocking(move || seed(&u, households))
            .await
            .unwrap();
        println!("{name}: seeded in {:.1} s", t.elapsed().as_secs_f64());
        let args = [
            "areas",
            "reorganize",
            "--official",
            "--effective",
            "2025-07-01",
            "--accept-unmatched",
        ];
        let mut dry = args.to_vec();
        dry.push("--dry-run");
        for (what, a) in [
            ("dry run", &dry),
            ("run", &args.to_vec()),
            ("second run", &args.to_vec()),
        ] {
            let (secs, peak, out) = run(&url, a);
            println!("{name}: {what}: {secs:.2} s, peak resident {peak:.0} MiB");
            if what != "second run" {
                for l in out.lines().take(5) {
                    println!("    {l}");
                }
            } else {
                println!("    {}", out.trim());
            }
        }
    });
}
