//! The message catalogue: what authorities send each other.
//!
//! Each kind is a struct whose deterministic-CBOR encoding is the message
//! **body**; the kind itself, the parties, the case and the dates are in the
//! signed [`Header`](crate::Header). Bodies are maps with text keys (the field
//! names below, in snake_case); enum values are snake_case text; absent
//! optional fields and empty lists are left out, never encoded as `null` or `[]`.
//!
//! The readmission fields follow the common application forms annexed to the
//! EU readmission agreements with the Western Balkan states (for instance
//! Annexes 6 and 7 of the EU–Serbia agreement, Council Decision 2007/819/EC).
//!
//! A signed delivery receipt is not a body: see [`crate::receipt`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};
use crate::ids::MessageId;
use crate::time::{Date, Timestamp};

/// The kinds of message an envelope can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum MessageKind {
    /// [`OperationalNotice`]
    OperationalNotice,
    /// [`ReadmissionRequest`]
    ReadmissionRequest,
    /// [`ReadmissionReply`]
    ReadmissionReply,
    /// [`DeadlineExtensionRequest`]
    DeadlineExtensionRequest,
    /// [`DeadlineExtensionDecision`]
    DeadlineExtensionDecision,
    /// [`TransferArrangement`]
    TransferArrangement,
    /// [`HandoverConfirmation`]
    HandoverConfirmation,
    /// [`DataProtectionNotice`]
    DataProtectionNotice,
}

impl MessageKind {
    /// Every kind, in catalogue order.
    pub const ALL: [MessageKind; 8] = [
        MessageKind::OperationalNotice,
        MessageKind::ReadmissionRequest,
        MessageKind::ReadmissionReply,
        MessageKind::DeadlineExtensionRequest,
        MessageKind::DeadlineExtensionDecision,
        MessageKind::TransferArrangement,
        MessageKind::HandoverConfirmation,
        MessageKind::DataProtectionNotice,
    ];

    /// The name used on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::OperationalNotice => "operational-notice",
            MessageKind::ReadmissionRequest => "readmission-request",
            MessageKind::ReadmissionReply => "readmission-reply",
            MessageKind::DeadlineExtensionRequest => "deadline-extension-request",
            MessageKind::DeadlineExtensionDecision => "deadline-extension-decision",
            MessageKind::TransferArrangement => "transfer-arrangement",
            MessageKind::HandoverConfirmation => "handover-confirmation",
            MessageKind::DataProtectionNotice => "data-protection-notice",
        }
    }

    /// Whether one envelope of this kind may go to several recipients.
    pub fn allows_several_recipients(self) -> bool {
        matches!(
            self,
            MessageKind::OperationalNotice | MessageKind::DataProtectionNotice
        )
    }

    /// Whether the header must name a case.
    pub fn needs_case(self) -> bool {
        !matches!(
            self,
            MessageKind::OperationalNotice | MessageKind::DataProtectionNotice
        )
    }

    /// Whether the header must name the message this one answers.
    pub fn needs_in_reply_to(self) -> bool {
        matches!(
            self,
            MessageKind::ReadmissionReply | MessageKind::DeadlineExtensionDecision
        )
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown message kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown message kind {0:?} (known kinds: operational-notice, readmission-request, \
         readmission-reply, deadline-extension-request, deadline-extension-decision, \
         transfer-arrangement, handover-confirmation, data-protection-notice)"
)]
pub struct UnknownKind(pub String);

impl FromStr for MessageKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        MessageKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.chars().take(64).collect()))
    }
}

/// The procedure a readmission request follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Procedure {
    /// Reply due within the agreement's standard time limit.
    Standard,
    /// Persons apprehended in the border region: shorter time limit.
    Accelerated,
    /// Transit of a third-country national through the requested state.
    Transit,
}

impl Procedure {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Procedure::Standard => "standard",
            Procedure::Accelerated => "accelerated",
            Procedure::Transit => "transit",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Procedure> {
        [
            Procedure::Standard,
            Procedure::Accelerated,
            Procedure::Transit,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// How sensitive a message is, from H0 (routine) to H3 (restricted to named
/// officers). Receiving relays use it to decide who may read a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Handling {
    /// Routine.
    H0,
    /// Internal: officers of the recipient authority.
    H1,
    /// Sensitive: personal data, need to know.
    H2,
    /// Restricted: named focal points only.
    H3,
}

impl Handling {
    /// `"H0"` … `"H3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Handling::H0 => "H0",
            Handling::H1 => "H1",
            Handling::H2 => "H2",
            Handling::H3 => "H3",
        }
    }

