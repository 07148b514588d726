//! What applying a conversion table does to the map, worked out without the database: the
//! rows read against the current map (`Plan::make`: the new areas, the retired ones, the
//! links and the successors). What follows from it (villages, assignments) is in `follow`;
//! `apply` (in `mod.rs`) loads what these read and writes what they decide, phase by phase.

use super::report::{NameVariant, ProvinceMismatch, Report, Unmatched};
use super::Options;
use crate::domain::vocabulary::AreaLevel;
use crate::domain::{text, AreaId};
use crate::importer::reorganization::{Link, Row, Whole};
use crate::store::areas::{Area, AreaRef, NewArea};
use crate::store::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The kinds of link from a retired area to a successor.
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
    pub areas: &'a [Area],
    pub by_id: HashMap<AreaId, &'a Area>,
    by_code: HashMap<(&'a str, &'a str), &'a Area>,
}

impl<'a> CurrentMap<'a> {
    pub fn new(areas: &'a [Area]) -> CurrentMap<'a> {
        CurrentMap {
            areas,
            by_id: areas.iter().map(|a| (a.id, a)).collect(),
            by_code: areas
                .iter()
                .filter_map(|a| Some(((a.level.as_str(), a.code.as_deref()?), a)))
                .collect(),
        }
    }

    /// The current area of a level with a code.
    fn by_code(&self, level: AreaLevel, code: &str) -> Option<&'a Area> {
        self.by_code.get(&(level.as_str(), code)).copied()
    }

    /// The area's province: the first id of its path.
    pub fn province_of(a: &Area) -> Option<AreaId> {
        a.path
            .split('/')
            .find(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .map(AreaId)
    }
}

/// A new area the rows name: its name, its province's code (communes), and its first line.
struct Named<'a> {
    name: &'a str,
    province: &'a str,
    line: u64,
}

/// The rows read against the current map, before anything is decided.
struct Reading<'a> {
    new_provinces: BTreeMap<&'a str, Named<'a>>,
    new_communes: BTreeMap<&'a str, Named<'a>>,
    /// Old area -> new commune code -> kinds of link the rows give.
    links: BTreeMap<AreaId, BTreeMap<&'a str, BTreeSet<&'static str>>>,
    touched_provinces: BTreeSet<AreaId>,
    named: HashSet<AreaId>,
}

/// A link from a retired area to a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub from: AreaId,
    pub to: AreaId,
    pub kind: &'static str,
    pub note: String,
}

/// Where each retired area went: the new areas and the kind of link to each.
pub type Successors = BTreeMap<AreaId, BTreeMap<AreaId, &'static str>>;

/// What a table does to the map of provinces, districts and communes.
pub struct Plan<'a> {
    /// The report so far: what the rows say and what the plan decided.
    pub report: Report,
    /// Every area under the provinces the table names: it ends on the day.
    pub retired: Vec<&'a Area>,
    pub retired_ids: HashSet<AreaId>,
    /// The new provinces, then the new communes.
    pub fresh: Vec<NewArea>,
    pub links: Vec<LinkRow>,
    /// Every retired area's successors, and the one successor of each that went whole.
    pub went_to: Successors,
    pub successor: Vec<(AreaId, AreaId)>,
}

impl<'a> Plan<'a> {
    /// Reads every row against the current map and decides what the table does, or refuses
    /// the table (an inconsistent row, an unknown old province, codes that name no area
    /// unless `accept_unmatched`, a new code of an area that stays).
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
        let (fresh, commune_ids) = new_areas(&reading, o);
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

    /// The new areas a retired one went to, as the report names them.
    pub fn successor_refs(&self, area: &AreaId) -> Vec<AreaRef> {
        let new_by_id: HashMap<AreaId, &NewArea> = self.fresh.iter().map(|u| (u.id, u)).collect();
        self.went_to
            .get(area)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(|id| new_by_id.get(id))
            .map(|u| new_ref(u))
            .collect()
    }
}

pub(super) fn new_ref(u: &NewArea) -> AreaRef {
    AreaRef {
        id: u.id,
        code: u.code.clone(),
        name: u.name.clone(),
        level: u.level.to_string(),
    }
}

/// Reads every row against the current map: the new areas it names (consistently), and
/// the old area it links from; rows with no old code, or one the map lacks, are listed.
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
                tree: AreaRef::of(tree),
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

/// The refusal of a table with rows whose old code names no area.
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

