//! Receipts signed in batches (`docs/PROTOCOL.md` §10.1).
//!
//! A batched receipt is one COSE_Sign1 (content type
//! [`CONTENT_TYPE_RECEIPT_BATCH`]) whose signed payload is the **batch
//! head**, a deterministic-CBOR map with integer keys:
//!
//! | key | field      | CBOR type | meaning                                   |
//! |-----|------------|-----------|-------------------------------------------|
//! | 0   | `v`        | uint, = 1 | version                                   |
//! | 1   | `receiver` | tstr      | the authority that signs every receipt    |
//! | 2   | `size`     | uint ≥ 1  | how many receipts the batch holds         |
//! | 3   | `root`     | bstr, 32  | RFC 9162 Merkle tree hash of the receipts |
//!
//! The unprotected header holds one field, label
//! [`LABEL_RECEIPT_IN_BATCH`] (−65537): `[receipt, index, path]`, the
//! receipt's own §10 payload (bstr), its place in the batch (uint) and its
//! inclusion path (array of bstr 32, leaf upwards). Leaves are
//! `SHA-256(0x00 ‖ receipt)`, inner nodes `SHA-256(0x01 ‖ l ‖ r)`
//! ([`crate::merkle`]). Every receipt of a batch carries the same head and
//! signature, so a verifier that remembers signatures
//! ([`crate::batch::Remembered`]) checks the signature once per batch.

use ciborium::value::Value;
use ed25519_dalek::SigningKey;

use super::{Receipt, authority, bytes_n, malformed, uint};
use crate::batch::SignatureCheck;
use crate::cbor::{self, CborError, FieldError, IntMap};
use crate::cose::{self, CONTENT_TYPE_RECEIPT_BATCH, KeyLookup, LABEL_RECEIPT_IN_BATCH, Verified1};
use crate::digest::Digest;
use crate::error::{OpenError, SealError};
use crate::header::VERSION;
use crate::ids::AuthorityId;
use crate::merkle;

mod key {
    pub(super) const V: u64 = 0;
    pub(super) const RECEIVER: u64 = 1;
    pub(super) const SIZE: u64 = 2;
    pub(super) const ROOT: u64 = 3;
}

/// The signed part of a batch: who signs, how many receipts, their root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    receiver: AuthorityId,
    size: u64,
    root: Digest,
}

impl Head {
    fn encode(&self) -> Result<Vec<u8>, SealError> {
        let map = vec![
            (Value::from(key::V), Value::from(VERSION)),
            (
                Value::from(key::RECEIVER),
                Value::Text(self.receiver.as_str().to_owned()),
            ),
            (Value::from(key::SIZE), Value::from(self.size)),
            (Value::from(key::ROOT), Value::Bytes(self.root.0.to_vec())),
        ];
        cbor::encode_value(&Value::Map(map)).map_err(|e| SealError::Receipt(e.to_string()))
    }

    fn decode(bytes: &[u8]) -> Result<Head, OpenError> {
        let bad = |reason: String| malformed(format!("batch head: {reason}"));
        let value = cbor::decode_value(bytes).map_err(|e| match e {
            CborError::NonCanonical | CborError::DuplicateKey => OpenError::NonCanonical {
                what: "receipt batch head",
                source: e,
            },
            e => bad(e.to_string()),
        })?;
        let field = |e: FieldError| bad(e.to_string());
        let mut m = IntMap::new(value).map_err(field)?;
        let v = uint(m.need(key::V, "v").map_err(field)?, "v")?;
        if v != VERSION {
            return Err(OpenError::UnsupportedVersion(v));
        }
        let head = Head {
            receiver: authority(
                m.need(key::RECEIVER, "receiver").map_err(field)?,
                "receiver",
            )?,
            size: uint(m.need(key::SIZE, "size").map_err(field)?, "size")?,
            root: Digest(bytes_n(m.need(key::ROOT, "root").map_err(field)?, "root")?),
        };
        m.finish().map_err(field)?;
        if head.size == 0 {
            return Err(bad("size must be at least 1".into()));
        }
        Ok(head)
    }
}

