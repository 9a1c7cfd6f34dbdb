//! Deterministic CBOR (RFC 8949 §4.2.1) for everything kurir signs or hashes.
//!
//! The profile is small on purpose: unsigned and negative integers, byte
//! strings, text strings, arrays, maps, `true`, `false` and `null`. Floats,
//! tags (outside the COSE envelope, see [`crate::envelope`]), undefined and
//! other simple values are refused. Encoding rules:
//!
//! - every length and integer in its shortest form, definite lengths only;
//! - map keys sorted by the bytewise lexicographic order of their encodings
//!   (§4.2.1, not the length-first order of §4.2.3), no duplicate keys.
//!
//! Decoding parses, re-encodes with these rules, and refuses input whose
//! bytes differ, so every accepted value has exactly one encoding.
//!
//! # Layout
//!
//! - this file: the profile's errors, the encoder over `ciborium::Value`
//!   ([`encode_value`]), the decoders, and the integer-keyed map reader;
//! - `ser`: a serde serializer that writes the same encoding straight from
//!   a typed value ([`to_vec`]), without building a `Value` tree first.

use ciborium::value::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod ser;

/// How deep arrays and maps may nest in anything kurir decodes.
pub const MAX_DEPTH: usize = 32;

/// Why CBOR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The bytes are not well-formed CBOR (or nest deeper than [`MAX_DEPTH`]).
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// Well-formed, but data follows the first item.
    #[error("malformed CBOR: {0} bytes after the end of the item")]
    TrailingBytes(usize),
    /// Well-formed, but not in the deterministic encoding.
    #[error(
        "CBOR is not in deterministic encoding (RFC 8949 §4.2.1: shortest lengths, \
         definite lengths, map keys sorted bytewise)"
    )]
    NonCanonical,
    /// A map holds the same key twice.
    #[error("CBOR map holds a duplicate key")]
    DuplicateKey,
    /// An item outside kurir's CBOR profile.
    #[error("CBOR {0} is not allowed in kurir data")]
    Unsupported(&'static str),
    /// The CBOR is fine but does not have the expected fields or types.
    #[error("unexpected content: {0}")]
    Schema(String),
}

/// Encodes a value deterministically.
pub fn encode_value(value: &Value) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    write_value(value, &mut out, 0)?;
    Ok(out)
}

/// [`encode_value`], appended to `out`.
pub fn encode_value_into(value: &Value, out: &mut Vec<u8>) -> Result<(), CborError> {
    write_value(value, out, 0)
}

/// Decodes one deterministic-CBOR item that fills `bytes` exactly.
pub fn decode_value(bytes: &[u8]) -> Result<Value, CborError> {
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_DEPTH)
        .map_err(|e| CborError::Malformed(describe_de_error(&e)))?;
    if !reader.is_empty() {
        return Err(CborError::TrailingBytes(reader.len()));
    }
    let again = encode_value(&value)?;
    if again != bytes {
        return Err(CborError::NonCanonical);
    }
    Ok(value)
}

/// Serializes a serde type to deterministic CBOR.
///
/// Written straight from the value: the same bytes, and the same refusal,
/// as [`encode_value`] of the `Value` that `Value::serialized` builds.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    ser::to_vec(value)
}

/// [`to_vec`] through a `Value` tree: the oracle the direct serializer is
/// tested against.
#[cfg(test)]
pub(crate) fn to_vec_via_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let value = Value::serialized(value).map_err(|e| CborError::Schema(e.to_string()))?;
    encode_value(&value)
}

/// Deserializes a serde type from deterministic CBOR, refusing any other encoding.
///
/// Beyond [`decode_value`], the decoded value is serialized again and must give
/// the same bytes: so a field that the type leaves out when empty cannot be
/// sent as `null` or `[]`, and every value of `T` has exactly one encoding.
pub fn from_slice<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CborError> {
    // Straight into `T`: bytes that are exactly the encoding of what they
    // decode to are deterministic CBOR within the profile (the encoder
    // writes nothing else), and a large byte string is copied once less.
    // Anything else takes the path below, which names what is wrong.
    let mut reader = bytes;
    if let Ok(decoded) =
        ciborium::de::from_reader_with_recursion_limit::<T, _>(&mut reader, MAX_DEPTH)
        && reader.is_empty()
        && to_vec(&decoded).is_ok_and(|again| again == bytes)
    {
        return Ok(decoded);
    }
    from_slice_via_value(bytes)
}

