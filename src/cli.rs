//! Subcommands: serve, migrate, user add, areas import, demo seed, openapi.

use crate::app::{self, Application};
use crate::auth::{self, Role};
use crate::config::Settings;
use crate::domain::AreaId;
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
    /// Print the OpenAPI document.
    Openapi,
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
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Delete change-log rows (and tombstones) older than DAYS days. Devices whose cursor is
    /// older start over with a full download.
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
        Command::Demo {
            command: DemoCommand::Seed,
        } => seed(&settings),
        Command::Sync {
            command: SyncCommand::Prune { days },
        } => prune(&settings, days),
        Command::Openapi => {
            print!("{}", api::openapi_json());
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
    pool.migrate()?;
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
    let done = pool.migrate()?;
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
    pool.migrate()?;
    let mut pc = pool.get()?;
    let user = pc
        .conn()
        .transaction(|conn| {
            let mut ids = Vec::new();
            for a in areas {
                ids.push(resolve_area(conn, a)?);
            }
            Ok::<_, crate::error::ApiError>(store::users::create(
                conn, &username, full_name, &hash, role, &ids,
            )?)
        })
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    println!(
        "Created {} ({}) with id {}",
        user.username, user.role, user.id
    );
    Ok(())
}

fn resolve_area(
    conn: &mut crate::db::Conn<'_>,
    key: &str,
) -> Result<AreaId, crate::error::ApiError> {
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
        [] => Err(crate::error::ApiError::not_found(&format!(
            "area with code {key}"
        ))),
        _ => Err(crate::error::ApiError::bad_request(
            "ambiguous",
            format!("code {key} names several areas; use the id"),
        )),
    }
}

/// Imports `file`, or the official list built into the binary when there is none.
fn import_areas(settings: &Settings, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (data, name) = match file {
        Some(file) => (
            std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?,
            file.display().to_string(),
        ),
        None => (
            importer::OFFICIAL_UNITS.to_vec(),
            importer::OFFICIAL_UNITS_NAME.to_owned(),
        ),
    };
    let units = importer::parse_units(&data).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let pool = app::connect(settings)?;
    pool.migrate()?;
    let mut pc = pool.get()?;
    let r = pc
        .conn()
        .transaction(|conn| store::areas::import(conn, &units))
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

fn prune(settings: &Settings, days: i64) -> anyhow::Result<()> {
    anyhow::ensure!(days >= 0, "--days must be 0 or more");
    let pool = app::connect(settings)?;
    pool.migrate()?;
    let before = crate::domain::Time(chrono::Utc::now() - chrono::Duration::days(days));
    let mut pc = pool.get()?;
    let n = pc
        .conn()
        .transaction(|conn| crate::sync::pull::prune(conn, before))
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    println!("Pruned {n} change-log rows older than {days} days.");
    Ok(())
}

fn seed(settings: &Settings) -> anyhow::Result<()> {
    let pool = app::connect(settings)?;
    pool.migrate()?;
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
