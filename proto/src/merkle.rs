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
//! | [`inclusion_proof`], [`inclusion_proofs`] | RFC 9162 §2.1.3.1 (`PATH(m, D[n])`) |
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
//! # Layout
//!
//! - `hash`: [`leaf_hash`], [`node_hash`], [`root`], [`EMPTY_ROOT`];
//! - `range`: [`CompactRange`];
//! - `inclusion`: [`inclusion_proof`], [`inclusion_proofs`] (every leaf's),
//!   [`inclusion_proof_from`] (from stored
//!   subtrees), [`verify_inclusion`], [`root_from_inclusion_proof`];
//! - `consistency`: [`consistency_proof`], [`consistency_proof_from`],
//!   [`verify_consistency`];
//! - `subtree`: [`Subtree`] and its proofs;
//! - `error`: [`ProofError`].
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

mod consistency;
mod error;
mod hash;
mod inclusion;
mod range;
mod subtree;

pub use consistency::{consistency_proof, consistency_proof_from, verify_consistency};
pub use error::ProofError;
pub use hash::{EMPTY_ROOT, leaf_hash, node_hash, root};
pub use inclusion::{
    inclusion_proof, inclusion_proof_from, inclusion_proofs, root_from_inclusion_proof,
    verify_inclusion,
};
pub use range::{CompactRange, CompactRangeError};
pub use subtree::{Subtree, subtree_inclusion_proof, subtree_root, verify_subtree_inclusion};

#[cfg(test)]
mod tests {
    use super::consistency::consistency_proof_len;
    use super::inclusion::inclusion_proof_len;
    use super::*;
    use crate::digest::Digest;

    fn leaves(n: u8) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&[i])).collect()
    }

    #[test]
    fn every_leafs_proof_at_once_equals_each_proof_alone() {
        for n in 0..=40u8 {
            let leaves = leaves(n);
            let all = inclusion_proofs(&leaves);
            assert_eq!(all.len(), leaves.len());
            for (i, proof) in all.iter().enumerate() {
                let one = inclusion_proof(&leaves, i as u64, u64::from(n)).unwrap();
                assert_eq!(*proof, one, "leaf {i} of {n}");
                verify_inclusion(&leaves[i], i as u64, u64::from(n), proof, &root(&leaves))
                    .unwrap();
            }
        }
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
}
