//! Inclusion proofs for receipts (`PROTOCOL.md` §15, `AUDIT.md` §4).
//!
//! A receipt names the receiver's log entry for the arrival (index and leaf
//! hash). Once the receiver signs a checkpoint that covers the entry, the
//! sender asks for the entry's inclusion proof, checks it against the
//! receiver's log key, and keeps it beside the receipt; exports carry it.
//!
//! Receiver side: [`serve`] answers `Prove` with proofs against its newest
//! checkpoint. Sender side: [`fetch`] runs after each checkpoint round and
//! asks every peer for the proofs still due, [`MAX_PROVE`] at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use kurir_proto::audit::{InclusionProof, MAX_PROVE, PeerRequest, PeerResponse, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::{AuthorityId, MessageId};
use tracing::{debug, info, warn};

use super::Shared;
use super::outbox::peer_exchange;
use crate::store::Unproven;

/// The largest `Proofs` answer read: [`MAX_PROVE`] proofs, each with the
/// checkpoint note (cosignatures included) and up to 64 hashes.
pub(super) const MAX_PROOFS_ANSWER: usize = 1024 * 1024;

/// The receiver's answer to `Prove`: proofs against its newest checkpoint
/// for the asked entries it covers.
pub(super) fn serve(shared: &Shared, peer: &AuthorityId, indexes: &[u64]) -> PeerResponse {
    let refused = |reason: String| PeerResponse::Refused {
        reason,
        witnessed_size: 0,
    };
    if indexes.len() > MAX_PROVE {
        return refused(format!(
            "asked for {} proofs; at most {MAX_PROVE} per request",
            indexes.len()
        ));
    }
    let note = match shared.store.last_checkpoint() {
        Ok(Some(note)) => note,
        Ok(None) => return PeerResponse::Proofs { proofs: vec![] },
        Err(e) => {
            warn!(%peer, error = %e, "cannot read checkpoints to prove entries");
            return refused("this relay cannot read its log now; ask again later".into());
        }
    };
    let size = match SignedCheckpoint::parse(&note) {
        Ok(c) => c.checkpoint().size(),
        Err(e) => return refused(format!("this relay's newest checkpoint is damaged: {e}")),
    };
    match shared.store.inclusion_proofs(indexes, size) {
        Ok(found) => PeerResponse::Proofs {
            proofs: found
                .into_iter()
                .map(|(index, hashes)| InclusionProof {
                    index,
                    checkpoint: note.clone(),
                    hashes: hashes
                        .into_iter()
                        .map(|d| kurir_proto::audit::serde_bytes_vec::Bytes(d.0.to_vec()))
                        .collect(),
                })
                .collect(),
        },
        Err(e) => {
            warn!(%peer, error = %e, "cannot prove entries");
            refused("this relay cannot prove these entries now; ask again later".into())
        }
    }
}

/// Asks each peer for the inclusion proofs of the receipts it signed that
/// still lack one, and stores those that verify.
pub(super) async fn fetch(shared: &Arc<Shared>) {
    let due = match shared.store.unproven() {
        Ok(due) => due,
        Err(e) => {
            warn!(error = %e, "cannot read the receipts awaiting inclusion proofs");
            return;
        }
    };
    let mut by_peer: BTreeMap<AuthorityId, Vec<Unproven>> = BTreeMap::new();
    for u in due {
        by_peer.entry(u.peer.clone()).or_default().push(u);
    }
    for (peer, mut due) in by_peer {
        due.sort_by_key(|u| u.index);
        for chunk in due.chunks(MAX_PROVE) {
            match fetch_chunk(shared, &peer, chunk).await {
                // Entries are asked in log order: when the peer's newest
                // checkpoint covers none of these, it covers none after.
                Ok(0) => break,
                Ok(stored) => debug!(%peer, stored, "stored inclusion proofs"),
                Err(e) => {
                    debug!(%peer, error = %e, "no inclusion proofs this round");
                    break;
                }
            }
        }
    }
}

