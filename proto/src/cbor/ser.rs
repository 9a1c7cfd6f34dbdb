//! A `serde::Serializer` that writes kurir's deterministic CBOR straight into
//! a `Vec<u8>`, without building a [`ciborium::value::Value`] tree first.
//!
//! It writes exactly what [`super::encode_value`] writes for the value that
//! `Value::serialized` would build, and refuses what that path refuses with
//! the same [`CborError`]. Each serde call maps to the `Value` that ciborium's
//! value serializer (0.2) builds for it:
//!
//! - unit, unit struct and `None` → `null`; `Some(x)` and newtype structs →
//!   `x`; unit variants → the variant name as text; `char` → text;
//! - newtype, tuple and struct variants → a one-entry map keyed by the
//!   variant name (value: the inner value, an array, a map);
//! - sequences, tuples and tuple structs → arrays; maps and structs → maps;
//! - integers outside CBOR's 64-bit range → a bignum tag (refused as a tag),
//!   floats → refused; ciborium's tag enum (`@@TAG@@`) → a tag (refused), or
//!   the inner value when untagged.
//!
//! A map's entries (each key followed by its value) are written in place,
//! after its head, then put in the bytewise order of the keys' encodings
//! (RFC 8949 §4.2.1): the largest entry moves once within the output and the
//! others are copied around it, so a large byte string (an attachment's
//! body) is not copied again at each map it is nested in. A duplicate key is
//! refused.
//!
//! # Which refusal
//!
//! The value path refuses in two phases: first anything the serde
//! serialization itself fails on (a custom error, a malformed tag: reported
//! as [`CborError::Schema`], whichever comes first), then, walking the tree
//! as `write_value` does, the first of: nesting deeper than
//! [`MAX_DEPTH`], a float, a tag, a duplicate key. To report the same one,
//! a serde error here aborts at once (the serializer's `Error`), while the
//! second kind is carried as a [`Flaw`] (the serializer's `Ok`) and chosen
//! in the order `write_value` would meet it: a node's depth before its
//! content, array items in order, a map's keys in insertion order, then its
//! duplicates, then its values in key order.

use std::fmt;

use serde::Serialize;
use serde::ser;

use super::{CborError, MAX_DEPTH, head_len, write_head};

/// The first refusal of the encoding phase within a subtree, if any.
pub(super) type Flaw = Option<CborError>;

/// Serializes `value` to deterministic CBOR.
pub(super) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::with_capacity(128);
    match value.serialize(Ser {
        out: &mut out,
        depth: 0,
    }) {
        Ok(None) => Ok(out),
        Ok(Some(flaw)) => Err(flaw),
        Err(Error(message)) => Err(CborError::Schema(message)),
    }
}

/// A serde error: its message as the value path reports it (the `Display`
/// of ciborium's value error, `Custom("…")`).
#[derive(Debug)]
pub(super) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(ciborium::value::Error::Custom(msg.to_string()).to_string())
    }
}

fn custom(msg: &str) -> Error {
    <Error as ser::Error>::custom(msg)
}

/// The refusal of a node at `depth`, as `write_value` words it.
fn too_deep(depth: usize) -> Flaw {
    (depth > MAX_DEPTH).then(|| {
        CborError::Malformed(format!(
            "arrays and maps nest deeper than {MAX_DEPTH} levels"
        ))
    })
}

/// The first flaw of two, in order.
fn first(a: Flaw, b: Flaw) -> Flaw {
    a.or(b)
}

/// Writes a text string; its flaw as a node at `depth`.
fn text(out: &mut Vec<u8>, s: &str, depth: usize) -> Flaw {
    write_head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
    too_deep(depth)
}

/// Writes an integer in `i128` (CBOR's range is -2^64 ..= 2^64 - 1; outside
/// it the value path builds a bignum tag).
fn integer(out: &mut Vec<u8>, v: i128, depth: usize) -> Flaw {
    if let Ok(n) = u64::try_from(v) {
        write_head(0, n, out);
    } else if let Ok(n) = u64::try_from(-1 - v) {
        write_head(1, n, out);
    } else {
        return first(too_deep(depth), Some(CborError::Unsupported("tag")));
    }
    too_deep(depth)
}

