//! The tally tables: adding a write's differences (`add`), reading them (`read`,
//! `read_all`), and counting them anew (`rebuild`, `ensure_built`) or against the rows
//! (`check`).

use super::{count, InCampaign, Of, Parts, Tallies, Village};
use crate::db::any::any_of;
use crate::db::schema::{households, tally_campaigns, tally_days, tally_state, tally_villages};
use crate::db::Conn;
use crate::domain::{AreaId, CampaignId, Time};
use crate::store::error::Result;
use crate::{insert_rows, with_conn};
use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::upsert::excluded;

/// Upserts `rows` into a tally table with one statement: a row's own statement (kept
/// prepared) when there is one, a multi-row one otherwise.
macro_rules! upsert_rows {
    ($conn:expr, $table:expr, $rows:expr, $target:expr, $set:expr) => {
        match &$rows[..] {
            [] => Ok(0),
            [row] => with_conn!($conn, |c| diesel::insert_into($table)
                .values(row.clone())
                .on_conflict($target)
                .do_update()
                .set($set)
                .execute(c)),
            rows => with_conn!($conn, |c| diesel::insert_into($table)
                .values(rows.to_vec())
                .on_conflict($target)
                .do_update()
                .set($set)
                .execute(c)),
        }
    };
}

/// Adds `d` to the stored tallies: one statement a table, its rows in key order (concurrent
/// writers take the rows' locks in the same order).
pub fn add(conn: &mut Conn<'_>, d: &Tallies) -> Result<()> {
    use tally_campaigns as tc;
    use tally_days as td;
    use tally_villages as tv;
    let villages: Vec<_> = d
        .villages
        .iter()
        .map(|(area, v)| {
            (
                tv::area_id.eq(*area),
                tv::households.eq(v.households),
                tv::persons.eq(v.persons),
                tv::smartphone.eq(v.smartphone),
                tv::priority.eq(v.priority),
            )
        })
        .collect();
    upsert_rows!(
        conn,
        tv::table,
        villages,
        tv::area_id,
        (
            tv::households.eq(tv::households + excluded(tv::households)),
            tv::persons.eq(tv::persons + excluded(tv::persons)),
            tv::smartphone.eq(tv::smartphone + excluded(tv::smartphone)),
            tv::priority.eq(tv::priority + excluded(tv::priority)),
        )
    )?;
    let campaigns: Vec<_> = d
        .campaigns
        .iter()
        .map(|((area, campaign), v)| {
            (
                tc::area_id.eq(*area),
                tc::campaign_id.eq(*campaign),
                tc::visited.eq(v.visited),
                tc::revisit.eq(v.revisit),
                tc::installed.eq(v.installed),
                tc::priority_installed.eq(v.priority_installed),
            )
        })
        .collect();
    upsert_rows!(
        conn,
        tc::table,
        campaigns,
        (tc::campaign_id, tc::area_id),
        (
            tc::visited.eq(tc::visited + excluded(tc::visited)),
            tc::revisit.eq(tc::revisit + excluded(tc::revisit)),
            tc::installed.eq(tc::installed + excluded(tc::installed)),
            tc::priority_installed.eq(tc::priority_installed + excluded(tc::priority_installed)),
        )
    )?;
    let days: Vec<_> = d
        .days
        .iter()
        .map(|((area, campaign, day), n)| {
            (
                td::area_id.eq(*area),
                td::campaign_id.eq(*campaign),
                td::day.eq(*day),
                td::installed.eq(*n),
            )
        })
        .collect();
    upsert_rows!(
        conn,
        td::table,
        days,
        (td::campaign_id, td::area_id, td::day),
        td::installed.eq(td::installed + excluded(td::installed))
    )?;
    Ok(())
}

