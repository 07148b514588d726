//! A headless Chromium driven over WebDriver (chromedriver), for the browser tests.
//!
//! Without chromedriver a browser test is skipped locally and fails in CI (`CI` set).

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    http: reqwest::Client,
    url: String,
    driver: Child,
}

impl Drop for Browser {
    /// Ends the session (chromedriver quits Chromium and deletes its profile), then kills
    /// chromedriver's process group: a Chromium left behind by a failed test would otherwise
    /// run on beside the next tests.
    fn drop(&mut self) {
        self.quit_session();
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        Self::start_with(&["--window-size=1100,1500"]).await
    }

    /// A browser with its own new profile; `args` are added to Chromium's.
    pub async fn start_with(args: &[&str]) -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs {CHROMEDRIVER} (Debian packages chromium and chromium-driver)"
            );
            eprintln!("skipped: no {CHROMEDRIVER}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let ready = wait_until(Duration::from_secs(20), || async {
            let r = http.get(format!("{base}/status")).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        assert!(ready.is_some(), "chromedriver answers /status");
        let chrome_args = [
            [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--lang=vi",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ]
            .as_slice(),
            args,
        ]
        .concat();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": chrome_args
            }
        }}});
        let mut b = Browser {
            http,
            url: base,
            driver,
        };
        let session = b.call("POST", "/session", caps).await;
        let id = session["sessionId"].as_str().expect("a session").to_owned();
        b.url = format!("{}/session/{id}", b.url);
        Some(b)
    }

    /// `DELETE /session/{id}` over a plain socket (a drop cannot await), waiting up to 10 s
    /// for the start of chromedriver's answer.
    fn quit_session(&self) {
        let Some(rest) = self.url.strip_prefix("http://") else {
            return;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return;
        };
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let req = format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        // chromedriver answers once Chromium has quit, and may keep the socket open after:
        // the answer's first bytes are the end of the wait.
        if s.write_all(req.as_bytes()).is_ok() {
            let _ = s.read(&mut [0; 512]);
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"]["error"].is_null(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        // Into the middle of the screen first, clear of sticky bars, as a thumb would.
        self.script(&format!(
            "document.querySelector({}).scrollIntoView({{block: 'center'}}); return true;",
            Value::String(css.to_owned())
        ))
        .await;
        let e = self.element(css).await;
        self.call("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    pub async fn script(&self, js: &str) -> Value {
        self.call("POST", "/execute/sync", json!({ "script": js, "args": [] }))
            .await
    }

    /// Waits (up to 20 s) until the script returns something other than null or false.
    pub async fn wait_for(&self, js: &str) -> Value {
        self.wait_for_within(js, 20).await
    }

    /// Like `wait_for`, for up to `seconds` (a slow step on a loaded machine).
    pub async fn wait_for_within(&self, js: &str, seconds: u64) -> Value {
        wait_until(Duration::from_secs(seconds), || async {
            let v = self.script(js).await;
            (!v.is_null() && v != Value::Bool(false)).then_some(v)
        })
        .await
        .unwrap_or_else(|| panic!("timed out waiting for: {js}"))
    }

    /// Runs a Chrome DevTools Protocol command in the page.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": cmd, "params": params }),
        )
        .await
    }

    /// Cuts the network (`true`) or gives it back, as a phone losing its signal: requests
    /// fail and `navigator.onLine` follows, with its `offline` and `online` events.
    pub async fn offline(&self, offline: bool) {
        self.network(offline, 0).await;
    }

    /// A slow network: every request waits `latency_ms` (0: none).
    pub async fn network(&self, offline: bool, latency_ms: u64) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
    }

    /// A phone's screen: 390 × 844 CSS pixels, touch, the mobile viewport.
    pub async fn phone(&self) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
    }

    /// Empties an input, then types into it.
    pub async fn replace_text(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call("POST", &format!("/element/{e}/clear"), json!({}))
            .await;
        self.type_into(css, text).await;
    }

    /// Opens the dashboard at `base` and logs in.
    pub async fn dashboard_login(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/")).await;
        self.wait_for("return !document.getElementById('login').hidden")
            .await;
        self.type_into("#username", user).await;
        self.type_into("#password", password).await;
        self.click("#login-button").await;
    }

    /// Opens the field app at `base` and logs in with `password`.
    pub async fn field_login(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/field/")).await;
        self.wait_for("return document.querySelector('#login #username') !== null")
            .await;
        self.type_into("#username", user).await;
        self.type_into("#password", password).await;
        self.click("#login button[type=submit]").await;
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.call("GET", "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}

/// Saves a screenshot under docs/img (the README shows them).
pub fn save(png: &[u8], name: &str) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/img")
        .join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
}

pub async fn wait_until<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
