//! Checkpoints and cosigning, owner side: every `checkpoint_secs` the relay
//! signs a checkpoint if its log grew, asks every other member to cosign it
//! (with a consistency proof from the last checkpoint each cosigned), then
//! asks for the inclusion proofs of the receipts peers signed
//! ([`super::proofs`]). A refusal showing that a peer cosigned more of our
//! log than we hold raises the rollback alarm. Who is due a request and
//! what an answer means are decided by [`crate::core::cosign`].

use std::sync::Arc;
use std::time::Duration;

use kurir_proto::AuthorityId;
use kurir_proto::audit::{PeerRequest, log_origin};
use kurir_proto::checkpoint::SignedCheckpoint;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use super::outbox::{MAX_RECEIPT, peer_exchange};
use super::{Shared, proofs};
use crate::core::cosign::{self, Answer, Due};

/// Asks every other member to cosign this relay's newest checkpoint, with a
/// consistency proof from the last checkpoint each cosigned.
async fn request_cosignatures(shared: &Arc<Shared>) {
    let newest = match shared.store.last_checkpoint() {
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
    let due = {
        let Ok(cosigned) = shared.cosigned.lock() else {
            return;
        };
        cosign::due(
            shared.roster.members().iter().map(|m| &m.id),
            &shared.me,
            &cosigned,
            size,
        )
    };
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
            match shared.store.consistency_proof(old, size) {
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
        let shared = shared.clone();
        asks.spawn(async move {
            let result = ask_cosignature(&shared, &peer, &request, size).await;
            (peer, result)
        });
    }
    while let Some(done) = asks.join_next().await {
        let Ok((peer, result)) = done else { continue };
        match result {
            Ok(new_size) => {
                if let Ok(mut c) = shared.cosigned.lock() {
                    c.insert(peer, new_size);
                }
            }
            Err(e) => debug!(%peer, error = %e, "no cosignature this round"),
        }
    }
}

/// One cosigning exchange; returns the size the peer has now cosigned.
async fn ask_cosignature(
    shared: &Shared,
    peer: &AuthorityId,
    request: &PeerRequest,
    size: u64,
) -> Result<u64, String> {
    let answer = peer_exchange(shared, peer, request, MAX_RECEIPT).await?;
    match cosign::read_answer(peer, shared.roster.log_key(peer), size, answer) {
        Answer::Cosigned { size, note } => {
            shared
                .store
                .add_cosignature(size, log_origin(peer), note)
                .await
                .map_err(|e| e.to_string())?;
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
            if let Ok(mut a) = shared.alarm.lock() {
                *a = Some(alarm);
            }
            shared.metrics.integrity_alarms.inc();
            Err(reason)
        }
        Answer::RefusedFrom {
            witnessed_size,
            reason,
        } => {
            warn!(%peer, %reason, "peer refused to cosign our checkpoint");
            // Next time, prove consistency from what the peer has witnessed.
            if let Ok(mut c) = shared.cosigned.lock() {
                c.insert(peer.clone(), witnessed_size);
            }
            Err(reason)
        }
        Answer::Invalid(reason) => Err(reason),
    }
}

pub(super) async fn checkpoint_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let interval = Duration::from_millis(shared.config.checkpoint_interval_ms.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        checkpoint(&shared).await;
        request_cosignatures(&shared).await;
        proofs::fetch(&shared).await;
    }
}

/// Signs a checkpoint if the log grew since the last one.
pub(super) async fn checkpoint(shared: &Shared) {
    match shared
        .store
        .checkpoint(log_origin(&shared.me), shared.log_key.clone())
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