/// [`from_slice`] through a [`Value`]: checks the encoding first, so a
/// refusal names what is wrong.
fn from_slice_via_value<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CborError> {
    let value = decode_value(bytes)?;
    let decoded: T = value
        .deserialized()
        .map_err(|e| CborError::Schema(e.to_string()))?;
    if to_vec(&decoded)? != bytes {
        return Err(CborError::NonCanonical);
    }
    Ok(decoded)
}

fn describe_de_error<E: std::fmt::Debug>(e: &ciborium::de::Error<E>) -> String {
    match e {
        ciborium::de::Error::Io(_) => "the input ends in the middle of an item".to_owned(),
        ciborium::de::Error::Syntax(at) => format!("syntax error at byte {at}"),
        ciborium::de::Error::Semantic(at, what) => match at {
            Some(at) => format!("{what} at byte {at}"),
            None => what.clone(),
        },
        ciborium::de::Error::RecursionLimitExceeded => {
            format!("arrays and maps nest deeper than {MAX_DEPTH} levels")
        }
    }
}

/// The head at the start of `buf` in its shortest form ([`write_head`]):
/// its major type (0–7), its argument, and what follows it; `None` for a
/// head cut short, one not in its shortest form, or an indefinite length.
pub fn split_head(buf: &[u8]) -> Option<(u8, u64, &[u8])> {
    let (&first, rest) = buf.split_first()?;
    let (arg, rest) = match first & 0x1f {
        n @ 0..=23 => (u64::from(n), rest),
        n @ 24..=27 => {
            let (arg, rest) = rest.split_at_checked(1 << (n - 24))?;
            let arg = arg.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            // The shortest form only: the smallest width that holds it.
            let min = match n {
                24 => 24,
                25 => 0x100,
                26 => 0x1_0000,
                _ => 0x1_0000_0000,
            };
            if arg < min {
                return None;
            }
            (arg, rest)
        }
        _ => return None,
    };
    Some((first >> 5, arg, rest))
}

/// A byte string with its head in the shortest form at the start of `buf`,
/// and what follows it; `None` for anything else.
pub fn split_byte_string(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    match split_head(buf)? {
        (2, len, rest) => rest.split_at_checked(usize::try_from(len).ok()?),
        _ => None,
    }
}

/// A text string (valid UTF-8) with its head in the shortest form at the
/// start of `buf`, and what follows it; `None` for anything else.
pub fn split_text_string(buf: &[u8]) -> Option<(&str, &[u8])> {
    match split_head(buf)? {
        (3, len, rest) => {
            let (text, rest) = rest.split_at_checked(usize::try_from(len).ok()?)?;
            Some((std::str::from_utf8(text).ok()?, rest))
        }
        _ => None,
    }
}

/// Reads a map with unsigned integer keys in its deterministic encoding
/// where it lies: every head in its shortest form, the keys strictly
/// ascending (their bytewise order), nothing after the map. `field` gets
/// each key and the bytes after it, and gives back what follows the
/// value it read; `None` from it, or for anything else, is `None`.
pub fn read_int_map<'a>(
    bytes: &'a [u8],
    mut field: impl FnMut(u64, &'a [u8]) -> Option<&'a [u8]>,
) -> Option<()> {
    let (5, fields, mut rest) = split_head(bytes)? else {
        return None;
    };
    let mut last = None;
    for _ in 0..fields {
        let (k, after) = split_uint(rest)?;
        if last.is_some_and(|last| k <= last) {
            return None;
        }
        last = Some(k);
        rest = field(k, after)?;
    }
    rest.is_empty().then_some(())
}

/// An unsigned integer in its shortest form at the start of `buf`, and
/// what follows it; `None` for anything else.
pub fn split_uint(buf: &[u8]) -> Option<(u64, &[u8])> {
    match split_head(buf)? {
        (0, n, rest) => Some((n, rest)),
        _ => None,
    }
}

/// One item at the start of `buf` made only of integers, byte and text
/// strings and arrays, nesting at most [`MAX_DEPTH`] deep, every head in
/// its shortest form: its bytes, and what follows it. Such bytes are the
/// deterministic encoding of the value they hold. `None` for anything
/// else (maps, tags, simple values and floats included: a caller takes
/// its general path for those).
pub fn split_item(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = skip_item(buf, MAX_DEPTH)?;
    Some(buf.split_at(buf.len() - rest.len()))
}

