//! Extensions of the reply time limit: the request and the decision on it.

use serde::{Deserialize, Serialize};

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
