//! Envelopes signed in batches (PROTOCOL.md §6.1): each parcel opens alone,
//! the unprotected part (header, index, path) is bound by the signed root,
//! and the strictness rules of the single form hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ciborium::value::Value;
use common::*;
use coset::{CoseSign1, TaggedCborSerializable};
use kurir_proto::batch::Remembered;
use kurir_proto::cose::{CONTENT_TYPE_HEADER_BATCH, LABEL_IN_BATCH};
use kurir_proto::envelope::header_unverified;
use kurir_proto::message::{MessageKind, examples};
use kurir_proto::*;
use std::sync::atomic::Ordering;

/// Notice `n` from RS.MUP to ME.UP, prepared but not signed.
fn unsigned(n: u8) -> (Unsigned, Message) {
    let mut h = header(MessageKind::OperationalNotice);
    h.id = MessageId::new_v7(NOW.0, [n; 10]);
    let message = Message::OperationalNotice(examples::notice());
    let encoded = EncodedMessage::decode(message.kind(), message.encode().unwrap()).unwrap();
    prepare(h, encoded, [n; 32]).unwrap()
}

/// `n` parcels signed together by RS.MUP's key.
fn batch(n: u8) -> (Vec<Header>, Vec<Parcel>) {
    let prepared: Vec<Unsigned> = (0..n).map(|i| unsigned(i).0).collect();
    let headers = prepared.iter().map(|u| u.header().clone()).collect();
    (headers, sign_prepared(prepared, &key("rs")).unwrap())
}

fn sign1(bytes: &[u8]) -> CoseSign1 {
    CoseSign1::from_tagged_slice(bytes).unwrap()
}

/// The unprotected item `[header, index, path]`.
fn item(envelope: &[u8]) -> Vec<Value> {
    let s = sign1(envelope);
    assert_eq!(s.unprotected.rest.len(), 1);
    match &s.unprotected.rest[0] {
        (coset::Label::Int(LABEL_IN_BATCH), Value::Array(a)) => a.clone(),
        other => panic!("unexpected unprotected field {other:?}"),
    }
}

/// `parcel` with its envelope's unprotected item replaced.
fn with_item(parcel: &Parcel, item: Vec<Value>) -> Parcel {
    let mut s = sign1(&parcel.envelope);
    s.unprotected.rest = vec![(coset::Label::Int(LABEL_IN_BATCH), Value::Array(item))];
    Parcel {
        envelope: s.to_tagged_vec().unwrap(),
        ..parcel.clone()
    }
}

/// `parcel` with its envelope replaced by `sign1`.
fn with_sign1(parcel: &Parcel, sign1: CoseSign1) -> Parcel {
    Parcel {
        envelope: sign1.to_tagged_vec().unwrap(),
        ..parcel.clone()
    }
}

fn refused(parcel: &Parcel) -> String {
    let me = id("ME.UP");
    match open(&parcel.to_bytes(), &ring(), &ctx(&me)) {
        Ok(v) => panic!("accepted: {:?}", v.header),
        Err(e) => e.to_string(),
    }
}

#[test]
fn one_message_keeps_the_single_form() {
    let (u, message) = unsigned(0);
    let header = u.header().clone();
    let signed = sign_prepared(vec![u], &key("rs")).unwrap();
    assert_eq!(signed.len(), 1);
    // What `seal` makes of the same message, byte for byte.
    assert_eq!(
        signed[0],
        seal(header, &message, [0; 32], &key("rs")).unwrap()
    );
    assert!(sign_prepared(Vec::new(), &key("rs")).unwrap().is_empty());
}

#[test]
fn every_parcel_of_a_batch_opens_alone_with_one_signature() {
    let me = id("ME.UP");
    for n in 2..=9 {
        let (headers, parcels) = batch(n);
        assert_eq!(parcels.len(), usize::from(n));
        let signature = sign1(&parcels[0].envelope).signature;
        for (i, parcel) in parcels.iter().enumerate() {
            let s = sign1(&parcel.envelope);
            assert_eq!(s.signature, signature, "one signature for the batch");
            assert_eq!(
                s.protected.header.content_type,
                Some(coset::ContentType::Text(CONTENT_TYPE_HEADER_BATCH.into()))
            );
            let opened = open(&parcel.to_bytes(), &ring(), &ctx(&me)).unwrap();
            assert_eq!(opened.header, headers[i]);
            assert_eq!(opened.envelope_digest, parcel.envelope_digest());
            assert_eq!(&opened.parcel, parcel);
            let env = verify_envelope(&parcel.envelope, &ring()).unwrap();
            assert_eq!(env.header, headers[i]);
            assert_eq!(env.kid, KeyId::of(&key("rs").verifying_key()));
            assert_eq!(header_unverified(&parcel.envelope).unwrap(), headers[i]);
        }
        // Each envelope is its own: the receipts and the log name
        // different digests.
        let digests: std::collections::HashSet<_> =
            parcels.iter().map(Parcel::envelope_digest).collect();
        assert_eq!(digests.len(), parcels.len());
    }
}

#[test]
fn a_receiver_that_remembers_verifies_a_batch_once() {
    let me = id("ME.UP");
    let (_, parcels) = batch(5);
    let counting = Counting::default();
    let memo = Remembered::new(&counting, 16);
    for parcel in &parcels {
        open_with(&parcel.to_bytes(), &ring(), &ctx(&me), &memo).unwrap();
    }
    assert_eq!(counting.0.load(Ordering::SeqCst), 1);
    // A tampered item still fails although its signature is remembered.
    let mut it = item(&parcels[1].envelope);
    it[1] = Value::from(2u64);
    let tampered = with_item(&parcels[1], it);
    assert!(open_with(&tampered.to_bytes(), &ring(), &ctx(&me), &memo).is_err());
}

