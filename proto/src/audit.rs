//! Audit-log entries: what a relay records about every event, as leaves of
//! its RFC 6962 Merkle log (see [`crate::merkle`]).
//!
//! An entry is a deterministic-CBOR map with small integer keys. It holds
//! ids, digests, authority ids, codes and times, never personal data: no
//! bodies, no names of the people a case is about, no free text from
//! officers. `docs/AUDIT.md` is the normative description.
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

use std::fmt;

use ciborium::value::Value;

use crate::cbor::{self, CborError, FieldError, IntMap, invalid, uint};
use crate::digest::Digest;
use crate::ids::{AuthorityId, CaseId, MessageId};
use crate::merkle;
use crate::time::Timestamp;

/// Domain tag of receipt digests in audit entries.
pub const RECEIPT_TAG: &[u8] = b"kurir/v1/receipt\0";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// An officer submitted a message; the relay signed and queued it.
    Submitted,
    /// A peer's signed receipt for a sent message was verified and stored.
    Delivered,
    /// A peer refused a sent message with a signed rejection.
    Rejected,
    /// A sent message expired undelivered to a peer.
    Expired,
    /// A message from a peer was verified and stored; the receipt went back.
    Received,
    /// A parcel from a peer was refused with a signed rejection.
    Refused,
    /// An officer first read a received message.
    Read,
    /// A message body and its key were erased under the retention policy.
    BodyErased,
    /// A readmission deadline event (code: due_soon, deemed_accepted, transfer_overdue).
    Deadline,
    /// The relay accepted a roster (code: version and fingerprint).
    Roster,
    /// The relay started (code: software version).
    Started,
    /// A peer's checkpoint was verified (consistent with the last one seen)
    /// and cosigned (code: `size N root HEX`).
    PeerCheckpoint,
}

impl Event {
    const ALL: [Event; 12] = [
        Event::Submitted,
        Event::Delivered,
        Event::Rejected,
        Event::Expired,
        Event::Received,
        Event::Refused,
        Event::Read,
        Event::BodyErased,
        Event::Deadline,
        Event::Roster,
        Event::Started,
        Event::PeerCheckpoint,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Submitted => "submitted",
            Event::Delivered => "delivered",
            Event::Rejected => "rejected",
            Event::Expired => "expired",
            Event::Received => "received",
            Event::Refused => "refused",
            Event::Read => "read",
            Event::BodyErased => "body_erased",
            Event::Deadline => "deadline",
            Event::Roster => "roster",
            Event::Started => "started",
            Event::PeerCheckpoint => "peer_checkpoint",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its leaf index in the log (0-based).
    pub index: u64,
    /// When it happened (the relay's clock).
    pub at: Timestamp,
    /// What happened.
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
    /// A reason or event code (no free text).
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
}

impl Entry {
    /// A new entry with only the required fields.
    pub fn new(at: Timestamp, event: Event) -> Entry {
        Entry {
            index: 0,
            at,
            event,
            msg_id: None,
            envelope_digest: None,
            peer: None,
            case_id: None,
            receipt_digest: None,
            officer: None,
            code: None,
            prev: None,
        }
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

    /// Strict decoding.
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
    use super::*;

    fn full() -> Entry {
        Entry {
            index: 41,
            at: Timestamp(1_795_874_050_000),
            event: Event::Received,
            msg_id: Some(MessageId::new_v7(1_795_874_050_000, [1; 10])),
            envelope_digest: Some(Digest([2; 32])),
            peer: Some(AuthorityId::parse("RS.MUP").unwrap()),
            case_id: Some(CaseId::parse("RS.MUP:2026-1").unwrap()),
            receipt_digest: Some(Digest([3; 32])),
            officer: Some("0a1b2c".into()),
            code: Some("ok".into()),
            prev: Some(Digest([4; 32])),
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        for e in [full(), Entry::new(Timestamp(5), Event::Started)] {
            let bytes = e.encode();
            assert_eq!(Entry::decode(&bytes).unwrap(), e);
            assert_eq!(e.leaf_hash(), merkle::leaf_hash(&bytes));
        }
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

/// What [`verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The size and root of the newest checkpoint.
    pub newest: Option<(u64, Digest)>,
    /// Entries after the newest checkpoint (not yet covered by a signature).
    pub uncovered: u64,
}

/// Why a log does not verify. Every variant names the first bad item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An entry does not decode (flipped byte, foreign data).
    #[error("entry {index}: {reason}")]
    BadEntry {
        /// Its position in the log.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry is at the wrong position (dropped, inserted or swapped entries).
    #[error(
        "entry {position} says it is entry {claimed}: entries are missing, added or out of order"
    )]
    OutOfOrder {
        /// Where it is.
        position: u64,
        /// The index it carries.
        claimed: u64,
    },
    /// A checkpoint does not parse or is not signed by the log key.
    #[error("checkpoint {number}: {reason}")]
    BadCheckpoint {
        /// Its position among the checkpoints (1-based).
        number: usize,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint covers more entries than the log has.
    #[error(
        "checkpoint {number} covers {size} entries but the log has only {entries}: entries were removed"
    )]
    Truncated {
        /// Its position among the checkpoints (1-based).
        number: usize,
        /// Its tree size.
        size: u64,
        /// Entries present.
        entries: u64,
    },
    /// The log's root at a checkpoint's size differs from the signed root.
    /// The hash chain holds up to it, so the last entry it covers
    /// (`size - 1`) is one that was changed.
    #[error(
        "checkpoint {number} (size {size}) signs root {signed}, but the entries give {computed}: \
         entry {} was changed (the entries' hash chain holds up to it, so it, or a run of \
         entries ending at it, was rewritten)", size.saturating_sub(1)
    )]
    RootMismatch {
        /// Its position among the checkpoints (1-based).
        number: usize,
        /// Its tree size.
        size: u64,
        /// The signed root.
        signed: Digest,
        /// The root recomputed from the entries.
        computed: Digest,
    },
    /// An entry does not match the hash the next entry records for it
    /// (`prev`): that entry was changed after it was written.
    #[error(
        "entry {index} was changed: entry {next} records its hash as {recorded}, but it hashes \
         to {actual}"
    )]
    Changed {
        /// The changed entry.
        index: u64,
        /// The entry whose `prev` names it.
        next: u64,
        /// The hash `next` records.
        recorded: Digest,
        /// The hash of the entry as it is now.
        actual: Digest,
    },
    /// The last entry's `prev` does not match the entry before it, and no
    /// later entry tells which of the two was changed.
    #[error(
        "entry {index}, the last, does not link to entry {}: one of the two was changed",
        index.saturating_sub(1)
    )]
    LastLinkBroken {
        /// The last entry.
        index: u64,
    },
    /// Checkpoints are not in increasing order of size.
    #[error("checkpoint {number} is smaller than the one before it")]
    Order {
        /// Its position among the checkpoints (1-based).
        number: usize,
    },
}