/// The serializer: writes one item at nesting `depth` to the end of `out`.
struct Ser<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
}

/// ciborium's tag enum (`ciborium::tag`): its name and variants.
const TAG_ENUM: &str = "@@TAG@@";
const TAGGED: &str = "@@TAGGED@@";
const UNTAGGED: &str = "@@UNTAGGED@@";

impl<'a> ser::Serializer for Ser<'a> {
    type Ok = Flaw;
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = TupleVariant<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Map<'a>;

    fn serialize_bool(self, v: bool) -> Result<Flaw, Error> {
        self.out.push(if v { 0xf5 } else { 0xf4 });
        Ok(too_deep(self.depth))
    }

    fn serialize_i8(self, v: i8) -> Result<Flaw, Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<Flaw, Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<Flaw, Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<Flaw, Error> {
        if v >= 0 {
            write_head(0, v as u64, self.out);
        } else {
            write_head(1, !v as u64, self.out);
        }
        Ok(too_deep(self.depth))
    }

    fn serialize_i128(self, v: i128) -> Result<Flaw, Error> {
        Ok(integer(self.out, v, self.depth))
    }

    fn serialize_u8(self, v: u8) -> Result<Flaw, Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<Flaw, Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<Flaw, Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<Flaw, Error> {
        write_head(0, v, self.out);
        Ok(too_deep(self.depth))
    }

