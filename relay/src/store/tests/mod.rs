//! The store's unit tests, by concern, and the helpers they share: ids,
//! sealed parcels, records, audit entries (built only by [`record`]),
//! reopening.

use std::path::Path;

use kurir_proto::audit::{Entry, Event, Record};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, Digest, MessageId, Timestamp};

use super::at_rest;
use super::{Durability, InboxRecord, OutboundRecord, ReceiptDraft, Store};
use crate::core::delivery::{Delivery, DeliveryState};

mod backup;
mod bodies;
mod frontier;
mod journal;
mod log;
mod messages;
mod space;
mod versions;
mod writer;

const T0: Timestamp = Timestamp(1_795_874_050_000);

/// A temporary directory. First, as the relay does before it opens a
/// store, files created from now on are made private: the store refuses a
/// data directory that others may read, and a test that writes into one
/// before any store is open in the process would otherwise race the mask.
fn tempdir() -> tempfile::TempDir {
    #[cfg(unix)]
    super::private::restrict_umask();
    tempfile::tempdir().unwrap()
}

fn id(n: u8) -> MessageId {
    MessageId::new_v7(T0.0 + u64::from(n), [n; 10])
}

fn peer(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

/// What an entry of `event` about message `n` records. The store numbers,
/// links and keeps entries whatever they record, so what these record is
/// made up; decoding is strict, so each carries exactly its event's fields.
fn record(event: Event, n: u8) -> Record {
    let (msg_id, to, digest) = (id(n), peer("ME.UP"), Digest([n; 32]));
    match event {
        Event::Started => Record::Started {
            version: "test".into(),
        },
        Event::Roster => Record::Roster {
            version: 1,
            fingerprint: digest,
        },
        Event::Submitted => Record::Submitted {
            msg_id,
            envelope_digest: digest,
            kind: MessageKind::OperationalNotice,
            to: vec![to],
            case_id: None,
            officer: "0a1b".into(),
        },
        Event::Delivered => Record::Delivered {
            msg_id,
            peer: to,
            receipt_digest: digest,
        },
        Event::Received => Record::Received {
            msg_id,
            envelope_digest: digest,
            peer: peer("RS.MUP"),
            case_id: None,
            kind: MessageKind::OperationalNotice,
        },
        Event::Read => Record::Read {
            msg_id,
            officer: "0a1b".into(),
        },
        Event::BodyErased => Record::BodyErased {
            msg_id,
            policy: "test".into(),
        },
        other => unreachable!("no test entry of {other}"),
    }
}

/// An audit entry of `event` at `at`.
fn entry_at(at: Timestamp, event: Event) -> Entry {
    Entry::new(at, record(event, 1))
}

/// An audit entry of `event` at `T0`.
fn entry(event: Event) -> Entry {
    entry_at(T0, event)
}

/// An audit entry of `event` about message `n`.
fn about(n: u8, event: Event) -> Entry {
    Entry::new(T0, record(event, n))
}

/// The `received` entry of message `n`.
fn received(n: u8) -> Entry {
    about(n, Event::Received)
}

/// A real sealed parcel for message `n` (the store encrypts its body).
fn parcel(n: u8) -> Vec<u8> {
    use kurir_proto::message::{Handling, Message, examples};
    let header = kurir_proto::Header {
        id: id(n),
        kind: MessageKind::OperationalNotice,
        from: peer("RS.MUP"),
        to: vec![peer("ME.UP")],
        created_at: T0,
        expires_at: T0.plus_millis(1000),
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        body_digest: Digest([0; 32]),
    };
    let key = SigningKey::from_bytes(&[n; 32]);
    kurir_proto::seal(
        header,
        &Message::OperationalNotice(examples::notice()),
        [n; 32],
        &key,
    )
    .unwrap()
    .to_bytes()
}

/// Message `n`'s parcel with a body of `size` bytes.
fn large_parcel(n: u8, size: usize) -> Vec<u8> {
    let mut p = kurir_proto::Parcel::from_bytes(&parcel(n)).unwrap();
    p.body = (0..size).map(|i| (i % 251) as u8).collect();
    p.to_bytes()
}

fn inbox_record(n: u8) -> InboxRecord {
    InboxRecord {
        msg_id: id(n),
        from: peer("RS.MUP"),
        kind: MessageKind::OperationalNotice,
        case_id: None,
        in_reply_to: None,
        received_at: T0.plus_millis(u64::from(n)),
        parcel: parcel(n),
        erased: None,
        receipt: vec![],
        read: None,
    }
}

/// A receipt draft tagged `tag` (in its envelope digest), signed with a
/// key of its own; [`signed`] reads it back.
fn signer(tag: u8) -> ReceiptDraft {
    ReceiptDraft {
        receipt: kurir_proto::Receipt {
            msg_id: Some(id(tag)),
            envelope_digest: Digest([tag; 32]),
            sender: peer("RS.MUP"),
            receiver: peer("ME.UP"),
            received_at: T0,
            status: kurir_proto::ReceiptStatus::Accepted,
            log_index: None,
            leaf_hash: None,
        },
        key: std::sync::Arc::new(receipt_key(tag)),
    }
}

/// The key [`signer`] signs with.
fn receipt_key(tag: u8) -> SigningKey {
    SigningKey::from_bytes(&[tag; 32])
}

/// The tag, log index and leaf hash a receipt of [`signer`] names.
fn signed(receipt: &[u8]) -> (u8, u64, Digest) {
    let r = kurir_proto::receipt::receipt_unverified(receipt).expect("a signed receipt");
    (
        r.envelope_digest.0[0],
        r.log_index.expect("an index"),
        r.leaf_hash.expect("a leaf hash"),
    )
}

fn outbound(n: u8) -> (OutboundRecord, Vec<Delivery>) {
    let to = vec![peer("ME.UP"), peer("MK.MVR")];
    let deliveries = to
        .iter()
        .map(|p| Delivery::queued(id(n), p.clone(), T0.plus_millis(1000)))
        .collect();
    let record = OutboundRecord {
        msg_id: id(n),
        kind: MessageKind::OperationalNotice,
        to,
        case_id: None,
        created_at: T0,
        expires_at: T0.plus_millis(1000),
        submitted_by: "Ana".into(),
        parcel: parcel(n),
        erased: None,
    };
    (record, deliveries)
}

/// A store opened in `dir` that has received message 1 (with its
/// `received` entry), and that message as stored.
async fn with_one_received(dir: &Path) -> (Store, InboxRecord) {
    let store = Store::open(dir, Durability::ProcessCrash).unwrap();
    store
        .accept_inbound(inbox_record(1), None, received(1), signer(0))
        .await
        .unwrap();
    let stored = store.inbox(id(1)).unwrap().unwrap();
    (store, stored)
}

/// sled releases its file lock from a background thread a moment after
/// the last handle is dropped; a test that reopens at once waits for it.
fn retry<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> T {
    for _ in 0..200 {
        match open() {
            Ok(v) => return v,
            Err(e) if e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(25))
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the database lock was not released");
}

fn reopen(dir: &Path) -> Store {
    Store::open(dir, Durability::ProcessCrash).unwrap()
}

fn entries(store: &Store) -> Vec<Entry> {
    store
        .log_entries()
        .unwrap()
        .iter()
        .map(|b| Entry::decode(b).unwrap())
        .collect()
}

/// The leaf hash of every audit entry, in order.
fn leaves(store: &Store) -> Vec<Digest> {
    store
        .log_entries()
        .unwrap()
        .iter()
        .map(|e| kurir_proto::merkle::leaf_hash(e))
        .collect()
}

/// Signs a checkpoint of everything committed (there must be something
/// new), as RS.MUP with the test log key.
async fn sign_checkpoint(store: &Store) {
    store
        .checkpoint(
            "kurir/RS.MUP".into(),
            SigningKey::from_bytes(&[4; 32]),
            crate::core::pacing::Cover::Anything,
        )
        .await
        .unwrap()
        .unwrap();
}

/// The body files in the data dir `dir`.
fn body_files(dir: &Path) -> Vec<String> {
    let (files, other) = at_rest::list_files(&dir.join(at_rest::BODIES)).unwrap();
    assert!(other.is_empty(), "{other:?}");
    files
}

/// The row of the closed database `db`'s log that holds entry `index`:
/// its first entry's index and its entries.
fn log_row(db: &sled::Db, index: u64) -> (u64, Vec<Vec<u8>>) {
    let log = db.open_tree("log").unwrap();
    let (key, value) = log
        .range(..=super::keys::log_key(index))
        .next_back()
        .unwrap()
        .unwrap();
    let first = u64::from_be_bytes(key.as_ref().try_into().unwrap());
    let entries = super::log::row_entries(&value)
        .unwrap()
        .into_iter()
        .map(|r| value[r].to_vec())
        .collect::<Vec<_>>();
    assert!(index < first + entries.len() as u64, "no entry {index}");
    (first, entries)
}

/// Entry `index` of the closed database `db`'s log, from whichever row
/// holds it (one entry or a run).
fn stored_entry(db: &sled::Db, index: u64) -> Vec<u8> {
    let (first, mut entries) = log_row(db, index);
    entries.swap_remove((index - first) as usize)
}

/// Sets entry `index` of the closed database `db`'s log to `bytes`, or
/// removes it (`None`: the entries after it in its row keep their indexes,
/// in a row of their own), leaving the other entries as they were.
fn put_stored_entry(db: &sled::Db, index: u64, bytes: Option<Vec<u8>>) {
    let (first, mut entries) = log_row(db, index);
    let log = db.open_tree("log").unwrap();
    log.remove(super::keys::log_key(first)).unwrap();
    let at = (index - first) as usize;
    let after = entries.split_off(at + 1);
    entries.pop();
    let mut parts = vec![(first, entries), (index + 1, after)];
    if let Some(b) = bytes {
        // Back together in one row, as the writer would have written it.
        let (before, after) = (std::mem::take(&mut parts[0].1), parts.pop().unwrap().1);
        parts[0].1 = before.into_iter().chain([b]).chain(after).collect();
    }
    for (first, entries) in parts {
        let rows = super::log::LogRows {
            entries,
            leaves: Vec::new(),
        };
        for (k, v) in rows.rows(first) {
            log.insert(k, v).unwrap();
        }
    }
}
