//! The control messages between relays on ALPN `kurir/1`: asking a peer to
//! cosign a checkpoint, to prove entries of its log, and for the rosters it
//! holds newer than ours.

use crate::cbor::{self, CborError};

use super::bundle::serde_bytes_vec;
use super::inclusion::InclusionProof;

/// The most entries one [`PeerRequest::Prove`] may ask about.
pub const MAX_PROVE: usize = 64;

/// The most rosters one [`PeerResponse::Rosters`] carries (the oldest
/// first; the asker asks again once it has adopted them).
pub const MAX_ROSTER_CHAIN: usize = 16;

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
    /// My roster in force is this one: tell me yours, and send me the
    /// rosters you hold that are newer.
    Rosters {
        /// The version of the asker's roster in force.
        version: u64,
        /// Its fingerprint: SHA-256 of the signed file, 64 lowercase hex digits.
        fingerprint: String,
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
    /// The answerer's roster in force, and the signed rosters it holds
    /// newer than the version asked about, oldest first (at most
    /// [`MAX_ROSTER_CHAIN`]; empty when it is not ahead). The asker
    /// verifies each against its own roster in force before it takes it.
    Rosters {
        /// The version of the answerer's roster in force.
        version: u64,
        /// Its fingerprint (SHA-256 of the signed file, hex).
        fingerprint: String,
        /// Signed roster files, each as it was signed, oldest first.
        chain: Vec<serde_bytes_vec::Bytes>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The roster exchange as bytes on the wire (PROTOCOL.md §15), and back.
    #[test]
    fn roster_messages_have_one_encoding() {
        let ask = PeerRequest::Rosters {
            version: 2,
            fingerprint: "ab".repeat(32),
        };
        let bytes = ask.encode().unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // {"op": "rosters", "version": 2, "fingerprint": "abab…"}, keys
        // sorted bytewise.
        let expected = [
            "a3",
            "626f70",                   // "op"
            "67726f7374657273",         // "rosters"
            "6776657273696f6e",         // "version"
            "02",                       // 2
            "6b66696e6765727072696e74", // "fingerprint"
            "7840",                     // a text of 64 bytes
        ]
        .concat()
            + &"6162".repeat(32);
        assert_eq!(hex, expected);
        assert_eq!(PeerRequest::decode(&bytes).unwrap(), ask);
        let answer = PeerResponse::Rosters {
            version: 3,
            fingerprint: "cd".repeat(32),
            chain: vec![serde_bytes_vec::Bytes(vec![1, 2, 3])],
        };
        let bytes = answer.encode().unwrap();
        assert_eq!(PeerResponse::decode(&bytes).unwrap(), answer);
        // An unknown field is refused, not ignored.
        let mut map = ciborium::Value::Map(vec![]);
        if let ciborium::Value::Map(m) = &mut map {
            m.push(("op".into(), "rosters".into()));
            m.push(("version".into(), 1.into()));
            m.push(("fingerprint".into(), "00".into()));
            m.push(("extra".into(), 1.into()));
        }
        let mut extra = Vec::new();
        ciborium::into_writer(&map, &mut extra).unwrap();
        assert!(PeerRequest::decode(&extra).is_err());
    }
}
