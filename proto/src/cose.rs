//! COSE_Sign1 (RFC 9052 §4.2) with Ed25519, in the one profile kurir uses.
//!
//! ```text
//! 18([                                  ; CBOR tag 18, COSE_Sign1
//!     h'A3 01 27 03 <ctype> 04 50 <kid>', ; protected: {1: -8, 3: ctype, 4: kid}
//!     {},                               ; unprotected: empty
//!     h'<payload>',                     ; header or receipt, deterministic CBOR
//!     h'<64-byte Ed25519 signature>'
//! ])
//! ```
//!
//! The signature covers `Sig_structure = ["Signature1", protected, h'', payload]`
//! (no external AAD). Anything outside this profile is refused: other
//! algorithms, extra header fields, a non-empty unprotected header, a detached
//! payload, or bytes that differ from the encoding `sign1` produces. The one
//! exception is a batched envelope or receipt (`cose::batch`, `docs/PROTOCOL.md`
//! §6.1 and §10.1), whose unprotected header holds exactly one field,
//! [`LABEL_IN_BATCH`].
//!
//! The profile has one encoding, so kurir writes it (and the bytes to be
//! signed) directly, and reads what arrives in it by cutting it where its
//! parts lie (`Parsed1`); anything laid out otherwise is parsed by
//! `coset`, whose path names what is wrong. Tests hold the writer to what
//! `coset` builds from the same parts, and the direct reading to what
//! `coset`'s gives.

use std::collections::HashMap;

use ciborium::value::Value;
use coset::{CoseSign1, TaggedCborSerializable, iana};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::batch::SignatureCheck;
use crate::cbor::{self, CborError};
use crate::error::OpenError;
use crate::ids::{AuthorityId, KeyId};
use crate::time::Timestamp;

/// COSE content type of an envelope's payload, the message header.
pub const CONTENT_TYPE_HEADER: &str = "application/kurir-header+cbor";
/// COSE content type of a batched envelope, whose payload is the batch
/// head (`docs/PROTOCOL.md` §6.1).
pub const CONTENT_TYPE_HEADER_BATCH: &str = "application/kurir-header-batch+cbor";
/// COSE content type of a receipt's payload.
pub const CONTENT_TYPE_RECEIPT: &str = "application/kurir-receipt+cbor";
/// COSE content type of a batched receipt, whose payload is the batch head
/// (`docs/PROTOCOL.md` §10.1).
pub const CONTENT_TYPE_RECEIPT_BATCH: &str = "application/kurir-receipt-batch+cbor";
/// The private unprotected-header label of a batched envelope or receipt:
/// the header or receipt itself, its index in the batch and its inclusion
/// path (`docs/PROTOCOL.md` §6.1, §10.1). The only unprotected field kurir
/// allows, and only in a batched form.
pub const LABEL_IN_BATCH: i64 = -65537;

pub(crate) mod batch;

/// A public key as the roster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The authority that holds the private half.
    pub authority: AuthorityId,
    /// The Ed25519 key.
    pub key: VerifyingKey,
    /// First moment the key may sign.
    pub valid_from: Timestamp,
    /// First moment the key may no longer sign (`None`: open-ended).
    pub valid_until: Option<Timestamp>,
    /// When the key was revoked (`None`: not revoked): what it signed at
    /// or after this moment is refused.
    pub revoked_at: Option<Timestamp>,
}

impl PublicKey {
    /// Whether the key may sign at `t`: `valid_from <= t < valid_until` and
    /// not revoked at `t`.
    pub fn valid_at(&self, t: Timestamp) -> bool {
        t >= self.valid_from && self.valid_until.is_none_or(|u| t < u) && !self.revoked_by(t)
    }

    /// Whether the key was revoked at or before `t`.
    pub fn revoked_by(&self, t: Timestamp) -> bool {
        self.revoked_at.is_some_and(|r| t >= r)
    }
}

/// Finds the public key for a key id. The relay implements it over the
/// current roster; old keys stay in it so that old messages still verify.
pub trait KeyLookup {
    /// The key with this id, if the roster knows it.
    fn lookup(&self, kid: &KeyId) -> Option<PublicKey>;
}

/// A simple in-memory [`KeyLookup`].
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<KeyId, PublicKey>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; returns its id.
    pub fn insert(&mut self, key: PublicKey) -> KeyId {
        let kid = KeyId::of(&key.key);
        self.keys.insert(kid, key);
        kid
    }
}

