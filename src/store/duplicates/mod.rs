//! Possible duplicate households (docs/DUPLICATES.md): the review of the pairs (list, one
//! pair, dismissal, the marks of a merge); the check that finds them is `check`.

use super::error::{Error, Result};
use super::scope::{self, Principal};
use super::PageReq;
use crate::db::schema::{adoptions, areas, duplicates, households, members, users, visits};
use crate::db::Conn;
use crate::domain::vocabulary::DuplicateStatus;
use crate::domain::{AreaId, CampaignId, DuplicateId, HouseholdId, MemberId, Time, UserId};
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

mod check;
mod keys;
mod scan;

use check::CHUNK;
pub use check::{refresh, MAX_SAME_HEAD, MAX_SHARED};
pub use scan::scan;

/// The migration after which every household's keys are made again (`store::migrate`).
pub const KEYS_BY_SOURCE: &str = "20261207000019";

/// A household of a pair, as the review shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Side {
    pub id: HouseholdId,
    pub area_id: AreaId,
    /// Its village's name.
    pub village: String,
    pub head_name: String,
    pub address: String,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub members: Vec<SideMember>,
    pub visits: i64,
    /// Each member's status per campaign.
    pub statuses: Vec<SideStatus>,
    /// Who registered it, and when.
    pub created_by: String,
    pub created_at: Time,
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SideMember {
    pub id: MemberId,
    pub full_name: String,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SideStatus {
    pub member_id: MemberId,
    pub campaign_id: CampaignId,
    pub status: String,
}

/// A pair of possible duplicates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pair {
    pub id: DuplicateId,
    /// The rule that matched: `phone`, `name_address` or `name_person`.
    pub rule: String,
    /// `open`, `merged` or `dismissed`.
    pub status: String,
    /// Why it was dismissed.
    pub reason: Option<String>,
    /// The household kept by a merge.
    pub kept_id: Option<HouseholdId>,
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<Time>,
    pub created_at: Time,
    /// The two households, the smaller id first.
    pub households: Vec<Side>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = duplicates)]
struct Row {
    id: DuplicateId,
    household_a: HouseholdId,
    household_b: HouseholdId,
    area_a: AreaId,
    area_b: AreaId,
    rule: String,
    status: String,
    reason: Option<String>,
    kept_id: Option<HouseholdId>,
    resolved_by: Option<UserId>,
    resolved_at: Option<Time>,
    created_at: Time,
}

