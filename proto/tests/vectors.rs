//! The protocol test vectors in `tests/vectors/envelopes.json`.
//!
//! The vectors are computed here from fixed inputs and compared with the
//! committed file, so the file cannot drift from the code; `docs/PROTOCOL.md`
//! quotes the first vector, and a test checks that it still does. To write
//! the file after a deliberate format change:
//!
//! ```sh
//! KURIR_WRITE_VECTORS=1 cargo test -p kurir-proto --test vectors
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kurir_proto::message::*;
use kurir_proto::*;
use serde_json::{Value as Json, json};
use sha2::{Digest as _, Sha256};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/envelopes.json");
const PROTOCOL_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

fn seed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("kurir test key {label}")).into()
}

fn salt(label: &str) -> [u8; 32] {
    Sha256::digest(format!("kurir test salt {label}")).into()
}

fn header_json(h: &Header) -> Json {
    let mut j = json!({
        "v": 1,
        "id": h.id.to_string(),
        "kind": h.kind.as_str(),
        "from": h.from.as_str(),
        "to": h.to.iter().map(AuthorityId::as_str).collect::<Vec<_>>(),
        "created_at": h.created_at.0,
        "expires_at": h.expires_at.0,
        "handling": h.handling.as_str(),
        "body_digest": h.body_digest.to_string(),
    });
    let o = j.as_object_mut().unwrap();
    if let Some(c) = &h.case_id {
        o.insert("case_id".into(), json!(c.as_str()));
    }
    if let Some(r) = &h.in_reply_to {
        o.insert("in_reply_to".into(), json!(r.to_string()));
    }
    if let Some(p) = h.procedure {
        o.insert("procedure".into(), json!(p.as_str()));
    }
    if let Some(b) = &h.legal_basis {
        o.insert("legal_basis".into(), json!(b));
    }
    j
}

fn envelope_vector(
    name: &str,
    key_label: &str,
    salt_label: &str,
    header: Header,
    message: Message,
) -> Json {
    let key = kurir_proto::ed25519_dalek::SigningKey::from_bytes(&seed(key_label));
    let salt = salt(salt_label);
    let parcel = seal(header, &message, salt, &key).unwrap();
    let mut ring = KeyRing::new();
    let authority = verify_header_from(&parcel);
    ring.insert(PublicKey {
        authority,
        key: key.verifying_key(),
        valid_from: Timestamp(0),
        valid_until: None,
        revoked_at: None,
    });
    let verified = verify(parcel.clone(), &ring).unwrap();
    json!({
        "name": name,
        "type": "envelope",
        "signing_key_seed": hex::encode(seed(key_label)),
        "public_key": hex::encode(key.verifying_key().as_bytes()),
        "key_id": KeyId::of(&key.verifying_key()).to_string(),
        "header": header_json(&verified.header),
        "header_cbor": hex::encode(verified.header.encode().unwrap()),
        "salt": hex::encode(salt),
        "body_cbor": hex::encode(&parcel.body),
        "body_digest": verified.header.body_digest.to_string(),
        "sig_structure": hex::encode(cose::sig_structure(&parcel.envelope).unwrap()),
        "envelope": hex::encode(&parcel.envelope),
        "envelope_digest": parcel.envelope_digest().to_string(),
        "parcel": hex::encode(parcel.to_bytes()),
    })
}

/// The `from` of a sealed envelope, read without a key (tests only).
fn verify_header_from(parcel: &Parcel) -> AuthorityId {
    use coset::TaggedCborSerializable;
    let sign1 = coset::CoseSign1::from_tagged_slice(&parcel.envelope).unwrap();
    Header::decode(&sign1.payload.unwrap()).unwrap().from
}

fn receipt_vector(name: &str, key_label: &str, receipt: Receipt) -> Json {
    let key = kurir_proto::ed25519_dalek::SigningKey::from_bytes(&seed(key_label));
    let bytes = seal_receipt(&receipt, &key).unwrap();
    json!({
        "name": name,
        "type": "receipt",
        "signing_key_seed": hex::encode(seed(key_label)),
        "public_key": hex::encode(key.verifying_key().as_bytes()),
        "key_id": KeyId::of(&key.verifying_key()).to_string(),
        "receipt": receipt_json(&receipt),
        "payload_cbor": hex::encode(receipt.encode().unwrap()),
        "sig_structure": hex::encode(cose::sig_structure(&bytes).unwrap()),
        "receipt_cose": hex::encode(&bytes),
    })
}

