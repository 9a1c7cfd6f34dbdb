//! The control messages between relays on ALPN `kurir/1`: asking a peer to
//! cosign a checkpoint, and to prove entries of its log.

use crate::cbor::{self, CborError};

use super::bundle::serde_bytes_vec;
use super::inclusion::InclusionProof;

/// The most entries one [`PeerRequest::Prove`] may ask about.
pub const MAX_PROVE: usize = 64;

/// A control request between relays on ALPN `kurir/1`. A peer stream's first
/// frame is either a parcel (a CBOR array) or one of these (a CBOR map with
/// an `op` key); the receiving relay tells them apart by the first byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerRequest {
    /// Please cosign my newest checkpoint.
    Cosign {
        /// The checkpoint note, signed by the sender's log key.
        #[serde(with = "cbor::bytes")]
        checkpoint: Vec<u8>,
        /// The size of the last checkpoint of mine you cosigned (0 if none).
        old_size: u64,
        /// RFC 9162 consistency proof from `old_size` to the new size.
        proof: Vec<serde_bytes_vec::Bytes>,
    },
    /// Please prove that these entries of your log (named by receipts you
    /// signed me) are in your newest checkpoint. At most [`MAX_PROVE`].
    Prove {
        /// Leaf indexes.
        indexes: Vec<u64>,
    },
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerResponse {
    /// The checkpoint note with the witness's cosignature/v1 line added.
    Cosigned {
        /// The cosigned note.
        #[serde(with = "cbor::bytes")]
        note: Vec<u8>,
    },
    /// Not cosigned, and why (a fork is refused for good).
    Refused {
        /// Why.
        reason: String,
        /// The size of the last checkpoint of yours this witness cosigned, so
        /// the sender can send a proof from there.
        witnessed_size: u64,
    },
    /// Inclusion proofs, for the asked entries the newest checkpoint covers
    /// (the others are left out: ask again after the next checkpoint).
    Proofs {
        /// One per covered entry, each against the same newest checkpoint.
        proofs: Vec<InclusionProof>,
    },
}

impl PeerRequest {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<PeerRequest, CborError> {
        cbor::from_slice(bytes)
    }
}

impl PeerResponse {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<PeerResponse, CborError> {
        cbor::from_slice(bytes)
    }
}
