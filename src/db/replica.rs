//! Reports read from a streaming replica of the PostgreSQL primary
//! (`GOCUA_REPORTS_DATABASE_URL`, docs/SCALING.md), so that the primary's CPU goes to
//! syncs. The replica is asked how far behind it is at most once a second; while it does not
//! answer, or is further behind than `GOCUA_REPORTS_MAX_LAG_SECONDS`, reports read the
//! primary, and `/metrics` counts those reads. A report whose read fails on the replica is
//! read again on the primary: a replica going down fails no request.

use super::{DbError, Pool};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool as R2d2Pool};
use diesel::sql_types::Double;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verdict on the replica stands before it is asked again: a second, and five
/// while it is down (asking a replica that is down holds the asking report up to
/// `CONNECT_TIMEOUT`).
const RECHECK: Duration = Duration::from_secs(1);
const RECHECK_DOWN: Duration = Duration::from_secs(5);
/// How long a report waits for a replica connection before it reads the primary.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where reports read, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The replica answers, `lag` seconds behind the primary.
    Ready { lag: f64 },
    /// The replica answers but is too far behind.
    Behind { lag: f64 },
    /// The replica does not answer.
    Down(String),
}

impl Verdict {
    pub fn reads_replica(&self) -> bool {
        matches!(self, Verdict::Ready { .. })
    }

    /// How long it stands before the replica is asked again.
    fn stands(&self) -> Duration {
        match self {
            Verdict::Down(_) => RECHECK_DOWN,
            _ => RECHECK,
        }
    }
}

#[derive(QueryableByName)]
struct Lag {
    #[diesel(sql_type = Double)]
    lag: f64,
}

/// Seconds the server is behind its primary: none when it has replayed all it received
/// (an idle primary sends nothing, and the last replayed transaction only grows older).
const LAG_SQL: &str = "SELECT CASE \
    WHEN NOT pg_is_in_recovery() THEN 0 \
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) \
    END::float8 AS lag";

pub struct Replica {
    pg: R2d2Pool<ConnectionManager<PgConnection>>,
    max_lag: f64,
    last: Mutex<Option<(Instant, Verdict)>>,
    /// Reports read on the replica.
    pub replica_reads: AtomicU64,
    /// Reports read on the primary instead: the replica behind, down, or failing the read.
    pub fallbacks_behind: AtomicU64,
    pub fallbacks_down: AtomicU64,
}

impl Replica {
    /// A pool on the replica, opened lazily: gocua starts while the replica is down.
    pub fn connect(url: &str, size: u32, max_lag_seconds: f64) -> Result<Replica, DbError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::Connect(
                "GOCUA_REPORTS_DATABASE_URL must be a postgres:// URL (a streaming replica)".into(),
            ));
        }
        let pg = diesel::r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .test_on_check_out(false)
            .build_unchecked(ConnectionManager::<PgConnection>::new(url));
        Ok(Replica {
            pg,
            max_lag: max_lag_seconds,
            last: Mutex::new(None),
            replica_reads: AtomicU64::new(0),
            fallbacks_behind: AtomicU64::new(0),
            fallbacks_down: AtomicU64::new(0),
        })
    }

    /// The pool reports read through.
    pub fn pool(&self) -> Pool {
        Pool::Pg(self.pg.clone())
    }

    /// The last verdict, while it still stands; no waiting.
    pub fn standing(&self) -> Option<Verdict> {
        self.last
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .filter(|(at, v)| at.elapsed() < v.stands())
            .map(|(_, v)| v)
    }

    /// Where reports read now: the standing verdict, or the replica's answer when there is
    /// none. Blocking.
    pub fn verdict(&self) -> Verdict {
        if let Some(v) = self.standing() {
            return v;
        }
        let v = self.ask();
        if let Ok(mut l) = self.last.lock() {
            *l = Some((Instant::now(), v.clone()));
        }
        v
    }

    fn ask(&self) -> Verdict {
        let lag = self.pg.get().map_err(|e| e.to_string()).and_then(|mut c| {
            diesel::sql_query(LAG_SQL)
                .get_result::<Lag>(&mut c)
                .map_err(|e| e.to_string())
        });
        match lag {
            Ok(Lag { lag }) if lag <= self.max_lag => Verdict::Ready { lag },
            Ok(Lag { lag }) => Verdict::Behind { lag },
            Err(e) => Verdict::Down(e),
        }
    }

    /// A read failed on the replica: it counts as down until asked again.
    pub fn failed(&self, down: Verdict) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some((Instant::now(), down));
        }
    }

    /// Counts a report's read by where it went.
    pub fn count(&self, verdict: &Verdict) {
        let n = match verdict {
            Verdict::Ready { .. } => &self.replica_reads,
            Verdict::Behind { .. } => &self.fallbacks_behind,
            Verdict::Down(_) => &self.fallbacks_down,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }
}
