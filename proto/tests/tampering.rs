//! Every way of tampering with a parcel, envelope or receipt fails with its
//! own error. Envelopes with altered headers are built here with coset and
//! ciborium directly, the way an attacker holding a valid key would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ciborium::value::Value;
use common::*;
use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use kurir_proto::cbor::{CborError, FieldError};
use kurir_proto::ed25519_dalek::{Signer, SigningKey};
use kurir_proto::header::HeaderError;
use kurir_proto::message::{BodyError, MessageKind};
use kurir_proto::*;

/// Signs arbitrary header bytes in kurir's COSE profile.
fn sign_raw(payload: Vec<u8>, key: &SigningKey, alg: iana::Algorithm) -> Vec<u8> {
    let protected = HeaderBuilder::new()
        .algorithm(alg)
        .content_type(cose::CONTENT_TYPE_HEADER.to_owned())
        .key_id(KeyId::of(&key.verifying_key()).as_bytes().to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| key.sign(tbs).to_bytes().to_vec())
        .build()
        .to_tagged_vec()
        .unwrap()
}

/// The notice's header as a CBOR map value (entries in canonical order).
fn header_value(parcel: &Parcel) -> Vec<(Value, Value)> {
    let env = verify_envelope(&parcel.envelope, &ring()).unwrap();
    let bytes = env.header.encode().unwrap();
    match cbor::decode_value(&bytes).unwrap() {
        Value::Map(m) => m,
        _ => unreachable!(),
    }
}

/// Encodes entries in the order given (ciborium does not sort).
fn encode_as_is(map: Vec<(Value, Value)>) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(&Value::Map(map), &mut out).unwrap();
    out
}

/// A parcel whose envelope carries `header_bytes`, signed by RS.MUP's key.
fn resigned(parcel: &Parcel, header_bytes: Vec<u8>) -> Vec<u8> {
    Parcel {
        envelope: sign_raw(header_bytes, &key("rs"), iana::Algorithm::EdDSA),
        ..parcel.clone()
    }
    .to_bytes()
}

fn open_bytes(bytes: &[u8]) -> Result<Verified, OpenError> {
    let me = id("ME.UP");
    open(bytes, &ring(), &ctx(&me))
}

/// Offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn untouched_parcel_opens() {
    let parcel = notice_parcel();
    let opened = open_bytes(&parcel.to_bytes()).unwrap();
    assert_eq!(opened.header.from, id("RS.MUP"));
    assert_eq!(opened.kid, KeyId::of(&key("rs").verifying_key()));
    assert_eq!(opened.envelope_digest, parcel.envelope_digest());
    assert_eq!(opened.parcel, parcel);
}

#[test]
fn a_changed_header_byte_breaks_the_signature() {
    let parcel = notice_parcel();
    let header = parcel_header_bytes(&parcel);
    let at = find(&parcel.envelope, &header);
    // Byte 15 of the message id (header offset 5 + 15): still a valid UUIDv7.
    let mut envelope = parcel.envelope.clone();
    envelope[at + 20] ^= 0x01;
    let bytes = Parcel {
        envelope,
        ..parcel.clone()
    }
    .to_bytes();
    let kid = KeyId::of(&key("rs").verifying_key());
    assert_eq!(
        open_bytes(&bytes).unwrap_err(),
        OpenError::BadSignature(kid)
    );
}

fn parcel_header_bytes(parcel: &Parcel) -> Vec<u8> {
    verify_envelope(&parcel.envelope, &ring())
        .unwrap()
        .header
        .encode()
        .unwrap()
}

#[test]
fn a_changed_body_byte_breaks_the_digest() {
    let mut parcel = notice_parcel();
    let last = parcel.body.len() - 1;
    parcel.body[last] ^= 0x01;
    assert!(matches!(
        open_bytes(&parcel.to_bytes()),
        Err(OpenError::DigestMismatch { .. })
    ));
    // So does another salt.
    let mut parcel = notice_parcel();
    parcel.salt[0] ^= 0x01;
    assert!(matches!(
        open_bytes(&parcel.to_bytes()),
        Err(OpenError::DigestMismatch { .. })
    ));
}

#[test]
fn a_changed_signature_is_refused() {
    let mut parcel = notice_parcel();
    let last = parcel.envelope.len() - 1;
    parcel.envelope[last] ^= 0x80;
    let kid = KeyId::of(&key("rs").verifying_key());
    assert_eq!(
        open_bytes(&parcel.to_bytes()).unwrap_err(),
        OpenError::BadSignature(kid)
    );
}