/// Verifies a whole log offline: every entry decodes strictly, sits at its
/// own index and links to the one before; every checkpoint is signed by one
/// of `logs` (the log's keys over its life: a rotated key signed the older
/// checkpoints) and its root equals the root recomputed from the entries at
/// its size (which also proves each checkpoint consistent with the ones
/// before it).
pub fn verify_log(
    entries: &[Vec<u8>],
    checkpoints: &[Vec<u8>],
    logs: &[crate::checkpoint::NoteVerifier],
) -> Result<LogReport, LogError> {
    verify_log_with(entries, checkpoints, logs, &crate::batch::Strict)
}

/// [`verify_log`], with the checkpoints' signatures checked by `sigs` (for
/// [`crate::batch::batched`]).
pub fn verify_log_with(
    entries: &[Vec<u8>],
    checkpoints: &[Vec<u8>],
    logs: &[crate::checkpoint::NoteVerifier],
    sigs: &dyn crate::batch::SignatureCheck,
) -> Result<LogReport, LogError> {
    use crate::checkpoint::SignedCheckpoint;
    let mut parsed = Vec::with_capacity(checkpoints.len());
    for (i, note) in checkpoints.iter().enumerate() {
        let number = i + 1;
        let bad = |reason: String| LogError::BadCheckpoint { number, reason };
        let signed = SignedCheckpoint::parse(note).map_err(|e| bad(e.to_string()))?;
        let mut verified = Err("no log key to check it with".to_owned());
        for log in logs {
            verified = signed.verify_with(log, sigs).map_err(|e| e.to_string());
            if verified.is_ok() {
                break;
            }
        }
        verified.map_err(|e| bad(format!("not signed by the log key: {e}")))?;
        if let Some((_, prev)) = parsed.last()
            && signed.checkpoint().size() < *prev
        {
            return Err(LogError::Order { number });
        }
        let size = signed.checkpoint().size();
        parsed.push((signed, size));
    }
    let mut range = merkle::CompactRange::new();
    let mut next = parsed.iter().enumerate().peekable();
    // A checkpoint of the empty log.
    while let Some((i, (c, 0))) = next.peek().map(|(i, x)| (*i, x)) {
        check_root(i + 1, c, 0, &range.root())?;
        next.next();
    }
    // The previous entry's leaf hash (what its successor's `prev` must be).
    let mut previous: Option<Digest> = None;
    for (position, bytes) in entries.iter().enumerate() {
        let position = position as u64;
        let entry = Entry::decode(bytes).map_err(|e| LogError::BadEntry {
            index: position,
            reason: e.to_string(),
        })?;
        if entry.index != position {
            return Err(LogError::OutOfOrder {
                position,
                claimed: entry.index,
            });
        }
        let leaf = merkle::leaf_hash(bytes);
        if let (Some(recorded), Some(before)) = (entry.prev, previous)
            && recorded != before
        {
            // Which link broke tells which entry changed: if this entry's
            // own link from the next one breaks too, it is this entry (its
            // `prev` was altered); otherwise it is the one before.
            let next_records = entries
                .get(position as usize + 1)
                .map(|next| Entry::decode(next).ok().and_then(|n| n.prev));
            return Err(match next_records {
                Some(next_prev) if next_prev != Some(leaf) => LogError::Changed {
                    index: position,
                    next: position + 1,
                    recorded: next_prev.unwrap_or(Digest([0; 32])),
                    actual: leaf,
                },
                Some(_) => LogError::Changed {
                    index: position - 1,
                    next: position,
                    recorded,
                    actual: before,
                },
                // The last entry: no later link tells the two apart.
                None => LogError::LastLinkBroken { index: position },
            });
        }
        previous = Some(leaf);
        range.append(leaf);
        while let Some((i, (c, size))) = next.peek().map(|(i, x)| (*i, x))
            && *size == range.size()
        {
            check_root(i + 1, c, *size, &range.root())?;
            next.next();
        }
    }
    // Checkpoints the entries never reached: entries were removed at the end.
    if let Some((i, (_, size))) = next.next() {
        return Err(LogError::Truncated {
            number: i + 1,
            size: *size,
            entries: entries.len() as u64,
        });
    }
    let newest = parsed
        .last()
        .map(|(c, size)| (*size, *c.checkpoint().root()));
    Ok(LogReport {
        entries: entries.len() as u64,
        checkpoints: parsed.len() as u64,
        uncovered: entries.len() as u64 - newest.map_or(0, |(s, _)| s),
        newest,
    })
}

