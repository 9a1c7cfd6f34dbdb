//! Snapshots: one commit's state, the body files it names kept even when
//! erased after it, one snapshot staged at a time, a leftover removed at
//! open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kurir_proto::audit::Event;

use super::{entry, id, large_parcel, outbound, retry, sign_checkpoint};
use std::path::{Path, PathBuf};

use crate::store::{
    Durability, Erased, OutboundRecord, SNAPSHOT_FILE, STAGING, Store, StoreError, at_rest,
    copy_snapshot, restore, verify_snapshot,
};

#[tokio::test]
async fn a_snapshot_keeps_the_body_files_it_names_even_when_erased_after_it() {
    let dir = super::tempdir();
    let data = dir.path().join("data");
    let store = Store::open(&data, Durability::PowerLoss).unwrap();
    let big = large_parcel(1, 2 * at_rest::FILE_MIN);
    let (record, deliveries) = outbound(1);
    let record = OutboundRecord {
        parcel: big.clone(),
        ..record
    };
    store
        .submit(record, deliveries, None, vec![entry(Event::Submitted)])
        .await
        .unwrap();
    let (small, deliveries) = outbound(2);
    store.submit(small, deliveries, None, vec![]).await.unwrap();

    let info = store.snapshot().await.unwrap();
    assert_eq!((info.outbound, info.inbox, info.body_files), (2, 0, 1));
    assert_eq!(info.entries, 1);
    // One snapshot at a time.
    let again = store.snapshot().await.unwrap_err();
    assert!(
        matches!(&again, StoreError::DataDir { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{again:?}"
    );

    // Erased after the snapshot: gone from the store, kept in the snapshot.
    let erased = Erased {
        at: super::T0,
        policy: "test".into(),
    };
    store
        .erase_body(id(1), false, erased, vec![entry(Event::BodyErased)])
        .await
        .unwrap();
    assert!(super::body_files(&data).is_empty());
    let out = dir.path().join("out");
    copy_snapshot(&store.snapshot_dir(), &out).unwrap();
    store.drop_snapshot();
    assert!(!data.join(STAGING).exists());

    let check = verify_snapshot(&out).unwrap();
    assert_eq!(check.entries, info.entries, "the erasure came after it");
    assert_eq!(check.root, info.root);
    assert_eq!((check.outbound, check.body_files), (2, 1));
    // Restored, the store holds the erased body again.
    let restored = dir.path().join("restored");
    let report = restore(&out, &restored, false, 1).unwrap();
    assert_eq!((report.check.entries, report.check.body_files), (1, 1));
    let copy = retry(|| Store::open(&restored, Durability::ProcessCrash));
    assert_eq!(copy.sent_parcel(id(1)).unwrap(), Some(big));
    copy.close().unwrap();

    // A snapshot left staged (the relay stopped during a backup) is
    // removed at the next open.
    let _ = store.snapshot().await.unwrap();
    store.close().unwrap();
    drop(store);
    assert!(data.join(STAGING).is_dir());
    let store = retry(|| Store::open(&data, Durability::ProcessCrash));
    assert!(!data.join(STAGING).exists());
    store.close().unwrap();
}

/// Writers append audit entries seven per operation while snapshots are
/// taken: every snapshot holds a whole number of operations and its log
/// verifies, as a store and as `verify-log` checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_taken_while_commits_flow_hold_whole_commits() {
    const PER_OP: u64 = 7;
    let dir = super::tempdir();
    let data = dir.path().join("data");
    let store = Store::open(&data, Durability::ProcessCrash).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (store, stop) = (store.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let op = (0..PER_OP).map(|_| entry(Event::Started)).collect();
                store.audit(op).await.unwrap();
            }
        }));
    }
    let mut sizes = Vec::new();
    for i in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let info = store.snapshot().await.unwrap();
        let out = dir.path().join(format!("out-{i}"));
        copy_snapshot(&store.snapshot_dir(), &out).unwrap();
        store.drop_snapshot();
        assert_eq!(info.entries % PER_OP, 0, "a commit cut in two: {info:?}");
        let check = verify_snapshot(&out).unwrap();
        assert_eq!((check.entries, check.root), (info.entries, info.root));
        sizes.push(info.entries);
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    store.close().unwrap();
}

