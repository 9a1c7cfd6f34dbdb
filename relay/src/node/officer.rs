//! The officer API: one request, one response on each stream (`subscribe`
//! streams events instead). Submissions, inbox and sent lists, fetching a
//! message, read marks, delivery status, readmission cases and deadlines,
//! and the audit export; the summaries and statuses these answers carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kurir_proto::api::{
    DeliveryStatus, ErrorCode, MAX_STATUS_WAIT_MS, Request, Response, Submission, Summary,
};
use kurir_proto::audit::{Entry, Record};
use kurir_proto::{AuthorityId, EncodedMessage, Header, Message, MessageId, frame, seal_encoded};
use rand::RngExt;
use tokio::sync::{broadcast, oneshot};
use tracing::{error, info, warn};

use super::clock::{case_with, erase_due, tick_cases};
use super::{CLOSE_REFUSED, FrameReadError, Shared, read_frame, serve_streams, write_frame};
use crate::core::deadline::is_case_kind;
use crate::core::delivery::{Delivery, DeliveryState};
use crate::store::{InboxRecord, OutboundRecord, ReadMark, Store};

/// Largest officer request beyond the parcel limit (headers, framing).
const REQUEST_OVERHEAD: usize = 64 * 1024;

pub(super) async fn serve_officer(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    officer: &kurir_certs::tls::Officer,
) {
    serve_streams(shared, conn, |send, recv| {
        officer_stream(shared.clone(), officer.clone(), send, recv)
    })
    .await;
}

async fn officer_stream(
    shared: Arc<Shared>,
    officer: kurir_certs::tls::Officer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let max = shared.config.max_parcel_bytes + REQUEST_OVERHEAD;
    let response = match read_frame(&mut recv, max).await {
        Ok(bytes) => match Request::decode(&bytes) {
            Ok(Request::Subscribe) => {
                subscribe(&shared, &mut send).await;
                return;
            }
            Ok(req) => handle_request(&shared, &officer, req).await,
            Err(e) => Response::error(ErrorCode::BadRequest, format!("malformed request: {e}")),
        },
        Err(FrameReadError::TooLarge(e)) => {
            let _ = recv.stop(CLOSE_REFUSED.into());
            Response::error(ErrorCode::BadRequest, e.to_string())
        }
        Err(FrameReadError::Io(_)) => return,
    };
    match response.encode() {
        Ok(bytes) => {
            let _ = write_frame(&mut send, &bytes).await;
        }
        Err(e) => error!(error = %e, "cannot encode a response"),
    }
}

async fn subscribe(shared: &Shared, send: &mut quinn::SendStream) {
    let mut arrivals = shared.arrivals.subscribe();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            got = arrivals.recv() => match got {
                Ok(summary) => {
                    let Ok(bytes) = (Response::Event { summary }).encode() else { continue };
                    let Ok(framed) = frame::encode(&bytes, frame::HARD_MAX_FRAME) else { continue };
                    if send.write_all(&framed).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "a subscriber fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = send.stopped() => return,
            _ = shutdown.changed() => {
                let _ = send.finish();
                return;
            }
        }
    }
}

