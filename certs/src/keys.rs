//! Ed25519 key files and the random source.
//!
//! A secret key file holds the 32-byte Ed25519 seed as 64 lower-case hex
//! digits and a newline, mode `0600`. A public key file (`.pub`) holds the
//! 32-byte public key the same way.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{FileError, PkiError};
use crate::files::{self, Overwrite};

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], PkiError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| PkiError::Random)?;
    Ok(out)
}

/// A fresh Ed25519 key.
pub fn generate_ed25519() -> Result<SigningKey, PkiError> {
    Ok(SigningKey::from_bytes(&random_bytes::<32>()?))
}

/// Writes a secret key file (mode `0600`).
pub fn write_secret_key(
    path: &Path,
    key: &SigningKey,
    overwrite: Overwrite,
) -> Result<(), FileError> {
    let text = format!("{}\n", hex::encode(key.to_bytes()));
    files::write_secret(path, text.as_bytes(), overwrite)
}

/// Writes a public key file.
pub fn write_public_key(
    path: &Path,
    key: &VerifyingKey,
    overwrite: Overwrite,
) -> Result<(), FileError> {
    let text = format!("{}\n", hex::encode(key.as_bytes()));
    files::write_public(path, text.as_bytes(), overwrite)
}

/// Reads a secret key file, refusing one that others may read.
pub fn read_secret_key(path: &Path) -> Result<SigningKey, FileError> {
    let bytes = files::read_secret(path)?;
    let text = String::from_utf8(bytes).unwrap_or_default();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| FileError::Malformed {
        path: path.to_owned(),
        reason: "not an Ed25519 secret key file (expected 64 hex digits)".into(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Parses a public key given as 64 hex digits.
pub fn parse_public_hex(text: &str) -> Result<VerifyingKey, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| "expected an Ed25519 public key as 64 hex digits".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// Reads a public key file, or takes the argument itself as hex if it is
/// not a file.
pub fn read_public_key(arg: &str) -> Result<VerifyingKey, FileError> {
    let path = Path::new(arg);
    if path.exists() {
        let text = files::read_text(path)?;
        parse_public_hex(&text).map_err(|reason| FileError::Malformed {
            path: path.to_owned(),
            reason,
        })
    } else {
        parse_public_hex(arg).map_err(|reason| FileError::Malformed {
            path: path.to_owned(),
            reason: format!("neither a readable file nor a key: {reason}"),
        })
    }
}
