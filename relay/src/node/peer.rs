//! Serving peers: each stream a peer opens carries a parcel, checked
//! (`check_parcel`), stored durably, then answered with the receipt, or
//! refused with a signed rejection; or a control request (a map, not an
//! array): cosign a checkpoint of the peer's log (the witness side), or
//! prove entries of ours ([`super::proofs`]).

use std::sync::Arc;

use kurir_certs::Roster;
use kurir_proto::api::Summary;
use kurir_proto::audit::{Entry, PeerRequest, PeerResponse, Record, receipt_digest};
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, PublicKey, seal_receipt};
use tracing::{debug, error, info, warn};

use super::clock::case_with;
use super::{
    CLOSE_REFUSED, FrameReadError, Shared, proofs, read_frame, serve_streams, write_frame,
};
use crate::core::deadline::is_case_kind;
use crate::core::inbound::{self, Federation, InboundContext};
use crate::core::witness::witness;
use crate::store::{Accepted, InboxRecord, RefusalRecord};

/// Adapter so the core sees the roster as a [`Federation`].
#[derive(Debug)]
struct RosterView(Arc<Roster>);

impl KeyLookup for RosterView {
    fn lookup(&self, kid: &KeyId) -> Option<PublicKey> {
        self.0.lookup(kid)
    }
}

impl Federation for RosterView {
    fn accepts(&self, member: &AuthorityId, kind: MessageKind) -> bool {
        self.0.accepts(member, kind)
    }
}

pub(super) async fn serve_peer(shared: &Arc<Shared>, conn: &quinn::Connection, peer: &AuthorityId) {
    serve_streams(shared, conn, |send, recv| {
        receive_parcel(shared.clone(), peer.clone(), send, recv)
    })
    .await;
}

async fn receive_parcel(
    shared: Arc<Shared>,
    peer: AuthorityId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let max = shared.config.max_parcel_bytes;
    let bytes = match read_frame(&mut recv, max).await {
        Ok(b) => b,
        Err(FrameReadError::TooLarge(e)) => {
            // Refuse without reading the payload; say why, signed.
            let _ = recv.stop(CLOSE_REFUSED.into());
            let refusal = inbound::Refusal {
                code: kurir_proto::RejectCode::TooLarge,
                detail: e.to_string(),
                msg_id: None,
                envelope_digest: kurir_proto::Digest::of_envelope(&[]),
            };
            refuse(&shared, &peer, refusal, &mut send).await;
            return;
        }
        Err(FrameReadError::Io(e)) => {
            debug!(%peer, error = %e, "peer stream ended early");
            return;
        }
    };
    // A parcel is a CBOR array; a control request (cosigning) is a map.
    if bytes.first().is_some_and(|b| b >> 5 == 5) {
        serve_peer_request(&shared, &peer, &bytes, &mut send).await;
        return;
    }
    let now = shared.now();
    let roster = RosterView(shared.roster.clone());
    let ctx = InboundContext {
        me: &shared.me,
        now,
        max_parcel: max,
        max_clock_skew_ms: shared.config.max_clock_skew_ms,
    };
    let verified = match inbound::check_parcel(&bytes, &peer, &roster, &ctx) {
        Ok(v) => v,
        Err(refusal) => {
            refuse(&shared, &peer, refusal, &mut send).await;
            return;
        }
    };
    // The receipt names the audit entry of this arrival, so the store signs
    // it once it has numbered the entry, in the same commit.
    let acceptance = inbound::acceptance(&verified, &shared.me, now);
    let key = shared.message_key.clone();
    let sign: crate::store::ReceiptSigner = Box::new(move |index, leaf| {
        let receipt = kurir_proto::Receipt {
            log_index: Some(index),
            leaf_hash: Some(leaf),
            ..acceptance
        };
        seal_receipt(&receipt, &key).map_err(|e| e.to_string())
    });
    // The parcel's copy of the body goes now: `bytes` is what is stored.
    let kurir_proto::Verified {
        header,
        message,
        envelope_digest,
        ..
    } = verified;
    let h = &header;
    let received = Entry::new(
        now,
        Record::Received {
            msg_id: h.id,
            envelope_digest,
            peer: h.from.clone(),
            case_id: h.case_id.clone(),
            kind: h.kind,
        },
    );
    let record = InboxRecord {
        msg_id: h.id,
        from: h.from.clone(),
        kind: h.kind,
        case_id: h.case_id.clone(),
        in_reply_to: h.in_reply_to,
        received_at: now,
        parcel: bytes,
        erased: None,
        receipt: Vec::new(),
        read: None,
    };
    let summary = Summary::of(h, now, None);
    // Cases change one message at a time (held until the commit).
    let _case_guard = if is_case_kind(h.kind) {
        Some(shared.cases_lock.lock().await)
    } else {
        None
    };
    let case = if _case_guard.is_some() {
        case_with(&shared, h, &message, summary.clone(), now)
    } else {
        None
    };
    drop(message);
    crate::crashpoint::hit("inbound.before_commit");
    let receipt = match shared
        .store
        .accept_inbound(record, case, received, sign)
        .await
    {
        Ok(Accepted::New(stored)) => {
            info!(msg_id = %h.id, from = %h.from, kind = %h.kind, "received");
            shared.metrics.received.inc();
            let _ = shared.arrivals.send(summary);
            stored.receipt
        }
        Ok(Accepted::Duplicate(original)) => {
            info!(msg_id = %h.id, from = %h.from, "duplicate delivery: sending the original receipt again");
            shared.metrics.duplicates.inc();
            original.receipt
        }
        Err(e) if e.is_low_space() => {
            // Not stored, so not acknowledged: a transient rejection makes
            // the sender retry later. Not recorded (that would be a write).
            warn!(msg_id = %h.id, from = %h.from, error = %e, "refused a parcel for now: cannot store it");
            shared.metrics.refused_low_space.inc();
            let refusal = inbound::Refusal {
                code: kurir_proto::RejectCode::Internal,
                detail: "the receiving relay is low on disk space; try again later".into(),
                msg_id: Some(h.id),
                envelope_digest,
            };
            let rejection = inbound::rejection(&refusal, &shared.me, &peer, now);
            match seal_receipt(&rejection, &shared.message_key) {
                Ok(bytes) => {
                    let _ = write_frame(&mut send, &bytes).await;
                }
                Err(_) => {
                    let _ = send.reset(CLOSE_REFUSED.into());
                }
            }
            return;
        }
        Err(e) => {
            // Not stored, so not acknowledged: the sender will retry.
            error!(msg_id = %h.id, error = %e, "cannot store a received message");
            let _ = send.reset(CLOSE_REFUSED.into());
            return;
        }
    };
    crate::crashpoint::hit("inbound.after_commit");
    if let Err(e) = write_frame(&mut send, &receipt).await {
        debug!(%peer, error = %e, "could not send the receipt (the sender will retry)");
    }
}

