//! The unit tests of [`super::reconcile_logs`]: two logs built event by
//! event, as two relays would write them, then changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kurir_proto::audit::{DeliveryFailure, Entry, Event, ReceiptKind, Record};
use kurir_proto::message::MessageKind;
use kurir_proto::{Digest, MessageId, Receipt, ReceiptStatus, RejectCode, Timestamp};

use super::*;
use crate::testing::{T0, auth, empty, msg, push};
use crate::verify::{KeptReceipt, Log};

mod pinned;

/// Two logs built event by event, as two relays would write them.
struct Pair {
    a: Log,
    b: Log,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            a: empty("RS.MUP"),
            b: empty("BA.SPS"),
        }
    }

    fn logs(&mut self, from_a: bool) -> (&mut Log, &mut Log) {
        if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        }
    }

    /// `from` submits message n to the other side.
    fn submit(&mut self, from_a: bool, n: u8) {
        let (s, r) = self.logs(from_a);
        let to = r.authority.clone();
        push(
            s,
            Entry::new(
                Timestamp(T0 + u64::from(n)),
                Record::Submitted {
                    msg_id: msg(n),
                    envelope_digest: Digest([n; 32]),
                    kind: MessageKind::OperationalNotice,
                    to: vec![to],
                    case_id: None,
                    officer: "0a1b".into(),
                },
            ),
        );
    }

    /// The other side receives message n and issues a receipt; the
    /// sender records it when `back`.
    fn deliver(&mut self, from_a: bool, n: u8, back: bool) {
        let (s, r) = self.logs(from_a);
        let (sa, ra) = (s.authority.clone(), r.authority.clone());
        let arrival = Entry::new(
            Timestamp(T0 + 100),
            Record::Received {
                msg_id: msg(n),
                envelope_digest: Digest([n; 32]),
                peer: sa.clone(),
                case_id: None,
                kind: MessageKind::OperationalNotice,
            },
        );
        let index = push(r, arrival);
        let receipt = Receipt {
            msg_id: Some(msg(n)),
            envelope_digest: Digest([n; 32]),
            sender: sa,
            receiver: ra.clone(),
            received_at: Timestamp(T0 + 100),
            status: ReceiptStatus::Accepted,
            log_index: Some(index),
            leaf_hash: Some(r.entries[index as usize].leaf_hash()),
        };
        let digest = Digest([n.wrapping_add(100); 32]);
        r.receipts.push(KeptReceipt {
            kind: ReceiptKind::Issued,
            receipt: receipt.clone(),
            digest,
            included_in: None,
        });
        if back {
            push(
                s,
                Entry::new(
                    Timestamp(T0 + 200),
                    Record::Delivered {
                        msg_id: msg(n),
                        peer: ra,
                        receipt_digest: digest,
                    },
                ),
            );
            s.receipts.push(KeptReceipt {
                kind: ReceiptKind::Held,
                receipt,
                digest,
                included_in: None,
            });
        }
    }

    /// The other side refuses message n with a signed rejection.
    fn refuse(&mut self, from_a: bool, n: u8) {
        let (s, r) = self.logs(from_a);
        let (sa, ra) = (s.authority.clone(), r.authority.clone());
        let digest = Digest([n.wrapping_add(200); 32]);
        push(
            r,
            Entry::new(
                Timestamp(T0 + 100),
                Record::Refused {
                    msg_id: Some(msg(n)),
                    envelope_digest: Digest([n; 32]),
                    peer: sa.clone(),
                    receipt_digest: digest,
                    reason: RejectCode::Expired,
                },
            ),
        );
        let receipt = Receipt {
            msg_id: Some(msg(n)),
            envelope_digest: Digest([n; 32]),
            sender: sa,
            receiver: ra.clone(),
            received_at: Timestamp(T0 + 100),
            status: ReceiptStatus::Rejected {
                reason: RejectCode::Expired,
                detail: None,
            },
            log_index: None,
            leaf_hash: None,
        };
        r.receipts.push(KeptReceipt {
            kind: ReceiptKind::Issued,
            receipt: receipt.clone(),
            digest,
            included_in: None,
        });
        push(
            s,
            Entry::new(
                Timestamp(T0 + 200),
                Record::Rejected {
                    msg_id: msg(n),
                    peer: ra,
                    receipt_digest: digest,
                    reason: RejectCode::Expired,
                },
            ),
        );
        s.receipts.push(KeptReceipt {
            kind: ReceiptKind::Held,
            receipt,
            digest,
            included_in: None,
        });
    }

    fn run(&self) -> Reconciliation {
        reconcile_logs(&self.a, &self.b)
    }
}