/// What follows the item at the start of `buf` ([`split_item`]).
fn skip_item(buf: &[u8], depth: usize) -> Option<&[u8]> {
    match split_head(buf)? {
        (0 | 1, _, rest) => Some(rest),
        (2, _, _) => split_byte_string(buf).map(|(_, rest)| rest),
        (3, _, _) => split_text_string(buf).map(|(_, rest)| rest),
        (4, n, mut rest) => {
            let depth = depth.checked_sub(1)?;
            // Each item takes at least one byte: `n` is bounded by `buf`.
            for _ in 0..n {
                rest = skip_item(rest, depth)?;
            }
            Some(rest)
        }
        _ => None,
    }
}

/// `bytes` changed as the tests of the readers that work in place change
/// what they read: one byte flipped by `xor` at `change`, cut short at
/// `cut`, then `more` appended (each where given).
#[cfg(test)]
pub(crate) fn mangled(
    mut bytes: Vec<u8>,
    change: Option<(proptest::sample::Index, u8)>,
    cut: Option<proptest::sample::Index>,
    more: &[u8],
) -> Vec<u8> {
    if let Some((at, xor)) = change {
        let at = at.index(bytes.len());
        bytes[at] ^= xor;
    }
    if let Some(at) = cut {
        bytes.truncate(at.index(bytes.len()));
    }
    bytes.extend_from_slice(more);
    bytes
}

