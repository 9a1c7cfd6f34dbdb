//! The signed message header: a deterministic-CBOR map with small integer keys.
//!
//! | key | field         | CBOR type                 | presence                    |
//! |-----|---------------|---------------------------|-----------------------------|
//! | 0   | `v`           | uint, = 1                 | always                      |
//! | 1   | `id`          | bstr, 16 (UUIDv7)         | always                      |
//! | 2   | `kind`        | tstr                      | always                      |
//! | 3   | `from`        | tstr (authority id)       | always                      |
//! | 4   | `to`          | array of tstr, ascending  | always, 1 to 16             |
//! | 5   | `created_at`  | uint (Unix ms)            | always                      |
//! | 6   | `expires_at`  | uint (Unix ms)            | always, > `created_at`      |
//! | 7   | `case_id`     | tstr                      | readmission kinds           |
//! | 8   | `in_reply_to` | bstr, 16                  | replies and decisions       |
//! | 9   | `procedure`   | tstr                      | readmission requests        |
//! | 10  | `handling`    | tstr `H0`..`H3`           | always                      |
//! | 11  | `legal_basis` | tstr                      | optional                    |
//! | 12  | `body_digest` | bstr, 32                  | always                      |
//!
//! Optional fields that are absent are left out of the map. `docs/PROTOCOL.md`
//! is the normative text.

use ciborium::value::Value;

use crate::cbor::{self, CborError, FieldError, IntMap, invalid, uint};
use crate::digest::Digest;
use crate::ids::{AuthorityId, CaseId, MessageId};
use crate::message::{Handling, MessageKind, Procedure};
use crate::time::Timestamp;

/// The header format version this crate writes and reads.
pub const VERSION: u64 = 1;

/// The most recipients one envelope may name.
pub const MAX_RECIPIENTS: usize = 16;

/// The longest `legal_basis`, in bytes.
pub const MAX_LEGAL_BASIS: usize = 512;

mod key {
    pub(super) const V: u64 = 0;
    pub(super) const ID: u64 = 1;
    pub(super) const KIND: u64 = 2;
    pub(super) const FROM: u64 = 3;
    pub(super) const TO: u64 = 4;
    pub(super) const CREATED_AT: u64 = 5;
    pub(super) const EXPIRES_AT: u64 = 6;
    pub(super) const CASE_ID: u64 = 7;
    pub(super) const IN_REPLY_TO: u64 = 8;
    pub(super) const PROCEDURE: u64 = 9;
    pub(super) const HANDLING: u64 = 10;
    pub(super) const LEGAL_BASIS: u64 = 11;
    pub(super) const BODY_DIGEST: u64 = 12;
}

