//! Signed checkpoints of the audit log: C2SP signed notes, checkpoints and
//! Ed25519 cosignatures.
//!
//! A relay publishes the head of its Merkle log ([`crate::merkle`]) as a
//! **checkpoint**: a short text naming the log (its *origin*), the tree size
//! and the root hash, signed as a **note** with the relay's Ed25519 key. Peer
//! relays check that each new checkpoint is consistent with the last one they
//! saw and add their **cosignature** to it.
//!
//! ```text
//! kurir.rs.mup/audit
//! 4
//! m81RJAr0AFFo8DMSG6hb5abtTw5qX6wmIGZym4+/3ss=
//!
//! — kurir.rs.mup/audit SSCwLKCkJmbKgZt8wEHT6sjBA6UmtvGSGqhSVTfmyKc2PnH703fmq2kqhQNOm2cqacB8jueh92KfOHKS6tebduX2cgA=
//! — kurir.me.up/witness H6pbvwAAAABrCt0CzzB6BEj9R07M/NTmp1VfsD5ERIZpuudsqjz1iMYeBRqeA/NHiTZKF9MdyoIkZtNiBTRZ63YRV/zfwcebgeoQDQ==
//! ```
//!
//! (The 4 leaves `0x00`..`0x03`, signed with the test keys `[1; 32]` and
//! `[2; 32]`, cosigned at 1795874050; `proto/tests/checkpoint.rs` pins it.)
//!
//! | Item | Specification |
//! |---|---|
//! | [`Note`], [`NoteSignature`], [`Note::parse`], [`Note::verify`] | C2SP signed-note §Format, §Signatures |
//! | [`key_id`], [`SignatureType`] | signed-note §Signatures, §Signature types |
//! | [`NoteVerifier`] (vkey text) | signed-note §Verifier keys |
//! | [`Note::sign`] (type 0x01) | signed-note §Ed25519 signatures |
//! | [`Checkpoint`] | C2SP tlog-checkpoint §Note text |
//! | [`SignedCheckpoint`] | tlog-checkpoint §Signatures |
//! | [`SignedCheckpoint::cosign`], [`SignedCheckpoint::verify_cosignature`], [`cosignature_message`] (type 0x04) | C2SP tlog-cosignature §Format, §Ed25519 signed message |
//!
//! ML-DSA-44 cosignatures (type 0x06), ECDSA and the other signature types are
//! not supported: their signature lines are kept and ignored, as the
//! signed-note spec requires of unknown keys.
//!
//! The module is pure: signing keys and the cosignature time are passed in by
//! the caller.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use kurir_proto::checkpoint::{Checkpoint, NoteVerifier, SignedCheckpoint};
//! use kurir_proto::merkle;
//!
//! let log_key = SigningKey::from_bytes(&[1; 32]);
//! let witness_key = SigningKey::from_bytes(&[2; 32]);
//! let leaves: Vec<_> = (0u8..4).map(|i| merkle::leaf_hash(&[i])).collect();
//!
//! let checkpoint = Checkpoint::new("kurir.rs.mup/audit", 4, merkle::root(&leaves))?;
//! let mut signed = SignedCheckpoint::sign(checkpoint, "kurir.rs.mup/audit", &log_key)?;
//! let cosignature = signed.cosign("kurir.me.up/witness", &witness_key, 1_795_874_050)?;
//! signed.add_signature(cosignature)?;
//!
//! let text = signed.to_string();
//! let parsed = SignedCheckpoint::parse(text.as_bytes())?;
//! let log = NoteVerifier::ed25519("kurir.rs.mup/audit", log_key.verifying_key())?;
//! let witness = NoteVerifier::cosigner("kurir.me.up/witness", witness_key.verifying_key())?;
//! parsed.verify(&log)?;
//! assert_eq!(parsed.verify_cosignature(&witness)?, 1_795_874_050);
//! assert_eq!(parsed.checkpoint().size(), 4);
//! # Ok::<(), kurir_proto::checkpoint::CheckpointError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::batch::{SignatureCheck, Strict};
use crate::digest::Digest;
use crate::merkle::{self, ProofError};

/// The most signature lines a note may carry. The signed-note spec requires
/// accepting at least 16; a federation has far fewer members than this.
pub const MAX_SIGNATURES: usize = 64;

