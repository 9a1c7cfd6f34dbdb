//! Audit-log entries on the wire: the leaves of a relay's RFC 6962 Merkle
//! log (see [`crate::merkle`]).
//!
//! An entry is a deterministic-CBOR map with small integer keys. It holds
//! ids, digests, authority ids, codes and times, never personal data of the
//! people messages are about: no bodies, no names of the people a case is
//! about, no free text from officers. The one name is a reader's own, from
//! its certificate, in the code of `body_read` and `body_refused`. `docs/AUDIT.md` is the normative description. Which fields an
//! event fills, and its code, are its [`Record`]'s (`record.rs`).
//!
//! | key | field             | CBOR type      | presence                          |
//! |-----|-------------------|----------------|-----------------------------------|
//! | 0   | `v`               | uint, = 1      | always                            |
//! | 1   | `index`           | uint           | always: the entry's leaf index    |
//! | 2   | `at`              | uint (Unix ms) | always                            |
//! | 3   | `event`           | tstr           | always, see [`Event`]             |
//! | 4   | `msg_id`          | bstr, 16       | message events                    |
//! | 5   | `envelope_digest` | bstr, 32       | submitted, received, refused      |
//! | 6   | `peer`            | tstr           | the other authority, if any       |
//! | 7   | `case_id`         | tstr           | case events                       |
//! | 8   | `receipt_digest`  | bstr, 32       | delivered, rejected, refused      |
//! | 9   | `officer`         | tstr           | officer certificate serial (hex)  |
//! | 10  | `code`            | tstr           | reason or event code              |
//! | 11  | `prev`            | bstr, 32       | every entry but the first         |

use ciborium::value::Value;

use crate::cbor::{self, CborError, FieldError, IntMap, invalid, uint};
use crate::digest::Digest;
use crate::ids::{AuthorityId, CaseId, MessageId};
use crate::merkle;
use crate::time::Timestamp;

use super::event::Event;
use super::record::{Record, RecordError};

/// Domain tag of receipt digests in audit entries.
pub const RECEIPT_TAG: &[u8] = b"kurir/v1/receipt\0";

/// One audit-log entry, as its wire fields: what [`Entry::encode`] writes
/// and [`Entry::decode`] reads. Build one from its [`Record`] with
/// [`Entry::new`]; [`Entry::record`] gives the record back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its leaf index in the log (0-based).
    pub index: u64,
    /// When it happened (the relay's clock).
    pub at: Timestamp,
    /// What happened (its [`Record`]'s event).
    pub event: Event,
    /// The message, for message events.
    pub msg_id: Option<MessageId>,
    /// The envelope digest, where the event concerns a parcel.
    pub envelope_digest: Option<Digest>,
    /// The other authority, if any.
    pub peer: Option<AuthorityId>,
    /// The readmission case, for case events.
    pub case_id: Option<CaseId>,
    /// [`receipt_digest`] of a receipt or rejection.
    pub receipt_digest: Option<Digest>,
    /// The officer's certificate serial (hex), for officer actions.
    pub officer: Option<String>,
    /// A reason or event code (no free text): its [`Record`]'s
    /// [`Record::code`], cut at [`MAX_TEXT`] bytes when encoded.
    pub code: Option<String>,
    /// The leaf hash of the entry before this one: present in every entry
    /// but the first, so a changed entry breaks the link to the next one.
    pub prev: Option<Digest>,
}

/// The digest of a signed receipt as entries name it:
/// SHA-256(`"kurir/v1/receipt\0"` ‖ receipt bytes).
pub fn receipt_digest(receipt: &[u8]) -> Digest {
    Digest::of(&[RECEIPT_TAG, receipt])
}

/// The longest `code` and `officer`, in bytes.
pub const MAX_TEXT: usize = 256;

