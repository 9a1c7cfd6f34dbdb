//! Receipts signed in batches (PROTOCOL.md §10.1): each verifies alone,
//! the unprotected part (receipt, index, path) is bound by the signed root,
//! and the strictness rules of the single form hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ciborium::value::Value;
use common::*;
use coset::{CoseSign1, TaggedCborSerializable};
use kurir_proto::batch::Remembered;
use kurir_proto::cose::{CONTENT_TYPE_RECEIPT_BATCH, LABEL_IN_BATCH};
use kurir_proto::receipt::{open_receipt_with, receipt_unverified};
use kurir_proto::*;
use std::sync::atomic::Ordering;

fn receipt(n: u8) -> Receipt {
    Receipt {
        msg_id: Some(MessageId::new_v7(NOW.0, [n; 10])),
        envelope_digest: Digest([n; 32]),
        sender: id("RS.MUP"),
        receiver: id("ME.UP"),
        received_at: NOW.plus_millis(1500),
        status: ReceiptStatus::Accepted,
        log_index: Some(40 + u64::from(n)),
        leaf_hash: Some(Digest([n ^ 0xff; 32])),
    }
}

fn batch(n: u8) -> (Vec<Receipt>, Vec<Vec<u8>>) {
    let receipts: Vec<_> = (0..n).map(receipt).collect();
    let sealed = seal_receipts(&receipts, &key("me")).unwrap();
    (receipts, sealed)
}

fn sign1(bytes: &[u8]) -> CoseSign1 {
    CoseSign1::from_tagged_slice(bytes).unwrap()
}

/// The unprotected item `[receipt, index, path]`.
fn item(bytes: &[u8]) -> Vec<Value> {
    let s = sign1(bytes);
    assert_eq!(s.unprotected.rest.len(), 1);
    match &s.unprotected.rest[0] {
        (coset::Label::Int(LABEL_IN_BATCH), Value::Array(a)) => a.clone(),
        other => panic!("unexpected unprotected field {other:?}"),
    }
}

/// `bytes` with its unprotected item replaced.
fn with_item(bytes: &[u8], item: Vec<Value>) -> Vec<u8> {
    let mut s = sign1(bytes);
    s.unprotected.rest = vec![(coset::Label::Int(LABEL_IN_BATCH), Value::Array(item))];
    s.to_tagged_vec().unwrap()
}

#[test]
fn one_receipt_keeps_the_single_form() {
    let (receipts, sealed) = batch(1);
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0], seal_receipt(&receipts[0], &key("me")).unwrap());
    assert!(seal_receipts(&[], &key("me")).unwrap().is_empty());
}

#[test]
fn every_receipt_of_a_batch_verifies_alone_with_one_signature() {
    for n in 2..=9 {
        let (receipts, sealed) = batch(n);
        assert_eq!(sealed.len(), usize::from(n));
        let signature = sign1(&sealed[0]).signature;
        for (i, bytes) in sealed.iter().enumerate() {
            let s = sign1(bytes);
            assert_eq!(s.signature, signature, "one signature for the batch");
            assert_eq!(
                s.protected.header.content_type,
                Some(coset::ContentType::Text(CONTENT_TYPE_RECEIPT_BATCH.into()))
            );
            let v = open_receipt(bytes, &ring()).unwrap();
            assert_eq!(v.receipt, receipts[i]);
            assert_eq!(v.bytes, *bytes);
            assert_eq!(receipt_unverified(bytes).unwrap(), receipts[i]);
        }
    }
}

#[test]
fn a_sender_that_remembers_verifies_a_batch_once() {
    let (_, sealed) = batch(5);
    let counting = Counting::default();
    let memo = Remembered::new(&counting, 16);
    for bytes in &sealed {
        open_receipt_with(bytes, &ring(), &memo).unwrap();
    }
    assert_eq!(counting.0.load(Ordering::SeqCst), 1);
    // A tampered item still fails although its signature is remembered.
    let mut it = item(&sealed[1]);
    it[1] = Value::from(2u64);
    assert!(open_receipt_with(&with_item(&sealed[1], it), &ring(), &memo).is_err());
}

