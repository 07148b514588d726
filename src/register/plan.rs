//! What an import does to each household of the file, worked out without the database from
//! what the commune holds: a household is found again by its `Mã hộ`, else matched to one a
//! phone registered (same village, no `Mã hộ`, the same head and address or the same
//! phone), else created; its persons likewise, by `Mã nhân khẩu` or by name and birth year.

use crate::domain::household::records::{Household, Member};
use crate::domain::text;
use crate::domain::{AreaId, HouseholdId, MemberId};
use crate::importer::register::columns::Column;
use crate::importer::register::{self as file, village_key, Problem};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// A village of the commune.
#[derive(Debug, Clone)]
pub struct Village {
    pub id: AreaId,
    pub name: String,
    pub path: String,
}

/// A household the commune holds, with its live members.
#[derive(Debug, Clone)]
pub struct Stored {
    pub household: Household,
    pub members: Vec<Member>,
}

/// What the import does to a household or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RegisterAction)]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// Registered on a phone first: it takes the `Mã hộ`, and the file fills only its empty
    /// fields.
    Matched,
}

/// What the import does to one person.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PersonPlan {
    pub line: u64,
    pub full_name: String,
    pub action: Action,
    pub member_id: MemberId,
    /// The fields written (all of them for a create).
    pub fields: Vec<String>,
    #[serde(skip)]
    pub values: Map<String, Value>,
}

/// What the import does to one household.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdPlan {
    pub line: u64,
    /// Its `Mã hộ`.
    pub code: String,
    pub action: Action,
    pub household_id: HouseholdId,
    pub area_id: AreaId,
    /// The fields written (all of them for a create).
    pub fields: Vec<String>,
    pub persons: Vec<PersonPlan>,
    #[serde(skip)]
    pub values: Map<String, Value>,
}

impl HouseholdPlan {
    /// Whether anything is written for it.
    pub fn writes(&self) -> bool {
        self.action != Action::Unchanged
            || self.persons.iter().any(|p| p.action != Action::Unchanged)
    }
}

/// The plan of a whole file.
#[derive(Debug, Default)]
pub struct Planned {
    pub households: Vec<HouseholdPlan>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// The file's households (by index) that have an error.
    pub bad: HashSet<usize>,
}

/// Plans every household of the file against the commune's villages and households.
/// `in_scope` says whether the caller covers a village's path.
pub fn plan(
    register: &mut file::Register,
    villages: &[Village],
    stored: &[Stored],
    in_scope: &dyn Fn(&str) -> bool,
) -> Planned {
    let by_key: HashMap<String, &Village> =
        villages.iter().map(|v| (village_key(&v.name), v)).collect();
    let by_code: HashMap<&str, &Stored> = stored
        .iter()
        .filter_map(|s| Some((s.household.external_id.as_deref()?, s)))
        .collect();
    let mut taken: HashSet<HouseholdId> = HashSet::new();
    let mut out = Planned::default();
    for (i, h) in register.households.iter_mut().enumerate() {
        if h.bad {
            out.bad.insert(i);
            continue;
        }
        let line = h.lines[0];
        let Some(village_cell) = &h.village else {
            continue;
        };
        let Some(village) = by_key.get(&village_key(&village_cell.value)) else {
            let names: Vec<&str> = villages.iter().map(|v| v.name.as_str()).collect();
            out.errors.push(Problem {
                line: village_cell.line,
                column: Some(Column::Village.header()),
                code: "unknown_village",
                message: format!(
                    "`{}` is no village of the commune; its villages: {}",
                    village_cell.value,
                    names.join(", ")
                ),
            });
            out.bad.insert(i);
            continue;
        };
        if !in_scope(&village.path) {
            out.errors.push(Problem {
                line: village_cell.line,
                column: Some(Column::Village.header()),
                code: "out_of_scope",
                message: format!("{} is outside your assigned areas", village.name),
            });
            out.bad.insert(i);
            continue;
        }
        let found = by_code.get(h.code.as_str()).copied();
        if let Some(s) = found.filter(|s| s.household.deleted_at.is_some()) {
            out.warnings.push(Problem {
                line,
                column: Some(Column::HouseholdCode.header()),
                code: "deleted",
                message: format!(
                    "household {} was deleted in gocua ({}): it is not brought back",
                    h.code, s.household.id
                ),
            });
            continue;
        }
        let plan = match found {
            Some(s) => update(h, village, s),
            None => match matched(h, village, stored, &taken) {
                Some(s) => fill(h, village, s, &mut out.warnings),
                None => create(h, village),
            },
        };
        taken.insert(plan.household_id);
        out.households.push(plan);
    }
    out
}

