//! The household aggregate: a household with its members and their adoptions, one unit with
//! one version (every write to any of them bumps it), and the household's visits.
//!
//! Here are its pure parts: the records (`records.rs`, each field declared once), the kinds
//! of record and operation, the closed sets of field values (`values.rs`: statuses,
//! priorities, outcomes), what a write requires
//! (`Precondition`), what can go wrong (`Error`), and the rules (`rules`: preconditions,
//! the field merge of an update, an adoption's status, search keys). `store` loads and writes
//! the rows; `write`, the one write path of REST edits, pushed batches and conflict
//! resolutions, runs these rules over them and keeps the conflict books.

mod error;
pub mod records;
pub mod retention;
pub mod rules;
mod values;

pub use error::{Error, Parent, Refusal};
pub use values::{
    AdoptionStatus, ConflictReason, ConflictStatus, Outcome, Priority, Resolution, Sex, Smartphone,
};

/// The kinds of record a unit holds.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Record {
    Household,
    Member,
    Adoption,
    Visit,
}

impl Record {
    pub const fn as_str(self) -> &'static str {
        match self {
            Record::Household => "household",
            Record::Member => "member",
            Record::Adoption => "adoption",
            Record::Visit => "visit",
        }
    }

    pub fn parse(s: &str) -> Option<Record> {
        [
            Record::Household,
            Record::Member,
            Record::Adoption,
            Record::Visit,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What a change-log entry tells devices about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// Fetch its current state.
    Upsert,
    /// Drop it (deleted, or moved out of the village).
    Delete,
}

impl ChangeOp {
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        }
    }
}

/// The type of a device's queued operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    HouseholdUpsert,
    HouseholdDelete,
    MemberUpsert,
    MemberDelete,
    AdoptionSet,
    VisitRecord,
}

impl OpKind {
    pub const ALL: [OpKind; 6] = [
        OpKind::HouseholdUpsert,
        OpKind::HouseholdDelete,
        OpKind::MemberUpsert,
        OpKind::MemberDelete,
        OpKind::AdoptionSet,
        OpKind::VisitRecord,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OpKind::HouseholdUpsert => "household.upsert",
            OpKind::HouseholdDelete => "household.delete",
            OpKind::MemberUpsert => "member.upsert",
            OpKind::MemberDelete => "member.delete",
            OpKind::AdoptionSet => "adoption.set",
            OpKind::VisitRecord => "visit.record",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The record the op's `entity_id` names (an adoption's is its member).
    pub const fn record(self) -> Record {
        match self {
            OpKind::HouseholdUpsert | OpKind::HouseholdDelete => Record::Household,
            OpKind::MemberUpsert | OpKind::MemberDelete => Record::Member,
            OpKind::AdoptionSet => Record::Adoption,
            OpKind::VisitRecord => Record::Visit,
        }
    }
}

/// What a write requires of the record it changes, and what its author had seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// An online edit of the version the editor read (`If-Match`); `None` where the record
    /// may not exist yet (an adoption): if it does, its version is required.
    IfMatch(Option<i64>),
    /// An offline edit from a device, merged against the unit version it had seen.
    Device { base: i64 },
    /// A supervisor's resolution of a conflict, made with the current record in view.
    Resolution,
}

impl Precondition {
    /// The unit version the author had seen: field writes at or before it are behind them.
    pub fn base(self) -> i64 {
        match self {
            Precondition::IfMatch(v) => v.unwrap_or(0),
            Precondition::Device { base } => base,
            Precondition::Resolution => i64::MAX,
        }
    }

    /// Whether the author saw the record as it is now, with its open conflicts: such a write
    /// closes every open loss of the fields it writes. A device's write closes only the
    /// losses it had seen (see `docs/SYNC.md`).
    pub fn saw_open_losses(self) -> bool {
        !matches!(self, Precondition::Device { .. })
    }

    /// Whether the edit may apply to a record now at version `current` (`None`: no record).
    pub fn check(self, current: Option<i64>) -> Result<(), Error> {
        match (self, current) {
            (Precondition::IfMatch(Some(expected)), Some(current)) if expected != current => {
                Err(Error::Stale { current })
            }
            (Precondition::IfMatch(None), Some(current)) => Err(Error::IfMatchRequired { current }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in OpKind::ALL {
            assert_eq!(OpKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(OpKind::parse("household.create"), None);
        for r in [
            Record::Household,
            Record::Member,
            Record::Adoption,
            Record::Visit,
        ] {
            assert_eq!(Record::parse(r.as_str()), Some(r));
        }
        assert_eq!(OpKind::AdoptionSet.record(), Record::Adoption);
    }

    #[test]
    fn preconditions() {
        let online = Precondition::IfMatch(Some(3));
        assert_eq!(online.check(Some(3)), Ok(()));
        assert_eq!(online.check(Some(4)), Err(Error::Stale { current: 4 }));
        assert_eq!(
            Precondition::IfMatch(None).check(Some(2)),
            Err(Error::IfMatchRequired { current: 2 })
        );
        assert_eq!(Precondition::IfMatch(None).check(None), Ok(()));
        // Devices and resolutions merge whatever the version.
        assert_eq!(Precondition::Device { base: 1 }.check(Some(9)), Ok(()));
        assert_eq!(Precondition::Resolution.check(Some(9)), Ok(()));
        assert_eq!(online.base(), 3);
        assert_eq!(Precondition::Resolution.base(), i64::MAX);
        assert!(online.saw_open_losses() && Precondition::Resolution.saw_open_losses());
        assert!(!Precondition::Device { base: 5 }.saw_open_losses());
    }
}
