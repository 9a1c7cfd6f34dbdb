//! SHA-256 digests with domain separation.
//!
//! Every hash kurir computes starts with a domain tag (ASCII, ending in a NUL
//! byte) so that a digest of one kind can never be taken for another.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// Domain tags, byte for byte as hashed.
pub mod domain {
    /// Key ids: `SHA-256(KEY_ID ‖ public key)[..16]`.
    pub const KEY_ID: &[u8] = b"kurir/v1/key-id\0";
    /// Body digests: `SHA-256(BODY ‖ salt ‖ body)`.
    pub const BODY: &[u8] = b"kurir/v1/body\0";
    /// Envelope digests: `SHA-256(ENVELOPE ‖ COSE_Sign1 bytes)`.
    pub const ENVELOPE: &[u8] = b"kurir/v1/envelope\0";
}

/// A SHA-256 digest. As text: 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 over the concatenation of `parts`.
    pub fn of(parts: &[&[u8]]) -> Digest {
        let mut h = Sha256::new();
        for part in parts {
            h.update(part);
        }
        Digest(h.finalize().into())
    }

    /// The digest of a message body: SHA-256(`"kurir/v1/body\0"` ‖ salt ‖ body).
    ///
    /// The random salt keeps an erased body from being confirmed by guessing:
    /// once body and salt are deleted, the digest in the signed header reveals
    /// nothing, yet the signature over the header still verifies.
    pub fn of_body(salt: &[u8; 32], body: &[u8]) -> Digest {
        Digest::of(&[domain::BODY, salt, body])
    }

    /// The digest of a signed envelope (the tagged COSE_Sign1 bytes), as
    /// receipts and the audit log name it.
    pub fn of_envelope(envelope: &[u8]) -> Digest {
        Digest::of(&[domain::ENVELOPE, envelope])
    }

    /// Takes exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Digest> {
        bytes.try_into().ok().map(Digest)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}
