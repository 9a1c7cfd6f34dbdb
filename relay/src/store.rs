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
//! # A full or failing disk
//!
//! sled's `flush()` was seen not to return once a write of its had failed
//! for lack of space (finding F2 of `docs/SECURITY.md`), so the store keeps
//! new work from eating the last of the disk, and never waits on the disk
//! without a bound. (Another process can still fill the filesystem; then
//! the bound is what keeps the relay answering.)
//!
//! - **Reserve.** Before it applies a batch, the writer reads the free
//!   space of the data dir's filesystem ([`FreeSpace`], `statvfs`). Below
//!   [`StoreOptions::min_free_bytes`] it refuses *new work*, submissions,
//!   parcels received for the first time and refusal records, with
//!   [`StoreError::LowSpace`], and still applies everything that completes
//!   work already accepted (delivery states and their receipts, audit
//!   entries, case clocks, read marks, erasures, checkpoints): those use
//!   the reserve. A parcel received again still gets its original receipt.
//! - **Bounded waits.** A caller waits at most
//!   [`StoreOptions::flush_timeout`] for its commit, then gets
//!   [`StoreError::NotResponding`] (the commit may still land later; it
//!   was not acknowledged). [`Store::health`] reports the store unhealthy
//!   while a flush has run longer than that, and [`Store::close`] gives up
//!   on the writer after the same bound instead of blocking for good.
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
//! | `meta` | `rosters/` ‖ SHA-256 hex | every accepted roster file, byte for byte |
//!
//! | `body_keys` | message id (16) | the 32-byte key of that message's body at rest |
//! | `log_nodes` | level (1) ‖ index (8) | root of the perfect subtree of 2^level audit entries from index · 2^level, for levels ≥ 4 |
//! | `unproven` | message id (16) ‖ recipient id | log index (8) ‖ leaf hash (32) the recipient's receipt names, until its inclusion proof is stored |
//! | `receipt_proofs` | message id (16) ‖ recipient id | [`kurir_proto::audit::InclusionProof`] of that entry in a checkpoint the recipient signed |
//!
//! `log_nodes` is derived from `log` and written in the same transaction;
//! it lets the relay prove any entry's inclusion in O(log² n) reads
//! (subtrees below 16 entries are hashed from the entries themselves, which
//! keeps the writes to about one node per eight entries). A database from
//! before it existed gets it rebuilt at open.
//!
//! The newest checkpoint is also written to `last-checkpoint.note` beside
//! the database, after the batch that signed it is on disk; at open, a log
//! shorter than it or with another root at its size is refused, so a
//! database damaged, replaced or rolled back as a whole is noticed.
//!
//! Values are deterministic CBOR (`kurir_proto::cbor`).
//!
//! # Bodies at rest
//!
//! A stored parcel keeps its envelope in clear (signatures and audit proofs
//! never need the body) and its salt and body encrypted:
//! `[envelope: bstr, sealed: bstr / null]`, where `sealed` = 12-byte nonce ‖
//! ChaCha20-Poly1305 (RFC 8439, via ring) of the CBOR array `[salt, body]`,
//! with the envelope digest as associated data and a random key per message,
//! kept in `body_keys`. Erasing a body deletes its key and ciphertext in one
//! commit, with a `body_erased` audit entry; the envelope, receipts and the
//! log stay verifiable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kurir_proto::cbor;
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, CaseId, MessageId, Timestamp};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::oneshot;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::checkpoint::{Checkpoint, SignedCheckpoint};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::merkle::CompactRange;

use crate::core::deadline::Case;
use crate::core::delivery::{Delivery, DeliveryState};
pub use crate::core::proofs::Unproven;
use crate::core::witness::Witnessed;

mod at_rest;

pub(crate) use at_rest::envelope_of;
use at_rest::{BodyKey, Stored, record_parcel, without_body};

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
    /// Free space is below the reserve: new work is refused.
    #[error(
        "the data dir {path} has {free_mib} MiB free, below the reserve of {reserve_mib} MiB \
         ([storage] min_free_mb): new work is refused, work already accepted is still \
         completed; free space on that filesystem (or move the data dir to a larger one) \
         and it is accepted again, no restart needed"
    )]
    LowSpace {
        /// The data directory.
        path: PathBuf,
        /// Free space for unprivileged writers, in MiB.
        free_mib: u64,
        /// The configured reserve, in MiB.
        reserve_mib: u64,
    },
    /// A body file could not be written or read.
    #[error("body file {path}: {source}")]
    BodyFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A commit did not complete within the bound.
    #[error(
        "storage is not responding: no commit to the data dir {path} completed within {secs} s \
         (a full disk, a failing device or a hung network filesystem?); this was not \
         acknowledged; check the disk and the kernel log, then restart the relay"
    )]
    NotResponding {
        /// The data directory.
        path: PathBuf,
        /// The bound, in seconds.
        secs: u64,
    },
}

impl StoreError {
    /// Whether the store refused new work for lack of free space.
    pub fn is_low_space(&self) -> bool {
        matches!(self, StoreError::LowSpace { .. })
    }
}

/// Reads how much space is free for the relay on a directory's filesystem.
pub trait FreeSpace: Send + Sync + std::fmt::Debug {
    /// Bytes an unprivileged writer may still use on the filesystem of `dir`.
    fn available(&self, dir: &Path) -> std::io::Result<u64>;
}

/// [`FreeSpace`] from `statvfs(2)`: `f_bavail × f_frsize`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatVfs;

impl FreeSpace for StatVfs {
    #[cfg(unix)]
    fn available(&self, dir: &Path) -> std::io::Result<u64> {
        let s = rustix::fs::statvfs(dir)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }

    #[cfg(not(unix))]
    fn available(&self, _dir: &Path) -> std::io::Result<u64> {
        Err(std::io::Error::other(
            "free space is only read on Unix; the reserve is not enforced here",
        ))
    }
}

/// The default reserve, `[storage] min_free_mb`.
pub const DEFAULT_MIN_FREE_MB: u64 = 256;

/// The default bound on a commit, `[storage] flush_timeout_secs`.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

const MIB: u64 = 1024 * 1024;

/// How the store commits, guards the disk and bounds its waits.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How far a commit goes before it is acknowledged.
    pub durability: Durability,
    /// Below this many free bytes, new work is refused.
    pub min_free_bytes: u64,
    /// How long a caller waits for its commit, and [`Store::close`] for
    /// the writer.
    pub flush_timeout: Duration,
    /// Where the free space is read from.
    pub space: Arc<dyn FreeSpace>,
}

impl StoreOptions {
    /// The defaults with `durability`: a reserve of
    /// [`DEFAULT_MIN_FREE_MB`], [`DEFAULT_FLUSH_TIMEOUT`], `statvfs`.
    pub fn new(durability: Durability) -> StoreOptions {
        StoreOptions {
            durability,
            min_free_bytes: DEFAULT_MIN_FREE_MB * MIB,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            space: Arc::new(StatVfs),
        }
    }
}

/// What [`Store::health`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// Room to spare, commits completing.
    Ok,
    /// Free space is below the reserve: new work is refused, the rest works.
    Degraded(String),
    /// A commit has not completed within the bound.
    Unhealthy(String),
}

/// What the writer and the callers tell [`Store::health`].
#[derive(Debug)]
struct Status {
    /// The reserve in bytes (changeable while running).
    min_free: AtomicU64,
    /// Free bytes at the last check below the reserve, or `u64::MAX`.
    low_free: AtomicU64,
    /// Milliseconds since `epoch` when the running flush started, plus
    /// one; zero when none runs.
    flush_started: AtomicU64,
    /// A caller gave up waiting; cleared by the next completed flush.
    stalled: AtomicBool,
    /// Bytes of body files being written now (see [`Store::room_for`]).
    writing: AtomicU64,
    epoch: Instant,
}

impl Status {
    fn since_epoch_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
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
    /// The parcel at rest: given in clear to [`Store::submit`], which stores
    /// the envelope in clear and salt and body encrypted with a key of
    /// their own (read it back with [`Store::parcel`]).
    #[serde(with = "cbor::bytes")]
    pub parcel: Vec<u8>,
    /// Set when the body was erased under the retention policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erased>,
}

/// When and why a body was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    /// When.
    pub at: Timestamp,
    /// The retention rule that applied, e.g. `operational-notice: 30 days after read`.
    pub policy: String,
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
    /// The parcel at rest (see [`OutboundRecord::parcel`]).
    #[serde(with = "cbor::bytes")]
    pub parcel: Vec<u8>,
    /// Set when the body was erased under the retention policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erased>,
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
    /// Stored for the first time: the record as stored, with its receipt.
    New(Box<InboxRecord>),
    /// Already there: the original record, whose receipt goes back again.
    Duplicate(Box<InboxRecord>),
}

/// Signs the receipt for a received message once its audit entry's index
/// and leaf hash are known (the receipt names them).
pub type ReceiptSigner = Box<dyn FnOnce(u64, Digest) -> Result<Vec<u8>, String> + Send>;

enum Op {
    Submit(OutboundRecord, Vec<Delivery>, Option<Case>, BodyKey),
    Delivery(Delivery),
    Inbound(InboxRecord, Option<Case>, ReceiptSigner, BodyKey),
    /// Erase the body of a received (`true`) or sent message.
    Erase(MessageId, bool, Erased),
    Case(Case),
    Refusal(RefusalRecord),
    MarkRead(MessageId, ReadMark),
    Roster(Vec<u8>, String),
    /// Only the audit entries.
    Audit,
    /// A peer's checkpoint this relay cosigned.
    Witnessed(AuthorityId, Witnessed),
    /// Add the cosignature line named `name` from a cosigned copy of the
    /// checkpoint of `size`.
    AddCosignature(u64, String, Vec<u8>),
    Checkpoint(String, SigningKey),
    /// Inclusion proofs for held receipts: (delivery key, proof bytes).
    Proofs(Vec<(Vec<u8>, Vec<u8>)>),
}

enum OpResult {
    Done,
    Accepted(Accepted),
    Read(Option<InboxRecord>),
    Checkpoint(Option<Vec<u8>>),
}

