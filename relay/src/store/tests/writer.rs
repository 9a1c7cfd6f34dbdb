//! The group commit: operations of one batch, each with its own result.

use std::sync::Arc;

use kurir_proto::audit::Event;
use kurir_proto::checkpoint::SignedCheckpoint;
use kurir_proto::merkle::CompactRange;
use tokio::sync::oneshot;

use super::*;
use crate::core::pacing::Cover;
use crate::store::outbound::SubmitRows;
use crate::store::writer::{Job, Op, OpResult, Writer};
use crate::store::{Accepted, Erased, ReadMark, StatVfs, StoreError};

/// Runs `ops` through one group commit of a writer on `store`'s
/// (empty) database, as if they had all been queued at once. The
/// store's own writer must not be used afterwards: close and reopen.
fn one_group(store: &Store, ops: Vec<(Op, Vec<Entry>)>) -> Vec<Result<OpResult, StoreError>> {
    let mut writer = Writer {
        path: store.path.clone(),
        db_file: store.path.join("db"),
        durability: Durability::ProcessCrash,
        trees: store.sled_trees.clone(),
        range: CompactRange::new(),
        last_leaf: None,
        marker: None,
        space: Arc::new(StatVfs),
        status: store.status.clone(),
        journal: crate::store::journal::open(
            &store.path,
            &store.sled_trees,
            Durability::ProcessCrash,
        )
        .unwrap()
        .0,
        full_flush: false,
        broken: None,
        deferred: None,
    };
    assert_eq!(store.log_state().size, 0);
    let jobs = ops
        .into_iter()
        .map(|(op, audit)| Job {
            op,
            audit,
            done: oneshot::channel().0,
        })
        .collect();
    let (answers, _) = writer.apply_batch(jobs, None);
    // A small last group is left for `run` to apply after its answers.
    writer.apply_deferred().unwrap();
    answers.into_iter().map(|(_, r)| r).collect()
}

/// The at-rest form of a parcel whose body stays in the record (with its
/// key).
fn seal_at_rest(parcel: &[u8]) -> Result<Vec<u8>, String> {
    let s = at_rest::seal(parcel)?;
    Ok(at_rest::inline(&s.envelope, &s.sealed, &s.key))
}

fn sealed(mut record: InboxRecord) -> InboxRecord {
    record.parcel = seal_at_rest(&record.parcel).unwrap();
    record
}

#[tokio::test]
async fn one_group_commit_keeps_each_operations_own_result() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let erased = Erased {
        at: T0,
        policy: "test".into(),
    };
    let note = |n| about(n, Event::Read);
    let (sent, deliveries) = outbound(1);
    let sent = OutboundRecord {
        parcel: seal_at_rest(&sent.parcel).unwrap(),
        ..sent
    };
    let two = sealed(inbox_record(2));
    let three = sealed(inbox_record(3));
    // A receipt that cannot be signed: accepted without naming the message.
    let mut refuse = signer(3);
    refuse.receipt.msg_id = None;
    let results = one_group(
        &store,
        vec![
            (
                Op::Submit(Box::new(SubmitRows::new(&sent, &deliveries, None).unwrap())),
                vec![note(1)],
            ),
            // Nothing to erase: fails alone, and takes no log index.
            (Op::Erase(id(9), false, erased.clone()), vec![note(9)]),
            (
                Op::Inbound(two.clone(), None, Box::new(signer(1))),
                vec![received(2)],
            ),
            // The same message again in the same group: a duplicate of
            // the one above, with its receipt.
            (
                Op::Inbound(two, None, Box::new(signer(2))),
                vec![received(2)],
            ),
            (
                Op::Inbound(three, None, Box::new(refuse)),
                vec![received(3)],
            ),
            (
                Op::MarkRead(
                    id(2),
                    ReadMark {
                        at: T0,
                        by: "Ana".into(),
                    },
                ),
                vec![note(2)],
            ),
            // Sees the submission of the same group.
            (Op::Erase(id(1), false, erased), vec![note(1)]),
            (Op::Audit, vec![entry(Event::Started)]),
        ],
    );
    assert_eq!(results.len(), 8);
    assert!(matches!(results[0], Ok(OpResult::Done)));
    assert!(matches!(results[1], Err(StoreError::Corrupt { .. })));
    let Ok(OpResult::Accepted(Accepted::New(first))) = &results[2] else {
        panic!("the first copy is new");
    };
    assert_eq!(signed(&first.receipt).0, 1);
    assert_eq!(signed(&first.receipt).1, 1, "names entry 1");
    let Ok(OpResult::Accepted(Accepted::Duplicate(again))) = &results[3] else {
        panic!("the second copy is a duplicate");
    };
    assert_eq!(again.receipt, first.receipt, "the original receipt");
    assert!(matches!(results[4], Err(StoreError::Corrupt { .. })));
    let Ok(OpResult::Read(Some(read))) = &results[5] else {
        panic!("marked read");
    };
    assert_eq!(read.read.as_ref().map(|m| m.by.as_str()), Some("Ana"));
    assert!(matches!(results[6], Ok(OpResult::Done)));
    assert!(matches!(results[7], Ok(OpResult::Done)));
    store.close().unwrap();
    drop(store);

    // Reopening replays the log: five entries, numbered without gaps.
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    let log = entries(&store);
    assert_eq!(
        log.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(log[1].msg_id, Some(id(2)));
    assert!(store.inbox(id(2)).unwrap().unwrap().read.is_some());
    assert_eq!(store.inbox(id(3)).unwrap(), None);
    assert!(store.outbound(id(1)).unwrap().unwrap().erased.is_some());
    assert_eq!(store.deliveries_of(id(1)).unwrap().len(), 2);
}

