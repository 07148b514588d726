//! Reads of the household unit (household, members, adoptions) and its visits, whose records
//! live in `domain::household::records`. Writes go through `write` alone, over
//! `store::work`.

use super::error::{Error, Result};
use super::scope::{self, Principal};
use super::{campaigns, PageReq};
use crate::db::prepared::FixedShape;
use crate::db::schema::{adoptions, areas, households, members, visits};
use crate::db::Conn;
pub use crate::domain::household::records::{
    Adoption, Household, HouseholdFields, Member, MemberFields, NewHousehold, NewMember, Visit,
    VisitFields,
};
use crate::domain::household::{AdoptionStatus, Priority};
use crate::domain::{text, AreaId, CampaignId, HouseholdId, MemberId, VisitId};
use crate::with_conn;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

// Their changesets set every updatable column, `None` as NULL (`treat_none_as_null`).
impl FixedShape for Household {}
impl FixedShape for Member {}
impl FixedShape for Adoption {}

fn load_household(conn: &mut Conn<'_>, id: HouseholdId) -> Result<Option<(Household, String)>> {
    Ok(with_conn!(conn, |c| households::table
        .inner_join(areas::table)
        .filter(households::id.eq(id))
        .select((Household::as_select(), areas::path))
        .first(c)
        .optional())?)
}

/// The household, if the caller may see it (deleted ones included).
pub fn get_household(conn: &mut Conn<'_>, who: &Principal, id: HouseholdId) -> Result<Household> {
    let (h, path) = load_household(conn, id)?.ok_or_else(|| Error::not_found("household"))?;
    who.require_covers(&path)?;
    Ok(h)
}

fn load_member(conn: &mut Conn<'_>, id: MemberId) -> Result<Option<Member>> {
    Ok(with_conn!(conn, |c| members::table
        .find(id)
        .select(Member::as_select())
        .first(c)
        .optional())?)
}

/// The member, if the caller may see its household.
pub fn get_member(conn: &mut Conn<'_>, who: &Principal, id: MemberId) -> Result<Member> {
    let m = load_member(conn, id)?.ok_or_else(|| Error::not_found("member"))?;
    get_household(conn, who, m.household_id)?;
    Ok(m)
}

pub fn get_adoption(
    conn: &mut Conn<'_>,
    member: MemberId,
    campaign: CampaignId,
) -> Result<Option<Adoption>> {
    Ok(with_conn!(conn, |c| adoptions::table
        .find((member, campaign))
        .select(Adoption::as_select())
        .first(c)
        .optional())?)
}

fn get_visit(conn: &mut Conn<'_>, id: VisitId) -> Result<Option<Visit>> {
    Ok(with_conn!(conn, |c| visits::table
        .find(id)
        .select(Visit::as_select())
        .first(c)
        .optional())?)
}

/// A visit, if the caller may see its household.
pub fn visit(conn: &mut Conn<'_>, who: &Principal, id: VisitId) -> Result<Visit> {
    let v = get_visit(conn, id)?.ok_or_else(|| Error::not_found("visit"))?;
    get_household(conn, who, v.household_id)?;
    Ok(v)
}

/// A member with their adoptions, as a household's detail shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberDetail {
    #[serde(flatten)]
    pub member: Member,
    pub adoptions: Vec<Adoption>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdDetail {
    #[serde(flatten)]
    pub household: Household,
    /// Live members, oldest first.
    pub members: Vec<MemberDetail>,
    /// The 20 latest visits, newest first.
    pub recent_visits: Vec<Visit>,
}

pub fn household_detail(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: HouseholdId,
) -> Result<HouseholdDetail> {
    let household = get_household(conn, who, id)?;
    detail_of(conn, household)
}