struct Job {
    op: Op,
    /// Audit entries to append in the same transaction (indices are set by
    /// the writer). For `Inbound` the first is the `received` entry the
    /// receipt names; for `MarkRead` they are appended only on the first mark.
    audit: Vec<Entry>,
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
    log: sled::Tree,
    checkpoints: sled::Tree,
    witnessed: sled::Tree,
    body_keys: sled::Tree,
    meta: sled::Tree,
    log_nodes: sled::Tree,
    unproven: sled::Tree,
    receipt_proofs: sled::Tree,
}

/// What the store found in its audit log when it opened.
#[derive(Debug, Clone)]
pub struct LogState {
    /// Entries in the log.
    pub size: u64,
    /// The newest stored checkpoint (signed note bytes), its size and the
    /// root the log has at that size.
    pub last_checkpoint: Option<(Vec<u8>, u64, Digest)>,
}

/// The writer thread; it ends with its last flush's outcome.
type WriterThread = thread::JoinHandle<Result<(), StoreError>>;

/// The relay's database. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    /// The body files' directory (see `at_rest`).
    bodies: PathBuf,
    durability: Durability,
    /// The free space of the data dir's filesystem, also read by the writer.
    space: Arc<dyn FreeSpace>,
    trees: Arc<Trees>,
    writer: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    thread: Arc<Mutex<Option<WriterThread>>>,
    log_state: LogState,
    status: Arc<Status>,
    flush_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// How long [`Store::open`] waits for a database lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the sled database. sled releases its file lock from a background