/// Changes `e`, a `submitted` entry, as if it had been sent to `to` alone.
fn sent_to(e: &mut Entry, to: &str) {
    let Ok(Record::Submitted {
        msg_id,
        envelope_digest,
        kind,
        case_id,
        officer,
        ..
    }) = e.record()
    else {
        panic!("not a submitted entry: {e:?}");
    };
    let record = Record::Submitted {
        msg_id,
        envelope_digest,
        kind,
        to: vec![auth(to)],
        case_id,
        officer,
    };
    *e = Entry {
        index: e.index,
        prev: e.prev,
        ..Entry::new(e.at, record)
    };
}

/// A to B: 1 delivered, 2 refused; B to A: 3 delivered.
fn matching() -> Pair {
    let mut p = Pair::new();
    p.submit(true, 1);
    p.deliver(true, 1, true);
    p.submit(true, 2);
    p.refuse(true, 2);
    p.submit(false, 3);
    p.deliver(false, 3, true);
    p
}

fn kinds(r: &Reconciliation) -> Vec<(FindingKind, Option<MessageId>)> {
    r.findings.iter().map(|f| (f.kind, f.msg_id)).collect()
}

#[test]
fn matching_logs_reconcile() {
    let p = matching();
    let r = p.run();
    assert_eq!(r.findings, vec![], "{r:?}");
    assert!(r.reconciled());
    assert_eq!(
        r.a_to_b,
        Direction {
            sent: 2,
            matched: 2,
            held_receipts: 2,
            issued_receipts: 1
        }
    );
    assert_eq!(
        r.b_to_a,
        Direction {
            sent: 1,
            matched: 1,
            held_receipts: 1,
            issued_receipts: 1
        }
    );
    // A message to a third authority is not B's business.
    let mut p = matching();
    push(
        &mut p.a,
        Entry::new(
            Timestamp(T0),
            Record::Submitted {
                msg_id: msg(9),
                envelope_digest: Digest([9; 32]),
                kind: MessageKind::OperationalNotice,
                to: vec![auth("ME.UP")],
                case_id: None,
                officer: "0a1b".into(),
            },
        ),
    );
    assert!(p.run().findings.is_empty());
}

#[test]
fn a_receivers_rewritten_log_contradicts_its_own_checkpoint_held_by_the_sender() {
    // A holds B's receipt for message 1 with an inclusion proof into B's
    // checkpoint of B's log at size 1 (verified when A's bundle loaded).
    let mut p = matching();
    let b_root = kurir_proto::merkle::root(&[p.b.entries[0].leaf_hash()]);
    let held =
        p.a.receipts
            .iter_mut()
            .find(|k| k.kind == ReceiptKind::Held && k.receipt.status == ReceiptStatus::Accepted)
            .unwrap();
    held.included_in = Some((1, b_root));
    assert!(p.run().findings.is_empty(), "{:?}", p.run());
    // B's export is later shown with a different root at that size...
    let held =
        p.a.receipts
            .iter_mut()
            .find(|k| k.included_in.is_some())
            .unwrap();
    held.included_in = Some((1, Digest([7; 32])));
    let r = p.run();
    assert_eq!(kinds(&r), vec![(FindingKind::Contradictory, Some(msg(1)))]);
    assert!(
        r.findings[0].to_string().contains("log was rewritten"),
        "{r:?}"
    );
    // ... or with fewer entries than B's signed checkpoint covered.
    let held =
        p.a.receipts
            .iter_mut()
            .find(|k| k.included_in.is_some())
            .unwrap();
    held.included_in = Some((50, b_root));
    let r = p.run();
    assert_eq!(kinds(&r), vec![(FindingKind::Contradictory, Some(msg(1)))]);
    assert!(
        r.findings[0].to_string().contains("entries were removed"),
        "{r:?}"
    );
}

#[test]
fn undelivered_messages_are_pending_not_errors() {
    let mut p = matching();
    // Sent while B was down.
    p.submit(true, 4);
    // Received by B, the receipt not back at A yet.
    p.submit(true, 5);
    p.deliver(true, 5, false);
    let r = p.run();
    assert_eq!(
        kinds(&r),
        [
            (FindingKind::Pending, Some(msg(4))),
            (FindingKind::Pending, Some(msg(5)))
        ],
        "{r:?}"
    );
    assert!(r.reconciled());
    assert_eq!(r.a_to_b.matched, 3);
}

#[test]
fn a_receipt_deleted_from_one_side_is_named() {
    // A's bundle no longer holds the receipt its log records.
    let mut p = matching();
    p.a.receipts.retain(|k| k.receipt.msg_id != Some(msg(1)));
    let r = p.run();
    assert_eq!(kinds(&r), [(FindingKind::Missing, Some(msg(1)))], "{r:?}");
    assert!(
        r.findings[0].to_string().contains("does not hold it"),
        "{r:?}"
    );
    assert!(
        r.findings[0].to_string().contains("lists it as issued"),
        "{r:?}"
    );
    assert!(!r.reconciled());
    // B's bundle no longer lists a receipt A holds.
    let mut p = matching();
    p.b.receipts
        .retain(|k| !(k.kind == ReceiptKind::Issued && k.receipt.msg_id == Some(msg(1))));
    let r = p.run();
    assert_eq!(kinds(&r), [(FindingKind::Missing, Some(msg(1)))], "{r:?}");
    assert!(
        r.findings[0]
            .to_string()
            .contains("does not list it as issued")
    );
    // A rejection A holds that B's log does not have.
    let mut p = matching();
    p.b.entries.retain(|e| e.event != Event::Refused);
    let r = p.run();
    assert!(
        kinds(&r).contains(&(FindingKind::Contradictory, Some(msg(2)))),
        "{r:?}"
    );
    assert!(
        kinds(&r).contains(&(FindingKind::Missing, Some(msg(2)))),
        "{r:?}"
    );
}

