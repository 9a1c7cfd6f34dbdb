//! Property-based smoke of the decoders the fuzz targets exercise (`fuzz/`):
//! frame, CBOR, parcel and envelope, receipt, roster, signed note and
//! checkpoint, `relay.toml`. Arbitrary bytes and single-byte mutations of
//! valid input never panic; what decodes re-encodes to the same bytes; a
//! mutated parcel never opens. A few hundred cases each, so it runs in
//! seconds; the fuzzers run for minutes (docs/SECURITY.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use kurir_certs::Roster;
use kurir_certs::roster::{RosterBody, SignedRoster};
use kurir_proto::checkpoint::{Checkpoint, Note, NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{Handling, Message, MessageKind, examples};
use kurir_proto::{
    AuthorityId, DEFAULT_MAX_PARCEL, Digest, Header, KeyRing, MessageId, OpenContext, Parcel,
    PublicKey, Timestamp, cbor, frame, open, open_receipt, seal, verify_envelope,
};
use kurir_relay::config::RelayConfig;
use proptest::prelude::*;

const NOW: Timestamp = Timestamp(1_795_874_050_000);

fn id(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.insert(PublicKey {
        authority: id("RS.MUP"),
        key: key().verifying_key(),
        valid_from: Timestamp(0),
        valid_until: None,
        revoked_at: None,
    });
    ring
}

fn parcel() -> Vec<u8> {
    let header = Header {
        id: MessageId::new_v7(NOW.0, [0x11; 10]),
        kind: MessageKind::OperationalNotice,
        from: id("RS.MUP"),
        to: vec![id("BA.SPS")],
        created_at: NOW,
        expires_at: NOW.plus_millis(86_400_000),
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        body_digest: Digest([0; 32]),
    };
    let message = Message::OperationalNotice(examples::notice());
    seal(header, &message, [0x5a; 32], &key())
        .unwrap()
        .to_bytes()
}

fn open_parcel(bytes: &[u8]) -> bool {
    let me = id("BA.SPS");
    let ctx = OpenContext {
        me: &me,
        now: NOW,
        max_parcel: DEFAULT_MAX_PARCEL,
    };
    open(bytes, &ring(), &ctx).is_ok()
}

/// Every decoder over `data`; panics only on a broken invariant.
fn decode_everything(data: &[u8]) {
    let max = usize::from(data.first().copied().unwrap_or(0)) * 64;
    if let Ok(Some((payload, used))) = frame::decode(data, max) {
        assert!(payload.len() <= max);
        assert_eq!(
            frame::encode(payload, max).ok().as_deref(),
            Some(&data[..used])
        );
    }
    if let Ok(value) = cbor::decode_value(data) {
        assert_eq!(cbor::encode_value(&value).unwrap(), data);
    }
    if let Ok(p) = Parcel::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
        let _ = verify_envelope(&p.envelope, &ring());
    }
    let _ = open_parcel(data);
    let _ = verify_envelope(data, &ring());
    let _ = open_receipt(data, &ring());
    if let Ok(signed) = SignedRoster::decode(data) {
        assert_eq!(signed.encode().ok().as_deref(), Some(data));
    }
    if let Ok(body) = RosterBody::decode(data) {
        assert_eq!(body.encode().ok().as_deref(), Some(data));
    }
    let _ = Roster::verify(data, NOW);
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_string().as_bytes(), data);
    }
    let _ = SignedCheckpoint::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.to_string(), text);
        }
        let _ = NoteVerifier::parse(text);
        if let Err(e) = RelayConfig::parse(text, Path::new("/smoke/relay.toml")) {
            assert!(e.to_string().contains("/smoke/relay.toml"), "{e}");
        }
    }
}

/// A signed checkpoint note, as a relay writes one.
fn checkpoint_note() -> Vec<u8> {
    let c = Checkpoint::new("kurir.test/RS.MUP", 7, Digest([0x33; 32])).unwrap();
    let mut note = Note::new(c.to_string()).unwrap();
    note.sign("kurir.test/RS.MUP", &key()).unwrap();
    note.to_string().into_bytes()
}

const CONFIG: &str = "[identity]\nauthority = \"RS.MUP\"\nauthority_dir = \"authority\"\n\n\
    [network]\nlisten = \"127.0.0.1:7443\"\n\n[roster]\npath = \"roster.cbor\"\n\n\
    [storage]\ndata_dir = \"data\"\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&data);
    }

    #[test]
    fn a_mutated_parcel_never_opens(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = parcel();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(!open_parcel(&bytes), "byte {i} ^ {flip:#x} still opens");
        decode_everything(&bytes);
    }

    #[test]
    fn truncated_parcels_never_open(cut in any::<prop::sample::Index>()) {
        let bytes = parcel();
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(!open_parcel(short));
        decode_everything(short);
    }

    #[test]
    fn a_mutated_checkpoint_note_never_panics(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = checkpoint_note();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        decode_everything(&bytes);
    }

    #[test]
    fn a_mutated_config_never_panics(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = CONFIG.as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        decode_everything(&bytes);
    }
}

#[test]
fn the_valid_inputs_decode() {
    assert!(open_parcel(&parcel()));
    let note = checkpoint_note();
    assert_eq!(Note::parse(&note).unwrap().to_string().into_bytes(), note);
    RelayConfig::parse(CONFIG, Path::new("/smoke/relay.toml")).unwrap();
}