/// A backup in `dir/out` of a store with `n` operations of seven audit
/// entries, a checkpoint after the first half, sent messages with a body
/// file each; the store is closed.
async fn backup_of(dir: &Path, n: u8) -> PathBuf {
    let data = dir.join("data");
    let store = Store::open(&data, Durability::ProcessCrash).unwrap();
    for i in 0..n {
        if i == n / 2 {
            sign_checkpoint(&store).await;
        }
        let (record, deliveries) = outbound(i);
        let record = OutboundRecord {
            parcel: large_parcel(i, at_rest::FILE_MIN + 1),
            ..record
        };
        let audit = (0..7).map(|_| entry(Event::Submitted)).collect();
        store.submit(record, deliveries, None, audit).await.unwrap();
    }
    let info = store.snapshot().await.unwrap();
    assert_eq!(
        (info.outbound, info.body_files),
        (u64::from(n), u64::from(n))
    );
    assert!(info.checkpoint.is_some());
    let out = dir.join("out");
    copy_snapshot(&store.snapshot_dir(), &out).unwrap();
    store.drop_snapshot();
    store.close().unwrap();
    out
}

/// The reason a backup was refused for.
fn refused(r: Result<crate::store::SnapshotCheck, StoreError>) -> String {
    match r {
        Err(StoreError::Backup { reason, .. }) => reason,
        other => panic!("not refused as a bad backup: {other:?}"),
    }
}

/// The restore builds the store from the backup file record by record,
/// and the store it builds holds what the backup held and checks out as
/// `verify-log` checks it.
#[tokio::test]
async fn a_restore_builds_the_store_from_the_file() {
    let dir = super::tempdir();
    let out = backup_of(dir.path(), 40).await;
    let check = crate::store::restore::build(&out, &dir.path().join("built")).unwrap();
    assert!(check.records > 160, "{check:?}");
    assert_eq!(
        (check.entries, check.outbound, check.body_files),
        (280, 40, 40)
    );
    assert!(check.checkpoints >= 1, "{check:?}");
    let store = retry(|| Store::open(&dir.path().join("built"), Durability::ProcessCrash));
    assert_eq!(
        store.sent_parcel(id(3)).unwrap(),
        Some(large_parcel(3, at_rest::FILE_MIN + 1))
    );
    store.close().unwrap();
}

/// A changed byte anywhere in the backup file is refused, naming what
/// failed: an audit entry, or the checksum; a restore from it changes
/// nothing.
#[tokio::test]
async fn a_changed_byte_in_the_backup_file_is_refused() {
    let dir = super::tempdir();
    let out = backup_of(dir.path(), 12).await;
    let file = out.join(SNAPSHOT_FILE);
    let good = std::fs::read(&file).unwrap();
    verify_snapshot(&out).unwrap();

    // In audit entry 5, in the run of entries 0 to 6 (one submission's):
    // the record is [1, 3, "log", len, key, len, value].
    let mut record = vec![1, 3];
    record.extend_from_slice(b"log");
    record.extend_from_slice(&8u32.to_be_bytes());
    record.extend_from_slice(&0u64.to_be_bytes());
    let at = good
        .windows(record.len())
        .position(|w| w == record)
        .unwrap();
    let value_at = at + record.len() + 4;
    let len = u32::from_be_bytes(good[at + record.len()..value_at].try_into().unwrap());
    let runs = crate::store::log::row_entries(&good[value_at..value_at + len as usize]).unwrap();
    assert_eq!(runs.len(), 7, "one row holds the submission's entries");
    let mut bad = good.clone();
    bad[value_at + runs[5].start + 10] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let why = refused(verify_snapshot(&out));
    assert!(why.contains("audit entry 5"), "{why}");

    // In the last record's value, which nothing but the checksum covers.
    let mut bad = good.clone();
    let last = bad.len() - 32 - 33 - 1;
    bad[last] ^= 0x80;
    std::fs::write(&file, &bad).unwrap();
    let why = refused(verify_snapshot(&out));
    assert!(why.contains("SHA-256"), "{why}");

    // And every byte at a stride: each refused, none panics.
    for i in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[i] ^= 0x04;
        std::fs::write(&file, &bad).unwrap();
        assert!(
            verify_snapshot(&out).is_err(),
            "byte {i} changed, still accepted"
        );
    }

    let data = dir.path().join("restored");
    let e = restore(&out, &data, false, 7).unwrap_err();
    assert!(e.to_string().contains("does not check out"), "{e}");
    assert!(!data.exists());
    assert!(!dir.path().join("restored.restore-7").exists());
}