/// The largest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// The largest cosignature timestamp, `2^63 - 1` (tlog-cosignature §Format).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The first line of the message an Ed25519 cosignature signs.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// The em dash and space that start a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Length of an Ed25519 signature.
const ED25519_SIG_LEN: usize = 64;
/// Length of a `timestamped_signature` with an Ed25519 signature.
const COSIGNATURE_LEN: usize = 8 + ED25519_SIG_LEN;

/// Why a note, checkpoint, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is larger than [`MAX_NOTE_LEN`].
    #[error("note is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The note is not UTF-8.
    #[error("note is not valid UTF-8 (at byte {offset})")]
    NotUtf8 {
        /// Where the first invalid byte is.
        offset: usize,
    },
    /// A control character other than newline.
    #[error(
        "{what} contains control character {byte:#04x} at byte {offset}; only newline is allowed"
    )]
    ControlCharacter {
        /// Which text.
        what: &'static str,
        /// The character.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// The text (or the whole note) does not end with a newline.
    #[error("{what} does not end with a newline")]
    MissingFinalNewline {
        /// Which text.
        what: &'static str,
    },
    /// No blank line separates the text from the signatures.
    #[error("note has no blank line between its text and its signatures")]
    MissingSignatureSeparator,
    /// There are no signature lines after the blank line.
    #[error("note has no signature lines")]
    NoSignatures,
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("note has {count} signatures, over the limit of {max}")]
    TooManySignatures {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature line is not `— <name> <base64>`.
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignatureLine {
        /// 1-based number of the line among the signature lines.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two signature lines with the same key name and key id.
    #[error("duplicate signature by key {name} (id {key_id:08x})")]
    DuplicateSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// A key name that is empty or holds spaces, `+` or control characters.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The name, cut to 64 characters.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A verifier key string that is not `<name>+<hex id>+<base64 key>`.
    #[error(
        "invalid verifier key: {reason} \
         (expected <name>+<8 hex digits>+<base64 of type byte and key>)"
    )]
    InvalidVerifierKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// The key id in a verifier key is not the one its name and key give.
    #[error(
        "verifier key {name} claims id {claimed:08x}, but its name and key give {computed:08x}"
    )]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The id in the string.
        claimed: u32,
        /// The id computed.
        computed: u32,
    },
    /// A signature type other than Ed25519 (0x01) or cosignature/v1 (0x04).
    #[error("unsupported signature type {0:#04x} (supported: 0x01 Ed25519, 0x04 cosignature/v1)")]
    UnsupportedSignatureType(u8),
    /// A verifier key whose public key is not a valid Ed25519 point.
    #[error("verifier key {name} holds an invalid Ed25519 public key")]
    InvalidPublicKey {
        /// The key name.
        name: String,
    },
    /// None of the given keys signed the note.
    #[error("no signature from a known key (known: {known})")]
    NoKnownSignature {
        /// The known key names, comma-separated.
        known: String,
    },
    /// The key that must sign did not.
    #[error("no signature by key {name} (id {key_id:08x})")]
    MissingSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// A signature from a known key does not verify.
    #[error("signature by key {name} (id {key_id:08x}) does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// A cosignature timestamp above `2^63 - 1`.
    #[error("cosignature timestamp {0} is above 2^63-1")]
    TimestampOutOfRange(u64),
    /// The note text is not a checkpoint.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// Two checkpoints of different logs were compared.
    #[error("checkpoints are of different logs: {old:?} and {new:?}")]
    OriginMismatch {
        /// Origin of the older checkpoint.
        old: String,
        /// Origin of the newer checkpoint.
        new: String,
    },
    /// A consistency proof between two checkpoints does not verify.
    #[error("checkpoint {new_size} is not consistent with checkpoint {old_size}: {source}")]
    Inconsistent {
        /// Size of the older checkpoint.
        old_size: u64,
        /// Size of the newer checkpoint.
        new_size: u64,
        /// Why the proof failed.
        source: ProofError,
    },
}

fn malformed(reason: impl Into<String>) -> CheckpointError {
    CheckpointError::MalformedCheckpoint {
        reason: reason.into(),
    }
}