#[test]
fn other_keys_are_refused_each_with_its_reason() {
    let parcel = notice_parcel();
    let header = parcel_header_bytes(&parcel);

    // A key the roster does not know.
    let stranger = key("stranger");
    let bytes = Parcel {
        envelope: sign_raw(header.clone(), &stranger, iana::Algorithm::EdDSA),
        ..parcel.clone()
    }
    .to_bytes();
    assert_eq!(
        open_bytes(&bytes).unwrap_err(),
        OpenError::UnknownKey(KeyId::of(&stranger.verifying_key()))
    );

    // The kid names RS.MUP's key, the signature is by another key.
    let rs_kid = KeyId::of(&key("rs").verifying_key());
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(cose::CONTENT_TYPE_HEADER.to_owned())
        .key_id(rs_kid.as_bytes().to_vec())
        .build();
    let forged = CoseSign1Builder::new()
        .protected(protected)
        .payload(header.clone())
        .create_signature(b"", |tbs| stranger.sign(tbs).to_bytes().to_vec())
        .build()
        .to_tagged_vec()
        .unwrap();
    let bytes = Parcel {
        envelope: forged,
        ..parcel.clone()
    }
    .to_bytes();
    assert_eq!(
        open_bytes(&bytes).unwrap_err(),
        OpenError::BadSignature(rs_kid)
    );

    // A roster key of ME.UP signing a header that claims to come from RS.MUP.
    let bytes = Parcel {
        envelope: sign_raw(header, &key("me"), iana::Algorithm::EdDSA),
        ..parcel.clone()
    }
    .to_bytes();
    assert!(matches!(
        open_bytes(&bytes).unwrap_err(),
        OpenError::SignerMismatch { owner, claimed, .. }
            if owner == id("ME.UP") && claimed == id("RS.MUP")
    ));
}

#[test]
fn a_key_outside_its_validity_window_is_refused() {
    let parcel = notice_parcel();
    let mut ring = KeyRing::new();
    ring.insert(PublicKey {
        valid_from: NOW.plus_millis(1),
        ..public("rs", "RS.MUP")
    });
    let me = id("ME.UP");
    assert!(matches!(
        open(&parcel.to_bytes(), &ring, &ctx(&me)).unwrap_err(),
        OpenError::KeyNotValid { at, .. } if at == NOW
    ));
    let mut ring = KeyRing::new();
    ring.insert(PublicKey {
        valid_until: Some(NOW),
        ..public("rs", "RS.MUP")
    });
    assert!(matches!(
        open(&parcel.to_bytes(), &ring, &ctx(&me)).unwrap_err(),
        OpenError::KeyNotValid { .. }
    ));
}

#[test]
fn a_key_revoked_at_or_before_created_at_is_refused_and_not_before() {
    let parcel = notice_parcel();
    let me = id("ME.UP");
    let mut ring = KeyRing::new();
    ring.insert(PublicKey {
        revoked_at: Some(NOW),
        ..public("rs", "RS.MUP")
    });
    let err = open(&parcel.to_bytes(), &ring, &ctx(&me)).unwrap_err();
    assert!(
        matches!(err, OpenError::KeyRevoked { at, revoked_at, .. } if at == NOW && revoked_at == NOW),
        "{err}"
    );
    assert_eq!(err.code().as_str(), "key_revoked");
    // Revoked a millisecond after it signed: what it signed before stays valid.
    let mut ring = KeyRing::new();
    ring.insert(PublicKey {
        revoked_at: Some(NOW.plus_millis(1)),
        ..public("rs", "RS.MUP")
    });
    assert!(open(&parcel.to_bytes(), &ring, &ctx(&me)).is_ok());
}

#[test]
fn reordered_header_keys_are_refused_even_when_signed() {
    let parcel = notice_parcel();
    let mut map = header_value(&parcel);
    map.reverse();
    let err = open_bytes(&resigned(&parcel, encode_as_is(map))).unwrap_err();
    assert_eq!(
        err,
        OpenError::NonCanonical {
            what: "header",
            source: CborError::NonCanonical
        }
    );
}

