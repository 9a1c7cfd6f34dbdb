//! All of the relay's storage: every sled call in the relay is in this file.
//!
//! # Durability
//!
//! Writes go through one writer thread that applies a batch of operations,
//! then calls `flush()` **once** for the whole batch (group commit), and only
//! then answers each caller. Nothing is acknowledged before it is on disk.
//! This also keeps sled's `flush_async` out of the picture: it hangs with
//! several concurrent callers (sled issue 1308).
//!
//! On Linux, sled's `flush()` writes with `sync_file_range`, which does not
//! flush the device's write cache. With [`Durability::PowerLoss`] (the
//! default) the writer follows every flush with an `fsync` of the database
//! file, which costs one more device flush per batch (not per message) and
//! makes a commit survive power loss. [`Durability::ProcessCrash`] skips it:
//! commits survive a crash of the relay, but not of the machine.
//!
//! # Trees (keys are big-endian, so sled's byte order is time order)
//!
//! | tree | key | value |
//! |------|-----|-------|
//! | `outbound` | message id (16) | [`OutboundRecord`] |
//! | `deliveries` | message id (16) ‖ recipient id | [`Delivery`] |
//! | `inbox` | message id (16) | [`InboxRecord`] |
//! | `inbox_order` | received_at (8) ‖ message id (16) | empty |
//! | `refusals` | refused_at (8) ‖ envelope digest (32) ‖ sequence (8) | [`RefusalRecord`] |
//! | `cases` | case id (text) | [`Case`]: state, deadlines, thread, events |
//! | `meta` | `roster` | the last accepted roster file, byte for byte |
//!
//! Values are deterministic CBOR (`kurir_proto::cbor`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use kurir_proto::cbor;
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, CaseId, MessageId, Timestamp};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::oneshot;

use crate::core::deadline::Case;
use crate::core::delivery::Delivery;

/// How far a commit must get before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// sled `flush()`, then `fsync` of the database file: survives power loss.
    #[default]
    PowerLoss,
    /// sled `flush()` only: survives a crash of the relay process.
    ProcessCrash,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error.
    #[error("storage error in {path}: {source}")]
    Sled {
        /// The data directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// The fsync after a flush failed.
    #[error("could not sync {path} to disk: {source}")]
    Sync {
        /// The database file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A stored record does not decode: the data directory is damaged.
    #[error("damaged record in tree {tree} of {path}: {reason}")]
    Corrupt {
        /// The data directory.
        path: PathBuf,
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The writer thread is gone (the store was closed).
    #[error("the store is closed")]
    Closed,
}

/// A message this relay sent (or is sending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecord {
    /// The message.
    pub msg_id: MessageId,
    /// From the header.
    pub kind: MessageKind,
    /// Recipients.
    pub to: Vec<AuthorityId>,
    /// The case, if any.
    pub case_id: Option<CaseId>,
    /// From the header.
    pub created_at: Timestamp,
    /// From the header.
    pub expires_at: Timestamp,
    /// The officer who submitted it (certificate subject).
    pub submitted_by: String,
    /// The parcel exactly as sent.
    #[serde(with = "cbor::bytes")]
    pub parcel: Vec<u8>,
}

/// Who read a received message, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMark {
    /// When it was first marked read.
    pub at: Timestamp,
    /// The officer.
    pub by: String,
}

/// A message this relay received and accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRecord {
    /// The message.
    pub msg_id: MessageId,
    /// The sending authority.
    pub from: AuthorityId,
    /// From the header.
    pub kind: MessageKind,
    /// The case, if any.
    pub case_id: Option<CaseId>,
    /// The message it answers, if any.
    pub in_reply_to: Option<MessageId>,
    /// When this relay stored it.
    pub received_at: Timestamp,
    /// The parcel exactly as received.
    #[serde(with = "cbor::bytes")]
    pub parcel: Vec<u8>,
    /// The signed receipt this relay sent back (sent again on a duplicate).
    #[serde(with = "cbor::bytes")]
    pub receipt: Vec<u8>,
    /// Set once an officer read it.
    pub read: Option<ReadMark>,
}