/// The old map of the provinces the table names: every area under them ends on the day. A
/// new code must not be the code of an area that stays.
fn retire<'a>(
    map: &CurrentMap<'a>,
    reading: &Reading<'_>,
    report: &mut Report,
) -> Result<Vec<&'a Area>> {
    let retired: Vec<&Area> = map
        .areas
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
        .areas
        .iter()
        .filter(|a| a.level == AreaLevel::Province.as_str() && !retired_ids.contains(&a.id))
        .map(AreaRef::of)
        .collect();
    report.not_in_table = retired
        .iter()
        .filter(|a| a.level == AreaLevel::Commune.as_str() && !reading.named.contains(&a.id))
        .map(|a| AreaRef::of(a))
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
fn new_areas<'a>(reading: &Reading<'a>, o: &Options) -> (Vec<NewArea>, HashMap<&'a str, AreaId>) {
    let mut province_ids: HashMap<&str, (AreaId, String)> = HashMap::new();
    let mut fresh: Vec<NewArea> = Vec::new();
    for (code, p) in &reading.new_provinces {
        let id = AreaId::random();
        let path = format!("/{id}/");
        province_ids.insert(code, (id, path.clone()));
        fresh.push(NewArea {
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
        fresh.push(NewArea {
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

/// Where each retired area went. A commune named by several rows going to one new commune
/// went whole only if every row says so; one going to several went in parts. A district or
/// province goes to what its communes went to: whole if all of it went whole into one area.
fn successors(
    map: &CurrentMap<'_>,
    reading: &Reading<'_>,
    retired: &[&Area],
    commune_ids: &HashMap<&str, AreaId>,
    fresh: &[NewArea],
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

/// The note of the row behind each (old area, new commune) link.
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

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_district_whose_communes_merge_is_retired_and_linked_in_parts() {
        let (rows, areas) = binh_gia();
        let map = CurrentMap::new(&areas);
        let plan = Plan::make(&rows, &map, &options()).unwrap();
        let communes = areas.iter().filter(|u| u.level == "commune").count();
        assert_eq!(plan.report.retired.provinces, 1);
        assert_eq!(plan.report.retired.districts, 1);
        assert_eq!(plan.report.retired.communes, communes);
        assert_eq!(plan.retired.len(), communes + 2);
        let new_communes: BTreeSet<&str> = rows.iter().map(|r| r.commune_code.as_str()).collect();
        assert_eq!(plan.report.communes_created, new_communes.len());
        assert_eq!(plan.report.provinces_created, 1);
        assert!(new_communes.len() < communes, "communes merged");
        // Every old commune links to a new one; the district to several, in parts.
        for u in areas.iter().filter(|u| u.level == "commune") {
            assert!(
                plan.went_to.contains_key(&u.id),
                "{} has a successor",
                u.name
            );
        }
        let district = areas.iter().find(|u| u.level == "district").unwrap();
        assert!(plan.went_to[&district.id].values().all(|k| *k == PART));
        assert_eq!(
            plan.links.len(),
            plan.report.links.whole + plan.report.links.part + plan.report.links.rename
        );
        // The province went whole into the new one.
        let province = areas.iter().find(|u| u.level == "province").unwrap();
        assert_eq!(
            plan.went_to[&province.id].values().collect::<Vec<_>>(),
            [&WHOLE]
        );
    }

    #[test]
    fn a_row_naming_an_unknown_province_refuses_the_table() {
        let (mut rows, areas) = binh_gia();
        rows[0].old_province_code = Some("99".into());
        let map = CurrentMap::new(&areas);
        let Err(Error::Domain(crate::domain::Error::Unreadable { code, detail })) =
            Plan::make(&rows, &map, &options())
        else {
            panic!("refused")
        };
        assert_eq!(code, "unknown_province");
        assert!(detail.starts_with(&format!("line {}: ", rows[0].line)));
    }
}

/// A small old map and the 2025 table's rows over it, for the plan's tests.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use crate::importer::reorganization::{self, REORGANIZATION_2025};
    use chrono::NaiveDate;

    pub fn area(id: AreaId, level: &str, code: &str, name: &str, parent: Option<&Area>) -> Area {
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

    pub fn options() -> Options {
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
    pub fn binh_gia() -> (Vec<Row>, Vec<Area>) {
        let rows: Vec<Row> = reorganization::parse(REORGANIZATION_2025)
            .unwrap()
            .into_iter()
            .filter(|r| r.old_district_code.as_deref() == Some("181"))
            .collect();
        let province = area(AreaId::random(), "province", "20", "Tỉnh Lạng Sơn", None);
        let district = area(
            AreaId::random(),
            "district",
            "181",
            "Huyện Bình Gia",
            Some(&province),
        );
        let mut seen = HashSet::new();
        let mut areas = vec![province.clone(), district.clone()];
        for r in &rows {
            if let Some(code) = &r.old_code {
                if seen.insert(code.clone()) {
                    areas.push(area(
                        AreaId::random(),
                        "commune",
                        code,
                        &r.old_name,
                        Some(&district),
                    ));
                }
            }
        }
        (rows, areas)
    }
}
