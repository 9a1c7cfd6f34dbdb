#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kurir_proto::audit::{CaseDeadline, Entry, Record};
use kurir_proto::message::MessageKind;
use kurir_proto::{CaseId, Digest, Timestamp};

use super::*;
use crate::Log;
use crate::testing::{T0, auth, empty, msg, push};

const DAY: u64 = 86_400_000;

fn case() -> CaseId {
    CaseId::parse("RS.MUP:2026-1").unwrap()
}

fn at(ms: u64, record: Record) -> Entry {
    Entry::new(Timestamp(ms), record)
}

fn sent(ms: u64, n: u8, kind: MessageKind, to: &str) -> Entry {
    at(
        ms,
        Record::Submitted {
            msg_id: msg(n),
            envelope_digest: Digest([n; 32]),
            kind,
            to: vec![auth(to)],
            case_id: Some(case()),
            officer: "0a".into(),
        },
    )
}

fn deemed(ms: u64) -> Entry {
    at(
        ms,
        Record::Deadline {
            case_id: case(),
            what: CaseDeadline::DeemedAccepted,
        },
    )
}

fn started(ms: u64) -> Entry {
    at(
        ms,
        Record::Started {
            version: "kurir-relay".into(),
        },
    )
}

/// RS.MUP asks BA.SPS (message 1) and, twelve days later, deems the
/// request accepted.
fn asker() -> Log {
    let mut l = empty("RS.MUP");
    push(
        &mut l,
        sent(T0, 1, MessageKind::ReadmissionRequest, "BA.SPS"),
    );
    push(
        &mut l,
        at(
            T0 + 1000,
            Record::Delivered {
                msg_id: msg(1),
                peer: auth("BA.SPS"),
                receipt_digest: Digest([9; 32]),
            },
        ),
    );
    push(&mut l, deemed(T0 + 12 * DAY));
    l
}

/// BA.SPS receives the request, then `between` (entries before T), then
/// its own deemed acceptance after T.
fn asked(between: Vec<Entry>) -> Log {
    let mut l = empty("BA.SPS");
    push(
        &mut l,
        at(
            T0 + 500,
            Record::Received {
                msg_id: msg(1),
                envelope_digest: Digest([1; 32]),
                peer: auth("RS.MUP"),
                case_id: Some(case()),
                kind: MessageKind::ReadmissionRequest,
            },
        ),
    );
    for e in between {
        push(&mut l, e);
    }
    push(&mut l, deemed(T0 + 12 * DAY + 60_000));
    l
}

type Cosigned = Vec<(u64, Vec<(AuthorityId, u64)>)>;

/// A checkpoint covering all of `log`, cosigned by ME.UP `secs_after_t`
/// seconds after T (negative: before).
fn cosigned_all(log: &Log, secs_after_t: i64) -> Cosigned {
    let t_secs = (T0 + 12 * DAY) / 1000;
    let when = t_secs.checked_add_signed(secs_after_t).unwrap();
    vec![(log.entries.len() as u64, vec![(auth("ME.UP"), when)])]
}

fn prove(a: &Log, b: &Log, b_cosigned: &Cosigned) -> Result<Silence, NoProof> {
    let none: Cosigned = vec![];
    prove_silence(
        &case(),
        &[
            LogView {
                log: a,
                cosigned: &none,
            },
            LogView {
                log: b,
                cosigned: b_cosigned,
            },
        ],
    )
}

#[test]
fn silence_holds_when_the_asked_log_cosigned_after_t_has_no_answer() {
    let (a, b) = (asker(), asked(vec![started(T0 + DAY)]));
    let c = cosigned_all(&b, 120);
    let proof = prove(&a, &b, &c).unwrap();
    assert_eq!(proof.requesting, auth("RS.MUP"));
    assert_eq!(proof.requested, auth("BA.SPS"));
    assert_eq!(proof.deemed.index, 2);
    assert_eq!(proof.request_received.index, 0);
    assert_eq!(proof.request_delivered.as_ref().unwrap().index, 1);
    assert_eq!(proof.requested_deemed.as_ref().unwrap().index, 2);
    assert_eq!(proof.first_after.index, 2);
    assert_eq!(proof.checkpoint.size, 3);
    assert_eq!(proof.checkpoint.cosigners.len(), 1);
    let leaves: Vec<Digest> = b.entries.iter().map(Entry::leaf_hash).collect();
    assert_eq!(proof.checkpoint.root, kurir_proto::merkle::root(&leaves));
    assert!(proof.late.is_empty() && proof.out_of_order.is_empty());
}

