//! A full or failing disk: the free-space reserve and the bounded waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kurir_proto::audit::Event;

use super::*;
use crate::store::space::MIB;
use crate::store::{
    Accepted, DEFAULT_FLUSH_TIMEOUT, FreeSpace, ReadMark, StoreError, StoreHealth, StoreOptions,
};

/// Free space as the test sets it; `hold` makes the reading block, as a
/// writer stuck on the disk would.
#[derive(Debug, Default)]
struct TestSpace {
    free: AtomicU64,
    hold: Mutex<()>,
}

impl FreeSpace for TestSpace {
    fn available(&self, _dir: &Path) -> std::io::Result<u64> {
        drop(self.hold.lock().unwrap());
        Ok(self.free.load(Ordering::SeqCst))
    }
}

fn with_space(dir: &Path, space: Arc<TestSpace>, flush_timeout: Duration) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            min_free_bytes: 256 * MIB,
            flush_timeout,
            space,
            ..StoreOptions::new(Durability::ProcessCrash)
        },
    )
    .unwrap()
}

#[tokio::test]
async fn below_the_reserve_new_work_is_refused_and_accepted_work_completes() {
    let dir = super::tempdir();
    let space = Arc::new(TestSpace::default());
    space.free.store(10 * 1024 * MIB, Ordering::SeqCst);
    let store = with_space(dir.path(), space.clone(), DEFAULT_FLUSH_TIMEOUT);
    // Accepted while there is room: a sent message and a received one.
    let (record, deliveries) = outbound(1);
    store
        .submit(record, deliveries.clone(), None, vec![])
        .await
        .unwrap();
    let Accepted::New(first) = store
        .accept_inbound(inbox_record(2), None, received(2), signer(1))
        .await
        .unwrap()
    else {
        panic!("expected a new message");
    };
    assert_eq!(store.health(), StoreHealth::Ok);

    space.free.store(100 * MIB, Ordering::SeqCst);
    let (record, more) = outbound(3);
    let err = store
        .submit(record, more, None, vec![entry(Event::Submitted)])
        .await
        .unwrap_err();
    assert!(err.is_low_space(), "{err}");
    let text = err.to_string();
    let named = format!("the data dir {}", dir.path().display());
    for part in [
        named.as_str(),
        "has 100 MiB free",
        "below the reserve of 256 MiB",
        "free space on that filesystem",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    let err = store
        .accept_inbound(inbox_record(4), None, received(4), signer(1))
        .await
        .unwrap_err();
    assert!(err.is_low_space(), "{err}");
    // A parcel stored before gets its original receipt.
    let Accepted::Duplicate(again) = store
        .accept_inbound(inbox_record(2), None, received(2), signer(7))
        .await
        .unwrap()
    else {
        panic!("expected the stored original");
    };
    assert_eq!(again.receipt, first.receipt);
    // Completing accepted work uses the reserve.
    let mut delivered = deliveries[0].clone();
    delivered.state = DeliveryState::Delivered {
        at: T0,
        receipt: vec![7],
    };
    store
        .update_delivery(delivered, vec![entry(Event::Delivered)])
        .await
        .unwrap();
    store
        .mark_read(
            id(2),
            ReadMark {
                at: T0,
                by: "Marko".into(),
            },
            vec![entry(Event::Read)],
        )
        .await
        .unwrap();
    let StoreHealth::Degraded(why) = store.health() else {
        panic!("expected degraded: {:?}", store.health());
    };
    assert!(why.contains("100 MiB free"), "{why}");
    assert!(store.outbound(id(3)).unwrap().is_none());
    assert!(store.inbox(id(4)).unwrap().is_none());

    // Room again: accepted at once, no restart.
    space.free.store(300 * MIB, Ordering::SeqCst);
    let (record, more) = outbound(3);
    store.submit(record, more, None, vec![]).await.unwrap();
    assert_eq!(store.health(), StoreHealth::Ok);
    // Switched off.
    space.free.store(0, Ordering::SeqCst);
    store.set_min_free_bytes(0);
    store
        .accept_inbound(inbox_record(4), None, received(4), signer(1))
        .await
        .unwrap();
    store.close().unwrap();
    drop(store);

    let store = reopen(dir.path());
    let events: Vec<_> = entries(&store).iter().map(|e| (e.index, e.event)).collect();
    assert_eq!(
        events,
        vec![
            (0, Event::Received),
            (1, Event::Delivered),
            (2, Event::Read),
            (3, Event::Received),
        ],
        "the refused work left no entry, the log has no gap"
    );
    assert_eq!(store.outbound_all().unwrap().len(), 2);
    assert_eq!(store.inbox_all().unwrap().len(), 2);
}

// The lock stands for the disk: holding it across the awaits is the point.
#[allow(clippy::await_holding_lock)]
#[tokio::test]
async fn a_writer_stuck_on_the_disk_gets_a_bounded_wait_and_a_bounded_close() {
    let dir = super::tempdir();
    let space = Arc::new(TestSpace::default());
    space.free.store(10 * 1024 * MIB, Ordering::SeqCst);
    let bound = Duration::from_millis(300);
    let store = with_space(dir.path(), space.clone(), bound);
    store.audit(vec![entry(Event::Started)]).await.unwrap();

    // The writer blocks before its next batch, as on a hung disk.
    let held = space.hold.lock().unwrap();
    let started = Instant::now();
    let err = store.audit(vec![entry(Event::Started)]).await.unwrap_err();
    assert!(started.elapsed() >= bound);
    assert!(matches!(err, StoreError::NotResponding { .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("storage is not responding"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    let StoreHealth::Unhealthy(why) = store.health() else {
        panic!("expected unhealthy: {:?}", store.health());
    };
    assert!(why.contains("not responding"), "{why}");

    // Reads still work.
    assert_eq!(entries(&store).len(), 1);

    // Close gives up after the bound instead of blocking for good.
    let closing = Instant::now();
    let err = tokio::task::spawn_blocking({
        let store = store.clone();
        move || store.close()
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, StoreError::NotResponding { .. }), "{err}");
    assert!(closing.elapsed() < bound * 10);

    // The disk comes back: the writer finishes what it had (the audit
    // entry was written, though never acknowledged) and stops.
    drop(held);
    drop(store);
    let writer = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(entries(&writer).len(), 2);
}

#[tokio::test]
async fn a_large_body_that_would_eat_into_the_reserve_is_refused_and_leaves_no_file() {
    let dir = super::tempdir();
    let space = Arc::new(TestSpace::default());
    space.free.store(257 * MIB, Ordering::SeqCst);
    let store = with_space(dir.path(), space.clone(), DEFAULT_FLUSH_TIMEOUT);
    let size = 3 * at_rest::FILE_MIN;
    // Room for it: 1 MiB above the reserve of 256 MiB.
    let (record, deliveries) = outbound(1);
    let record = OutboundRecord {
        parcel: large_parcel(1, size),
        ..record
    };
    store
        .submit(record, deliveries, None, vec![])
        .await
        .unwrap();
    let received_big = InboxRecord {
        parcel: large_parcel(2, size),
        ..inbox_record(2)
    };
    let Accepted::New(first) = store
        .accept_inbound(received_big.clone(), None, received(2), signer(1))
        .await
        .unwrap()
    else {
        panic!("expected a new message");
    };
    assert_eq!(body_files(dir.path()).len(), 2);

    // Half a MiB above the reserve: a large body would eat into it.
    space.free.store(256 * MIB + MIB / 2, Ordering::SeqCst);
    let (record, deliveries) = outbound(3);
    let big = OutboundRecord {
        parcel: large_parcel(3, size),
        ..record.clone()
    };
    let err = store
        .submit(big, deliveries.clone(), None, vec![])
        .await
        .unwrap_err();
    assert!(err.is_low_space(), "{err}");
    assert!(
        err.to_string().contains("below the reserve of 256 MiB"),
        "{err}"
    );
    let err = store
        .accept_inbound(
            InboxRecord {
                parcel: large_parcel(4, size),
                ..inbox_record(4)
            },
            None,
            received(4),
            signer(1),
        )
        .await
        .unwrap_err();
    assert!(err.is_low_space(), "{err}");
    assert_eq!(
        body_files(dir.path()).len(),
        2,
        "no file written for either"
    );
    // A large message received before still gets its original receipt.
    let Accepted::Duplicate(again) = store
        .accept_inbound(received_big, None, received(2), signer(9))
        .await
        .unwrap()
    else {
        panic!("expected the stored original");
    };
    assert_eq!(again.receipt, first.receipt);
    // Small messages still fit above the reserve.
    store
        .submit(record, deliveries, None, vec![])
        .await
        .unwrap();
    assert_eq!(store.status.writing.load(Ordering::SeqCst), 0);
}
