//! Personal data kept only as long as needed. Once a campaign has ended and its retention
//! period (`retention_days`) has run out, the personal data of its households is anonymized
//! (`domain::household::retention` says what goes and what stays); one member, or one
//! household, is erased on request at any time. Both write through the one write path
//! (`write`), so every change is a new version that devices receive at their next pull,
//! and the conflicts of those records lose the removed values. Both answer a dry run first:
//! nothing is written unless asked to apply.
//!
//! A campaign's households are those with a visit or a status in it, or registered during
//! it. A household that is also a household of another campaign whose retention has not run
//! out is kept, and counted as kept.

use crate::db::any::any_of;
use crate::db::schema::{adoptions, campaigns, conflicts, households, members, visits};
use crate::db::Conn;
use crate::domain::household::Precondition;
use crate::domain::ids::{local_date, LOCAL_OFFSET_HOURS};
use crate::domain::{AreaId, CampaignId, EntityId, HouseholdId, MemberId, Time, UserId};
use crate::store::campaigns::Campaign;
use crate::store::error as store;
use crate::store::scope::Principal;
use crate::with_conn;
use crate::write::{self, Context, Transaction, Write};
use chrono::{Duration, NaiveDate};
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::BTreeSet;

/// Households anonymized per transaction: each is short, so that syncs go on meanwhile, and a
/// run that stops halfway leaves whole households done (running it again finishes the rest).
pub const CHUNK: usize = 200;

/// What anonymizing a campaign does, or with `dry_run` would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignReport {
    pub campaign_id: CampaignId,
    pub campaign: String,
    /// The campaign's last day.
    #[schema(value_type = String, format = Date)]
    pub ends_on: NaiveDate,
    pub retention_days: i64,
    /// The first day its personal data may be anonymized: `ends_on` + 1 + `retention_days`.
    #[schema(value_type = String, format = Date)]
    pub anonymizable_from: NaiveDate,
    pub dry_run: bool,
    /// Households anonymized (or to be), with their members, visits and conflicts.
    pub households: usize,
    pub members: i64,
    pub visits: i64,
    pub conflicts: i64,
    /// Households left alone: also households of a campaign whose retention has not run out.
    pub kept: usize,
    /// Households anonymized before.
    pub already_anonymized: usize,
}

/// What erasing a member or a household does, or with `dry_run` would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureReport {
    pub household_id: HouseholdId,
    /// The member erased; none when the whole household is.
    pub member_id: Option<MemberId>,
    pub dry_run: bool,
    pub members: i64,
    pub visits: i64,
    /// Whether the household's head name (and phone, if the same) goes too: the member is
    /// its head.
    pub head_of_household: bool,
    pub conflicts: i64,
    /// When the data was removed, if it already was.
    pub already_erased_at: Option<Time>,
}

/// The command line's principal: an admin, naming no user.
pub fn command_line() -> Principal {
    Principal {
        user_id: UserId(uuid::Uuid::nil()),
        username: "cli".into(),
        role: crate::auth::Role::Admin,
        area_paths: Vec::new(),
    }
}

/// The author of anonymizing writes: they overwrite whatever any writer wrote before.
fn author() -> Context<'static> {
    Context::new(
        crate::domain::household::retention::WRITER.into(),
        crate::domain::hlc::Hlc::at(chrono::Utc::now()),
        Precondition::Resolution,
    )
}

/// The first instant of a day in Vietnam.
fn day_start(d: NaiveDate) -> Time {
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    Time(midnight - Duration::hours(LOCAL_OFFSET_HOURS))
}

