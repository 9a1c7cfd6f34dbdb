//! [`ProofError`]: why a proof could not be generated or did not verify.

use crate::digest::Digest;

/// Why a proof could not be generated or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size larger than the leaves the caller has.
    #[error("tree size {size} is larger than the {available} leaves available")]
    NotEnoughLeaves {
        /// The requested tree size.
        size: u64,
        /// How many leaf hashes were given.
        available: u64,
    },
    /// A consistency proof asked to go from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeExceedsNew {
        /// The old (first) tree size.
        old_size: u64,
        /// The new (second) tree size.
        new_size: u64,
    },
    /// A consistency proof from the empty tree to a non-empty one.
    ///
    /// Every tree extends the empty tree, so such a proof proves nothing; RFC
    /// 9162 §2.1.4 only defines proofs for `0 < old_size`.
    #[error(
        "no consistency proof from the empty tree to size {new_size}: \
         every tree extends the empty tree, so there is nothing to prove"
    )]
    EmptyOldTree {
        /// The new tree size.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {got} hashes, but {expected} are needed for these tree sizes")]
    WrongProofLength {
        /// The length RFC 9162 gives for these sizes.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// The root computed from the proof is not the expected root.
    #[error("root mismatch: expected {expected}, the proof gives {computed}")]
    RootMismatch {
        /// The root the caller expected.
        expected: Digest,
        /// The root the proof leads to.
        computed: Digest,
    },
    /// The old root computed from a consistency proof is not the expected one.
    #[error("old root mismatch: expected {expected}, the proof gives {computed}")]
    OldRootMismatch {
        /// The old root the caller expected.
        expected: Digest,
        /// The old root the proof leads to.
        computed: Digest,
    },
    /// The new root computed from a consistency proof is not the expected one.
    #[error("new root mismatch: expected {expected}, the proof gives {computed}")]
    NewRootMismatch {
        /// The new root the caller expected.
        expected: Digest,
        /// The new root the proof leads to.
        computed: Digest,
    },
    /// A subtree `[start, end)` that is empty or not aligned.
    #[error(
        "invalid subtree [{start}, {end}): a subtree must be non-empty and start \
         at a multiple of the smallest power of two not below its size"
    )]
    InvalidSubtree {
        /// First leaf index.
        start: u64,
        /// One past the last leaf index.
        end: u64,
    },
}
