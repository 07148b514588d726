//! Group commit for SQLite. One writer thread runs the write transactions of the whole
//! process. It takes every transaction waiting in the queue into one `BEGIN IMMEDIATE …
//! COMMIT`, each in its own savepoint: a transaction that fails rolls back alone, and the
//! others share one commit.
//!
//! The writer commits with `synchronous = NORMAL`, which writes the WAL without syncing it,
//! and hands the group to a sync thread. That thread syncs the WAL file (`fdatasync`), once
//! for every group committed meanwhile, and only then answers their transactions. So nobody
//! hears back before the commit is on disk, as with `synchronous = FULL`, but the writer runs
//! the next group while the disk works. A group that depends on an earlier one's writes is
//! behind it in the WAL, and is answered only once a sync has covered both.
//!
//! Other connections may read a commit before it is synced. What the sync protocol hands out
//! must not be lost by a power cut after it is served, so pulls call `gocua_durable(id)`
//! (see `Durable`), which syncs the WAL first if the change log they read is ahead of the
//! last sync.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread of their own,
//! after commits but at most once a second, in `PASSIVE` mode: the writer never waits for
//! one. A checkpoint syncs the WAL before it copies and the database file after, so a WAL
//! restarted after a checkpoint never loses a synced commit. When the checkpoint thread finds
//! the WAL long, the writer copies what is left between two groups, so that it starts over.

use super::schema::changes;
use super::RunError;
use super::{Conn, SqlitePool};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, PooledConnection};
use diesel::SqliteConnection;
use diesel::{QueryDsl, RunQueryDsl};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// At most this many transactions share one commit.
const GROUP: usize = 32;

/// The writer keeps its connection while transactions come within this time of each other
/// (if the pool has more than two). SQLite empties a connection's page cache when its
/// transaction starts after a commit by another connection: the writer's cache stays warm
/// only on a connection no reader uses.
const KEEP_CONNECTION: Duration = Duration::from_millis(100);

/// At most one checkpoint in this time. A checkpoint that copies the whole WAL makes the next
/// commit start the WAL over, and so sync its header, on the writer's thread: after every
/// group, that is a sync per commit again.
const CHECKPOINT_EVERY: Duration = if cfg!(test) {
    Duration::from_millis(20)
} else {
    Duration::from_secs(1)
};

/// A WAL of this many frames (a page each, 16 MiB) or more at a checkpoint is copied to its
/// end by the writer itself, between two groups. SQLite starts the WAL over only at a write
/// that finds it all copied; under a steady load the checkpoint thread never gets there
/// before the next commit, and the WAL file would grow without end (200 MB in the six
/// seconds of the sync benchmark), every commit appending new blocks to it, which costs the
/// file system far more than writing over blocks it already has.
const RESTART_FRAMES: i64 = if cfg!(test) { 64 } else { 4096 };

/// What `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName)]
struct Checkpointed {
    /// 1 if another checkpoint was running (nothing was copied).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    busy: i64,
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
    /// Of which copied into the database file.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    checkpointed: i64,
}

/// Runs a `PASSIVE` checkpoint.
fn checkpoint(c: &mut SqliteConnection) -> diesel::QueryResult<Checkpointed> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<Checkpointed>(c)
}

