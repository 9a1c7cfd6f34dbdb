//! The audit entries the relay writes, one function per event: each takes
//! the values the event records and `now`, and returns the entry for the
//! store to number and append in the same commit as what it records
//! (`docs/AUDIT.md` lists the events and their fields).

use kurir_certs::Roster;
use kurir_certs::tls::Officer;
use kurir_proto::audit::{Entry, Event, receipt_digest};
use kurir_proto::{AuthorityId, Digest, Header, MessageId, Parcel, Timestamp};

use super::deadline::{Case, DeadlineEvent};
use super::delivery::{Delivery, DeliveryState};
use super::inbound::Refusal;
use super::witness::Cosigned;

/// The relay started, with its software version.
pub fn started(now: Timestamp) -> Entry {
    Entry {
        code: Some(format!("kurir-relay {}", env!("CARGO_PKG_VERSION"))),
        ..Entry::new(now, Event::Started)
    }
}

/// The relay accepted `roster`: its version and fingerprint.
pub fn roster(now: Timestamp, roster: &Roster) -> Entry {
    Entry {
        code: Some(format!(
            "version {} sha256 {}",
            roster.version(),
            roster.fingerprint()
        )),
        ..Entry::new(now, Event::Roster)
    }
}

/// An officer submitted a message: the relay signed it as `parcel` and
/// queued it for `to` (sorted, without duplicates).
pub fn submitted(
    now: Timestamp,
    header: &Header,
    parcel: &Parcel,
    to: &[AuthorityId],
    officer: &Officer,
) -> Entry {
    Entry {
        msg_id: Some(header.id),
        envelope_digest: Some(parcel.envelope_digest()),
        case_id: header.case_id.clone(),
        officer: Some(officer.serial.clone()),
        code: Some(format!(
            "{} to {}",
            header.kind,
            to.iter()
                .map(AuthorityId::as_str)
                .collect::<Vec<_>>()
                .join(",")
        )),
        ..Entry::new(now, Event::Submitted)
    }
}

/// What a delivery's new state records: `delivered`, `rejected` (with
/// the receipt's digest and the peer's reason code) or `expired` for a
/// final state, nothing otherwise.
pub fn delivery(now: Timestamp, d: &Delivery) -> Vec<Entry> {
    let base = |event| Entry {
        msg_id: Some(d.msg_id),
        peer: Some(d.peer.clone()),
        ..Entry::new(now, event)
    };
    match &d.state {
        DeliveryState::Delivered { receipt, .. } => vec![Entry {
            receipt_digest: Some(receipt_digest(receipt)),
            ..base(Event::Delivered)
        }],
        DeliveryState::Rejected { code, receipt, .. } => vec![Entry {
            receipt_digest: Some(receipt_digest(receipt)),
            code: Some(code.clone()),
            ..base(Event::Rejected)
        }],
        DeliveryState::Expired { .. } => vec![base(Event::Expired)],
        _ => vec![],
    }
}

/// A parcel from a peer was accepted: the header it carries, with the
/// envelope's digest. The receipt names this entry.
pub fn received(now: Timestamp, h: &Header, envelope_digest: Digest) -> Entry {
    Entry {
        msg_id: Some(h.id),
        envelope_digest: Some(envelope_digest),
        peer: Some(h.from.clone()),
        case_id: h.case_id.clone(),
        code: Some(h.kind.as_str().to_owned()),
        ..Entry::new(now, Event::Received)
    }
}

/// A parcel from `peer` was refused with the signed rejection `bytes`.
pub fn refused(now: Timestamp, refusal: &Refusal, peer: &AuthorityId, bytes: &[u8]) -> Entry {
    Entry {
        msg_id: refusal.msg_id,
        envelope_digest: Some(refusal.envelope_digest),
        peer: Some(peer.clone()),
        receipt_digest: Some(receipt_digest(bytes)),
        code: Some(refusal.code.as_str().to_owned()),
        ..Entry::new(now, Event::Refused)
    }
}

/// An officer first read a received message.
pub fn read(now: Timestamp, msg_id: MessageId, officer: &Officer) -> Entry {
    Entry {
        msg_id: Some(msg_id),
        officer: Some(officer.serial.clone()),
        ..Entry::new(now, Event::Read)
    }
}

/// A message's body was erased under the retention rule `policy`.
pub fn body_erased(now: Timestamp, msg_id: MessageId, policy: &str) -> Entry {
    Entry {
        msg_id: Some(msg_id),
        code: Some(policy.to_owned()),
        ..Entry::new(now, Event::BodyErased)
    }
}

/// A deadline event of `case` (its code: `due_soon`, `deemed_accepted`,
/// `transfer_overdue`).
pub fn deadline(now: Timestamp, case: &Case, e: &DeadlineEvent) -> Entry {
    Entry {
        case_id: Some(case.case_id.clone()),
        code: Some(e.code.to_owned()),
        ..Entry::new(now, Event::Deadline)
    }
}

/// This relay cosigned `peer`'s checkpoint (`c`: its size and root).
pub fn peer_checkpoint(now: Timestamp, peer: &AuthorityId, c: &Cosigned) -> Entry {
    Entry {
        peer: Some(peer.clone()),
        code: Some(format!(
            "size {} root {}",
            c.witnessed.size, c.witnessed.root
        )),
        ..Entry::new(now, Event::PeerCheckpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{a, at, header};
    use crate::core::witness::Witnessed;
    use kurir_proto::RejectCode;
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
        assert!(delivery(now, &d(DeliveryState::Queued)).is_empty());
        let delivered = delivery(
            now,
            &d(DeliveryState::Delivered {
                at: now,
                receipt: b"receipt".to_vec(),
            }),
        );
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].event, Event::Delivered);
        assert_eq!(
            delivered[0].receipt_digest,
            Some(receipt_digest(b"receipt"))
        );
        let expired = delivery(now, &d(DeliveryState::Expired { at: now }));
        assert_eq!(expired[0].event, Event::Expired);
        assert_eq!(expired[0].peer, Some(a("BA.SPS")));
    }

    #[test]
    fn a_cosigned_checkpoint_records_size_and_root() {
        let c = Cosigned {
            note: vec![],
            witnessed: Witnessed {
                size: 12,
                root: Digest([0xab; 32]),
            },
        };
        let e = peer_checkpoint(at("2027-03-01", 9), &a("BA.SPS"), &c);
        assert_eq!(e.event, Event::PeerCheckpoint);
        assert_eq!(e.code, Some(format!("size 12 root {}", Digest([0xab; 32]))));
    }
}
