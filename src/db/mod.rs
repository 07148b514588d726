//! The connection pool over PostgreSQL or SQLite, picked from the URL scheme.
//!
//! Store code is written once with diesel's DSL and run on the concrete connection through
//! `with_conn!`, which sidesteps what `MultiConnection` cannot express (upserts, batch
//! inserts, custom types).

pub mod any;
pub mod prepared;
pub mod replica;
pub mod schema;
pub mod sql;
mod sqlite;
pub mod unnest;
pub mod writer;

pub use sqlite::sqlite_path;
use sqlite::{sqlite_global_config, SqliteSetup, SQLITE_TEMP_STORE};
pub(crate) use sqlite::{SQLITE_READER_CACHE, SQLITE_WRITER_CACHE};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

type PgPool = diesel::r2d2::Pool<ConnectionManager<PgConnection>>;
pub(crate) type SqlitePool = diesel::r2d2::Pool<ConnectionManager<SqliteConnection>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A borrowed connection of either backend: what store functions take.
pub enum Conn<'a> {
    Pg(&'a mut PgConnection),
    Sqlite(&'a mut SqliteConnection),
}

/// Runs the same diesel code on whichever connection `$conn` (a `&mut Conn`) holds.
#[macro_export]
macro_rules! with_conn {
    // `|c: DB|` also names the backend type, for boxed expressions.
    ($conn:expr, |$c:ident : $db:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Pg($c) => {
                #[allow(dead_code)]
                type $db = diesel::pg::Pg;
                let $c: &mut diesel::PgConnection = &mut **$c;
                $body
            }
            $crate::db::Conn::Sqlite($c) => {
                #[allow(dead_code)]
                type $db = diesel::sqlite::Sqlite;
                let $c: &mut diesel::SqliteConnection = &mut **$c;
                $body
            }
        }
    };
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Pg($c) => {
                let $c: &mut diesel::PgConnection = &mut **$c;
                $body
            }
            $crate::db::Conn::Sqlite($c) => {
                let $c: &mut diesel::SqliteConnection = &mut **$c;
                $body
            }
        }
    };
}

/// Inserts a slice of rows (`&[R]`, where `&R` is insertable into `$table`): a
/// `QueryResult` of the number inserted.
///
/// On PostgreSQL: multi-row statements of up to 500 rows, one round trip each. On SQLite,
/// where there is no round trip but parsing a statement of hundreds of parameters costs more
/// than running it: statements of fixed sizes (64 rows, then 8, then 1), which diesel keeps
/// prepared, where a statement of any other length would be parsed anew every time.
#[macro_export]
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        (|| -> diesel::QueryResult<usize> {
            let rows = $rows;
            let mut n = 0usize;
            match $conn {
                $crate::db::Conn::Pg(c) => {
                    for chunk in rows.chunks(500) {
                        n += diesel::insert_into($table)
                            .values(chunk)
                            .execute(&mut **c)?;
                    }
                }
                $crate::db::Conn::Sqlite(c) => {
                    let c: &mut diesel::SqliteConnection = &mut **c;
                    let mut rest = rows;
                    while let Some((chunk, tail)) = rest.split_first_chunk::<64>() {
                        n += diesel::insert_into($table).values(chunk).execute(c)?;
                        rest = tail;
                    }
                    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
                        n += diesel::insert_into($table).values(chunk).execute(c)?;
                        rest = tail;
                    }
                    for row in rest {
                        n += diesel::insert_into($table).values(row).execute(c)?;
                    }
                }
            }
            Ok(n)
        })()
    };
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Pg(_) => Backend::Postgres,
            Conn::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Runs `f` in one transaction. On SQLite it is `BEGIN IMMEDIATE`, so writers queue on
    /// the lock up front instead of failing when a read transaction tries to upgrade.
    pub fn transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match self {
            Conn::Pg(c) => c.transaction(|c| f(&mut Conn::Pg(c))),
            Conn::Sqlite(c) => c.immediate_transaction(|c| f(&mut Conn::Sqlite(c))),
        }
    }
}

