//! Pure types and rules: parsing, validation, versions and merge. No I/O.

pub mod area;
pub mod fields;
pub mod hlc;
pub mod ids;
pub mod merge;
pub mod text;

pub use ids::*;
