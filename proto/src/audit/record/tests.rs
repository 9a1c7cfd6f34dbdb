//! The codes and fields of every event, pinned.

use super::*;

fn a(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

const T: Timestamp = Timestamp(1_795_874_050_000);

/// One record of every event, with the code text it has always had.
fn every_record() -> Vec<(Record, Option<&'static str>)> {
    let id = MessageId::new_v7(T.0, [1; 10]);
    let case = CaseId::parse("RS.MUP:2026-000123").unwrap();
    vec![
        (
            Record::Started {
                version: "0.1.0".into(),
            },
            Some("kurir-relay 0.1.0"),
        ),
        (
            Record::Roster {
                version: 2,
                fingerprint: Digest([0xab; 32]),
            },
            Some(
                "version 2 sha256 \
                 abababababababababababababababababababababababababababababababab",
            ),
        ),
        (
            Record::Submitted {
                msg_id: id,
                envelope_digest: Digest([2; 32]),
                kind: MessageKind::OperationalNotice,
                to: vec![a("ME.UP"), a("MK.MVR")],
                case_id: None,
                officer: "0a1b".into(),
            },
            Some("operational-notice to ME.UP,MK.MVR"),
        ),
        (
            Record::Submitted {
                msg_id: id,
                envelope_digest: Digest([2; 32]),
                kind: MessageKind::ReadmissionRequest,
                to: vec![a("BA.SPS")],
                case_id: Some(case.clone()),
                officer: "0a1b".into(),
            },
            Some("readmission-request to BA.SPS"),
        ),
        (
            Record::Delivered {
                msg_id: id,
                peer: a("BA.SPS"),
                receipt_digest: Digest([3; 32]),
            },
            None,
        ),
        (
            Record::Rejected {
                msg_id: id,
                peer: a("BA.SPS"),
                receipt_digest: Digest([3; 32]),
                reason: RejectCode::KindNotAllowed,
            },
            Some("kind_not_allowed"),
        ),
        (
            Record::Expired {
                msg_id: id,
                peer: a("BA.SPS"),
            },
            None,
        ),
        (
            Record::Received {
                msg_id: id,
                envelope_digest: Digest([2; 32]),
                peer: a("RS.MUP"),
                case_id: Some(case.clone()),
                kind: MessageKind::ReadmissionReply,
            },
            Some("readmission-reply"),
        ),
        (
            Record::Refused {
                msg_id: None,
                envelope_digest: Digest([2; 32]),
                peer: a("RS.MUP"),
                receipt_digest: Digest([3; 32]),
                reason: RejectCode::BadSignature,
            },
            Some("bad_signature"),
        ),
        (
            Record::Read {
                msg_id: id,
                officer: "0a1b".into(),
            },
            None,
        ),
        (
            Record::BodyRead {
                msg_id: id,
                officer: "0a1b".into(),
                role: Role::Officer,
                name: "Ana Example".into(),
            },
            Some("officer Ana Example"),
        ),
        (
            Record::BodyRefused {
                msg_id: id,
                officer: "0c1d".into(),
                role: Role::Auditor,
                name: "Marko Auditor".into(),
                reason: ReadRefusal::RoleNotAllowed,
            },
            Some("role_not_allowed auditor Marko Auditor"),
        ),
        (
            Record::BodyRefused {
                msg_id: id,
                officer: "0c1d".into(),
                role: Role::Officer,
                name: "duty officer".into(),
                reason: ReadRefusal::NotAFocalPoint,
            },
            Some("not_a_focal_point officer duty officer"),
        ),
        (
            Record::BodyErased {
                msg_id: id,
                policy: "retention.default_days = 30: 30 days after delivery".into(),
            },
            Some("retention.default_days = 30: 30 days after delivery"),
        ),
        (
            Record::Deadline {
                case_id: case,
                what: CaseDeadline::DeemedAccepted,
            },
            Some("deemed_accepted"),
        ),
        (
            Record::Failed {
                msg_id: id,
                peer: a("BA.SPS"),
                reason: DeliveryFailure::NotAMember,
            },
            Some("not_a_member"),
        ),
        (
            Record::PeerCheckpoint {
                peer: a("BA.SPS"),
                size: 41,
                root: Digest([0xcd; 32]),
            },
            Some(
                "size 41 root \
                 cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            ),
        ),
    ]
}

#[test]
fn every_code_is_the_text_it_has_always_been() {
    for (record, code) in every_record() {
        assert_eq!(record.code().as_deref(), code, "{record:?}");
        let entry = Entry::new(T, record.clone());
        assert_eq!(entry.event, record.event());
        assert_eq!(entry.code.as_deref(), code);
        assert_eq!(entry.record(), Ok(record.clone()));
        let entry = Entry {
            index: 1,
            prev: Some(Digest([9; 32])),
            ..entry
        };
        let decoded = Entry::decode(&entry.encode()).unwrap();
        assert_eq!(decoded.record(), Ok(record));
    }
    for d in CaseDeadline::ALL {
        assert_eq!(CaseDeadline::parse(d.as_str()), Some(d));
    }
    assert_eq!(
        CaseDeadline::ALL.map(CaseDeadline::as_str),
        ["due_soon", "deemed_accepted", "transfer_overdue"]
    );
    for r in DeliveryFailure::ALL {
        assert_eq!(DeliveryFailure::parse(r.as_str()), Some(r));
    }
    let failed = every_record()[15].0.clone();
    assert_eq!(failed.event(), Event::Failed);
    assert!(matches!(
        with_code(failed, "gone").record(),
        Err(RecordError::Code { .. })
    ));
}

#[test]
fn the_code_names_the_recipients() {
    let to = |code: &str| code::parse_submitted(code).map(|(_, to)| to);
    assert_eq!(
        to("operational-notice to ME.UP,MK.MVR"),
        Some(vec![a("ME.UP"), a("MK.MVR")])
    );
    assert_eq!(to("readmission-request to BA.SPS"), Some(vec![a("BA.SPS")]));
    assert_eq!(to("0.1.0"), None);
}

/// An entry whose `code` is changed to `code`.
fn with_code(record: Record, code: &str) -> Entry {
    Entry {
        code: Some(code.into()),
        ..Entry::new(T, record)
    }
}

#[test]
fn a_code_not_in_its_events_form_is_refused() {
    let started = Record::Started {
        version: "0.1.0".into(),
    };
    let roster = Record::Roster {
        version: 2,
        fingerprint: Digest([0xab; 32]),
    };
    let submitted = every_record()[2].0.clone();
    let checkpoint = every_record().pop().unwrap().0;
    let bad = [
        with_code(started.clone(), "kurir 0.1.0"),
        with_code(started, "kurir-relay "),
        with_code(roster.clone(), "version 2 sha256 abab"),
        with_code(
            roster.clone(),
            &format!("version 02 sha256 {}", Digest([0xab; 32])),
        ),
        with_code(roster, &format!("version 2 sha256 {}", "AB".repeat(32))),
        with_code(submitted.clone(), "operational-notice to ME.UP, MK.MVR"),
        with_code(submitted.clone(), "operational-notice to me.up"),
        with_code(submitted.clone(), "notice to ME.UP"),
        with_code(submitted, "operational-notice to "),
        with_code(checkpoint.clone(), "size 41 root"),
        with_code(checkpoint, &format!("size +41 root {}", Digest([0xcd; 32]))),
        with_code(every_record()[5].0.clone(), "because"),
        with_code(every_record()[7].0.clone(), "readmission reply"),
        with_code(every_record()[11].0.clone(), "due soon"),
    ];
    for e in bad {
        let err = e.record().unwrap_err();
        assert!(matches!(err, RecordError::Code { .. }), "{err}");
        let linked = Entry {
            index: 1,
            prev: Some(Digest([9; 32])),
            ..e
        };
        assert!(Entry::decode(&linked.encode()).is_err());
    }
    // A code on an event that has none, a missing or an extra field.
    let delivered = Entry::new(T, every_record()[4].0.clone());
    let e = Entry {
        code: Some("ok".into()),
        ..delivered.clone()
    };
    assert!(matches!(
        e.record(),
        Err(RecordError::Unexpected { field: "code", .. })
    ));
    let e = Entry {
        peer: None,
        ..delivered.clone()
    };
    assert!(matches!(
        e.record(),
        Err(RecordError::Missing { field: "peer", .. })
    ));
    let e = Entry {
        officer: Some("0a1b".into()),
        ..delivered
    };
    assert!(matches!(
        e.record(),
        Err(RecordError::Unexpected {
            field: "officer",
            ..
        })
    ));
}

#[test]
fn a_submitted_code_cut_at_its_limit_keeps_the_whole_recipients() {
    // Sixteen recipients with long agency codes: more than MAX_TEXT.
    let to: Vec<AuthorityId> = (0..16)
        .map(|i| {
            a(&format!(
                "A{}.AGENCYNUMBER{i:04}",
                char::from(b'A' + i as u8)
            ))
        })
        .collect();
    let record = Record::Submitted {
        msg_id: MessageId::new_v7(T.0, [1; 10]),
        envelope_digest: Digest([2; 32]),
        kind: MessageKind::OperationalNotice,
        to: to.clone(),
        case_id: None,
        officer: "0a1b".into(),
    };
    assert!(record.code().unwrap().len() > MAX_TEXT);
    let entry = Entry {
        index: 1,
        prev: Some(Digest([9; 32])),
        ..Entry::new(T, record)
    };
    // As the relay has always written it: the code cut at MAX_TEXT.
    let decoded = Entry::decode(&entry.encode()).unwrap();
    assert_eq!(decoded.code.as_ref().map(String::len), Some(MAX_TEXT));
    let Ok(Record::Submitted { to: kept, .. }) = decoded.record() else {
        panic!("{:?}", decoded.record());
    };
    // Those before the cut, whole; the last may be cut short (here it
    // still is an authority id), as the text always had it.
    let (last, whole) = kept.split_last().unwrap();
    assert!(kept.len() < to.len());
    assert_eq!(whole, &to[..whole.len()]);
    assert!(to[whole.len()].as_str().starts_with(last.as_str()));
    assert_eq!(
        decoded.code.as_deref(),
        Some(code::submitted(MessageKind::OperationalNotice, &kept).as_str())
    );
}

#[test]
fn a_submitted_code_cut_inside_its_last_recipient_leaves_it_out() {
    let to: Vec<AuthorityId> = (0..11)
        .map(|i| {
            a(&format!(
                "A{}.AGENCYNUMBER{i:04}",
                char::from(b'A' + i as u8)
            ))
        })
        .collect();
    let record = Record::Submitted {
        msg_id: MessageId::new_v7(T.0, [1; 10]),
        envelope_digest: Digest([2; 32]),
        kind: MessageKind::OperationalNotice,
        to: to.clone(),
        case_id: None,
        officer: "0a1b".into(),
    };
    // What is left of a twelfth recipient after the cut is no authority id.
    let code = format!("{},ab.cdefghijklm", record.code().unwrap());
    assert_eq!(code.len(), MAX_TEXT);
    let cut = Entry {
        code: Some(code.clone()),
        ..Entry::new(T, record.clone())
    };
    assert_eq!(cut.record(), Ok(record));
    // Shorter than the limit, the same text is not a cut one: refused.
    let short = Entry {
        code: Some(code[..code.len() - 1].to_owned()),
        ..cut
    };
    assert!(matches!(short.record(), Err(RecordError::Code { .. })));
}

#[test]
fn a_readers_name_cut_at_the_limit_stays_readable() {
    let id = MessageId::new_v7(T.0, [1; 10]);
    let read = Record::BodyRead {
        msg_id: id,
        officer: "0a1b".into(),
        role: Role::Officer,
        name: "é".repeat(200),
    };
    let entry = Entry {
        index: 1,
        prev: Some(Digest([9; 32])),
        ..Entry::new(T, read)
    };
    let decoded = Entry::decode(&entry.encode()).unwrap();
    match decoded.record().unwrap() {
        Record::BodyRead { role, name, .. } => {
            assert_eq!(role, Role::Officer);
            assert!(name.len() < 256 && name.chars().all(|c| c == 'é'), "{name}");
        }
        other => unreachable!("{other:?}"),
    }
    for (event, code) in [
        (Event::BodyRead, "root Ana"),
        (Event::BodyRead, "officer"),
        (Event::BodyRead, "officer "),
        (Event::BodyRefused, "curious officer Ana"),
        (Event::BodyRefused, "role_not_allowed officer"),
    ] {
        let e = Entry {
            event,
            msg_id: Some(id),
            officer: Some("0a1b".into()),
            code: Some(code.into()),
            ..Entry::new(
                T,
                Record::Started {
                    version: "1".into(),
                },
            )
        };
        assert!(
            matches!(e.record(), Err(RecordError::Code { .. })),
            "{event} {code:?}"
        );
    }
    for r in ReadRefusal::ALL {
        assert_eq!(ReadRefusal::parse(r.as_str()), Some(r));
    }
}