/// What a finished transaction does once its group's commit is known (and on disk).
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One queued write transaction.
pub trait Job: Send {
    /// Runs the transaction in a savepoint of the group's transaction.
    fn run(self: Box<Self>, conn: &mut Conn<'_>) -> Reply;
    /// The group could not start: answer without running.
    fn fail(self: Box<Self>, why: String);
    /// Whether the transaction may run more than once, only its last run's writes being
    /// kept (`Pool::tx_rerunnable`): then `run_bare` and `take_reply` are used.
    fn rerunnable(&self) -> bool {
        false
    }
    /// Runs the transaction in the group's transaction with no savepoint of its own and
    /// keeps its result; false if it failed (the group must then be rolled back).
    fn run_bare(&mut self, _conn: &mut Conn<'_>) -> bool {
        unreachable!("only a rerunnable transaction runs bare")
    }
    /// The answer of the last `run_bare`, once the commit is known.
    fn take_reply(self: Box<Self>) -> Reply {
        unreachable!("only a rerunnable transaction runs bare")
    }
}

/// Counts kept by the writer, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Transactions waiting for the writer (counted once sent, so briefly below zero when
    /// the writer takes one first).
    pub queued: AtomicI64,
    /// Transactions run (committed or rolled back).
    pub transactions: AtomicU64,
    /// Group transactions run: `transactions / groups` is the mean group size.
    pub groups: AtomicU64,
    /// Microseconds the writer has spent running groups, up to their commit (the sync of
    /// the WAL is not counted: it runs on the sync thread): its share of wall time tells how
    /// close to saturation it is.
    pub busy_us: AtomicU64,
    /// Checkpoints the writer ran itself to let the WAL start over (see `RESTART_FRAMES`).
    pub catch_ups: AtomicU64,
}

/// What of the database is known to be on disk, shared by the writer's threads and the
/// pool's connections (as the SQL function `gocua_durable`).
#[derive(Debug)]
pub struct Durable {
    wal: PathBuf,
    /// The largest change-log id known to be on disk.
    change_id: AtomicI64,
    /// Syncs of the WAL file done.
    pub syncs: AtomicU64,
    /// A sync failed: what the WAL holds may not be on disk, and a later sync that succeeds
    /// does not prove it is (the kernel may have dropped the pages). Writes stop.
    failed: AtomicBool,
}

diesel::define_sql_function! {
    /// Makes sure the change log up to `change_id` is on disk, syncing the WAL if the last
    /// sync was before it. Returns `change_id`, or the last id known to be on disk if the
    /// sync failed.
    fn gocua_durable(change_id: diesel::sql_types::BigInt) -> diesel::sql_types::BigInt;
}

