//! The administrative tree.

use super::error::{Error, Result};
use super::scope::Principal;
use super::PageReq;
use crate::db::schema::areas;
use crate::db::Conn;
use crate::domain::{text, AreaId, Time};
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

pub const LEVELS: &[&str] = &["province", "district", "commune", "village"];

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = areas)]
pub struct Area {
    pub id: AreaId,
    /// Official GSO code (2 digits province, 3 district, 5 commune); villages have none.
    pub code: Option<String>,
    pub name: String,
    /// `province`, `district`, `commune` or `village`.
    pub level: String,
    /// The unit's type as published: Tỉnh, Thành phố, Huyện, Quận, Xã, Phường, Thị trấn, Thôn…
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
}

#[derive(Insertable)]
#[diesel(table_name = areas)]
struct NewArea<'a> {
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
    if let Some(p) = f.parent {
        get(conn, p)?;
    }
    // Each bound is a path prefix; a row must match one of them.
    let bounds = who.prefixes();
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
            if roots_only {
                if admin {
                    q = q.filter(areas::parent_id.is_null());
                } else {
                    q = q.filter(areas::path.eq_any(&who.area_paths));
                }
            } else if let Some(b) = bounds {
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
    let row = NewArea {
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

/// One unit of an official list.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialUnit {
    pub level: &'static str,
    pub code: String,
    pub name: String,
    pub kind: Option<String>,
    /// Code of the parent unit (one level up), none for provinces.
    pub parent_code: Option<String>,
}

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

/// Loads official units (parents before children), inserting new ones and updating changed
/// names or parents. Importing the same list twice changes nothing the second time.
pub fn import(conn: &mut Conn<'_>, units: &[OfficialUnit]) -> Result<ImportReport> {
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
    let mut inserts: Vec<(AreaId, &OfficialUnit, Option<AreaId>, String)> = Vec::new();
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
    let rows: Vec<NewArea<'_>> = inserts
        .iter()
        .map(|(id, u, parent_id, path)| NewArea {
            id: *id,
            code: Some(&u.code),
            name: &u.name,
            level: u.level,
            kind: u.kind.as_deref(),
            parent_id: *parent_id,
            path: path.clone(),
            search_key: text::search_key(&u.name),
            created_at: now,
            updated_at: now,
        })
        .collect();
    // Parents come before children in `rows`, so chunked inserts keep foreign keys valid.
    for chunk in rows.chunks(1000) {
        with_conn!(conn, |c| diesel::insert_into(areas::table)
            .values(chunk)
            .execute(c))?;
    }
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
