//! Inclusion proofs (RFC 9162 §2.1.3): generating the audit path of a leaf,
//! from the leaves or from stored perfect subtrees, and verifying it.

use crate::digest::Digest;

use super::ProofError;
use super::hash::{mth, node_hash, prefix, split_point, split_point_u64, stored_mth};

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

/// The inclusion proof of every leaf in the tree of `leaves` (RFC 9162
/// §2.1.3.1), in O(n) hashes rather than the O(n log n) of asking
/// [`inclusion_proof`] for each: the tree is built level by level, pairing
/// neighbours and carrying a level's odd last node up unchanged, which
/// gives the RFC 9162 tree (its left subtrees are perfect, so a node is
/// carried only along the right border).
pub fn inclusion_proofs(leaves: &[Digest]) -> Vec<Vec<Digest>> {
    let mut proofs = vec![Vec::new(); leaves.len()];
    let mut level = leaves.to_vec();
    // Where each leaf's ancestor sits in `level`.
    let mut at: Vec<usize> = (0..leaves.len()).collect();
    while level.len() > 1 {
        for (proof, pos) in proofs.iter_mut().zip(at.iter_mut()) {
            if let Some(sibling) = level.get(*pos ^ 1) {
                proof.push(*sibling);
            }
            *pos >>= 1;
        }
        let mut pairs = level.chunks_exact(2);
        let mut next: Vec<Digest> = pairs.by_ref().map(|p| node_hash(&p[0], &p[1])).collect();
        next.extend_from_slice(pairs.remainder());
        level = next;
    }
    proofs
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves, built
/// from stored perfect subtrees instead of all the leaves: `subtree(level,
/// n)` returns the root of the perfect subtree of `2^level` leaves starting
/// at leaf `n · 2^level` (level 0 is the leaf hash itself), as
/// [`CompactRange::append_with`] reports them. It is asked for
/// O(log² size) subtrees, all inside the first `size` leaves.
///
/// [`CompactRange::append_with`]: super::CompactRange::append_with
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
pub(super) fn inclusion_proof_len(index: u64, size: u64) -> usize {
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
