//! Consistency proofs (RFC 9162 §2.1.4): generating the proof that one tree
//! extends another, from the leaves or from stored perfect subtrees, and
//! verifying it.

use crate::digest::Digest;

use super::ProofError;
use super::hash::{EMPTY_ROOT, mth, node_hash, prefix, split_point, split_point_u64, stored_mth};
use super::inclusion::inclusion_proof_len;

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
///
/// [`inclusion_proof_from`]: super::inclusion_proof_from
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
pub(super) fn consistency_proof_len(old: u64, new: u64) -> usize {
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
