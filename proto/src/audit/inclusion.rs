//! Inclusion proofs: that one entry of an authority's log is in a
//! checkpoint that authority signed.

use crate::cbor::{self, CborError};
use crate::digest::Digest;
use crate::merkle;

use super::bundle::serde_bytes_vec;

/// Proof that one entry of an authority's log is in a checkpoint that
/// authority signed: what a sender keeps beside a receipt once the
/// receiver's checkpoints cover the entry the receipt names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The entry's leaf index.
    pub index: u64,
    /// The checkpoint note, signed by the log's key (cosignatures it
    /// carried are kept, and need not verify here).
    #[serde(with = "cbor::bytes")]
    pub checkpoint: Vec<u8>,
    /// The RFC 9162 audit path, from the leaf's sibling upwards.
    pub hashes: Vec<serde_bytes_vec::Bytes>,
}

/// Why an [`InclusionProof`] does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The checkpoint does not parse or is not signed by the log's key.
    #[error("its checkpoint is not valid: {0}")]
    Checkpoint(String),
    /// A hash is not 32 bytes long.
    #[error("hash {0} of the proof is not 32 bytes long")]
    Hash(usize),
    /// The path does not lead from the entry to the checkpoint's root.
    #[error("it does not prove entry {index} in the checkpoint of size {size}: {reason}")]
    Proof {
        /// The entry.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// What failed.
        reason: String,
    },
}

impl InclusionProof {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<InclusionProof, CborError> {
        cbor::from_slice(bytes)
    }

    /// Checks that `leaf` is entry [`InclusionProof::index`] of the tree
    /// whose checkpoint `log` signed; returns the checkpoint's size.
    pub fn verify(
        &self,
        leaf: &Digest,
        log: &crate::checkpoint::NoteVerifier,
    ) -> Result<u64, InclusionError> {
        self.verify_with(leaf, log, &crate::batch::Strict)
    }

    /// [`InclusionProof::verify`], with the checkpoint's signature checked
    /// by `sigs` (for [`crate::batch::batched`]).
    pub fn verify_with(
        &self,
        leaf: &Digest,
        log: &crate::checkpoint::NoteVerifier,
        sigs: &dyn crate::batch::SignatureCheck,
    ) -> Result<u64, InclusionError> {
        let signed = crate::checkpoint::SignedCheckpoint::parse(&self.checkpoint)
            .map_err(|e| InclusionError::Checkpoint(e.to_string()))?;
        signed
            .verify_with(log, sigs)
            .map_err(|e| InclusionError::Checkpoint(format!("not signed by the log key: {e}")))?;
        let hashes = self
            .hashes
            .iter()
            .enumerate()
            .map(|(i, h)| Digest::from_slice(&h.0).ok_or(InclusionError::Hash(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let size = signed.checkpoint().size();
        merkle::verify_inclusion(leaf, self.index, size, &hashes, signed.checkpoint().root())
            .map_err(|e| InclusionError::Proof {
                index: self.index,
                size,
                reason: e.to_string(),
            })?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::serde_bytes_vec;
    use crate::audit::testing::{checkpoint, setup};
    use crate::audit::{PeerRequest, PeerResponse};
    use ed25519_dalek::SigningKey;

    #[test]
    fn inclusion_proofs_hold_and_tampering_fails() {
        let (entries, cps, v, _) = setup();
        let leaves: Vec<_> = entries.iter().map(|b| merkle::leaf_hash(b)).collect();
        let proof = |index: u64| InclusionProof {
            index,
            checkpoint: cps[1].clone(),
            hashes: merkle::inclusion_proof(&leaves, index, 9)
                .unwrap()
                .into_iter()
                .map(|d| serde_bytes_vec::Bytes(d.0.to_vec()))
                .collect(),
        };
        for i in 0..9 {
            let p = InclusionProof::decode(&proof(i).encode().unwrap()).unwrap();
            assert_eq!(p.verify(&leaves[i as usize], &v), Ok(9));
        }
        // Another leaf, a changed path, an entry beyond the checkpoint.
        assert!(matches!(
            proof(3).verify(&leaves[4], &v),
            Err(InclusionError::Proof {
                index: 3,
                size: 9,
                ..
            })
        ));
        let mut p = proof(3);
        p.hashes[0].0[0] ^= 1;
        assert!(p.verify(&leaves[3], &v).is_err());
        let mut p = proof(3);
        p.hashes[1].0.pop();
        assert_eq!(p.verify(&leaves[3], &v), Err(InclusionError::Hash(1)));
        let p = InclusionProof {
            index: 9,
            ..proof(3)
        };
        assert!(p.verify(&leaves[9], &v).is_err());
        // A checkpoint signed by another key.
        let other = SigningKey::from_bytes(&[9; 32]);
        let p = InclusionProof {
            checkpoint: checkpoint(&entries, 9, &other),
            ..proof(3)
        };
        assert!(matches!(
            p.verify(&leaves[3], &v),
            Err(InclusionError::Checkpoint(_))
        ));
        // The peer exchange round-trips.
        let ask = PeerRequest::Prove {
            indexes: vec![1, 5],
        };
        assert_eq!(PeerRequest::decode(&ask.encode().unwrap()).unwrap(), ask);
        let answer = PeerResponse::Proofs {
            proofs: vec![proof(1), proof(5)],
        };
        assert_eq!(
            PeerResponse::decode(&answer.encode().unwrap()).unwrap(),
            answer
        );
    }
}