/// Signature type identifier bytes (signed-note §Signature types) that kurir
/// implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureType {
    /// `0x01`: Ed25519 over the note text (log signatures).
    Ed25519,
    /// `0x04`: timestamped Ed25519 checkpoint cosignature (tlog-cosignature).
    CosignatureV1,
}

impl SignatureType {
    /// The identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            SignatureType::Ed25519 => 0x01,
            SignatureType::CosignatureV1 => 0x04,
        }
    }

    /// The type of an identifier byte.
    pub fn from_byte(byte: u8) -> Result<SignatureType, CheckpointError> {
        match byte {
            0x01 => Ok(SignatureType::Ed25519),
            0x04 => Ok(SignatureType::CosignatureV1),
            other => Err(CheckpointError::UnsupportedSignatureType(other)),
        }
    }
}

/// The key id of a key: the first four bytes, big-endian, of
/// `SHA-256(name ‖ 0x0A ‖ type ‖ public key)` (signed-note §Signatures,
/// tlog-cosignature §Format).
pub fn key_id(name: &str, kind: SignatureType, key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.byte()]);
    h.update(key.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Checks a key name: non-empty, no Unicode white space, no `+`, no control
/// characters (signed-note §Format).
fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    let err = |reason| CheckpointError::InvalidKeyName {
        name: name.chars().take(64).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(err("it is empty"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(err("it contains white space"));
    }
    if name.contains('+') {
        return Err(err("it contains '+'"));
    }
    if name.chars().any(char::is_control) {
        return Err(err("it contains a control character"));
    }
    Ok(())
}

/// Refuses control characters other than newline.
fn check_controls(what: &'static str, text: &str) -> Result<(), CheckpointError> {
    match text
        .bytes()
        .enumerate()
        .find(|&(_, b)| b < 0x20 && b != b'\n')
    {
        Some((offset, byte)) => Err(CheckpointError::ControlCharacter { what, byte, offset }),
        None => Ok(()),
    }
}

/// The message an Ed25519 cosignature signs (tlog-cosignature §Ed25519
/// signed message): `cosignature/v1\ntime <time>\n` followed by the note text
/// of the checkpoint.
pub fn cosignature_message(time: u64, checkpoint_text: &str) -> String {
    format!("{COSIGNATURE_V1_HEADER}\ntime {time}\n{checkpoint_text}")
}

/// A public key that can check note signatures, with its name and key id.
///
/// As text it is a *vkey* (signed-note §Verifier keys):
/// `<name>+<hex key id>+<base64(type ‖ public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    kind: SignatureType,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier of the given type; the key id is computed.
    pub fn new(
        name: &str,
        kind: SignatureType,
        key: VerifyingKey,
    ) -> Result<NoteVerifier, CheckpointError> {
        check_key_name(name)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, kind, &key),
            kind,
            key,
        })
    }

    /// A verifier of Ed25519 note signatures (type 0x01): a log's key.
    pub fn ed25519(name: &str, key: VerifyingKey) -> Result<NoteVerifier, CheckpointError> {
        NoteVerifier::new(name, SignatureType::Ed25519, key)
    }

    /// A verifier of cosignature/v1 signatures (type 0x04): a cosigner's key.
    pub fn cosigner(name: &str, key: VerifyingKey) -> Result<NoteVerifier, CheckpointError> {
        NoteVerifier::new(name, SignatureType::CosignatureV1, key)
    }

    /// Parses a vkey string; the key id in it must be the one its name, type
    /// and key give.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, CheckpointError> {
        let invalid = |reason| CheckpointError::InvalidVerifierKey { reason };
        let mut parts = vkey.split('+');
        let (Some(name), Some(id_hex), Some(key_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("it must have exactly three parts separated by '+'"));
        };
        check_key_name(name)?;
        if id_hex.len() != 8
            || !id_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid("the key id must be 8 lower-case hex digits"));
        }
        let claimed = u32::from_str_radix(id_hex, 16)
            .map_err(|_| invalid("the key id must be 8 lower-case hex digits"))?;
        let material = BASE64
            .decode(key_b64)
            .map_err(|_| invalid("the key is not standard padded base64"))?;
        let Some((&type_byte, key_bytes)) = material.split_first() else {
            return Err(invalid("the key is empty"));
        };
        let kind = SignatureType::from_byte(type_byte)?;
        let key_bytes: &[u8; 32] = key_bytes
            .try_into()
            .map_err(|_| invalid("an Ed25519 key must be 32 bytes after the type byte"))?;
        let key =
            VerifyingKey::from_bytes(key_bytes).map_err(|_| CheckpointError::InvalidPublicKey {
                name: name.to_owned(),
            })?;
        let verifier = NoteVerifier::new(name, kind, key)?;
        if verifier.key_id != claimed {
            return Err(CheckpointError::KeyIdMismatch {
                name: name.to_owned(),
                claimed,
                computed: verifier.key_id,
            });
        }
        Ok(verifier)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature type.
    pub fn kind(&self) -> SignatureType {
        self.kind
    }

    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Whether a signature line claims to be by this key (same name and id).
    pub fn matches(&self, signature: &NoteSignature) -> bool {
        signature.name == self.name && signature.key_id == self.key_id
    }

    /// Checks one signature over a note text with `sigs`. Returns the
    /// cosignature timestamp for type 0x04, `None` for type 0x01.
    fn check(
        &self,
        text: &str,
        signature: &NoteSignature,
        sigs: &dyn SignatureCheck,
    ) -> Result<Option<u64>, CheckpointError> {
        let bad = || CheckpointError::BadSignature {
            name: self.name.clone(),
            key_id: self.key_id,
        };
        match self.kind {
            SignatureType::Ed25519 => {
                let sig = Signature::from_slice(&signature.signature).map_err(|_| bad())?;
                sigs.check(&self.key, text.as_bytes(), &sig)
                    .map_err(|_| bad())?;
                Ok(None)
            }
            SignatureType::CosignatureV1 => {
                let bytes: &[u8; COSIGNATURE_LEN] = signature
                    .signature
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad())?;
                let (time, sig) = bytes.split_at(8);
                let time = u64::from_be_bytes(time.try_into().map_err(|_| bad())?);
                if time > MAX_TIMESTAMP {
                    return Err(CheckpointError::TimestampOutOfRange(time));
                }
                let sig = Signature::from_slice(sig).map_err(|_| bad())?;
                let message = cosignature_message(time, text);
                sigs.check(&self.key, message.as_bytes(), &sig)
                    .map_err(|_| bad())?;
                Ok(Some(time))
            }
        }
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = Vec::with_capacity(33);
        material.push(self.kind.byte());
        material.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(material)
        )
    }
}

