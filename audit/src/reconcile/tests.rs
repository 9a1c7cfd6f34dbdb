//! The unit tests of [`super::reconcile_logs`]: two logs built event by
//! event, as two relays would write them, then changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kurir_proto::audit::{Entry, Event, ReceiptKind};
use kurir_proto::{Digest, MessageId, Receipt, ReceiptStatus, RejectCode, Timestamp};

use super::*;
use crate::testing::{T0, auth, empty, msg, push};
use crate::verify::{KeptReceipt, Log};

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
        let to = r.authority.to_string();
        push(
            s,
            Entry {
                msg_id: Some(msg(n)),
                envelope_digest: Some(Digest([n; 32])),
                officer: Some("0a1b".into()),
                code: Some(format!("operational-notice to {to}")),
                ..Entry::new(Timestamp(T0 + u64::from(n)), Event::Submitted)
            },
        );
    }

    /// The other side receives message n and issues a receipt; the
    /// sender records it when `back`.
    fn deliver(&mut self, from_a: bool, n: u8, back: bool) {
        let (s, r) = self.logs(from_a);
        let (sa, ra) = (s.authority.clone(), r.authority.clone());
        let arrival = Entry {
            msg_id: Some(msg(n)),
            envelope_digest: Some(Digest([n; 32])),
            peer: Some(sa.clone()),
            code: Some("operational-notice".into()),
            ..Entry::new(Timestamp(T0 + 100), Event::Received)
        };
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
                Entry {
                    msg_id: Some(msg(n)),
                    peer: Some(ra),
                    receipt_digest: Some(digest),
                    ..Entry::new(Timestamp(T0 + 200), Event::Delivered)
                },
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
            Entry {
                msg_id: Some(msg(n)),
                envelope_digest: Some(Digest([n; 32])),
                peer: Some(sa.clone()),
                receipt_digest: Some(digest),
                code: Some("expired".into()),
                ..Entry::new(Timestamp(T0 + 100), Event::Refused)
            },
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
            Entry {
                msg_id: Some(msg(n)),
                peer: Some(ra),
                receipt_digest: Some(digest),
                code: Some("expired".into()),
                ..Entry::new(Timestamp(T0 + 200), Event::Rejected)
            },
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
fn the_code_names_the_recipients() {
    assert_eq!(
        recipients("operational-notice to ME.UP,MK.MVR"),
        ["ME.UP", "MK.MVR"]
    );
    assert_eq!(recipients("readmission-request to BA.SPS"), ["BA.SPS"]);
    assert!(recipients("0.1.0").is_empty());
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
        Entry {
            msg_id: Some(msg(9)),
            envelope_digest: Some(Digest([9; 32])),
            code: Some("operational-notice to ME.UP".into()),
            ..Entry::new(Timestamp(T0), Event::Submitted)
        },
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
        Entry {
            msg_id: Some(msg(7)),
            envelope_digest: Some(Digest([7; 32])),
            peer: Some(auth("RS.MUP")),
            ..Entry::new(Timestamp(T0), Event::Received)
        },
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
            e.code = Some("operational-notice to ME.UP".into());
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
        Entry {
            envelope_digest: Some(Digest([0xab; 32])),
            peer: Some(auth("RS.MUP")),
            code: Some("malformed".into()),
            ..Entry::new(Timestamp(T0), Event::Refused)
        },
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
        Entry {
            msg_id: Some(msg(6)),
            peer: Some(auth("BA.SPS")),
            ..Entry::new(Timestamp(T0), Event::Expired)
        },
    );
    let r = p.run();
    assert_eq!(
        kinds(&r),
        [(FindingKind::Contradictory, Some(msg(6)))],
        "{r:?}"
    );
}

