//! Group commit for SQLite. One writer thread runs the write transactions of the whole
//! process. It takes every transaction waiting in the queue into one `BEGIN IMMEDIATE …
//! COMMIT`, each in its own savepoint: a transaction that fails rolls back alone, and the
//! others share one commit, and so one fsync of the WAL. Nobody hears back before the commit
//! is on disk.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread of their own,
//! after commits, in `PASSIVE` mode: the writer never waits for one.

use super::{Conn, SqlitePool};
use crate::error::ApiError;
use diesel::connection::SimpleConnection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};

/// At most this many transactions share one commit.
const GROUP: usize = 32;

/// What a finished transaction does once its group's commit is known.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One queued write transaction.
pub trait Job: Send {
    /// Runs the transaction in a savepoint of the group's transaction.
    fn run(self: Box<Self>, conn: &mut Conn<'_>) -> Reply;
    /// The group could not start: answer without running.
    fn fail(self: Box<Self>, why: String);
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
    /// Microseconds the writer has spent running groups (commits included): its share of
    /// wall time tells how close to saturation it is.
    pub busy_us: AtomicU64,
}

/// The handle to the writer thread. The thread ends when every clone is dropped.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Box<dyn Job>>,
    pub stats: Arc<Stats>,
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

/// Starts the writer thread and its checkpoint thread.
pub fn start(pool: SqlitePool) -> std::io::Result<Writer> {
    let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
    let stats = Arc::new(Stats::default());
    // One pending nudge is enough: a checkpoint copies whatever the WAL holds by then.
    let (nudge, nudged) = mpsc::sync_channel::<()>(1);
    let checkpoints = pool.clone();
    std::thread::Builder::new()
        .name("gocua-sqlite-checkpoint".into())
        .spawn(move || {
            while nudged.recv().is_ok() {
                if let Err(e) = checkpoints.get().map_err(|e| e.to_string()).and_then(|mut c| {
                    c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")
                        .map_err(|e| e.to_string())
                }) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retried after the next commit");
                }
            }
        })?;
    let counts = stats.clone();
    std::thread::Builder::new()
        .name("gocua-sqlite-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                counts.queued.fetch_sub(group.len() as i64, Relaxed);
                let started = std::time::Instant::now();
                run_group(&pool, &counts, group);
                let busy = started.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
                counts.busy_us.fetch_add(busy, Relaxed);
                let _ = nudge.try_send(());
            }
        })?;
    Ok(Writer { sender: tx, stats })
}

fn run_group(pool: &SqlitePool, counts: &Stats, group: Vec<Box<dyn Job>>) {
    // Counted before anyone hears back.
    counts.transactions.fetch_add(group.len() as u64, Relaxed);
    counts.groups.fetch_add(1, Relaxed);
    let mut pc = match pool.get() {
        Ok(pc) => pc,
        Err(e) => return group.into_iter().for_each(|j| j.fail(e.to_string())),
    };
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
        return group.into_iter().for_each(|j| j.fail(why.clone()));
    }
    let committed = committed.map_err(|e| e.to_string());
    for reply in replies {
        reply(committed.clone());
    }
}

/// A transaction `f` whose result goes back through `reply`.
pub struct TxJob<T, F> {
    pub f: F,
    pub reply: tokio::sync::oneshot::Sender<Result<T, ApiError>>,
    pub span: tracing::Span,
}