fn fields(values: &Map<String, Value>) -> Vec<String> {
    values.keys().cloned().collect()
}

/// A household the commune does not hold yet: its values are taken from the file's (they
/// are not needed there again).
fn create(h: &mut file::Household, village: &Village) -> HouseholdPlan {
    let household_id = HouseholdId(uuid::Uuid::new_v4());
    let mut values = std::mem::take(&mut h.values);
    values.insert("area_id".into(), village.id.to_string().into());
    values.insert("external_id".into(), h.code.clone().into());
    let persons = h
        .persons
        .iter_mut()
        .map(|p| {
            let full_name = p.name().to_owned();
            let mut v = std::mem::take(&mut p.values);
            if let Some(code) = &p.code {
                v.insert("external_id".into(), code.clone().into());
            }
            v.insert("household_id".into(), household_id.to_string().into());
            person(
                p.line,
                full_name,
                Action::Create,
                MemberId(uuid::Uuid::new_v4()),
                v,
            )
        })
        .collect();
    HouseholdPlan {
        line: h.lines[0],
        code: h.code.clone(),
        action: Action::Create,
        household_id,
        area_id: village.id,
        fields: fields(&values),
        persons,
        values,
    }
}

fn person(
    line: u64,
    full_name: String,
    action: Action,
    id: MemberId,
    values: Map<String, Value>,
) -> PersonPlan {
    PersonPlan {
        line,
        full_name,
        action: match (action, values.is_empty()) {
            (Action::Create, _) => Action::Create,
            (_, true) => Action::Unchanged,
            (a, false) => a,
        },
        member_id: id,
        fields: fields(&values),
        values,
    }
}

/// A stored record's field as JSON, to compare with the file's.
fn stored_value<T: Serialize>(record: &T, field: &str) -> Value {
    serde_json::to_value(record)
        .ok()
        .and_then(|v| v.get(field).cloned())
        .unwrap_or(Value::Null)
}