/// thread a moment after the last handle is dropped, so a store reopened in
/// the same process right after a close (a relay restarted in place, an
/// export after a stop) may find it still held: wait for it, bounded. A
/// lock held by another process (a running relay) is still an error.
fn open_sled(dir: &Path) -> Result<sled::Db, sled::Error> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open();
        match opened {
            // sled reports the lock as ErrorKind::Other with this text.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// sled's page cache (sled's default is 1 GiB). The relay reads back mostly
/// what it wrote last (open deliveries, recent records), and a large cache
/// mostly holds pages of what was just written: `kurir-bench --mode queue`
/// measures the relay's RSS with 100,000 messages queued.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The file beside the database that repeats the newest checkpoint.
const MARKER: &str = "last-checkpoint.note";

/// How many operations one group commit takes at most.
const MAX_BATCH: usize = 512;

impl Store {
    /// Opens (or creates) the database in `dir`, with the default reserve
    /// and bound ([`StoreOptions::new`]).
    pub fn open(dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        Self::open_with(dir, StoreOptions::new(durability))
    }

    /// Opens (or creates) the database in `dir` with `options`.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let durability = options.durability;
        let sled_err = |source| StoreError::Sled {
            path: dir.to_owned(),
            source,
        };
        let db = open_sled(dir).map_err(sled_err)?;
        let trees = Arc::new(Trees {
            outbound: db.open_tree("outbound").map_err(sled_err)?,
            deliveries: db.open_tree("deliveries").map_err(sled_err)?,
            inbox: db.open_tree("inbox").map_err(sled_err)?,
            inbox_order: db.open_tree("inbox_order").map_err(sled_err)?,
            refusals: db.open_tree("refusals").map_err(sled_err)?,
            cases: db.open_tree("cases").map_err(sled_err)?,
            log: db.open_tree("log").map_err(sled_err)?,
            checkpoints: db.open_tree("checkpoints").map_err(sled_err)?,
            witnessed: db.open_tree("witnessed").map_err(sled_err)?,
            body_keys: db.open_tree("body_keys").map_err(sled_err)?,
            meta: db.open_tree("meta").map_err(sled_err)?,
            log_nodes: db.open_tree("log_nodes").map_err(sled_err)?,
            unproven: db.open_tree("unproven").map_err(sled_err)?,
            receipt_proofs: db.open_tree("receipt_proofs").map_err(sled_err)?,
            db,
        });
        let (range, last_leaf, log_state) = replay_log(dir, &trees)?;
        index_open_deliveries(dir, &trees)?;
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Status {
            min_free: AtomicU64::new(options.min_free_bytes),
            low_free: AtomicU64::new(u64::MAX),
            flush_started: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            writing: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let writer = Writer {
            path: dir.to_owned(),
            db_file: dir.join("db"),
            durability,
            trees: trees.clone(),
            range,
            last_leaf,
            marker: None,
            space: options.space.clone(),
            status: status.clone(),
        };
        let thread = thread::Builder::new()
            .name("kurir-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Sync {
                path: dir.to_owned(),
                source,
            })?;
        let bodies = dir.join(at_rest::BODIES);
        remove_orphan_bodies(dir, &bodies, &trees)?;
        Ok(Store {
            path: dir.to_owned(),
            bodies,
            durability,
            space: options.space,
            trees,
            writer: Arc::new(Mutex::new(Some(tx))),
            thread: Arc::new(Mutex::new(Some(thread))),
            log_state,
            status,
            flush_timeout: options.flush_timeout,
        })
    }

    /// Changes the free-space reserve while the store runs (the next batch
    /// is checked against it).
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.status.min_free.store(bytes, Ordering::SeqCst);
    }

    /// Whether the store can take new work, only completes accepted work
    /// (free space below the reserve), or does not complete commits.
    pub fn health(&self) -> StoreHealth {
        let s = &*self.status;
        let started = s.flush_started.load(Ordering::SeqCst);
        let limit = u64::try_from(self.flush_timeout.as_millis()).unwrap_or(u64::MAX);
        let running = s.since_epoch_ms().saturating_add(1).saturating_sub(started);
        if (started != 0 && running > limit) || s.stalled.load(Ordering::SeqCst) {
            return StoreHealth::Unhealthy(format!(
                "storage is not responding: a commit to {} has not completed within {} s",
                self.path.display(),
                self.flush_timeout.as_secs()
            ));
        }
        let free = s.low_free.load(Ordering::SeqCst);
        if free != u64::MAX {
            return StoreHealth::Degraded(format!(
                "the data dir {} has {} MiB free, below the reserve of {} MiB: new work is refused",
                self.path.display(),
                free / MIB,
                s.min_free.load(Ordering::SeqCst) / MIB
            ));
        }
        StoreHealth::Ok
    }

    /// What the audit log held when the store opened.
    pub fn log_state(&self) -> &LogState {
        &self.log_state
    }

    async fn submit_op(&self, op: Op, audit: Vec<Entry>) -> Result<OpResult, StoreError> {
        let (done, wait) = oneshot::channel();
        {
            let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
            let tx = guard.as_ref().ok_or(StoreError::Closed)?;
            tx.send(Job { op, audit, done })
                .map_err(|_| StoreError::Closed)?;
        }
        match tokio::time::timeout(self.flush_timeout, wait).await {
            Ok(answer) => answer.map_err(|_| StoreError::Closed)?,
            Err(_) => {
                self.status.stalled.store(true, Ordering::SeqCst);
                Err(self.not_responding())
            }
        }
    }

    fn not_responding(&self) -> StoreError {
        StoreError::NotResponding {
            path: self.path.clone(),
            secs: self.flush_timeout.as_secs(),
        }
    }

    /// Held receipts whose inclusion proof is not stored yet, oldest
    /// message first.
    pub fn unproven(&self) -> Result<Vec<Unproven>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.unproven.iter() {
            let (key, value) = item.map_err(|e| self.sled(e))?;
            let bad = |what: &str| StoreError::Corrupt {
                path: self.path.clone(),
                tree: "unproven",
                reason: format!("{what} in key {}", hex::encode(&key)),
            };
            let msg_id = key
                .get(..16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .and_then(|b| MessageId::from_bytes(b).ok())
                .ok_or_else(|| bad("no message id"))?;
            let peer = key
                .get(16..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|p| AuthorityId::parse(p).ok())
                .ok_or_else(|| bad("no authority id"))?;
            let (Some(index), Some(leaf)) = (
                value
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes),
                value.get(8..).and_then(Digest::from_slice),
            ) else {
                return Err(bad("a value that is not index ‖ leaf hash"));
            };
            out.push(Unproven {
                msg_id,
                peer,
                index,
                leaf,
            });
        }
        Ok(out)
    }

    /// Stores inclusion proofs of held receipts (each already verified) and
    /// forgets that they were due.
    pub async fn store_proofs(
        &self,
        proofs: Vec<(MessageId, AuthorityId, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let rows = proofs
            .into_iter()
            .map(|(id, peer, proof)| {
                let mut key = id.as_bytes().to_vec();
                key.extend_from_slice(peer.as_str().as_bytes());
                (key, proof)
            })
            .collect();
        self.submit_op(Op::Proofs(rows), vec![]).await.map(drop)
    }

    /// The stored inclusion proof of the receipt `peer` gave for `msg_id`.
    pub fn receipt_proof(
        &self,
        msg_id: MessageId,
        peer: &AuthorityId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut key = msg_id.as_bytes().to_vec();
        key.extend_from_slice(peer.as_str().as_bytes());
        Ok(self
            .trees
            .receipt_proofs
            .get(key)
            .map_err(|e| self.sled(e))?
            .map(|v| v.to_vec()))
    }

    /// RFC 9162 inclusion proofs of the entries `indexes` in this relay's
    /// log at `size`, from the stored subtree hashes; indexes not below
    /// `size` are left out.
    pub fn inclusion_proofs(
        &self,
        indexes: &[u64],
        size: u64,
    ) -> Result<Vec<(u64, Vec<Digest>)>, StoreError> {
        let mut out = Vec::with_capacity(indexes.len());
        for &index in indexes.iter().filter(|&&i| i < size) {
            let proof = kurir_proto::merkle::inclusion_proof_from(index, size, |level, n| {
                self.stored_subtree(level, n)
            })
            .map_err(|e| self.proof_failed(e))?;
            out.push((index, proof));
        }
        Ok(out)
    }

    /// The RFC 9162 consistency proof of this relay's log from `old_size`
    /// to `new_size` entries, from the stored subtree hashes (not every
    /// entry).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Digest>, StoreError> {
        kurir_proto::merkle::consistency_proof_from(old_size, new_size, |level, n| {
            self.stored_subtree(level, n)
        })
        .map_err(|e| self.proof_failed(e))
    }

    /// The root of the perfect subtree `(level, n)` of the log: stored in
    /// `log_nodes` from [`STORED_LEVEL`] up, hashed from the entries below.
    fn stored_subtree(&self, level: u8, n: u64) -> Result<Digest, NodeError> {
        if level < STORED_LEVEL {
            return self
                .subtree_from_entries(level, n)
                .map_err(NodeError::Store);
        }
        let value = self
            .trees
            .log_nodes
            .get(node_key(level, n))
            .map_err(|e| NodeError::Store(self.sled(e)))?;
        value
            .as_deref()
            .and_then(Digest::from_slice)
            .ok_or_else(|| {
                NodeError::Store(self.corrupt(
                    "log_nodes",
                    format!("the subtree hash ({level}, {n}) is missing or damaged"),
                ))
            })
    }

    fn proof_failed(&self, e: NodeError) -> StoreError {
        match e {
            NodeError::Store(e) => e,
            NodeError::Proof(e) => self.corrupt("log_nodes", e.to_string()),
        }
    }

    /// The root of a small perfect subtree (`2^level` entries from
    /// `n · 2^level`), hashed from the entries.
    fn subtree_from_entries(&self, level: u8, n: u64) -> Result<Digest, StoreError> {
        let from = n << level;
        let to = (n + 1) << level;
        let leaves = self
            .trees
            .log
            .range(log_key(from)..log_key(to))
            .map(|item| {
                item.map(|(_, v)| kurir_proto::merkle::leaf_hash(&v))
                    .map_err(|e| self.sled(e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if leaves.len() as u64 != to - from {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                tree: "log",
                reason: format!("entries {from} to {} are not all there", to - 1),
            });
        }
        Ok(kurir_proto::merkle::root(&leaves))
    }

    /// Appends audit entries on their own (events with no other record).
    pub async fn audit(&self, entries: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Audit, entries).await.map(drop)
    }

    /// Signs a checkpoint of the log with `key` under `origin` if the log
    /// grew since the last one; returns the signed note when one was made.
    pub async fn checkpoint(
        &self,
        origin: String,
        key: SigningKey,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self.submit_op(Op::Checkpoint(origin, key), vec![]).await? {
            OpResult::Checkpoint(note) => Ok(note),
            _ => Err(StoreError::Closed),
        }
    }

    /// Records the peer checkpoint this relay just cosigned, with its audit entry.
    pub async fn set_witnessed(
        &self,
        peer: &AuthorityId,
        w: Witnessed,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Witnessed(peer.clone(), w), audit)
            .await
            .map(drop)
    }

    /// The last checkpoint of `peer` this relay cosigned.
    pub fn witnessed(&self, peer: &AuthorityId) -> Result<Option<Witnessed>, StoreError> {
        self.get(&self.trees.witnessed, "witnessed", peer.as_str().as_bytes())
    }

    /// Adds a peer's cosignature (the line named `name` in `cosigned`) to the
    /// stored checkpoint of `size`.
    pub async fn add_cosignature(
        &self,
        size: u64,
        name: String,
        cosigned: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::AddCosignature(size, name, cosigned), vec![])
            .await
            .map(drop)
    }

    /// Every audit entry, in order (the raw CBOR of each).
    pub fn log_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.trees
            .log
            .iter()
            .map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| self.sled(e)))
            .collect()
    }

    /// The newest stored checkpoint (signed note), if any.
    pub fn last_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .trees
            .checkpoints
            .last()
            .map_err(|e| self.sled(e))?
            .map(|(_, v)| v.to_vec()))
    }

    /// Every stored checkpoint (signed notes), oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.trees
            .checkpoints
            .iter()
            .map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| self.sled(e)))
            .collect()
    }

    /// Records a submitted message, its deliveries and the updated case it
    /// belongs to, in one durable commit.
    pub async fn submit(
        &self,
        record: OutboundRecord,
        deliveries: Vec<Delivery>,
        case: Option<Case>,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        let mut record = record;
        let (key, file) = self.seal_body(record.msg_id, &mut record.parcel).await?;
        let result = self
            .submit_op(Op::Submit(record, deliveries, case, key), audit)
            .await;
        if result.is_err() {
            self.forget_body_file(file.as_deref());
        }
        result.map(drop)
    }

    /// Records a case after its clock moved.
    pub async fn put_case(&self, case: Case, audit: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Case(case), audit).await.map(drop)
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
    pub async fn update_delivery(&self, d: Delivery, audit: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Delivery(d), audit).await.map(drop)
    }

    /// Stores a received message unless its id is already there; durable
    /// when it returns. Exactly one of several concurrent calls with the same
    /// id gets [`Accepted::New`].
    ///
    /// When the message is new, the store appends `received` to the audit
    /// log, calls `sign` with that entry's index and leaf hash to get the
    /// receipt (kept in the record, and sent again on duplicates), and
    /// stores record, entry and `case` in one commit.
    pub async fn accept_inbound(
        &self,
        record: InboxRecord,
        case: Option<Case>,
        received: Entry,
        sign: ReceiptSigner,
    ) -> Result<Accepted, StoreError> {
        let mut record = record;
        let (key, file) = match self.seal_body(record.msg_id, &mut record.parcel).await {
            Ok(sealed) => sealed,
            // No room for a new body: a message stored before still gets
            // its original receipt.
            Err(e) if e.is_low_space() => match self.inbox(record.msg_id)? {
                Some(old) => return Ok(Accepted::Duplicate(Box::new(old))),
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let result = self
            .submit_op(Op::Inbound(record, case, sign, key), vec![received])
            .await;
        match result {
            Ok(OpResult::Accepted(a @ Accepted::New(_))) => Ok(a),
            // The first copy's body is the one kept.
            Ok(OpResult::Accepted(a @ Accepted::Duplicate(_))) => {
                self.forget_body_file(file.as_deref());
                Ok(a)
            }
            Ok(_) => Err(StoreError::Closed),
            Err(e) => {
                self.forget_body_file(file.as_deref());
                Err(e)
            }
        }
    }

    /// Records a refused parcel and the rejection sent back, durably.
    pub async fn record_refusal(
        &self,
        r: RefusalRecord,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Refusal(r), audit).await.map(drop)
    }

    /// Marks a received message read (the first mark stays, and only the
    /// first appends `audit`); returns the record, or `None` if there is no
    /// such message.
    pub async fn mark_read(
        &self,
        msg_id: MessageId,
        mark: ReadMark,
        audit: Vec<Entry>,
    ) -> Result<Option<InboxRecord>, StoreError> {
        match self.submit_op(Op::MarkRead(msg_id, mark), audit).await? {
            OpResult::Read(r) => Ok(r),
            _ => Err(StoreError::Closed),
        }
    }

    /// Records the roster now in force (the relay refuses older ones later)
    /// and the authority this store belongs to.
    pub async fn set_roster(
        &self,
        authority: &AuthorityId,
        bytes: Vec<u8>,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Roster(bytes, authority.to_string()), audit)
            .await
            .map(drop)
    }

    /// The authority recorded with the roster.
    pub fn authority(&self) -> Result<Option<AuthorityId>, StoreError> {
        let Some(v) = self
            .trees
            .meta
            .get(b"authority")
            .map_err(|e| self.sled(e))?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&v).into_owned();
        AuthorityId::parse(&text)
            .map(Some)
            .map_err(|e| self.corrupt("meta", e.to_string()))
    }

    /// Every roster recorded with [`Store::set_roster`] (signed file bytes,
    /// in no particular order), the current one included.
    pub fn rosters(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut all = self
            .trees
            .meta
            .scan_prefix(ROSTER_HISTORY)
            .map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| self.sled(e)))
            .collect::<Result<Vec<_>, _>>()?;
        // A database from before the history was kept.
        if let Some(current) = self.roster()?
            && !all.contains(&current)
        {
            all.push(current);
        }
        Ok(all)
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

    /// Replaces a parcel in clear with its at-rest form; returns the key
    /// and, for a large body, the body file it wrote (synced, with
    /// power-loss durability, before this returns: the record that names it
    /// is committed after).
    async fn seal_body(
        &self,
        msg_id: MessageId,
        parcel: &mut Vec<u8>,
    ) -> Result<(BodyKey, Option<String>), StoreError> {
        let bad = |reason| StoreError::Corrupt {
            path: self.path.clone(),
            tree: "body_keys",
            reason,
        };
        if parcel.len() < at_rest::FILE_MIN {
            let s = at_rest::seal(parcel).map_err(bad)?;
            *parcel = at_rest::inline(&s.envelope, &s.sealed);
            return Ok((s.key, None));
        }
        // A body file is written before the writer's free-space check: it
        // must leave the reserve, and what other body files being written
        // now will take, untouched.
        let _room = self.room_for(parcel.len() as u64)?;
        // Encrypting and writing megabytes is blocking work.
        let clear = std::mem::take(parcel);
        let (dir, path) = (self.bodies.clone(), self.path.clone());
        let sync = self.durability == Durability::PowerLoss;
        let (stored, key, name) = tokio::task::spawn_blocking(move || {
            let s = at_rest::seal(&clear).map_err(|reason| StoreError::Corrupt {
                path,
                tree: "body_keys",
                reason,
            })?;
            let name = at_rest::new_file_name(msg_id);
            at_rest::write_file(&dir, &name, &s.sealed, sync).map_err(|source| {
                StoreError::BodyFile {
                    path: dir.join(&name),
                    source,
                }
            })?;
            Ok::<_, StoreError>((at_rest::in_file(&s.envelope, &name), s.key, name))
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        *parcel = stored;
        Ok((key, Some(name)))
    }

    /// Claims `len` bytes for a body file about to be written, or refuses
    /// new work as the writer does when the free space, less the reserve and
    /// the body files being written, does not hold them.
    fn room_for(&self, len: u64) -> Result<Room<'_>, StoreError> {
        let s = &*self.status;
        let writing = s
            .writing
            .fetch_add(len, Ordering::SeqCst)
            .saturating_add(len);
        let room = Room { status: s, len };
        let reserve = s.min_free.load(Ordering::SeqCst);
        if reserve == 0 {
            return Ok(room);
        }
        match self.space.available(&self.path) {
            Ok(free) if free < reserve.saturating_add(writing) => {
                // Reported as the free space that would be left.
                let left = free.saturating_sub(writing);
                tracing::warn!(
                    data_dir = %self.path.display(),
                    free_mib = free / MIB,
                    body_bytes = len,
                    reserve_mib = reserve / MIB,
                    "refusing a large body: it would leave less than the reserve free"
                );
                Err(StoreError::LowSpace {
                    path: self.path.clone(),
                    free_mib: left / MIB,
                    reserve_mib: reserve / MIB,
                })
            }
            // Unreadable: the writer logs it and does not check either.
            _ => Ok(room),
        }
    }

    /// Removes a body file no record names (its operation failed, or the
    /// message was a duplicate); a failure only leaves it for the next open.
    fn forget_body_file(&self, name: Option<&str>) {
        if let Some(name) = name
            && let Err(e) = at_rest::remove_file(&self.bodies, name)
        {
            tracing::warn!(file = %self.bodies.join(name).display(), error = %e,
                "cannot remove an unused body file; it is removed at the next start");
        }
    }

    /// The parcel in clear of a stored record (`stored` is its `parcel`
    /// field), or `None` when its body was erased.
    pub fn parcel(&self, msg_id: MessageId, stored: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = self
            .trees
            .body_keys
            .get(msg_id.as_bytes())
            .map_err(|e| self.sled(e))?
        else {
            return Ok(None);
        };
        let bad = |reason| self.corrupt("body_keys", reason);
        let (envelope, sealed) = match Stored::parse(stored).map_err(bad)? {
            Stored::Inline { envelope, sealed } => (envelope, sealed.to_vec()),
            Stored::File { envelope, name } => {
                let sealed = at_rest::read_file(&self.bodies, name).map_err(|source| {
                    StoreError::BodyFile {
                        path: self.bodies.join(name),
                        source,
                    }
                })?;
                (envelope, sealed)
            }
            Stored::Erased { .. } => return Err(bad("the body was erased".into())),
        };
        at_rest::open(envelope, sealed, &key).map(Some).map_err(bad)
    }

    /// The signed envelope of a stored parcel (always kept).
    pub fn envelope(stored: &[u8]) -> Option<Vec<u8>> {
        Stored::parse(stored).ok().map(|s| s.envelope().to_vec())
    }

    /// Erases the body of a received (`inbox`) or sent message: deletes its
    /// key and ciphertext and records `erased`, with `audit`, in one commit.
    pub async fn erase_body(
        &self,
        msg_id: MessageId,
        inbox: bool,
        erased: Erased,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        let tree = if inbox {
            &self.trees.inbox
        } else {
            &self.trees.outbound
        };
        let stored = tree.get(msg_id.as_bytes()).map_err(|e| self.sled(e))?;
        let file = stored
            .as_deref()
            .and_then(record_parcel)
            .and_then(|p| Stored::parse(p).ok())
            .and_then(|p| p.file().map(str::to_owned));
        self.submit_op(Op::Erase(msg_id, inbox, erased), audit)
            .await?;
        // The record no longer names the file, and its key is gone.
        self.forget_body_file(file.as_deref());
        Ok(())
    }

    /// A sent message.
    pub fn outbound(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        self.get(&self.trees.outbound, "outbound", msg_id.as_bytes())
    }

    /// The deliveries of a sent message, one per recipient.
    pub fn deliveries_of(&self, msg_id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        self.scan(&self.trees.deliveries, "deliveries", msg_id.as_bytes())
    }

    /// Every delivery that is not final, for the outbox at start: read
    /// through the index of open deliveries, so the cost follows the queue,
    /// not every message ever sent.
    pub fn open_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .scan::<Delivery>(&self.trees.meta, "meta", OPEN_PREFIX)?
            .into_iter()
            .filter(|d| !d.state.is_final())
            .collect())
    }

    /// Every sent message, oldest first.
    pub fn outbound_all(&self) -> Result<Vec<OutboundRecord>, StoreError> {
        self.scan(&self.trees.outbound, "outbound", &[])
    }

    /// A sent message without its body, for status and listings: `parcel`
    /// holds only the envelope (read its header with [`Store::envelope`]),
    /// and the body, however large, is neither decoded nor copied.
    pub fn outbound_head(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        match self
            .trees
            .outbound
            .get(msg_id.as_bytes())
            .map_err(|e| self.sled(e))?
        {
            Some(v) => self.decode_head(&v).map(Some),
            None => Ok(None),
        }
    }

    /// The parcel of a sent message, to deliver it: `None` if there is no
    /// such message or its body was erased. The stored record is not
    /// decoded.
    pub fn sent_parcel(&self, msg_id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(stored) = self
            .trees
            .outbound
            .get(msg_id.as_bytes())
            .map_err(|e| self.sled(e))?
        else {
            return Ok(None);
        };
        match record_parcel(&stored) {
            Some(parcel) => self.parcel(msg_id, parcel),
            None => Err(self.corrupt("outbound", format!("no parcel in the record of {msg_id}"))),
        }
    }

    /// Every sent message without its body (see [`Store::outbound_head`]).
    pub fn outbound_heads(&self) -> Result<Vec<OutboundRecord>, StoreError> {
        self.trees
            .outbound
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(|e| self.sled(e))?;
                self.decode_head(&v)
            })
            .collect()
    }

    fn decode_head(&self, stored: &[u8]) -> Result<OutboundRecord, StoreError> {
        let decoded = match without_body(stored) {
            Some(light) => cbor::from_slice(&light),
            // Not in the shape this store writes: decode it all.
            None => cbor::from_slice::<OutboundRecord>(stored).map(|mut r| {
                r.parcel = Stored::parse(&r.parcel)
                    .map(|p| at_rest::erased(p.envelope()))
                    .unwrap_or_default();
                r
            }),
        };
        decoded.map_err(|e| self.corrupt("outbound", e.to_string()))
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

    /// Stops the writer after it has committed and flushed everything
    /// queued. Blocks (call it from a blocking thread in async code) for at
    /// most [`StoreOptions::flush_timeout`]: a writer stuck on the disk is
    /// left behind with [`StoreError::NotResponding`].
    pub fn close(&self) -> Result<(), StoreError> {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        let Some(handle) = handle else {
            return Ok(());
        };
        let deadline = Instant::now() + self.flush_timeout;
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                self.status.stalled.store(true, Ordering::SeqCst);
                return Err(self.not_responding());
            }
            thread::sleep(Duration::from_millis(5));
        }
        handle
            .join()
            .map_err(|_| self.corrupt("commit", "the writer thread panicked".into()))?
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

