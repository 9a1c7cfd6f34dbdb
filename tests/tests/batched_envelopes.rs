//! Envelopes signed in batches (PROTOCOL.md §6.1) at a running relay: a
//! sender that signs the envelopes of several messages once gets each one
//! accepted and receipted on its own, the officer's fetch and the audit
//! export verify them, and a batched envelope whose unsigned part was
//! changed gets a signed `malformed` rejection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ciborium::value::Value;
use coset::{CoseSign1, TaggedCborSerializable};
use kurir_proto::cose::{CONTENT_TYPE_HEADER_BATCH, content_type};
use kurir_proto::message::{Message, examples};
use kurir_proto::{
    EncodedMessage, Parcel, ReceiptStatus, RejectCode, open_receipt, prepare, sign_prepared,
};
use kurir_tests::{DUTY_OFFICER, assert_refused, inbox, receiver_only};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_envelopes_are_accepted_each_alone_and_a_changed_one_is_refused() {
    let mut h = receiver_only().await;
    let key = h.message_key("RS.MUP").unwrap();
    // Five notices of RS.MUP signed together, the test playing its relay.
    let mut prepared = Vec::new();
    for _ in 0..5 {
        let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
        let message = Message::OperationalNotice(examples::notice());
        let encoded = EncodedMessage::decode(message.kind(), message.encode().unwrap()).unwrap();
        prepared.push(prepare(header, encoded, [7; 32]).unwrap().0);
    }
    let headers: Vec<_> = prepared.iter().map(|u| u.header().clone()).collect();
    let parcels = sign_prepared(prepared, &key).unwrap();
    assert!(
        parcels
            .iter()
            .all(|p| content_type(&p.envelope).as_deref() == Some(CONTENT_TYPE_HEADER_BATCH))
    );

    // A changed path: refused, signed, recorded, nothing stored.
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let mut s = CoseSign1::from_tagged_slice(&parcels[1].envelope).unwrap();
    if let Value::Array(item) = &mut s.unprotected.rest[0].1
        && let Value::Array(path) = &mut item[2]
        && let Value::Bytes(hash) = &mut path[0]
    {
        hash[0] ^= 1;
    }
    let tampered = Parcel {
        envelope: s.to_tagged_vec().unwrap(),
        ..parcels[1].clone()
    };
    let answer = link.exchange(&tampered.to_bytes()).await.unwrap();
    let v = assert_refused(&h, &answer, RejectCode::Malformed);
    assert_eq!(v.receipt.envelope_digest, tampered.envelope_digest());

    // Each parcel of the batch: accepted, with a receipt naming its own
    // envelope.
    for (parcel, header) in parcels.iter().zip(&headers) {
        let answer = link.exchange(&parcel.to_bytes()).await.unwrap();
        let receipt = open_receipt(&answer, h.roster()).unwrap().receipt;
        assert_eq!(receipt.status, ReceiptStatus::Accepted, "{receipt:?}");
        assert_eq!(receipt.msg_id, Some(header.id));
        assert_eq!(receipt.envelope_digest, parcel.envelope_digest());
    }
    link.close().await;

    // The officer sees and fetches each, verified against the roster.
    let officer = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    assert_eq!(inbox(&officer).await.unwrap().len(), 5);
    for (parcel, header) in parcels.iter().zip(&headers) {
        let v = officer.fetch_verified(h.roster(), header.id).await.unwrap();
        assert_eq!(&v.header, header);
        assert_eq!(v.envelope_digest, parcel.envelope_digest());
        assert_eq!(
            v.message,
            Some(Message::OperationalNotice(examples::notice()))
        );
    }
    officer.close().await;

    // The receiver's audit export verifies, the batched envelopes with it.
    let data = h.config("BA.SPS").unwrap().data_dir;
    h.stop("BA.SPS").await.unwrap();
    let out = h.dir().join("audit-BA.SPS");
    kurir_relay::audit::export(&data, &out, h.now()).unwrap();
    let verified = kurir_audit::load_verified(&out).unwrap();
    let bundle =
        kurir_proto::audit::Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap())
            .unwrap();
    let batched = bundle
        .envelopes
        .iter()
        .filter(|e| content_type(&e.0).as_deref() == Some(CONTENT_TYPE_HEADER_BATCH))
        .count();
    assert_eq!(batched, 5, "the bundle holds the five batched envelopes");
    assert_eq!(
        verified.envelopes, 5,
        "each verified and matched to its entry"
    );
    h.shutdown().await.unwrap();
}