/// The stored tallies of the given villages: all campaigns' when `campaign` is `None`, with
/// the installs by day when `days` is set.
pub fn read(
    conn: &mut Conn<'_>,
    villages: &[AreaId],
    campaign: Option<CampaignId>,
    days: bool,
) -> Result<Tallies> {
    use tally_campaigns as tc;
    use tally_days as td;
    use tally_villages as tv;
    let mut t = Tallies::default();
    let rows: Vec<(AreaId, i64, i64, i64, i64)> = with_conn!(conn, |c| tv::table
        .filter(any_of(tv::area_id, villages))
        .select((
            tv::area_id,
            tv::households,
            tv::persons,
            tv::smartphone,
            tv::priority
        ))
        .load(c))?;
    for (a, households, persons, smartphone, priority) in rows {
        let v = Village {
            households,
            persons,
            smartphone,
            priority,
        };
        t.villages.insert(a, v);
    }
    type CampaignRow = (AreaId, CampaignId, i64, i64, i64, i64);
    let rows: Vec<CampaignRow> = with_conn!(conn, |c: DB| {
        let mut q = tc::table
            .filter(any_of(tc::area_id, villages))
            .select((
                tc::area_id,
                tc::campaign_id,
                tc::visited,
                tc::revisit,
                tc::installed,
                tc::priority_installed,
            ))
            .into_boxed::<DB>();
        if let Some(id) = campaign {
            q = q.filter(tc::campaign_id.eq(id));
        }
        q.load(c)
    })?;
    for (a, campaign, visited, revisit, installed, priority_installed) in rows {
        let v = InCampaign {
            visited,
            revisit,
            installed,
            priority_installed,
        };
        t.campaigns.insert((a, campaign), v);
    }
    if days {
        let rows: Vec<(AreaId, CampaignId, NaiveDate, i64)> = with_conn!(conn, |c: DB| {
            let mut q = td::table
                .filter(any_of(td::area_id, villages))
                .select((td::area_id, td::campaign_id, td::day, td::installed))
                .into_boxed::<DB>();
            if let Some(id) = campaign {
                q = q.filter(td::campaign_id.eq(id));
            }
            q.load(c)
        })?;
        for (a, campaign, day, n) in rows {
            t.days.insert((a, campaign, day), n);
        }
    }
    Ok(t.plus(&Tallies::default(), 1))
}

/// The villages that hold households, deleted ones included.
fn villages_with_households(conn: &mut Conn<'_>) -> Result<Vec<AreaId>> {
    Ok(with_conn!(conn, |c| households::table
        .select(households::area_id)
        .distinct()
        .order(households::area_id)
        .load(c))?)
}

/// How many villages `rebuild` and `check` count at once: bounds their memory.
const VILLAGES_AT_ONCE: usize = 200;

#[derive(Insertable)]
#[diesel(table_name = tally_campaigns)]
struct CampaignRow {
    area_id: AreaId,
    campaign_id: CampaignId,
    visited: i64,
    revisit: i64,
    installed: i64,
    priority_installed: i64,
}

#[derive(Insertable)]
#[diesel(table_name = tally_days)]
struct DayRow {
    area_id: AreaId,
    campaign_id: CampaignId,
    day: NaiveDate,
    installed: i64,
}

#[derive(Insertable)]
#[diesel(table_name = tally_villages)]
struct VillageRow {
    area_id: AreaId,
    households: i64,
    persons: i64,
    smartphone: i64,
    priority: i64,
}

/// What `rebuild` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub villages: usize,
    pub rows: usize,
}