/// The pairs of the area (or of every area the caller sees), newest first. An open pair
/// whose household was deleted meanwhile is left out.
pub fn list(
    conn: &mut Conn<'_>,
    who: &Principal,
    area: Option<AreaId>,
    status: Option<DuplicateStatus>,
    page: PageReq,
) -> Result<(Vec<Pair>, i64)> {
    let bound = match area {
        Some(a) => Some(vec![who.require_area(conn, a)?]),
        None => who.prefixes().map(<[String]>::to_vec),
    };
    let villages = match &bound {
        Some(p) => Some(scope::area_ids_under(conn, p)?),
        None => None,
    };
    let rows: Vec<Row> = with_conn!(conn, |c: DB| {
        let mut q = duplicates::table
            .select(Row::as_select())
            .order((duplicates::created_at.desc(), duplicates::id))
            .into_boxed::<DB>();
        if let Some(v) = &villages {
            q = q.filter(
                duplicates::area_a
                    .eq_any(v.clone())
                    .or(duplicates::area_b.eq_any(v.clone())),
            );
        }
        if let Some(s) = status {
            q = q.filter(duplicates::status.eq(s.as_str()));
        }
        q.load(c)
    })?;
    // Open pairs of a deleted household are moot: left out.
    let mut ids: Vec<HouseholdId> = rows
        .iter()
        .flat_map(|r| [r.household_a, r.household_b])
        .collect();
    ids.sort();
    ids.dedup();
    let deleted: BTreeSet<HouseholdId> = ids
        .chunks(CHUNK)
        .map(|chunk| {
            with_conn!(conn, |c| households::table
                .filter(households::id.eq_any(chunk))
                .filter(households::deleted_at.is_not_null())
                .select(households::id)
                .load::<HouseholdId>(c))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| {
            r.status != DuplicateStatus::Open.as_str()
                || !(deleted.contains(&r.household_a) || deleted.contains(&r.household_b))
        })
        .collect();
    let total = rows.len() as i64;
    let rows: Vec<Row> = rows
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .collect();
    let mut sides: Vec<HouseholdId> = rows
        .iter()
        .flat_map(|r| [r.household_a, r.household_b])
        .collect();
    sides.sort();
    sides.dedup();
    let summaries = summarize(conn, &sides)?;
    let items = rows
        .into_iter()
        .map(|r| Pair {
            households: [r.household_a, r.household_b]
                .iter()
                .filter_map(|h| summaries.get(h).cloned())
                .collect(),
            id: r.id,
            rule: r.rule,
            status: r.status,
            reason: r.reason,
            kept_id: r.kept_id,
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at,
            created_at: r.created_at,
        })
        .collect();
    Ok((items, total))
}

type SideRow = (
    HouseholdId,
    AreaId,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Time,
    Option<Time>,
);

type PersonRow = (MemberId, HouseholdId, String, Option<i32>, Option<String>);

/// The review's summary of these households.
fn summarize(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<HashMap<HouseholdId, Side>> {
    let rows: Vec<SideRow> = with_conn!(conn, |c| households::table
        .inner_join(areas::table)
        .inner_join(users::table.on(users::id.eq(households::created_by)))
        .filter(households::id.eq_any(ids))
        .select((
            households::id,
            households::area_id,
            areas::name,
            households::head_name,
            households::address,
            households::phone,
            households::external_id,
            users::username,
            households::created_at,
            households::deleted_at,
        ))
        .load(c))?;
    let people: Vec<PersonRow> = with_conn!(conn, |c| members::table
        .filter(members::household_id.eq_any(ids))
        .filter(members::deleted_at.is_null())
        .select((
            members::id,
            members::household_id,
            members::full_name,
            members::birth_year,
            members::phone,
        ))
        .order((members::full_name, members::id))
        .load(c))?;
    let statuses: Vec<(HouseholdId, MemberId, CampaignId, String)> =
        with_conn!(conn, |c| adoptions::table
            .filter(adoptions::household_id.eq_any(ids))
            .select((
                adoptions::household_id,
                adoptions::member_id,
                adoptions::campaign_id,
                adoptions::status,
            ))
            .load(c))?;
    let visit_rows: Vec<HouseholdId> = with_conn!(conn, |c| visits::table
        .filter(visits::household_id.eq_any(ids))
        .select(visits::household_id)
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, area_id, village, head_name, address, phone, external_id, by, at, deleted)| {
                let side = Side {
                    id,
                    area_id,
                    village,
                    head_name,
                    address,
                    phone,
                    external_id,
                    members: people
                        .iter()
                        .filter(|p| p.1 == id)
                        .map(|p| SideMember {
                            id: p.0,
                            full_name: p.2.clone(),
                            birth_year: p.3,
                            phone: p.4.clone(),
                        })
                        .collect(),
                    visits: visit_rows.iter().filter(|v| **v == id).count() as i64,
                    statuses: statuses
                        .iter()
                        .filter(|s| s.0 == id)
                        .map(|s| SideStatus {
                            member_id: s.1,
                            campaign_id: s.2,
                            status: s.3.clone(),
                        })
                        .collect(),
                    created_by: by,
                    created_at: at,
                    deleted: deleted.is_some(),
                };
                (id, side)
            },
        )
        .collect())
}