    /// Parses `"H0"` … `"H3"`.
    pub fn parse(s: &str) -> Option<Handling> {
        [Handling::H0, Handling::H1, Handling::H2, Handling::H3]
            .into_iter()
            .find(|h| h.as_str() == s)
    }
}

/// A file carried inside a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Attachment {
    /// File name as the sender gave it (no directories).
    pub name: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// The file's bytes.
    #[serde(with = "cbor::bytes")]
    pub data: Vec<u8>,
}

/// Urgency of an operational notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Priority {
    /// For information.
    Low,
    /// Normal working priority.
    Normal,
    /// Needs attention today.
    High,
    /// Needs attention now.
    Urgent,
}

/// Free-form operational information between authorities; may go to several
/// recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct OperationalNotice {
    /// One-line subject.
    pub subject: String,
    /// The notice itself.
    pub text: String,
    /// Urgency.
    pub priority: Priority,
    /// Attached files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// Sex as recorded in the person's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Sex {
    /// F
    Female,
    /// M
    Male,
    /// X, or not recorded.
    Unspecified,
}

/// The person a readmission request is about (form section "personal details").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Person {
    /// Surname(s) as in the travel document.
    pub surname: String,
    /// Given name(s).
    pub given_names: String,
    /// Surname at birth, if different.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_surname: Option<String>,
    /// Other names used (aliases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Date of birth.
    pub birth_date: Date,
    /// Place and country of birth.
    pub birth_place: String,
    /// Sex.
    pub sex: Sex,
    /// Nationalities (ISO 3166-1 alpha-2 or as known).
    pub nationalities: Vec<String>,
    /// Languages the person speaks (for interpretation at handover).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Last known address in the requested state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_address: Option<String>,
}

/// Kind of identity or travel document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum DocumentType {
    /// National passport.
    Passport,
    /// National identity card.
    IdentityCard,
    /// Travel document issued by the requested state (laissez-passer).
    LaissezPasser,
    /// Residence permit or visa.
    ResidencePermit,
    /// Seaman's book, driving licence, service book or other document.
    Other,
}

/// An identity or travel document of the person (form section "documents").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct IdentityDocument {
    /// Kind of document.
    pub document_type: DocumentType,
    /// Document number.
    pub number: String,
    /// Issuing state or authority.
    pub issuer: String,
    /// Date of issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_on: Option<Date>,
    /// Date of expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Date>,
    /// A scan or copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<Attachment>,
}

/// An evidence item, tagged by the agreement annex that lists its category
/// (e.g. EU–Serbia: Annex 1 proof of nationality, Annex 2 prima facie evidence
/// of nationality, Annex 3 proof and Annex 4 prima facie evidence concerning
/// third-country nationals and stateless persons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EvidenceItem {
    /// The annex number of the agreement.
    pub annex: u8,
    /// What the evidence is.
    pub description: String,
    /// A copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
}

/// Where and when the person was apprehended (accelerated procedure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Apprehension {
    /// Date of apprehension.
    pub date: Date,
    /// Place of apprehension (border region).
    pub place: String,
}

/// Means of transport for a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Transport {
    /// By air.
    Air,
    /// By road.
    Road,
    /// By rail.
    Rail,
    /// By sea or river.
    Water,
}

/// The requesting state's proposal for the transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProposedTransfer {
    /// Proposed date.
    pub date: Date,
    /// Proposed border crossing point or airport.
    pub border_crossing: String,
    /// Means of transport.
    pub transport: Transport,
}

/// Transit details (transit procedure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Transit {
    /// State of final destination.
    pub destination: String,
    /// Other transit states on the route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<String>,
    /// Whether readmission by the state of destination is assured.
    pub admission_assured: bool,
}

/// A readmission application (the agreement's common form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ReadmissionRequest {
    /// Must equal the header's `procedure`.
    pub procedure: Procedure,
    /// The person to be readmitted.
    pub person: Person,
    /// Identity and travel documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<IdentityDocument>,
    /// Evidence by annex.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceItem>,
    /// Apprehension in the border region (required for the accelerated procedure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apprehension: Option<Apprehension>,
    /// Transit details (required for the transit procedure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit: Option<Transit>,
    /// Proposed transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_transfer: Option<ProposedTransfer>,
    /// Health: need for medical care, contagious disease (with consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Whether the person must be escorted, and why (e.g. dangerousness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escort: Option<String>,
    /// Anything else the requested state should know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

/// The requested state's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Decision {
    /// Readmission confirmed.
    Confirmed,
    /// Readmission rejected, with reasons.
    Rejected,
}

