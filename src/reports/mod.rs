//! Read models for supervisors: progress against plan, the trend of installs, work lists,
//! activity checks, and their exports. Everything is derived at query time from
//! households, members, adoptions and visits; nothing here is stored or editable.

pub mod activity;
pub mod coverage;
pub mod error;
pub mod export;
pub mod layouts;
pub mod lists;
pub mod progress;
pub mod trend;

use crate::db::Conn;
use crate::domain::{AreaId, CampaignId, Time};
use crate::store::areas::{self, Area};
use crate::store::campaigns::{self, Campaign};
use crate::store::scope::Principal;
use chrono::NaiveDate;
pub use error::{Error, Result};
use serde::Serialize;

pub use crate::domain::{local_date, LOCAL_OFFSET_HOURS};

/// What a report is about: a campaign and an area the caller may see, on today's map or
/// on the map of a day.
pub struct Subject {
    pub area: Area,
    pub campaign: Campaign,
    pub as_of: Option<NaiveDate>,
}

/// The campaign and area of a report, as named in its title.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubjectRef {
    pub campaign_id: CampaignId,
    pub campaign_name: String,
    pub area_id: AreaId,
    pub area_name: String,
    pub area_level: String,
}

impl Subject {
    /// Resolves the area (by default the caller's only assigned area) and the campaign.
    /// An area outside the caller's areas is refused (403), an unknown one is 404. On the
    /// map of a day, the area must have been in effect that day; a retired unit is the
    /// caller's if everything it became is in the caller's areas.
    pub fn resolve(
        conn: &mut Conn<'_>,
        who: &Principal,
        area: Option<AreaId>,
        campaign: CampaignId,
        as_of: Option<NaiveDate>,
    ) -> Result<Subject> {
        let campaign = campaigns::get(conn, campaign)?;
        let area = match area {
            Some(a) => a,
            None => default_area(conn, who)?,
        };
        let area = areas::get(conn, area)?;
        match as_of {
            Some(day) => {
                if !areas::in_effect(&area, day) {
                    return Err(Error::invalid(
                        "as_of",
                        "not_in_effect",
                        format!("{} was not in effect on {day}", area.name),
                    ));
                }
                if !crate::store::scope::covers_history(conn, who, &area.path)? {
                    return Err(crate::store::error::Error::out_of_scope().into());
                }
            }
            None => who.require_covers(&area.path)?,
        }
        Ok(Subject {
            area,
            campaign,
            as_of,
        })
    }

    /// A `LIKE` pattern matching the paths of the area's whole subtree.
    pub fn subtree(&self) -> String {
        crate::domain::area::subtree_pattern(&self.area.path)
    }

    pub fn reference(&self) -> SubjectRef {
        SubjectRef {
            campaign_id: self.campaign.id,
            campaign_name: self.campaign.name.clone(),
            area_id: self.area.id,
            area_name: self.area.name.clone(),
            area_level: self.area.level.clone(),
        }
    }

    /// The title row of an export: what, where, which campaign, when.
    pub fn title(&self, what: &str) -> String {
        let map = self
            .as_of
            .map(|d| format!(" — Theo bản đồ hành chính ngày {}", d.format("%d/%m/%Y")))
            .unwrap_or_default();
        format!(
            "{what} — {} — Chiến dịch: {}{map} — Ngày xuất: {}",
            self.area.name,
            self.campaign.name,
            local_date(&Time::now()).format("%d/%m/%Y")
        )
    }
}

fn default_area(conn: &mut Conn<'_>, who: &Principal) -> Result<AreaId> {
    let assigned = crate::store::users::area_ids(conn, who.user_id)?;
    match assigned.as_slice() {
        [one] => Ok(*one),
        _ => Err(Error::invalid(
            "area",
            "required",
            "name the area (you are assigned none or several)",
        )),
    }
}

/// Competition ranking ("1, 2, 2, 4") by descending value; `None` values get no rank.
pub fn ranks(values: &[Option<f64>]) -> Vec<Option<i64>> {
    values
        .iter()
        .map(|v| v.map(|v| 1 + values.iter().filter(|o| o.is_some_and(|o| o > v)).count() as i64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_share_ties_and_skip_after_them() {
        let r = ranks(&[Some(50.0), Some(80.0), None, Some(50.0), Some(10.0)]);
        assert_eq!(r, vec![Some(2), Some(1), None, Some(2), Some(4)]);
    }

    #[test]
    fn local_date_is_vietnam_time() {
        let t = Time("2020-08-20T17:30:00Z".parse().unwrap());
        assert_eq!(
            local_date(&t),
            NaiveDate::from_ymd_opt(2020, 8, 21).unwrap()
        );
        let t = Time("2020-08-20T16:59:59Z".parse().unwrap());
        assert_eq!(
            local_date(&t),
            NaiveDate::from_ymd_opt(2020, 8, 20).unwrap()
        );
    }
}