/// What the sender signs: who sends what to whom, when, about which case,
/// and the digest of the body that travels beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Unique message id.
    pub id: MessageId,
    /// What the body is.
    pub kind: MessageKind,
    /// The sending authority.
    pub from: AuthorityId,
    /// The recipient authorities, in ascending order, without repeats.
    pub to: Vec<AuthorityId>,
    /// When the sender created the message.
    pub created_at: Timestamp,
    /// After this point the message must not be delivered.
    pub expires_at: Timestamp,
    /// The readmission case.
    pub case_id: Option<CaseId>,
    /// The message this one answers.
    pub in_reply_to: Option<MessageId>,
    /// The readmission procedure.
    pub procedure: Option<Procedure>,
    /// Sensitivity.
    pub handling: Handling,
    /// The legal basis for sending the data, e.g. "Art. 7 EU–RS readmission agreement".
    pub legal_basis: Option<String>,
    /// [`Digest::of_body`] of the salt and the body. [`crate::seal`] fills it in.
    pub body_digest: Digest,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The CBOR itself is refused.
    #[error("header: {0}")]
    Cbor(#[from] CborError),
    /// A version this crate does not read.
    #[error("header version {0} is not supported (this software reads version {VERSION})")]
    UnsupportedVersion(u64),
    /// A field is missing, unknown, mistyped or invalid.
    #[error("header: {0}")]
    Field(#[from] FieldError),
    /// The fields break a rule that spans them.
    #[error("header: {0}")]
    Rule(String),
}

impl Header {
    /// The deterministic-CBOR encoding. Fails if the header breaks a rule
    /// (see [`Header::check`]).
    pub fn encode(&self) -> Result<Vec<u8>, HeaderError> {
        self.check()?;
        let mut map = vec![
            (key::V, Value::from(VERSION)),
            (key::ID, Value::Bytes(self.id.as_bytes().to_vec())),
            (key::KIND, Value::Text(self.kind.as_str().to_owned())),
            (key::FROM, Value::Text(self.from.to_string())),
            (
                key::TO,
                Value::Array(self.to.iter().map(|a| Value::Text(a.to_string())).collect()),
            ),
            (key::CREATED_AT, Value::from(self.created_at.0)),
            (key::EXPIRES_AT, Value::from(self.expires_at.0)),
            (
                key::HANDLING,
                Value::Text(self.handling.as_str().to_owned()),
            ),
            (key::BODY_DIGEST, Value::Bytes(self.body_digest.0.to_vec())),
        ];
        if let Some(case) = &self.case_id {
            map.push((key::CASE_ID, Value::Text(case.to_string())));
        }
        if let Some(id) = &self.in_reply_to {
            map.push((key::IN_REPLY_TO, Value::Bytes(id.as_bytes().to_vec())));
        }
        if let Some(p) = self.procedure {
            map.push((key::PROCEDURE, Value::Text(p.as_str().to_owned())));
        }
        if let Some(basis) = &self.legal_basis {
            map.push((key::LEGAL_BASIS, Value::Text(basis.clone())));
        }
        let map = map.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
        Ok(cbor::encode_value(&Value::Map(map))?)
    }

    /// Decodes and checks a header.
    ///
    /// A header laid out as [`Header::encode`] writes it is read in place
    /// (`Header::read_in_place`); anything else, and any header that
    /// breaks a rule, is read through a CBOR value, whose path names what
    /// is wrong. Both accept the same headers with the same result (a
    /// proptest holds them to it).
    pub fn decode(bytes: &[u8]) -> Result<Header, HeaderError> {
        match Header::read_in_place(bytes) {
            Some(header) => Ok(header),
            None => Header::decode_via_value(bytes),
        }
    }

    /// The header in `bytes` if they are its deterministic encoding and it
    /// keeps every rule; `None` for anything else. Every head in its
    /// shortest form, the keys ascending and each field of its one type:
    /// the bytes are then the encoding of the map they hold, which is what
    /// [`cbor::decode_value`] checks.
    fn read_in_place(bytes: &[u8]) -> Option<Header> {
        let mut v = None;
        let (mut id, mut kind, mut from, mut to) = (None, None, None, None);
        let (mut created_at, mut expires_at, mut case_id, mut in_reply_to) =
            (None, None, None, None);
        let (mut procedure, mut handling, mut legal_basis, mut body_digest) =
            (None, None, None, None);
        cbor::read_int_map(bytes, |k, after| {
            Some(match k {
                key::V | key::CREATED_AT | key::EXPIRES_AT => {
                    let (n, after) = cbor::split_uint(after)?;
                    match k {
                        key::V => v = Some(n),
                        key::CREATED_AT => created_at = Some(n),
                        _ => expires_at = Some(n),
                    }
                    after
                }
                key::ID | key::IN_REPLY_TO => {
                    let (b, after) = cbor::split_byte_string(after)?;
                    let read = MessageId::from_bytes(b.try_into().ok()?).ok()?;
                    match k {
                        key::ID => id = Some(read),
                        _ => in_reply_to = Some(read),
                    }
                    after
                }
                key::BODY_DIGEST => {
                    let (b, after) = cbor::split_byte_string(after)?;
                    body_digest = Some(Digest::from_slice(b)?);
                    after
                }
                key::TO => {
                    let (4, n, mut items) = cbor::split_head(after)? else {
                        return None;
                    };
                    let mut all =
                        Vec::with_capacity(usize::try_from(n).ok()?.min(MAX_RECIPIENTS + 1));
                    for _ in 0..n {
                        let (s, after) = cbor::split_text_string(items)?;
                        all.push(AuthorityId::parse(s).ok()?);
                        items = after;
                    }
                    to = Some(all);
                    items
                }
                _ => {
                    let (s, after) = cbor::split_text_string(after)?;
                    match k {
                        key::KIND => kind = Some(s.parse().ok()?),
                        key::FROM => from = Some(AuthorityId::parse(s).ok()?),
                        key::CASE_ID => case_id = Some(CaseId::parse(s).ok()?),
                        key::PROCEDURE => procedure = Some(Procedure::parse(s)?),
                        key::HANDLING => handling = Some(Handling::parse(s)?),
                        key::LEGAL_BASIS => legal_basis = Some(s.to_owned()),
                        _ => return None,
                    }
                    after
                }
            })
        })?;
        if v != Some(VERSION) {
            return None;
        }
        let header = Header {
            id: id?,
            kind: kind?,
            from: from?,
            to: to?,
            created_at: Timestamp(created_at?),
            expires_at: Timestamp(expires_at?),
            case_id,
            in_reply_to,
            procedure,
            handling: handling?,
            legal_basis,
            body_digest: body_digest?,
        };
        header.check().ok().map(|()| header)
    }

    /// [`Header::decode`] through a CBOR value.
    fn decode_via_value(bytes: &[u8]) -> Result<Header, HeaderError> {
        let value = cbor::decode_value(bytes)?;
        let mut m = IntMap::new(value)?;
        // The version first: a later version may define other keys.
        let v = uint(m.need(key::V, "v")?, key::V, "v")?;
        if v != VERSION {
            return Err(HeaderError::UnsupportedVersion(v));
        }
        let header = Header {
            id: message_id(m.need(key::ID, "id")?, key::ID, "id")?,
            kind: parse_text(m.need(key::KIND, "kind")?, key::KIND, "kind", |s| {
                s.parse()
                    .map_err(|e: crate::message::UnknownKind| e.to_string())
            })?,
            from: authority(m.need(key::FROM, "from")?, key::FROM, "from")?,
            to: match m.need(key::TO, "to")? {
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| authority(v, key::TO, "to"))
                    .collect::<Result<_, _>>()?,
                _ => return Err(invalid(key::TO, "to", "expected an array"))?,
            },
            created_at: Timestamp(uint(
                m.need(key::CREATED_AT, "created_at")?,
                key::CREATED_AT,
                "created_at",
            )?),
            expires_at: Timestamp(uint(
                m.need(key::EXPIRES_AT, "expires_at")?,
                key::EXPIRES_AT,
                "expires_at",
            )?),
            case_id: m
                .take(key::CASE_ID)
                .map(|v| {
                    parse_text(v, key::CASE_ID, "case_id", |s| {
                        CaseId::parse(s).map_err(|e| e.to_string())
                    })
                })
                .transpose()?,
            in_reply_to: m
                .take(key::IN_REPLY_TO)
                .map(|v| message_id(v, key::IN_REPLY_TO, "in_reply_to"))
                .transpose()?,
            procedure: m
                .take(key::PROCEDURE)
                .map(|v| {
                    parse_text(v, key::PROCEDURE, "procedure", |s| {
                        Procedure::parse(s)
                            .ok_or_else(|| "expected standard, accelerated or transit".to_owned())
                    })
                })
                .transpose()?,
            handling: parse_text(
                m.need(key::HANDLING, "handling")?,
                key::HANDLING,
                "handling",
                |s| Handling::parse(s).ok_or_else(|| "expected H0, H1, H2 or H3".to_owned()),
            )?,
            legal_basis: m
                .take(key::LEGAL_BASIS)
                .map(|v| parse_text(v, key::LEGAL_BASIS, "legal_basis", |s| Ok(s.to_owned())))
                .transpose()?,
            body_digest: match m.need(key::BODY_DIGEST, "body_digest")? {
                Value::Bytes(b) => Digest::from_slice(&b)
                    .ok_or_else(|| invalid(key::BODY_DIGEST, "body_digest", "expected 32 bytes"))?,
                _ => {
                    return Err(invalid(
                        key::BODY_DIGEST,
                        "body_digest",
                        "expected a byte string",
                    ))?;
                }
            },
        };
        m.finish()?;
        header.check()?;
        Ok(header)
    }

    /// Checks the rules that span several fields.
    pub fn check(&self) -> Result<(), HeaderError> {
        let rule = |s: String| Err(HeaderError::Rule(s));
        let kind = self.kind;
        if self.to.is_empty() {
            return rule("`to` names no recipient".into());
        }
        if self.to.len() > MAX_RECIPIENTS {
            return rule(format!("`to` names more than {MAX_RECIPIENTS} recipients"));
        }
        if self.to.len() > 1 && !kind.allows_several_recipients() {
            return rule(format!("a {kind} goes to exactly one recipient"));
        }
        if self.to.windows(2).any(|w| w[0] >= w[1]) {
            return rule("`to` must be in ascending order without repeats".into());
        }
        if self.to.contains(&self.from) {
            return rule(format!("{} sends to itself", self.from));
        }
        if self.expires_at <= self.created_at {
            return rule("`expires_at` is not after `created_at`".into());
        }
        if kind.needs_case() && self.case_id.is_none() {
            return rule(format!("a {kind} must name its case (`case_id`)"));
        }
        if kind.needs_in_reply_to() && self.in_reply_to.is_none() {
            return rule(format!(
                "a {kind} must name the message it answers (`in_reply_to`)"
            ));
        }
        if kind == MessageKind::ReadmissionRequest && self.procedure.is_none() {
            return rule("a readmission-request must name its `procedure`".into());
        }
        if self
            .legal_basis
            .as_ref()
            .is_some_and(|b| b.len() > MAX_LEGAL_BASIS)
        {
            return rule(format!(
                "`legal_basis` is longer than {MAX_LEGAL_BASIS} bytes"
            ));
        }
        Ok(())
    }
}