fn check_root(
    number: usize,
    c: &crate::checkpoint::SignedCheckpoint,
    size: u64,
    computed: &Digest,
) -> Result<(), LogError> {
    if c.checkpoint().root() != computed {
        return Err(LogError::RootMismatch {
            number,
            size,
            signed: *c.checkpoint().root(),
            computed: *computed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteVerifier, SignedCheckpoint};
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "kurir/RS.MUP";

    fn log(n: u64) -> Vec<Vec<u8>> {
        let mut prev = None;
        (0..n)
            .map(|i| {
                let bytes = Entry {
                    index: i,
                    code: Some(format!("e{i}")),
                    prev,
                    ..Entry::new(Timestamp(1_000 + i), Event::Started)
                }
                .encode();
                prev = Some(merkle::leaf_hash(&bytes));
                bytes
            })
            .collect()
    }

    fn checkpoint(entries: &[Vec<u8>], size: usize, key: &SigningKey) -> Vec<u8> {
        let leaves: Vec<_> = entries[..size]
            .iter()
            .map(|b| merkle::leaf_hash(b))
            .collect();
        let c = Checkpoint::new(ORIGIN, size as u64, merkle::root(&leaves)).unwrap();
        SignedCheckpoint::sign(c, ORIGIN, key)
            .unwrap()
            .note()
            .to_string()
            .into_bytes()
    }

    fn setup() -> (Vec<Vec<u8>>, Vec<Vec<u8>>, NoteVerifier, SigningKey) {
        let key = SigningKey::from_bytes(&[8; 32]);
        let entries = log(10);
        let cps = vec![checkpoint(&entries, 4, &key), checkpoint(&entries, 9, &key)];
        let v = NoteVerifier::ed25519(ORIGIN, key.verifying_key()).unwrap();
        (entries, cps, v, key)
    }

    #[test]
    fn receipt_kinds_are_the_texts_issued_and_held_on_the_wire() {
        // The bundle format before the kinds were an enum.
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Before {
            kind: String,
            #[serde(with = "cbor::bytes")]
            receipt: Vec<u8>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            inclusion: Option<serde_bytes_vec::Bytes>,
        }
        for (kind, text) in [(ReceiptKind::Issued, "issued"), (ReceiptKind::Held, "held")] {
            assert_eq!(kind.as_str(), text);
            assert_eq!(kind.to_string(), text);
            let now = BundleReceipt {
                kind,
                receipt: vec![1, 2, 3],
                inclusion: Some(serde_bytes_vec::Bytes(vec![4])),
            };
            let before = Before {
                kind: text.into(),
                receipt: vec![1, 2, 3],
                inclusion: Some(serde_bytes_vec::Bytes(vec![4])),
            };
            let bytes = cbor::to_vec(&now).unwrap();
            assert_eq!(bytes, cbor::to_vec(&before).unwrap());
            assert_eq!(cbor::from_slice::<BundleReceipt>(&bytes).unwrap(), now);
        }
        // Any other kind is refused.
        let other = Before {
            kind: "stolen".into(),
            receipt: vec![],
            inclusion: None,
        };
        assert!(cbor::from_slice::<BundleReceipt>(&cbor::to_vec(&other).unwrap()).is_err());
    }

    #[test]
    fn a_good_log_verifies() {
        let (entries, cps, v, _) = setup();
        let r = verify_log(&entries, &cps, std::slice::from_ref(&v)).unwrap();
        assert_eq!((r.entries, r.checkpoints, r.uncovered), (10, 2, 1));
    }

    #[test]
    fn inclusion_proofs_hold_and_tampering_fails() {
        let (entries, cps, v, _) = setup();
        let leaves: Vec<_> = entries.iter().map(|b| merkle::leaf_hash(b)).collect();
        let proof = |index: u64| InclusionProof {
            index,
            checkpoint: cps[1].clone(),
            hashes: merkle::inclusion_proof(&leaves, index, 9)
                .unwrap()
                .into_iter()
                .map(|d| serde_bytes_vec::Bytes(d.0.to_vec()))
                .collect(),
        };
        for i in 0..9 {
            let p = InclusionProof::decode(&proof(i).encode().unwrap()).unwrap();
            assert_eq!(p.verify(&leaves[i as usize], &v), Ok(9));
        }
        // Another leaf, a changed path, an entry beyond the checkpoint.
        assert!(matches!(
            proof(3).verify(&leaves[4], &v),
            Err(InclusionError::Proof {
                index: 3,
                size: 9,
                ..
            })
        ));
        let mut p = proof(3);
        p.hashes[0].0[0] ^= 1;
        assert!(p.verify(&leaves[3], &v).is_err());
        let mut p = proof(3);
        p.hashes[1].0.pop();
        assert_eq!(p.verify(&leaves[3], &v), Err(InclusionError::Hash(1)));
        let p = InclusionProof {
            index: 9,
            ..proof(3)
        };
        assert!(p.verify(&leaves[9], &v).is_err());
        // A checkpoint signed by another key.
        let other = SigningKey::from_bytes(&[9; 32]);
        let p = InclusionProof {
            checkpoint: checkpoint(&entries, 9, &other),
            ..proof(3)
        };
        assert!(matches!(
            p.verify(&leaves[3], &v),
            Err(InclusionError::Checkpoint(_))
        ));
        // The peer exchange round-trips.
        let ask = PeerRequest::Prove {
            indexes: vec![1, 5],
        };
        assert_eq!(PeerRequest::decode(&ask.encode().unwrap()).unwrap(), ask);
        let answer = PeerResponse::Proofs {
            proofs: vec![proof(1), proof(5)],
        };
        assert_eq!(
            PeerResponse::decode(&answer.encode().unwrap()).unwrap(),
            answer
        );
    }

    #[test]
    fn every_tampering_is_named() {
        let (entries, cps, v, key) = setup();
        // A flipped byte in entry 2 (its code text): entry 3's link names it.
        let flip = |e: &mut Vec<Vec<u8>>, i: usize, at: usize| {
            let at = e[i].len() - at;
            e[i][at] ^= 0x01;
        };
        let mut e = entries.clone();
        let at = e[2].windows(2).position(|w| w == b"e2").unwrap() + 1;
        e[2][at] ^= 0x01; // code "e2" becomes "e3"
        assert!(Entry::decode(&e[2]).is_ok(), "still a valid entry");
        let err = verify_log(&e, &cps, std::slice::from_ref(&v)).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Changed {
                    index: 2,
                    next: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("entry 2 was changed"), "{err}");
        // A flipped byte in entry 5's own link (prev): entry 5 is named.
        let mut e = entries.clone();
        flip(&mut e, 5, 1);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::Changed {
                index: 5,
                next: 6,
                ..
            })
        ));
        // The last entry a checkpoint covers (8, checkpoint size 9) has no
        // successor link checked before the root: the root names it.
        let mut e = entries.clone();
        let at = e[8].windows(2).position(|w| w == b"e8").unwrap() + 1;
        e[8][at] ^= 0x01;
        let err = verify_log(&e[..9], &cps, std::slice::from_ref(&v)).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::RootMismatch {
                    number: 2,
                    size: 9,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("entry 8 was changed"), "{err}");
        // The last entry's own link altered: the pair is named.
        let mut e = entries.clone();
        flip(&mut e, 9, 1);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::LastLinkBroken { index: 9 })
        ));
        // A flipped byte that breaks the CBOR.
        let mut e = entries.clone();
        e[5][0] ^= 0xff;
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::BadEntry { index: 5, .. })
        ));
        // A dropped entry.
        let mut e = entries.clone();
        e.remove(3);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::OutOfOrder {
                position: 3,
                claimed: 4
            })
        ));
        // Two entries swapped.
        let mut e = entries.clone();
        e.swap(6, 7);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::OutOfOrder {
                position: 6,
                claimed: 7
            })
        ));
        // A replaced checkpoint, signed by another key.
        let other = SigningKey::from_bytes(&[9; 32]);
        let forged = vec![cps[0].clone(), checkpoint(&entries, 9, &other)];
        assert!(matches!(
            verify_log(&entries, &forged, std::slice::from_ref(&v)),
            Err(LogError::BadCheckpoint { number: 2, .. })
        ));
        // ... unless that key is the log's too (rotated): given both keys,
        // the older checkpoint by one and the newer by the other verify.
        let rotated = NoteVerifier::ed25519(ORIGIN, other.verifying_key()).unwrap();
        verify_log(&entries, &forged, &[v.clone(), rotated]).unwrap();
        // A log cut back below its checkpoint (rolled back).
        assert!(matches!(
            verify_log(&entries[..7], &cps, std::slice::from_ref(&v)),
            Err(LogError::Truncated {
                number: 2,
                size: 9,
                entries: 7
            })
        ));
        // A rewritten history with a new, validly signed checkpoint still
        // contradicts the older checkpoint.
        let mut e = log(10);
        e[1] = Entry {
            index: 1,
            code: Some("rewritten".into()),
            prev: Some(merkle::leaf_hash(&e[0])),
            ..Entry::new(Timestamp(1), Event::Started)
        }
        .encode();
        // ... with the chain after it rebuilt too.
        for i in 2..e.len() {
            let mut next = Entry::decode(&e[i]).unwrap();
            next.prev = Some(merkle::leaf_hash(&e[i - 1]));
            e[i] = next.encode();
        }
        let rewritten = vec![cps[0].clone(), checkpoint(&e, 9, &key)];
        assert!(matches!(
            verify_log(&e, &rewritten, std::slice::from_ref(&v)),
            Err(LogError::RootMismatch { number: 1, .. })
        ));
    }
}

