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

use super::{Field, KeyLookup, LABEL_IN_BATCH, Parsed1, Verified1};
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
    /// The head's deterministic encoding, written field by field (the keys
    /// ascending: they are the integers 0 to 3).
    fn encode(&self) -> Vec<u8> {
        let signer = self.signer.as_str();
        let mut out = Vec::with_capacity(signer.len() + 64);
        cbor::write_head(5, 4, &mut out);
        cbor::write_head(0, key::V, &mut out);
        cbor::write_head(0, VERSION, &mut out);
        cbor::write_head(0, key::SIGNER, &mut out);
        cbor::write_head(3, signer.len() as u64, &mut out);
        out.extend_from_slice(signer.as_bytes());
        cbor::write_head(0, key::SIZE, &mut out);
        cbor::write_head(0, self.size, &mut out);
        cbor::write_head(0, key::ROOT, &mut out);
        cbor::write_head(2, 32, &mut out);
        out.extend_from_slice(&self.root.0);
        out
    }

    /// Decodes and checks a head: in place when it is laid out as
    /// [`Head::encode`] writes it and keeps the rules
    /// (`Head::read_in_place`), through a CBOR value otherwise, whose path
    /// names what is wrong. Both give the same result (a proptest holds
    /// them to it).
    fn decode(form: Form, bytes: &[u8]) -> Result<Head, OpenError> {
        match Head::read_in_place(bytes) {
            Some(head) => Ok(head),
            None => Head::decode_via_value(form, bytes),
        }
    }

    /// The head in `bytes` if they are exactly what [`Head::encode`] writes
    /// for a head that keeps the rules (version 1, a size of at least 1);
    /// `None` for anything else.
    fn read_in_place(bytes: &[u8]) -> Option<Head> {
        let rest = bytes.strip_prefix(&[0xa4, key::V as u8])?;
        let (VERSION, rest) = cbor::split_uint(rest)? else {
            return None;
        };
        let rest = rest.strip_prefix(&[key::SIGNER as u8])?;
        let (signer, rest) = cbor::split_text_string(rest)?;
        let rest = rest.strip_prefix(&[key::SIZE as u8])?;
        let (size @ 1.., rest) = cbor::split_uint(rest)? else {
            return None;
        };
        let rest = rest.strip_prefix(&[key::ROOT as u8])?;
        let (root, rest) = cbor::split_byte_string(rest)?;
        if !rest.is_empty() {
            return None;
        }
        Some(Head {
            signer: AuthorityId::parse(signer).ok()?,
            size,
            root: Digest(root.try_into().ok()?),
        })
    }

    /// [`Head::decode`] through a CBOR value.
    fn decode_via_value(form: Form, bytes: &[u8]) -> Result<Head, OpenError> {
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
    let items = payloads
        .iter()
        .zip(merkle::inclusion_proofs(&leaves))
        .enumerate()
        .map(|(i, (payload, path))| Item::encode(payload, i as u64, &path))
        .collect();
    Ok(super::sign1_each(
        form.content_type,
        head.encode(),
        key,
        LABEL_IN_BATCH,
        items,
    ))
}

/// One payload of a batch, as its unprotected field carries it.
#[derive(Debug, PartialEq)]
struct Item {
    payload: Vec<u8>,
    index: u64,
    path: Vec<Digest>,
}

impl Item {
    /// The field's deterministic encoding: `[payload, index, path]`.
    fn encode(payload: &[u8], index: u64, path: &[Digest]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 34 * path.len() + 24);
        cbor::write_head(4, 3, &mut out);
        cbor::write_head(2, payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        cbor::write_head(0, index, &mut out);
        cbor::write_head(4, path.len() as u64, &mut out);
        for hash in path {
            cbor::write_head(2, 32, &mut out);
            out.extend_from_slice(&hash.0);
        }
        out
    }

    /// Decodes the field as the reading that verified it holds it: its
    /// bytes in place when they are laid out as [`Item::encode`] writes
    /// them (`Item::read_in_place`), through a CBOR value otherwise, whose
    /// path names what is wrong (a proptest holds the two to the same
    /// result).
    fn decode_field(form: Form, field: Field<'_>) -> Result<Item, OpenError> {
        if let Field::Raw(bytes) = &field
            && let Some(item) = Item::read_in_place(bytes)
        {
            return Ok(item);
        }
        let value = field
            .into_value()
            .map_err(|e| malformed(form, format!("unprotected field {LABEL_IN_BATCH}: {e}")))?;
        Item::decode(form, value)
    }

