//! The signed file: [`SignedRoster`], a roster file as read (body bytes and
//! signatures, not yet checked), its encoding, and signing it with a roster
//! key. Checking it is in `verify`.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use kurir_proto::KeyId;
use kurir_proto::cbor;
use sha2::{Digest as _, Sha256};

use crate::error::RosterError;
use crate::files;

use super::wire::{WireFile, WireSig};
use super::{Problem, Problems, RosterBody, RosterSignature, SIGNING_DOMAIN};

/// A roster file as read, signatures not yet checked: what the editing and
/// signing commands work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRoster {
    /// The body bytes exactly as signed.
    pub body_bytes: Vec<u8>,
    /// The signatures.
    pub signatures: Vec<RosterSignature>,
}

impl SignedRoster {
    /// An unsigned roster for `body`.
    pub fn unsigned(body: &RosterBody) -> Result<SignedRoster, RosterError> {
        Ok(SignedRoster {
            body_bytes: body.encode()?,
            signatures: Vec::new(),
        })
    }

    /// Parses a roster file (structure only).
    pub fn decode(bytes: &[u8]) -> Result<SignedRoster, Problems> {
        let wire: WireFile = cbor::from_slice(bytes).map_err(|e| {
            Problems(vec![Problem::Encoding {
                part: "file",
                reason: e.to_string(),
            }])
        })?;
        Ok(SignedRoster {
            body_bytes: wire.body,
            signatures: wire
                .signatures
                .into_iter()
                .map(|s| RosterSignature {
                    kid: s.kid,
                    sig: s.sig,
                })
                .collect(),
        })
    }

    /// Reads a roster file.
    pub fn load(path: &Path) -> Result<SignedRoster, RosterError> {
        let bytes = files::read(path)?;
        SignedRoster::decode(&bytes).map_err(|problems| RosterError::Invalid {
            path: Some(path.to_owned()),
            problems,
        })
    }

    /// The file bytes.
    pub fn encode(&self) -> Result<Vec<u8>, RosterError> {
        let wire = WireFile {
            body: self.body_bytes.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSig {
                    kid: s.kid.clone(),
                    sig: s.sig.clone(),
                })
                .collect(),
        };
        cbor::to_vec(&wire).map_err(|e| RosterError::Encode(e.to_string()))
    }

    /// Writes the file (replacing it atomically).
    pub fn save(&self, path: &Path) -> Result<(), RosterError> {
        files::replace(path, &self.encode()?, 0o644)?;
        Ok(())
    }

    /// The body, validated (signatures not checked).
    pub fn body(&self) -> Result<RosterBody, Problems> {
        RosterBody::decode(&self.body_bytes)
    }

    /// Adds (or replaces) the signature of `key`. Signatures stay sorted by
    /// key id, so signing in any order gives the same file.
    pub fn sign(&mut self, key: &SigningKey) {
        let kid = KeyId::of(&key.verifying_key());
        let mut msg = SIGNING_DOMAIN.to_vec();
        msg.extend_from_slice(&self.body_bytes);
        let sig = key.sign(&msg);
        self.signatures.retain(|s| s.kid != kid.as_bytes());
        self.signatures.push(RosterSignature {
            kid: kid.as_bytes().to_vec(),
            sig: sig.to_bytes().to_vec(),
        });
        self.signatures.sort_by(|a, b| a.kid.cmp(&b.kid));
    }

    /// SHA-256 of the file bytes, as 64 hex digits: compare it out of band
    /// before trusting a first roster.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.encode().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signature;
    use kurir_proto::Timestamp;
    use serde::Serialize;

    use super::super::RosterKey;
    use super::super::wire::WireBody;
    use super::*;

    #[test]
    fn signing_message_is_domain_separated() {
        let body = RosterBody {
            version: 1,
            issued_at: Timestamp(0),
            threshold: 1,
            roster_keys: vec![RosterKey {
                label: "k".into(),
                key: SigningKey::from_bytes(&[1; 32]).verifying_key(),
            }],
            members: Vec::new(),
        };
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut signed = SignedRoster::unsigned(&body).unwrap();
        signed.sign(&key);
        let sig = Signature::from_slice(&signed.signatures[0].sig).unwrap();
        let mut msg = b"kurir/v1/roster\0".to_vec();
        msg.extend_from_slice(&body.encode().unwrap());
        assert!(key.verifying_key().verify_strict(&msg, &sig).is_ok());
        // Not a signature over the bare body.
        assert!(
            key.verifying_key()
                .verify_strict(&body.encode().unwrap(), &sig)
                .is_err()
        );
        // Unknown fields in the body are refused.
        #[derive(Serialize)]
        struct Extra {
            #[serde(flatten)]
            body: WireBody,
            extra: u64,
        }
        let bytes = cbor::to_vec(&Extra {
            body: body.to_wire(),
            extra: 1,
        })
        .unwrap();
        assert!(RosterBody::decode(&body.encode().unwrap()).is_ok());
        assert!(RosterBody::decode(&bytes).is_err());
    }
}
