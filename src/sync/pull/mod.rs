//! `GET /sync/pull`: what changed in the caller's areas since a cursor, never skipping a
//! change.
//!
//! A pull starts with a snapshot of the current state of the caller's scope (`snapshot`,
//! paged by household), taken after noting the head of the change log; then it follows the
//! log from that head (`log`). Where a device stands travels in its cursor (`cursor`). The
//! log's reads, and the rule that serves only rows no running transaction can still precede
//! (the no-skip rule), are in `store::changes`.

mod compact;
mod cursor;
mod log;
mod snapshot;

use crate::auth::Claims;
use crate::db::{Backend, Conn};
use crate::domain::household::rules::DeviceState;
use crate::domain::household::{ChangeOp, Record};
use crate::domain::{AreaId, DeviceId, HouseholdId};
use crate::store::areas::{self, Area};
use crate::store::campaigns::{self, Campaign, Target};
use crate::store::changes::{self, Position};
use crate::store::scope::{self, Principal};
use crate::sync::{Error, Result};
pub use compact::Units;
use cursor::{Cursor, Phase};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 500;
pub const MAX_LIMIT: i64 = 2000;

/// One entity's whole current state (`data`), or its deletion.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChangeOut {
    /// `household`, `member`, `adoption` or `visit`.
    pub entity: &'static str,
    /// The entity's id; for an adoption, the member's id (`data.campaign_id` tells which).
    pub id: Uuid,
    pub household_id: Option<HouseholdId>,
    /// `upsert` or `delete`.
    pub op: &'static str,
    /// Household unit version of the entity's last write (visits: 1).
    pub version: i64,
    /// The entity's fields (null for a delete).
    #[schema(value_type = Object)]
    pub data: Value,
    /// For the delete of a household or member merged into another: the survivor's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<Uuid>,
}

/// What a device needs besides households: its areas (none for an admin, whose scope is the
/// whole country), the campaigns and their targets in its areas.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reference {
    pub areas: Vec<Area>,
    pub campaigns: Vec<Campaign>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PullResponse {
    /// The changes (empty on a snapshot page sent in the compact form).
    pub changes: Vec<ChangeOut>,
    /// A snapshot page in the compact form, when the pull asked for `format=compact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Units>,
    /// Opaque; send it back as `cursor`.
    pub cursor: String,
    /// More is waiting: pull again at once.
    pub has_more: bool,
    /// This device's last consumed seq whose effects are all in this pull or earlier ones
    /// (0 while a snapshot is still downloading).
    pub last_seq: i64,
    /// Drop the local copy of the scope and rebuild it from this pull on.
    pub reset: bool,
    /// Sent with the first and the last page of a round.
    pub reference: Option<Reference>,
}

impl ChangeOut {
    /// A record's whole current state.
    fn upsert(
        record: Record,
        id: Uuid,
        household: HouseholdId,
        version: i64,
        state: &impl DeviceState,
    ) -> ChangeOut {
        ChangeOut {
            entity: record.as_str(),
            id,
            household_id: Some(household),
            op: ChangeOp::Upsert.as_str(),
            version,
            data: state.device_state(),
            merged_into: None,
        }
    }

    /// A record the device must drop.
    fn delete(record: Record, id: Uuid, household: Option<HouseholdId>, version: i64) -> ChangeOut {
        ChangeOut {
            entity: record.as_str(),
            id,
            household_id: household,
            op: ChangeOp::Delete.as_str(),
            version,
            data: Value::Null,
            merged_into: None,
        }
    }

    /// The delete names the record's survivor, if it was merged into one.
    fn with_survivor(self, survivor: Option<Uuid>) -> ChangeOut {
        ChangeOut {
            merged_into: survivor,
            ..self
        }
    }
}

pub struct PullRequest {
    pub device: DeviceId,
    pub cursor: Option<String>,
    pub limit: i64,
    /// From `changes::other_databases_xids`, read before the pull's transaction.
    pub other_xids: Vec<i64>,
    /// Snapshot pages in the compact form.
    pub compact: bool,
}

