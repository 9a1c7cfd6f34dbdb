//! Messages sent and received: what survives a reopen, duplicates, read
//! marks, the open deliveries, a closed store.

use kurir_proto::audit::Event;
use kurir_proto::cbor;

use super::*;
use crate::store::format::FORMAT_KEY;
use crate::store::keys::{OPEN_INDEXED, OPEN_PREFIX};
use crate::store::trees::open_sled;
use crate::store::{Accepted, CommitCounts, FORMAT_VERSION, ReadMark, StoreError};

/// The ids of the inbox as `inbox_all` lists them.
fn inbox_ids(store: &Store) -> Vec<MessageId> {
    store
        .inbox_all()
        .unwrap()
        .into_iter()
        .map(|r| r.msg_id)
        .collect()
}

/// The rows of the `deliveries` tree (the final deliveries), in key order.
fn final_rows(store: &Store) -> Vec<Delivery> {
    store
        .trees()
        .unwrap()
        .deliveries
        .iter()
        .map(|i| cbor::from_slice(&i.unwrap().1).unwrap())
        .collect()
}

#[tokio::test]
async fn everything_survives_a_reopen_with_its_audit_entries() {
    let dir = super::tempdir();
    {
        let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
        let (record, deliveries) = outbound(1);
        let submitted = entry(Event::Submitted);
        store
            .submit(record, deliveries.clone(), None, vec![submitted])
            .await
            .unwrap();
        let mut delivered = deliveries[0].clone();
        delivered.attempts = 1;
        delivered.state = DeliveryState::Delivered {
            at: T0,
            receipt: vec![7],
        };
        store
            .update_delivery(delivered, vec![entry(Event::Delivered)])
            .await
            .unwrap();
        let Accepted::New(stored) = store
            .accept_inbound(inbox_record(2), None, received(2), signer(9))
            .await
            .unwrap()
        else {
            panic!("expected a new message");
        };
        // The receipt was signed with the received entry's index (2).
        assert_eq!(signed(&stored.receipt).0, 9);
        assert_eq!(signed(&stored.receipt).1, 2);
        store.close().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.outbound(id(1)).unwrap().unwrap().submitted_by, "Ana");
    let all = store.deliveries_of(id(1)).unwrap();
    assert_eq!(all.len(), 2);
    let open = store.open_deliveries().unwrap();
    assert_eq!(open.len(), 1, "the delivered one is final");
    assert_eq!(open[0].peer, peer("MK.MVR"));
    assert_eq!(store.inbox_all().unwrap().len(), 1);
    // Bodies are encrypted at rest and come back in clear.
    let out = store.outbound(id(1)).unwrap().unwrap();
    assert_ne!(out.parcel, parcel(1));
    let plain_text = b"Joint patrol";
    let has = |b: &[u8]| b.windows(plain_text.len()).any(|w| w == plain_text);
    assert!(has(&parcel(1)), "the parcel in clear holds the subject");
    assert!(!has(&out.parcel), "the stored form does not");
    assert_eq!(store.parcel(id(1), &out.parcel).unwrap(), Some(parcel(1)));
    let log = entries(&store);
    let events: Vec<_> = log.iter().map(|e| (e.index, e.event)).collect();
    assert_eq!(
        events,
        vec![
            (0, Event::Submitted),
            (1, Event::Delivered),
            (2, Event::Received)
        ]
    );
    assert_eq!(store.log_state().size, 3);
    // The leaf hash in the receipt is that of entry 2.
    let stored = store.inbox(id(2)).unwrap().unwrap();
    assert_eq!(signed(&stored.receipt).2, log[2].leaf_hash());
}

#[tokio::test]
async fn concurrent_duplicates_store_one_and_return_the_original() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let mut tasks = vec![];
    for attempt in 0..8u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .accept_inbound(inbox_record(1), None, received(1), signer(attempt))
                .await
                .unwrap()
        }));
    }
    let mut new = 0;
    let mut originals = vec![];
    for t in tasks {
        match t.await.unwrap() {
            Accepted::New(_) => new += 1,
            Accepted::Duplicate(old) => originals.push(old.receipt),
        }
    }
    assert_eq!(new, 1);
    let stored = store.inbox(id(1)).unwrap().unwrap();
    assert!(originals.iter().all(|r| *r == stored.receipt));
    assert_eq!(store.inbox_all().unwrap().len(), 1);
    assert_eq!(entries(&store).len(), 1, "one received entry, not eight");
}

