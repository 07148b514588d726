//! What the reorganizations applied left to read: each with its report, and the targets of
//! retired areas that supervisors have to set again.

use super::{Report, TargetToSet};
use crate::db::schema::{area_links, areas as areas_t, campaigns, reorganizations, targets};
use crate::db::Conn;
use crate::domain::{AreaId, CampaignId, Time, UserId};
use crate::store::areas::{self, Area, AreaRef};
use crate::store::error::{Error, Result};
use crate::with_conn;
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A reorganization applied, with its report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Applied {
    pub id: Uuid,
    pub effective: NaiveDate,
    pub source: String,
    pub applied_by: Option<UserId>,
    pub applied_at: Time,
    pub report: Report,
}

/// The reorganizations applied, newest first.
pub fn list(conn: &mut Conn<'_>) -> Result<Vec<Applied>> {
    let rows: Vec<(AreaId, NaiveDate, String, String, Option<UserId>, Time)> =
        with_conn!(conn, |c| reorganizations::table
            .select((
                reorganizations::id,
                reorganizations::effective,
                reorganizations::source,
                reorganizations::report,
                reorganizations::applied_by,
                reorganizations::applied_at,
            ))
            .order(reorganizations::applied_at.desc())
            .load(c))?;
    rows.into_iter()
        .map(|(id, effective, source, report, applied_by, applied_at)| {
            Ok(Applied {
                id: id.0,
                effective,
                source,
                applied_by,
                applied_at,
                report: serde_json::from_str(&report).map_err(Error::corrupt)?,
            })
        })
        .collect()
}

/// A target as `retired_targets` reads it: campaign, its name, area, kind, value.
type SetTarget = (CampaignId, String, AreaId, String, f64);

/// The targets set on retired areas.
pub(super) fn retired_targets(conn: &mut Conn<'_>) -> Result<Vec<SetTarget>> {
    Ok(with_conn!(conn, |c| targets::table
        .inner_join(campaigns::table)
        .inner_join(areas_t::table)
        .filter(areas_t::retired_at.is_not_null())
        .select((
            targets::campaign_id,
            campaigns::name,
            targets::area_id,
            targets::kind,
            targets::value,
        ))
        .order((campaigns::name, targets::area_id))
        .load(c))?)
}

/// Targets of retired areas that the caller has to set again: those with a successor in the
/// caller's areas (any, for an admin) that has no target of its own in that campaign yet.
pub fn targets_to_set(
    conn: &mut Conn<'_>,
    who: &crate::store::scope::Principal,
) -> Result<Vec<TargetToSet>> {
    let set = retired_targets(conn)?;
    let from: Vec<AreaId> = set.iter().map(|t| t.2).collect();
    let links: Vec<(AreaId, AreaId)> = with_conn!(conn, |c| area_links::table
        .filter(area_links::from_id.eq_any(&from))
        .select((area_links::from_id, area_links::to_id))
        .load(c))?;
    let ids: Vec<AreaId> = from
        .iter()
        .chain(links.iter().map(|l| &l.1))
        .copied()
        .collect();
    let units: HashMap<AreaId, Area> = areas::by_ids(conn, &ids)?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let has: HashSet<(CampaignId, AreaId)> = with_conn!(conn, |c| targets::table
        .filter(targets::area_id.eq_any(links.iter().map(|l| l.1).collect::<Vec<_>>()))
        .select((targets::campaign_id, targets::area_id))
        .load::<(CampaignId, AreaId)>(c))?
    .into_iter()
    .collect();
    let mut out = Vec::new();
    for (campaign, name, area, kind, value) in set {
        let successors: Vec<AreaRef> = links
            .iter()
            .filter(|l| l.0 == area)
            .filter_map(|l| units.get(&l.1))
            .filter(|u| who.covers(&u.path) && !has.contains(&(campaign, u.id)))
            .map(AreaRef::of)
            .collect();
        if let (false, Some(a)) = (successors.is_empty(), units.get(&area)) {
            out.push(TargetToSet {
                campaign_id: campaign,
                campaign_name: name,
                area: AreaRef::of(a),
                kind,
                value,
                successors,
            });
        }
    }
    Ok(out)
}