impl Durable {
    /// For the database file at `db`.
    pub fn new(db: &str) -> Durable {
        Durable {
            wal: PathBuf::from(format!("{db}-wal")),
            change_id: AtomicI64::new(0),
            syncs: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// The largest change-log id known to be on disk.
    pub fn change_id(&self) -> i64 {
        self.change_id.load(Relaxed)
    }

    /// Syncs what the WAL file holds. No WAL file: the last connection checkpointed it into
    /// the database file, syncing that, and removed it.
    fn sync(&self) -> std::io::Result<()> {
        match std::fs::File::open(&self.wal) {
            Ok(f) => f.sync_data()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.syncs.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Syncs the WAL after commits whose change log ends at `change_id` (if any).
    fn sync_up_to(&self, change_id: Option<i64>) -> std::io::Result<()> {
        self.sync()
            .inspect_err(|_| self.failed.store(true, Relaxed))?;
        if let Some(id) = change_id {
            self.change_id.fetch_max(id, Relaxed);
        }
        Ok(())
    }

    /// `gocua_durable`: the change log up to `change_id`, read by a snapshot that started
    /// after those commits, is on disk once this returns `change_id`.
    pub fn ensure(&self, change_id: i64) -> i64 {
        if change_id <= self.change_id.load(Relaxed) {
            return change_id;
        }
        match self.sync_up_to(Some(change_id)) {
            Ok(()) => change_id,
            Err(e) => {
                tracing::error!(error = %e, "cannot sync the WAL to disk");
                self.change_id.load(Relaxed)
            }
        }
    }

    /// Makes `gocua_durable` callable on `conn`.
    pub fn register(
        self: &Arc<Self>,
        conn: &mut diesel::SqliteConnection,
    ) -> diesel::QueryResult<()> {
        let durable = self.clone();
        gocua_durable_utils::register_nondeterministic_impl(conn, move |id: i64| durable.ensure(id))
    }
}

/// The handle to the writer thread. The thread ends when every clone is dropped.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Box<dyn Job>>,
    pub stats: Arc<Stats>,
    pub durable: Arc<Durable>,
}

impl Writer {
    /// Queues a transaction; false if the writer has stopped.
    pub fn submit(&self, job: Box<dyn Job>) -> bool {
        let sent = self.sender.send(job).is_ok();
        if sent {
            self.stats.queued.fetch_add(1, Relaxed);
        }
        sent
    }
}

/// A group committed but not yet synced: its transactions' replies, and where its change log
/// ends.
struct Committed {
    replies: Vec<Reply>,
    change_id: Option<i64>,
}

/// Starts the writer thread, its sync thread and its checkpoint thread.
pub fn start(pool: SqlitePool, durable: Arc<Durable>) -> std::io::Result<Writer> {
    let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
    let stats = Arc::new(Stats::default());
    // One pending nudge is enough: a checkpoint copies whatever the WAL holds by then.
    let (nudge, nudged) = mpsc::sync_channel::<()>(1);
    let checkpoints = pool.clone();
    let catch_up = Arc::new(AtomicBool::new(false));
    let catch_up_wanted = catch_up.clone();
    std::thread::Builder::new()
        .name("gocua-sqlite-checkpoint".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            while nudged.recv().is_ok() {
                // Nudges that come meanwhile wait in the channel, as one.
                if let Some(wait) = last.map(|t| CHECKPOINT_EVERY.saturating_sub(t.elapsed())) {
                    std::thread::sleep(wait);
                }
                last = Some(Instant::now());
                match checkpoints
                    .get()
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| checkpoint(&mut c).map_err(|e| e.to_string()))
                {
                    // Another checkpoint (the writer's) was running: again after the next
                    // commit, without waiting.
                    Ok(c) if c.busy != 0 => last = None,
                    // The writer copies the rest: then nothing is left for the next group
                    // to wait for, and it starts the WAL over.
                    Ok(c) => catch_up_wanted.store(c.log >= RESTART_FRAMES, Relaxed),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "WAL checkpoint failed; retried after the next commit"
                    ),
                }
            }
        })?;
    let (to_sync, committed) = mpsc::channel::<Committed>();
    let syncing = durable.clone();
    std::thread::Builder::new()
        .name("gocua-sqlite-sync".into())
        .spawn(move || {
            while let Ok(first) = committed.recv() {
                // Every group committed by now shares this sync.
                let mut groups = vec![first];
                groups.extend(committed.try_iter());
                let change_id = groups.iter().filter_map(|g| g.change_id).max();
                let synced = syncing.sync_up_to(change_id).map_err(|e| {
                    tracing::error!(error = %e, "cannot sync the WAL to disk; writes stop");
                    format!("cannot sync the database to disk: {e}")
                });
                for reply in groups.into_iter().flat_map(|g| g.replies) {
                    reply(synced.clone());
                }
            }
        })?;
    let counts = stats.clone();
    let writing = durable.clone();
    std::thread::Builder::new()
        .name("gocua-sqlite-writer".into())
        .spawn(move || {
            let mut held: Option<Held> = None;
            // A pool of one or two connections is left to the readers between groups.
            let keep = pool.max_size() > 2;
            loop {
                let next = match held {
                    // Busy: the connection is kept for the next group, whose pages are then
                    // still in its cache.
                    Some(_) => match rx.recv_timeout(KEEP_CONNECTION) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            release(held.take());
                            continue;
                        }
                        next => next.ok(),
                    },
                    None => rx.recv().ok(),
                };
                let Some(first) = next else { break };
                let mut group = vec![first];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                counts.queued.fetch_sub(group.len() as i64, Relaxed);
                let started = Instant::now();
                run_group(&pool, &mut held, &counts, &writing, &to_sync, group);
                if let Some(pc) = held.as_mut().filter(|_| catch_up.swap(false, Relaxed)) {
                    match checkpoint(pc) {
                        Ok(c) if c.busy == 0 && c.checkpointed == c.log => {
                            counts.catch_ups.fetch_add(1, Relaxed);
                        }
                        // The checkpoint thread was copying: again after the next group.
                        Ok(c) if c.busy != 0 => catch_up.store(true, Relaxed),
                        // A reader still needs the frames left: the thread asks again.
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint by the writer failed"),
                    }
                }
                if !keep {
                    release(held.take());
                }
                let busy = started.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
                counts.busy_us.fetch_add(busy, Relaxed);
                let _ = nudge.try_send(());
            }
            release(held);
        })?;
    Ok(Writer {
        sender: tx,
        stats,
        durable,
    })
}

