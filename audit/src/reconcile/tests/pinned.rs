//! The exact text of every finding [`super::super::reconcile_logs`]
//! reports, one scenario per situation.

use super::*;

/// Every situation the reconciliation reports, with its finding's exact text.
fn pinned_scenarios() -> Vec<(&'static str, Reconciliation)> {
    let mut out = Vec::new();
    // 1. An outcome with no submission.
    let mut p = matching();
    for e in &mut p.a.entries {
        if e.event == Event::Submitted && e.msg_id == Some(msg(1)) {
            sent_to(e, "ME.UP");
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
        Entry::new(
            Timestamp(T0),
            Record::Expired {
                msg_id: msg(5),
                peer: auth("BA.SPS"),
            },
        ),
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
        Entry::new(
            Timestamp(T0),
            Record::Expired {
                msg_id: msg(6),
                peer: auth("BA.SPS"),
            },
        ),
    );
    out.push(("issued_but_expired", p.run()));
    // 11. Extra: an arrival and a refusal A never sent.
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
    out.push(("extra", p.run()));
    // 13. Pending: ended undelivered when the receiver left the roster.
    let mut p = matching();
    p.submit(true, 8);
    push(
        &mut p.a,
        Entry::new(
            Timestamp(T0),
            Record::Failed {
                msg_id: msg(8),
                peer: auth("BA.SPS"),
                reason: DeliveryFailure::NotAMember,
            },
        ),
    );
    out.push(("failed_undelivered", p.run()));
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
    (
        "failed_undelivered",
        FindingKind::Pending,
        "RS.MUP",
        "BA.SPS",
        "message 01a2226f-4fd0-7808-8808-080808080808 was not delivered to BA.SPS, which left the roster (entry 6 of RS.MUP's log); BA.SPS's log has no record of it",
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