impl FromStr for NoteVerifier {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, CheckpointError> {
        NoteVerifier::parse(s)
    }
}

/// One signature line of a note: `— <name> base64(key id ‖ signature)`.
///
/// Holding one says nothing about its validity; see [`Note::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (the first four bytes of the base64 payload).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes after the key id (for type 0x04: the 8-byte
    /// timestamp followed by the Ed25519 signature).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Parses one signature line, without the final newline.
    fn parse_line(line: &str, number: usize) -> Result<NoteSignature, CheckpointError> {
        let bad = |reason| CheckpointError::MalformedSignatureLine {
            line: number,
            reason,
        };
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad("it does not start with an em dash (U+2014) and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space between the key name and the signature"))?;
        check_key_name(name)?;
        let bytes = BASE64
            .decode(b64)
            .map_err(|_| bad("the signature is not standard padded base64"))?;
        if bytes.len() < 5 {
            return Err(bad("the signature is shorter than a key id and one byte"));
        }
        let (id, signature) = bytes.split_at(4);
        let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id,
            signature: signature.to_vec(),
        })
    }
}

impl fmt::Display for NoteSignature {
    /// The signature line, with its final newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut payload = Vec::with_capacity(4 + self.signature.len());
        payload.extend_from_slice(&self.key_id.to_be_bytes());
        payload.extend_from_slice(&self.signature);
        writeln!(
            f,
            "{SIGNATURE_PREFIX}{} {}",
            self.name,
            BASE64.encode(payload)
        )
    }
}

