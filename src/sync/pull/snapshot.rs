//! The snapshot phase: the current households of the caller's scope, a page at a time, each
//! whole (household, live members, their adoptions, visits).

use super::compact::{self, Units};
use super::ChangeOut;
use crate::db::Conn;
use crate::domain::household::Record;
use crate::domain::{AreaId, HouseholdId, MemberId};
use crate::store::households::{bulk, Adoption, Household, Member, Visit};
use crate::sync::Result;

/// A page of the snapshot: the households after `after` in id order, whole.
pub struct Page {
    pub changes: Vec<ChangeOut>,
    /// The same in the compact form, when asked for (`changes` is then empty).
    pub units: Option<Units>,
    /// The last household sent, where the next page starts.
    pub last: Option<HouseholdId>,
    /// Whether the snapshot is all sent.
    pub done: bool,
}

/// Up to `limit` households after `after`, in the areas `areas` (all when `None`).
pub fn page(
    conn: &mut Conn<'_>,
    areas: Option<&[AreaId]>,
    after: Option<HouseholdId>,
    limit: i64,
    compact: bool,
) -> Result<Page> {
    let hs = bulk::live_households_after(conn, areas, after, limit)?;
    let done = (hs.len() as i64) < limit;
    let last = hs.last().map(|h| h.id).or(after);
    let ids: Vec<HouseholdId> = hs.iter().map(|h| h.id).collect();
    let ms = bulk::members_of(conn, &ids)?;
    let mids: Vec<MemberId> = ms.iter().map(|m| m.id).collect();
    let ads = bulk::adoptions_of_members(conn, &mids)?;
    let vs = bulk::visits_of(conn, &ids)?;
    let (changes, units) = if compact {
        (Vec::new(), Some(compact::units(&hs, &ms, &ads, &vs)))
    } else {
        (unit_states(&hs, &ms, &ads, &vs), None)
    };
    Ok(Page {
        changes,
        units,
        last,
        done,
    })
}

/// Whole units (household, live members, their adoptions, visits), one change each.
fn unit_states(hs: &[Household], ms: &[Member], ads: &[Adoption], vs: &[Visit]) -> Vec<ChangeOut> {
    let mut out = Vec::with_capacity(hs.len() + ms.len() + ads.len() + vs.len());
    out.extend(
        hs.iter()
            .map(|h| ChangeOut::upsert(Record::Household, h.id.0, h.id, h.version, h)),
    );
    out.extend(
        ms.iter()
            .map(|m| ChangeOut::upsert(Record::Member, m.id.0, m.household_id, m.version, m)),
    );
    out.extend(ads.iter().map(|a| {
        ChangeOut::upsert(
            Record::Adoption,
            a.member_id.0,
            a.household_id,
            a.version,
            a,
        )
    }));
    out.extend(
        vs.iter()
            .map(|v| ChangeOut::upsert(Record::Visit, v.id.0, v.household_id, 1, v)),
    );
    out
}
