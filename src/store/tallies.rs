//! Per-village tallies of the supervisors' reports, kept exact by the write path, so that a
//! province's progress, trend and work-list totals add up a few thousand rows instead of
//! counting millions of households, members, adoptions and visits at each request.
//!
//! `count` is the one definition of what is counted. The flush of a `Work` counts the
//! households it writes before and after writing them and adds the difference, in the same
//! transaction (`Work::flush`); increments commute, so concurrent writers need no lock
//! beyond the households' own. Households the work creates are counted after the writes
//! from the rows written (`count_written`, the same filters over the same rows, through the
//! same accumulation), which saves a push of new households the four queries of `count`. `rebuild` counts everything anew: an existing database at
//! the first start after the tallies came (`ensure_built`), and after rows were written
//! around the write path (`gocua tallies rebuild`). `check` compares the two.

use super::error::Result;
use super::households::{Adoption, Household, Member, Visit};
use crate::db::any::any_of;
use crate::db::schema::{
    adoptions, households, members, tally_campaigns, tally_days, tally_state, tally_villages,
    visits,
};
use crate::db::Conn;
use crate::domain::household::{AdoptionStatus, Outcome, Priority, Smartphone};
use crate::domain::{AreaId, CampaignId, HouseholdId, Time, VisitId};
use crate::{insert_rows, with_conn};
use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::upsert::excluded;
use std::collections::{BTreeMap, HashMap};