#[tokio::test]
async fn first_read_mark_stays_and_is_logged_once() {
    let dir = super::tempdir();
    let (store, _) = with_one_received(dir.path()).await;
    let first = ReadMark {
        at: T0,
        by: "Marko".into(),
    };
    let read = || vec![entry(Event::Read)];
    let r = store
        .mark_read(id(1), first.clone(), read())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.read, Some(first.clone()));
    let later = ReadMark {
        at: T0.plus_millis(5),
        by: "Jelena".into(),
    };
    let r = store
        .mark_read(id(1), later, read())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.read, Some(first));
    assert_eq!(
        store
            .mark_read(id(9), r.read.clone().unwrap(), read())
            .await
            .unwrap(),
        None
    );
    assert_eq!(entries(&store).len(), 2, "received, then one read");
}

#[tokio::test]
async fn open_deliveries_come_from_their_index_which_older_stores_get_built() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let mut all = Vec::new();
    for n in 1..=4 {
        let (record, deliveries) = outbound(n);
        store
            .submit(record, deliveries.clone(), None, vec![])
            .await
            .unwrap();
        all.extend(deliveries);
    }
    // Final: delivered, rejected, expired; still open: retrying.
    let finals = [
        DeliveryState::Delivered {
            at: T0,
            receipt: vec![7],
        },
        DeliveryState::Rejected {
            at: T0,
            code: "kind_not_allowed".into(),
            detail: None,
            receipt: vec![8],
        },
        DeliveryState::Expired { at: T0 },
    ];
    for (d, state) in all.iter().zip(finals) {
        let d = Delivery { state, ..d.clone() };
        store.update_delivery(d, vec![]).await.unwrap();
    }
    let retrying = Delivery {
        attempts: 2,
        state: DeliveryState::Retrying {
            next_at: T0.plus_millis(5_000),
            last_error: "connection refused".into(),
        },
        ..all[3].clone()
    };
    store.update_delivery(retrying, vec![]).await.unwrap();
    let expected = |store: &Store| -> Vec<Delivery> {
        let mut every = Vec::new();
        for n in 1..=4 {
            every.extend(store.deliveries_of(id(n)).unwrap());
        }
        every.into_iter().filter(|d| !d.state.is_final()).collect()
    };
    let want = expected(&store);
    assert_eq!(want.len(), 5, "8 deliveries, 3 final");
    assert_eq!(store.open_deliveries().unwrap(), want);
    // Each delivery is in one place: the open ones under `open/`, the
    // final ones in `deliveries`.
    let final_ones = final_rows(&store);
    assert_eq!(final_ones.len(), 3);
    assert!(final_ones.iter().all(|d| d.state.is_final()));
    let every: Vec<Delivery> = (1..=4)
        .flat_map(|n| store.deliveries_of(id(n)).unwrap())
        .collect();
    assert_eq!(every.len(), 8);
    store.close().unwrap();
    drop(store);

    // A store from before the index (format 0): every delivery in
    // `deliveries`, no index keys, no marker, and no recorded format.
    {
        let db = open_sled(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        let deliveries = db.open_tree("deliveries").unwrap();
        let open: Vec<_> = meta.scan_prefix(OPEN_PREFIX).map(|i| i.unwrap()).collect();
        assert_eq!(open.len(), 5);
        for (k, v) in open {
            deliveries.insert(&k[OPEN_PREFIX.len()..], v).unwrap();
            meta.remove(k).unwrap();
        }
        meta.remove(OPEN_INDEXED).unwrap();
        meta.remove(FORMAT_KEY).unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.open_deliveries().unwrap(), want, "built at open");
    // And moved out of `deliveries` by the upgrade to format 3.
    assert_eq!(final_rows(&store), final_ones);
    let again: Vec<Delivery> = (1..=4)
        .flat_map(|n| store.deliveries_of(id(n)).unwrap())
        .collect();
    assert_eq!(again, every);
}

