//! Applies a conversion table (the July 2025 reorganization) to the unit tree in one
//! transaction: the old provinces it names, with their districts and communes, are retired on
//! the effective day; the new provinces and communes take effect that day, linked from the
//! units they replace (whole, part or rename); villages of communes that went whole move
//! under their new commune, keeping their ids and so their households; villages of split
//! communes wait for a person to place them; assignments follow a unit that went whole.
//! A table is applied once (its digest is kept); a dry run does everything and rolls back.

use super::areas::{self, Area, UnitRef};
use super::error::{Error, Result};
use super::map;
use crate::db::schema::{
    area_links, areas as areas_t, households, reorganizations, user_areas, users,
    village_candidates,
};
use crate::db::Conn;
use crate::domain::{text, AreaId, Time, UserId};
use crate::importer::reorganization::{Link, Row, Whole};
use crate::with_conn;
use chrono::NaiveDate;
use diesel::dsl::count_star;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

mod applied;
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

/// The kind of link a row's note makes.
fn link_kind(l: Link) -> &'static str {
    match l {
        Link::Whole(Whole::Renamed | Whole::Retyped) => "rename",
        Link::Whole(_) => "whole",
        Link::Part(_) => "part",
    }
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

/// A current unit of the old map, as the applier needs it.
struct Old<'a> {
    area: &'a Area,
    province: AreaId,
}

fn refused(line: u64, code: &'static str, message: String) -> Error {
    Error::unreadable(code, format!("line {line}: {message}"))
}

fn kind_of(name: &str, kinds: &[&str]) -> Option<String> {
    kinds
        .iter()
        .find(|k| name.starts_with(&format!("{k} ")))
        .map(|k| k.to_string())
}

