//! The administrative tree.

use super::error::{Error, Result};
use super::scope::Principal;
use super::PageReq;
use crate::db::schema::areas;
use crate::db::Conn;
use crate::domain::{area, text, AreaId, Time};
use crate::with_conn;
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

pub const LEVELS: &[&str] = crate::domain::vocabulary::AreaLevel::NAMES;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = areas)]
pub struct Area {
    pub id: AreaId,
    /// Official GSO code (2 digits province, 3 district, 5 commune); villages have none.
    pub code: Option<String>,
    pub name: String,
    /// `province`, `district`, `commune` or `village`.
    pub level: String,
    /// The area's type as published: Tỉnh, Thành phố, Huyện, Quận, Xã, Phường, Thị trấn, Thôn…
    pub kind: Option<String>,
    pub parent_id: Option<AreaId>,
    #[serde(skip)]
    pub path: String,
    #[serde(skip)]
    pub search_key: String,
    pub retired_at: Option<Time>,
    pub successor_id: Option<AreaId>,
    pub created_at: Time,
    pub updated_at: Time,
    /// The day the area took effect (none: before gocua knew of it).
    pub valid_from: Option<NaiveDate>,
    /// The day it was retired: it was in effect until the day before.
    pub valid_to: Option<NaiveDate>,
}

#[derive(Insertable)]
#[diesel(table_name = areas)]
struct AreaRow<'a> {
    id: AreaId,
    code: Option<&'a str>,
    name: &'a str,
    level: &'a str,
    kind: Option<&'a str>,
    parent_id: Option<AreaId>,
    path: String,
    search_key: String,
    created_at: Time,
    updated_at: Time,
}

pub fn child_level(level: &str) -> Option<&'static str> {
    let i = LEVELS.iter().position(|l| *l == level)?;
    LEVELS.get(i + 1).copied()
}