/// A store of format 2 kept every delivery in `deliveries` (the open ones
/// copied under `open/`) and the inbox's order in `inbox_order`: the
/// upgrade leaves each delivery in one place and empties the order, and
/// every delivery and message reads as before, a final state first.
#[tokio::test]
async fn the_upgrade_to_format_3_moves_open_deliveries_and_drops_the_inbox_order() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let (record, deliveries) = outbound(1);
    store
        .submit(record, deliveries.clone(), None, vec![])
        .await
        .unwrap();
    // Received out of id order: the listing is by the time received.
    for (n, at) in [(3, 20), (2, 10)] {
        let r = InboxRecord {
            received_at: T0.plus_millis(at),
            ..inbox_record(n)
        };
        store
            .accept_inbound(r, None, received(n), signer(0))
            .await
            .unwrap();
    }
    assert_eq!(inbox_ids(&store), [id(2), id(3)]);
    let open = store.deliveries_of(id(1)).unwrap();
    assert_eq!(open.len(), 2);
    store.close().unwrap();
    drop(store);
    let expired = Delivery {
        state: DeliveryState::Expired { at: T0 },
        ..open[1].clone()
    };
    {
        let db = open_sled(dir.path()).unwrap();
        let deliveries = db.open_tree("deliveries").unwrap();
        let meta = db.open_tree("meta").unwrap();
        let order = db.open_tree("inbox_order").unwrap();
        // Format 2: each open delivery in `deliveries` as well; and one of
        // them final there, its open copy left behind (no relay writes
        // that, but the final state is the one to keep).
        for (k, v) in meta.scan_prefix(OPEN_PREFIX).map(|i| i.unwrap()) {
            deliveries.insert(&k[OPEN_PREFIX.len()..], v).unwrap();
        }
        let key = crate::store::keys::delivery_key(&expired);
        deliveries
            .insert(key, crate::store::records::encode(&expired).unwrap())
            .unwrap();
        order.insert([0u8; 24], &[][..]).unwrap();
        meta.insert(FORMAT_KEY, &2u32.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.format_version().unwrap(), Some(FORMAT_VERSION));
    assert_eq!(
        store.deliveries_of(id(1)).unwrap(),
        vec![open[0].clone(), expired.clone()]
    );
    assert_eq!(store.open_deliveries().unwrap(), vec![open[0].clone()]);
    assert_eq!(
        final_rows(&store),
        vec![expired],
        "the open row went, the final stayed"
    );
    assert!(store.trees().unwrap().inbox_order.is_empty());
    assert_eq!(inbox_ids(&store), [id(2), id(3)]);
}

#[tokio::test]
async fn a_closed_store_refuses_writes() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    store.close().unwrap();
    assert!(matches!(
        store
            .accept_inbound(inbox_record(1), None, received(1), signer(0))
            .await,
        Err(StoreError::Closed)
    ));
}