#[test]
fn non_shortest_integers_in_the_header_are_refused() {
    let parcel = notice_parcel();
    let header = parcel_header_bytes(&parcel);
    // Key 0 (v) is 0x00 0x01; write v = 1 as 0x18 0x01 instead.
    assert_eq!(&header[1..3], &[0x00, 0x01]);
    let mut longer = header[..2].to_vec();
    longer.extend_from_slice(&[0x18, 0x01]);
    longer.extend_from_slice(&header[3..]);
    assert!(matches!(
        open_bytes(&resigned(&parcel, longer)).unwrap_err(),
        OpenError::NonCanonical { what: "header", .. }
    ));
}

#[test]
fn an_extra_header_field_is_refused_even_when_signed() {
    let parcel = notice_parcel();
    let mut map = header_value(&parcel);
    map.push((Value::from(13u64), Value::Text("extra".into())));
    let err = open_bytes(&resigned(&parcel, encode_as_is(map))).unwrap_err();
    assert_eq!(
        err,
        OpenError::InvalidHeader(HeaderError::Field(FieldError::Unknown(13)))
    );
}

#[test]
fn a_missing_or_mistyped_header_field_is_named() {
    let parcel = notice_parcel();
    let mut map = header_value(&parcel);
    map.retain(|(k, _)| k != &Value::from(12u64));
    let err = open_bytes(&resigned(&parcel, encode_as_is(map))).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing field body_digest (key 12)"),
        "{err}"
    );

    let mut map = header_value(&parcel);
    for (k, v) in &mut map {
        if k == &Value::from(5u64) {
            *v = Value::Text("yesterday".into());
        }
    }
    let err = open_bytes(&resigned(&parcel, encode_as_is(map))).unwrap_err();
    assert!(err.to_string().contains("created_at (key 5)"), "{err}");
}

#[test]
fn a_later_header_version_is_refused() {
    let parcel = notice_parcel();
    let mut map = header_value(&parcel);
    map[0].1 = Value::from(2u64);
    assert_eq!(
        open_bytes(&resigned(&parcel, encode_as_is(map.clone()))).unwrap_err(),
        OpenError::UnsupportedVersion(2)
    );
    // A later version may define more keys: still reported as the version.
    map.push((Value::from(13u64), Value::Bool(true)));
    assert_eq!(
        open_bytes(&resigned(&parcel, encode_as_is(map))).unwrap_err(),
        OpenError::UnsupportedVersion(2)
    );
}

#[test]
fn another_algorithm_is_refused() {
    let parcel = notice_parcel();
    let header = parcel_header_bytes(&parcel);
    let bytes = Parcel {
        envelope: sign_raw(header, &key("rs"), iana::Algorithm::ES256),
        ..parcel.clone()
    }
    .to_bytes();
    assert!(matches!(
        open_bytes(&bytes).unwrap_err(),
        OpenError::UnsupportedAlgorithm(_)
    ));
}

#[test]
fn fields_outside_the_cose_profile_are_refused() {
    let parcel = notice_parcel();
    let header = parcel_header_bytes(&parcel);
    let k = key("rs");
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(cose::CONTENT_TYPE_HEADER.to_owned())
        .key_id(KeyId::of(&k.verifying_key()).as_bytes().to_vec())
        .build();
    let unprotected = HeaderBuilder::new().iv(vec![1, 2, 3]).build();
    let envelope = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(header)
        .create_signature(b"", |tbs| k.sign(tbs).to_bytes().to_vec())
        .build()
        .to_tagged_vec()
        .unwrap();
    let bytes = Parcel {
        envelope,
        ..parcel.clone()
    }
    .to_bytes();
    assert!(matches!(
        open_bytes(&bytes).unwrap_err(),
        OpenError::Malformed { what: "envelope", reason } if reason.contains("profile")
    ));

    // An envelope without its COSE tag.
    let mut untagged = parcel.clone();
    untagged.envelope.remove(0);
    assert!(matches!(
        open_bytes(&untagged.to_bytes()).unwrap_err(),
        OpenError::Malformed {
            what: "envelope",
            ..
        }
    ));
}

#[test]
fn a_receipt_is_not_an_envelope() {
    let receipt = Receipt {
        msg_id: Some(MessageId::new_v7(NOW.0, [1; 10])),
        envelope_digest: Digest([3; 32]),
        sender: id("RS.MUP"),
        receiver: id("ME.UP"),
        received_at: NOW,
        status: ReceiptStatus::Accepted,
        log_index: None,
        leaf_hash: None,
    };
    let parcel = Parcel {
        envelope: seal_receipt(&receipt, &key("rs")).unwrap(),
        ..notice_parcel()
    };
    assert!(matches!(
        open_bytes(&parcel.to_bytes()).unwrap_err(),
        OpenError::Malformed { what: "envelope", reason } if reason.contains("content type")
    ));
}