/// That two readings of the same bytes agree: the same value, or refusals
/// that say the same (for the tests of the readers that work in place).
#[cfg(test)]
pub(crate) fn same_reading<T, E>(
    a: Result<T, E>,
    b: Result<T, E>,
) -> Result<(), proptest::test_runner::TestCaseError>
where
    T: PartialEq + std::fmt::Debug,
    E: std::fmt::Display + std::fmt::Debug,
{
    match (a, b) {
        (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
        (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
        (a, b) => proptest::prop_assert!(false, "one reading {:?}, the other {:?}", a, b),
    }
    Ok(())
}

/// The length of a head whose argument is `n`, in its shortest form
/// ([`write_head`]).
pub fn head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Writes a CBOR head (major type and argument) in its shortest form.
pub fn write_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError::Malformed(format!(
            "arrays and maps nest deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            if i >= 0 {
                write_head(0, i as u64, out);
            } else {
                write_head(1, (-1 - i) as u64, out);
            }
        }
        Value::Bytes(b) => {
            write_head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            write_head(3, s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            write_head(4, items.len() as u64, out);
            for item in items {
                write_value(item, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            // Every key encoded into one buffer (not one allocation per
            // key), then the entries ordered by their keys' encodings.
            let mut keys = Vec::with_capacity(entries.len() * 8);
            let mut spans = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let start = keys.len();
                write_value(k, &mut keys, depth + 1)?;
                spans.push((start..keys.len(), v));
            }
            spans.sort_by(|a, b| keys[a.0.clone()].cmp(&keys[b.0.clone()]));
            if spans
                .windows(2)
                .any(|w| keys[w[0].0.clone()] == keys[w[1].0.clone()])
            {
                return Err(CborError::DuplicateKey);
            }
            write_head(5, entries.len() as u64, out);
            for (key, v) in spans {
                out.extend_from_slice(&keys[key]);
                write_value(v, out, depth + 1)?;
            }
        }
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Float(_) => return Err(CborError::Unsupported("float")),
        Value::Tag(..) => return Err(CborError::Unsupported("tag")),
        _ => return Err(CborError::Unsupported("simple value")),
    }
    Ok(())
}

/// Serde helpers that carry `Vec<u8>` and `[u8; N]` as CBOR byte strings
/// (serde's default would be an array of integers).
pub mod bytes {
    use serde::{Deserializer, Serializer};

    /// Serializes as a byte string.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Deserializes a byte string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Reads fields out of an integer-keyed CBOR map (the header and receipt
/// formats), so that a missing, mistyped or unknown field gets a clear error.
pub(crate) struct IntMap {
    entries: Vec<(u64, Value)>,
}

impl IntMap {
    /// Takes a decoded value that must be a map with unsigned integer keys.
    pub(crate) fn new(value: Value) -> Result<Self, FieldError> {
        let Value::Map(map) = value else {
            return Err(FieldError::NotAMap);
        };
        let mut entries = Vec::with_capacity(map.len());
        for (k, v) in map {
            match k {
                Value::Integer(i) => {
                    entries.push((u64::try_from(i).map_err(|_| FieldError::BadKey)?, v))
                }
                _ => return Err(FieldError::BadKey),
            }
        }
        Ok(IntMap { entries })
    }

    /// Refuses any field not yet taken: a key this version does not define.
    /// (Decoders read `v` first, so a later version is reported as such and
    /// not as an unknown field.)
    pub(crate) fn finish(self) -> Result<(), FieldError> {
        match self.entries.iter().map(|(k, _)| *k).min() {
            Some(key) => Err(FieldError::Unknown(key)),
            None => Ok(()),
        }
    }

    /// Removes and returns a field, if present.
    pub(crate) fn take(&mut self, key: u64) -> Option<Value> {
        let at = self.entries.iter().position(|(k, _)| *k == key)?;
        Some(self.entries.swap_remove(at).1)
    }

    /// Removes and returns a field that must be present.
    pub(crate) fn need(&mut self, key: u64, name: &'static str) -> Result<Value, FieldError> {
        self.take(key).ok_or(FieldError::Missing { key, name })
    }
}

/// [`FieldError::Invalid`] for field `name` (key `key`).
pub(crate) fn invalid(key: u64, name: &'static str, reason: &str) -> FieldError {
    FieldError::Invalid {
        key,
        name,
        reason: reason.to_owned(),
    }
}

/// An unsigned-integer field of an integer-keyed map.
pub(crate) fn uint(v: Value, key: u64, name: &'static str) -> Result<u64, FieldError> {
    match v {
        Value::Integer(i) => u64::try_from(i).ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(key, name, "expected an unsigned integer"))
}

/// A problem with one field of an integer-keyed map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The item is not a map.
    #[error("expected a CBOR map")]
    NotAMap,
    /// A key is not an unsigned integer.
    #[error("map keys must be unsigned integers")]
    BadKey,
    /// A key this version does not define.
    #[error("unknown field with key {0}")]
    Unknown(u64),
    /// A required field is absent.
    #[error("missing field {name} (key {key})")]
    Missing {
        /// The map key.
        key: u64,
        /// The field's name in the specification.
        name: &'static str,
    },
    /// A field has the wrong type or an invalid value.
    #[error("field {name} (key {key}): {reason}")]
    Invalid {
        /// The map key.
        key: u64,
        /// The field's name in the specification.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn int(i: i64) -> Value {
        Value::Integer(i.into())
    }

    proptest! {
        /// Every head `write_head` writes is read back whole by
        /// `split_head`, with what follows it untouched.
        #[test]
        fn split_head_reads_back_every_head_write_head_writes(
            major in 0u8..8,
            arg in prop_oneof![0u64..30, 0u64..0x1_0000, any::<u64>()],
            tail in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut buf = Vec::new();
            write_head(major, arg, &mut buf);
            prop_assert_eq!(buf.len(), head_len(arg));
            buf.extend_from_slice(&tail);
            prop_assert_eq!(split_head(&buf), Some((major, arg, &tail[..])));
        }
    }

    #[test]
    fn split_head_refuses_heads_cut_short_longer_than_needed_or_indefinite() {
        assert_eq!(split_head(&[]), None);
        // A one-byte argument with its byte missing, a four-byte one cut short.
        assert_eq!(split_head(&[0x98]), None);
        assert_eq!(split_head(&[0x5a, 0, 0, 1]), None);
        // 23 fits the first byte; 0xff fits one byte.
        assert_eq!(split_head(&[0x98, 23]), None);
        assert_eq!(split_head(&[0x99, 0, 0xff]), None);
        assert_eq!(split_head(&[0x98, 24]), Some((4, 24, &[][..])));
        // Indefinite lengths and the reserved values 28–30.
        for first in [0x5f, 0x9f, 0x9c, 0x9d, 0x9e] {
            assert_eq!(split_head(&[first, 0]), None, "{first:#x}");
        }
        // A byte string longer than what follows.
        assert_eq!(split_byte_string(&[0x43, 1, 2]), None);
        assert_eq!(
            split_byte_string(&[0x42, 1, 2, 3]),
            Some((&[1, 2][..], &[3][..]))
        );
        // Another major type is not a byte string.
        assert_eq!(split_byte_string(&[0x62, b'a', b'b']), None);
    }

    proptest! {
        /// `split_item` cuts exactly the bytes of an item of integers,
        /// strings and arrays as `encode_value` writes it, and what it
        /// accepts after any change decodes as deterministic CBOR to a
        /// value that encodes to those bytes again.
        #[test]
        fn split_item_cuts_the_deterministic_encoding_of_what_it_accepts(
            items in proptest::collection::vec(
                prop_oneof![
                    any::<u64>().prop_map(Value::from),
                    any::<i64>().prop_map(int),
                    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
                    "[a-zé]{0,30}".prop_map(Value::Text),
                ],
                0..6,
            ),
            nest in 0usize..3,
            change in proptest::option::of((any::<proptest::sample::Index>(), 1u8..=255)),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
            tail in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut value = Value::Array(items);
            for _ in 0..nest {
                value = Value::Array(vec![value, Value::from(1u64)]);
            }
            let written = encode_value(&value).unwrap();
            let mut buf = written.clone();
            buf.extend_from_slice(&tail);
            prop_assert_eq!(split_item(&buf), Some((&written[..], &tail[..])));
            let changed = mangled(written, change, cut, &tail);
            if let Some((item, _)) = split_item(&changed) {
                let decoded = decode_value(item);
                prop_assert!(decoded.is_ok(), "{:?}: {:?}", item, decoded);
                prop_assert_eq!(encode_value(&decoded.unwrap()).unwrap(), item);
            }
        }
    }

    #[test]
    fn split_item_refuses_what_is_not_its_small_profile() {
        // A map, a tag, `true`, a float, an indefinite array.
        for bytes in [
            &[0xa0][..],
            &[0xc1, 0x01],
            &[0xf5],
            &[0xf9, 0, 0],
            &[0x9f, 0xff],
        ] {
            assert_eq!(split_item(bytes), None, "{bytes:x?}");
        }
        // An array inside an array, one item short; invalid UTF-8.
        assert_eq!(split_item(&[0x82, 0x81, 0x01]), None);
        assert_eq!(split_item(&[0x61, 0xff]), None);
        // Nested deeper than MAX_DEPTH.
        let deep = [vec![0x81; MAX_DEPTH + 1], vec![0x01]].concat();
        assert_eq!(split_item(&deep), None);
        let ok = [vec![0x81; MAX_DEPTH], vec![0x01]].concat();
        assert_eq!(split_item(&ok), Some((&ok[..], &[][..])));
        assert!(decode_value(&ok).is_ok());
        assert!(decode_value(&deep).is_err());
    }

    #[test]
    fn text_strings_and_unsigned_integers_are_split_only_in_their_one_form() {
        assert_eq!(
            split_text_string(&[0x62, b'a', b'b', 7]),
            Some(("ab", &[7][..]))
        );
        // Cut short, not UTF-8, a byte string, a head longer than needed.
        assert_eq!(split_text_string(&[0x63, b'a', b'b']), None);
        assert_eq!(split_text_string(&[0x61, 0xff]), None);
        assert_eq!(split_text_string(&[0x41, b'a']), None);
        assert_eq!(split_text_string(&[0x78, 1, b'a']), None);
        assert_eq!(split_uint(&[0x18, 24, 1]), Some((24, &[1][..])));
        // A negative integer, a head longer than needed.
        assert_eq!(split_uint(&[0x20]), None);
        assert_eq!(split_uint(&[0x18, 23]), None);
    }

    proptest! {
        /// Decoding straight into the type gives what decoding through a
        /// value gives, for valid and damaged encodings alike.
        #[test]
        fn the_typed_fast_path_agrees_with_decoding_through_a_value(
            which in 0..4usize,
            text in "[a-z ]{0,30}",
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        ) {
            use crate::api::{Request, Response};
            let id = crate::ids::MessageId::new_v7(1_795_874_050_000, [1; 10]);
            let encoded = match which {
                0 => to_vec(&Request::Status { msg_id: id, wait_ms: Some(bytes.len() as u64) }),
                1 => to_vec(&Request::Inbox { unread_only: true, kind: None, case_id: None }),
                2 => to_vec(&Response::AuditBundle { bundle: bytes.clone() }),
                _ => to_vec(&Response::error(crate::api::ErrorCode::NotFound, text)),
            };
            let mut encoded = encoded.unwrap();
            for (i, b) in edits {
                let n = encoded.len();
                encoded[i % n] = b;
            }
            for (fast, full) in [
                (
                    format!("{:?}", from_slice::<Request>(&encoded)),
                    format!("{:?}", from_slice_via_value::<Request>(&encoded)),
                ),
                (
                    format!("{:?}", from_slice::<Response>(&encoded)),
                    format!("{:?}", from_slice_via_value::<Response>(&encoded)),
                ),
            ] {
                prop_assert_eq!(fast, full);
            }
        }
    }

    #[test]
    fn shortest_integer_heads() {
        for (i, hex) in [
            (0, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (65_536, "1a00010000"),
            (4_294_967_296, "1b0000000100000000"),
            (-1, "20"),
            (-25, "3818"),
        ] {
            assert_eq!(hex::encode(encode_value(&int(i)).unwrap()), hex, "{i}");
        }
    }

    #[test]
    fn map_keys_sort_bytewise_not_length_first() {
        // Bytewise (§4.2.1): 0x18 0x64 (100) sorts before 0x20 (-1);
        // length-first (§4.2.3) would put -1 first.
        let map = Value::Map(vec![
            (int(-1), int(0)),
            (int(100), int(0)),
            (int(1), int(0)),
        ]);
        assert_eq!(
            hex::encode(encode_value(&map).unwrap()),
            "a30100186400 2000".replace(' ', "")
        );
        // Text keys: "b" (0x61 0x62) before "aa" (0x62 0x61 0x61).
        let map = Value::Map(vec![
            (Value::Text("aa".into()), int(1)),
            (Value::Text("b".into()), int(2)),
        ]);
        assert_eq!(
            hex::encode(encode_value(&map).unwrap()),
            "a2616202626161 01".replace(' ', "")
        );
    }

    #[test]
    fn decoding_refuses_other_encodings() {
        // 1 encoded in two bytes.
        assert_eq!(decode_value(&[0x18, 0x01]), Err(CborError::NonCanonical));
        // Indefinite-length array [1].
        assert_eq!(
            decode_value(&[0x9f, 0x01, 0xff]),
            Err(CborError::NonCanonical)
        );
        // Map with keys out of order {2: 0, 1: 0}.
        assert_eq!(
            decode_value(&[0xa2, 0x02, 0x00, 0x01, 0x00]),
            Err(CborError::NonCanonical)
        );
        // Duplicate keys {1: 0, 1: 0}.
        assert_eq!(
            decode_value(&[0xa2, 0x01, 0x00, 0x01, 0x00]),
            Err(CborError::DuplicateKey)
        );
        // Trailing bytes.
        assert_eq!(
            decode_value(&[0x01, 0x02]),
            Err(CborError::TrailingBytes(1))
        );
        // Floats and tags.
        assert_eq!(
            decode_value(&[0xf9, 0x3c, 0x00]),
            Err(CborError::Unsupported("float"))
        );
        assert_eq!(
            decode_value(&[0xc1, 0x01]),
            Err(CborError::Unsupported("tag"))
        );
        // Truncated.
        assert!(matches!(
            decode_value(&[0x62, 0x61]),
            Err(CborError::Malformed(_))
        ));
        // A byte string that claims 2^64-1 bytes does not allocate them.
        assert!(matches!(
            decode_value(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Malformed(_))
        ));
        // Deep nesting.
        let deep = vec![0x81; MAX_DEPTH + 10];
        assert!(matches!(decode_value(&deep), Err(CborError::Malformed(_))));
    }

    #[test]
    fn canonical_round_trip() {
        let v = Value::Map(vec![
            (int(3), Value::Array(vec![Value::Bool(true), Value::Null])),
            (int(0), Value::Bytes(vec![1, 2, 3])),
            (Value::Text("k".into()), int(-1000)),
        ]);
        let bytes = encode_value(&v).unwrap();
        let back = decode_value(&bytes).unwrap();
        assert_eq!(encode_value(&back).unwrap(), bytes);
    }
}