/// sled shows a group's writes to readers once they are applied, before
/// the writer's flush: a delivery read as `delivered` in that window is not
/// on disk yet. `reads_durable` waits for the flush, so an answer built
/// from such a read (a `status`) never goes out before it.
///
/// A small group the journal takes is durable before sled shows it (it is
/// answered first, then applied: see `writer`), so the update here is made
/// a group the journal cannot take (a journal limit of one record): it
/// goes to sled in a transaction, before the batch's full flush, the
/// window this test protects.
#[tokio::test]
async fn a_state_read_before_its_flush_is_answered_only_once_it_is_on_disk() {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    // The submission fills the journal; the update goes to a transaction.
    store.status.journal_limit.store(1, Ordering::SeqCst);
    let (record, deliveries) = outbound(1);
    store
        .submit(record, deliveries.clone(), None, vec![])
        .await
        .unwrap();
    // Nothing between an apply and its flush: no wait.
    store.reads_durable().await.unwrap();

    store.status.hold_flush.store(true, Ordering::SeqCst);
    let mut delivered = deliveries[0].clone();
    delivered.attempts = 1;
    delivered.state = DeliveryState::Delivered {
        at: T0,
        receipt: vec![7],
    };
    let update = tokio::spawn({
        let store = store.clone();
        async move { store.update_delivery(delivered, vec![]).await }
    });
    // The writer applies the update and holds its flush: readers see it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store
        .deliveries_of(id(1))
        .unwrap()
        .iter()
        .any(|d| d.state.is_final())
    {
        assert!(Instant::now() < deadline, "the update never became visible");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!update.is_finished(), "acknowledged before its flush");
    // An answer built from that read waits while the flush is held…
    let answer = tokio::spawn({
        let store = store.clone();
        async move { store.reads_durable().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !answer.is_finished(),
        "a read of a state not yet on disk was let through"
    );
    // …and goes once it is on disk.
    store.status.hold_flush.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .expect("answered after the flush")
        .unwrap()
        .unwrap();
    update.await.unwrap().unwrap();
}

/// sled applies a group's writes one by one, and `deliveries_of` reads
/// `open/` first, then `deliveries`: a final state must be put before its
/// open one is removed, or a read between the two would find neither.
#[test]
fn a_final_state_is_written_before_its_open_one_is_removed() {
    use crate::store::outbound::DeliveryRow;
    use crate::store::trees::TreeId;
    use crate::store::writer::Pending;
    let (_, deliveries) = outbound(1);
    let expired = Delivery {
        state: DeliveryState::Expired { at: T0 },
        ..deliveries[0].clone()
    };
    // Each write as (tree, under `open/`, a put).
    let writes = |d: &Delivery| -> Vec<(TreeId, bool, bool)> {
        let mut pending = Pending::default();
        DeliveryRow::new(d).unwrap().write(&mut pending, true);
        pending
            .writes()
            .into_iter()
            .map(|(tree, key, put)| (tree, key.starts_with(OPEN_PREFIX), put))
            .collect()
    };
    assert_eq!(
        writes(&expired),
        [
            (TreeId::Deliveries, false, true),
            (TreeId::Meta, true, false)
        ]
    );
    // Still open: under `open/` alone.
    let order = writes(&deliveries[1]);
    assert_eq!(order, [(TreeId::Meta, true, true)]);
}

/// The rows a message costs the database (docs/PERFORMANCE.md, "Fewer
/// rows per message"), counted by the store as the metrics show them: the
/// receiver writes its record and its audit entry; the sender its record,
/// the open delivery and an entry at submission, the final state (moved
/// out of `open/`), the receipt held for its proof and an entry when
/// delivered, and the proof (the held receipt removed) later. Each group
/// also writes its number.
#[tokio::test]
async fn a_message_costs_two_rows_on_the_receiver_and_nine_on_the_sender() {
    let rows = |store: &Store, before: CommitCounts| {
        let now = store.commit_counts();
        (now.commits - before.commits, now.rows - before.rows)
    };
    let (receiver_dir, sender_dir) = (super::tempdir(), super::tempdir());
    let receiver = Store::open(receiver_dir.path(), Durability::ProcessCrash).unwrap();
    let sender = Store::open(sender_dir.path(), Durability::ProcessCrash).unwrap();

    let before = receiver.commit_counts();
    let Accepted::New(stored) = receiver
        .accept_inbound(inbox_record(1), None, received(1), signer(0))
        .await
        .unwrap()
    else {
        panic!("new");
    };
    assert_eq!(
        rows(&receiver, before),
        (1, 2 + 1),
        "inbox, log; the number"
    );

    let (record, deliveries) = outbound(1);
    let one = vec![deliveries[0].clone()];
    let before = sender.commit_counts();
    sender
        .submit(record, one, None, vec![about(1, Event::Submitted)])
        .await
        .unwrap();
    assert_eq!(rows(&sender, before), (1, 3 + 1), "outbound, open/, log");

    let (_, index, leaf) = signed(&stored.receipt);
    let delivered = Delivery {
        state: DeliveryState::Delivered {
            at: T0,
            receipt: stored.receipt.clone(),
        },
        ..deliveries[0].clone()
    };
    let before = sender.commit_counts();
    sender
        .update_delivery_verified(
            delivered.clone(),
            vec![about(1, Event::Delivered)],
            Some((index, leaf)),
        )
        .await
        .unwrap();
    assert_eq!(
        rows(&sender, before),
        (1, 4 + 1),
        "deliveries, open/ removed, unproven, log"
    );
    assert_eq!(sender.unproven().unwrap().len(), 1);

    let before = sender.commit_counts();
    sender
        .store_proofs(vec![(id(1), delivered.peer.clone(), vec![1, 2, 3])])
        .await
        .unwrap();
    assert_eq!(
        rows(&sender, before),
        (1, 2 + 1),
        "receipt_proofs, unproven removed"
    );
    assert!(sender.unproven().unwrap().is_empty());
    assert_eq!(sender.deliveries_of(id(1)).unwrap(), vec![delivered]);
}

/// Message `n` of RS.MUP, prepared but not signed, and its `submitted`
/// entry without its envelope digest (as `core::submit` leaves them).
fn unsigned(n: u8) -> (kurir_proto::Unsigned, Entry) {
    use kurir_proto::message::Message;
    let p = kurir_proto::Parcel::from_bytes(&super::parcel(n)).unwrap();
    let header = kurir_proto::envelope::header_unverified(&p.envelope).unwrap();
    let message = Message::decode(header.kind, &p.body).unwrap();
    let encoded = kurir_proto::EncodedMessage::decode(header.kind, message.encode().unwrap());
    let (u, _) = kurir_proto::prepare(header, encoded.unwrap(), [n; 32]).unwrap();
    let mut entry = about(n, Event::Submitted);
    entry.envelope_digest = None;
    (u, entry)
}

/// Submissions the writer signs: those of one group share one signature
/// (PROTOCOL.md §6.1), each parcel verifies alone, is stored as returned,
/// and its `submitted` entry names its envelope; one alone in its group,
/// or too close to its size limit for the batch form, gets the single
/// form.
#[tokio::test]
async fn the_writer_signs_the_submissions_of_a_group_once() {
    use kurir_proto::cose::{CONTENT_TYPE_HEADER, CONTENT_TYPE_HEADER_BATCH, content_type};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    let key = Arc::new(SigningKey::from_bytes(&[1; 32]));
    let submit = |n: u8, max: usize| {
        let (store, key) = (store.clone(), key.clone());
        async move {
            let (u, entry) = unsigned(n);
            let (mut record, deliveries) = outbound(n);
            record.parcel = Vec::new();
            let to_sign = crate::store::ToSign {
                unsigned: u,
                key,
                max_parcel: max,
            };
            store
                .submit_unsigned(record, to_sign, deliveries, None, vec![entry])
                .await
        }
    };
    // Alone in its group: the single form.
    let first = submit(1, 1 << 20).await.unwrap();
    let envelope = |bytes: &[u8]| kurir_proto::Parcel::from_bytes(bytes).unwrap().envelope;
    assert_eq!(
        content_type(&envelope(&first)).as_deref(),
        Some(CONTENT_TYPE_HEADER)
    );
    // Four more while the writer holds a flush: one group behind it.
    store.status.hold_flush.store(true, Ordering::SeqCst);
    let applied = store.status.applied.load(Ordering::SeqCst);
    let held = tokio::spawn(submit(2, 1 << 20));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.status.applied.load(Ordering::SeqCst) == applied {
        assert!(Instant::now() < deadline, "the writer never took message 2");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let small = unsigned(5).0.parcel_len() + 100;
    let sent = store.status.sent.load(Ordering::SeqCst);
    let group: Vec<_> = [(3, 1 << 20), (4, 1 << 20), (5, small), (6, 1 << 20)]
        .into_iter()
        .map(|(n, max)| tokio::spawn(submit(n, max)))
        .collect();
    while store.status.sent.load(Ordering::SeqCst) < sent + 4 {
        assert!(Instant::now() < deadline, "the submissions never queued");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    store.status.hold_flush.store(false, Ordering::SeqCst);
    held.await.unwrap().unwrap();
    let mut parcels = Vec::new();
    for g in group {
        parcels.push(g.await.unwrap().unwrap());
    }
    let mut ring = kurir_proto::KeyRing::new();
    ring.insert(kurir_proto::PublicKey {
        authority: peer("RS.MUP"),
        key: key.verifying_key(),
        valid_from: Timestamp(0),
        valid_until: None,
        revoked_at: None,
    });
    let forms: Vec<_> = parcels
        .iter()
        .map(|p| content_type(&envelope(p)).unwrap())
        .collect();
    assert_eq!(
        forms,
        [
            CONTENT_TYPE_HEADER_BATCH,
            CONTENT_TYPE_HEADER_BATCH,
            CONTENT_TYPE_HEADER,
            CONTENT_TYPE_HEADER_BATCH
        ],
        "message 5 is too close to its limit for the batch form"
    );
    let signature = |p: &[u8]| envelope(p)[envelope(p).len() - 64..].to_vec();
    assert_eq!(signature(&parcels[0]), signature(&parcels[1]));
    assert_eq!(signature(&parcels[0]), signature(&parcels[3]));
    let log = super::entries(&store);
    for (n, bytes) in [(1, &first)].into_iter().chain((3..=6).zip(&parcels)) {
        let v =
            kurir_proto::verify(kurir_proto::Parcel::from_bytes(bytes).unwrap(), &ring).unwrap();
        assert_eq!(v.header.id, id(n));
        assert_eq!(
            store.sent_parcel(id(n)).unwrap().as_deref(),
            Some(&bytes[..])
        );
        let submitted: Vec<_> = log
            .iter()
            .filter(|e| e.event == Event::Submitted && e.msg_id == Some(id(n)))
            .collect();
        assert_eq!(submitted.len(), 1);
        assert_eq!(submitted[0].envelope_digest, Some(v.envelope_digest));
    }
}
