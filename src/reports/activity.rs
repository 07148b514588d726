//! Activity checks per canvasser and day: how much was done, and visits that are hard to
//! believe (recorded far from the household, or of different households too close in time).

use super::Result;
use super::{local_date, Subject, SubjectRef, LOCAL_OFFSET_HOURS};
use crate::db::schema::{adoptions, areas, households, members, users, visits};
use crate::db::Conn;
use crate::domain::household::AdoptionStatus;
use crate::domain::vocabulary::ActivityCheck;
use crate::domain::{HouseholdId, Time, UserId, VisitId};
use crate::with_conn;
use chrono::{Duration, NaiveDate, NaiveTime};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Thresholds and the period of an activity check.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// First and last day (Vietnam time), both included; none: the whole record.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// A visit recorded farther than this from the household's point is flagged.
    pub max_distance_m: f64,
    /// A visit less than this after the same canvasser's visit of another household is
    /// flagged.
    pub min_gap_seconds: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityFlag {
    /// `far_from_household` or `too_soon_after_previous`.
    pub kind: String,
    pub visit_id: VisitId,
    pub household_id: HouseholdId,
    pub visited_at: Time,
    /// For `far_from_household`: meters between the visit's point and the household's.
    pub distance_m: Option<f64>,
    /// For `too_soon_after_previous`: seconds since the previous visit, and its household.
    pub seconds_since_previous: Option<f64>,
    pub previous_household_id: Option<HouseholdId>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityRow {
    pub canvasser_id: UserId,
    pub username: String,
    pub full_name: String,
    /// The day in Vietnam time.
    pub day: NaiveDate,
    pub visits: i64,
    /// Distinct households visited.
    pub households: i64,
    /// Live persons whose current status is an install that this canvasser recorded that
    /// day. (Visits count even when the household was deleted later: they happened.)
    pub installs: i64,
    /// Median of the minutes between consecutive visits; none with fewer than 2 visits.
    pub median_minutes_between_visits: Option<f64>,
    pub far_visits: i64,
    pub too_soon_visits: i64,
    pub flags: Vec<ActivityFlag>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub subject: SubjectRef,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub max_distance_m: f64,
    pub min_gap_seconds: i64,
    /// By day, then username.
    pub rows: Vec<ActivityRow>,
}

type VisitRow = (
    VisitId,
    UserId,
    HouseholdId,
    Time,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// Great-circle distance in meters (haversine, mean Earth radius).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().asin()
}

/// The instant a Vietnam day starts.
fn day_start(d: NaiveDate) -> Time {
    Time((d.and_time(NaiveTime::MIN) - Duration::hours(LOCAL_OFFSET_HOURS)).and_utc())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

pub fn activity(conn: &mut Conn<'_>, s: &Subject, checks: Checks) -> Result<Activity> {
    let pattern = s.subtree();
    let campaign = s.campaign.id;
    let from = checks.from.map(day_start);
    let to = checks.to.and_then(|d| d.succ_opt()).map(day_start);
    let visits: Vec<VisitRow> = with_conn!(conn, |c: DB| {
        let mut q = visits::table
            .inner_join(households::table.inner_join(areas::table))
            .filter(visits::campaign_id.eq(campaign))
            .filter(areas::path.like(&pattern))
            .into_boxed::<DB>();
        if let Some(t) = from {
            q = q.filter(visits::visited_at.ge(t));
        }
        if let Some(t) = to {
            q = q.filter(visits::visited_at.lt(t));
        }
        q.select((
            visits::id,
            visits::canvasser_id,
            visits::household_id,
            visits::visited_at,
            visits::lat,
            visits::lon,
            households::lat,
            households::lon,
        ))
        .order((visits::canvasser_id, visits::visited_at, visits::id))
        .load(c)
    })?;
    let installs: Vec<(UserId, Time)> = with_conn!(conn, |c: DB| {
        let mut q = adoptions::table
            .inner_join(members::table.inner_join(households::table.inner_join(areas::table)))
            .filter(adoptions::campaign_id.eq(campaign))
            .filter(adoptions::status.eq_any(AdoptionStatus::INSTALLED))
            .filter(areas::path.like(&pattern))
            .filter(households::deleted_at.is_null())
            .filter(members::deleted_at.is_null())
            .into_boxed::<DB>();
        if let Some(t) = from {
            q = q.filter(adoptions::recorded_at.ge(t));
        }
        if let Some(t) = to {
            q = q.filter(adoptions::recorded_at.lt(t));
        }
        q.select((adoptions::recorded_by, adoptions::recorded_at))
            .load(c)
    })?;

    let mut days: BTreeMap<(NaiveDate, UserId), Vec<&VisitRow>> = BTreeMap::new();
    for v in &visits {
        days.entry((local_date(&v.3), v.1)).or_default().push(v);
    }
    let mut installed: HashMap<(NaiveDate, UserId), i64> = HashMap::new();
    for (by, at) in &installs {
        let key = (local_date(at), *by);
        *installed.entry(key).or_default() += 1;
        days.entry(key).or_default();
    }
    let mut ids: Vec<UserId> = days.keys().map(|(_, u)| *u).collect();
    ids.sort();
    ids.dedup();
    let names: HashMap<UserId, (String, String)> = with_conn!(conn, |c| users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::username, users::full_name))
        .load::<(UserId, String, String)>(c))?
    .into_iter()
    .map(|(id, u, f)| (id, (u, f)))
    .collect();

    let mut rows: Vec<ActivityRow> = days
        .into_iter()
        .map(|((day, who), vs)| {
            let mut flags = Vec::new();
            let mut gaps = Vec::new();
            for (i, v) in vs.iter().enumerate() {
                if let (Some(a), Some(b), Some(c), Some(d)) = (v.4, v.5, v.6, v.7) {
                    let m = distance_m(a, b, c, d);
                    if m > checks.max_distance_m {
                        flags.push(flag(
                            ActivityCheck::FarFromHousehold.as_str(),
                            v,
                            Some(round2(m)),
                            None,
                        ));
                    }
                }
                if let Some(prev) = i.checked_sub(1).map(|j| vs[j]) {
                    let ms = (v.3 .0 - prev.3 .0).num_milliseconds();
                    gaps.push(ms as f64 / 60_000.0);
                    if prev.2 != v.2 && ms < checks.min_gap_seconds * 1000 {
                        let mut f = flag(
                            ActivityCheck::TooSoonAfterPrevious.as_str(),
                            v,
                            None,
                            Some(prev.2),
                        );
                        f.seconds_since_previous = Some(ms as f64 / 1000.0);
                        flags.push(f);
                    }
                }
            }
            let mut homes: Vec<HouseholdId> = vs.iter().map(|v| v.2).collect();
            homes.sort();
            homes.dedup();
            let (username, full_name) = names.get(&who).cloned().unwrap_or_default();
            ActivityRow {
                canvasser_id: who,
                username,
                full_name,
                day,
                visits: vs.len() as i64,
                households: homes.len() as i64,
                installs: installed.get(&(day, who)).copied().unwrap_or(0),
                median_minutes_between_visits: median(gaps).map(round2),
                far_visits: flags
                    .iter()
                    .filter(|f| f.kind == ActivityCheck::FarFromHousehold.as_str())
                    .count() as i64,
                too_soon_visits: flags
                    .iter()
                    .filter(|f| f.kind == ActivityCheck::TooSoonAfterPrevious.as_str())
                    .count() as i64,
                flags,
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.day, &a.username).cmp(&(b.day, &b.username)));
    Ok(Activity {
        subject: s.reference(),
        from: checks.from,
        to: checks.to,
        max_distance_m: checks.max_distance_m,
        min_gap_seconds: checks.min_gap_seconds,
        rows,
    })
}

fn flag(
    kind: &str,
    v: &VisitRow,
    distance_m: Option<f64>,
    previous: Option<HouseholdId>,
) -> ActivityFlag {
    ActivityFlag {
        kind: kind.to_string(),
        visit_id: v.0,
        household_id: v.2,
        visited_at: v.3,
        distance_m,
        seconds_since_previous: None,
        previous_household_id: previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_of_one_degree_of_latitude() {
        let d = distance_m(21.0, 106.0, 22.0, 106.0);
        assert!((d - 111_195.0).abs() < 1.0, "{d}");
        assert_eq!(distance_m(21.5, 106.3, 21.5, 106.3), 0.0);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
