//! One typed settings struct, layered: defaults < TOML file < `GOCUA_*` environment.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `postgres://…` or `sqlite://path`.
    pub database_url: String,
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free one).
    pub bind: String,
    /// HS256 key for access tokens; at least 32 bytes. Required unless in demo mode.
    pub jwt_secret: Option<SecretString>,
    /// Keys that signed access tokens before `jwt_secret` replaced them: still accepted
    /// until those tokens expire, never used to sign (docs/SECURITY.md).
    pub jwt_previous_secrets: Vec<SecretString>,
    pub access_token_minutes: i64,
    /// When set, the access tokens' lifetime in seconds instead of minutes (short lifetimes
    /// for tests; strict deployments).
    pub access_token_seconds: Option<i64>,
    pub refresh_token_days: i64,
    pub pool_size: u32,
    pub pool_timeout_seconds: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most operations in one sync push.
    pub sync_max_ops: usize,
    /// Largest sync push body.
    pub sync_max_bytes: usize,
    /// `json` or `pretty`; empty: pretty on a terminal, JSON otherwise.
    pub log_format: String,
    pub log_level: String,
    /// Seconds that running requests get to finish at shutdown.
    pub shutdown_seconds: u64,
    /// Activity checks flag visits recorded farther than this from the household (meters).
    pub activity_max_distance_m: f64,
    /// Activity checks flag a visit less than this after the same canvasser's visit of
    /// another household (seconds).
    pub activity_min_gap_seconds: i64,
    /// Failed logins of one account from one address before further attempts are spaced
    /// out (1 s, 2 s, 4 s … up to `login_max_delay_seconds`; sooner: 429).
    pub login_free_failures: u32,
    /// Failed logins from one address, whatever the accounts, before the same.
    pub login_address_failures: u32,
    pub login_max_delay_seconds: u64,
    /// A count of failed logins is forgotten this long after its last failure.
    pub login_window_seconds: u64,
    /// Addresses of reverse proxies in front of gocua: for a request from one of them, the
    /// client's address is taken from `X-Forwarded-For` (login throttling).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Days after a campaign's last day before its personal data may be anonymized
    /// (`gocua privacy anonymize`, docs/SECURITY.md).
    pub retention_days: i64,
    /// A label mixed into the field app's version: changing it makes every phone take the
    /// shell again (it asks first when a form holds input), as a new binary does. Any text;
    /// a number is taken as its digits.
    #[serde(deserialize_with = "text_or_number")]
    pub field_release: String,
    /// A streaming replica of the PostgreSQL primary that reports read (docs/SCALING.md);
    /// none: reports read the primary.
    pub reports_database_url: Option<String>,
    /// Reports read the primary while the replica is further behind than this.
    pub reports_max_lag_seconds: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://gocua.db".into(),
            bind: "127.0.0.1:8080".into(),
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            access_token_minutes: 15,
            access_token_seconds: None,
            refresh_token_days: 30,
            pool_size: 8,
            pool_timeout_seconds: 5,
            max_body_bytes: 1024 * 1024,
            sync_max_ops: 500,
            sync_max_bytes: 4 * 1024 * 1024,
            log_format: String::new(),
            log_level: "info".into(),
            shutdown_seconds: 30,
            activity_max_distance_m: 300.0,
            activity_min_gap_seconds: 60,
            login_free_failures: 5,
            login_address_failures: 50,
            login_max_delay_seconds: 900,
            login_window_seconds: 900,
            trusted_proxies: Vec::new(),
            retention_days: 180,
            field_release: String::new(),
            reports_database_url: None,
            reports_max_lag_seconds: 30.0,
        }
    }
}

/// A text setting that the environment may give as a number (`GOCUA_FIELD_RELEASE=2`).
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::Text(t) => t,
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(x) => x.to_string(),
    })
}

/// The settings read from `GOCUA_<KEY>`; other `GOCUA_*` variables (`GOCUA_CONFIG`,
/// `GOCUA_PASSWORD`, `GOCUA_LOG`, the tests' own) are not settings.
pub const KEYS: &[&str] = &[
    "database_url",
    "bind",
    "jwt_secret",
    "jwt_previous_secrets",
    "access_token_minutes",
    "access_token_seconds",
    "refresh_token_days",
    "pool_size",
    "pool_timeout_seconds",
    "max_body_bytes",
    "sync_max_ops",
    "sync_max_bytes",
    "log_format",
    "log_level",
    "shutdown_seconds",
    "activity_max_distance_m",
    "activity_min_gap_seconds",
    "login_free_failures",
    "login_address_failures",
    "login_max_delay_seconds",
    "login_window_seconds",
    "trusted_proxies",
    "retention_days",
    "field_release",
    "reports_database_url",
    "reports_max_lag_seconds",
];

impl Settings {
    /// Defaults, then the file named by `file` or `GOCUA_CONFIG` (if any), then `GOCUA_*`.
    pub fn load(file: Option<&Path>) -> Result<Settings, Box<figment::Error>> {
        let mut fig = Figment::new();
        let env_file = std::env::var_os("GOCUA_CONFIG");
        if let Some(path) = file.map(Path::to_path_buf).or(env_file.map(Into::into)) {
            fig = fig.merge(Toml::file_exact(path));
        }
        fig.merge(Env::prefixed("GOCUA_").only(KEYS))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_defaults_and_secrets_do_not_print() {
        let dir = std::env::temp_dir().join(format!("gocua-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gocua.toml");
        std::fs::write(&file, "bind = \"0.0.0.0:9000\"\njwt_secret = \"very-secret-value-of-32-bytes-or-more\"\npool_size = 3\n").unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.pool_size, 3);
        assert_eq!(s.max_body_bytes, 1024 * 1024);
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        std::fs::write(&file, "colour = \"red\"\n").unwrap();
        assert!(Settings::load(Some(&file))
            .unwrap_err()
            .to_string()
            .contains("colour"));
    }
}
