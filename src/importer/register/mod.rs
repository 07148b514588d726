//! Reads a commune's household register as communes keep it (docs/IMPORT.md): a CSV or an
//! XLSX sheet, title rows above the header, header names written loosely, one row per
//! person, the rows of a household sharing its `Mã hộ`, household cells repeated on every
//! row or filled on the first only. Pure: a file's bytes in; the households with their
//! persons, each value checked as every write checks it, and every problem with its line
//! and column out. `crate::register` finds them in the database, plans and writes.

pub mod columns;
pub mod sheet;

use crate::domain::fields::{Entity, FieldError, Mode, Patch};
use crate::domain::household::records::{HOUSEHOLD, MEMBER};
use crate::domain::household::{Priority, Sex, Smartphone};
use crate::domain::text;
use columns::{Column, Columns};
use serde::Serialize;
use serde_json::{Map, Value};
use sheet::{Cell, Row};
use std::collections::HashMap;

/// A problem of the file, where the user finds it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = RegisterProblem)]
pub struct Problem {
    /// The file's line, or the sheet's row number as Excel shows it.
    pub line: u64,
    /// The column's header as the template writes it.
    pub column: Option<&'static str>,
    pub code: &'static str,
    pub message: String,
}

impl Problem {
    fn new(line: u64, column: Option<Column>, code: &'static str, message: String) -> Problem {
        Problem {
            line,
            column: column.map(Column::header),
            code,
            message,
        }
    }
}

/// A cell's text and the line it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub value: String,
    pub line: u64,
}

/// A household of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    /// Its `Mã hộ`.
    pub code: String,
    /// Its rows' lines.
    pub lines: Vec<u64>,
    pub commune: Option<Located>,
    pub village: Option<Located>,
    /// The household fields the file fills (`head_name`, `address`, `phone`), checked.
    pub values: Map<String, Value>,
    pub persons: Vec<Person>,
    /// Whether any of its rows has an error: it is written with none of them.
    pub bad: bool,
}

/// A person of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub line: u64,
    /// Their `Mã nhân khẩu`, when the file has one.
    pub code: Option<String>,
    /// The member fields the file fills, checked (an empty cell fills nothing).
    pub values: Map<String, Value>,
}

impl Person {
    pub fn name(&self) -> &str {
        self.values
            .get("full_name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn birth_year(&self) -> Option<i64> {
        self.values.get("birth_year").and_then(Value::as_i64)
    }
}

/// A register read whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Register {
    pub columns: Columns,
    pub households: Vec<Household>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// Reads a register's rows (from `sheet::read`). `commune_given`: the import names the
/// commune, so the file may leave out its `Xã` column. A file with no header row is one
/// error at its first line.
pub fn parse(rows: &[Row], commune_given: bool) -> Register {
    let Some((at, columns)) = Columns::find(rows) else {
        let line = rows.first().map_or(1, |r| r.line);
        return Register {
            errors: vec![Problem::new(
                line,
                Some(Column::HouseholdCode),
                "no_header",
                "no row has a `Mã hộ` header: the header row names the columns (Mã hộ, Thôn, \
                 Chủ hộ, Địa chỉ, Họ tên, …); see the template"
                    .into(),
            )],
            ..Register::default()
        };
    };
    let mut r = Register {
        columns,
        ..Register::default()
    };
    let mut required: Vec<Column> = Column::REQUIRED.to_vec();
    if !commune_given {
        required.push(Column::Commune);
    }
    for c in required {
        if !r.columns.has(c) {
            r.errors.push(Problem::new(
                r.columns.line,
                Some(c),
                "missing_column",
                format!("the header row has no `{}` column", c.header()),
            ));
        }
    }
    for (c, name) in &r.columns.repeated {
        r.errors.push(Problem::new(
            r.columns.line,
            Some(*c),
            "repeated_column",
            format!("`{name}` is a second `{}` column", c.header()),
        ));
    }
    if !r.errors.is_empty() {
        return r;
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in &rows[at + 1..] {
        read_row(&mut r, &mut index, row);
    }
    warn_alike(&mut r);
    r
}

/// A row's cells by column.
struct Cells<'a> {
    row: &'a Row,
    columns: &'a Columns,
    errors: Vec<Problem>,
}

impl Cells<'_> {
    fn cell(&self, c: Column) -> &Cell {
        self.columns
            .place(c)
            .and_then(|i| self.row.cells.get(i))
            .unwrap_or(&Cell::Empty)
    }

    fn problem(&mut self, c: Column, code: &'static str, message: String) {
        self.errors
            .push(Problem::new(self.row.line, Some(c), code, message));
    }