/// Counts everything anew and replaces the stored tallies, in the caller's transaction. On
/// PostgreSQL the tallies are locked first, so that writers of other processes wait and add
/// their differences to the new tallies.
pub fn rebuild(conn: &mut Conn<'_>) -> Result<Rebuilt> {
    if let Conn::Pg(c) = conn {
        c.batch_execute(
            "LOCK TABLE tally_villages, tally_campaigns, tally_days, tally_state IN EXCLUSIVE MODE",
        )?;
    }
    with_conn!(conn, |c| {
        diesel::delete(tally_villages::table).execute(c)?;
        diesel::delete(tally_campaigns::table).execute(c)?;
        diesel::delete(tally_days::table).execute(c)
    })?;
    let villages = villages_with_households(conn)?;
    let mut rows = 0;
    for chunk in villages.chunks(VILLAGES_AT_ONCE) {
        let t = count(conn, Of::Villages(chunk), Parts::ALL)?;
        let vs: Vec<VillageRow> = t
            .villages
            .iter()
            .map(|(a, v)| VillageRow {
                area_id: *a,
                households: v.households,
                persons: v.persons,
                smartphone: v.smartphone,
                priority: v.priority,
            })
            .collect();
        let cs: Vec<CampaignRow> = t
            .campaigns
            .iter()
            .map(|((a, campaign), v)| CampaignRow {
                area_id: *a,
                campaign_id: *campaign,
                visited: v.visited,
                revisit: v.revisit,
                installed: v.installed,
                priority_installed: v.priority_installed,
            })
            .collect();
        let ds: Vec<DayRow> = t
            .days
            .iter()
            .map(|((a, campaign, day), n)| DayRow {
                area_id: *a,
                campaign_id: *campaign,
                day: *day,
                installed: *n,
            })
            .collect();
        rows += insert_rows!(conn, tally_villages::table, &vs[..])?;
        rows += insert_rows!(conn, tally_campaigns::table, &cs[..])?;
        rows += insert_rows!(conn, tally_days::table, &ds[..])?;
    }
    let now = Time::now();
    with_conn!(conn, |c| {
        diesel::delete(tally_state::table).execute(c)?;
        diesel::insert_into(tally_state::table)
            .values((tally_state::id.eq(1), tally_state::built_at.eq(&now)))
            .execute(c)
    })?;
    Ok(Rebuilt {
        villages: villages.len(),
        rows,
    })
}

/// Builds the tallies if they were never built (a database from before them), in one
/// transaction; `None` when they were.
pub fn ensure_built(conn: &mut Conn<'_>) -> Result<Option<Rebuilt>> {
    conn.transaction(|conn| {
        if let Conn::Pg(c) = conn {
            // One process builds; the others wait here, then find them built.
            c.batch_execute("LOCK TABLE tally_state IN EXCLUSIVE MODE")?;
        }
        let built: i64 = with_conn!(conn, |c| tally_state::table.count().get_result(c))?;
        if built > 0 {
            return Ok(None);
        }
        rebuild(conn).map(Some)
    })
}

/// The villages whose stored tallies differ from a count of their rows, with both: empty
/// when the tallies are right.
pub fn check(conn: &mut Conn<'_>) -> Result<Vec<(AreaId, Tallies, Tallies)>> {
    let mut villages = villages_with_households(conn)?;
    villages.extend(tallied_villages(conn)?);
    villages.sort();
    villages.dedup();
    let mut wrong = Vec::new();
    for chunk in villages.chunks(VILLAGES_AT_ONCE) {
        let counted = count(conn, Of::Villages(chunk), Parts::ALL)?;
        let stored = read(conn, chunk, None, true)?;
        if counted == stored {
            continue;
        }
        for a in chunk {
            let (c, s) = (only(&counted, *a), only(&stored, *a));
            if c != s {
                wrong.push((*a, s, c));
            }
        }
    }
    Ok(wrong)
}

/// The part of `t` about one village.
fn only(t: &Tallies, area: AreaId) -> Tallies {
    Tallies {
        villages: t
            .villages
            .iter()
            .filter(|(a, _)| **a == area)
            .map(|(k, v)| (*k, *v))
            .collect(),
        campaigns: t
            .campaigns
            .iter()
            .filter(|((a, _), _)| *a == area)
            .map(|(k, v)| (*k, *v))
            .collect(),
        days: t
            .days
            .iter()
            .filter(|((a, _, _), _)| *a == area)
            .map(|(k, v)| (*k, *v))
            .collect(),
    }
}

/// The villages that have stored tallies.
fn tallied_villages(conn: &mut Conn<'_>) -> Result<Vec<AreaId>> {
    Ok(with_conn!(conn, |c| tally_villages::table
        .select(tally_villages::area_id)
        .union(tally_campaigns::table.select(tally_campaigns::area_id))
        .load(c))?)
}

/// Every stored tally.
pub fn read_all(conn: &mut Conn<'_>) -> Result<Tallies> {
    let villages = tallied_villages(conn)?;
    read(conn, &villages, None, true)
}
