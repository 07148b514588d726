//! Applies a conversion table (the July 2025 reorganization) to the area tree in one
//! transaction: the old provinces it names, with their districts and communes, are retired on
//! the effective day; the new provinces and communes take effect that day, linked from the
//! areas they replace (whole, part or rename); villages of communes that went whole move
//! under their new commune, keeping their ids and so their households; villages of split
//! communes wait for a person to place them; assignments follow an area that went whole.
//! A table is applied once (its digest is kept); a dry run does everything and rolls back.

use super::areas::{self, Area, AreaRef};
use super::error::{Error, Result};
use super::map;
use crate::db::schema::{
    area_links, areas as areas_t, households, reorganizations, user_areas, users,
    village_candidates,
};
use crate::db::Conn;
use crate::domain::vocabulary::AreaLevel;
use crate::domain::{AreaId, Time, UserId};
use crate::importer::reorganization::Row;
use crate::with_conn;
use chrono::NaiveDate;
use diesel::dsl::count_star;
use diesel::prelude::*;
use plan::{CurrentMap, Plan};
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod applied;
mod follow;
mod plan;
mod report;
use applied::retired_targets;
pub use applied::{list, targets_to_set, Applied};
pub use report::{
    AssignmentToDecide, LinkCounts, NameVariant, ProvinceMismatch, Report, Retired, TargetToSet,
    Unmatched, VillageRenamed,
};

/// How a table is applied.
pub struct Options {
    pub effective: NaiveDate,
    pub dry_run: bool,
    /// Apply even though some rows name an old code the current map does not have (those
    /// rows are left out and listed); without it such rows refuse the whole table.
    pub accept_unmatched: bool,
    /// Where the table came from, as the operator named it.
    pub source: String,
    pub by: Option<UserId>,
}

/// The table's identity: its rows (not their lines) and the effective day.
pub fn digest(rows: &[Row], effective: NaiveDate) -> String {
    let mut h = Sha256::new();
    h.update(effective.to_string());
    for r in rows {
        for f in [
            &r.province_code,
            &r.commune_code,
            &r.commune_name,
            r.old_code.as_deref().unwrap_or(""),
            &r.old_name,
            r.old_district_code.as_deref().unwrap_or(""),
            &r.note,
        ] {
            h.update(b"\x1f");
            h.update(f.as_bytes());
        }
        h.update(b"\x1e");
    }
    hex::encode(h.finalize())
}

/// Applies the table, or with `dry_run` works out what it would do and writes nothing.
pub fn reorganize(conn: &mut Conn<'_>, rows: &[Row], o: &Options) -> Result<Report> {
    let digest = digest(rows, o.effective);
    let done: Option<(Uuid, Time)> = with_conn!(conn, |c| reorganizations::table
        .filter(reorganizations::digest.eq(&digest))
        .select((reorganizations::id, reorganizations::applied_at))
        .first::<(AreaId, Time)>(c)
        .optional())?
    .map(|(id, at)| (id.0, at));
    if let Some((id, at)) = done {
        return Ok(Report {
            effective: Some(o.effective),
            dry_run: o.dry_run,
            already_applied_at: Some(at),
            reorganization_id: Some(id),
            rows: rows.len(),
            ..Default::default()
        });
    }
    let other: i64 = with_conn!(conn, |c| reorganizations::table
        .filter(reorganizations::effective.eq(o.effective))
        .select(count_star())
        .first(c))?;
    if other > 0 {
        return Err(Error::conflict(
            "reorganized",
            format!(
                "a different conversion table effective {} was already applied",
                o.effective
            ),
        ));
    }
    let mut dry = None;
    let res = conn.savepoint(|c| {
        let r = apply(c, rows, o, &digest)?;
        if o.dry_run {
            dry = Some(r);
            Err(Error::Database(diesel::result::Error::RollbackTransaction))
        } else {
            Ok(r)
        }
    });
    match (res, dry) {
        (Err(Error::Database(diesel::result::Error::RollbackTransaction)), Some(r)) => Ok(r),
        (res, _) => res,
    }
}

