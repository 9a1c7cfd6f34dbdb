//! Signed delivery receipts and rejections.
//!
//! The receiving relay answers every parcel with a receipt: a COSE_Sign1
//! (content type `application/kurir-receipt+cbor`) over a deterministic-CBOR
//! map with integer keys:
//!
//! | key | field             | CBOR type            | presence                     |
//! |-----|-------------------|----------------------|------------------------------|
//! | 0   | `v`               | uint, = 1            | always                       |
//! | 1   | `msg_id`          | bstr, 16             | when the header could be read|
//! | 2   | `envelope_digest` | bstr, 32             | always                       |
//! | 3   | `sender`          | tstr                 | always                       |
//! | 4   | `receiver`        | tstr                 | always                       |
//! | 5   | `received_at`     | uint (Unix ms)       | always                       |
//! | 6   | `status`          | tstr                 | `accepted` or `rejected`     |
//! | 7   | `reason`          | tstr (reject code)   | iff rejected                 |
//! | 8   | `detail`          | tstr                 | optional, rejected only      |
//! | 9   | `log_index`       | uint                 | optional                     |
//! | 10  | `leaf_hash`       | bstr, 32             | optional                     |
//!
//! A duplicate delivery gets the *original* receipt back, byte for byte.
//!
//! Receipts of one group commit may be signed together ([`seal_receipts`],
//! `docs/PROTOCOL.md` §10.1): each is then a COSE_Sign1 of content type
//! `application/kurir-receipt-batch+cbor` that carries the receipt with its
//! Merkle path to the signed batch head. [`open_receipt`] and
//! [`receipt_unverified`] take both forms.
//!
//! # Layout
//!
//! - this file: [`Receipt`], its encoding, sealing and opening;
//! - `batch`: the batched form (head, path, verification).

mod batch;

use ciborium::value::Value;
use ed25519_dalek::SigningKey;

use crate::batch::{SignatureCheck, Strict};
use crate::cbor::{self, CborError, FieldError, IntMap};
use crate::cose::{self, CONTENT_TYPE_RECEIPT, CONTENT_TYPE_RECEIPT_BATCH, KeyLookup};
use crate::digest::Digest;
use crate::error::{OpenError, RejectCode, SealError};
use crate::header::VERSION;
use crate::ids::{AuthorityId, KeyId, MessageId};
use crate::time::Timestamp;

/// The longest `detail` text, in bytes.
pub const MAX_DETAIL: usize = 1024;

mod key {
    pub(super) const V: u64 = 0;
    pub(super) const MSG_ID: u64 = 1;
    pub(super) const ENVELOPE_DIGEST: u64 = 2;
    pub(super) const SENDER: u64 = 3;
    pub(super) const RECEIVER: u64 = 4;
    pub(super) const RECEIVED_AT: u64 = 5;
    pub(super) const STATUS: u64 = 6;
    pub(super) const REASON: u64 = 7;
    pub(super) const DETAIL: u64 = 8;
    pub(super) const LOG_INDEX: u64 = 9;
    pub(super) const LEAF_HASH: u64 = 10;
}

/// Accepted, or rejected with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Stored durably and in the recipient's inbox.
    Accepted,
    /// Refused; nothing was delivered.
    Rejected {
        /// Machine-readable reason.
        reason: RejectCode,
        /// Human-readable detail (no personal data).
        detail: Option<String>,
    },
}

/// What the receiving relay attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message, if its header could be read.
    pub msg_id: Option<MessageId>,
    /// [`Digest::of_envelope`] of the envelope received, or of the whole
    /// received bytes when they did not even decode as a parcel.
    pub envelope_digest: Digest,
    /// The authority that sent the parcel (the TLS peer).
    pub sender: AuthorityId,
    /// The authority that signs this receipt.
    pub receiver: AuthorityId,
    /// When the receiver stored it.
    pub received_at: Timestamp,
    /// Accepted or rejected.
    pub status: ReceiptStatus,
    /// Index of the receiver's audit-log entry for it.
    pub log_index: Option<u64>,
    /// Leaf hash of that entry.
    pub leaf_hash: Option<Digest>,
}