#[tokio::test]
async fn a_checkpoint_in_a_group_covers_what_came_before_it() {
    let dir = super::tempdir();
    let key = SigningKey::from_bytes(&[4; 32]);
    let origin = "kurir/RS.MUP".to_owned();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let results = one_group(
        &store,
        vec![
            (Op::Audit, vec![entry(Event::Started)]),
            (
                Op::Checkpoint(origin.clone(), key.clone(), Cover::Anything),
                vec![],
            ),
            (Op::Audit, vec![entry(Event::Roster)]),
        ],
    );
    let Ok(OpResult::Checkpoint(Some(note))) = &results[1] else {
        panic!("a checkpoint was signed");
    };
    let signed = SignedCheckpoint::parse(note).unwrap();
    assert_eq!(signed.checkpoint().size(), 1);
    assert!(matches!(results[2], Ok(OpResult::Done)));
    store.close().unwrap();
    drop(store);
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    let state = store.log_state();
    assert_eq!(state.size, 2);
    let (_, size, root) = state.last_checkpoint.clone().unwrap();
    assert_eq!((size, root), (1, *signed.checkpoint().root()));
}

/// The receipt keys of [`signer`] 1 and 2, both ME.UP's.
fn receipt_ring() -> kurir_proto::KeyRing {
    let mut ring = kurir_proto::KeyRing::new();
    for tag in [1, 2] {
        ring.insert(kurir_proto::PublicKey {
            authority: peer("ME.UP"),
            key: receipt_key(tag).verifying_key(),
            valid_from: Timestamp(0),
            valid_until: None,
            revoked_at: None,
        });
    }
    ring
}

/// The content type and signature (the last 64 bytes) of a COSE_Sign1.
fn form(receipt: &[u8]) -> (String, Vec<u8>) {
    let ct = kurir_proto::cose::content_type(receipt).expect("a content type");
    (ct, receipt[receipt.len() - 64..].to_vec())
}

fn receipt_of(result: &Result<OpResult, StoreError>) -> Vec<u8> {
    match result {
        Ok(OpResult::Accepted(Accepted::New(r) | Accepted::Duplicate(r))) => r.receipt.clone(),
        _ => panic!("not accepted"),
    }
}

