//! The readmission request (the agreement's common application form: the
//! person, documents, evidence, procedure details) and its reply.

use serde::{Deserialize, Serialize};

use crate::time::Date;

use super::{Attachment, Procedure, Transport};

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