/// The pool's connection the writer holds while it is busy, set to `synchronous = NORMAL`
/// (the sync thread syncs).
type Held = PooledConnection<ConnectionManager<SqliteConnection>>;

/// Hands the writer's connection back to the pool as it came, syncing in full.
fn release(held: Option<Held>) {
    if let Some(mut pc) = held {
        let reset = format!("PRAGMA synchronous = FULL; {}", super::SQLITE_READER_CACHE);
        if let Err(e) = pc.batch_execute(&reset) {
            tracing::error!(error = %e, "cannot set a connection back to synchronous = FULL");
        }
    }
}

fn run_group(
    pool: &SqlitePool,
    held: &mut Option<Held>,
    counts: &Stats,
    durable: &Durable,
    to_sync: &mpsc::Sender<Committed>,
    group: Vec<Box<dyn Job>>,
) {
    // Counted before anyone hears back.
    counts.transactions.fetch_add(group.len() as u64, Relaxed);
    counts.groups.fetch_add(1, Relaxed);
    if durable.failed.load(Relaxed) {
        let why = "an earlier sync of the database to disk failed; restart the service".to_owned();
        return group.into_iter().for_each(|j| j.fail(why.clone()));
    }
    if held.is_none() {
        match pool.get().map_err(|e| e.to_string()).and_then(|mut pc| {
            pc.batch_execute(&format!(
                "PRAGMA synchronous = NORMAL; {}",
                super::SQLITE_WRITER_CACHE
            ))
            .map(|()| pc)
            .map_err(|e| e.to_string())
        }) {
            Ok(pc) => *held = Some(pc),
            Err(e) => return group.into_iter().for_each(|j| j.fail(e.clone())),
        }
    }
    let Some(pc) = held.as_mut() else { return };
    let outcome = run_on(pc, group);
    // Where the change log ends now (none in a database without it, as in unit tests).
    let change_id = changes::table
        .select(diesel::dsl::max(changes::id))
        .first::<Option<i64>>(&mut **pc)
        .ok()
        .flatten();
    let Some((replies, committed)) = outcome else {
        // The group could not begin: the connection goes back.
        release(held.take());
        return;
    };
    if committed.is_err() {
        release(held.take());
    }
    match committed {
        Ok(()) => {
            if let Err(mpsc::SendError(g)) = to_sync.send(Committed { replies, change_id }) {
                // The sync thread is gone (it only ends with the process).
                let why = "the sync thread has stopped".to_owned();
                g.replies.into_iter().for_each(|r| r(Err(why.clone())));
            }
        }
        Err(e) => replies.into_iter().for_each(|r| r(Err(e.clone()))),
    }
}

