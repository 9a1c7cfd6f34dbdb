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
//! payload, or bytes that differ from the encoding `sign1` produces.

use std::collections::HashMap;

use coset::{CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::batch::SignatureCheck;
use crate::cbor::CborError;
use crate::error::{OpenError, SealError};
use crate::ids::{AuthorityId, KeyId};
use crate::time::Timestamp;

/// COSE content type of an envelope's payload, the message header.
pub const CONTENT_TYPE_HEADER: &str = "application/kurir-header+cbor";
/// COSE content type of a receipt's payload.
pub const CONTENT_TYPE_RECEIPT: &str = "application/kurir-receipt+cbor";

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

/// Builds the tagged COSE_Sign1 bytes for a payload and a finished signature.
fn assemble(
    content_type: &str,
    kid: &KeyId,
    payload: Vec<u8>,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, coset::CoseError> {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(content_type.to_owned())
        .key_id(kid.as_bytes().to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", sign)
        .build()
        .to_tagged_vec()
}

/// Signs `payload` with `key` into a tagged COSE_Sign1.
pub(crate) fn sign1(
    content_type: &str,
    payload: Vec<u8>,
    key: &SigningKey,
) -> Result<Vec<u8>, SealError> {
    let kid = KeyId::of(&key.verifying_key());
    assemble(content_type, &kid, payload, |tbs| {
        key.sign(tbs).to_bytes().to_vec()
    })
    .map_err(|e| SealError::Cose(e.to_string()))
}

/// A COSE_Sign1 whose signature has been verified.
#[derive(Debug, Clone)]
pub(crate) struct Verified1 {
    pub(crate) kid: KeyId,
    pub(crate) key: PublicKey,
    pub(crate) payload: Vec<u8>,
}

/// Parses a tagged COSE_Sign1 in kurir's profile and verifies its signature.
///
/// `what` names the structure in errors ("envelope", "receipt"); `sigs`
/// checks the signature ([`crate::batch::Strict`] on the spot).
pub(crate) fn verify1(
    bytes: &[u8],
    content_type: &str,
    keys: &dyn KeyLookup,
    what: &'static str,
    sigs: &dyn SignatureCheck,
) -> Result<Verified1, OpenError> {
    let malformed = |reason: String| OpenError::Malformed { what, reason };
    let sign1 = CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| malformed(format!("not a tagged COSE_Sign1: {e}")))?;
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
    if extra || !sign1.unprotected.is_empty() {
        return Err(malformed(
            "headers hold fields outside kurir's profile (only alg, content type and kid, \
             all protected)"
                .into(),
        ));
    }
    let Some(payload) = sign1.payload.clone() else {
        return Err(malformed("the payload is detached".into()));
    };
    // One encoding only: rebuild from the parts and compare.
    let signature = sign1.signature.clone();
    let rebuilt = assemble(content_type, &kid, payload.clone(), |_| signature)
        .map_err(|e| malformed(e.to_string()))?;
    if rebuilt != bytes {
        return Err(OpenError::NonCanonical {
            what,
            source: CborError::NonCanonical,
        });
    }
    let key = keys.lookup(&kid).ok_or(OpenError::UnknownKey(kid))?;
    if KeyId::of(&key.key) != kid {
        // The lookup answered with a key of another id: never trust it.
        return Err(OpenError::UnknownKey(kid));
    }
    sign1
        .verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| ())?;
            sigs.check(&key.key, tbs, &sig).map_err(|_| ())
        })
        .map_err(|()| OpenError::BadSignature(kid))?;
    Ok(Verified1 { kid, key, payload })
}

/// The bytes the signature of a tagged COSE_Sign1 covers (`Sig_structure`),
/// for tests that check it against one built by hand.
pub fn sig_structure(envelope: &[u8]) -> Option<Vec<u8>> {
    let sign1 = CoseSign1::from_tagged_slice(envelope).ok()?;
    Some(sign1.tbs_data(b""))
}
