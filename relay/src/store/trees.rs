//! Opening sled and its trees: every tree the store keeps, and what it
//! holds.
//!
//! # Trees (keys are big-endian, so sled's byte order is time order)
//!
//! | tree | key | value |
//! |------|-----|-------|
//! | `outbound` | message id (16) | [`OutboundRecord`], its parcel at rest |
//! | `deliveries` | message id (16) ‖ recipient id | [`Delivery`], once final (until format 2, every state) |
//! | `inbox` | message id (16) | [`InboxRecord`], its parcel at rest |
//! | `inbox_order` | received_at (8) ‖ message id (16) | empty: written until format 2, emptied by the upgrade to format 3 |
//! | `refusals` | refused_at (8) ‖ envelope digest (32) ‖ sequence (8) | [`RefusalRecord`] |
//! | `cases` | case id (text) | [`Case`]: state, deadlines, thread, events |
//! | `log` | index (8) of the row's first entry | the audit [`Entry`], as encoded (the Merkle leaf); from format 4, or a run of the entries of one group commit (a CBOR array of their encodings, see `log`) |
//! | `log_nodes` | level (1) ‖ index (8) | root of the perfect subtree of 2^level audit entries from index · 2^level, for levels ≥ 4 |
//! | `checkpoints` | size (8) | the signed checkpoint of the log at that size (a signed note), with the cosignatures added since |
//! | `frontiers` | size (8) | the Merkle frontier (compact range) of the log at the size of the checkpoint with that key: the roots of its perfect subtrees, left to right, 32 bytes each; written in the same transaction as the checkpoint |
//! | `witnessed` | peer authority id (text) | [`Witnessed`]: the last checkpoint of that peer this relay cosigned |
//! | `body_keys` | message id (16) | the 32-byte key of that message's body at rest, for records of format 2 and older (format 3 keeps it in the record's parcel, see `at_rest`) |
//! | `meta` | `roster` | the last accepted roster file, byte for byte |
//! | `meta` | `rosters/` ‖ SHA-256 hex | every accepted roster file, byte for byte |
//! | `meta` | `authority` | the authority this store belongs to (text) |
//! | `meta` | `open/` ‖ message id (16) ‖ recipient id | each [`Delivery`] not final, removed when it is final (and written to `deliveries`); until format 2, a copy of its row in `deliveries` |
//! | `meta` | `open-indexed` | empty: set once the deliveries under `open/` exist |
//! | `meta` | `format_version` | the store's format (u32, big-endian), see `migrate` |
//! | `meta` | `format_written_by` | the kurir-relay version that wrote that format (text) |
//! | `meta` | `journal_seq` | the number of the newest group commit sled holds whole (u64, big-endian), written last in each group (see `journal`) |
//! | `meta` | `journal_id` | 16 random bytes made at the first open with the commit journal; every journal record carries them (see `journal`) |
//! | `unproven` | message id (16) ‖ recipient id | log index (8) ‖ leaf hash (32) the recipient's receipt names, until its inclusion proof is stored |
//! | `receipt_proofs` | message id (16) ‖ recipient id | [`InclusionProof`] of that entry in a checkpoint the recipient signed |
//!
//! Values are deterministic CBOR (`kurir_proto::cbor`); the key encodings
//! are in `keys`.
//!
//! `log_nodes` is derived from `log` and written in the same transaction;
//! it lets the relay prove any entry's inclusion in O(log² n) reads
//! (subtrees below 16 entries are hashed from the entries themselves, which
//! keeps the writes to about one node per eight entries). A database from
//! before it existed gets it rebuilt at open (`migrate`).
//!
//! [`OutboundRecord`]: super::OutboundRecord
//! [`InboxRecord`]: super::InboxRecord
//! [`RefusalRecord`]: super::RefusalRecord
//! [`Delivery`]: crate::core::delivery::Delivery
//! [`Case`]: crate::core::deadline::Case
//! [`Entry`]: kurir_proto::audit::Entry
//! [`Witnessed`]: crate::core::witness::Witnessed
//! [`InclusionProof`]: kurir_proto::audit::InclusionProof

use std::path::Path;
use std::time::{Duration, Instant};

