//! The upgrades of older stores, run at open, one step per format
//! version (`format` says how a store's format is recorded and read).
//!
//! A store of an older format than [`FORMAT_VERSION`] is upgraded one
//! step at a time ([`UPGRADES`]), the new version recorded (and flushed
//! through the writer) after each step, and `store upgraded from format …
//! to format …` logged at info, once.
//!
//! To change the store's format: add a function `upgrade_N_to_N1` that
//! takes a store of the current format to the next, append it to
//! [`UPGRADES`], bump [`FORMAT_VERSION`] (the array's length is
//! [`FORMAT_VERSION`], so one without the other does not compile), and
//! write a fixture of the format you leave first (`relay/tests/fixtures/`,
//! whose README says how).
//!
//! Each upgrade must cost nothing on a store that has it already: one
//! interrupted before its new version was recorded runs again at the next
//! open.
//!
//! # The upgrades
//!
//! - [`upgrade_0_to_1`]: [`index_open_deliveries`]: stores written before
//!   the copies of open deliveries were kept in `meta` (under `open/`,
//!   with the marker `open-indexed`) get them built, in one scan of
//!   `deliveries`.
//! - [`upgrade_1_to_2`]: nothing to change (the commit journal starts
//!   empty); the new version keeps relays of format 1, which do not read
//!   the journal, from opening the store.
//! - [`upgrade_2_to_3`]: fewer rows per message. The open deliveries'
//!   rows leave `deliveries` (they stay under `open/`, which now holds
//!   them alone), and `inbox_order` is emptied (the inbox is sorted when
//!   listed). The records' body keys stay in `body_keys`, where format 3
//!   still looks for the key of a record that does not hold its own
//!   (`at_rest`): rewriting every record would cost the upgrade a pass
//!   over every body, for no reader that needs it.
//! - [`upgrade_3_to_4`]: nothing to change. From format 4 the audit
//!   entries of a group commit share `log` rows (runs, see `log`), which
//!   an older relay would take for damage; the rows of one entry that
//!   older formats wrote are read as they are.
//!
//! And at every open, whatever the format: [`LogNodesRebuild`]: stores
//! written before `log_nodes` existed (or whose subtree hashes were lost)
//! get them rebuilt from the entries, while the log is checked at open
//! ([`open_log`](super::replay::open_log)); a store whose hashes are
//! missing before its newest checkpoint gets the full replay for it.
//! Likewise, a store whose newest checkpoint has no Merkle frontier stored
//! with it (written before frontiers were kept, or by an older binary)
//! gets the full replay once, and the frontier stored: that needs no new
//! format, as either binary opens a store the other wrote.

use std::path::Path;

use kurir_proto::Digest;
use kurir_proto::cbor;
use kurir_proto::merkle::CompactRange;

use super::StoreError;
use super::format::{FORMAT_VERSION, Found, record};
use super::keys::{OPEN_INDEXED, OPEN_PREFIX, node_index, node_key, open_key};
use super::proofs::STORED_LEVEL;
use super::trees::Trees;
use crate::core::delivery::Delivery;

/// An upgrade of a store from one format to the next.
type Upgrade = fn(&Path, &Trees) -> Result<(), StoreError>;

/// The upgrades, in order: `UPGRADES[n]` takes a store of format `n` to
/// format `n + 1`.
const UPGRADES: [Upgrade; FORMAT_VERSION as usize] = [
    upgrade_0_to_1,
    upgrade_1_to_2,
    upgrade_2_to_3,
    upgrade_3_to_4,
];

/// Brings a store of the format `found` to [`FORMAT_VERSION`]: records it
/// in a new store; runs each upgrade of an older one, recording each new
/// version (made durable with `sync`, the writer's flush) after its step,
/// and logs the upgrade once.
pub(super) fn upgrade(
    dir: &Path,
    trees: &Trees,
    found: Found,
    sync: impl Fn() -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let from = match found {
        Found::New => {
            record(dir, trees, FORMAT_VERSION, sync)?;
            tracing::debug!(data_dir = %dir.display(), format = FORMAT_VERSION, "new store");
            return Ok(());
        }
        Found::Format(n) if n >= FORMAT_VERSION => return Ok(()),
        Found::Format(n) => n,
    };
    for (version, step) in (from..FORMAT_VERSION).zip(&UPGRADES[from as usize..]) {
        step(dir, trees)?;
        record(dir, trees, version + 1, &sync)?;
    }
    tracing::info!(
        data_dir = %dir.display(),
        from,
        to = FORMAT_VERSION,
        "store upgraded from format {from}{} to format {FORMAT_VERSION}",
        if from == 0 { " (unversioned)" } else { "" }
    );
    Ok(())
}

