//! Demo data: Bình Gia district (Lạng Sơn) with its 19 real communes, villages, the
//! "Bluezone 2020" campaign and a few hundred households, written through the one write
//! path of the API and sync (`write`); then today's map: the July 2025
//! reorganization turns the 19 communes into 8 communes of Lạng Sơn, villages and
//! households following. Seeds only an empty database.

use crate::auth::{self, Role};
use crate::db::schema::users;
use crate::db::Conn;
use crate::domain::fields::{Mode, Patch};
use crate::domain::hlc::Hlc;
use crate::domain::household::records::{ADOPTION, HOUSEHOLD, MEMBER, VISIT};
use crate::domain::household::Precondition;
use crate::domain::{AreaId, CampaignId, HouseholdId, MemberId, VisitId};
use crate::rng::Rng;
use crate::store::error as store;
use crate::store::households::{NewHousehold, NewMember};
use crate::store::scope::{assigned_paths, Principal};
use crate::store::{areas, campaigns, users as user_store};
use crate::write::{self, Context, Write};
use crate::{importer, with_conn};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

pub const PASSWORD: &str = "gocua-demo";
/// The demo writes new records only, as online creates.
const NEW: Precondition = Precondition::IfMatch(None);
/// The official rows of Bình Gia district (code 181), as in the GSO list of 2025-01-04.
const BINH_GIA_CSV: &str = include_str!("binh_gia.csv");
const HOA_THAM: &str = "06073";

const VILLAGES: &[&str] = &[
    "Nà Pàn",
    "Khuổi Hẩu",
    "Bản Chu",
    "Nà Làng",
    "Pác Khuông",
    "Khau Phầy",
    "Nà Lầu",
    "Cốc Lùng",
    "Nà Mò",
    "Pò Cại",
    "Khuổi Khe",
    "Nà Thả",
    "Bó Tèo",
    "Nà Riềng",
    "Pác Giả",
    "Lạn Tỏng",
];
const FAMILY: &[&str] = &[
    "Hoàng", "Nông", "Lý", "Vi", "Hà", "Lương", "Triệu", "Mã", "Nguyễn", "Đinh", "Lộc", "Hứa",
];
const MALE: &[&str] = &[
    "Mạnh", "Đức", "Thắng", "Hùng", "Dũng", "Quang", "Tuấn", "Cường", "Bảo", "Sơn",
];
const FEMALE: &[&str] = &[
    "Hoa", "Lan", "Mai", "Thảo", "Hương", "Nga", "Duyên", "Yến", "Ánh", "Đào",
];

pub struct DemoLogin {
    pub username: &'static str,
    pub role: Role,
    pub scope: String,
}

pub struct DemoInfo {
    pub logins: Vec<DemoLogin>,
    pub households: usize,
}

fn patch(entity: &crate::domain::fields::Entity, v: Value) -> Result<Patch> {
    Patch::parse(entity, &v, Mode::Create)
        .map_err(|e| Error::Data(anyhow::anyhow!("demo data: {e:?}")))
}

fn principal(conn: &mut Conn<'_>, u: &user_store::User) -> Result<Principal> {
    Ok(Principal {
        user_id: u.id,
        username: u.username.clone(),
        role: Role::parse(&u.role).unwrap_or(Role::Canvasser),
        area_paths: assigned_paths(conn, u.id)?,
    })
}

fn by_code(conn: &mut Conn<'_>, level: &str, code: &str) -> Result<areas::Area> {
    let id: AreaId = with_conn!(conn, |c| crate::db::schema::areas::table
        .filter(crate::db::schema::areas::level.eq(level))
        .filter(crate::db::schema::areas::code.eq(code))
        .filter(crate::db::schema::areas::retired_at.is_null())
        .select(crate::db::schema::areas::id)
        .first(c))?;
    Ok(areas::get(conn, id)?)
}

