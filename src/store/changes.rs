//! The change log that devices pull: one row per write, in commit order.

use crate::db::schema::changes;
use crate::db::Conn;
use crate::domain::{AreaId, EntityId, HouseholdId, Time};
use crate::error::ApiResult;
use crate::with_conn;
use diesel::prelude::*;

pub struct Change {
    pub entity: &'static str,
    pub entity_id: EntityId,
    pub household_id: Option<HouseholdId>,
    pub area_id: Option<AreaId>,
    pub op: &'static str,
    pub version: i64,
}

/// Appends a change. On PostgreSQL the row is stamped with the writing transaction's id by
/// the column default; on SQLite the autoincrement id is commit-ordered (one writer at a time).
pub fn record(conn: &mut Conn<'_>, ch: Change) -> ApiResult<()> {
    with_conn!(conn, |c| diesel::insert_into(changes::table)
        .values((
            changes::entity.eq(ch.entity),
            changes::entity_id.eq(ch.entity_id),
            changes::household_id.eq(ch.household_id),
            changes::area_id.eq(ch.area_id),
            changes::op.eq(ch.op),
            changes::version.eq(ch.version),
            changes::created_at.eq(Time::now()),
        ))
        .execute(c))?;
    Ok(())
}