    /// A cell as text: trimmed, spaces collapsed; a number as it reads (no `.0`).
    fn text(&mut self, c: Column) -> Option<String> {
        match self.cell(c).clone() {
            Cell::Formula => {
                self.problem(
                    c,
                    "formula",
                    "the cell holds a formula: copy the column and paste its values instead".into(),
                );
                None
            }
            Cell::Error => {
                self.problem(
                    c,
                    "cell_error",
                    "the cell shows an error (#N/A, #REF!, …)".into(),
                );
                None
            }
            cell => cell.text(),
        }
    }

    /// A phone: the digits Excel kept of a number (a 9-digit number lost its leading 0).
    fn phone(&mut self, c: Column) -> Option<String> {
        let t = self.text(c)?;
        let digits: String = t
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        Some(
            match digits.len() == 9 && digits.chars().all(|d| d.is_ascii_digit()) {
                true => format!("0{digits}"),
                false => t,
            },
        )
    }

    /// A birth year: a year, a `dd/mm/yyyy` date, or a date cell.
    fn birth_year(&mut self, c: Column) -> Option<Value> {
        if let Cell::Date(d) = self.cell(c) {
            return Some(chrono::Datelike::year(d).into());
        }
        let t = self.text(c)?;
        if let Ok(y) = t.parse::<i64>() {
            return Some(y.into());
        }
        match chrono::NaiveDate::parse_from_str(&t, "%d/%m/%Y") {
            Ok(d) => Some(chrono::Datelike::year(&d).into()),
            Err(_) => {
                self.problem(
                    c,
                    "format",
                    format!("`{t}` is neither a year nor a date (dd/mm/yyyy)"),
                );
                None
            }
        }
    }