/// Seeds the demo into an empty database (no users); returns `None` otherwise. Run it in one
/// transaction. `password_hash` is the hash of `PASSWORD`.
pub fn seed(conn: &mut Conn<'_>, password_hash: &str) -> Result<Option<DemoInfo>> {
    let users_count: i64 = with_conn!(conn, |c| users::table.count().get_result(c))?;
    if users_count > 0 {
        return Ok(None);
    }
    let units = importer::parse_areas(BINH_GIA_CSV.as_bytes()).map_err(Error::data)?;
    areas::import(conn, &units)?;
    let district = by_code(conn, "district", "181")?;
    let communes: Vec<areas::Area> = units
        .iter()
        .filter(|u| u.level == "commune")
        .map(|u| by_code(conn, "commune", &u.code))
        .collect::<Result<_>>()?;

    let admin = user_store::create(
        conn,
        &user_store::Account::new(
            "admin",
            "Quản trị hệ thống",
            password_hash,
            Role::Admin,
            &[],
        ),
    )?;
    let admin_p = principal(conn, &admin)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut villages_of: Vec<(areas::Area, Vec<areas::Area>)> = Vec::new();
    for (i, commune) in communes.iter().enumerate() {
        let n = 3 + (i % 2);
        let mut vs = Vec::new();
        for k in 0..n {
            let name = format!("Thôn {}", VILLAGES[(i * 3 + k) % VILLAGES.len()]);
            vs.push(areas::create_village(
                conn,
                &admin_p,
                AreaId::random(),
                commune.id,
                &name,
                Some("Thôn"),
            )?);
        }
        villages_of.push((commune.clone(), vs));
    }
    let hoa_tham = villages_of
        .iter()
        .find(|(c, _)| c.code.as_deref() == Some(HOA_THAM))
        .cloned();
    let (hoa_tham, ht_villages) =
        hoa_tham.ok_or_else(|| Error::Data(anyhow::anyhow!("Hoa Thám missing")))?;
    user_store::create(
        conn,
        &user_store::Account::new(
            "huyen",
            "Phòng VH-TT huyện Bình Gia",
            password_hash,
            Role::Supervisor,
            &[district.id],
        ),
    )?;
    user_store::create(
        conn,
        &user_store::Account::new(
            "xa",
            "UBND xã Hoa Thám",
            password_hash,
            Role::Supervisor,
            &[hoa_tham.id],
        ),
    )?;
    let canbo = user_store::create(
        conn,
        &user_store::Account::new(
            "canbo",
            "Cán bộ xã Hoa Thám",
            password_hash,
            Role::Canvasser,
            &[ht_villages[0].id, ht_villages[1].id],
        ),
    )?;
    let canbo_p = principal(conn, &canbo)?;

    let campaign = campaigns::create(
        conn,
        CampaignId::random(),
        &campaigns::Fields {
            name: "Bluezone 2020".into(),
            description: "Cài đặt ứng dụng Bluezone phòng chống COVID-19; ưu tiên người cách ly \
                          và người phải xét nghiệm"
                .into(),
            starts_on: NaiveDate::from_ymd_opt(2020, 8, 1).unwrap_or_default(),
            ends_on: NaiveDate::from_ymd_opt(2020, 12, 31).unwrap_or_default(),
            denominator: crate::domain::vocabulary::Denominator::Registered,
        },
    )?;
    campaigns::set_target(conn, campaign.id, district.id, "rate_registered", 60.0)?;
    for (commune, _) in &villages_of {
        let rate = 50.0 + (rng.below(7) * 5) as f64;
        campaigns::set_target(conn, campaign.id, commune.id, "rate_registered", rate)?;
    }

    let mut households = 0;
    // The first household of canbo's first village: registered a second time below.
    let mut twice: Option<serde_json::Value> = None;
    let start = Utc
        .with_ymd_and_hms(2020, 8, 10, 7, 0, 0)
        .single()
        .unwrap_or_default();
    for (commune, villages) in &villages_of {
        for (vi, village) in villages.iter().enumerate() {
            // canbo's villages are theirs; elsewhere the admin stands in for the field team.
            let who = if commune.id == hoa_tham.id && vi < 2 {
                &canbo_p
            } else {
                &admin_p
            };
            let w = Context::new(who.author(), Hlc::at(Utc::now()), NEW);
            for k in 0..(3 + rng.below(3)) {
                households += 1;
                let hid = HouseholdId::random();
                let family = rng.pick(FAMILY);
                let head = format!("{family} Văn {}", rng.pick(MALE));
                let phone = rng
                    .chance(60)
                    .then(|| format!("09{:08}", rng.below(100_000_000)));
                let lat = (219_500 + rng.below(2000)) as f64 / 10_000.0;
                let lon = (1_063_000 + rng.below(2000)) as f64 / 10_000.0;
                let address = format!("Số {}, {}", k + 1, village.name);
                let fields = json!({"area_id": village.id, "address": address, "head_name": head,
                    "phone": phone, "lat": lat, "lon": lon});
                if commune.id == hoa_tham.id && vi == 0 && k == 0 {
                    twice = Some(fields.clone());
                }
                let p = patch(&HOUSEHOLD, fields)?;
                write::one(
                    conn,
                    who,
                    &w,
                    Write::CreateHousehold(hid, &NewHousehold::new(&p)?),
                )?;
                let size = 2 + rng.below(4);
                let mut members = Vec::new();
                for m in 0..size {
                    let male = m == 0 || rng.chance(50);
                    let name = if m == 0 {
                        head.clone()
                    } else {
                        format!(
                            "{family} {} {}",
                            if male { "Văn" } else { "Thị" },
                            rng.pick(if male { MALE } else { FEMALE })
                        )
                    };
                    let smartphone = if rng.chance(65) {
                        "yes"
                    } else if rng.chance(70) {
                        "no"
                    } else {
                        "unknown"
                    };
                    let priority = match rng.below(100) {
                        0..=2 => "quarantine_centralized",
                        3..=6 => "quarantine_home",
                        7..=10 => "testing_required",
                        _ => "none",
                    };
                    let mid = MemberId::random();
                    let p = patch(
                        &MEMBER,
                        json!({"household_id": hid, "full_name": name,
                        "birth_year": 1940 + rng.below(70), "sex": if male { "male" } else { "female" },
                        "smartphone": smartphone, "priority": priority}),
                    )?;
                    write::one(
                        conn,
                        who,
                        &w,
                        Write::CreateMember(mid, &NewMember::new(&p)?),
                    )?;
                    members.push((mid, smartphone));
                }
                if !rng.chance(75) {
                    continue; // not visited yet
                }
                let when = start + Duration::minutes(rng.below(60 * 24 * 70) as i64);
                let outcome = if rng.chance(80) {
                    "met"
                } else if rng.chance(50) {
                    "not_home"
                } else {
                    "come_back_later"
                };
                let p = patch(
                    &VISIT,
                    json!({"household_id": hid, "campaign_id": campaign.id,
                    "visited_at": when.to_rfc3339(), "outcome": outcome, "lat": lat, "lon": lon}),
                )?;
                write::one(conn, who, &w, Write::RecordVisit(VisitId::random(), &p))?;
                if outcome != "met" {
                    continue;
                }
                // Statuses are recorded during the visit.
                let at_visit = Context::new(who.author(), Hlc::at(when), NEW);
                for (mid, smartphone) in members {
                    let status = match (smartphone, rng.below(10)) {
                        ("no", _) => "no_smartphone",
                        (_, 0..=3) => "installed",
                        (_, 4..=5) => "installed_with_help",
                        (_, 6) => "already_installed",
                        (_, 7) => "refused",
                        (_, 8) => "later",
                        _ => "not_yet",
                    };
                    let p = patch(&ADOPTION, json!({ "status": status }))?;
                    let status = Write::SetAdoption(mid, campaign.id, &p);
                    write::one(conn, who, &at_visit, status)?;
                }
            }
        }
    }
    // A household registered twice, as two phones offline would: a pair for the console's
    // review of possible duplicates (docs/DUPLICATES.md).
    if let Some(fields) = twice {
        households += 1;
        let p = patch(&HOUSEHOLD, fields)?;
        let w = Context::new(admin_p.author(), Hlc::at(Utc::now()), NEW);
        write::one(
            conn,
            &admin_p,
            &w,
            Write::CreateHousehold(HouseholdId::random(), &NewHousehold::new(&p)?),
        )?;
    }
    // Today's map: the July 2025 reorganization, as the official table has it for Bình Gia's
    // communes (19 became 8 communes of Lạng Sơn, with no district between).
    let province = today_map(conn, &admin)?;
    let hoa_tham = by_code(conn, "commune", HOA_THAM)?;
    let logins = vec![
        DemoLogin {
            username: "admin",
            role: Role::Admin,
            scope: "toàn hệ thống".into(),
        },
        DemoLogin {
            username: "huyen",
            role: Role::Supervisor,
            scope: format!("{} (trước đây {})", province.name, district.name),
        },
        DemoLogin {
            username: "xa",
            role: Role::Supervisor,
            scope: hoa_tham.name.clone(),
        },
        DemoLogin {
            username: "canbo",
            role: Role::Canvasser,
            scope: format!(
                "{}, {} ({})",
                ht_villages[0].name, ht_villages[1].name, hoa_tham.name
            ),
        },
    ];
    Ok(Some(DemoInfo { logins, households }))
}

