//! Bodies at rest: encrypted, erased, cut out of heads, kept in body files.

use kurir_proto::audit::Event;
use kurir_proto::cbor;

use super::*;
use crate::store::at_rest::{Stored, without_body};
use crate::store::envelope_of;
use crate::store::records::encode;
use crate::store::trees::open_sled;
use crate::store::{Accepted, Erased};

#[tokio::test]
async fn erasing_a_body_keeps_the_envelope_and_logs_it() {
    let dir = super::tempdir();
    let (store, before) = with_one_received(dir.path()).await;
    let envelope = Store::envelope(&before.parcel).unwrap();
    let erased = Erased {
        at: T0,
        policy: "retention.received_days = 1".into(),
    };
    store
        .erase_body(id(1), true, erased.clone(), vec![entry(Event::BodyErased)])
        .await
        .unwrap();
    let after = store.inbox(id(1)).unwrap().unwrap();
    assert_eq!(after.erased, Some(erased));
    assert_eq!(
        store.parcel(id(1), &after.parcel).unwrap(),
        None,
        "key gone"
    );
    assert_eq!(Store::envelope(&after.parcel).unwrap(), envelope);
    assert!(after.parcel.len() < before.parcel.len());
    assert_eq!(after.receipt, before.receipt);
    let log = entries(&store);
    assert_eq!(log.last().unwrap().event, Event::BodyErased);
    // The key was in the record, beside the ciphertext; both are gone.
    assert!(Stored::parse(&before.parcel).unwrap().key().is_some());
    assert!(matches!(
        Stored::parse(&after.parcel).unwrap(),
        Stored::Erased { .. }
    ));
}

/// A record of format 2 holds no key: its key is in `body_keys`, where it
/// is still found, and erasure deletes it there.
#[tokio::test]
async fn a_body_key_of_format_2_in_its_own_row_opens_the_body_and_is_erased_with_it() {
    let dir = super::tempdir();
    let (store, now) = with_one_received(dir.path()).await;
    let clear = store.parcel(id(1), &now.parcel).unwrap().unwrap();
    assert_eq!(clear, inbox_record(1).parcel);
    store.close().unwrap();
    drop(store);
    // As a relay of format 2 wrote it.
    let old = {
        let Stored::Inline {
            envelope,
            sealed,
            key: Some(key),
        } = Stored::parse(&now.parcel).unwrap()
        else {
            panic!("a new record holds its key");
        };
        let old = InboxRecord {
            parcel: at_rest::inline_keyless(envelope, sealed),
            ..now.clone()
        };
        let db = retry(|| open_sled(dir.path()));
        let inbox = db.open_tree("inbox").unwrap();
        inbox
            .insert(id(1).as_bytes(), encode(&old).unwrap())
            .unwrap();
        let keys = db.open_tree("body_keys").unwrap();
        keys.insert(id(1).as_bytes(), &key[..]).unwrap();
        db.flush().unwrap();
        old
    };
    let store = reopen(dir.path());
    let read = store.inbox(id(1)).unwrap().unwrap();
    assert_eq!(read, old);
    assert_eq!(Stored::parse(&read.parcel).unwrap().key(), None);
    assert_eq!(store.parcel(id(1), &read.parcel).unwrap(), Some(clear));
    let erased = Erased {
        at: T0,
        policy: "retention.received_days = 1".into(),
    };
    store
        .erase_body(id(1), true, erased, vec![entry(Event::BodyErased)])
        .await
        .unwrap();
    let trees = store.trees().unwrap();
    assert_eq!(trees.body_keys.get(id(1).as_bytes()).unwrap(), None);
    // A copy of the old record no longer opens: its key is gone.
    assert_eq!(store.parcel(id(1), &old.parcel).unwrap(), None);
}

#[tokio::test]
async fn a_head_is_the_record_with_only_the_envelope() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    for n in 1..=2 {
        let (record, deliveries) = outbound(n);
        store
            .submit(record, deliveries, None, vec![])
            .await
            .unwrap();
    }
    let erased = Erased {
        at: T0,
        policy: "test".into(),
    };
    store
        .erase_body(id(2), false, erased, vec![])
        .await
        .unwrap();
    for n in 1..=2 {
        let full = store.outbound(id(n)).unwrap().unwrap();
        let head = store.outbound_head(id(n)).unwrap().unwrap();
        let envelope = Store::envelope(&full.parcel).unwrap();
        assert_eq!(
            head,
            OutboundRecord {
                parcel: at_rest::erased(&envelope),
                ..full
            }
        );
        assert_eq!(Store::envelope(&head.parcel), Some(envelope));
    }
    assert_eq!(store.outbound_heads().unwrap().len(), 2);
    assert_eq!(store.outbound_head(id(3)).unwrap(), None);
    // The parcel to deliver, read without decoding the record.
    let sent = store.sent_parcel(id(1)).unwrap().unwrap();
    assert_eq!(sent, parcel(1));
    let whole = kurir_proto::Parcel::from_bytes(&sent).unwrap();
    assert_eq!(envelope_of(&sent), Some(&whole.envelope[..]));
    assert_eq!(store.sent_parcel(id(2)).unwrap(), None, "erased");
    assert_eq!(store.sent_parcel(id(3)).unwrap(), None, "unknown");
}