/// Applies the table in the caller's transaction, phase by phase: the plan, made from the
/// current map alone (`Plan::make`), then the reorganization's record, the retired areas, the
/// new ones, their links, the villages, the assignments and targets, and the report.
fn apply(conn: &mut Conn<'_>, rows: &[Row], o: &Options, digest: &str) -> Result<Report> {
    let now = Time::now();
    let current = current_map(conn)?;
    let map = CurrentMap::new(&current);
    let mut plan = Plan::make(rows, &map, o)?;
    let reorganization = record(conn, o, digest, now)?;
    plan.report.reorganization_id = Some(reorganization.0);
    // Retire first: a new area may take the code of one it replaces.
    retire(conn, &plan, o, now)?;
    areas::insert_areas(conn, &plan.fresh, now)?;
    link(conn, &plan, reorganization, now)?;
    place_villages(conn, &mut plan, &map, o, reorganization, now)?;
    follow_assignments(conn, &mut plan, &map)?;
    list_targets(conn, &mut plan, &map)?;
    let stored = serde_json::to_string(&plan.report).map_err(Error::corrupt)?;
    with_conn!(conn, |c| diesel::update(
        reorganizations::table.find(reorganization)
    )
    .set(reorganizations::report.eq(stored))
    .execute(c))?;
    Ok(plan.report)
}

/// The current provinces, districts and communes.
fn current_map(conn: &mut Conn<'_>) -> Result<Vec<Area>> {
    Ok(with_conn!(conn, |c| areas_t::table
        .filter(areas_t::retired_at.is_null())
        .filter(areas_t::level.ne(AreaLevel::Village.as_str()))
        .select(Area::as_select())
        .load(c))?)
}

/// Records the reorganization (its report is filled in last); answers its id.
fn record(conn: &mut Conn<'_>, o: &Options, digest: &str, now: Time) -> Result<AreaId> {
    let id = AreaId::random();
    with_conn!(conn, |c| diesel::insert_into(reorganizations::table)
        .values((
            reorganizations::id.eq(id),
            reorganizations::effective.eq(o.effective),
            reorganizations::digest.eq(digest),
            reorganizations::source.eq(&o.source),
            reorganizations::report.eq("{}"),
            reorganizations::applied_by.eq(o.by),
            reorganizations::applied_at.eq(now),
        ))
        .execute(c))?;
    Ok(id)
}

/// Ends every area of the old map of the named provinces on the day.
fn retire(conn: &mut Conn<'_>, plan: &Plan<'_>, o: &Options, now: Time) -> Result<()> {
    let ids: Vec<AreaId> = plan.retired.iter().map(|a| a.id).collect();
    for chunk in ids.chunks(5000) {
        with_conn!(conn, |c| diesel::update(
            areas_t::table.filter(areas_t::id.eq_any(chunk))
        )
        .set((
            areas_t::retired_at.eq(now),
            areas_t::valid_to.eq(o.effective),
            areas_t::updated_at.eq(now),
        ))
        .execute(c))?;
    }
    Ok(())
}

/// Writes the links and each whole successor.
fn link(conn: &mut Conn<'_>, plan: &Plan<'_>, reorganization: AreaId, now: Time) -> Result<()> {
    let rows: Vec<_> = plan
        .links
        .iter()
        .map(|l| {
            (
                area_links::from_id.eq(l.from),
                area_links::to_id.eq(l.to),
                area_links::kind.eq(l.kind),
                area_links::note.eq(&l.note),
                area_links::reorganization_id.eq(reorganization),
            )
        })
        .collect();
    for chunk in rows.chunks(1000) {
        with_conn!(conn, |c| diesel::insert_into(area_links::table)
            .values(chunk)
            .execute(c))?;
    }
    let sets: Vec<(AreaId, Vec<map::Set>)> = plan
        .successor
        .iter()
        .map(|(from, to)| (*from, vec![map::Set::Id(*to)]))
        .collect();
    map::update_many(conn, &["successor_id"], &sets, now)
}

