//! Pure types and rules: parsing, validation, versions and merge. No I/O.

pub mod area;
pub mod duplicates;
pub mod error;
pub mod fields;
pub mod hlc;
pub mod household;
pub mod ids;
pub mod merge;
pub mod text;
pub mod vocabulary;

pub use error::Error;
pub use ids::*;