pub fn get(conn: &mut Conn<'_>, id: AreaId) -> Result<Area> {
    with_conn!(conn, |c| areas::table
        .find(id)
        .select(Area::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| Error::not_found("area"))
}

pub fn by_ids(conn: &mut Conn<'_>, ids: &[AreaId]) -> Result<Vec<Area>> {
    Ok(with_conn!(conn, |c| areas::table
        .filter(areas::id.eq_any(ids))
        .select(Area::as_select())
        .order(areas::path)
        .load(c))?)
}

/// The current area with this official code (the deepest, should a code repeat across
/// levels).
pub fn current_by_code(conn: &mut Conn<'_>, code: &str) -> Result<Option<Area>> {
    let mut found: Vec<Area> = with_conn!(conn, |c| areas::table
        .filter(areas::code.eq(code))
        .filter(areas::retired_at.is_null())
        .select(Area::as_select())
        .load(c))?;
    found.sort_by_key(|a| a.path.len());
    Ok(found.pop())
}

/// Every area (the whole tree: tens of thousands of rows at most).
pub fn all(conn: &mut Conn<'_>) -> Result<Vec<Area>> {
    Ok(with_conn!(conn, |c| areas::table
        .select(Area::as_select())
        .order(areas::path)
        .load(c))?)
}

#[derive(Debug, Default, Clone)]
pub struct AreaFilter {
    pub parent: Option<AreaId>,
    pub level: Option<String>,
    pub code: Option<String>,
    pub q: Option<String>,
    /// The map of that day; none: today's.
    pub as_of: Option<NaiveDate>,
}

/// Areas the caller may see, filtered. Without `parent`, `code` or `q`: the caller's top areas
/// (provinces for an admin, the assigned areas otherwise).
pub fn list(
    conn: &mut Conn<'_>,
    who: &Principal,
    f: &AreaFilter,
    page: PageReq,
) -> Result<(Vec<Area>, i64)> {
    let terms = f.q.as_deref().map(text::search_terms).unwrap_or_default();
    let roots_only =
        f.parent.is_none() && f.code.is_none() && terms.is_empty() && f.level.is_none();
    // Each bound is a path prefix; a row must match one of them. On an earlier map, retired
    // areas that became the caller's are theirs to read too.
    let mut bounds: Option<Vec<String>> = who.prefixes().map(<[String]>::to_vec);
    if let (Some(b), Some(_)) = (bounds.as_mut(), f.as_of) {
        b.extend(super::scope::history_prefixes(conn, who)?.unwrap_or_default());
    }
    let bounded = |path: &str| {
        bounds
            .as_ref()
            .is_none_or(|b| b.iter().any(|p| area::in_subtree(path, p)))
    };
    if let Some(p) = f.parent {
        let parent = get(conn, p)?;
        if let Some(day) = f.as_of {
            // Children on that day: villages where they were then.
            let mut kids: Vec<Area> = subtree_as_of(conn, &parent, day)?
                .into_iter()
                .filter(|a| a.parent_id == Some(parent.id) && bounded(&a.path))
                .filter(|a| f.level.as_ref().is_none_or(|l| *l == a.level))
                .collect();
            kids.sort_by(|a, b| (&a.code, &a.name).cmp(&(&b.code, &b.name)));
            let total = kids.len() as i64;
            let rows = kids
                .into_iter()
                .skip(page.offset() as usize)
                .take(page.per_page as usize)
                .collect();
            return Ok((rows, total));
        }
    }
    let admin = who.is_admin();
    let run = |c: &mut Conn<'_>, count: bool| -> Result<(Vec<Area>, i64)> {
        with_conn!(c, |c: DB| {
            let mut q = areas::table.into_boxed();
            if let Some(parent) = f.parent {
                q = q.filter(areas::parent_id.eq(parent));
            }
            if let Some(level) = &f.level {
                q = q.filter(areas::level.eq(level));
            }
            if let Some(code) = &f.code {
                q = q.filter(areas::code.eq(code));
            }
            for t in &terms {
                q = q.filter(areas::search_key.like(text::like_pattern(t)).escape('\\'));
            }
            match f.as_of {
                Some(day) => {
                    q = q
                        .filter(areas::valid_from.is_null().or(areas::valid_from.le(day)))
                        .filter(areas::valid_to.is_null().or(areas::valid_to.gt(day)));
                }
                // Today's map, unless browsing what is under a given area.
                None if f.parent.is_none() => q = q.filter(areas::retired_at.is_null()),
                None => {}
            }
            if roots_only {
                if admin {
                    q = q.filter(areas::parent_id.is_null());
                } else {
                    q = q.filter(areas::path.eq_any(&who.area_paths));
                }
            } else if let Some(b) = &bounds {
                let mut cond: Box<
                    dyn BoxableExpression<areas::table, DB, SqlType = diesel::sql_types::Bool>,
                > = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
                for p in b {
                    cond = Box::new(cond.or(areas::path.like(format!("{p}%"))));
                }
                q = q.filter(cond);
            }
            if count {
                let n: i64 = q.count().get_result(c)?;
                Ok((Vec::new(), n))
            } else {
                let rows = q
                    .select(Area::as_select())
                    .order((areas::code.asc(), areas::name.asc()))
                    .limit(page.per_page)
                    .offset(page.offset())
                    .load(c)?;
                Ok((rows, 0))
            }
        })
    };
    let (_, total) = run(conn, true)?;
    let (rows, _) = run(conn, false)?;
    Ok((rows, total))
}

/// Creates a village under a commune the caller covers.
pub fn create_village(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: AreaId,
    parent: AreaId,
    name: &str,
    kind: Option<&str>,
) -> Result<Area> {
    let parent = get(conn, parent)?;
    who.require_covers(&parent.path)?;
    if parent.level != "commune" {
        return Err(Error::invalid(
            "parent_id",
            "level",
            "villages are created under a commune",
        ));
    }
    if parent.retired_at.is_some() {
        return Err(Error::invalid(
            "parent_id",
            "retired",
            "this commune is retired",
        ));
    }
    let name = text::squash_spaces(name);
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "length", "1 to 200 characters"));
    }
    let now = Time::now();
    let row = AreaRow {
        id,
        code: None,
        name: &name,
        level: "village",
        kind: kind.or(Some("Thôn")),
        parent_id: Some(parent.id),
        path: format!("{}{}/", parent.path, id),
        search_key: text::search_key(&name),
        created_at: now,
        updated_at: now,
    };
    let res = with_conn!(conn, |c| diesel::insert_into(areas::table)
        .values(&row)
        .execute(c));
    match res {
        Ok(_) => get(conn, id),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(Error::conflict(
            "duplicate",
            "this commune already has a village of that name, or that id is taken",
        )),
        Err(e) => Err(e.into()),
    }
}

pub use crate::importer::OfficialArea;

#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ImportReport {
    pub units: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub provinces: usize,
    pub districts: usize,
    pub communes: usize,
}

