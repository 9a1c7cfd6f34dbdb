//! All of the relay's storage: every sled call in the relay is in this
//! module and the modules under it.
//!
//! # Durability
//!
//! Writes go through one writer thread that takes a batch of operations,
//! makes their writes durable **once** for the whole batch (group commit),
//! and only then answers each caller. Nothing is acknowledged before it is
//! on disk.
//!
//! A batch is made durable in the commit journal (`journal`), like a
//! database's write-ahead log: its writes are written as one record to the
//! file `journal` beside the database and that file alone is
//! `fdatasync`ed; then they are applied to sled, without a sled
//! transaction, and the callers are answered. A small group (one or two
//! operations, as one message in flight makes, with nothing queued behind
//! it) is answered as soon as its record is synced and applied to sled
//! right after: until it is, the reads of the trees it writes wait
//! (`shown`), so a caller never reads sled without what it was told is
//! stored. sled itself is flushed (`flush()`, a *full flush*) only
//! when the journal has grown past its limit, when a batch holds a
//! checkpoint or cosignature (written to sled outside the journal), after
//! the journal failed, and at close; each full flush empties the journal.
//! A group the journal cannot take goes to sled in one transaction, and
//! its batch takes a full flush. At open the journal's groups sled lacks
//! are applied again. This keeps sled's `flush_async` out of the picture too:
//! it hangs with several concurrent callers (sled issue 1308).
//!
//! On Linux, sled's `flush()` writes with `sync_file_range`, which does not
//! flush the device's write cache. With [`Durability::PowerLoss`] (the
//! default) the journal is `fdatasync`ed and a full flush is followed by an
//! `fsync` of the database file: a commit survives power loss.
//! [`Durability::ProcessCrash`] skips both: commits survive a crash of the
//! relay, but not of the machine.
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
//! # Layout
//!
//! - `mod.rs` (this file): the [`Store`] handle: opening it
//!   ([`Store::open_with`], with [`StoreOptions`] and [`Durability`]),
//!   handing an operation to the writer and waiting for it (bounded),
//!   [`Store::health`], [`Store::close`].
//! - `error`: [`StoreError`].
//! - `space`: free space ([`FreeSpace`], [`StatVfs`]), the reserve checked
//!   by the writer before each batch and before a body file is written.
//! - `trees`: opening sled (waiting for its lock), and the table of every
//!   tree and what it holds.
//! - `shown`: the read barrier: every read of sled by a [`Store`] method
//!   waits while a group answered before its apply writes a tree it reads.
//! - `keys`: the key encodings (big-endian). `records`: the stored record
//!   types ([`OutboundRecord`], [`InboxRecord`], [`RefusalRecord`],
//!   [`ReadMark`], [`Erased`], [`Accepted`]).
//! - `writer`: the group-commit writer: the run loop, refusing new work
//!   below the reserve and the dispatch of each operation to its function
//!   (`writer/mod.rs`); the group's pending writes, the commit, the
//!   journal sync or full flush, a small group kept to apply after its
//!   answers (`writer/commit.rs`).
//! - `journal`: the commit journal: its record format, the append and
//!   sync, and the replay at open; `rewind`: a closed store set back to
//!   what a crash right after the journal's first record leaves, for
//!   timing the worst replay ([`rewind_journal`]).
//! - One module per concern, each with the [`Store`] methods that read it
//!   and the writer's functions that change it: `log` (the audit log, its
//!   [`LogState`]), `replay` (the check of the log at open, from the
//!   Merkle frontier stored with the newest checkpoint, and the full check
//!   on demand, [`verify_log`]), `proofs` (inclusion and consistency
//!   proofs from the stored subtrees), `checkpoints` (checkpoints, the
//!   Merkle frontier stored with each, the `last-checkpoint.note` marker,
//!   cosignatures, peer checkpoints
//!   witnessed), `outbound` (sent messages and their deliveries),
//!   `receipts` (receipts held until their inclusion proof is stored),
//!   `inbox` (received messages, read marks, refusals), `cases`, `rosters`
//!   (and the authority), `bodies` (sealing, opening and erasing bodies;
//!   body files no record names).
//! - `at_rest`: the at-rest format of a parcel: its encryption and the
//!   body files.
//! - `format`: the store's format version ([`FORMAT_VERSION`]), recorded
//!   in `meta` and in the `store-format` file beside the database; a newer
//!   one refused at open before sled touches anything.
//! - `backup`: snapshots taken through the writer between two batches
//!   ([`Store::snapshot`], streamed to one file staged in [`STAGING`]),
//!   copied private ([`copy_snapshot`]); `stream`: the backup file's
//!   format ([`SNAPSHOT_FILE`], [`STREAM_VERSION`]), written and read a
//!   record at a time; `verify_backup`: the check of a backup from its
//!   file, streaming ([`verify_snapshot`]); `restore`: a store built from
//!   a checked backup beside the data directory, checked as `verify-log`
//!   does and put in its place ([`restore`]), refused while a relay holds
//!   it.
//! - `migrate`: the upgrades of older stores run at open, one step per
//!   format version.
//! - `private`: the data directory private to the relay's user (Unix): a
//!   process umask of 077, a new directory 0700, a directory or file that
//!   others may read refused at open.
//! - `tests/`: the unit tests, by concern.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

