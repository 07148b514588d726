//! The change log's weeks on PostgreSQL. The log is partitioned by the week its rows were
//! written, Monday 00:00 UTC to the next (migration `changes_by_week`), so that pruning drops
//! whole weeks: no row is deleted, no table bloats, no vacuum follows. Each week is a table
//! `changes_wYYYYMMDD`, named by its Monday; a row written where no week is made yet lands
//! in `changes_default`, the partition of everything else.
//!
//! `prepare` runs at every start and every prune: it moves the rows of `changes_default`
//! into their weeks and makes the current week and `WEEKS_AHEAD` more. `drop_ended` drops
//! the weeks that ended before a time. SQLite has no partitions: its log is pruned by rows
//! (`changes::prune`).

use super::error::Result;
use crate::db::prepared::fixed_query;
use crate::db::Conn;
use crate::domain::Time;
use chrono::{Datelike, Duration, NaiveDate};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::PgConnection;

/// Weeks made after the current one at every start and prune. A server that runs longer
/// than this without a restart or a prune writes into `changes_default` until the next.
pub const WEEKS_AHEAD: i64 = 4;

/// Concurrent starts of several processes make the weeks one after the other.
const LOCK: i64 = 0x676f_6375_6177;

/// How long making or dropping a week waits for the transactions reading or writing the log.
/// Dropping a week locks the whole log, and pulls and writes queue behind the waiting lock,
/// so it gives up early: the pulls and writes it waits for take milliseconds.
const LOCK_TIMEOUT: &str = "2s";

/// A week of the log, by its Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Week(NaiveDate);

impl Week {
    /// The week `t` falls in.
    pub fn of(t: Time) -> Week {
        let day = t.0.date_naive();
        Week(day - Duration::days(i64::from(day.weekday().num_days_from_monday())))
    }

    fn next(self) -> Week {
        Week(self.0 + Duration::days(7))
    }

    /// The table holding the week's rows.
    pub fn table(self) -> String {
        format!("changes_w{}", self.0.format("%Y%m%d"))
    }

    fn of_table(name: &str) -> Option<Week> {
        let day = name.strip_prefix("changes_w")?;
        NaiveDate::parse_from_str(day, "%Y%m%d").ok().map(Week)
    }

    /// The week's first instant, as a PostgreSQL literal.
    fn start(self) -> String {
        format!("'{} 00:00:00+00'", self.0.format("%Y-%m-%d"))
    }

    /// Whether the week ended before `t`.
    fn ended_before(self, t: Time) -> bool {
        self.next()
            .0
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            <= t.0
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Last {
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// The weeks the log has, in order; none on SQLite.
pub fn list(conn: &mut Conn<'_>) -> Result<Vec<Week>> {
    match conn {
        Conn::Pg(c) => weeks_of(c),
        Conn::Sqlite(_) => Ok(Vec::new()),
    }
}

fn weeks_of(c: &mut PgConnection) -> Result<Vec<Week>> {
    let mut weeks: Vec<Week> = fixed_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'changes'::regclass",
    )
    .load::<Name>(c)?
    .iter()
    .filter_map(|n| Week::of_table(&n.name))
    .collect();
    weeks.sort();
    Ok(weeks)
}

/// Makes the log's weeks ready: each week with rows in `changes_default` is made and its rows
/// moved into it, then the current week and `WEEKS_AHEAD` after it are made where missing.
/// Answers the number of weeks made. Nothing on SQLite. Call inside a transaction.
pub fn prepare(conn: &mut Conn<'_>) -> Result<usize> {
    let Conn::Pg(c) = conn else {
        return Ok(0);
    };
    c.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SELECT pg_advisory_xact_lock({LOCK})"
    ))?;
    let have = weeks_of(c)?;
    let mut wanted: Vec<Week> = fixed_query(
        "SELECT DISTINCT to_char(date_trunc('week', created_at AT TIME ZONE 'UTC'), 'YYYYMMDD')
             AS name
         FROM changes_default",
    )
    .load::<Name>(*c)?
    .iter()
    .filter_map(|n| Week::of_table(&format!("changes_w{}", n.name)))
    .collect();
    let mut week = Week::of(Time::now());
    for _ in 0..=WEEKS_AHEAD {
        wanted.push(week);
        week = week.next();
    }
    wanted.sort();
    wanted.dedup();
    let mut made = 0;
    for week in wanted.into_iter().filter(|w| !have.contains(w)) {
        let (table, from, to) = (week.table(), week.start(), week.next().start());
        // Made apart, filled from `changes_default`, then attached: attaching takes a lock
        // that lets writers and readers go on, where `PARTITION OF` would stop them. The
        // check spares the attach a scan of the rows just moved.
        c.batch_execute(&format!(
            "CREATE TABLE {table} (LIKE changes INCLUDING DEFAULTS);
             ALTER TABLE {table} ADD CONSTRAINT {table}_week
                 CHECK (created_at >= {from} AND created_at < {to});
             WITH moved AS (
                 DELETE FROM changes_default WHERE created_at >= {from} AND created_at < {to}
                 RETURNING *)
             INSERT INTO {table} SELECT * FROM moved;
             ALTER TABLE changes ATTACH PARTITION {table} FOR VALUES FROM ({from}) TO ({to})"
        ))?;
        made += 1;
    }
    Ok(made)
}

/// What `drop_ended` dropped.
#[derive(Debug, Default)]
pub struct Dropped {
    pub weeks: usize,
    pub rows: i64,
    /// The last log position among the dropped rows, `(txid, id)`.
    pub last: Option<(i64, i64)>,
}

/// Drops, oldest first, the weeks that ended before `before`, stopping at the first with a
/// row of a transaction at or above `running_from` (it may still be running). Nothing on
/// SQLite. Call inside a transaction, after `prepare`.
pub fn drop_ended(conn: &mut Conn<'_>, before: Time, running_from: i64) -> Result<Dropped> {
    let mut dropped = Dropped::default();
    let Conn::Pg(c) = conn else {
        return Ok(dropped);
    };
    for week in weeks_of(c)? {
        if !week.ended_before(before) {
            break;
        }
        let table = week.table();
        let last: Option<Last> = diesel::sql_query(format!(
            "SELECT txid, id, (SELECT count(*) FROM {table}) AS rows FROM {table}
             ORDER BY txid DESC, id DESC LIMIT 1"
        ))
        .get_result(*c)
        .optional()?;
        if let Some(last) = &last {
            if last.txid >= running_from {
                break;
            }
            let at = (last.txid, last.id);
            dropped.last = Some(dropped.last.map_or(at, |p| p.max(at)));
            dropped.rows += last.rows;
        }
        diesel::sql_query(format!("DROP TABLE {table}")).execute(*c)?;
        dropped.weeks += 1;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_starts_on_monday_utc() {
        let t = |s: &str| Time(s.parse().unwrap());
        let w = Week::of(t("2026-12-06T23:59:59Z"));
        assert_eq!(w.table(), "changes_w20261130");
        assert_eq!(
            Week::of(t("2026-12-07T00:00:00Z")).table(),
            "changes_w20261207"
        );
        assert_eq!(Week::of_table("changes_w20261130"), Some(w));
        assert_eq!(Week::of_table("changes_default"), None);
        assert!(w.ended_before(t("2026-12-07T00:00:00Z")));
        assert!(!w.ended_before(t("2026-12-06T23:59:59Z")));
        assert_eq!(w.start(), "'2026-11-30 00:00:00+00'");
    }
}
