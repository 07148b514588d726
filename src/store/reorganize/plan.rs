//! What applying a conversion table does, worked out without the database: the rows read
//! against the current map (`Plan::make`: the new units, the retired ones, the links and
//! the successors), the villages' places (`place_villages`) and the assignments that
//! follow (`follow_assignments`). `apply` (in `mod.rs`) loads what these read and writes
//! what they decide, phase by phase.

use super::report::{
    AssignmentToDecide, NameVariant, ProvinceMismatch, Report, Unmatched, VillageRenamed,
};
use super::Options;
use crate::domain::vocabulary::AreaLevel;
use crate::domain::{text, AreaId, UserId};
use crate::importer::reorganization::{Link, Row, Whole};
use crate::store::areas::{self, Area, NewUnit, UnitRef};
use crate::store::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The kinds of link from a retired unit to a successor.
pub const WHOLE: &str = "whole";
pub const RENAME: &str = "rename";
pub const PART: &str = "part";

/// The kind of link a row's note makes.
fn link_kind(l: Link) -> &'static str {
    match l {
        Link::Whole(Whole::Renamed | Whole::Retyped) => RENAME,
        Link::Whole(_) => WHOLE,
        Link::Part(_) => PART,
    }
}

pub(super) fn refused(line: u64, code: &'static str, message: String) -> Error {
    Error::unreadable(code, format!("line {line}: {message}"))
}

fn kind_of(name: &str, kinds: &[&str]) -> Option<String> {
    kinds
        .iter()
        .find(|k| name.starts_with(&format!("{k} ")))
        .map(|k| k.to_string())
}

/// The current map's provinces, districts and communes, found by id and by (level, code).
pub struct CurrentMap<'a> {
    pub units: &'a [Area],
    pub by_id: HashMap<AreaId, &'a Area>,
    by_code: HashMap<(&'a str, &'a str), &'a Area>,
}

impl<'a> CurrentMap<'a> {
    pub fn new(units: &'a [Area]) -> CurrentMap<'a> {
        CurrentMap {
            units,
            by_id: units.iter().map(|a| (a.id, a)).collect(),
            by_code: units
                .iter()
                .filter_map(|a| Some(((a.level.as_str(), a.code.as_deref()?), a)))
                .collect(),
        }
    }

    /// The current unit of a level with a code.
    fn by_code(&self, level: AreaLevel, code: &str) -> Option<&'a Area> {
        self.by_code.get(&(level.as_str(), code)).copied()
    }

    /// The unit's province: the first id of its path.
    pub fn province_of(a: &Area) -> Option<AreaId> {
        a.path
            .split('/')
            .find(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .map(AreaId)
    }
}

/// A new unit the rows name: its name, its province's code (communes), and its first line.
struct Named<'a> {
    name: &'a str,
    province: &'a str,
    line: u64,
}

/// The rows read against the current map, before anything is decided.
struct Reading<'a> {
    new_provinces: BTreeMap<&'a str, Named<'a>>,
    new_communes: BTreeMap<&'a str, Named<'a>>,
    /// Old unit -> new commune code -> kinds of link the rows give.
    links: BTreeMap<AreaId, BTreeMap<&'a str, BTreeSet<&'static str>>>,
    touched_provinces: BTreeSet<AreaId>,
    named: HashSet<AreaId>,
}

/// A link from a retired unit to a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub from: AreaId,
    pub to: AreaId,
    pub kind: &'static str,
    pub note: String,
}

/// Where each retired unit went: the new units and the kind of link to each.
pub type Successors = BTreeMap<AreaId, BTreeMap<AreaId, &'static str>>;

/// What a table does to the map of provinces, districts and communes.
pub struct Plan<'a> {
    /// The report so far: what the rows say and what the plan decided.
    pub report: Report,
    /// Every unit under the provinces the table names: it ends on the day.
    pub retired: Vec<&'a Area>,
    pub retired_ids: HashSet<AreaId>,
    /// The new provinces, then the new communes.
    pub fresh: Vec<NewUnit>,
    pub links: Vec<LinkRow>,
    /// Every retired unit's successors, and the one successor of each that went whole.
    pub went_to: Successors,
    pub successor: Vec<(AreaId, AreaId)>,
}

