//! Offline sync: batches of numbered operations pushed by devices, applied exactly once (a
//! batch is one transaction, retried after a deadlock or a busy database), a pull cursor
//! that never skips a change, and the resolution of conflicts by supervisors.

pub mod pull;
pub mod push;
pub mod resolve;
pub mod write;
