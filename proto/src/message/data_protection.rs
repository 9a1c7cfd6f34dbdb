//! The data-protection notice: rectification, erasure or restriction of
//! data sent earlier.

use serde::{Deserialize, Serialize};

use crate::ids::MessageId;

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