impl KeyLookup for KeyRing {
    fn lookup(&self, kid: &KeyId) -> Option<PublicKey> {
        self.keys.get(kid).cloned()
    }
}

/// The protected header of kurir's profile, `{1: -8, 3: content_type, 4:
/// h'kid'}`, in its one encoding (keys in order, shortest heads).
fn protected_bytes(content_type: &str, kid: &KeyId) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + content_type.len());
    out.extend_from_slice(&[0xa3, 0x01, 0x27, 0x03]);
    cbor::write_head(3, content_type.len() as u64, &mut out);
    out.extend_from_slice(content_type.as_bytes());
    out.push(0x04);
    cbor::write_head(2, kid.as_bytes().len() as u64, &mut out);
    out.extend_from_slice(kid.as_bytes());
    out
}

/// The bytes a signature covers, `Sig_structure = ["Signature1",
/// protected, h'', payload]` (RFC 9052 §4.4, no external AAD).
fn to_be_signed(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 24);
    out.extend_from_slice(b"\x84\x6aSignature1");
    cbor::write_head(2, protected.len() as u64, &mut out);
    out.extend_from_slice(protected);
    out.push(0x40);
    cbor::write_head(2, payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// The tagged COSE_Sign1 `18([protected, unprotected, payload,
/// signature])`, with an empty unprotected header or one holding the field
/// `unprotected`, written directly in its one encoding. (`sig_structure`,
/// for the tests, and the vectors' independent check read it with other
/// code.)
fn assemble(
    protected: &[u8],
    unprotected: Option<(i64, &[u8])>,
    payload: &[u8],
    signature: &[u8],
) -> Vec<u8> {
    let field = unprotected.map_or(0, |(_, value)| value.len() + 9);
    let mut out =
        Vec::with_capacity(protected.len() + field + payload.len() + signature.len() + 16);
    out.extend_from_slice(&[0xd2, 0x84]);
    cbor::write_head(2, protected.len() as u64, &mut out);
    out.extend_from_slice(protected);
    match unprotected {
        None => out.push(0xa0),
        Some((label, value)) => {
            out.push(0xa1);
            match u64::try_from(label) {
                Ok(n) => cbor::write_head(0, n, &mut out),
                Err(_) => cbor::write_head(1, (-1 - i128::from(label)) as u64, &mut out),
            }
            out.extend_from_slice(value);
        }
    }
    cbor::write_head(2, payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    cbor::write_head(2, signature.len() as u64, &mut out);
    out.extend_from_slice(signature);
    out
}

/// Signs `payload` with `key` into a tagged COSE_Sign1.
pub(crate) fn sign1(content_type: &str, payload: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let protected = protected_bytes(content_type, &KeyId::of(&key.verifying_key()));
    let signature = key.sign(&to_be_signed(&protected, &payload)).to_bytes();
    assemble(&protected, None, &payload, &signature)
}

/// Signs `payload` with `key` once and builds one tagged COSE_Sign1 per
/// unprotected value, all with that signature (the unprotected header is
/// not signed). Each value comes in its deterministic encoding.
pub(crate) fn sign1_each(
    content_type: &str,
    payload: Vec<u8>,
    key: &SigningKey,
    label: i64,
    unprotected: Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    let protected = protected_bytes(content_type, &KeyId::of(&key.verifying_key()));
    let signature = key.sign(&to_be_signed(&protected, &payload)).to_bytes();
    unprotected
        .iter()
        .map(|value| assemble(&protected, Some((label, value)), &payload, &signature))
        .collect()
}

/// The content type a tagged COSE_Sign1 declares, without checking anything
/// else: for choosing how to verify it (a single or a batched receipt).
pub fn content_type(bytes: &[u8]) -> Option<String> {
    let sign1 = CoseSign1::from_tagged_slice(bytes).ok()?;
    match sign1.protected.header.content_type {
        Some(coset::ContentType::Text(ct)) => Some(ct),
        _ => None,
    }
}

/// The unprotected field `label` of a parsed COSE_Sign1, **without
/// verifying anything**.
pub(crate) fn unverified_field(sign1: CoseSign1, label: i64) -> Option<Value> {
    sign1
        .unprotected
        .rest
        .into_iter()
        .find(|(l, _)| *l == coset::Label::Int(label))
        .map(|(_, value)| value)
}

/// The one unprotected field of a batched COSE_Sign1, as the reading that
/// verified it holds it (not signed: its caller checks it against the
/// signed payload).
#[derive(Debug)]
pub(crate) enum Field<'a> {
    /// Its bytes where they lie, in their deterministic encoding
    /// ([`cbor::split_item`]), from a COSE_Sign1 read in place.
    Raw(&'a [u8]),
    /// Its value, as `coset` read it.
    Value(Value),
}

impl Field<'_> {
    /// The field as a CBOR value, whichever reading holds it.
    pub(crate) fn into_value(self) -> Result<Value, CborError> {
        match self {
            Field::Raw(bytes) => cbor::decode_value(bytes),
            Field::Value(value) => Ok(value),
        }
    }
}

/// A COSE_Sign1 whose signature has been verified.
#[derive(Debug, Clone)]
pub(crate) struct Verified1 {
    pub(crate) kid: KeyId,
    pub(crate) key: PublicKey,
    pub(crate) payload: Vec<u8>,
}

/// A tagged COSE_Sign1 parsed, nothing checked yet: for a caller that reads
/// its content type before it chooses how to verify it, parsing it once.
///
/// Bytes in the profile's one encoding are cut into their parts where they
/// lie ([`Parts`]); anything else is parsed by `coset`, whose path names
/// what is wrong. Both paths accept the same COSE_Sign1s with the same
/// result (a proptest holds them to it): the verification rebuilds the
/// whole from its parts and compares either way.
pub(crate) struct Parsed1<'a> {
    bytes: &'a [u8],
    form: Form1<'a>,
    what: &'static str,
}