async fn handle_request(
    shared: &Shared,
    officer: &kurir_certs::tls::Officer,
    req: Request,
) -> Response {
    use kurir_certs::officer::Role;
    let unavailable = storage_failed;
    match req {
        Request::Whoami => Response::Identity {
            authority: shared.me.clone(),
            officer: officer.name.clone(),
            role: officer.role.as_str().to_owned(),
        },
        Request::Submit(s) => {
            if officer.role == Role::Auditor {
                return Response::error(
                    ErrorCode::Forbidden,
                    "auditors may read and verify, not send: use an officer certificate",
                );
            }
            if shared.stopping() {
                return Response::error(ErrorCode::Unavailable, "the relay is shutting down");
            }
            submit(shared, officer, s).await
        }
        Request::Inbox {
            unread_only,
            kind,
            case_id,
        } => match shared.store.inbox_all() {
            Ok(all) => Response::List {
                items: all
                    .iter()
                    .filter(|r| !unread_only || r.read.is_none())
                    .filter(|r| kind.is_none_or(|k| r.kind == k))
                    .filter(|r| {
                        case_id
                            .as_ref()
                            .is_none_or(|c| r.case_id.as_ref() == Some(c))
                    })
                    .filter_map(summary_of_inbox)
                    .collect(),
            },
            Err(e) => unavailable(e),
        },
        Request::Sent => match shared.store.outbound_heads() {
            Ok(all) => Response::List {
                items: all.iter().filter_map(summary_of_outbound).collect(),
            },
            Err(e) => unavailable(e),
        },
        Request::Fetch { msg_id } => {
            // What is due for erasure is erased before anything is shown.
            if let Err(e) = erase_due(shared).await {
                return unavailable(e);
            }
            match (shared.store.inbox(msg_id), shared.store.outbound(msg_id)) {
                (Ok(Some(r)), _) => match summary_of_inbox(&r) {
                    Some(summary) => message_response(
                        shared,
                        summary,
                        &r.parcel,
                        r.erased.as_ref(),
                        Some(r.receipt.clone()),
                    ),
                    None => Response::error(ErrorCode::Unavailable, "stored message is damaged"),
                },
                (Ok(None), Ok(Some(o))) => match summary_of_outbound(&o) {
                    Some(summary) => {
                        message_response(shared, summary, &o.parcel, o.erased.as_ref(), None)
                    }
                    None => Response::error(ErrorCode::Unavailable, "stored message is damaged"),
                },
                (Ok(None), Ok(None)) => not_found(msg_id),
                (Err(e), _) | (_, Err(e)) => unavailable(e),
            }
        }
        Request::MarkRead { msg_id } => {
            if officer.role == Role::Auditor {
                return Response::error(ErrorCode::Forbidden, "auditors do not mark messages read");
            }
            let now = shared.now();
            let mark = ReadMark {
                at: now,
                by: officer.name.clone(),
            };
            let entry = Entry::new(
                now,
                Record::Read {
                    msg_id,
                    officer: officer.serial.clone(),
                },
            );
            match shared.store.mark_read(msg_id, mark, vec![entry]).await {
                Ok(Some(r)) => Response::Marked {
                    msg_id,
                    read_at: r.read.map_or(now, |m| m.at),
                },
                Ok(None) => not_found(msg_id),
                Err(e) => unavailable(e),
            }
        }
        Request::Status { msg_id, wait_ms } => match wait_ms {
            None => status(shared, msg_id),
            Some(ms) => status_when_settled(shared, msg_id, ms).await,
        },
        Request::Case { case_id } => {
            if let Err(e) = tick_cases(shared).await {
                return unavailable(e);
            }
            match shared.store.case(&case_id) {
                Ok(Some(case)) => Response::Case(case.view(&shared.config.agreements)),
                Ok(None) => Response::error(
                    ErrorCode::NotFound,
                    format!("no readmission case {case_id} at this relay"),
                ),
                Err(e) => unavailable(e),
            }
        }
        Request::Deadlines { overdue_only } => {
            if let Err(e) = tick_cases(shared).await {
                return unavailable(e);
            }
            let today = shared.now().date();
            match shared.store.cases() {
                Ok(cases) => {
                    let mut items: Vec<_> = cases
                        .iter()
                        .flat_map(|c| c.deadlines(today, &shared.config.agreements))
                        .filter(|d| !overdue_only || d.overdue)
                        .collect();
                    items.sort_by(|a, b| a.due.cmp(&b.due).then(a.case_id.cmp(&b.case_id)));
                    Response::Deadlines { items }
                }
                Err(e) => unavailable(e),
            }
        }
        Request::AuditExport => {
            if officer.role == Role::Officer {
                return Response::error(
                    ErrorCode::Forbidden,
                    "exporting the audit log needs an auditor or admin certificate",
                );
            }
            match crate::audit::collect(&shared.store, shared.now()) {
                Ok(Some(bundle)) => match bundle.encode() {
                    Ok(bundle) => {
                        info!(officer = %officer.name, role = %officer.role, size = bundle.len(), "audit log exported");
                        Response::AuditBundle { bundle }
                    }
                    Err(e) => Response::error(ErrorCode::Unavailable, e.to_string()),
                },
                Ok(None) => Response::error(ErrorCode::Unavailable, "the relay has no log yet"),
                Err(e) => Response::error(ErrorCode::Unavailable, e.to_string()),
            }
        }
        Request::Subscribe => Response::error(ErrorCode::BadRequest, "subscribe on its own stream"),
    }
}