/// Every situation `one_way` reports, with its finding's exact text.
fn pinned_scenarios() -> Vec<(&'static str, Reconciliation)> {
    let mut out = Vec::new();
    // 1. An outcome with no submission.
    let mut p = matching();
    for e in &mut p.a.entries {
        if e.event == Event::Submitted && e.msg_id == Some(msg(1)) {
            e.code = Some("operational-notice to ME.UP".into());
        }
    }
    out.push(("outcome_without_submission", p.run()));
    // 2. Digest differs: received and refused.
    let mut p = matching();
    for e in &mut p.b.entries {
        if matches!(e.event, Event::Received | Event::Refused) && e.peer == Some(auth("RS.MUP")) {
            e.envelope_digest = Some(Digest([0xee; 32]));
        }
    }
    out.push(("digest_differs", p.run()));
    // 3. Missing arrival and refusal.
    let mut p = matching();
    p.b.entries.retain(|e| {
        !(matches!(e.event, Event::Received | Event::Refused) && e.peer == Some(auth("RS.MUP")))
    });
    out.push(("no_arrival_no_refusal", p.run()));
    // 4/5. Pending: expired undelivered, not delivered yet, receipt not back.
    let mut p = matching();
    p.submit(true, 4);
    p.submit(true, 5);
    push(
        &mut p.a,
        Entry {
            msg_id: Some(msg(5)),
            peer: Some(auth("BA.SPS")),
            ..Entry::new(Timestamp(T0), Event::Expired)
        },
    );
    p.submit(true, 6);
    p.deliver(true, 6, false);
    out.push(("pending", p.run()));
    // 6. Receipt recorded but not held: listed as issued / not either.
    let mut p = matching();
    p.a.receipts.retain(|k| k.kind != ReceiptKind::Held);
    out.push(("not_held_issued", p.run()));
    let mut p = matching();
    p.a.receipts.retain(|k| k.kind != ReceiptKind::Held);
    p.b.receipts.retain(|k| k.kind != ReceiptKind::Issued);
    out.push(("not_held_not_issued", p.run()));
    // 8. Held acceptance problems.
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.log_index = None;
        }
    }
    out.push(("held_names_no_entry", p.run()));
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.log_index = Some(99);
        }
    }
    out.push(("held_entry_out_of_range", p.run()));
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.leaf_hash = Some(Digest([0; 32]));
        }
    }
    out.push(("held_leaf_differs", p.run()));
    let mut p = matching();
    let refusal_index =
        p.b.entries
            .iter()
            .find(|e| e.event == Event::Refused)
            .unwrap()
            .index;
    let leaf = p.b.entries[refusal_index as usize].leaf_hash();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.log_index = Some(refusal_index);
            k.receipt.leaf_hash = Some(leaf);
        }
    }
    out.push(("held_not_arrival", p.run()));
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.receipt.envelope_digest = Digest([0x55; 32]);
        }
    }
    out.push(("held_envelope_differs", p.run()));
    let mut p = matching();
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.included_in = Some((1, Digest([7; 32])));
        }
    }
    out.push(("held_rewritten", p.run()));
    let mut p = matching();
    let b_root = kurir_proto::merkle::root(&[p.b.entries[0].leaf_hash()]);
    for k in &mut p.a.receipts {
        if k.receipt.msg_id == Some(msg(1)) {
            k.included_in = Some((50, b_root));
        }
    }
    out.push(("held_removed", p.run()));
    // 9. A held rejection B's log does not have.
    let mut p = matching();
    p.b.entries.retain(|e| e.event != Event::Refused);
    out.push(("held_rejection_not_logged", p.run()));
    // 10. Issued acceptances A records otherwise.
    let mut p = matching();
    for e in &mut p.a.entries {
        if e.event == Event::Delivered && e.msg_id == Some(msg(1)) {
            e.receipt_digest = Some(Digest([0x66; 32]));
        }
    }
    out.push(("issued_other_receipt", p.run()));
    let mut p = matching();
    p.submit(true, 6);
    p.deliver(true, 6, false);
    push(
        &mut p.a,
        Entry {
            msg_id: Some(msg(6)),
            peer: Some(auth("BA.SPS")),
            ..Entry::new(Timestamp(T0), Event::Expired)
        },
    );
    out.push(("issued_but_expired", p.run()));
    // 11. Extra: an arrival and a refusal A never sent.
    let mut p = matching();
    push(
        &mut p.b,
        Entry {
            msg_id: Some(msg(7)),
            envelope_digest: Some(Digest([7; 32])),
            peer: Some(auth("RS.MUP")),
            ..Entry::new(Timestamp(T0), Event::Received)
        },
    );
    push(
        &mut p.b,
        Entry {
            envelope_digest: Some(Digest([0xab; 32])),
            peer: Some(auth("RS.MUP")),
            code: Some("malformed".into()),
            ..Entry::new(Timestamp(T0), Event::Refused)
        },
    );
    out.push(("extra", p.run()));
    out
}