/// The vectors of one batch of receipts signed together (PROTOCOL.md
/// §10.1), one per receipt, and tampered copies that must be refused.
fn batch_vectors(key_label: &str, receipts: &[Receipt]) -> Vec<Json> {
    let key = kurir_proto::ed25519_dalek::SigningKey::from_bytes(&seed(key_label));
    let sealed = seal_receipts(receipts, &key).unwrap();
    let payloads: Vec<Vec<u8>> = receipts.iter().map(|r| r.encode().unwrap()).collect();
    let leaves: Vec<Digest> = payloads.iter().map(|p| merkle::leaf_hash(p)).collect();
    let root = merkle::root(&leaves);
    let size = receipts.len() as u64;
    let mut out = Vec::new();
    for (i, (receipt, bytes)) in receipts.iter().zip(&sealed).enumerate() {
        let path = merkle::inclusion_proof(&leaves, i as u64, size).unwrap();
        let sign1 = {
            use coset::TaggedCborSerializable;
            coset::CoseSign1::from_tagged_slice(bytes).unwrap()
        };
        out.push(json!({
            "name": format!("batched receipt {} of {size}", i + 1),
            "type": "receipt-batch",
            "signing_key_seed": hex::encode(seed(key_label)),
            "public_key": hex::encode(key.verifying_key().as_bytes()),
            "key_id": KeyId::of(&key.verifying_key()).to_string(),
            "receipt": receipt_json(receipt),
            "payload_cbor": hex::encode(&payloads[i]),
            "leaf_hash": leaves[i].to_string(),
            "batch": {
                "receiver": receipt.receiver.as_str(),
                "size": size,
                "root": root.to_string(),
                "index": i,
                "path": path.iter().map(Digest::to_string).collect::<Vec<_>>(),
            },
            "head_cbor": hex::encode(sign1.payload.as_ref().unwrap()),
            "sig_structure": hex::encode(cose::sig_structure(bytes).unwrap()),
            "receipt_cose": hex::encode(bytes),
        }));
    }
    // Refused: the second receipt with its path or index changed (the
    // unprotected header is not signed; the root binds it).
    for (what, change) in item_changes() {
        out.push(json!({
            "name": format!("batched receipt 2 of 3, {what}"),
            "type": "receipt-batch-refused",
            "public_key": hex::encode(key.verifying_key().as_bytes()),
            "receiver": receipts[1].receiver.as_str(),
            "receipt_cose": hex::encode(with_changed_item(&sealed[1], &*change)),
        }));
    }
    out
}

/// `bytes` (a batched COSE_Sign1) with its unprotected item
/// `[payload, index, path]` changed by `change`.
fn with_changed_item(bytes: &[u8], change: &dyn Fn(&mut Vec<ciborium::value::Value>)) -> Vec<u8> {
    use ciborium::value::Value;
    use coset::TaggedCborSerializable;
    let mut s = coset::CoseSign1::from_tagged_slice(bytes).unwrap();
    // Always an array: a copy left unchanged would verify, and the checks
    // of the refused vectors would fail.
    if let Value::Array(item) = &mut s.unprotected.rest[0].1 {
        change(item);
    }
    s.to_tagged_vec().unwrap()
}

/// A change to a batched item `[payload, index, path]`.
type ItemChange = dyn Fn(&mut Vec<ciborium::value::Value>);

/// The four changes to the unsigned part of a batched item, each of which
/// a verifier must refuse.
fn item_changes() -> Vec<(&'static str, Box<ItemChange>)> {
    use ciborium::value::Value;
    vec![
        (
            "a path hash changed",
            Box::new(|item| {
                if let Value::Array(path) = &mut item[2]
                    && let Value::Bytes(h) = &mut path[0]
                {
                    h[0] ^= 1;
                }
            }),
        ),
        (
            "index changed to 0",
            Box::new(|item| item[1] = Value::from(0u64)),
        ),
        (
            "index 3 (not below the size)",
            Box::new(|item| item[1] = Value::from(3u64)),
        ),
        (
            "path one hash short",
            Box::new(|item| {
                if let Value::Array(path) = &mut item[2] {
                    path.pop();
                }
            }),
        ),
    ]
}

