//! The field app's sync engine (`src/field/sync.js`, no DOM) tested on its own with Node's
//! test runner (`tests/field/*.test.js`) against the real server binary, over a fresh
//! database of the backend under test.
//!
//! Without `node` the test is skipped locally and fails in CI (`CI` set).

mod common;

use common::TestDb;
use std::process::Command;

#[test]
fn the_sync_engine_passes_its_node_tests_against_the_server() {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs node (Debian package nodejs)"
        );
        eprintln!("skipped: no node");
        return;
    }
    let db = TestDb::new();
    let out = Command::new("node")
        .args(["--test", "tests/field/"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GOCUA_BIN", env!("CARGO_BIN_EXE_gocua"))
        .env("GOCUA_FIELD_DATABASE_URL", &db.url)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(!stdout.contains("# pass 0"), "{stdout}");
}