/// A backup file cut short is refused, at any length; so is a body file
/// missing, and a backup in the older layout (a copy of the database).
#[tokio::test]
async fn a_cut_backup_file_a_missing_body_and_the_old_layout_are_refused() {
    let dir = super::tempdir();
    let out = backup_of(dir.path(), 6).await;
    let file = out.join(SNAPSHOT_FILE);
    let good = std::fs::read(&file).unwrap();
    let why = {
        std::fs::write(&file, &good[..good.len() / 2]).unwrap();
        refused(verify_snapshot(&out))
    };
    assert!(why.contains("cut short"), "{why}");
    for len in (0..good.len()).step_by(61).chain([good.len() - 1]) {
        std::fs::write(&file, &good[..len]).unwrap();
        assert!(
            verify_snapshot(&out).is_err(),
            "cut at {len}, still accepted"
        );
    }
    std::fs::write(&file, &good).unwrap();
    verify_snapshot(&out).unwrap();

    let bodies = out.join(at_rest::BODIES);
    let body = std::fs::read_dir(&bodies)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&body, dir.path().join("aside")).unwrap();
    let why = refused(verify_snapshot(&out));
    assert!(why.contains("has its body in the file"), "{why}");
    std::fs::rename(dir.path().join("aside"), &body).unwrap();

    // The older layout: a data directory's copy.
    let old = dir.path().join("old");
    copy_snapshot(&dir.path().join("data"), &old).unwrap();
    let why = refused(verify_snapshot(&old));
    assert!(why.contains("older layout"), "{why}");
    let e = restore(&old, &dir.path().join("r"), false, 1).unwrap_err();
    assert!(e.to_string().contains("older layout"), "{e}");
}

/// A snapshot that holds the writer for longer than a commit may take (a
/// large store) does not make the commits queued behind it fail as "not
/// responding", nor the store unhealthy: they wait for it and complete.
#[tokio::test]
async fn commits_queued_behind_a_long_snapshot_wait_for_it_instead_of_timing_out() {
    let dir = super::tempdir();
    let data = dir.path().join("data");
    let flush_timeout = std::time::Duration::from_millis(200);
    let store = Store::open_with(
        &data,
        crate::store::StoreOptions {
            flush_timeout,
            ..crate::store::StoreOptions::new(Durability::ProcessCrash)
        },
    )
    .unwrap();
    store.audit(vec![entry(Event::Submitted)]).await.unwrap();
    // The snapshot holds the writer for three commit bounds.
    store.status.snapshot_pause_ms.store(600, Ordering::SeqCst);
    let snapshot = {
        let store = store.clone();
        tokio::spawn(async move { store.snapshot().await })
    };
    while !store.status.snapshotting.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    let started = std::time::Instant::now();
    let (small, deliveries) = outbound(7);
    let queued = store.submit(small, deliveries, None, vec![entry(Event::Submitted)]);
    queued
        .await
        .expect("a commit behind a snapshot waits for it");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(400),
        "the commit waited for the snapshot ({:?})",
        started.elapsed()
    );
    assert_eq!(store.health(), crate::store::StoreHealth::Ok);
    let info = snapshot.await.unwrap().unwrap();
    assert_eq!(info.entries, 1, "the snapshot is the commit before it");
    store.drop_snapshot();
    // Without a snapshot the bound holds as before: nothing changed there.
    store.status.snapshot_pause_ms.store(0, Ordering::SeqCst);
    store.audit(vec![entry(Event::Submitted)]).await.unwrap();
}
