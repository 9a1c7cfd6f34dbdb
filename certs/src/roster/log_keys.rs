//! Log-key rotation in the roster: a member's earlier audit-log keys
//! ([`PastLogKey`], `log_keys_before`), which key verifies what, and how
//! the history travels through `member.json` and `roster update`.
//!
//! The rule: a member's current `log_key` verifies anything; an earlier key
//! verifies only what was made before its `valid_until`. For a checkpoint,
//! "made" is the time of the newest log entry it covers (the checkpoint
//! cannot have been signed before that entry existed, so a key that
//! stopped signing cannot vouch for later entries); for a cosignature, its
//! own timestamp; for a checkpoint a witness receives live, the moment it
//! arrives.

use ed25519_dalek::VerifyingKey;
use kurir_proto::{AuthorityId, Timestamp};

use super::body::{Member, PastLogKey};
use super::codec::field;
use super::trusted::Roster;
use super::wire::WirePastLogKey;
use crate::authority::PastLogKeyFile;
use crate::error::Problem;

impl Member {
    /// The log keys that verify what this member made at `at`: the current
    /// key first, then the earlier keys still valid at `at`, newest first.
    pub fn log_keys_at(&self, at: Timestamp) -> Vec<VerifyingKey> {
        let mut keys = vec![self.log_key];
        keys.extend(
            self.log_keys_before
                .iter()
                .rev()
                .filter(|k| at < k.valid_until)
                .map(|k| k.key),
        );
        keys
    }

    /// Every log key the member has had: the current one first.
    pub fn all_log_keys(&self) -> Vec<VerifyingKey> {
        let mut keys = vec![self.log_key];
        keys.extend(self.log_keys_before.iter().rev().map(|k| k.key));
        keys
    }
}

impl Roster {
    /// The log keys of `id` that verify what it made at `at`
    /// ([`Member::log_keys_at`]); empty if `id` is not a member.
    pub fn log_keys_at(&self, id: &AuthorityId, at: Timestamp) -> Vec<VerifyingKey> {
        self.member(id).map_or_else(Vec::new, |m| m.log_keys_at(at))
    }

    /// Every log key `id` has had, the current one first.
    pub fn all_log_keys(&self, id: &AuthorityId) -> Vec<VerifyingKey> {
        self.member(id).map_or_else(Vec::new, Member::all_log_keys)
    }
}

pub(super) fn to_wire(keys: &[PastLogKey]) -> Vec<WirePastLogKey> {
    keys.iter()
        .map(|k| WirePastLogKey {
            key: k.key.as_bytes().to_vec(),
            valid_until: k.valid_until.0,
        })
        .collect()
}

/// Validates the wire list of member `at`; `key` parses and registers
/// each key (a key listed twice anywhere in the roster is a problem).
pub(super) fn from_wire(
    wire: &[WirePastLogKey],
    at: &str,
    problems: &mut Vec<Problem>,
    mut key: impl FnMut(&[u8], String, &mut Vec<Problem>) -> Option<VerifyingKey>,
) -> Vec<PastLogKey> {
    let mut out: Vec<PastLogKey> = Vec::new();
    for (i, k) in wire.iter().enumerate() {
        let kat = format!("{at}.log_keys_before[{i}]");
        if out.last().is_some_and(|p| k.valid_until < p.valid_until.0) {
            problems.push(field(
                format!("{kat}.valid_until"),
                "earlier log keys must be listed oldest first (by valid_until)",
            ));
        }
        if k.valid_until == 0 {
            problems.push(field(format!("{kat}.valid_until"), "must be a time"));
        }
        if let Some(v) = key(&k.key, format!("{kat}.key"), problems) {
            out.push(PastLogKey {
                key: v,
                valid_until: Timestamp(k.valid_until),
            });
        }
    }
    out
}

/// The earlier log keys listed in `member.json`.
pub(super) fn from_member_file(keys: &[PastLogKeyFile]) -> Result<Vec<PastLogKey>, String> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            Ok(PastLogKey {
                key: crate::keys::parse_public_hex(&k.public).map_err(|e| format!("[{i}]: {e}"))?,
                valid_until: Timestamp(k.valid_until),
            })
        })
        .collect()
}