/// The peers whose valid cosignature/v1 a checkpoint note carries, with the
/// time each cosigned; `peers` are (authority, log key) pairs from the roster.
/// A line in a peer's name and key id that does not verify is an error
/// (a forged cosignature), naming the peer.
pub fn cosigners(
    note: &[u8],
    peers: &[(AuthorityId, ed25519_dalek::VerifyingKey)],
) -> Result<Vec<(AuthorityId, u64)>, (AuthorityId, crate::checkpoint::CheckpointError)> {
    cosigners_with(note, peers, &crate::batch::Strict)
}

/// [`cosigners`], with the signatures checked by `sigs` (for
/// [`crate::batch::batched`]).
pub fn cosigners_with(
    note: &[u8],
    peers: &[(AuthorityId, ed25519_dalek::VerifyingKey)],
    sigs: &dyn crate::batch::SignatureCheck,
) -> Result<Vec<(AuthorityId, u64)>, (AuthorityId, crate::checkpoint::CheckpointError)> {
    use crate::checkpoint::{CheckpointError, NoteVerifier, SignedCheckpoint};
    let Ok(signed) = SignedCheckpoint::parse(note) else {
        return Ok(vec![]);
    };
    let mut found = Vec::new();
    for (id, key) in peers {
        let Ok(v) = NoteVerifier::cosigner(&log_origin(id), *key) else {
            continue;
        };
        match signed.verify_cosignature_with(&v, sigs) {
            Ok(time) => found.push((id.clone(), time)),
            Err(CheckpointError::MissingSignature { .. }) => {}
            Err(e) => return Err((id.clone(), e)),
        }
    }
    Ok(found)
}

