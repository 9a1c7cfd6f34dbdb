//! The export format: a [`Bundle`] of one relay's whole audit log, with
//! the receipts it keeps ([`BundleReceipt`]).

use std::fmt;

use crate::cbor::{self, CborError};
use crate::ids::AuthorityId;
use crate::time::Timestamp;

/// The format name of an audit bundle.
pub const BUNDLE_FORMAT: &str = "kurir-audit-bundle/1";

/// Whether the exporting relay signed a receipt of its bundle or holds it
/// from a peer. On the wire, the text `issued` or `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// Signed by the exporting relay, for a message it received (or refused).
    Issued,
    /// Signed by a peer, for a message the exporting relay sent.
    Held,
}

impl ReceiptKind {
    /// The wire name: `issued` or `held`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Issued => "issued",
            ReceiptKind::Held => "held",
        }
    }
}

impl fmt::Display for ReceiptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A receipt kept with a bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleReceipt {
    /// Issued (signed by the exporting relay for a message it received)
    /// or held (signed by a peer for a message the exporting relay sent).
    pub kind: ReceiptKind,
    /// The receipt bytes (COSE_Sign1).
    #[serde(with = "cbor::bytes")]
    pub receipt: Vec<u8>,
    /// For a held acceptance: once the receiver's checkpoints cover the
    /// entry it names, the proof of that entry in one of them
    /// ([`super::InclusionProof`] bytes). Absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<serde_bytes_vec::Bytes>,
}

/// A self-contained export of one relay's audit log: everything an auditor
/// needs to verify it offline. Stored as deterministic CBOR (`bundle.cbor`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The authority whose log this is.
    pub authority: AuthorityId,
    /// When the export was made.
    pub exported_at: Timestamp,
    /// The roster the relay had accepted (signed file bytes).
    #[serde(with = "cbor::bytes")]
    pub roster: Vec<u8>,
    /// Every roster the relay accepted over its life (signed file bytes),
    /// oldest version first; the last is `roster`. Keys that signed older
    /// entries, checkpoints and receipts are in them.
    pub rosters: Vec<serde_bytes_vec::Bytes>,
    /// Every entry, in order, exactly as stored.
    pub entries: Vec<serde_bytes_vec::Bytes>,
    /// Every checkpoint (signed notes), oldest first.
    pub checkpoints: Vec<serde_bytes_vec::Bytes>,
    /// Receipts issued and held.
    pub receipts: Vec<BundleReceipt>,
    /// The signed envelope (COSE_Sign1, `PROTOCOL.md` §8; no body) of every
    /// message the relay sent or received, in the order of their entries.
    pub envelopes: Vec<serde_bytes_vec::Bytes>,
}

/// A byte string inside a CBOR array.
pub mod serde_bytes_vec {
    /// Serializes as a CBOR byte string.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    pub struct Bytes(#[serde(with = "crate::cbor::bytes")] pub Vec<u8>);
}

impl Bundle {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, CborError> {
        let b: Bundle = cbor::from_slice(bytes)?;
        if b.format != BUNDLE_FORMAT {
            return Err(CborError::Schema(format!(
                "format {:?}, expected {BUNDLE_FORMAT:?}",
                b.format
            )));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_kinds_are_the_texts_issued_and_held_on_the_wire() {
        // The bundle format before the kinds were an enum.
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Before {
            kind: String,
            #[serde(with = "cbor::bytes")]
            receipt: Vec<u8>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            inclusion: Option<serde_bytes_vec::Bytes>,
        }
        for (kind, text) in [(ReceiptKind::Issued, "issued"), (ReceiptKind::Held, "held")] {
            assert_eq!(kind.as_str(), text);
            assert_eq!(kind.to_string(), text);
            let now = BundleReceipt {
                kind,
                receipt: vec![1, 2, 3],
                inclusion: Some(serde_bytes_vec::Bytes(vec![4])),
            };
            let before = Before {
                kind: text.into(),
                receipt: vec![1, 2, 3],
                inclusion: Some(serde_bytes_vec::Bytes(vec![4])),
            };
            let bytes = cbor::to_vec(&now).unwrap();
            assert_eq!(bytes, cbor::to_vec(&before).unwrap());
            assert_eq!(cbor::from_slice::<BundleReceipt>(&bytes).unwrap(), now);
        }
        // Any other kind is refused.
        let other = Before {
            kind: "stolen".into(),
            receipt: vec![],
            inclusion: None,
        };
        assert!(cbor::from_slice::<BundleReceipt>(&cbor::to_vec(&other).unwrap()).is_err());
    }
}
