//! Subcommands: serve, migrate, user add, areas import, areas reorganize, demo seed, sync
//! prune, tallies check and rebuild, households import, privacy, openapi, vocabulary.

mod households;

use crate::app::{self, Application};
use crate::auth::{self, Role};
use crate::config::Settings;
use crate::domain::AreaId;
use crate::store::audit::{Action, Actor};
use crate::{api, demo, importer, store, telemetry, with_conn};
use clap::{Parser, Subcommand};
use diesel::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gocua",
    version,
    about = "Backend for door-to-door canvassing campaigns"
)]
struct Cli {
    /// TOML settings file (also GOCUA_CONFIG); GOCUA_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrations run first).
    Serve {
        /// Seed demo data into an empty database and make up a JWT secret if none is set.
        #[arg(long)]
        demo: bool,
    },
    /// Run pending database migrations.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the administrative tree.
    Areas {
        #[command(subcommand)]
        command: AreasCommand,
    },
    /// Demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Offline sync maintenance.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// The per-village tallies behind the reports.
    Tallies {
        #[command(subcommand)]
        command: TalliesCommand,
    },
    /// Possible duplicate households (docs/DUPLICATES.md).
    Duplicates {
        #[command(subcommand)]
        command: DuplicatesCommand,
    },
    /// Households: import the commune's register (docs/IMPORT.md).
    Households {
        #[command(subcommand)]
        command: households::HouseholdsCommand,
    },
    /// Retention and erasure of personal data (docs/SECURITY.md).
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print the value sets and their labels as the apps' module (src/field/vocabulary.js).
    Vocabulary,
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// Anonymize the personal data of a campaign's households, once the campaign has ended
    /// and GOCUA_RETENTION_DAYS have passed. Prints what it would do unless --apply.
    Anonymize {
        /// The campaign: its id or its name.
        #[arg(long)]
        campaign: String,
        /// Write the change (without it, a dry run).
        #[arg(long)]
        apply: bool,
    },
    /// Erase one member's data, or a whole household's, on request. Prints what it would do
    /// unless --apply.
    Erase {
        #[arg(
            long,
            required_unless_present = "household",
            conflicts_with = "household"
        )]
        member: Option<uuid::Uuid>,
        #[arg(long)]
        household: Option<uuid::Uuid>,
        /// Write the change (without it, a dry run).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand)]
enum DuplicatesCommand {
    /// Rebuild every household's keys and record the pairs they make (an existing database,
    /// or after the rules changed); pairs already dismissed stay dismissed.
    Scan,
}