/// Loads official areas (parents before children), inserting new ones and updating changed
/// names or parents. Importing the same list twice changes nothing the second time.
pub fn import(conn: &mut Conn<'_>, units: &[OfficialArea]) -> Result<ImportReport> {
    use crate::db::schema::reorganizations;
    let reorganized: Option<NaiveDate> = with_conn!(conn, |c| reorganizations::table
        .select(reorganizations::effective)
        .order(reorganizations::effective.desc())
        .first(c)
        .optional())?;
    if let Some(day) = reorganized {
        // The list format has districts: it describes the map before the reorganization.
        return Err(Error::conflict(
            "reorganized",
            format!(
                "the tree follows the reorganization effective {day}; a list of the old map \
                 (with districts) would bring its units back"
            ),
        ));
    }
    let existing: Vec<Area> = with_conn!(conn, |c| areas::table
        .filter(areas::code.is_not_null())
        .filter(areas::retired_at.is_null())
        .select(Area::as_select())
        .load(c))?;
    let mut by_code: HashMap<(&'static str, String), (AreaId, String)> = HashMap::new();
    let by_id: HashMap<AreaId, &Area> = existing.iter().map(|a| (a.id, a)).collect();
    for a in &existing {
        if let (Some(code), Some(level)) = (&a.code, LEVELS.iter().find(|l| **l == a.level)) {
            by_code.insert((level, code.clone()), (a.id, a.path.clone()));
        }
    }
    let mut report = ImportReport {
        units: units.len(),
        ..Default::default()
    };
    let now = Time::now();
    let mut inserts: Vec<(AreaId, &OfficialArea, Option<AreaId>, String)> = Vec::new();
    for u in units {
        match u.level {
            "province" => report.provinces += 1,
            "district" => report.districts += 1,
            _ => report.communes += 1,
        }
        let parent = match (&u.parent_code, parent_level(u.level)) {
            (Some(pc), Some(pl)) => {
                Some(by_code.get(&(pl, pc.clone())).cloned().ok_or_else(|| {
                    Error::unreadable(
                        "unknown_parent",
                        format!("{} {} names an unknown parent {pc}", u.level, u.code),
                    )
                })?)
            }
            _ => None,
        };
        let (parent_id, parent_path) = match &parent {
            Some((id, path)) => (Some(*id), path.as_str()),
            None => (None, "/"),
        };
        match by_code.get(&(u.level, u.code.clone())).cloned() {
            Some((id, _)) => {
                let cur = by_id[&id];
                if cur.name == u.name && cur.kind == u.kind && cur.parent_id == parent_id {
                    report.unchanged += 1;
                    continue;
                }
                let path = format!("{parent_path}{id}/");
                with_conn!(conn, |c| diesel::update(areas::table.find(id))
                    .set((
                        areas::name.eq(&u.name),
                        areas::kind.eq(&u.kind),
                        areas::parent_id.eq(parent_id),
                        areas::search_key.eq(text::search_key(&u.name)),
                        areas::updated_at.eq(now),
                    ))
                    .execute(c))?;
                if cur.path != path {
                    move_subtree(conn, &cur.path, &path)?;
                }
                by_code.insert((u.level, u.code.clone()), (id, path));
                report.updated += 1;
            }
            None => {
                let id = AreaId::random();
                let path = format!("{parent_path}{id}/");
                by_code.insert((u.level, u.code.clone()), (id, path.clone()));
                inserts.push((id, u, parent_id, path));
                report.inserted += 1;
            }
        }
    }
    let rows: Vec<NewArea> = inserts
        .into_iter()
        .map(|(id, u, parent_id, path)| NewArea {
            id,
            code: Some(u.code.clone()),
            name: u.name.clone(),
            level: u.level,
            kind: u.kind.clone(),
            parent_id,
            path,
            valid_from: None,
        })
        .collect();
    // Parents come before children in `rows`, so chunked inserts keep foreign keys valid.
    insert_areas(conn, &rows, now)?;
    Ok(report)
}

fn parent_level(level: &str) -> Option<&'static str> {
    match level {
        "district" => Some("province"),
        "commune" => Some("district"),
        "village" => Some("commune"),
        _ => None,
    }
}

/// Rewrites the paths of a subtree whose root moved.
fn move_subtree(conn: &mut Conn<'_>, old: &str, new: &str) -> Result<()> {
    let pattern = format!("{old}%");
    let rows: Vec<(AreaId, String)> = with_conn!(conn, |c| areas::table
        .filter(areas::path.like(&pattern))
        .select((areas::id, areas::path))
        .load(c))?;
    for (id, path) in rows {
        let moved = format!("{new}{}", &path[old.len()..]);
        with_conn!(conn, |c| diesel::update(areas::table.find(id))
            .set(areas::path.eq(moved))
            .execute(c))?;
    }
    Ok(())
}