impl<'a> Plan<'a> {
    /// Reads every row against the current map and decides what the table does, or refuses
    /// the table (an inconsistent row, an unknown old province, codes that name no unit
    /// unless `accept_unmatched`, a new code of a unit that stays).
    pub fn make(rows: &[Row], map: &CurrentMap<'a>, o: &Options) -> Result<Plan<'a>> {
        let mut report = Report {
            effective: Some(o.effective),
            dry_run: o.dry_run,
            changed: !o.dry_run,
            rows: rows.len(),
            ..Default::default()
        };
        let reading = read(rows, map, &mut report)?;
        if !report.unmatched.is_empty() && !o.accept_unmatched {
            return Err(unmatched(&report.unmatched));
        }
        let retired = retire(map, &reading, &mut report)?;
        let retired_ids: HashSet<AreaId> = retired.iter().map(|a| a.id).collect();
        let (fresh, commune_ids) = new_units(&reading, o);
        report.provinces_created = reading.new_provinces.len();
        report.communes_created = reading.new_communes.len();
        let went_to = successors(map, &reading, &retired, &commune_ids, &fresh);
        let notes = notes(rows, map, &commune_ids);
        let mut links = Vec::new();
        let mut successor = Vec::new();
        for (from, to) in &went_to {
            for (t, kind) in to {
                match *kind {
                    WHOLE => report.links.whole += 1,
                    RENAME => report.links.rename += 1,
                    _ => report.links.part += 1,
                }
                links.push(LinkRow {
                    from: *from,
                    to: *t,
                    kind,
                    note: notes.get(&(*from, *t)).cloned().unwrap_or_default(),
                });
            }
            if let [(t, kind)] = to.iter().collect::<Vec<_>>()[..] {
                if *kind != PART {
                    successor.push((*from, *t));
                }
            }
        }
        Ok(Plan {
            report,
            retired,
            retired_ids,
            fresh,
            links,
            went_to,
            successor,
        })
    }

    /// The retired communes, whose villages follow them or wait.
    pub fn retired_communes(&self) -> Vec<AreaId> {
        self.retired
            .iter()
            .filter(|a| a.level == AreaLevel::Commune.as_str())
            .map(|a| a.id)
            .collect()
    }

    /// The new units a retired one went to, as the report names them.
    pub fn successor_refs(&self, area: &AreaId) -> Vec<UnitRef> {
        let new_by_id: HashMap<AreaId, &NewUnit> = self.fresh.iter().map(|u| (u.id, u)).collect();
        self.went_to
            .get(area)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(|id| new_by_id.get(id))
            .map(|u| new_ref(u))
            .collect()
    }
}

fn new_ref(u: &NewUnit) -> UnitRef {
    UnitRef {
        id: u.id,
        code: u.code.clone(),
        name: u.name.clone(),
        level: u.level.to_string(),
    }
}

/// Reads every row against the current map: the new units it names (consistently), and
/// the old unit it links from; rows with no old code, or one the map lacks, are listed.
fn read<'a>(rows: &'a [Row], map: &CurrentMap<'_>, report: &mut Report) -> Result<Reading<'a>> {
    let mut r_ = Reading {
        new_provinces: BTreeMap::new(),
        new_communes: BTreeMap::new(),
        links: BTreeMap::new(),
        touched_provinces: BTreeSet::new(),
        named: HashSet::new(),
    };
    for r in rows {
        match r_.new_provinces.get(r.province_code.as_str()) {
            Some(p) if p.name != r.province_name => {
                return Err(refused(
                    r.line,
                    "inconsistent_table",
                    format!(
                        "new province {} is named `{}` here but `{}` on line {}",
                        r.province_code, r.province_name, p.name, p.line
                    ),
                ))
            }
            Some(_) => {}
            None => {
                r_.new_provinces.insert(
                    &r.province_code,
                    Named {
                        name: &r.province_name,
                        province: &r.province_code,
                        line: r.line,
                    },
                );
            }
        }
        match r_.new_communes.get(r.commune_code.as_str()) {
            // The same name spelled with its tone mark elsewhere ("Thuỵ", "Thụy"): the first
            // spelling is kept, the variant listed.
            Some(c)
                if c.name != r.commune_name
                    && c.province == r.province_code
                    && text::fold(c.name) == text::fold(&r.commune_name) =>
            {
                report.name_variants.push(NameVariant {
                    line: r.line,
                    code: r.commune_code.clone(),
                    name: r.commune_name.clone(),
                    kept: c.name.to_string(),
                    kept_line: c.line,
                });
            }
            Some(c) if c.name != r.commune_name || c.province != r.province_code => {
                return Err(refused(
                    r.line,
                    "inconsistent_table",
                    format!(
                        "new commune {} is `{}` of province {} here but `{}` of {} on line {}",
                        r.commune_code, r.commune_name, r.province_code, c.name, c.province, c.line
                    ),
                ))
            }
            Some(_) => {}
            None => {
                r_.new_communes.insert(
                    &r.commune_code,
                    Named {
                        name: &r.commune_name,
                        province: &r.province_code,
                        line: r.line,
                    },
                );
            }
        }
        let Some(pcode) = r.old_province_code.as_deref() else {
            return Err(refused(
                r.line,
                "unknown_province",
                format!("old province `{}` has no (code)", r.old_province),
            ));
        };
        if map
            .by_code(AreaLevel::Province, pcode)
            .and_then(CurrentMap::province_of)
            .is_none()
        {
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
            (Some(code), _, _) => map.by_code(AreaLevel::Commune, code),
            (None, Some(d), Link::Whole(Whole::SpecialZone)) => map.by_code(AreaLevel::District, d),
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
        let Some((unit, province)) = unit.and_then(|u| Some((u, CurrentMap::province_of(u)?)))
        else {
            report.unmatched.push(Unmatched {
                line: r.line,
                old_code: r.old_code.clone().or(r.old_district_code.clone()),
                old_name: r.old_name.clone(),
                new_code: r.commune_code.clone(),
            });
            continue;
        };
        let tree = map.by_id[&province];
        if tree.code.as_deref() != Some(pcode) {
            report.province_mismatches.push(ProvinceMismatch {
                line: r.line,
                cell: r.old_province.clone(),
                tree: UnitRef::of(tree),
            });
        }
        r_.touched_provinces.insert(province);
        r_.named.insert(unit.id);
        r_.links
            .entry(unit.id)
            .or_default()
            .entry(&r.commune_code)
            .or_default()
            .insert(link_kind(r.link));
    }
    Ok(r_)
}

/// The refusal of a table with rows whose old code names no unit.
fn unmatched(rows: &[Unmatched]) -> Error {
    let first = &rows[0];
    let lines: Vec<String> = rows.iter().take(20).map(|u| u.line.to_string()).collect();
    refused(
        first.line,
        "unmatched_codes",
        format!(
            "old code {} ({}) names no unit of the current map; {} rows do so (lines {}{}). \
             Check that the list of the old map is imported, or accept them (--accept-unmatched, \
             accept_unmatched=true) to apply the table without those rows",
            first.old_code.as_deref().unwrap_or("-"),
            first.old_name,
            rows.len(),
            lines.join(", "),
            if rows.len() > 20 { ", …" } else { "" }
        ),
    )
}

/// The old map of the provinces the table names: every unit under them ends on the day. A
/// new code must not be the code of a unit that stays.
fn retire<'a>(
    map: &CurrentMap<'a>,
    reading: &Reading<'_>,
    report: &mut Report,
) -> Result<Vec<&'a Area>> {
    let retired: Vec<&Area> = map
        .units
        .iter()
        .filter(|a| {
            CurrentMap::province_of(a).is_some_and(|p| reading.touched_provinces.contains(&p))
        })
        .collect();
    let retired_ids: HashSet<AreaId> = retired.iter().map(|a| a.id).collect();
    for a in &retired {
        match AreaLevel::parse(&a.level) {
            Some(AreaLevel::Province) => report.retired.provinces += 1,
            Some(AreaLevel::District) => report.retired.districts += 1,
            _ => report.retired.communes += 1,
        }
    }
    report.provinces_kept = map
        .units
        .iter()
        .filter(|a| a.level == AreaLevel::Province.as_str() && !retired_ids.contains(&a.id))
        .map(UnitRef::of)
        .collect();
    report.not_in_table = retired
        .iter()
        .filter(|a| a.level == AreaLevel::Commune.as_str() && !reading.named.contains(&a.id))
        .map(|a| UnitRef::of(a))
        .collect();
    for (code, p) in &reading.new_provinces {
        if map
            .by_code(AreaLevel::Province, code)
            .is_some_and(|a| !retired_ids.contains(&a.id))
        {
            return Err(refused(
                p.line,
                "code_taken",
                format!(
                    "new province code {code} is the code of a province the table does not retire"
                ),
            ));
        }
    }
    for (code, c) in &reading.new_communes {
        match map.by_code(AreaLevel::Commune, code) {
            Some(a) if !retired_ids.contains(&a.id) => {
                return Err(refused(
                    c.line,
                    "code_taken",
                    format!(
                        "new commune code {code} is the code of a commune the table does not retire"
                    ),
                ))
            }
            Some(a) if a.name != c.name => report.codes_reused += 1,
            _ => {}
        }
    }
    Ok(retired)
}

