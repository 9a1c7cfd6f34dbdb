//! The operational notice: free-form information between authorities.

use serde::{Deserialize, Serialize};

use super::Attachment;

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
