//! Offline sync: batches of numbered operations pushed by devices, and a pull cursor that
//! never skips a change. Both run the store's one write path inside one transaction.

pub mod pull;
pub mod push;
pub mod resolve;