/// Applies the rows of the July 2025 table that concern Bình Gia, and does what an admin
/// does next: the district's supervisor, whose district is gone, supervises the province;
/// the province gets the district's target for the 2020 campaign.
fn today_map(conn: &mut Conn<'_>, admin: &user_store::User) -> Result<areas::Area> {
    use crate::importer::reorganization::{self, REORGANIZATION_2025};
    use crate::store::reorganize::{self as reorg, Options};
    let rows: Vec<reorganization::Row> = reorganization::parse(REORGANIZATION_2025)
        .map_err(Error::data)?
        .into_iter()
        .filter(|r| r.old_district_code.as_deref() == Some("181"))
        .collect();
    let report = reorg::reorganize(
        conn,
        &rows,
        &Options {
            effective: NaiveDate::from_ymd_opt(2025, 7, 1).unwrap_or_default(),
            dry_run: false,
            accept_unmatched: false,
            source: "reorganization-2025-07-01.csv (Bình Gia's rows)".into(),
            by: Some(admin.id),
        },
    )?;
    let province = by_code(conn, "province", "20")?;
    for a in &report.assignments_to_decide {
        user_store::set_areas(conn, a.user_id, &[province.id])?;
    }
    for t in report
        .targets_to_set
        .iter()
        .filter(|t| t.area.level == "district")
    {
        campaigns::set_target(conn, t.campaign_id, province.id, &t.kind, t.value)?;
    }
    Ok(province)
}

