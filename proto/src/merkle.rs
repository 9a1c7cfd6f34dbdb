//! RFC 6962 Merkle trees: hashing, roots, a compact append-only range, and
//! inclusion and consistency proofs.
//!
//! The relay's audit log is a Merkle tree of SHA-256 hashes built as RFC 9162
//! §2.1.1 (= RFC 6962 §2.1) defines it:
//!
//! - the hash of the empty tree is `SHA-256("")` ([`EMPTY_ROOT`]);
//! - a leaf hash is `SHA-256(0x00 ‖ entry)` ([`leaf_hash`]);
//! - an inner node is `SHA-256(0x01 ‖ left ‖ right)` ([`node_hash`]), where the
//!   left subtree holds the largest power of two of leaves smaller than the
//!   whole ([`root`]).
//!
//! Every function here works on **leaf hashes**; how an entry is turned into
//! bytes is the caller's business.
//!
//! | Function | Specification |
//! |---|---|
//! | [`leaf_hash`], [`node_hash`], [`root`], [`EMPTY_ROOT`] | RFC 9162 §2.1.1 |
//! | [`CompactRange`] | RFC 9162 §2.1.1 (incremental form of the same hash) |
//! | [`inclusion_proof`] | RFC 9162 §2.1.3.1 (`PATH(m, D[n])`) |
//! | [`verify_inclusion`], [`root_from_inclusion_proof`] | RFC 9162 §2.1.3.2 |
//! | [`consistency_proof`] | RFC 9162 §2.1.4.1 (`PROOF(m, D[n])`) |
//! | [`verify_consistency`] | RFC 9162 §2.1.4.2 |
//! | [`Subtree`], [`subtree_root`], [`subtree_inclusion_proof`], [`verify_subtree_inclusion`] | subtrees of draft-ietf-plants-merkle-tree-certs (referenced by C2SP tlog-cosignature): the inclusion proof of a leaf in a subtree is its RFC 9162 inclusion proof in the tree of the subtree's leaves |
//!
//! Subtree *consistency* proofs (from the same draft) are not implemented:
//! nothing in kurir signs subtrees, and the draft's algorithm is not among
//! the specifications the project follows.
//!
//! Verification first checks that the proof has exactly the length the sizes
//! call for, so a wrong proof is refused with [`ProofError::WrongProofLength`]
//! rather than a bare mismatch; it then runs the RFC 9162 algorithm step by
//! step.
//!
//! ```
//! use kurir_proto::merkle::{self, CompactRange};
//!
//! let leaves: Vec<_> = (0u8..7).map(|i| merkle::leaf_hash(&[i])).collect();
//! let mut range = CompactRange::new();
//! for leaf in &leaves {
//!     range.append(*leaf);
//! }
//! let root = merkle::root(&leaves);
//! assert_eq!(range.root(), root);
//!
//! let proof = merkle::inclusion_proof(&leaves, 3, 7)?;
//! merkle::verify_inclusion(&leaves[3], 3, 7, &proof, &root)?;
//!
//! let old_root = merkle::root(&leaves[..4]);
//! let proof = merkle::consistency_proof(&leaves, 4, 7)?;
//! merkle::verify_consistency(4, 7, &old_root, &root, &proof)?;
//! # Ok::<(), merkle::ProofError>(())
//! ```

use crate::digest::Digest;

/// The root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Digest = Digest([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Prefix of a leaf hash.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner node hash.
const NODE_PREFIX: u8 = 0x01;

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

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest::of(&[&[LEAF_PREFIX], data])
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of(&[&[NODE_PREFIX], left.as_bytes(), right.as_bytes()])
}

/// The largest power of two strictly below `n` (`n >= 2`): the size of the
/// left subtree of a tree of `n` leaves.
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let below = n - 1;
    1 << (usize::BITS - 1 - below.leading_zeros())
}

/// The Merkle tree hash `MTH(D[n])` of these leaf hashes (RFC 9162 §2.1.1).
///
/// The root of no leaves is [`EMPTY_ROOT`].
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => EMPTY_ROOT,
        _ => mth(leaves),
    }
}

/// `MTH` of a non-empty slice.
fn mth(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&mth(left), &mth(right))
        }
    }
}

/// The first `size` leaves, or [`ProofError::NotEnoughLeaves`].
fn prefix(leaves: &[Digest], size: u64) -> Result<&[Digest], ProofError> {
    usize::try_from(size)
        .ok()
        .and_then(|n| leaves.get(..n))
        .ok_or(ProofError::NotEnoughLeaves {
            size,
            available: leaves.len() as u64,
        })
}