/// A receipt whose signature and signer have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The attested facts.
    pub receipt: Receipt,
    /// The key that signed it (the receiver's).
    pub kid: KeyId,
    /// The receipt bytes, for storage.
    pub bytes: Vec<u8>,
}

impl Receipt {
    fn check(&self) -> Result<(), String> {
        match &self.status {
            ReceiptStatus::Accepted if self.msg_id.is_none() => {
                Err("an accepted receipt must name the message (msg_id)".into())
            }
            ReceiptStatus::Rejected {
                detail: Some(d), ..
            } if d.len() > MAX_DETAIL => Err(format!("detail is longer than {MAX_DETAIL} bytes")),
            _ => Ok(()),
        }
    }

    /// The deterministic-CBOR payload, written field by field in the
    /// order of their keys (0 to 10, each one byte: the bytewise order).
    pub fn encode(&self) -> Result<Vec<u8>, SealError> {
        self.check().map_err(SealError::Receipt)?;
        let mut out = Vec::with_capacity(160);
        let (status, reason, detail) = match &self.status {
            ReceiptStatus::Accepted => ("accepted", None, None),
            ReceiptStatus::Rejected { reason, detail } => {
                ("rejected", Some(reason.as_str()), detail.as_deref())
            }
        };
        let fields = 6
            + u64::from(self.msg_id.is_some())
            + u64::from(reason.is_some())
            + u64::from(detail.is_some())
            + u64::from(self.log_index.is_some())
            + u64::from(self.leaf_hash.is_some());
        let bytes = |k: u64, b: &[u8], out: &mut Vec<u8>| {
            cbor::write_head(0, k, out);
            cbor::write_head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        };
        let text = |k: u64, t: &str, out: &mut Vec<u8>| {
            cbor::write_head(0, k, out);
            cbor::write_head(3, t.len() as u64, out);
            out.extend_from_slice(t.as_bytes());
        };
        let uint = |k: u64, n: u64, out: &mut Vec<u8>| {
            cbor::write_head(0, k, out);
            cbor::write_head(0, n, out);
        };
        cbor::write_head(5, fields, &mut out);
        uint(key::V, VERSION, &mut out);
        if let Some(id) = &self.msg_id {
            bytes(key::MSG_ID, id.as_bytes(), &mut out);
        }
        bytes(key::ENVELOPE_DIGEST, &self.envelope_digest.0, &mut out);
        text(key::SENDER, self.sender.as_str(), &mut out);
        text(key::RECEIVER, self.receiver.as_str(), &mut out);
        uint(key::RECEIVED_AT, self.received_at.0, &mut out);
        text(key::STATUS, status, &mut out);
        if let Some(reason) = reason {
            text(key::REASON, reason, &mut out);
        }
        if let Some(detail) = detail {
            text(key::DETAIL, detail, &mut out);
        }
        if let Some(i) = self.log_index {
            uint(key::LOG_INDEX, i, &mut out);
        }
        if let Some(h) = &self.leaf_hash {
            bytes(key::LEAF_HASH, &h.0, &mut out);
        }
        Ok(out)
    }

    /// [`Receipt::encode`] through a CBOR value, as it was written before:
    /// the tests hold the two to the same bytes.
    #[cfg(test)]
    fn encode_via_value(&self) -> Result<Vec<u8>, SealError> {
        self.check().map_err(SealError::Receipt)?;
        let text = |s: &str| Value::Text(s.to_owned());
        let mut map = vec![
            (key::V, Value::from(VERSION)),
            (
                key::ENVELOPE_DIGEST,
                Value::Bytes(self.envelope_digest.0.to_vec()),
            ),
            (key::SENDER, text(self.sender.as_str())),
            (key::RECEIVER, text(self.receiver.as_str())),
            (key::RECEIVED_AT, Value::from(self.received_at.0)),
        ];
        if let Some(id) = &self.msg_id {
            map.push((key::MSG_ID, Value::Bytes(id.as_bytes().to_vec())));
        }
        match &self.status {
            ReceiptStatus::Accepted => map.push((key::STATUS, text("accepted"))),
            ReceiptStatus::Rejected { reason, detail } => {
                map.push((key::STATUS, text("rejected")));
                map.push((key::REASON, text(reason.as_str())));
                if let Some(d) = detail {
                    map.push((key::DETAIL, text(d)));
                }
            }
        }
        if let Some(i) = self.log_index {
            map.push((key::LOG_INDEX, Value::from(i)));
        }
        if let Some(h) = &self.leaf_hash {
            map.push((key::LEAF_HASH, Value::Bytes(h.0.to_vec())));
        }
        let map = map.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
        cbor::encode_value(&Value::Map(map)).map_err(|e| SealError::Receipt(e.to_string()))
    }