/// One `Prove` exchange; returns how many proofs were stored.
async fn fetch_chunk(
    shared: &Shared,
    peer: &AuthorityId,
    due: &[Unproven],
) -> Result<usize, String> {
    let request = PeerRequest::Prove {
        indexes: due.iter().map(|u| u.index).collect(),
    };
    let proofs = match peer_exchange(shared, peer, &request, MAX_PROOFS_ANSWER).await? {
        PeerResponse::Proofs { proofs } => proofs,
        PeerResponse::Refused { reason, .. } => return Err(format!("refused: {reason}")),
        PeerResponse::Cosigned { .. } => return Err("answered a cosignature".into()),
    };
    let key = shared
        .roster
        .log_key(peer)
        .ok_or_else(|| format!("the roster lists no log key for {peer}"))?;
    let verifier = NoteVerifier::ed25519(&log_origin(peer), key).map_err(|e| e.to_string())?;
    let (good, bad) = check(due, proofs, &verifier);
    for reason in &bad {
        warn!(%peer, %reason, "a peer sent an inclusion proof that does not hold");
    }
    let stored = good.len();
    if stored > 0 {
        shared
            .store
            .store_proofs(good)
            .await
            .map_err(|e| e.to_string())?;
        info!(%peer, stored, "receipts proven included in the peer's signed log");
    }
    Ok(stored)
}

/// A verified proof to store: the message, the peer, the proof bytes.
type Proven = (MessageId, AuthorityId, Vec<u8>);

/// Matches proofs to the receipts that asked for them and keeps those that
/// hold, with why the others failed.
fn check(
    due: &[Unproven],
    proofs: Vec<InclusionProof>,
    log: &NoteVerifier,
) -> (Vec<Proven>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for proof in proofs {
        let Some(u) = due.iter().find(|u| u.index == proof.index) else {
            bad.push(format!("entry {} was not asked for", proof.index));
            continue;
        };
        match proof.verify(&u.leaf, log) {
            Ok(_) => match proof.encode() {
                Ok(bytes) => good.push((u.msg_id, u.peer.clone(), bytes)),
                Err(e) => bad.push(format!("entry {}: {e}", proof.index)),
            },
            Err(e) => bad.push(format!("entry {} (message {}): {e}", proof.index, u.msg_id)),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::audit::serde_bytes_vec::Bytes;
    use kurir_proto::checkpoint::Checkpoint;
    use kurir_proto::ed25519_dalek::SigningKey;
    use kurir_proto::{Digest, merkle};

    #[test]
    fn only_asked_for_and_valid_proofs_are_kept() {
        let peer = AuthorityId::parse("BA.MSB").unwrap();
        let origin = log_origin(&peer);
        let key = SigningKey::from_bytes(&[3; 32]);
        let leaves: Vec<Digest> = (0..5u8).map(|i| merkle::leaf_hash(&[i])).collect();
        let note = SignedCheckpoint::sign(
            Checkpoint::new(&origin, 5, merkle::root(&leaves)).unwrap(),
            &origin,
            &key,
        )
        .unwrap()
        .note()
        .to_string()
        .into_bytes();
        let proof = |index: u64| InclusionProof {
            index,
            checkpoint: note.clone(),
            hashes: merkle::inclusion_proof(&leaves, index, 5)
                .unwrap()
                .into_iter()
                .map(|d| Bytes(d.0.to_vec()))
                .collect(),
        };
        let due = |index: u64, leaf: Digest| Unproven {
            msg_id: MessageId::new_v7(1_795_874_050_000 + index, [index as u8; 10]),
            peer: peer.clone(),
            index,
            leaf,
        };
        // Entry 3's receipt names another leaf hash than the peer's log has.
        let asked = vec![due(1, leaves[1]), due(3, leaves[4])];
        let v = NoteVerifier::ed25519(&origin, key.verifying_key()).unwrap();
        let (good, bad) = check(&asked, vec![proof(1), proof(3), proof(2)], &v);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].0, asked[0].msg_id);
        assert_eq!(InclusionProof::decode(&good[0].2).unwrap(), proof(1));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].starts_with("entry 3"), "{bad:?}");
        assert!(bad[1].contains("not asked for"), "{bad:?}");
    }
}