/// How a [`Parsed1`] was read.
enum Form1<'a> {
    /// In the profile's encoding, cut where its parts lie.
    Direct(Parts<'a>),
    /// Anything else, as `coset` reads it.
    Coset(Box<CoseSign1>),
}

/// The parts of a COSE_Sign1 in kurir's profile, borrowed from its bytes:
/// `18([h'A3 01 27 03 <ctype> 04 <kid>', {} or {label: value}, payload,
/// signature])`, every head in its shortest form.
struct Parts<'a> {
    content_type: &'a str,
    kid: &'a [u8],
    /// The one unprotected field, if the map is not empty: its label and
    /// its value's bytes ([`cbor::split_item`]).
    unprotected: Option<(i64, &'a [u8])>,
    payload: &'a [u8],
    signature: &'a [u8],
}

impl<'a> Parts<'a> {
    /// The parts of `bytes` if they are laid out as the profile writes
    /// them; `None` for anything else (which may still be a COSE_Sign1 that
    /// `coset` reads, and refuses or accepts later).
    fn split(bytes: &'a [u8]) -> Option<Parts<'a>> {
        let rest = bytes.strip_prefix(&[0xd2, 0x84])?;
        let (protected, rest) = cbor::split_byte_string(rest)?;
        let fields = protected.strip_prefix(&[0xa3, 0x01, 0x27, 0x03])?;
        let (content_type, fields) = cbor::split_text_string(fields)?;
        let fields = fields.strip_prefix(&[0x04])?;
        let (kid, fields) = cbor::split_byte_string(fields)?;
        if !fields.is_empty() {
            return None;
        }
        let (unprotected, rest) = match rest.split_first()? {
            (0xa0, rest) => (None, rest),
            (0xa1, rest) => {
                let (label, rest) = match cbor::split_head(rest)? {
                    (0, n, after) => (i64::try_from(n).ok()?, after),
                    (1, n, after) => (-1 - i64::try_from(n).ok()?, after),
                    _ => return None,
                };
                let (value, rest) = cbor::split_item(rest)?;
                (Some((label, value)), rest)
            }
            _ => return None,
        };
        let (payload, rest) = cbor::split_byte_string(rest)?;
        let (signature, rest) = cbor::split_byte_string(rest)?;
        rest.is_empty().then_some(Parts {
            content_type,
            kid,
            unprotected,
            payload,
            signature,
        })
    }
}

impl<'a> Parsed1<'a> {
    /// Parses `bytes`; `what` names the structure in errors.
    pub(crate) fn parse(bytes: &'a [u8], what: &'static str) -> Result<Self, OpenError> {
        if let Some(parts) = Parts::split(bytes) {
            return Ok(Parsed1 {
                bytes,
                form: Form1::Direct(parts),
                what,
            });
        }
        Ok(Parsed1 {
            bytes,
            form: Form1::Coset(Box::new(coset_parse(bytes, what)?)),
            what,
        })
    }

