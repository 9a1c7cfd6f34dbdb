//! The officer API: one request, one response on each stream (`subscribe`
//! streams events instead). Submissions (built by [`crate::core::submit`]),
//! inbox and sent lists, fetching a message ([`super::fetch`]), read marks, delivery status
//! ([`super::status`]), readmission cases and deadlines, and the audit
//! export; the summaries these answers carry.

use std::sync::Arc;

use kurir_proto::api::{ErrorCode, Request, Response, Submission, Summary};
use kurir_proto::{AuthorityId, Header, MessageId, frame};
use rand::RngExt;
use tokio::sync::broadcast;
use tracing::{error, info, warn};

use super::conn::{FrameReadError, read_frame, serve_streams, write_frame};
use super::fetch::fetch;
use super::outbox::Deliveries;
use super::status::{status, status_when_settled};
use super::upkeep::tick_cases;
use super::{Authority, Base, CLOSE_REFUSED, Cases, log_case_change};
use crate::core::events;
use crate::core::submit::{self, Draws, Sealing, SubmitContext, Submitted};
use crate::store::{InboxRecord, OutboundRecord, ReadMark, Store, ToSign};

/// What serving an officer's streams uses.
#[derive(Clone)]
pub(super) struct OfficerSide {
    pub(super) base: Arc<Base>,
    pub(super) authority: Arc<Authority>,
    pub(super) deliveries: Arc<Deliveries>,
    pub(super) cases: Arc<Cases>,
    /// Summaries of messages received, for `subscribe` streams.
    pub(super) arrivals: broadcast::Sender<Summary>,
}

/// Largest officer request beyond the parcel limit (headers, framing).
const REQUEST_OVERHEAD: usize = 64 * 1024;

pub(super) async fn serve_officer(
    side: &OfficerSide,
    conn: &quinn::Connection,
    officer: &kurir_certs::tls::Officer,
) {
    serve_streams(&side.base, conn, |send, recv| {
        officer_stream(side.clone(), officer.clone(), send, recv)
    })
    .await;
}

async fn officer_stream(
    side: OfficerSide,
    officer: kurir_certs::tls::Officer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let max = side.base.config.max_parcel_bytes + REQUEST_OVERHEAD;
    // The frame is dropped once decoded: a large submission's bytes are
    // not held while the request is served (a `submit_wait` for as long
    // as its wait).
    let request = match read_frame(&mut recv, max, side.base.config.read_timeout).await {
        Ok(bytes) => Request::decode(&bytes)
            .map_err(|e| Response::error(ErrorCode::BadRequest, format!("malformed request: {e}"))),
        Err(FrameReadError::TooLarge(e)) => {
            let _ = recv.stop(CLOSE_REFUSED.into());
            Err(Response::error(ErrorCode::BadRequest, e.to_string()))
        }
        Err(FrameReadError::Io(_)) => return,
    };
    let response = match request {
        Ok(Request::Subscribe) => {
            subscribe(&side, &mut send).await;
            return;
        }
        Ok(Request::SubmitWait {
            submission,
            wait_ms,
        }) => {
            submit_wait(&side, &officer, submission, wait_ms, &mut send).await;
            return;
        }
        Ok(req) => durable(&side, handle_request(&side, &officer, req).await).await,
        Err(refused) => refused,
    };
    match response.encode() {
        Ok(bytes) => {
            let _ = write_frame(&mut send, &bytes).await;
        }
        Err(e) => error!(error = %e, "cannot encode a response"),
    }
}

/// `response` once what it was read from is on disk: the store shows a
/// commit to readers before its flush, so an answer read from it (a
/// `status` saying `delivered`, a message in the inbox) goes out only once
/// that is on disk.
async fn durable(side: &OfficerSide, response: Response) -> Response {
    match side.base.store.reads_durable().await {
        Ok(()) => response,
        Err(e) => storage_failed(e),
    }
}

/// `submit_wait`: the submission's answer as `submit` gives it, then, for a
/// message taken, its status as `status` with `wait_ms` gives it; the
/// stream is finished after the last answer.
async fn submit_wait(
    side: &OfficerSide,
    officer: &kurir_certs::tls::Officer,
    submission: Submission,
    wait_ms: u64,
    send: &mut quinn::SendStream,
) {
    let first = durable(
        side,
        handle_request(side, officer, Request::Submit(submission)).await,
    )
    .await;
    let taken = match &first {
        Response::Submitted { msg_id, .. } => Some(*msg_id),
        _ => None,
    };
    if !write_response(send, &first).await {
        return;
    }
    if let Some(msg_id) = taken {
        // An officer that goes away (its stream stopped, its connection
        // closed) ends the wait.
        let status = tokio::select! {
            status = status_when_settled(&side.base, &side.deliveries, msg_id, wait_ms) => status,
            _ = send.stopped() => return,
        };
        if !write_response(send, &durable(side, status).await).await {
            return;
        }
    }
    let _ = send.finish();
}