/// The file's values that differ from the record's.
fn changed<T: Serialize>(record: &T, values: &Map<String, Value>) -> Map<String, Value> {
    let state = serde_json::to_value(record).unwrap_or(Value::Null);
    values
        .iter()
        .filter(|(k, v)| state.get(k.as_str()).unwrap_or(&Value::Null) != *v)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The file's values for a record's empty fields.
fn empty_fields<T: Serialize>(record: &T, values: &Map<String, Value>) -> Map<String, Value> {
    let state = serde_json::to_value(record).unwrap_or(Value::Null);
    values
        .iter()
        .filter(|(k, _)| match state.get(k.as_str()) {
            None | Some(Value::Null) => true,
            Some(v) => v == "",
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The stored member a person of the file is: by `Mã nhân khẩu`, else by folded name and
/// birth year (a year missing on either side does not tell them apart).
fn same_person<'a>(
    p: &file::Person,
    members: &'a [Member],
    taken: &HashSet<MemberId>,
) -> Option<&'a Member> {
    let free = members.iter().filter(|m| !taken.contains(&m.id));
    if let Some(code) = &p.code {
        if let Some(m) = members
            .iter()
            .find(|m| m.external_id.as_deref() == Some(code.as_str()))
        {
            return Some(m);
        }
    }
    let name = text::fold(p.name());
    let year = p.birth_year();
    free.filter(|m| m.external_id.is_none() || p.code.is_none())
        .find(|m| {
            text::fold(&m.full_name) == name
                && (year.is_none() || m.birth_year.is_none() || m.birth_year.map(i64::from) == year)
        })
}

/// The persons of a household found again: each found member gets what differs (or, for a
/// household a phone registered, what it lacks); the others are created.
fn persons(h: &file::Household, s: &Stored, fill_only: bool) -> Vec<PersonPlan> {
    let mut taken = HashSet::new();
    h.persons
        .iter()
        .map(|p| {
            let mut values = p.values.clone();
            if let Some(code) = &p.code {
                values.insert("external_id".into(), code.clone().into());
            }
            match same_person(p, &s.members, &taken) {
                Some(m) => {
                    taken.insert(m.id);
                    let v = match fill_only {
                        true => empty_fields(m, &values),
                        false => changed(m, &values),
                    };
                    person(p.line, p.name().to_owned(), Action::Update, m.id, v)
                }
                None => {
                    values.insert("household_id".into(), s.household.id.to_string().into());
                    let id = MemberId(uuid::Uuid::new_v4());
                    person(p.line, p.name().to_owned(), Action::Create, id, values)
                }
            }
        })
        .collect()
}

fn update(h: &file::Household, village: &Village, s: &Stored) -> HouseholdPlan {
    let mut values = changed(&s.household, &h.values);
    if s.household.area_id != village.id {
        values.insert("area_id".into(), village.id.to_string().into());
    }
    let action = match values.is_empty() {
        true => Action::Unchanged,
        false => Action::Update,
    };
    HouseholdPlan {
        line: h.lines[0],
        code: h.code.clone(),
        action,
        household_id: s.household.id,
        area_id: village.id,
        fields: fields(&values),
        persons: persons(h, s, false),
        values,
    }
}

/// A household a phone registered that the file's household is: in its village, with no
/// `Mã hộ`, the same head and address, or the same phone.
fn matched<'a>(
    h: &file::Household,
    village: &Village,
    stored: &'a [Stored],
    taken: &HashSet<HouseholdId>,
) -> Option<&'a Stored> {
    let fold = |v: Option<&Value>| text::fold(v.and_then(Value::as_str).unwrap_or(""));
    let (head, address) = (
        fold(h.values.get("head_name")),
        fold(h.values.get("address")),
    );
    let phone = h.values.get("phone").and_then(Value::as_str);
    stored.iter().find(|s| {
        let r = &s.household;
        r.area_id == village.id
            && r.external_id.is_none()
            && r.deleted_at.is_none()
            && !taken.contains(&r.id)
            && ((text::fold(&r.head_name) == head && text::fold(&r.address) == address)
                || (phone.is_some() && r.phone.as_deref() == phone))
    })
}

fn fill(
    h: &file::Household,
    village: &Village,
    s: &Stored,
    warnings: &mut Vec<Problem>,
) -> HouseholdPlan {
    let mut values = empty_fields(&s.household, &h.values);
    for (column, field) in [
        (Column::Head, "head_name"),
        (Column::Address, "address"),
        (Column::HouseholdPhone, "phone"),
    ] {
        let (Some(file), stored) = (h.values.get(field), stored_value(&s.household, field)) else {
            continue;
        };
        if !values.contains_key(field) && *file != stored {
            warnings.push(Problem {
                line: h.lines[0],
                column: Some(column.header()),
                code: "differs",
                message: format!(
                    "household {} was registered on a phone with `{}`; the file's `{}` is not written",
                    h.code,
                    stored.as_str().unwrap_or_default(),
                    file.as_str().unwrap_or_default()
                ),
            });
        }
    }
    values.insert("external_id".into(), h.code.clone().into());
    HouseholdPlan {
        line: h.lines[0],
        code: h.code.clone(),
        action: Action::Matched,
        household_id: s.household.id,
        area_id: village.id,
        fields: fields(&values),
        persons: persons(h, s, true),
        values,
    }
}