    /// The item in `bytes` if they are exactly what [`Item::encode`]
    /// writes; `None` for anything else.
    fn read_in_place(bytes: &[u8]) -> Option<Item> {
        let rest = bytes.strip_prefix(&[0x83])?;
        let (payload, rest) = cbor::split_byte_string(rest)?;
        let (index, rest) = cbor::split_uint(rest)?;
        let (4, n, mut rest) = cbor::split_head(rest)? else {
            return None;
        };
        // Each hash takes 33 bytes: `n` is bounded by what is there.
        let mut path = Vec::with_capacity(usize::try_from(n).ok()?.min(rest.len() / 33));
        for _ in 0..n {
            let (hash, after) = cbor::split_byte_string(rest)?;
            path.push(Digest(hash.try_into().ok()?));
            rest = after;
        }
        rest.is_empty().then(|| Item {
            payload: payload.to_vec(),
            index,
            path,
        })
    }

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
    let item = Item::decode_field(form, item)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FORM: Form = Form {
        content_type: super::super::CONTENT_TYPE_HEADER_BATCH,
        what: "envelope",
        head: "envelope batch head",
        signer: "from",
    };

    /// The head and the item through a CBOR value, as they were written
    /// before they were written field by field.
    fn head_via_value(v: u64, signer: &str, size: u64, root: &[u8]) -> Vec<u8> {
        let map = vec![
            (Value::from(key::V), Value::from(v)),
            (Value::from(key::SIGNER), Value::Text(signer.to_owned())),
            (Value::from(key::SIZE), Value::from(size)),
            (Value::from(key::ROOT), Value::Bytes(root.to_vec())),
        ];
        cbor::encode_value(&Value::Map(map)).unwrap()
    }

    fn item_via_value(payload: &[u8], index: u64, path: &[Vec<u8>]) -> Value {
        Value::Array(vec![
            Value::Bytes(payload.to_vec()),
            Value::from(index),
            Value::Array(path.iter().map(|h| Value::Bytes(h.clone())).collect()),
        ])
    }

    proptest! {
        /// A head is written field by field as through a CBOR value, and
        /// read in place as through one: the same head or the same
        /// refusal, as written and with its bytes changed, cut short or
        /// lengthened.
        #[test]
        fn the_head_in_place_is_the_head_through_a_value(
            v in prop_oneof![4 => Just(VERSION), 1 => 0u64..3],
            signer in prop_oneof![Just("RS.MUP"), Just("ME.UP"), Just("not an id")],
            size in prop_oneof![4 => 1u64..600, 1 => Just(0u64), 1 => any::<u64>()],
            root in prop_oneof![4 => Just(32usize), 1 => 0usize..40],
            change in proptest::option::of((any::<proptest::sample::Index>(), 1u8..=255)),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
            more in proptest::collection::vec(any::<u8>(), 0..2),
        ) {
            let bytes = head_via_value(v, signer, size, &vec![9; root]);
            if v == VERSION && root == 32 && let Ok(signer) = AuthorityId::parse(signer) {
                let head = Head { signer, size, root: Digest([9; 32]) };
                prop_assert_eq!(&head.encode(), &bytes);
            }
            let bytes = cbor::mangled(bytes, change, cut, &more);
            cbor::same_reading(Head::decode(FORM, &bytes), Head::decode_via_value(FORM, &bytes))?;
        }

        /// An item is written field by field as through a CBOR value, and
        /// read in place as through one (`Item::decode_field` of its bytes
        /// and of its value): the same item or the same refusal.
        #[test]
        fn the_item_in_place_is_the_item_through_a_value(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            index in any::<u64>(),
            path in proptest::collection::vec(
                prop_oneof![9 => Just(32usize), 1 => 0usize..40]
                    .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
                0..10,
            ),
            change in proptest::option::of((any::<proptest::sample::Index>(), 1u8..=255)),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
            more in proptest::collection::vec(any::<u8>(), 0..2),
        ) {
            let bytes = cbor::encode_value(&item_via_value(&payload, index, &path)).unwrap();
            if path.iter().all(|h| h.len() == 32) {
                let digests: Vec<Digest> =
                    path.iter().map(|h| Digest(h[..].try_into().unwrap())).collect();
                prop_assert_eq!(&Item::encode(&payload, index, &digests), &bytes);
                prop_assert!(Item::read_in_place(&bytes).is_some());
            }
            let bytes = cbor::mangled(bytes, change, cut, &more);
            // The field as the direct reading cuts it, when it does.
            if let Some((raw, [])) = cbor::split_item(&bytes) {
                let value = cbor::decode_value(raw).unwrap();
                cbor::same_reading(
                    Item::decode_field(FORM, Field::Raw(raw)),
                    Item::decode(FORM, value),
                )?;
            }
        }
    }
}
