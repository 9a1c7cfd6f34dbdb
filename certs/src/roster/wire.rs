//! The wire structs of a roster file and its body, as CBOR maps with text
//! keys: lenient, so that every problem can be named precisely. `codec`
//! turns them into the validated types of `body` and back.

use kurir_proto::cbor;
use serde::{Deserialize, Serialize};

use super::FocalPoint;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireFile {
    #[serde(with = "cbor::bytes")]
    pub(super) body: Vec<u8>,
    pub(super) signatures: Vec<WireSig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireSig {
    #[serde(with = "cbor::bytes")]
    pub(super) kid: Vec<u8>,
    #[serde(with = "cbor::bytes")]
    pub(super) sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireBody {
    pub(super) format: u64,
    pub(super) version: u64,
    pub(super) issued_at: u64,
    pub(super) threshold: u64,
    pub(super) roster_keys: Vec<WireRosterKey>,
    pub(super) members: Vec<WireMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireRosterKey {
    pub(super) label: String,
    #[serde(with = "cbor::bytes")]
    pub(super) key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireMember {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) endpoints: Vec<WireEndpoint>,
    #[serde(with = "cbor::bytes")]
    pub(super) tls_ca: Vec<u8>,
    pub(super) message_keys: Vec<WireKey>,
    #[serde(with = "cbor::bytes")]
    pub(super) log_key: Vec<u8>,
    pub(super) kinds: Vec<String>,
    pub(super) focal_points: Vec<FocalPoint>,
    /// Absent when empty: rosters without a rotated log key keep their
    /// exact bytes and fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) log_keys_before: Vec<WirePastLogKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) revoked_node_certs: Vec<WireRevokedCert>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WirePastLogKey {
    #[serde(with = "cbor::bytes")]
    pub(super) key: Vec<u8>,
    pub(super) valid_until: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireRevokedCert {
    #[serde(with = "cbor::bytes")]
    pub(super) sha256: Vec<u8>,
    pub(super) revoked_at: u64,
    pub(super) reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireEndpoint {
    pub(super) host: String,
    pub(super) port: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireKey {
    #[serde(with = "cbor::bytes")]
    pub(super) key: Vec<u8>,
    pub(super) valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) valid_until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) revoked_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_member_key(valid_until: Option<u64>) -> WireKey {
        WireKey {
            key: vec![7; 32],
            valid_from: 1,
            valid_until,
            revoked_at: None,
        }
    }

    #[test]
    fn absent_valid_until_is_left_out_not_null() {
        let bytes = cbor::to_vec(&wire_member_key(None)).unwrap();
        // {"key": h'07..', "valid_from": 1}: two entries.
        assert_eq!(bytes[0], 0xa2);
        // The same with an explicit null is not the deterministic encoding.
        let value = ciborium_value_with_null(&bytes);
        assert!(cbor::from_slice::<WireKey>(&value).is_err());
        assert_eq!(
            cbor::from_slice::<WireKey>(&bytes).unwrap(),
            wire_member_key(None)
        );
    }

    /// Re-encodes a two-entry map with a third entry "valid_until": null.
    fn ciborium_value_with_null(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0xa3];
        out.extend_from_slice(&bytes[1..]);
        out.push(0x6b);
        out.extend_from_slice(b"valid_until");
        out.push(0xf6);
        out
    }
}
