//! Checkpoints and cosigning, owner side: every `checkpoint_secs` the relay
//! signs a checkpoint if its log grew by more than echoes of cosigning
//! ([`crate::core::pacing`]), asks every other member to cosign it
//! (with a consistency proof from the last checkpoint each cosigned), then
//! asks for the inclusion proofs of the receipts peers signed
//! ([`super::proofs`]). A refusal showing that a peer cosigned more of our
//! log than we hold raises the rollback alarm. Who is due a request and
//! what an answer means are decided by [`crate::core::cosign`]. What each
//! peer has cosigned of our log is the loop's own state: it starts from the
//! stored checkpoints' cosignatures and only the loop changes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kurir_proto::AuthorityId;
use kurir_proto::audit::{PeerRequest, log_origin};
use kurir_proto::checkpoint::SignedCheckpoint;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use super::links::Links;
use super::outbox::MAX_RECEIPT;
use super::{Authority, Base, Cosigning, proofs};
use crate::core::cosign::{self, Answer, Due};
use crate::core::pacing::{Backoff, Cover};

/// What the checkpoint loop uses.
pub(super) struct Checkpoints {
    pub(super) base: Arc<Base>,
    pub(super) authority: Arc<Authority>,
    pub(super) links: Arc<Links>,
    pub(super) cosigning: Arc<Cosigning>,
}

/// Per peer, the size of our newest checkpoint it has cosigned: the
/// checkpoint loop's own.
type Cosigned = HashMap<AuthorityId, u64>;

/// Asks every other member to cosign this relay's newest checkpoint, with a
/// consistency proof from the last checkpoint each cosigned; a member that
/// did not cosign last time only once its [`Backoff`] delay has passed.
async fn request_cosignatures(
    cp: &Arc<Checkpoints>,
    cosigned: &mut Cosigned,
    backoff: &mut Backoff,
) {
    let (base, authority) = (&cp.base, &cp.authority);
    let newest = match base.store.last_checkpoint() {
        Ok(note) => note,
        Err(e) => {
            error!(error = %e, "cannot read checkpoints");
            return;
        }
    };
    let Some(note) = newest else { return };
    let Ok(signed) = SignedCheckpoint::parse(&note) else {
        return;
    };
    let size = signed.checkpoint().size();
    let now = std::time::Instant::now();
    let due: Vec<Due> = cosign::due(
        authority.roster().members().iter().map(|m| &m.id),
        &authority.me,
        cosigned,
        size,
    )
    .into_iter()
    .filter(|d| backoff.may_ask(&d.peer, now))
    .collect();
    if due.is_empty() {
        return;
    }
    let mut asks = JoinSet::new();
    for Due {
        peer,
        old_size: old,
    } in due
    {
        // From the stored subtree hashes: O(log² size) reads, not the log.
        let proof = if old == 0 {
            Vec::new()
        } else {
            match base.store.consistency_proof(old, size) {
                Ok(proof) => proof,
                Err(e) => {
                    error!(%peer, error = %e, "cannot prove this log's consistency");
                    continue;
                }
            }
        };
        let request = PeerRequest::Cosign {
            checkpoint: note.clone(),
            old_size: old,
            proof: proof
                .into_iter()
                .map(|d| kurir_proto::audit::serde_bytes_vec::Bytes(d.0.to_vec()))
                .collect(),
        };
        let (cp, sent) = (cp.clone(), signed.clone());
        asks.spawn(async move {
            let result = ask_cosignature(&cp, &peer, &request, &sent).await;
            (peer, result)
        });
    }
    while let Some(done) = asks.join_next().await {
        let Ok((peer, result)) = done else { continue };
        match result {
            Ok(new_size) => {
                backoff.succeeded(&peer);
                cosigned.insert(peer, new_size);
            }
            Err(Refused {
                reason,
                witnessed_size,
            }) => {
                // Next time, prove consistency from what the peer has
                // witnessed.
                if let Some(size) = witnessed_size {
                    cosigned.insert(peer.clone(), size);
                }
                let wait_ms = backoff.failed(&peer, std::time::Instant::now());
                debug!(%peer, error = %reason, wait_ms, "no cosignature this round");
            }
        }
    }
}

