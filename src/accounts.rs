//! Accounts from a spreadsheet (docs/CONSOLE.md): a CSV or XLSX file with a row per person,
//! checked whole, then made all at once, each with a one-time password.

use crate::auth::{self, Role};
use crate::db::Conn;
use crate::domain::{text, AreaId, UserId};
use crate::importer::register::columns::key;
use crate::importer::register::sheet::{self, Cell, Row};
use crate::importer::register::village_key;
use crate::store::areas::Area;
use crate::store::audit::Action;
use crate::store::error::Result;
use crate::store::scope::Principal;
use crate::store::users::{self, Account, User};
use serde::Serialize;
use serde_json::json;

/// The largest accounts file taken.
pub const MAX_BYTES: usize = 1024 * 1024;
/// The most rows one file may hold.
pub const MAX_ROWS: usize = 2000;

/// The columns, as the header names them (and their folded aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Username,
    FullName,
    Role,
    Areas,
    Phone,
}

impl Column {
    const ALL: [Column; 5] = [
        Column::Username,
        Column::FullName,
        Column::Role,
        Column::Areas,
        Column::Phone,
    ];

    fn header(self) -> &'static str {
        match self {
            Column::Username => "Tên đăng nhập",
            Column::FullName => "Họ tên",
            Column::Role => "Vai trò",
            Column::Areas => "Địa bàn",
            Column::Phone => "Điện thoại",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::Username => &["tendangnhap", "username", "taikhoan"],
            Column::FullName => &["hoten", "hovaten", "fullname"],
            Column::Role => &["vaitro", "role"],
            Column::Areas => &["diaban", "areas", "khuvuc"],
            Column::Phone => &["dienthoai", "sodienthoai", "phone", "sdt"],
        }
    }
}

/// A problem of the file, by line and column.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AccountsProblem)]
pub struct Problem {
    pub line: u64,
    pub column: Option<&'static str>,
    pub code: &'static str,
    pub message: String,
}

/// An account of the file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AccountsRow)]
pub struct Planned {
    pub line: u64,
    pub username: String,
    pub full_name: String,
    pub role: Role,
    pub area_ids: Vec<AreaId>,
    /// The areas' names, as the console prints them.
    pub area_names: Vec<String>,
    pub phone: String,
    /// Once made.
    pub user_id: Option<UserId>,
    /// Once made, shown this once: the user sets their own at the first login.
    pub one_time_password: Option<String>,
}

/// What the file holds, or would make.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = AccountsReport)]
pub struct Report {
    /// Rows read under the header (blank rows aside).
    pub rows: usize,
    pub errors: Vec<Problem>,
    pub accounts: Vec<Planned>,
    /// Whether the accounts were made (never with `dry_run`).
    pub written: bool,
}

/// A planned account with its one-time password and the password's hash.
pub struct Made {
    pub planned: Planned,
    pub password: String,
    pub hash: String,
}

/// A cell as text (`Cell::text`); empty when it holds none.
fn cell_text(c: Option<&Cell>) -> String {
    c.and_then(Cell::text).unwrap_or_default()
}

/// The role a cell names: Vietnamese or English, accents and case aside.
fn role(cell: &str) -> Option<Role> {
    match text::fold(cell)
        .split_whitespace()
        .collect::<String>()
        .as_str()
    {
        "canbo" | "canvasser" | "canbothon" => Some(Role::Canvasser),
        "giamsat" | "supervisor" => Some(Role::Supervisor),
        "quantri" | "quantrivien" | "admin" => Some(Role::Admin),
        _ => None,
    }
}

