//! The store's error: a rule of the domain refused (`domain::Error`), or the database
//! failed. It knows nothing of HTTP; `error.rs` maps it to an answer, once.

use crate::db::RunError;
use crate::domain::{self, household};
use std::fmt;

#[derive(Debug)]
pub enum Error {
    Domain(domain::Error),
    /// A statement failed.
    Database(diesel::result::Error),
    /// Another transaction created a row with the same id meanwhile: a retry will see it.
    Raced(diesel::result::Error),
    /// Stored data that cannot be read back: a bug or damage.
    Corrupt(anyhow::Error),
    /// No connection, or the transaction could not run (`db::RunError`).
    Run(RunError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// The domain's refusals under the names the store gives them.
impl Error {
    pub fn not_found(what: &'static str) -> Self {
        domain::Error::NotFound(what).into()
    }

    pub fn deleted(what: &'static str) -> Self {
        domain::Error::Deleted(what).into()
    }

    pub fn out_of_scope() -> Self {
        domain::Error::OutOfScope.into()
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        domain::Error::Forbidden {
            code: "forbidden",
            detail: detail.into(),
        }
        .into()
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        domain::Error::Unauthorized {
            code,
            detail: detail.into(),
        }
        .into()
    }

    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        domain::Error::invalid(field, code, message).into()
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        domain::Error::Conflict {
            code,
            detail: detail.into(),
        }
        .into()
    }

    pub fn unreadable(code: &'static str, detail: impl Into<String>) -> Self {
        domain::Error::Unreadable {
            code,
            detail: detail.into(),
        }
        .into()
    }

    pub fn corrupt(e: impl Into<anyhow::Error>) -> Self {
        Error::Corrupt(e.into())
    }
}

impl Error {
    /// Whether the same work may succeed when its transaction runs again (a lost connection,
    /// a busy or deadlocked database, a raced create).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(e) => is_transient(e),
            Error::Raced(_) | Error::Run(RunError::Unavailable(_)) => true,
            Error::Domain(_) | Error::Corrupt(_) | Error::Run(RunError::Internal(_)) => false,
        }
    }
}

/// Whether a failed statement may succeed when its transaction runs again.
pub fn is_transient(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        E::DatabaseError(
            K::ClosedConnection | K::UnableToSendCommand | K::SerializationFailure,
            _,
        ) => true,
        // SQLite answers "database is locked" when the busy timeout runs out; PostgreSQL
        // breaks a deadlock by failing one transaction. Both are worth a retry.
        E::DatabaseError(_, info) => {
            info.message().contains("locked") || info.message().contains("deadlock detected")
        }
        _ => false,
    }
}

impl From<domain::Error> for Error {
    fn from(e: domain::Error) -> Self {
        Error::Domain(e)
    }
}

impl From<household::Error> for Error {
    fn from(e: household::Error) -> Self {
        Error::Domain(e.into())
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        Error::Run(e)
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Database(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Domain(e) => e.fmt(f),
            Error::Database(e) => write!(f, "database: {e}"),
            Error::Raced(e) => write!(f, "concurrent creation of the same id: {e}"),
            Error::Corrupt(e) => write!(f, "stored data: {e:#}"),
            Error::Run(e) => write!(f, "{e:?}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Database(e) | Error::Raced(e) => Some(e),
            Error::Domain(_) | Error::Corrupt(_) | Error::Run(_) => None,
        }
    }
}

/// Implements `From` the store's error, and from the database failures it wraps, for the
/// error of a layer above the store whose variant `$variant` holds a `store::Error`.
macro_rules! wraps_store_error {
    ($error:ty, $variant:path) => {
        impl From<$crate::store::error::Error> for $error {
            fn from(e: $crate::store::error::Error) -> Self {
                $variant(e)
            }
        }

        impl From<diesel::result::Error> for $error {
            fn from(e: diesel::result::Error) -> Self {
                $variant(e.into())
            }
        }

        impl From<$crate::db::RunError> for $error {
            fn from(e: $crate::db::RunError) -> Self {
                $variant(e.into())
            }
        }
    };
}
pub(crate) use wraps_store_error;
