//! Witnessing peers' logs: a relay cosigns a peer's checkpoint only after
//! checking the peer's signature and that the new checkpoint extends the
//! last one it cosigned (RFC 9162 consistency proof). A fork (the same size
//! with another root, a smaller size, or a failed proof) is refused, so a
//! relay cannot show auditors a rewritten history without its neighbours'
//! cosignatures contradicting it. Pure: the driver stores the result.

use kurir_proto::audit::log_origin;
use kurir_proto::checkpoint::{CheckpointError, NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::{SigningKey, VerifyingKey};
use kurir_proto::merkle::verify_consistency;
use kurir_proto::{AuthorityId, Digest, ProofError, Timestamp};
use serde::{Deserialize, Serialize};

/// The last checkpoint of a peer this relay cosigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witnessed {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    #[serde(with = "digest_bytes")]
    pub root: Digest,
}

mod digest_bytes {
    use kurir_proto::Digest;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&d.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let v = kurir_proto::cbor::bytes::deserialize(d)?;
        Digest::from_slice(&v).ok_or_else(|| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// A cosignature to send back, and the new witnessed state to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint note with this relay's cosignature line added.
    pub note: Vec<u8>,
    /// What to remember for this peer.
    pub witnessed: Witnessed,
    /// Whether the checkpoint was not cosigned before (another size or
    /// root than the last): only then is it stored, with its audit entry.
    /// The same checkpoint asked again is cosigned again with no entry.
    pub fresh: bool,
}

/// Why this relay refuses to cosign a peer's checkpoint; the text goes
/// back to the peer in the refusal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessRefusal {
    /// The roster lists no log key for the peer.
    #[error("the roster lists no log key for {0}")]
    NoLogKey(AuthorityId),
    /// The note is not a checkpoint.
    #[error("the checkpoint does not parse: {0}")]
    Parse(#[source] CheckpointError),
    /// The checkpoint is of another log than the peer's.
    #[error("the checkpoint is of log {found:?}, not {expected:?}")]
    OtherLog {
        /// The origin it names.
        found: String,
        /// The peer's log origin.
        expected: String,
    },
    /// The peer's log key cannot verify notes.
    #[error("{0}")]
    Key(#[source] CheckpointError),
    /// The owner's signature does not verify.
    #[error("not signed by {owner}'s log key: {source}")]
    NotSigned {
        /// The peer.
        owner: AuthorityId,
        /// Why.
        source: CheckpointError,
    },
    /// Smaller than what was cosigned before.
    #[error(
        "size {size} is smaller than the checkpoint of size {last} already cosigned: a rollback"
    )]
    Rollback {
        /// The checkpoint's size.
        size: u64,
        /// The size cosigned before.
        last: u64,
    },
    /// The size cosigned before with another root.
    #[error("size {size} with another root than the one already cosigned: a fork")]
    OtherRoot {
        /// The size.
        size: u64,
    },
    /// The consistency proof starts elsewhere than the size cosigned before.
    #[error("the proof starts at size {old_size}, but the last cosigned size is {last}")]
    ProofStart {
        /// Where the proof starts.
        old_size: u64,
        /// The size cosigned before.
        last: u64,
    },
    /// The consistency proof fails.
    #[error(
        "not consistent with the checkpoint of size {last} already cosigned ({source}): a fork"
    )]
    Inconsistent {
        /// The size cosigned before.
        last: u64,
        /// Why the proof fails.
        source: ProofError,
    },
    /// This relay's cosignature could not be made.
    #[error("{0}")]
    Cosign(#[source] CheckpointError),
}