/// The database and its trees.
pub(super) struct Trees {
    pub(super) db: sled::Db,
    pub(super) outbound: sled::Tree,
    pub(super) deliveries: sled::Tree,
    pub(super) inbox: sled::Tree,
    pub(super) inbox_order: sled::Tree,
    pub(super) refusals: sled::Tree,
    pub(super) cases: sled::Tree,
    pub(super) log: sled::Tree,
    pub(super) checkpoints: sled::Tree,
    pub(super) frontiers: sled::Tree,
    pub(super) witnessed: sled::Tree,
    pub(super) body_keys: sled::Tree,
    pub(super) meta: sled::Tree,
    pub(super) log_nodes: sled::Tree,
    pub(super) unproven: sled::Tree,
    pub(super) receipt_proofs: sled::Tree,
}

/// The trees a group commit writes, as indices into [`Trees::all`]
/// (`checkpoints` and `frontiers` are written by the writer on their own,
/// after a commit). The numbers are the journal's (a write names its tree
/// by them, see `journal`): a journal left by an older relay is replayed
/// with them, so they never change, and a tree no longer written keeps
/// its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TreeId {
    Outbound = 0,
    Deliveries = 1,
    Inbox = 2,
    /// Written by stores of format 2 and older (the inbox's order, now
    /// sorted when listed); emptied by the upgrade to format 3.
    #[expect(dead_code, reason = "the number of a tree only older journals write")]
    InboxOrder = 3,
    Refusals = 4,
    Cases = 5,
    Log = 6,
    Witnessed = 7,
    /// Body keys of records of format 2 and older (format 3 keeps the key
    /// in the record): read, and removed on erasure, never written.
    BodyKeys = 8,
    Meta = 9,
    Unproven = 10,
    ReceiptProofs = 11,
    LogNodes = 12,
}

impl TreeId {
    /// The tree's bit in a mask of trees (the read barrier's, see `shown`).
    pub(super) fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl Trees {
    /// Opens (or creates) every tree of the database `db` (opened with
    /// [`open_sled`]).
    pub(super) fn open(db: sled::Db) -> Result<Trees, sled::Error> {
        Ok(Trees {
            outbound: db.open_tree("outbound")?,
            deliveries: db.open_tree("deliveries")?,
            inbox: db.open_tree("inbox")?,
            inbox_order: db.open_tree("inbox_order")?,
            refusals: db.open_tree("refusals")?,
            cases: db.open_tree("cases")?,
            log: db.open_tree("log")?,
            checkpoints: db.open_tree("checkpoints")?,
            frontiers: db.open_tree("frontiers")?,
            witnessed: db.open_tree("witnessed")?,
            body_keys: db.open_tree("body_keys")?,
            meta: db.open_tree("meta")?,
            log_nodes: db.open_tree("log_nodes")?,
            unproven: db.open_tree("unproven")?,
            receipt_proofs: db.open_tree("receipt_proofs")?,
            db,
        })
    }

    /// The trees in [`TreeId`] order.
    pub(super) fn all(&self) -> [&sled::Tree; 13] {
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

/// How long [`Store::open`](super::Store::open) waits for a database lock
/// to be released.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// sled's page cache (sled's default is 1 GiB). The relay reads back mostly
/// what it wrote last (open deliveries, recent records), and a large cache
/// mostly holds pages of what was just written: `kurir-bench --mode queue`
/// measures the relay's RSS with 100,000 messages queued. 48 MiB (64
/// before jemalloc became the allocator) keeps that RSS under its target
/// with jemalloc, at the same rate (docs/PERFORMANCE.md, "jemalloc by
/// default").
const CACHE_BYTES: u64 = 48 * 1024 * 1024;

/// Opens the sled database. sled releases its file lock from a background
/// thread a moment after the last handle is dropped, so a store reopened in
/// the same process right after a close (a relay restarted in place, an
/// export after a stop) may find it still held: wait for it, bounded. A
/// lock held by another process (a running relay) is still an error.
///
/// Every open makes the process's files private first (`private`): sled
/// writes snapshot files of its own when it opens a long log, and one
/// created under an operator's `umask 022` (by `verify-log`, an offline
/// backup, an export) would make the relay refuse its data directory.
pub(super) fn open_sled(dir: &Path) -> Result<sled::Db, sled::Error> {
    #[cfg(unix)]
    super::private::restrict_umask();
    let started = Instant::now();
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
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}