/// A parcel this relay refused, with the signed rejection it sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// The TLS peer that sent it.
    pub from: AuthorityId,
    /// The message id, if the envelope could be verified.
    pub msg_id: Option<MessageId>,
    /// Envelope digest (see the protocol).
    #[serde(with = "cbor::bytes")]
    pub envelope_digest: Vec<u8>,
    /// When it was refused.
    pub at: Timestamp,
    /// The reason code.
    pub code: String,
    /// The explanation sent back.
    pub detail: String,
    /// The signed rejection.
    #[serde(with = "cbor::bytes")]
    pub receipt: Vec<u8>,
}

/// What [`Store::accept_inbound`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored for the first time.
    New,
    /// Already there: the original record, whose receipt goes back again.
    Duplicate(Box<InboxRecord>),
}

enum Op {
    Submit(OutboundRecord, Vec<Delivery>, Option<Case>),
    Delivery(Delivery),
    Inbound(InboxRecord, Option<Case>),
    Case(Case),
    Refusal(RefusalRecord),
    MarkRead(MessageId, ReadMark),
    Roster(Vec<u8>),
}

enum OpResult {
    Done,
    Accepted(Accepted),
    Read(Option<InboxRecord>),
}

struct Job {
    op: Op,
    done: oneshot::Sender<Result<OpResult, StoreError>>,
}

struct Trees {
    db: sled::Db,
    outbound: sled::Tree,
    deliveries: sled::Tree,
    inbox: sled::Tree,
    inbox_order: sled::Tree,
    refusals: sled::Tree,
    cases: sled::Tree,
    meta: sled::Tree,
}

/// The relay's database. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    trees: Arc<Trees>,
    writer: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    thread: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// How many operations one group commit takes at most.