/// Keys in `meta` that hold the deliveries not yet final, a copy of each
/// (`open/` ‖ the delivery's key), written with each change of state and
/// removed when it is final.
const OPEN_PREFIX: &[u8] = b"open/";

/// Set in `meta` once the index of open deliveries exists (stores from
/// before it get it built at open).
const OPEN_INDEXED: &[u8] = b"open-indexed";

fn open_key(d: &Delivery) -> Vec<u8> {
    let mut k = OPEN_PREFIX.to_vec();
    k.extend_from_slice(&delivery_key(d));
    k
}

/// Builds the index of open deliveries in a store written before it
/// existed: one scan of every delivery, once.
fn index_open_deliveries(dir: &Path, trees: &Trees) -> Result<(), StoreError> {
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    if trees.meta.contains_key(OPEN_INDEXED).map_err(sled_err)? {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for item in trees.deliveries.iter() {
        let (_, value) = item.map_err(sled_err)?;
        let d: Delivery = cbor::from_slice(&value).map_err(|e| StoreError::Corrupt {
            path: dir.to_owned(),
            tree: "deliveries",
            reason: e.to_string(),
        })?;
        if !d.state.is_final() {
            batch.insert(open_key(&d), value);
        }
    }
    batch.insert(OPEN_INDEXED, &[][..]);
    trees.meta.apply_batch(batch).map_err(sled_err)?;
    trees.db.flush().map_err(sled_err)?;
    Ok(())
}

fn delivery_key(d: &Delivery) -> Vec<u8> {
    let mut k = d.msg_id.as_bytes().to_vec();
    k.extend_from_slice(d.peer.as_str().as_bytes());
    k
}

/// A key and value to insert.
type Row = (Vec<u8>, Vec<u8>);

/// Bytes claimed for a body file being written; released when dropped.
struct Room<'a> {
    status: &'a Status,
    len: u64,
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.status.writing.fetch_sub(self.len, Ordering::SeqCst);
    }
}

/// Creates the body files' directory, and removes the body files no record
/// names: written for an operation that failed or a duplicate, or left by
/// an erasure, when the relay stopped before it could remove them.
fn remove_orphan_bodies(dir: &Path, bodies: &Path, trees: &Trees) -> Result<(), StoreError> {
    let io = |source| StoreError::BodyFile {
        path: bodies.to_owned(),
        source,
    };
    std::fs::create_dir_all(bodies).map_err(io)?;
    let (files, other) = at_rest::list_files(bodies).map_err(io)?;
    for path in other {
        tracing::warn!(path = %path.display(), "not a body file; left alone");
    }
    for name in files {
        let named = at_rest::file_msg_id(&name).is_some_and(|msg_id| {
            [&trees.inbox, &trees.outbound].iter().any(|tree| {
                tree.get(msg_id.as_bytes())
                    .ok()
                    .flatten()
                    .as_deref()
                    .and_then(record_parcel)
                    .and_then(|p| Stored::parse(p).ok())
                    .and_then(|p| p.file())
                    == Some(name.as_str())
            })
        });
        if !named {
            tracing::info!(data_dir = %dir.display(), file = %name,
                "removing a body file no record names");
            at_rest::remove_file(bodies, &name).map_err(io)?;
        }
    }
    Ok(())
}

/// A stored record (inbox or outbound) with its body erased: the parcel
/// reduced to its envelope and `erased` set.
fn erased_record<T: serde::de::DeserializeOwned + Serialize>(
    stored: &[u8],
    erased: Erased,
    fields: impl FnOnce(&mut T) -> (&mut Vec<u8>, &mut Option<Erased>),
) -> Result<Vec<u8>, String> {
    let mut record: T = cbor::from_slice(stored).map_err(|e| e.to_string())?;
    let (parcel, mark) = fields(&mut record);
    *parcel = erase_at_rest(parcel)?;
    *mark = Some(erased);
    encode(&record)
}

