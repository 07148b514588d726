//! What the sync protocol refuses, in its own words, beside the write path's and the store's
//! failures; `error.rs` alone turns it into an HTTP answer.

use crate::domain::fields::FieldError;
use crate::store::error as store;
use crate::write;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A batch's envelope is unsound (a missing seq, seqs out of order): nothing applied.
    BadBatch(Vec<FieldError>),
    /// A pull cursor this server did not give out.
    BadCursor,
    /// The device id is registered to another user.
    NotYourDevice,
    /// A write failed for a reason that is not the op's (a bug, the database).
    Write(write::Error),
    Store(store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_batch(field: String, code: &'static str, message: &str) -> Error {
        Error::BadBatch(vec![FieldError::new(&field, code, message)])
    }

    /// Whether the batch may succeed when it runs again (a busy or deadlocked database, a
    /// lost connection): the push retries it.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store(e) | Error::Write(write::Error::Store(e)) => e.is_transient(),
            _ => false,
        }
    }
}

impl From<write::Error> for Error {
    fn from(e: write::Error) -> Self {
        Error::Write(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadBatch(errors) => {
                let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
                write!(f, "invalid fields: {}", fields.join(", "))
            }
            Error::BadCursor => f.write_str("the cursor is not one this server gave out"),
            Error::NotYourDevice => f.write_str("this device id is registered to another user"),
            Error::Write(e) => write!(f, "{e:?}"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

store::wraps_store_error!(Error, Error::Store);
