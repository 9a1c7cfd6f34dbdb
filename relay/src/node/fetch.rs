//! `Fetch`: one message, received or sent, to an officer. The envelope goes
//! to every role; the body only where [`crate::core::access`] allows it,
//! and every body given or refused is first in the audit log, on disk
//! (`body_read`, `body_refused`), before the officer gets an answer.

use kurir_certs::tls::Officer;
use kurir_proto::api::{ErasedBody, ErrorCode, Response, Summary};
use kurir_proto::{Header, MessageId};
use tracing::{debug, error, warn};

use super::officer::{OfficerSide, not_found, storage_failed, stored_header};
use super::upkeep::erase_if_due;
use crate::core::access::{self, Body, Reader};
use crate::core::events;
use crate::store::{Erased, Store};

/// A stored message as `Fetch` needs it.
struct Stored {
    summary: Summary,
    header: Header,
    parcel: Vec<u8>,
    erased: Option<Erased>,
    receipt: Option<Vec<u8>>,
}

pub(super) async fn fetch(
    side: &OfficerSide,
    officer: &Officer,
    msg_id: MessageId,
    envelope_only: bool,
) -> Response {
    let base = &side.base;
    // What is due for erasure is erased before anything is shown.
    if let Err(e) = erase_if_due(base, msg_id).await {
        return storage_failed(e);
    }
    let stored = match (base.store.inbox(msg_id), base.store.outbound(msg_id)) {
        (Ok(Some(r)), _) => stored_header(&r.parcel).map(|header| Stored {
            summary: Summary::of(&header, r.received_at, r.read.map(|m| m.at)),
            header,
            parcel: r.parcel,
            erased: r.erased,
            receipt: Some(r.receipt),
        }),
        (Ok(None), Ok(Some(o))) => stored_header(&o.parcel).map(|header| Stored {
            summary: Summary::of(&header, o.created_at, None),
            header,
            parcel: o.parcel,
            erased: o.erased,
            receipt: None,
        }),
        (Ok(None), Ok(None)) => return not_found(msg_id),
        (Err(e), _) | (_, Err(e)) => return storage_failed(e),
    };
    let Some(stored) = stored else {
        return Response::error(ErrorCode::Unavailable, "stored message is damaged");
    };
    // No body to show: the envelope, to every role, is no read.
    if envelope_only || stored.erased.is_some() {
        return envelope(stored, envelope_only);
    }
    let authority = &side.authority;
    let roster = authority.roster();
    let focal_points = roster
        .member(&authority.me)
        .map_or(&[][..], |m| &m.focal_points[..]);
    let decision = access::may_read(
        Reader {
            role: officer.role,
            name: &officer.name,
        },
        Body {
            handling: stored.header.handling,
            kind: stored.header.kind,
            me: &authority.me,
            focal_points,
        },
        &base.config.reads,
    );
    let now = base.now();
    if let Err(refused) = decision {
        warn!(%msg_id, officer = %officer.name, role = %officer.role, serial = %officer.serial, reason = %refused.reason, "refused a message body");
        let entry = events::body_refused(now, msg_id, officer, refused.reason);
        if let Err(e) = base.store.audit(vec![entry]).await {
            return storage_failed(e);
        }
        return Response::error(ErrorCode::Forbidden, format!("message {msg_id}: {refused}"));
    }
    // The body is read from the store first, and leaves only once its read
    // is on disk.
    let parcel = match base.store.parcel(msg_id, &stored.parcel) {
        Ok(Some(p)) => p,
        Ok(None) => return Response::error(ErrorCode::Unavailable, "stored message is damaged"),
        Err(e) => {
            error!(%msg_id, error = %e, "cannot read a stored body");
            return Response::error(ErrorCode::Unavailable, format!("stored body: {e}"));
        }
    };
    if let Err(e) = base
        .store
        .audit(vec![events::body_read(now, msg_id, officer)])
        .await
    {
        return storage_failed(e);
    }
    debug!(%msg_id, officer = %officer.name, serial = %officer.serial, "body read");
    Response::Message {
        summary: stored.summary,
        parcel,
        receipt: stored.receipt,
        erased: None,
        envelope_only: false,
    }
}

/// The signed envelope alone (it still verifies), with when and why the
/// body was erased if it was.
fn envelope(stored: Stored, envelope_only: bool) -> Response {
    match Store::envelope(&stored.parcel) {
        Some(parcel) => Response::Message {
            summary: stored.summary,
            parcel,
            receipt: stored.receipt,
            erased: stored.erased.map(|e| ErasedBody {
                at: e.at,
                policy: e.policy,
            }),
            envelope_only,
        },
        None => Response::error(ErrorCode::Unavailable, "stored message is damaged"),
    }
}
