//! Test harness: a real server on port 0 over a real database, one database per test.
//!
//! `GOCUA_TEST_DATABASE=sqlite` (default) uses a temporary file; `postgres` creates a database
//! from a migrated template on `GOCUA_TEST_PG_URL` (default postgres://postgres@127.0.0.1:5432)
//! and drops it at the end. A missing PostgreSQL fails the test loudly.
#![allow(dead_code)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use gocua::app::Application;
use gocua::config::Settings;
use gocua::db::Pool;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const PASSWORD: &str = "correct horse battery";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn backend() -> String {
    std::env::var("GOCUA_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into())
}

fn pg_base() -> String {
    std::env::var("GOCUA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A file of the official unit lists kept in the repository (`data/vn-admin-units/`).
pub fn unit_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/vn-admin-units")
        .join(name)
}

/// A migrated template database, made once per migration set (its name carries a hash of the
/// migrations) and shared by test processes.
fn pg_template() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut hash: u64 = 0xcbf29ce484222325;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<_> = walk(&dir);
        files.sort();
        for f in files {
            for b in std::fs::read(&f).unwrap() {
                hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
        let name = format!("gocua_template_{hash:016x}");
        let base = pg_base();
        let mut admin = PgConnection::establish(&format!("{base}/postgres")).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {base} ({e}): start it, or run the tests on SQLite"
            )
        });
        // One process builds the template; the others wait on the lock.
        admin
            .batch_execute("SELECT pg_advisory_lock(727274)")
            .unwrap();
        let exists = diesel::sql_query(format!(
            "SELECT 1 AS x FROM pg_database WHERE datname = '{name}'"
        ))
        .execute(&mut admin)
        .unwrap()
            > 0;
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            let pool = Pool::connect(
                &format!("{base}/{name}"),
                1,
                std::time::Duration::from_secs(10),
            )
            .unwrap();
            gocua::store::migrate(&pool).unwrap();
            drop(pool);
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(727274)")
            .unwrap();
        name
    })
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A fresh, migrated database for one test; removed on drop.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new() -> TestDb {
        match backend().as_str() {
            "postgres" => {
                let template = pg_template();
                let name = format!(
                    "gocua_t_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                let base = pg_base();
                let mut admin = PgConnection::establish(&format!("{base}/postgres"))
                    .expect("PostgreSQL reachable");
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .unwrap();
                admin
                    .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                    .unwrap();
                TestDb {
                    url: format!("{base}/{name}"),
                    pg_name: Some(name),
                    _dir: None,
                }
            }
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("gocua.db").display());
                TestDb {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            other => panic!("GOCUA_TEST_DATABASE must be sqlite or postgres, not {other}"),
        }
    }

    pub fn pool(&self) -> Pool {
        Pool::connect(&self.url, 2, std::time::Duration::from_secs(10)).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut admin) = PgConnection::establish(&format!("{}/postgres", pg_base())) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: Pool,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    pub db: TestDb,
}

pub fn settings(url: &str) -> Settings {
    Settings {
        database_url: url.to_owned(),
        bind: "127.0.0.1:0".into(),
        jwt_secret: Some(SECRET.to_owned().into()),
        pool_size: 4,
        log_level: "warn".into(),
        ..Settings::default()
    }
}

/// A response: status, headers and the body parsed as JSON (`Null` when empty or not JSON).
pub struct Res {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Res {
    pub fn etag(&self) -> String {
        self.headers
            .get(header::ETAG)
            .expect("an ETag")
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Asserts a problem+json error with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let ct = self
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            ct.as_deref(),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }

