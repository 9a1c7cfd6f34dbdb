//! Fixtures shared by the protocol's integration tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{Handling, MessageKind, Procedure};
use kurir_proto::*;
use sha2::{Digest as _, Sha256};

/// 2026-11-28T13:54:10Z.
pub const NOW: Timestamp = Timestamp(1_795_874_050_000);
pub const DAY: u64 = 86_400_000;

/// A signing key derived from a label, so fixtures are reproducible.
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(format!("kurir test key {label}")).into())
}

pub fn id(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

/// The public half of `key(label)`, owned by `authority`, valid from the epoch.
pub fn public(label: &str, authority: &str) -> PublicKey {
    PublicKey {
        authority: id(authority),
        key: key(label).verifying_key(),
        valid_from: Timestamp(0),
        valid_until: None,
        revoked_at: None,
    }
}

/// A ring with RS.MUP's key "rs" and ME.UP's key "me".
pub fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.insert(public("rs", "RS.MUP"));
    ring.insert(public("me", "ME.UP"));
    ring
}

/// A header from RS.MUP to ME.UP with the fields `kind` requires.
pub fn header(kind: MessageKind) -> Header {
    let needs_case = kind.needs_case();
    Header {
        id: MessageId::new_v7(NOW.0, [0x11; 10]),
        kind,
        from: id("RS.MUP"),
        to: vec![id("ME.UP")],
        created_at: NOW,
        expires_at: NOW.plus_millis(30 * DAY),
        case_id: needs_case.then(|| CaseId::parse("RS.MUP:2026-000123").unwrap()),
        in_reply_to: kind
            .needs_in_reply_to()
            .then(|| MessageId::new_v7(NOW.0 - DAY, [0x22; 10])),
        procedure: (kind == MessageKind::ReadmissionRequest).then_some(Procedure::Standard),
        handling: Handling::H2,
        legal_basis: None,
        body_digest: Digest([0; 32]),
    }
}

pub fn notice_parcel() -> Parcel {
    seal(
        header(MessageKind::OperationalNotice),
        &Message::OperationalNotice(message::examples::notice()),
        [0x5a; 32],
        &key("rs"),
    )
    .unwrap()
}

pub fn ctx<'a>(me: &'a AuthorityId) -> OpenContext<'a> {
    OpenContext {
        me,
        now: NOW,
        max_parcel: DEFAULT_MAX_PARCEL,
    }
}

/// Every change to the unsigned part `[payload, index, path]` of item 2 of
/// a batch of 5 (PROTOCOL.md §6.1, §10.1) that a verifier must refuse:
/// each byte of the payload, the other indices and one outside the batch,
/// each byte of each path hash, the path one hash short and one long.
/// `refused` verifies the item changed so and returns the refusal's text
/// (it panics if the item is accepted).
pub fn refuse_every_change(
    original: &[ciborium::value::Value],
    refused: &dyn Fn(Vec<ciborium::value::Value>) -> String,
) {
    use ciborium::value::Value;
    let changed = |at: usize, value: Value| {
        let mut item = original.to_vec();
        item[at] = value;
        item
    };
    let Value::Bytes(payload) = &original[0] else {
        panic!("payload")
    };
    for at in 0..payload.len() {
        let mut p = payload.clone();
        p[at] ^= 1;
        refused(changed(0, Value::Bytes(p)));
    }
    for index in [0u64, 1, 3, 4, 5, 1 << 40] {
        refused(changed(1, Value::from(index)));
    }
    let Value::Array(path) = &original[2] else {
        panic!("path")
    };
    for (h, hash) in path.iter().enumerate() {
        let Value::Bytes(hash) = hash else {
            panic!("a path hash")
        };
        for at in 0..hash.len() {
            let mut hash = hash.clone();
            hash[at] ^= 0x80;
            let mut p = path.clone();
            p[h] = Value::Bytes(hash);
            refused(changed(2, Value::Array(p)));
        }
    }
    let short = Value::Array(path[..path.len() - 1].to_vec());
    assert!(refused(changed(2, short)).contains("proof"));
    let long = Value::Array([path.clone(), vec![path[0].clone()]].concat());
    assert!(refused(changed(2, long)).contains("proof"));
}

/// Counts the signatures it verifies (strictly).
#[derive(Debug, Default)]
pub struct Counting(pub std::sync::atomic::AtomicUsize);

impl kurir_proto::batch::SignatureCheck for &Counting {
    fn check(
        &self,
        k: &kurir_proto::ed25519_dalek::VerifyingKey,
        m: &[u8],
        s: &kurir_proto::ed25519_dalek::Signature,
    ) -> Result<(), kurir_proto::ed25519_dalek::SignatureError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        kurir_proto::batch::Strict.check(k, m, s)
    }
}
