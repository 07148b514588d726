//! Tests of the SQLite writer: group commits, savepoints, reruns, failures.

use crate::db::{Conn, Pool, RunError};
use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, RunQueryDsl};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Why a test's transaction failed, by the code the assertions compare.
#[derive(Debug)]
struct Failed {
    code: &'static str,
}

impl Failed {
    /// A transaction refused after it wrote (a rule of the caller's).
    const REFUSED: Failed = Failed {
        code: "validation_failed",
    };
}

impl From<diesel::result::Error> for Failed {
    fn from(_: diesel::result::Error) -> Self {
        Failed { code: "database" }
    }
}

impl From<RunError> for Failed {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Unavailable(_) => Failed {
                code: "unavailable",
            },
            RunError::Internal(_) => Failed { code: "internal" },
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    name: String,
}

fn insert(conn: &mut Conn<'_>, name: &str) -> Result<(), Failed> {
    let Conn::Sqlite(c) = conn else {
        unreachable!()
    };
    diesel::sql_query("INSERT INTO t (name) VALUES (?)")
        .bind::<Text, _>(name)
        .execute(*c)?;
    Ok(())
}

/// A pool on a new database file in a temporary directory (removed when dropped).
fn temp_pool() -> (tempfile::TempDir, std::path::PathBuf, Pool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.db");
    let url = format!("sqlite://{}", file.display());
    let pool = Pool::connect(&url, 4, Duration::from_secs(5)).unwrap();
    (dir, file, pool)
}

/// A pool on a new database with the table `t` of names.
async fn pool_with_names() -> (tempfile::TempDir, Pool) {
    let (dir, _, pool) = temp_pool();
    pool.tx(|c| {
        let Conn::Sqlite(c) = c else { unreachable!() };
        c.batch_execute("CREATE TABLE t (name text NOT NULL)")?;
        Ok::<_, Failed>(())
    })
    .await
    .unwrap();
    (dir, pool)
}

/// The names in `t`, in insertion order.
async fn names(pool: &Pool) -> Vec<Row> {
    pool.tx(|c| {
        let Conn::Sqlite(c) = c else { unreachable!() };
        Ok::<_, Failed>(diesel::sql_query("SELECT name FROM t ORDER BY rowid").load(*c)?)
    })
    .await
    .unwrap()
}

/// Starts a transaction that holds the writer (and inserts "gate") until `open` sends.
async fn hold_writer(
    pool: &Pool,
) -> (
    tokio::task::JoinHandle<Result<(), Failed>>,
    std::sync::mpsc::Sender<()>,
) {
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
    (first, open)
}

/// A group of rerunnable transactions that all succeed commits with each run once, and no
/// savepoints; when one fails after writing, the group is rolled back and runs again,
/// each in its savepoint: the failing one leaves nothing, the others commit once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunnable_transactions_run_again_when_one_of_their_group_fails() {
    let (_dir, pool) = pool_with_names().await;
    let stats = &pool.writer().unwrap().stats;
    for (round, hows) in [["ok", "ok", "ok"], ["ok", "fails", "ok"]]
        .iter()
        .enumerate()
    {
        let (first, open) = hold_writer(&pool).await;
        let mut jobs = Vec::new();
        for (i, how) in hows.iter().copied().enumerate() {
            let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let queued = stats.queued.load(Relaxed);
            let (pool, counted) = (pool.clone(), runs.clone());
            let answer = tokio::spawn(async move {
                pool.tx_rerunnable(move |c| {
                    counted.fetch_add(1, Relaxed);
                    insert(c, &format!("{how} {round}.{i}"))?;
                    match how {
                        "fails" => Err(Failed::REFUSED),
                        _ => Ok(()),
                    }
                })
                .await
            });
            // Queued in this order.
            while stats.queued.load(Relaxed) == queued {
                tokio::task::yield_now().await;
            }
            jobs.push((answer, runs));
        }
        let groups = stats.groups.load(Relaxed);
        open.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut outcome = Vec::new();
        for (answer, runs) in jobs {
            let code = answer
                .await
                .unwrap()
                .map(|_| "ok")
                .unwrap_or_else(|e| e.code);
            outcome.push((code, runs.load(Relaxed)));
        }
        assert_eq!(stats.groups.load(Relaxed), groups + 1);
        // Round 1: one bare run each. Round 2: the bare run stopped at the failure, then
        // all three ran in savepoints.
        let want: &[(&str, usize)] = match round {
            0 => &[("ok", 1), ("ok", 1), ("ok", 1)],
            _ => &[("ok", 2), ("validation_failed", 2), ("ok", 1)],
        };
        assert_eq!(outcome, want);
    }
    let rows = names(&pool).await;
    let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["gate", "ok 0.0", "ok 0.1", "ok 0.2", "gate", "ok 1.0", "ok 1.2"]
    );
}

