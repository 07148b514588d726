//! Counting the tallies: of households in the database (`count`, the one definition), and
//! of households a write creates, from the rows it wrote (`count_written`).

use super::{Parts, Tallies};
use crate::db::any::any_of;
use crate::db::schema::{adoptions, households, members, visits};
use crate::db::Conn;
use crate::domain::household::{AdoptionStatus, Outcome, Priority, Smartphone};
use crate::domain::{AreaId, CampaignId, HouseholdId, Time, VisitId};
use crate::store::error::Result;
use crate::store::households::{Adoption, Household, Member, Visit};
use crate::with_conn;
use diesel::dsl::count_star;
use diesel::prelude::*;
use std::collections::HashMap;

diesel::allow_columns_to_appear_in_same_group_by_clause!(
    households::area_id,
    members::smartphone,
    members::priority,
);

/// What to count: some households (a write's), or the households of some villages.
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    Households(&'a [HouseholdId]),
    Villages(&'a [AreaId]),
}

/// Runs `$body` with `$f` the filter on `households` that `$of` names.
macro_rules! scoped {
    ($of:expr, |$f:ident| $body:expr) => {
        match $of {
            Of::Households(ids) => {
                let $f = any_of(households::id, ids);
                $body
            }
            Of::Villages(ids) => {
                let $f = any_of(households::area_id, ids);
                $body
            }
        }
    };
}

/// Counts the given households from their rows: the one definition of the tallies.
pub fn count(conn: &mut Conn<'_>, of: Of<'_>, parts: Parts) -> Result<Tallies> {
    let mut t = Tallies::default();
    if parts.homes {
        let rows: Vec<(AreaId, i64)> = with_conn!(conn, |c| scoped!(of, |f| households::table
            .filter(f)
            .filter(households::deleted_at.is_null())
            .group_by(households::area_id)
            .select((households::area_id, count_star()))
            .load(c)))?;
        t.add_homes(rows);
    }
    if parts.people {
        let rows: Vec<PeopleRow> = with_conn!(conn, |c| scoped!(of, |f| members::table
            .inner_join(households::table)
            .filter(f)
            .filter(households::deleted_at.is_null())
            .filter(members::deleted_at.is_null())
            .group_by((households::area_id, members::smartphone, members::priority))
            .select((
                households::area_id,
                members::smartphone,
                members::priority,
                count_star(),
            ))
            .load(c)))?;
        t.add_people(rows);
    }
    if parts.visits {
        let rows: Vec<VisitRow> = with_conn!(conn, |c| scoped!(of, |f| visits::table
            .inner_join(households::table)
            .filter(f)
            .filter(households::deleted_at.is_null())
            .select((
                visits::household_id,
                households::area_id,
                visits::campaign_id,
                visits::visited_at,
                visits::id,
                visits::outcome,
            ))
            .load(c)))?;
        t.add_visits(rows);
    }
    if parts.installs {
        let rows: Vec<InstallRow> = with_conn!(conn, |c| scoped!(of, |f| adoptions::table
            .inner_join(members::table.inner_join(households::table))
            .filter(f)
            .filter(adoptions::status.eq_any(AdoptionStatus::INSTALLED))
            .filter(households::deleted_at.is_null())
            .filter(members::deleted_at.is_null())
            .select((
                households::area_id,
                adoptions::campaign_id,
                adoptions::recorded_at,
                members::priority,
            ))
            .load(c)))?;
        t.add_installs(rows);
    }
    Ok(t)
}

/// `count` of households that a write creates, from its rows in memory instead of four
/// queries: each such household's members, statuses and visits are all among the rows
/// written with it (not so for a household that a merge moved members or visits into:
/// `count` that one). `homes` are those households; of the other rows, those of `homes`
/// count. The same rows as `count`'s queries select, filtered alike: live households; their
/// live members; their visits; the installs of their live members.
pub fn count_written(
    homes: &[&Household],
    members: &[Member],
    adoptions: &[Adoption],
    visits: &[Visit],
    parts: Parts,
) -> Tallies {
    let mut t = Tallies::default();
    let live: HashMap<HouseholdId, AreaId> = homes
        .iter()
        .filter(|h| h.deleted_at.is_none())
        .map(|h| (h.id, h.area_id))
        .collect();
    let people: HashMap<crate::domain::MemberId, (AreaId, Priority)> = members
        .iter()
        .filter(|m| m.deleted_at.is_none())
        .filter_map(|m| Some((m.id, (*live.get(&m.household_id)?, m.priority))))
        .collect();
    if parts.homes {
        t.add_homes(live.values().map(|a| (*a, 1)));
    }
    if parts.people {
        t.add_people(
            members
                .iter()
                .filter(|m| people.contains_key(&m.id))
                .map(|m| (live[&m.household_id], m.smartphone, m.priority, 1)),
        );
    }
    if parts.visits {
        t.add_visits(visits.iter().filter_map(|v| {
            let a = *live.get(&v.household_id)?;
            Some((
                v.household_id,
                a,
                v.campaign_id,
                v.visited_at,
                v.id,
                v.outcome,
            ))
        }));
    }
    if parts.installs {
        t.add_installs(
            adoptions
                .iter()
                .filter(|a| a.status.is_installed())
                .filter_map(|a| {
                    let (area, priority) = *people.get(&a.member_id)?;
                    Some((area, a.campaign_id, a.recorded_at, priority))
                }),
        );
    }
    t
}

/// Live members of a village by smartphone and priority: (village, smartphone, priority, n).
type PeopleRow = (AreaId, Smartphone, Priority, i64);
/// A visit of a live household: (household, village, campaign, when, visit, outcome).
type VisitRow = (HouseholdId, AreaId, CampaignId, Time, VisitId, Outcome);
/// An install of a live member: (village, campaign, when recorded, the member's priority).
type InstallRow = (AreaId, CampaignId, Time, Priority);

impl Tallies {
    fn add_homes(&mut self, rows: impl IntoIterator<Item = (AreaId, i64)>) {
        for (a, n) in rows {
            self.villages.entry(a).or_default().households += n;
        }
    }

    fn add_people(&mut self, rows: impl IntoIterator<Item = PeopleRow>) {
        for (a, phone, priority, n) in rows {
            let v = self.villages.entry(a).or_default();
            v.persons += n;
            if phone == Smartphone::Yes {
                v.smartphone += n;
            }
            if priority.is_priority() {
                v.priority += n;
            }
        }
    }

    /// Counts the latest visit of each household in each campaign, by time then id.
    fn add_visits(&mut self, rows: impl IntoIterator<Item = VisitRow>) {
        let mut latest: HashMap<(HouseholdId, CampaignId), (AreaId, Time, VisitId, Outcome)> =
            HashMap::new();
        for (h, a, campaign, at, id, outcome) in rows {
            let e = latest.entry((h, campaign)).or_insert((a, at, id, outcome));
            if (at, id) > (e.1, e.2) {
                *e = (a, at, id, outcome);
            }
        }
        for ((_, campaign), (a, _, _, outcome)) in latest {
            let c = self.campaigns.entry((a, campaign)).or_default();
            c.visited += 1;
            if Outcome::REVISIT.contains(&outcome.as_str()) {
                c.revisit += 1;
            }
        }
    }

    fn add_installs(&mut self, rows: impl IntoIterator<Item = InstallRow>) {
        for (a, campaign, at, priority) in rows {
            let c = self.campaigns.entry((a, campaign)).or_default();
            c.installed += 1;
            if priority.is_priority() {
                c.priority_installed += 1;
            }
            *self
                .days
                .entry((a, campaign, crate::domain::local_date(&at)))
                .or_default() += 1;
        }
    }
}
