//! Serving peers: each stream a peer opens carries a parcel, checked and
//! turned into what to store by [`crate::core::inbound`], stored durably,
//! then answered with the receipt, or refused with a signed rejection; or
//! a control request (a map, not an array): cosign a checkpoint of the
//! peer's log (the witness side, [`crate::core::witness`]), prove entries
//! of ours ([`super::proofs`]), or tell our roster and send newer ones
//! (`super::roster`).

use std::sync::Arc;

use kurir_proto::api::Summary;
use kurir_proto::audit::{PeerRequest, PeerResponse};
use kurir_proto::batch::Remembered;
use kurir_proto::{AuthorityId, Digest, MessageId};
use tokio::sync::broadcast;
use tracing::{debug, error, info, warn};

use super::conn::{FrameReadError, read_frame, serve_streams, write_frame};
use super::{Authority, Base, CLOSE_REFUSED, Cases, Cosigning, log_case_change, proofs};
use crate::core::cases::CaseChange;
use crate::core::events;
use crate::core::inbound::{self, InboundContext};
use crate::core::witness::witness_any;
use crate::store::{Accepted, InboxRecord};

/// What serving a peer's streams uses.
#[derive(Clone)]
pub(super) struct PeerSide {
    pub(super) base: Arc<Base>,
    pub(super) authority: Arc<Authority>,
    pub(super) cases: Arc<Cases>,
    pub(super) cosigning: Arc<Cosigning>,
    /// The roster in force, for peers asking for newer ones.
    pub(super) rosters: Arc<super::roster::RosterInForce>,
    /// Summaries of messages received, for officers' `subscribe` streams.
    pub(super) arrivals: broadcast::Sender<Summary>,
    /// Envelope signatures verified: a batch's (PROTOCOL.md §6.1) is
    /// checked once, for all the peers' streams.
    pub(super) envelope_sigs: Arc<Remembered>,
}

pub(super) async fn serve_peer(side: &PeerSide, conn: &quinn::Connection, peer: &AuthorityId) {
    serve_streams(&side.base, conn, |send, recv| {
        receive_parcel(side.clone(), peer.clone(), send, recv)
    })
    .await;
}

