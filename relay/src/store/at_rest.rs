//! Message bodies at rest: the stored form of a parcel, its encryption, and
//! body files for large bodies.
//!
//! A parcel in clear is `[envelope, salt, body]` (deterministic CBOR). The
//! store keeps the envelope in clear (it is signed, holds no personal data
//! beyond ids and digests, and stays after erasure) and seals salt and body
//! with a key of their own: `sealed = nonce (12 bytes) || ChaCha20-Poly1305
//! (key, nonce, aad = the envelope digest, plain = [salt, body]) with its tag`.
//! The stored form is one of:
//!
//! - `[envelope, sealed, key]`: the body inside the record, with its key;
//! - `[envelope, null, name, key]`: the sealed body in the file
//!   `bodies/name` of the data dir (bodies whose sealed form is at least
//!   [`FILE_MIN`] bytes), written and synced before the record is
//!   committed, and its key;
//! - `[envelope, null]`: the body was erased (with its key).
//!
//! Stores of format 2 and older kept each key in a row of its own
//! (`body_keys`), and their records in the forms without it
//! (`[envelope, sealed]`, `[envelope, null, name]`); they are read as they
//! are, the key looked up in `body_keys` (`Stored::key` is then `None`).
//! The key is in the record because a row of its own gave nothing the
//! record does not: both are in the same database, and an erasure
//! rewrites the record without body and key in one commit either way,
//! while each row is a cost sled pays per message (docs/PERFORMANCE.md,
//! "Fewer rows per message").
//!
//! Everything here works on slices of the stored bytes: a body is copied
//! once when sealed and once when opened, never decoded into a CBOR value.

use std::io::Write;
use std::path::{Path, PathBuf};

use kurir_proto::cbor::write_head;
use kurir_proto::{Digest, MessageId};

/// The key of one message body at rest.
pub(super) type BodyKey = [u8; 32];

/// Sealed bodies of at least this many bytes are kept in a body file rather
/// than in the record: sled writes large values again with every change to
/// the page that holds them, a file is written once.
pub(super) const FILE_MIN: usize = 256 * 1024;

/// The body files' directory, inside the data dir.
pub(super) const BODIES: &str = "bodies";

/// A parcel sealed for storage.
pub(super) struct Sealed {
    /// The envelope, in clear.
    pub(super) envelope: Vec<u8>,
    /// Nonce, ciphertext and tag.
    pub(super) sealed: Vec<u8>,
    /// The key.
    pub(super) key: BodyKey,
}

/// Seals the salt and body of a parcel in clear with a fresh key.
pub(super) fn seal(parcel: &[u8]) -> Result<Sealed, String> {
    use rand::RngExt;
    let Some([Some(envelope), Some(salt), Some(body)]) =
        byte_string_array(parcel).and_then(|a| <[_; 3]>::try_from(a).ok())
    else {
        return Err("a parcel is [envelope, salt, body]".into());
    };
    if salt.len() != 32 {
        return Err("a parcel's salt is not 32 bytes".into());
    }
    let (key, nonce): (BodyKey, [u8; 12]) = {
        let mut rng = rand::rng();
        (rng.random(), rng.random())
    };
    // nonce || [salt, body] || tag, encrypted in place: one copy of the body.
    let mut sealed = Vec::with_capacity(12 + 3 + 2 + 32 + 9 + body.len() + 16);
    sealed.extend_from_slice(&nonce);
    write_head(4, 2, &mut sealed);
    for part in [salt, body] {
        write_head(2, part.len() as u64, &mut sealed);
        sealed.extend_from_slice(part);
    }
    let aad = Digest::of_envelope(envelope);
    let tag = aead_key(&key)?
        .seal_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(aad.0),
            sealed.get_mut(12..).unwrap_or_default(),
        )
        .map_err(|_| "encryption failed".to_owned())?;
    sealed.extend_from_slice(tag.as_ref());
    Ok(Sealed {
        envelope: envelope.to_vec(),
        sealed,
        key,
    })
}