const MAX_BATCH: usize = 512;

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        let sled_err = |source| StoreError::Sled {
            path: dir.to_owned(),
            source,
        };
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(sled_err)?;
        let trees = Arc::new(Trees {
            outbound: db.open_tree("outbound").map_err(sled_err)?,
            deliveries: db.open_tree("deliveries").map_err(sled_err)?,
            inbox: db.open_tree("inbox").map_err(sled_err)?,
            inbox_order: db.open_tree("inbox_order").map_err(sled_err)?,
            refusals: db.open_tree("refusals").map_err(sled_err)?,
            cases: db.open_tree("cases").map_err(sled_err)?,
            meta: db.open_tree("meta").map_err(sled_err)?,
            db,
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            path: dir.to_owned(),
            db_file: dir.join("db"),
            durability,
            trees: trees.clone(),
        };
        let thread = thread::Builder::new()
            .name("kurir-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Sync {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Store {
            path: dir.to_owned(),
            trees,
            writer: Arc::new(Mutex::new(Some(tx))),
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    async fn submit_op(&self, op: Op) -> Result<OpResult, StoreError> {
        let (done, wait) = oneshot::channel();
        {
            let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
            let tx = guard.as_ref().ok_or(StoreError::Closed)?;
            tx.send(Job { op, done }).map_err(|_| StoreError::Closed)?;
        }
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Records a submitted message, its deliveries and the updated case it
    /// belongs to, in one durable commit.
    pub async fn submit(
        &self,
        record: OutboundRecord,
        deliveries: Vec<Delivery>,
        case: Option<Case>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Submit(record, deliveries, case))
            .await
            .map(drop)
    }

    /// Records a case after its clock moved.
    pub async fn put_case(&self, case: Case) -> Result<(), StoreError> {
        self.submit_op(Op::Case(case)).await.map(drop)
    }

    /// A readmission case.
    pub fn case(&self, case_id: &CaseId) -> Result<Option<Case>, StoreError> {
        self.get(&self.trees.cases, "cases", case_id.as_str().as_bytes())
    }

    /// Every readmission case.
    pub fn cases(&self) -> Result<Vec<Case>, StoreError> {
        self.scan(&self.trees.cases, "cases", &[])
    }

    /// Records a delivery's new state, durably.
    pub async fn update_delivery(&self, d: Delivery) -> Result<(), StoreError> {
        self.submit_op(Op::Delivery(d)).await.map(drop)
    }

    /// Stores a received message unless its id is already there; durable
    /// when it returns. Exactly one of several concurrent calls with the same
    /// id gets [`Accepted::New`].
    ///
    /// `case`, the case updated with this message, is stored in the same
    /// commit, and only when the message is new.
    pub async fn accept_inbound(
        &self,
        record: InboxRecord,
        case: Option<Case>,
    ) -> Result<Accepted, StoreError> {
        match self.submit_op(Op::Inbound(record, case)).await? {
            OpResult::Accepted(a) => Ok(a),
            _ => Err(StoreError::Closed),
        }
    }

    /// Records a refused parcel and the rejection sent back, durably.
    pub async fn record_refusal(&self, r: RefusalRecord) -> Result<(), StoreError> {
        self.submit_op(Op::Refusal(r)).await.map(drop)
    }

    /// Marks a received message read (the first mark stays); returns the
    /// record, or `None` if there is no such message.
    pub async fn mark_read(
        &self,
        msg_id: MessageId,
        mark: ReadMark,
    ) -> Result<Option<InboxRecord>, StoreError> {
        match self.submit_op(Op::MarkRead(msg_id, mark)).await? {
            OpResult::Read(r) => Ok(r),
            _ => Err(StoreError::Closed),
        }
    }

    /// Records the roster now in force (the relay refuses older ones later).
    pub async fn set_roster(&self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.submit_op(Op::Roster(bytes)).await.map(drop)
    }

    /// The last roster recorded with [`Store::set_roster`].
    pub fn roster(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .trees
            .meta
            .get(b"roster")
            .map_err(|e| self.sled(e))?
            .map(|v| v.to_vec()))
    }

    /// A sent message.
    pub fn outbound(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        self.get(&self.trees.outbound, "outbound", msg_id.as_bytes())
    }

    /// The deliveries of a sent message, one per recipient.
    pub fn deliveries_of(&self, msg_id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        self.scan(&self.trees.deliveries, "deliveries", msg_id.as_bytes())
    }

    /// Every delivery that is not final, for the outbox at start.
    pub fn open_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .scan::<Delivery>(&self.trees.deliveries, "deliveries", &[])?
            .into_iter()
            .filter(|d| !d.state.is_final())
            .collect())
    }

    /// Every sent message, oldest first.
    pub fn outbound_all(&self) -> Result<Vec<OutboundRecord>, StoreError> {
        self.scan(&self.trees.outbound, "outbound", &[])
    }

    /// A received message.
    pub fn inbox(&self, msg_id: MessageId) -> Result<Option<InboxRecord>, StoreError> {
        self.get(&self.trees.inbox, "inbox", msg_id.as_bytes())
    }

    /// Every received message, in the order received.
    pub fn inbox_all(&self) -> Result<Vec<InboxRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.inbox_order.iter() {
            let (key, _) = item.map_err(|e| self.sled(e))?;
            let Some(id) = key.get(8..24) else {
                return Err(self.corrupt("inbox_order", "short key".into()));
            };
            if let Some(r) = self.get(&self.trees.inbox, "inbox", id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Every refused parcel, oldest first.
    pub fn refusals(&self) -> Result<Vec<RefusalRecord>, StoreError> {
        self.scan(&self.trees.refusals, "refusals", &[])
    }

    /// Stops the writer after it has committed everything queued, and flushes.
    pub fn close(&self) -> Result<(), StoreError> {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Ok(mut t) = self.thread.lock()
            && let Some(handle) = t.take()
        {
            let _ = handle.join();
        }
        self.trees.db.flush().map_err(|e| self.sled(e))?;
        Ok(())
    }

    fn get<T: serde::de::DeserializeOwned + Serialize>(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| self.sled(e))? {
            Some(v) => cbor::from_slice(&v)
                .map(Some)
                .map_err(|e| self.corrupt(name, e.to_string())),
            None => Ok(None),
        }
    }

    fn scan<T: serde::de::DeserializeOwned + Serialize>(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        tree.scan_prefix(prefix)
            .map(|item| {
                let (_, v) = item.map_err(|e| self.sled(e))?;
                cbor::from_slice(&v).map_err(|e| self.corrupt(name, e.to_string()))
            })
            .collect()
    }

    fn sled(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, tree: &'static str, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            tree,
            reason,
        }
    }
}