impl<T, F> Job for TxJob<T, F>
where
    F: FnOnce(&mut Conn<'_>) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Conn<'_>) -> Reply {
        let TxJob { f, reply, span } = *self;
        let _entered = span.enter();
        let result = conn.savepoint(|c| {
            catch_unwind(AssertUnwindSafe(|| f(c))).unwrap_or_else(|_| {
                Err(ApiError::internal(anyhow::anyhow!(
                    "a write transaction panicked"
                )))
            })
        });
        Box::new(move |committed| {
            let _ = reply.send(match committed {
                Ok(()) => result,
                Err(e) if result.is_ok() => Err(ApiError::unavailable(anyhow::anyhow!(
                    "the commit failed: {e}"
                ))),
                Err(_) => result,
            });
        })
    }

    fn fail(self: Box<Self>, why: String) {
        let _ = self.reply.send(Err(ApiError::unavailable(anyhow::anyhow!(
            "cannot start a write transaction: {why}"
        ))));
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{Conn, Pool};
    use crate::error::ApiError;
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        name: String,
    }

    fn insert(conn: &mut Conn<'_>, name: &str) -> Result<(), ApiError> {
        let Conn::Sqlite(c) = conn else {
            unreachable!()
        };
        diesel::sql_query("INSERT INTO t (name) VALUES (?)")
            .bind::<Text, _>(name)
            .execute(*c)?;
        Ok(())
    }

    /// Transactions queued while the writer is busy share the next commit; one that fails or
    /// panics rolls back alone and the others still commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_transactions_share_a_commit_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let pool = Pool::connect(&url, 4, Duration::from_secs(5)).unwrap();
        pool.tx(|c| {
            let Conn::Sqlite(c) = c else { unreachable!() };
            c.batch_execute("CREATE TABLE t (name text NOT NULL)")?;
            Ok(())
        })
        .await
        .unwrap();
        // The first transaction holds the writer until the others are queued.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.tx(move |c| {
                    started.send(()).unwrap();
                    gate.recv().unwrap();
                    insert(c, "gate")
                })
                .await
            }
        });
        running.await.unwrap();
        let mut rest = Vec::new();
        for (i, how) in ["ok", "fails", "ok", "panics", "ok"]
            .into_iter()
            .enumerate()
        {
            let pool = pool.clone();
            rest.push(tokio::spawn(async move {
                pool.tx(move |c| {
                    insert(c, &format!("{how} {i}"))?;
                    match how {
                        "fails" => Err(ApiError::invalid("x", "bad", "refused after a write")),
                        "panics" => panic!("a bug after a write"),
                        _ => Ok(()),
                    }
                })
                .await
            }));
        }
        // Queued: the writer thread has not taken them, since it is still in the first.
        let stats = pool.writer_stats().unwrap();
        while stats.queued.load(Relaxed) < 5 {
            tokio::task::yield_now().await;
        }
        let groups = stats.groups.load(Relaxed);
        open.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for t in rest {
            answers.push(t.await.unwrap());
        }
        // One more group (the first was counted when it started): all five shared it.
        assert_eq!(stats.groups.load(Relaxed), groups + 1);
        let codes: Vec<_> = answers
            .iter()
            .map(|r| r.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code))
            .collect();
        assert_eq!(codes, ["ok", "validation_failed", "ok", "internal", "ok"]);
        let rows: Vec<Row> = pool
            .tx(|c| {
                let Conn::Sqlite(c) = c else { unreachable!() };
                Ok(diesel::sql_query("SELECT name FROM t ORDER BY rowid").load(*c)?)
            })
            .await
            .unwrap();
        let mut names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        // The five were queued from tasks on two threads, in no fixed order.
        names.sort();
        assert_eq!(names, ["gate", "ok 0", "ok 2", "ok 4"]);
    }

    /// Commits do not checkpoint (`wal_autocheckpoint = 0`): the checkpoint thread copies
    /// committed pages into the database file while the pool, and so the WAL, stays open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_thread_copies_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.db");
        let pool = Pool::connect(
            &format!("sqlite://{}", file.display()),
            4,
            Duration::from_secs(5),
        )
        .unwrap();
        let before = std::fs::metadata(&file).unwrap().len();
        pool.tx(|c| {
            let Conn::Sqlite(c) = c else { unreachable!() };
            c.batch_execute(
                "CREATE TABLE t (b blob NOT NULL);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256)
                 INSERT INTO t SELECT randomblob(1024) FROM n;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
        // 256 KiB were committed to the WAL; wait (10 s at most) for them in the file.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&file).unwrap().len() < before + 256 * 1024 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint: the file stayed at {} bytes",
                std::fs::metadata(&file).unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
