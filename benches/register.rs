//! Household register benchmark: a large ward's register, 25,000 households and 100,000
//! persons in 50 villages, imported by `gocua households import` as CSV (into one commune)
//! and as XLSX (into another): the wall time and the peak resident memory of the command
//! for the dry run, the import, and the same file again (which changes nothing).
//!
//! `cargo bench --locked --bench register -- [sqlite|postgres|both] [--households N]`
//! (default both, 25,000). The command runs as its own process (the release binary), so
//! that its memory is its own. Figures are in docs/BENCHMARKS.md.

#[path = "support/mod.rs"]
mod support;

use gocua::domain::AreaId;
use gocua::rng::Rng;
use support::run;

const VILLAGES: usize = 50;

const HEADERS: [&str; 11] = [
    "Mã hộ",
    "Thôn",
    "Chủ hộ",
    "Địa chỉ",
    "Điện thoại hộ",
    "Họ và tên",
    "Năm sinh",
    "Giới tính",
    "Điện thoại",
    "Điện thoại thông minh",
    "Đối tượng ưu tiên",
];

/// The register's rows: four persons a household, the household cells on every row.
fn rows(households: usize, prefix: &str) -> Vec<[String; 11]> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let family = ["Hoàng", "Nông", "Lý", "Hà", "Lương", "Vi", "Lò", "Đinh"];
    let given = [
        "Văn Mạnh",
        "Thị Hoa",
        "Văn Tư",
        "Thị Lan",
        "Văn Bình",
        "Thị Mai",
        "Văn An",
    ];
    let mut out = Vec::with_capacity(households * 4);
    for h in 0..households {
        let head = format!("{} {}", rng.pick(&family), rng.pick(&given));
        let village = format!("Thôn {}", h % VILLAGES + 1);
        let phone = format!("09{:08}", rng.below(100_000_000));
        for p in 0..4 {
            let name = match p {
                0 => head.clone(),
                _ => format!("{} {} {p}", rng.pick(&family), rng.pick(&given)),
            };
            out.push([
                format!("{prefix}{h:06}"),
                village.clone(),
                head.clone(),
                format!("Số {}, {village}", h / VILLAGES + 1),
                phone.clone(),
                name,
                (1940 + rng.below(80)).to_string(),
                rng.pick(&["Nam", "Nữ"]).to_owned(),
                match rng.chance(50) {
                    true => format!("09{:08}", rng.below(100_000_000)),
                    false => String::new(),
                },
                rng.pick(&["Có", "Không", ""]).to_owned(),
                match rng.chance(5) {
                    true => "Cách ly tại nhà".to_owned(),
                    false => String::new(),
                },
            ]);
        }
    }
    out
}

fn write_csv(path: &std::path::Path, rows: &[[String; 11]]) {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    w.write_record(["DANH SÁCH HỘ GIA ĐÌNH"]).unwrap();
    w.write_record(HEADERS).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

fn write_xlsx(path: &std::path::Path, rows: &[[String; 11]]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory();
    sheet.write_string(0, 0, "DANH SÁCH HỘ GIA ĐÌNH").unwrap();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    for (i, r) in rows.iter().enumerate() {
        for (c, v) in r.iter().enumerate() {
            if !v.is_empty() {
                sheet.write_string(3 + i as u32, c as u16, v).unwrap();
            }
        }
    }
    book.save(path).unwrap();
}

/// The communes' villages, made through the store as an admin would.
fn villages(url: &str, communes: &[&str]) {
    // A plain connection, closed on return: nothing of it (no pool, no writer thread) is
    // left to hold the database when the command runs.
    use diesel::Connection;
    let (mut lite, mut pg);
    let mut conn = match gocua::db::sqlite_path(url) {
        Some(path) => {
            lite = diesel::SqliteConnection::establish(path).unwrap();
            gocua::db::Conn::Sqlite(&mut lite)
        }
        None => {
            pg = diesel::PgConnection::establish(url).unwrap();
            gocua::db::Conn::Pg(&mut pg)
        }
    };
    let who = gocua::store::users::first_admin(&mut conn)
        .unwrap()
        .unwrap();
    for code in communes {
        let commune = gocua::with_conn!(&mut conn, |c| {
            use diesel::prelude::*;
            use gocua::db::schema::areas;
            areas::table
                .filter(areas::code.eq(*code))
                .filter(areas::level.eq("commune"))
                .select(areas::id)
                .first::<AreaId>(c)
                .unwrap()
        });
        for v in 1..=VILLAGES {
            let name = format!("Thôn {v}");
            gocua::store::areas::create_village(
                &mut conn,
                &who,
                AreaId::random(),
                commune,
                &name,
                None,
            )
            .unwrap();
        }
    }
}

fn main() {
    let households = support::number_arg("--households", 25_000);
    support::run_on_backends("gocua_bench_register", |name, url| async move {
        let dir = tempfile::tempdir().unwrap();
        let (csv, xlsx) = (dir.path().join("so-ho.csv"), dir.path().join("so-ho.xlsx"));
        write_csv(&csv, &rows(households, "A"));
        write_xlsx(&xlsx, &rows(households, "B"));
        run(&url, &["migrate"]);
        run(&url, &["areas", "import", "--official"]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gocua"))
            .args(["user", "add", "--username", "admin", "--role", "admin"])
            .env("GOCUA_DATABASE_URL", &url)
            .env("GOCUA_PASSWORD", support::PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        villages(&url, &["06073", "06067"]);
        println!(
            "\n{name}: {households} households, {} persons, {VILLAGES} villages a commune; \
             files: CSV {:.1} MiB, XLSX {:.1} MiB",
            households * 4,
            std::fs::metadata(&csv).unwrap().len() as f64 / 1048576.0,
            std::fs::metadata(&xlsx).unwrap().len() as f64 / 1048576.0,
        );
        println!("| file | step | seconds | peak resident MiB | households created / unchanged |");
        println!("|---|---|---|---|---|");
        for (kind, path, commune) in [("CSV", &csv, "06073"), ("XLSX", &xlsx, "06067")] {
            let path = path.to_str().unwrap();
            for (step, extra) in [
                ("dry run", &["--dry-run"][..]),
                ("import", &[][..]),
                ("same file again", &[][..]),
            ] {
                let mut args = vec!["households", "import", path, "--commune", commune, "--json"];
                args.extend_from_slice(extra);
                let (secs, peak, out) = run(&url, &args);
                let report: serde_json::Value = serde_json::from_str(&out).unwrap();
                println!(
                    "| {kind} | {step} | {secs:.1} | {peak:.0} | {} / {} |",
                    report["households"]["create"], report["households"]["unchanged"]
                );
            }
        }
    });
}
