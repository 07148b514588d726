//! Progress against plan: one row for the area and one per child area (province >
//! districts, district > communes, commune > villages).

use super::Result;
use super::{ranks, Subject, SubjectRef};
use crate::db::schema::{areas, targets};
use crate::db::Conn;
use crate::domain::vocabulary::{Denominator, TargetKind};
use crate::domain::{AreaId, CampaignId};
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// Counts of one village, added up into the rows that contain it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub households: i64,
    pub visited: i64,
    pub persons: i64,
    pub smartphone: i64,
    pub installed: i64,
    pub priority: i64,
    pub priority_installed: i64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.households += o.households;
        self.visited += o.visited;
        self.persons += o.persons;
        self.smartphone += o.smartphone;
        self.installed += o.installed;
        self.priority += o.priority;
        self.priority_installed += o.priority_installed;
    }
}

/// The target of an area as set for the campaign.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TargetRef {
    /// `rate_registered`, `rate_smartphone` or `count`.
    pub kind: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProgressRow {
    pub area_id: AreaId,
    pub code: Option<String>,
    pub name: String,
    pub level: String,
    /// Live households registered.
    pub households: i64,
    /// Households with at least one visit in the campaign.
    pub households_visited: i64,
    /// Live members.
    pub persons: i64,
    pub smartphone_owners: i64,
    /// Persons whose status is installed, installed with help or already installed.
    pub installed: i64,
    /// What the rate is over: `registered` (persons) or `smartphone` (owners), as the
    /// target says; `count` targets and no target use the campaign's denominator.
    pub denominator: String,
    pub denominator_value: i64,
    /// Installed over the denominator, in percent (none when the denominator is 0).
    pub rate: Option<f64>,
    /// The area's target, or else the nearest ancestor's rate target.
    pub target: Option<TargetRef>,
    /// Whether `target` is an ancestor's.
    pub target_inherited: bool,
    /// Installs the target asks for: the rate applied to the denominator (rounded up), or
    /// the count.
    pub target_installs: Option<i64>,
    /// Installs still missing to reach the target (0 once reached).
    pub remaining: Option<i64>,
    /// Installed over the target's installs, in percent: the bar on the dashboard.
    pub target_progress: Option<f64>,
    /// Rank by rate among the children (1 is best; ties share a rank); none for the area
    /// itself and for children with no rate.
    pub rank: Option<i64>,
    pub priority_total: i64,
    pub priority_installed: i64,
    pub priority_pending: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub subject: SubjectRef,
    /// The area as a whole.
    pub area: ProgressRow,
    /// Its children, by name.
    pub children: Vec<ProgressRow>,
    /// Villages of split communes that may come to this area but wait to be placed ("Chưa
    /// xếp"): not counted in the rows above. Today's map only.
    pub not_yet_assigned: Option<NotYetAssigned>,
}

/// What waits to be placed, counted like a row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotYetAssigned {
    pub villages: i64,
    pub households: i64,
    pub persons: i64,
    pub installed: i64,
    pub priority_total: i64,
    pub priority_installed: i64,
}

/// The area's child areas and which of them holds each village of the subtree.
pub(crate) struct Rollup {
    pub children: Vec<crate::store::areas::Area>,
    /// Every area of the subtree, the area itself included.
    pub subtree: Vec<AreaId>,
    /// Village id -> index in `children` (absent: the village is the area itself).
    pub child_of: HashMap<AreaId, usize>,
}

