//! The change log that devices pull: one row per write, in commit order.

use super::error::Result;
use crate::db::schema::changes;
use crate::db::Conn;
use crate::domain::{AreaId, EntityId, HouseholdId, Time};
use crate::with_conn;
use diesel::dsl::Eq;
use diesel::prelude::*;

pub struct Change {
    pub entity: &'static str,
    pub entity_id: EntityId,
    pub household_id: Option<HouseholdId>,
    pub area_id: Option<AreaId>,
    pub op: &'static str,
    pub version: i64,
}

/// A change-log row's values.
type Values = (
    Eq<changes::entity, &'static str>,
    Eq<changes::entity_id, EntityId>,
    Eq<changes::household_id, Option<HouseholdId>>,
    Eq<changes::area_id, Option<AreaId>>,
    Eq<changes::op, &'static str>,
    Eq<changes::version, i64>,
    Eq<changes::created_at, Time>,
);

impl Change {
    /// The row to insert, stamped `now`.
    pub fn values(&self, now: Time) -> Values {
        (
            changes::entity.eq(self.entity),
            changes::entity_id.eq(self.entity_id),
            changes::household_id.eq(self.household_id),
            changes::area_id.eq(self.area_id),
            changes::op.eq(self.op),
            changes::version.eq(self.version),
            changes::created_at.eq(now),
        )
    }
}

/// Appends a change. On PostgreSQL the row is stamped with the writing transaction's id by
/// the column default; on SQLite the autoincrement id is commit-ordered (one writer at a time).
pub fn record(conn: &mut Conn<'_>, ch: Change) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(changes::table)
        .values(ch.values(Time::now()))
        .execute(c))?;
    Ok(())
}
