//! Per-village tallies of the supervisors' reports, kept exact by the write path, so that a
//! province's progress, trend and work-list totals add up a few thousand rows instead of
//! counting millions of households, members, adoptions and visits at each request.
//!
//! `count` is the one definition of what is counted. The flush of a `Work` counts the
//! households it writes before and after writing them and adds the difference, in the same
//! transaction (`Work::flush`); increments commute, so concurrent writers need no lock
//! beyond the households' own. Households the work creates are counted after the writes
//! from the rows written (`count_written`, the same filters over the same rows, through the
//! same accumulation), which saves a push of new households the four queries of `count`.
//! `rebuild` counts everything anew: an existing database at the first start after the
//! tallies came (`ensure_built`), and after rows were written around the write path
//! (`gocua tallies rebuild`). `check` compares the two.
//!
//! `counting` holds the counting (from the database and from a write's rows), `stored` the
//! tally tables: adding to them, reading them, rebuilding and checking them.

mod counting;
mod stored;

pub use counting::{count, count_written, Of};
pub use stored::{add, check, ensure_built, read, read_all, rebuild, Rebuilt};

use super::households::{Adoption, Household, Member, Visit};
use crate::domain::{AreaId, CampaignId};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Counts of one village: live households, and the live members of those households.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Village {
    pub households: i64,
    pub persons: i64,
    pub smartphone: i64,
    pub priority: i64,
}

/// Counts of one village in one campaign: live households visited, and whose latest visit
/// calls for another; live members whose status is an install, and the priority persons
/// among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InCampaign {
    pub visited: i64,
    pub revisit: i64,
    pub installed: i64,
    pub priority_installed: i64,
}

/// Tallies, or differences of tallies, by village; by village and campaign; and the installs
/// by village, campaign and the day (Vietnam time) their status was recorded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tallies {
    pub villages: BTreeMap<AreaId, Village>,
    pub campaigns: BTreeMap<(AreaId, CampaignId), InCampaign>,
    pub days: BTreeMap<(AreaId, CampaignId, NaiveDate), i64>,
}

impl Village {
    fn add(&mut self, o: &Village, sign: i64) {
        self.households += sign * o.households;
        self.persons += sign * o.persons;
        self.smartphone += sign * o.smartphone;
        self.priority += sign * o.priority;
    }
}

impl InCampaign {
    fn add(&mut self, o: &InCampaign, sign: i64) {
        self.visited += sign * o.visited;
        self.revisit += sign * o.revisit;
        self.installed += sign * o.installed;
        self.priority_installed += sign * o.priority_installed;
    }
}

impl Tallies {
    /// `self + sign × o`, leaving out what comes to zero.
    pub fn plus(mut self, o: &Tallies, sign: i64) -> Tallies {
        for (k, v) in &o.villages {
            self.villages.entry(*k).or_default().add(v, sign);
        }
        for (k, v) in &o.campaigns {
            self.campaigns.entry(*k).or_default().add(v, sign);
        }
        for (k, v) in &o.days {
            *self.days.entry(*k).or_default() += sign * v;
        }
        self.villages.retain(|_, v| *v != Village::default());
        self.campaigns.retain(|_, v| *v != InCampaign::default());
        self.days.retain(|_, v| *v != 0);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.villages.is_empty() && self.campaigns.is_empty() && self.days.is_empty()
    }
}

/// Which counts a write can change, by what it wrote (see `Parts::of_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parts {
    /// Live households.
    pub homes: bool,
    /// Live members, by smartphone and priority.
    pub people: bool,
    /// Visits of live households.
    pub visits: bool,
    /// Installs of live members.
    pub installs: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        homes: true,
        people: true,
        visits: true,
        installs: true,
    };

    pub fn any(self) -> bool {
        self.homes || self.people || self.visits || self.installs
    }

    pub fn or(self, o: Parts) -> Parts {
        Parts {
            homes: self.homes || o.homes,
            people: self.people || o.people,
            visits: self.visits || o.visits,
            installs: self.installs || o.installs,
        }
    }

    /// A household written over `old` (`None`: new). Its village or whether it is deleted
    /// decide everything counted of it. A new household has no other counted rows but those
    /// written with it, which bring their own parts.
    pub fn of_household(old: Option<&Household>, new: &Household) -> Parts {
        match old {
            None => Parts {
                homes: true,
                ..Parts::default()
            },
            Some(o)
                if o.area_id == new.area_id
                    && o.deleted_at.is_some() == new.deleted_at.is_some() =>
            {
                Parts::default()
            }
            Some(_) => Parts::ALL,
        }
    }

    pub fn of_member(old: Option<&Member>, new: &Member) -> Parts {
        let same = |o: &Member| {
            o.household_id == new.household_id
                && o.deleted_at.is_some() == new.deleted_at.is_some()
                && o.smartphone == new.smartphone
                && o.priority == new.priority
        };
        match old {
            Some(o) if same(o) => Parts::default(),
            _ => Parts {
                people: true,
                installs: true,
                ..Parts::default()
            },
        }
    }

    pub fn of_adoption(old: Option<&Adoption>, new: &Adoption) -> Parts {
        match old {
            Some(o) if o.status == new.status && o.recorded_at == new.recorded_at => {
                Parts::default()
            }
            _ => Parts {
                installs: true,
                ..Parts::default()
            },
        }
    }

    /// A new visit (visits are never changed).
    pub fn of_visit(_: &Visit) -> Parts {
        Parts {
            visits: true,
            ..Parts::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn village(households: i64, persons: i64) -> Village {
        Village {
            households,
            persons,
            ..Village::default()
        }
    }

    #[test]
    fn differences_leave_out_what_comes_to_zero() {
        let a = AreaId(uuid::Uuid::from_u128(1));
        let b = AreaId(uuid::Uuid::from_u128(2));
        let mut before = Tallies::default();
        before.villages.insert(a, village(3, 9));
        before.villages.insert(b, village(1, 2));
        let mut after = Tallies::default();
        after.villages.insert(a, village(3, 9));
        after.villages.insert(b, village(2, 6));
        let d = after.plus(&before, -1);
        assert_eq!(d.villages.len(), 1);
        assert_eq!(d.villages[&b], village(1, 4));
        assert!(Tallies::default().plus(&d, 1).plus(&d, -1).is_empty());
    }
}
