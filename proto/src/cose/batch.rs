//! Payloads signed in batches: one signature over the Merkle root of many
//! payloads, each payload still verifiable alone (`docs/PROTOCOL.md` §6.1
//! for envelopes, §10.1 for receipts).
//!
//! A batched payload is one COSE_Sign1 of kurir's profile whose content type
//! names the batch form ([`Form`]) and whose signed payload is the **batch
//! head**, a deterministic-CBOR map with integer keys:
//!
//! | key | field    | CBOR type | meaning                                   |
//! |-----|----------|-----------|-------------------------------------------|
//! | 0   | `v`      | uint, = 1 | version                                   |
//! | 1   | signer   | tstr      | the authority whose key signs (`from` of every header, `receiver` of every receipt) |
//! | 2   | `size`   | uint ≥ 1  | how many payloads the batch holds         |
//! | 3   | `root`   | bstr, 32  | RFC 9162 Merkle tree hash of the payloads |
//!
//! The unprotected header holds one field, label [`LABEL_IN_BATCH`]
//! (−65537): `[payload, index, path]`, the payload's own bytes (bstr), its
//! place in the batch (uint) and its inclusion path (array of bstr 32, leaf
//! upwards). Leaves are `SHA-256(0x00 ‖ payload)`, inner nodes
//! `SHA-256(0x01 ‖ l ‖ r)` ([`crate::merkle`]). Every payload of a batch
//! carries the same head and signature, so a verifier that remembers
//! signatures ([`crate::batch::Remembered`]) checks the signature once per
//! batch.

use ciborium::value::Value;
use ed25519_dalek::SigningKey;

use super::{KeyLookup, LABEL_IN_BATCH, Parsed1, Verified1};
use crate::batch::SignatureCheck;
use crate::cbor::{self, CborError, FieldError, IntMap};
use crate::digest::Digest;
use crate::error::{OpenError, SealError};
use crate::header::VERSION;
use crate::ids::AuthorityId;
use crate::merkle;

mod key {
    pub(super) const V: u64 = 0;
    pub(super) const SIGNER: u64 = 1;
    pub(super) const SIZE: u64 = 2;
    pub(super) const ROOT: u64 = 3;
}

/// What a batch holds: its content type and the names its errors use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Form {
    /// The content type of the batched COSE_Sign1.
    pub(crate) content_type: &'static str,
    /// The structure, as errors name it ("envelope", "receipt").
    pub(crate) what: &'static str,
    /// The head, as a non-canonical encoding's error names it.
    pub(crate) head: &'static str,
    /// The name of head field 1 (the signing authority).
    pub(crate) signer: &'static str,
}

/// The signed part of a batch: who signs, how many payloads, their root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    signer: AuthorityId,
    size: u64,
    root: Digest,
}

impl Head {
    fn encode(&self) -> Result<Vec<u8>, CborError> {
        let map = vec![
            (Value::from(key::V), Value::from(VERSION)),
            (
                Value::from(key::SIGNER),
                Value::Text(self.signer.as_str().to_owned()),
            ),
            (Value::from(key::SIZE), Value::from(self.size)),
            (Value::from(key::ROOT), Value::Bytes(self.root.0.to_vec())),
        ];
        cbor::encode_value(&Value::Map(map))
    }

    fn decode(form: Form, bytes: &[u8]) -> Result<Head, OpenError> {
        let bad = |reason: String| malformed(form, format!("batch head: {reason}"));
        let value = cbor::decode_value(bytes).map_err(|e| match e {
            CborError::NonCanonical | CborError::DuplicateKey => OpenError::NonCanonical {
                what: form.head,
                source: e,
            },
            e => bad(e.to_string()),
        })?;
        let field = |e: FieldError| bad(e.to_string());
        let mut m = IntMap::new(value).map_err(field)?;
        let v = uint(form, m.need(key::V, "v").map_err(field)?, "v")?;
        if v != VERSION {
            return Err(OpenError::UnsupportedVersion(v));
        }
        let signer = match m.need(key::SIGNER, form.signer).map_err(field)? {
            Value::Text(s) => {
                AuthorityId::parse(&s).map_err(|e| bad(format!("{}: {e}", form.signer)))?
            }
            _ => return Err(bad(format!("{}: expected a text string", form.signer))),
        };
        let size = uint(form, m.need(key::SIZE, "size").map_err(field)?, "size")?;
        let root = match m.need(key::ROOT, "root").map_err(field)? {
            Value::Bytes(b) => <[u8; 32]>::try_from(b).ok().map(Digest),
            _ => None,
        }
        .ok_or_else(|| bad("root: expected a byte string of 32 bytes".into()))?;
        m.finish().map_err(field)?;
        if size == 0 {
            return Err(bad("size must be at least 1".into()));
        }
        Ok(Head { signer, size, root })
    }
}

fn malformed(form: Form, reason: String) -> OpenError {
    OpenError::Malformed {
        what: form.what,
        reason,
    }
}

