//! The records the store keeps for messages: sent ([`OutboundRecord`]),
//! received ([`InboxRecord`], with its [`ReadMark`]), refused
//! ([`RefusalRecord`]), a body's erasure ([`Erased`]), and what accepting a
//! received message did ([`Accepted`]). Stored as deterministic CBOR
//! ([`encode`]).

use kurir_proto::cbor;
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, CaseId, MessageId, Timestamp};
use serde::{Deserialize, Serialize};

/// A message this relay sent (or is sending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecord {
    /// The message.
    pub msg_id: MessageId,
    /// From the header.
    pub kind: MessageKind,
    /// Recipients.
    pub to: Vec<AuthorityId>,
    /// The case, if any.
    pub case_id: Option<CaseId>,
    /// From the header.
    pub created_at: Timestamp,
    /// From the header.
    pub expires_at: Timestamp,
    /// The officer who submitted it (certificate subject).
    pub submitted_by: String,
    /// The parcel at rest: given in clear to
    /// [`Store::submit`](super::Store::submit), which stores the envelope
    /// in clear and salt and body encrypted with a key of their own (read
    /// it back with [`Store::parcel`](super::Store::parcel)).
    #[serde(with = "cbor::bytes")]
    pub parcel: Vec<u8>,
    /// Set when the body was erased under the retention policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erased>,
}

/// When and why a body was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    /// When.
    pub at: Timestamp,
    /// The retention rule that applied, e.g. `operational-notice: 30 days after read`.
    pub policy: String,
}

/// Who read a received message, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMark {
    /// When it was first marked read.
    pub at: Timestamp,
    /// The officer.
    pub by: String,
}

/// A message this relay received and accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRecord {
    /// The message.
    pub msg_id: MessageId,
    /// The sending authority.
    pub from: AuthorityId,
    /// From the header.
    pub kind: MessageKind,
    /// The case, if any.
    pub case_id: Option<CaseId>,
    /// The message it answers, if any.
    pub in_reply_to: Option<MessageId>,
    /// When this relay stored it.
    pub received_at: Timestamp,
    /// The parcel at rest (see [`OutboundRecord::parcel`]).
    #[serde(with = "cbor::bytes")]
    pub parcel: Vec<u8>,
    /// Set when the body was erased under the retention policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erased>,
    /// The signed receipt this relay sent back (sent again on a duplicate).
    #[serde(with = "cbor::bytes")]
    pub receipt: Vec<u8>,
    /// Set once an officer read it.
    pub read: Option<ReadMark>,
}

/// A parcel this relay refused, with the signed rejection it sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// The TLS peer that sent it.
    pub from: AuthorityId,
    /// The message id, if the envelope could be verified.
    pub msg_id: Option<MessageId>,
    /// Envelope digest (see the protocol).
    #[serde(with = "cbor::bytes")]
    pub envelope_digest: Vec<u8>,
    /// When it was refused.
    pub at: Timestamp,
    /// The reason code.
    pub code: String,
    /// The explanation sent back.
    pub detail: String,
    /// The signed rejection.
    #[serde(with = "cbor::bytes")]
    pub receipt: Vec<u8>,
}

/// What [`Store::accept_inbound`](super::Store::accept_inbound) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored for the first time: the record as stored, with its receipt.
    New(Box<InboxRecord>),
    /// Already there: the original record, whose receipt goes back again.
    Duplicate(Box<InboxRecord>),
}

/// A value as stored: deterministic CBOR.
pub(super) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    cbor::to_vec(v).map_err(|e| e.to_string())
}