/// The inclusion proof (audit path) of leaf `index` in the tree made of the
/// first `size` of `leaves` (RFC 9162 §2.1.3.1), from the leaf's sibling up
/// to a child of the root.
pub fn inclusion_proof(
    leaves: &[Digest],
    index: u64,
    size: u64,
) -> Result<Vec<Digest>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let tree = prefix(leaves, size)?;
    // index < size <= leaves.len(), so it fits in usize.
    let m = usize::try_from(index).map_err(|_| ProofError::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(m, tree, &mut proof);
    Ok(proof)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, built
/// from stored perfect subtrees instead of all the leaves: `subtree(level,
/// n)` returns the root of the perfect subtree of `2^level` leaves starting
/// at leaf `n · 2^level` (level 0 is the leaf hash itself), as
/// [`CompactRange::append_with`] reports them. It is asked for
/// O(log² size) subtrees, all inside the first `size` leaves.
pub fn inclusion_proof_from<E: From<ProofError>>(
    index: u64,
    size: u64,
    mut subtree: impl FnMut(u8, u64) -> Result<Digest, E>,
) -> Result<Vec<Digest>, E> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let mut proof = Vec::new();
    // PATH(m, D[start..start + n]), walked from the root down; the
    // siblings come out root first and are reversed at the end.
    let (mut m, mut start, mut n) = (index, 0u64, size);
    while n > 1 {
        let k = split_point_u64(n);
        if m < k {
            proof.push(stored_mth(start + k, n - k, &mut subtree)?);
            n = k;
        } else {
            proof.push(stored_mth(start, k, &mut subtree)?);
            m -= k;
            start += k;
            n -= k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// `MTH(D[start..start + n])` from stored perfect subtrees. Every range the
/// RFC 9162 recursion asks for starts at a multiple of its largest power of
/// two, so each perfect piece is a stored subtree.
fn stored_mth<E>(
    start: u64,
    n: u64,
    subtree: &mut impl FnMut(u8, u64) -> Result<Digest, E>,
) -> Result<Digest, E> {
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return subtree(level as u8, start >> level);
    }
    let k = split_point_u64(n);
    let left = stored_mth(start, k, subtree)?;
    let right = stored_mth(start + k, n - k, subtree)?;
    Ok(node_hash(&left, &right))
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split_point_u64(n: u64) -> u64 {
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// `PATH(m, D[n])`, appended to `out` in order from the leaf upwards.
fn path(m: usize, leaves: &[Digest], out: &mut Vec<Digest>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(m, left, out);
        out.push(mth(right));
    } else {
        path(m - k, right, out);
        out.push(mth(left));
    }
}

/// The number of hashes in the inclusion proof of leaf `index` in a tree of
/// `size` leaves (`index < size`): the levels where the paths to `index` and
/// to the last leaf differ, plus the levels above where `index` is a right
/// child on the right border.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): that `leaf` is leaf number
/// `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf, index, size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// The root that an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1–4),
/// for callers that look the root up afterwards.
pub fn root_from_inclusion_proof(
    leaf: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
) -> Result<Digest, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf;
    for p in proof {
        // With the length checked above, `s` cannot reach 0 before the end.
        if s == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                got: proof.len(),
            });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    Ok(r)
}

/// The consistency proof between the trees made of the first `old_size` and
/// the first `new_size` of `leaves` (RFC 9162 §2.1.4.1, `PROOF(m, D[n])`).
///
/// Equal sizes give the empty proof. `old_size == 0` is refused with
/// [`ProofError::EmptyOldTree`] unless `new_size` is 0 too.
pub fn consistency_proof(
    leaves: &[Digest],
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Digest>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNew { old_size, new_size });
    }
    let tree = prefix(leaves, new_size)?;
    if old_size == new_size {
        return Ok(Vec::new());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    // old_size < new_size <= leaves.len().
    let m = usize::try_from(old_size).map_err(|_| ProofError::NotEnoughLeaves {
        size: old_size,
        available: leaves.len() as u64,
    })?;
    let mut proof = Vec::new();
    subproof(m, tree, true, &mut proof);
    Ok(proof)
}

/// The consistency proof between the trees of `old_size` and `new_size`
/// leaves, built from stored perfect subtrees instead of all the leaves
/// (`subtree` as for [`inclusion_proof_from`]); equal to
/// [`consistency_proof`] on the same leaves. It is asked for O(log² size)
/// subtrees, all inside the first `new_size` leaves.
pub fn consistency_proof_from<E: From<ProofError>>(
    old_size: u64,
    new_size: u64,
    mut subtree: impl FnMut(u8, u64) -> Result<Digest, E>,
) -> Result<Vec<Digest>, E> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNew { old_size, new_size }.into());
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size }.into());
    }
    let mut proof = Vec::new();
    stored_subproof(old_size, 0, new_size, true, &mut subtree, &mut proof)?;
    Ok(proof)
}

