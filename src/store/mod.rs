//! Rows, loaders and flushes, one file per aggregate; for the household also the identity
//! map of a transaction's writes (`work.rs`) and its flush (`flush.rs`), which the one write
//! path (`write`) runs the domain rules over. Functions take `&mut Conn` so that
//! callers can compose them inside one transaction. They answer `store::error::Error` (a
//! domain refusal or a database failure) and know nothing of HTTP: only `api` turns errors
//! into answers (`error.rs`).

pub mod areas;
pub mod audit;
pub mod campaigns;
pub mod changes;
pub mod conflicts;
pub mod devices;
pub mod duplicates;
pub mod error;
mod flush;
pub mod households;
pub mod map;
pub mod reorganize;
pub mod scope;
pub mod sessions;
pub mod tallies;
pub mod users;
pub mod weeks;
pub mod work;

use crate::db::{Conn, DbError, Pool};
use error::Result;

/// Brings a database up to date: runs the pending migrations (answering their names), then
/// builds what the store derives from the tables when an older database lacks it (the
/// report tallies, `tallies::ensure_built`; the duplicate keys when a migration changed their
/// form, `duplicates::scan`). Every start and `gocua migrate` call it.
pub fn migrate(pool: &Pool) -> std::result::Result<Vec<String>, DbError> {
    let done = pool.migrate()?;
    let mut pc = pool.get()?;
    tallies::ensure_built(&mut pc.conn())
        .map_err(|e| DbError::Migrate(format!("building the report tallies: {e}")))?;
    pc.conn()
        .transaction(weeks::prepare)
        .map_err(|e| DbError::Migrate(format!("making the change log's weeks: {e}")))?;
    if done.iter().any(|v| v == duplicates::KEYS_BY_SOURCE) {
        duplicates::scan(&mut pc.conn(), |_| {})
            .map_err(|e| DbError::Migrate(format!("making the duplicate keys: {e}")))?;
    }
    Ok(done)
}

/// A list query's page, and its total when asked: `run(conn, true)` counts the matching
/// rows, `run(conn, false)` reads the page.
pub fn page_and_total<R, E>(
    conn: &mut Conn<'_>,
    with_total: bool,
    run: impl Fn(&mut Conn<'_>, bool) -> Result<(Vec<R>, i64), E>,
) -> Result<(Vec<R>, Option<i64>), E> {
    let total = if with_total {
        Some(run(conn, true)?.1)
    } else {
        None
    };
    let (rows, _) = run(conn, false)?;
    Ok((rows, total))
}

/// A page request: 1-based page and its size.
#[derive(Debug, Clone, Copy)]
pub struct PageReq {
    pub page: i64,
    pub per_page: i64,
}

impl PageReq {
    pub const MAX_PER_PAGE: i64 = 500;

    pub fn offset(&self) -> i64 {
        // A page far past the end is empty, not an overflow.
        (self.page - 1).saturating_mul(self.per_page)
    }
}