/// Decrypts a sealed body (taken by value: it is decrypted in place) and
/// returns the parcel in clear.
pub(super) fn open(envelope: &[u8], mut sealed: Vec<u8>, key: &[u8]) -> Result<Vec<u8>, String> {
    let Some((nonce, ciphertext)) = sealed.split_first_chunk_mut::<12>() else {
        return Err("a sealed body is shorter than its nonce".into());
    };
    let aad = Digest::of_envelope(envelope);
    let plain = aead_key(key)?
        .open_in_place(
            ring::aead::Nonce::assume_unique_for_key(*nonce),
            ring::aead::Aad::from(aad.0),
            ciphertext,
        )
        .map_err(|_| "a sealed body does not decrypt with its key".to_owned())?;
    let Some([Some(salt), Some(body)]) =
        byte_string_array(plain).and_then(|a| <[_; 2]>::try_from(a).ok())
    else {
        return Err("a sealed body is not [salt, body]".into());
    };
    if salt.len() != 32 {
        return Err("a sealed salt is not 32 bytes".into());
    }
    Ok(bstr_array(&[Some(envelope), Some(salt), Some(body)]))
}

fn aead_key(key: &[u8]) -> Result<ring::aead::LessSafeKey, String> {
    ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
        .map(ring::aead::LessSafeKey::new)
        .map_err(|_| "a body key is not 32 bytes".to_owned())
}

/// The parts of a stored parcel.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stored<'a> {
    /// The sealed body is in the record.
    Inline {
        envelope: &'a [u8],
        sealed: &'a [u8],
        /// `None` in a record of format 2 or older: the key is in
        /// `body_keys`.
        key: Option<&'a BodyKey>,
    },
    /// The sealed body is in the body file `name`.
    File {
        envelope: &'a [u8],
        name: &'a str,
        /// As for [`Stored::Inline`].
        key: Option<&'a BodyKey>,
    },
    /// The body was erased.
    Erased { envelope: &'a [u8] },
}

impl<'a> Stored<'a> {
    /// Splits a stored parcel, without copying.
    pub(super) fn parse(stored: &'a [u8]) -> Result<Stored<'a>, String> {
        let bad = || {
            "a stored parcel is [envelope, sealed body, key], [envelope, null, file, key] or \
             [envelope, null] (or, from format 2, [envelope, sealed body] or [envelope, null, file])"
                .to_owned()
        };
        let key = |key: Option<&'a [u8]>| -> Result<Option<&'a BodyKey>, String> {
            key.map(|k| {
                <&BodyKey>::try_from(k).map_err(|_| "a stored body key is not 32 bytes".to_owned())
            })
            .transpose()
        };
        let file = |name: &'a [u8]| {
            std::str::from_utf8(name)
                .ok()
                .filter(|n| is_body_file_name(n))
                .ok_or_else(|| "a stored parcel names a body file badly".to_owned())
        };
        match byte_string_array(stored).ok_or_else(bad)?[..] {
            [Some(envelope), Some(sealed)] => Ok(Stored::Inline {
                envelope,
                sealed,
                key: None,
            }),
            [Some(envelope), Some(sealed), Some(k)] => Ok(Stored::Inline {
                envelope,
                sealed,
                key: key(Some(k))?,
            }),
            [Some(envelope), None] => Ok(Stored::Erased { envelope }),
            [Some(envelope), None, Some(name)] => Ok(Stored::File {
                envelope,
                name: file(name)?,
                key: None,
            }),
            [Some(envelope), None, Some(name), Some(k)] => Ok(Stored::File {
                envelope,
                name: file(name)?,
                key: key(Some(k))?,
            }),
            _ => Err(bad()),
        }
    }

    /// The signed envelope (always kept).
    pub(super) fn envelope(&self) -> &'a [u8] {
        match *self {
            Stored::Inline { envelope, .. }
            | Stored::File { envelope, .. }
            | Stored::Erased { envelope } => envelope,
        }
    }

    /// The body file, if the body is in one.
    pub(super) fn file(&self) -> Option<&'a str> {
        match *self {
            Stored::File { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The body's key, when the record holds it (format 3 on).
    pub(super) fn key(&self) -> Option<&'a BodyKey> {
        match *self {
            Stored::Inline { key, .. } | Stored::File { key, .. } => key,
            Stored::Erased { .. } => None,
        }
    }
}

