//! Work lists of an area's subtree for a campaign: priority persons not yet installed,
//! households never visited, and households to visit again.

use super::Result;
use super::Subject;
use crate::db::any::any_of;
use crate::db::schema::{adoptions, areas, households, members, visits};
use crate::db::Conn;
use crate::domain::household::{AdoptionStatus, Outcome, Priority};
use crate::domain::{AreaId, CampaignId, HouseholdId, MemberId, Time, VisitId};
use crate::store::PageReq;
use crate::with_conn;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// Outcomes after which the household must be visited again.
pub const REVISIT_OUTCOMES: &[&str] = Outcome::REVISIT;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Live members with a priority category whose status in the campaign is not an install.
    PriorityPending,
    /// Live households with no visit in the campaign.
    Unvisited,
    /// Live households whose latest visit in the campaign was "not home" or "come back later".
    Revisit,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastVisit {
    pub visit_id: VisitId,
    pub visited_at: Time,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriorityPerson {
    pub member_id: MemberId,
    pub full_name: String,
    /// `quarantine_centralized`, `quarantine_home` or `testing_required`.
    pub priority: String,
    pub phone: Option<String>,
    pub birth_year: Option<i32>,
    /// The member's status in the campaign; none when nothing is recorded.
    pub status: Option<String>,
    pub household_id: HouseholdId,
    pub address: String,
    pub head_name: String,
    pub household_phone: Option<String>,
    pub village_id: AreaId,
    pub village: String,
    /// The household's latest visit in the campaign.
    pub last_visit: Option<LastVisit>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdToVisit {
    pub household_id: HouseholdId,
    pub address: String,
    pub head_name: String,
    pub phone: Option<String>,
    pub village_id: AreaId,
    pub village: String,
    /// Live members.
    pub members: i64,
    /// Live members with a priority category.
    pub priority_members: i64,
    /// The latest visit in the campaign (none for households never visited).
    pub last_visit: Option<LastVisit>,
}

type PersonRow = (
    MemberId,
    String,
    String,
    Option<String>,
    Option<i32>,
    HouseholdId,
    String,
    String,
    Option<String>,
    AreaId,
    String,
);

/// One page of priority persons not yet installed, by village, address and name; with the
/// total when asked.
pub fn priority_pending(
    conn: &mut Conn<'_>,
    s: &Subject,
    page: PageReq,
    with_total: bool,
) -> Result<(Vec<PriorityPerson>, Option<i64>)> {
    let pattern = s.subtree();
    let campaign = s.campaign.id;
    let villages = villages_of(conn, s, List::PriorityPending)?;
    let total = with_total.then(|| villages.iter().map(|v| v.2).sum());
    let (window, offset) = window(&villages, page.offset(), page.per_page);
    let rows: Vec<PersonRow> = match window.is_empty() {
        true => Vec::new(),
        false => with_conn!(conn, |c| {
            let installed = adoptions::table
                .filter(adoptions::member_id.eq(members::id))
                .filter(adoptions::campaign_id.eq(campaign))
                .filter(adoptions::status.eq_any(AdoptionStatus::INSTALLED));
            members::table
                .inner_join(households::table.inner_join(areas::table))
                .filter(any_of(households::area_id, &window))
                .filter(areas::path.like(&pattern))
                .filter(households::deleted_at.is_null())
                .filter(members::deleted_at.is_null())
                .filter(members::priority.ne(Priority::None))
                .filter(not(exists(installed)))
                .select((
                    members::id,
                    members::full_name,
                    members::priority,
                    members::phone,
                    members::birth_year,
                    households::id,
                    households::address,
                    households::head_name,
                    households::phone,
                    areas::id,
                    areas::name,
                ))
                .order((
                    areas::name,
                    households::address,
                    members::full_name,
                    members::id,
                ))
                .limit(page.per_page)
                .offset(offset)
                .load(c)
        })?,
    };
    let member_ids: Vec<MemberId> = rows.iter().map(|r| r.0).collect();
    let statuses: HashMap<MemberId, String> = with_conn!(conn, |c| adoptions::table
        .filter(adoptions::member_id.eq_any(&member_ids))
        .filter(adoptions::campaign_id.eq(campaign))
        .select((adoptions::member_id, adoptions::status))
        .load::<(MemberId, String)>(c))?
    .into_iter()
    .collect();
    let homes: Vec<HouseholdId> = rows.iter().map(|r| r.5).collect();
    let last = last_visits(conn, campaign, &homes)?;
    let items = rows
        .into_iter()
        .map(|r| PriorityPerson {
            status: statuses.get(&r.0).cloned(),
            last_visit: last.get(&r.5).cloned(),
            member_id: r.0,
            full_name: r.1,
            priority: r.2,
            phone: r.3,
            birth_year: r.4,
            household_id: r.5,
            address: r.6,
            head_name: r.7,
            household_phone: r.8,
            village_id: r.9,
            village: r.10,
        })
        .collect();
    Ok((items, total))
}

type HomeRow = (HouseholdId, String, String, Option<String>, AreaId, String);

/// One page of households never visited (`List::Unvisited`) or to visit again
/// (`List::Revisit`), by village, address and head; with the total when asked.
pub fn households_to_visit(
    conn: &mut Conn<'_>,
    s: &Subject,
    list: List,
    page: PageReq,
    with_total: bool,
) -> Result<(Vec<HouseholdToVisit>, Option<i64>)> {
    let pattern = s.subtree();
    let campaign = s.campaign.id;
    let revisit = list == List::Revisit;
    let villages = villages_of(conn, s, list)?;
    let total = with_total.then(|| villages.iter().map(|v| v.2).sum());
    let (window, offset) = window(&villages, page.offset(), page.per_page);
    let rows: Vec<HomeRow> = match window.is_empty() {
        true => Vec::new(),
        false => with_conn!(conn, |c: DB| {
            let mut q = households::table
                .inner_join(areas::table)
                .filter(any_of(households::area_id, &window))
                .filter(areas::path.like(&pattern))
                .filter(households::deleted_at.is_null())
                .into_boxed::<DB>();
            if revisit {
                let later = diesel::alias!(visits as later);
                let newer = later
                    .filter(later.field(visits::household_id).eq(households::id))
                    .filter(later.field(visits::campaign_id).eq(campaign))
                    .filter(
                        later
                            .field(visits::visited_at)
                            .gt(visits::visited_at)
                            .or(later
                                .field(visits::visited_at)
                                .eq(visits::visited_at)
                                .and(later.field(visits::id).gt(visits::id))),
                    );
                q = q.filter(exists(
                    visits::table
                        .filter(visits::household_id.eq(households::id))
                        .filter(visits::campaign_id.eq(campaign))
                        .filter(visits::outcome.eq_any(REVISIT_OUTCOMES))
                        .filter(not(exists(newer))),
                ));
            } else {
                q = q.filter(not(exists(
                    visits::table
                        .filter(visits::household_id.eq(households::id))
                        .filter(visits::campaign_id.eq(campaign)),
                )));
            }
            q.select((
                households::id,
                households::address,
                households::head_name,
                households::phone,
                areas::id,
                areas::name,
            ))
            .order((
                areas::name,
                households::address,
                households::head_name,
                households::id,
            ))
            .limit(page.per_page)
            .offset(offset)
            .load(c)
        })?,
    };
    let ids: Vec<HouseholdId> = rows.iter().map(|r| r.0).collect();
    let people: Vec<(HouseholdId, Priority)> = with_conn!(conn, |c| members::table
        .filter(members::household_id.eq_any(&ids))
        .filter(members::deleted_at.is_null())
        .select((members::household_id, members::priority))
        .load(c))?;
    let mut counts: HashMap<HouseholdId, (i64, i64)> = HashMap::new();
    for (h, priority) in people {
        let e = counts.entry(h).or_default();
        e.0 += 1;
        e.1 += i64::from(priority.is_priority());
    }
    let last = if revisit {
        last_visits(conn, campaign, &ids)?
    } else {
        HashMap::new()
    };
    let items = rows
        .into_iter()
        .map(|r| {
            let (members, priority_members) = counts.get(&r.0).copied().unwrap_or_default();
            HouseholdToVisit {
                last_visit: last.get(&r.0).cloned(),
                household_id: r.0,
                address: r.1,
                head_name: r.2,
                phone: r.3,
                village_id: r.4,
                village: r.5,
                members,
                priority_members,
            }
        })
        .collect();
    Ok((items, total))
}

/// The areas of the subtree by name, as the database sorts them (the lists' first key), with
/// how many rows of `list` each holds, from the tallies (`store::tallies`); areas holding
/// none are left out.
fn villages_of(conn: &mut Conn<'_>, s: &Subject, list: List) -> Result<Vec<(AreaId, String, i64)>> {
    let pattern = s.subtree();
    let areas: Vec<(AreaId, String)> = with_conn!(conn, |c| areas::table
        .filter(areas::path.like(&pattern))
        .select((areas::id, areas::name))
        .order(areas::name)
        .load(c))?;
    let ids: Vec<AreaId> = areas.iter().map(|a| a.0).collect();
    let t = crate::store::tallies::read(conn, &ids, Some(s.campaign.id), false)?;
    Ok(areas
        .into_iter()
        .filter_map(|(id, name)| {
            let v = t.villages.get(&id).copied().unwrap_or_default();
            let c = t
                .campaigns
                .get(&(id, s.campaign.id))
                .copied()
                .unwrap_or_default();
            let n = match list {
                List::PriorityPending => v.priority - c.priority_installed,
                List::Unvisited => v.households - c.visited,
                List::Revisit => c.revisit,
            };
            (n > 0).then_some((id, name, n))
        })
        .collect())
}

/// The villages that hold rows `offset .. offset + limit` of a list ordered by village name
/// first, and where those rows start among the villages' own. Villages of one name go
/// together: the list orders their rows by address across them.
fn window(villages: &[(AreaId, String, i64)], offset: i64, limit: i64) -> (Vec<AreaId>, i64) {
    let mut skip = offset;
    let mut taken: Vec<AreaId> = Vec::new();
    let mut held = 0;
    for group in villages.chunk_by(|a, b| a.1 == b.1) {
        let n: i64 = group.iter().map(|v| v.2).sum();
        if taken.is_empty() && skip >= n {
            skip -= n;
            continue;
        }
        taken.extend(group.iter().map(|v| v.0));
        held += n;
        if held - skip >= limit {
            break;
        }
    }
    (taken, skip)
}

/// The latest visit in the campaign of each household (by time, then id).
fn last_visits(
    conn: &mut Conn<'_>,
    campaign: CampaignId,
    ids: &[HouseholdId],
) -> Result<HashMap<HouseholdId, LastVisit>> {
    let rows: Vec<(HouseholdId, VisitId, Time, String)> = with_conn!(conn, |c| visits::table
        .filter(visits::household_id.eq_any(ids))
        .filter(visits::campaign_id.eq(campaign))
        .select((
            visits::household_id,
            visits::id,
            visits::visited_at,
            visits::outcome
        ))
        .order((visits::visited_at, visits::id))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(h, visit_id, visited_at, outcome)| {
            (
                h,
                LastVisit {
                    visit_id,
                    visited_at,
                    outcome,
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u128, name: &str, rows: i64) -> (AreaId, String, i64) {
        (AreaId(uuid::Uuid::from_u128(n)), name.to_owned(), rows)
    }

    #[test]
    fn a_page_reads_only_the_villages_that_hold_it() {
        let villages = [v(1, "A", 30), v(2, "B", 30), v(3, "B", 5), v(4, "C", 40)];
        let ids =
            |w: (Vec<AreaId>, i64)| (w.0.iter().map(|a| a.0.as_u128()).collect::<Vec<_>>(), w.1);
        // The first page of 20 lies in A.
        assert_eq!(ids(window(&villages, 0, 20)), (vec![1], 0));
        // Rows 20..70 start in A, take both villages named B (ordered together), end in C.
        assert_eq!(ids(window(&villages, 20, 50)), (vec![1, 2, 3, 4], 20));
        // Rows 30..50: both Bs, from their first row.
        assert_eq!(ids(window(&villages, 30, 20)), (vec![2, 3], 0));
        // Past the end: nothing to read.
        assert_eq!(ids(window(&villages, 105, 20)), (vec![], 0));
    }
}