    /// Decodes and checks a receipt payload: in place when it is laid out
    /// as [`Receipt::encode`] writes it and keeps the rules
    /// (`Receipt::read_in_place`), through a CBOR value otherwise, whose
    /// path names what is wrong. Both give the same result (a proptest
    /// holds them to it).
    pub fn decode(bytes: &[u8]) -> Result<Receipt, OpenError> {
        match Receipt::read_in_place(bytes) {
            Some(receipt) => Ok(receipt),
            None => Receipt::decode_via_value(bytes),
        }
    }

    /// The receipt in `bytes` if they are its deterministic encoding and it
    /// keeps every rule; `None` for anything else. Every head in its
    /// shortest form, the keys ascending and each field of its one type:
    /// the bytes are then the encoding of the map they hold, which is what
    /// [`cbor::decode_value`] checks.
    fn read_in_place(bytes: &[u8]) -> Option<Receipt> {
        let (mut v, mut msg_id, mut envelope_digest, mut sender, mut receiver) =
            (None, None, None, None, None);
        let (mut received_at, mut status, mut reason, mut detail) = (None, None, None, None);
        let (mut log_index, mut leaf_hash) = (None, None);
        cbor::read_int_map(bytes, |k, after| {
            Some(match k {
                key::V | key::RECEIVED_AT | key::LOG_INDEX => {
                    let (n, after) = cbor::split_uint(after)?;
                    match k {
                        key::V => v = Some(n),
                        key::RECEIVED_AT => received_at = Some(n),
                        _ => log_index = Some(n),
                    }
                    after
                }
                key::MSG_ID | key::ENVELOPE_DIGEST | key::LEAF_HASH => {
                    let (b, after) = cbor::split_byte_string(after)?;
                    match k {
                        key::MSG_ID => {
                            msg_id = Some(MessageId::from_bytes(b.try_into().ok()?).ok()?)
                        }
                        key::ENVELOPE_DIGEST => envelope_digest = Some(Digest(b.try_into().ok()?)),
                        _ => leaf_hash = Some(Digest(b.try_into().ok()?)),
                    }
                    after
                }
                key::SENDER | key::RECEIVER | key::STATUS | key::REASON | key::DETAIL => {
                    let (t, after) = cbor::split_text_string(after)?;
                    match k {
                        key::SENDER => sender = Some(AuthorityId::parse(t).ok()?),
                        key::RECEIVER => receiver = Some(AuthorityId::parse(t).ok()?),
                        key::STATUS => status = Some(t),
                        key::REASON => reason = Some(t.parse().ok()?),
                        _ => detail = Some(t.to_owned()),
                    }
                    after
                }
                _ => return None,
            })
        })?;
        if v != Some(VERSION) {
            return None;
        }
        let status = match (status?, reason) {
            ("accepted", None) if detail.is_none() => ReceiptStatus::Accepted,
            ("rejected", Some(reason)) => ReceiptStatus::Rejected { reason, detail },
            _ => return None,
        };
        let receipt = Receipt {
            msg_id,
            envelope_digest: envelope_digest?,
            sender: sender?,
            receiver: receiver?,
            received_at: Timestamp(received_at?),
            status,
            log_index,
            leaf_hash,
        };
        receipt.check().ok().map(|()| receipt)
    }

