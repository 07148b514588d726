//! A `gocua serve` process (not a server inside the test): for tests that kill it, and for
//! the load test and bench, which run several on one database.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// `gocua serve` on the database, on a free port.
    pub fn start(url: &str) -> Server {
        Self::start_with(url, "127.0.0.1:0", &[], &[])
    }

    /// `gocua serve ARGS…` on the database, listening on `bind`, with more settings.
    pub fn start_with(url: &str, bind: &str, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gocua"))
            .arg("serve")
            .args(args)
            .env("GOCUA_DATABASE_URL", url)
            .env("GOCUA_BIND", bind)
            .env("GOCUA_JWT_SECRET", super::SECRET)
            .env("GOCUA_LOG_LEVEL", "error")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .map(|w| w.trim_end_matches('/').to_owned())
            })
            .expect("the server prints where it listens");
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base: url }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flushing, whatever was in flight is cut.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago, to restart a server on the same address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
