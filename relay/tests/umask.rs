//! The tools that open a stopped relay's store leave its data directory
//! private whatever the operator's umask: a file sled creates there with
//! group or other read access (its snapshot files, written when it opens a
//! long log) would make the relay refuse to start on it afterwards.
//!
//! A binary of its own: it changes the process's umask, which no other test
//! may see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use kurir_proto::Timestamp;
use kurir_proto::audit::{Entry, Record};
use kurir_relay::store::{Durability, Store};
use rustix::fs::Mode;
use rustix::process::umask;

/// The process's umask, read without changing it.
fn current_umask() -> Mode {
    let m = umask(Mode::from_bits_truncate(0o077));
    umask(m);
    m
}

#[test]
fn verify_log_makes_what_sled_writes_private_under_a_loose_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&data, Durability::ProcessCrash).unwrap();
        let started = Entry::new(
            Timestamp(1_795_874_050_000),
            Record::Started {
                version: "test".into(),
            },
        );
        store.audit(vec![started]).await.unwrap();
        store.close().unwrap();
    });

    // An operator's shell: group and others may read what is created.
    umask(Mode::from_bits_truncate(0o022));
    let mut report = None;
    // sled releases its lock a moment after the store closes.
    for _ in 0..200 {
        match kurir_relay::store::verify_log(&data) {
            Ok(r) => {
                report = Some(r);
                break;
            }
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("verify_log: {e}"),
        }
    }
    assert_eq!(report.expect("the lock was never released").entries, 1);
    let mask = current_umask();
    assert!(
        mask.contains(Mode::from_bits_truncate(0o077)),
        "after verify_log the umask is {:o}: files sled creates in the data directory would be \
         readable by others",
        mask.bits()
    );
}