/// Transactions queued while the writer is busy share the next commit; one that fails or
/// panics rolls back alone and the others still commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_transactions_share_a_commit_and_fail_alone() {
    let (_dir, pool) = pool_with_names().await;
    // The first transaction holds the writer until the others are queued.
    let (first, open) = hold_writer(&pool).await;
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
                    "fails" => Err(Failed::REFUSED),
                    "panics" => panic!("a bug after a write"),
                    _ => Ok(()),
                }
            })
            .await
        }));
    }
    // Queued: the writer thread has not taken them, since it is still in the first.
    let stats = &pool.writer().unwrap().stats;
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
    let rows = names(&pool).await;
    let mut names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
    // The five were queued from tasks on two threads, in no fixed order.
    names.sort();
    assert_eq!(names, ["gate", "ok 0", "ok 2", "ok 4"]);
}

/// A transaction is answered once the sync thread has synced the WAL past its commit. A
/// commit by another connection (another process) is synced by the first `gocua_durable`
/// that asks for it, and only by that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_pulls_wait_for_the_wal_sync() {
    let (_dir, file, pool) = temp_pool();
    let durable = pool.writer().unwrap().durable.clone();
    let exec = |sql: &'static str| {
        pool.tx(move |c| {
            let Conn::Sqlite(c) = c else { unreachable!() };
            c.batch_execute(sql)?;
            Ok::<_, Failed>(())
        })
    };
    exec("CREATE TABLE changes (id integer PRIMARY KEY AUTOINCREMENT, note text)")
        .await
        .unwrap();
    let before = durable.syncs.load(Relaxed);
    exec("INSERT INTO changes (note) VALUES ('a'), ('b'), ('c')")
        .await
        .unwrap();
    assert_eq!(durable.change_id(), 3);
    assert!(durable.syncs.load(Relaxed) > before);
    // The writer's connections went back to the pool syncing in full.
    let mut c = pool.get().unwrap();
    let crate::db::PooledConn::Sqlite(c) = &mut c else {
        unreachable!()
    };
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let ask = |c: &mut diesel::SqliteConnection, sql: &str| {
        diesel::sql_query(sql).get_result::<N>(c).unwrap().n
    };
    assert_eq!(ask(c, "SELECT synchronous AS n FROM pragma_synchronous"), 2);
    // Another process commits without syncing.
    let mut other = diesel::SqliteConnection::establish(file.to_str().unwrap()).unwrap();
    other
        .batch_execute(
            "PRAGMA synchronous = NORMAL; INSERT INTO changes (note) VALUES ('d'), ('e');",
        )
        .unwrap();
    let before = durable.syncs.load(Relaxed);
    let head = "SELECT gocua_durable(COALESCE(MAX(id), 0)) AS n FROM changes";
    assert_eq!(ask(c, head), 5);
    assert_eq!(durable.syncs.load(Relaxed), before + 1);
    assert_eq!(durable.change_id(), 5);
    assert_eq!(ask(c, head), 5);
    assert_eq!(ask(c, "SELECT gocua_durable(4) AS n"), 4);
    assert_eq!(durable.syncs.load(Relaxed), before + 1);
}