    pub fn field_codes(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap().to_owned(),
                            e["code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let db = TestDb::new();
        let mut s = settings(&db.url);
        tweak(&mut s);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(s).expect("the app builds");
                tx.send((app.port(), app.handle(), app.pool.clone()))
                    .unwrap();
                app.run_until_stopped().await.unwrap();
            })
        });
        let (port, handle, pool) =
            tokio::task::spawn_blocking(move || rx.recv().expect("the server starts"))
                .await
                .unwrap();
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder().gzip(false).build().unwrap(),
            pool,
            handle,
            thread: Some(thread),
            db,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.expect("the request is answered")).await
    }

    pub async fn read(res: reqwest::Response) -> Res {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.request(Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.request(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Res {
        self.request(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value, if_match: &str) -> Res {
        self.request(
            Method::PATCH,
            path,
            Some(token),
            Some(body),
            &[("if-match", if_match)],
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str, if_match: &str) -> Res {
        self.request(
            Method::DELETE,
            path,
            Some(token),
            None,
            &[("if-match", if_match)],
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Res {
        self.request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
            &[],
        )
        .await
    }

    pub async fn token(&self, username: &str) -> String {
        self.token_with(username, PASSWORD).await
    }

    pub async fn token_with(&self, username: &str, password: &str) -> String {
        let r = self.login(username, password).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates the first admin directly in the database (as `gocua user add` does) and logs in.
    pub async fn admin(&self) -> String {
        admin::create_admin(&self.pool, PASSWORD).await;
        self.token("admin").await
    }

    /// POSTs a CSV body.
    pub async fn post_csv(&self, path: &str, token: &str, body: impl Into<reqwest::Body>) -> Res {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .unwrap();
        Self::read(res).await
    }

    /// Imports the official rows of the given district codes (from the real list) over HTTP.
    pub async fn import_districts(&self, admin: &str, district_codes: &[&str]) -> Value {
        let data = std::fs::read_to_string(unit_data("units-2025-01-04.csv")).unwrap();
        let mut lines = data.lines();
        let mut csv = format!("{}\n", lines.next().unwrap());
        for l in lines {
            let cols: Vec<&str> = l.split(',').collect();
            if district_codes.contains(&cols[3]) {
                csv.push_str(l);
                csv.push('\n');
            }
        }
        let r = self.post_csv("/api/v1/areas/import", admin, csv).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// The id of an area by its official code.
    pub async fn area(&self, token: &str, code: &str) -> String {
        let r = self.get(&format!("/api/v1/areas?code={code}"), token).await;
        assert_eq!(r.body["total"], 1, "{}", r.text);
        r.body["items"][0]["id"].as_str().unwrap().to_owned()
    }

    pub async fn village(&self, token: &str, commune_id: &str, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/areas",
                token,
                json!({"parent_id": commune_id, "name": name}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn user(&self, admin: &str, username: &str, role: &str, areas: &[&str]) -> String {
        let r = self
            .post("/api/v1/users", admin, json!({"username": username, "password": PASSWORD, "role": role, "area_ids": areas}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        self.token(username).await
    }

    /// The user `username` as `GET /users` lists it to the caller (null when not listed).
    pub async fn listed_user(&self, token: &str, username: &str) -> Value {
        let r = self
            .get(&format!("/api/v1/users?q={username}"), token)
            .await;
        r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["username"] == username)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub async fn household(&self, token: &str, village: &str, head: &str, address: &str) -> Value {
        let r = self
            .post(
                "/api/v1/households",
                token,
                json!({"area_id": village, "head_name": head, "address": address}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    /// Runs a closure on a database connection (for checking stored state).
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut gocua::db::Conn<'_>) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut pc = pool.get().unwrap();
            f(&mut pc.conn())
        })
        .await
        .unwrap()
    }

    /// Fails if the report tallies that the write path keeps differ from a count of the rows
    /// (`gocua tallies check`); answers how many villages they cover.
    pub async fn assert_tallies(&self) -> usize {
        let (wrong, villages) = self
            .db(|conn| {
                let wrong = gocua::store::tallies::check(conn).unwrap();
                let n = gocua::store::tallies::read_all(conn)
                    .unwrap()
                    .villages
                    .len();
                (wrong, n)
            })
            .await;
        assert!(wrong.is_empty(), "tallies differ from the rows: {wrong:#?}");
        villages
    }

    /// Asserts that the duplicate keys the writes kept (docs/DUPLICATES.md) are the ones
    /// `gocua duplicates scan` makes from the rows, but for the holders of placeholder
    /// phones (the scan keeps them all, the writes those stored before the phone became
    /// one); answers how many there are.
    pub async fn assert_duplicate_keys(&self) -> usize {
        let (kept, made) = self
            .db(|conn| {
                #[derive(diesel::QueryableByName)]
                struct K {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    k: String,
                }
                let read = |conn: &mut gocua::db::Conn<'_>| -> Vec<String> {
                    let sql = "SELECT kind || ' ' || CAST(scope_id AS text) || ' ' || key || ' ' \
                               || CAST(household_id AS text) || ' ' || CAST(source_id AS text) \
                               || ' ' || CAST(village_id AS text) AS k FROM duplicate_keys d \
                               WHERE NOT EXISTS (SELECT 1 FROM duplicate_placeholders p WHERE \
                               p.kind = d.kind AND p.key = d.key AND p.scope_id = d.scope_id)";
                    let mut keys: Vec<String> = gocua::with_conn!(conn, |c| {
                        diesel::RunQueryDsl::load::<K>(diesel::sql_query(sql), c)
                    })
                    .unwrap()
                    .into_iter()
                    .map(|r| r.k)
                    .collect();
                    keys.sort();
                    keys
                };
                let kept = read(conn);
                gocua::store::duplicates::scan(conn, |_| {}).unwrap();
                (kept, read(conn))
            })
            .await;
        let missing: Vec<&String> = made.iter().filter(|k| !kept.contains(k)).collect();
        let stale: Vec<&String> = kept.iter().filter(|k| !made.contains(k)).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "duplicate keys differ from the rows: missing {missing:#?}, stale {stale:#?}"
        );
        kept.len()
    }

    /// Number of rows in a table, read directly from the database.
    pub async fn count(&self, table: &'static str) -> i64 {
        self.number(format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
    }

    /// Number of consumed seqs whose results are stored (one row per batch).
    pub async fn stored_results(&self) -> i64 {
        self.number(
            "SELECT CAST(COALESCE(SUM(last_seq - first_seq + 1), 0) AS bigint) AS n \
             FROM device_batches"
                .into(),
        )
        .await
    }

    /// The number `sql` selects as `n`, read directly from the database.
    pub async fn number(&self, sql: String) -> i64 {
        self.db(move |conn| {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            gocua::with_conn!(conn, |c| diesel::RunQueryDsl::get_result::<N>(
                diesel::sql_query(&sql),
                c
            ))
            .unwrap()
            .n
        })
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; the join below waits for it.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A standard fixture: admin, Bình Gia district imported, two villages in Hoa Thám (06073)
/// and one in Hưng Đạo (06067).
pub struct World {
    pub app: TestApp,
    pub admin: String,
    pub district: String,
    pub hoa_tham: String,
    pub hung_dao: String,
    pub v1: String,
    pub v2: String,
    pub v_other: String,
}

impl World {
    /// The campaign "Bluezone 2020"; returns its id.
    pub async fn campaign(&self) -> String {
        let r = self
            .app
            .post("/api/v1/campaigns", &self.admin, json!({"name": "Bluezone 2020", "starts_on": "2020-08-01", "ends_on": "2020-12-31"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn new() -> World {
        let app = TestApp::spawn().await;
        let admin = app.admin().await;
        app.import_districts(&admin, &["181"]).await;
        let district = app.area(&admin, "181").await;
        let hoa_tham = app.area(&admin, "06073").await;
        let hung_dao = app.area(&admin, "06067").await;
        let v1 = app.village(&admin, &hoa_tham, "Thôn Nà Pàn").await;
        let v2 = app.village(&admin, &hoa_tham, "Thôn Khuổi Hẩu").await;
        let v_other = app.village(&admin, &hung_dao, "Thôn Bản Chu").await;
        World {
            app,
            admin,
            district,
            hoa_tham,
            hung_dao,
            v1,
            v2,
            v_other,
        }
    }
}

pub mod admin;
pub mod browser;
pub mod client;
pub mod process;

impl TestApp {
    /// Pushes the device's queue (at most `max` ops) and takes in the answer.
    pub async fn push(&self, d: &mut client::Device, max: usize) -> Res {
        let r = self
            .post("/api/v1/sync/push", &d.token.clone(), d.push_body(max))
            .await;
        if r.status == 200 {
            d.on_push(&r.body);
        }
        r
    }

    /// Pulls until nothing more is waiting.
    pub async fn pull_all(&self, d: &mut client::Device) {
        for _ in 0..10_000 {
            let r = self.get(&d.pull_path(200), &d.token.clone()).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if !d.on_pull(&r.body) {
                return;
            }
        }
        panic!("pull never finished");
    }

    /// Two phones register a household of `village` and sync, then edit it offline, `a`
    /// first and `b` later (by their clocks); `b` pushes first, so `a`'s values that `b`
    /// also set lose: a conflict per such field. Answers the phones and the household.
    pub async fn conflicting_phones(
        &self,
        a_token: &str,
        b_token: &str,
        village: &str,
        a_edit: Value,
        b_edit: Value,
    ) -> (client::Device, client::Device, uuid::Uuid) {
        let (mut a, mut b) = (client::Device::new(a_token), client::Device::new(b_token));
        let t = chrono::Utc::now().timestamp_millis() - 300_000;
        a.fixed_clock = Some(t);
        let h = uuid::Uuid::new_v4();
        let created = client::household(village, "Hoàng Văn Mạnh", "Nà Pàn");
        a.queue_op("household.upsert", h, h, created);
        self.sync(&mut a).await;
        self.sync(&mut b).await;
        a.fixed_clock = Some(t + 1_000);
        b.fixed_clock = Some(t + 6_000);
        a.queue_op("household.upsert", h, h, a_edit);
        b.queue_op("household.upsert", h, h, b_edit);
        self.push(&mut b, 10).await;
        self.push(&mut a, 10).await;
        (a, b, h)
    }

    /// Syncs a device fully: pushes until its queue is empty, then pulls.
    pub async fn sync(&self, d: &mut client::Device) {
        for _ in 0..1000 {
            if d.queue.is_empty() {
                break;
            }
            let r = self.push(d, 100).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        self.pull_all(d).await;
    }
}
