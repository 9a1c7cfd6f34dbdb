#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kurir_proto::audit::{CaseDeadline, Entry, Record};
use kurir_proto::message::MessageKind;
use kurir_proto::{CaseId, Digest, RejectCode, Timestamp};

use super::*;
use crate::testing::{T0, auth, empty, msg, push};

const DAY: u64 = 86_400_000;

fn case(n: u8) -> CaseId {
    CaseId::parse(&format!("RS.MUP:2026-{n}")).unwrap()
}

fn sent(ms: u64, n: u8, kind: MessageKind, to: &str, c: Option<CaseId>) -> Entry {
    Entry::new(
        Timestamp(ms),
        Record::Submitted {
            msg_id: msg(n),
            envelope_digest: Digest([n; 32]),
            kind,
            to: vec![auth(to)],
            case_id: c,
            officer: "0a".into(),
        },
    )
}

fn received(ms: u64, n: u8, kind: MessageKind, from: &str, c: Option<CaseId>) -> Entry {
    Entry::new(
        Timestamp(ms),
        Record::Received {
            msg_id: msg(n),
            envelope_digest: Digest([n; 32]),
            peer: auth(from),
            case_id: c,
            kind,
        },
    )
}

fn clock(ms: u64, c: CaseId, what: CaseDeadline) -> Entry {
    Entry::new(Timestamp(ms), Record::Deadline { case_id: c, what })
}

/// RS.MUP and BA.SPS: case 1 answered in time and handed over, case 2
/// deemed accepted with no reply, a notice, a refusal and a read.
fn logs() -> (Log, Log) {
    let (mut rs, mut ba) = (empty("RS.MUP"), empty("BA.SPS"));
    let req = MessageKind::ReadmissionRequest;
    push(&mut rs, sent(T0, 1, req, "BA.SPS", Some(case(1))));
    push(&mut ba, received(T0 + 1, 1, req, "RS.MUP", Some(case(1))));
    let reply = MessageKind::ReadmissionReply;
    push(&mut ba, sent(T0 + DAY, 2, reply, "RS.MUP", Some(case(1))));
    push(
        &mut rs,
        received(T0 + DAY + 1, 2, reply, "BA.SPS", Some(case(1))),
    );
    let handover = MessageKind::HandoverConfirmation;
    push(
        &mut ba,
        sent(T0 + 5 * DAY, 3, handover, "RS.MUP", Some(case(1))),
    );
    push(&mut rs, sent(T0 + DAY, 4, req, "BA.SPS", Some(case(2))));
    push(
        &mut ba,
        received(T0 + DAY + 1, 4, req, "RS.MUP", Some(case(2))),
    );
    push(
        &mut rs,
        clock(T0 + 13 * DAY, case(2), CaseDeadline::DeemedAccepted),
    );
    push(
        &mut ba,
        clock(T0 + 13 * DAY + 5, case(2), CaseDeadline::DeemedAccepted),
    );
    push(
        &mut rs,
        sent(
            T0 + 2 * DAY,
            5,
            MessageKind::OperationalNotice,
            "BA.SPS",
            None,
        ),
    );
    push(
        &mut ba,
        Entry::new(
            Timestamp(T0 + 3 * DAY),
            Record::Refused {
                msg_id: Some(msg(6)),
                envelope_digest: Digest([6; 32]),
                peer: auth("RS.MUP"),
                receipt_digest: Digest([7; 32]),
                reason: RejectCode::KindNotAllowed,
            },
        ),
    );
    push(
        &mut ba,
        Entry::new(
            Timestamp(T0 + 4 * DAY),
            Record::Read {
                msg_id: msg(1),
                officer: "1f2e".into(),
            },
        ),
    );
    (rs, ba)
}

fn views<'a>(
    rs: &'a Log,
    ba: &'a Log,
    cosigned: &'a [(u64, Vec<(AuthorityId, u64)>)],
) -> Vec<LogView<'a>> {
    vec![
        LogView {
            log: rs,
            cosigned: &[],
        },
        LogView { log: ba, cosigned },
    ]
}

#[test]
fn cases_show_each_deadline_from_what_the_logs_record() {
    let (rs, ba) = logs();
    let c = [(
        ba.entries.len() as u64,
        vec![(auth("ME.UP"), (T0 + 14 * DAY) / 1000)],
    )];
    let v = views(&rs, &ba, &c);
    let cases = cases(&v);
    assert_eq!(cases.len(), 2);
    let one = &cases[0];
    assert_eq!(one.case_id, case(1));
    assert_eq!(one.requested, Some(auth("BA.SPS")));
    assert_eq!(
        one.reply,
        DeadlineState::Met {
            at: Timestamp(T0 + DAY)
        }
    );
    assert_eq!(
        one.transfer,
        DeadlineState::Met {
            at: Timestamp(T0 + 5 * DAY)
        }
    );
    assert!(one.silence.is_none());
    // Both sides' entries, in time order: the request sent and received,
    // the reply, the handover, the read of the request.
    assert_eq!(one.events.len(), 6, "{:?}", one.events);
    assert!(
        one.events
            .windows(2)
            .all(|w| w[0].entry.at <= w[1].entry.at)
    );
    let two = &cases[1];
    assert_eq!(
        two.reply,
        DeadlineState::DeemedAccepted {
            at: Timestamp(T0 + 13 * DAY),
            late_reply: None
        }
    );
    assert_eq!(two.transfer, DeadlineState::Open);
    let proof = two.silence.clone().unwrap().unwrap();
    assert_eq!(proof.requested, auth("BA.SPS"));
}