/// `SUBPROOF(m, D[start..start + n], b)` from stored perfect subtrees,
/// appended to `out` in the order of [`subproof`].
fn stored_subproof<E>(
    m: u64,
    start: u64,
    n: u64,
    complete: bool,
    subtree: &mut impl FnMut(u8, u64) -> Result<Digest, E>,
    out: &mut Vec<Digest>,
) -> Result<(), E> {
    if m == n {
        if !complete {
            out.push(stored_mth(start, n, subtree)?);
        }
        return Ok(());
    }
    // 0 < m < n, so n >= 2.
    let k = split_point_u64(n);
    if m <= k {
        stored_subproof(m, start, k, complete, subtree, out)?;
        out.push(stored_mth(start + k, n - k, subtree)?);
    } else {
        stored_subproof(m - k, start + k, n - k, false, subtree, out)?;
        out.push(stored_mth(start, k, subtree)?);
    }
    Ok(())
}

/// `SUBPROOF(m, D[n], b)`, appended to `out`.
fn subproof(m: usize, leaves: &[Digest], complete: bool, out: &mut Vec<Digest>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(mth(leaves));
        }
        return;
    }
    // 0 < m < n, so n >= 2.
    let k = split_point(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, out);
        out.push(mth(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(mth(left));
    }
}

/// The number of hashes in a consistency proof for `0 < old < new`.
fn consistency_proof_len(old: u64, new: u64) -> usize {
    // Below the level of the largest perfect subtree ending at `old`, the
    // proof is the inclusion proof of that subtree's root in the new tree,
    // preceded by the subtree's own root unless it is the whole old tree.
    let shift = old.trailing_zeros();
    let index = (old - 1) >> shift;
    let size = ((new - 1) >> shift) + 1;
    let seed = usize::from(index != 0);
    seed + inclusion_proof_len(index, size)
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): that the tree of
/// `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root`.
///
/// Equal sizes need an empty proof and equal roots; at size 0 the root must
/// be [`EMPTY_ROOT`]. A proof from the empty tree to a larger one is refused
/// ([`ProofError::EmptyOldTree`]): it could only be the empty proof, and it
/// would say nothing about the new root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNew { old_size, new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_size == 0 && *old_root != EMPTY_ROOT {
            return Err(ProofError::OldRootMismatch {
                expected: *old_root,
                computed: EMPTY_ROOT,
            });
        }
        if old_root != new_root {
            return Err(ProofError::NewRootMismatch {
                expected: *new_root,
                computed: *old_root,
            });
        }
        return Ok(());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    let wrong_length = ProofError::WrongProofLength {
        expected,
        got: proof.len(),
    };

    // Step 2: if old_size is a power of two, the old root is the first node.
    let mut path = proof.iter();
    let seed = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path.next().ok_or_else(|| wrong_length.clone())?
    };
    // Steps 3 and 4.
    let mut f = old_size - 1;
    let mut s = new_size - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // Step 5.
    let mut fr = seed;
    let mut sr = seed;
    // Step 6.
    for c in path {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 7.
    if s != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            expected: *old_root,
            computed: fr,
        });
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch {
            expected: *new_root,
            computed: sr,
        });
    }
    Ok(())
}

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

/// An append-only Merkle tree kept in O(log n) memory: the roots of the
/// perfect subtrees that make up the tree, one per set bit of its size,
/// largest (leftmost) first.
///
/// The relay keeps one in memory and stores the leaves elsewhere; [`root`]
/// and [`CompactRange::root`] agree for every size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<Digest>,
}