/// Checks an officer's readmission message against its case before it is signed.
fn check_case(
    shared: &Shared,
    s: &Submission,
    message: &Message,
    to: &[AuthorityId],
) -> Result<(), String> {
    let case_id = s
        .case_id
        .as_ref()
        .ok_or_else(|| format!("a {} must name its case", s.kind))?;
    let existing = shared
        .store
        .case(case_id)
        .map_err(|e| format!("the relay's storage failed: {e}"))?;
    match (message, existing) {
        (Message::ReadmissionRequest(_), Some(_)) => Err(format!(
            "case {case_id} exists already; a new request needs a new case id"
        )),
        (Message::ReadmissionRequest(_), None) => {
            if case_id.authority() != shared.me {
                return Err(format!(
                    "case {case_id} belongs to {}; cases this relay opens start with {}:",
                    case_id.authority(),
                    shared.me
                ));
            }
            Ok(())
        }
        (_, None) => Err(format!(
            "no readmission case {case_id} at this relay: check the case id (kurir case, kurir inbox)"
        )),
        (_, Some(case)) => {
            let other = if case.requesting == shared.me {
                &case.requested
            } else {
                &case.requesting
            };
            if to != std::slice::from_ref(other) {
                return Err(format!("messages of case {case_id} go to {other} only"));
            }
            case.check_outgoing(&shared.me, message, &shared.config.agreements)
                .map_err(|e| e.0)
        }
    }
}

/// The delivery status of a sent message: per recipient, the stored state,
/// or the outbox's live state while an attempt is under way.
fn status(shared: &Shared, msg_id: MessageId) -> Response {
    let record = match shared.store.outbound_head(msg_id) {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(msg_id),
        Err(e) => return storage_failed(e),
    };
    let stored = match shared.store.deliveries_of(msg_id) {
        Ok(d) => d,
        Err(e) => return storage_failed(e),
    };
    // The outbox knows about attempts on the wire right now.
    let live: HashMap<AuthorityId, Delivery> = shared
        .outbox
        .lock()
        .map(|o| {
            record
                .to
                .iter()
                .filter_map(|p| o.get(msg_id, p).map(|d| (p.clone(), d.clone())))
                .collect()
        })
        .unwrap_or_default();
    let deliveries = stored
        .into_iter()
        .map(|d| {
            live.get(&d.peer)
                .cloned()
                .filter(|_| !d.state.is_final())
                .unwrap_or(d)
        })
        .map(|d| {
            let inclusion = match d.state {
                DeliveryState::Delivered { .. } => shared
                    .store
                    .receipt_proof(msg_id, &d.peer)
                    .unwrap_or_default(),
                _ => None,
            };
            DeliveryStatus {
                inclusion,
                ..delivery_status(d)
            }
        })
        .collect();
    match summary_of_outbound(&record) {
        Some(summary) => Response::Status {
            summary,
            deliveries,
        },
        None => Response::error(ErrorCode::Unavailable, "stored message is damaged"),
    }
}

/// Whether every delivery in a status answer is final.
fn settled(response: &Response) -> bool {
    match response {
        Response::Status { deliveries, .. } => deliveries.iter().all(DeliveryStatus::is_final),
        _ => true,
    }
}

/// Answers a `status` request with a wait: once every delivery is final, or
/// after `wait_ms` (at most [`MAX_STATUS_WAIT_MS`]), or at shutdown, with the
/// status as it is then.
async fn status_when_settled(shared: &Shared, msg_id: MessageId, wait_ms: u64) -> Response {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(wait_ms.min(MAX_STATUS_WAIT_MS));
    let mut shutdown = shared.shutdown.clone();
    loop {
        // Watch before reading, so a delivery that becomes final between
        // the read and the wait still wakes us.
        let mut change = shared.settled.watch(msg_id);
        let response = status(shared, msg_id);
        if settled(&response) {
            return response;
        }
        tokio::select! {
            _ = change.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return status(shared, msg_id),
            _ = shutdown.changed() => return response,
        }
    }
}

/// Wakes the `status` requests waiting on a message when one of its
/// deliveries becomes final.
#[derive(Debug, Default)]
pub(super) struct Settled {
    waiting: Mutex<HashMap<MessageId, Vec<oneshot::Sender<()>>>>,
}

impl Settled {
    /// Registers interest in `msg_id`'s next final delivery.
    fn watch(&self, msg_id: MessageId) -> Change<'_> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.entry(msg_id).or_default().push(tx);
        }
        Change {
            settled: self,
            msg_id,
            rx,
        }
    }

    /// Called once a final state of one of `msg_id`'s deliveries is stored.
    pub(super) fn notify(&self, msg_id: MessageId) {
        let woken = self.waiting.lock().ok().and_then(|mut w| w.remove(&msg_id));
        for tx in woken.into_iter().flatten() {
            let _ = tx.send(());
        }
    }
}

/// One registration with [`Settled`]; removes itself when dropped, so
/// waits that time out leave nothing behind.
struct Change<'a> {
    settled: &'a Settled,
    msg_id: MessageId,
    rx: oneshot::Receiver<()>,
}