diesel::allow_columns_to_appear_in_same_group_by_clause!(
    households::area_id,
    members::smartphone,
    members::priority,
);

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
/// `count` that one). The same rows as `count`'s queries select, filtered alike: live
/// households; their live members; their visits; the installs of their live members.
pub fn count_written(
    homes: &[&Household],
    members: &[&Member],
    adoptions: &[&Adoption],
    visits: &[&Visit],
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

/// Upserts `rows` into a tally table with one statement: a row's own statement (kept
/// prepared) when there is one, a multi-row one otherwise.
macro_rules! upsert_rows {
    ($conn:expr, $table:expr, $rows:expr, $target:expr, $set:expr) => {
        match &$rows[..] {
            [] => Ok(0),
            [row] => with_conn!($conn, |c| diesel::insert_into($table)
                .values(row.clone())
                .on_conflict($target)
                .do_update()
                .set($set)
                .execute(c)),
            rows => with_conn!($conn, |c| diesel::insert_into($table)
                .values(rows.to_vec())
                .on_conflict($target)
                .do_update()
                .set($set)
                .execute(c)),
        }
    };
}

/// Adds `d` to the stored tallies: one statement a table, its rows in key order (concurrent
/// writers take the rows' locks in the same order).
pub fn add(conn: &mut Conn<'_>, d: &Tallies) -> Result<()> {
    use tally_campaigns as tc;
    use tally_days as td;
    use tally_villages as tv;
    let villages: Vec<_> = d
        .villages
        .iter()
        .map(|(area, v)| {
            (
                tv::area_id.eq(*area),
                tv::households.eq(v.households),
                tv::persons.eq(v.persons),
                tv::smartphone.eq(v.smartphone),
                tv::priority.eq(v.priority),
            )
        })
        .collect();
    upsert_rows!(
        conn,
        tv::table,
        villages,
        tv::area_id,
        (
            tv::households.eq(tv::households + excluded(tv::households)),
            tv::persons.eq(tv::persons + excluded(tv::persons)),
            tv::smartphone.eq(tv::smartphone + excluded(tv::smartphone)),
            tv::priority.eq(tv::priority + excluded(tv::priority)),
        )
    )?;
    let campaigns: Vec<_> = d
        .campaigns
        .iter()
        .map(|((area, campaign), v)| {
            (
                tc::area_id.eq(*area),
                tc::campaign_id.eq(*campaign),
                tc::visited.eq(v.visited),
                tc::revisit.eq(v.revisit),
                tc::installed.eq(v.installed),
                tc::priority_installed.eq(v.priority_installed),
            )
        })
        .collect();
    upsert_rows!(
        conn,
        tc::table,
        campaigns,
        (tc::campaign_id, tc::area_id),
        (
            tc::visited.eq(tc::visited + excluded(tc::visited)),
            tc::revisit.eq(tc::revisit + excluded(tc::revisit)),
            tc::installed.eq(tc::installed + excluded(tc::installed)),
            tc::priority_installed.eq(tc::priority_installed + excluded(tc::priority_installed)),
        )
    )?;
    let days: Vec<_> = d
        .days
        .iter()
        .map(|((area, campaign, day), n)| {
            (
                td::area_id.eq(*area),
                td::campaign_id.eq(*campaign),
                td::day.eq(*day),
                td::installed.eq(*n),
            )
        })
        .collect();
    upsert_rows!(
        conn,
        td::table,
        days,
        (td::campaign_id, td::area_id, td::day),
        td::installed.eq(td::installed + excluded(td::installed))
    )?;
    Ok(())
}

/// The stored tallies of the given villages: all campaigns' when `campaign` is `None`, with
/// the installs by day when `days` is set.
pub fn read(
    conn: &mut Conn<'_>,
    villages: &[AreaId],
    campaign: Option<CampaignId>,
    days: bool,
) -> Result<Tallies> {
    use tally_campaigns as tc;
    use tally_days as td;
    use tally_villages as tv;
    let mut t = Tallies::default();
    let rows: Vec<(AreaId, i64, i64, i64, i64)> = with_conn!(conn, |c| tv::table
        .filter(any_of(tv::area_id, villages))
        .select((
            tv::area_id,
            tv::households,
            tv::persons,
            tv::smartphone,
            tv::priority
        ))
        .load(c))?;
    for (a, households, persons, smartphone, priority) in rows {
        let v = Village {
            households,
            persons,
            smartphone,
            priority,
        };
        t.villages.insert(a, v);
    }
    type CampaignRow = (AreaId, CampaignId, i64, i64, i64, i64);
    let rows: Vec<CampaignRow> = with_conn!(conn, |c: DB| {
        let mut q = tc::table
            .filter(any_of(tc::area_id, villages))
            .select((
                tc::area_id,
                tc::campaign_id,
                tc::visited,
                tc::revisit,
                tc::installed,
                tc::priority_installed,
            ))
            .into_boxed::<DB>();
        if let Some(id) = campaign {
            q = q.filter(tc::campaign_id.eq(id));
        }
        q.load(c)
    })?;
    for (a, campaign, visited, revisit, installed, priority_installed) in rows {
        let v = InCampaign {
            visited,
            revisit,
            installed,
            priority_installed,
        };
        t.campaigns.insert((a, campaign), v);
    }
    if days {
        let rows: Vec<(AreaId, CampaignId, NaiveDate, i64)> = with_conn!(conn, |c: DB| {
            let mut q = td::table
                .filter(any_of(td::area_id, villages))
                .select((td::area_id, td::campaign_id, td::day, td::installed))
                .into_boxed::<DB>();
            if let Some(id) = campaign {
                q = q.filter(td::campaign_id.eq(id));
            }
            q.load(c)
        })?;
        for (a, campaign, day, n) in rows {
            t.days.insert((a, campaign, day), n);
        }
    }
    Ok(t.plus(&Tallies::default(), 1))
}

/// The villages that hold households, deleted ones included.
fn villages_with_households(conn: &mut Conn<'_>) -> Result<Vec<AreaId>> {
    Ok(with_conn!(conn, |c| households::table
        .select(households::area_id)
        .distinct()
        .order(households::area_id)
        .load(c))?)
}

/// How many villages `rebuild` and `check` count at once: bounds their memory.
const VILLAGES_AT_ONCE: usize = 200;

#[derive(Insertable)]
#[diesel(table_name = tally_campaigns)]
struct CampaignRow {
    area_id: AreaId,
    campaign_id: CampaignId,
    visited: i64,
    revisit: i64,
    installed: i64,
    priority_installed: i64,
}

#[derive(Insertable)]
#[diesel(table_name = tally_days)]
struct DayRow {
    area_id: AreaId,
    campaign_id: CampaignId,
    day: NaiveDate,
    installed: i64,
}

#[derive(Insertable)]
#[diesel(table_name = tally_villages)]
struct VillageRow {
    area_id: AreaId,
    households: i64,
    persons: i64,
    smartphone: i64,
    priority: i64,
}

/// What `rebuild` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub villages: usize,
    pub rows: usize,
}