/// The vectors of one batch of envelopes signed together (PROTOCOL.md
/// §6.1), one per envelope, and tampered copies of the second that must be
/// refused.
fn envelope_batch_vectors(key_label: &str, messages: Vec<(Header, Message, &str)>) -> Vec<Json> {
    let key = kurir_proto::ed25519_dalek::SigningKey::from_bytes(&seed(key_label));
    let mut prepared = Vec::new();
    let mut salts = Vec::new();
    for (header, message, salt_label) in messages {
        let encoded = EncodedMessage::decode(message.kind(), message.encode().unwrap()).unwrap();
        salts.push(salt(salt_label));
        prepared.push(prepare(header, encoded, salt(salt_label)).unwrap().0);
    }
    let headers: Vec<Header> = prepared.iter().map(|u| u.header().clone()).collect();
    let parcels = sign_prepared(prepared, &key).unwrap();
    let payloads: Vec<Vec<u8>> = headers.iter().map(|h| h.encode().unwrap()).collect();
    let leaves: Vec<Digest> = payloads.iter().map(|p| merkle::leaf_hash(p)).collect();
    let root = merkle::root(&leaves);
    let size = parcels.len() as u64;
    let mut out = Vec::new();
    for (i, (header, parcel)) in headers.iter().zip(&parcels).enumerate() {
        let path = merkle::inclusion_proof(&leaves, i as u64, size).unwrap();
        let sign1 = {
            use coset::TaggedCborSerializable;
            coset::CoseSign1::from_tagged_slice(&parcel.envelope).unwrap()
        };
        out.push(json!({
            "name": format!("batched envelope {} of {size}", i + 1),
            "type": "envelope-batch",
            "signing_key_seed": hex::encode(seed(key_label)),
            "public_key": hex::encode(key.verifying_key().as_bytes()),
            "key_id": KeyId::of(&key.verifying_key()).to_string(),
            "header": header_json(header),
            "header_cbor": hex::encode(&payloads[i]),
            "salt": hex::encode(salts[i]),
            "body_cbor": hex::encode(&parcel.body),
            "body_digest": header.body_digest.to_string(),
            "leaf_hash": leaves[i].to_string(),
            "batch": {
                "from": header.from.as_str(),
                "size": size,
                "root": root.to_string(),
                "index": i,
                "path": path.iter().map(Digest::to_string).collect::<Vec<_>>(),
            },
            "head_cbor": hex::encode(sign1.payload.as_ref().unwrap()),
            "sig_structure": hex::encode(cose::sig_structure(&parcel.envelope).unwrap()),
            "envelope": hex::encode(&parcel.envelope),
            "envelope_digest": parcel.envelope_digest().to_string(),
            "parcel": hex::encode(parcel.to_bytes()),
        }));
    }
    for (what, change) in item_changes() {
        let envelope = with_changed_item(&parcels[1].envelope, &*change);
        let parcel = Parcel {
            envelope,
            ..parcels[1].clone()
        };
        out.push(json!({
            "name": format!("batched envelope 2 of {size}, {what}"),
            "type": "envelope-batch-refused",
            "public_key": hex::encode(key.verifying_key().as_bytes()),
            "from": headers[1].from.as_str(),
            "to": headers[1].to.iter().map(AuthorityId::as_str).collect::<Vec<_>>(),
            "parcel": hex::encode(parcel.to_bytes()),
        }));
    }
    out
}

fn receipt_json(receipt: &Receipt) -> Json {
    let mut j = json!({
        "v": 1,
        "envelope_digest": receipt.envelope_digest.to_string(),
        "sender": receipt.sender.as_str(),
        "receiver": receipt.receiver.as_str(),
        "received_at": receipt.received_at.0,
    });
    let r = j.as_object_mut().unwrap();
    if let Some(id) = receipt.msg_id {
        r.insert("msg_id".into(), json!(id.to_string()));
    }
    match &receipt.status {
        ReceiptStatus::Accepted => {
            r.insert("status".into(), json!("accepted"));
        }
        ReceiptStatus::Rejected { reason, detail } => {
            r.insert("status".into(), json!("rejected"));
            r.insert("reason".into(), json!(reason.as_str()));
            if let Some(d) = detail {
                r.insert("detail".into(), json!(d));
            }
        }
    }
    if let Some(i) = receipt.log_index {
        r.insert("log_index".into(), json!(i));
    }
    if let Some(h) = receipt.leaf_hash {
        r.insert("leaf_hash".into(), json!(h.to_string()));
    }
    j
}

