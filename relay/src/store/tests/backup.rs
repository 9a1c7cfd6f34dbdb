//! Snapshots: one commit's state, the body files it names kept even when
//! erased after it, one snapshot staged at a time, a leftover removed at
//! open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kurir_proto::audit::Event;

use super::{entry, id, large_parcel, outbound, retry};
use crate::store::{
    Durability, Erased, OutboundRecord, STAGING, Store, StoreError, at_rest, copy_snapshot,
    verify_snapshot,
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
    let copy = retry(|| Store::open(&out, Durability::ProcessCrash));
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
