//! What a report or an export can run into: a refusal of the domain (a bad query, an area
//! outside the caller's), the store's failures, or the export's output failing. `error.rs`
//! alone turns it into an HTTP answer.

use crate::domain;
use crate::store::error as store;
use std::{fmt, io};

#[derive(Debug)]
pub enum Error {
    Store(store::Error),
    /// Writing an export's table failed (the client went away, a full buffer).
    Export(io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Error {
        Error::Store(store::Error::invalid(field, code, message))
    }
}

impl From<domain::Error> for Error {
    fn from(e: domain::Error) -> Self {
        Error::Store(e.into())
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Export(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(e) => e.fmt(f),
            Error::Export(e) => write!(f, "writing an export: {e}"),
        }
    }
}

impl std::error::Error for Error {}

store::wraps_store_error!(Error, Error::Store);