    /// [`Receipt::decode`] through a CBOR value.
    fn decode_via_value(bytes: &[u8]) -> Result<Receipt, OpenError> {
        let value = cbor::decode_value(bytes).map_err(|e| match e {
            CborError::NonCanonical | CborError::DuplicateKey => OpenError::NonCanonical {
                what: "receipt",
                source: e,
            },
            e => malformed(e.to_string()),
        })?;
        let field = |e: FieldError| malformed(e.to_string());
        let mut m = IntMap::new(value).map_err(field)?;
        let v = uint(m.need(key::V, "v").map_err(field)?, "v")?;
        if v != VERSION {
            return Err(OpenError::UnsupportedVersion(v));
        }
        let status = text(m.need(key::STATUS, "status").map_err(field)?, "status")?;
        let reason = m.take(key::REASON).map(|v| text(v, "reason")).transpose()?;
        let detail = m.take(key::DETAIL).map(|v| text(v, "detail")).transpose()?;
        let status = match (status.as_str(), reason) {
            ("accepted", None) if detail.is_none() => ReceiptStatus::Accepted,
            ("rejected", Some(reason)) => ReceiptStatus::Rejected {
                reason: reason
                    .parse()
                    .map_err(|()| malformed(format!("unknown reason code {reason:?}")))?,
                detail,
            },
            _ => {
                return Err(malformed(
                    "status must be \"accepted\" (without reason or detail) or \"rejected\" \
                     (with a reason)"
                        .into(),
                ));
            }
        };
        let receipt = Receipt {
            msg_id: m
                .take(key::MSG_ID)
                .map(|v| {
                    let b = bytes_n::<16>(v, "msg_id")?;
                    MessageId::from_bytes(b).map_err(|e| malformed(e.to_string()))
                })
                .transpose()?,
            envelope_digest: Digest(bytes_n(
                m.need(key::ENVELOPE_DIGEST, "envelope_digest")
                    .map_err(field)?,
                "envelope_digest",
            )?),
            sender: authority(m.need(key::SENDER, "sender").map_err(field)?, "sender")?,
            receiver: authority(
                m.need(key::RECEIVER, "receiver").map_err(field)?,
                "receiver",
            )?,
            received_at: Timestamp(uint(
                m.need(key::RECEIVED_AT, "received_at").map_err(field)?,
                "received_at",
            )?),
            status,
            log_index: m
                .take(key::LOG_INDEX)
                .map(|v| uint(v, "log_index"))
                .transpose()?,
            leaf_hash: m
                .take(key::LEAF_HASH)
                .map(|v| bytes_n(v, "leaf_hash").map(Digest))
                .transpose()?,
        };
        m.finish().map_err(field)?;
        receipt.check().map_err(malformed)?;
        Ok(receipt)
    }
}

fn malformed(reason: String) -> OpenError {
    OpenError::Malformed {
        what: "receipt",
        reason,
    }
}

fn uint(v: Value, name: &str) -> Result<u64, OpenError> {
    match v {
        Value::Integer(i) => u64::try_from(i).ok(),
        _ => None,
    }
    .ok_or_else(|| malformed(format!("{name}: expected an unsigned integer")))
}

fn text(v: Value, name: &str) -> Result<String, OpenError> {
    match v {
        Value::Text(s) => Ok(s),
        _ => Err(malformed(format!("{name}: expected a text string"))),
    }
}

fn bytes_n<const N: usize>(v: Value, name: &str) -> Result<[u8; N], OpenError> {
    match v {
        Value::Bytes(b) => b.try_into().ok(),
        _ => None,
    }
    .ok_or_else(|| malformed(format!("{name}: expected a byte string of {N} bytes")))
}

fn authority(v: Value, name: &str) -> Result<AuthorityId, OpenError> {
    AuthorityId::parse(&text(v, name)?).map_err(|e| malformed(format!("{name}: {e}")))
}

/// Signs a receipt with the receiving relay's key.
pub fn seal_receipt(receipt: &Receipt, key: &SigningKey) -> Result<Vec<u8>, SealError> {
    Ok(cose::sign1(CONTENT_TYPE_RECEIPT, receipt.encode()?, key))
}

