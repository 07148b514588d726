//! The pull cursor: where a device stands (downloading the snapshot, or following the log),
//! signed with the scope it was made for, sent to the device as opaque base64 JSON.

use crate::domain::{HouseholdId, Time};
use crate::store::changes::Position;
use crate::store::scope::Principal;
use crate::sync::{Error, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cursor format's version.
const VERSION: u8 = 1;

/// Where a pull stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(tag = "p")]
pub enum Phase {
    /// Downloading current state, households after `after`; the log continues from `pos`.
    #[serde(rename = "s")]
    Snapshot {
        pos: Position,
        after: Option<HouseholdId>,
    },
    /// Following the log after `pos`.
    #[serde(rename = "l")]
    Log { pos: Position },
}

impl Phase {
    /// The log position the phase continues from.
    pub fn position(&self) -> Position {
        match self {
            Phase::Snapshot { pos, .. } | Phase::Log { pos } => *pos,
        }
    }
}

/// A cursor as encoded: short keys, since devices send it back at every pull.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "v")]
    version: u8,
    /// The signature of the scope the cursor was made for (`scope_signature`).
    #[serde(rename = "s")]
    pub scope: String,
    #[serde(flatten)]
    pub phase: Phase,
}

impl Cursor {
    pub fn new(scope: String, phase: Phase) -> Cursor {
        Cursor {
            version: VERSION,
            scope,
            phase,
        }
    }

    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Result<Cursor> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
            .filter(|c| c.version == VERSION)
            .ok_or(Error::BadCursor)
    }
}

/// What a device holds depends on its user's role and areas, and on where villages lie in
/// them (`last_move`: when a village last moved in or out): a cursor made for another scope
/// starts over.
pub fn scope_signature(who: &Principal, last_move: Option<Time>) -> String {
    let mut h = Sha256::new();
    h.update(who.role.as_str());
    for p in &who.area_paths {
        h.update(b"|");
        h.update(p.as_bytes());
    }
    if let Some(t) = last_move {
        h.update(b"@");
        h.update(t.0.to_rfc3339().as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_in_its_sent_form() {
        let c = Cursor::new(
            "abcd".into(),
            Phase::Log {
                pos: Position { txid: 7, id: 42 },
            },
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"v": 1, "s": "abcd", "p": "l", "pos": [7, 42]})
        );
        let back = Cursor::decode(&c.encode()).unwrap();
        assert_eq!(back.phase, c.phase);
        assert_eq!(back.scope, "abcd");
        assert!(matches!(Cursor::decode("nonsense"), Err(Error::BadCursor)));
    }
}