impl Rollup {
    pub fn load(conn: &mut Conn<'_>, s: &Subject) -> Result<Rollup> {
        use crate::store::areas::Area;
        let parent = s.area.id;
        let (children, all): (Vec<Area>, Vec<(AreaId, String)>) = match s.as_of {
            Some(day) => {
                let tree = crate::store::areas::subtree_as_of(conn, &s.area, day)?;
                let mut children: Vec<Area> = tree
                    .iter()
                    .filter(|a| a.parent_id == Some(parent))
                    .cloned()
                    .collect();
                children.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
                (children, tree.into_iter().map(|a| (a.id, a.path)).collect())
            }
            None => {
                let pattern = s.subtree();
                let children = with_conn!(conn, |c| areas::table
                    .filter(areas::parent_id.eq(parent))
                    .filter(areas::retired_at.is_null())
                    .select(Area::as_select())
                    .order((areas::name, areas::id))
                    .load(c))?;
                let all = with_conn!(conn, |c| areas::table
                    .filter(areas::path.like(&pattern))
                    .select((areas::id, areas::path))
                    .load(c))?;
                (children, all)
            }
        };
        let index: HashMap<String, usize> = children
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.0.to_string(), i))
            .collect();
        let base = s.area.path.len();
        let subtree = all.iter().map(|(id, _)| *id).collect();
        let child_of = all
            .into_iter()
            .filter_map(|(id, path)| {
                let first = path.get(base..)?.split('/').next()?;
                index.get(first).map(|i| (id, *i))
            })
            .collect();
        Ok(Rollup {
            children,
            subtree,
            child_of,
        })
    }
}

/// Counts per village of the given areas (a subtree's ids), from the tallies that the write
/// path keeps (`store::tallies`).
pub fn tally(
    conn: &mut Conn<'_>,
    areas: &[AreaId],
    campaign: CampaignId,
) -> Result<HashMap<AreaId, Tally>> {
    let stored = crate::store::tallies::read(conn, areas, Some(campaign), false)?;
    let mut t: HashMap<AreaId, Tally> = HashMap::new();
    for (a, v) in stored.villages {
        let e = t.entry(a).or_default();
        e.households = v.households;
        e.persons = v.persons;
        e.smartphone = v.smartphone;
        e.priority = v.priority;
    }
    for ((a, _), c) in stored.campaigns {
        let e = t.entry(a).or_default();
        e.visited = c.visited;
        e.installed = c.installed;
        e.priority_installed = c.priority_installed;
    }
    Ok(t)
}

/// Targets of the campaign for the given areas.
fn targets_of(
    conn: &mut Conn<'_>,
    campaign: CampaignId,
    ids: &[AreaId],
) -> Result<HashMap<AreaId, TargetRef>> {
    let rows: Vec<(AreaId, String, f64)> = with_conn!(conn, |c| targets::table
        .filter(targets::campaign_id.eq(campaign))
        .filter(targets::area_id.eq_any(ids))
        .select((targets::area_id, targets::kind, targets::value))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(a, kind, value)| (a, TargetRef { kind, value }))
        .collect())
}

pub fn progress(conn: &mut Conn<'_>, s: &Subject) -> Result<Progress> {
    let rollup = Rollup::load(conn, s)?;
    let villages = tally(conn, &rollup.subtree, s.campaign.id)?;
    let mut whole = Tally::default();
    let mut per_child = vec![Tally::default(); rollup.children.len()];
    for (village, t) in &villages {
        whole.add(t);
        if let Some(i) = rollup.child_of.get(village) {
            per_child[*i].add(t);
        }
    }
    // The area's own path lists its ancestors, root first, then itself.
    let ancestors: Vec<AreaId> = s
        .area
        .path
        .split('/')
        .filter_map(|p| p.parse().ok().map(AreaId))
        .collect();
    let mut ids = ancestors.clone();
    ids.extend(rollup.children.iter().map(|a| a.id));
    let targets = targets_of(conn, s.campaign.id, &ids)?;
    // An area with no target of its own takes the nearest ancestor's rate target (a count
    // cannot be split among children).
    let campaign_denominator =
        Denominator::parse(&s.campaign.denominator).unwrap_or(Denominator::Registered);
    let rate_target = |t: Option<&TargetRef>| t.filter(|t| t.kind != "count").cloned();
    let inherited = ancestors
        .iter()
        .rev()
        .skip(1)
        .find_map(|a| rate_target(targets.get(a)));
    let own = targets.get(&s.area.id).cloned();
    let for_children = rate_target(own.as_ref()).or(inherited.clone());
    let area = row(
        &s.area,
        &whole,
        own.map(|t| (t, false)).or(inherited.map(|t| (t, true))),
        campaign_denominator,
    );
    let mut children: Vec<ProgressRow> = rollup
        .children
        .iter()
        .zip(&per_child)
        .map(|(a, t)| {
            let target = match targets.get(&a.id) {
                Some(own) => Some((own.clone(), false)),
                None => for_children.clone().map(|t| (t, true)),
            };
            row(a, t, target, campaign_denominator)
        })
        .collect();
    let rates: Vec<Option<f64>> = children.iter().map(|r| r.rate).collect();
    for (r, rank) in children.iter_mut().zip(ranks(&rates)) {
        r.rank = rank;
    }
    let not_yet_assigned = match s.as_of {
        None => not_yet_assigned(conn, &rollup.subtree, s.campaign.id)?,
        Some(_) => None,
    };
    Ok(Progress {
        subject: s.reference(),
        area,
        children,
        not_yet_assigned,
    })
}