    /// The content type it declares, unchecked.
    pub(crate) fn content_type(&self) -> Option<&str> {
        match &self.form {
            Form1::Direct(parts) => Some(parts.content_type),
            Form1::Coset(sign1) => match &sign1.protected.header.content_type {
                Some(coset::ContentType::Text(ct)) => Some(ct),
                _ => None,
            },
        }
    }

    /// Checks the profile (content type `content_type`; for a batched
    /// form, `label` given: that one unprotected field, alone, which is
    /// returned unverified, as it is not signed) and the encoding, and
    /// verifies the signature with the key `kid` names, checked by `sigs`
    /// ([`crate::batch::Strict`] on the spot).
    pub(crate) fn verify(
        self,
        content_type: &str,
        keys: &dyn KeyLookup,
        sigs: &dyn SignatureCheck,
        label: Option<i64>,
    ) -> Result<(Verified1, Option<Field<'a>>), OpenError> {
        let Parsed1 { bytes, form, what } = self;
        let expected = Expected {
            content_type,
            keys,
            what,
            sigs,
            label,
        };
        match form {
            Form1::Direct(parts) => verify_parts(bytes, parts, &expected),
            Form1::Coset(sign1) => verify_parsed(bytes, *sign1, &expected),
        }
    }
}

/// What a verification expects of a COSE_Sign1 and checks it with.
struct Expected<'a> {
    /// The content type it must declare.
    content_type: &'a str,
    keys: &'a dyn KeyLookup,
    /// The structure, as errors name it.
    what: &'static str,
    sigs: &'a dyn SignatureCheck,
    /// The one unprotected field's label of a batched form; `None`: the
    /// unprotected header must be empty.
    label: Option<i64>,
}

/// [`Parsed1::verify`] of `bytes` cut into `parts`: the checks of
/// [`verify_parsed`], on parts the profile's layout already fixes (the
/// algorithm, no other header field, the payload attached). A COSE_Sign1
/// these refuse goes through `coset` and [`verify_parsed`] again, so that
/// the refusal names what is wrong as it always did.
fn verify_parts<'a>(
    bytes: &'a [u8],
    parts: Parts<'a>,
    expected: &Expected<'_>,
) -> Result<(Verified1, Option<Field<'a>>), OpenError> {
    let (content_type, label) = (expected.content_type, expected.label);
    let kid = KeyId::from_slice(parts.kid).ok();
    let unprotected = match (label, parts.unprotected) {
        (None, None) => Some(None),
        (Some(label), Some((l, value))) if l == label => Some(Some(value)),
        _ => None,
    };
    let (Some(kid), Some(unprotected), true) =
        (kid, unprotected, parts.content_type == content_type)
    else {
        return refused_by_coset(bytes, expected);
    };
    // One encoding only: rebuild from the parts and compare.
    let protected = protected_bytes(content_type, &kid);
    let rebuilt = assemble(
        &protected,
        label.zip(unprotected),
        parts.payload,
        parts.signature,
    );
    if rebuilt != bytes {
        return refused_by_coset(bytes, expected);
    }
    let (keys, sigs) = (expected.keys, expected.sigs);
    let key = signed_by(kid, &protected, parts.payload, parts.signature, keys, sigs)?;
    let payload = parts.payload.to_vec();
    Ok((Verified1 { kid, key, payload }, unprotected.map(Field::Raw)))
}

/// The answer of the `coset` path for bytes the direct one refuses.
fn refused_by_coset<'a>(
    bytes: &'a [u8],
    expected: &Expected<'_>,
) -> Result<(Verified1, Option<Field<'a>>), OpenError> {
    verify_parsed(bytes, coset_parse(bytes, expected.what)?, expected)
}

/// `bytes` parsed by `coset`, or why not.
fn coset_parse(bytes: &[u8], what: &'static str) -> Result<CoseSign1, OpenError> {
    CoseSign1::from_tagged_slice(bytes).map_err(|e| OpenError::Malformed {
        what,
        reason: format!("not a tagged COSE_Sign1: {e}"),
    })
}