#[test]
fn the_body_is_cut_out_of_a_record_of_any_size() {
    for body in [0usize, 23, 24, 255, 256, 65_536, 8 << 20] {
        let sealed = vec![7u8; body];
        let record = OutboundRecord {
            parcel: at_rest::inline(&[1, 2, 3], &sealed, &[5; 32]),
            erased: Some(Erased {
                at: T0,
                policy: "p".into(),
            }),
            ..outbound(1).0
        };
        let stored = encode(&record).unwrap();
        let light = without_body(&stored).unwrap();
        assert!(light.len() < 1_000, "{body}: {} bytes", light.len());
        let head: OutboundRecord = cbor::from_slice(&light).unwrap();
        assert_eq!(
            head,
            OutboundRecord {
                parcel: at_rest::erased(&[1, 2, 3]),
                ..record
            }
        );
    }
    // Anything else is left to the full decoder.
    assert_eq!(without_body(&[]), None);
    assert_eq!(without_body(&[0xa1, 0x66]), None);
    assert_eq!(without_body(&encode(&outbound(1).1[0]).unwrap()), None);
}

#[tokio::test]
async fn a_large_body_is_kept_in_a_file_of_its_own_until_it_is_erased() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    let big = large_parcel(1, 3 * at_rest::FILE_MIN);
    let (record, deliveries) = outbound(1);
    let record = OutboundRecord {
        parcel: big.clone(),
        ..record
    };
    store
        .submit(record, deliveries, None, vec![])
        .await
        .unwrap();
    let (small, deliveries) = outbound(2);
    store.submit(small, deliveries, None, vec![]).await.unwrap();

    let files = body_files(dir.path());
    assert_eq!(files.len(), 1, "only the large body has a file: {files:?}");
    let stored = store
        .trees()
        .unwrap()
        .outbound
        .get(id(1).as_bytes())
        .unwrap()
        .unwrap();
    assert!(
        stored.len() < 2_000,
        "the record holds no body: {} bytes",
        stored.len()
    );
    let on_disk = std::fs::read(dir.path().join(at_rest::BODIES).join(&files[0])).unwrap();
    assert!(
        !on_disk
            .windows(64)
            .any(|w| big.windows(64).next() == Some(w)),
        "the file holds the body encrypted"
    );
    assert_eq!(store.sent_parcel(id(1)).unwrap(), Some(big.clone()));
    assert_eq!(store.sent_parcel(id(2)).unwrap(), Some(parcel(2)));
    let head = store.outbound_head(id(1)).unwrap().unwrap();
    let envelope = Store::envelope(&head.parcel).unwrap();
    assert_eq!(envelope_of(&big), Some(&envelope[..]));

    // After a restart, the same.
    store.close().unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.sent_parcel(id(1)).unwrap(), Some(big));
    assert_eq!(body_files(dir.path()), files);

    let erased = Erased {
        at: T0,
        policy: "test".into(),
    };
    store
        .erase_body(id(1), false, erased, vec![])
        .await
        .unwrap();
    assert!(
        body_files(dir.path()).is_empty(),
        "erasure removes the file"
    );
    assert_eq!(store.sent_parcel(id(1)).unwrap(), None);
    let full = store.outbound(id(1)).unwrap().unwrap();
    assert_eq!(Store::envelope(&full.parcel), Some(envelope));
}

#[tokio::test]
async fn duplicates_of_a_large_message_leave_one_body_file() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let big = large_parcel(1, at_rest::FILE_MIN + 1);
    let mut tasks = vec![];
    for attempt in 0..4u8 {
        let store = store.clone();
        let record = InboxRecord {
            parcel: big.clone(),
            ..inbox_record(1)
        };
        tasks.push(tokio::spawn(async move {
            store
                .accept_inbound(record, None, received(1), signer(attempt))
                .await
                .unwrap()
        }));
    }
    let mut new = 0;
    for t in tasks {
        new += usize::from(matches!(t.await.unwrap(), Accepted::New(_)));
    }
    assert_eq!(new, 1);
    assert_eq!(body_files(dir.path()).len(), 1);
    let stored = store.inbox(id(1)).unwrap().unwrap();
    assert_eq!(store.parcel(id(1), &stored.parcel).unwrap(), Some(big));
}

#[tokio::test]
async fn body_files_no_record_names_are_removed_at_open_and_a_damaged_one_is_reported() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let record = InboxRecord {
        parcel: large_parcel(1, at_rest::FILE_MIN),
        ..inbox_record(1)
    };
    store
        .accept_inbound(record, None, received(1), signer(0))
        .await
        .unwrap();
    let kept = body_files(dir.path());
    assert_eq!(kept.len(), 1);
    store.close().unwrap();
    drop(store);

    // Left by a crash: a file for a message that was never committed,
    // and a second file for a stored message.
    let bodies = dir.path().join(at_rest::BODIES);
    for name in [at_rest::new_file_name(id(7)), at_rest::new_file_name(id(1))] {
        std::fs::write(bodies.join(name), b"sealed").unwrap();
    }
    assert_eq!(body_files(dir.path()).len(), 3);
    let store = reopen(dir.path());
    assert_eq!(body_files(dir.path()), kept, "only the named file stays");

    // A flipped byte fails the authenticated decryption; a missing file
    // is named.
    let path = bodies.join(&kept[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let stored = store.inbox(id(1)).unwrap().unwrap();
    let err = store.parcel(id(1), &stored.parcel).unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = store.parcel(id(1), &stored.parcel).unwrap_err().to_string();
    assert!(err.contains(&kept[0]), "{err}");
}