impl Change<'_> {
    async fn changed(&mut self) {
        let _ = (&mut self.rx).await;
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.rx.close();
        let Ok(mut w) = self.settled.waiting.lock() else {
            return;
        };
        if let Some(list) = w.get_mut(&self.msg_id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                w.remove(&self.msg_id);
            }
        }
    }
}

fn storage_failed(e: crate::store::StoreError) -> Response {
    error!(error = %e, "storage error while serving an officer");
    Response::error(
        ErrorCode::Unavailable,
        format!("the relay's storage failed: {e}"),
    )
}

fn not_found(msg_id: MessageId) -> Response {
    Response::error(
        ErrorCode::NotFound,
        format!("no message {msg_id} at this relay (check the id with `kurir inbox`)"),
    )
}

async fn submit(
    shared: &Shared,
    officer: &kurir_certs::tls::Officer,
    mut s: Submission,
) -> Response {
    let bad = |m: String| Response::error(ErrorCode::BadRequest, m);
    let now = shared.now();
    // The body's bytes go into the parcel as they are (decoding proved them
    // the message's deterministic encoding).
    let encoded = match EncodedMessage::decode(s.kind, std::mem::take(&mut s.body)) {
        Ok(m) => m,
        Err(e) => return bad(e.to_string()),
    };
    let message = encoded.message();
    if s.to.is_empty() {
        return bad("no recipient: name at least one authority".into());
    }
    for to in &s.to {
        if shared.roster.member(to).is_none() {
            return bad(format!(
                "{to} is not a member of the federation (roster version {})",
                shared.roster.version()
            ));
        }
        if !shared.roster.accepts(to, s.kind) {
            return bad(format!(
                "{to} does not accept {} messages (see the roster)",
                s.kind
            ));
        }
    }
    // ThreadRng is not Send: draw everything random before any await.
    let (random_id, salt): ([u8; 10], [u8; 32]) = {
        let mut rng = rand::rng();
        (rng.random(), rng.random())
    };
    let mut to = s.to.clone();
    to.sort();
    to.dedup();
    // Readmission messages must fit their case; the case is updated in the
    // same commit as the message.
    let _case_guard = if is_case_kind(s.kind) {
        Some(shared.cases_lock.lock().await)
    } else {
        None
    };
    if _case_guard.is_some()
        && let Err(reason) = check_case(shared, &s, message, &to)
    {
        return bad(reason);
    }
    let header = Header {
        id: MessageId::new_v7(now.0, random_id),
        kind: s.kind,
        from: shared.me.clone(),
        to: to.clone(),
        created_at: now,
        expires_at: now.plus_millis(s.expires_in_ms.unwrap_or(shared.config.default_expiry_ms)),
        case_id: s.case_id.clone(),
        in_reply_to: s.in_reply_to,
        procedure: s.procedure,
        handling: s.handling,
        legal_basis: s.legal_basis.clone(),
        body_digest: kurir_proto::Digest([0; 32]),
    };
    let (parcel, message) = match seal_encoded(header.clone(), encoded, salt, &shared.message_key) {
        Ok(sealed) => sealed,
        Err(e) => return bad(e.to_string()),
    };
    let bytes = parcel.to_bytes();
    if bytes.len() > shared.config.max_parcel_bytes {
        return bad(format!(
            "the message is {} bytes, over the limit of {} (attachments too large?)",
            bytes.len(),
            shared.config.max_parcel_bytes
        ));
    }
    let record = OutboundRecord {
        msg_id: header.id,
        kind: header.kind,
        to: to.clone(),
        case_id: header.case_id.clone(),
        created_at: now,
        expires_at: header.expires_at,
        submitted_by: officer.name.clone(),
        parcel: bytes,
        erased: None,
    };
    let deliveries: Vec<Delivery> = to
        .iter()
        .map(|p| Delivery {
            msg_id: header.id,
            peer: p.clone(),
            expires_at: header.expires_at,
            attempts: 0,
            state: DeliveryState::Queued,
        })
        .collect();
    let case = if _case_guard.is_some() {
        case_with(
            shared,
            &header,
            &message,
            Summary::of(&header, now, None),
            now,
        )
    } else {
        None
    };
    let submitted = Entry::new(
        now,
        Record::Submitted {
            msg_id: header.id,
            envelope_digest: parcel.envelope_digest(),
            kind: header.kind,
            to: to.clone(),
            case_id: header.case_id.clone(),
            officer: officer.serial.clone(),
        },
    );
    if let Err(e) = shared
        .store
        .submit(record, deliveries.clone(), case, vec![submitted])
        .await
    {
        if e.is_low_space() {
            warn!(officer = %officer.name, error = %e, "refused a submission");
            shared.metrics.refused_low_space.inc();
        } else {
            error!(error = %e, "cannot store a submission");
        }
        return Response::error(ErrorCode::Unavailable, format!("not stored: {e}"));
    }
    info!(msg_id = %header.id, kind = %header.kind, to = ?to.iter().map(AuthorityId::as_str).collect::<Vec<_>>(), officer = %officer.name, "submitted");
    shared.metrics.submitted.inc();
    if let Ok(mut outbox) = shared.outbox.lock() {
        for d in deliveries {
            outbox.insert(d);
        }
    }
    shared.wake.notify_one();
    Response::Submitted {
        msg_id: header.id,
        created_at: now,
    }
}