fn compute() -> Json {
    let created = Timestamp(1_795_874_050_000);
    let request_id = MessageId::new_v7(created.0, *b"kurir-vec1");

    let mut notice = header(MessageKind::OperationalNotice);
    notice.id = MessageId::new_v7(created.0, *b"kurir-vec0");
    notice.to = vec![id("ME.UP"), id("MK.MVR")];
    notice.handling = Handling::H1;
    notice.expires_at = created.plus_millis(7 * DAY);

    let mut request = header(MessageKind::ReadmissionRequest);
    request.id = request_id;
    request.to = vec![id("BA.SPS")];
    request.expires_at = created.plus_millis(90 * DAY);
    request.legal_basis = Some(
        "Art. 2 and 7, Agreement between the EU and the Republic of Serbia on readmission".into(),
    );

    let mut reply = header(MessageKind::ReadmissionReply);
    reply.id = MessageId::new_v7(created.0 + 3 * DAY, *b"kurir-vec2");
    reply.from = id("BA.SPS");
    reply.to = vec![id("RS.MUP")];
    reply.created_at = created.plus_millis(3 * DAY);
    reply.expires_at = created.plus_millis(90 * DAY);
    reply.in_reply_to = Some(request_id);

    let notice_vector = envelope_vector(
        "operational-notice to two recipients",
        "RS.MUP message key 1",
        "notice",
        notice,
        Message::OperationalNotice(examples::notice()),
    );
    let envelope_digest = Digest(
        hex::decode(notice_vector["envelope_digest"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let batch: Vec<Receipt> = (0..3u8)
        .map(|i| Receipt {
            msg_id: Some(MessageId::new_v7(created.0 + u64::from(i), *b"kurir-vecB")),
            envelope_digest: Digest::of(&[b"example envelope ", &[b'0' + i]]),
            sender: id("RS.MUP"),
            receiver: id("ME.UP"),
            received_at: created.plus_millis(1000 + u64::from(i)),
            status: ReceiptStatus::Accepted,
            log_index: Some(20 + u64::from(i)),
            leaf_hash: Some(Digest::of(&[b"\x00example leaf ", &[b'0' + i]])),
        })
        .collect();
    let mut vectors = vec![
        notice_vector,
        envelope_vector(
            "readmission-request, standard procedure",
            "RS.MUP message key 1",
            "request",
            request,
            Message::ReadmissionRequest(Box::new(examples::readmission_request())),
        ),
        envelope_vector(
            "readmission-reply confirming",
            "BA.SPS message key 1",
            "reply",
            reply,
            Message::ReadmissionReply(examples::confirmation()),
        ),
        receipt_vector(
            "receipt, accepted",
            "ME.UP message key 1",
            Receipt {
                msg_id: Some(MessageId::new_v7(created.0, *b"kurir-vec0")),
                envelope_digest,
                sender: id("RS.MUP"),
                receiver: id("ME.UP"),
                received_at: created.plus_millis(842),
                status: ReceiptStatus::Accepted,
                log_index: Some(17),
                leaf_hash: Some(Digest::of(&[b"\x00example leaf"])),
            },
        ),
        receipt_vector(
            "receipt, rejected",
            "MK.MVR message key 1",
            Receipt {
                msg_id: Some(MessageId::new_v7(created.0, *b"kurir-vec0")),
                envelope_digest,
                sender: id("RS.MUP"),
                receiver: id("MK.MVR"),
                received_at: created.plus_millis(905),
                status: ReceiptStatus::Rejected {
                    reason: RejectCode::KindNotAllowed,
                    detail: Some("MK.MVR does not accept operational-notice from RS.MUP".into()),
                },
                log_index: None,
                leaf_hash: None,
            },
        ),
    ];
    vectors.extend(batch_vectors("ME.UP message key 1", &batch));
    let batched: Vec<(Header, Message, &str)> = (0..3u8)
        .map(|i| {
            let mut h = header(MessageKind::OperationalNotice);
            h.id = MessageId::new_v7(created.0 + u64::from(i), *b"kurir-vecE");
            h.to = match i {
                1 => vec![id("BA.SPS"), id("ME.UP")],
                _ => vec![id("ME.UP")],
            };
            h.handling = Handling::H1;
            h.expires_at = created.plus_millis(7 * DAY);
            (
                h,
                Message::OperationalNotice(examples::notice()),
                ["batch 0", "batch 1", "batch 2"][usize::from(i)],
            )
        })
        .collect();
    vectors.extend(envelope_batch_vectors("RS.MUP message key 1", batched));
    json!({
        "description": "kurir protocol test vectors (docs/PROTOCOL.md). Seeds are Ed25519 private keys \
                        (RFC 8032); every other value is hex of the exact bytes. Generated by \
                        proto/tests/vectors.rs; do not edit by hand.",
        "domain_tags": {
            "key_id": hex::encode(digest::domain::KEY_ID),
            "body": hex::encode(digest::domain::BODY),
            "envelope": hex::encode(digest::domain::ENVELOPE),
        },
        "vectors": vectors,
    })
}

#[test]
fn vectors_match_the_committed_file() {
    let computed = compute();
    if std::env::var_os("KURIR_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
        std::fs::write(FILE, text).unwrap();
    }
    let committed: Json = serde_json::from_str(
        &std::fs::read_to_string(FILE).expect("tests/vectors/envelopes.json is readable"),
    )
    .unwrap();
    assert_eq!(
        committed, computed,
        "the code no longer produces the committed vectors; if the format change is \
         deliberate, regenerate them (see the top of this file) and update docs/PROTOCOL.md"
    );
}

#[test]
fn committed_vectors_open_and_verify() {
    let file: Json = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let bytes = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
        let public: [u8; 32] = bytes("public_key").try_into().unwrap();
        let key = kurir_proto::ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let kind = v["type"].as_str().unwrap();
        // The authority whose key signed, as each type of vector names it.
        let signer = match kind {
            "envelope" => &v["header"]["from"],
            "envelope-batch" => &v["batch"]["from"],
            "envelope-batch-refused" => &v["from"],
            "receipt" | "receipt-batch" => &v["receipt"]["receiver"],
            "receipt-batch-refused" => &v["receiver"],
            other => panic!("unknown vector type {other}"),
        };
        let mut ring = KeyRing::new();
        ring.insert(PublicKey {
            authority: id(signer.as_str().unwrap()),
            key,
            valid_from: Timestamp(0),
            valid_until: None,
            revoked_at: None,
        });
        let name = v["name"].as_str().unwrap();
        match kind {
            "envelope" | "envelope-batch" => {
                for to in v["header"]["to"].as_array().unwrap() {
                    let me = id(to.as_str().unwrap());
                    let opened = open(&bytes("parcel"), &ring, &ctx(&me)).unwrap();
                    assert_eq!(opened.header.encode().unwrap(), bytes("header_cbor"));
                    assert_eq!(opened.parcel.envelope, bytes("envelope"));
                    assert_eq!(opened.parcel.body, bytes("body_cbor"));
                    assert_eq!(
                        opened.envelope_digest.to_string(),
                        v["envelope_digest"].as_str().unwrap()
                    );
                    // The body decodes, and its type writes the same bytes.
                    let body = Message::decode(opened.header.kind, &bytes("body_cbor")).unwrap();
                    assert_eq!(body.encode().unwrap(), bytes("body_cbor"));
                }
            }
            "envelope-batch-refused" => {
                for to in v["to"].as_array().unwrap() {
                    let me = id(to.as_str().unwrap());
                    assert!(
                        open(&bytes("parcel"), &ring, &ctx(&me)).is_err(),
                        "{name} is accepted"
                    );
                }
            }
            "receipt-batch-refused" => {
                assert!(
                    open_receipt(&bytes("receipt_cose"), &ring).is_err(),
                    "{name} is accepted"
                );
            }
            _ => {
                let r = open_receipt(&bytes("receipt_cose"), &ring).unwrap();
                assert_eq!(r.receipt.encode().unwrap(), bytes("payload_cbor"));
            }
        }
    }
}

#[test]
fn protocol_md_quotes_the_first_vector() {
    let doc = std::fs::read_to_string(PROTOCOL_MD).expect("docs/PROTOCOL.md is readable");
    let squashed: String = doc.split_whitespace().collect();
    let file: Json = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let first = &file["vectors"][0];
    for field in [
        "signing_key_seed",
        "public_key",
        "key_id",
        "salt",
        "header_cbor",
        "body_cbor",
        "body_digest",
        "sig_structure",
        "envelope",
    ] {
        let hex = first[field].as_str().unwrap();
        assert!(
            squashed.contains(hex),
            "docs/PROTOCOL.md does not quote vector 0's {field} ({hex})"
        );
    }
}