impl Conn<'_> {
    /// Runs `f` in a savepoint of the current transaction: its writes roll back alone when it
    /// fails.
    pub fn savepoint<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match self {
            Conn::Pg(c) => c.transaction(|c| f(&mut Conn::Pg(c))),
            Conn::Sqlite(c) => c.transaction(|c| f(&mut Conn::Sqlite(c))),
        }
    }

    /// Like `transaction`, for one that rewrites much of the database (a reorganization): on
    /// SQLite its savepoint and statement journals go to temporary files, which SQLite keeps
    /// in memory up to 64 KiB. Kept in memory, as they are for the many small transactions
    /// of sync (about 20% faster there), every statement inside a savepoint journals again
    /// each page it touches until the savepoint ends: 0.9 GiB for the national table. The
    /// setting is taken when the transaction begins, so this runs outside the writer, on its
    /// own connection, and holds the write lock until it ends.
    pub fn large_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        if let Conn::Sqlite(c) = self {
            c.batch_execute("PRAGMA temp_store = FILE;")?;
        }
        let res = self.transaction(f);
        if let Conn::Sqlite(c) = self {
            c.batch_execute(SQLITE_TEMP_STORE)?;
        }
        res
    }

    /// Sets this connection up for a command that reads and writes a whole database (`gocua
    /// duplicates scan`): on SQLite a page cache of 64 MiB rather than a pooled connection's
    /// 4 MiB, for the pages its large transaction writes. For a command's own connection,
    /// dropped when it ends.
    pub fn for_whole_database(&mut self) -> Result<(), diesel::result::Error> {
        if let Conn::Sqlite(c) = self {
            c.batch_execute("PRAGMA cache_size = -65536;")?;
        }
        Ok(())
    }

    /// Where SQLite keeps this connection's temporary tables and journals: in files (for a
    /// command that fills a temporary table and then runs one large transaction) or, as
    /// pooled connections keep them, in memory. Changing it drops the connection's temporary
    /// tables. Nothing on PostgreSQL.
    pub fn temporary_in_files(&mut self, files: bool) -> Result<(), diesel::result::Error> {
        if let Conn::Sqlite(c) = self {
            c.batch_execute(match files {
                true => "PRAGMA temp_store = FILE;",
                false => SQLITE_TEMP_STORE,
            })?;
        }
        Ok(())
    }

    /// Runs `f` in one read-only snapshot: `REPEATABLE READ` on PostgreSQL, a deferred
    /// transaction (a WAL snapshot from its first read) on SQLite.
    pub fn read_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match self {
            Conn::Pg(c) => c
                .build_transaction()
                .repeatable_read()
                .read_only()
                .run(|c| f(&mut Conn::Pg(c))),
            Conn::Sqlite(c) => c.transaction(|c| f(&mut Conn::Sqlite(c))),
        }
    }
}

#[derive(Clone)]
pub enum Pool {
    Pg(PgPool),
    /// SQLite has one writer at a time: the write transactions of this process go to one
    /// writer thread, which commits those waiting together (see `writer`).
    Sqlite(SqlitePool, writer::Writer),
}

pub enum PooledConn {
    Pg(PooledConnection<ConnectionManager<PgConnection>>),
    Sqlite(PooledConnection<ConnectionManager<SqliteConnection>>),
}

impl PooledConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            PooledConn::Pg(c) => Conn::Pg(c),
            PooledConn::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL `{0}`: use postgres://… or sqlite://…")]
    Scheme(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("migrations failed: {0}")]
    Migrate(String),
}

/// What running work on the database can fail with, besides the work's own error (which
/// converts from it): the database layer knows nothing of the callers' errors or of HTTP.
#[derive(Debug)]
pub enum RunError {
    /// No connection in time, a writer that stopped or refuses writes, a commit that did not
    /// reach the disk: retry later.
    Unavailable(anyhow::Error),
    /// A blocking task or a transaction failed unexpectedly (a panic, a dropped answer).
    Internal(anyhow::Error),
}

