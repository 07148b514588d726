//! What every SQLite connection of the pool is set up with, and SQLite's process-wide modes.

use diesel::connection::SimpleConnection;
use diesel::r2d2::CustomizeConnection;
use diesel::SqliteConnection;

/// The page cache of a pooled SQLite connection, and of the writer's (see `SqliteSetup`).
pub(crate) const SQLITE_READER_CACHE: &str = "PRAGMA cache_size = -4096;";
pub(crate) const SQLITE_WRITER_CACHE: &str = "PRAGMA cache_size = -16384;";

/// Where SQLite keeps statement and savepoint journals (see `SqliteSetup`).
pub(super) const SQLITE_TEMP_STORE: &str = "PRAGMA temp_store = MEMORY;";

/// Per-connection SQLite settings: WAL (readers never block the writer), foreign keys, a busy
/// timeout so that writers queue, full fsync so that an acknowledged change survives a power
/// cut (the writer commits without and syncs on its sync thread, see `writer`), no
/// checkpoints at commit (the writer's checkpoint thread runs them), savepoint and statement
/// journals in memory rather than in temporary files (the writer opens a savepoint per
/// transaction; `Conn::large_transaction` is for the transactions too large for that), a
/// page cache of up to 4 MiB (the writer's own connection takes 16 MiB, so that a group's
/// dirty pages are not spilled to the WAL before its commit; readers share the operating
/// system's cache of the file, and 16 MiB each made a process of 16 connections reach
/// 390 MiB under load), and the function `gocua_durable` (see `writer::Durable`).
#[derive(Debug)]
pub(super) struct SqliteSetup(pub(super) std::sync::Arc<super::writer::Durable>);

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0; {SQLITE_TEMP_STORE} {SQLITE_READER_CACHE}",
        ))
        .and_then(|()| self.0.register(conn))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Puts SQLite in multi-thread mode before it opens its first connection: a connection is
/// used by one thread at a time (the pool hands it out), so SQLite need not lock a mutex
/// around every call on it, as its default serialized mode does. Memory statistics, which
/// nothing reads, are turned off too: keeping them takes a global mutex at every allocation.
/// Once SQLite has started (another pool in the same process opened a connection first),
/// the calls are refused and the defaults stay, which is also correct.
pub(super) fn sqlite_global_config() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any other SQLite call of this process (or
        // it returns SQLITE_MISUSE and changes nothing); MULTITHREAD takes no argument and
        // MEMSTATUS one int.
        let rc = unsafe {
            use libsqlite3_sys::{
                sqlite3_config, SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD,
            };
            match sqlite3_config(SQLITE_CONFIG_MULTITHREAD) {
                libsqlite3_sys::SQLITE_OK => {
                    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int)
                }
                rc => rc,
            }
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(rc, "SQLite had started: it keeps its default modes");
        }
    });
}

/// The file path of a `sqlite://path` (or `sqlite:path`) URL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}