/// Why a peer did not cosign this round.
struct Refused {
    reason: String,
    /// What the peer says it has cosigned, when it refused.
    witnessed_size: Option<u64>,
}

impl From<String> for Refused {
    fn from(reason: String) -> Refused {
        Refused {
            reason,
            witnessed_size: None,
        }
    }
}

/// One cosigning exchange about `sent`, our checkpoint; returns the size
/// the peer has now cosigned.
async fn ask_cosignature(
    cp: &Checkpoints,
    peer: &AuthorityId,
    request: &PeerRequest,
    sent: &SignedCheckpoint,
) -> Result<u64, Refused> {
    let size = sent.checkpoint().size();
    let answer = cp.links.exchange(peer, request, MAX_RECEIPT).await?;
    let keys = cp.authority.roster().log_keys_at(peer, cp.base.now());
    match cosign::read_answer_any(peer, &keys, sent, answer) {
        Answer::Cosigned { size, line } => {
            if let Err(e) = cp.base.store.add_cosignature(size, line).await {
                warn!(%peer, size, error = %e, "a peer's cosignature was not stored");
                return Err(e.to_string().into());
            }
            info!(%peer, size, "checkpoint cosigned by peer");
            Ok(size)
        }
        Answer::RolledBack {
            alarm,
            witnessed_size,
            reason,
        } => {
            // The peer cosigned more of our log than we now hold.
            error!(%peer, witnessed_size, size, "audit log rollback detected");
            if let Ok(mut a) = cp.cosigning.alarm.lock() {
                *a = Some(alarm);
            }
            cp.base.metrics.integrity_alarms.inc();
            Err(reason.into())
        }
        Answer::RefusedFrom {
            witnessed_size,
            reason,
        } => {
            warn!(%peer, %reason, "peer refused to cosign our checkpoint");
            Err(Refused {
                reason,
                witnessed_size: Some(witnessed_size),
            })
        }
        Answer::Invalid(reason) => {
            // Nothing of it is kept.
            warn!(%peer, size, %reason, "refused a peer's answer to a cosigning request");
            Err(reason.into())
        }
    }
}

/// Every `checkpoint_secs`: signs a checkpoint, asks peers to cosign it,
/// then asks them for the inclusion proofs of the receipts they signed.
/// `cosigned` is what each peer has cosigned at start.
pub(super) async fn checkpoint_loop(cp: Checkpoints, mut cosigned: Cosigned) {
    let cp = Arc::new(cp);
    let mut shutdown = cp.base.shutdown.clone();
    let interval_ms = cp.base.config.checkpoint_interval_ms.max(1);
    let interval = Duration::from_millis(interval_ms);
    let mut backoff = Backoff::new(interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        // A round dials peers (each dial bounded, but several peers down
        // add up): shutdown does not wait for it. The checkpoint a round
        // signs is a commit of its own; shutdown signs the last one anyway.
        let round = async {
            checkpoint(&cp.base, &cp.authority, Cover::RealActivity).await;
            request_cosignatures(&cp, &mut cosigned, &mut backoff).await;
            proofs::fetch(&cp.base.store, &cp.authority, &cp.links).await;
        };
        tokio::select! {
            _ = round => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Signs a checkpoint if the log grew since the last one by what `cover`
/// counts: real activity in the loop, anything at shutdown.
pub(super) async fn checkpoint(base: &Base, authority: &Authority, cover: Cover) {
    match base
        .store
        .checkpoint(log_origin(&authority.me), authority.log_key(), cover)
        .await
    {
        Ok(Some(note)) => {
            let size = SignedCheckpoint::parse(&note)
                .map(|c| c.checkpoint().size())
                .unwrap_or(0);
            debug!(size, "signed a checkpoint");
        }
        Ok(None) => {}
        Err(e) => error!(error = %e, "cannot sign a checkpoint"),
    }
}