/// The format name of an audit bundle.
pub const BUNDLE_FORMAT: &str = "kurir-audit-bundle/1";

/// Proof that one entry of an authority's log is in a checkpoint that
/// authority signed: what a sender keeps beside a receipt once the
/// receiver's checkpoints cover the entry the receipt names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The entry's leaf index.
    pub index: u64,
    /// The checkpoint note, signed by the log's key (cosignatures it
    /// carried are kept, and need not verify here).
    #[serde(with = "cbor::bytes")]
    pub checkpoint: Vec<u8>,
    /// The RFC 9162 audit path, from the leaf's sibling upwards.
    pub hashes: Vec<serde_bytes_vec::Bytes>,
}

/// Why an [`InclusionProof`] does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The checkpoint does not parse or is not signed by the log's key.
    #[error("its checkpoint is not valid: {0}")]
    Checkpoint(String),
    /// A hash is not 32 bytes long.
    #[error("hash {0} of the proof is not 32 bytes long")]
    Hash(usize),
    /// The path does not lead from the entry to the checkpoint's root.
    #[error("it does not prove entry {index} in the checkpoint of size {size}: {reason}")]
    Proof {
        /// The entry.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// What failed.
        reason: String,
    },
}

impl InclusionProof {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<InclusionProof, CborError> {
        cbor::from_slice(bytes)
    }