#[test]
fn a_changed_byte_of_the_unsigned_part_is_refused() {
    let (_, parcels) = batch(5);
    refuse_every_change(&item(&parcels[2].envelope), &|it| {
        refused(&with_item(&parcels[2], it))
    });
    // Another message's header under this parcel's body: the header is
    // what it proves, and its body digest is not this body's.
    let other = with_item(&parcels[2], item(&parcels[3].envelope));
    assert!(matches!(
        open(&other.to_bytes(), &ring(), &ctx(&id("ME.UP"))).unwrap_err(),
        OpenError::DigestMismatch { .. }
    ));
}

#[test]
fn the_batched_form_is_strict() {
    let (_, parcels) = batch(3);
    let p = &parcels[0];
    let it = item(&p.envelope);
    // Index not below the size.
    let mut beyond = it.clone();
    beyond[1] = Value::from(3u64);
    assert!(refused(&with_item(p, beyond)).contains("outside the batch"));
    // A fourth element, a missing one, a wrong type.
    let mut four = it.clone();
    four.push(Value::Null);
    assert!(refused(&with_item(p, four)).contains("three items"));
    assert!(refused(&with_item(p, it[..2].to_vec())).contains("three items"));
    let mut text = it.clone();
    text[0] = Value::Text("header".into());
    assert!(refused(&with_item(p, text)).contains("byte string"));
    // Another label, or a second field beside it.
    let mut s = sign1(&p.envelope);
    s.unprotected.rest[0].0 = coset::Label::Int(-65538);
    assert!(refused(&with_sign1(p, s)).contains("label -65537"));
    let mut s = sign1(&p.envelope);
    s.unprotected
        .rest
        .push((coset::Label::Int(99), Value::Null));
    assert!(refused(&with_sign1(p, s)).contains("exactly one field"));
    let mut s = sign1(&p.envelope);
    s.unprotected.key_id = vec![1, 2, 3];
    assert!(refused(&with_sign1(p, s)).contains("exactly one field"));
    // No item at all.
    let mut s = sign1(&p.envelope);
    s.unprotected.rest.clear();
    refused(&with_sign1(p, s));
    // Trailing bytes after the COSE_Sign1.
    let mut trailing = p.clone();
    trailing.envelope.push(0);
    refused(&trailing);
    // A single envelope with an unprotected field is refused as before.
    let single = notice_parcel();
    let mut s = sign1(&single.envelope);
    s.unprotected.rest = sign1(&p.envelope).unprotected.rest;
    assert!(refused(&with_sign1(&single, s)).contains("unprotected header must be empty"));
}

#[test]
fn a_batch_of_receipts_is_never_an_envelope_nor_the_reverse() {
    // A batched receipt in an envelope's place: refused for its content
    // type, although it is signed by a member's key.
    let (_, parcels) = batch(2);
    let receipt = Receipt {
        msg_id: Some(MessageId::new_v7(NOW.0, [0; 10])),
        envelope_digest: parcels[0].envelope_digest(),
        sender: id("ME.UP"),
        receiver: id("RS.MUP"),
        received_at: NOW,
        status: ReceiptStatus::Accepted,
        log_index: None,
        leaf_hash: None,
    };
    let receipts = seal_receipts(&[receipt.clone(), receipt], &key("rs")).unwrap();
    let e = verify_envelope(&receipts[0], &ring())
        .unwrap_err()
        .to_string();
    assert!(e.contains("content type"), "{e}");
    // A batched envelope in a receipt's place.
    let e = kurir_proto::open_receipt(&parcels[0].envelope, &ring())
        .unwrap_err()
        .to_string();
    assert!(e.contains("kurir-header-batch"), "{e}");
    // The batch's signature with the receipt content type: the content
    // type is signed.
    let mut s = sign1(&parcels[0].envelope);
    s.protected.header.content_type = Some(coset::ContentType::Text(
        kurir_proto::cose::CONTENT_TYPE_RECEIPT_BATCH.into(),
    ));
    s.protected.original_data = None;
    assert!(kurir_proto::open_receipt(&s.to_tagged_vec().unwrap(), &ring()).is_err());
}

#[test]
fn a_batch_is_signed_by_its_sender_only() {
    // RS.MUP's headers signed with ME.UP's key.
    let prepared: Vec<Unsigned> = (0..3).map(|i| unsigned(i).0).collect();
    let parcels = sign_prepared(prepared, &key("me")).unwrap();
    assert!(matches!(
        verify_envelope(&parcels[1].envelope, &ring()).unwrap_err(),
        OpenError::SignerMismatch { .. }
    ));
    // A batch mixes no senders.
    let mut mixed: Vec<Unsigned> = (0..2).map(|i| unsigned(i).0).collect();
    let mut h = header(MessageKind::OperationalNotice);
    (h.from, h.to) = (id("ME.UP"), vec![id("RS.MUP")]);
    let message = Message::OperationalNotice(examples::notice());
    let encoded = EncodedMessage::decode(message.kind(), message.encode().unwrap()).unwrap();
    mixed.push(prepare(h, encoded, [9; 32]).unwrap().0);
    assert!(matches!(
        sign_prepared(mixed, &key("rs")).unwrap_err(),
        SealError::Inconsistent(_)
    ));
}
