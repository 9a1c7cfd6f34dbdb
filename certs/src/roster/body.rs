//! The roster's format as validated types: [`RosterBody`] (version,
//! threshold, roster keys, members), [`Member`] with its endpoints, keys and
//! focal points, and [`RosterSignature`]. `codec` encodes and decodes them.

use ed25519_dalek::VerifyingKey;
use kurir_proto::{AuthorityId, KeyId, MessageKind, Timestamp};
use serde::{Deserialize, Serialize};

/// A roster key: one of the n keys of which k must sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterKey {
    /// Who holds it (free text, e.g. "RS.MUP roster officer 1").
    pub label: String,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
}

impl RosterKey {
    /// The key id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.key)
    }
}

/// A relay endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (the node certificate's DNS SAN) or IP address.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

/// A message/receipt key with its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// First moment it may sign.
    pub valid_from: Timestamp,
    /// First moment it may no longer sign (`None`: open-ended).
    pub valid_until: Option<Timestamp>,
    /// When the key was revoked (`None`: not revoked). What it signed at
    /// or after this moment is refused; what it signed before stays valid.
    pub revoked_at: Option<Timestamp>,
}

impl MessageKey {
    /// The key id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.key)
    }
}

/// An audit-log key a member signed with before it rotated to its current
/// `log_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastLogKey {
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// First moment it may no longer sign: a checkpoint that covers an
    /// entry dated at or after it, or a cosignature dated at or after it,
    /// does not verify with this key.
    pub valid_until: Timestamp,
}

/// A person to contact at a member authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPoint {
    /// Name.
    pub name: String,
    /// Role or function.
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// E-mail address.
    pub email: String,
}

/// A member authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Authority id.
    pub id: AuthorityId,
    /// Display name.
    pub name: String,
    /// Relay endpoints, preferred first.
    pub endpoints: Vec<Endpoint>,
    /// The authority's TLS CA certificate (DER).
    pub tls_ca: Vec<u8>,
    /// Message/receipt keys, by `valid_from`; old keys stay.
    pub message_keys: Vec<MessageKey>,
    /// Audit-log (checkpoint) key.
    pub log_key: VerifyingKey,
    /// The member's earlier audit-log keys, oldest first, each with the
    /// moment it stopped signing (empty for a member whose log key never
    /// rotated; left out of the encoding then, so such rosters keep their
    /// bytes). Lookups: `roster::log_keys`.
    pub log_keys_before: Vec<PastLogKey>,
    /// Message kinds the member accepts.
    pub kinds: Vec<MessageKind>,
    /// Focal points.
    pub focal_points: Vec<FocalPoint>,
    /// Node certificates of this member that are refused at the handshake
    /// (empty in every roster that revokes none).
    pub revoked_node_certs: Vec<RevokedCert>,
}

/// A revoked node certificate: its SHA-256 fingerprint, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    /// SHA-256 of the certificate's DER.
    pub sha256: [u8; 32],
    /// When it was revoked.
    pub revoked_at: Timestamp,
    /// Why (free text, e.g. "relay host compromised").
    pub reason: String,
}

/// The signed content of a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterBody {
    /// Version; strictly increasing.
    pub version: u64,
    /// When this version was made.
    pub issued_at: Timestamp,
    /// How many roster keys must sign (k).
    pub threshold: u64,
    /// The roster keys (n).
    pub roster_keys: Vec<RosterKey>,
    /// Members, sorted by id.
    pub members: Vec<Member>,
}

/// One signature in a roster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterSignature {
    /// The signing key's id.
    pub kid: Vec<u8>,
    /// The signature bytes.
    pub sig: Vec<u8>,
}

impl RosterBody {
    /// The member with this id.
    pub fn member(&self, id: &AuthorityId) -> Option<&Member> {
        self.members.iter().find(|m| &m.id == id)
    }
}