mod at_rest;
mod backup;
mod bodies;
mod cases;
mod checkpoints;
mod error;
mod format;
mod inbox;
mod journal;
mod keys;
mod log;
mod migrate;
mod outbound;
mod private;
mod proofs;
mod receipts;
mod records;
mod replay;
mod restore;
mod rewind;
mod rosters;
mod shown;
mod space;
mod stream;
mod trees;
mod verify_backup;
mod writer;

#[cfg(test)]
mod tests;

pub(crate) use at_rest::envelope_of;
pub use backup::{STAGING, SnapshotCheck, SnapshotInfo, copy_snapshot, ensure_empty};
pub use error::StoreError;
pub use format::FORMAT_VERSION;
pub use inbox::ReceiptDraft;
pub use log::LogState;
pub use outbound::ToSign;
pub use records::{Accepted, Erased, InboxRecord, OutboundRecord, ReadMark, RefusalRecord};
pub use replay::{LogReport, verify_log};
pub use restore::{RestoreError, RestoreReport, restore};
pub use rewind::{Rewound, rewind_journal};
pub use rosters::{ROSTER_COPY, roster_copy};
pub use space::{DEFAULT_MIN_FREE_MB, FreeSpace, StatVfs};
pub use stream::{SNAPSHOT_FILE, STREAM_VERSION};
pub use verify_backup::verify_snapshot;

pub use crate::core::proofs::Unproven;

use space::MIB;
use trees::Trees;
use writer::{Job, Op, OpResult, Writer};

/// How far a commit must get before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// The journal `fdatasync`ed (a full flush: sled `flush()`, then `fsync`
    /// of the database file): survives power loss.
    #[default]
    PowerLoss,
    /// The journal written (a full flush: sled `flush()` only): survives a
    /// crash of the relay process.
    ProcessCrash,
}

/// The default bound on a commit, `[storage] flush_timeout_secs`.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

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

