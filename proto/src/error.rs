//! Errors of sealing and opening, and the reason codes a relay sends back.

use std::fmt;
use std::str::FromStr;

use crate::cbor::CborError;
use crate::digest::Digest;
use crate::header::HeaderError;
use crate::ids::{AuthorityId, KeyId};
use crate::message::{BodyError, MessageKind};
use crate::time::Timestamp;

/// Why a parcel, envelope or receipt was refused.
///
/// Each variant maps to a [`RejectCode`] that travels back to the sender in a
/// signed rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Larger than the receiver's limit; refused before decoding.
    #[error("{what} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not the structure the protocol defines.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Valid CBOR, but not its deterministic encoding.
    #[error("{what} is not in deterministic CBOR encoding: {source}")]
    NonCanonical {
        /// Which structure.
        what: &'static str,
        /// Detail.
        source: CborError,
    },
    /// A header version this software does not read.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u64),
    /// An algorithm other than EdDSA (-8).
    #[error("unsupported signature algorithm {0} (only EdDSA, COSE -8, is accepted)")]
    UnsupportedAlgorithm(String),
    /// The key id is not in the roster.
    #[error("unknown signing key {0}: not in the current roster")]
    UnknownKey(KeyId),
    /// The signature does not verify under the key the `kid` names.
    #[error("bad signature by key {0}")]
    BadSignature(KeyId),
    /// The key exists but was not valid when the message says it was created.
    #[error(
        "key {kid} was not valid at {at} (valid from {valid_from}{})",
        valid_until.map(|u| format!(" until {u}")).unwrap_or_default()
    )]
    KeyNotValid {
        /// The key.
        kid: KeyId,
        /// The time the message claims.
        at: Timestamp,
        /// Start of the key's validity.
        valid_from: Timestamp,
        /// End of the key's validity, if any.
        valid_until: Option<Timestamp>,
    },
    /// The roster revoked the key at or before the time the message or
    /// receipt claims.
    #[error("key {kid} was revoked at {revoked_at}; it may not sign at {at}")]
    KeyRevoked {
        /// The key.
        kid: KeyId,
        /// The time the message or receipt claims.
        at: Timestamp,
        /// When the roster revoked it.
        revoked_at: Timestamp,
    },
    /// The key belongs to another authority than the one named as signer.
    #[error("key {kid} belongs to {owner}, but the message claims to come from {claimed}")]
    SignerMismatch {
        /// The key.
        kid: KeyId,
        /// Its owner in the roster.
        owner: AuthorityId,
        /// The authority the message names.
        claimed: AuthorityId,
    },
    /// The header decodes but breaks a rule.
    #[error("invalid header: {0}")]
    InvalidHeader(HeaderError),
    /// The body is not the one the header's digest commits to.
    #[error("body digest mismatch: header says {expected}, body hashes to {actual}")]
    DigestMismatch {
        /// From the signed header.
        expected: Digest,
        /// Computed over the salt and body received.
        actual: Digest,
    },
    /// The body does not fit its kind.
    #[error("invalid body: {0}")]
    InvalidBody(BodyError),
    /// This relay is not among the recipients.
    #[error("wrong recipient: addressed to {to}, this relay is {me}")]
    WrongRecipient {
        /// This relay's authority.
        me: AuthorityId,
        /// The recipients the header names.
        to: String,
    },
    /// Past `expires_at`.
    #[error("expired at {expires_at} (now {now})")]
    Expired {
        /// From the signed header.
        expires_at: Timestamp,
        /// The receiver's clock.
        now: Timestamp,
    },
}

impl OpenError {
    /// The reason code sent back to the sender.
    pub fn code(&self) -> RejectCode {
        match self {
            OpenError::TooLarge { .. } => RejectCode::TooLarge,
            OpenError::Malformed { .. } => RejectCode::Malformed,
            OpenError::NonCanonical { .. } => RejectCode::NonCanonical,
            OpenError::UnsupportedVersion(_) => RejectCode::UnsupportedVersion,
            OpenError::UnsupportedAlgorithm(_) => RejectCode::UnsupportedAlgorithm,
            OpenError::UnknownKey(_) => RejectCode::UnknownKey,
            OpenError::BadSignature(_) => RejectCode::BadSignature,
            OpenError::KeyNotValid { .. } => RejectCode::KeyNotValid,
            OpenError::KeyRevoked { .. } => RejectCode::KeyRevoked,
            OpenError::SignerMismatch { .. } => RejectCode::SignerMismatch,
            OpenError::InvalidHeader(_) => RejectCode::InvalidHeader,
            OpenError::DigestMismatch { .. } => RejectCode::DigestMismatch,
            OpenError::InvalidBody(_) => RejectCode::InvalidBody,
            OpenError::WrongRecipient { .. } => RejectCode::WrongRecipient,
            OpenError::Expired { .. } => RejectCode::Expired,
        }
    }
}