fn refused(bytes: &[u8]) -> String {
    match open_receipt(bytes, &ring()) {
        Ok(v) => panic!("accepted: {:?}", v.receipt),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_changed_byte_of_the_unsigned_part_is_refused() {
    let (_, sealed) = batch(5);
    refuse_every_change(&item(&sealed[2]), &|it| refused(&with_item(&sealed[2], it)));
    // Another receipt's item under this one's signature verifies as that
    // receipt: the item is what it proves, and nothing else.
    let other = with_item(&sealed[2], item(&sealed[3]));
    assert_eq!(open_receipt(&other, &ring()).unwrap().receipt, receipt(3));
}

#[test]
fn the_batched_form_is_strict() {
    let (_, sealed) = batch(3);
    let it = item(&sealed[0]);
    // Index not below the size.
    let mut beyond = it.clone();
    beyond[1] = Value::from(3u64);
    assert!(refused(&with_item(&sealed[0], beyond)).contains("outside the batch"));
    // A fourth element, a missing one, a wrong type.
    let mut four = it.clone();
    four.push(Value::Null);
    assert!(refused(&with_item(&sealed[0], four)).contains("three items"));
    assert!(refused(&with_item(&sealed[0], it[..2].to_vec())).contains("three items"));
    let mut text = it.clone();
    text[0] = Value::Text("receipt".into());
    assert!(refused(&with_item(&sealed[0], text)).contains("byte string"));
    // Another label, or a second field beside it.
    let mut s = sign1(&sealed[0]);
    s.unprotected.rest[0].0 = coset::Label::Int(-65538);
    assert!(refused(&s.to_tagged_vec().unwrap()).contains("label -65537"));
    let mut s = sign1(&sealed[0]);
    s.unprotected
        .rest
        .push((coset::Label::Int(99), Value::Null));
    assert!(refused(&s.to_tagged_vec().unwrap()).contains("exactly one field"));
    let mut s = sign1(&sealed[0]);
    s.unprotected.key_id = vec![1, 2, 3];
    let e = refused(&s.to_tagged_vec().unwrap());
    assert!(e.contains("exactly one field"), "{e}");
    // No item at all.
    let mut s = sign1(&sealed[0]);
    s.unprotected.rest.clear();
    refused(&s.to_tagged_vec().unwrap());
    // Trailing bytes after the COSE_Sign1.
    let mut trailing = sealed[0].clone();
    trailing.push(0);
    refused(&trailing);
    // A single receipt with an unprotected field is refused as before.
    let single = seal_receipt(&receipt(0), &key("me")).unwrap();
    let mut s = sign1(&single);
    s.unprotected.rest = sign1(&sealed[0]).unprotected.rest;
    assert!(refused(&s.to_tagged_vec().unwrap()).contains("unprotected header must be empty"));
    // An unknown content type is named.
    let mut s = sign1(&sealed[0]);
    s.protected.header.content_type = Some(coset::ContentType::Text(
        "application/kurir-receipt-list+cbor".into(),
    ));
    s.protected.original_data = None;
    assert!(refused(&s.to_tagged_vec().unwrap()).contains("kurir-receipt-list"));
}

#[test]
fn a_batch_is_signed_by_its_receiver_only() {
    // Signed by RS.MUP's key, naming ME.UP as the receiver.
    let receipts: Vec<_> = (0..3).map(receipt).collect();
    let sealed = seal_receipts(&receipts, &key("rs")).unwrap();
    assert!(matches!(
        open_receipt(&sealed[1], &ring()).unwrap_err(),
        OpenError::SignerMismatch { .. }
    ));
    // A batch mixes no receivers.
    let mut mixed = receipts.clone();
    mixed[2].receiver = id("RS.MUP");
    assert!(matches!(
        seal_receipts(&mixed, &key("me")).unwrap_err(),
        SealError::Receipt(_)
    ));
}