/// The stored form without its body.
fn erase_at_rest(stored: &[u8]) -> Result<Vec<u8>, String> {
    Ok(at_rest::erased(at_rest::Stored::parse(stored)?.envelope()))
}

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
    /// The Merkle log's right edge, for appends and checkpoints.
    range: CompactRange,
    /// The newest entry's leaf hash: the next entry's `prev`.
    last_leaf: Option<Digest>,
    /// A checkpoint to record beside the database once its batch is on disk.
    marker: Option<Vec<u8>>,
    space: Arc<dyn FreeSpace>,
    status: Arc<Status>,
}

/// Audit rows to insert and the leaf hashes to append once committed.
#[derive(Default)]
struct LogRows {
    rows: Vec<Row>,
    leaves: Vec<Digest>,
}

fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The `meta` key prefix of every accepted roster.
const ROSTER_HISTORY: &[u8] = b"rosters/";

/// `rosters/` ‖ the roster's SHA-256 (hex, as its fingerprint and the
/// `roster` audit entry give it).
fn roster_history_key(bytes: &[u8]) -> Vec<u8> {
    let mut k = ROSTER_HISTORY.to_vec();
    k.extend_from_slice(Digest::of(&[bytes]).to_string().as_bytes());
    k
}

/// Reading a subtree hash for a proof failed.
enum NodeError {
    Store(StoreError),
    Proof(kurir_proto::ProofError),
}

impl From<kurir_proto::ProofError> for NodeError {
    fn from(e: kurir_proto::ProofError) -> NodeError {
        NodeError::Proof(e)
    }
}

/// The lowest level of perfect subtree kept in `log_nodes` (16 entries);
/// smaller subtrees are hashed from the entries when a proof needs them.
const STORED_LEVEL: u8 = 4;

/// The `log_nodes` key of the perfect subtree `(level, index)`.
fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The index part of a `log_nodes` key.
fn node_index(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Where a caller waits for its operation's result.
type Answer = oneshot::Sender<Result<OpResult, StoreError>>;

/// An operation's result, and where its caller waits for it.
type Answered = (Answer, Result<OpResult, StoreError>);

/// The trees a group commit writes, as indices into [`Trees::all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TreeId {
    Outbound,
    Deliveries,
    Inbox,
    InboxOrder,
    Refusals,
    Cases,
    Log,
    Witnessed,
    BodyKeys,
    Meta,
    Unproven,
    ReceiptProofs,
    LogNodes,
}

impl Trees {
    /// The trees in [`TreeId`] order.
    fn all(&self) -> [&sled::Tree; 13] {
        [
            &self.outbound,
            &self.deliveries,
            &self.inbox,
            &self.inbox_order,
            &self.refusals,
            &self.cases,
            &self.log,
            &self.witnessed,
            &self.body_keys,
            &self.meta,
            &self.unproven,
            &self.receipt_proofs,
            &self.log_nodes,
        ]
    }
}

/// The writes of a group's operations, not yet committed.
#[derive(Default)]
struct Pending {
    writes: Vec<(TreeId, sled::IVec, Option<sled::IVec>)>,
    /// The newest pending value of each key, for reads later in the group.
    overlay: HashMap<(TreeId, Vec<u8>), Option<sled::IVec>>,
    /// The audit entries of the group, in order.
    log: LogRows,
    /// The operations (positions in the group) that fail if the commit does.
    owners: Vec<usize>,
}

impl Pending {
    fn put(&mut self, tree: TreeId, key: Vec<u8>, value: Vec<u8>) {
        let value = sled::IVec::from(value);
        self.writes
            .push((tree, sled::IVec::from(&key[..]), Some(value.clone())));
        self.overlay.insert((tree, key), Some(value));
    }

    fn remove(&mut self, tree: TreeId, key: Vec<u8>) {
        self.writes.push((tree, sled::IVec::from(&key[..]), None));
        self.overlay.insert((tree, key), None);
    }

    fn log(&mut self, rows: LogRows) {
        self.log.rows.extend(rows.rows);
        self.log.leaves.extend(rows.leaves);
    }
}