/// Counts everything anew and replaces the stored tallies, in the caller's transaction. On
/// PostgreSQL the tallies are locked first, so that writers of other processes wait and add
/// their differences to the new tallies.
pub fn rebuild(conn: &mut Conn<'_>) -> Result<Rebuilt> {
    if let Conn::Pg(c) = conn {
        c.batch_execute(
            "LOCK TABLE tally_villages, tally_campaigns, tally_days, tally_state IN EXCLUSIVE MODE",
        )?;
    }
    with_conn!(conn, |c| {
        diesel::delete(tally_villages::table).execute(c)?;
        diesel::delete(tally_campaigns::table).execute(c)?;
        diesel::delete(tally_days::table).execute(c)
    })?;
    let villages = villages_with_households(conn)?;
    let mut rows = 0;
    for chunk in villages.chunks(VILLAGES_AT_ONCE) {
        let t = count(conn, Of::Villages(chunk), Parts::ALL)?;
        let vs: Vec<VillageRow> = t
            .villages
            .iter()
            .map(|(a, v)| VillageRow {
                area_id: *a,
                households: v.households,
                persons: v.persons,
                smartphone: v.smartphone,
                priority: v.priority,
            })
            .collect();
        let cs: Vec<CampaignRow> = t
            .campaigns
            .iter()
            .map(|((a, campaign), v)| CampaignRow {
                area_id: *a,
                campaign_id: *campaign,
                visited: v.visited,
                revisit: v.revisit,
                installed: v.installed,
                priority_installed: v.priority_installed,
            })
            .collect();
        let ds: Vec<DayRow> = t
            .days
            .iter()
            .map(|((a, campaign, day), n)| DayRow {
                area_id: *a,
                campaign_id: *campaign,
                day: *day,
                installed: *n,
            })
            .collect();
        rows += insert_rows!(conn, tally_villages::table, &vs[..])?;
        rows += insert_rows!(conn, tally_campaigns::table, &cs[..])?;
        rows += insert_rows!(conn, tally_days::table, &ds[..])?;
    }
    let now = Time::now();
    with_conn!(conn, |c| {
        diesel::delete(tally_state::table).execute(c)?;
        diesel::insert_into(tally_state::table)
            .values((tally_state::id.eq(1), tally_state::built_at.eq(&now)))
            .execute(c)
    })?;
    Ok(Rebuilt {
        villages: villages.len(),
        rows,
    })
}

/// Builds the tallies if they were never built (a database from before them), in one
/// transaction; `None` when they were.
pub fn ensure_built(conn: &mut Conn<'_>) -> Result<Option<Rebuilt>> {
    conn.transaction(|conn| {
        if let Conn::Pg(c) = conn {
            // One process builds; the others wait here, then find them built.
            c.batch_execute("LOCK TABLE tally_state IN EXCLUSIVE MODE")?;
        }
        let built: i64 = with_conn!(conn, |c| tally_state::table.count().get_result(c))?;
        if built > 0 {
            return Ok(None);
        }
        rebuild(conn).map(Some)
    })
}

/// The villages whose stored tallies differ from a count of their rows, with both: empty
/// when the tallies are right.
pub fn check(conn: &mut Conn<'_>) -> Result<Vec<(AreaId, Tallies, Tallies)>> {
    let mut villages = villages_with_households(conn)?;
    villages.extend(tallied_villages(conn)?);
    villages.sort();
    villages.dedup();
    let mut wrong = Vec::new();
    for chunk in villages.chunks(VILLAGES_AT_ONCE) {
        let counted = count(conn, Of::Villages(chunk), Parts::ALL)?;
        let stored = read(conn, chunk, None, true)?;
        if counted == stored {
            continue;
        }
        for a in chunk {
            let (c, s) = (only(&counted, *a), only(&stored, *a));
            if c != s {
                wrong.push((*a, s, c));
            }
        }
    }
    Ok(wrong)
}

/// The part of `t` about one village.
fn only(t: &Tallies, area: AreaId) -> Tallies {
    Tallies {
        villages: t
            .villages
            .iter()
            .filter(|(a, _)| **a == area)
            .map(|(k, v)| (*k, *v))
            .collect(),
        campaigns: t
            .campaigns
            .iter()
            .filter(|((a, _), _)| *a == area)
            .map(|(k, v)| (*k, *v))
            .collect(),
        days: t
            .days
            .iter()
            .filter(|((a, _, _), _)| *a == area)
            .map(|(k, v)| (*k, *v))
            .collect(),
    }
}

/// The villages that have stored tallies.
fn tallied_villages(conn: &mut Conn<'_>) -> Result<Vec<AreaId>> {
    Ok(with_conn!(conn, |c| tally_villages::table
        .select(tally_villages::area_id)
        .union(tally_campaigns::table.select(tally_campaigns::area_id))
        .load(c))?)
}

/// Every stored tally.
pub fn read_all(conn: &mut Conn<'_>) -> Result<Tallies> {
    let villages = tallied_villages(conn)?;
    read(conn, &villages, None, true)
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