/// Signs receipts with the receiving relay's key: one receipt alone gets
/// the single form ([`seal_receipt`]); two or more, all of one receiver,
/// share one signature over their batch head (`docs/PROTOCOL.md` §10.1).
/// The results are in the order of `receipts`.
pub fn seal_receipts(receipts: &[Receipt], key: &SigningKey) -> Result<Vec<Vec<u8>>, SealError> {
    match receipts {
        [one] => Ok(vec![seal_receipt(one, key)?]),
        many => batch::seal_batch(many, key),
    }
}

/// Reads a signed receipt, single or batched, **without verifying the
/// signature**: for receipts a relay verified before it stored them. Never
/// use it on input from the network.
pub fn receipt_unverified(bytes: &[u8]) -> Option<Receipt> {
    use coset::TaggedCborSerializable;
    let sign1 = coset::CoseSign1::from_tagged_slice(bytes).ok()?;
    let batched = matches!(
        &sign1.protected.header.content_type,
        Some(coset::ContentType::Text(ct)) if ct == CONTENT_TYPE_RECEIPT_BATCH
    );
    let payload = match batched {
        true => batch::payload_unverified(sign1)?,
        false => sign1.payload?,
    };
    Receipt::decode(&payload).ok()
}

/// Verifies a receipt, single or batched: profile, signature (for a batched
/// one, over its batch head, with the receipt's inclusion path to it), that
/// the signing key belongs to the receiver it names, and that the key was
/// valid at `received_at`.
pub fn open_receipt(bytes: &[u8], keys: &dyn KeyLookup) -> Result<VerifiedReceipt, OpenError> {
    open_receipt_with(bytes, keys, &Strict)
}