#[test]
fn a_case_with_no_cosigned_checkpoint_after_t_has_no_proof() {
    let (rs, ba) = logs();
    let v = views(&rs, &ba, &[]);
    let two = &cases(&v)[1];
    assert!(matches!(two.silence, Some(Err(NoProof::NotCovered { .. }))));
}

#[test]
fn traffic_counts_each_message_once_per_recipient_from_either_log() {
    let (rs, ba) = logs();
    let v = views(&rs, &ba, &[]);
    let t = traffic(&v);
    // RS.MUP → BA.SPS: two requests and a notice (msg 6 was refused, and
    // is not a message sent); BA.SPS → RS.MUP: reply and handover.
    assert_eq!(t.matrix[&(auth("RS.MUP"), auth("BA.SPS"))], 3);
    assert_eq!(t.matrix[&(auth("BA.SPS"), auth("RS.MUP"))], 2);
    assert_eq!(t.total(), 5);
    assert_eq!(t.per_day.values().sum::<usize>(), 5);
    // With RS.MUP's log alone, what BA.SPS sent is still counted from
    // RS.MUP's arrivals (the handover, never received, is not).
    let alone = [LogView {
        log: &rs,
        cosigned: &[],
    }];
    let t = traffic(&alone);
    assert_eq!(t.matrix[&(auth("BA.SPS"), auth("RS.MUP"))], 1);
}

#[test]
fn refusals_reads_and_findings_name_their_entries() {
    let (rs, ba) = logs();
    let v = views(&rs, &ba, &[]);
    let r = refusals(&v);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].reason, "kind_not_allowed");
    assert_eq!(
        (r[0].entry.authority.as_str(), r[0].entry.index),
        ("BA.SPS", 5)
    );
    let reads = reads(&v);
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].officer, "1f2e");
    let p = pairs(&v);
    assert_eq!(p.len(), 1);
    // The notice (5) and the handover (3) are recorded on one side only,
    // and no receipts are kept in these logs: findings, each naming the
    // entries of its message with their leaf hashes.
    assert!(!p[0].findings.is_empty());
    for (f, entries) in &p[0].findings {
        assert!(!entries.is_empty(), "{f}");
        for e in entries {
            let log = if e.authority == rs.authority {
                &rs
            } else {
                &ba
            };
            assert_eq!(e.leaf, log.entries[e.index as usize].leaf_hash());
        }
    }
}

#[test]
fn the_page_escapes_log_strings_and_loads_nothing() {
    let (rs, mut ba) = logs();
    push(
        &mut ba,
        Entry::new(
            Timestamp(T0 + 6 * DAY),
            Record::Read {
                msg_id: msg(2),
                officer: "<script>alert(1)</script>\u{202e}gpj.exe".into(),
            },
        ),
    );
    let v = views(&rs, &ba, &[]);
    let report = Report {
        generated_at: Timestamp(T0 + 20 * DAY),
        anchor: "--roster roster.cbor".into(),
        bundles: vec![],
        failed: vec![],
        roster: None,
        cases: cases(&v),
        traffic: traffic(&v),
        refusals: refusals(&v),
        reads: reads(&v),
        pairs: pairs(&v),
    };
    let page = html(&report);
    assert!(!page.contains("<script"), "a log string became markup");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}gpj.exe"));
    assert!(!page.contains('\u{202e}'));
    for external in ["http:", "https:", "src=", "href=", "url(", "@import"] {
        let outside_svg_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!outside_svg_ns.contains(external), "{external}");
    }
    assert!(page.contains("default-src 'none'"));
    assert!(page.contains("data-case=\"RS.MUP:2026-2\" data-reply=\"deemed_accepted\""));
    assert!(page.contains("data-from=\"RS.MUP\" data-to=\"BA.SPS\">3<"));
    // Findings in the logs: not verified.
    assert!(page.contains("data-verdict=\"not-verified\""));
}

#[test]
fn the_chart_draws_every_day_between_the_first_and_the_last() {
    let mut per_day = BTreeMap::new();
    let d = |ms: u64| Timestamp(ms).date();
    per_day.insert(d(T0), 2);
    per_day.insert(d(T0 + 3 * DAY), 5);
    let svg = chart::per_day_svg(&per_day);
    assert_eq!(svg.matches("<rect").count(), 2);
    assert!(svg.contains("data-count=\"5\""));
    assert!(svg.contains(&d(T0 + DAY).to_string()) || svg.matches("<text").count() >= 3);
    assert_eq!(
        chart::per_day_svg(&BTreeMap::new()),
        "<p>No messages.</p>\n"
    );
}