/// Why [`CompactRange::from_parts`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a compact range of size {size} has {expected} nodes (one per set bit of the size), \
     not {got}"
)]
pub struct CompactRangeError {
    /// The size given.
    pub size: u64,
    /// The number of nodes that size needs.
    pub expected: usize,
    /// The number of nodes given.
    pub got: usize,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// The range of all of `leaves`, appended in order.
    pub fn from_leaves<'a>(leaves: impl IntoIterator<Item = &'a Digest>) -> CompactRange {
        let mut range = CompactRange::new();
        for leaf in leaves {
            range.append(*leaf);
        }
        range
    }

    /// Rebuilds a range saved with [`CompactRange::size`] and
    /// [`CompactRange::nodes`]; the node count must match the size.
    pub fn from_parts(size: u64, nodes: Vec<Digest>) -> Result<CompactRange, CompactRangeError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(CompactRangeError {
                size,
                expected,
                got: nodes.len(),
            });
        }
        Ok(CompactRange { size, nodes })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest first.
    pub fn nodes(&self) -> &[Digest] {
        &self.nodes
    }

    /// Appends one leaf hash (see [`leaf_hash`]) and returns its index.
    pub fn append(&mut self, leaf: Digest) -> u64 {
        self.append_with(leaf, |_, _, _| {})
    }

    /// Appends one leaf hash like [`CompactRange::append`], and reports
    /// every perfect subtree it completes to `completed(level, n, root)`:
    /// the leaf itself (level 0, `n` = its index), then each larger subtree
    /// the leaf closes (`2^level` leaves from leaf `n · 2^level`). Storing
    /// them lets [`inclusion_proof_from`] prove any entry without the
    /// leaves.
    pub fn append_with(&mut self, leaf: Digest, mut completed: impl FnMut(u8, u64, Digest)) -> u64 {
        let index = self.size;
        completed(0, index, leaf);
        let mut hash = leaf;
        let mut size = self.size;
        let mut level = 0u8;
        while size & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => break,
            }
            size >>= 1;
            level += 1;
            completed(level, ((index + 1) >> level).saturating_sub(1), hash);
        }
        self.nodes.push(hash);
        self.size += 1;
        index
    }

    /// The root of the tree of all leaves appended so far.
    pub fn root(&self) -> Digest {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return EMPTY_ROOT;
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&[i])).collect()
    }

    #[test]
    fn proofs_from_stored_subtrees_equal_proofs_from_leaves() {
        for n in 1..=40u8 {
            let leaves = leaves(n);
            let mut stored = std::collections::BTreeMap::new();
            let mut range = CompactRange::new();
            for leaf in &leaves {
                range.append_with(*leaf, |level, i, hash| {
                    assert!(stored.insert((level, i), hash).is_none(), "reported twice");
                });
            }
            assert_eq!(range.root(), root(&leaves));
            // Every reported subtree is the root of exactly those leaves.
            for (&(level, i), hash) in &stored {
                let from = (i << level) as usize;
                assert_eq!(*hash, root(&leaves[from..from + (1 << level)]));
            }
            for size in 1..=u64::from(n) {
                for index in 0..size {
                    let got = inclusion_proof_from(index, size, |level, i| {
                        stored
                            .get(&(level, i))
                            .copied()
                            .ok_or(ProofError::IndexOutOfRange { index: i, size })
                    })
                    .unwrap();
                    assert_eq!(got, inclusion_proof(&leaves, index, size).unwrap());
                }
                for old in 1..=size {
                    let got = consistency_proof_from(old, size, |level, i| {
                        stored
                            .get(&(level, i))
                            .copied()
                            .ok_or(ProofError::IndexOutOfRange { index: i, size })
                    })
                    .unwrap();
                    assert_eq!(got, consistency_proof(&leaves, old, size).unwrap());
                }
            }
        }
        assert!(matches!(
            inclusion_proof_from(3, 3, |_, _| Ok::<_, ProofError>(EMPTY_ROOT)),
            Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
        ));
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, Digest::of(&[]));
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(CompactRange::new().root(), EMPTY_ROOT);
    }

    /// RFC 6962 reference values (the certificate-transparency test suite):
    /// the empty leaf and the 8 leaves 0x, 00, 10, 2021, 3031, 40414243,
    /// 5051525354555657, 606162636465666768696a6b6c6d6e6f.
    #[test]
    fn rfc6962_reference_roots() {
        assert_eq!(
            leaf_hash(b"").to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let hashes: Vec<Digest> = data.iter().map(|d| leaf_hash(d)).collect();
        let expect = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, want) in expect.iter().enumerate() {
            assert_eq!(root(&hashes[..=n]).to_string(), *want, "size {}", n + 1);
        }
    }

    #[test]
    fn proof_lengths_match_generated_proofs() {
        let l = leaves(40);
        for size in 1..=40u64 {
            for index in 0..size {
                let p = inclusion_proof(&l, index, size).unwrap();
                assert_eq!(p.len(), inclusion_proof_len(index, size), "{index}/{size}");
            }
            for old in 1..size {
                let p = consistency_proof(&l, old, size).unwrap();
                assert_eq!(p.len(), consistency_proof_len(old, size), "{old}->{size}");
            }
        }
    }

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

    #[test]
    fn compact_range_from_parts_checks_node_count() {
        let r = CompactRange::from_leaves(&leaves(5));
        let back = CompactRange::from_parts(r.size(), r.nodes().to_vec()).unwrap();
        assert_eq!(back, r);
        let err = CompactRange::from_parts(7, r.nodes().to_vec()).unwrap_err();
        assert_eq!(err.expected, 3);
    }
}
