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

/// Narrows a boxed list query to a read's villages and rows, in order: by village name
/// first when the read spans whole groups, else by the list's own keys, the order of the
/// index by village and address.
macro_rules! village_page {
    ($q:expr, $read:expr, ($($key:expr),+)) => {{
        let q = match $read.areas {
            [one] => $q.filter(households::area_id.eq(*one)),
            many => $q.filter(any_of(households::area_id, many)),
        };
        match $read.by_village {
            true => q.order((areas::name, $($key),+)),
            false => q.order(($($key),+)),
        }
        .limit($read.limit)
        .offset($read.offset)
    }};
}

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
    let campaign = s.campaign.id;
    let villages = villages_of(conn, s, List::PriorityPending)?;
    let total = with_total.then(|| villages.iter().map(|v| v.2).sum());
    let rows: Vec<PersonRow> = page_by_groups(&villages, page, |read| {
        Ok(with_conn!(conn, |c: DB| {
            let installed = adoptions::table
                .filter(adoptions::member_id.eq(members::id))
                .filter(adoptions::campaign_id.eq(campaign))
                .filter(adoptions::status.eq_any(AdoptionStatus::INSTALLED));
            let q = members::table
                .inner_join(households::table.inner_join(areas::table))
                .filter(households::deleted_at.is_null())
                .filter(members::deleted_at.is_null())
                .filter(members::priority.ne(Priority::None))
                .filter(not(exists(installed)))
                .into_boxed::<DB>();
            village_page!(
                q,
                read,
                (households::address, members::full_name, members::id)
            )
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
            .load(c)
        })?)
    })?;
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
    let campaign = s.campaign.id;
    let revisit = list == List::Revisit;
    let villages = villages_of(conn, s, list)?;
    let total = with_total.then(|| villages.iter().map(|v| v.2).sum());
    let rows: Vec<HomeRow> = page_by_groups(&villages, page, |read| {
        Ok(with_conn!(conn, |c: DB| {
            let mut q = households::table
                .inner_join(areas::table)
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
            village_page!(
                q,
                read,
                (households::address, households::head_name, households::id)
            )
            .select((
                households::id,
                households::address,
                households::head_name,
                households::phone,
                areas::id,
                areas::name,
            ))
            .load(c)
        })?)
    })?;
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

/// What a list's page asks of the database in one query: the rows `offset .. offset +
/// limit` of `areas`, ordered by village name first when `by_village`, else (one group of
/// villages sharing a name) by the list's keys after it.
struct Read<'a> {
    areas: &'a [AreaId],
    by_village: bool,
    limit: i64,
    offset: i64,
}