/// The detail of a household already read (and its caller's scope checked).
pub fn detail_of(conn: &mut Conn<'_>, household: Household) -> Result<HouseholdDetail> {
    if household.deleted_at.is_some() {
        return Err(Error::deleted("household"));
    }
    let id = household.id;
    let (ms, ads, recent_visits) = with_conn!(conn, |c| {
        let ms: Vec<Member> = members::table
            .filter(members::household_id.eq(id))
            .filter(members::deleted_at.is_null())
            .select(Member::as_select())
            .order((members::created_at, members::id))
            .load(c)?;
        let ads: Vec<Adoption> = adoptions::table
            .filter(adoptions::household_id.eq(id))
            .select(Adoption::as_select())
            .order(adoptions::campaign_id)
            .load(c)?;
        let vs: Vec<Visit> = visits::table
            .filter(visits::household_id.eq(id))
            .select(Visit::as_select())
            .order(visits::visited_at.desc())
            .limit(20)
            .load(c)?;
        Ok::<_, diesel::result::Error>((ms, ads, vs))
    })?;
    let members = ms
        .into_iter()
        .map(|member| MemberDetail {
            adoptions: ads
                .iter()
                .filter(|a| a.member_id == member.id)
                .cloned()
                .collect(),
            member,
        })
        .collect();
    Ok(HouseholdDetail {
        household,
        members,
        recent_visits,
    })
}

#[derive(Debug, Clone, Default)]
pub struct HouseholdFilter {
    pub area: Option<AreaId>,
    pub campaign: Option<CampaignId>,
    pub visited: Option<bool>,
    pub priority: Option<Priority>,
    pub adoption_status: Option<AdoptionStatus>,
    pub q: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdItem {
    #[serde(flatten)]
    pub household: Household,
    /// Live members.
    pub member_count: i64,
}

/// Live households in the caller's areas (or the given subtree of them), filtered and paged;
/// with the total when asked.
pub fn list_households(
    conn: &mut Conn<'_>,
    who: &Principal,
    f: &HouseholdFilter,
    page: PageReq,
    with_total: bool,
) -> Result<(Vec<HouseholdItem>, Option<i64>)> {
    let bound: Option<Vec<String>> = match f.area {
        Some(a) => Some(vec![who.require_area(conn, a)?]),
        None => who.prefixes().map(<[String]>::to_vec),
    };
    let area_ids = match &bound {
        Some(prefixes) => Some(scope::area_ids_under(conn, prefixes)?),
        None => None,
    };
    if f.campaign.is_none() && f.adoption_status.is_some() {
        return Err(Error::invalid(
            "campaign",
            "required",
            "adoption_status needs a campaign",
        ));
    }
    if let Some(c) = f.campaign {
        campaigns::get(conn, c)?;
    }
    let terms = f.q.as_deref().map(text::search_terms).unwrap_or_default();
    let run = |c: &mut Conn<'_>, count: bool| -> Result<(Vec<Household>, i64)> {
        with_conn!(c, |c| {
            let mut q = households::table
                .filter(households::deleted_at.is_null())
                .into_boxed();
            if let Some(ids) = &area_ids {
                q = q.filter(households::area_id.eq_any(ids));
            }
            if let Some(visited) = f.visited {
                let any_visit = visits::table
                    .filter(visits::household_id.eq(households::id))
                    .filter(
                        visits::campaign_id
                            .eq(f.campaign.unwrap_or(CampaignId(uuid::Uuid::nil())))
                            .or(f.campaign.is_none().into_sql::<diesel::sql_types::Bool>()),
                    );
                q = if visited {
                    q.filter(exists(any_visit))
                } else {
                    q.filter(not(exists(any_visit)))
                };
            }
            if let Some(p) = f.priority {
                q = q.filter(
                    households::id.eq_any(
                        members::table
                            .filter(members::priority.eq(p))
                            .filter(members::deleted_at.is_null())
                            .select(members::household_id),
                    ),
                );
            }
            if let (Some(status), Some(campaign)) = (f.adoption_status, f.campaign) {
                if status == AdoptionStatus::NotYet {
                    let decided = adoptions::table
                        .filter(adoptions::member_id.eq(members::id))
                        .filter(adoptions::campaign_id.eq(campaign))
                        .filter(adoptions::status.ne(AdoptionStatus::NotYet));
                    q = q.filter(
                        households::id.eq_any(
                            members::table
                                .filter(members::deleted_at.is_null())
                                .filter(not(exists(decided)))
                                .select(members::household_id),
                        ),
                    );
                } else {
                    q = q.filter(
                        households::id.eq_any(
                            adoptions::table
                                .inner_join(members::table)
                                .filter(members::deleted_at.is_null())
                                .filter(adoptions::campaign_id.eq(campaign))
                                .filter(adoptions::status.eq(status))
                                .select(adoptions::household_id),
                        ),
                    );
                }
            }
            for t in &terms {
                let pattern = text::like_pattern(t);
                q = q.filter(
                    households::search_key
                        .like(pattern.clone())
                        .escape('\\')
                        .or(households::id.eq_any(
                            members::table
                                .filter(members::deleted_at.is_null())
                                .filter(members::search_key.like(pattern).escape('\\'))
                                .select(members::household_id),
                        )),
                );
            }
            if count {
                Ok((Vec::new(), q.count().get_result(c)?))
            } else {
                let rows = q
                    .select(Household::as_select())
                    .order((households::address, households::head_name, households::id))
                    .limit(page.per_page)
                    .offset(page.offset())
                    .load(c)?;
                Ok((rows, 0))
            }
        })
    };
    let (rows, total) = super::page_and_total(conn, with_total, run)?;
    let ids: Vec<HouseholdId> = rows.iter().map(|h| h.id).collect();
    let counts: Vec<(HouseholdId, i64)> = with_conn!(conn, |c| members::table
        .filter(members::household_id.eq_any(&ids))
        .filter(members::deleted_at.is_null())
        .group_by(members::household_id)
        .select((members::household_id, diesel::dsl::count_star()))
        .load(c))?;
    let items = rows
        .into_iter()
        .map(|household| HouseholdItem {
            member_count: counts
                .iter()
                .find(|(id, _)| *id == household.id)
                .map_or(0, |(_, n)| *n),
            household,
        })
        .collect();
    Ok((items, total))
}