/// Format 0 (no recorded version) to 1: the index of open deliveries.
fn upgrade_0_to_1(dir: &Path, trees: &Trees) -> Result<(), StoreError> {
    index_open_deliveries(dir, trees)
}

/// Format 1 to 2: commits are made durable in the journal beside the
/// database (`journal`), which a relay of format 1 would not read. There
/// is nothing to change: a store of format 1 has no journal, and the new
/// version only keeps older relays from opening a store whose newest
/// commits may be in the journal alone.
fn upgrade_1_to_2(_dir: &Path, _trees: &Trees) -> Result<(), StoreError> {
    Ok(())
}

/// Format 2 to 3: each message writes fewer rows (docs/PERFORMANCE.md,
/// "Fewer rows per message"): an open delivery is kept under `open/` alone,
/// so its row in `deliveries` goes; the inbox's order is no longer kept,
/// so `inbox_order` is emptied. One pass over the open deliveries and the
/// order index, not over every message (emptying the index took 1.2 s for
/// 200,000 entries and 11.6 s for 1,000,000 on the development machine;
/// sled's `drop_tree` would be faster, but the store holds the tree open);
/// run again after an interruption, it finds nothing left to do.
fn upgrade_2_to_3(dir: &Path, trees: &Trees) -> Result<(), StoreError> {
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    let (mut moved, mut stale) = (sled::Batch::default(), sled::Batch::default());
    for item in trees.meta.scan_prefix(OPEN_PREFIX) {
        let (key, _) = item.map_err(sled_err)?;
        let Some(delivery_key) = key.get(OPEN_PREFIX.len()..) else {
            continue;
        };
        // Its row in `deliveries` is the same state (format 2 wrote both
        // in one commit) and goes. Should it be final, the final state is
        // the one kept (as `Store::deliveries_of` reads it), and the open
        // one goes instead.
        if let Some(row) = trees.deliveries.get(delivery_key).map_err(sled_err)? {
            let d: Delivery = cbor::from_slice(&row).map_err(|e| StoreError::Corrupt {
                path: dir.to_owned(),
                tree: "deliveries",
                reason: e.to_string(),
            })?;
            if d.state.is_final() {
                stale.remove(key);
            } else {
                moved.remove(delivery_key);
            }
        }
    }
    trees.deliveries.apply_batch(moved).map_err(sled_err)?;
    trees.meta.apply_batch(stale).map_err(sled_err)?;
    trees.inbox_order.clear().map_err(sled_err)
}

/// Format 3 to 4: nothing to change (the entries of older formats are
/// rows of one entry, which format 4 reads as they are); the new version
/// keeps relays of format 3, which cannot read a run of entries in one
/// `log` row, from opening the store.
fn upgrade_3_to_4(_dir: &Path, _trees: &Trees) -> Result<(), StoreError> {
    Ok(())
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
    trees.meta.apply_batch(batch).map_err(sled_err)
}

/// The subtree hashes of `log_nodes` missing after the newest one stored,
/// gathered while the log is replayed. Subtree nodes are written with the
/// entries; a database from before they were kept has them rebuilt (for
/// leaves from `from` on: the nodes of a leaf are all written in the same
/// transaction).
pub(super) struct LogNodesRebuild {
    /// The first entry whose nodes may be missing.
    from: u64,
    nodes: sled::Batch,
}

impl LogNodesRebuild {
    /// Finds where the stored subtree hashes end.
    pub(super) fn start(trees: &Trees) -> Result<LogNodesRebuild, sled::Error> {
        let from = match trees.log_nodes.scan_prefix([STORED_LEVEL]).next_back() {
            Some(item) => {
                let (key, _) = item?;
                node_index(&key).map_or(0, |i| (i + 1) << STORED_LEVEL)
            }
            None => 0,
        };
        Ok(LogNodesRebuild {
            from,
            nodes: sled::Batch::default(),
        })
    }

    /// The first entry whose subtree hashes may be missing.
    pub(super) fn from(&self) -> u64 {
        self.from
    }

    /// Appends the leaf of entry `index` to `range`, keeping the subtree
    /// hashes it completes if they may be missing.
    pub(super) fn append(&mut self, range: &mut CompactRange, index: u64, leaf: Digest) {
        if index >= self.from {
            let nodes = &mut self.nodes;
            range.append_with(leaf, |level, i, hash| {
                if level >= STORED_LEVEL {
                    nodes.insert(&node_key(level, i)[..], &hash.0[..]);
                }
            });
        } else {
            range.append(leaf);
        }
    }

    /// Writes the rebuilt subtree hashes.
    pub(super) fn finish(self, trees: &Trees) -> Result<(), sled::Error> {
        trees.log_nodes.apply_batch(self.nodes)
    }
}
