//! Fixtures shared by the protocol's integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

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