fn uint(form: Form, v: Value, name: &str) -> Result<u64, OpenError> {
    match v {
        Value::Integer(i) => u64::try_from(i).ok(),
        _ => None,
    }
    .ok_or_else(|| malformed(form, format!("{name}: expected an unsigned integer")))
}

/// Signs `payloads` (at least one) of `signer` as a batch: one signature
/// over the head, one COSE_Sign1 per payload, in order.
pub(crate) fn seal(
    form: Form,
    signer: &AuthorityId,
    payloads: Vec<Vec<u8>>,
    key: &SigningKey,
) -> Result<Vec<Vec<u8>>, SealError> {
    let leaves: Vec<Digest> = payloads.iter().map(|p| merkle::leaf_hash(p)).collect();
    let head = Head {
        signer: signer.clone(),
        size: leaves.len() as u64,
        root: merkle::root(&leaves),
    };
    let head = head
        .encode()
        .map_err(|e| SealError::Cose(format!("the {} batch head: {e}", form.what)))?;
    let items = payloads
        .into_iter()
        .zip(merkle::inclusion_proofs(&leaves))
        .enumerate()
        .map(|(i, (payload, path))| {
            Value::Array(vec![
                Value::Bytes(payload),
                Value::from(i as u64),
                Value::Array(
                    path.into_iter()
                        .map(|h| Value::Bytes(h.0.to_vec()))
                        .collect(),
                ),
            ])
        })
        .collect();
    super::sign1_each(form.content_type, head, key, LABEL_IN_BATCH, items)
}

/// One payload of a batch, as its unprotected field carries it.
struct Item {
    payload: Vec<u8>,
    index: u64,
    path: Vec<Digest>,
}

impl Item {
    fn decode(form: Form, value: Value) -> Result<Item, OpenError> {
        let what = form.what;
        let bad = |reason: &str| {
            malformed(
                form,
                format!(
                    "unprotected field {LABEL_IN_BATCH}: {reason} (expected [{what}, index, \
                     path])"
                ),
            )
        };
        let Value::Array(parts) = value else {
            return Err(bad("not an array"));
        };
        let [payload, index, path] = <[Value; 3]>::try_from(parts)
            .map_err(|_| bad("an array of three items is expected"))?;
        let Value::Bytes(payload) = payload else {
            return Err(bad(&format!("the {what} is not a byte string")));
        };
        let index = match index {
            Value::Integer(i) => u64::try_from(i).ok(),
            _ => None,
        }
        .ok_or_else(|| bad("the index is not an unsigned integer"))?;
        let Value::Array(path) = path else {
            return Err(bad("the path is not an array"));
        };
        let path = path
            .into_iter()
            .map(|h| match h {
                Value::Bytes(b) => <[u8; 32]>::try_from(b).ok().map(Digest),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("the path holds an item that is not a 32-byte string"))?;
        Ok(Item {
            payload,
            index,
            path,
        })
    }
}

/// A batched payload whose signature and inclusion have been checked.
pub(crate) struct Opened {
    /// The payload's bytes (a header, a receipt), not decoded yet.
    pub(crate) payload: Vec<u8>,
    /// The authority the head names as its signer.
    pub(crate) signer: AuthorityId,
    /// The signature's key (its payload is the head).
    pub(crate) signed: Verified1,
}

/// Verifies one batched payload: the profile with its one unprotected
/// field, the signature over the head, and that the payload is leaf
/// `index` of the head's tree. The caller decodes the payload and checks
/// that it names the head's signer, the key's owner and the time.
pub(crate) fn open(
    form: Form,
    parsed: Parsed1<'_>,
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<Opened, OpenError> {
    let (signed, item) = parsed.verify(form.content_type, keys, sigs, Some(LABEL_IN_BATCH))?;
    let item =
        item.ok_or_else(|| malformed(form, format!("the batched {} is missing", form.what)))?;
    let head = Head::decode(form, &signed.payload)?;
    let item = Item::decode(form, item)?;
    if item.index >= head.size {
        return Err(malformed(
            form,
            format!("index {} is outside the batch of {}", item.index, head.size),
        ));
    }
    let leaf = merkle::leaf_hash(&item.payload);
    merkle::verify_inclusion(&leaf, item.index, head.size, &item.path, &head.root).map_err(
        |e| {
            malformed(
                form,
                format!(
                    "the {} is not {} {} of the signed batch: {e}",
                    form.what, form.what, item.index
                ),
            )
        },
    )?;
    Ok(Opened {
        payload: item.payload,
        signer: head.signer,
        signed,
    })
}

/// The payload a batched COSE_Sign1 carries, **without verifying anything**.
pub(crate) fn payload_unverified(form: Form, sign1: coset::CoseSign1) -> Option<Vec<u8>> {
    let value = super::unverified_field(sign1, LABEL_IN_BATCH)?;
    Item::decode(form, value).ok().map(|item| item.payload)
}