fn parse_text<T>(
    v: Value,
    key: u64,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, FieldError> {
    match v {
        Value::Text(s) => parse(&s).map_err(|reason| FieldError::Invalid { key, name, reason }),
        _ => Err(invalid(key, name, "expected a text string")),
    }
}

fn authority(v: Value, key: u64, name: &'static str) -> Result<AuthorityId, FieldError> {
    parse_text(v, key, name, |s| {
        AuthorityId::parse(s).map_err(|e| e.to_string())
    })
}

fn message_id(v: Value, key: u64, name: &'static str) -> Result<MessageId, FieldError> {
    match v {
        Value::Bytes(b) => {
            let bytes: [u8; 16] = b
                .try_into()
                .map_err(|_| invalid(key, name, "expected 16 bytes"))?;
            MessageId::from_bytes(bytes).map_err(|e| FieldError::Invalid {
                key,
                name,
                reason: e.to_string(),
            })
        }
        _ => Err(invalid(key, name, "expected a byte string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AUTHORITIES: [&str; 4] = ["BA.SPS", "ME.UP", "MK.MVR", "RS.MUP"];

    /// A header map as `Header::encode` would write it, but with any
    /// fields, so that some break the rules: each field `Some` is written,
    /// in key order.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per header field, as the proptest draws them"
    )]
    fn written(
        v: u64,
        kind: usize,
        from: usize,
        to: Vec<usize>,
        created_at: u64,
        expires_after: i64,
        case: Option<&str>,
        in_reply_to: bool,
        procedure: Option<&str>,
        handling: &str,
        legal_basis: Option<String>,
        extra: Option<u64>,
    ) -> Vec<u8> {
        let id = |n: u64| Value::Bytes(MessageId::new_v7(n, [n as u8; 10]).as_bytes().to_vec());
        let text = |s: &str| Value::Text(s.to_owned());
        let mut map = vec![
            (key::V, Value::from(v)),
            (key::ID, id(created_at)),
            (key::KIND, text(MessageKind::ALL[kind].as_str())),
            (key::FROM, text(AUTHORITIES[from])),
            (
                key::TO,
                Value::Array(to.into_iter().map(|a| text(AUTHORITIES[a])).collect()),
            ),
            (key::CREATED_AT, Value::from(created_at)),
            (
                key::EXPIRES_AT,
                Value::from(created_at.saturating_add_signed(expires_after)),
            ),
            (key::HANDLING, text(handling)),
            (key::BODY_DIGEST, Value::Bytes(vec![9; 32])),
        ];
        if let Some(case) = case {
            map.push((key::CASE_ID, text(case)));
        }
        if in_reply_to {
            map.push((key::IN_REPLY_TO, id(created_at + 1)));
        }
        if let Some(p) = procedure {
            map.push((key::PROCEDURE, text(p)));
        }
        if let Some(basis) = legal_basis {
            map.push((key::LEGAL_BASIS, Value::Text(basis)));
        }
        if let Some(k) = extra {
            map.push((k, Value::from(1u64)));
        }
        map.sort_by_key(|(k, _)| *k);
        let map = map.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
        cbor::encode_value(&Value::Map(map)).unwrap()
    }

    proptest! {
        /// Reading a header in place gives what reading it through a CBOR
        /// value gives: the same header, or the same refusal, for headers
        /// that keep the rules and those that break them, as written and
        /// with their bytes changed, cut short or lengthened.
        #[test]
        fn the_reading_in_place_is_the_value_readings(
            v in prop_oneof![4 => Just(VERSION), 1 => 0u64..3],
            kind in 0usize..8,
            from in 0usize..4,
            to in proptest::collection::vec(0usize..4, 0..4),
            created_at in 1_700_000_000_000u64..1_800_000_000_000,
            expires_after in prop_oneof![4 => 1i64..1_000_000, 1 => -10i64..10],
            case in proptest::option::of(prop_oneof![
                Just("RS.MUP:2026-000123"), Just("RS.MUP:"), Just("nope")
            ]),
            in_reply_to: bool,
            procedure in proptest::option::of(prop_oneof![Just("standard"), Just("slow")]),
            handling in prop_oneof![Just("H0"), Just("H2"), Just("H9")],
            legal_basis in proptest::option::of("[a-z ]{0,20}"),
            extra in proptest::option::of(13u64..30),
            change in proptest::option::of((any::<proptest::sample::Index>(), 1u8..=255)),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
            more in proptest::collection::vec(any::<u8>(), 0..2),
        ) {
            let mut to = to;
            to.sort_unstable();
            to.dedup();
            let bytes = written(
                v, kind, from, to, created_at, expires_after, case, in_reply_to, procedure,
                handling, legal_basis, extra,
            );
            let bytes = cbor::mangled(bytes, change, cut, &more);
            let in_place = Header::decode(&bytes);
            let via_value = Header::decode_via_value(&bytes);
            cbor::same_reading(in_place, via_value)?;
        }
    }

    /// A header as kurir writes it is read in place; one with a head
    /// longer than it needs is not, and is refused as not canonical.
    #[test]
    fn an_encoded_header_is_read_in_place() {
        let bytes = written(
            VERSION,
            0,
            3,
            vec![0],
            1_750_000_000_000,
            1_000,
            None,
            false,
            None,
            "H1",
            None,
            None,
        );
        let header = Header::read_in_place(&bytes).unwrap();
        assert_eq!(header.encode().unwrap(), bytes);
        // The version, 1, written in two bytes instead of one.
        assert_eq!(bytes[1..3], [0x00, 0x01]);
        let mut long = bytes.clone();
        long.splice(2..3, [0x18, 0x01]);
        assert!(Header::read_in_place(&long).is_none());
        assert_eq!(
            Header::decode(&long),
            Err(HeaderError::Cbor(CborError::NonCanonical))
        );
    }
}