/// Why a message could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The header breaks a rule.
    #[error("cannot seal: {0}")]
    Header(#[from] HeaderError),
    /// The body breaks a rule of its kind.
    #[error("cannot seal: {0}")]
    Body(#[from] BodyError),
    /// The header names another kind than the body is.
    #[error("cannot seal: the header says {header} but the body is a {body}")]
    KindMismatch {
        /// Kind in the header.
        header: MessageKind,
        /// Kind of the body.
        body: MessageKind,
    },
    /// The header and body disagree on a field they both carry.
    #[error("cannot seal: {0}")]
    Inconsistent(String),
    /// A receipt breaks a rule.
    #[error("cannot seal receipt: {0}")]
    Receipt(String),
    /// The COSE library failed to encode.
    #[error("cannot seal: COSE encoding failed: {0}")]
    Cose(String),
}

/// Reason codes in signed rejections (`reason` in a receipt), as text on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCode {
    /// See [`OpenError::TooLarge`].
    TooLarge,
    /// See [`OpenError::Malformed`].
    Malformed,
    /// See [`OpenError::NonCanonical`].
    NonCanonical,
    /// See [`OpenError::UnsupportedVersion`].
    UnsupportedVersion,
    /// See [`OpenError::UnsupportedAlgorithm`].
    UnsupportedAlgorithm,
    /// See [`OpenError::UnknownKey`].
    UnknownKey,
    /// See [`OpenError::BadSignature`].
    BadSignature,
    /// See [`OpenError::KeyNotValid`].
    KeyNotValid,
    /// See [`OpenError::KeyRevoked`].
    KeyRevoked,
    /// See [`OpenError::SignerMismatch`].
    SignerMismatch,
    /// See [`OpenError::InvalidHeader`].
    InvalidHeader,
    /// See [`OpenError::DigestMismatch`].
    DigestMismatch,
    /// See [`OpenError::InvalidBody`].
    InvalidBody,
    /// See [`OpenError::WrongRecipient`].
    WrongRecipient,
    /// See [`OpenError::Expired`].
    Expired,
    /// The roster does not allow this kind from this sender.
    KindNotAllowed,
    /// The envelope's `from` is not the authority of the TLS peer.
    TransportMismatch,
    /// `created_at` lies further in the future than the receiver's clock skew allows.
    NotYetValid,
    /// The sender is not the other party of the readmission case the
    /// message names, or opens a case under another authority's id.
    NotAParty,
    /// The readmission message does not fit its case: the case is unknown
    /// or exists already, the sender's side may not send this kind, the
    /// case is closed or in another state, the message goes to others too,
    /// or an extension is over the agreed maximum.
    CaseConflict,
    /// Another message (from another sender, or with another envelope) was
    /// received under this message id already.
    IdConflict,
    /// Over a rate or queue limit; try again later.
    RateLimited,
    /// The receiver failed; try again later.
    Internal,
}

impl RejectCode {
    pub(crate) const ALL: [RejectCode; 23] = [
        RejectCode::TooLarge,
        RejectCode::Malformed,
        RejectCode::NonCanonical,
        RejectCode::UnsupportedVersion,
        RejectCode::UnsupportedAlgorithm,
        RejectCode::UnknownKey,
        RejectCode::BadSignature,
        RejectCode::KeyNotValid,
        RejectCode::KeyRevoked,
        RejectCode::SignerMismatch,
        RejectCode::InvalidHeader,
        RejectCode::DigestMismatch,
        RejectCode::InvalidBody,
        RejectCode::WrongRecipient,
        RejectCode::Expired,
        RejectCode::KindNotAllowed,
        RejectCode::TransportMismatch,
        RejectCode::NotYetValid,
        RejectCode::NotAParty,
        RejectCode::CaseConflict,
        RejectCode::IdConflict,
        RejectCode::RateLimited,
        RejectCode::Internal,
    ];

    /// The wire name, e.g. `bad_signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::TooLarge => "too_large",
            RejectCode::Malformed => "malformed",
            RejectCode::NonCanonical => "non_canonical",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::UnsupportedAlgorithm => "unsupported_algorithm",
            RejectCode::UnknownKey => "unknown_key",
            RejectCode::BadSignature => "bad_signature",
            RejectCode::KeyNotValid => "key_not_valid",
            RejectCode::KeyRevoked => "key_revoked",
            RejectCode::SignerMismatch => "signer_mismatch",
            RejectCode::InvalidHeader => "invalid_header",
            RejectCode::DigestMismatch => "digest_mismatch",
            RejectCode::InvalidBody => "invalid_body",
            RejectCode::WrongRecipient => "wrong_recipient",
            RejectCode::Expired => "expired",
            RejectCode::KindNotAllowed => "kind_not_allowed",
            RejectCode::TransportMismatch => "transport_mismatch",
            RejectCode::NotYetValid => "not_yet_valid",
            RejectCode::NotAParty => "not_a_party",
            RejectCode::CaseConflict => "case_conflict",
            RejectCode::IdConflict => "id_conflict",
            RejectCode::RateLimited => "rate_limited",
            RejectCode::Internal => "internal",
        }
    }

    /// Whether sending the same bytes again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, RejectCode::RateLimited | RejectCode::Internal)
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RejectCode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        RejectCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}
