//! The roster: signing, k-of-n, rollback, tampering, key rules.

use kurir_certs::authority::{self, Authority};
use kurir_certs::roster::{
    self, Editor, FocalPoint, MessageKey, Problem, RosterBody, RosterSignature, SignedRoster,
};
use kurir_certs::{Accepted, Roster, RosterError};
use kurir_proto::{AuthorityId, KeyId, KeyLookup, MessageKind, Timestamp};

use crate::common::{self, DAY, federation, now, roster_key};

fn problems(r: &SignedRoster, current: Option<&Roster>) -> Vec<Problem> {
    r.check(current, now()).1
}

fn texts(p: &[Problem]) -> Vec<String> {
    p.iter().map(ToString::to_string).collect()
}

#[test]
fn signed_roster_verifies_and_round_trips() {
    let f = federation();
    let bytes = f.roster.encode().unwrap();
    let roster = Roster::verify(&bytes, now()).unwrap();
    assert_eq!(roster.version(), 1);
    assert_eq!(roster.members().len(), 2);
    assert_eq!(roster.to_bytes(), &bytes[..]);
    // Decoding and encoding again gives the same bytes.
    assert_eq!(
        SignedRoster::decode(&bytes).unwrap().encode().unwrap(),
        bytes
    );
    // Signing order does not matter.
    let draft = common::draft(2, &[1, 2, 3], &[&f.rs, &f.ba]);
    let (mut a, mut b) = (draft.clone(), draft);
    a.sign(&roster_key(1));
    a.sign(&roster_key(2));
    b.sign(&roster_key(2));
    b.sign(&roster_key(1));
    b.sign(&roster_key(2));
    assert_eq!(a.encode().unwrap(), b.encode().unwrap());
}

#[test]
fn k_minus_one_signatures_refused() {
    let f = federation();
    let r = common::signed(2, &[1, 2, 3], &[&f.rs, &f.ba], &[3]);
    let p = problems(&r, None);
    assert_eq!(
        p,
        vec![Problem::TooFewSignatures {
            valid: 1,
            threshold: 2,
            of: "this roster's keys"
        }]
    );
    let err = Roster::verify(&r.encode().unwrap(), now()).unwrap_err();
    assert!(matches!(err, RosterError::Invalid { .. }));
    assert!(err.to_string().contains("1 valid signature(s)"), "{err}");
    // No signature at all.
    let r = common::draft(2, &[1, 2, 3], &[&f.rs]);
    assert!(
        texts(&problems(&r, None))[0].contains("0 valid signature(s)"),
        "{:?}",
        problems(&r, None)
    );
}

#[test]
fn duplicated_signature_counts_once_and_is_named() {
    let f = federation();
    let mut r = common::signed(2, &[1, 2, 3], &[&f.rs, &f.ba], &[1]);
    let dup = r.signatures[0].clone();
    r.signatures.push(dup);
    let p = problems(&r, None);
    assert!(
        p.contains(&Problem::DuplicateSignature {
            index: 1,
            kid: KeyId::of(&roster_key(1).verifying_key()).to_string()
        }),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| matches!(x, Problem::TooFewSignatures { valid: 1, .. }))
    );
}

#[test]
fn bad_and_unknown_signatures_are_named() {
    let f = federation();
    let mut r = f.roster.clone();
    // Corrupt the second signature.
    r.signatures[1].sig[0] ^= 1;
    let kid = hex::encode(&r.signatures[1].kid);
    let p = problems(&r, None);
    assert!(
        p.iter()
            .any(|x| matches!(x, Problem::BadSignature { index: 1, kid: k, .. } if *k == kid)),
        "{p:?}"
    );
    let msg = texts(&p).join("\n");
    assert!(msg.contains("signatures[1]") && msg.contains(&kid), "{msg}");

    // A signature by a key that is not a roster key: refused against a
    // current roster; on its own it is skipped (it may be a key of the
    // previous version) and never counts.
    let mut r = f.roster.clone();
    r.sign(&roster_key(9));
    let current = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let p = problems(&r, Some(&current));
    assert!(
        p.iter()
            .any(|x| matches!(x, Problem::UnknownSigner { index: 2, .. })),
        "{p:?}"
    );
    assert!(problems(&r, None).is_empty());
    let mut r = common::signed(2, &[1, 2, 3], &[&f.rs, &f.ba], &[1, 9]);
    assert_eq!(
        problems(&r, None),
        vec![Problem::TooFewSignatures {
            valid: 1,
            threshold: 2,
            of: "this roster's keys"
        }]
    );
    r.sign(&roster_key(2));
    assert!(problems(&r, None).is_empty());
    // A malformed signature entry.
    let mut r = f.roster.clone();
    r.signatures.push(RosterSignature {
        kid: vec![1, 2, 3],
        sig: vec![0; 64],
    });
    assert!(
        problems(&r, None)
            .iter()
            .any(|x| matches!(x, Problem::MalformedSignature { index: 2, .. }))
    );
}