/// Signs receipts of one receiver as a batch: one signature over the head,
/// one COSE_Sign1 per receipt, in order.
pub(super) fn seal_batch(
    receipts: &[Receipt],
    key: &SigningKey,
) -> Result<Vec<Vec<u8>>, SealError> {
    let Some(first) = receipts.first() else {
        return Ok(Vec::new());
    };
    if let Some(other) = receipts.iter().find(|r| r.receiver != first.receiver) {
        return Err(SealError::Receipt(format!(
            "a batch holds receipts of one receiver, not {} and {}",
            first.receiver, other.receiver
        )));
    }
    let payloads = receipts
        .iter()
        .map(Receipt::encode)
        .collect::<Result<Vec<_>, _>>()?;
    let leaves: Vec<Digest> = payloads.iter().map(|p| merkle::leaf_hash(p)).collect();
    let head = Head {
        receiver: first.receiver.clone(),
        size: leaves.len() as u64,
        root: merkle::root(&leaves),
    };
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
    cose::sign1_each(
        CONTENT_TYPE_RECEIPT_BATCH,
        head.encode()?,
        key,
        LABEL_RECEIPT_IN_BATCH,
        items,
    )
}

/// One receipt of a batch, as its unprotected field carries it.
struct Item {
    payload: Vec<u8>,
    index: u64,
    path: Vec<Digest>,
}

impl Item {
    fn decode(value: Value) -> Result<Item, OpenError> {
        let bad = |reason: &str| {
            malformed(format!(
                "unprotected field {LABEL_RECEIPT_IN_BATCH}: {reason} (expected [receipt, \
                 index, path])"
            ))
        };
        let Value::Array(parts) = value else {
            return Err(bad("not an array"));
        };
        let [payload, index, path] = <[Value; 3]>::try_from(parts)
            .map_err(|_| bad("an array of three items is expected"))?;
        let Value::Bytes(payload) = payload else {
            return Err(bad("the receipt is not a byte string"));
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

/// Verifies one batched receipt: the signature over the head, that the
/// receipt is leaf `index` of the head's tree, and that it names the head's
/// receiver. The caller checks the key against the receiver and the time.
pub(super) fn open(
    parsed: cose::Parsed1<'_>,
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<(Receipt, Verified1), OpenError> {
    let (signed, item) = parsed.verify(
        CONTENT_TYPE_RECEIPT_BATCH,
        keys,
        sigs,
        Some(LABEL_RECEIPT_IN_BATCH),
    )?;
    let item = item.ok_or_else(|| malformed("the batched receipt has no receipt".into()))?;
    let head = Head::decode(&signed.payload)?;
    let item = Item::decode(item)?;
    if item.index >= head.size {
        return Err(malformed(format!(
            "index {} is outside the batch of {}",
            item.index, head.size
        )));
    }
    let leaf = merkle::leaf_hash(&item.payload);
    merkle::verify_inclusion(&leaf, item.index, head.size, &item.path, &head.root).map_err(
        |e| {
            malformed(format!(
                "the receipt is not receipt {} of the signed batch: {e}",
                item.index
            ))
        },
    )?;
    let receipt = Receipt::decode(&item.payload)?;
    if receipt.receiver != head.receiver {
        return Err(malformed(format!(
            "the receipt names {} as the receiver, its batch {}",
            receipt.receiver, head.receiver
        )));
    }
    Ok((receipt, signed))
}

/// The receipt a batched receipt carries, **without verifying anything**.
pub(super) fn payload_unverified(sign1: coset::CoseSign1) -> Option<Vec<u8>> {
    let value = cose::unverified_field(sign1, LABEL_RECEIPT_IN_BATCH)?;
    Item::decode(value).ok().map(|item| item.payload)
}