mod key {
    pub(super) const V: u64 = 0;
    pub(super) const INDEX: u64 = 1;
    pub(super) const AT: u64 = 2;
    pub(super) const EVENT: u64 = 3;
    pub(super) const MSG_ID: u64 = 4;
    pub(super) const ENVELOPE_DIGEST: u64 = 5;
    pub(super) const PEER: u64 = 6;
    pub(super) const CASE_ID: u64 = 7;
    pub(super) const RECEIPT_DIGEST: u64 = 8;
    pub(super) const OFFICER: u64 = 9;
    pub(super) const CODE: u64 = 10;
    pub(super) const PREV: u64 = 11;
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not deterministic CBOR, or malformed.
    #[error("audit entry: {0}")]
    Cbor(#[from] CborError),
    /// A field is missing, unknown or invalid.
    #[error("audit entry: {0}")]
    Field(#[from] FieldError),
    /// A version this software does not read.
    #[error("audit entry version {0} is not supported")]
    Version(u64),
    /// `prev` is missing from an entry after the first, or present in the first.
    #[error("audit entry {0}: {1}")]
    Chain(u64, &'static str),
    /// The fields are not those of the event, or its code is not in the
    /// event's form.
    #[error("audit entry: {0}")]
    Record(#[from] RecordError),
}

impl Entry {
    /// The entry that records `record` at `at`, with index 0 and no
    /// `prev`: the log sets them when it appends the entry.
    pub fn new(at: Timestamp, record: Record) -> Entry {
        record.into_entry(at)
    }

    /// What the entry records. An entry [`Entry::decode`] returned always
    /// has one; one built or changed by hand may not.
    pub fn record(&self) -> Result<Record, RecordError> {
        Record::of_entry(self)
    }

    /// The deterministic-CBOR encoding (the Merkle leaf data).
    pub fn encode(&self) -> Vec<u8> {
        let mut map = vec![
            (key::V, Value::from(1u64)),
            (key::INDEX, Value::from(self.index)),
            (key::AT, Value::from(self.at.0)),
            (key::EVENT, Value::Text(self.event.as_str().to_owned())),
        ];
        let bytes = |b: &[u8]| Value::Bytes(b.to_vec());
        if let Some(id) = &self.msg_id {
            map.push((key::MSG_ID, bytes(id.as_bytes())));
        }
        if let Some(d) = &self.envelope_digest {
            map.push((key::ENVELOPE_DIGEST, bytes(&d.0)));
        }
        if let Some(p) = &self.peer {
            map.push((key::PEER, Value::Text(p.to_string())));
        }
        if let Some(c) = &self.case_id {
            map.push((key::CASE_ID, Value::Text(c.to_string())));
        }
        if let Some(d) = &self.receipt_digest {
            map.push((key::RECEIPT_DIGEST, bytes(&d.0)));
        }
        if let Some(o) = &self.officer {
            map.push((key::OFFICER, Value::Text(truncate(o))));
        }
        if let Some(c) = &self.code {
            map.push((key::CODE, Value::Text(truncate(c))));
        }
        if let Some(d) = &self.prev {
            map.push((key::PREV, bytes(&d.0)));
        }
        let map = map.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
        // Integers, short texts and byte strings only: encoding cannot fail.
        cbor::encode_value(&Value::Map(map)).unwrap_or_default()
    }

    /// The RFC 6962 leaf hash of this entry.
    pub fn leaf_hash(&self) -> Digest {
        merkle::leaf_hash(&self.encode())
    }

    /// Strict decoding: deterministic CBOR, every field valid, the chain
    /// link where it belongs, and the fields and code of its event
    /// ([`Entry::record`]).
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        let value = cbor::decode_value(bytes)?;
        let mut m = IntMap::new(value)?;
        let v = uint(m.need(key::V, "v")?, key::V, "v")?;
        if v != 1 {
            return Err(EntryError::Version(v));
        }
        let index = uint(m.need(key::INDEX, "index")?, key::INDEX, "index")?;
        let at = Timestamp(uint(m.need(key::AT, "at")?, key::AT, "at")?);
        let event = text(m.need(key::EVENT, "event")?, key::EVENT, "event")?;
        let event =
            Event::parse(&event).ok_or_else(|| invalid(key::EVENT, "event", "unknown event"))?;
        let entry = Entry {
            index,
            at,
            event,
            msg_id: m
                .take(key::MSG_ID)
                .map(|v| {
                    let b = bytes_n::<16>(v, key::MSG_ID, "msg_id")?;
                    MessageId::from_bytes(b)
                        .map_err(|e| invalid(key::MSG_ID, "msg_id", &e.to_string()))
                })
                .transpose()?,
            envelope_digest: m
                .take(key::ENVELOPE_DIGEST)
                .map(|v| bytes_n(v, key::ENVELOPE_DIGEST, "envelope_digest").map(Digest))
                .transpose()?,
            peer: m
                .take(key::PEER)
                .map(|v| {
                    let s = text(v, key::PEER, "peer")?;
                    AuthorityId::parse(&s).map_err(|e| invalid(key::PEER, "peer", &e.to_string()))
                })
                .transpose()?,
            case_id: m
                .take(key::CASE_ID)
                .map(|v| {
                    let s = text(v, key::CASE_ID, "case_id")?;
                    CaseId::parse(&s).map_err(|e| invalid(key::CASE_ID, "case_id", &e.to_string()))
                })
                .transpose()?,
            receipt_digest: m
                .take(key::RECEIPT_DIGEST)
                .map(|v| bytes_n(v, key::RECEIPT_DIGEST, "receipt_digest").map(Digest))
                .transpose()?,
            officer: m
                .take(key::OFFICER)
                .map(|v| text(v, key::OFFICER, "officer"))
                .transpose()?,
            code: m
                .take(key::CODE)
                .map(|v| text(v, key::CODE, "code"))
                .transpose()?,
            prev: m
                .take(key::PREV)
                .map(|v| bytes_n(v, key::PREV, "prev").map(Digest))
                .transpose()?,
        };
        m.finish()?;
        match (entry.index, entry.prev) {
            (0, Some(_)) => {
                return Err(EntryError::Chain(
                    0,
                    "the first entry has no previous entry",
                ));
            }
            (i, None) if i > 0 => {
                return Err(EntryError::Chain(i, "prev (key 11) is missing"));
            }
            _ => {}
        }
        if entry.encode() != bytes {
            return Err(EntryError::Cbor(CborError::NonCanonical));
        }
        entry.record()?;
        Ok(entry)
    }
}

fn truncate(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn text(v: Value, key: u64, name: &'static str) -> Result<String, FieldError> {
    match v {
        Value::Text(s) if s.len() <= MAX_TEXT => Ok(s),
        Value::Text(_) => Err(invalid(key, name, "longer than 256 bytes")),
        _ => Err(invalid(key, name, "expected a text string")),
    }
}

fn bytes_n<const N: usize>(v: Value, key: u64, name: &'static str) -> Result<[u8; N], FieldError> {
    match v {
        Value::Bytes(b) => b.try_into().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(key, name, "expected a byte string of the right length"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// An entry with every field its event has (`received`).
    fn full() -> Entry {
        Entry {
            index: 41,
            at: Timestamp(1_795_874_050_000),
            event: Event::Received,
            msg_id: Some(MessageId::new_v7(1_795_874_050_000, [1; 10])),
            envelope_digest: Some(Digest([2; 32])),
            peer: Some(AuthorityId::parse("RS.MUP").unwrap()),
            case_id: Some(CaseId::parse("RS.MUP:2026-1").unwrap()),
            receipt_digest: None,
            officer: None,
            code: Some("readmission-reply".into()),
            prev: Some(Digest([4; 32])),
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        // The fields `received` does not have, in the entries that have them.
        let refused = Entry {
            event: Event::Refused,
            case_id: None,
            receipt_digest: Some(Digest([3; 32])),
            code: Some("expired".into()),
            ..full()
        };
        let read = Entry {
            event: Event::Read,
            envelope_digest: None,
            peer: None,
            case_id: None,
            officer: Some("0a1b2c".into()),
            code: None,
            ..full()
        };
        let started = Record::Started {
            version: "0.1.0".into(),
        };
        for e in [full(), refused, read, Entry::new(Timestamp(5), started)] {
            let bytes = e.encode();
            assert_eq!(Entry::decode(&bytes).unwrap(), e);
            assert_eq!(e.leaf_hash(), merkle::leaf_hash(&bytes));
        }
        // Every field at once is no event's.
        let every = Entry {
            receipt_digest: Some(Digest([3; 32])),
            officer: Some("0a1b2c".into()),
            ..full()
        };
        assert!(matches!(
            Entry::decode(&every.encode()),
            Err(EntryError::Record(_))
        ));
        // An unknown key is refused.
        let mut v = cbor::decode_value(&full().encode()).unwrap();
        if let Value::Map(m) = &mut v {
            m.push((Value::from(12u64), Value::from(1u64)));
        }
        let bytes = cbor::encode_value(&v).unwrap();
        assert!(matches!(
            Entry::decode(&bytes),
            Err(EntryError::Field(FieldError::Unknown(12)))
        ));
        // The chain link: required after the first entry, refused in it.
        let first = Entry { index: 0, ..full() };
        assert!(matches!(
            Entry::decode(&first.encode()),
            Err(EntryError::Chain(0, _))
        ));
        let unlinked = Entry {
            prev: None,
            ..full()
        };
        assert!(matches!(
            Entry::decode(&unlinked.encode()),
            Err(EntryError::Chain(41, _))
        ));
        // A flipped byte changes the leaf hash.
        let mut bytes = full().encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_ne!(merkle::leaf_hash(&bytes), full().leaf_hash());
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
    }
}