fn next_version(r: &SignedRoster, edit: impl FnOnce(&mut Editor)) -> SignedRoster {
    let mut e = Editor::open(r).unwrap();
    edit(&mut e);
    e.finish(now()).unwrap()
}

#[test]
fn newer_version_accepted_rollback_and_same_version_refused() {
    let f = federation();
    let v1 = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let mut v2 = next_version(&f.roster, |e| {
        e.remove_member(&AuthorityId::parse("BA.SPS").unwrap())
            .unwrap();
    });
    assert_eq!(v2.body().unwrap().version, 2);
    v2.sign(&roster_key(1));
    v2.sign(&roster_key(3));
    let v2_bytes = v2.encode().unwrap();
    let Accepted::Newer(v2r) = Roster::accept(&v2_bytes, Some(&v1), now()).unwrap() else {
        panic!("v2 should be newer");
    };
    assert_eq!(v2r.version(), 2);
    // The same file again: no-op.
    assert!(matches!(
        Roster::accept(&v2_bytes, Some(&v2r), now()).unwrap(),
        Accepted::Unchanged
    ));
    // Rollback to v1 refused, naming both versions.
    let err = Roster::accept(&f.roster.encode().unwrap(), Some(&v2r), now()).unwrap_err();
    let RosterError::Invalid {
        problems: found, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        found.0.contains(&Problem::Rollback {
            version: 1,
            current: 2
        }),
        "{err}"
    );
    assert!(err.to_string().contains("rollback"), "{err}");
    // Same version, other content: refused.
    let mut other = Editor::open(&f.roster).unwrap();
    other.body.members[0].name = "Other".into();
    let mut other = SignedRoster::unsigned(&other.body).unwrap();
    other.sign(&roster_key(1));
    other.sign(&roster_key(2));
    let p = problems(&other, Some(&v1));
    assert_eq!(p, vec![Problem::SameVersion { version: 1 }]);
}

#[test]
fn changing_roster_keys_needs_the_old_quorum() {
    let f = federation();
    let v1 = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    // v2 replaces keys 1,2,3 by 4,5 (threshold 2), signed only by the new keys.
    let mut v2 = next_version(&f.roster, |e| {
        for i in [1u8, 2, 3] {
            e.remove_roster_key(&KeyId::of(&roster_key(i).verifying_key()))
                .unwrap();
        }
        for k in common::roster_keys(&[4, 5]) {
            e.add_roster_key(k).unwrap();
        }
    });
    v2.sign(&roster_key(4));
    v2.sign(&roster_key(5));
    // Valid on its own ...
    assert!(problems(&v2, None).is_empty());
    // ... but not as a successor of v1.
    let p = problems(&v2, Some(&v1));
    assert_eq!(
        p,
        vec![Problem::TooFewSignatures {
            valid: 0,
            threshold: 2,
            of: "the current roster's keys"
        }]
    );
    // With two of the old keys as well it is accepted.
    v2.sign(&roster_key(1));
    v2.sign(&roster_key(3));
    assert!(
        problems(&v2, Some(&v1)).is_empty(),
        "{:?}",
        problems(&v2, Some(&v1))
    );
    assert!(matches!(
        Roster::accept(&v2.encode().unwrap(), Some(&v1), now()).unwrap(),
        Accepted::Newer(_)
    ));
}