/// Checks `checkpoint` from `owner` against `last` (what this relay cosigned
/// for it before) and cosigns it with `key` as `me` at `now`.
#[allow(clippy::too_many_arguments)]
pub fn witness(
    checkpoint: &[u8],
    old_size: u64,
    proof: &[Digest],
    owner: &AuthorityId,
    owner_log_key: VerifyingKey,
    last: Option<Witnessed>,
    me: &AuthorityId,
    key: &SigningKey,
    now: Timestamp,
) -> Result<Cosigned, WitnessRefusal> {
    let origin = log_origin(owner);
    let mut signed = SignedCheckpoint::parse(checkpoint).map_err(WitnessRefusal::Parse)?;
    if signed.checkpoint().origin() != origin {
        return Err(WitnessRefusal::OtherLog {
            found: signed.checkpoint().origin().to_owned(),
            expected: origin,
        });
    }
    let verifier = NoteVerifier::ed25519(&origin, owner_log_key).map_err(WitnessRefusal::Key)?;
    signed
        .verify(&verifier)
        .map_err(|source| WitnessRefusal::NotSigned {
            owner: owner.clone(),
            source,
        })?;
    let size = signed.checkpoint().size();
    let root = *signed.checkpoint().root();
    if let Some(last) = last {
        if size < last.size {
            return Err(WitnessRefusal::Rollback {
                size,
                last: last.size,
            });
        }
        if size == last.size && root != last.root {
            return Err(WitnessRefusal::OtherRoot { size });
        }
        if size > last.size {
            if old_size != last.size {
                return Err(WitnessRefusal::ProofStart {
                    old_size,
                    last: last.size,
                });
            }
            verify_consistency(last.size, size, &last.root, &root, proof).map_err(|source| {
                WitnessRefusal::Inconsistent {
                    last: last.size,
                    source,
                }
            })?;
        }
    }
    let cosignature = signed
        .cosign(&log_origin(me), key, now.0 / 1000)
        .map_err(WitnessRefusal::Cosign)?;
    signed
        .add_signature(cosignature)
        .map_err(WitnessRefusal::Cosign)?;
    let witnessed = Witnessed { size, root };
    Ok(Cosigned {
        note: signed.note().to_string().into_bytes(),
        witnessed,
        fresh: last != Some(witnessed),
    })
}