#[test]
fn a_reply_before_t_is_an_answer() {
    let reply = sent(T0 + 3 * DAY, 2, MessageKind::ReadmissionReply, "RS.MUP");
    let (a, b) = (asker(), asked(vec![reply]));
    let c = cosigned_all(&b, 120);
    match prove(&a, &b, &c) {
        Err(NoProof::Answered { kind, entry, .. }) => {
            assert_eq!(kind, MessageKind::ReadmissionReply);
            assert_eq!(entry.index, 1);
        }
        other => panic!("{other:?}"),
    }
    // An extension request is an answer too.
    let ext = sent(T0 + DAY, 3, MessageKind::DeadlineExtensionRequest, "RS.MUP");
    let b = asked(vec![ext]);
    let c = cosigned_all(&b, 120);
    assert!(matches!(prove(&a, &b, &c), Err(NoProof::Answered { .. })));
}

#[test]
fn a_reply_after_t_is_listed_late_and_the_proof_holds() {
    let (a, mut b) = (asker(), asked(vec![]));
    push(
        &mut b,
        sent(T0 + 13 * DAY, 2, MessageKind::ReadmissionReply, "RS.MUP"),
    );
    let c = cosigned_all(&b, 2 * 86_400);
    let proof = prove(&a, &b, &c).unwrap();
    assert_eq!(proof.late.len(), 1);
    assert_eq!(proof.late[0].1, MessageKind::ReadmissionReply);
}

#[test]
fn a_checkpoint_cosigned_only_before_t_proves_nothing() {
    let (a, b) = (asker(), asked(vec![]));
    let c = cosigned_all(&b, -60);
    assert!(matches!(
        prove(&a, &b, &c),
        Err(NoProof::NotCovered { first_after: 1, .. })
    ));
    // Nor does a checkpoint that stops before the first entry after T.
    let c: Cosigned = vec![(1, vec![(auth("ME.UP"), (T0 + 13 * DAY) / 1000)])];
    assert!(matches!(prove(&a, &b, &c), Err(NoProof::NotCovered { .. })));
}

#[test]
fn a_backdated_reply_after_the_checkpoint_is_out_of_order_not_an_answer() {
    let (a, mut b) = (asker(), asked(vec![]));
    let c = cosigned_all(&b, 120);
    push(
        &mut b,
        sent(T0 + 2 * DAY, 2, MessageKind::ReadmissionReply, "RS.MUP"),
    );
    let proof = prove(&a, &b, &c).unwrap();
    assert_eq!(proof.out_of_order.len(), 1);
    assert_eq!(proof.out_of_order[0].index, 2);
}

#[test]
fn missing_pieces_are_named() {
    let b = asked(vec![]);
    let c = cosigned_all(&b, 120);
    // The asker's clock never fired.
    let mut a = asker();
    a.entries.pop();
    assert!(matches!(
        prove(&a, &b, &c),
        Err(NoProof::NotDeemedAccepted { .. })
    ));
    // The asked side's bundle is not given.
    let a = asker();
    let none: Cosigned = vec![];
    let only = [LogView {
        log: &a,
        cosigned: &none,
    }];
    assert!(matches!(
        prove_silence(&case(), &only),
        Err(NoProof::NoRequestedBundle { .. })
    ));
    // Nor the asker's.
    let only = [LogView {
        log: &b,
        cosigned: &c,
    }];
    assert!(matches!(
        prove_silence(&case(), &only),
        Err(NoProof::UnknownCase { .. })
    ));
    // The asked side never received the request.
    let mut b2 = empty("BA.SPS");
    push(&mut b2, deemed(T0 + 12 * DAY + 1000));
    let c2 = cosigned_all(&b2, 120);
    assert!(matches!(
        prove(&a, &b2, &c2),
        Err(NoProof::NotReceived { .. })
    ));
    // Its log ends before T.
    let mut b3 = asked(vec![]);
    b3.entries.pop();
    let c3 = cosigned_all(&b3, 120);
    assert!(matches!(
        prove(&a, &b3, &c3),
        Err(NoProof::LogEndsBefore { .. })
    ));
}