/// Every field of the body, changed after signing, makes verification fail,
/// and the error names the signatures that no longer match (or the field).
#[test]
fn every_tampered_field_refused() {
    let f = federation();
    let body = f.roster.body().unwrap();
    let other_key = roster_key(42).verifying_key();
    type Mutation = (&'static str, Box<dyn Fn(&mut RosterBody)>);
    let mutations: Vec<Mutation> = vec![
        ("version", Box::new(|b| b.version += 1)),
        (
            "issued_at",
            Box::new(|b| b.issued_at = Timestamp(b.issued_at.0 - 1)),
        ),
        ("threshold", Box::new(|b| b.threshold = 1)),
        (
            "roster key label",
            Box::new(|b| b.roster_keys[0].label.push('x')),
        ),
        (
            "roster key",
            Box::new(move |b| b.roster_keys[2].key = other_key),
        ),
        (
            "roster key removed",
            Box::new(|b| {
                b.roster_keys.pop();
            }),
        ),
        (
            "member removed",
            Box::new(|b| {
                b.members.pop();
            }),
        ),
        (
            "member id",
            Box::new(|b| b.members[1].id = AuthorityId::parse("RS.MUPX").unwrap()),
        ),
        ("member name", Box::new(|b| b.members[0].name.push('!'))),
        (
            "endpoint host",
            Box::new(|b| b.members[0].endpoints[0].host = "evil.example".into()),
        ),
        (
            "endpoint port",
            Box::new(|b| b.members[0].endpoints[0].port = 443),
        ),
        (
            "endpoint added",
            Box::new(|b| {
                let e = b.members[0].endpoints[0].clone();
                b.members[0].endpoints.push(e);
            }),
        ),
        (
            "tls ca",
            Box::new(|b| b.members[0].tls_ca = b.members[1].tls_ca.clone()),
        ),
        (
            "message key",
            Box::new(move |b| b.members[0].message_keys[0].key = other_key),
        ),
        (
            "message key valid_from",
            Box::new(|b| b.members[0].message_keys[0].valid_from.0 -= 1),
        ),
        (
            "message key valid_until",
            Box::new(|b| b.members[0].message_keys[0].valid_until = Some(Timestamp(u64::MAX))),
        ),
        (
            "log key",
            Box::new(move |b| b.members[1].log_key = other_key),
        ),
        (
            "kinds",
            Box::new(|b| {
                b.members[0].kinds.pop();
            }),
        ),
        (
            "focal point added",
            Box::new(|b| {
                b.members[0].focal_points.push(FocalPoint {
                    name: "Mallory".into(),
                    role: "x".into(),
                    phone: "1".into(),
                    email: "m@x".into(),
                })
            }),
        ),
    ];
    for (what, mutate) in mutations {
        let mut b = body.clone();
        mutate(&mut b);
        assert_ne!(b, body, "{what}: mutation changed nothing");
        let tampered = SignedRoster {
            body_bytes: b.encode().unwrap(),
            signatures: f.roster.signatures.clone(),
        };
        let p = problems(&tampered, None);
        assert!(!p.is_empty(), "{what}: tampered roster accepted");
        let named = p.iter().any(|x| {
            matches!(
                x,
                Problem::BadSignature { .. } | Problem::UnknownSigner { .. }
            )
        });
        assert!(named, "{what}: {p:?}");
        assert!(
            Roster::verify(&tampered.encode().unwrap(), now()).is_err(),
            "{what}"
        );
    }
    // A structurally invalid change names the field.
    let mut b = body.clone();
    b.threshold = 0;
    let tampered = SignedRoster {
        body_bytes: b.encode().unwrap(),
        signatures: f.roster.signatures.clone(),
    };
    let msg = texts(&problems(&tampered, None)).join("\n");
    assert!(msg.contains("threshold: 0 is not between 1"), "{msg}");
    // Flipping any single byte of the file is refused.
    let bytes = f.roster.encode().unwrap();
    for i in (0..bytes.len()).step_by(7) {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        assert!(
            Roster::verify(&t, now()).is_err(),
            "byte {i} flipped and accepted"
        );
    }
}

#[test]
fn invalid_fields_are_named() {
    let f = federation();
    let body = f.roster.body().unwrap();
    let check = |mutate: &dyn Fn(&mut RosterBody), expect: &str| {
        let mut b = body.clone();
        mutate(&mut b);
        let err = b.check().unwrap_err().to_string();
        assert!(err.contains(expect), "expected {expect:?} in {err}");
    };
    // Duplicate member (same id twice).
    check(
        &|b| {
            let m = b.members[0].clone();
            b.members.push(m)
        },
        "BA.SPS is listed twice",
    );
    // Message key that ends before it starts.
    check(
        &|b| {
            let k = &mut b.members[1].message_keys[0];
            k.valid_until = Some(k.valid_from)
        },
        "members[1] (RS.MUP).message_keys[0].valid_until",
    );
    // Two open-ended keys overlap without bound.
    check(
        &|b| {
            let mut k = b.members[1].message_keys[0].clone();
            k.key = roster_key(77).verifying_key();
            k.valid_from.0 += 1;
            b.members[1].message_keys.push(k)
        },
        "are both valid for more than 30 days",
    );
    // A key id used twice (RS reuses BA's message key).
    check(
        &|b| {
            let k = b.members[0].message_keys[0].key;
            b.members[1].message_keys[0].key = k
        },
        "key ids must be unique",
    );
    // A roster key that is also a message key.
    check(
        &|b| b.roster_keys[0].key = b.members[0].log_key,
        "already used as roster_keys[0]",
    );
    // Threshold above n.
    check(
        &|b| b.threshold = 4,
        "threshold: 4 is not between 1 and the number of roster keys (3)",
    );
    // Not a CA certificate.
    let node = std::fs::read_to_string(f.rs.join(authority::layout::NODE_CERT)).unwrap();
    let node_der = kurir_certs::x509::pem_certificates(&node).unwrap()[0].to_vec();
    check(
        &move |b| b.members[1].tls_ca = node_der.clone(),
        "members[1] (RS.MUP).tls_ca: the certificate is not a CA certificate",
    );
    // Focal point e-mail.
    check(
        &|b| {
            b.members[0].focal_points.push(FocalPoint {
                name: "A".into(),
                role: "B".into(),
                phone: "1".into(),
                email: "nope".into(),
            })
        },
        "members[0] (BA.SPS).focal_points[0].email",
    );
}

#[test]
fn bounded_rotation_overlap_accepted_and_old_keys_stay() {
    let f = federation();
    let mut rs = Authority::open(&f.rs).unwrap();
    let old = rs.member.message_keys[0].kid.clone();
    let start = Timestamp(now().0 + DAY);
    let new_key = rs.rotate_message_key(start, 7 * DAY, 730).unwrap();
    // The old key now ends 7 days after the new one starts.
    assert_eq!(
        rs.member.message_keys[0].valid_until,
        Some(start.0 + 7 * DAY)
    );
    // Re-reading member.json gives the same.
    let again = Authority::open(&f.rs).unwrap();
    assert_eq!(again.member, rs.member);
    // The signing key switches at `start`.
    let at_now = rs.signing_key_at(now()).unwrap().unwrap();
    assert_eq!(KeyId::of(&at_now.verifying_key()).to_string(), old);
    let later = rs.signing_key_at(Timestamp(start.0 + 1)).unwrap().unwrap();
    assert_eq!(later.verifying_key(), new_key);

    // Roster update keeps both keys; both verify through KeyLookup.
    let mut v2 = next_version(&f.roster, |e| {
        let m = roster::member_from_file(&f.rs.join(authority::layout::MEMBER)).unwrap();
        e.update_member(m).unwrap();
    });
    v2.sign(&roster_key(1));
    v2.sign(&roster_key(2));
    let v1 = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let Accepted::Newer(v2) = Roster::accept(&v2.encode().unwrap(), Some(&v1), now()).unwrap()
    else {
        panic!()
    };
    let rs_id = AuthorityId::parse("RS.MUP").unwrap();
    let keys = &v2.member(&rs_id).unwrap().message_keys;
    assert_eq!(keys.len(), 2);
    let old_kid = KeyId::parse(&old).unwrap();
    let old_pk = v2.lookup(&old_kid).unwrap();
    assert_eq!(old_pk.authority, rs_id);
    assert!(old_pk.valid_at(now()));
    assert!(!old_pk.valid_at(Timestamp(start.0 + 8 * DAY)));
    let new_pk = v2.lookup(&KeyId::of(&new_key)).unwrap();
    assert!(!new_pk.valid_at(now()));
    assert!(new_pk.valid_at(Timestamp(start.0 + 8 * DAY)));
    // Log keys and roster keys are not message keys.
    assert!(
        v2.lookup(&KeyId::of(&v2.log_key(&rs_id).unwrap()))
            .is_none()
    );
    assert!(
        v2.lookup(&KeyId::of(&roster_key(1).verifying_key()))
            .is_none()
    );
    assert!(v2.accepts(&rs_id, MessageKind::ReadmissionRequest));
}

#[test]
fn roster_verifies_envelopes_through_key_lookup() {
    use kurir_proto::message::{Handling, Message, examples};
    use kurir_proto::{DEFAULT_MAX_PARCEL, Digest, Header, MessageId, OpenContext};
    let f = federation();
    let roster = Roster::verify(&f.roster.encode().unwrap(), now()).unwrap();
    let rs = Authority::open(&f.rs).unwrap();
    let key = rs.signing_key_at(now()).unwrap().unwrap();
    let ba = AuthorityId::parse("BA.SPS").unwrap();
    let t = now();
    let header = Header {
        id: MessageId::new_v7(t.0, [1; 10]),
        kind: MessageKind::OperationalNotice,
        from: rs.id.clone(),
        to: vec![ba.clone()],
        created_at: t,
        expires_at: t.plus_millis(DAY),
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        body_digest: Digest([0; 32]),
    };
    let parcel = kurir_proto::seal(
        header,
        &Message::OperationalNotice(examples::notice()),
        [3; 32],
        &key,
    )
    .unwrap();
    let ctx = OpenContext {
        me: &ba,
        now: t,
        max_parcel: DEFAULT_MAX_PARCEL,
    };
    let opened = kurir_proto::open(&parcel.to_bytes(), &roster, &ctx).unwrap();
    assert_eq!(opened.message.kind(), MessageKind::OperationalNotice);
}

#[test]
fn duplicate_member_refused_on_add() {
    let f = federation();
    let mut e = Editor::open(&f.roster).unwrap();
    let m = roster::member_from_file(&f.rs.join(authority::layout::MEMBER)).unwrap();
    let err = e.add_member(m).unwrap_err().to_string();
    assert!(err.contains("RS.MUP is already a member"), "{err}");
}

#[test]
fn expired_member_ca_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // An authority whose CA expired: made 11 years ago with a 10-year CA.
    let old = common::init_at(tmp.path(), "ME.UP", Timestamp(now().0 - 4100 * DAY), 30);
    let rs = common::init(tmp.path(), "RS.MUP");
    let r = common::signed(1, &[1], &[&old, &rs], &[1]);
    let msg = texts(&problems(&r, None)).join("\n");
    assert!(
        msg.contains("members[0] (ME.UP).tls_ca: the CA certificate is not valid now"),
        "{msg}"
    );
}