/// The key `kid` names, once it has checked `signature` over the
/// `Sig_structure` of `protected` (the bytes received: the whole was
/// compared with its rebuilt form) and `payload`.
fn signed_by(
    kid: KeyId,
    protected: &[u8],
    payload: &[u8],
    signature: &[u8],
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<PublicKey, OpenError> {
    let key = keys.lookup(&kid).ok_or(OpenError::UnknownKey(kid))?;
    if KeyId::of(&key.key) != kid {
        // The lookup answered with a key of another id: never trust it.
        return Err(OpenError::UnknownKey(kid));
    }
    let signature = Signature::from_slice(signature).map_err(|_| OpenError::BadSignature(kid))?;
    sigs.check(&key.key, &to_be_signed(protected, payload), &signature)
        .map_err(|_| OpenError::BadSignature(kid))?;
    Ok(key)
}

/// [`Parsed1::verify`] of `bytes` parsed as `sign1`.
fn verify_parsed<'a>(
    bytes: &'a [u8],
    sign1: CoseSign1,
    expected: &Expected<'_>,
) -> Result<(Verified1, Option<Field<'a>>), OpenError> {
    let Expected {
        content_type,
        keys,
        what,
        sigs,
        label,
    } = *expected;
    let malformed = |reason: String| OpenError::Malformed { what, reason };
    let h = &sign1.protected.header;
    match &h.alg {
        Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA)) => {}
        Some(other) => return Err(OpenError::UnsupportedAlgorithm(format!("{other:?}"))),
        None => return Err(malformed("the protected header has no algorithm".into())),
    }
    match &h.content_type {
        Some(coset::ContentType::Text(ct)) if ct == content_type => {}
        other => {
            return Err(malformed(format!(
                "content type {other:?}, expected {content_type:?}"
            )));
        }
    }
    let kid = KeyId::from_slice(&h.key_id).map_err(|e| malformed(e.to_string()))?;
    let extra = !h.crit.is_empty()
        || !h.iv.is_empty()
        || !h.partial_iv.is_empty()
        || !h.counter_signatures.is_empty()
        || !h.rest.is_empty();
    if extra {
        return Err(malformed(
            "headers hold fields outside kurir's profile (only alg, content type and kid, \
             all protected)"
                .into(),
        ));
    }
    let unprotected = match label {
        None if sign1.unprotected.is_empty() => None,
        None => {
            return Err(malformed(
                "the unprotected header must be empty (kurir's profile: alg, content type and \
                 kid, all protected)"
                    .into(),
            ));
        }
        Some(label) => Some(only_field(&sign1.unprotected, label).map_err(malformed)?),
    };
    let Some(payload) = sign1.payload else {
        return Err(malformed("the payload is detached".into()));
    };
    // One encoding only: rebuild from the parts and compare.
    let protected = protected_bytes(content_type, &kid);
    let field = unprotected
        .as_ref()
        .map(cbor::encode_value)
        .transpose()
        .map_err(|e| malformed(e.to_string()))?;
    let rebuilt = assemble(
        &protected,
        label.zip(field.as_deref()),
        &payload,
        &sign1.signature,
    );
    if rebuilt != bytes {
        return Err(OpenError::NonCanonical {
            what,
            source: CborError::NonCanonical,
        });
    }
    let key = signed_by(kid, &protected, &payload, &sign1.signature, keys, sigs)?;
    Ok((
        Verified1 { kid, key, payload },
        unprotected.map(Field::Value),
    ))
}

/// The value of the one field, `label`, of an unprotected header that must
/// hold it and nothing else.
fn only_field(header: &coset::Header, label: i64) -> Result<Value, String> {
    let empty = coset::Header {
        rest: Vec::new(),
        ..header.clone()
    };
    match header.rest.as_slice() {
        [(coset::Label::Int(l), value)] if *l == label && empty.is_empty() => Ok(value.clone()),
        _ => Err(format!(
            "the unprotected header must hold exactly one field, label {label}"
        )),
    }
}