/// The writer keeps its connection while it is busy, and gives it back, syncing in full
/// again, once no transaction has come for `KEEP_CONNECTION`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_keeps_its_connection_only_while_busy() {
    use super::KEEP_CONNECTION;
    use std::time::Instant;
    let (_dir, pool) = pool_with_names().await;
    let add = |name: &'static str| {
        pool.tx(move |c| {
            let Conn::Sqlite(c) = c else { unreachable!() };
            diesel::sql_query("INSERT INTO t (name) VALUES (?)")
                .bind::<diesel::sql_types::Text, _>(name)
                .execute(*c)?;
            Ok::<_, Failed>(())
        })
    };
    add("Hoa").await.unwrap();
    add("Mạnh").await.unwrap();
    // The writer gives its connection back `KEEP_CONNECTION` after its last transaction
    // at the earliest. The checkpoint thread, nudged after each commit, may hold a second
    // one for a moment: look again until only the writer's is out. On a machine too slow
    // to look within that time, this is skipped.
    let answered = Instant::now();
    loop {
        let (open, idle, _) = pool.state();
        if answered.elapsed() >= KEEP_CONNECTION {
            break;
        }
        assert!(idle < open, "the writer gave its connection back at once");
        if idle + 1 == open {
            break;
        }
        assert_eq!(
            idle + 2,
            open,
            "the writer and the checkpoint hold one each"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Given back once idle (10 s at most).
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.state().1 < pool.state().0 {
        assert!(Instant::now() < deadline, "the writer kept its connection");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut all: Vec<_> = (0..pool.state().0).map(|_| pool.get().unwrap()).collect();
    for c in &mut all {
        let crate::db::PooledConn::Sqlite(c) = c else {
            unreachable!()
        };
        let n: Vec<Row> = diesel::sql_query("SELECT synchronous AS name FROM pragma_synchronous")
            .load(&mut **c)
            .unwrap();
        assert_eq!(n[0].name, "2", "every connection syncs in full");
    }
    drop(all);
    assert_eq!(names(&pool).await.len(), 2);
}

/// Commits do not checkpoint (`wal_autocheckpoint = 0`): the checkpoint thread copies
/// committed pages into the database file while the pool, and so the WAL, stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_thread_copies_commits_into_the_database_file() {
    let (_dir, file, pool) = temp_pool();
    let before = std::fs::metadata(&file).unwrap().len();
    pool.tx(|c| {
        let Conn::Sqlite(c) = c else { unreachable!() };
        c.batch_execute(
            "CREATE TABLE t (b blob NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256)
             INSERT INTO t SELECT randomblob(1024) FROM n;",
        )?;
        Ok::<_, Failed>(())
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

/// Under a steady stream of writes the checkpoint thread never finds the WAL all copied
/// before the next commit: the writer copies the rest itself between two groups, and the
/// WAL starts over instead of growing with every commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_of_writes_keeps_the_wal_short() {
    let (dir, pool) = pool_with_names().await;
    let stats = &pool.writer().unwrap().stats;
    // Transactions of 16 KiB each (some five pages), 64 of them always waiting, so that
    // the writer runs group after group with no pause, until the WAL has started over
    // three times (each time from its first frame: the file then holds at most the
    // longest of those runs, less than all of them).
    let big = "x".repeat(16 * 1024);
    let mut waiting = std::collections::VecDeque::new();
    let mut written = 0;
    while stats.catch_ups.load(Relaxed) < 3 {
        // A few MiB do it; without catch-ups the WAL would take all of this.
        assert!(
            written < 1 << 30,
            "{} catch-ups after {written} bytes",
            stats.catch_ups.load(Relaxed)
        );
        while waiting.len() < 64 {
            written += big.len() as u64;
            let (pool, big) = (pool.clone(), big.clone());
            waiting.push_back(tokio::spawn(async move {
                pool.tx(move |c| insert(c, &big)).await
            }));
        }
        waiting.pop_front().unwrap().await.unwrap().unwrap();
    }
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    let rows = names(&pool).await.len() as u64;
    assert_eq!(rows * 16 * 1024, written);
    let wal = std::fs::metadata(dir.path().join("w.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < written,
        "the WAL file grew to {wal} bytes for {written} bytes written"
    );
}
