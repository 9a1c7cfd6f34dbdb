//! Encoding and decoding the body: [`RosterBody::encode`], and
//! [`RosterBody::decode`] with the validation that names every problem
//! (fields, duplicate members and keys, key windows and their overlap).

use std::collections::{BTreeSet, HashMap};

use ed25519_dalek::VerifyingKey;
use kurir_proto::cbor;
use kurir_proto::{AuthorityId, KeyId, MessageKind, Timestamp};

use crate::error::RosterError;
use crate::x509::{CertInfo, DAY_MS};

use super::wire::{WireBody, WireEndpoint, WireKey, WireMember, WireRosterKey};
use super::{
    Endpoint, FORMAT, MAX_KEY_OVERLAP_MS, Member, MessageKey, Problem, Problems, RosterBody,
    RosterKey,
};

pub(super) fn field(field: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

fn ed25519(bytes: &[u8], at: &str, problems: &mut Vec<Problem>) -> Option<VerifyingKey> {
    let Ok(arr) = <[u8; 32]>::try_from(bytes) else {
        problems.push(field(
            at,
            format!(
                "an Ed25519 public key has 32 bytes, this has {}",
                bytes.len()
            ),
        ));
        return None;
    };
    match VerifyingKey::from_bytes(&arr) {
        Ok(k) if !k.is_weak() => Some(k),
        Ok(_) => {
            problems.push(field(at, "weak (small-order) Ed25519 public key"));
            None
        }
        Err(_) => {
            problems.push(field(at, "not a valid Ed25519 public key"));
            None
        }
    }
}

impl RosterBody {
    /// The deterministic CBOR bytes that roster keys sign.
    pub fn encode(&self) -> Result<Vec<u8>, RosterError> {
        cbor::to_vec(&self.to_wire()).map_err(|e| RosterError::Encode(e.to_string()))
    }

    pub(super) fn to_wire(&self) -> WireBody {
        WireBody {
            format: FORMAT,
            version: self.version,
            issued_at: self.issued_at.0,
            threshold: self.threshold,
            roster_keys: self
                .roster_keys
                .iter()
                .map(|k| WireRosterKey {
                    label: k.label.clone(),
                    key: k.key.as_bytes().to_vec(),
                })
                .collect(),
            members: self
                .members
                .iter()
                .map(|m| WireMember {
                    id: m.id.to_string(),
                    name: m.name.clone(),
                    endpoints: m
                        .endpoints
                        .iter()
                        .map(|e| WireEndpoint {
                            host: e.host.clone(),
                            port: u64::from(e.port),
                        })
                        .collect(),
                    tls_ca: m.tls_ca.clone(),
                    message_keys: m
                        .message_keys
                        .iter()
                        .map(|k| WireKey {
                            key: k.key.as_bytes().to_vec(),
                            valid_from: k.valid_from.0,
                            valid_until: k.valid_until.map(|t| t.0),
                            revoked_at: k.revoked_at.map(|t| t.0),
                        })
                        .collect(),
                    log_key: m.log_key.as_bytes().to_vec(),
                    kinds: m.kinds.iter().map(|k| k.to_string()).collect(),
                    focal_points: m.focal_points.clone(),
                    log_keys_before: super::log_keys::to_wire(&m.log_keys_before),
                    revoked_node_certs: super::revocation::certs_to_wire(&m.revoked_node_certs),
                })
                .collect(),
        }
    }

    /// Decodes and validates body bytes (structure only: the member CA
    /// certificates' validity at a given time is checked by
    /// [`SignedRoster::check`]).
    ///
    /// [`SignedRoster::check`]: super::SignedRoster::check
    pub fn decode(bytes: &[u8]) -> Result<RosterBody, Problems> {
        let wire: WireBody = cbor::from_slice(bytes).map_err(|e| {
            Problems(vec![Problem::Encoding {
                part: "body",
                reason: e.to_string(),
            }])
        })?;
        let mut problems = Vec::new();
        let body = validate(&wire, &mut problems);
        match body {
            Some(b) if problems.is_empty() => Ok(b),
            _ => Err(Problems(problems)),
        }
    }

    /// Checks the body as [`RosterBody::decode`] would.
    pub fn check(&self) -> Result<(), Problems> {
        let bytes = self.encode().map_err(|e| {
            Problems(vec![Problem::Encoding {
                part: "body",
                reason: e.to_string(),
            }])
        })?;
        RosterBody::decode(&bytes).map(|_| ())
    }
}

fn validate(w: &WireBody, problems: &mut Vec<Problem>) -> Option<RosterBody> {
    if w.format != FORMAT {
        problems.push(field(
            "format",
            format!(
                "format {} is not supported (this kurir reads {FORMAT})",
                w.format
            ),
        ));
        return None;
    }
    if w.version == 0 {
        problems.push(field("version", "versions start at 1"));
    }
    let mut seen_keys: HashMap<KeyId, String> = HashMap::new();
    let mut note_key = |kid: KeyId, at: String, problems: &mut Vec<Problem>| {
        if let Some(first) = seen_keys.get(&kid) {
            problems.push(Problem::DuplicateKey {
                kid: kid.to_string(),
                first: first.clone(),
                second: at,
            });
        } else {
            seen_keys.insert(kid, at);
        }
    };

    let mut roster_keys = Vec::new();
    if w.roster_keys.is_empty() {
        problems.push(field("roster_keys", "at least one roster key is needed"));
    }
    for (i, k) in w.roster_keys.iter().enumerate() {
        let at = format!("roster_keys[{i}]");
        if k.label.trim().is_empty() {
            problems.push(field(format!("{at}.label"), "must not be empty"));
        }
        if let Some(key) = ed25519(&k.key, &format!("{at}.key"), problems) {
            note_key(KeyId::of(&key), at, problems);
            roster_keys.push(RosterKey {
                label: k.label.clone(),
                key,
            });
        }
    }
    let n = w.roster_keys.len() as u64;
    if w.threshold == 0 || w.threshold > n {
        problems.push(field(
            "threshold",
            format!(
                "{} is not between 1 and the number of roster keys ({n})",
                w.threshold
            ),
        ));
    }

    let mut members = Vec::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut previous_id: Option<String> = None;
    for (i, m) in w.members.iter().enumerate() {
        let at = format!(
            "members[{i}] ({})",
            m.id.chars().take(24).collect::<String>()
        );
        if !ids.insert(m.id.clone()) {
            problems.push(Problem::DuplicateMember(m.id.clone()));
        } else if previous_id.as_ref().is_some_and(|p| p > &m.id) {
            problems.push(field(format!("{at}.id"), "members must be sorted by id"));
        }
        previous_id = Some(m.id.clone());
        if let Some(member) = validate_member(m, &at, problems, &mut note_key) {
            members.push(member);
        }
    }
    Some(RosterBody {
        version: w.version,
        issued_at: Timestamp(w.issued_at),
        threshold: w.threshold,
        roster_keys,
        members,
    })
}

fn validate_member(
    m: &WireMember,
    at: &str,
    problems: &mut Vec<Problem>,
    note_key: &mut impl FnMut(KeyId, String, &mut Vec<Problem>),
) -> Option<Member> {
    let before = problems.len();
    let id = match AuthorityId::parse(&m.id) {
        Ok(id) => Some(id),
        Err(e) => {
            problems.push(field(format!("{at}.id"), e.to_string()));
            None
        }
    };
    if m.name.trim().is_empty() {
        problems.push(field(format!("{at}.name"), "must not be empty"));
    }
    if m.endpoints.is_empty() {
        problems.push(field(
            format!("{at}.endpoints"),
            "at least one relay endpoint is needed",
        ));
    }
    let mut endpoints = Vec::new();
    for (j, e) in m.endpoints.iter().enumerate() {
        if let Err(reason) = crate::authority::check_host(&e.host) {
            problems.push(field(format!("{at}.endpoints[{j}].host"), reason));
        }
        match u16::try_from(e.port) {
            Ok(port) if port != 0 => endpoints.push(Endpoint {
                host: e.host.clone(),
                port,
            }),
            _ => problems.push(field(
                format!("{at}.endpoints[{j}].port"),
                format!("{} is not a port between 1 and 65535", e.port),
            )),
        }
    }
    match CertInfo::parse(&m.tls_ca) {
        Err(reason) => problems.push(field(format!("{at}.tls_ca"), reason)),
        Ok(info) => {
            if !info.is_ca {
                problems.push(field(
                    format!("{at}.tls_ca"),
                    "the certificate is not a CA certificate (basic constraints)",
                ));
            }
        }
    }
    if m.message_keys.is_empty() {
        problems.push(field(
            format!("{at}.message_keys"),
            "at least one message key is needed",
        ));
    }
    let mut message_keys = Vec::new();
    for (j, k) in m.message_keys.iter().enumerate() {
        let kat = format!("{at}.message_keys[{j}]");
        if let Some(until) = k.valid_until
            && until <= k.valid_from
        {
            problems.push(field(
                format!("{kat}.valid_until"),
                format!(
                    "{} is not after valid_from {}",
                    Timestamp(until),
                    Timestamp(k.valid_from)
                ),
            ));
        }
        if let Some(revoked) = k.revoked_at
            && revoked < k.valid_from
        {
            problems.push(field(
                format!("{kat}.revoked_at"),
                format!(
                    "{} is before valid_from {}",
                    Timestamp(revoked),
                    Timestamp(k.valid_from)
                ),
            ));
        }
        if j > 0 && m.message_keys[j - 1].valid_from > k.valid_from {
            problems.push(field(
                format!("{kat}.valid_from"),
                "message keys must be listed oldest first (by valid_from)",
            ));
        }
        if let Some(key) = ed25519(&k.key, &format!("{kat}.key"), problems) {
            note_key(KeyId::of(&key), kat.clone(), problems);
            message_keys.push(MessageKey {
                key,
                valid_from: Timestamp(k.valid_from),
                valid_until: k.valid_until.map(Timestamp),
                revoked_at: k.revoked_at.map(Timestamp),
            });
        }
    }
    // Overlap: any two keys may be valid together for at most MAX_KEY_OVERLAP_MS.
    for a in 0..message_keys.len() {
        for b in a + 1..message_keys.len() {
            let (ka, kb) = (&message_keys[a], &message_keys[b]);
            let start = ka.valid_from.max(kb.valid_from);
            let end = match (ka.effective_end(), kb.effective_end()) {
                (None, None) => None,
                (Some(x), None) | (None, Some(x)) => Some(x),
                (Some(x), Some(y)) => Some(x.min(y)),
            };
            let too_long = match end {
                None => true,
                Some(end) => end.0.saturating_sub(start.0) > MAX_KEY_OVERLAP_MS,
            };
            if too_long {
                problems.push(field(
                    format!("{at}.message_keys[{a}] and [{b}]"),
                    format!(
                        "keys {} and {} are both valid for more than {} days; \
                         give the older key a valid_until (rotate with a bounded overlap)",
                        ka.id(),
                        kb.id(),
                        MAX_KEY_OVERLAP_MS / DAY_MS
                    ),
                ));
            }
        }
    }
    let log_key = ed25519(&m.log_key, &format!("{at}.log_key"), problems);
    if let Some(k) = &log_key {
        note_key(KeyId::of(k), format!("{at}.log_key"), problems);
    }
    let log_keys_before =
        super::log_keys::from_wire(&m.log_keys_before, at, problems, |k, f, p| {
            if let Some(key) = ed25519(k, &f, p) {
                note_key(KeyId::of(&key), f, p);
                Some(key)
            } else {
                None
            }
        });
    let mut kinds = Vec::new();
    for (j, k) in m.kinds.iter().enumerate() {
        match k.parse::<MessageKind>() {
            Ok(kind) if kinds.contains(&kind) => problems.push(field(
                format!("{at}.kinds[{j}]"),
                format!("{kind} is listed twice"),
            )),
            Ok(kind) => kinds.push(kind),
            Err(e) => problems.push(field(format!("{at}.kinds[{j}]"), e.to_string())),
        }
    }
    for (j, fp) in m.focal_points.iter().enumerate() {
        if fp.name.trim().is_empty() {
            problems.push(field(
                format!("{at}.focal_points[{j}].name"),
                "must not be empty",
            ));
        }
        if !fp.email.is_empty() && !fp.email.contains('@') {
            problems.push(field(
                format!("{at}.focal_points[{j}].email"),
                format!("{:?} is not an e-mail address", fp.email),
            ));
        }
    }
    let revoked_node_certs =
        super::revocation::certs_from_wire(&m.revoked_node_certs, at, problems);
    if problems.len() != before {
        return None;
    }
    Some(Member {
        id: id?,
        name: m.name.clone(),
        endpoints,
        tls_ca: m.tls_ca.clone(),
        message_keys,
        log_key: log_key?,
        kinds,
        focal_points: m.focal_points.clone(),
        log_keys_before,
        revoked_node_certs,
    })
}
