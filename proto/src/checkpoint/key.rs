//! Key names, signature types and key ids (C2SP signed-note §Format,
//! §Signatures, §Signature types).

use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};

use super::CheckpointError;

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
pub(super) fn check_key_name(name: &str) -> Result<(), CheckpointError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

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
}
