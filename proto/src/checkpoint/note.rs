//! [`Note`]: a signed note, its text and signature lines (C2SP signed-note
//! §Format, §Signatures; Ed25519 signatures of type 0x01).

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};

use crate::batch::{SignatureCheck, Strict};

use super::CheckpointError;
use super::key::{SignatureType, check_key_name, key_id};
use super::signature::NoteSignature;
use super::verifier::NoteVerifier;

/// The most signature lines a note may carry. The signed-note spec requires
/// accepting at least 16; a federation has far fewer members than this.
pub const MAX_SIGNATURES: usize = 64;

/// The largest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// Refuses control characters other than newline.
pub(super) fn check_controls(what: &'static str, text: &str) -> Result<(), CheckpointError> {
    match text
        .bytes()
        .enumerate()
        .find(|&(_, b)| b < 0x20 && b != b'\n')
    {
        Some((offset, byte)) => Err(CheckpointError::ControlCharacter { what, byte, offset }),
        None => Ok(()),
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
                    .map(|v| v.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(signed)
    }

    /// Verifies the signature of one key, which must be present. Returns the
    /// cosignature time for a type 0x04 key.
    pub(super) fn verify_one(
        &self,
        verifier: &NoteVerifier,
        sigs: &dyn SignatureCheck,
    ) -> Result<Option<u64>, CheckpointError> {
        let signature = self
            .signatures
            .iter()
            .find(|s| verifier.matches(s))
            .ok_or_else(|| CheckpointError::MissingSignature {
                name: verifier.name().to_owned(),
                key_id: verifier.key_id(),
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
