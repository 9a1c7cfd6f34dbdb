//! [`SignedCheckpoint`]: a checkpoint with the log's signature and its
//! cosignatures (C2SP tlog-checkpoint §Signatures, tlog-cosignature).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey};

use crate::batch::{SignatureCheck, Strict};

use super::CheckpointError;
use super::cosignature::{COSIGNATURE_LEN, MAX_TIMESTAMP, cosignature_message};
use super::key::{SignatureType, check_key_name, key_id};
use super::note::Note;
use super::signature::NoteSignature;
use super::tlog::Checkpoint;
use super::verifier::NoteVerifier;

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
    ///
    /// [`MAX_SIGNATURES`]: super::MAX_SIGNATURES
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
                cosigner.kind().byte(),
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
