//! What a rule of the domain refused, in the domain's words. The household aggregate has its
//! own (`household::Error`); this one covers the rest (users, areas, campaigns, sessions,
//! devices, reads) and carries the household's. `error.rs` alone turns it into an answer.

use super::fields::FieldError;
use super::household;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The record named does not exist.
    NotFound(&'static str),
    /// The record was deleted: a read finds a tombstone.
    Deleted(&'static str),
    /// The record lies outside the caller's areas.
    OutOfScope,
    /// The caller may not do this (a role, a device of another user).
    Forbidden {
        code: &'static str,
        detail: String,
    },
    /// The caller is not who they claim (a bad password, an ended session).
    Unauthorized {
        code: &'static str,
        detail: String,
    },
    /// Field values the rules refuse.
    Invalid(Vec<FieldError>),
    /// The write collides with what exists (a taken name, an already resolved conflict).
    Conflict {
        code: &'static str,
        detail: String,
    },
    /// An input the rules cannot read (a unit list whose rows do not fit together).
    Unreadable {
        code: &'static str,
        detail: String,
    },
    Household(household::Error),
}

impl Error {
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, code, message)])
    }
}

impl From<household::Error> for Error {
    fn from(e: household::Error) -> Self {
        Error::Household(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Deleted(what) => write!(f, "this {what} was deleted"),
            Error::OutOfScope => f.write_str("this record is outside your assigned areas"),
            Error::Forbidden { detail, .. }
            | Error::Unauthorized { detail, .. }
            | Error::Conflict { detail, .. }
            | Error::Unreadable { detail, .. } => f.write_str(detail),
            Error::Invalid(errors) => {
                let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
                write!(f, "invalid fields: {}", fields.join(", "))
            }
            Error::Household(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}
