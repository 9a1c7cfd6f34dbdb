//! Inclusion and consistency proofs of this relay's log (RFC 9162), from
//! the perfect-subtree hashes kept in `log_nodes` and, for subtrees below
//! [`STORED_LEVEL`], from the entries: O(log² n) reads, never the whole log.
//! One request reads each subtree hash once ([`Subtrees`]): the proofs of
//! entries near each other share most of theirs.

use std::collections::HashMap;
use std::path::Path;

use kurir_proto::Digest;

use super::keys::node_key;
use super::log::entries_from;
use super::trees::{TreeId, Trees};
use super::{Store, StoreError};

/// The lowest level of perfect subtree kept in `log_nodes` (16 entries);
/// smaller subtrees are hashed from the entries when a proof needs them.
pub(super) const STORED_LEVEL: u8 = 4;

/// Reading a subtree hash for a proof failed.
pub(super) enum SubtreeError {
    Store(StoreError),
    Proof(kurir_proto::ProofError),
}

impl From<kurir_proto::ProofError> for SubtreeError {
    fn from(e: kurir_proto::ProofError) -> SubtreeError {
        SubtreeError::Proof(e)
    }
}

impl Store {
    /// RFC 9162 inclusion proofs of the entries `indexes` in this relay's
    /// log at `size`, from the stored subtree hashes; indexes not below
    /// `size` are left out.
    pub fn inclusion_proofs(
        &self,
        indexes: &[u64],
        size: u64,
    ) -> Result<Vec<(u64, Vec<Digest>)>, StoreError> {
        let mut out = Vec::with_capacity(indexes.len());
        let trees = self.trees_of(&[TreeId::Log, TreeId::LogNodes])?;
        let mut subtrees = Subtrees::new(&self.path, trees);
        for &index in indexes.iter().filter(|&&i| i < size) {
            let proof = kurir_proto::merkle::inclusion_proof_from(index, size, |level, n| {
                subtrees.get(level, n).map_err(SubtreeError::Store)
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
        let trees = self.trees_of(&[TreeId::Log, TreeId::LogNodes])?;
        let mut subtrees = Subtrees::new(&self.path, trees);
        kurir_proto::merkle::consistency_proof_from(old_size, new_size, |level, n| {
            subtrees.get(level, n).map_err(SubtreeError::Store)
        })
        .map_err(|e| self.proof_failed(e))
    }

    fn proof_failed(&self, e: SubtreeError) -> StoreError {
        match e {
            SubtreeError::Store(e) => e,
            SubtreeError::Proof(e) => self.corrupt("log_nodes", e.to_string()),
        }
    }
}

/// The perfect-subtree hashes of the log that one request has read, each
/// read once: below [`STORED_LEVEL`] from its two halves, down to the
/// entries' leaf hashes, read a block at a time ([`Subtrees::leaf`]), so
/// an entry is read at most once per request.
struct Subtrees<'a> {
    dir: &'a Path,
    trees: &'a Trees,
    known: HashMap<(u8, u64), Digest>,
}

impl<'a> Subtrees<'a> {
    fn new(dir: &'a Path, trees: &'a Trees) -> Self {
        Subtrees {
            dir,
            trees,
            known: HashMap::new(),
        }
    }

    /// The root of the perfect subtree `(level, n)` ([`subtree_hash`]).
    fn get(&mut self, level: u8, n: u64) -> Result<Digest, StoreError> {
        if let Some(known) = self.known.get(&(level, n)) {
            return Ok(*known);
        }
        let hash = match level {
            0 => self.leaf(n)?,
            1..STORED_LEVEL => {
                let left = self.get(level - 1, 2 * n)?;
                let right = self.get(level - 1, 2 * n + 1)?;
                kurir_proto::merkle::node_hash(&left, &right)
            }
            _ => subtree_hash(self.dir, self.trees, level, n)?,
        };
        self.known.insert((level, n), hash);
        Ok(hash)
    }
}

impl Subtrees<'_> {
    /// The leaf hash of entry `n`. The entries are read a block of
    /// 2^[`STORED_LEVEL`] at a time, one pass over the row or two that hold
    /// them: a proof needs the leaves of the small subtrees around its
    /// entry, and the proofs of nearby entries need the same ones.
    fn leaf(&mut self, n: u64) -> Result<Digest, StoreError> {
        let from = (n >> STORED_LEVEL) << STORED_LEVEL;
        for item in entries_from(&self.trees.log, from).take(1 << STORED_LEVEL) {
            let (i, bytes) = item.map_err(|e| e.in_store(self.dir))?;
            self.known
                .insert((0, i), kurir_proto::merkle::leaf_hash(&bytes));
        }
        self.known
            .get(&(0, n))
            .copied()
            .ok_or_else(|| StoreError::Corrupt {
                path: self.dir.to_owned(),
                tree: "log",
                reason: format!("entry {n} is not there"),
            })
    }
}

/// The root of the perfect subtree `(level, n)` of the log in `dir`:
/// stored in `log_nodes` from [`STORED_LEVEL`] up, hashed from the entries
/// below.
pub(super) fn subtree_hash(
    dir: &Path,
    trees: &Trees,
    level: u8,
    n: u64,
) -> Result<Digest, StoreError> {
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    if level < STORED_LEVEL {
        return subtree_from_entries(dir, trees, level, n);
    }
    let value = trees.log_nodes.get(node_key(level, n)).map_err(sled_err)?;
    value
        .as_deref()
        .and_then(Digest::from_slice)
        .ok_or_else(|| StoreError::Corrupt {
            path: dir.to_owned(),
            tree: "log_nodes",
            reason: format!("the subtree hash ({level}, {n}) is missing or damaged"),
        })
}

/// The root of a small perfect subtree (`2^level` entries from
/// `n · 2^level`), hashed from the entries.
fn subtree_from_entries(
    dir: &Path,
    trees: &Trees,
    level: u8,
    n: u64,
) -> Result<Digest, StoreError> {
    let from = n << level;
    let to = (n + 1) << level;
    let leaves = entries_from(&trees.log, from)
        .take((to - from) as usize)
        .map(|item| {
            item.map(|(_, v)| kurir_proto::merkle::leaf_hash(&v))
                .map_err(|e| e.in_store(dir))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if leaves.len() as u64 != to - from {
        return Err(StoreError::Corrupt {
            path: dir.to_owned(),
            tree: "log",
            reason: format!("entries {from} to {} are not all there", to - 1),
        });
    }
    Ok(kurir_proto::merkle::root(&leaves))
}
