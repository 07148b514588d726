//! What a write to a household unit can run into, said in the domain's words; `api` alone
//! turns it into an HTTP answer (`error.rs`), and a pushed op's result carries the same code.

use super::Record;
use crate::domain::fields::FieldError;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The record (or area, or campaign) the write names does not exist.
    NotFound(&'static str),
    /// The record is outside the writer's areas.
    OutOfScope,
    /// A record the write points at (a member's household, a visit's household or campaign)
    /// does not exist: a bad field of the write.
    UnknownParent { field: &'static str, parent: Parent },
    /// The record (or its household) was deleted: nothing is changed or brought back.
    Deleted(Record),
    /// An online edit of a version that is no longer the current one.
    Stale { current: i64 },
    /// An online edit of an existing record that did not say which version it read.
    IfMatchRequired { current: i64 },
    /// A create under an id that is taken.
    Exists(Record),
    /// Another visit was recorded under this id.
    IdReused,
    /// Households live in villages only.
    NotAVillage,
    /// Field values the rules refuse.
    Invalid(Vec<FieldError>),
    /// Stored or prepared values that do not fit the record: a bug or damaged data, not
    /// the writer's fault.
    Malformed(String),
}

/// What a write's field may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    Household,
    Campaign,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::OutOfScope => f.write_str("this record is outside your assigned areas"),
            Error::UnknownParent { parent, .. } => match parent {
                Parent::Household => f.write_str("no such household"),
                Parent::Campaign => f.write_str("no such campaign"),
            },
            Error::Deleted(r) => write!(f, "this {} was deleted", r.as_str()),
            Error::Stale { current } => write!(
                f,
                "the record changed since you read it; its version is now {current}"
            ),
            Error::IfMatchRequired { current } => write!(
                f,
                "this adoption exists: send If-Match with its version ({current})"
            ),
            Error::Exists(r) => write!(f, "a {} with this id exists", r.as_str()),
            Error::IdReused => f.write_str("another visit was recorded under this id"),
            Error::NotAVillage => f.write_str("households belong to a village"),
            Error::Invalid(errors) => {
                let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
                write!(f, "invalid fields: {}", fields.join(", "))
            }
            Error::Malformed(what) => write!(f, "malformed record: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// A refusal as the writer is told it, by an HTTP answer or a pushed op's result alike: a
/// stable code, a message, and the bad fields for the refusals that name fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl Refusal {
    fn new(code: &'static str, message: String) -> Refusal {
        Refusal {
            code,
            message,
            fields: Vec::new(),
        }
    }

    /// Bad fields: the code is `validation_failed` and the message names them.
    pub fn invalid(fields: Vec<FieldError>) -> Refusal {
        let names: Vec<_> = fields.iter().map(|e| e.field.as_str()).collect();
        Refusal {
            code: "validation_failed",
            message: format!("invalid fields: {}", names.join(", ")),
            fields,
        }
    }
}

impl Error {
    /// How the writer is told of it (`Malformed` is not the writer's: `internal`).
    pub fn refusal(&self) -> Refusal {
        let message = self.to_string();
        let field = |field: &str, code: &'static str| {
            Refusal::invalid(vec![FieldError::new(field, code, message.clone())])
        };
        match self {
            Error::NotFound(_) => Refusal::new("not_found", message),
            Error::OutOfScope => Refusal::new("out_of_scope", message),
            Error::UnknownParent { field: f, parent } => field(
                f,
                match parent {
                    Parent::Household => "unknown_household",
                    Parent::Campaign => "unknown_campaign",
                },
            ),
            Error::Deleted(_) => Refusal::new("deleted", message),
            Error::Stale { .. } => Refusal::new("version_mismatch", message),
            Error::IfMatchRequired { .. } => Refusal::new("if_match_required", message),
            Error::Exists(_) => Refusal::new("exists", message),
            Error::IdReused => Refusal::new("id_reused", message),
            Error::NotAVillage => field("area_id", "level"),
            Error::Invalid(errors) => Refusal::invalid(errors.clone()),
            Error::Malformed(_) => Refusal::new("internal", "an internal error occurred".into()),
        }
    }
}