/// A signed note: a text and its signature lines (C2SP signed-note).
///
/// As text: the note text (ending in a newline), a blank line, and one
/// signature line per signature. [`Note::parse`] checks the format only; the
/// text must not be trusted until [`Note::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with no signatures yet. The text must end with a newline and
    /// hold no control characters other than newline.
    pub fn new(text: impl Into<String>) -> Result<Note, CheckpointError> {
        let text = text.into();
        check_controls("note text", &text)?;
        if !text.ends_with('\n') {
            return Err(CheckpointError::MissingFinalNewline { what: "note text" });
        }
        Ok(Note {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note (signed-note §Format): UTF-8, at most
    /// [`MAX_NOTE_LEN`] bytes, no control characters but newline, ending in a
    /// newline; the text runs to the last blank line; then 1 to
    /// [`MAX_SIGNATURES`] signature lines, no two with the same key name and id.
    pub fn parse(note: &[u8]) -> Result<Note, CheckpointError> {
        if note.len() > MAX_NOTE_LEN {
            return Err(CheckpointError::TooLarge {
                len: note.len(),
                max: MAX_NOTE_LEN,
            });
        }
        let note = std::str::from_utf8(note).map_err(|e| CheckpointError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        check_controls("note", note)?;
        if !note.ends_with('\n') {
            return Err(CheckpointError::MissingFinalNewline { what: "note" });
        }
        let split = note
            .rfind("\n\n")
            .ok_or(CheckpointError::MissingSignatureSeparator)?;
        let (text, rest) = note.split_at(split + 1);
        // `rest` starts with the blank line's newline.
        let block = rest.get(1..).unwrap_or_default();
        if block.is_empty() {
            return Err(CheckpointError::NoSignatures);
        }
        let lines: Vec<&str> = block
            .strip_suffix('\n')
            .unwrap_or(block)
            .split('\n')
            .collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                count: lines.len(),
                max: MAX_SIGNATURES,
            });
        }
        let mut out = Note {
            text: text.to_owned(),
            signatures: Vec::with_capacity(lines.len()),
        };
        for (i, line) in lines.iter().enumerate() {
            out.add_signature(NoteSignature::parse_line(line, i + 1)?)?;
        }
        Ok(out)
    }

    /// The note text, with its final newline: the bytes that are signed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line, refusing a second one by the same key name and
    /// id and more than [`MAX_SIGNATURES`]. The signature is not checked.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), CheckpointError> {
        if self
            .signatures
            .iter()
            .any(|s| s.name == signature.name && s.key_id == signature.key_id)
        {
            return Err(CheckpointError::DuplicateSignature {
                name: signature.name,
                key_id: signature.key_id,
            });
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                count: self.signatures.len() + 1,
                max: MAX_SIGNATURES,
            });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Signs the text with an Ed25519 key (type 0x01) under `name` and adds
    /// the signature.
    pub fn sign(&mut self, name: &str, key: &SigningKey) -> Result<(), CheckpointError> {
        check_key_name(name)?;
        let signature = NoteSignature {
            name: name.to_owned(),
            key_id: key_id(name, SignatureType::Ed25519, &key.verifying_key()),
            signature: key.sign(self.text.as_bytes()).to_bytes().to_vec(),
        };
        self.add_signature(signature)
    }

    /// Verifies the note against a set of known keys (signed-note
    /// §Signatures): lines whose name and key id match no known key are
    /// ignored; every line that matches a known key must verify, or the
    /// whole note is refused; at least one must. Returns the keys that
    /// signed, in signature order.
    pub fn verify<'k>(
        &self,
        known: &'k [NoteVerifier],
    ) -> Result<Vec<&'k NoteVerifier>, CheckpointError> {
        let mut signed = Vec::new();
        for signature in &self.signatures {
            if let Some(verifier) = known.iter().find(|v| v.matches(signature)) {
                verifier.check(&self.text, signature, &Strict)?;
                signed.push(verifier);
            }
        }
        if signed.is_empty() {
            return Err(CheckpointError::NoKnownSignature {
                known: known
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(signed)
    }

    /// Verifies the signature of one key, which must be present. Returns the
    /// cosignature time for a type 0x04 key.
    fn verify_one(
        &self,
        verifier: &NoteVerifier,
        sigs: &dyn SignatureCheck,
    ) -> Result<Option<u64>, CheckpointError> {
        let signature = self
            .signatures
            .iter()
            .find(|s| verifier.matches(s))
            .ok_or_else(|| CheckpointError::MissingSignature {
                name: verifier.name.clone(),
                key_id: verifier.key_id,
            })?;
        verifier.check(&self.text, signature, sigs)
    }
}

impl fmt::Display for Note {
    /// The note as text: text, blank line, signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            signature.fmt(f)?;
        }
        Ok(())
    }
}

