//! [`NoteVerifier`]: a public key that checks note signatures, and its text
//! form, the *vkey* (C2SP signed-note §Verifier keys).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::batch::SignatureCheck;

use super::CheckpointError;
use super::cosignature::{COSIGNATURE_LEN, MAX_TIMESTAMP, cosignature_message};
use super::key::{SignatureType, check_key_name, key_id};
use super::signature::NoteSignature;

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
    pub(super) fn check(
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