/// The new provinces and communes, in effect from the day; and each new commune's id by
/// its code.
fn new_units<'a>(reading: &Reading<'a>, o: &Options) -> (Vec<NewUnit>, HashMap<&'a str, AreaId>) {
    let mut province_ids: HashMap<&str, (AreaId, String)> = HashMap::new();
    let mut fresh: Vec<NewUnit> = Vec::new();
    for (code, p) in &reading.new_provinces {
        let id = AreaId::random();
        let path = format!("/{id}/");
        province_ids.insert(code, (id, path.clone()));
        fresh.push(NewUnit {
            id,
            code: Some(code.to_string()),
            name: p.name.to_string(),
            level: AreaLevel::Province.as_str(),
            kind: kind_of(p.name, &["Thành phố", "Tỉnh"]),
            parent_id: None,
            path,
            valid_from: Some(o.effective),
        });
    }
    let mut commune_ids: HashMap<&str, AreaId> = HashMap::new();
    for (code, c) in &reading.new_communes {
        let id = AreaId::random();
        let (pid, ppath) = &province_ids[c.province];
        commune_ids.insert(code, id);
        fresh.push(NewUnit {
            id,
            code: Some(code.to_string()),
            name: c.name.to_string(),
            level: AreaLevel::Commune.as_str(),
            kind: kind_of(c.name, &["Phường", "Xã", "Đặc khu", "Thị trấn"]),
            parent_id: Some(*pid),
            path: format!("{ppath}{id}/"),
            valid_from: Some(o.effective),
        });
    }
    (fresh, commune_ids)
}

