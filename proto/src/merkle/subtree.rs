//! Subtrees (draft-ietf-plants-merkle-tree-certs, referenced by C2SP
//! tlog-cosignature): [`Subtree`], its hash, and the inclusion proof of a
//! leaf in it, which is its RFC 9162 inclusion proof in the tree of the
//! subtree's leaves.

use crate::digest::Digest;

use super::ProofError;
use super::hash::{prefix, root};
use super::inclusion::{inclusion_proof, verify_inclusion};

/// A subtree: the leaves `[start, end)` of a log, where `start` is a multiple
/// of the smallest power of two not below `end - start`, so that its hash is
/// the Merkle tree hash of those leaves (subtrees as draft-ietf-plants-
/// merkle-tree-certs defines them, which C2SP tlog-cosignature refers to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subtree {
    start: u64,
    end: u64,
}

impl Subtree {
    /// Checks that `[start, end)` is a valid subtree.
    pub fn new(start: u64, end: u64) -> Result<Subtree, ProofError> {
        let invalid = ProofError::InvalidSubtree { start, end };
        if start >= end {
            return Err(invalid);
        }
        if start != 0 {
            let width = (end - start)
                .checked_next_power_of_two()
                .ok_or_else(|| invalid.clone())?;
            if !start.is_multiple_of(width) {
                return Err(invalid);
            }
        }
        Ok(Subtree { start, end })
    }

    /// Index of the first leaf.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// One past the index of the last leaf.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The number of leaves (at least 1).
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The hash of a subtree: the Merkle tree hash of leaves `[start, end)`.
pub fn subtree_root(leaves: &[Digest], subtree: Subtree) -> Result<Digest, ProofError> {
    let tree = prefix(leaves, subtree.end)?;
    let start = usize::try_from(subtree.start).map_err(|_| ProofError::NotEnoughLeaves {
        size: subtree.end,
        available: leaves.len() as u64,
    })?;
    Ok(root(tree.get(start..).unwrap_or_default()))
}

/// The inclusion proof of leaf `index` (an index in the whole log) in a
/// subtree: the inclusion proof of `index - start` in the tree of its leaves.
pub fn subtree_inclusion_proof(
    leaves: &[Digest],
    index: u64,
    subtree: Subtree,
) -> Result<Vec<Digest>, ProofError> {
    let out_of_range = ProofError::IndexOutOfRange {
        index,
        size: subtree.end,
    };
    if index < subtree.start || index >= subtree.end {
        return Err(out_of_range);
    }
    let tree = prefix(leaves, subtree.end)?;
    let start = usize::try_from(subtree.start).map_err(|_| out_of_range)?;
    let inner = tree.get(start..).unwrap_or_default();
    inclusion_proof(inner, index - subtree.start, subtree.size())
}

/// Checks that `leaf` is leaf `index` (an index in the whole log) of the
/// subtree whose hash is `root`.
pub fn verify_subtree_inclusion(
    leaf: &Digest,
    index: u64,
    subtree: Subtree,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    if index < subtree.start || index >= subtree.end {
        return Err(ProofError::IndexOutOfRange {
            index,
            size: subtree.end,
        });
    }
    verify_inclusion(leaf, index - subtree.start, subtree.size(), proof, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_validity() {
        assert!(Subtree::new(0, 1).is_ok());
        assert!(Subtree::new(8, 13).is_ok());
        assert!(Subtree::new(4, 7).is_ok());
        assert!(Subtree::new(3, 5).is_err());
        assert!(Subtree::new(1, 1).is_err());
        assert!(Subtree::new(2, 1).is_err());
        assert!(Subtree::new(1, (1 << 63) + 2).is_err());
        assert!(Subtree::new(0, u64::MAX).is_ok());
        assert!(Subtree::new(0, 1 << 63).is_ok());
    }
}