/// Reads the whole log at start: checks that it is contiguous, well-formed
/// and chained, rebuilds the compact range, and finds the root at the size
/// of the newest checkpoint. Returns the range, the newest leaf hash and
/// what was found.
fn replay_log(
    dir: &Path,
    trees: &Trees,
) -> Result<(CompactRange, Option<Digest>, LogState), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: dir.to_owned(),
        tree: "log",
        reason,
    };
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    // The newest checkpoint is also kept in a file beside the database, so
    // that a database damaged or replaced as a whole is noticed.
    let marker = match std::fs::read(dir.join(MARKER)) {
        Ok(bytes) => {
            let signed = SignedCheckpoint::parse(&bytes).map_err(|e| {
                corrupt(format!(
                    "{} does not parse: {e}",
                    dir.join(MARKER).display()
                ))
            })?;
            Some((signed.checkpoint().size(), *signed.checkpoint().root()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(StoreError::Sync {
                path: dir.join(MARKER),
                source: e,
            });
        }
    };
    let mut marker_root = None;
    if let Some((0, _)) = marker {
        marker_root = Some(CompactRange::new().root());
    }
    let last_checkpoint = match trees.checkpoints.last().map_err(sled_err)? {
        Some((_, note)) => {
            let signed = SignedCheckpoint::parse(&note)
                .map_err(|e| corrupt(format!("the newest checkpoint does not parse: {e}")))?;
            Some((note.to_vec(), signed.checkpoint().size()))
        }
        None => None,
    };
    let mut range = CompactRange::new();
    let mut last_leaf = None;
    let mut root_at_checkpoint = None;
    // Subtree nodes are written with the entries; a database from before
    // they were kept has them rebuilt (for leaves from `nodes_from` on: the
    // nodes of a leaf are all written in the same transaction).
    let nodes_from = match trees.log_nodes.scan_prefix([STORED_LEVEL]).next_back() {
        Some(item) => {
            let (key, _) = item.map_err(sled_err)?;
            node_index(&key).map_or(0, |i| (i + 1) << STORED_LEVEL)
        }
        None => 0,
    };
    let mut nodes = sled::Batch::default();
    if let Some((_, 0)) = &last_checkpoint {
        root_at_checkpoint = Some(range.root());
    }
    for item in trees.log.iter() {
        let (key, value) = item.map_err(sled_err)?;
        let index = range.size();
        if key.as_ref() != log_key(index) {
            return Err(corrupt(format!(
                "entry {index} is missing (the next key is {})",
                hex::encode(&key)
            )));
        }
        let entry = Entry::decode(&value)
            .map_err(|e| corrupt(format!("entry {index} does not decode: {e}")))?;
        if entry.index != index {
            return Err(corrupt(format!(
                "entry {index} says it is entry {}",
                entry.index
            )));
        }
        if index > 0 && entry.prev != last_leaf {
            return Err(corrupt(format!(
                "entry {} was changed: entry {index} records another hash for it",
                index - 1
            )));
        }
        let leaf = kurir_proto::merkle::leaf_hash(&value);
        last_leaf = Some(leaf);
        if index >= nodes_from {
            range.append_with(leaf, |level, i, hash| {
                if level >= STORED_LEVEL {
                    nodes.insert(&node_key(level, i)[..], &hash.0[..]);
                }
            });
        } else {
            range.append(leaf);
        }
        if let Some((_, size)) = &last_checkpoint
            && *size == range.size()
        {
            root_at_checkpoint = Some(range.root());
        }
        if let Some((size, _)) = &marker
            && *size == range.size()
        {
            marker_root = Some(range.root());
        }
    }
    trees.log_nodes.apply_batch(nodes).map_err(sled_err)?;
    if let Some((size, root)) = marker {
        match marker_root {
            None => {
                return Err(corrupt(format!(
                    "the database holds {} audit entries but the last checkpoint recorded \
                     beside it ({}) covers {size}: the database was damaged, replaced or \
                     rolled back. Do not run on it: restore it from a backup no older than \
                     that checkpoint, or have an auditor examine it",
                    range.size(),
                    dir.join(MARKER).display()
                )));
            }
            Some(found) if found != root => {
                return Err(corrupt(format!(
                    "the audit log in the database differs from the last checkpoint recorded \
                     beside it ({}) at size {size}: the database was damaged or replaced. Do \
                     not run on it; have an auditor examine it",
                    dir.join(MARKER).display()
                )));
            }
            Some(_) => {}
        }
    }
    let state = LogState {
        size: range.size(),
        last_checkpoint: match (last_checkpoint, root_at_checkpoint) {
            (Some((note, size)), Some(root)) => Some((note, size, root)),
            // The log is shorter than its newest checkpoint: the root is
            // unknown; the relay refuses to start on it.
            (Some((note, size)), None) => Some((note, size, Digest([0; 32]))),
            (None, _) => None,
        },
    };
    Ok((range, last_leaf, state))
}

impl Writer {
    /// Commits batches until every sender is gone, then flushes once more.
    fn run(mut self, rx: mpsc::Receiver<Job>) -> Result<(), StoreError> {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let low = self.check_space();
            let (answers, wrote) = self.apply_batch(batch, low.as_ref());
            let mut synced = Ok(());
            if wrote {
                crate::crashpoint::hit("store.before_flush");
                synced = self.sync();
                if synced.is_ok()
                    && let Some(note) = self.marker.take()
                {
                    synced = self.write_marker(&note);
                }
                crate::crashpoint::hit("store.after_flush");
            }
            for (done, result) in answers {
                let answer = match (&synced, result) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(e.clone_for_caller(&self.path)),
                };
                // A caller that gave up waiting is no reason to stop.
                let _ = done.send(answer);
            }
        }
        self.sync()
    }

    /// Reads the free space; below the reserve, the error new work gets
    /// (and [`Store::health`] reports it). An unreadable free space is
    /// logged and does not stop anything.
    fn check_space(&self) -> Option<StoreError> {
        let reserve = self.status.min_free.load(Ordering::SeqCst);
        if reserve == 0 {
            self.status.low_free.store(u64::MAX, Ordering::SeqCst);
            return None;
        }
        match self.space.available(&self.path) {
            Ok(free) if free < reserve => {
                let was = self.status.low_free.swap(free, Ordering::SeqCst);
                if was == u64::MAX {
                    tracing::warn!(
                        data_dir = %self.path.display(),
                        free_mib = free / MIB,
                        reserve_mib = reserve / MIB,
                        "free space below the reserve: refusing new work until space is freed"
                    );
                }
                Some(StoreError::LowSpace {
                    path: self.path.clone(),
                    free_mib: free / MIB,
                    reserve_mib: reserve / MIB,
                })
            }
            Ok(free) => {
                let was = self.status.low_free.swap(u64::MAX, Ordering::SeqCst);
                if was != u64::MAX {
                    tracing::info!(
                        data_dir = %self.path.display(),
                        free_mib = free / MIB,
                        "free space above the reserve again: accepting new work"
                    );
                }
                None
            }
            Err(e) => {
                tracing::warn!(
                    data_dir = %self.path.display(),
                    error = %e,
                    "cannot read the free space of the data dir; the reserve is not checked"
                );
                None
            }
        }
    }

    /// Below the reserve: the answer to new work (a parcel already stored
    /// still gets its original receipt); `None` for work that completes
    /// what was accepted, which goes ahead.
    fn refuse_new(&self, op: &Op, low: &StoreError) -> Option<Result<OpResult, StoreError>> {
        let refused = || match low {
            StoreError::LowSpace {
                path,
                free_mib,
                reserve_mib,
            } => StoreError::LowSpace {
                path: path.clone(),
                free_mib: *free_mib,
                reserve_mib: *reserve_mib,
            },
            other => other.clone_for_caller(&self.path),
        };
        match op {
            Op::Submit(..) | Op::Refusal(_) => Some(Err(refused())),
            Op::Inbound(record, ..) => {
                let found = match self.trees.inbox.get(record.msg_id.as_bytes()) {
                    Ok(found) => found,
                    Err(e) => return Some(Err(self.sled_err(e))),
                };
                Some(match found {
                    Some(old) => cbor::from_slice(&old)
                        .map(|old| OpResult::Accepted(Accepted::Duplicate(Box::new(old))))
                        .map_err(|e| StoreError::Corrupt {
                            path: self.path.clone(),
                            tree: "inbox",
                            reason: e.to_string(),
                        }),
                    None => Err(refused()),
                })
            }
            _ => None,
        }
    }

    /// Flushes sled (and fsyncs), telling [`Store::health`] while it runs.
    fn sync(&self) -> Result<(), StoreError> {
        let s = &*self.status;
        s.flush_started
            .store(s.since_epoch_ms().saturating_add(1), Ordering::SeqCst);
        let synced = self.sync_now();
        s.flush_started.store(0, Ordering::SeqCst);
        if synced.is_ok() {
            s.stalled.store(false, Ordering::SeqCst);
        }
        synced
    }

    fn sync_now(&self) -> Result<(), StoreError> {
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

    /// Records the newest checkpoint in a file beside the database (written
    /// to a temporary file, synced, renamed, directory synced), only after
    /// the database holds everything it covers.
    fn write_marker(&self, note: &[u8]) -> Result<(), StoreError> {
        let path = self.path.join(MARKER);
        let tmp = self.path.join(format!("{MARKER}.tmp"));
        let err = |source| StoreError::Sync {
            path: path.clone(),
            source,
        };
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(note).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)?;
        std::fs::File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }

    /// Numbers the entries from the log's current size plus the entries of
    /// the group not committed yet (`pending`: how many, and the newest's
    /// leaf hash), links each to the one before it (`prev`) and encodes them.
    fn log_rows(&self, pending: (usize, Option<Digest>), entries: &mut [Entry]) -> LogRows {
        let mut rows = Vec::with_capacity(entries.len());
        let mut leaves = Vec::with_capacity(entries.len());
        let mut prev = pending.1.or(self.last_leaf);
        for (i, entry) in entries.iter_mut().enumerate() {
            entry.index = self.range.size() + (pending.0 + i) as u64;
            entry.prev = prev;
            let bytes = entry.encode();
            let leaf = kurir_proto::merkle::leaf_hash(&bytes);
            prev = Some(leaf);
            leaves.push(leaf);
            rows.push((log_key(entry.index).to_vec(), bytes));
        }
        LogRows { rows, leaves }
    }

    /// The log's range after appending `leaves`, and the `log_nodes` rows
    /// of the perfect subtrees they complete (levels from
    /// [`STORED_LEVEL`]), to write in the same transaction.
    fn grown(&self, leaves: &[Digest]) -> (CompactRange, Vec<([u8; 9], Digest)>) {
        let mut range = self.range.clone();
        let mut nodes = Vec::new();
        for leaf in leaves {
            range.append_with(*leaf, |level, i, hash| {
                if level >= STORED_LEVEL {
                    nodes.push((node_key(level, i), hash));
                }
            });
        }
        (range, nodes)
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Applies a group of operations: their writes go to sled in as few
    /// transactions as the group allows (one, unless it holds a checkpoint),
    /// each operation still checked on its own, so one that fails its checks
    /// fails alone. Nothing is answered here: the caller syncs first.
    ///
    /// Below the free-space reserve (`low`), new work is answered without
    /// being applied (see [`Writer::refuse_new`]). Returns the answers and
    /// whether anything was applied (and so needs a flush).
    fn apply_batch(&mut self, batch: Vec<Job>, low: Option<&StoreError>) -> (Vec<Answered>, bool) {
        let mut answers = Vec::with_capacity(batch.len());
        let mut pending = Pending::default();
        let mut wrote = false;
        for job in batch {
            if let Some(refused) = low.and_then(|e| self.refuse_new(&job.op, e)) {
                answers.push((job.done, refused));
                continue;
            }
            wrote = true;
            let result = if matches!(job.op, Op::Checkpoint(..) | Op::AddCosignature(..)) {
                // These read what is committed: commit what is pending first.
                self.commit(&mut pending, &mut answers);
                self.apply(job.op, job.audit, &mut pending)
            } else {
                pending.owners.push(answers.len());
                self.apply(job.op, job.audit, &mut pending)
            };
            answers.push((job.done, result));
        }
        self.commit(&mut pending, &mut answers);
        (answers, wrote)
    }

    /// Writes what the operations since the last commit prepared, in one
    /// transaction. If it fails, every one of them fails (reads in the group
    /// may have seen their writes).
    fn commit(&mut self, pending: &mut Pending, answers: &mut [Answered]) {
        let p = std::mem::take(pending);
        if p.writes.is_empty() && p.log.rows.is_empty() {
            return;
        }
        let (range, nodes) = self.grown(&p.log.leaves);
        let trees = self.trees.clone();
        let all = trees.all();
        let committed = all[..].transaction(|view| {
            for (tree, key, value) in &p.writes {
                let t = &view[*tree as usize];
                match value {
                    Some(v) => t.insert(key.clone(), v.clone())?,
                    None => t.remove(key.clone())?,
                };
            }
            let log = &view[TreeId::Log as usize];
            for (k, v) in &p.log.rows {
                log.insert(k.as_slice(), v.as_slice())?;
            }
            let log_nodes = &view[TreeId::LogNodes as usize];
            for (k, hash) in &nodes {
                log_nodes.insert(&k[..], &hash.0[..])?;
            }
            Ok::<_, ConflictableTransactionError<String>>(())
        });
        match committed {
            Ok(()) => {
                self.range = range;
                if let Some(leaf) = p.log.leaves.last() {
                    self.last_leaf = Some(*leaf);
                }
            }
            Err(e) => {
                let e = match e {
                    TransactionError::Abort(reason) => StoreError::Corrupt {
                        path: self.path.clone(),
                        tree: "transaction",
                        reason,
                    },
                    TransactionError::Storage(source) => self.sled_err(source),
                };
                for i in p.owners {
                    if let Some((_, result)) = answers.get_mut(i) {
                        *result = Err(e.clone_for_caller(&self.path));
                    }
                }
            }
        }
    }

    /// A value as the group sees it: written earlier in the group, or stored.
    fn read(
        &self,
        pending: &Pending,
        tree: TreeId,
        key: &[u8],
    ) -> Result<Option<sled::IVec>, StoreError> {
        if let Some(v) = pending.overlay.get(&(tree, key.to_vec())) {
            return Ok(v.clone());
        }
        self.trees.all()[tree as usize]
            .get(key)
            .map_err(|e| self.sled_err(e))
    }

    /// Checks one operation and adds its writes to `pending`; writes nothing
    /// if it fails.
    fn apply(
        &mut self,
        op: Op,
        mut audit: Vec<Entry>,
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let trees = self.trees.clone();
        let t = &*trees;
        let path = self.path.clone();
        let corrupt = |tree, reason| StoreError::Corrupt {
            path: path.clone(),
            tree,
            reason,
        };
        let next = (pending.log.leaves.len(), pending.log.leaves.last().copied());
        match op {
            Op::Submit(record, deliveries, case, body_key) => {
                let value = encode(&record).map_err(|r| corrupt("outbound", r))?;
                let case_row = case_row(case.as_ref()).map_err(|r| corrupt("cases", r))?;
                let rows = deliveries
                    .iter()
                    .map(|d| Ok((delivery_key(d), encode(d)?)))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|r| corrupt("deliveries", r))?;
                let key = record.msg_id.as_bytes().to_vec();
                pending.put(TreeId::Outbound, key.clone(), value);
                pending.put(TreeId::BodyKeys, key, body_key.to_vec());
                for ((k, v), d) in rows.into_iter().zip(&deliveries) {
                    if !d.state.is_final() {
                        pending.put(TreeId::Meta, open_key(d), v.clone());
                    }
                    pending.put(TreeId::Deliveries, k, v);
                }
                if let Some((k, v)) = case_row {
                    pending.put(TreeId::Cases, k, v);
                }
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::Delivery(d) => {
                let value = encode(&d).map_err(|r| corrupt("deliveries", r))?;
                let key = delivery_key(&d);
                // A receipt naming the peer's log entry: ask for its
                // inclusion proof once the peer's checkpoints cover it.
                if let DeliveryState::Delivered { receipt, .. } = &d.state
                    && let Some((index, leaf)) = kurir_proto::receipt::receipt_unverified(receipt)
                        .and_then(|r| Some((r.log_index?, r.leaf_hash?)))
                {
                    let mut v = index.to_be_bytes().to_vec();
                    v.extend_from_slice(&leaf.0);
                    pending.put(TreeId::Unproven, key.clone(), v);
                }
                if d.state.is_final() {
                    pending.remove(TreeId::Meta, open_key(&d));
                } else {
                    pending.put(TreeId::Meta, open_key(&d), value.clone());
                }
                pending.put(TreeId::Deliveries, key, value);
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::Inbound(mut record, case, sign, body_key) => {
                let key = record.msg_id.as_bytes().to_vec();
                // One writer: what is not there now cannot appear before this
                // group is committed.
                if let Some(old) = self.read(pending, TreeId::Inbox, &key)? {
                    let old =
                        cbor::from_slice(&old).map_err(|e| corrupt("inbox", e.to_string()))?;
                    return Ok(OpResult::Accepted(Accepted::Duplicate(Box::new(old))));
                }
                let log_rows = self.log_rows(next, &mut audit);
                let (Some(index), Some(leaf)) =
                    (audit.first().map(|e| e.index), log_rows.leaves.first())
                else {
                    return Err(corrupt(
                        "log",
                        "a received message needs its audit entry".into(),
                    ));
                };
                record.receipt = sign(index, *leaf).map_err(|r| corrupt("inbox", r))?;
                let value = encode(&record).map_err(|r| corrupt("inbox", r))?;
                let case_row = case_row(case.as_ref()).map_err(|r| corrupt("cases", r))?;
                let mut order_key = record.received_at.0.to_be_bytes().to_vec();
                order_key.extend_from_slice(record.msg_id.as_bytes());
                pending.put(TreeId::Inbox, key.clone(), value);
                pending.put(TreeId::BodyKeys, key, body_key.to_vec());
                pending.put(TreeId::InboxOrder, order_key, vec![]);
                if let Some((k, v)) = case_row {
                    pending.put(TreeId::Cases, k, v);
                }
                pending.log(log_rows);
                Ok(OpResult::Accepted(Accepted::New(Box::new(record))))
            }
            Op::Case(case) => {
                let case_row = case_row(Some(&case)).map_err(|r| corrupt("cases", r))?;
                if let Some((k, v)) = case_row {
                    pending.put(TreeId::Cases, k, v);
                }
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::Refusal(r) => {
                let value = encode(&r).map_err(|reason| corrupt("refusals", reason))?;
                // Refusals in the same millisecond may share a digest (every
                // oversized parcel has the digest of nothing): a sequence
                // number keeps each one.
                let seq = t.db.generate_id().map_err(|e| self.sled_err(e))?;
                let mut key = r.at.0.to_be_bytes().to_vec();
                key.extend_from_slice(&r.envelope_digest);
                key.extend_from_slice(&seq.to_be_bytes());
                pending.put(TreeId::Refusals, key, value);
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::Roster(bytes, authority) => {
                pending.put(TreeId::Meta, roster_history_key(&bytes), bytes.clone());
                pending.put(TreeId::Meta, b"roster".to_vec(), bytes);
                pending.put(TreeId::Meta, b"authority".to_vec(), authority.into_bytes());
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::Audit => {
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::MarkRead(msg_id, mark) => {
                let key = msg_id.as_bytes().to_vec();
                let Some(old) = self.read(pending, TreeId::Inbox, &key)? else {
                    return Ok(OpResult::Read(None));
                };
                let mut record: InboxRecord =
                    cbor::from_slice(&old).map_err(|e| corrupt("inbox", e.to_string()))?;
                if record.read.is_some() {
                    return Ok(OpResult::Read(Some(record)));
                }
                record.read = Some(mark);
                let value = encode(&record).map_err(|r| corrupt("inbox", r))?;
                pending.put(TreeId::Inbox, key, value);
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Read(Some(record)))
            }
            Op::Erase(msg_id, inbox, erased) => {
                let key = msg_id.as_bytes().to_vec();
                let (tree, name) = if inbox {
                    (TreeId::Inbox, "inbox")
                } else {
                    (TreeId::Outbound, "outbound")
                };
                let Some(old) = self.read(pending, tree, &key)? else {
                    return Err(corrupt(name, format!("no message {msg_id} to erase")));
                };
                let value = if inbox {
                    erased_record::<InboxRecord>(&old, erased, |r| (&mut r.parcel, &mut r.erased))
                } else {
                    erased_record::<OutboundRecord>(&old, erased, |r| {
                        (&mut r.parcel, &mut r.erased)
                    })
                }
                .map_err(|e| corrupt(name, e))?;
                pending.put(tree, key.clone(), value);
                pending.remove(TreeId::BodyKeys, key);
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::Witnessed(peer, w) => {
                let value = encode(&w).map_err(|r| corrupt("witnessed", r))?;
                let key = peer.as_str().as_bytes().to_vec();
                pending.put(TreeId::Witnessed, key, value);
                pending.log(self.log_rows(next, &mut audit));
                Ok(OpResult::Done)
            }
            Op::AddCosignature(size, name, cosigned) => {
                let key = size.to_be_bytes();
                let Some(stored) = t.checkpoints.get(key).map_err(|e| self.sled_err(e))? else {
                    return Err(corrupt(
                        "checkpoints",
                        format!("no checkpoint of size {size}"),
                    ));
                };
                let mut note = SignedCheckpoint::parse(&stored)
                    .map_err(|e| corrupt("checkpoints", e.to_string()))?;
                let theirs = SignedCheckpoint::parse(&cosigned)
                    .map_err(|e| corrupt("checkpoints", e.to_string()))?;
                for sig in theirs.signatures().iter().filter(|s| s.name() == name) {
                    let already = note
                        .signatures()
                        .iter()
                        .any(|s| s.name() == sig.name() && s.key_id() == sig.key_id());
                    if !already {
                        note.add_signature(sig.clone())
                            .map_err(|e| corrupt("checkpoints", e.to_string()))?;
                    }
                }
                t.checkpoints
                    .insert(key, note.note().to_string().into_bytes())
                    .map_err(|e| self.sled_err(e))?;
                Ok(OpResult::Done)
            }
            Op::Checkpoint(origin, key) => {
                let size = self.range.size();
                let last = t
                    .checkpoints
                    .last()
                    .map_err(|e| self.sled_err(e))?
                    .and_then(|(k, _)| <[u8; 8]>::try_from(k.as_ref()).ok())
                    .map(u64::from_be_bytes);
                if size == 0 || last == Some(size) {
                    return Ok(OpResult::Checkpoint(None));
                }
                let checkpoint = Checkpoint::new(&origin, size, self.range.root())
                    .map_err(|e| corrupt("checkpoints", e.to_string()))?;
                let signed = SignedCheckpoint::sign(checkpoint, &origin, &key)
                    .map_err(|e| corrupt("checkpoints", e.to_string()))?;
                let note = signed.note().to_string().into_bytes();
                t.checkpoints
                    .insert(size.to_be_bytes(), note.clone())
                    .map_err(|e| self.sled_err(e))?;
                self.marker = Some(note.clone());
                Ok(OpResult::Checkpoint(Some(note)))
            }
            Op::Proofs(proofs) => {
                for (key, proof) in proofs {
                    pending.put(TreeId::ReceiptProofs, key.clone(), proof);
                    pending.remove(TreeId::Unproven, key);
                }
                Ok(OpResult::Done)
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
    use kurir_proto::audit::{Event, Record};
    use kurir_proto::checkpoint::NoteVerifier;

    const T0: Timestamp = Timestamp(1_795_874_050_000);

    fn id(n: u8) -> MessageId {
        MessageId::new_v7(T0.0 + u64::from(n), [n; 10])
    }

    fn peer(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
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

    fn received(n: u8) -> Entry {
        Entry::new(
            T0,
            Record::Received {
                msg_id: id(n),
                envelope_digest: Digest([n; 32]),
                peer: peer("RS.MUP"),
                case_id: None,
                kind: MessageKind::OperationalNotice,
            },
        )
    }

    /// An entry of `event`: the store numbers, links and keeps entries,
    /// whatever they record, so what this one records is made up.
    fn entry(event: Event) -> Entry {
        let (msg_id, to, digest) = (id(1), peer("ME.UP"), Digest([1; 32]));
        let record = match event {
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
            Event::Read => Record::Read {
                msg_id,
                officer: "0a1b".into(),
            },
            Event::BodyErased => Record::BodyErased {
                msg_id,
                policy: "test".into(),
            },
            other => panic!("no test entry of {other}"),
        };
        Entry::new(T0, record)
    }

    /// A "receipt" that records the index and leaf hash it was given.
    fn signer(tag: u8) -> ReceiptSigner {
        Box::new(move |index, leaf| {
            let mut r = vec![tag];
            r.extend_from_slice(&index.to_be_bytes());
            r.extend_from_slice(&leaf.0);
            Ok(r)
        })
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
            parcel: parcel(n),
            erased: None,
        };
        (record, deliveries)
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

    #[tokio::test]
    async fn everything_survives_a_reopen_with_its_audit_entries() {
        let dir = tempfile::tempdir().unwrap();
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
            assert_eq!(stored.receipt[..9], [9, 0, 0, 0, 0, 0, 0, 0, 2]);
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
        assert_eq!(stored.receipt[9..], log[2].leaf_hash().0);
    }

    #[tokio::test]
    async fn concurrent_duplicates_store_one_and_return_the_original() {
        let dir = tempfile::tempdir().unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        store
            .accept_inbound(inbox_record(1), None, received(1), signer(0))
            .await
            .unwrap();
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
    async fn checkpoints_sign_the_log_and_replay_finds_their_root() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[4; 32]);
        let origin = "kurir/RS.MUP".to_owned();
        {
            let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
            assert_eq!(
                store.checkpoint(origin.clone(), key.clone()).await.unwrap(),
                None
            );
            store
                .audit(vec![entry(Event::Started), entry(Event::Roster)])
                .await
                .unwrap();
            let note = store
                .checkpoint(origin.clone(), key.clone())
                .await
                .unwrap()
                .unwrap();
            let signed = SignedCheckpoint::parse(&note).unwrap();
            signed
                .verify(&NoteVerifier::ed25519(&origin, key.verifying_key()).unwrap())
                .unwrap();
            assert_eq!(signed.checkpoint().size(), 2);
            // Nothing new: no new checkpoint.
            assert_eq!(
                store.checkpoint(origin.clone(), key.clone()).await.unwrap(),
                None
            );
            store.audit(vec![entry(Event::Started)]).await.unwrap();
            store.close().unwrap();
        }
        let store = reopen(dir.path());
        let state = store.log_state();
        assert_eq!(state.size, 3);
        let (note, size, root) = state.last_checkpoint.clone().unwrap();
        assert_eq!(size, 2);
        assert_eq!(
            *SignedCheckpoint::parse(&note).unwrap().checkpoint().root(),
            root
        );
        assert_eq!(store.checkpoints().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_database_replaced_as_a_whole_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[4; 32]);
        {
            let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
            let e = || entry(Event::Started);
            store.audit(vec![e(), e(), e()]).await.unwrap();
            store
                .checkpoint("kurir/RS.MUP".into(), key)
                .await
                .unwrap()
                .unwrap();
            store.close().unwrap();
        }
        assert!(dir.path().join(MARKER).exists());
        // Everything in the database is gone; the marker beside it remains.
        std::fs::remove_file(dir.path().join("db")).unwrap();
        let err = Store::open(dir.path(), Durability::ProcessCrash)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 0 audit entries"), "{err}");
        assert!(err.contains("covers 3"), "{err}");
    }

    #[tokio::test]
    async fn a_gap_or_a_changed_entry_in_the_log_is_found_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
            let e = || entry(Event::Started);
            store.audit(vec![e(), e(), e()]).await.unwrap();
            store.close().unwrap();
        }
        {
            let db = retry(|| sled::open(dir.path()));
            db.open_tree("log")
                .unwrap()
                .remove(1u64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(dir.path(), Durability::ProcessCrash)
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 1 is missing"), "{err}");
    }

    #[tokio::test]
    async fn erasing_a_body_keeps_the_envelope_and_logs_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        store
            .accept_inbound(inbox_record(1), None, received(1), signer(0))
            .await
            .unwrap();
        let before = store.inbox(id(1)).unwrap().unwrap();
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
        // The old ciphertext cannot be opened any more, even if a copy survived.
        assert!(store.parcel(id(1), &before.parcel).unwrap().is_none());
    }

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
        let dir = tempfile::tempdir().unwrap();
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
        let dir = tempfile::tempdir().unwrap();
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
    async fn inclusion_and_consistency_proofs_hold_and_survive_lost_subtree_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        // 75 entries in groups of different sizes (concurrent appends).
        let mut appends = Vec::new();
        for i in 0..75u64 {
            let store = store.clone();
            appends.push(tokio::spawn(async move {
                store
                    .audit(vec![Entry {
                        at: Timestamp(T0.0 + i),
                        ..entry(Event::Started)
                    }])
                    .await
            }));
        }
        for a in appends {
            a.await.unwrap().unwrap();
        }
        let check = |store: &Store| {
            let leaves: Vec<Digest> = store
                .log_entries()
                .unwrap()
                .iter()
                .map(|e| kurir_proto::merkle::leaf_hash(e))
                .collect();
            assert_eq!(leaves.len(), 75);
            for size in [1, 16, 17, 33, 64, 75] {
                let root = kurir_proto::merkle::root(&leaves[..size as usize]);
                let all: Vec<u64> = (0..80).collect();
                let proofs = store.inclusion_proofs(&all, size).unwrap();
                assert_eq!(
                    proofs.len() as u64,
                    size,
                    "indexes beyond the size are left out"
                );
                for (index, proof) in proofs {
                    kurir_proto::merkle::verify_inclusion(
                        &leaves[index as usize],
                        index,
                        size,
                        &proof,
                        &root,
                    )
                    .unwrap();
                }
                // Consistency proofs from the same subtree hashes equal
                // those computed from every entry.
                for old in [1, 5, 16, 17, 32, 33, 63, 64, 75] {
                    if old <= size {
                        assert_eq!(
                            store.consistency_proof(old, size).unwrap(),
                            kurir_proto::merkle::consistency_proof(&leaves, old, size).unwrap(),
                            "{old} to {size}"
                        );
                    }
                }
            }
        };
        check(&store);
        // Subtrees of 16 and more are stored; smaller ones are not.
        let stored: Vec<u8> = store
            .trees
            .log_nodes
            .iter()
            .keys()
            .map(|k| k.unwrap()[0])
            .collect();
        assert!(stored.iter().all(|&level| level >= STORED_LEVEL));
        assert_eq!(
            stored.len(),
            4 + 2 + 1,
            "levels 4, 5 and 6 below 75 entries"
        );
        // A database whose subtree hashes are lost (or from before they were
        // kept) gets them rebuilt at open.
        store.trees.log_nodes.clear().unwrap();
        store.close().unwrap();
        drop(store);
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        assert_eq!(store.trees.log_nodes.len(), 7);
        check(&store);
        store.close().unwrap();
    }

    #[tokio::test]
    async fn a_closed_store_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        store.close().unwrap();
        assert!(matches!(
            store
                .accept_inbound(inbox_record(1), None, received(1), signer(0))
                .await,
            Err(StoreError::Closed)
        ));
    }

    /// Runs `ops` through one group commit of a writer on `store`'s
    /// (empty) database, as if they had all been queued at once. The
    /// store's own writer must not be used afterwards: close and reopen.
    fn one_group(store: &Store, ops: Vec<(Op, Vec<Entry>)>) -> Vec<Result<OpResult, StoreError>> {
        let mut writer = Writer {
            path: store.path.clone(),
            db_file: store.path.join("db"),
            durability: Durability::ProcessCrash,
            trees: store.trees.clone(),
            range: CompactRange::new(),
            last_leaf: None,
            marker: None,
            space: Arc::new(StatVfs),
            status: store.status.clone(),
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
        writer
            .apply_batch(jobs, None)
            .0
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// The at-rest form of a parcel whose body stays in the record.
    fn seal_at_rest(parcel: &[u8]) -> Result<(Vec<u8>, BodyKey), String> {
        let s = at_rest::seal(parcel)?;
        Ok((at_rest::inline(&s.envelope, &s.sealed), s.key))
    }

    fn sealed(mut record: InboxRecord) -> (InboxRecord, BodyKey) {
        let (stored, key) = seal_at_rest(&record.parcel).unwrap();
        record.parcel = stored;
        (record, key)
    }

    #[tokio::test]
    async fn one_group_commit_keeps_each_operations_own_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        let erased = Erased {
            at: T0,
            policy: "test".into(),
        };
        let note = |n| {
            Entry::new(
                T0,
                Record::Read {
                    msg_id: id(n),
                    officer: "0a1b".into(),
                },
            )
        };
        let (sent, deliveries) = outbound(1);
        let (sent_stored, sent_key) = seal_at_rest(&sent.parcel).unwrap();
        let sent = OutboundRecord {
            parcel: sent_stored,
            ..sent
        };
        let (two, two_key) = sealed(inbox_record(2));
        let (three, three_key) = sealed(inbox_record(3));
        let refuse: ReceiptSigner = Box::new(|_, _| Err("no signing key".into()));
        let results = one_group(
            &store,
            vec![
                (Op::Submit(sent, deliveries, None, sent_key), vec![note(1)]),
                // Nothing to erase: fails alone, and takes no log index.
                (Op::Erase(id(9), false, erased.clone()), vec![note(9)]),
                (
                    Op::Inbound(two.clone(), None, signer(1), two_key),
                    vec![received(2)],
                ),
                // The same message again in the same group: a duplicate of
                // the one above, with its receipt.
                (
                    Op::Inbound(two, None, signer(2), two_key),
                    vec![received(2)],
                ),
                (
                    Op::Inbound(three, None, refuse, three_key),
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
        assert_eq!(first.receipt[0], 1);
        assert_eq!(first.receipt[1..9], 1u64.to_be_bytes(), "names entry 1");
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
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[4; 32]);
        let origin = "kurir/RS.MUP".to_owned();
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        let results = one_group(
            &store,
            vec![
                (Op::Audit, vec![entry(Event::Started)]),
                (Op::Checkpoint(origin.clone(), key.clone()), vec![]),
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

    #[tokio::test]
    async fn a_head_is_the_record_with_only_the_envelope() {
        let dir = tempfile::tempdir().unwrap();
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
                parcel: at_rest::inline(&[1, 2, 3], &sealed),
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

    /// Message `n`'s parcel with a body of `size` bytes.
    fn large_parcel(n: u8, size: usize) -> Vec<u8> {
        let mut p = kurir_proto::Parcel::from_bytes(&parcel(n)).unwrap();
        p.body = (0..size).map(|i| (i % 251) as u8).collect();
        p.to_bytes()
    }

    fn body_files(dir: &Path) -> Vec<String> {
        let (files, other) = at_rest::list_files(&dir.join(at_rest::BODIES)).unwrap();
        assert!(other.is_empty(), "{other:?}");
        files
    }

    #[tokio::test]
    async fn a_large_body_is_kept_in_a_file_of_its_own_until_it_is_erased() {
        let dir = tempfile::tempdir().unwrap();
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
        let stored = store.trees.outbound.get(id(1).as_bytes()).unwrap().unwrap();
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
        let dir = tempfile::tempdir().unwrap();
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
        let dir = tempfile::tempdir().unwrap();
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

    #[tokio::test]
    async fn a_large_body_that_would_eat_into_the_reserve_is_refused_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
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

    #[tokio::test]
    async fn open_deliveries_come_from_their_index_which_older_stores_get_built() {
        let dir = tempfile::tempdir().unwrap();
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
        store.close().unwrap();
        drop(store);

        // A store from before the index: no index keys, no marker.
        {
            let db = open_sled(dir.path()).unwrap();
            let meta = db.open_tree("meta").unwrap();
            let keys: Vec<_> = meta
                .scan_prefix(OPEN_PREFIX)
                .map(|i| i.unwrap().0)
                .collect();
            assert_eq!(keys.len(), 5);
            for k in keys {
                meta.remove(k).unwrap();
            }
            meta.remove(OPEN_INDEXED).unwrap();
            db.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.open_deliveries().unwrap(), want, "built at open");
    }
}