/// Reply to a readmission request (`in_reply_to` names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ReadmissionReply {
    /// Confirmed or rejected.
    pub decision: Decision,
    /// Reasons; at least one when rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Travel document the requested state will issue, if needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub travel_document: Option<String>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

/// A reasoned request to extend the reply time limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeadlineExtensionRequest {
    /// Extra days asked for.
    pub days: u16,
    /// Why (legal or factual obstacles).
    pub reason: String,
}

/// The decision on an extension request (`in_reply_to` names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeadlineExtensionDecision {
    /// Whether the extension is granted.
    pub granted: bool,
    /// Days granted (0 when refused).
    pub days: u16,
    /// Why, when refused or shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A member of the escort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Escort {
    /// Name.
    pub name: String,
    /// Function or rank.
    pub role: String,
    /// Service or organisation.
    pub organisation: String,
}

/// The agreed arrangements for a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TransferArrangement {
    /// Date of transfer.
    pub date: Date,
    /// Local time at the crossing, `HH:MM`.
    pub time: String,
    /// Border crossing point or airport.
    pub border_crossing: String,
    /// Means of transport.
    pub transport: Transport,
    /// Flight number, vehicle or train details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_details: Option<String>,
    /// The escort.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escorts: Vec<Escort>,
}

/// Confirmation that the handover took place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HandoverConfirmation {
    /// When the person was handed over.
    pub handed_over_at: Timestamp,
    /// Where.
    pub place: String,
    /// Officer or service that received the person.
    pub received_by: String,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

/// What a data-protection notice asks the peer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum DataProtectionAction {
    /// Correct data sent earlier.
    Rectification,
    /// Erase data sent earlier.
    Erasure,
    /// Keep, but restrict processing.
    Restriction,
}

/// Rectification, erasure or restriction of data sent earlier, to be applied by
/// the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DataProtectionNotice {
    /// The messages the notice concerns.
    pub concerns: Vec<MessageId>,
    /// What to do.
    pub action: DataProtectionAction,
    /// What is wrong, and the corrected data for a rectification.
    pub details: String,
}

/// A message body of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Message {
    /// [`OperationalNotice`]
    OperationalNotice(OperationalNotice),
    /// [`ReadmissionRequest`] (boxed: it is by far the largest)
    ReadmissionRequest(Box<ReadmissionRequest>),
    /// [`ReadmissionReply`]
    ReadmissionReply(ReadmissionReply),
    /// [`DeadlineExtensionRequest`]
    DeadlineExtensionRequest(DeadlineExtensionRequest),
    /// [`DeadlineExtensionDecision`]
    DeadlineExtensionDecision(DeadlineExtensionDecision),
    /// [`TransferArrangement`]
    TransferArrangement(TransferArrangement),
    /// [`HandoverConfirmation`]
    HandoverConfirmation(HandoverConfirmation),
    /// [`DataProtectionNotice`]
    DataProtectionNotice(DataProtectionNotice),
}

/// A body that does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The CBOR is refused or does not have the kind's fields.
    #[error("{kind} body: {source}")]
    Cbor {
        /// The kind the header names.
        kind: MessageKind,
        /// What is wrong.
        source: CborError,
    },
    /// The fields are there but their values break a rule of the kind.
    #[error("{kind} body: {reason}")]
    Invalid {
        /// The kind the header names.
        kind: MessageKind,
        /// What is wrong.
        reason: String,
    },
}