/// Bulk reads for sync pulls: the current rows of many households at once. A read of no ids
/// answers without a query (an empty pull is made of such reads).
pub mod bulk {
    use super::*;

    pub fn households(conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<Vec<Household>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(conn, |c| households::table
            .filter(households::id.eq_any(ids))
            .select(Household::as_select())
            .load(c))?)
    }

    /// Live households in the given villages (`None`: all), after `after` in id order.
    pub fn live_households_after(
        conn: &mut Conn<'_>,
        areas: Option<&[AreaId]>,
        after: Option<HouseholdId>,
        limit: i64,
    ) -> Result<Vec<Household>> {
        if let (Conn::Pg(c), Some(areas)) = (&mut *conn, areas) {
            if by_village(c, areas, limit)? {
                let ids = live_ids_by_village(c, areas, after, limit)?;
                let mut hs = households(conn, &ids)?;
                hs.sort_by_key(|h| h.id);
                return Ok(hs);
            }
        }
        Ok(with_conn!(conn, |c| {
            let mut q = households::table
                .filter(households::deleted_at.is_null())
                .into_boxed();
            if let Some(a) = areas {
                q = q.filter(households::area_id.eq_any(a));
            }
            if let Some(after) = after {
                q = q.filter(households::id.gt(after));
            }
            q.select(Household::as_select())
                .order(households::id)
                .limit(limit)
                .load(c)
        })?)
    }

    #[derive(QueryableByName)]
    struct Sizes {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        scope: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }

    /// Whether a page of `limit` households of the villages `areas` is read village by
    /// village (PostgreSQL). In id order over the whole table, PostgreSQL reads about
    /// `limit × total / scope` households to find `limit` of the scope; village by village,
    /// at most the scope's. Which is fewer follows from the scope's size, which the report
    /// tallies hold, and the table's, as PostgreSQL last counted it: a commune in a national
    /// database goes village by village, a province in id order. PostgreSQL cannot choose
    /// alone: its estimate of a scope is the average village, wrong for a commune whose
    /// register is still coming in among communes already full.
    fn by_village(c: &mut diesel::PgConnection, areas: &[AreaId], limit: i64) -> Result<bool> {
        let sizes: Sizes = diesel::sql_query(
            "SELECT (SELECT COALESCE(sum(households), 0) FROM tally_villages
                     WHERE area_id = ANY($1))::bigint AS scope,
                    (SELECT GREATEST(reltuples, 0) FROM pg_class
                     WHERE oid = 'households'::regclass)::bigint AS total",
        )
        .bind::<diesel::sql_types::Array<crate::db::sql::Uid>, _>(areas)
        .get_result(c)?;
        let scope = sizes.scope as f64;
        Ok(scope * scope < limit as f64 * sizes.total.max(sizes.scope) as f64)
    }

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = crate::db::sql::Uid)]
        id: HouseholdId,
    }

    /// The ids of the first `limit` live households after `after` in the villages `areas`,
    /// each village read in id order from the index `households_live_area`, then merged.
    fn live_ids_by_village(
        c: &mut diesel::PgConnection,
        areas: &[AreaId],
        after: Option<HouseholdId>,
        limit: i64,
    ) -> Result<Vec<HouseholdId>> {
        let after = after.unwrap_or(HouseholdId(uuid::Uuid::nil()));
        let ids: Vec<Id> = diesel::sql_query(
            "SELECT h.id FROM unnest($1) AS a (area_id)
             CROSS JOIN LATERAL (
                 SELECT id FROM households
                 WHERE households.area_id = a.area_id AND deleted_at IS NULL AND id > $2
                 ORDER BY id LIMIT $3) h
             ORDER BY h.id LIMIT $3",
        )
        .bind::<diesel::sql_types::Array<crate::db::sql::Uid>, _>(areas)
        .bind::<crate::db::sql::Uid, _>(after)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load(c)?;
        Ok(ids.into_iter().map(|r| r.id).collect())
    }

    /// Every household of the villages `areas`, deleted ones included, with its live
    /// members, in batches of villages.
    pub fn whole_in_areas(
        conn: &mut Conn<'_>,
        areas: &[AreaId],
    ) -> Result<Vec<(Household, Vec<Member>)>> {
        let mut hs: Vec<Household> = Vec::new();
        for chunk in areas.chunks(500) {
            hs.extend(with_conn!(conn, |c| households::table
                .filter(households::area_id.eq_any(chunk))
                .select(Household::as_select())
                .order(households::id)
                .load(c))?);
        }
        let ids: Vec<HouseholdId> = hs.iter().map(|h| h.id).collect();
        let mut members: HashMap<HouseholdId, Vec<Member>> = HashMap::new();
        for chunk in ids.chunks(5000) {
            for m in members_of(conn, chunk)? {
                members.entry(m.household_id).or_default().push(m);
            }
        }
        Ok(hs
            .into_iter()
            .map(|h| {
                let ms = members.remove(&h.id).unwrap_or_default();
                (h, ms)
            })
            .collect())
    }

    pub fn members(conn: &mut Conn<'_>, ids: &[MemberId]) -> Result<Vec<Member>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(conn, |c| members::table
            .filter(members::id.eq_any(ids))
            .select(Member::as_select())
            .load(c))?)
    }

    pub fn members_of(conn: &mut Conn<'_>, households: &[HouseholdId]) -> Result<Vec<Member>> {
        if households.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(conn, |c| members::table
            .filter(members::household_id.eq_any(households))
            .filter(members::deleted_at.is_null())
            .select(Member::as_select())
            .order(members::id)
            .load(c))?)
    }

    pub fn adoptions_of_members(conn: &mut Conn<'_>, ids: &[MemberId]) -> Result<Vec<Adoption>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(conn, |c| adoptions::table
            .filter(adoptions::member_id.eq_any(ids))
            .select(Adoption::as_select())
            .order((adoptions::member_id, adoptions::campaign_id))
            .load(c))?)
    }

    pub fn visits(conn: &mut Conn<'_>, ids: &[VisitId]) -> Result<Vec<Visit>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(conn, |c| visits::table
            .filter(visits::id.eq_any(ids))
            .select(Visit::as_select())
            .load(c))?)
    }

    pub fn visits_of(conn: &mut Conn<'_>, households: &[HouseholdId]) -> Result<Vec<Visit>> {
        if households.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(conn, |c| visits::table
            .filter(visits::household_id.eq_any(households))
            .select(Visit::as_select())
            .order(visits::id)
            .load(c))?)
    }
}