/// What [`Store::commit_counts`] counts since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitCounts {
    /// Group commits (each one journal record and `fdatasync`, or one
    /// transaction with a full flush).
    pub commits: u64,
    /// The sled rows they wrote: inserts and removals, audit entries and
    /// subtree hashes, and each group's number.
    pub rows: u64,
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
    /// The writer is taking a snapshot (`kurir-relay backup`): commits
    /// queued behind it wait for it without their bound, since the pause
    /// is the backup's, not a disk that stopped answering.
    snapshotting: AtomicBool,
    /// Snapshots the writer has finished (so a wait that a snapshot took
    /// part of is given another period too).
    snapshots_done: AtomicU64,
    /// Tests: how long the writer waits at the start of a snapshot, to
    /// stand for the snapshot of a large store.
    #[cfg(test)]
    snapshot_pause_ms: AtomicU64,
    /// Bytes of body files being written now (see [`Store::room_for`]).
    writing: AtomicU64,
    /// Groups the writer has begun to apply (counted before their writes
    /// reach sled, where readers see them at once).
    applied: AtomicU64,
    /// Group commits made (journaled or in a transaction), and the sled
    /// writes (inserts and removals, each a row) they made, group numbers
    /// included: [`Store::commit_counts`].
    commits: AtomicU64,
    rows: AtomicU64,
    /// The newest group counted in `applied` whose writes, and every
    /// group's before it, are on disk (see [`Store::reads_durable`]).
    durable: tokio::sync::watch::Sender<u64>,
    /// Tests: while set, the writer holds each flush, keeping a group
    /// applied but not yet on disk.
    #[cfg(test)]
    hold_flush: AtomicBool,
    /// Tests: operations handed to the writer so far.
    #[cfg(test)]
    sent: AtomicU64,
    /// Tests: when not zero, the commit journal's limit in bytes.
    #[cfg(test)]
    journal_limit: AtomicU64,
    /// Tests: while set, sled "fails" after a group's journal record is
    /// synced and its first write applied.
    #[cfg(test)]
    fail_apply: AtomicBool,
    /// The trees (a mask of `TreeId::bit`) that a group answered before
    /// its apply writes, until the apply is done: reads of them wait (see
    /// `shown`).
    unshown: Mutex<u32>,
    /// Signalled when `unshown` is cleared.
    shown_cv: Condvar,
    /// Tests: while set, the writer holds the apply of a group it has
    /// answered, keeping its trees unshown.
    #[cfg(test)]
    hold_apply: AtomicBool,
    /// Tests: reads that found a tree unshown and waited.
    #[cfg(test)]
    unshown_waits: AtomicU64,
    epoch: Instant,
}

impl Status {
    fn since_epoch_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
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
    /// sled's trees: read only through [`Store::tree`] and
    /// [`Store::trees_of`], which wait for a group answered before its
    /// apply (see `shown`).
    sled_trees: Arc<Trees>,
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

impl Store {
    /// Opens (or creates) the database in `dir`, with the default reserve
    /// and bound ([`StoreOptions::new`]).
    pub fn open(dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        Self::open_with(dir, StoreOptions::new(durability))
    }