impl Message {
    /// The kind of this body.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::OperationalNotice(_) => MessageKind::OperationalNotice,
            Message::ReadmissionRequest(_) => MessageKind::ReadmissionRequest,
            Message::ReadmissionReply(_) => MessageKind::ReadmissionReply,
            Message::DeadlineExtensionRequest(_) => MessageKind::DeadlineExtensionRequest,
            Message::DeadlineExtensionDecision(_) => MessageKind::DeadlineExtensionDecision,
            Message::TransferArrangement(_) => MessageKind::TransferArrangement,
            Message::HandoverConfirmation(_) => MessageKind::HandoverConfirmation,
            Message::DataProtectionNotice(_) => MessageKind::DataProtectionNotice,
        }
    }

    /// The deterministic-CBOR body bytes.
    pub fn encode(&self) -> Result<Vec<u8>, BodyError> {
        let kind = self.kind();
        match self {
            Message::OperationalNotice(m) => cbor::to_vec(m),
            Message::ReadmissionRequest(m) => cbor::to_vec(m),
            Message::ReadmissionReply(m) => cbor::to_vec(m),
            Message::DeadlineExtensionRequest(m) => cbor::to_vec(m),
            Message::DeadlineExtensionDecision(m) => cbor::to_vec(m),
            Message::TransferArrangement(m) => cbor::to_vec(m),
            Message::HandoverConfirmation(m) => cbor::to_vec(m),
            Message::DataProtectionNotice(m) => cbor::to_vec(m),
        }
        .map_err(|source| BodyError::Cbor { kind, source })
    }

    /// Decodes body bytes of the given kind, refusing non-deterministic CBOR,
    /// unknown fields and values that break the kind's rules.
    pub fn decode(kind: MessageKind, bytes: &[u8]) -> Result<Message, BodyError> {
        let message = Message::decode_fields(kind, bytes)?;
        message.validate()?;
        Ok(message)
    }

    /// Decodes without [`Message::validate`].
    fn decode_fields(kind: MessageKind, bytes: &[u8]) -> Result<Message, BodyError> {
        let cbor = |source| BodyError::Cbor { kind, source };
        let message = match kind {
            MessageKind::OperationalNotice => {
                Message::OperationalNotice(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::ReadmissionRequest => {
                Message::ReadmissionRequest(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::ReadmissionReply => {
                Message::ReadmissionReply(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::DeadlineExtensionRequest => {
                Message::DeadlineExtensionRequest(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::DeadlineExtensionDecision => {
                Message::DeadlineExtensionDecision(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::TransferArrangement => {
                Message::TransferArrangement(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::HandoverConfirmation => {
                Message::HandoverConfirmation(cbor::from_slice(bytes).map_err(cbor)?)
            }
            MessageKind::DataProtectionNotice => {
                Message::DataProtectionNotice(cbor::from_slice(bytes).map_err(cbor)?)
            }
        };
        Ok(message)
    }

    /// Checks the rules of each kind that the types alone do not express.
    pub fn validate(&self) -> Result<(), BodyError> {
        let invalid = |reason: &str| {
            Err(BodyError::Invalid {
                kind: self.kind(),
                reason: reason.to_owned(),
            })
        };
        match self {
            Message::OperationalNotice(m) if m.subject.trim().is_empty() => {
                invalid("the subject is empty")
            }
            Message::ReadmissionRequest(m) => {
                if m.person.surname.trim().is_empty() {
                    return invalid("person.surname is empty");
                }
                if m.person.nationalities.is_empty() {
                    return invalid(
                        "person.nationalities is empty (use \"unknown\" if it is not known)",
                    );
                }
                if let Some(e) = m.evidence.iter().find(|e| !(1..=9).contains(&e.annex)) {
                    return Err(BodyError::Invalid {
                        kind: self.kind(),
                        reason: format!("evidence annex {} is not between 1 and 9", e.annex),
                    });
                }
                match m.procedure {
                    Procedure::Accelerated if m.apprehension.is_none() => {
                        invalid("the accelerated procedure needs the apprehension date and place")
                    }
                    Procedure::Transit if m.transit.is_none() => {
                        invalid("the transit procedure needs the transit details")
                    }
                    _ => Ok(()),
                }
            }
            Message::ReadmissionReply(m)
                if m.decision == Decision::Rejected
                    && m.reasons.iter().all(|r| r.trim().is_empty()) =>
            {
                invalid("a rejection must give at least one reason")
            }
            Message::DeadlineExtensionRequest(m) if m.days == 0 => {
                invalid("the extension must be at least one day")
            }
            Message::DeadlineExtensionRequest(m) if m.reason.trim().is_empty() => {
                invalid("an extension request must give a reason")
            }
            Message::DeadlineExtensionDecision(m) if !m.granted && m.days != 0 => {
                invalid("a refused extension grants 0 days")
            }
            Message::TransferArrangement(m) if !is_hh_mm(&m.time) => {
                invalid("time must be HH:MM in 24-hour form, e.g. 09:30")
            }
            Message::DataProtectionNotice(m) if m.concerns.is_empty() => {
                invalid("the notice must name at least one message it concerns")
            }
            _ => Ok(()),
        }
    }
}

fn is_hh_mm(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit)
        && s[..2] < *"24"
        && s[3..] < *"60"
}

/// Helpers that build bodies for tests and the demo: realistic, fixed content.
pub mod examples {
    use super::*;

    /// A notice about a planned joint operation.
    pub fn notice() -> OperationalNotice {
        OperationalNotice {
            subject: "Joint patrol at Horgoš, 3 December".to_owned(),
            text: "Border police of both sides meet at 06:00 at the Horgoš/Röszke crossing."
                .to_owned(),
            priority: Priority::Normal,
            attachments: vec![],
        }
    }

    /// A standard-procedure readmission request with one passport.
    pub fn readmission_request() -> ReadmissionRequest {
        ReadmissionRequest {
            procedure: Procedure::Standard,
            person: Person {
                surname: "EXAMPLE".to_owned(),
                given_names: "Ana Maria".to_owned(),
                birth_surname: None,
                aliases: vec!["Anna Example".to_owned()],
                birth_date: Date::from_days_since_epoch(7411),
                birth_place: "Podgorica, ME".to_owned(),
                sex: Sex::Female,
                nationalities: vec!["ME".to_owned()],
                languages: vec!["sr".to_owned(), "en".to_owned()],
                last_address: None,
            },
            documents: vec![IdentityDocument {
                document_type: DocumentType::Passport,
                number: "P0000000".to_owned(),
                issuer: "ME".to_owned(),
                issued_on: None,
                valid_until: Some(Date::from_days_since_epoch(21945)),
                copy: None,
            }],
            evidence: vec![EvidenceItem {
                annex: 1,
                description: "Valid passport".to_owned(),
                attachment: None,
            }],
            apprehension: None,
            transit: None,
            proposed_transfer: None,
            health: None,
            escort: None,
            remarks: None,
        }
    }

    /// A confirming reply.
    pub fn confirmation() -> ReadmissionReply {
        ReadmissionReply {
            decision: Decision::Confirmed,
            reasons: vec![],
            travel_document: None,
            remarks: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in MessageKind::ALL {
            assert_eq!(kind.as_str().parse::<MessageKind>().unwrap(), kind);
            // The serde name is the same as the wire name.
            let v = ciborium::value::Value::serialized(&kind).unwrap();
            assert_eq!(v.as_text(), Some(kind.as_str()));
        }
        let err = "readmission".parse::<MessageKind>().unwrap_err();
        assert!(err.to_string().contains("readmission-request"));
    }

    #[test]
    fn rules_of_each_kind() {
        let mut r = examples::readmission_request();
        r.procedure = Procedure::Accelerated;
        let err = Message::ReadmissionRequest(Box::new(r))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("apprehension"), "{err}");

        let reply = ReadmissionReply {
            decision: Decision::Rejected,
            reasons: vec![],
            travel_document: None,
            remarks: None,
        };
        let err = Message::ReadmissionReply(reply).validate().unwrap_err();
        assert!(err.to_string().contains("reason"), "{err}");

        let t = TransferArrangement {
            date: Date::EPOCH,
            time: "24:00".to_owned(),
            border_crossing: "Batrovci".to_owned(),
            transport: Transport::Road,
            transport_details: None,
            escorts: vec![],
        };
        assert!(Message::TransferArrangement(t).validate().is_err());
        assert!(is_hh_mm("23:59") && is_hh_mm("00:00"));
        assert!(!is_hh_mm("9:30") && !is_hh_mm("12:60") && !is_hh_mm("ab:cd"));
    }

    #[test]
    fn bodies_refuse_unknown_fields_and_explicit_nulls() {
        let notice = examples::notice();
        let mut v = ciborium::value::Value::serialized(&notice).unwrap();
        if let ciborium::value::Value::Map(m) = &mut v {
            m.push(("extra".into(), 1.into()));
        }
        let bytes = cbor::encode_value(&v).unwrap();
        let err = Message::decode(MessageKind::OperationalNotice, &bytes).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");

        // `attachments: []` present is another encoding of "no attachments".
        let mut v = ciborium::value::Value::serialized(&notice).unwrap();
        if let ciborium::value::Value::Map(m) = &mut v {
            m.push(("attachments".into(), ciborium::value::Value::Array(vec![])));
        }
        let bytes = cbor::encode_value(&v).unwrap();
        let err = Message::decode(MessageKind::OperationalNotice, &bytes).unwrap_err();
        assert!(
            matches!(
                err,
                BodyError::Cbor {
                    source: CborError::NonCanonical,
                    ..
                }
            ),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every kind's body survives encode → decode unchanged, and the
        /// encoding is stable (the same value always gives the same bytes).
        #[test]
        fn every_kind_round_trips(message: Message) {
            let bytes = message.encode().unwrap();
            let kind = message.kind();
            // Without the kind's value rules, which random data breaks.
            let back = Message::decode_fields(kind, &bytes).unwrap();
            prop_assert_eq!(&back, &message);
            prop_assert_eq!(back.encode().unwrap(), bytes);
        }
    }
}
