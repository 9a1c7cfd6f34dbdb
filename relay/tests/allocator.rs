//! The global allocator `kurir-relay` runs with, as an admin sees it:
//! `--version` names it, and so does the start-up log line, with the
//! environment variables that tune it (docs/CONFIG.md, "Memory"). The name
//! follows the package's features (`mimalloc`, `jemalloc`; neither: the
//! system's malloc), so a build that changes the default allocator changes
//! what this test expects, and docs/PERFORMANCE.md ("Allocator") says why
//! the default is what it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const RELAY: &str = env!("CARGO_BIN_EXE_kurir-relay");

/// The allocator the features choose for the binary.
const EXPECTED: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else if cfg!(feature = "jemalloc") {
    "jemalloc"
} else {
    "system"
};

#[test]
fn version_names_the_allocator() {
    let out = Command::new(RELAY).arg("--version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim_end(),
        format!(
            "kurir-relay {} (allocator: {EXPECTED})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// `run` logs the allocator and its tuning variables before it opens
/// anything else; here it then stops at the missing authority directory
/// (exit 3), as a freshly installed package does.
#[test]
fn start_up_log_names_the_allocator_and_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/relay.example.toml"))
            .unwrap();
    let data = dir.path().join("data");
    let config: String = example
        .lines()
        .map(|l| {
            if l.starts_with("data_dir = ") {
                format!("data_dir = {:?}", data.display().to_string())
            } else if l.starts_with("authority_dir = ") {
                format!(
                    "authority_dir = {:?}",
                    dir.path().join("no-authority").display().to_string()
                )
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, config).unwrap();
    let (var, value) = match EXPECTED {
        "mimalloc" => ("MIMALLOC_PURGE_DELAY", "0"),
        "jemalloc" => ("_RJEM_MALLOC_CONF", "background_thread:true"),
        _ => ("MALLOC_ARENA_MAX", "2"),
    };
    let out = Command::new(RELAY)
        .args(["run", "--config"])
        .arg(&path)
        .env(var, value)
        .env("KURIR_TEST_UNRELATED", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("kurir-relay starting"))
        .unwrap_or_else(|| panic!("no start-up line in: {stderr}"));
    assert!(line.contains(&format!("allocator={EXPECTED}")), "{line}");
    assert!(line.contains(&format!("{var}={value}")), "{line}");
    assert!(!line.contains("KURIR_TEST_UNRELATED"), "{line}");
    assert!(stderr.contains("no-authority"), "{stderr}");
}
