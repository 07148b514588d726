//! The commune's household register imported (docs/IMPORT.md): the file read and checked
//! whole (`importer::register`), planned against what the commune holds (`plan`), then, unless
//! it is a dry run or has errors, written in transactions of `CHUNK` households through the
//! one write path, as online edits by the importing user. A run stopped midway is completed
//! by running it again: households are found again by their `Mã hộ`.

pub mod plan;

use crate::db::Conn;
use crate::domain::fields::{Entity, Mode, Patch};
use crate::domain::household::records::{HOUSEHOLD, MEMBER};
use crate::domain::household::{Error as Rule, Precondition};
use crate::domain::vocabulary::AreaLevel;
use crate::domain::{text, AreaId};
use crate::importer::register::columns::Column;
use crate::importer::register::sheet::{self, FileError};
use crate::importer::register::{self as file, Problem};
use crate::store::areas::{Area, AreaRef};
use crate::store::audit::Action as AuditAction;
use crate::store::error as store;
use crate::store::households::{bulk, NewHousehold, NewMember};
use crate::store::scope::Principal;
use crate::with_conn;
use crate::write::{self, Context, Transaction, Write};
use diesel::prelude::*;
use plan::{Action, HouseholdPlan, Planned, Stored, Village};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Households written per transaction: the service keeps answering between them.
pub const CHUNK: usize = 200;

/// The largest file taken.
pub const MAX_BYTES: usize = 16 << 20;

/// How a file is imported.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The commune, by its 5-digit code or its name; else the file's `Xã` column says.
    pub commune: Option<String>,
    /// A workbook's sheet (the first one when `None`).
    pub sheet: Option<String>,
    pub dry_run: bool,
    /// Write the households without errors, skipping the others whole.
    pub skip_errors: bool,
}

/// How many households or persons each action takes.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = RegisterCounts)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub matched: usize,
}

impl Counts {
    fn add(&mut self, a: Action) {
        match a {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Matched => self.matched += 1,
        }
    }
}

/// What an import did, or (a dry run, or a file with errors) would do.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = RegisterReport)]
pub struct Report {
    pub dry_run: bool,
    /// Whether this run wrote anything.
    pub written: bool,
    pub commune: Option<AreaRef>,
    pub households: Counts,
    pub persons: Counts,
    /// The commune's households with a `Mã hộ` that the file does not name: never deleted.
    pub missing_from_file: usize,
    /// Households of the file left out for their errors (`skip_errors`), by `Mã hộ`.
    pub skipped: Vec<String>,
    /// Every household of the file (but those left out for their errors), with its persons,
    /// and what the import does to each.
    pub items: Vec<HouseholdPlan>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Columns of the file that gocua does not read.
    pub ignored_columns: Vec<String>,
}