    /// Checks that `leaf` is entry [`InclusionProof::index`] of the tree
    /// whose checkpoint `log` signed; returns the checkpoint's size.
    pub fn verify(
        &self,
        leaf: &Digest,
        log: &crate::checkpoint::NoteVerifier,
    ) -> Result<u64, InclusionError> {
        self.verify_with(leaf, log, &crate::batch::Strict)
    }

    /// [`InclusionProof::verify`], with the checkpoint's signature checked
    /// by `sigs` (for [`crate::batch::batched`]).
    pub fn verify_with(
        &self,
        leaf: &Digest,
        log: &crate::checkpoint::NoteVerifier,
        sigs: &dyn crate::batch::SignatureCheck,
    ) -> Result<u64, InclusionError> {
        let signed = crate::checkpoint::SignedCheckpoint::parse(&self.checkpoint)
            .map_err(|e| InclusionError::Checkpoint(e.to_string()))?;
        signed
            .verify_with(log, sigs)
            .map_err(|e| InclusionError::Checkpoint(format!("not signed by the log key: {e}")))?;
        let hashes = self
            .hashes
            .iter()
            .enumerate()
            .map(|(i, h)| Digest::from_slice(&h.0).ok_or(InclusionError::Hash(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let size = signed.checkpoint().size();
        merkle::verify_inclusion(leaf, self.index, size, &hashes, signed.checkpoint().root())
            .map_err(|e| InclusionError::Proof {
                index: self.index,
                size,
                reason: e.to_string(),
            })?;
        Ok(size)
    }
}

/// The most entries one [`PeerRequest::Prove`] may ask about.
pub const MAX_PROVE: usize = 64;

/// Whether the exporting relay signed a receipt of its bundle or holds it
/// from a peer. On the wire, the text `issued` or `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// Signed by the exporting relay, for a message it received (or refused).
    Issued,
    /// Signed by a peer, for a message the exporting relay sent.
    Held,
}

impl ReceiptKind {
    /// The wire name: `issued` or `held`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Issued => "issued",
            ReceiptKind::Held => "held",
        }
    }
}

