//! The audit entries the relay writes, one function per event: each takes
//! the values the event records and `now`, and returns the entry for the
//! store to number and append in the same commit as what it records
//! (`docs/AUDIT.md` lists the events and their fields).

use kurir_certs::Roster;
use kurir_certs::tls::Officer;
use kurir_proto::audit::{DeliveryFailure, Entry, ReadRefusal, Record, receipt_digest};
use kurir_proto::{AuthorityId, Digest, Header, MessageId, RejectCode, Timestamp};

use super::deadline::{Case, DeadlineEvent};
use super::delivery::{Delivery, DeliveryState};
use super::inbound::Refusal;
use super::witness::Cosigned;

/// The relay started, with its software version.
pub fn started(now: Timestamp) -> Entry {
    Entry::new(
        now,
        Record::Started {
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )
}

/// The relay accepted `roster`: its version and fingerprint.
pub fn roster(now: Timestamp, roster: &Roster) -> Entry {
    Entry::new(
        now,
        Record::Roster {
            version: roster.version(),
            // `Roster::fingerprint`: SHA-256 of the signed file bytes.
            fingerprint: Digest::of(&[roster.to_bytes()]),
        },
    )
}

/// An officer submitted a message: the relay signed its envelope (with
/// the digest `envelope_digest`) and queued it for `to` (sorted, without
/// duplicates).
///
/// `envelope_digest` is `None` for a parcel signed later, with its group
/// (`Store::submit_unsigned`): the entry is then without it until the
/// store sets it.
pub fn submitted(
    now: Timestamp,
    header: &Header,
    envelope_digest: Option<Digest>,
    to: &[AuthorityId],
    officer: &Officer,
) -> Entry {
    let mut entry = Entry::new(
        now,
        Record::Submitted {
            msg_id: header.id,
            envelope_digest: envelope_digest.unwrap_or(Digest([0; 32])),
            kind: header.kind,
            to: to.to_vec(),
            case_id: header.case_id.clone(),
            officer: officer.serial.clone(),
        },
    );
    entry.envelope_digest = envelope_digest;
    entry
}

/// A rejection's reason, as a delivery keeps it, that is not a reason code
/// (only a damaged store holds one): the rejection cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rejection of {msg_id} by {peer} has the unknown reason code {code:?}")]
pub struct UnknownReason {
    /// The message.
    pub msg_id: MessageId,
    /// The peer that rejected it.
    pub peer: AuthorityId,
    /// The code as stored.
    pub code: String,
}

/// What a delivery's new state records: `delivered`, `rejected` (with
/// the receipt's digest and the peer's reason code) or `expired` for a
/// final state, nothing otherwise.
pub fn delivery(now: Timestamp, d: &Delivery) -> Result<Option<Entry>, UnknownReason> {
    let (msg_id, peer) = (d.msg_id, d.peer.clone());
    let record = match &d.state {
        DeliveryState::Delivered { receipt, .. } => Record::Delivered {
            msg_id,
            peer,
            receipt_digest: receipt_digest(receipt),
        },
        // The state keeps the code as the name of the `RejectCode` the
        // peer's signed rejection carried.
        DeliveryState::Rejected { code, receipt, .. } => match code.parse::<RejectCode>() {
            Ok(reason) => Record::Rejected {
                msg_id,
                peer,
                receipt_digest: receipt_digest(receipt),
                reason,
            },
            Err(()) => {
                return Err(UnknownReason {
                    msg_id,
                    peer,
                    code: code.clone(),
                });
            }
        },
        DeliveryState::Expired { .. } => Record::Expired { msg_id, peer },
        DeliveryState::Failed { reason, .. } => match DeliveryFailure::parse(reason) {
            Some(reason) => Record::Failed {
                msg_id,
                peer,
                reason,
            },
            None => {
                return Err(UnknownReason {
                    msg_id,
                    peer,
                    code: reason.clone(),
                });
            }
        },
        _ => return Ok(None),
    };
    Ok(Some(Entry::new(now, record)))
}

/// A parcel from a peer was accepted: the header it carries, with the
/// envelope's digest. The receipt names this entry.
pub fn received(now: Timestamp, h: &Header, envelope_digest: Digest) -> Entry {
    Entry::new(
        now,
        Record::Received {
            msg_id: h.id,
            envelope_digest,
            peer: h.from.clone(),
            case_id: h.case_id.clone(),
            kind: h.kind,
        },
    )
}

/// A parcel from `peer` was refused with the signed rejection `bytes`.
pub fn refused(now: Timestamp, refusal: &Refusal, peer: &AuthorityId, bytes: &[u8]) -> Entry {
    Entry::new(
        now,
        Record::Refused {
            msg_id: refusal.msg_id,
            envelope_digest: refusal.envelope_digest,
            peer: peer.clone(),
            receipt_digest: receipt_digest(bytes),
            reason: refusal.code,
        },
    )
}

/// An officer was given the body of a message: every time, written before
/// the body leaves the relay.
pub fn body_read(now: Timestamp, msg_id: MessageId, officer: &Officer) -> Entry {
    Entry::new(
        now,
        Record::BodyRead {
            msg_id,
            officer: officer.serial.clone(),
            role: officer.role,
            name: officer.name.clone(),
        },
    )
}

/// An officer was refused the body of a message ([`super::access`]).
pub fn body_refused(
    now: Timestamp,
    msg_id: MessageId,
    officer: &Officer,
    reason: ReadRefusal,
) -> Entry {
    Entry::new(
        now,
        Record::BodyRefused {
            msg_id,
            officer: officer.serial.clone(),
            role: officer.role,
            name: officer.name.clone(),
            reason,
        },
    )
}

/// An officer first read a received message.
pub fn read(now: Timestamp, msg_id: MessageId, officer: &Officer) -> Entry {
    Entry::new(
        now,
        Record::Read {
            msg_id,
            officer: officer.serial.clone(),
        },
    )
}

/// A message's body was erased under the retention rule `policy`.
pub fn body_erased(now: Timestamp, msg_id: MessageId, policy: &str) -> Entry {
    Entry::new(
        now,
        Record::BodyErased {
            msg_id,
            policy: policy.to_owned(),
        },
    )
}

/// A deadline event of `case` (`due_soon`, `deemed_accepted`,
/// `transfer_overdue`).
pub fn deadline(now: Timestamp, case: &Case, e: &DeadlineEvent) -> Entry {
    Entry::new(
        now,
        Record::Deadline {
            case_id: case.case_id.clone(),
            what: e.code,
        },
    )
}

/// This relay cosigned `peer`'s checkpoint (`c`: its size and root).
pub fn peer_checkpoint(now: Timestamp, peer: &AuthorityId, c: &Cosigned) -> Entry {
    Entry::new(
        now,
        Record::PeerCheckpoint {
            peer: peer.clone(),
            size: c.witnessed.size,
            root: c.witnessed.root,
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::core::fixtures::{a, at, header};
    use crate::core::witness::Witnessed;
    use kurir_proto::audit::Event;
    use kurir_proto::message::MessageKind;

    fn officer() -> Officer {
        Officer {
            authority: a("RS.MUP"),
            name: "Ana Example".into(),
            role: kurir_certs::officer::Role::Officer,
            serial: "0a1b".into(),
        }
    }

    #[test]
    fn started_names_the_software_version() {
        let e = started(at("2027-03-01", 9));
        assert_eq!(e.event, Event::Started);
        assert_eq!(
            e.code.as_deref(),
            Some(concat!("kurir-relay ", env!("CARGO_PKG_VERSION")))
        );
    }

    #[test]
    fn message_events_name_the_message_and_who() {
        let now = at("2027-03-01", 9);
        let h = header(MessageKind::ReadmissionRequest, "RS.MUP", "BA.SPS", now, 1);
        let e = received(now, &h, Digest([7; 32]));
        assert_eq!(
            (e.event, e.msg_id, e.peer.clone(), e.case_id.clone()),
            (
                Event::Received,
                Some(h.id),
                Some(a("RS.MUP")),
                h.case_id.clone()
            )
        );
        assert_eq!(e.envelope_digest, Some(Digest([7; 32])));
        assert_eq!(e.code.as_deref(), Some("readmission-request"));

        let e = read(now, h.id, &officer());
        assert_eq!(
            (e.event, e.msg_id, e.officer.as_deref()),
            (Event::Read, Some(h.id), Some("0a1b"))
        );

        let e = body_read(now, h.id, &officer());
        assert_eq!(
            (e.event, e.msg_id, e.officer.as_deref(), e.code.as_deref()),
            (
                Event::BodyRead,
                Some(h.id),
                Some("0a1b"),
                Some("officer Ana Example")
            )
        );
        let e = body_refused(now, h.id, &officer(), ReadRefusal::NotAFocalPoint);
        assert_eq!(
            (e.event, e.officer.as_deref(), e.code.as_deref()),
            (
                Event::BodyRefused,
                Some("0a1b"),
                Some("not_a_focal_point officer Ana Example")
            )
        );

        let e = body_erased(now, h.id, "operational-notice: 30 days after read");
        assert_eq!(e.event, Event::BodyErased);
        assert_eq!(
            e.code.as_deref(),
            Some("operational-notice: 30 days after read")
        );
    }

    #[test]
    fn a_refusal_names_the_rejection_sent() {
        let now = at("2027-03-01", 9);
        let refusal = Refusal {
            code: RejectCode::KindNotAllowed,
            detail: "no".into(),
            msg_id: None,
            envelope_digest: Digest([1; 32]),
        };
        let e = refused(now, &refusal, &a("BA.SPS"), b"rejection");
        assert_eq!(e.event, Event::Refused);
        assert_eq!(e.receipt_digest, Some(receipt_digest(b"rejection")));
        assert_eq!(e.peer, Some(a("BA.SPS")));
        assert_eq!(e.code.as_deref(), Some(RejectCode::KindNotAllowed.as_str()));
    }

    #[test]
    fn only_final_delivery_states_are_recorded() {
        let now = at("2027-03-01", 9);
        let d = |state| Delivery {
            msg_id: MessageId::new_v7(now.0, [1; 10]),
            peer: a("BA.SPS"),
            expires_at: now,
            attempts: 1,
            state,
        };
        assert_eq!(delivery(now, &d(DeliveryState::Queued)), Ok(None));
        let delivered = delivery(
            now,
            &d(DeliveryState::Delivered {
                at: now,
                receipt: b"receipt".to_vec(),
            }),
        )
        .unwrap()
        .unwrap();
        assert_eq!(delivered.event, Event::Delivered);
        assert_eq!(delivered.receipt_digest, Some(receipt_digest(b"receipt")));
        let expired = delivery(now, &d(DeliveryState::Expired { at: now }))
            .unwrap()
            .unwrap();
        assert_eq!(expired.event, Event::Expired);
        assert_eq!(expired.peer, Some(a("BA.SPS")));
        let rejected = |code: &str| {
            delivery(
                now,
                &d(DeliveryState::Rejected {
                    at: now,
                    code: code.into(),
                    detail: None,
                    receipt: b"rejection".to_vec(),
                }),
            )
        };
        let e = rejected(RejectCode::KindNotAllowed.as_str())
            .unwrap()
            .unwrap();
        assert_eq!(e.event, Event::Rejected);
        assert_eq!(e.code.as_deref(), Some(RejectCode::KindNotAllowed.as_str()));
        assert_eq!(
            rejected("no such code").unwrap_err().code,
            "no such code",
            "a reason that is not a code is named, not recorded"
        );
    }

    #[test]
    fn a_cosigned_checkpoint_records_size_and_root() {
        let c = Cosigned {
            note: vec![],
            witnessed: Witnessed {
                size: 12,
                root: Digest([0xab; 32]),
            },
            fresh: true,
        };
        let e = peer_checkpoint(at("2027-03-01", 9), &a("BA.SPS"), &c);
        assert_eq!(e.event, Event::PeerCheckpoint);
        assert_eq!(e.code, Some(format!("size 12 root {}", Digest([0xab; 32]))));
    }
}