/// Runs the group on `pc`: its answers and its commit's outcome, or none if it could not
/// begin (its transactions are then answered).
fn run_on(
    pc: &mut diesel::SqliteConnection,
    mut group: Vec<Box<dyn Job>>,
) -> Option<(Vec<Reply>, Result<(), String>)> {
    if group.iter().all(|j| j.rerunnable()) {
        // With no savepoints, which cost a copy of every page a transaction changes first:
        // if all succeed the group commits as it is; if one fails, the whole group is rolled
        // back and runs again below, each transaction in its savepoint.
        let mut entered = false;
        let bare = pc.immediate_transaction(|c| {
            entered = true;
            let conn = &mut Conn::Sqlite(c);
            match group.iter_mut().all(|j| j.run_bare(conn)) {
                true => Ok(()),
                false => Err(diesel::result::Error::RollbackTransaction),
            }
        });
        match bare {
            Err(diesel::result::Error::RollbackTransaction) => {}
            // BEGIN failed: nothing ran.
            Err(e) if !entered => {
                let why = e.to_string();
                group.into_iter().for_each(|j| j.fail(why.clone()));
                return None;
            }
            committed => {
                let replies = group.into_iter().map(|j| j.take_reply()).collect();
                return Some((replies, committed.map_err(|e| e.to_string())));
            }
        }
    }
    let mut pending = Some(group);
    let mut replies = Vec::new();
    let committed = pc.immediate_transaction(|c| {
        for job in pending.take().unwrap_or_default() {
            replies.push(job.run(&mut Conn::Sqlite(c)));
        }
        Ok::<_, diesel::result::Error>(())
    });
    // BEGIN failed: nothing ran.
    if let Some(group) = pending {
        let why = committed.err().map(|e| e.to_string()).unwrap_or_default();
        group.into_iter().for_each(|j| j.fail(why.clone()));
        return None;
    }
    Some((replies, committed.map_err(|e| e.to_string())))
}

/// Runs a transaction's body, a panic becoming an internal error.
fn guarded<T, E: From<RunError>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(RunError::Internal(anyhow::anyhow!("a write transaction panicked")).into())
    })
}

/// Sends `result` once the commit is known: a transaction that succeeded but whose commit
/// failed is answered 503.
fn answer<T: Send + 'static, E: From<RunError> + Send + 'static>(
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    result: Result<T, E>,
) -> Reply {
    Box::new(move |committed| {
        let _ = reply.send(match committed {
            Ok(()) => result,
            Err(e) if result.is_ok() => Err(RunError::Unavailable(anyhow::anyhow!(
                "the commit failed or did not reach the disk: {e}"
            ))
            .into()),
            Err(_) => result,
        });
    })
}

/// Answers a transaction that could not start.
fn refuse<T, E: From<RunError>>(reply: tokio::sync::oneshot::Sender<Result<T, E>>, why: String) {
    let _ = reply.send(Err(RunError::Unavailable(anyhow::anyhow!(
        "cannot start a write transaction: {why}"
    ))
    .into()));
}

/// A transaction `f` whose result goes back through `reply`.
pub struct TxJob<T, E, F> {
    pub f: F,
    pub reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    pub span: tracing::Span,
}

impl<T, E, F> Job for TxJob<T, E, F>
where
    F: FnOnce(&mut Conn<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<RunError> + From<diesel::result::Error> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Conn<'_>) -> Reply {
        let TxJob { f, reply, span } = *self;
        let _entered = span.enter();
        answer(reply, conn.savepoint(|c| guarded(|| f(c))))
    }

    fn fail(self: Box<Self>, why: String) {
        refuse(self.reply, why)
    }
}

/// A transaction `f` that may run more than once (`Pool::tx_rerunnable`), whose last run's
/// result goes back through `reply`.
pub struct RerunJob<T, E, F> {
    pub f: F,
    pub reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    pub span: tracing::Span,
    pub bare: Option<Result<T, E>>,
}

impl<T, E, F> Job for RerunJob<T, E, F>
where
    F: Fn(&mut Conn<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<RunError> + From<diesel::result::Error> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Conn<'_>) -> Reply {
        let _entered = self.span.enter();
        let result = conn.savepoint(|c| guarded(|| (self.f)(c)));
        answer(self.reply, result)
    }

    fn fail(self: Box<Self>, why: String) {
        refuse(self.reply, why)
    }

    fn rerunnable(&self) -> bool {
        true
    }

    fn run_bare(&mut self, conn: &mut Conn<'_>) -> bool {
        let _entered = self.span.enter();
        let result = guarded(|| (self.f)(conn));
        let ok = result.is_ok();
        self.bare = Some(result);
        ok
    }

    fn take_reply(self: Box<Self>) -> Reply {
        let result = self.bare.unwrap_or_else(|| {
            Err(
                RunError::Internal(anyhow::anyhow!("a transaction was answered before it ran"))
                    .into(),
            )
        });
        answer(self.reply, result)
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
