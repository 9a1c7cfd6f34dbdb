//! The global allocator `kurir-relay` runs with, as an admin sees it:
//! `--version` names it, and so does the start-up log line, with the
//! environment variables that tune it (docs/CONFIG.md, "Memory"). The name
//! follows the package's features (`jemalloc`, the default; `mimalloc`;
//! neither: the system's malloc), so a build that changes the default
//! allocator changes what this test expects, and docs/PERFORMANCE.md
//! ("jemalloc by default") says why the default is what it is. A jemalloc
//! build must also hold the configuration the workspace gives jemalloc.

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

/// A jemalloc build holds the configuration `.cargo/config.toml` gives
/// jemalloc when it is built: without `oversize_threshold:0`, 8 MiB
/// attachments run at half the rate (docs/PERFORMANCE.md). jemalloc says what
/// it was built with when `confirm_conf` is set.
#[test]
fn jemalloc_holds_the_configuration_the_workspace_sets() {
    if EXPECTED != "jemalloc" {
        return;
    }
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.cargo/config.toml"
    ))
    .unwrap();
    let wanted = config
        .lines()
        .find_map(|l| l.strip_prefix("JEMALLOC_SYS_WITH_MALLOC_CONF = "))
        .expect("JEMALLOC_SYS_WITH_MALLOC_CONF in .cargo/config.toml");
    assert!(wanted.contains("oversize_threshold:0"), "{wanted}");
    let out = Command::new(RELAY)
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "confirm_conf:true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "(string specified via --with-malloc-conf): {wanted}"
        )),
        "the relay's jemalloc was built without {wanted}:\n{stderr}"
    );
    assert!(
        stderr.contains("Set conf value: oversize_threshold:0"),
        "{stderr}"
    );
}