    /// Opens (or creates) the database in `dir` with `options`: makes what
    /// the process creates from now on private and refuses a data
    /// directory others may read (Unix, see `private`), waits for sled's
    /// lock (bounded), refuses a store of a newer format than
    /// [`FORMAT_VERSION`] (changing nothing in it), checks the audit log
    /// (the entries after the newest checkpoint, from its Merkle frontier:
    /// see `replay`),
    /// records the format of a new store or upgrades an older one, starts
    /// the writer and removes the body files no record names.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        private::prepare(dir)?;
        let durability = options.durability;
        let sled_err = |source| StoreError::Sled {
            path: dir.to_owned(),
            source,
        };
        // Before sled opens anything: a newer format is refused untouched.
        format::check_file(dir)?;
        let db = trees::open_sled(dir).map_err(sled_err)?;
        let format = format::check_format(dir, &db)?;
        let trees = Arc::new(Trees::open(db).map_err(sled_err)?);
        let (journal, _) = journal::open(dir, &trees, durability)?;
        let (range, last_leaf, log_state) = replay::open_log(dir, &trees)?;
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Status {
            min_free: AtomicU64::new(options.min_free_bytes),
            low_free: AtomicU64::new(u64::MAX),
            flush_started: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            snapshotting: AtomicBool::new(false),
            snapshots_done: AtomicU64::new(0),
            #[cfg(test)]
            snapshot_pause_ms: AtomicU64::new(0),
            writing: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            durable: tokio::sync::watch::Sender::new(0),
            #[cfg(test)]
            hold_flush: AtomicBool::new(false),
            #[cfg(test)]
            sent: AtomicU64::new(0),
            #[cfg(test)]
            journal_limit: AtomicU64::new(0),
            #[cfg(test)]
            fail_apply: AtomicBool::new(false),
            unshown: Mutex::new(0),
            shown_cv: Condvar::new(),
            #[cfg(test)]
            hold_apply: AtomicBool::new(false),
            #[cfg(test)]
            unshown_waits: AtomicU64::new(0),
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
            journal,
            full_flush: false,
            broken: None,
            deferred: None,
        };
        migrate::upgrade(dir, &trees, format, || writer.sync())?;
        let thread = thread::Builder::new()
            .name("kurir-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Sync {
                path: dir.to_owned(),
                source,
            })?;
        let bodies = dir.join(at_rest::BODIES);
        bodies::remove_orphan_bodies(dir, &bodies, &trees)?;
        // A snapshot left staged by a relay that stopped during a backup.
        backup::remove_staging(dir);
        Ok(Store {
            path: dir.to_owned(),
            bodies,
            durability,
            space: options.space,
            sled_trees: trees,
            writer: Arc::new(Mutex::new(Some(tx))),
            thread: Arc::new(Mutex::new(Some(thread))),
            log_state,
            status,
            flush_timeout: options.flush_timeout,
        })
    }

    /// The group commits made since the store was opened, and the sled
    /// rows (inserts and removals) they wrote: what each message costs the
    /// database (docs/PERFORMANCE.md, "Fewer rows per message"); the
    /// metrics `kurir_store_commits` and `kurir_store_rows`.
    pub fn commit_counts(&self) -> CommitCounts {
        CommitCounts {
            commits: self.status.commits.load(Ordering::Relaxed),
            rows: self.status.rows.load(Ordering::Relaxed),
        }
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

    /// Hands an operation and its audit entries to the writer and waits, at
    /// most [`StoreOptions::flush_timeout`], for its result: it comes once
    /// the batch that holds it is on disk.
    ///
    /// While the writer takes a snapshot the bound starts again after each
    /// period: a backup of a large store holds the writer for longer than a
    /// commit may take (about 15 s per million messages), and the commits
    /// waiting behind it are not stuck on the disk.
    async fn submit_op(&self, op: Op, audit: Vec<Entry>) -> Result<OpResult, StoreError> {
        let mut wait = self.send_op(op, audit)?;
        let s = &*self.status;
        loop {
            let done_before = s.snapshots_done.load(Ordering::SeqCst);
            match tokio::time::timeout(self.flush_timeout, &mut wait).await {
                Ok(answer) => return answer.map_err(|_| StoreError::Closed)?,
                Err(_)
                    if s.snapshotting.load(Ordering::SeqCst)
                        || s.snapshots_done.load(Ordering::SeqCst) != done_before => {}
                Err(_) => {
                    self.status.stalled.store(true, Ordering::SeqCst);
                    return Err(self.not_responding());
                }
            }
        }
    }

    /// Waits until everything a read made before this call could have seen
    /// is on disk. sled shows a group's writes to readers as soon as the
    /// writer applies them, before its flush; an answer built from such a
    /// read (a `status` saying `delivered`) must wait for this before it
    /// goes out, or it would acknowledge what a crash could still undo.
    /// Returns at once when no group is between its apply and its flush.
    pub async fn reads_durable(&self) -> Result<(), StoreError> {
        let s = &*self.status;
        let target = s.applied.load(Ordering::SeqCst);
        let mut durable = s.durable.subscribe();
        if *durable.borrow() >= target {
            return Ok(());
        }
        match tokio::time::timeout(self.flush_timeout, durable.wait_for(|d| *d >= target)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => Err(self.not_responding()),
        }
    }

    /// Hands `op` to the writer; where its answer comes.
    fn send_op(
        &self,
        op: Op,
        audit: Vec<Entry>,
    ) -> Result<oneshot::Receiver<Result<OpResult, StoreError>>, StoreError> {
        let (done, wait) = oneshot::channel();
        let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
        let tx = guard.as_ref().ok_or(StoreError::Closed)?;
        tx.send(Job { op, audit, done })
            .map_err(|_| StoreError::Closed)?;
        #[cfg(test)]
        self.status.sent.fetch_add(1, Ordering::SeqCst);
        Ok(wait)
    }

    /// Hands `op` to the writer and waits for it without the bound of a
    /// commit: a snapshot of a large store takes longer than a commit may.
    async fn submit_unbounded(&self, op: Op) -> Result<OpResult, StoreError> {
        self.send_op(op, vec![])?
            .await
            .map_err(|_| StoreError::Closed)?
    }

    fn not_responding(&self) -> StoreError {
        StoreError::NotResponding {
            path: self.path.clone(),
            secs: self.flush_timeout.as_secs(),
        }
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

    /// The record under `key` in `tree` (named `name` in errors), decoded.
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

    /// The records under keys starting with `prefix` in `tree`, decoded.
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
