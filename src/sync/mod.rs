//! The offline sync protocol: batches of numbered operations pushed by devices, turned into
//! writes of the one write path (`crate::write`) and applied exactly once (a batch is one
//! transaction, retried after a deadlock or a busy database), and a pull cursor that never
//! skips a change.

pub mod error;
pub mod pull;
pub mod push;

pub use error::{Error, Result};