/// A relay reading at start the roster it runs with does not hold the
/// members' CAs to their dates (it refuses that member's connections
/// instead): everything else is still checked.
#[test]
fn an_expired_member_ca_is_not_checked_when_ca_dates_are_unchecked() {
    use kurir_certs::roster::CaDates;
    let tmp = tempfile::tempdir().unwrap();
    let old = common::init_at(tmp.path(), "ME.UP", Timestamp(now().0 - 4100 * DAY), 30);
    let rs = common::init(tmp.path(), "RS.MUP");
    let r = common::signed(1, &[1], &[&old, &rs], &[1]);
    let (_, unchecked) = r.check_with(None, now(), CaDates::Unchecked);
    assert!(unchecked.is_empty(), "{:?}", texts(&unchecked));
    let bytes = r.encode().unwrap();
    assert!(Roster::verify(&bytes, now()).is_err());
    let roster = Roster::verify_against_with(&bytes, None, now(), CaDates::Unchecked).unwrap();
    assert_eq!(roster.members().len(), 2);
    assert!(matches!(
        Roster::accept_with(&bytes, None, now(), CaDates::Unchecked).unwrap(),
        kurir_certs::Accepted::Newer(_)
    ));
    // The rest is still checked: too few signatures.
    let unsigned = common::signed(1, &[1], &[&old, &rs], &[]);
    let (_, problems) = unsigned.check_with(None, now(), CaDates::Unchecked);
    assert!(!problems.is_empty());
}

#[test]
fn message_key_windows_are_checked_in_member_files() {
    let f = federation();
    let mut body = f.roster.body().unwrap();
    body.members[0].message_keys.push(MessageKey {
        key: roster_key(50).verifying_key(),
        valid_from: Timestamp(1),
        valid_until: Some(Timestamp(2)),
        revoked_at: None,
    });
    let err = body.check().unwrap_err().to_string();
    assert!(err.contains("must be listed oldest first"), "{err}");
}