#[test]
fn addressing_expiry_and_size_are_checked() {
    let parcel = notice_parcel();
    let bytes = parcel.to_bytes();

    let bosnia = id("BA.SPS");
    assert!(matches!(
        open(&bytes, &ring(), &ctx(&bosnia)).unwrap_err(),
        OpenError::WrongRecipient { me, to } if me == bosnia && to == "ME.UP"
    ));

    let me = id("ME.UP");
    let late = OpenContext {
        now: NOW.plus_millis(30 * DAY),
        ..ctx(&me)
    };
    assert!(matches!(
        open(&bytes, &ring(), &late).unwrap_err(),
        OpenError::Expired { .. }
    ));

    let small = OpenContext {
        max_parcel: bytes.len() - 1,
        ..ctx(&me)
    };
    assert_eq!(
        open(&bytes, &ring(), &small).unwrap_err(),
        OpenError::TooLarge {
            what: "parcel",
            size: bytes.len(),
            max: bytes.len() - 1
        }
    );
    // The size check comes before any decoding: garbage of the same size
    // gets the same answer.
    assert!(matches!(
        open(&vec![0xff; bytes.len()], &ring(), &small).unwrap_err(),
        OpenError::TooLarge { .. }
    ));
}

#[test]
fn malformed_and_non_canonical_parcels() {
    let parcel = notice_parcel();
    let bytes = parcel.to_bytes();
    // Truncated.
    assert!(matches!(
        open_bytes(&bytes[..bytes.len() - 1]).unwrap_err(),
        OpenError::Malformed { what: "parcel", .. }
    ));
    // Not an array.
    assert!(matches!(
        open_bytes(&[0x01]).unwrap_err(),
        OpenError::Malformed { what: "parcel", .. }
    ));
    // Indefinite-length array around the same three items.
    let mut indefinite = vec![0x9f];
    indefinite.extend_from_slice(&bytes[1..]);
    indefinite.push(0xff);
    assert!(matches!(
        open_bytes(&indefinite).unwrap_err(),
        OpenError::NonCanonical { what: "parcel", .. }
    ));
    // A short salt.
    let mut v = cbor::decode_value(&bytes).unwrap();
    if let Value::Array(items) = &mut v {
        items[1] = Value::Bytes(vec![0; 31]);
    }
    let short_salt = cbor::encode_value(&v).unwrap();
    assert!(matches!(
        open_bytes(&short_salt).unwrap_err(),
        OpenError::Malformed { what: "parcel", reason } if reason.contains("salt")
    ));
}

