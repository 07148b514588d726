//! Campaigns and their targets per area.

use super::error::{Error, Result};
use crate::db::schema::{areas, campaigns, targets};
use crate::db::Conn;
use crate::domain::{area, AreaId, CampaignId, Time};
use crate::with_conn;
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

pub const TARGET_KINDS: &[&str] = crate::domain::vocabulary::TargetKind::NAMES;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = campaigns)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub description: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = targets)]
pub struct Target {
    pub campaign_id: CampaignId,
    pub area_id: AreaId,
    /// `rate_registered` (percent of registered persons), `rate_smartphone` (percent of
    /// smartphone owners) or `count` (persons installed).
    pub kind: String,
    pub value: f64,
    pub updated_at: Time,
}

pub fn list(conn: &mut Conn<'_>) -> Result<Vec<Campaign>> {
    Ok(with_conn!(conn, |c| campaigns::table
        .select(Campaign::as_select())
        .order((campaigns::starts_on.desc(), campaigns::name))
        .load(c))?)
}

pub fn get(conn: &mut Conn<'_>, id: CampaignId) -> Result<Campaign> {
    with_conn!(conn, |c| campaigns::table
        .find(id)
        .select(Campaign::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| Error::not_found("campaign"))
}

pub fn create(
    conn: &mut Conn<'_>,
    id: CampaignId,
    name: &str,
    description: &str,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
) -> Result<Campaign> {
    let name = crate::domain::text::squash_spaces(name);
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "length", "1 to 200 characters"));
    }
    if ends_on < starts_on {
        return Err(Error::invalid(
            "ends_on",
            "range",
            "must not be before starts_on",
        ));
    }
    let now = Time::now();
    let res = with_conn!(conn, |c| diesel::insert_into(campaigns::table)
        .values((
            campaigns::id.eq(id),
            campaigns::name.eq(&name),
            campaigns::description.eq(description.trim()),
            campaigns::starts_on.eq(starts_on),
            campaigns::ends_on.eq(ends_on),
            campaigns::created_at.eq(now),
            campaigns::updated_at.eq(now),
        ))
        .execute(c));
    match res {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(Error::conflict(
            "duplicate",
            "a campaign with that name or id exists",
        )),
        r => {
            r?;
            get(conn, id)
        }
    }
}

/// Targets of a campaign, limited to areas under the given path prefixes (`None`: all).
pub fn targets(
    conn: &mut Conn<'_>,
    id: CampaignId,
    prefixes: Option<&[String]>,
) -> Result<Vec<Target>> {
    let rows: Vec<(Target, String)> = with_conn!(conn, |c| targets::table
        .inner_join(areas::table)
        .filter(targets::campaign_id.eq(id))
        .select((Target::as_select(), areas::path))
        .order(areas::path)
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter(|(_, path)| prefixes.is_none_or(|ps| ps.iter().any(|p| area::in_subtree(path, p))))
        .map(|(t, _)| t)
        .collect())
}

/// Sets (or replaces) the target of one area.
pub fn set_target(
    conn: &mut Conn<'_>,
    id: CampaignId,
    area: AreaId,
    kind: &str,
    value: f64,
) -> Result<Target> {
    get(conn, id)?;
    if !TARGET_KINDS.contains(&kind) {
        return Err(Error::invalid(
            "kind",
            "choice",
            format!("must be one of: {}", TARGET_KINDS.join(", ")),
        ));
    }
    let max = if kind == "count" { 1e9 } else { 100.0 };
    if !(value > 0.0 && value <= max) || (kind == "count" && value.fract() != 0.0) {
        return Err(Error::invalid(
            "value",
            "range",
            if kind == "count" {
                "a whole number above 0"
            } else {
                "a percentage above 0, at most 100"
            },
        ));
    }
    let now = Time::now();
    with_conn!(conn, |c| {
        diesel::delete(targets::table.find((id, area))).execute(c)?;
        diesel::insert_into(targets::table)
            .values((
                targets::campaign_id.eq(id),
                targets::area_id.eq(area),
                targets::kind.eq(kind),
                targets::value.eq(value),
                targets::updated_at.eq(now),
            ))
            .execute(c)
    })?;
    Ok(Target {
        campaign_id: id,
        area_id: area,
        kind: kind.to_owned(),
        value,
        updated_at: now,
    })
}