/// Reads the header back out of a stored parcel (its signature was checked
/// when it was stored).
fn stored_header(stored: &[u8]) -> Option<Header> {
    kurir_proto::envelope::header_unverified(&Store::envelope(stored)?)
}

/// A fetched message: the parcel in clear, or only its envelope once the
/// body was erased.
fn message_response(
    shared: &Shared,
    summary: Summary,
    stored: &[u8],
    erased: Option<&crate::store::Erased>,
    receipt: Option<Vec<u8>>,
) -> Response {
    let parcel = match erased {
        Some(_) => Store::envelope(stored),
        None => match shared.store.parcel(summary.msg_id, stored) {
            Ok(p) => p,
            Err(e) => {
                error!(msg_id = %summary.msg_id, error = %e, "cannot read a stored body");
                return Response::error(ErrorCode::Unavailable, format!("stored body: {e}"));
            }
        },
    };
    match parcel {
        Some(parcel) => Response::Message {
            summary,
            parcel,
            receipt,
            erased: erased.map(|e| kurir_proto::api::ErasedBody {
                at: e.at,
                policy: e.policy.clone(),
            }),
        },
        None => Response::error(ErrorCode::Unavailable, "stored message is damaged"),
    }
}

fn summary_of_inbox(r: &InboxRecord) -> Option<Summary> {
    let h = stored_header(&r.parcel)?;
    Some(Summary::of(
        &h,
        r.received_at,
        r.read.as_ref().map(|m| m.at),
    ))
}

fn summary_of_outbound(r: &OutboundRecord) -> Option<Summary> {
    let h = stored_header(&r.parcel)?;
    Some(Summary::of(&h, r.created_at, None))
}

fn delivery_status(d: Delivery) -> DeliveryStatus {
    let (at, reason, receipt) = match &d.state {
        DeliveryState::Queued | DeliveryState::Sending { .. } => (None, None, None),
        DeliveryState::Retrying {
            next_at,
            last_error,
        } => (Some(*next_at), Some(last_error.clone()), None),
        DeliveryState::Delivered { at, receipt } => (Some(*at), None, Some(receipt.clone())),
        DeliveryState::Rejected {
            at,
            code,
            detail,
            receipt,
        } => (
            Some(*at),
            Some(match detail {
                Some(d) => format!("{code}: {d}"),
                None => code.clone(),
            }),
            Some(receipt.clone()),
        ),
        DeliveryState::Expired { at } => (Some(*at), None, None),
    };
    DeliveryStatus {
        peer: d.peer,
        state: d.state.name().to_owned(),
        attempts: d.attempts,
        at,
        reason,
        receipt,
        inclusion: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::Duration;

    fn waiting(s: &Settled) -> usize {
        s.waiting.lock().unwrap().values().map(Vec::len).sum()
    }

    #[tokio::test]
    async fn a_final_delivery_wakes_every_waiter_of_its_message_and_ended_waits_leave_nothing() {
        let s = Settled::default();
        let id = MessageId::new_v7(1, [1; 10]);
        let other = MessageId::new_v7(1, [2; 10]);
        {
            let _a = s.watch(id);
            let _b = s.watch(id);
            assert_eq!(waiting(&s), 2);
        }
        assert_eq!(waiting(&s), 0, "waits that ended are forgotten");

        let mut a = s.watch(id);
        let mut b = s.watch(id);
        let mut c = s.watch(other);
        s.notify(id);
        let woken = Duration::from_secs(5);
        tokio::time::timeout(woken, a.changed())
            .await
            .expect("a woken");
        tokio::time::timeout(woken, b.changed())
            .await
            .expect("b woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), c.changed())
                .await
                .is_err(),
            "another message's waiter stays asleep"
        );
        assert_eq!(waiting(&s), 1);
        drop((a, b, c));
        assert_eq!(waiting(&s), 0);
    }
}