/// Why an import did not happen.
#[derive(Debug)]
pub enum Error {
    /// The file is no register at all (empty, binary, not UTF-8, no such sheet).
    File(FileError),
    Write(write::Error),
    Store(store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::File(e) => match e.line {
                Some(line) => write!(f, "line {line}: {}", e.message),
                None => f.write_str(&e.message),
            },
            Error::Write(e) => write!(f, "{e:?}"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<write::Error> for Error {
    fn from(e: write::Error) -> Self {
        Error::Write(e)
    }
}

impl From<Rule> for Error {
    fn from(e: Rule) -> Self {
        Error::Write(e.into())
    }
}

store::wraps_store_error!(Error, Error::Store);

/// A file read and planned: the report, whose `items` hold every household of the file.
pub struct Prepared {
    pub report: Report,
    pub commune: Option<Area>,
}

impl Prepared {
    /// The households to write, with their persons, in chunks of `CHUNK` (the report's own
    /// items, not copies: a large ward's plans are held once).
    pub fn chunks(&self) -> Vec<Vec<&HouseholdPlan>> {
        let writes: Vec<&HouseholdPlan> = self.report.items.iter().filter(|p| p.writes()).collect();
        writes.chunks(CHUNK).map(<[_]>::to_vec).collect()
    }

    /// Whether nothing may be written: an error, unless errors are skipped; and whatever
    /// `skip_errors` says, a file that cannot be read as a register at all (no header, a
    /// missing column, no commune) or has no household without errors.
    pub fn refused(&self, o: &Options) -> bool {
        const WHOLE_FILE: &[&str] = &["no_header", "missing_column", "repeated_column"];
        let errors = &self.report.errors;
        !errors.is_empty()
            && (!o.skip_errors
                || self.commune.is_none()
                || self.report.items.is_empty()
                || errors.iter().any(|e| WHOLE_FILE.contains(&e.code)))
    }

    /// The audit trail's entry of the written import.
    pub fn audit(&self) -> AuditAction {
        let r = &self.report;
        let action =
            AuditAction::new("households_imported", "households").with(serde_json::json!({
                "households": r.households, "persons": r.persons, "skipped": r.skipped.len(),
            }));
        match &self.commune {
            Some(c) => action.in_area(c.id, &c.path),
            None => action,
        }
    }
}

/// Reads the file and plans it against the commune, writing nothing. Call it in a read
/// transaction.
pub fn prepare(conn: &mut Conn<'_>, who: &Principal, data: &[u8], o: &Options) -> Result<Prepared> {
    let rows = sheet::read(data, o.sheet.as_deref()).map_err(Error::File)?;
    let mut register = file::parse(&rows, o.commune.is_some());
    drop(rows);
    let mut report = Report {
        dry_run: o.dry_run,
        ignored_columns: register.columns.ignored.clone(),
        errors: register.errors.clone(),
        warnings: register.warnings.clone(),
        ..Report::default()
    };
    let Some(Named { commune, line }) = commune(conn, who, &register, o, &mut report.errors)?
    else {
        return Ok(Prepared {
            report,
            commune: None,
        });
    };
    let villages = villages(conn, &commune)?;
    // A supervisor imports for the villages of their areas: the commune, or some of its
    // villages, must be theirs.
    if !who.covers(&commune.path) && !villages.iter().any(|v| who.covers(&v.path)) {
        report.errors.push(Problem {
            line,
            column: Some(Column::Commune.header()),
            code: "out_of_scope",
            message: format!("{} is outside your assigned areas", commune.name),
        });
        return Ok(Prepared {
            report,
            commune: None,
        });
    }
    report.commune = Some(AreaRef::of(&commune));
    let ids: Vec<AreaId> = villages.iter().map(|v| v.id).collect();
    let stored: Vec<Stored> = bulk::whole_in_areas(conn, &ids)?
        .into_iter()
        .map(|(household, members)| Stored { household, members })
        .collect();
    let Planned {
        households,
        errors,
        warnings,
        bad,
    } = plan::plan(&mut register, &villages, &stored, &|path| who.covers(path));
    report.errors.extend(errors);
    report.warnings.extend(warnings);
    report.errors.sort_by_key(|e| e.line);
    report.warnings.sort_by_key(|e| e.line);
    let named: HashSet<&str> = register
        .households
        .iter()
        .map(|h| h.code.as_str())
        .collect();
    report.missing_from_file = stored
        .iter()
        .filter(|s| s.household.deleted_at.is_none())
        .filter(|s| {
            s.household
                .external_id
                .as_deref()
                .is_some_and(|c| !named.contains(c))
        })
        .count();
    report.skipped = bad
        .iter()
        .map(|i| register.households[*i].code.clone())
        .collect();
    report.skipped.sort();
    for h in &households {
        report.households.add(h.action);
        for p in &h.persons {
            report.persons.add(p.action);
        }
    }
    drop(stored);
    report.items = households;
    Ok(Prepared {
        report,
        commune: Some(commune),
    })
}

/// The commune a file is about, and the line that names it (the header's, when the import
/// names it).
struct Named {
    commune: Area,
    line: u64,
}

/// The commune the file is about: the one the import names, else the one of the file's
/// `Xã` cells (all of them must name it). A problem is reported when none is found.
fn commune(
    conn: &mut Conn<'_>,
    who: &Principal,
    register: &file::Register,
    o: &Options,
    errors: &mut Vec<Problem>,
) -> Result<Option<Named>> {
    let cells = register
        .households
        .iter()
        .filter_map(|h| h.commune.as_ref());
    let (name, line) = match &o.commune {
        Some(c) => (c.clone(), None),
        None => match cells.clone().next() {
            Some(c) => (c.value.clone(), Some(c.line)),
            None => {
                if register.columns.has(Column::Commune) {
                    errors.push(Problem {
                        line: register.columns.line,
                        column: Some(Column::Commune.header()),
                        code: "required",
                        message: "no row names the commune: fill the `Xã` column, or name \
                                  the commune with the import"
                            .into(),
                    });
                }
                return Ok(None);
            }
        },
    };
    let mut found = find_commune(conn, who, &name)?;
    if found.len() != 1 {
        let (code, message) = match found.len() {
            0 => (
                "unknown_commune",
                format!("`{name}` is neither the code nor the name of a current commune"),
            ),
            n => (
                "ambiguous_commune",
                format!("{n} communes are named `{name}`: name the commune by its code"),
            ),
        };
        errors.push(Problem {
            line: line.unwrap_or(register.columns.line),
            column: Some(Column::Commune.header()),
            code,
            message,
        });
        return Ok(None);
    }
    let commune = found.remove(0);
    for c in cells {
        if !names(&commune, &c.value) {
            errors.push(Problem {
                line: c.line,
                column: Some(Column::Commune.header()),
                code: "other_commune",
                message: format!(
                    "`{}` is not {}: import one commune's register at a time",
                    c.value, commune.name
                ),
            });
        }
    }
    Ok(Some(Named {
        commune,
        line: line.unwrap_or(register.columns.line),
    }))
}

/// The current communes a key names: its code, or its name with or without its kind word,
/// those in the caller's areas first.
pub(crate) fn find_commune(
    conn: &mut Conn<'_>,
    who: &Principal,
    key: &str,
) -> crate::store::error::Result<Vec<Area>> {
    use crate::db::schema::areas;
    let level = AreaLevel::Commune.as_str();
    let all: Vec<Area> = with_conn!(conn, |c| areas::table
        .filter(areas::level.eq(level))
        .filter(areas::retired_at.is_null())
        .select(Area::as_select())
        .load(c))?;
    let mut found: Vec<Area> = all.into_iter().filter(|a| names(a, key)).collect();
    if found.len() > 1 {
        found.retain(|a| who.covers(&a.path));
    }
    Ok(found)
}

/// Whether `key` names the commune: its code, or its name with or without its kind word
/// ("Hoa Thám" is "Xã Hoa Thám"), as search compares names.
fn names(commune: &Area, key: &str) -> bool {
    let name = text::fold(&commune.name);
    let kind = commune
        .kind
        .as_deref()
        .unwrap_or(AreaLevel::Commune.label());
    commune.code.as_deref() == Some(key.trim())
        || name == text::fold(key)
        || name == text::fold(&format!("{kind} {key}"))
}

/// The commune's current villages.
pub(crate) fn villages(
    conn: &mut Conn<'_>,
    commune: &Area,
) -> crate::store::error::Result<Vec<Village>> {
    use crate::db::schema::areas;
    let level = AreaLevel::Village.as_str();
    let rows: Vec<(AreaId, String, String)> = with_conn!(conn, |c| areas::table
        .filter(areas::parent_id.eq(commune.id))
        .filter(areas::level.eq(level))
        .filter(areas::retired_at.is_null())
        .select((areas::id, areas::name, areas::path))
        .order(areas::name)
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(id, name, path)| Village { id, name, path })
        .collect())
}

/// Writes households of the plan in the caller's transaction, each through the one write
/// path as an online edit of the version the transaction reads.
pub fn write(conn: &mut Conn<'_>, who: &Principal, plans: &[&HouseholdPlan]) -> Result<()> {
    // Every household, member and village the chunk names, new ones included (known absent),
    // in a few queries.
    let mut tx = Transaction::new();
    let mut households: Vec<_> = plans.iter().map(|p| p.household_id).collect();
    households.sort();
    let mut members: Vec<_> = plans
        .iter()
        .flat_map(|p| p.persons.iter().map(|m| m.member_id))
        .collect();
    members.sort();
    let mut areas: Vec<AreaId> = plans.iter().map(|p| p.area_id).collect();
    areas.sort();
    areas.dedup();
    tx.preload(conn, &households, &members, &[], &areas)?;
    for p in plans {
        write_household(conn, &mut tx, who, p)?;
    }
    tx.commit(conn)?;
    Ok(())
}

fn write_household(
    conn: &mut Conn<'_>,
    tx: &mut Transaction,
    who: &Principal,
    p: &HouseholdPlan,
) -> Result<()> {
    let id = p.household_id;
    match p.action {
        Action::Create => {
            let new = NewHousehold::new(&patch(&HOUSEHOLD, &p.values, Mode::Create)?)?;
            put(conn, tx, who, None, Write::CreateHousehold(id, &new))?;
        }
        Action::Update | Action::Matched if !p.values.is_empty() => {
            let patch = patch(&HOUSEHOLD, &p.values, Mode::Update)?;
            let version = tx.household(conn, who, id)?.version;
            put(
                conn,
                tx,
                who,
                Some(version),
                Write::UpdateHousehold(id, &patch),
            )?;
        }
        _ => {}
    }
    for person in &p.persons {
        let id = person.member_id;
        match person.action {
            Action::Create => {
                let new = NewMember::new(&patch(&MEMBER, &person.values, Mode::Create)?)?;
                put(conn, tx, who, None, Write::CreateMember(id, &new))?;
            }
            Action::Update | Action::Matched if !person.values.is_empty() => {
                let patch = patch(&MEMBER, &person.values, Mode::Update)?;
                let version = tx.member(conn, who, id)?.version;
                put(
                    conn,
                    tx,
                    who,
                    Some(version),
                    Write::UpdateMember(id, &patch),
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A plan's values as the write path takes them (checked again, as every write is).
fn patch(entity: &Entity, values: &Map<String, Value>, mode: Mode) -> Result<Patch> {
    Patch::parse_map(entity, values, &[], mode).map_err(|e| Rule::Invalid(e).into())
}

/// One write of the plan, as an online edit by the importing user: of the version the
/// transaction reads now, for an existing record.
fn put(
    conn: &mut Conn<'_>,
    tx: &mut Transaction,
    who: &Principal,
    version: Option<i64>,
    write: Write,
) -> Result<()> {
    let ctx = Context::online(who, Precondition::IfMatch(version));
    tx.apply(conn, who, &ctx, write)
        .map(|_| ())
        .map_err(|r| r.error.into())
}

/// The commune's name and its villages' names for the template (none without a commune).
pub fn template_villages(
    conn: &mut Conn<'_>,
    who: &Principal,
    commune: Option<&str>,
) -> Result<(Option<String>, Vec<String>)> {
    let Some(key) = commune else {
        return Ok((None, Vec::new()));
    };
    let found = find_commune(conn, who, key)?;
    let [commune] = found.as_slice() else {
        return Err(store::Error::not_found("commune").into());
    };
    if !who.covers(&commune.path) {
        return Err(store::Error::out_of_scope().into());
    }
    let names = villages(conn, commune)?
        .into_iter()
        .map(|v| v.name)
        .collect();
    Ok((Some(commune.name.clone()), names))
}

/// The template workbook: the header row and one example household (two persons) on the
/// first sheet, the commune's villages on the second.
pub fn template(
    commune: Option<&str>,
    villages: &[String],
) -> std::result::Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    let sheet = book.add_worksheet().set_name("Sổ hộ")?;
    let title = match commune {
        Some(c) => format!("DANH SÁCH HỘ GIA ĐÌNH — {c}"),
        None => "DANH SÁCH HỘ GIA ĐÌNH".to_owned(),
    };
    sheet.write_string_with_format(0, 0, &title, &bold)?;
    let village = villages.first().map_or("Nà Pàn", String::as_str);
    let example: [[&str; 13]; 2] = [
        [
            "H001",
            village,
            commune.unwrap_or(""),
            "Hoàng Văn Mạnh",
            "Số 9",
            "0912345678",
            "Hoàng Văn Mạnh",
            "",
            "1968",
            "Nam",
            "0912345678",
            "Có",
            "",
        ],
        [
            "H001",
            village,
            commune.unwrap_or(""),
            "Hoàng Văn Mạnh",
            "Số 9",
            "0912345678",
            "Lý Thị Hoa",
            "",
            "1972",
            "Nữ",
            "",
            "Không",
            "Cách ly tại nhà",
        ],
    ];
    for (col, c) in Column::ALL.iter().enumerate() {
        let col = col as u16;
        sheet.write_string_with_format(2, col, c.header(), &bold)?;
        sheet.set_column_format(col, &text)?;
        sheet.set_column_width(col, 18)?;
        for (row, values) in example.iter().enumerate() {
            sheet.write_string(3 + row as u32, col, values[usize::from(col)])?;
        }
    }
    let list = book.add_worksheet().set_name("Thôn")?;
    list.write_string_with_format(0, 0, "Thôn", &bold)?;
    for (i, v) in villages.iter().enumerate() {
        list.write_string(1 + i as u32, 0, v)?;
    }
    book.save_to_buffer()
}
