//! The transfer: the agreed arrangements, the escort, and the confirmation
//! that the handover took place.

use serde::{Deserialize, Serialize};

use crate::time::{Date, Timestamp};

use super::Transport;

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