/// Reads and checks the file whole: nothing is written here.
pub fn prepare(conn: &mut Conn<'_>, who: &Principal, data: &[u8]) -> Result<Report> {
    let mut report = Report::default();
    let fail = |report: &mut Report, line, code, message: String| {
        report.errors.push(Problem {
            line,
            column: None,
            code,
            message,
        });
    };
    let rows = match sheet::read(data, None) {
        Ok(rows) => rows,
        Err(e) => {
            fail(&mut report, e.line.unwrap_or(1), e.code, e.message);
            return Ok(report);
        }
    };
    let Some((at, places)) = header(&rows) else {
        fail(
            &mut report,
            1,
            "no_header",
            "no header row with `Tên đăng nhập`: use the columns Tên đăng nhập, Họ tên, Vai \
             trò, Địa bàn, Điện thoại"
                .into(),
        );
        return Ok(report);
    };
    for c in [Column::Username, Column::Role, Column::Areas] {
        if !places.iter().any(|(k, _)| *k == c) {
            fail(
                &mut report,
                rows[at].line,
                "missing_column",
                format!("the column `{}` is missing", c.header()),
            );
        }
    }
    if !report.errors.is_empty() {
        return Ok(report);
    }
    let body: Vec<&Row> = rows[at + 1..]
        .iter()
        .filter(|r| r.cells.iter().any(|c| !cell_text(Some(c)).is_empty()))
        .collect();
    report.rows = body.len();
    if body.len() > MAX_ROWS {
        fail(
            &mut report,
            body[MAX_ROWS].line,
            "too_many_rows",
            format!(
                "{} rows: a file may hold {MAX_ROWS} accounts at most",
                body.len()
            ),
        );
        return Ok(report);
    }
    let mut finder = Finder::default();
    let mut seen: Vec<(String, u64)> = Vec::new();
    for row in body {
        let get = |c: Column| {
            cell_text(
                places
                    .iter()
                    .find(|(k, _)| *k == c)
                    .and_then(|(_, i)| row.cells.get(*i)),
            )
        };
        let mut problems = Vec::new();
        let mut problem = |c: Column, code, message: String| {
            problems.push(Problem {
                line: row.line,
                column: Some(c.header()),
                code,
                message,
            })
        };
        let username = match users::parse_username(&get(Column::Username)) {
            Ok(u) => u,
            Err(m) => {
                problem(Column::Username, "format", m);
                String::new()
            }
        };
        if let Some((_, line)) = seen.iter().find(|(u, _)| !u.is_empty() && *u == username) {
            problem(
                Column::Username,
                "repeated",
                format!("`{username}` is on line {line} already"),
            );
        } else if !username.is_empty() && users::by_username(conn, &username)?.is_some() {
            problem(
                Column::Username,
                "taken",
                format!("the username `{username}` is taken"),
            );
        }
        seen.push((username.clone(), row.line));
        let role_cell = get(Column::Role);
        let role = match role(&role_cell) {
            Some(r) => r,
            None => {
                problem(
                    Column::Role,
                    "choice",
                    format!("`{role_cell}`: write Cán bộ, Giám sát or Quản trị"),
                );
                Role::Canvasser
            }
        };
        let mut areas: Vec<Area> = Vec::new();
        let mut all_found = true;
        for part in get(Column::Areas)
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match finder.find(conn, who, part)? {
                Ok(a) => areas.push(a),
                Err((code, m)) => {
                    all_found = false;
                    problem(Column::Areas, code, m)
                }
            }
        }
        let paths: Vec<String> = areas.iter().map(|a| a.path.clone()).collect();
        // An area not found is said already: the rule is checked on the areas that are.
        if all_found {
            if let Err(e) = who.require_manages(role, &paths) {
                let code = match &e {
                    crate::domain::Error::Forbidden { code, .. } => code,
                    _ => "out_of_scope",
                };
                problem(Column::Areas, code, e.to_string());
            }
        }
        let phone = get(Column::Phone);
        if let Err(m) = users::check_phone(&phone) {
            problem(Column::Phone, "format", m);
        }
        if problems.is_empty() {
            report.accounts.push(Planned {
                line: row.line,
                username,
                full_name: get(Column::FullName),
                role,
                area_ids: areas.iter().map(|a| a.id).collect(),
                area_names: areas.iter().map(|a| a.name.clone()).collect(),
                phone,
                user_id: None,
                one_time_password: None,
            });
        }
        report.errors.extend(problems);
    }
    if report.errors.is_empty() && report.accounts.is_empty() {
        fail(
            &mut report,
            rows[at].line,
            "empty",
            "no account under the header".into(),
        );
    }
    Ok(report)
}

/// The header row and where each known column is.
fn header(rows: &[Row]) -> Option<(usize, Vec<(Column, usize)>)> {
    rows.iter().enumerate().take(20).find_map(|(at, r)| {
        let places: Vec<(Column, usize)> = r
            .cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Cell::Text(t) => {
                    let k = key(t);
                    Column::ALL
                        .into_iter()
                        .find(|c| c.aliases().contains(&k.as_str()))
                        .map(|c| (c, i))
                }
                _ => None,
            })
            .collect();
        places
            .iter()
            .any(|(c, _)| *c == Column::Username)
            .then_some((at, places))
    })
}

