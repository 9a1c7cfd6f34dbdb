//! [`CheckpointError`]: why a note, checkpoint, key or signature was refused.

use crate::merkle::ProofError;

/// Why a note, checkpoint, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is larger than [`MAX_NOTE_LEN`].
    ///
    /// [`MAX_NOTE_LEN`]: super::MAX_NOTE_LEN
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
    ///
    /// [`MAX_SIGNATURES`]: super::MAX_SIGNATURES
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