/// The stored form of a body kept in the record.
pub(super) fn inline(envelope: &[u8], sealed: &[u8], key: &BodyKey) -> Vec<u8> {
    bstr_array(&[Some(envelope), Some(sealed), Some(key)])
}

/// The stored form of a body kept in the body file `name`.
pub(super) fn in_file(envelope: &[u8], name: &str, key: &BodyKey) -> Vec<u8> {
    bstr_array(&[Some(envelope), None, Some(name.as_bytes()), Some(key)])
}

/// The forms of format 2 and older, whose keys are in `body_keys`: what an
/// older relay wrote, for the tests that read it.
#[cfg(test)]
pub(super) fn inline_keyless(envelope: &[u8], sealed: &[u8]) -> Vec<u8> {
    bstr_array(&[Some(envelope), Some(sealed)])
}

/// The stored form of an erased body.
pub(super) fn erased(envelope: &[u8]) -> Vec<u8> {
    bstr_array(&[Some(envelope), None])
}

/// A CBOR array of byte strings and nulls, deterministic.
fn bstr_array(items: &[Option<&[u8]>]) -> Vec<u8> {
    let len = items.iter().flatten().map(|b| b.len() + 9).sum::<usize>() + 9;
    let mut out = Vec::with_capacity(len);
    write_head(4, items.len() as u64, &mut out);
    for item in items {
        match item {
            Some(b) => {
                write_head(2, b.len() as u64, &mut out);
                out.extend_from_slice(b);
            }
            None => out.push(0xf6),
        }
    }
    out
}

/// A new body file name for `msg_id`: unique, so that concurrent copies of
/// one message (a duplicate delivery) never write the same file.
pub(super) fn new_file_name(msg_id: MessageId) -> String {
    use rand::RngExt;
    let salt: u64 = rand::rng().random();
    format!("{}-{salt:016x}.body", hex::encode(msg_id.as_bytes()))
}

