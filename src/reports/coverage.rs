//! Who covers what: a row per village of the area with the canvassers whose areas include
//! it, their phones' last sync and the changes those phones reported waiting, and the
//! campaign's households visited. Villages nobody covers come first.

use super::progress::tally;
use super::{Result, Subject, SubjectRef};
use crate::auth::Role;
use crate::db::schema::{areas, households, user_areas, users, visits};
use crate::db::Conn;
use crate::domain::vocabulary::AreaLevel;
use crate::domain::{area, AreaId, Time, UserId};
use crate::store::devices;
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// A canvasser covering a village.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Canvasser {
    pub user_id: UserId,
    pub username: String,
    pub full_name: String,
    /// The last sync of any of their phones; none if they never synced.
    pub last_sync_at: Option<Time>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageRow {
    pub area_id: AreaId,
    pub name: String,
    /// The village's commune.
    pub commune: String,
    /// Active canvassers whose areas include the village, by username.
    pub canvassers: Vec<Canvasser>,
    pub households: i64,
    /// Households visited in the campaign.
    pub households_visited: i64,
    /// The campaign's last visit of a household of the village.
    pub last_visit_at: Option<Time>,
    /// Changes waiting on the canvassers' phones, as the phones last reported them (none
    /// when no phone reported).
    pub pending_changes: Option<i64>,
    /// When the oldest of those was made.
    pub oldest_pending_at: Option<Time>,
    /// Those phones that last reported less than 50 MiB of storage left or errors.
    pub phones_in_trouble: Vec<PhoneInTrouble>,
}

/// A canvasser's phone in trouble, as it last reported.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneInTrouble {
    pub username: String,
    pub device_id: crate::domain::DeviceId,
    pub last_sync_at: Time,
    pub app_version: Option<String>,
    pub storage_free_bytes: Option<i64>,
    /// The latest of its reported errors.
    pub last_error: Option<devices::PhoneError>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    pub subject: SubjectRef,
    /// Villages nobody covers first, then by commune and name.
    pub rows: Vec<CoverageRow>,
}

pub fn coverage(conn: &mut Conn<'_>, s: &Subject) -> Result<Coverage> {
    let village = AreaLevel::Village.as_str();
    let villages: Vec<(AreaId, String, String, Option<AreaId>)> = with_conn!(conn, |c| {
        areas::table
            .filter(areas::path.like(s.subtree()))
            .filter(areas::level.eq(village))
            .filter(areas::retired_at.is_null())
            .select((areas::id, areas::name, areas::path, areas::parent_id))
            .load(c)
    })?;
    let ids: Vec<AreaId> = villages.iter().map(|v| v.0).collect();
    let mut parents: Vec<AreaId> = villages.iter().filter_map(|v| v.3).collect();
    parents.sort();
    parents.dedup();
    let communes: HashMap<AreaId, String> = crate::store::areas::by_ids(conn, &parents)?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let tallies = tally(conn, &ids, s.campaign.id)?;
    let last_visits = last_visits(conn, &ids, s)?;
    let assigned = canvassers(conn, &s.area.path)?;
    let user_ids: Vec<UserId> = assigned.iter().map(|a| a.0).collect();
    let phones = devices::phones(conn, &user_ids)?;
    let mut rows: Vec<CoverageRow> = villages
        .into_iter()
        .map(|(id, name, path, parent)| {
            let mut covering: Vec<&Assigned> = assigned
                .iter()
                .filter(|a| area::in_subtree(&path, &a.3))
                .collect();
            covering.sort_by(|a, b| a.1.cmp(&b.1));
            covering.dedup_by_key(|a| a.0);
            let theirs: Vec<&devices::Phone> = phones
                .iter()
                .filter(|p| covering.iter().any(|a| a.0 == p.user_id))
                .collect();
            let reported: Vec<&&devices::Phone> = theirs
                .iter()
                .filter(|p| p.pending_changes.is_some())
                .collect();
            let t = tallies.get(&id).cloned().unwrap_or_default();
            CoverageRow {
                area_id: id,
                name,
                commune: parent
                    .and_then(|p| communes.get(&p).cloned())
                    .unwrap_or_default(),
                canvassers: covering
                    .iter()
                    .map(|a| Canvasser {
                        user_id: a.0,
                        username: a.1.clone(),
                        full_name: a.2.clone(),
                        last_sync_at: theirs
                            .iter()
                            .filter(|p| p.user_id == a.0)
                            .map(|p| p.last_sync_at)
                            .max(),
                    })
                    .collect(),
                households: t.households,
                households_visited: t.visited,
                last_visit_at: last_visits.get(&id).copied(),
                pending_changes: (!reported.is_empty())
                    .then(|| reported.iter().filter_map(|p| p.pending_changes).sum()),
                oldest_pending_at: reported.iter().filter_map(|p| p.oldest_pending_at).min(),
                phones_in_trouble: theirs
                    .iter()
                    .filter(|p| p.in_trouble())
                    .map(|p| PhoneInTrouble {
                        username: covering
                            .iter()
                            .find(|a| a.0 == p.user_id)
                            .map(|a| a.1.clone())
                            .unwrap_or_default(),
                        device_id: p.device_id,
                        last_sync_at: p.last_sync_at,
                        app_version: p.app_version.clone(),
                        storage_free_bytes: p.storage_free_bytes,
                        last_error: p.last_errors.last().cloned(),
                    })
                    .collect(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (!a.canvassers.is_empty(), &a.commune, &a.name).cmp(&(
            !b.canvassers.is_empty(),
            &b.commune,
            &b.name,
        ))
    });
    Ok(Coverage {
        subject: s.reference(),
        rows,
    })
}

/// An active canvasser and one of their areas: id, username, full name, the area's path.
type Assigned = (UserId, String, String, String);

/// Active canvassers with an area in the subtree at `path`, or above it.
fn canvassers(conn: &mut Conn<'_>, path: &str) -> Result<Vec<Assigned>> {
    let above = area::ancestor_paths(path);
    let role = Role::Canvasser.as_str();
    Ok(with_conn!(conn, |c| user_areas::table
        .inner_join(users::table)
        .inner_join(areas::table)
        .filter(users::role.eq(role))
        .filter(users::active.eq(true))
        .filter(
            areas::path
                .like(area::subtree_pattern(path))
                .or(areas::path.eq_any(&above))
        )
        .select((users::id, users::username, users::full_name, areas::path))
        .load(c))?)
}

/// The campaign's last visit per village.
fn last_visits(
    conn: &mut Conn<'_>,
    villages: &[AreaId],
    s: &Subject,
) -> Result<HashMap<AreaId, Time>> {
    let mut out: HashMap<AreaId, Time> = HashMap::new();
    for chunk in villages.chunks(1000) {
        let rows: Vec<(AreaId, Option<Time>)> = with_conn!(conn, |c| visits::table
            .inner_join(households::table)
            .filter(households::area_id.eq_any(chunk))
            .filter(visits::campaign_id.eq(s.campaign.id))
            .group_by(households::area_id)
            .select((households::area_id, diesel::dsl::max(visits::visited_at)))
            .load(c))?;
        out.extend(rows.into_iter().filter_map(|(a, t)| Some((a, t?))));
    }
    Ok(out)
}