impl Pool {
    /// Connects once directly, so that a failure shows the database's own message rather
    /// than the pool's time-out, then builds the pool.
    pub fn connect(url: &str, size: u32, timeout: Duration) -> Result<Pool, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnection::establish(url).map_err(|e| DbError::Connect(e.to_string()))?;
            // No test query at checkout: it is a round trip per request, and a connection
            // that broke fails its first statement anyway (diesel then drops it from the pool).
            let pool = diesel::r2d2::Pool::builder()
                .max_size(size)
                .connection_timeout(timeout)
                .test_on_check_out(false)
                .build(ConnectionManager::<PgConnection>::new(url))?;
            Ok(Pool::Pg(pool))
        } else if let Some(path) = sqlite_path(url) {
            sqlite_global_config();
            // WAL is a property of the file: set it once, before the pool opens connections.
            // The busy timeout first: another process (a server, a command, a pool of this
            // process still closing) may hold the file's lock for a moment.
            SqliteConnection::establish(path)
                .map_err(|e| DbError::Connect(e.to_string()))?
                .batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
                .map_err(|e| DbError::Connect(e.to_string()))?;
            let durable = std::sync::Arc::new(writer::Durable::new(path));
            let pool = diesel::r2d2::Pool::builder()
                .max_size(size)
                .connection_timeout(timeout)
                .connection_customizer(Box::new(SqliteSetup(durable.clone())))
                .build(ConnectionManager::<SqliteConnection>::new(path))?;
            let writer = writer::start(pool.clone(), durable)
                .map_err(|e| DbError::Connect(format!("cannot start the writer thread: {e}")))?;
            Ok(Pool::Sqlite(pool, writer))
        } else {
            Err(DbError::Scheme(url.chars().take(40).collect()))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Pool::Pg(_) => Backend::Postgres,
            Pool::Sqlite(..) => Backend::Sqlite,
        }
    }

    pub fn get(&self) -> Result<PooledConn, diesel::r2d2::PoolError> {
        Ok(match self {
            Pool::Pg(p) => PooledConn::Pg(p.get()?),
            Pool::Sqlite(p, _) => PooledConn::Sqlite(p.get()?),
        })
    }

    /// The SQLite writer (its counts, what is on disk); none on PostgreSQL.
    pub fn writer(&self) -> Option<&writer::Writer> {
        match self {
            Pool::Sqlite(_, w) => Some(w),
            Pool::Pg(_) => None,
        }
    }

    /// (connections open, connections idle, maximum size)
    pub fn state(&self) -> (u32, u32, u32) {
        let (s, max) = match self {
            Pool::Pg(p) => (p.state(), p.max_size()),
            Pool::Sqlite(p, _) => (p.state(), p.max_size()),
        };
        (s.connections, s.idle_connections, max)
    }

    /// Runs the pending migrations; answers their names. What the store derives from the
    /// migrated tables (the report tallies) is built by `store::migrate`, which calls this.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut pc = self.get()?;
        let done: Vec<String> = match &mut pc {
            PooledConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS),
            PooledConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(|e| DbError::Migrate(e.to_string()))?
        .iter()
        .map(|v| v.to_string())
        .collect();
        Ok(done)
    }

    /// Runs blocking database work on the blocking thread pool, never on the async threads,
    /// keeping the caller's tracing span.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<RunError> + Send + 'static,
    {
        let pool = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut pc = pool.get().map_err(|e| RunError::Unavailable(e.into()))?;
            f(&mut pc.conn())
        })
        .await
        .map_err(|e| RunError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }

    /// Like `tx`, for a transaction that may run more than once, only its last run's writes
    /// being kept (it must not act outside the database). On SQLite, a group commit made of
    /// such transactions runs them with no savepoint each, and runs them all again, each in
    /// its savepoint, if one fails.
    pub async fn tx_rerunnable<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&mut Conn<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<RunError> + From<diesel::result::Error> + Send + 'static,
    {
        match self {
            Pool::Sqlite(_, writer) => {
                let span = tracing::Span::current();
                let (reply, answer) = tokio::sync::oneshot::channel();
                let job = writer::RerunJob {
                    f,
                    reply,
                    span,
                    bare: None,
                };
                Self::submitted(writer, Box::new(job), answer).await
            }
            Pool::Pg(_) => self.tx(f).await,
        }
    }

    /// The answer of a job given to the writer.
    async fn submitted<T, E: From<RunError>>(
        writer: &writer::Writer,
        job: Box<dyn writer::Job>,
        answer: tokio::sync::oneshot::Receiver<Result<T, E>>,
    ) -> Result<T, E> {
        if !writer.submit(job) {
            return Err(RunError::Unavailable(anyhow::anyhow!("the writer has stopped")).into());
        }
        answer
            .await
            .map_err(|_| RunError::Internal(anyhow::anyhow!("the writer dropped a transaction")))?
    }

    /// Like `run`, inside one transaction. On SQLite the transaction runs on the writer
    /// thread, in a savepoint of a group commit; the answer comes once it is committed.
    pub async fn tx<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<RunError> + From<diesel::result::Error> + Send + 'static,
    {
        let span = tracing::Span::current();
        match self {
            Pool::Sqlite(_, writer) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let job = writer::TxJob { f, reply, span };
                Self::submitted(writer, Box::new(job), answer).await
            }
            Pool::Pg(_) => {
                let pool = self.clone();
                tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let mut pc = pool.get().map_err(|e| RunError::Unavailable(e.into()))?;
                    pc.conn().transaction(f)
                })
                .await
                .map_err(|e| RunError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Conn;
    use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
    use diesel::prelude::*;
    use std::sync::{Arc, Mutex};

    diesel::table! {
        rows (id) {
            id -> Integer,
            note -> Nullable<Text>,
        }
    }

    /// Like the stored records: an optional column that means NULL, not DEFAULT (in inserts
    /// and in updates).
    #[derive(Insertable, AsChangeset)]
    #[diesel(
        table_name = rows,
        treat_none_as_default_value = false,
        treat_none_as_null = true
    )]
    struct Row {
        id: i32,
        note: Option<String>,
    }

    impl super::prepared::FixedShape for Row {}

    /// (statements run, statements prepared and kept) per `insert_rows!` call.
    #[derive(Default)]
    struct Counts(Vec<(usize, usize)>);

    struct Counter(Arc<Mutex<Counts>>);

    impl Instrumentation for Counter {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            let mut c = self.0.lock().unwrap();
            let Some(last) = c.0.last_mut() else { return };
            match event {
                InstrumentationEvent::StartQuery { .. } => last.0 += 1,
                InstrumentationEvent::CacheQuery { .. } => last.1 += 1,
                _ => {}
            }
        }
    }

    /// On SQLite, 100 rows go in 9 statements (64 + 4 × 8 + 4 × 1 rows) of three shapes that
    /// are prepared once and reused: none is parsed again on the next call.
    #[test]
    fn sqlite_inserts_reuse_three_prepared_statements() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute("CREATE TABLE rows (id integer PRIMARY KEY, note text)")
            .unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        c.set_instrumentation(Counter(counts.clone()));
        for round in 0..2 {
            let batch: Vec<Row> = (0..100)
                .map(|i| Row {
                    id: round * 100 + i,
                    note: (i % 2 == 0).then(|| format!("ghi chú {i}")),
                })
                .collect();
            counts.lock().unwrap().0.push((0, 0));
            let n = crate::insert_rows!(&mut Conn::Sqlite(&mut c), rows::table, &batch[..]);
            assert_eq!(n.unwrap(), 100);
        }
        assert_eq!(counts.lock().unwrap().0, vec![(9, 3), (9, 0)]);
        let stored: Vec<(i32, Option<String>)> = rows::table
            .order(rows::id)
            .select((rows::id, rows::note))
            .load(&mut c)
            .unwrap();
        assert_eq!(stored.len(), 200);
        assert_eq!(stored[198], (198, Some("ghi chú 98".into())));
        assert_eq!(stored[199], (199, None));
    }

    /// `any_of` finds the rows of lists of any length with one statement, prepared on the
    /// first call and reused after, where `eq_any` makes a new one for each length.
    #[test]
    fn sqlite_any_of_is_one_prepared_statement_for_every_list() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(
            "CREATE TABLE rows (id integer PRIMARY KEY, note text);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
             INSERT INTO rows SELECT i, 'hộ ' || i FROM n;",
        )
        .unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        c.set_instrumentation(Counter(counts.clone()));
        let lists: [&[i32]; 4] = [&[7], &[3, 99, 1000], &[], &(1..=60).collect::<Vec<_>>()];
        for ids in lists {
            counts.lock().unwrap().0.push((0, 0));
            let found: Vec<(i32, Option<String>)> = rows::table
                .filter(super::any::any_of(rows::id, ids))
                .order(rows::id)
                .select((rows::id, rows::note))
                .load(&mut c)
                .unwrap();
            let want: Vec<(i32, Option<String>)> = ids
                .iter()
                .filter(|i| (1..=100).contains(*i))
                .map(|i| (*i, Some(format!("hộ {i}"))))
                .collect();
            assert_eq!(found, want);
        }
        assert_eq!(
            counts.lock().unwrap().0,
            vec![(1, 1), (1, 0), (1, 0), (1, 0)]
        );
    }

    /// `Condition` puts its constant in the SQL text, which SQLite needs to use a partial
    /// index without planning from a bound value, and leaves the statement kept prepared,
    /// where `diesel::dsl::sql` would have it parsed at every call.
    #[test]
    fn a_fixed_condition_keeps_the_statement_prepared() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(
            "CREATE TABLE rows (id integer PRIMARY KEY, note text);
             CREATE INDEX rows_open ON rows (id) WHERE note = 'open';
             INSERT INTO rows VALUES (1, 'open'), (2, 'closed'), (3, 'open'), (4, NULL);",
        )
        .unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        c.set_instrumentation(Counter(counts.clone()));
        let mut found = Vec::new();
        for above in [0, 1, 0] {
            counts.lock().unwrap().0.push((0, 0));
            let ids: Vec<i32> = rows::table
                .filter(super::prepared::Condition("rows.note = 'open'"))
                .filter(rows::id.gt(above))
                .select(rows::id)
                .order(rows::id)
                .load(&mut c)
                .unwrap();
            found.push(ids);
        }
        assert_eq!(found, [vec![1, 3], vec![3], vec![1, 3]]);
        assert_eq!(counts.lock().unwrap().0, vec![(1, 1), (1, 0), (1, 0)]);
    }

    /// `fixed_query` and `fixed_query_with` are prepared on the first call and reused, where
    /// `sql_query` would be parsed at every call; the bound value goes where it is placed.
    #[test]
    fn fixed_queries_are_prepared_once() {
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(
            "CREATE TABLE rows (id integer PRIMARY KEY, note text);
             INSERT INTO rows VALUES (1, 'a'), (2, 'b'), (3, NULL);",
        )
        .unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        c.set_instrumentation(Counter(counts.clone()));
        let mut found = Vec::new();
        for above in [0_i64, 2, 1] {
            counts.lock().unwrap().0.push((0, 0));
            let all: N = super::prepared::fixed_query("SELECT count(*) AS n FROM rows")
                .get_result(&mut c)
                .unwrap();
            let n: N = super::prepared::fixed_query_with::<diesel::sql_types::BigInt, _>(
                "SELECT count(*) AS n FROM rows WHERE id > ",
                above,
                " AND note IS NOT NULL",
            )
            .get_result(&mut c)
            .unwrap();
            found.push((all.n, n.n));
        }
        assert_eq!(found, [(3, 2), (3, 0), (3, 1)]);
        assert_eq!(counts.lock().unwrap().0, vec![(2, 2), (2, 0), (2, 0)]);
    }

    /// Diesel parses an UPDATE again at every call; `prepared_update` is prepared on the
    /// first call and reused, and writes what it says.
    #[test]
    fn sqlite_prepared_updates_are_parsed_once() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(
            "CREATE TABLE rows (id integer PRIMARY KEY, note text);
             INSERT INTO rows VALUES (1, NULL), (2, NULL), (3, NULL);",
        )
        .unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        c.set_instrumentation(Counter(counts.clone()));
        for id in 1..=3 {
            counts.lock().unwrap().0.push((0, 0));
            let note = (id != 2).then(|| format!("lần {id}"));
            if id == 1 {
                diesel::update(rows::table.find(id))
                    .set(rows::note.eq(note))
                    .execute(&mut c)
                    .unwrap();
            } else {
                super::prepared::prepared_update(rows::table, rows::id.eq(id), rows::note.eq(note))
                    .execute(&mut c)
                    .unwrap();
            }
        }
        // diesel's UPDATE is not kept; the first prepared one is, and the next reuses it.
        assert_eq!(counts.lock().unwrap().0, vec![(1, 0), (1, 1), (1, 0)]);
        let stored: Vec<Option<String>> = rows::table
            .order(rows::id)
            .select(rows::note)
            .load(&mut c)
            .unwrap();
        assert_eq!(stored, [Some("lần 1".into()), None, Some("lần 3".into())]);
    }

    /// `prepared_row_update` is kept under its type: one statement for every row, whether
    /// its optional column is set or NULL.
    #[test]
    fn sqlite_prepared_row_updates_share_one_statement() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(
            "CREATE TABLE rows (id integer PRIMARY KEY, note text);
             INSERT INTO rows VALUES (1, 'a'), (2, 'b'), (3, 'c');",
        )
        .unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        c.set_instrumentation(Counter(counts.clone()));
        for id in [3, 2, 1] {
            counts.lock().unwrap().0.push((0, 0));
            let row = Row {
                id,
                note: (id != 2).then(|| format!("lần {id}")),
            };
            super::prepared::prepared_row_update::<_, _, Row>(rows::table, rows::id.eq(id), &row)
                .execute(&mut c)
                .unwrap();
        }
        assert_eq!(counts.lock().unwrap().0, vec![(1, 1), (1, 0), (1, 0)]);
        let stored: Vec<(i32, Option<String>)> = rows::table.order(rows::id).load(&mut c).unwrap();
        let want = [
            (1, Some("lần 1".into())),
            (2, None),
            (3, Some("lần 3".into())),
        ];
        assert_eq!(stored, want);
    }
}
