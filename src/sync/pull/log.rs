//! The log phase: the entities written since the cursor, each once, in its current state (or
//! as a delete when it is gone or left the caller's scope).

use super::ChangeOut;
use crate::db::Conn;
use crate::domain::household::Record;
use crate::domain::{AreaId, EntityId, HouseholdId, MemberId, VisitId};
use crate::store::changes::{self, Position};
use crate::store::households::{bulk, Household, Member, Visit};
use crate::sync::Result;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A page of the log.
pub struct Page {
    pub changes: Vec<ChangeOut>,
    /// Where the next page starts.
    pub end: Position,
    /// Whether more rows were waiting.
    pub has_more: bool,
    /// The device's last seq whose effects are all in this page or earlier ones.
    pub last_seq: i64,
}

/// The log after `of.after`, up to `limit` rows, as of the log head `head`.
pub fn page(
    conn: &mut Conn<'_>,
    of: &changes::PageOf<'_>,
    head: Position,
    limit: i64,
) -> Result<Page> {
    let mut rows = changes::page(conn, of, limit + 1)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let end = match (has_more, rows.last()) {
        (true, Some(r)) => r.at,
        // Past every row this snapshot may serve: on PostgreSQL up to the oldest running
        // transaction, on SQLite the head row.
        _ => of.after.max(match conn.backend() {
            crate::db::Backend::Postgres => Position {
                txid: head.txid,
                id: 0,
            },
            crate::db::Backend::Sqlite => head,
        }),
    };
    let last_seq = changes::last_seq_at(conn, of.device, end, of.below_txid)?;
    let touched: Vec<Touched> = rows
        .into_iter()
        .filter_map(|r| {
            Record::parse(&r.entity).map(|record| Touched {
                record,
                id: r.entity_id,
            })
        })
        .collect();
    let in_scope = |a: &AreaId| of.areas.is_none_or(|ids| ids.binary_search(a).is_ok());
    Ok(Page {
        changes: current_states(conn, &touched, &in_scope)?,
        end,
        has_more,
        last_seq,
    })
}

/// An entity a log row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Touched {
    record: Record,
    id: EntityId,
}

/// The current state of each touched entity, once, in first-touched order: an upsert if it
/// is live and in scope, else a delete.
fn current_states(
    conn: &mut Conn<'_>,
    touched: &[Touched],
    in_scope: &dyn Fn(&AreaId) -> bool,
) -> Result<Vec<ChangeOut>> {
    let mut seen = HashSet::new();
    let touched: Vec<Touched> = touched
        .iter()
        .copied()
        .filter(|t| seen.insert(*t))
        .collect();
    let ids = |record: Record| -> Vec<Uuid> {
        touched
            .iter()
            .filter(|t| t.record == record)
            .map(|t| t.id.0)
            .collect()
    };
    let member_ids: Vec<MemberId> = ids(Record::Member)
        .into_iter()
        .chain(ids(Record::Adoption))
        .map(MemberId)
        .collect();
    let members: HashMap<MemberId, Member> = bulk::members(conn, &member_ids)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let visits: HashMap<VisitId, Visit> = bulk::visits(
        conn,
        &ids(Record::Visit)
            .into_iter()
            .map(VisitId)
            .collect::<Vec<_>>(),
    )?
    .into_iter()
    .map(|v| (v.id, v))
    .collect();
    let mut household_ids: Vec<HouseholdId> = ids(Record::Household)
        .into_iter()
        .map(HouseholdId)
        .collect();
    household_ids.extend(members.values().map(|m| m.household_id));
    household_ids.extend(visits.values().map(|v| v.household_id));
    let households: HashMap<HouseholdId, Household> = bulk::households(conn, &household_ids)?
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    let adoption_members: Vec<MemberId> = ids(Record::Adoption).into_iter().map(MemberId).collect();
    let adoptions = bulk::adoptions_of_members(conn, &adoption_members)?;
    let visible = |h: &HouseholdId| {
        households
            .get(h)
            .is_some_and(|h| h.deleted_at.is_none() && in_scope(&h.area_id))
    };

    let mut out = Vec::new();
    for Touched { record, id } in touched {
        match record {
            Record::Household => match households.get(&HouseholdId(id.0)) {
                Some(h) if visible(&h.id) => {
                    out.push(ChangeOut::upsert(record, h.id.0, h.id, h.version, h))
                }
                h => out.push(
                    ChangeOut::delete(
                        record,
                        id.0,
                        Some(HouseholdId(id.0)),
                        h.map_or(0, |h| h.version),
                    )
                    .with_survivor(h.and_then(|h| h.merged_into).map(|s| s.0)),
                ),
            },
            Record::Member => match members.get(&MemberId(id.0)) {
                Some(m) if m.deleted_at.is_none() && visible(&m.household_id) => out.push(
                    ChangeOut::upsert(record, m.id.0, m.household_id, m.version, m),
                ),
                m => out.push(
                    ChangeOut::delete(
                        record,
                        id.0,
                        m.map(|m| m.household_id),
                        m.map_or(0, |m| m.version),
                    )
                    .with_survivor(m.and_then(|m| m.merged_into).map(|s| s.0)),
                ),
            },
            Record::Adoption => {
                let live = members
                    .get(&MemberId(id.0))
                    .is_some_and(|m| m.deleted_at.is_none() && visible(&m.household_id));
                if live {
                    out.extend(adoptions.iter().filter(|a| a.member_id.0 == id.0).map(|a| {
                        ChangeOut::upsert(record, a.member_id.0, a.household_id, a.version, a)
                    }));
                }
            }
            Record::Visit => match visits.get(&VisitId(id.0)) {
                Some(v) if visible(&v.household_id) => {
                    out.push(ChangeOut::upsert(record, v.id.0, v.household_id, 1, v))
                }
                v => out.push(ChangeOut::delete(
                    record,
                    id.0,
                    v.map(|v| v.household_id),
                    1,
                )),
            },
        }
    }
    Ok(out)
}