/// The pair, if the caller may review it: both of its villages in the caller's areas.
pub fn get(conn: &mut Conn<'_>, who: &Principal, id: DuplicateId) -> Result<Pair> {
    let row: Row = with_conn!(conn, |c| duplicates::table
        .find(id)
        .select(Row::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| Error::not_found("duplicate"))?;
    who.require_area(conn, row.area_a)?;
    who.require_area(conn, row.area_b)?;
    let summaries = summarize(conn, &[row.household_a, row.household_b])?;
    Ok(Pair {
        households: [row.household_a, row.household_b]
            .iter()
            .filter_map(|h| summaries.get(h).cloned())
            .collect(),
        id: row.id,
        rule: row.rule,
        status: row.status,
        reason: row.reason,
        kept_id: row.kept_id,
        resolved_by: row.resolved_by,
        resolved_at: row.resolved_at,
        created_at: row.created_at,
    })
}

/// Marks an open pair as merged, keeping `keep`, after the merge's write (`write::merge`).
/// The merged household's other open pairs are closed: its keys are the survivor's now,
/// and the survivor's own pairs with those households are proposed by the merge's check.
pub fn mark_merged(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: DuplicateId,
    keep: HouseholdId,
    gone: HouseholdId,
) -> Result<Pair> {
    let now = Time::now();
    with_conn!(conn, |c| diesel::update(duplicates::table.find(id))
        .set((
            duplicates::status.eq(DuplicateStatus::Merged.as_str()),
            duplicates::kept_id.eq(Some(keep)),
            duplicates::resolved_by.eq(Some(who.user_id)),
            duplicates::resolved_at.eq(Some(now)),
        ))
        .execute(c))?;
    with_conn!(conn, |c| diesel::update(
        duplicates::table
            .filter(duplicates::status.eq(DuplicateStatus::Open.as_str()))
            .filter(
                duplicates::household_a
                    .eq(gone)
                    .or(duplicates::household_b.eq(gone)),
            )
    )
    .set((
        duplicates::status.eq(DuplicateStatus::Dismissed.as_str()),
        duplicates::reason.eq(Some(MERGED_AWAY)),
        duplicates::resolved_by.eq(Some(who.user_id)),
        duplicates::resolved_at.eq(Some(now)),
    ))
    .execute(c))?;
    get(conn, who, id)
}

/// The reason of the pairs closed because one of their households was merged into a third.
pub const MERGED_AWAY: &str = "Hộ đã được gộp vào một hộ khác";

/// An open pair, the caller's to review, with the household kept and the one merged into
/// it: 409 `not_open` when it is merged or dismissed already, 422 when `keep` is neither.
pub fn to_merge(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: DuplicateId,
    keep: HouseholdId,
) -> Result<(Pair, HouseholdId)> {
    let pair = get(conn, who, id)?;
    if pair.status != DuplicateStatus::Open.as_str() {
        return Err(Error::conflict(
            "not_open",
            format!("this pair is {} already", pair.status),
        ));
    }
    let ids: Vec<HouseholdId> = pair.households.iter().map(|h| h.id).collect();
    match ids.as_slice() {
        [a, b] if *a == keep => Ok((pair.clone(), *b)),
        [a, b] if *b == keep => Ok((pair.clone(), *a)),
        _ => Err(Error::invalid(
            "keep",
            "not_in_pair",
            "keep must be one of the pair's two households",
        )),
    }
}

/// Marks an open pair as no duplicate: it is never proposed again.
pub fn dismiss(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: DuplicateId,
    reason: &str,
) -> Result<Pair> {
    let pair = get(conn, who, id)?;
    if pair.status != DuplicateStatus::Open.as_str() {
        return Err(Error::conflict(
            "not_open",
            format!("this pair is {} already", pair.status),
        ));
    }
    with_conn!(conn, |c| diesel::update(duplicates::table.find(id))
        .set((
            duplicates::status.eq(DuplicateStatus::Dismissed.as_str()),
            duplicates::reason.eq(Some(reason.trim())),
            duplicates::resolved_by.eq(Some(who.user_id)),
            duplicates::resolved_at.eq(Some(Time::now())),
        ))
        .execute(c))?;
    get(conn, who, id)
}