/// The households of the campaigns `cs`: with a visit or a status in one, or registered
/// during one. With `within` (a thousand ids at most), only those among them.
fn households_of(
    conn: &mut Conn<'_>,
    cs: &[Campaign],
    within: Option<&[HouseholdId]>,
) -> Result<BTreeSet<HouseholdId>> {
    if cs.is_empty() {
        return Ok(BTreeSet::new());
    }
    let campaign_ids: Vec<CampaignId> = cs.iter().map(|c| c.id).collect();
    let found = with_conn!(conn, |c| {
        let mut visited = visits::table
            .filter(visits::campaign_id.eq_any(&campaign_ids))
            .select(visits::household_id)
            .distinct()
            .into_boxed();
        let mut statused = adoptions::table
            .filter(adoptions::campaign_id.eq_any(&campaign_ids))
            .select(adoptions::household_id)
            .distinct()
            .into_boxed();
        if let Some(ids) = within {
            visited = visited.filter(any_of(visits::household_id, ids));
            statused = statused.filter(any_of(adoptions::household_id, ids));
        }
        let mut v: Vec<HouseholdId> = visited.load(c)?;
        v.extend(statused.load::<HouseholdId>(c)?);
        for camp in cs {
            let (from, to) = period(camp);
            let mut registered = households::table
                .filter(households::created_at.ge(from))
                .filter(households::created_at.lt(to))
                .select(households::id)
                .into_boxed();
            if let Some(ids) = within {
                registered = registered.filter(any_of(households::id, ids));
            }
            v.extend(registered.load::<HouseholdId>(c)?);
        }
        Ok::<_, diesel::result::Error>(v)
    })?;
    Ok(found.into_iter().collect())
}

/// A campaign's days as instants: from its first day's start to the day after its last.
fn period(camp: &Campaign) -> (Time, Time) {
    (
        day_start(camp.starts_on),
        day_start(camp.ends_on + Duration::days(1)),
    )
}