fn delivery_key(d: &Delivery) -> Vec<u8> {
    let mut k = d.msg_id.as_bytes().to_vec();
    k.extend_from_slice(d.peer.as_str().as_bytes());
    k
}

/// A key and value to insert.
type Row = (Vec<u8>, Vec<u8>);

fn case_row(case: Option<&Case>) -> Result<Option<Row>, String> {
    case.map(|c| Ok((c.case_id.as_str().as_bytes().to_vec(), encode(c)?)))
        .transpose()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    cbor::to_vec(v).map_err(|e| e.to_string())
}

/// The one thread that writes.
struct Writer {
    path: PathBuf,
    db_file: PathBuf,
    durability: Durability,
    trees: Arc<Trees>,
}

impl Writer {
    fn run(self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let results: Vec<_> = batch.iter().map(|job| self.apply(&job.op)).collect();
            let synced = self.sync();
            for (job, result) in batch.into_iter().zip(results) {
                let answer = match (&synced, result) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(e.clone_for_caller(&self.path)),
                };
                // A caller that gave up waiting is no reason to stop.
                let _ = job.done.send(answer);
            }
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.trees.db.flush().map_err(|source| StoreError::Sled {
            path: self.path.clone(),
            source,
        })?;
        if self.durability == Durability::PowerLoss {
            std::fs::File::open(&self.db_file)
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Sync {
                    path: self.db_file.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    fn apply(&self, op: &Op) -> Result<OpResult, StoreError> {
        let t = &*self.trees;
        let corrupt = |tree, reason| StoreError::Corrupt {
            path: self.path.clone(),
            tree,
            reason,
        };
        let abort = |reason: String| ConflictableTransactionError::Abort(reason);
        let tx_err = |e: TransactionError<String>| match e {
            TransactionError::Abort(reason) => corrupt("transaction", reason),
            TransactionError::Storage(source) => StoreError::Sled {
                path: self.path.clone(),
                source,
            },
        };
        match op {
            Op::Submit(record, deliveries, case) => {
                let value = encode(record).map_err(|r| corrupt("outbound", r))?;
                let case_row = case_row(case.as_ref()).map_err(|r| corrupt("cases", r))?;
                let rows = deliveries
                    .iter()
                    .map(|d| Ok((delivery_key(d), encode(d)?)))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|r| corrupt("deliveries", r))?;
                (&t.outbound, &t.deliveries, &t.cases)
                    .transaction(|(outbound, dels, cases)| {
                        outbound.insert(&record.msg_id.as_bytes()[..], value.clone())?;
                        for (k, v) in &rows {
                            dels.insert(k.clone(), v.clone())?;
                        }
                        if let Some((k, v)) = &case_row {
                            cases.insert(k.clone(), v.clone())?;
                        }
                        Ok::<_, ConflictableTransactionError<String>>(())
                    })
                    .map_err(tx_err)?;
                Ok(OpResult::Done)
            }
            Op::Delivery(d) => {
                let value = encode(d).map_err(|r| corrupt("deliveries", r))?;
                t.deliveries
                    .insert(delivery_key(d), value)
                    .map_err(|source| StoreError::Sled {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(OpResult::Done)
            }
            Op::Inbound(record, case) => {
                let value = encode(record).map_err(|r| corrupt("inbox", r))?;
                let case_row = case_row(case.as_ref()).map_err(|r| corrupt("cases", r))?;
                let mut order_key = record.received_at.0.to_be_bytes().to_vec();
                order_key.extend_from_slice(record.msg_id.as_bytes());
                let existing = (&t.inbox, &t.inbox_order, &t.cases)
                    .transaction(|(inbox, order, cases)| {
                        let key = &record.msg_id.as_bytes()[..];
                        if let Some(old) = inbox.get(key)? {
                            return Ok(Some(old));
                        }
                        inbox.insert(key, value.clone())?;
                        order.insert(order_key.clone(), &[][..])?;
                        if let Some((k, v)) = &case_row {
                            cases.insert(k.clone(), v.clone())?;
                        }
                        Ok::<_, ConflictableTransactionError<String>>(None)
                    })
                    .map_err(tx_err)?;
                match existing {
                    None => Ok(OpResult::Accepted(Accepted::New)),
                    Some(old) => {
                        let old =
                            cbor::from_slice(&old).map_err(|e| corrupt("inbox", e.to_string()))?;
                        Ok(OpResult::Accepted(Accepted::Duplicate(Box::new(old))))
                    }
                }
            }
            Op::Case(case) => {
                if let Some((k, v)) = case_row(Some(case)).map_err(|r| corrupt("cases", r))? {
                    t.cases.insert(k, v).map_err(|source| StoreError::Sled {
                        path: self.path.clone(),
                        source,
                    })?;
                }
                Ok(OpResult::Done)
            }
            Op::Refusal(r) => {
                let value = encode(r).map_err(|reason| corrupt("refusals", reason))?;
                // Refusals in the same millisecond may share a digest (every
                // oversized parcel has the digest of nothing): a sequence
                // number keeps each one.
                let seq = t.db.generate_id().map_err(|source| StoreError::Sled {
                    path: self.path.clone(),
                    source,
                })?;
                let mut key = r.at.0.to_be_bytes().to_vec();
                key.extend_from_slice(&r.envelope_digest);
                key.extend_from_slice(&seq.to_be_bytes());
                t.refusals
                    .insert(key, value)
                    .map_err(|source| StoreError::Sled {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(OpResult::Done)
            }
            Op::Roster(bytes) => {
                t.meta
                    .insert(b"roster", bytes.as_slice())
                    .map_err(|source| StoreError::Sled {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(OpResult::Done)
            }
            Op::MarkRead(msg_id, mark) => {
                let updated = t
                    .inbox
                    .transaction(|inbox| {
                        let key = &msg_id.as_bytes()[..];
                        let Some(old) = inbox.get(key)? else {
                            return Ok(None);
                        };
                        let mut record: InboxRecord =
                            cbor::from_slice(&old).map_err(|e| abort(e.to_string()))?;
                        if record.read.is_none() {
                            record.read = Some(mark.clone());
                            inbox.insert(key, encode(&record).map_err(abort)?)?;
                        }
                        Ok(Some(record))
                    })
                    .map_err(tx_err)?;
                Ok(OpResult::Read(updated))
            }
        }
    }
}

impl StoreError {
    /// The same error again, for each caller of a failed batch.
    fn clone_for_caller(&self, path: &Path) -> StoreError {
        StoreError::Corrupt {
            path: path.to_owned(),
            tree: "commit",
            reason: format!("the group commit failed: {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::delivery::DeliveryState;

    const T0: Timestamp = Timestamp(1_795_874_050_000);

    fn id(n: u8) -> MessageId {
        MessageId::new_v7(T0.0 + u64::from(n), [n; 10])
    }

    fn peer(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn inbox_record(n: u8) -> InboxRecord {
        InboxRecord {
            msg_id: id(n),
            from: peer("RS.MUP"),
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            received_at: T0.plus_millis(u64::from(n)),
            parcel: vec![n; 10],
            receipt: vec![n, n],
            read: None,
        }
    }

    fn outbound(n: u8) -> (OutboundRecord, Vec<Delivery>) {
        let to = vec![peer("ME.UP"), peer("MK.MVR")];
        let deliveries = to
            .iter()
            .map(|p| Delivery {
                msg_id: id(n),
                peer: p.clone(),
                expires_at: T0.plus_millis(1000),
                attempts: 0,
                state: DeliveryState::Queued,
            })
            .collect();
        let record = OutboundRecord {
            msg_id: id(n),
            kind: MessageKind::OperationalNotice,
            to,
            case_id: None,
            created_at: T0,
            expires_at: T0.plus_millis(1000),
            submitted_by: "Ana".into(),
            parcel: vec![1, 2, 3],
        };
        (record, deliveries)
    }

    #[tokio::test]
    async fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
            let (record, deliveries) = outbound(1);
            store
                .submit(record, deliveries.clone(), None)
                .await
                .unwrap();
            let mut delivered = deliveries[0].clone();
            delivered.attempts = 1;
            delivered.state = DeliveryState::Delivered {
                at: T0,
                receipt: vec![7],
            };
            store.update_delivery(delivered).await.unwrap();
            assert_eq!(
                store.accept_inbound(inbox_record(2), None).await.unwrap(),
                Accepted::New
            );
            store.close().unwrap();
        }
        let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
        assert_eq!(store.outbound(id(1)).unwrap().unwrap().submitted_by, "Ana");
        let all = store.deliveries_of(id(1)).unwrap();
        assert_eq!(all.len(), 2);
        let open = store.open_deliveries().unwrap();
        assert_eq!(open.len(), 1, "the delivered one is final");
        assert_eq!(open[0].peer, peer("MK.MVR"));
        assert_eq!(store.inbox_all().unwrap(), vec![inbox_record(2)]);
    }

    #[tokio::test]
    async fn concurrent_duplicates_store_one_and_return_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        let mut tasks = vec![];
        for attempt in 0..8u8 {
            let store = store.clone();
            let mut record = inbox_record(1);
            // Each "delivery" would carry its own receipt; only the first counts.
            record.receipt = vec![attempt];
            tasks.push(tokio::spawn(async move {
                store.accept_inbound(record, None).await.unwrap()
            }));
        }
        let mut new = 0;
        let mut originals = vec![];
        for t in tasks {
            match t.await.unwrap() {
                Accepted::New => new += 1,
                Accepted::Duplicate(old) => originals.push(old.receipt),
            }
        }
        assert_eq!(new, 1);
        let stored = store.inbox(id(1)).unwrap().unwrap();
        assert!(originals.iter().all(|r| *r == stored.receipt));
        assert_eq!(store.inbox_all().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn first_read_mark_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        store.accept_inbound(inbox_record(1), None).await.unwrap();
        let first = ReadMark {
            at: T0,
            by: "Marko".into(),
        };
        let r = store
            .mark_read(id(1), first.clone())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.read, Some(first.clone()));
        let later = ReadMark {
            at: T0.plus_millis(5),
            by: "Jelena".into(),
        };
        let r = store.mark_read(id(1), later).await.unwrap().unwrap();
        assert_eq!(r.read, Some(first));
        assert_eq!(
            store
                .mark_read(id(9), r.read.clone().unwrap())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_closed_store_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        store.close().unwrap();
        assert!(matches!(
            store.accept_inbound(inbox_record(1), None).await,
            Err(StoreError::Closed)
        ));
    }
}