async fn subscribe(side: &OfficerSide, send: &mut quinn::SendStream) {
    let mut arrivals = side.arrivals.subscribe();
    let mut shutdown = side.base.shutdown.clone();
    // In place: the officer may now send what it waits for an answer to.
    if !write_response(send, &Response::Subscribed).await {
        return;
    }
    loop {
        tokio::select! {
            got = arrivals.recv() => match got {
                Ok(summary) => {
                    if !write_response(send, &Response::Event { summary }).await {
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

/// Writes one frame of a stream with several answers (a subscription's,
/// a `submit_wait`'s); `false` once the officer is gone. A response that
/// cannot be encoded is left out, and logged as `officer_stream` logs it.
async fn write_response(send: &mut quinn::SendStream, response: &Response) -> bool {
    let framed = response
        .encode()
        .map_err(|e| e.to_string())
        .and_then(|bytes| frame::encode(&bytes, frame::HARD_MAX_FRAME).map_err(|e| e.to_string()));
    match framed {
        Ok(framed) => send.write_all(&framed).await.is_ok(),
        Err(e) => {
            error!(error = %e, "cannot encode a response");
            true
        }
    }
}

async fn handle_request(
    side: &OfficerSide,
    officer: &kurir_certs::tls::Officer,
    req: Request,
) -> Response {
    use kurir_certs::officer::Role;
    let base = &side.base;
    let unavailable = storage_failed;
    match req {
        Request::Whoami => Response::Identity {
            authority: side.authority.me.clone(),
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
            if base.stopping() {
                return Response::error(ErrorCode::Unavailable, "the relay is shutting down");
            }
            submit(side, officer, s).await
        }
        Request::Inbox {
            unread_only,
            kind,
            case_id,
        } => match base.store.inbox_all() {
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
        Request::Sent => match base.store.outbound_heads() {
            Ok(all) => Response::List {
                items: all.iter().filter_map(summary_of_outbound).collect(),
            },
            Err(e) => unavailable(e),
        },
        Request::Fetch {
            msg_id,
            envelope_only,
        } => fetch(side, officer, msg_id, envelope_only).await,
        Request::MarkRead { msg_id } => {
            if officer.role == Role::Auditor {
                return Response::error(ErrorCode::Forbidden, "auditors do not mark messages read");
            }
            let now = base.now();
            let mark = ReadMark {
                at: now,
                by: officer.name.clone(),
            };
            let entry = events::read(now, msg_id, officer);
            match base.store.mark_read(msg_id, mark, vec![entry]).await {
                Ok(Some(r)) => Response::Marked {
                    msg_id,
                    read_at: r.read.map_or(now, |m| m.at),
                },
                Ok(None) => not_found(msg_id),
                Err(e) => unavailable(e),
            }
        }
        Request::Status { msg_id, wait_ms } => match wait_ms {
            None => status(base, &side.deliveries, msg_id),
            Some(ms) => status_when_settled(base, &side.deliveries, msg_id, ms).await,
        },
        Request::Case { case_id } => {
            if let Err(e) = tick_cases(base, &side.cases).await {
                return unavailable(e);
            }
            match base.store.case(&case_id) {
                Ok(Some(case)) => Response::Case(case.view(&base.config.agreements)),
                Ok(None) => Response::error(
                    ErrorCode::NotFound,
                    format!("no readmission case {case_id} at this relay"),
                ),
                Err(e) => unavailable(e),
            }
        }
        Request::Deadlines { overdue_only } => {
            if let Err(e) = tick_cases(base, &side.cases).await {
                return unavailable(e);
            }
            let today = base.now().date();
            match base.store.cases() {
                Ok(cases) => {
                    let mut items: Vec<_> = cases
                        .iter()
                        .flat_map(|c| c.deadlines(today, &base.config.agreements))
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
            match crate::audit::collect(&base.store, base.now()) {
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
        Request::SubmitWait { .. } => {
            Response::error(ErrorCode::BadRequest, "submit_wait on its own stream")
        }
    }
}

pub(super) fn storage_failed(e: crate::store::StoreError) -> Response {
    error!(error = %e, "storage error while serving an officer");
    Response::error(
        ErrorCode::Unavailable,
        format!("the relay's storage failed: {e}"),
    )
}

pub(super) fn not_found(msg_id: MessageId) -> Response {
    Response::error(
        ErrorCode::NotFound,
        format!("no message {msg_id} at this relay (check the id with `kurir inbox`)"),
    )
}

async fn submit(
    side: &OfficerSide,
    officer: &kurir_certs::tls::Officer,
    s: Submission,
) -> Response {
    let bad = |m: String| Response::error(ErrorCode::BadRequest, m);
    let (base, authority) = (&side.base, &side.authority);
    let now = base.now();
    // ThreadRng is not Send: draw everything random before any await.
    let draws = {
        let mut rng = rand::rng();
        Draws {
            id: rng.random(),
            salt: rng.random(),
        }
    };
    // A readmission message is checked against its case as stored, and the
    // case updated in the same commit as the message: one at a time.
    let _case_guard = side.cases.guard(s.kind).await;
    let stored_case = match (&_case_guard, &s.case_id) {
        (Some(_), Some(case_id)) => match base.store.case(case_id) {
            Ok(case) => case,
            Err(e) => return bad(format!("the relay's storage failed: {e}")),
        },
        _ => None,
    };
    // The key valid at `now` (the header's `created_at`) signs.
    let message_keys = authority.message_keys();
    let message_key = match message_keys.at(now) {
        Ok(key) => key,
        Err(e) => {
            error!(officer = %officer.name, error = %e, "refused a submission: no message key is valid");
            return Response::error(ErrorCode::Unavailable, e.to_string());
        }
    };
    let ctx = SubmitContext {
        me: &authority.me,
        now,
        message_key,
        default_expiry_ms: base.config.default_expiry_ms,
        sign_in_batches: base.config.sign_in_batches,
        max_parcel_bytes: base.config.max_parcel_bytes,
        agreements: &base.config.agreements,
    };
    let Submitted {
        header,
        mut record,
        sealing,
        deliveries,
        case,
        entry,
    } = match submit::submit(s, officer, &*authority.roster(), stored_case, draws, &ctx) {
        Ok(submitted) => submitted,
        Err(refusal) => return bad(refusal.to_string()),
    };
    log_case_change(&case, &header);
    let created_at = record.created_at;
    let (store, case, audit) = (&base.store, case.into_case(), vec![entry]);
    let stored = match sealing {
        Sealing::Signed(parcel) => {
            record.parcel = parcel;
            store.submit(record, deliveries.clone(), case, audit).await
        }
        // Signed by the store with the others of its group commit.
        Sealing::Unsigned(unsigned) => {
            let to_sign = ToSign {
                unsigned: *unsigned,
                key: Arc::new(message_key.clone()),
                max_parcel: base.config.max_parcel_bytes,
            };
            store
                .submit_unsigned(record, to_sign, deliveries.clone(), case, audit)
                .await
        }
    };
    let parcel = match stored {
        Ok(parcel) => parcel,
        Err(e) => {
            if e.is_low_space() {
                warn!(officer = %officer.name, error = %e, "refused a submission");
                base.metrics.refused_low_space.inc();
            } else {
                error!(error = %e, "cannot store a submission");
            }
            return Response::error(ErrorCode::Unavailable, format!("not stored: {e}"));
        }
    };
    info!(msg_id = %header.id, kind = %header.kind, to = ?header.to.iter().map(AuthorityId::as_str).collect::<Vec<_>>(), officer = %officer.name, "submitted");
    base.metrics.submitted.inc();
    // On disk now; taken in before its sends start, so that every change
    // of its deliveries finds it.
    side.deliveries
        .recent
        .submitted(&header, created_at, &deliveries);
    side.deliveries.queue(deliveries, parcel);
    Response::Submitted {
        msg_id: header.id,
        created_at: now,
    }
}

/// Reads the header back out of a stored parcel (its signature was checked
/// when it was stored).
pub(super) fn stored_header(stored: &[u8]) -> Option<Header> {
    kurir_proto::envelope::header_unverified(&Store::envelope(stored)?)
}

fn summary_of_inbox(r: &InboxRecord) -> Option<Summary> {
    let h = stored_header(&r.parcel)?;
    Some(Summary::of(
        &h,
        r.received_at,
        r.read.as_ref().map(|m| m.at),
    ))
}

pub(super) fn summary_of_outbound(r: &OutboundRecord) -> Option<Summary> {
    let h = stored_header(&r.parcel)?;
    Some(Summary::of(&h, r.created_at, None))
}