/// `roster update`: the earlier log keys `new` lists, plus those the
/// roster held for the member that `new` does not list (none is dropped),
/// oldest first.
pub(super) fn merge(old: &Member, new: &Member) -> Vec<PastLogKey> {
    let mut keys = new.log_keys_before.clone();
    for k in &old.log_keys_before {
        if !keys.iter().any(|n| n.key == k.key) && k.key != new.log_key {
            keys.push(k.clone());
        }
    }
    keys.sort_by_key(|k| k.valid_until);
    keys
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use kurir_proto::cbor;
    use serde::Serialize;

    use super::*;
    use crate::roster::FocalPoint;
    use crate::roster::wire::{WireEndpoint, WireKey, WireMember};

    /// The member map as it was before `log_keys_before` existed.
    #[derive(Serialize)]
    struct WireMemberV1 {
        id: String,
        name: String,
        endpoints: Vec<WireEndpoint>,
        #[serde(with = "cbor::bytes")]
        tls_ca: Vec<u8>,
        message_keys: Vec<WireKey>,
        #[serde(with = "cbor::bytes")]
        log_key: Vec<u8>,
        kinds: Vec<String>,
        focal_points: Vec<FocalPoint>,
    }

    fn member(past: Vec<WirePastLogKey>) -> WireMember {
        WireMember {
            id: "RS.MUP".into(),
            name: "RS".into(),
            endpoints: vec![WireEndpoint {
                host: "relay.rs.example".into(),
                port: 7443,
            }],
            tls_ca: vec![1, 2, 3],
            message_keys: vec![WireKey {
                key: vec![7; 32],
                valid_from: 1,
                valid_until: None,
                revoked_at: None,
            }],
            log_key: vec![9; 32],
            kinds: vec!["notice".into()],
            focal_points: vec![],
            log_keys_before: past,
            revoked_node_certs: Vec::new(),
        }
    }

    #[test]
    fn a_member_without_earlier_log_keys_encodes_as_before() {
        let now = cbor::to_vec(&member(Vec::new())).unwrap();
        let m = member(Vec::new());
        let v1 = cbor::to_vec(&WireMemberV1 {
            id: m.id,
            name: m.name,
            endpoints: m.endpoints,
            tls_ca: m.tls_ca,
            message_keys: m.message_keys,
            log_key: m.log_key,
            kinds: m.kinds,
            focal_points: m.focal_points,
        })
        .unwrap();
        assert_eq!(now, v1, "same bytes, so the same roster fingerprint");
        assert_eq!(
            cbor::from_slice::<WireMember>(&v1).unwrap(),
            member(Vec::new())
        );
        // An explicit empty list is not the deterministic encoding.
        let mut with_empty = vec![now[0] + 1];
        with_empty.extend_from_slice(&now[1..]);
        with_empty.push(0x6f);
        with_empty.extend_from_slice(b"log_keys_before");
        with_empty.push(0x80);
        assert!(cbor::from_slice::<WireMember>(&with_empty).is_err());
        // With a key it round-trips.
        let rotated = member(vec![WirePastLogKey {
            key: vec![8; 32],
            valid_until: 5,
        }]);
        let bytes = cbor::to_vec(&rotated).unwrap();
        assert_ne!(bytes, v1);
        assert_eq!(cbor::from_slice::<WireMember>(&bytes).unwrap(), rotated);
    }

    fn key(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    #[test]
    fn an_earlier_key_verifies_only_what_was_made_before_its_end() {
        let m = Member {
            id: AuthorityId::parse("RS.MUP").unwrap(),
            name: "RS".into(),
            endpoints: vec![],
            tls_ca: vec![],
            message_keys: vec![],
            log_key: key(3),
            kinds: vec![],
            focal_points: vec![],
            revoked_node_certs: vec![],
            log_keys_before: vec![
                PastLogKey {
                    key: key(1),
                    valid_until: Timestamp(100),
                },
                PastLogKey {
                    key: key(2),
                    valid_until: Timestamp(200),
                },
            ],
        };
        assert_eq!(m.log_keys_at(Timestamp(50)), vec![key(3), key(2), key(1)]);
        assert_eq!(m.log_keys_at(Timestamp(100)), vec![key(3), key(2)]);
        assert_eq!(m.log_keys_at(Timestamp(199)), vec![key(3), key(2)]);
        assert_eq!(m.log_keys_at(Timestamp(200)), vec![key(3)]);
        assert_eq!(m.all_log_keys(), vec![key(3), key(2), key(1)]);

        // roster update keeps what the roster held and `new` leaves out.
        let mut new = m.clone();
        new.log_key = key(4);
        new.log_keys_before = vec![PastLogKey {
            key: key(3),
            valid_until: Timestamp(300),
        }];
        let merged = merge(&m, &new);
        let keys: Vec<_> = merged.iter().map(|k| k.key).collect();
        assert_eq!(keys, vec![key(1), key(2), key(3)]);
    }
}