/// Where each retired unit went. A commune named by several rows going to one new commune
/// went whole only if every row says so; one going to several went in parts. A district or
/// province goes to what its communes went to: whole if all of it went whole into one unit.
fn successors(
    map: &CurrentMap<'_>,
    reading: &Reading<'_>,
    retired: &[&Area],
    commune_ids: &HashMap<&str, AreaId>,
    fresh: &[NewUnit],
) -> Successors {
    let mut out: Successors = BTreeMap::new();
    for (from, into) in &reading.links {
        let split = into.len() > 1;
        for (code, kinds) in into {
            let kind = if split || kinds.contains(PART) {
                PART
            } else if kinds.contains(RENAME) {
                RENAME
            } else {
                WHOLE
            };
            out.entry(*from)
                .or_default()
                .insert(commune_ids[code], kind);
        }
    }
    let mut up: BTreeMap<AreaId, (BTreeSet<AreaId>, bool)> = BTreeMap::new();
    for a in retired
        .iter()
        .filter(|a| a.level == AreaLevel::Commune.as_str())
    {
        let Some(district) = a.parent_id else {
            continue;
        };
        let e = up.entry(district).or_insert((BTreeSet::new(), true));
        match out.get(&a.id) {
            Some(to) => {
                e.0.extend(to.keys());
                e.1 &= to.len() == 1 && to.values().all(|k| *k != PART);
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
        let kind = if whole && to.len() == 1 { WHOLE } else { PART };
        out.insert(district, to.into_iter().map(|t| (t, kind)).collect());
    }
    let province_of_new: HashMap<AreaId, AreaId> = fresh
        .iter()
        .filter(|u| u.level == AreaLevel::Commune.as_str())
        .filter_map(|u| Some((u.id, u.parent_id?)))
        .collect();
    let mut provinces_to: BTreeMap<AreaId, BTreeSet<AreaId>> = BTreeMap::new();
    for (from, to) in &out {
        let Some(a) = map.by_id.get(from) else {
            continue;
        };
        if let Some(p) = CurrentMap::province_of(a) {
            provinces_to
                .entry(p)
                .or_default()
                .extend(to.keys().filter_map(|c| province_of_new.get(c)));
        }
    }
    for (p, to) in provinces_to {
        let kind = if to.len() == 1 { WHOLE } else { PART };
        out.insert(p, to.into_iter().map(|t| (t, kind)).collect());
    }
    out
}

/// The note of the row behind each (old unit, new commune) link.
fn notes(
    rows: &[Row],
    map: &CurrentMap<'_>,
    commune_ids: &HashMap<&str, AreaId>,
) -> HashMap<(AreaId, AreaId), String> {
    rows.iter()
        .filter_map(|r| {
            let from = match (&r.old_code, &r.old_district_code) {
                (Some(c), _) => map.by_code(AreaLevel::Commune, c)?.id,
                (None, Some(d)) => map.by_code(AreaLevel::District, d)?.id,
                _ => return None,
            };
            Some((
                (from, *commune_ids.get(r.commune_code.as_str())?),
                r.note.clone(),
            ))
        })
        .collect()
}

/// Where the villages of the retired communes go.
#[derive(Default)]
pub struct VillagePlan {
    pub moves: Vec<crate::store::map::Move>,
    /// Villages that wait for a person, with the new communes they may go to.
    pub candidates: Vec<(AreaId, AreaId)>,
    pub renamed: Vec<VillageRenamed>,
    pub moved: HashSet<AreaId>,
    pub pending: HashSet<AreaId>,
}

/// Each village follows its old commune where that went whole (a commune the table does
/// not name goes where its district went whole), or waits, with the units its commune (or
/// district) went to as candidates. Where two villages of one name meet, the one of the
/// commune that gave the new commune its code keeps the name, then the one of the lowest old
/// code: the same outcome on every run.
pub fn place_villages(
    plan: &Plan<'_>,
    map: &CurrentMap<'_>,
    villages: &[Area],
    o: &Options,
) -> VillagePlan {
    let successor: HashMap<AreaId, AreaId> = plan.successor.iter().copied().collect();
    let new_by_id: HashMap<AreaId, &NewUnit> = plan.fresh.iter().map(|u| (u.id, u)).collect();
    let mut placed: Vec<(&Area, &Area, Option<AreaId>)> = villages
        .iter()
        .filter_map(|v| {
            let commune = *map.by_id.get(&v.parent_id?)?;
            let district = commune.parent_id;
            let target = successor.get(&commune.id).copied().or_else(|| {
                (!plan.went_to.contains_key(&commune.id))
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
    let mut out = VillagePlan::default();
    for (v, commune, target) in placed {
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
                    out.renamed.push(VillageRenamed {
                        village_id: v.id,
                        from: v.name.clone(),
                        to: name.clone(),
                        commune: new_ref(to),
                    });
                }
                taken.insert((to.id, name.clone()));
                out.moves.push(crate::store::map::Move {
                    village: v.clone(),
                    to: to.id,
                    to_path: to.path.clone(),
                    name,
                    effective: o.effective,
                });
                out.moved.insert(v.id);
            }
            None => {
                let from_commune = plan.went_to.get(&commune.id);
                let from_district = commune.parent_id.and_then(|d| plan.went_to.get(&d));
                for to in from_commune
                    .or(from_district)
                    .into_iter()
                    .flat_map(|m| m.keys())
                {
                    out.candidates.push((v.id, *to));
                }
                out.pending.insert(v.id);
            }
        }
    }
    out
}

/// A user's assignment to an area.
pub struct Assignment {
    pub user: UserId,
    pub area: AreaId,
    pub username: String,
}

/// What becomes of the assignments to retired units.
#[derive(Default)]
pub struct Following {
    /// Assignments to remove: (user, retired area).
    pub removed: Vec<(UserId, AreaId)>,
    /// Assignments to add: (user, successor), each once.
    pub added: Vec<(UserId, AreaId)>,
    pub followed: usize,
    pub to_decide: Vec<AssignmentToDecide>,
}

/// An assignment to a unit that went whole moves to its successor (once, should two of the
/// user's units have gone into one); the others wait for an admin.
pub fn follow_assignments(
    plan: &Plan<'_>,
    map: &CurrentMap<'_>,
    assigned: &[Assignment],
) -> Following {
    let successor: HashMap<AreaId, AreaId> = plan.successor.iter().copied().collect();
    let mut has: HashSet<(UserId, AreaId)> = assigned.iter().map(|a| (a.user, a.area)).collect();
    let mut out = Following::default();
    for a in assigned
        .iter()
        .filter(|a| plan.retired_ids.contains(&a.area))
    {
        match successor.get(&a.area) {
            Some(to) => {
                out.removed.push((a.user, a.area));
                if has.insert((a.user, *to)) {
                    out.added.push((a.user, *to));
                }
                out.followed += 1;
            }
            None => out.to_decide.push(AssignmentToDecide {
                user_id: a.user,
                username: a.username.clone(),
                area: UnitRef::of(map.by_id[&a.area]),
                successors: plan.successor_refs(&a.area),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::reorganization::{self, REORGANIZATION_2025};
    use chrono::NaiveDate;

    fn unit(id: AreaId, level: &str, code: &str, name: &str, parent: Option<&Area>) -> Area {
        let path = match parent {
            Some(p) => format!("{}{id}/", p.path),
            None => format!("/{id}/"),
        };
        let now = crate::domain::Time::now();
        Area {
            id,
            code: (!code.is_empty()).then(|| code.into()),
            name: name.into(),
            level: level.into(),
            kind: None,
            parent_id: parent.map(|p| p.id),
            path,
            search_key: String::new(),
            retired_at: None,
            successor_id: None,
            created_at: now,
            updated_at: now,
            valid_from: None,
            valid_to: None,
        }
    }

    fn options() -> Options {
        Options {
            effective: NaiveDate::from_ymd_opt(2025, 7, 1).unwrap(),
            dry_run: true,
            accept_unmatched: false,
            source: "test".into(),
            by: None,
        }
    }

    /// Bình Gia's rows of the 2025 table over its old map: Lạng Sơn, the district and the
    /// communes the rows name.
    fn binh_gia() -> (Vec<Row>, Vec<Area>) {
        let rows: Vec<Row> = reorganization::parse(REORGANIZATION_2025)
            .unwrap()
            .into_iter()
            .filter(|r| r.old_district_code.as_deref() == Some("181"))
            .collect();
        let province = unit(AreaId::random(), "province", "20", "Tỉnh Lạng Sơn", None);
        let district = unit(
            AreaId::random(),
            "district",
            "181",
            "Huyện Bình Gia",
            Some(&province),
        );
        let mut seen = HashSet::new();
        let mut units = vec![province.clone(), district.clone()];
        for r in &rows {
            if let Some(code) = &r.old_code {
                if seen.insert(code.clone()) {
                    units.push(unit(
                        AreaId::random(),
                        "commune",
                        code,
                        &r.old_name,
                        Some(&district),
                    ));
                }
            }
        }
        (rows, units)
    }

    #[test]
    fn a_district_whose_communes_merge_is_retired_and_linked_in_parts() {
        let (rows, units) = binh_gia();
        let map = CurrentMap::new(&units);
        let plan = Plan::make(&rows, &map, &options()).unwrap();
        let communes = units.iter().filter(|u| u.level == "commune").count();
        assert_eq!(plan.report.retired.provinces, 1);
        assert_eq!(plan.report.retired.districts, 1);
        assert_eq!(plan.report.retired.communes, communes);
        assert_eq!(plan.retired.len(), communes + 2);
        let new_communes: BTreeSet<&str> = rows.iter().map(|r| r.commune_code.as_str()).collect();
        assert_eq!(plan.report.communes_created, new_communes.len());
        assert_eq!(plan.report.provinces_created, 1);
        assert!(new_communes.len() < communes, "communes merged");
        // Every old commune links to a new one; the district to several, in parts.
        for u in units.iter().filter(|u| u.level == "commune") {
            assert!(
                plan.went_to.contains_key(&u.id),
                "{} has a successor",
                u.name
            );
        }
        let district = units.iter().find(|u| u.level == "district").unwrap();
        assert!(plan.went_to[&district.id].values().all(|k| *k == PART));
        assert_eq!(
            plan.links.len(),
            plan.report.links.whole + plan.report.links.part + plan.report.links.rename
        );
        // The province went whole into the new one.
        let province = units.iter().find(|u| u.level == "province").unwrap();
        assert_eq!(
            plan.went_to[&province.id].values().collect::<Vec<_>>(),
            [&WHOLE]
        );
    }

    #[test]
    fn villages_follow_a_commune_that_went_whole_and_meet_by_name() {
        let (rows, units) = binh_gia();
        let map = CurrentMap::new(&units);
        let plan = Plan::make(&rows, &map, &options()).unwrap();
        // Two old communes that went whole into one new commune, a village "Nà Pàn" in each.
        let whole: Vec<&Area> = units
            .iter()
            .filter(|u| plan.successor.iter().any(|(f, _)| *f == u.id) && u.level == "commune")
            .collect();
        let by_target = |a: &Area| plan.successor.iter().find(|(f, _)| *f == a.id).unwrap().1;
        let (a, b) = whole
            .iter()
            .flat_map(|a| whole.iter().map(move |b| (*a, *b)))
            .find(|(a, b)| a.id != b.id && by_target(a) == by_target(b))
            .expect("two communes merged whole");
        let villages = vec![
            unit(AreaId::random(), "village", "", "Nà Pàn", Some(a)),
            unit(AreaId::random(), "village", "", "Nà Pàn", Some(b)),
        ];
        let out = place_villages(&plan, &map, &villages, &options());
        assert_eq!(out.moves.len(), 2);
        assert!(out.pending.is_empty() && out.candidates.is_empty());
        let names: BTreeSet<&str> = out.moves.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names.len(),
            2,
            "one keeps the name, the other is told apart"
        );
        assert!(names.contains("Nà Pàn"));
        assert_eq!(out.renamed.len(), 1);
    }

    #[test]
    fn a_row_naming_an_unknown_province_refuses_the_table() {
        let (mut rows, units) = binh_gia();
        rows[0].old_province_code = Some("99".into());
        let map = CurrentMap::new(&units);
        let Err(Error::Domain(crate::domain::Error::Unreadable { code, detail })) =
            Plan::make(&rows, &map, &options())
        else {
            panic!("refused")
        };
        assert_eq!(code, "unknown_province");
        assert!(detail.starts_with(&format!("line {}: ", rows[0].line)));
    }

    #[test]
    fn an_assignment_follows_a_unit_that_went_whole_once() {
        let (rows, units) = binh_gia();
        let map = CurrentMap::new(&units);
        let plan = Plan::make(&rows, &map, &options()).unwrap();
        let district = units.iter().find(|u| u.level == "district").unwrap();
        let province = units.iter().find(|u| u.level == "province").unwrap();
        let user = UserId(uuid::Uuid::new_v4());
        let assigned = [
            Assignment {
                user,
                area: province.id,
                username: "huyen".into(),
            },
            Assignment {
                user,
                area: district.id,
                username: "huyen".into(),
            },
        ];
        let f = follow_assignments(&plan, &map, &assigned);
        assert_eq!(f.followed, 1);
        assert_eq!(f.removed, [(user, province.id)]);
        assert_eq!(f.added.len(), 1);
        assert_eq!(f.to_decide.len(), 1);
        assert_eq!(f.to_decide[0].area.id, district.id);
        assert!(!f.to_decide[0].successors.is_empty());
    }
}