impl fmt::Display for ReceiptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A receipt kept with a bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleReceipt {
    /// Issued (signed by the exporting relay for a message it received)
    /// or held (signed by a peer for a message the exporting relay sent).
    pub kind: ReceiptKind,
    /// The receipt bytes (COSE_Sign1).
    #[serde(with = "cbor::bytes")]
    pub receipt: Vec<u8>,
    /// For a held acceptance: once the receiver's checkpoints cover the
    /// entry it names, the proof of that entry in one of them
    /// ([`InclusionProof`] bytes). Absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<serde_bytes_vec::Bytes>,
}

/// A self-contained export of one relay's audit log: everything an auditor
/// needs to verify it offline. Stored as deterministic CBOR (`bundle.cbor`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The authority whose log this is.
    pub authority: AuthorityId,
    /// When the export was made.
    pub exported_at: Timestamp,
    /// The roster the relay had accepted (signed file bytes).
    #[serde(with = "cbor::bytes")]
    pub roster: Vec<u8>,
    /// Every roster the relay accepted over its life (signed file bytes),
    /// oldest version first; the last is `roster`. Keys that signed older
    /// entries, checkpoints and receipts are in them.
    pub rosters: Vec<serde_bytes_vec::Bytes>,
    /// Every entry, in order, exactly as stored.
    pub entries: Vec<serde_bytes_vec::Bytes>,
    /// Every checkpoint (signed notes), oldest first.
    pub checkpoints: Vec<serde_bytes_vec::Bytes>,
    /// Receipts issued and held.
    pub receipts: Vec<BundleReceipt>,
    /// The signed envelope (COSE_Sign1, `PROTOCOL.md` §8; no body) of every
    /// message the relay sent or received, in the order of their entries.
    pub envelopes: Vec<serde_bytes_vec::Bytes>,
}

/// A byte string inside a CBOR array.
pub mod serde_bytes_vec {
    /// Serializes as a CBOR byte string.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    pub struct Bytes(#[serde(with = "crate::cbor::bytes")] pub Vec<u8>);
}

impl Bundle {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, CborError> {
        let b: Bundle = cbor::from_slice(bytes)?;
        if b.format != BUNDLE_FORMAT {
            return Err(CborError::Schema(format!(
                "format {:?}, expected {BUNDLE_FORMAT:?}",
                b.format
            )));
        }
        Ok(b)
    }
}

/// The origin line of an authority's checkpoints, also the key name of its
/// log signatures: `kurir/<AUTHORITY>`.
pub fn log_origin(authority: &AuthorityId) -> String {
    format!("kurir/{authority}")
}

/// A control request between relays on ALPN `kurir/1`. A peer stream's first
/// frame is either a parcel (a CBOR array) or one of these (a CBOR map with
/// an `op` key); the receiving relay tells them apart by the first byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerRequest {
    /// Please cosign my newest checkpoint.
    Cosign {
        /// The checkpoint note, signed by the sender's log key.
        #[serde(with = "cbor::bytes")]
        checkpoint: Vec<u8>,
        /// The size of the last checkpoint of mine you cosigned (0 if none).
        old_size: u64,
        /// RFC 9162 consistency proof from `old_size` to the new size.
        proof: Vec<serde_bytes_vec::Bytes>,
    },
    /// Please prove that these entries of your log (named by receipts you
    /// signed me) are in your newest checkpoint. At most [`MAX_PROVE`].
    Prove {
        /// Leaf indexes.
        indexes: Vec<u64>,
    },
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerResponse {
    /// The checkpoint note with the witness's cosignature/v1 line added.
    Cosigned {
        /// The cosigned note.
        #[serde(with = "cbor::bytes")]
        note: Vec<u8>,
    },
    /// Not cosigned, and why (a fork is refused for good).
    Refused {
        /// Why.
        reason: String,
        /// The size of the last checkpoint of yours this witness cosigned, so
        /// the sender can send a proof from there.
        witnessed_size: u64,
    },
    /// Inclusion proofs, for the asked entries the newest checkpoint covers
    /// (the others are left out: ask again after the next checkpoint).
    Proofs {
        /// One per covered entry, each against the same newest checkpoint.
        proofs: Vec<InclusionProof>,
    },
}

impl PeerRequest {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<PeerRequest, CborError> {
        cbor::from_slice(bytes)
    }
}

impl PeerResponse {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<PeerResponse, CborError> {
        cbor::from_slice(bytes)
    }
}
