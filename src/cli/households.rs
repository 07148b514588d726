//! `gocua households import`: the commune's register from a file, as the import endpoint
//! does it (a dry run, or written whole in transactions of `register::CHUNK` households).

use crate::app;
use crate::config::Settings;
use crate::register::{self, Options};
use crate::store::audit::{self, Actor};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(super) enum HouseholdsCommand {
    /// Import the commune's household register (CSV or XLSX, docs/IMPORT.md). The whole file
    /// is checked first; with any error nothing is written unless --skip-errors.
    Import {
        file: PathBuf,
        /// The commune: its 5-digit code or its name (else the file's `Xã` column).
        #[arg(long)]
        commune: Option<String>,
        /// The workbook's sheet (the first one by default).
        #[arg(long)]
        sheet: Option<String>,
        /// Check and print what would be done; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the households without errors, skipping the others.
        #[arg(long)]
        skip_errors: bool,
        /// Print the whole report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(settings: &Settings, command: HouseholdsCommand) -> anyhow::Result<()> {
    let HouseholdsCommand::Import {
        file,
        commune,
        sheet,
        dry_run,
        skip_errors,
        json,
    } = command;
    let data =
        std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    anyhow::ensure!(
        data.len() <= register::MAX_BYTES,
        "{} is larger than {} MiB",
        file.display(),
        register::MAX_BYTES >> 20
    );
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let mut conn = pc.conn();
    // The command line writes as the first admin: households name who registered them.
    let who = crate::store::users::first_admin(&mut conn)?.ok_or_else(|| {
        anyhow::anyhow!("no admin yet: create one first (gocua user add --role admin)")
    })?;
    let o = Options {
        commune,
        sheet,
        dry_run,
        skip_errors,
    };
    let failed = |e: register::Error| anyhow::anyhow!("{e}");
    let prepared = conn
        .read_transaction(|conn| register::prepare(conn, &who, &data, &o))
        .map_err(failed)?;
    let refused = prepared.refused(&o);
    let mut written = false;
    let chunks = match refused || dry_run {
        true => Vec::new(),
        false => prepared.chunks(),
    };
    let total: usize = chunks.iter().map(Vec::len).sum();
    if !chunks.is_empty() {
        let (n, mut done) = (chunks.len(), 0);
        for (i, chunk) in chunks.into_iter().enumerate() {
            conn.transaction(|conn| {
                register::write(conn, &who, &chunk)?;
                if i + 1 == n {
                    audit::record(conn, &Actor::command_line(), &prepared.audit())?;
                }
                Ok::<_, register::Error>(())
            })
            .map_err(failed)?;
            done += chunk.len();
            if n > 1 {
                eprintln!("  {done} of {total} households");
            }
        }
        written = true;
    }
    let mut report = prepared.report;
    report.written = written;
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        std::io::Write::write_all(&mut out, b"\n")?;
    } else {
        print_report(&report, refused);
    }
    anyhow::ensure!(!refused, "the file has errors: nothing was written");
    Ok(())
}

fn print_report(r: &register::Report, refused: bool) {
    let verb = match (r.written, r.dry_run || refused) {
        (true, _) => "Imported",
        (false, true) => "Nothing written; the file would give",
        (false, false) => "Nothing to write:",
    };
    let c = |c: &register::Counts| {
        format!(
            "{} new, {} updated, {} matched, {} unchanged",
            c.create, c.update, c.matched, c.unchanged
        )
    };
    if let Some(commune) = &r.commune {
        println!(
            "Commune: {} ({})",
            commune.name,
            commune.code.as_deref().unwrap_or("-")
        );
    }
    println!(
        "{verb} households: {}; persons: {}.",
        c(&r.households),
        c(&r.persons)
    );
    if r.missing_from_file > 0 {
        println!(
            "{} households of the commune with a Mã hộ are not in the file (kept).",
            r.missing_from_file
        );
    }
    for (what, list) in [("error", &r.errors), ("warning", &r.warnings)] {
        for p in list {
            println!(
                "{what}: line {}{}: {} ({})",
                p.line,
                p.column.map(|c| format!(", {c}")).unwrap_or_default(),
                p.message,
                p.code
            );
        }
    }
    if !r.skipped.is_empty() {
        println!("Skipped for their errors: {}", r.skipped.join(", "));
    }
    if !r.ignored_columns.is_empty() {
        println!("Columns not read: {}", r.ignored_columns.join(", "));
    }
}