/// The members, visits and conflicts of these households.
fn contents(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<(i64, i64, i64)> {
    let mut n = (0, 0, 0);
    for chunk in ids.chunks(1000) {
        let (m, v, c) = with_conn!(conn, |c| {
            let m: i64 = members::table
                .filter(any_of(members::household_id, chunk))
                .select(count_star())
                .first(c)?;
            let v: i64 = visits::table
                .filter(any_of(visits::household_id, chunk))
                .select(count_star())
                .first(c)?;
            let k: i64 = conflicts::table
                .filter(any_of(conflicts::household_id, chunk))
                .select(count_star())
                .first(c)?;
            Ok::<_, diesel::result::Error>((m, v, k))
        })?;
        n = (n.0 + m, n.1 + v, n.2 + c);
    }
    Ok(n)
}

/// Which households of a campaign to anonymize, in id order, and the report of it (a dry
/// run's). Refused (409 `retention_running`) before the retention period has run out.
pub fn plan(
    conn: &mut Conn<'_>,
    campaign: CampaignId,
    retention_days: i64,
) -> Result<(Vec<HouseholdId>, CampaignReport)> {
    let camp = crate::store::campaigns::get(conn, campaign)?;
    let from_day = |c: &Campaign| c.ends_on + Duration::days(1 + retention_days);
    let anonymizable_from = from_day(&camp);
    let today = local_date(&Time::now());
    if today < anonymizable_from {
        return Err(Error::Running {
            ended_on: camp.ends_on,
            retention_days,
            from: anonymizable_from,
        });
    }
    let all: Vec<Campaign> = with_conn!(conn, |c| campaigns::table
        .select(Campaign::as_select())
        .load(c))?;
    let running: Vec<Campaign> = all
        .into_iter()
        .filter(|c| c.id != campaign && from_day(c) > today)
        .collect();
    let mine: Vec<HouseholdId> = households_of(conn, std::slice::from_ref(&camp), None)?
        .into_iter()
        .collect();
    let (mut kept, mut done) = (BTreeSet::new(), BTreeSet::new());
    for chunk in mine.chunks(1000) {
        kept.extend(households_of(conn, &running, Some(chunk))?);
        let ids: Vec<HouseholdId> = with_conn!(conn, |c| households::table
            .filter(any_of(households::id, chunk))
            .filter(households::anonymized_at.is_not_null())
            .select(households::id)
            .load(c))?;
        done.extend(ids.into_iter().filter(|h| !kept.contains(h)));
    }
    let todo: Vec<HouseholdId> = mine
        .into_iter()
        .filter(|h| !kept.contains(h) && !done.contains(h))
        .collect();
    let (members, visits, conflicts) = contents(conn, &todo)?;
    let report = CampaignReport {
        campaign_id: camp.id,
        campaign: camp.name,
        ends_on: camp.ends_on,
        retention_days,
        anonymizable_from,
        dry_run: true,
        households: todo.len(),
        members,
        visits,
        conflicts,
        kept: kept.len(),
        already_anonymized: done.len(),
    };
    Ok((todo, report))
}

/// Anonymizes these households, in the caller's transaction.
pub fn anonymize(conn: &mut Conn<'_>, who: &Principal, ids: &[HouseholdId]) -> Result<()> {
    let mut writes = Transaction::new();
    writes.preload_whole(conn, ids)?;
    let a = author();
    for id in ids {
        writes
            .apply(conn, who, &a, Write::AnonymizeHousehold(*id))
            .map_err(|r| r.error)?;
    }
    writes.commit(conn)?;
    Ok(())
}

/// What erasing a household (`member` none) or one of its members does; with `apply`, does
/// it, in the caller's transaction. Answers the household's village and its path too, for
/// the audit trail.
pub fn erase(
    conn: &mut Conn<'_>,
    who: &Principal,
    target: Erase,
    apply: bool,
) -> Result<(ErasureReport, AreaId, String)> {
    let mut writes = Transaction::new();
    let (household, member) = match target {
        Erase::Household(h) => (writes.household(conn, who, h)?, None),
        Erase::Member(m) => {
            let m = writes.member(conn, who, m)?;
            (writes.household(conn, who, m.household_id)?, Some(m))
        }
    };
    let path = crate::store::areas::get(conn, household.area_id)?.path;
    let ids = [household.id];
    let (members, visits, conflicts) = match &member {
        None => contents(conn, &ids)?,
        Some(m) => {
            let n: i64 = with_conn!(conn, |c| conflicts::table
                .filter(conflicts::entity_id.eq(EntityId(m.id.0)))
                .select(count_star())
                .first(c))?;
            (1, 0, n)
        }
    };
    let head = member
        .as_ref()
        .is_some_and(|m| crate::domain::household::retention::heads(&household, m));
    let report = ErasureReport {
        household_id: household.id,
        member_id: member.as_ref().map(|m| m.id),
        dry_run: !apply,
        members,
        visits,
        head_of_household: head,
        conflicts,
        already_erased_at: match &member {
            None => household.anonymized_at,
            Some(m) => m.anonymized_at,
        },
    };
    if apply {
        let write = match &member {
            None => Write::AnonymizeHousehold(household.id),
            Some(m) => Write::EraseMember(m.id),
        };
        writes
            .apply(conn, who, &author(), write)
            .map_err(|r| r.error)?;
        writes.commit(conn)?;
    }
    Ok((report, household.area_id, path))
}

/// What to erase on request.
#[derive(Debug, Clone, Copy)]
pub enum Erase {
    Household(HouseholdId),
    Member(MemberId),
}

/// What retention can run into besides the write path's and the store's failures.
#[derive(Debug)]
pub enum Error {
    /// The campaign's retention period is not over: its data can be anonymized from `from`.
    Running {
        ended_on: NaiveDate,
        retention_days: i64,
        from: NaiveDate,
    },
    Write(write::Error),
    Store(store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Running {
                ended_on,
                retention_days,
                from,
            } => write!(
                f,
                "the campaign ended on {ended_on}: its personal data is kept for \
                 {retention_days} days, and can be anonymized from {from}"
            ),
            Error::Write(e) => write!(f, "{e:?}"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<write::Error> for Error {
    fn from(e: write::Error) -> Self {
        Error::Write(e)
    }
}

store::wraps_store_error!(Error, Error::Store);