/// Finds areas named in the file, remembering the communes' villages it loaded.
#[derive(Default)]
struct Finder {
    villages: Vec<(AreaId, Vec<crate::register::plan::Village>)>,
}

type Found = std::result::Result<Area, (&'static str, String)>;

impl Finder {
    /// The current area a cell part names: an official code, a commune's name, or
    /// `Xã … / Thôn …`.
    fn find(&mut self, conn: &mut Conn<'_>, who: &Principal, part: &str) -> Result<Found> {
        if part.chars().all(|c| c.is_ascii_digit()) {
            return Ok(crate::store::areas::current_by_code(conn, part)?.ok_or((
                "unknown_area",
                format!("no current area has the code `{part}`"),
            )));
        }
        let (commune, village) = match part.split_once('/') {
            Some((c, v)) => (c.trim(), Some(v.trim())),
            None => (part, None),
        };
        let mut found = crate::register::find_commune(conn, who, commune)?;
        let commune = match found.len() {
            1 => found.remove(0),
            0 => {
                return Ok(Err((
                    "unknown_area",
                    format!("`{commune}` is neither the code nor the name of a current commune"),
                )))
            }
            n => {
                return Ok(Err((
                    "ambiguous_area",
                    format!("{n} communes are named `{commune}`: write its code"),
                )))
            }
        };
        let Some(village) = village else {
            return Ok(Ok(commune));
        };
        if !self.villages.iter().any(|(id, _)| *id == commune.id) {
            let vs = crate::register::villages(conn, &commune)?;
            self.villages.push((commune.id, vs));
        }
        let (_, vs) = self
            .villages
            .iter()
            .find(|(id, _)| *id == commune.id)
            .expect("loaded above");
        let wanted = village_key(village);
        let matches: Vec<_> = vs
            .iter()
            .filter(|v| village_key(&v.name) == wanted)
            .collect();
        match matches.as_slice() {
            [v] => Ok(crate::store::areas::get(conn, v.id).map(Ok)?),
            [] => Ok(Err((
                "unknown_area",
                format!("{} has no village `{village}`", commune.name),
            ))),
            _ => Ok(Err((
                "ambiguous_area",
                format!("{} has several villages named `{village}`", commune.name),
            ))),
        }
    }
}

/// A one-time password and its hash for each planned account.
pub fn passwords(planned: &[Planned]) -> anyhow::Result<Vec<Made>> {
    planned
        .iter()
        .map(|p| {
            let password = auth::one_time_password();
            Ok(Made {
                hash: auth::hash_password(&password)?,
                planned: p.clone(),
                password,
            })
        })
        .collect()
}

/// Makes the accounts, in the caller's transaction. A rule that fails now (a username taken
/// meanwhile, an area's scope) fails the whole file.
pub fn write(conn: &mut Conn<'_>, who: &Principal, made: &[Made]) -> Result<Vec<User>> {
    let mut out = Vec::with_capacity(made.len());
    for m in made {
        let p = &m.planned;
        let areas = crate::store::areas::by_ids(conn, &p.area_ids)?;
        let paths: Vec<String> = areas.into_iter().map(|a| a.path).collect();
        who.require_manages(p.role, &paths)?;
        out.push(users::create(
            conn,
            &Account {
                username: p.username.clone(),
                full_name: p.full_name.clone(),
                password_hash: m.hash.clone(),
                role: p.role,
                area_ids: p.area_ids.clone(),
                phone: p.phone.clone(),
                must_change_password: true,
            },
        )?);
    }
    Ok(out)
}

/// The audit trail's entry for a new user.
pub fn created(conn: &mut Conn<'_>, user: &User) -> Result<Action> {
    let action = Action::new("user_created", format!("user/{}", user.id.0))
        .with(json!({"username": user.username, "role": user.role, "area_ids": user.area_ids}));
    about(conn, user, action)
}

/// An entry about a user, placed in the user's first area: the supervisors of that area read
/// it.
pub fn about(conn: &mut Conn<'_>, user: &User, action: Action) -> Result<Action> {
    Ok(match user.area_ids.first() {
        Some(id) => {
            let a = crate::store::areas::get(conn, *id)?;
            action.in_area(a.id, &a.path)
        }
        None => action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_in_either_language() {
        assert_eq!(role("Cán bộ"), Some(Role::Canvasser));
        assert_eq!(role("GIÁM SÁT"), Some(Role::Supervisor));
        assert_eq!(role("admin"), Some(Role::Admin));
        assert_eq!(role("trưởng thôn"), None);
    }
}
