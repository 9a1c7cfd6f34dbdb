//! The audit log: entries numbered, linked (`prev`) and appended in the
//! transaction of the event they record; the Merkle compact range the
//! writer keeps; and the replay of the whole log at open ([`replay_log`]),
//! which checks it and finds what [`LogState`] reports.

use std::path::Path;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::checkpoint::SignedCheckpoint;
use kurir_proto::merkle::CompactRange;

use super::checkpoints::{check_marker, read_marker};
use super::keys::{Row, log_key, node_key};
use super::migrate::LogNodesRebuild;
use super::proofs::STORED_LEVEL;
use super::trees::Trees;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError};

/// What the store found in its audit log when it opened.
#[derive(Debug, Clone)]
pub struct LogState {
    /// Entries in the log.
    pub size: u64,
    /// The newest stored checkpoint (signed note bytes), its size and the
    /// root the log has at that size.
    pub last_checkpoint: Option<(Vec<u8>, u64, Digest)>,
}

/// Audit rows to insert and the leaf hashes to append once committed.
#[derive(Default)]
pub(super) struct LogRows {
    pub(super) rows: Vec<Row>,
    pub(super) leaves: Vec<Digest>,
}

impl Store {
    /// What the audit log held when the store opened.
    pub fn log_state(&self) -> &LogState {
        &self.log_state
    }

    /// Appends audit entries on their own (events with no other record).
    pub async fn audit(&self, entries: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Audit, entries).await.map(drop)
    }

    /// Every audit entry, in order (the raw CBOR of each).
    pub fn log_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.trees
            .log
            .iter()
            .map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| self.sled(e)))
            .collect()
    }
}

impl Writer {
    /// [`Op::Audit`]: only the audit entries.
    pub(super) fn audit(
        &self,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        self.append(audit, pending);
        Ok(OpResult::Done)
    }

    /// Numbers `audit` after the entries of the group so far and adds them
    /// to the group's writes.
    pub(super) fn append(&self, audit: &mut [Entry], pending: &mut Pending) {
        let rows = self.log_rows(pending.log_tail(), audit);
        pending.log(rows);
    }

    /// Numbers the entries from the log's current size plus the entries of
    /// the group not committed yet (`pending`: how many, and the newest's
    /// leaf hash), links each to the one before it (`prev`) and encodes them.
    pub(super) fn log_rows(
        &self,
        pending: (usize, Option<Digest>),
        entries: &mut [Entry],
    ) -> LogRows {
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
    pub(super) fn grown(&self, leaves: &[Digest]) -> (CompactRange, Vec<([u8; 9], Digest)>) {
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
}

/// Reads the whole log at start: checks that it is contiguous, well-formed
/// and chained, rebuilds the compact range, and finds the root at the size
/// of the newest checkpoint. Returns the range, the newest leaf hash and
/// what was found.
pub(super) fn replay_log(
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
    let marker = read_marker(dir)?;
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
    let mut nodes = LogNodesRebuild::start(trees).map_err(sled_err)?;
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
        nodes.append(&mut range, index, leaf);
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
    nodes.finish(trees).map_err(sled_err)?;
    if let Some(marker) = marker {
        check_marker(dir, marker, marker_root, range.size())?;
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