/// [`witness`] with every log key the roster lets `owner` sign with at
/// `now` (its current key first, then the earlier keys still valid:
/// [`kurir_certs::Roster::log_keys_at`]). A checkpoint signed with any of
/// them is checked against what was cosigned before like any other, so
/// the log continues across a log-key rotation: the new key's checkpoints
/// must extend, by consistency proof, what was cosigned under the old one.
#[allow(clippy::too_many_arguments)]
pub fn witness_any(
    checkpoint: &[u8],
    old_size: u64,
    proof: &[Digest],
    owner: &AuthorityId,
    owner_log_keys: &[VerifyingKey],
    last: Option<Witnessed>,
    me: &AuthorityId,
    key: &SigningKey,
    now: Timestamp,
) -> Result<Cosigned, WitnessRefusal> {
    let mut outcome = Err(WitnessRefusal::NoLogKey(owner.clone()));
    for owner_key in owner_log_keys {
        outcome = witness(
            checkpoint, old_size, proof, owner, *owner_key, last, me, key, now,
        );
        if !matches!(outcome, Err(WitnessRefusal::NotSigned { .. })) {
            break;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::checkpoint::Checkpoint;
    use kurir_proto::merkle::{consistency_proof, leaf_hash, root};

    fn a(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn checkpoint(leaves: &[Digest], key: &SigningKey) -> Vec<u8> {
        let origin = log_origin(&a("RS.MUP"));
        let c = Checkpoint::new(&origin, leaves.len() as u64, root(leaves)).unwrap();
        SignedCheckpoint::sign(c, &origin, key)
            .unwrap()
            .note()
            .to_string()
            .into_bytes()
    }

    #[test]
    fn cosigns_consistent_growth_and_refuses_forks() {
        let owner_key = SigningKey::from_bytes(&[1; 32]);
        let my_key = SigningKey::from_bytes(&[2; 32]);
        let (rs, ba) = (a("RS.MUP"), a("BA.SPS"));
        let now = Timestamp(1_795_874_050_000);
        let l = leaves(20);
        let go = |cp: &[u8], old: u64, proof: &[Digest], last: Option<Witnessed>| {
            witness(
                cp,
                old,
                proof,
                &rs,
                owner_key.verifying_key(),
                last,
                &ba,
                &my_key,
                now,
            )
        };
        // First sight: trusted, cosigned.
        let first = go(&checkpoint(&l[..5], &owner_key), 0, &[], None).unwrap();
        assert_eq!(first.witnessed.size, 5);
        let note = SignedCheckpoint::parse(&first.note).unwrap();
        let me = NoteVerifier::cosigner(&log_origin(&ba), my_key.verifying_key()).unwrap();
        assert_eq!(note.verify_cosignature(&me).unwrap(), now.0 / 1000);
        // Growth with a valid proof.
        let proof = consistency_proof(&l[..12], 5, 12).unwrap();
        let next = go(
            &checkpoint(&l[..12], &owner_key),
            5,
            &proof,
            Some(first.witnessed),
        )
        .unwrap();
        assert_eq!(next.witnessed.size, 12);
        assert!(first.fresh && next.fresh);
        // The same checkpoint again: cosigned, nothing new to record.
        let again = go(
            &checkpoint(&l[..12], &owner_key),
            12,
            &[],
            Some(next.witnessed),
        )
        .unwrap();
        assert_eq!(again.witnessed, next.witnessed);
        assert!(!again.fresh);
        // A fork: a different history of size 12.
        let mut forked = l.clone();
        forked[3] = leaf_hash(b"rewritten");
        let bad_proof = consistency_proof(&forked[..12], 5, 12).unwrap();
        let err = go(
            &checkpoint(&forked[..12], &owner_key),
            5,
            &bad_proof,
            Some(first.witnessed),
        )
        .unwrap_err();
        assert!(err.to_string().contains("fork"), "{err}");
        let err = go(
            &checkpoint(&forked[..12], &owner_key),
            12,
            &[],
            Some(next.witnessed),
        )
        .unwrap_err();
        assert!(err.to_string().contains("fork"), "{err}");
        // A rollback.
        let err = go(
            &checkpoint(&l[..5], &owner_key),
            0,
            &[],
            Some(next.witnessed),
        )
        .unwrap_err();
        assert!(err.to_string().contains("rollback"), "{err}");
        // Another key.
        let other = SigningKey::from_bytes(&[3; 32]);
        let err = go(&checkpoint(&l[..5], &other), 0, &[], None).unwrap_err();
        assert!(err.to_string().contains("log key"), "{err}");
    }

    /// RS.MUP rotates its log key: what the witness cosigned under the old
    /// key is the start of what it checks under the new one.
    #[test]
    fn the_log_continues_across_a_log_key_rotation() {
        let old = SigningKey::from_bytes(&[1; 32]);
        let new = SigningKey::from_bytes(&[4; 32]);
        let my_key = SigningKey::from_bytes(&[2; 32]);
        let (rs, ba) = (a("RS.MUP"), a("BA.SPS"));
        let now = Timestamp(1_795_874_050_000);
        let l = leaves(20);
        let go = |cp: &[u8], old_size: u64, proof: &[Digest], last, keys: &[VerifyingKey]| {
            witness_any(cp, old_size, proof, &rs, keys, last, &ba, &my_key, now)
        };
        let before = [old.verifying_key()];
        let both = [new.verifying_key(), old.verifying_key()];
        let after = [new.verifying_key()];
        // Cosigned under the old key (roster v1).
        let first = go(&checkpoint(&l[..5], &old), 0, &[], None, &before).unwrap();
        // Roster v2: the new key current, the old one still valid.
        let proof = consistency_proof(&l[..9], 5, 9).unwrap();
        let next = go(
            &checkpoint(&l[..9], &new),
            5,
            &proof,
            Some(first.witnessed),
            &both,
        )
        .unwrap();
        assert_eq!(next.witnessed.size, 9);
        // An old-key checkpoint while the old key is still valid.
        let proof = consistency_proof(&l[..12], 9, 12).unwrap();
        let third = go(
            &checkpoint(&l[..12], &old),
            9,
            &proof,
            Some(next.witnessed),
            &both,
        )
        .unwrap();
        // The new key cannot fork what the old one had cosigned.
        let mut forked = l.clone();
        forked[2] = leaf_hash(b"rewritten");
        let bad = consistency_proof(&forked[..14], 12, 14).unwrap();
        let err = go(
            &checkpoint(&forked[..14], &new),
            12,
            &bad,
            Some(third.witnessed),
            &both,
        )
        .unwrap_err();
        assert!(err.to_string().contains("fork"), "{err}");
        // Past the old key's end: only the new key verifies.
        let proof = consistency_proof(&l[..15], 12, 15).unwrap();
        let err = go(
            &checkpoint(&l[..15], &old),
            12,
            &proof,
            Some(third.witnessed),
            &after,
        )
        .unwrap_err();
        assert!(matches!(err, WitnessRefusal::NotSigned { .. }), "{err}");
        let ok = go(
            &checkpoint(&l[..15], &new),
            12,
            &proof,
            Some(third.witnessed),
            &after,
        )
        .unwrap();
        assert_eq!(ok.witnessed.size, 15);
        // No key at all: refused as such.
        let err = go(
            &checkpoint(&l[..15], &new),
            12,
            &proof,
            Some(third.witnessed),
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, WitnessRefusal::NoLogKey(_)), "{err}");
    }
}
