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
//!
//! # Layout
//!
//! This file holds [`MessageKind`], the [`Message`] enum of every body with
//! its encoding and per-kind rules ([`Message::validate`]), and [`BodyError`].
//! The bodies, one module per group of kinds:
//!
//! - `notice`: [`OperationalNotice`];
//! - `readmission`: [`ReadmissionRequest`] (person, documents, evidence,
//!   procedure details) and [`ReadmissionReply`];
//! - `extension`: [`DeadlineExtensionRequest`], [`DeadlineExtensionDecision`];
//! - `transfer`: [`TransferArrangement`], [`HandoverConfirmation`];
//! - `data_protection`: [`DataProtectionNotice`];
//! - `fields`: field types several kinds share ([`Procedure`], [`Handling`],
//!   [`Attachment`], [`Transport`]);
//! - [`examples`]: fixed bodies for tests and the demo.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};

mod data_protection;
pub mod examples;
mod extension;
mod fields;
mod notice;
mod readmission;
mod transfer;

pub use data_protection::{DataProtectionAction, DataProtectionNotice};
pub use extension::{DeadlineExtensionDecision, DeadlineExtensionRequest};
pub use fields::{Attachment, Handling, Procedure, Transport};
pub use notice::{OperationalNotice, Priority};
pub use readmission::{
    Apprehension, Decision, DocumentType, EvidenceItem, IdentityDocument, Person, ProposedTransfer,
    ReadmissionReply, ReadmissionRequest, Sex, Transit,
};
pub use transfer::{Escort, HandoverConfirmation, TransferArrangement};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Date;
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