#[tokio::test]
async fn the_receipts_of_a_group_share_one_signature_per_key() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let inbound = |n: u8, tag: u8| {
        (
            Op::Inbound(sealed(inbox_record(n)), None, Box::new(signer(tag))),
            vec![received(n)],
        )
    };
    let mark = ReadMark {
        at: T0,
        by: "Ana".into(),
    };
    let results = one_group(
        &store,
        vec![
            inbound(1, 1),
            inbound(2, 1),
            // Marked read in the group it arrives in: the stored record
            // keeps the mark and gets its receipt.
            (Op::MarkRead(id(2), mark), vec![about(2, Event::Read)]),
            inbound(3, 2),
            // A duplicate in the group gets the original's receipt.
            inbound(1, 2),
            inbound(4, 1),
        ],
    );
    let receipts: Vec<Vec<u8>> = [0, 1, 3, 4, 5]
        .iter()
        .map(|&i| receipt_of(&results[i]))
        .collect();
    assert_eq!(receipts[3], receipts[0], "the duplicate gets the original");
    let batch = "application/kurir-receipt-batch+cbor";
    // Key 1 signed messages 1, 2 and 4 with one signature.
    let (one, two, four) = (form(&receipts[0]), form(&receipts[1]), form(&receipts[4]));
    assert_eq!(one.0, batch);
    assert_eq!(one.1, two.1);
    assert_eq!(one.1, four.1);
    // Key 2 signed message 3 alone: the single form.
    assert_eq!(form(&receipts[2]).0, "application/kurir-receipt+cbor");
    let ring = receipt_ring();
    for (r, index) in receipts.iter().zip([0, 1, 3, 0, 4]) {
        let v = kurir_proto::open_receipt(r, &ring).unwrap();
        assert_eq!(v.receipt.log_index, Some(index));
    }
    store.close().unwrap();
    drop(store);
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    let two = store.inbox(id(2)).unwrap().unwrap();
    assert!(two.read.is_some(), "the mark stays");
    assert_eq!(two.receipt, receipts[1]);
    for (n, r) in [(1, &receipts[0]), (3, &receipts[2]), (4, &receipts[4])] {
        assert_eq!(store.inbox(id(n)).unwrap().unwrap().receipt, *r);
    }
}

#[tokio::test]
async fn a_checkpoint_splits_the_group_and_its_receipts() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let inbound = |n: u8| {
        (
            Op::Inbound(sealed(inbox_record(n)), None, Box::new(signer(1))),
            vec![received(n)],
        )
    };
    let checkpoint = Op::Checkpoint(
        "kurir/ME.UP".into(),
        SigningKey::from_bytes(&[4; 32]),
        Cover::Anything,
    );
    let results = one_group(
        &store,
        vec![
            inbound(1),
            inbound(2),
            (checkpoint, vec![]),
            inbound(3),
            inbound(4),
        ],
    );
    let sig = |i: usize| form(&receipt_of(&results[i])).1;
    assert_eq!(sig(0), sig(1));
    assert_eq!(sig(3), sig(4));
    assert_ne!(sig(0), sig(3), "one signature per transaction");
    let Ok(OpResult::Checkpoint(Some(_))) = &results[2] else {
        panic!("a checkpoint was signed");
    };
    let ring = receipt_ring();
    for i in [0, 1, 3, 4] {
        kurir_proto::open_receipt(&receipt_of(&results[i]), &ring).unwrap();
    }
}

/// A submission alone is answered once its journal record is synced,
/// before sled holds it (see `writer`): a read of what it wrote, made after
/// the answer, waits until the writer has applied it and then finds it;
/// a read of a tree it does not write does not wait.
#[tokio::test]
async fn a_read_after_an_answer_waits_until_sled_holds_what_was_answered() {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    let s = &*store.status;
    s.hold_apply.store(true, Ordering::SeqCst);
    let (record, deliveries) = outbound(1);
    store
        .submit(record, deliveries, None, vec![])
        .await
        .unwrap();
    // Answered, and the writer holds the apply.
    let waits = s.unshown_waits.load(Ordering::SeqCst);
    let read = std::thread::spawn({
        let store = store.clone();
        move || store.outbound(id(1))
    });
    assert_eq!(
        store.receipt_proof(id(1), &peer("ME.UP")).unwrap(),
        None,
        "a tree the submission does not write is read at once"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.unshown_waits.load(Ordering::SeqCst) == waits && !read.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the read neither waited nor ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    if read.is_finished() {
        let found = read.join().unwrap().unwrap().map(|r| r.msg_id);
        panic!("the read did not wait for the apply: it found {found:?}");
    }
    s.hold_apply.store(false, Ordering::SeqCst);
    let found = read.join().unwrap().unwrap();
    assert_eq!(found.map(|r| r.msg_id), Some(id(1)), "sled holds it now");
    assert_eq!(store.deliveries_of(id(1)).unwrap().len(), 2);
    store.close().unwrap();
}