#[derive(Subcommand)]
enum TalliesCommand {
    /// Count every village anew and compare with the stored tallies; fails if any differs.
    Check,
    /// Count every village anew and replace the stored tallies (after rows were written
    /// around gocua, by hand or by another tool).
    Rebuild,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password comes from GOCUA_PASSWORD or the first line of stdin.
    Add {
        #[arg(long)]
        username: String,
        /// admin, supervisor or canvasser.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        full_name: String,
        /// An assigned area: its official code (e.g. 06073) or its id. Repeatable.
        #[arg(long = "area")]
        areas: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AreasCommand {
    /// Import a GSO unit list (CSV), or with `--official` the list of 2025-01-04 built into
    /// gocua. Importing it again changes nothing.
    Import {
        /// The CSV file, in the GSO format.
        #[arg(required_unless_present = "official", conflicts_with = "official")]
        file: Option<PathBuf>,
        /// Import the official list of 2025-01-04 that ships inside the binary.
        #[arg(long)]
        official: bool,
    },
    /// Apply a conversion table (the July 2025 reorganization) to the tree, in one
    /// transaction; applying the same table again changes nothing.
    Reorganize {
        /// The conversion table (CSV, reorganization-2025-07-01.csv format).
        #[arg(required_unless_present = "official", conflicts_with = "official")]
        file: Option<PathBuf>,
        /// Use the table of 2025-07-01 that ships inside the binary.
        #[arg(long)]
        official: bool,
        /// The day the new map takes effect.
        #[arg(long)]
        effective: chrono::NaiveDate,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even though some rows name an old code the current map does not have
        /// (those rows are left out and listed).
        #[arg(long)]
        accept_unmatched: bool,
        /// Print the whole report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Delete change-log rows (and tombstones) and op batches older than DAYS days, keeping
    /// each device's latest batch. Devices whose cursor is older start over with a full
    /// download.
    Prune {
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Seed the demo into an empty database.
    Seed,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_format, &settings.log_level);
    let result = match cli.command {
        Command::Serve { demo } => {
            if demo && settings.jwt_secret.is_none() {
                settings.jwt_secret = Some(auth::random_secret());
            }
            actix_web::rt::System::new().block_on(serve(settings, demo))
        }
        Command::Migrate => migrate(&settings),
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    full_name,
                    areas,
                },
        } => add_user(&settings, &username, &role, &full_name, &areas),
        Command::Areas {
            command: AreasCommand::Import { file, official: _ },
        } => import_areas(&settings, file.as_deref()),
        Command::Areas {
            command:
                AreasCommand::Reorganize {
                    file,
                    official: _,
                    effective,
                    dry_run,
                    accept_unmatched,
                    json,
                },
        } => reorganize(
            &settings,
            file.as_deref(),
            store::reorganize::Options {
                effective,
                dry_run,
                accept_unmatched,
                source: String::new(),
                by: None,
            },
            json,
        ),
        Command::Demo {
            command: DemoCommand::Seed,
        } => seed(&settings),
        Command::Sync {
            command: SyncCommand::Prune { days },
        } => prune(&settings, days),
        Command::Tallies { command } => tallies(&settings, command),
        Command::Duplicates { command } => duplicates(&settings, command),
        Command::Privacy { command } => privacy(&settings, command),
        Command::Households { command } => households::run(&settings, command),
        Command::Openapi => {
            print!("{}", api::openapi_json());
            Ok(())
        }
        Command::Vocabulary => {
            print!("{}", crate::domain::vocabulary::javascript());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let pool = app::connect(&settings)?;
    crate::store::migrate(&pool)?;
    if demo {
        let p = pool.clone();
        let info = actix_web::web::block(move || demo::seed_pool(&p)).await??;
        match info {
            Some(info) => {
                println!(
                    "Demo data seeded: {} households in Bình Gia district.",
                    info.households
                );
                println!("Logins (password `{}`):", demo::PASSWORD);
                for l in &info.logins {
                    println!("  {:<6} {:<10} {}", l.username, l.role.as_str(), l.scope);
                }
            }
            None => println!("The database is not empty: demo data not seeded (logins unchanged)."),
        }
    }
    let app = Application::build_with_pool(settings.clone(), pool)?;
    let host = settings
        .bind
        .rsplit_once(':')
        .map_or("127.0.0.1", |(h, _)| h);
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let port = app.port();
    println!(
        "gocua is listening: dashboard at http://{host}:{port}/ (field app for canvassers at \
         http://{host}:{port}/field/, API docs at http://{host}:{port}/docs/)"
    );
    app.run_until_stopped().await?;
    Ok(())
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = app::connect(settings)?;
    let done = crate::store::migrate(&pool)?;
    if done.is_empty() {
        println!("No pending migrations.");
    }
    for m in done {
        println!("Applied {m}");
    }
    Ok(())
}

fn add_user(
    settings: &Settings,
    username: &str,
    role: &str,
    full_name: &str,
    areas: &[String],
) -> anyhow::Result<()> {
    let role = Role::parse(role)
        .ok_or_else(|| anyhow::anyhow!("role must be admin, supervisor or canvasser"))?;
    let username =
        store::users::parse_username(username).map_err(|m| anyhow::anyhow!("username: {m}"))?;
    let password = match std::env::var("GOCUA_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    store::users::check_password(&password).map_err(|m| anyhow::anyhow!("password: {m}"))?;
    let hash = auth::hash_password(&password)?;
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let user = pc
        .conn()
        .transaction(|conn| {
            let mut ids = Vec::new();
            for a in areas {
                ids.push(resolve_area(conn, a)?);
            }
            let user = store::users::create(
                conn,
                &store::users::Account::new(&username, full_name, &hash, role, &ids),
            )?;
            let action = Action::new("user_created", format!("user/{}", user.id.0))
                .with(serde_json::json!({"username": user.username, "role": user.role, "area_ids": user.area_ids}));
            store::audit::record(conn, &Actor::command_line(), &action)?;
            Ok::<_, store::error::Error>(user)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "Created {} ({}) with id {}",
        user.username, user.role, user.id
    );
    Ok(())
}

fn resolve_area(conn: &mut crate::db::Conn<'_>, key: &str) -> Result<AreaId, store::error::Error> {
    use crate::db::schema::areas;
    if let Ok(id) = key.parse::<AreaId>() {
        return Ok(id);
    }
    let found: Vec<AreaId> = with_conn!(conn, |c| areas::table
        .filter(areas::code.eq(key))
        .filter(areas::retired_at.is_null())
        .select(areas::id)
        .load(c))?;
    match found.as_slice() {
        [id] => Ok(*id),
        [] => Err(store::error::Error::unreadable(
            "not_found",
            format!("area with code {key} not found"),
        )),
        _ => Err(store::error::Error::unreadable(
            "ambiguous",
            format!("code {key} names several areas; use the id"),
        )),
    }
}

/// The bytes of `file` and its name, or else the file built into the binary.
fn read_or_built_in(
    file: Option<&std::path::Path>,
    built_in: &[u8],
    built_in_name: &str,
) -> anyhow::Result<(Vec<u8>, String)> {
    Ok(match file {
        Some(file) => (
            std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?,
            file.display().to_string(),
        ),
        None => (built_in.to_vec(), built_in_name.to_owned()),
    })
}

/// Imports `file`, or the official list built into the binary when there is none.
fn import_areas(settings: &Settings, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (data, name) = read_or_built_in(
        file,
        importer::OFFICIAL_UNITS,
        importer::OFFICIAL_UNITS_NAME,
    )?;
    let units = importer::parse_areas(&data).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let r = pc
        .conn()
        .transaction(|conn| {
            let r = store::areas::import(conn, &units)?;
            let action = Action::new("areas_imported", "areas").with(serde_json::json!({
                "units": r.units, "inserted": r.inserted, "updated": r.updated, "file": name
            }));
            store::audit::record(conn, &Actor::command_line(), &action)?;
            Ok::<_, store::error::Error>(r)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} units ({} provinces, {} districts, {} communes): {} inserted, {} updated, {} unchanged.",
        r.units, r.provinces, r.districts, r.communes, r.inserted, r.updated, r.unchanged
    );
    if r.inserted == 0 && r.updated == 0 {
        println!("Nothing changed: the list was already imported.");
    }
    Ok(())
}

/// Applies a conversion table, or the one of 2025-07-01 built into the binary.
fn reorganize(
    settings: &Settings,
    file: Option<&std::path::Path>,
    mut o: store::reorganize::Options,
    json: bool,
) -> anyhow::Result<()> {
    let (data, name) = read_or_built_in(
        file,
        importer::reorganization::REORGANIZATION_2025,
        "reorganization-2025-07-01.csv (built in)",
    )?;
    let rows =
        importer::reorganization::parse(&data).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    o.source = name.clone();
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let r = pc
        .conn()
        .large_transaction(|conn| {
            let report = store::reorganize::reorganize(conn, &rows, &o)?;
            if !o.dry_run && report.already_applied_at.is_none() {
                let action = crate::api::areas::reorganized(&o);
                store::audit::record(conn, &Actor::command_line(), &action)?;
            }
            Ok::<_, store::error::Error>(report)
        })
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    if let Some(at) = r.already_applied_at {
        println!(
            "Nothing changed: this table was already applied on {}.",
            at.0.format("%Y-%m-%d %H:%M UTC")
        );
        return Ok(());
    }
    println!(
        "{} the conversion table ({} rows), effective {}:",
        if r.dry_run {
            "Dry run, nothing written: applying"
        } else {
            "Applied"
        },
        r.rows,
        o.effective
    );
    println!(
        "  created: {} provinces, {} communes ({} keep the code of another old unit)",
        r.provinces_created, r.communes_created, r.codes_reused
    );
    println!(
        "  retired: {} provinces, {} districts, {} communes; links: {} whole, {} part, {} rename",
        r.retired.provinces,
        r.retired.districts,
        r.retired.communes,
        r.links.whole,
        r.links.part,
        r.links.rename
    );
    println!(
        "  villages: {} moved ({} households), {} renamed to stay distinct, {} waiting to be placed ({} households)",
        r.villages_moved, r.households_moved, r.villages_renamed.len(), r.villages_pending, r.households_pending
    );
    println!(
        "  users: {} assignments followed, {} to decide; targets to set again: {}",
        r.assignments_followed,
        r.assignments_to_decide.len(),
        r.targets_to_set.len()
    );
    for a in &r.assignments_to_decide {
        println!(
            "    assignment to decide: {} on {} ({})",
            a.username,
            a.area.name,
            a.area.code.as_deref().unwrap_or("-")
        );
    }
    println!(
        "  unmatched rows: {}; rows naming an area with no code: {}; communes not in the table: {}; new names spelled two ways: {}; old province cells that disagree with the tree: {}; provinces kept: {}",
        r.unmatched.len(),
        r.without_code.len(),
        r.not_in_table.len(),
        r.name_variants.len(),
        r.province_mismatches.len(),
        r.provinces_kept.len()
    );
    for u in &r.unmatched {
        println!(
            "    line {}: old code {} ({}) names no unit; new commune {}",
            u.line,
            u.old_code.as_deref().unwrap_or("-"),
            u.old_name,
            u.new_code
        );
    }
    println!("  (--json prints every list in full)");
    Ok(())
}

fn prune(settings: &Settings, days: i64) -> anyhow::Result<()> {
    anyhow::ensure!(days >= 0, "--days must be 0 or more");
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let before = crate::domain::Time(chrono::Utc::now() - chrono::Duration::days(days));
    let mut pc = pool.get()?;
    let n = pc
        .conn()
        .transaction(|conn| {
            let log = crate::store::changes::prune(conn, before)?;
            let batches = store::devices::prune_batches(conn, before)?;
            let action = Action::new("sync_pruned", "changes").with(serde_json::json!({
                "days": days, "rows": log.rows, "weeks": log.weeks, "batches": batches
            }));
            store::audit::record(conn, &Actor::command_line(), &action)?;
            Ok::<_, store::error::Error>((log, batches))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (log, batches) = n;
    let weeks = match pool.backend() {
        crate::db::Backend::Postgres => format!(
            " ({} weeks dropped whole; a week goes once it ended more than {days} days ago)",
            log.weeks
        ),
        crate::db::Backend::Sqlite => String::new(),
    };
    println!(
        "Pruned {} change-log rows{weeks} and {batches} op batches older than {days} days (each device keeps its latest batch).",
        log.rows
    );
    Ok(())
}

fn tallies(settings: &Settings, command: TalliesCommand) -> anyhow::Result<()> {
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let mut conn = pc.conn();
    match command {
        TalliesCommand::Check => {
            let wrong = conn.read_transaction(store::tallies::check)?;
            for (village, stored, counted) in &wrong {
                println!("village {village}: stored {stored:?}, counted {counted:?}");
            }
            anyhow::ensure!(
                wrong.is_empty(),
                "the tallies of {} villages differ from their rows: run `gocua tallies rebuild`",
                wrong.len()
            );
            println!("The tallies match the rows.");
        }
        TalliesCommand::Rebuild => {
            let done = conn.large_transaction(|conn| {
                let done = store::tallies::rebuild(conn)?;
                let action = Action::new("tallies_rebuilt", "tallies")
                    .with(serde_json::json!({"villages": done.villages, "rows": done.rows}));
                store::audit::record(conn, &Actor::command_line(), &action)?;
                Ok::<_, store::error::Error>(done)
            })?;
            println!(
                "Counted {} villages anew: {} tally rows written.",
                done.villages, done.rows
            );
        }
    }
    Ok(())
}

fn duplicates(settings: &Settings, command: DuplicatesCommand) -> anyhow::Result<()> {
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let mut conn = pc.conn();
    match command {
        DuplicatesCommand::Scan => {
            let started = std::time::Instant::now();
            conn.for_whole_database()?;
            let (read, new) = store::duplicates::scan(&mut conn, |n| {
                if n % 50_000 == 0 {
                    eprintln!("{n} households read");
                }
            })?;
            let action = Action::new("duplicates_scanned", "duplicates")
                .with(serde_json::json!({"households": read, "new_pairs": new}));
            conn.transaction(|conn| store::audit::record(conn, &Actor::command_line(), &action))?;
            println!(
                "Read {read} households in {:.1} s: {new} new pairs of possible duplicates.",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn privacy(settings: &Settings, command: PrivacyCommand) -> anyhow::Result<()> {
    use crate::retention::{self, Erase};
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    let mut pc = pool.get()?;
    let mut conn = pc.conn();
    let who = retention::command_line();
    let failed = |e: retention::Error| anyhow::anyhow!("{e}");
    match command {
        PrivacyCommand::Anonymize { campaign, apply } => {
            let id = match campaign.parse::<uuid::Uuid>() {
                Ok(id) => crate::domain::CampaignId(id),
                Err(_) => store::campaigns::list(&mut conn)?
                    .into_iter()
                    .find(|c| c.name == campaign)
                    .map(|c| c.id)
                    .ok_or_else(|| anyhow::anyhow!("no campaign named `{campaign}`"))?,
            };
            let days = settings.retention_days;
            let (todo, mut r) = conn
                .read_transaction(|conn| retention::plan(conn, id, days))
                .map_err(failed)?;
            let verb = match apply {
                true => "Anonymized",
                false => "Dry run, nothing written: would anonymize",
            };
            if apply {
                r.dry_run = false;
                let chunks: Vec<&[_]> = match todo.is_empty() {
                    true => vec![&[]],
                    false => todo.chunks(retention::CHUNK).collect(),
                };
                let (n, mut done) = (chunks.len(), 0);
                for (i, chunk) in chunks.into_iter().enumerate() {
                    conn.transaction(|conn| {
                        retention::anonymize(conn, &who, chunk)?;
                        if i + 1 == n {
                            let action = crate::api::privacy::anonymized(&r);
                            store::audit::record(conn, &Actor::command_line(), &action)?;
                        }
                        Ok::<_, retention::Error>(())
                    })
                    .map_err(failed)?;
                    done += chunk.len();
                    if n > 1 {
                        eprintln!("  {done} of {} households", todo.len());
                    }
                }
            }
            println!(
                "{verb} the personal data of {} households of `{}` ({} members, {} visits, {} conflicts); kept {} households of campaigns still within their retention; {} anonymized before.",
                r.households, r.campaign, r.members, r.visits, r.conflicts, r.kept, r.already_anonymized
            );
        }
        PrivacyCommand::Erase {
            member,
            household,
            apply,
        } => {
            let target = match (member, household) {
                (Some(m), _) => Erase::Member(crate::domain::MemberId(m)),
                (None, Some(h)) => Erase::Household(crate::domain::HouseholdId(h)),
                (None, None) => anyhow::bail!("name a --member or a --household"),
            };
            let r = conn
                .transaction(|conn| {
                    let (r, area, path) = retention::erase(conn, &who, target, apply)?;
                    if apply {
                        let action = crate::api::privacy::erased(&r, area, &path);
                        store::audit::record(conn, &Actor::command_line(), &action)?;
                    }
                    Ok::<_, retention::Error>(r)
                })
                .map_err(failed)?;
            let what = match r.member_id {
                Some(m) => format!("member {m}"),
                None => format!(
                    "household {} ({} members, {} visits)",
                    r.household_id, r.members, r.visits
                ),
            };
            println!(
                "{} the personal data of {what}; {} conflicts lose their values{}.",
                match apply {
                    true => "Erased",
                    false => "Dry run, nothing written: would erase",
                },
                r.conflicts,
                match r.head_of_household {
                    true => "; the household's head name goes too",
                    false => "",
                }
            );
        }
    }
    Ok(())
}

fn seed(settings: &Settings) -> anyhow::Result<()> {
    let pool = app::connect(settings)?;
    crate::store::migrate(&pool)?;
    match demo::seed_pool(&pool)? {
        Some(info) => println!(
            "Demo data seeded: {} households. Password: {}",
            info.households,
            demo::PASSWORD
        ),
        None => println!("The database is not empty: nothing seeded."),
    }
    Ok(())
}