/// A peer asks this relay to witness (cosign) its newest checkpoint.
async fn serve_peer_request(
    shared: &Shared,
    peer: &AuthorityId,
    bytes: &[u8],
    send: &mut quinn::SendStream,
) {
    let response = match PeerRequest::decode(bytes) {
        Ok(PeerRequest::Cosign {
            checkpoint,
            old_size,
            proof,
        }) => {
            let _guard = shared.witness_lock.lock().await;
            let last = match shared.store.witnessed(peer) {
                Ok(w) => w,
                Err(e) => {
                    error!(%peer, error = %e, "cannot read what was witnessed");
                    return;
                }
            };
            let proof: Vec<kurir_proto::Digest> = proof
                .iter()
                .filter_map(|b| kurir_proto::Digest::from_slice(&b.0))
                .collect();
            let outcome = match shared.roster.log_key(peer) {
                Some(key) => witness(
                    &checkpoint,
                    old_size,
                    &proof,
                    peer,
                    key,
                    last,
                    &shared.me,
                    &shared.log_key,
                    shared.now(),
                ),
                None => Err(format!("the roster lists no log key for {peer}")),
            };
            match outcome {
                Ok(c) => {
                    let entry = Entry::new(
                        shared.now(),
                        Record::PeerCheckpoint {
                            peer: peer.clone(),
                            size: c.witnessed.size,
                            root: c.witnessed.root,
                        },
                    );
                    if let Err(e) = shared
                        .store
                        .set_witnessed(peer, c.witnessed, vec![entry])
                        .await
                    {
                        error!(%peer, error = %e, "cannot store a witnessed checkpoint");
                        return;
                    }
                    debug!(%peer, size = c.witnessed.size, "cosigned a peer checkpoint");
                    PeerResponse::Cosigned { note: c.note }
                }
                Err(reason) => {
                    warn!(%peer, %reason, "refused to cosign a peer checkpoint");
                    PeerResponse::Refused {
                        reason,
                        witnessed_size: last.map_or(0, |w| w.size),
                    }
                }
            }
        }
        Ok(PeerRequest::Prove { indexes }) => proofs::serve(shared, peer, &indexes),
        Err(e) => PeerResponse::Refused {
            reason: format!("malformed request: {e}"),
            witnessed_size: 0,
        },
    };
    if let Ok(bytes) = response.encode() {
        let _ = write_frame(send, &bytes).await;
    }
}

async fn refuse(
    shared: &Shared,
    peer: &AuthorityId,
    refusal: inbound::Refusal,
    send: &mut quinn::SendStream,
) {
    let now = shared.now();
    warn!(%peer, code = %refusal.code, detail = %refusal.detail, "refused a parcel");
    shared.metrics.refused_parcels.inc();
    let receipt = inbound::rejection(&refusal, &shared.me, peer, now);
    let bytes = match seal_receipt(&receipt, &shared.message_key) {
        Ok(b) => b,
        Err(e) => {
            error!(error = %e, "cannot sign a rejection");
            return;
        }
    };
    let entry = Entry::new(
        now,
        Record::Refused {
            msg_id: refusal.msg_id,
            envelope_digest: refusal.envelope_digest,
            peer: peer.clone(),
            receipt_digest: receipt_digest(&bytes),
            reason: refusal.code,
        },
    );
    let record = RefusalRecord {
        from: peer.clone(),
        msg_id: refusal.msg_id,
        envelope_digest: refusal.envelope_digest.0.to_vec(),
        at: now,
        code: refusal.code.as_str().to_owned(),
        detail: refusal.detail,
        receipt: bytes.clone(),
    };
    if let Err(e) = shared.store.record_refusal(record, vec![entry]).await {
        // Not recorded, so not sent: the sender tries again later.
        if e.is_low_space() {
            shared.metrics.refused_low_space.inc();
        }
        error!(error = %e, "cannot store a refusal");
        let _ = send.reset(CLOSE_REFUSED.into());
        return;
    }
    let _ = write_frame(send, &bytes).await;
}
