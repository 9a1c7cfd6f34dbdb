//! `kurir-relay verify-log`, driven as an operator runs it: on a stopped
//! relay's data directory, exit 0 with a summary; 1 naming the first bad
//! entry, even one before the newest checkpoint that the start does not
//! read; 3 when there is no database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use kurir_proto::audit::{Entry, Record};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{Timestamp, cbor};
use kurir_relay::core::pacing::Cover;
use kurir_relay::store::{Durability, Store};

const RELAY: &str = env!("CARGO_BIN_EXE_kurir-relay");

/// A stopped relay's store in `dir`: 40 entries, a checkpoint, 5 more.
fn stopped_store(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(dir, Durability::ProcessCrash).unwrap();
        let e = |i: u64| {
            Entry::new(
                Timestamp(1_795_874_050_000 + i),
                Record::Started {
                    version: "test".into(),
                },
            )
        };
        store.audit((0..40).map(e).collect()).await.unwrap();
        store
            .checkpoint(
                "kurir/RS.MUP".into(),
                SigningKey::from_bytes(&[4; 32]),
                Cover::Anything,
            )
            .await
            .unwrap()
            .unwrap();
        store.audit((40..45).map(e).collect()).await.unwrap();
        store.close().unwrap();
    });
}

/// The entries of a `log` row that holds a run of them: a CBOR array of
/// byte strings (`relay/src/store/log.rs`).
fn split_run(value: &[u8]) -> Vec<Vec<u8>> {
    let (4, n, mut rest) = cbor::split_head(value).unwrap() else {
        panic!("not a run");
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let (entry, after) = cbor::split_byte_string(rest).unwrap();
        out.push(entry.to_vec());
        rest = after;
    }
    assert!(rest.is_empty());
    out
}

fn join_run(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor::write_head(4, entries.len() as u64, &mut out);
    for e in entries {
        cbor::write_head(2, e.len() as u64, &mut out);
        out.extend_from_slice(e);
    }
    out
}

/// Runs `kurir-relay verify-log --data-dir dir`: exit code, stdout, stderr.
fn verify_log(dir: &Path) -> (i32, String, String) {
    // sled releases its lock a moment after the store closes.
    for _ in 0..200 {
        let out = Command::new(RELAY)
            .args(["verify-log", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !stderr.contains("could not acquire lock") {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            return (out.status.code().unwrap_or(-1), stdout, stderr);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the database lock was not released");
}

fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}

#[test]
fn verify_log_checks_every_entry_and_names_the_first_bad_one() {
    let dir = tempdir();
    let data = dir.path().join("data");
    stopped_store(&data);

    let (code, stdout, stderr) = verify_log(&data);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("verifies: 45 entries")
            && stdout.contains("1 checkpoints and 1 Merkle frontiers match the log"),
        "{stdout}"
    );

    // Entry 3, before the newest checkpoint, changed on disk: the start
    // does not read it; verify-log names it.
    // The 40 entries of one commit share rows (runs of entries): entry 3
    // is the fourth of the run in the row of key 0.
    {
        let db = sled::open(&data).unwrap();
        let log = db.open_tree("log").unwrap();
        let key = 0u64.to_be_bytes();
        let mut run = split_run(&log.get(key).unwrap().unwrap());
        let mut entry = Entry::decode(&run[3]).unwrap();
        entry.at = Timestamp(entry.at.0 + 1);
        run[3] = entry.encode();
        log.insert(key, join_run(&run)).unwrap();
        db.flush().unwrap();
    }
    let (code, stdout, stderr) = verify_log(&data);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("the audit log does not verify")
            && stderr.contains("entry 3 was changed: entry 4 records another hash for it")
            && stderr.contains(&data.display().to_string()),
        "{stderr}"
    );

    // No database: nothing to check, and said so.
    let (code, _, stderr) = verify_log(&dir.path().join("nothing"));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no relay database here"), "{stderr}");
}