/// The bytes the signature of a tagged COSE_Sign1 covers (`Sig_structure`),
/// for tests that check it against one built by hand.
pub fn sig_structure(envelope: &[u8]) -> Option<Vec<u8>> {
    let sign1 = CoseSign1::from_tagged_slice(envelope).ok()?;
    Some(sign1.tbs_data(b""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coset::{CoseSign1Builder, HeaderBuilder};
    use proptest::prelude::*;

    /// A ring with `key`, RS.MUP's, valid from the epoch on.
    fn ring_of(key: &SigningKey) -> KeyRing {
        let mut keys = KeyRing::new();
        keys.insert(PublicKey {
            authority: "RS.MUP".parse().unwrap(),
            key: key.verifying_key(),
            valid_from: Timestamp(0),
            valid_until: None,
            revoked_at: None,
        });
        keys
    }

    proptest! {
        /// The COSE_Sign1 and the bytes to be signed that kurir writes are
        /// what `coset` builds from the same parts.
        #[test]
        fn the_direct_encoding_is_cosets(
            content_type in "[a-z/+-]{1,40}",
            kid: [u8; 16],
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            signature in proptest::collection::vec(any::<u8>(), 64),
            item in proptest::option::of((
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<u64>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..12),
            )),
        ) {
            let kid = KeyId::from_slice(&kid).unwrap();
            let item = item.map(|(p, i, path)| Value::Array(vec![
                Value::Bytes(p),
                Value::from(i),
                Value::Array(path.into_iter().map(|h| Value::Bytes(h.to_vec())).collect()),
            ]));
            let protected = HeaderBuilder::new()
                .algorithm(iana::Algorithm::EdDSA)
                .content_type(content_type.clone())
                .key_id(kid.as_bytes().to_vec())
                .build();
            let mut open = HeaderBuilder::new();
            if let Some(v) = &item {
                open = open.value(LABEL_IN_BATCH, v.clone());
            }
            let built = CoseSign1Builder::new()
                .protected(protected)
                .unprotected(open.build())
                .payload(payload.clone())
                .signature(signature.clone())
                .build();
            let ours = protected_bytes(&content_type, &kid);
            prop_assert_eq!(to_be_signed(&ours, &payload), built.tbs_data(b""));
            let item = item.map(|v| cbor::encode_value(&v).unwrap());
            let written = assemble(
                &ours,
                item.as_deref().map(|v| (LABEL_IN_BATCH, v)),
                &payload,
                &signature,
            );
            prop_assert_eq!(written, built.to_tagged_vec().unwrap());
        }

        /// Reading a COSE_Sign1 through its parts where they lie gives what
        /// reading it through `coset` gives: the same payload, key and
        /// unprotected field, or the same refusal, for COSE_Sign1s as kurir
        /// signs them (single and batched) and for those bytes changed,
        /// cut short or lengthened.
        #[test]
        fn the_direct_reading_is_cosets(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            batched: bool,
            ours: bool,
            expect_batched: bool,
            item in prop_oneof![
                4 => (
                    proptest::collection::vec(any::<u8>(), 0..100),
                    any::<u64>(),
                    proptest::collection::vec(any::<[u8; 32]>(), 0..6),
                ).prop_map(|(p, i, path)| Value::Array(vec![
                    Value::Bytes(p),
                    Value::from(i),
                    Value::Array(path.into_iter().map(|h| Value::Bytes(h.to_vec())).collect()),
                ])),
                // Values the profile never puts there, which the direct
                // reading leaves to `coset`.
                1 => Just(Value::Map(vec![(Value::from(1u64), Value::from(2u64))])),
                1 => Just(Value::Array(vec![Value::Bool(true), Value::Null])),
                1 => "[a-z]{0,8}".prop_map(Value::Text),
            ],
            change in proptest::option::of((any::<proptest::sample::Index>(), 1u8..=255)),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
            extra in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let ours_key = SigningKey::from_bytes(&[7; 32]);
            let other_key = SigningKey::from_bytes(&[8; 32]);
            let keys = ring_of(&ours_key);
            let key = if ours { &ours_key } else { &other_key };
            let (ct, label) = match batched {
                false => (CONTENT_TYPE_HEADER, None),
                true => (CONTENT_TYPE_HEADER_BATCH, Some(LABEL_IN_BATCH)),
            };
            let bytes = match label {
                None => sign1(ct, payload, key),
                Some(label) => {
                    let value = cbor::encode_value(&item).unwrap();
                    sign1_each(ct, payload, key, label, vec![value]).remove(0)
                }
            };
            let bytes = cbor::mangled(bytes, change, cut, &extra);
            let (want_ct, want_label) = match expect_batched {
                false => (CONTENT_TYPE_HEADER, None),
                true => (CONTENT_TYPE_HEADER_BATCH, Some(LABEL_IN_BATCH)),
            };
            let strict = crate::batch::Strict;
            let direct = Parsed1::parse(&bytes, "envelope").and_then(|p| {
                let ct = p.content_type().map(str::to_owned);
                p.verify(want_ct, &keys, &strict, want_label).map(|v| (ct, v))
            });
            let coset = coset_parse(&bytes, "envelope").and_then(|sign1| {
                    let ct = match &sign1.protected.header.content_type {
                        Some(coset::ContentType::Text(ct)) => Some(ct.clone()),
                        _ => None,
                    };
                    let expected = Expected {
                        content_type: want_ct,
                        keys: &keys,
                        what: "envelope",
                        sigs: &strict,
                        label: want_label,
                    };
                    verify_parsed(&bytes, sign1, &expected)
                        .map(|v| (ct, v))
                });
            match (direct, coset) {
                (Ok((ct_a, (a, ua))), Ok((ct_b, (b, ub)))) => {
                    prop_assert_eq!(ct_a, ct_b);
                    prop_assert_eq!(a.kid, b.kid);
                    prop_assert_eq!(a.key, b.key);
                    prop_assert_eq!(a.payload, b.payload);
                    let value = |f: Option<Field<'_>>| f.map(Field::into_value).transpose();
                    prop_assert_eq!(value(ua), value(ub));
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "direct {:?}, coset {:?}", a.map(|_| ()), b.map(|_| ())),
            }
        }
    }

    /// The direct reading takes what kurir signs, and leaves to `coset`
    /// what is laid out otherwise.
    #[test]
    fn what_kurir_signs_is_read_where_it_lies() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let single = sign1(CONTENT_TYPE_RECEIPT, b"payload".to_vec(), &key);
        let parsed = Parsed1::parse(&single, "receipt").unwrap();
        assert!(matches!(parsed.form, Form1::Direct(_)));
        assert_eq!(parsed.content_type(), Some(CONTENT_TYPE_RECEIPT));
        // A batched one too, its field given as the bytes where they lie;
        // with a field kurir never writes there (a map), `coset` reads it.
        let keys = ring_of(&key);
        let strict = crate::batch::Strict;
        let field = cbor::encode_value(&Value::Array(vec![Value::from(1u64)])).unwrap();
        let map = cbor::encode_value(&Value::Map(vec![])).unwrap();
        let both = sign1_each(
            CONTENT_TYPE_RECEIPT_BATCH,
            b"head".to_vec(),
            &key,
            LABEL_IN_BATCH,
            vec![field.clone(), map],
        );
        // Whether it was read in place, and the field as it comes.
        let read = |bytes| {
            let parsed = Parsed1::parse(bytes, "receipt").unwrap();
            let direct = matches!(parsed.form, Form1::Direct(_));
            let label = Some(LABEL_IN_BATCH);
            let verified = parsed.verify(CONTENT_TYPE_RECEIPT_BATCH, &keys, &strict, label);
            (direct, verified.unwrap().1)
        };
        let (direct, got) = read(&both[0]);
        assert!(direct);
        assert!(matches!(got, Some(Field::Raw(raw)) if raw == &field[..]));
        let (direct, got) = read(&both[1]);
        assert!(!direct);
        assert!(matches!(got, Some(Field::Value(Value::Map(m))) if m.is_empty()));
        // The same COSE_Sign1 with the protected header's length (54) in
        // two bytes instead of one: `coset` reads it, and the verification
        // refuses it.
        assert_eq!(single[2..4], [0x58, 54]);
        let mut long = single.clone();
        long.splice(2..4, [0x59, 0, 54]);
        let parsed = Parsed1::parse(&long, "receipt").unwrap();
        assert!(matches!(parsed.form, Form1::Coset(_)));
        let refused = parsed.verify(CONTENT_TYPE_RECEIPT, &keys, &crate::batch::Strict, None);
        assert!(
            matches!(refused, Err(OpenError::NonCanonical { .. })),
            "{refused:?}"
        );
    }
}
