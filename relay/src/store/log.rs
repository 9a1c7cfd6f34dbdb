//! The audit log: entries numbered, linked (`prev`) and appended in the
//! transaction of the event they record; the Merkle compact range the
//! writer keeps. What the check at open ([`open_log`](super::replay::open_log))
//! found is [`LogState`].

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::merkle::CompactRange;

use super::keys::{Row, log_key, node_key};
use super::proofs::STORED_LEVEL;
use super::trees::TreeId;
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
        self.tree(TreeId::Log)?
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