/// The head of a Merkle log (C2SP tlog-checkpoint §Note text).
///
/// As text, newline-terminated lines: the origin, the tree size in decimal,
/// the root hash in base64, then any extension lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Digest,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint with no extension lines. The origin must be non-empty and
    /// hold no control characters.
    pub fn new(origin: &str, size: u64, root: Digest) -> Result<Checkpoint, CheckpointError> {
        check_line("origin", origin)?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (non-empty, no control characters). The spec
    /// advises against them: monitors cannot audit them.
    pub fn with_extension(mut self, line: &str) -> Result<Checkpoint, CheckpointError> {
        check_line("extension line", line)?;
        self.extensions.push(line.to_owned());
        Ok(self)
    }

    /// Parses checkpoint note text, with its final newline: at least three
    /// lines; a non-empty origin; a size in decimal without leading zeros; a
    /// root of exactly 32 bytes in standard padded base64; non-empty
    /// extension lines.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        check_controls("checkpoint", text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline { what: "checkpoint" })?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(malformed(format!(
                "it has {} lines; origin, size and root hash are required",
                lines.len()
            )));
        };
        check_line("origin", origin)?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        for line in extensions {
            check_line("extension line", line)?;
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// The log's identity.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree at [`Checkpoint::size`].
    pub fn root(&self) -> &Digest {
        &self.root
    }

    /// The extension lines, without newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Checks that `newer` is a later state of the same log: same origin, and
    /// a consistency proof from this checkpoint to it verifies.
    pub fn verify_consistency(
        &self,
        newer: &Checkpoint,
        proof: &[Digest],
    ) -> Result<(), CheckpointError> {
        if self.origin != newer.origin {
            return Err(CheckpointError::OriginMismatch {
                old: self.origin.clone(),
                new: newer.origin.clone(),
            });
        }
        merkle::verify_consistency(self.size, newer.size, &self.root, &newer.root, proof).map_err(
            |source| CheckpointError::Inconsistent {
                old_size: self.size,
                new_size: newer.size,
                source,
            },
        )
    }
}

impl fmt::Display for Checkpoint {
    /// The note text, ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", BASE64.encode(self.root.as_bytes()))?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl FromStr for Checkpoint {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, CheckpointError> {
        Checkpoint::parse(s)
    }
}

/// A checkpoint line: non-empty, no newline or other control character.
fn check_line(what: &'static str, line: &str) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(malformed(format!("the {what} is empty")));
    }
    if line.bytes().any(|b| b < 0x20) {
        return Err(malformed(format!(
            "the {what} contains a newline or another control character"
        )));
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "the tree size {line:?} is not a decimal number"
        )));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(malformed(format!(
            "the tree size {line:?} has a leading zero"
        )));
    }
    line.parse()
        .map_err(|_| malformed(format!("the tree size {line:?} does not fit in 64 bits")))
}

fn parse_root(line: &str) -> Result<Digest, CheckpointError> {
    let bytes = BASE64.decode(line).map_err(|_| {
        malformed(format!(
            "the root hash {line:?} is not standard padded base64"
        ))
    })?;
    Digest::from_slice(&bytes)
        .ok_or_else(|| malformed(format!("the root hash is {} bytes, not 32", bytes.len())))
}

