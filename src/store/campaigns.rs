//! Campaigns and their targets per area.

use super::error::{Error, Result};
use crate::db::any::any_of;
use crate::db::schema::{areas, campaigns, targets};
use crate::db::Conn;
use crate::domain::vocabulary::Denominator;
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
    /// `registered` (every registered person) or `smartphone` (smartphone owners): what an
    /// area's rate is over where no rate target says otherwise.
    pub denominator: String,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A campaign's editable fields.
#[derive(Debug, Clone)]
pub struct Fields {
    pub name: String,
    pub description: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub denominator: Denominator,
}

impl Fields {
    /// The fields cleaned, or the rule they break.
    fn checked(&self) -> Result<Fields> {
        let name = crate::domain::text::squash_spaces(&self.name);
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid("name", "length", "1 to 200 characters"));
        }
        if self.ends_on < self.starts_on {
            return Err(Error::invalid(
                "ends_on",
                "range",
                "must not be before starts_on",
            ));
        }
        Ok(Fields {
            name,
            description: self.description.trim().to_owned(),
            ..self.clone()
        })
    }
}

fn taken(e: diesel::result::Error) -> Error {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => Error::conflict("duplicate", "a campaign with that name or id exists"),
        e => e.into(),
    }
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

pub fn create(conn: &mut Conn<'_>, id: CampaignId, f: &Fields) -> Result<Campaign> {
    let f = f.checked()?;
    let now = Time::now();
    with_conn!(conn, |c| diesel::insert_into(campaigns::table)
        .values((
            campaigns::id.eq(id),
            campaigns::name.eq(&f.name),
            campaigns::description.eq(&f.description),
            campaigns::starts_on.eq(f.starts_on),
            campaigns::ends_on.eq(f.ends_on),
            campaigns::denominator.eq(f.denominator.as_str()),
            campaigns::created_at.eq(now),
            campaigns::updated_at.eq(now),
        ))
        .execute(c))
    .map_err(taken)?;
    get(conn, id)
}

/// Replaces the campaign's fields.
pub fn update(conn: &mut Conn<'_>, id: CampaignId, f: &Fields) -> Result<Campaign> {
    get(conn, id)?;
    let f = f.checked()?;
    with_conn!(conn, |c| diesel::update(campaigns::table.find(id))
        .set((
            campaigns::name.eq(&f.name),
            campaigns::description.eq(&f.description),
            campaigns::starts_on.eq(f.starts_on),
            campaigns::ends_on.eq(f.ends_on),
            campaigns::denominator.eq(f.denominator.as_str()),
            campaigns::updated_at.eq(Time::now()),
        ))
        .execute(c))
    .map_err(taken)?;
    get(conn, id)
}

/// Removes the area's own target: it inherits its parent's again.
pub fn clear_target(conn: &mut Conn<'_>, id: CampaignId, area: AreaId) -> Result<bool> {
    get(conn, id)?;
    let n = with_conn!(conn, |c| diesel::delete(targets::table.find((id, area)))
        .execute(c))?;
    Ok(n > 0)
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

/// The targets of every campaign in the given areas (`None`: everywhere), in one statement:
/// by campaign in the order of `order`, then by the area's path. `areas` being every area
/// of a subtree (`scope::area_ids_under`), these are the subtree's targets, as `targets`
/// gives them campaign by campaign.
pub fn targets_in(
    conn: &mut Conn<'_>,
    order: &[CampaignId],
    areas: Option<&[AreaId]>,
) -> Result<Vec<Target>> {
    let mut rows: Vec<(Target, String)> = match areas {
        Some([]) => Vec::new(),
        Some(ids) => with_conn!(conn, |c| targets::table
            .inner_join(areas::table)
            .filter(any_of(targets::area_id, ids))
            .select((Target::as_select(), areas::path))
            .load(c))?,
        None => with_conn!(conn, |c| targets::table
            .inner_join(areas::table)
            .select((Target::as_select(), areas::path))
            .load(c))?,
    };
    let rank = |t: &Target| order.iter().position(|c| *c == t.campaign_id);
    rows.retain(|(t, _)| rank(t).is_some());
    rows.sort_by(|(a, pa), (b, pb)| rank(a).cmp(&rank(b)).then_with(|| pa.cmp(pb)));
    Ok(rows.into_iter().map(|(t, _)| t).collect())
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
