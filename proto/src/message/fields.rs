//! Field types shared by several kinds: the [`Procedure`] and [`Handling`]
//! the header also carries, [`Attachment`] and [`Transport`].

use serde::{Deserialize, Serialize};

use crate::cbor;

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