/// One page of a list ordered by village name first, from the village that holds row
/// `offset` on, by the villages' tallies. Villages of one name are one group (the list
/// orders their rows by address across them). A page the API serves reads each group
/// alone, in the list's order from the index by village and address, and each query stops
/// once the page is full, however large the village: PostgreSQL's estimate of a village's
/// rows is the average village's, and a query over several villages it believes large
/// (hash joins over the campaign's visits) took 0.5 s at 2,000,000 households where
/// reading them one by one takes milliseconds. An export's page (thousands of rows) reads
/// the groups whose rows all belong to it in one query ordered by village name, and a group
/// only part of whose rows do alone. A group that holds fewer rows than its tally says lets
/// the next ones fill the page.
fn page_by_groups<R>(
    villages: &[(AreaId, String, i64)],
    page: PageReq,
    mut read: impl FnMut(Read<'_>) -> Result<Vec<R>>,
) -> Result<Vec<R>> {
    let groups: Vec<(Vec<AreaId>, i64)> = villages
        .chunk_by(|a, b| a.1 == b.1)
        .map(|g| (g.iter().map(|v| v.0).collect(), g.iter().map(|v| v.2).sum()))
        .collect();
    let mut skip = page.offset();
    let mut i = 0;
    while i < groups.len() && skip >= groups[i].1 {
        skip -= groups[i].1;
        i += 1;
    }
    let together = page.per_page > PageReq::MAX_PER_PAGE;
    let mut rows = Vec::new();
    while i < groups.len() && (rows.len() as i64) < page.per_page {
        let need = page.per_page - rows.len() as i64;
        let mut end = i;
        let mut held = -skip;
        while together && end < groups.len() && held + groups[end].1 <= need {
            held += groups[end].1;
            end += 1;
        }
        let whole = end > i;
        let end = end.max(i + 1);
        let areas: Vec<AreaId> = groups[i..end]
            .iter()
            .flat_map(|g| g.0.iter().copied())
            .collect();
        rows.extend(read(Read {
            areas: &areas,
            by_village: whole,
            limit: need,
            offset: skip,
        })?);
        skip = 0;
        i = end;
    }
    Ok(rows)
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

    /// What page `page` of `per_page` rows asks for (the areas, whether by village, limit
    /// and offset) when every village holds what its tally says.
    fn reads(
        villages: &[(AreaId, String, i64)],
        page: i64,
        per_page: i64,
    ) -> Vec<(Vec<u128>, bool, i64, i64)> {
        let mut asked = Vec::new();
        let rows = page_by_groups(villages, PageReq { page, per_page }, |r| {
            asked.push((
                r.areas.iter().map(|a| a.0.as_u128()).collect(),
                r.by_village,
                r.limit,
                r.offset,
            ));
            let held: i64 = villages
                .iter()
                .filter(|v| r.areas.contains(&v.0))
                .map(|v| v.2)
                .sum();
            Ok(vec![(); (held - r.offset).clamp(0, r.limit) as usize])
        })
        .unwrap();
        assert!(rows.len() as i64 <= per_page);
        asked
    }

    #[test]
    fn a_page_reads_only_the_villages_that_hold_it_one_by_one() {
        let villages = [v(1, "A", 30), v(2, "B", 30), v(3, "B", 5), v(4, "C", 40)];
        // The first page of 20 lies in A, read in the list's order.
        assert_eq!(reads(&villages, 1, 20), vec![(vec![1], false, 20, 0)]);
        // Rows 0..70: A, both villages named B (ordered together), 5 of C's 40 rows.
        assert_eq!(
            reads(&villages, 1, 70),
            vec![
                (vec![1], false, 70, 0),
                (vec![2, 3], false, 40, 0),
                (vec![4], false, 5, 0)
            ]
        );
        // Rows 25..50: A's last 5, then 20 of the Bs' 35 from their first row.
        assert_eq!(
            reads(&villages, 2, 25),
            vec![(vec![1], false, 25, 25), (vec![2, 3], false, 20, 0)]
        );
        // Past the end: nothing to read.
        assert_eq!(reads(&villages, 7, 20), vec![]);
    }

    #[test]
    fn an_export_page_reads_the_villages_it_holds_whole_together() {
        let villages = [
            v(1, "A", 3000),
            v(2, "B", 3000),
            v(3, "B", 500),
            v(4, "C", 4000),
        ];
        // Rows 0..5000: A whole, by village name; 2,000 of the Bs' 3,500.
        assert_eq!(
            reads(&villages, 1, 5000),
            vec![(vec![1], true, 5000, 0), (vec![2, 3], false, 2000, 0)]
        );
        // Rows 5000..10000: the Bs' last 1,500 by village, then 3,500 of C's 4,000 alone.
        assert_eq!(
            reads(&villages, 2, 5000),
            vec![(vec![2, 3], true, 5000, 2000), (vec![4], false, 3500, 0)]
        );
    }

    #[test]
    fn a_village_holding_fewer_rows_than_its_tally_lets_the_next_fill_the_page() {
        let villages = [v(1, "A", 30), v(2, "B", 30)];
        let page = PageReq {
            page: 1,
            per_page: 20,
        };
        let mut asked = Vec::new();
        let rows = page_by_groups(&villages, page, |r| {
            asked.push(r.areas[0].0.as_u128());
            // A holds 5 rows only.
            Ok(vec![
                ();
                if r.areas[0].0.as_u128() == 1 {
                    5
                } else {
                    r.limit as usize
                }
            ])
        })
        .unwrap();
        assert_eq!((rows.len(), asked), (20, vec![1, 2]));
    }
}