/// A checkpoint and the signatures on it: the log's own and any
/// cosignatures (C2SP tlog-checkpoint §Signatures, tlog-cosignature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Signs a checkpoint with the log's Ed25519 key (type 0x01). The key name
    /// should be the origin (tlog-checkpoint §Signatures).
    pub fn sign(
        checkpoint: Checkpoint,
        name: &str,
        key: &SigningKey,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let mut note = Note::new(checkpoint.to_string())?;
        note.sign(name, key)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Parses a signed checkpoint: a signed note whose text is a checkpoint.
    /// Signatures are not checked; see [`SignedCheckpoint::verify`].
    pub fn parse(note: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(note)?;
        let checkpoint = Checkpoint::parse(note.text())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Builds one from a signed note whose text is a checkpoint.
    pub fn from_note(note: Note) -> Result<SignedCheckpoint, CheckpointError> {
        let checkpoint = Checkpoint::parse(note.text())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// The checkpoint. Trust it only after [`SignedCheckpoint::verify`].
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The underlying note.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The signature lines.
    pub fn signatures(&self) -> &[NoteSignature] {
        self.note.signatures()
    }

    /// Checks the log's signature: `log` must have signed, and its signature
    /// must verify. Other signatures are ignored.
    pub fn verify(&self, log: &NoteVerifier) -> Result<(), CheckpointError> {
        self.verify_with(log, &Strict)
    }

    /// [`SignedCheckpoint::verify`], with the signature checked by `sigs`
    /// (for [`crate::batch::batched`]).
    pub fn verify_with(
        &self,
        log: &NoteVerifier,
        sigs: &dyn SignatureCheck,
    ) -> Result<(), CheckpointError> {
        self.note.verify_one(log, sigs).map(|_| ())
    }

    /// A cosignature/v1 (type 0x04) on this checkpoint by `name` at `time`
    /// (POSIX seconds, at most `2^63 - 1`). The cosigner must first have
    /// verified the log's signature and the consistency with the last
    /// checkpoint it cosigned.
    pub fn cosign(
        &self,
        name: &str,
        key: &SigningKey,
        time: u64,
    ) -> Result<NoteSignature, CheckpointError> {
        check_key_name(name)?;
        if time > MAX_TIMESTAMP {
            return Err(CheckpointError::TimestampOutOfRange(time));
        }
        let message = cosignature_message(time, self.note.text());
        let mut signature = Vec::with_capacity(COSIGNATURE_LEN);
        signature.extend_from_slice(&time.to_be_bytes());
        signature.extend_from_slice(&key.sign(message.as_bytes()).to_bytes());
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: key_id(name, SignatureType::CosignatureV1, &key.verifying_key()),
            signature,
        })
    }

    /// Adds a signature line (a cosignature returned by a peer), refusing
    /// duplicates and more than [`MAX_SIGNATURES`]. It is not checked here.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), CheckpointError> {
        self.note.add_signature(signature)
    }

    /// Checks the cosignature of one cosigner (a type 0x04 verifier), which
    /// must be present, and returns its timestamp. Whether the time is
    /// plausible is the caller's decision.
    pub fn verify_cosignature(&self, cosigner: &NoteVerifier) -> Result<u64, CheckpointError> {
        self.verify_cosignature_with(cosigner, &Strict)
    }

    /// [`SignedCheckpoint::verify_cosignature`], with the signature checked
    /// by `sigs` (for [`crate::batch::batched`]).
    pub fn verify_cosignature_with(
        &self,
        cosigner: &NoteVerifier,
        sigs: &dyn SignatureCheck,
    ) -> Result<u64, CheckpointError> {
        match self.note.verify_one(cosigner, sigs)? {
            Some(time) => Ok(time),
            // A type 0x01 verifier: an Ed25519 note signature, not a
            // cosignature, so there is no time to report.
            None => Err(CheckpointError::UnsupportedSignatureType(
                cosigner.kind.byte(),
            )),
        }
    }

    /// Checks the signatures of every known key present (log and cosigners;
    /// signed-note §Signatures): unknown lines are ignored, a known line that
    /// does not verify refuses the whole note, and at least one must verify.
    pub fn verify_known<'k>(
        &self,
        known: &'k [NoteVerifier],
    ) -> Result<Vec<&'k NoteVerifier>, CheckpointError> {
        self.note.verify(known)
    }
}

impl fmt::Display for SignedCheckpoint {
    /// The signed note as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.note.fmt(f)
    }
}

impl FromStr for SignedCheckpoint {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, CheckpointError> {
        SignedCheckpoint::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_differ_by_type() {
        let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert_ne!(
            key_id("a.example/log", SignatureType::Ed25519, &key),
            key_id("a.example/log", SignatureType::CosignatureV1, &key)
        );
    }

    #[test]
    fn key_names() {
        assert!(check_key_name("example.com/log").is_ok());
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\tb"] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("18446744073709551615").unwrap(), u64::MAX);
        for bad in ["", "01", "-1", "+1", "1 ", "18446744073709551616", "0x10"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