fn apply(conn: &mut Conn<'_>, rows: &[Row], o: &Options, digest: &str) -> Result<Report> {
    let now = Time::now();
    let mut report = Report {
        effective: Some(o.effective),
        dry_run: o.dry_run,
        changed: !o.dry_run,
        rows: rows.len(),
        ..Default::default()
    };
    let current: Vec<Area> = with_conn!(conn, |c| areas_t::table
        .filter(areas_t::retired_at.is_null())
        .filter(areas_t::level.ne("village"))
        .select(Area::as_select())
        .load(c))?;
    let by_id: HashMap<AreaId, &Area> = current.iter().map(|a| (a.id, a)).collect();
    let by_code: HashMap<(&str, &str), &Area> = current
        .iter()
        .filter_map(|a| Some(((a.level.as_str(), a.code.as_deref()?), a)))
        .collect();
    let province_of = |a: &Area| -> Option<AreaId> {
        a.path
            .split('/')
            .find(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .map(AreaId)
    };
    let old = |level: &str, code: &str| -> Option<Old<'_>> {
        let area = *by_code.get(&(level, code))?;
        Some(Old {
            area,
            province: province_of(area)?,
        })
    };

    // Read every row against the current map before writing anything.
    let mut new_provinces: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    let mut new_communes: BTreeMap<&str, (&str, &str, u64)> = BTreeMap::new();
    // Old unit id -> new commune code -> kinds of link the rows give.
    let mut links: BTreeMap<AreaId, BTreeMap<&str, BTreeSet<&'static str>>> = BTreeMap::new();
    let mut touched_provinces: BTreeSet<AreaId> = BTreeSet::new();
    let mut named: HashSet<AreaId> = HashSet::new();
    for r in rows {
        match new_provinces.get(r.province_code.as_str()) {
            Some((name, line)) if *name != r.province_name => {
                return Err(refused(
                    r.line,
                    "inconsistent_table",
                    format!(
                        "new province {} is named `{}` here but `{name}` on line {line}",
                        r.province_code, r.province_name
                    ),
                ))
            }
            Some(_) => {}
            None => {
                new_provinces.insert(&r.province_code, (&r.province_name, r.line));
            }
        }
        match new_communes.get(r.commune_code.as_str()) {
            // The same name spelled with its tone mark elsewhere ("Thuỵ", "Thụy"): the first
            // spelling is kept, the variant listed.
            Some((name, province, line))
                if *name != r.commune_name
                    && *province == r.province_code
                    && text::fold(name) == text::fold(&r.commune_name) =>
            {
                report.name_variants.push(NameVariant {
                    line: r.line,
                    code: r.commune_code.clone(),
                    name: r.commune_name.clone(),
                    kept: name.to_string(),
                    kept_line: *line,
                });
            }
            Some((name, province, line)) if *name != r.commune_name || *province != r.province_code => {
                return Err(refused(
                    r.line,
                    "inconsistent_table",
                    format!(
                        "new commune {} is `{}` of province {} here but `{name}` of {province} on line {line}",
                        r.commune_code, r.commune_name, r.province_code
                    ),
                ))
            }
            Some(_) => {}
            None => {
                new_communes.insert(&r.commune_code, (&r.commune_name, &r.province_code, r.line));
            }
        }
        let Some(pcode) = r.old_province_code.as_deref() else {
            return Err(refused(
                r.line,
                "unknown_province",
                format!("old province `{}` has no (code)", r.old_province),
            ));
        };
        if old("province", pcode).is_none() {
            return Err(refused(
                r.line,
                "unknown_province",
                format!(
                    "old province `{}` is not a province of the current map",
                    r.old_province
                ),
            ));
        }
        let unit = match (&r.old_code, &r.old_district_code, r.link) {
            (Some(code), _, _) => old("commune", code),
            (None, Some(d), Link::Whole(Whole::SpecialZone)) => old("district", d),
            (None, _, _) => {
                report.without_code.push(Unmatched {
                    line: r.line,
                    old_code: None,
                    old_name: r.old_name.clone(),
                    new_code: r.commune_code.clone(),
                });
                continue;
            }
        };
        let Some(unit) = unit else {
            report.unmatched.push(Unmatched {
                line: r.line,
                old_code: r.old_code.clone().or(r.old_district_code.clone()),
                old_name: r.old_name.clone(),
                new_code: r.commune_code.clone(),
            });
            continue;
        };
        let tree = by_id[&unit.province];
        if tree.code.as_deref() != Some(pcode) {
            report.province_mismatches.push(ProvinceMismatch {
                line: r.line,
                cell: r.old_province.clone(),
                tree: UnitRef::of(tree),
            });
        }
        touched_provinces.insert(unit.province);
        named.insert(unit.area.id);
        links
            .entry(unit.area.id)
            .or_default()
            .entry(&r.commune_code)
            .or_default()
            .insert(link_kind(r.link));
    }
    if !report.unmatched.is_empty() && !o.accept_unmatched {
        let first = &report.unmatched[0];
        let lines: Vec<String> = report
            .unmatched
            .iter()
            .take(20)
            .map(|u| u.line.to_string())
            .collect();
        return Err(refused(
            first.line,
            "unmatched_codes",
            format!(
                "old code {} ({}) names no unit of the current map; {} rows do so (lines {}{}). \
                 Check that the list of the old map is imported, or accept them (--accept-unmatched, \
                 accept_unmatched=true) to apply the table without those rows",
                first.old_code.as_deref().unwrap_or("-"),
                first.old_name,
                report.unmatched.len(),
                lines.join(", "),
                if report.unmatched.len() > 20 { ", …" } else { "" }
            ),
        ));
    }

    // The old map of the provinces the table names: every unit under them ends on the day.
    let retired: Vec<&Area> = current
        .iter()
        .filter(|a| province_of(a).is_some_and(|p| touched_provinces.contains(&p)))
        .collect();
    let retired_ids: HashSet<AreaId> = retired.iter().map(|a| a.id).collect();
    for a in &retired {
        match a.level.as_str() {
            "province" => report.retired.provinces += 1,
            "district" => report.retired.districts += 1,
            _ => report.retired.communes += 1,
        }
    }
    report.provinces_kept = current
        .iter()
        .filter(|a| a.level == "province" && !retired_ids.contains(&a.id))
        .map(UnitRef::of)
        .collect();
    report.not_in_table = retired
        .iter()
        .filter(|a| a.level == "commune" && !named.contains(&a.id))
        .map(|a| UnitRef::of(a))
        .collect();
    // A new code must not be a code of a unit that stays.
    for (code, (_, line)) in &new_provinces {
        if by_code
            .get(&("province", *code))
            .is_some_and(|a| !retired_ids.contains(&a.id))
        {
            return Err(refused(
                *line,
                "code_taken",
                format!(
                    "new province code {code} is the code of a province the table does not retire"
                ),
            ));
        }
    }
    for (code, (name, _, line)) in &new_communes {
        match by_code.get(&("commune", *code)) {
            Some(a) if !retired_ids.contains(&a.id) => {
                return Err(refused(
                    *line,
                    "code_taken",
                    format!(
                    "new commune code {code} is the code of a commune the table does not retire"
                ),
                ))
            }
            Some(a) if a.name != *name => report.codes_reused += 1,
            _ => {}
        }
    }

    let reorganization = AreaId::random();
    with_conn!(conn, |c| diesel::insert_into(reorganizations::table)
        .values((
            reorganizations::id.eq(reorganization),
            reorganizations::effective.eq(o.effective),
            reorganizations::digest.eq(digest),
            reorganizations::source.eq(&o.source),
            reorganizations::report.eq("{}"),
            reorganizations::applied_by.eq(o.by),
            reorganizations::applied_at.eq(now),
        ))
        .execute(c))?;
    report.reorganization_id = Some(reorganization.0);

    // Retire first: a new unit may take the code of one it replaces.
    let ids: Vec<AreaId> = retired.iter().map(|a| a.id).collect();
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

    // The new map.
    let mut province_ids: HashMap<&str, (AreaId, String)> = HashMap::new();
    let mut fresh: Vec<areas::NewUnit> = Vec::new();
    for (code, (name, _)) in &new_provinces {
        let id = AreaId::random();
        let path = format!("/{id}/");
        province_ids.insert(code, (id, path.clone()));
        fresh.push(areas::NewUnit {
            id,
            code: Some(code.to_string()),
            name: name.to_string(),
            level: "province",
            kind: kind_of(name, &["Thành phố", "Tỉnh"]),
            parent_id: None,
            path,
            valid_from: Some(o.effective),
        });
    }
    let mut commune_ids: HashMap<&str, (AreaId, String)> = HashMap::new();
    for (code, (name, province, _)) in &new_communes {
        let id = AreaId::random();
        let (pid, ppath) = &province_ids[province];
        let path = format!("{ppath}{id}/");
        commune_ids.insert(code, (id, path.clone()));
        fresh.push(areas::NewUnit {
            id,
            code: Some(code.to_string()),
            name: name.to_string(),
            level: "commune",
            kind: kind_of(name, &["Phường", "Xã", "Đặc khu", "Thị trấn"]),
            parent_id: Some(*pid),
            path,
            valid_from: Some(o.effective),
        });
    }
    report.provinces_created = new_provinces.len();
    report.communes_created = new_communes.len();
    areas::insert_units(conn, &fresh, now)?;

    // Links. A commune named by several rows going to one new commune went whole only if
    // every row says so; one going to several went in parts.
    let mut out: BTreeMap<AreaId, BTreeMap<AreaId, &'static str>> = BTreeMap::new();
    for (from, into) in &links {
        let split = into.len() > 1;
        for (code, kinds) in into {
            let kind = if split || kinds.contains("part") {
                "part"
            } else if kinds.contains("rename") {
                "rename"
            } else {
                "whole"
            };
            out.entry(*from)
                .or_default()
                .insert(commune_ids[code].0, kind);
        }
    }
    // A district or province goes to what its communes went to: whole if all of it went
    // whole into one unit.
    let parent_of = |a: &Area| a.parent_id;
    let mut up: BTreeMap<AreaId, (BTreeSet<AreaId>, bool)> = BTreeMap::new();
    for a in retired.iter().filter(|a| a.level == "commune") {
        let Some(district) = parent_of(a) else {
            continue;
        };
        let e = up.entry(district).or_insert((BTreeSet::new(), true));
        match out.get(&a.id) {
            Some(to) => {
                e.0.extend(to.keys());
                e.1 &= to.len() == 1 && to.values().all(|k| *k != "part");
            }
            None => e.1 = false,
        }
    }
    for (district, (to, whole)) in up {
        if out.contains_key(&district) {
            continue; // a special zone: linked by its own row
        }
        if to.is_empty() {
            continue;
        }
        let kind = if whole && to.len() == 1 {
            "whole"
        } else {
            "part"
        };
        out.insert(district, to.into_iter().map(|t| (t, kind)).collect());
    }
    let province_of_new: HashMap<AreaId, AreaId> = fresh
        .iter()
        .filter(|u| u.level == "commune")
        .filter_map(|u| Some((u.id, u.parent_id?)))
        .collect();
    let mut provinces_to: BTreeMap<AreaId, BTreeSet<AreaId>> = BTreeMap::new();
    for (from, to) in &out {
        let Some(a) = by_id.get(from) else { continue };
        if let Some(p) = province_of(a) {
            provinces_to
                .entry(p)
                .or_default()
                .extend(to.keys().filter_map(|c| province_of_new.get(c)));
        }
    }
    for (p, to) in provinces_to {
        let kind = if to.len() == 1 { "whole" } else { "part" };
        out.insert(p, to.into_iter().map(|t| (t, kind)).collect());
    }
    let note_of: HashMap<(AreaId, AreaId), String> = rows
        .iter()
        .filter_map(|r| {
            let from = match (&r.old_code, &r.old_district_code) {
                (Some(c), _) => by_code.get(&("commune", c.as_str()))?.id,
                (None, Some(d)) => by_code.get(&("district", d.as_str()))?.id,
                _ => return None,
            };
            Some((
                (from, commune_ids.get(r.commune_code.as_str())?.0),
                r.note.clone(),
            ))
        })
        .collect();
    let mut link_rows = Vec::new();
    let mut successors: Vec<(AreaId, AreaId)> = Vec::new();
    for (from, to) in &out {
        for (t, kind) in to {
            match *kind {
                "whole" => report.links.whole += 1,
                "rename" => report.links.rename += 1,
                _ => report.links.part += 1,
            }
            link_rows.push((
                area_links::from_id.eq(*from),
                area_links::to_id.eq(*t),
                area_links::kind.eq(*kind),
                area_links::note.eq(note_of.get(&(*from, *t)).cloned().unwrap_or_default()),
                area_links::reorganization_id.eq(reorganization),
            ));
        }
        if let [(t, kind)] = to.iter().collect::<Vec<_>>()[..] {
            if *kind != "part" {
                successors.push((*from, *t));
            }
        }
    }
    for chunk in link_rows.chunks(1000) {
        with_conn!(conn, |c| diesel::insert_into(area_links::table)
            .values(chunk)
            .execute(c))?;
    }
    let sets: Vec<(AreaId, Vec<map::Set>)> = successors
        .iter()
        .map(|(from, to)| (*from, vec![map::Set::Id(*to)]))
        .collect();
    map::update_many(conn, &["successor_id"], &sets, now)?;
    let successor: HashMap<AreaId, AreaId> = successors.into_iter().collect();
    let new_by_id: HashMap<AreaId, &areas::NewUnit> = fresh.iter().map(|u| (u.id, u)).collect();

    // Villages follow their commune, or wait.
    let communes: Vec<AreaId> = retired
        .iter()
        .filter(|a| a.level == "commune")
        .map(|a| a.id)
        .collect();
    let mut villages: Vec<Area> = Vec::new();
    for chunk in communes.chunks(5000) {
        villages.extend(with_conn!(conn, |c| areas_t::table
            .filter(areas_t::parent_id.eq_any(chunk))
            .filter(areas_t::level.eq("village"))
            .filter(areas_t::retired_at.is_null())
            .select(Area::as_select())
            .order((areas_t::path, areas_t::name))
            .load(c))?);
    }
    // Each village with its old commune and where that went whole, if it did (a commune the
    // table does not name goes where its district went whole). Where two villages of one
    // name meet, the one of the commune that gave the new commune its code keeps the name,
    // then the one of the lowest old code: the same outcome on every run.
    let mut placed: Vec<(&Area, &Area, Option<AreaId>)> = villages
        .iter()
        .filter_map(|v| {
            let commune = *by_id.get(&v.parent_id?)?;
            let district = commune.parent_id;
            let target = successor.get(&commune.id).copied().or_else(|| {
                (!out.contains_key(&commune.id))
                    .then(|| district.and_then(|d| successor.get(&d).copied()))
                    .flatten()
            });
            Some((v, commune, target))
        })
        .collect();
    placed.sort_by_key(|(v, commune, target)| {
        let gave_code =
            target.and_then(|t| new_by_id.get(&t)).map(|t| &t.code) == Some(&commune.code);
        (!gave_code, commune.code.clone(), v.name.clone(), v.id)
    });
    let mut taken: HashSet<(AreaId, String)> = HashSet::new();
    let mut moves = Vec::new();
    let mut candidates = Vec::new();
    let mut moved: HashSet<AreaId> = HashSet::new();
    let mut pending: HashSet<AreaId> = HashSet::new();
    for (v, commune, target) in placed {
        let district = commune.parent_id;
        match target {
            Some(to) => {
                let to = new_by_id[&to];
                let mut name = v.name.clone();
                if taken.contains(&(to.id, name.clone())) {
                    name = format!("{} ({})", v.name, areas::bare_name(&commune.name));
                    let mut n = 2;
                    while taken.contains(&(to.id, name.clone())) {
                        name = format!("{} ({}) {n}", v.name, areas::bare_name(&commune.name));
                        n += 1;
                    }
                    report.villages_renamed.push(VillageRenamed {
                        village_id: v.id,
                        from: v.name.clone(),
                        to: name.clone(),
                        commune: UnitRef {
                            id: to.id,
                            code: to.code.clone(),
                            name: to.name.clone(),
                            level: to.level.to_string(),
                        },
                    });
                }
                taken.insert((to.id, name.clone()));
                moves.push(map::Move {
                    village: v.clone(),
                    to: to.id,
                    to_path: to.path.clone(),
                    name,
                    effective: o.effective,
                });
                moved.insert(v.id);
            }
            None => {
                let from_commune = out.get(&commune.id);
                let from_district = district.and_then(|d| out.get(&d));
                for to in from_commune
                    .or(from_district)
                    .into_iter()
                    .flat_map(|m| m.keys())
                {
                    candidates.push((
                        village_candidates::village_id.eq(v.id),
                        village_candidates::commune_id.eq(*to),
                        village_candidates::reorganization_id.eq(reorganization),
                    ));
                }
                pending.insert(v.id);
            }
        }
    }
    report.villages_moved = moves.len();
    report.villages_pending = pending.len();
    map::move_villages(conn, &moves, o.by, now)?;
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
        if moved.contains(&area) {
            report.households_moved += n;
        } else if pending.contains(&area) {
            report.households_pending += n;
        }
    }

    // Assignments and targets of retired units.
    let refs = |ids: Option<&BTreeMap<AreaId, &'static str>>| -> Vec<UnitRef> {
        ids.into_iter()
            .flat_map(|m| m.keys())
            .filter_map(|id| new_by_id.get(id))
            .map(|u| UnitRef {
                id: u.id,
                code: u.code.clone(),
                name: u.name.clone(),
                level: u.level.to_string(),
            })
            .collect()
    };
    let assigned: Vec<(UserId, AreaId, String)> = with_conn!(conn, |c| user_areas::table
        .inner_join(users::table)
        .select((user_areas::user_id, user_areas::area_id, users::username))
        .order((users::username, user_areas::area_id))
        .load(c))?;
    let mut has: HashSet<(UserId, AreaId)> = assigned.iter().map(|(u, a, _)| (*u, *a)).collect();
    for (user, area, username) in &assigned {
        if !retired_ids.contains(area) {
            continue;
        }
        match successor.get(area) {
            Some(to) => {
                with_conn!(conn, |c| diesel::delete(
                    user_areas::table
                        .filter(user_areas::user_id.eq(*user))
                        .filter(user_areas::area_id.eq(*area))
                )
                .execute(c))?;
                // Two of the user's units may have gone into one.
                if has.insert((*user, *to)) {
                    with_conn!(conn, |c| diesel::insert_into(user_areas::table)
                        .values((user_areas::user_id.eq(*user), user_areas::area_id.eq(*to)))
                        .execute(c))?;
                }
                report.assignments_followed += 1;
            }
            None => report.assignments_to_decide.push(AssignmentToDecide {
                user_id: *user,
                username: username.clone(),
                area: UnitRef::of(by_id[area]),
                successors: refs(out.get(area)),
            }),
        }
    }
    for (campaign, name, area, kind, value) in retired_targets(conn)? {
        if retired_ids.contains(&area) {
            report.targets_to_set.push(TargetToSet {
                campaign_id: campaign,
                campaign_name: name,
                area: UnitRef::of(by_id[&area]),
                kind,
                value,
                successors: refs(out.get(&area)),
            });
        }
    }
    let stored = serde_json::to_string(&report).map_err(Error::corrupt)?;
    with_conn!(conn, |c| diesel::update(
        reorganizations::table.find(reorganization)
    )
    .set(reorganizations::report.eq(stored))
    .execute(c))?;
    Ok(report)
}
