//! The verified roster: [`Roster`], what a relay trusts, its accessors,
//! [`Accepted`], and [`KeyLookup`] over the members' message keys. How a
//! roster is verified is in `verify`.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, MessageKind, PublicKey};
use sha2::{Digest as _, Sha256};

use super::{Member, RosterBody};

/// A roster whose signatures have been verified. The relay trusts exactly
/// what it says.
#[derive(Debug, Clone)]
pub struct Roster {
    pub(super) body: RosterBody,
    pub(super) body_bytes: Vec<u8>,
    pub(super) file_bytes: Vec<u8>,
    pub(super) keys: HashMap<KeyId, PublicKey>,
}

/// The outcome of [`Roster::accept`].
#[derive(Debug, Clone)]
pub enum Accepted {
    /// A newer roster: replace the current one with it.
    Newer(Roster),
    /// The same roster as the current one (same version, same bytes).
    Unchanged,
}

impl Roster {
    /// The verified content.
    pub fn body(&self) -> &RosterBody {
        &self.body
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.body.version
    }

    /// The members.
    pub fn members(&self) -> &[Member] {
        &self.body.members
    }

    /// The member with this id.
    pub fn member(&self, id: &AuthorityId) -> Option<&Member> {
        self.body.member(id)
    }

    /// Whether the member `to` lists `kind` among the kinds it exchanges.
    pub fn accepts(&self, to: &AuthorityId, kind: MessageKind) -> bool {
        self.member(to).is_some_and(|m| m.kinds.contains(&kind))
    }

    /// Whether `from` may send `to` a message of `kind`: both are members
    /// and both list the kind.
    pub fn allows(&self, from: &AuthorityId, to: &AuthorityId, kind: MessageKind) -> bool {
        self.accepts(from, kind) && self.accepts(to, kind)
    }

    /// The audit-log key of a member.
    pub fn log_key(&self, id: &AuthorityId) -> Option<VerifyingKey> {
        self.member(id).map(|m| m.log_key)
    }

    /// The exact file bytes (to store, or to pass on to peers).
    pub fn to_bytes(&self) -> &[u8] {
        &self.file_bytes
    }

    /// SHA-256 of the file bytes, 64 hex digits.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.file_bytes))
    }
}

/// Message keys of every member, old ones included, so that old messages
/// and receipts still verify; the caller checks `valid_at` for the signing
/// time.
impl KeyLookup for Roster {
    fn lookup(&self, kid: &KeyId) -> Option<PublicKey> {
        self.keys.get(kid).cloned()
    }
}