async fn receive_parcel(
    side: PeerSide,
    peer: AuthorityId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let (base, authority) = (&side.base, &side.authority);
    let max = base.config.max_parcel_bytes;
    let bytes = match read_frame(&mut recv, max, base.config.read_timeout).await {
        Ok(b) => b,
        Err(FrameReadError::TooLarge(e)) => {
            // Refuse without reading the payload; say why, signed.
            let _ = recv.stop(CLOSE_REFUSED.into());
            refuse(&side, &peer, inbound::Refusal::too_large(&e), &mut send).await;
            return;
        }
        Err(FrameReadError::Io(e)) => {
            debug!(%peer, error = %e, "peer stream ended early");
            return;
        }
    };
    // A parcel is a CBOR array; a control request (cosigning) is a map.
    if bytes.first().is_some_and(|b| b >> 5 == 5) {
        serve_peer_request(&side, &peer, &bytes, &mut send).await;
        return;
    }
    let now = base.now();
    let ctx = InboundContext {
        me: &authority.me,
        now,
        max_parcel: max,
        max_clock_skew_ms: base.config.max_clock_skew_ms,
        sigs: &*side.envelope_sigs,
    };
    let verified = match inbound::check_parcel(&bytes, &peer, &*authority.roster(), &ctx) {
        Ok(v) => v,
        Err(refusal) => {
            refuse(&side, &peer, refusal, &mut send).await;
            return;
        }
    };
    // The verified parcel's copy of the body goes now: `bytes` is what is
    // stored.
    let arrival = inbound::arrival(bytes, verified, &authority.me, now);
    let (msg_id, envelope_digest) = (arrival.header.id, arrival.receipt.envelope_digest);
    // Cases change one message at a time (held until the commit), and a
    // message id received before is answered before any case rule: a
    // replayed case message gets its original receipt.
    let case_guard = side.cases.guard(arrival.header.kind).await;
    match base.store.inbox(msg_id) {
        Ok(Some(original)) => {
            drop(case_guard);
            answer_duplicate(&side, &peer, &original, msg_id, envelope_digest, &mut send).await;
            return;
        }
        Ok(None) => {}
        Err(e) => {
            // Not checked, so not acknowledged: the sender will retry.
            error!(%msg_id, error = %e, "cannot read the inbox");
            let _ = send.reset(CLOSE_REFUSED.into());
            return;
        }
    }
    // A case message its sender may not send is refused before anything
    // of it is stored.
    let case_kind = case_guard.is_some();
    let case = match arrival.header.case_id.clone().filter(|_| case_kind) {
        Some(case_id) => match base.store.case(&case_id) {
            Ok(stored) => {
                match arrival.case_change(&authority.me, stored, &base.config.agreements) {
                    Ok(change) => change,
                    Err(refusal) => {
                        drop(case_guard);
                        refuse(&side, &peer, refusal, &mut send).await;
                        return;
                    }
                }
            }
            Err(e) => {
                // Not checked, so not acknowledged: the sender will retry.
                error!(%case_id, error = %e, "cannot read a case");
                let _ = send.reset(CLOSE_REFUSED.into());
                return;
            }
        },
        None => CaseChange::Unchanged,
    };
    // The decoded body goes too.
    let inbound::Arrival {
        header,
        receipt,
        entry,
        record,
        summary,
        ..
    } = arrival;
    log_case_change(&case, &header);
    let h = &header;
    // The receipt names the audit entry of this arrival, so the store signs
    // it once it has numbered the entry, in the same commit (with the other
    // receipts of that commit).
    // The key valid at `now` (the receipt's `received_at`) signs. With
    // none, nothing is stored or signed: the sender retries.
    let message_keys = authority.message_keys();
    let key = match message_keys.at(now) {
        Ok(key) => key,
        Err(e) => {
            error!(msg_id = %h.id, from = %h.from, error = %e, "cannot sign a receipt: not stored, the sender retries");
            let _ = send.reset(CLOSE_REFUSED.into());
            return;
        }
    };
    let draft = crate::store::ReceiptDraft {
        receipt,
        key: std::sync::Arc::new(key.clone()),
    };
    crate::crashpoint::hit("inbound.before_commit");
    let receipt = match base
        .store
        .accept_inbound(record, case.into_case(), entry, draft)
        .await
    {
        Ok(Accepted::New(stored)) => {
            info!(msg_id = %h.id, from = %h.from, kind = %h.kind, "received");
            base.metrics.received.inc();
            let _ = side.arrivals.send(summary);
            stored.receipt
        }
        Ok(Accepted::Duplicate(original)) => {
            // Another copy was stored while this one was checked.
            drop(case_guard);
            answer_duplicate(&side, &peer, &original, msg_id, envelope_digest, &mut send).await;
            return;
        }
        Err(e) if e.is_low_space() => {
            // Not stored, so not acknowledged: a transient rejection makes
            // the sender retry later. Not recorded (that would be a write).
            warn!(msg_id = %h.id, from = %h.from, error = %e, "refused a parcel for now: cannot store it");
            base.metrics.refused_low_space.inc();
            let refusal = inbound::Refusal::low_space(h.id, envelope_digest);
            match inbound::sign_rejection(&refusal, &authority.me, &peer, now, key) {
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

/// Answers a parcel whose message id was received before (`original`):
/// the original receipt for a true duplicate, or a signed `id_conflict`
/// rejection, with an alarm, when another sender or another envelope
/// claims the id ([`inbound::duplicate`]).
async fn answer_duplicate(
    side: &PeerSide,
    peer: &AuthorityId,
    original: &InboxRecord,
    msg_id: MessageId,
    envelope_digest: Digest,
    send: &mut quinn::SendStream,
) {
    let base = &side.base;
    match inbound::duplicate(original, peer, msg_id, envelope_digest) {
        Ok(receipt) => {
            info!(%msg_id, from = %peer, "duplicate delivery: sending the original receipt again");
            base.metrics.duplicates.inc();
            if let Err(e) = write_frame(send, &receipt).await {
                debug!(%peer, error = %e, "could not send the receipt (the sender will retry)");
            }
        }
        Err(refusal) => {
            error!(
                %msg_id,
                from = %peer,
                first_from = %original.from,
                code = %refusal.code,
                "message id conflict: another message was received under this id before; \
                 a member may be pre-empting another's message ids"
            );
            base.metrics.id_conflicts.inc();
            refuse(side, peer, refusal, send).await;
        }
    }
}

/// A peer asks this relay to witness (cosign) its newest checkpoint, or to
/// prove entries of ours.
async fn serve_peer_request(
    side: &PeerSide,
    peer: &AuthorityId,
    bytes: &[u8],
    send: &mut quinn::SendStream,
) {
    let (base, authority) = (&side.base, &side.authority);
    let response = match PeerRequest::decode(bytes) {
        Ok(PeerRequest::Cosign {
            checkpoint,
            old_size,
            proof,
        }) => {
            let mut gate = side.cosigning.witness.lock().await;
            let last = match base.store.witnessed(peer) {
                Ok(w) => w,
                Err(e) => {
                    error!(%peer, error = %e, "cannot read what was witnessed");
                    return;
                }
            };
            let (now, mono) = (base.now(), std::time::Instant::now());
            if let Err(too_soon) = gate.check(peer, mono) {
                // Checked first, and nothing is written: a peer asking
                // more often grows this log by nothing.
                debug!(%peer, reason = %too_soon, "refused to cosign a peer checkpoint");
                let response = PeerResponse::Refused {
                    reason: too_soon.to_string(),
                    witnessed_size: last.map_or(0, |w| w.size),
                };
                if let Ok(bytes) = response.encode() {
                    let _ = write_frame(send, &bytes).await;
                }
                return;
            }
            let proof: Vec<kurir_proto::Digest> = proof
                .iter()
                .filter_map(|b| kurir_proto::Digest::from_slice(&b.0))
                .collect();
            // Any log key the roster lets the peer sign with now: across
            // its log-key rotation, the old key until its end.
            let outcome = witness_any(
                &checkpoint,
                old_size,
                &proof,
                peer,
                &authority.roster().log_keys_at(peer, now),
                last,
                &authority.me,
                &authority.log_key(),
                now,
            );
            match outcome {
                Ok(c) => {
                    // The same checkpoint again: cosigned, no new entry.
                    if c.fresh {
                        let entry = events::peer_checkpoint(now, peer, &c);
                        if let Err(e) = base
                            .store
                            .set_witnessed(peer, c.witnessed, vec![entry])
                            .await
                        {
                            error!(%peer, error = %e, "cannot store a witnessed checkpoint");
                            return;
                        }
                    }
                    gate.cosigned(peer, mono);
                    debug!(%peer, size = c.witnessed.size, fresh = c.fresh, "cosigned a peer checkpoint");
                    PeerResponse::Cosigned { note: c.note }
                }
                Err(refusal) => {
                    let reason = refusal.to_string();
                    warn!(%peer, %reason, "refused to cosign a peer checkpoint");
                    PeerResponse::Refused {
                        reason,
                        witnessed_size: last.map_or(0, |w| w.size),
                    }
                }
            }
        }
        Ok(PeerRequest::Prove { indexes }) => proofs::serve(&base.store, peer, &indexes),
        Ok(PeerRequest::Rosters {
            version,
            fingerprint,
        }) => side.rosters.answer(peer, version, &fingerprint),
        Err(e) => PeerResponse::Refused {
            reason: format!("malformed request: {e}"),
            witnessed_size: 0,
        },
    };
    if let Ok(bytes) = response.encode() {
        let _ = write_frame(send, &bytes).await;
    }
}

/// Refuses a parcel: records the refusal with the signed rejection, then
/// sends the rejection back.
async fn refuse(
    side: &PeerSide,
    peer: &AuthorityId,
    refusal: inbound::Refusal,
    send: &mut quinn::SendStream,
) {
    let (base, authority) = (&side.base, &side.authority);
    let now = base.now();
    warn!(%peer, code = %refusal.code, detail = %refusal.detail, "refused a parcel");
    base.metrics.refused_parcels.inc();
    let rejected = match authority
        .message_keys()
        .at(now)
        .map_err(|e| e.to_string())
        .and_then(|key| {
            inbound::reject(refusal, &authority.me, peer, now, key).map_err(|e| e.to_string())
        }) {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot sign a rejection (the sender retries)");
            let _ = send.reset(CLOSE_REFUSED.into());
            return;
        }
    };
    if let Err(e) = base
        .store
        .record_refusal(rejected.record, vec![rejected.entry])
        .await
    {
        // Not recorded, so not sent: the sender tries again later.
        if e.is_low_space() {
            base.metrics.refused_low_space.inc();
        }
        error!(error = %e, "cannot store a refusal");
        let _ = send.reset(CLOSE_REFUSED.into());
        return;
    }
    let _ = write_frame(send, &rejected.receipt).await;
}