    /// A value of a closed set, by its Vietnamese name (or its label), folded.
    fn choice(&mut self, c: Column, names: &[(&str, &'static str)]) -> Option<&'static str> {
        let t = self.text(c)?;
        let k = text::fold(&t);
        match names.iter().find(|(n, _)| text::fold(n) == k) {
            Some((_, v)) => Some(v),
            None => {
                let allowed: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                self.problem(
                    c,
                    "choice",
                    format!("`{t}` is not one of: {}", allowed.join(", ")),
                );
                None
            }
        }
    }
}

const SEXES: &[(&str, &str)] = &[
    ("Nam", Sex::Male.as_str()),
    ("Nữ", Sex::Female.as_str()),
    ("Khác", Sex::Other.as_str()),
];

const SMARTPHONES: &[(&str, &str)] = &[
    ("Có", Smartphone::Yes.as_str()),
    ("Không", Smartphone::No.as_str()),
    (Smartphone::Yes.label(), Smartphone::Yes.as_str()),
    (Smartphone::No.label(), Smartphone::No.as_str()),
    (Smartphone::Unknown.label(), Smartphone::Unknown.as_str()),
];

const PRIORITIES: &[(&str, &str)] = &[
    (
        "Cách ly tập trung",
        Priority::QuarantineCentralized.as_str(),
    ),
    ("Cách ly tại nhà", Priority::QuarantineHome.as_str()),
    ("Phải xét nghiệm", Priority::TestingRequired.as_str()),
    ("Không", Priority::None.as_str()),
    (Priority::None.label(), Priority::None.as_str()),
];

/// The household columns, and the fields they fill.
const HOUSEHOLD_CELLS: &[(Column, &str)] = &[
    (Column::Head, "head_name"),
    (Column::Address, "address"),
    (Column::HouseholdPhone, "phone"),
];

/// The person columns, and the fields they fill.
const PERSON_CELLS: &[(Column, &str)] = &[
    (Column::Name, "full_name"),
    (Column::BirthYear, "birth_year"),
    (Column::BirthDate, "birth_year"),
    (Column::Sex, "sex"),
    (Column::Phone, "phone"),
    (Column::Smartphone, "smartphone"),
    (Column::Priority, "priority"),
];

/// Checks values as every write checks them (lengths, phones, years); a bad field is
/// reported at the column that filled it.
fn check(
    entity: &Entity,
    values: Map<String, Value>,
    line: u64,
    from: &[(Column, &str)],
    errors: &mut Vec<Problem>,
) -> Map<String, Value> {
    if values.is_empty() {
        return values;
    }
    match Patch::parse_map(entity, &values, &[], Mode::Update) {
        Ok(p) => p.into_map(),
        Err(bad) => {
            for FieldError {
                field,
                code,
                message,
            } in bad
            {
                let column = from.iter().find(|(_, f)| *f == field).map(|(c, _)| *c);
                errors.push(Problem::new(line, column, code, message));
            }
            Map::new()
        }
    }
}

fn read_row(r: &mut Register, index: &mut HashMap<String, usize>, row: &Row) {
    if row.cells.iter().all(|c| *c == Cell::Empty) {
        return;
    }
    let mut cells = Cells {
        row,
        columns: &r.columns,
        errors: Vec::new(),
    };
    let Some(code) = cells.text(Column::HouseholdCode) else {
        cells.problem(
            Column::HouseholdCode,
            "required",
            "every row names its household's `Mã hộ`".into(),
        );
        r.errors.extend(cells.errors);
        return;
    };
    let mut household = Map::new();
    for (c, field) in HOUSEHOLD_CELLS {
        let v = match c {
            Column::HouseholdPhone => cells.phone(*c),
            _ => cells.text(*c),
        };
        if let Some(v) = v {
            household.insert((*field).into(), v.into());
        }
    }
    let village = cells.text(Column::Village);
    let commune = cells.text(Column::Commune);
    let mut person = Map::new();
    for (c, field) in PERSON_CELLS {
        let v = match c {
            Column::BirthYear | Column::BirthDate => cells.birth_year(*c),
            Column::Sex => cells.choice(*c, SEXES).map(Value::from),
            Column::Smartphone => cells.choice(*c, SMARTPHONES).map(Value::from),
            Column::Priority => cells.choice(*c, PRIORITIES).map(Value::from),
            Column::Phone => cells.phone(*c).map(Value::from),
            _ => cells.text(*c).map(Value::from),
        };
        if let Some(v) = v {
            person.insert((*field).into(), v);
        }
    }
    let person_code = cells.text(Column::PersonCode);
    let mut errors = std::mem::take(&mut cells.errors);
    let household = check(
        &HOUSEHOLD,
        household,
        row.line,
        HOUSEHOLD_CELLS,
        &mut errors,
    );
    if !person.is_empty() && !person.contains_key("full_name") {
        errors.push(Problem::new(
            row.line,
            Some(Column::Name),
            "required",
            "a row with a person's cells names the person".into(),
        ));
    }
    let person = check(&MEMBER, person, row.line, PERSON_CELLS, &mut errors);

    let i = *index.entry(code.clone()).or_insert_with(|| {
        r.households.push(Household {
            code: code.clone(),
            lines: Vec::new(),
            commune: None,
            village: None,
            values: Map::new(),
            persons: Vec::new(),
            bad: false,
        });
        r.households.len() - 1
    });
    let h = &mut r.households[i];
    h.lines.push(row.line);
    let first_line = h.lines[0];
    // Household cells: the first row that fills one sets it; a later row may repeat it, and
    // one that says otherwise is an error naming both lines.
    let agree = |column: Column, old: Option<&Located>, new: &str, errors: &mut Vec<Problem>| {
        if let Some(old) = old {
            let same = match column {
                Column::Village => village_key(&old.value) == village_key(new),
                _ => text::fold(&old.value) == text::fold(new),
            };
            if !same {
                errors.push(Problem::new(
                    row.line,
                    Some(column),
                    "conflicting_value",
                    format!(
                        "household {code} has `{}` on line {} but `{new}` here",
                        old.value, old.line
                    ),
                ));
            }
            false
        } else {
            true
        }
    };
    for (slot, column, value) in [
        (&mut h.village, Column::Village, village),
        (&mut h.commune, Column::Commune, commune),
    ] {
        if let Some(v) = value {
            if agree(column, slot.as_ref(), &v, &mut errors) {
                *slot = Some(Located {
                    value: v,
                    line: row.line,
                });
            }
        }
    }
    for (column, field) in HOUSEHOLD_CELLS {
        let Some(new) = household.get(*field) else {
            continue;
        };
        match h.values.get(*field) {
            Some(old) if old != new => errors.push(Problem::new(
                row.line,
                Some(*column),
                "conflicting_value",
                format!(
                    "household {code} has `{}` on an earlier line (from line {first_line}) but \
                     `{}` here",
                    old.as_str().unwrap_or_default(),
                    new.as_str().unwrap_or_default()
                ),
            )),
            Some(_) => {}
            None => {
                h.values.insert((*field).into(), new.clone());
            }
        }
    }
    if !person.is_empty() {
        h.persons.push(Person {
            line: row.line,
            code: person_code,
            values: person,
        });
    }
    h.bad |= !errors.is_empty();
    r.errors.extend(errors);
}

/// The words a village's name may start with ("Thôn Cốc Lùng" is "Cốc Lùng"), folded, the
/// longer first.
const VILLAGE_KINDS: &[&str] = &[
    "to dan pho ",
    "khu pho ",
    "thon ",
    "ban ",
    "xom ",
    "khoi ",
    "ap ",
    "to ",
];

/// A village's name as villages are matched: folded as search folds it, without its kind
/// word.
pub fn village_key(name: &str) -> String {
    let folded = text::fold(name);
    VILLAGE_KINDS
        .iter()
        .find_map(|k| folded.strip_prefix(k))
        .map_or_else(|| folded.clone(), str::to_owned)
}

/// Each household needs a village, a head and an address; households of the file that look
/// alike (the same head and address in one village, or the same phone) are warned of.
fn warn_alike(r: &mut Register) {
    let mut by_name: HashMap<(String, String, String), &str> = HashMap::new();
    let mut by_phone: HashMap<&str, &str> = HashMap::new();
    for h in &mut r.households {
        let line = h.lines[0];
        let missing = [
            (Column::Village, h.village.is_none()),
            (Column::Head, !h.values.contains_key("head_name")),
            (Column::Address, !h.values.contains_key("address")),
        ];
        for (c, gone) in missing {
            if gone {
                r.errors.push(Problem::new(
                    line,
                    Some(c),
                    "required",
                    format!(
                        "household {} has no `{}` on any of its rows",
                        h.code,
                        c.header()
                    ),
                ));
                h.bad = true;
            }
        }
    }
    for h in &r.households {
        let line = h.lines[0];
        let s = |f: &str| text::fold(h.values.get(f).and_then(Value::as_str).unwrap_or(""));
        let village = h
            .village
            .as_ref()
            .map(|v| village_key(&v.value))
            .unwrap_or_default();
        if let Some(other) = by_name.insert((village, s("head_name"), s("address")), &h.code) {
            r.warnings.push(Problem::new(
                line,
                Some(Column::Head),
                "alike",
                format!(
                    "households {other} and {} have the same head and address in one village",
                    h.code
                ),
            ));
        }
        if let Some(phone) = h.values.get("phone").and_then(Value::as_str) {
            if let Some(other) = by_phone.insert(phone, &h.code) {
                r.warnings.push(Problem::new(
                    line,
                    Some(Column::HouseholdPhone),
                    "alike",
                    format!("households {other} and {} have the same phone", h.code),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sheet::read;
    use super::*;

    const FILE: &str = "DANH SÁCH HỘ GIA ĐÌNH THÔN NÀ PÀN\n\
        Ngày 01/08/2020\n\
        \n\
        STT,MÃ HỘ,Thôn,Chủ hộ,Địa chỉ,Điện thoại hộ,Họ và tên,Năm sinh,Giới tính,Điện thoại thông minh,Đối tượng ưu tiên,Ghi chú\n\
        1,H01,Nà Pàn,Hoàng Văn Mạnh,Số 9,912 345 678,Hoàng Văn Mạnh,1968,Nam,Có,,\n\
        2,H01,,,,,Lý Thị Hoa,12/03/1972,Nữ,Không,Cách ly tại nhà,\n\
        3,H02,Thôn Nà Pàn,Nông Văn Tư,Số 10,,,,,,,\n\
        4,H02,Nà Pàn,Nông Văn Tư,Số 11,,Nông Văn Tư,1890x,Nữ,,Cách ly,\n";

    #[test]
    fn a_register_is_read_with_its_households_persons_and_problems() {
        let r = parse(&read(FILE.as_bytes(), None).unwrap(), true);
        assert_eq!(r.columns.ignored, ["STT", "Ghi chú"]);
        assert_eq!(r.households.len(), 2);
        let h1 = &r.households[0];
        assert_eq!(
            (h1.code.as_str(), h1.lines.as_slice()),
            ("H01", &[5u64, 6][..])
        );
        assert_eq!(
            h1.values["phone"], "0912345678",
            "Excel dropped the leading 0"
        );
        assert_eq!(h1.village.as_ref().unwrap().value, "Nà Pàn");
        assert_eq!(h1.persons.len(), 2);
        assert_eq!(h1.persons[1].values["birth_year"], 1972);
        assert_eq!(h1.persons[1].values["priority"], "quarantine_home");
        assert_eq!(h1.persons[1].values["smartphone"], "no");
        assert!(!h1.bad, "{:?}", r.errors);
        let h2 = &r.households[1];
        assert!(h2.bad);
        let got: Vec<(u64, Option<&str>, &str)> = r
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.code))
            .collect();
        assert_eq!(
            got,
            [
                (8, Some("Năm sinh"), "format"),
                (8, Some("Đối tượng ưu tiên"), "choice"),
                (8, Some("Địa chỉ"), "conflicting_value"),
            ]
        );
        assert!(
            r.errors[2].message.contains("Số 10"),
            "{}",
            r.errors[2].message
        );
    }

    #[test]
    fn a_file_without_the_required_columns_says_which() {
        let rows = read("Mã hộ,Thôn\nH1,Nà Pàn\n".as_bytes(), None).unwrap();
        let r = parse(&rows, false);
        let missing: Vec<_> = r.errors.iter().map(|e| e.column.unwrap()).collect();
        assert_eq!(missing, ["Chủ hộ", "Địa chỉ", "Xã"]);
        let r = parse(&read(b"a,b\n1,2\n", None).unwrap(), true);
        assert_eq!(r.errors[0].code, "no_header");
    }
}