/// Seeds the demo if the database is empty, hashing the demo password once.
pub fn seed_pool(pool: &crate::db::Pool) -> anyhow::Result<Option<DemoInfo>> {
    let hash = auth::hash_password(PASSWORD)?;
    let mut pc = pool.get()?;
    let mut conn = pc.conn();
    conn.transaction(|conn| seed(conn, &hash))
        .map_err(|e| anyhow::anyhow!("demo seed failed: {e:?}"))
}

/// What seeding the demo can run into: the store's or the write path's failures, or demo
/// data that does not fit (a bug).
#[derive(Debug)]
pub enum Error {
    Store(store::Error),
    Write(write::Error),
    Data(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn data(e: impl Into<anyhow::Error>) -> Error {
        Error::Data(e.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Store(e) => e.fmt(f),
            Error::Write(e) => write!(f, "{e:?}"),
            Error::Data(e) => write!(f, "demo data: {e:#}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<write::Error> for Error {
    fn from(e: write::Error) -> Self {
        Error::Write(e)
    }
}

impl From<crate::domain::household::Error> for Error {
    fn from(e: crate::domain::household::Error) -> Self {
        Error::Write(e.into())
    }
}

impl From<crate::domain::Error> for Error {
    fn from(e: crate::domain::Error) -> Self {
        Error::Store(e.into())
    }
}

store::wraps_store_error!(Error, Error::Store);
