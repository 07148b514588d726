//! Installs per day and the cumulative rate, for the area and each child, over the
//! campaign's dates.

use super::progress::{percent, tally, Rollup, Tally};
use super::Result;
use super::{Subject, SubjectRef};
use crate::db::Conn;
use crate::domain::AreaId;
use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendSeries {
    pub area_id: AreaId,
    pub name: String,
    /// Registered persons today: the denominator of `cumulative_rate`.
    pub persons: i64,
    /// Installs recorded on each day of `days`.
    pub installs: Vec<i64>,
    /// Installs up to and including each day.
    pub cumulative: Vec<i64>,
    /// `cumulative` over `persons`, in percent (none when there is no one registered).
    pub cumulative_rate: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Trend {
    pub subject: SubjectRef,
    /// The campaign's days, from its start to its end (Vietnam time).
    pub days: Vec<NaiveDate>,
    /// The area itself first, then each child by name.
    pub series: Vec<TrendSeries>,
}

/// Counts every person whose current status is an install, on the day it was recorded.
/// Records before the campaign's start count on its first day, after its end on its last.
pub fn trend(conn: &mut Conn<'_>, s: &Subject) -> Result<Trend> {
    let rollup = Rollup::load(conn, s)?;
    let campaign = s.campaign.id;
    let (start, end) = (s.campaign.starts_on, s.campaign.ends_on);
    let days: Vec<NaiveDate> = start.iter_days().take_while(|d| *d <= end).collect();
    let persons = tally(conn, &rollup.subtree, campaign)?;
    let installs = crate::store::tallies::read(conn, &rollup.subtree, Some(campaign), true)?.days;
    let n = rollup.children.len() + 1;
    let mut series: Vec<TrendSeries> = std::iter::once((s.area.id, s.area.name.clone()))
        .chain(rollup.children.iter().map(|a| (a.id, a.name.clone())))
        .map(|(area_id, name)| TrendSeries {
            area_id,
            name,
            persons: 0,
            installs: vec![0; days.len()],
            cumulative: Vec::new(),
            cumulative_rate: Vec::new(),
        })
        .collect();
    let mut people = vec![Tally::default(); n];
    for (village, t) in &persons {
        people[0].persons += t.persons;
        if let Some(i) = rollup.child_of.get(village) {
            people[i + 1].persons += t.persons;
        }
    }
    if !days.is_empty() {
        for ((village, _, day), n) in &installs {
            let d = ((*day).clamp(start, end) - start).num_days() as usize;
            series[0].installs[d] += n;
            if let Some(i) = rollup.child_of.get(village) {
                series[i + 1].installs[d] += n;
            }
        }
    }
    for (s, p) in series.iter_mut().zip(&people) {
        s.persons = p.persons;
        let mut sum = 0;
        for n in &s.installs {
            sum += n;
            s.cumulative.push(sum);
            s.cumulative_rate.push(percent(sum, p.persons));
        }
    }
    Ok(Trend {
        subject: s.reference(),
        days,
        series,
    })
}
