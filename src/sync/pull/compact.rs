//! The compact form of a snapshot page (`format=compact`, SYNC.md "The compact first
//! download"): each household one row, its members and visits nested in it and each member's
//! adoptions in the member, so that a parent's id is never sent again with its children;
//! the columns of each kind named once per page; every UUID as its 16 bytes in base64url.
//!
//! A device expands it into exactly the changes of the full form (the field app's
//! `expandUnits`, tested against the full form).

use crate::domain::household::rules::DeviceState;
use crate::domain::household::Record;
use crate::domain::HouseholdId;
use crate::store::households::{Adoption, Household, Member, Visit};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The columns whose values are UUIDs, sent as base64url (22 characters).
pub const UUID_COLUMNS: &[&str] = &["id", "area_id", "campaign_id", "canvasser_id"];

/// A snapshot page in the compact form.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Units {
    /// Each kind's columns (`household`, `member`, `adoption`, `visit`), in the order of its
    /// rows' values. A household row ends with its member rows and its visit rows; a member
    /// row ends with its adoption rows.
    pub columns: BTreeMap<&'static str, Vec<String>>,
    /// The columns whose values are UUIDs written as their 16 bytes in base64url, unpadded.
    pub uuid_columns: &'static [&'static str],
    /// One row per household.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub rows: Vec<Value>,
}

/// One kind's rows: the record's id and version (when it has one of its own) first, then its
/// device state without the key that names its parent.
struct Table {
    kind: Record,
    parent: &'static str,
    versioned: bool,
    columns: Vec<String>,
}

impl Table {
    fn new(kind: Record, parent: &'static str, versioned: bool) -> Table {
        Table {
            kind,
            parent,
            versioned,
            columns: Vec::new(),
        }
    }

    fn row(&mut self, id: Option<Uuid>, version: i64, state: &impl DeviceState) -> Vec<Value> {
        let Value::Object(data) = state.device_state() else {
            unreachable!("a record's device state is an object")
        };
        if self.columns.is_empty() {
            self.columns = self.head(id.is_some(), &data);
        }
        let mut row = Vec::with_capacity(self.columns.len() + 2);
        if let Some(id) = id {
            row.push(encode_uuid(id));
        }
        if self.versioned {
            row.push(version.into());
        }
        row.extend(
            data.into_iter()
                .filter(|(k, _)| k != self.parent)
                .map(|(k, v)| cell(&k, v)),
        );
        row
    }

    fn head(&self, with_id: bool, data: &Map<String, Value>) -> Vec<String> {
        let own = [(with_id, "id"), (self.versioned, "version")];
        own.iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_string())
            .chain(data.keys().filter(|k| *k != self.parent).cloned())
            .collect()
    }
}

fn cell(column: &str, value: Value) -> Value {
    match &value {
        Value::String(s) if UUID_COLUMNS.contains(&column) => match Uuid::parse_str(s) {
            Ok(id) => encode_uuid(id),
            Err(_) => value,
        },
        _ => value,
    }
}

fn encode_uuid(id: Uuid) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(id.as_bytes()))
}

/// The page's whole units in the compact form.
pub fn units(hs: &[Household], ms: &[Member], ads: &[Adoption], vs: &[Visit]) -> Units {
    let mut household = Table::new(Record::Household, "", true);
    let mut member = Table::new(Record::Member, "household_id", true);
    let mut adoption = Table::new(Record::Adoption, "member_id", true);
    let mut visit = Table::new(Record::Visit, "household_id", false);

    let mut adoptions: HashMap<Uuid, Vec<Value>> = HashMap::new();
    for a in ads {
        let row = adoption.row(None, a.version, a);
        adoptions.entry(a.member_id.0).or_default().push(row.into());
    }
    let mut members: HashMap<HouseholdId, Vec<Value>> = HashMap::new();
    for m in ms {
        let mut row = member.row(Some(m.id.0), m.version, m);
        row.push(adoptions.remove(&m.id.0).unwrap_or_default().into());
        members.entry(m.household_id).or_default().push(row.into());
    }
    let mut visits: HashMap<HouseholdId, Vec<Value>> = HashMap::new();
    for v in vs {
        let row = visit.row(Some(v.id.0), 1, v);
        visits.entry(v.household_id).or_default().push(row.into());
    }
    let rows = hs
        .iter()
        .map(|h| {
            let mut row = household.row(Some(h.id.0), h.version, h);
            row.push(members.remove(&h.id).unwrap_or_default().into());
            row.push(visits.remove(&h.id).unwrap_or_default().into());
            row.into()
        })
        .collect();
    let columns = [household, member, adoption, visit]
        .into_iter()
        .map(|t| (t.kind.as_str(), t.columns))
        .collect();
    Units {
        columns,
        uuid_columns: UUID_COLUMNS,
        rows,
    }
}