#[test]
fn a_body_of_the_wrong_shape_is_refused_even_when_signed() {
    // RS.MUP signs a notice header over a body with an extra field.
    let mut body = cbor::decode_value(&notice_parcel().body).unwrap();
    if let Value::Map(m) = &mut body {
        m.push((Value::Text("zzz".into()), Value::from(1u64)));
    }
    let body = cbor::encode_value(&body).unwrap();
    let salt = [0x5a; 32];
    let mut header = header(MessageKind::OperationalNotice);
    header.body_digest = Digest::of_body(&salt, &body);
    let parcel = Parcel {
        envelope: sign_raw(header.encode().unwrap(), &key("rs"), iana::Algorithm::EdDSA),
        salt,
        body,
    };
    let err = open_bytes(&parcel.to_bytes()).unwrap_err();
    assert!(
        matches!(&err, OpenError::InvalidBody(BodyError::Cbor { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn seal_refuses_inconsistent_input() {
    let k = key("rs");
    let notice = Message::OperationalNotice(message::examples::notice());
    // Kind mismatch.
    let err = seal(header(MessageKind::ReadmissionReply), &notice, [0; 32], &k).unwrap_err();
    assert!(matches!(err, SealError::KindMismatch { .. }));
    // A reply without in_reply_to.
    let mut h = header(MessageKind::ReadmissionReply);
    h.in_reply_to = None;
    let reply = Message::ReadmissionReply(message::examples::confirmation());
    let err = seal(h, &reply, [0; 32], &k).unwrap_err();
    assert!(err.to_string().contains("in_reply_to"), "{err}");
    // Several recipients for a readmission request.
    let mut h = header(MessageKind::ReadmissionRequest);
    h.to.push(id("MK.MVR"));
    let request = Message::ReadmissionRequest(Box::new(message::examples::readmission_request()));
    let err = seal(h, &request, [0; 32], &k).unwrap_err();
    assert!(err.to_string().contains("exactly one recipient"), "{err}");
    // Header procedure differs from the body's.
    let mut h = header(MessageKind::ReadmissionRequest);
    h.procedure = Some(message::Procedure::Transit);
    let err = seal(h, &request, [0; 32], &k).unwrap_err();
    assert!(err.to_string().contains("procedure"), "{err}");
    // Recipients are sorted; a notice to several recipients opens at each.
    let mut h = header(MessageKind::OperationalNotice);
    h.to = vec![id("MK.MVR"), id("BA.SPS")];
    let parcel = seal(h, &notice, [0; 32], &k).unwrap();
    for who in ["BA.SPS", "MK.MVR"] {
        let me = id(who);
        let opened = open(&parcel.to_bytes(), &ring(), &ctx(&me)).unwrap();
        assert_eq!(opened.header.to, vec![id("BA.SPS"), id("MK.MVR")]);
    }
}

mod receipts {
    use super::*;

    fn accepted() -> Receipt {
        let parcel = notice_parcel();
        let env = verify_envelope(&parcel.envelope, &ring()).unwrap();
        Receipt {
            msg_id: Some(env.header.id),
            envelope_digest: env.envelope_digest,
            sender: id("RS.MUP"),
            receiver: id("ME.UP"),
            received_at: NOW.plus_millis(1500),
            status: ReceiptStatus::Accepted,
            log_index: Some(41),
            leaf_hash: Some(Digest([9; 32])),
        }
    }

    #[test]
    fn round_trip() {
        let r = accepted();
        let bytes = seal_receipt(&r, &key("me")).unwrap();
        let v = open_receipt(&bytes, &ring()).unwrap();
        assert_eq!(v.receipt, r);
        assert_eq!(v.bytes, bytes);

        let rejected = Receipt {
            status: ReceiptStatus::Rejected {
                reason: RejectCode::BadSignature,
                detail: Some("bad signature by key ...".into()),
            },
            log_index: None,
            leaf_hash: None,
            ..accepted()
        };
        let bytes = seal_receipt(&rejected, &key("me")).unwrap();
        assert_eq!(open_receipt(&bytes, &ring()).unwrap().receipt, rejected);
    }

    #[test]
    fn only_the_receiver_may_sign() {
        let bytes = seal_receipt(&accepted(), &key("rs")).unwrap();
        assert!(matches!(
            open_receipt(&bytes, &ring()).unwrap_err(),
            OpenError::SignerMismatch { .. }
        ));
    }

    #[test]
    fn tampered_receipts_are_refused() {
        let mut bytes = seal_receipt(&accepted(), &key("me")).unwrap();
        // Flip a byte of the envelope digest inside the payload.
        let at = find(&bytes, &accepted().envelope_digest.0[..8]);
        bytes[at] ^= 1;
        assert!(matches!(
            open_receipt(&bytes, &ring()).unwrap_err(),
            OpenError::BadSignature(_)
        ));
        // An envelope is not a receipt.
        let envelope = notice_parcel().envelope;
        assert!(matches!(
            open_receipt(&envelope, &ring()).unwrap_err(),
            OpenError::Malformed {
                what: "receipt",
                ..
            }
        ));
    }

    #[test]
    fn an_accepted_receipt_must_name_the_message() {
        let r = Receipt {
            msg_id: None,
            ..accepted()
        };
        assert!(matches!(
            seal_receipt(&r, &key("me")).unwrap_err(),
            SealError::Receipt(_)
        ));
    }
}

#[test]
fn reject_codes_follow_errors() {
    let kid = KeyId::of(&key("rs").verifying_key());
    assert_eq!(
        OpenError::BadSignature(kid).code(),
        RejectCode::BadSignature
    );
    assert_eq!(OpenError::UnknownKey(kid).code().as_str(), "unknown_key");
    assert_eq!("wrong_recipient".parse(), Ok(RejectCode::WrongRecipient));
    assert!(RejectCode::Internal.is_transient());
    assert!(!RejectCode::Expired.is_transient());
}
