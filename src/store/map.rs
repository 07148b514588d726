//! Villages changing commune: moving under another one (their ids, and so their households,
//! stay; where they were is kept for the map of earlier days, `areas::subtree_as_of`), and
//! the villages of split communes waiting for a person to place them.

use super::areas::{bare_name, by_ids, get, Area, AreaRef};
use super::error::{Error, Result};
use super::scope::Principal;
use crate::db::schema::areas;
use crate::db::Conn;
use crate::domain::{text, AreaId, Time, UserId};
use crate::with_conn;
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// A village going under another commune, under `name` there.
pub struct Move {
    pub village: Area,
    pub to: AreaId,
    pub to_path: String,
    pub name: String,
    /// The day it belongs to its new commune from.
    pub effective: NaiveDate,
}

/// A value of `update_many`.
pub enum Set {
    Id(AreaId),
    Text(String),
}

/// Sets columns of many areas, a few hundred a statement (`WITH v AS (VALUES …) UPDATE …
/// FROM v`, on both databases): each row is an area's id and its values of `cols`. One
/// statement per row would cost a round trip each on PostgreSQL and, on SQLite inside a
/// savepoint, a statement journal that grows with the transaction.
pub fn update_many(
    conn: &mut Conn<'_>,
    cols: &[&str],
    rows: &[(AreaId, Vec<Set>)],
    now: Time,
) -> Result<()> {
    use crate::db::sql::{Ts, Uid};
    use diesel::sql_types::Text;
    let per = 400 / (cols.len() + 1);
    let pg = matches!(conn, Conn::Pg(_));
    for chunk in rows.chunks(per.max(1)) {
        let mut n = 0;
        let mut next = || {
            n += 1;
            if pg {
                format!("${n}")
            } else {
                "?".to_owned()
            }
        };
        let values: Vec<String> = chunk
            .iter()
            .map(|(_, vals)| {
                let cells: Vec<String> = std::iter::once(())
                    .chain(vals.iter().map(|_| ()))
                    .map(|()| next())
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let set: Vec<String> = cols.iter().map(|c| format!("{c} = v.{c}")).collect();
        let sql = format!(
            "WITH v(id, {}) AS (VALUES {}) UPDATE areas SET {}, updated_at = {} FROM v WHERE areas.id = v.id",
            cols.join(", "),
            values.join(", "),
            set.join(", "),
            next()
        );
        with_conn!(conn, |c: DB| {
            let mut q = diesel::sql_query(&sql).into_boxed::<DB>();
            for (id, vals) in chunk {
                q = q.bind::<Uid, _>(*id);
                for v in vals {
                    q = match v {
                        Set::Id(a) => q.bind::<Uid, _>(*a),
                        Set::Text(t) => q.bind::<Text, _>(t.as_str()),
                    };
                }
            }
            q.bind::<Ts, _>(now).execute(c)
        })?;
    }
    Ok(())
}

/// Moves villages, keeping their ids (and so their households, whose scope follows the
/// path), and records where each was before, for the map of earlier days.
pub fn move_villages(
    conn: &mut Conn<'_>,
    moves: &[Move],
    by: Option<UserId>,
    now: Time,
) -> Result<()> {
    use crate::db::schema::area_moves;
    let mut log = Vec::new();
    let mut sets = Vec::new();
    for m in moves {
        let v = &m.village;
        let path = format!("{}{}/", m.to_path, v.id);
        sets.push((
            v.id,
            vec![
                Set::Id(m.to),
                Set::Text(path.clone()),
                Set::Text(m.name.clone()),
                Set::Text(text::search_key(&m.name)),
            ],
        ));
        log.push((
            area_moves::id.eq(AreaId::random()),
            area_moves::area_id.eq(v.id),
            area_moves::from_parent_id.eq(v.parent_id.unwrap_or(v.id)),
            area_moves::from_path.eq(v.path.clone()),
            area_moves::from_name.eq(v.name.clone()),
            area_moves::to_parent_id.eq(m.to),
            area_moves::to_path.eq(path),
            area_moves::effective.eq(m.effective),
            area_moves::moved_by.eq(by),
            area_moves::moved_at.eq(now),
        ));
    }
    update_many(
        conn,
        &["parent_id", "path", "name", "search_key"],
        &sets,
        now,
    )?;
    for chunk in log.chunks(500) {
        with_conn!(conn, |c| diesel::insert_into(area_moves::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// A village whose commune was split, waiting for a person to place it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PendingVillage {
    pub village: AreaRef,
    /// The retired commune it is still under.
    pub commune: AreaRef,
    /// The new communes it may go to (an admin may place it anywhere).
    pub candidates: Vec<AreaRef>,
    /// Live households in it.
    pub households: i64,
}

/// Villages waiting to be placed that the caller may see: an admin sees all; others those
/// under their areas or with a candidate commune in their areas.
pub fn pending(conn: &mut Conn<'_>, who: &Principal) -> Result<Vec<PendingVillage>> {
    use crate::db::schema::{households, village_candidates};
    let retired: Vec<Area> = with_conn!(conn, |c| areas::table
        .filter(areas::level.eq("commune"))
        .filter(areas::retired_at.is_not_null())
        .select(Area::as_select())
        .load(c))?;
    let communes: HashMap<AreaId, &Area> = retired.iter().map(|a| (a.id, a)).collect();
    let ids: Vec<AreaId> = communes.keys().copied().collect();
    let mut villages: Vec<Area> = Vec::new();
    for chunk in ids.chunks(5000) {
        villages.extend(with_conn!(conn, |c| areas::table
            .filter(areas::parent_id.eq_any(chunk))
            .filter(areas::level.eq("village"))
            .filter(areas::retired_at.is_null())
            .select(Area::as_select())
            .load(c))?);
    }
    let vids: Vec<AreaId> = villages.iter().map(|v| v.id).collect();
    let mut cands: HashMap<AreaId, Vec<AreaId>> = HashMap::new();
    let mut homes: HashMap<AreaId, i64> = HashMap::new();
    for chunk in vids.chunks(5000) {
        let rows: Vec<(AreaId, AreaId)> = with_conn!(conn, |c| village_candidates::table
            .filter(village_candidates::village_id.eq_any(chunk))
            .select((
                village_candidates::village_id,
                village_candidates::commune_id
            ))
            .load(c))?;
        for (v, c) in rows {
            cands.entry(v).or_default().push(c);
        }
        let n: Vec<(AreaId, i64)> = with_conn!(conn, |c| households::table
            .filter(households::area_id.eq_any(chunk))
            .filter(households::deleted_at.is_null())
            .group_by(households::area_id)
            .select((households::area_id, diesel::dsl::count_star()))
            .load(c))?;
        homes.extend(n);
    }
    let all: Vec<AreaId> = cands.values().flatten().copied().collect();
    let targets: HashMap<AreaId, Area> =
        by_ids(conn, &all)?.into_iter().map(|a| (a.id, a)).collect();
    let mut out: Vec<PendingVillage> = villages
        .into_iter()
        .filter_map(|v| {
            let commune = communes.get(&v.parent_id?)?;
            let mut candidates: Vec<&Area> = cands
                .get(&v.id)
                .into_iter()
                .flatten()
                .filter_map(|c| targets.get(c))
                .collect();
            candidates.sort_by(|a, b| (&a.code, &a.name).cmp(&(&b.code, &b.name)));
            let visible = who.covers(&v.path) || candidates.iter().any(|c| who.covers(&c.path));
            visible.then(|| PendingVillage {
                households: homes.get(&v.id).copied().unwrap_or(0),
                commune: AreaRef::of(commune),
                candidates: candidates.into_iter().map(AreaRef::of).collect(),
                village: AreaRef::of(&v),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.commune.code, &a.village.name).cmp(&(&b.commune.code, &b.village.name)));
    Ok(out)
}

/// Places a waiting village under a new commune: a supervisor among its candidates in
/// their areas, an admin anywhere. It is renamed like the reorganization does if the
/// commune already has a village of that name.
pub fn place(
    conn: &mut Conn<'_>,
    who: &Principal,
    village: AreaId,
    commune: AreaId,
) -> Result<Area> {
    use crate::db::schema::village_candidates;
    let v = get(conn, village)?;
    let Some(parent) = v.parent_id.filter(|_| v.level == "village") else {
        return Err(Error::invalid(
            "village",
            "level",
            "only a village can be placed",
        ));
    };
    let old = get(conn, parent)?;
    if old.retired_at.is_none() {
        return Err(Error::conflict(
            "not_pending",
            "this village is not waiting to be placed: its commune is in effect",
        ));
    }
    let to = get(conn, commune)?;
    if to.level != "commune" || to.retired_at.is_some() {
        return Err(Error::invalid(
            "commune_id",
            "not_a_commune",
            "a village is placed under a commune in effect",
        ));
    }
    let candidates: Vec<AreaId> = with_conn!(conn, |c| village_candidates::table
        .filter(village_candidates::village_id.eq(v.id))
        .select(village_candidates::commune_id)
        .load(c))?;
    if !who.is_admin() {
        if !candidates.contains(&to.id) {
            return Err(Error::forbidden(
                "this commune is not among the village's candidates; only an admin can place it elsewhere",
            ));
        }
        who.require_covers(&to.path)?;
    }
    let names: Vec<String> = with_conn!(conn, |c| areas::table
        .filter(areas::parent_id.eq(to.id))
        .filter(areas::level.eq("village"))
        .filter(areas::retired_at.is_null())
        .select(areas::name)
        .load(c))?;
    let mut name = v.name.clone();
    let mut n = 1;
    while names.contains(&name) {
        let bare = bare_name(&old.name);
        name = if n == 1 {
            format!("{} ({bare})", v.name)
        } else {
            format!("{} ({bare}) {n}", v.name)
        };
        n += 1;
    }
    let now = Time::now();
    let effective = old.valid_to.unwrap_or_else(|| now.0.date_naive());
    move_villages(
        conn,
        &[Move {
            village: v.clone(),
            to: to.id,
            to_path: to.path.clone(),
            name,
            effective,
        }],
        Some(who.user_id),
        now,
    )?;
    with_conn!(conn, |c| diesel::delete(
        village_candidates::table.filter(village_candidates::village_id.eq(v.id))
    )
    .execute(c))?;
    get(conn, v.id)
}