#[test]
fn sent_but_not_received_and_received_but_not_sent() {
    // A's log says B accepted message 1; B's log has no arrival.
    let mut p = matching();
    p.b.entries
        .retain(|e| !(e.event == Event::Received && e.msg_id == Some(msg(1))));
    let r = p.run();
    assert!(
        r.findings.iter().any(|f| f.kind == FindingKind::Missing
            && f.msg_id == Some(msg(1))
            && f.to_string().contains("has no arrival")),
        "{r:?}"
    );
    // B logs an arrival from A that A never sent.
    let mut p = matching();
    push(
        &mut p.b,
        Entry::new(
            Timestamp(T0),
            Record::Received {
                msg_id: msg(7),
                envelope_digest: Digest([7; 32]),
                peer: auth("RS.MUP"),
                case_id: None,
                kind: MessageKind::OperationalNotice,
            },
        ),
    );
    let r = p.run();
    assert_eq!(kinds(&r), [(FindingKind::Extra, Some(msg(7)))], "{r:?}");
    assert_eq!(r.findings[0].from, auth("RS.MUP"));
    assert_eq!(r.findings[0].to, auth("BA.SPS"));
    // A's log records the delivery of a message it never submitted:
    // one finding, not also an extra arrival at B.
    let mut p = matching();
    for e in &mut p.a.entries {
        if e.event == Event::Submitted && e.msg_id == Some(msg(1)) {
            sent_to(e, "ME.UP");
        }
    }
    let r = p.run();
    assert_eq!(
        kinds(&r),
        [(FindingKind::Contradictory, Some(msg(1)))],
        "{r:?}"
    );
    assert!(r.findings[0].to_string().contains("no submission"), "{r:?}");
}

#[test]
fn a_refusal_without_a_message_id_matches_by_envelope_digest() {
    let mut p = matching();
    for e in &mut p.b.entries {
        if e.event == Event::Refused {
            e.msg_id = None;
        }
    }
    let r = p.run();
    assert!(r.findings.is_empty(), "{r:?}");
    assert_eq!(r.a_to_b.matched, 2);
    // ... and one whose digest A never sent is extra.
    let mut p = matching();
    push(
        &mut p.b,
        Entry::new(
            Timestamp(T0),
            Record::Refused {
                msg_id: None,
                envelope_digest: Digest([0xab; 32]),
                peer: auth("RS.MUP"),
                receipt_digest: Digest([0xac; 32]),
                reason: RejectCode::Malformed,
            },
        ),
    );
    let r = p.run();
    assert_eq!(kinds(&r), [(FindingKind::Extra, None)], "{r:?}");
}

#[test]
fn different_digests_and_wrong_entries_contradict() {
    // Same message id, another envelope digest at B.
    let mut p = matching();
    for e in &mut p.b.entries {
        if e.event == Event::Received && e.msg_id == Some(msg(1)) {
            e.envelope_digest = Some(Digest([0xee; 32]));
        }
    }
    let r = p.run();
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::Contradictory
                && f.msg_id == Some(msg(1))
                && f.to_string().contains("with digest")),
        "{r:?}"
    );
    assert_eq!(r.a_to_b.matched, 1);
    // The receipt A holds names an entry B's log does not have.
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.log_index = Some(99);
        }
    }
    let r = p.run();
    assert_eq!(
        kinds(&r),
        [(FindingKind::Contradictory, Some(msg(1)))],
        "{r:?}"
    );
    assert!(
        r.findings[0].to_string().contains("names entry 99"),
        "{r:?}"
    );
    // ... or one whose leaf hash differs.
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.leaf_hash = Some(Digest([0; 32]));
        }
    }
    let r = p.run();
    assert!(r.findings[0].to_string().contains("leaf hash"), "{r:?}");
    // B accepted it, A records it as expired.
    let mut p = matching();
    p.submit(true, 6);
    p.deliver(true, 6, false);
    push(
        &mut p.a,
        Entry::new(
            Timestamp(T0),
            Record::Expired {
                msg_id: msg(6),
                peer: auth("BA.SPS"),
            },
        ),
    );
    let r = p.run();
    assert_eq!(
        kinds(&r),
        [(FindingKind::Contradictory, Some(msg(6)))],
        "{r:?}"
    );
}