/// [`open_receipt`], with the signature checked by `sigs` (for
/// [`crate::batch::batched`], or [`crate::batch::Remembered`] to check the
/// signature of a batch once).
pub fn open_receipt_with(
    bytes: &[u8],
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<VerifiedReceipt, OpenError> {
    // Parsed once, whichever form it has.
    let parsed = cose::Parsed1::parse(bytes, "receipt")?;
    let (receipt, signed) = match parsed.content_type() {
        Some(CONTENT_TYPE_RECEIPT_BATCH) => batch::open(parsed, keys, sigs)?,
        Some(CONTENT_TYPE_RECEIPT) | None => {
            let (signed, _) = parsed.verify(CONTENT_TYPE_RECEIPT, keys, sigs, None)?;
            (Receipt::decode(&signed.payload)?, signed)
        }
        Some(other) => {
            return Err(malformed(format!(
                "content type {other:?}, expected {CONTENT_TYPE_RECEIPT:?} or \
                 {CONTENT_TYPE_RECEIPT_BATCH:?}"
            )));
        }
    };
    if signed.key.authority != receipt.receiver {
        return Err(OpenError::SignerMismatch {
            kid: signed.kid,
            owner: signed.key.authority,
            claimed: receipt.receiver,
        });
    }
    if let Some(revoked_at) = signed.key.revoked_at
        && signed.key.revoked_by(receipt.received_at)
    {
        return Err(OpenError::KeyRevoked {
            kid: signed.kid,
            at: receipt.received_at,
            revoked_at,
        });
    }
    if !signed.key.valid_at(receipt.received_at) {
        return Err(OpenError::KeyNotValid {
            kid: signed.kid,
            at: receipt.received_at,
            valid_from: signed.key.valid_from,
            valid_until: signed.key.valid_until,
        });
    }
    Ok(VerifiedReceipt {
        receipt,
        kid: signed.kid,
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A receipt payload written through a CBOR value, field by field:
    /// those kurir writes and those it must refuse (another version, a
    /// key it does not know, a field of another type, a status without
    /// its reason).
    #[allow(clippy::too_many_arguments)]
    fn written(
        v: u64,
        msg_id: bool,
        rejected: Option<(&str, Option<String>)>,
        log: bool,
        sender: &str,
        extra: Option<u64>,
        received_at_as_text: bool,
    ) -> Vec<u8> {
        let text = |s: &str| Value::Text(s.to_owned());
        let mut map = vec![
            (key::V, Value::from(v)),
            (key::ENVELOPE_DIGEST, Value::Bytes(vec![3; 32])),
            (key::SENDER, text(sender)),
            (key::RECEIVER, text("BA.MSB")),
            (
                key::RECEIVED_AT,
                match received_at_as_text {
                    true => text("1780000000000"),
                    false => Value::from(1_780_000_000_000u64),
                },
            ),
        ];
        if msg_id {
            map.push((
                key::MSG_ID,
                Value::Bytes(vec![
                    0x01, 0x9b, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 1,
                ]),
            ));
        }
        match rejected {
            None => map.push((key::STATUS, text("accepted"))),
            Some((reason, detail)) => {
                map.push((key::STATUS, text("rejected")));
                if !reason.is_empty() {
                    map.push((key::REASON, text(reason)));
                }
                if let Some(d) = detail {
                    map.push((key::DETAIL, Value::Text(d)));
                }
            }
        }
        if log {
            map.push((key::LOG_INDEX, Value::from(41u64)));
            map.push((key::LEAF_HASH, Value::Bytes(vec![5; 32])));
        }
        if let Some(k) = extra {
            map.push((k, Value::from(1u64)));
        }
        map.sort_by_key(|(k, _)| *k);
        let map = map.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
        cbor::encode_value(&Value::Map(map)).unwrap()
    }

    fn rejection() -> impl Strategy<Value = Option<(&'static str, Option<String>)>> {
        proptest::option::of((
            prop_oneof![
                Just("bad_signature"),
                Just("expired"),
                Just("nope"),
                Just("")
            ],
            proptest::option::of("[a-z ]{0,12}"),
        ))
    }

    proptest! {
        /// Reading a receipt in place gives what reading it through a CBOR
        /// value gives: the same receipt, or the same refusal, for receipts
        /// that keep the rules and those that break them, as written and
        /// with their bytes changed, cut short or lengthened.
        #[test]
        fn the_reading_in_place_is_the_value_readings(
            v in prop_oneof![4 => Just(VERSION), 1 => 0u64..3],
            msg_id in prop_oneof![4 => Just(true), 1 => Just(false)],
            rejected in rejection(),
            log: bool,
            sender in prop_oneof![Just("RS.MUP"), Just("ME.UP"), Just("not an id")],
            extra in proptest::option::of(11u64..30),
            received_at_as_text in prop_oneof![9 => Just(false), 1 => Just(true)],
            change in proptest::option::of((any::<proptest::sample::Index>(), 1u8..=255)),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
            more in proptest::collection::vec(any::<u8>(), 0..2),
        ) {
            let bytes = written(v, msg_id, rejected, log, sender, extra, received_at_as_text);
            let bytes = cbor::mangled(bytes, change, cut, &more);
            cbor::same_reading(Receipt::decode(&bytes), Receipt::decode_via_value(&bytes))?;
        }

        /// The receipt written field by field is the one written through a
        /// CBOR value, byte for byte, and reads back in place.
        #[test]
        fn a_receipt_is_written_as_through_a_value(
            msg_id: bool,
            rejected in proptest::option::of((
                proptest::sample::select(RejectCode::ALL.to_vec()),
                proptest::option::of("[a-zé ]{0,40}"),
            )),
            log_index in proptest::option::of(any::<u64>()),
            leaf_hash in proptest::option::of(any::<[u8; 32]>()),
            received_at in any::<u64>(),
        ) {
            let receipt = Receipt {
                msg_id: (msg_id || rejected.is_none()).then(|| {
                    MessageId::new_v7(1_780_000_000_000, [7; 10])
                }),
                envelope_digest: Digest([3; 32]),
                sender: AuthorityId::parse("RS.MUP").unwrap(),
                receiver: AuthorityId::parse("BA.MSB").unwrap(),
                received_at: Timestamp(received_at),
                status: match rejected {
                    None => ReceiptStatus::Accepted,
                    Some((reason, detail)) => ReceiptStatus::Rejected { reason, detail },
                },
                log_index,
                leaf_hash: leaf_hash.map(Digest),
            };
            let bytes = receipt.encode().unwrap();
            prop_assert_eq!(&bytes, &receipt.encode_via_value().unwrap());
            prop_assert_eq!(Receipt::read_in_place(&bytes), Some(receipt));
        }
    }
}