/// A whole pull for the caller of an access token: the transactions of other databases are
/// read first, then everything else in one read snapshot (the order the no-skip rule needs;
/// see `changes::other_databases_xids`).
pub fn pull_for(
    conn: &mut Conn<'_>,
    claims: &Claims,
    device: DeviceId,
    cursor: Option<String>,
    limit: i64,
    compact: bool,
) -> Result<PullResponse> {
    let req = PullRequest {
        device,
        cursor,
        limit,
        compact,
        other_xids: changes::other_databases_xids(conn)?,
    };
    conn.read_transaction(|conn| {
        let who = Principal::load(conn, claims)?;
        pull(conn, &who, &req)
    })
}

/// Runs one pull; call it inside `Conn::read_transaction` so that all reads share a snapshot.
pub fn pull(conn: &mut Conn<'_>, who: &Principal, req: &PullRequest) -> Result<PullResponse> {
    let device = changes::device_and_horizon(conn, req.device)?;
    if device.owner.is_some_and(|owner| owner != who.user_id) {
        return Err(Error::NotYourDevice);
    }
    if conn.backend() == Backend::Sqlite {
        // Every page, snapshot pages included, hands out only what is on disk: the head of
        // the log this snapshot sees is made durable (see `changes::head`), and with it every
        // commit the snapshot sees.
        changes::head(conn, &[])?;
    }
    // A village moved into or out of the caller's areas changes what they hold: start over.
    let signature = cursor::scope_signature(who, scope::last_move(conn, who)?);
    let cursor = req.cursor.as_deref().map(Cursor::decode).transpose()?;
    let behind = |p: Position| device.pruned_below.is_some_and(|h| p < h);
    let (phase, reset) = match cursor {
        Some(c) if c.scope == signature && !behind(c.phase.position()) => (c.phase, false),
        // No cursor, the caller's areas changed, or the log was pruned past the cursor:
        // start over from a snapshot.
        _ => (
            Phase::Snapshot {
                pos: changes::head(conn, &req.other_xids)?,
                after: None,
            },
            true,
        ),
    };
    let area_ids: Option<Vec<AreaId>> = match who.prefixes() {
        Some(p) => Some(scope::area_ids_under(conn, p)?),
        None => None,
    };
    let mut units = None;
    let (changes, next, has_more, last_seq) = match phase {
        Phase::Snapshot { pos, after } => {
            let page = snapshot::page(conn, area_ids.as_deref(), after, req.limit, req.compact)?;
            units = page.units;
            if page.done {
                // Every batch committed before `pos` is reflected in the pages just sent.
                let seq = changes::last_seq_at(conn, req.device, pos, i64::MAX)?;
                (page.changes, Phase::Log { pos }, true, seq)
            } else {
                let next = Phase::Snapshot {
                    pos,
                    after: page.last,
                };
                (page.changes, next, true, 0)
            }
        }
        Phase::Log { pos } => {
            let head = changes::head(conn, &req.other_xids)?;
            let of = changes::PageOf {
                after: pos,
                below_txid: changes::running_from(conn, head),
                areas: area_ids.as_deref(),
                device: req.device,
            };
            let page = log::page(conn, &of, head, req.limit)?;
            let next = Phase::Log { pos: page.end };
            (page.changes, next, page.has_more, page.last_seq)
        }
    };
    let reference = if reset || !has_more {
        Some(reference(conn, area_ids.as_deref())?)
    } else {
        None
    };
    Ok(PullResponse {
        changes,
        units,
        cursor: Cursor::new(signature, next).encode(),
        has_more,
        last_seq,
        reset,
        reference,
    })
}

/// What a device needs besides households.
fn reference(conn: &mut Conn<'_>, area_ids: Option<&[AreaId]>) -> Result<Reference> {
    let areas: Vec<Area> = match area_ids {
        Some(ids) => areas::by_ids(conn, ids)?,
        None => Vec::new(),
    };
    let campaigns: Vec<Campaign> = campaigns::list(conn)?;
    let order: Vec<_> = campaigns.iter().map(|c| c.id).collect();
    let targets = campaigns::targets_in(conn, &order, area_ids)?;
    Ok(Reference {
        areas,
        campaigns,
        targets,
    })
}