/// Moves the villages of communes that went whole, lists the others with their candidate
/// communes, and counts the households of each.
fn place_villages(
    conn: &mut Conn<'_>,
    plan: &mut Plan<'_>,
    current: &CurrentMap<'_>,
    o: &Options,
    reorganization: AreaId,
    now: Time,
) -> Result<()> {
    let mut villages: Vec<Area> = Vec::new();
    for chunk in plan.retired_communes().chunks(5000) {
        villages.extend(with_conn!(conn, |c| areas_t::table
            .filter(areas_t::parent_id.eq_any(chunk))
            .filter(areas_t::level.eq(AreaLevel::Village.as_str()))
            .filter(areas_t::retired_at.is_null())
            .select(Area::as_select())
            .order((areas_t::path, areas_t::name))
            .load(c))?);
    }
    let placed = follow::place_villages(plan, current, &villages, o);
    let report = &mut plan.report;
    report.villages_renamed = placed.renamed;
    report.villages_moved = placed.moves.len();
    report.villages_pending = placed.pending.len();
    map::move_villages(conn, &placed.moves, o.by, now)?;
    let candidates: Vec<_> = placed
        .candidates
        .iter()
        .map(|(village, commune)| {
            (
                village_candidates::village_id.eq(*village),
                village_candidates::commune_id.eq(*commune),
                village_candidates::reorganization_id.eq(reorganization),
            )
        })
        .collect();
    for chunk in candidates.chunks(1000) {
        with_conn!(conn, |c| diesel::insert_into(village_candidates::table)
            .values(chunk)
            .execute(c))?;
    }
    let homes: Vec<(AreaId, i64)> = with_conn!(conn, |c| households::table
        .filter(households::deleted_at.is_null())
        .group_by(households::area_id)
        .select((households::area_id, count_star()))
        .load(c))?;
    for (area, n) in homes {
        if placed.moved.contains(&area) {
            report.households_moved += n;
        } else if placed.pending.contains(&area) {
            report.households_pending += n;
        }
    }
    Ok(())
}

/// Moves the assignments to areas that went whole to their successors; lists the others.
fn follow_assignments(
    conn: &mut Conn<'_>,
    plan: &mut Plan<'_>,
    current: &CurrentMap<'_>,
) -> Result<()> {
    let assigned: Vec<follow::Assignment> = with_conn!(conn, |c| user_areas::table
        .inner_join(users::table)
        .select((user_areas::user_id, user_areas::area_id, users::username))
        .order((users::username, user_areas::area_id))
        .load::<(UserId, AreaId, String)>(c))?
    .into_iter()
    .map(|(user, area, username)| follow::Assignment {
        user,
        area,
        username,
    })
    .collect();
    let following = follow::follow_assignments(plan, current, &assigned);
    for (user, area) in &following.removed {
        with_conn!(conn, |c| diesel::delete(
            user_areas::table
                .filter(user_areas::user_id.eq(*user))
                .filter(user_areas::area_id.eq(*area))
        )
        .execute(c))?;
    }
    for (user, area) in &following.added {
        with_conn!(conn, |c| diesel::insert_into(user_areas::table)
            .values((user_areas::user_id.eq(*user), user_areas::area_id.eq(*area)))
            .execute(c))?;
    }
    plan.report.assignments_followed = following.followed;
    plan.report.assignments_to_decide = following.to_decide;
    Ok(())
}

/// Lists the targets set on retired areas, for the new areas' supervisors to set again.
fn list_targets(conn: &mut Conn<'_>, plan: &mut Plan<'_>, current: &CurrentMap<'_>) -> Result<()> {
    for (campaign, name, area, kind, value) in retired_targets(conn)? {
        if plan.retired_ids.contains(&area) {
            let successors = plan.successor_refs(&area);
            plan.report.targets_to_set.push(TargetToSet {
                campaign_id: campaign,
                campaign_name: name,
                area: AreaRef::of(current.by_id[&area]),
                kind,
                value,
                successors,
            });
        }
    }
    Ok(())
}