    fn serialize_u128(self, v: u128) -> Result<Flaw, Error> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => Ok(first(
                too_deep(self.depth),
                Some(CborError::Unsupported("tag")),
            )),
        }
    }

    fn serialize_f32(self, _: f32) -> Result<Flaw, Error> {
        Ok(first(
            too_deep(self.depth),
            Some(CborError::Unsupported("float")),
        ))
    }

    fn serialize_f64(self, _: f64) -> Result<Flaw, Error> {
        self.serialize_f32(0.0)
    }

    fn serialize_char(self, v: char) -> Result<Flaw, Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<Flaw, Error> {
        Ok(text(self.out, v, self.depth))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Flaw, Error> {
        write_head(2, v.len() as u64, self.out);
        self.out.extend_from_slice(v);
        Ok(too_deep(self.depth))
    }

    fn serialize_none(self) -> Result<Flaw, Error> {
        self.out.push(0xf6);
        Ok(too_deep(self.depth))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Flaw, Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Flaw, Error> {
        self.serialize_none()
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<Flaw, Error> {
        self.serialize_none()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Flaw, Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Flaw, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Flaw, Error> {
        if (name, variant) == (TAG_ENUM, UNTAGGED) {
            return value.serialize(self);
        }
        // {variant: value}: the map, its key, its value.
        let flaw = variant_key(self.out, variant, self.depth);
        let inner = value.serialize(Ser {
            out: self.out,
            depth: self.depth + 1,
        })?;
        Ok(first(flaw, inner))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(Seq::open(self.out, self.depth, len, None))
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleVariant<'a>, Error> {
        if (name, variant) == (TAG_ENUM, TAGGED) {
            return Ok(TupleVariant::Tag {
                depth: self.depth,
                tag: false,
                value: false,
            });
        }
        // {variant: [fields]}
        let flaw = variant_key(self.out, variant, self.depth);
        Ok(TupleVariant::Plain(Seq::open(
            self.out,
            self.depth + 1,
            Some(len),
            flaw,
        )))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, Error> {
        Ok(Map::open(self.out, self.depth, len.unwrap_or(0), None))
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map<'a>, Error> {
        Ok(Map::open(self.out, self.depth, len, None))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Map<'a>, Error> {
        // {variant: {fields}}
        let flaw = variant_key(self.out, variant, self.depth);
        Ok(Map::open(self.out, self.depth + 1, len, flaw))
    }

    fn is_human_readable(&self) -> bool {
        // As ciborium's value serializer.
        false
    }
}

/// Writes the head and the key of a one-entry map `{variant: …}` at `depth`;
/// the flaw of the map and its key.
fn variant_key(out: &mut Vec<u8>, variant: &str, depth: usize) -> Flaw {
    out.push(0xa1);
    first(too_deep(depth), text(out, variant, depth + 1))
}

/// An array being written: its head at `head_at` in `out`, for `written`
/// items (corrected at the end if the count differs, as when the length was
/// not known).
pub(super) struct Seq<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    head_at: usize,
    written: Option<usize>,
    count: usize,
    flaw: Flaw,
}

impl<'a> Seq<'a> {
    /// An array at `depth`; `flaw` is what precedes it in the walk order.
    fn open(out: &'a mut Vec<u8>, depth: usize, len: Option<usize>, flaw: Flaw) -> Self {
        let head_at = out.len();
        if let Some(len) = len {
            write_head(4, len as u64, out);
        }
        Seq {
            out,
            depth,
            head_at,
            written: len,
            count: 0,
            flaw: first(flaw, too_deep(depth)),
        }
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let flaw = value.serialize(Ser {
            out: self.out,
            depth: self.depth + 1,
        })?;
        self.count += 1;
        if self.flaw.is_none() {
            self.flaw = flaw;
        }
        Ok(())
    }

    fn close(self) -> Flaw {
        if self.written != Some(self.count) {
            let mut head = Vec::with_capacity(9);
            write_head(4, self.count as u64, &mut head);
            let old = match self.written {
                Some(len) => head_len(len as u64),
                None => 0,
            };
            self.out.splice(self.head_at..self.head_at + old, head);
        }
        self.flaw
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<Flaw, Error> {
        Ok(self.close())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<Flaw, Error> {
        Ok(self.close())
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<Flaw, Error> {
        Ok(self.close())
    }
}

/// A tuple variant: `{variant: [fields]}`, or ciborium's tagged value
/// (`@@TAGGED@@(tag, value)`), which the profile refuses.
pub(super) enum TupleVariant<'a> {
    Plain(Seq<'a>),
    Tag {
        depth: usize,
        /// Whether the tag number was given.
        tag: bool,
        /// Whether the tagged value was given.
        value: bool,
    },
}

impl ser::SerializeTupleVariant for TupleVariant<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, field: &T) -> Result<(), Error> {
        match self {
            TupleVariant::Plain(seq) => seq.item(field),
            TupleVariant::Tag { tag, value, .. } => {
                if !*tag {
                    // The value path takes only an unsigned integer here.
                    field
                        .serialize(TagNumber)
                        .map_err(|_| custom("expected tag"))?;
                    *tag = true;
                } else {
                    // Not written (a tag is refused), but serialized all the
                    // same: its serde errors come first.
                    let mut scratch = Vec::new();
                    field.serialize(Ser {
                        out: &mut scratch,
                        depth: 0,
                    })?;
                    *value = true;
                }
                Ok(())
            }
        }
    }

    fn end(self) -> Result<Flaw, Error> {
        match self {
            TupleVariant::Plain(seq) => Ok(seq.close()),
            TupleVariant::Tag {
                depth,
                tag: true,
                value: true,
            } => Ok(first(too_deep(depth), Some(CborError::Unsupported("tag")))),
            TupleVariant::Tag { .. } => Err(custom("invalid tag input")),
        }
    }
}

/// One entry of a map being written: its key at `out[key..value]`, its value
/// at `out[value..end]`, and its place in the order entries were given.
#[derive(Clone, Copy)]
struct Entry {
    key: usize,
    value: usize,
    end: usize,
    given: usize,
}

impl Entry {
    fn len(&self) -> usize {
        self.end - self.key
    }
}

/// A map (or struct) being written: its head (for the length given, fixed
/// at the end if the count differs), then every entry, key then value, in
/// place at the end of `out`; at the end the entries are put in the order
/// of their keys' encodings. Each byte is written once where it lands,
/// except when entries must be reordered: then the largest entry (an
/// attachment's body, say) moves once within `out`, and only the others
/// are copied out and back.
pub(super) struct Map<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    /// Where the head starts, its length in bytes, and the count it holds.
    head_at: usize,
    head_len: usize,
    written: usize,
    entries: Vec<Entry>,
    /// Where the pending key starts (between `serialize_key` and `_value`).
    key_at: usize,
    /// The flaw before the entries (the map's own, a variant's key), then
    /// the first flaw of a key, in the order the keys were given.
    flaw: Flaw,
    /// The flaws of values, by the entry's place in the given order.
    value_flaws: Vec<(usize, CborError)>,
}

impl<'a> Map<'a> {
    /// A map at `depth` of `len` entries as far as is known; `flaw` is what
    /// precedes it.
    fn open(out: &'a mut Vec<u8>, depth: usize, len: usize, flaw: Flaw) -> Self {
        let head_at = out.len();
        write_head(5, len as u64, out);
        Map {
            head_len: out.len() - head_at,
            written: len,
            out,
            depth,
            head_at,
            entries: Vec::with_capacity(len),
            key_at: 0,
            flaw: first(flaw, too_deep(depth)),
            value_flaws: Vec::new(),
        }
    }

    fn key_flaw(&mut self, flaw: Flaw) {
        if self.flaw.is_none() {
            self.flaw = flaw;
        }
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let at = self.out.len();
        let flaw = value.serialize(Ser {
            out: &mut *self.out,
            depth: self.depth + 1,
        })?;
        let given = self.entries.len();
        if let Some(flaw) = flaw {
            self.value_flaws.push((given, flaw));
        }
        self.entries.push(Entry {
            key: self.key_at,
            value: at,
            end: self.out.len(),
            given,
        });
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.key_at = self.out.len();
        let flaw = text(self.out, key, self.depth + 1);
        self.key_flaw(flaw);
        self.value(value)
    }

    fn close(mut self) -> Flaw {
        if self.flaw.is_some() {
            return self.flaw;
        }
        let out = &*self.out;
        let mut sorted = self.entries.clone();
        sorted.sort_by(|a, b| out[a.key..a.value].cmp(&out[b.key..b.value]));
        if sorted
            .windows(2)
            .any(|w| out[w[0].key..w[0].value] == out[w[1].key..w[1].value])
        {
            return Some(CborError::DuplicateKey);
        }
        if !self.value_flaws.is_empty() {
            // The first in key order, as the values are written.
            let at = sorted.iter().find_map(|e| {
                self.value_flaws
                    .iter()
                    .position(|(given, _)| *given == e.given)
            });
            return at.map(|at| self.value_flaws.swap_remove(at).1);
        }
        if sorted.iter().map(|e| e.given).ne(0..sorted.len()) {
            reorder(self.out, &self.entries, &sorted);
        }
        if sorted.len() != self.written {
            let mut head = Vec::with_capacity(9);
            write_head(5, sorted.len() as u64, &mut head);
            let old = self.head_at..self.head_at + self.head_len;
            self.out.splice(old, head);
        }
        None
    }
}

/// Puts the `entries` (contiguous in `out`, in the order given) in the order
/// of `sorted`: the largest moves once within `out`, the others are copied
/// out and written back around it.
fn reorder(out: &mut [u8], entries: &[Entry], sorted: &[Entry]) {
    let (Some(start), Some(largest)) = (
        entries.first().map(|e| e.key),
        entries.iter().max_by_key(|e| e.len()),
    ) else {
        return;
    };
    let mut others = Vec::new();
    let mut from = Vec::with_capacity(entries.len());
    for e in entries {
        if e.given == largest.given {
            from.push(usize::MAX);
        } else {
            from.push(others.len());
            others.extend_from_slice(&out[e.key..e.end]);
        }
    }
    // Where each entry lands, in sorted order.
    let mut at = start;
    let mut landing = vec![0; entries.len()];
    for e in sorted {
        landing[e.given] = at;
        at += e.len();
    }
    out.copy_within(largest.key..largest.end, landing[largest.given]);
    for e in entries {
        if e.given != largest.given {
            let src = from[e.given];
            out[landing[e.given]..landing[e.given] + e.len()]
                .copy_from_slice(&others[src..src + e.len()]);
        }
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key_at = self.out.len();
        let flaw = key.serialize(Ser {
            out: &mut *self.out,
            depth: self.depth + 1,
        })?;
        self.key_flaw(flaw);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }

    fn end(self) -> Result<Flaw, Error> {
        Ok(self.close())
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<Flaw, Error> {
        Ok(self.close())
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = Flaw;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<Flaw, Error> {
        Ok(self.close())
    }
}

mod tag;

use tag::TagNumber;

#[cfg(test)]
mod tests;