/// The exact text of every situation, as the CLI prints it (pinned from
/// the text before findings were typed).
const PINNED: &[(&str, FindingKind, &str, &str, &str)] = &[
    (
        "outcome_without_submission",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log records the outcome of message 01a2226f-4fd0-7101-8101-010101010101 to BA.SPS (entry 1) but no submission of it to BA.SPS",
    ),
    (
        "digest_differs",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP sent message 01a2226f-4fd0-7101-8101-010101010101 with envelope digest 0101010101010101010101010101010101010101010101010101010101010101 (entry 0), but BA.SPS's log records it received with digest eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee (entry 0)",
    ),
    (
        "digest_differs",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP sent message 01a2226f-4fd0-7202-8202-020202020202 with envelope digest 0202020202020202020202020202020202020202020202020202020202020202 (entry 2), but BA.SPS's log records it refused with digest eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee (entry 1)",
    ),
    (
        "digest_differs",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 names entry 0 of BA.SPS's log with leaf hash c79c96cd40b4c9bc6d71fe268c8bdbdcff897edc3ff62663620085531e71388c, but that entry's leaf hash is b106e317771ae558366c237aaac58238b8261be0e501b299ab05c2b8f6406da3",
    ),
    (
        "no_arrival_no_refusal",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log says BA.SPS accepted message 01a2226f-4fd0-7101-8101-010101010101 (entry 1), but BA.SPS's log has no arrival of it",
    ),
    (
        "no_arrival_no_refusal",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log says BA.SPS refused message 01a2226f-4fd0-7202-8202-020202020202 (entry 3), but BA.SPS's log has no refusal of it",
    ),
    (
        "no_arrival_no_refusal",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 names entry 0 of BA.SPS's log with leaf hash c79c96cd40b4c9bc6d71fe268c8bdbdcff897edc3ff62663620085531e71388c, but that entry's leaf hash is f6da9bd27a842e660e4d3c7df3eb64ca0ee83b9607a954bb8b35b10f2e02e4cc",
    ),
    (
        "no_arrival_no_refusal",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP holds a rejection signed by BA.SPS for message 01a2226f-4fd0-7202-8202-020202020202 (cacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacaca), but BA.SPS's log has no refusal with it",
    ),
    (
        "pending",
        FindingKind::Pending,
        "RS.MUP",
        "BA.SPS",
        "message 01a2226f-4fd0-7404-8404-040404040404 is not delivered yet: RS.MUP holds no receipt and BA.SPS's log has no record of it (BA.SPS may have been unreachable)",
    ),
    (
        "pending",
        FindingKind::Pending,
        "RS.MUP",
        "BA.SPS",
        "message 01a2226f-4fd0-7505-8505-050505050505 expired undelivered to BA.SPS (entry 7 of RS.MUP's log); BA.SPS's log has no record of it",
    ),
    (
        "pending",
        FindingKind::Pending,
        "RS.MUP",
        "BA.SPS",
        "BA.SPS accepted message 01a2226f-4fd0-7606-8606-060606060606 (receipt 6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a), but RS.MUP has not recorded the receipt yet (it comes back on RS.MUP's next attempt)",
    ),
    (
        "not_held_issued",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log records receipt 6565656565656565656565656565656565656565656565656565656565656565 from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 (entry 1, delivered), but RS.MUP's bundle does not hold it; BA.SPS's bundle lists it as issued",
    ),
    (
        "not_held_issued",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log records receipt cacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacaca from BA.SPS for message 01a2226f-4fd0-7202-8202-020202020202 (entry 3, rejected), but RS.MUP's bundle does not hold it; BA.SPS's bundle lists it as issued",
    ),
    (
        "not_held_not_issued",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log records receipt 6565656565656565656565656565656565656565656565656565656565656565 from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 (entry 1, delivered), but RS.MUP's bundle does not hold it; BA.SPS's bundle does not have it either",
    ),
    (
        "not_held_not_issued",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log records receipt cacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacaca from BA.SPS for message 01a2226f-4fd0-7202-8202-020202020202 (entry 3, rejected), but RS.MUP's bundle does not hold it; BA.SPS's bundle does not have it either",
    ),
    (
        "held_names_no_entry",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 names no entry of BA.SPS's log",
    ),
    (
        "held_entry_out_of_range",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 names entry 99 of BA.SPS's log, which has only 4 entries",
    ),
    (
        "held_leaf_differs",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 names entry 0 of BA.SPS's log with leaf hash 0000000000000000000000000000000000000000000000000000000000000000, but that entry's leaf hash is c79c96cd40b4c9bc6d71fe268c8bdbdcff897edc3ff62663620085531e71388c",
    ),
    (
        "held_not_arrival",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 names entry 1 of BA.SPS's log, which is not the arrival of message 01a2226f-4fd0-7101-8101-010101010101",
    ),
    (
        "held_envelope_differs",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 attests envelope digest 5555555555555555555555555555555555555555555555555555555555555555, but entry 0 of BA.SPS's log records 0101010101010101010101010101010101010101010101010101010101010101",
    ),
    (
        "held_rewritten",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 comes with BA.SPS's signed checkpoint of size 1 (root 0707070707070707070707070707070707070707070707070707070707070707), but BA.SPS's exported log gives root c79c96cd40b4c9bc6d71fe268c8bdbdcff897edc3ff62663620085531e71388c at that size: BA.SPS's log was rewritten",
    ),
    (
        "held_removed",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "the receipt RS.MUP holds from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 comes with BA.SPS's signed checkpoint of size 50, but BA.SPS's exported log has only 4 entries: entries were removed",
    ),
    (
        "held_rejection_not_logged",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log says BA.SPS refused message 01a2226f-4fd0-7202-8202-020202020202 (entry 3), but BA.SPS's log has no refusal of it",
    ),
    (
        "held_rejection_not_logged",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP holds a rejection signed by BA.SPS for message 01a2226f-4fd0-7202-8202-020202020202 (cacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacaca), but BA.SPS's log has no refusal with it",
    ),
    (
        "issued_other_receipt",
        FindingKind::Missing,
        "RS.MUP",
        "BA.SPS",
        "RS.MUP's log records receipt 6666666666666666666666666666666666666666666666666666666666666666 from BA.SPS for message 01a2226f-4fd0-7101-8101-010101010101 (entry 1, delivered), but RS.MUP's bundle does not hold it; BA.SPS's bundle does not have it either",
    ),
    (
        "issued_other_receipt",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "BA.SPS issued receipt 6565656565656565656565656565656565656565656565656565656565656565 for message 01a2226f-4fd0-7101-8101-010101010101, but RS.MUP's log records receipt 6666666666666666666666666666666666666666666666666666666666666666 for it (entry 1)",
    ),
    (
        "issued_but_expired",
        FindingKind::Contradictory,
        "RS.MUP",
        "BA.SPS",
        "BA.SPS accepted message 01a2226f-4fd0-7606-8606-060606060606 (receipt 6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a), but RS.MUP's log records it expired (entry 6)",
    ),
    (
        "extra",
        FindingKind::Extra,
        "RS.MUP",
        "BA.SPS",
        "BA.SPS's log records the arrival of message 01a2226f-4fd0-7707-8707-070707070707 from RS.MUP (entry 4), but RS.MUP's log has no such message to BA.SPS",
    ),
    (
        "extra",
        FindingKind::Extra,
        "RS.MUP",
        "BA.SPS",
        "BA.SPS's log records refusing message (unknown) from RS.MUP (entry 5), but RS.MUP's log has no such message to BA.SPS",
    ),
];

#[test]
fn every_finding_says_exactly_what_it_always_said() {
    let mut got = Vec::new();
    for (name, r) in pinned_scenarios() {
        for f in &r.findings {
            got.push((
                name,
                f.kind,
                f.from.to_string(),
                f.to.to_string(),
                f.to_string(),
            ));
        }
    }
    let want: Vec<_> = PINNED
        .iter()
        .map(|(n, k, from, to, text)| (*n, *k, from.to_string(), to.to_string(), text.to_string()))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}