/// Villages waiting to be placed with a candidate commune in `subtree`, tallied.
fn not_yet_assigned(
    conn: &mut Conn<'_>,
    subtree: &[AreaId],
    campaign: CampaignId,
) -> Result<Option<NotYetAssigned>> {
    use crate::db::schema::village_candidates;
    let mut villages: Vec<AreaId> = Vec::new();
    for chunk in subtree.chunks(5000) {
        villages.extend(with_conn!(conn, |c| village_candidates::table
            .filter(village_candidates::commune_id.eq_any(chunk))
            .select(village_candidates::village_id)
            .load::<AreaId>(c))?);
    }
    villages.sort();
    villages.dedup();
    if villages.is_empty() {
        return Ok(None);
    }
    let mut t = Tally::default();
    for v in tally(conn, &villages, campaign)?.values() {
        t.add(v);
    }
    Ok(Some(NotYetAssigned {
        villages: villages.len() as i64,
        households: t.households,
        persons: t.persons,
        installed: t.installed,
        priority_total: t.priority,
        priority_installed: t.priority_installed,
    }))
}

/// Persons with a smartphone for smartphone-rate targets, else every registered person.
/// Persons with a smartphone for smartphone-rate targets, every registered person for
/// registered-rate ones, and the campaign's denominator otherwise (no target, or a count).
fn denominator(kind: Option<&str>, campaign: Denominator) -> Denominator {
    match kind.and_then(TargetKind::parse) {
        Some(TargetKind::RateSmartphone) => Denominator::Smartphone,
        Some(TargetKind::RateRegistered) => Denominator::Registered,
        _ => campaign,
    }
}

pub(crate) fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

fn row(
    a: &crate::store::areas::Area,
    t: &Tally,
    target: Option<(TargetRef, bool)>,
    campaign: Denominator,
) -> ProgressRow {
    let denominator = denominator(target.as_ref().map(|(t, _)| t.kind.as_str()), campaign);
    let base = if denominator == Denominator::Smartphone {
        t.smartphone
    } else {
        t.persons
    };
    let target_installs = target.as_ref().map(|(g, _)| match g.kind.as_str() {
        k if k == TargetKind::Count.as_str() => g.value.ceil() as i64,
        _ => (g.value * base as f64 / 100.0 - 1e-9).ceil() as i64,
    });
    ProgressRow {
        area_id: a.id,
        code: a.code.clone(),
        name: a.name.clone(),
        level: a.level.clone(),
        households: t.households,
        households_visited: t.visited,
        persons: t.persons,
        smartphone_owners: t.smartphone,
        installed: t.installed,
        denominator: denominator.to_string(),
        denominator_value: base,
        rate: percent(t.installed, base),
        target_inherited: target.as_ref().is_some_and(|(_, inherited)| *inherited),
        target: target.map(|(t, _)| t),
        target_installs,
        remaining: target_installs.map(|n| (n - t.installed).max(0)),
        target_progress: target_installs.and_then(|n| percent(t.installed, n)),
        rank: None,
        priority_total: t.priority,
        priority_installed: t.priority_installed,
        priority_pending: t.priority - t.priority_installed,
    }
}
