//! Inclusion proofs for receipts (`PROTOCOL.md` §15, `AUDIT.md` §4).
//!
//! A receipt names the receiver's log entry for the arrival (index and leaf
//! hash). Once the receiver signs a checkpoint that covers the entry, the
//! sender asks for the entry's inclusion proof, checks it against the
//! receiver's log key, and keeps it beside the receipt; exports carry it.
//!
//! Receiver side: [`serve`] answers `Prove` with proofs against its newest
//! checkpoint. Sender side: [`fetch`] runs after each checkpoint round and
//! asks every peer for the proofs still due, [`MAX_PROVE`] at a time; which
//! to ask, when to stop and which answers to keep are decided by
//! [`crate::core::proofs`].

use kurir_proto::AuthorityId;
use kurir_proto::audit::{InclusionProof, MAX_PROVE, PeerRequest, PeerResponse, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use tracing::{debug, info, warn};

use super::Authority;
use super::links::Links;
use crate::core::proofs::{Unproven, by_peer, check};
use crate::store::Store;

/// The largest `Proofs` answer read: [`MAX_PROVE`] proofs, each with the
/// checkpoint note (cosignatures included) and up to 64 hashes.
pub(super) const MAX_PROOFS_ANSWER: usize = 1024 * 1024;

/// The receiver's answer to `Prove`: proofs against its newest checkpoint
/// for the asked entries it covers.
pub(super) fn serve(store: &Store, peer: &AuthorityId, indexes: &[u64]) -> PeerResponse {
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
    let note = match store.last_checkpoint() {
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
    match store.inclusion_proofs(indexes, size) {
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
pub(super) async fn fetch(store: &Store, authority: &Authority, links: &Links) {
    let due = match store.unproven() {
        Ok(due) => due,
        Err(e) => {
            warn!(error = %e, "cannot read the receipts awaiting inclusion proofs");
            return;
        }
    };
    for mut asking in by_peer(due) {
        let peer = asking.peer().clone();
        while let Some(chunk) = asking.next_chunk() {
            match fetch_chunk(store, authority, links, &peer, chunk).await {
                Ok(stored) => {
                    if stored > 0 {
                        debug!(%peer, stored, "stored inclusion proofs");
                    }
                    asking.stored(stored);
                }
                Err(e) => {
                    debug!(%peer, error = %e, "no inclusion proofs this round");
                    asking.failed();
                }
            }
        }
    }
}

/// One `Prove` exchange; returns how many proofs were stored.
async fn fetch_chunk(
    store: &Store,
    authority: &Authority,
    links: &Links,
    peer: &AuthorityId,
    due: &[Unproven],
) -> Result<usize, String> {
    let request = PeerRequest::Prove {
        indexes: due.iter().map(|u| u.index).collect(),
    };
    let proofs = match links.exchange(peer, &request, MAX_PROOFS_ANSWER).await? {
        PeerResponse::Proofs { proofs } => proofs,
        PeerResponse::Refused { reason, .. } => return Err(format!("refused: {reason}")),
        PeerResponse::Cosigned { .. } => return Err("answered a cosignature".into()),
        PeerResponse::Rosters { .. } => return Err("answered with rosters".into()),
    };
    // The peer signs with the log key of the roster it has in force: its
    // current key or, while a rotation spreads, the earlier one.
    let keys = authority.roster().log_keys_at(peer, links.now());
    let mut checked = None;
    for key in &keys {
        let verifier = NoteVerifier::ed25519(&log_origin(peer), *key).map_err(|e| e.to_string())?;
        let (good, bad) = check(due, &proofs, &verifier);
        let done = bad.is_empty();
        checked = Some((good, bad));
        if done {
            break;
        }
    }
    let (good, bad) = checked.ok_or_else(|| format!("the roster lists no log key for {peer}"))?;
    for reason in &bad {
        warn!(%peer, %reason, "a peer sent an inclusion proof that does not hold");
    }
    let stored = good.len();
    if stored > 0 {
        store.store_proofs(good).await.map_err(|e| e.to_string())?;
        info!(%peer, stored, "receipts proven included in the peer's signed log");
    }
    Ok(stored)
}