/// Whether `name` is one [`new_file_name`] makes (no path separators, no
/// way out of the directory).
fn is_body_file_name(name: &str) -> bool {
    name.len() == 32 + 1 + 16 + 5
        && name.ends_with(".body")
        && name
            .bytes()
            .take(49)
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The message a body file belongs to, from its name.
pub(super) fn file_msg_id(name: &str) -> Option<MessageId> {
    if !is_body_file_name(name) {
        return None;
    }
    let bytes = hex::decode(name.get(..32)?).ok()?;
    MessageId::from_bytes(<[u8; 16]>::try_from(bytes).ok()?).ok()
}

/// Writes a new body file; with `sync`, it and its directory entry are on
/// the device when this returns.
pub(super) fn write_file(dir: &Path, name: &str, sealed: &[u8], sync: bool) -> std::io::Result<()> {
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // Private to the relay's user, whatever the umask (see `private`).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&path)?;
    let written = f.write_all(sealed).and_then(|()| {
        if sync {
            f.sync_all()?;
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    written
}

/// Reads a body file.
pub(super) fn read_file(dir: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(dir.join(name))
}

/// Removes a body file; one already gone is fine.
pub(super) fn remove_file(dir: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The body files in `dir` (its entries with body file names), and the
/// other entries.
pub(super) fn list_files(dir: &Path) -> std::io::Result<(Vec<String>, Vec<PathBuf>)> {
    let mut bodies = vec![];
    let mut other = vec![];
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        match entry.file_name().into_string() {
            Ok(name) if is_body_file_name(&name) => bodies.push(name),
            _ => other.push(entry.path()),
        }
    }
    bodies.sort();
    Ok((bodies, other))
}

/// The head of the CBOR data item at `pos`: major type, argument, and where
/// its content starts.
pub(super) fn cbor_head(buf: &[u8], pos: usize) -> Option<(u8, u64, usize)> {
    let first = *buf.get(pos)?;
    let n = match first & 0x1f {
        info @ 0..=23 => return Some((first >> 5, u64::from(info), pos + 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = buf.get(pos + 1..pos + 1 + n)?;
    let arg = bytes.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    Some((first >> 5, arg, pos + 1 + n))
}

/// Where the CBOR data item at `pos` ends (definite lengths, as written by
/// this store).
fn cbor_item_end(buf: &[u8], pos: usize, depth: u32) -> Option<usize> {
    if depth > 16 {
        return None;
    }
    let (major, arg, mut end) = cbor_head(buf, pos)?;
    match major {
        0 | 1 | 7 => Some(end),
        2 | 3 => end
            .checked_add(usize::try_from(arg).ok()?)
            .filter(|&e| e <= buf.len()),
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                end = cbor_item_end(buf, end, depth + 1)?;
            }
            Some(end)
        }
        6 => cbor_item_end(buf, end, depth + 1),
        _ => None,
    }
}

/// Where the value of the `parcel` field of a stored record (a CBOR map)
/// starts and ends.
pub(super) fn find_parcel(stored: &[u8]) -> Option<(usize, usize)> {
    let (5, entries, mut pos) = cbor_head(stored, 0)? else {
        return None;
    };
    for _ in 0..entries {
        let key_end = cbor_item_end(stored, pos, 1)?;
        let value_end = cbor_item_end(stored, key_end, 1)?;
        if stored.get(pos..key_end)? == b"\x66parcel" {
            return Some((key_end, value_end));
        }
        pos = value_end;
    }
    None
}

/// The parcel at rest of a stored record, as a slice of it.
pub(super) fn record_parcel(stored: &[u8]) -> Option<&[u8]> {
    let (start, end) = find_parcel(stored)?;
    let (2, _, content) = cbor_head(stored, start)? else {
        return None;
    };
    stored.get(content..end)
}

/// The items of a CBOR array of byte strings and nulls (`None`), as slices
/// of `buf`; `None` if `buf` is anything else.
fn byte_string_array(buf: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let (4, n, mut pos) = cbor_head(buf, 0)? else {
        return None;
    };
    let mut items = vec![];
    for _ in 0..n {
        let end = cbor_item_end(buf, pos, 1)?;
        items.push(match cbor_head(buf, pos)? {
            (2, _, start) => Some(buf.get(start..end)?),
            (7, 22, _) => None,
            _ => return None,
        });
        pos = end;
    }
    (pos == buf.len()).then_some(items)
}

/// The envelope of a parcel (`[envelope, salt, body]`, or one at rest), as
/// a slice of it: no copy of the body.
pub(crate) fn envelope_of(parcel: &[u8]) -> Option<&[u8]> {
    byte_string_array(parcel)?.first().copied().flatten()
}

/// A stored record re-encoded with the body left out of its parcel (which
/// holds only the envelope), copying only what is not the body.
pub(super) fn without_body(stored: &[u8]) -> Option<Vec<u8>> {
    let (start, end) = find_parcel(stored)?;
    let envelope = envelope_of(record_parcel(stored)?)?;
    let parcel = erased(envelope);
    let mut light = Vec::with_capacity(stored.len() - (end - start) + parcel.len() + 9);
    light.extend_from_slice(stored.get(..start)?);
    write_head(2, parcel.len() as u64, &mut light);
    light.extend_from_slice(&parcel);
    light.extend_from_slice(stored.get(end..)?);
    Some(light)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use kurir_proto::Parcel;

    fn parcel(body: usize) -> Vec<u8> {
        Parcel {
            envelope: vec![0xa5; 40],
            salt: [7; 32],
            body: (0..body).map(|i| i as u8).collect(),
        }
        .to_bytes()
    }

    #[test]
    fn a_sealed_body_opens_to_the_same_parcel_and_only_with_its_key_and_envelope() {
        for size in [0, 1, 23, 24, 255, 256, 65_535, 65_536, 300_000] {
            let p = parcel(size);
            let s = seal(&p).unwrap();
            assert_eq!(s.envelope, vec![0xa5; 40]);
            assert!(
                !s.sealed.windows(32).any(|w| w == [7; 32]),
                "the salt is not in clear"
            );
            assert_eq!(open(&s.envelope, s.sealed.clone(), &s.key).unwrap(), p);
            assert!(open(&s.envelope, s.sealed.clone(), &[9; 32]).is_err());
            assert!(open(&[0xa6; 40], s.sealed.clone(), &s.key).is_err());
            let mut flipped = s.sealed.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(open(&s.envelope, flipped, &s.key).is_err());
        }
    }

    #[test]
    fn the_stored_forms_are_deterministic_cbor_and_parse_back() {
        use ciborium::value::Value;
        let env = [1u8, 2, 3];
        let msg_id = MessageId::new_v7(1_795_874_050_000, [0x11; 10]);
        let name = new_file_name(msg_id);
        let key = [9u8; 32];
        let forms = [
            (
                inline(&env, &[4; 300], &key),
                Stored::Inline {
                    envelope: &env,
                    sealed: &[4; 300],
                    key: Some(&key),
                },
            ),
            (
                in_file(&env, &name, &key),
                Stored::File {
                    envelope: &env,
                    name: &name,
                    key: Some(&key),
                },
            ),
            (erased(&env), Stored::Erased { envelope: &env }),
            // Format 2: the key in `body_keys`.
            (
                inline_keyless(&env, &[4; 300]),
                Stored::Inline {
                    envelope: &env,
                    sealed: &[4; 300],
                    key: None,
                },
            ),
            (
                bstr_array(&[Some(&env), None, Some(name.as_bytes())]),
                Stored::File {
                    envelope: &env,
                    name: &name,
                    key: None,
                },
            ),
        ];
        for (bytes, parts) in &forms {
            assert_eq!(&Stored::parse(bytes).unwrap(), parts);
            assert_eq!(envelope_of(bytes), Some(&env[..]));
            // What a general CBOR encoder writes for the same value.
            let value = kurir_proto::cbor::decode_value(bytes).unwrap();
            assert_eq!(&kurir_proto::cbor::encode_value(&value).unwrap(), bytes);
            assert!(matches!(value, Value::Array(_)));
        }
        assert_eq!(file_msg_id(&name), Some(msg_id));
    }

    /// Damaged stored forms and records (a damaged data dir) are refused or
    /// read consistently, never a panic: seeded random edits of valid forms.
    #[test]
    fn damaged_stored_forms_never_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b75_7269);
        let name = new_file_name(MessageId::new_v7(1_795_874_050_000, [3; 10]));
        let valid = [
            inline(&[1; 40], &[2; 300], &[5; 32]),
            inline_keyless(&[1; 40], &[2; 300]),
            in_file(&[1; 40], &name, &[5; 32]),
            erased(&[1; 40]),
            parcel(100),
        ];
        for _ in 0..20_000 {
            let mut bytes = valid[rng.random_range(0..valid.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
            if rng.random_bool(0.2) {
                bytes.truncate(rng.random_range(0..bytes.len()));
            }
            if let Ok(stored) = Stored::parse(&bytes) {
                assert_eq!(envelope_of(&bytes), Some(stored.envelope()));
            }
            let _ = record_parcel(&bytes);
            let _ = without_body(&bytes);
            let _ = find_parcel(&bytes);
        }
    }

    #[test]
    fn file_names_that_could_leave_the_directory_are_refused() {
        let env = [1u8];
        for name in [
            "../../etc/passwd",
            "",
            "x.body",
            "/abs/0123456789abcdef0123456789abcdef-0123456789abcdef.body",
            "0123456789abcdef0123456789abcdef-0123456789abcde/.body",
        ] {
            let bytes = bstr_array(&[Some(&env), None, Some(name.as_bytes())]);
            assert!(Stored::parse(&bytes).is_err(), "{name}");
            let keyed = bstr_array(&[Some(&env), None, Some(name.as_bytes()), Some(&[1; 32])]);
            assert!(Stored::parse(&keyed).is_err(), "{name}");
            assert_eq!(file_msg_id(name), None);
        }
        assert!(Stored::parse(&bstr_array(&[Some(&env)])).is_err());
        assert!(Stored::parse(&bstr_array(&[None, Some(&env)])).is_err());
        // A key of the wrong length, and one after an erased body.
        assert!(Stored::parse(&bstr_array(&[Some(&env), Some(&env), Some(&[1; 31])])).is_err());
        assert!(Stored::parse(&bstr_array(&[Some(&env), None, None, Some(&[1; 32])])).is_err());
    }
}