/// An area as reports and lists name it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AreaRef {
    pub id: AreaId,
    pub code: Option<String>,
    pub name: String,
    pub level: String,
}

impl AreaRef {
    pub fn of(a: &Area) -> AreaRef {
        AreaRef {
            id: a.id,
            code: a.code.clone(),
            name: a.name.clone(),
            level: a.level.clone(),
        }
    }
}

/// Whether the area was in effect on `day`.
pub fn in_effect(a: &Area, day: NaiveDate) -> bool {
    a.valid_from.is_none_or(|f| f <= day) && a.valid_to.is_none_or(|t| t > day)
}

/// The name without its type ("Xã Hoa Thám" → "Hoa Thám"), to tell villages apart.
pub fn bare_name(name: &str) -> &str {
    for k in ["Thị trấn ", "Phường ", "Xã ", "Đặc khu "] {
        if let Some(rest) = name.strip_prefix(k) {
            return rest;
        }
    }
    name
}

/// An area of a new map, in effect from `valid_from`.
pub struct NewArea {
    pub id: AreaId,
    pub code: Option<String>,
    pub name: String,
    pub level: &'static str,
    pub kind: Option<String>,
    pub parent_id: Option<AreaId>,
    pub path: String,
    pub valid_from: Option<NaiveDate>,
}

/// Inserts areas, parents before children.
pub fn insert_areas(conn: &mut Conn<'_>, units: &[NewArea], now: Time) -> Result<()> {
    #[derive(Insertable)]
    #[diesel(table_name = areas)]
    struct Row<'a> {
        id: AreaId,
        code: Option<&'a str>,
        name: &'a str,
        level: &'a str,
        kind: Option<&'a str>,
        parent_id: Option<AreaId>,
        path: &'a str,
        search_key: String,
        valid_from: Option<NaiveDate>,
        created_at: Time,
        updated_at: Time,
    }
    let rows: Vec<Row<'_>> = units
        .iter()
        .map(|u| Row {
            id: u.id,
            code: u.code.as_deref(),
            name: &u.name,
            level: u.level,
            kind: u.kind.as_deref(),
            parent_id: u.parent_id,
            path: &u.path,
            search_key: text::search_key(&u.name),
            valid_from: u.valid_from,
            created_at: now,
            updated_at: now,
        })
        .collect();
    for chunk in rows.chunks(1000) {
        with_conn!(conn, |c| diesel::insert_into(areas::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// The subtree of `root` on the map of `day`: areas in effect that day, and villages where
/// they were that day (under the parent, with the path and name they had).
pub fn subtree_as_of(conn: &mut Conn<'_>, root: &Area, day: NaiveDate) -> Result<Vec<Area>> {
    use crate::db::schema::area_moves;
    let pattern = area::subtree_pattern(&root.path);
    let now_under: Vec<Area> = with_conn!(conn, |c| areas::table
        .filter(areas::path.like(&pattern))
        .select(Area::as_select())
        .load(c))?;
    // The first move after the day of each village that moved into or out of the subtree.
    let later: Vec<(AreaId, AreaId, String, String, NaiveDate)> =
        with_conn!(conn, |c| area_moves::table
            .filter(area_moves::effective.gt(day))
            .filter(
                area_moves::from_path
                    .like(&pattern)
                    .or(area_moves::to_path.like(&pattern)),
            )
            .select((
                area_moves::area_id,
                area_moves::from_parent_id,
                area_moves::from_path,
                area_moves::from_name,
                area_moves::effective,
            ))
            .order((area_moves::effective, area_moves::moved_at))
            .load(c))?;
    let mut then: HashMap<AreaId, (AreaId, String, String)> = HashMap::new();
    for (id, parent, path, name, _) in later {
        then.entry(id).or_insert((parent, path, name));
    }
    let mut out: Vec<Area> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut place = |mut a: Area, out: &mut Vec<Area>| {
        if let Some((parent, path, name)) = then.get(&a.id) {
            a.parent_id = Some(*parent);
            a.path = path.clone();
            a.name = name.clone();
        }
        if area::in_subtree(&a.path, &root.path) && in_effect(&a, day) && seen.insert(a.id) {
            out.push(a);
        }
    };
    for a in now_under {
        place(a, &mut out);
    }
    let elsewhere: Vec<AreaId> = then
        .keys()
        .filter(|id| !out.iter().any(|a| a.id == **id))
        .copied()
        .collect();
    for a in by_ids(conn, &elsewhere)? {
        place(a, &mut out);
    }
    Ok(out)
}
