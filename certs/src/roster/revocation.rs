//! Revocation in the roster: a member's revoked node certificates
//! ([`RevokedCert`], refused at the handshake by `crate::tls`), a message
//! key's `revoked_at` ([`MessageKey::revoked_at`]), the editor's
//! [`Editor::revoke_node_cert`] and [`Editor::revoke_message_key`], and the
//! key-lifetime rule ([`MAX_KEY_LIFETIME_MS`], [`key_lifetime_warnings`]).
//!
//! Both fields are optional in the encoding and left out when empty, so a
//! roster that revokes nothing keeps its exact bytes and fingerprint.

use std::collections::BTreeSet;

use kurir_proto::{AuthorityId, KeyId, Timestamp};
use sha2::{Digest as _, Sha256};

use crate::error::{Problem, RosterError};
use crate::x509::DAY_MS;

use super::codec::field;
use super::wire::WireRevokedCert;
use super::{Editor, Member, MessageKey, RevokedCert, Roster, RosterBody};

/// The longest window (`valid_from` to `valid_until`) a message key should
/// have: two years. A key without `valid_until` or with a longer window is
/// flagged by [`key_lifetime_warnings`] (a warning: rosters made before the
/// rule still verify).
pub const MAX_KEY_LIFETIME_MS: u64 = 730 * DAY_MS;

impl MessageKey {
    /// The first moment the key may no longer sign: the earlier of
    /// `valid_until` and `revoked_at` (`None`: open-ended).
    pub fn effective_end(&self) -> Option<Timestamp> {
        match (self.valid_until, self.revoked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl RevokedCert {
    /// The fingerprint as 64 hex digits.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Parses a SHA-256 fingerprint: 64 hex digits (colons allowed).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let clean: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&clean).map_err(|e| format!("{text:?} is not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "a SHA-256 fingerprint has 32 bytes (64 hex digits), {text:?} has {}",
            bytes.len()
        )
    })
}

impl Member {
    /// The revocation of the node certificate with DER `der`, if this
    /// member revoked it.
    pub fn revoked_cert(&self, der: &[u8]) -> Option<&RevokedCert> {
        let digest: [u8; 32] = Sha256::digest(der).into();
        self.revoked_node_certs.iter().find(|r| r.sha256 == digest)
    }
}

impl Roster {
    /// Whether the node certificate `der`, presented for `member`, is
    /// revoked in this roster.
    pub fn revoked_node_cert(&self, member: &AuthorityId, der: &[u8]) -> Option<&RevokedCert> {
        self.member(member).and_then(|m| m.revoked_cert(der))
    }
}

pub(super) fn certs_to_wire(certs: &[RevokedCert]) -> Vec<WireRevokedCert> {
    certs
        .iter()
        .map(|r| WireRevokedCert {
            sha256: r.sha256.to_vec(),
            revoked_at: r.revoked_at.0,
            reason: r.reason.clone(),
        })
        .collect()
}

pub(super) fn certs_from_wire(
    wire: &[WireRevokedCert],
    at: &str,
    problems: &mut Vec<Problem>,
) -> Vec<RevokedCert> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (j, r) in wire.iter().enumerate() {
        let rat = format!("{at}.revoked_node_certs[{j}]");
        let Ok(sha256) = <[u8; 32]>::try_from(r.sha256.as_slice()) else {
            problems.push(field(
                format!("{rat}.sha256"),
                format!(
                    "a SHA-256 fingerprint has 32 bytes, this has {}",
                    r.sha256.len()
                ),
            ));
            continue;
        };
        if !seen.insert(sha256) {
            problems.push(field(
                format!("{rat}.sha256"),
                format!("{} is listed twice", hex::encode(sha256)),
            ));
        }
        if r.reason.trim().is_empty() {
            problems.push(field(format!("{rat}.reason"), "must not be empty"));
        }
        out.push(RevokedCert {
            sha256,
            revoked_at: Timestamp(r.revoked_at),
            reason: r.reason.clone(),
        });
    }
    out
}

/// Warnings about message keys that break the lifetime rule: no
/// `valid_until`, or a window longer than [`MAX_KEY_LIFETIME_MS`]. Revoked
/// keys are not flagged (they no longer sign).
pub fn key_lifetime_warnings(body: &RosterBody) -> Vec<String> {
    let mut out = Vec::new();
    for m in &body.members {
        for k in &m.message_keys {
            if k.revoked_at.is_some() {
                continue;
            }
            match k.valid_until {
                None => out.push(format!(
                    "{}: message/receipt key {} has no valid_until; keys should be valid for at most \
                     {} days (rotate it: `kurir-certs authority rotate-key`)",
                    m.id,
                    k.id(),
                    MAX_KEY_LIFETIME_MS / DAY_MS
                )),
                Some(until) if until.0.saturating_sub(k.valid_from.0) > MAX_KEY_LIFETIME_MS => out
                    .push(format!(
                        "{}: message/receipt key {} is valid for {} days, more than {}",
                        m.id,
                        k.id(),
                        until.0.saturating_sub(k.valid_from.0) / DAY_MS,
                        MAX_KEY_LIFETIME_MS / DAY_MS
                    )),
                Some(_) => {}
            }
        }
    }
    out
}

/// The message keys of `member` that `current` (the roster being edited)
/// does not list yet and that break the lifetime rule: no `valid_until`, or
/// a window longer than [`MAX_KEY_LIFETIME_MS`]. `roster add` and `roster
/// update` refuse such a key unless `--allow-long-key`; keys already in the
/// roster are only warned about ([`key_lifetime_warnings`]).
pub fn long_new_keys(current: &RosterBody, member: &Member) -> Vec<String> {
    let known: BTreeSet<KeyId> = current
        .members
        .iter()
        .flat_map(|m| m.message_keys.iter().map(MessageKey::id))
        .collect();
    let max_days = MAX_KEY_LIFETIME_MS / DAY_MS;
    member
        .message_keys
        .iter()
        .filter(|k| !known.contains(&k.id()) && k.revoked_at.is_none())
        .filter_map(|k| match k.valid_until {
            None => Some(format!(
                "{}: new message key {} has no valid_until (at most {max_days} days)",
                member.id,
                k.id()
            )),
            Some(until) if until.0.saturating_sub(k.valid_from.0) > MAX_KEY_LIFETIME_MS => {
                Some(format!(
                    "{}: new message key {} is valid for {} days, more than {max_days}",
                    member.id,
                    k.id(),
                    until.0.saturating_sub(k.valid_from.0) / DAY_MS
                ))
            }
            Some(_) => None,
        })
        .collect()
}

impl Editor {
    /// Revokes a node certificate of `member` by its SHA-256 fingerprint.
    pub fn revoke_node_cert(
        &mut self,
        member: &AuthorityId,
        sha256: [u8; 32],
        reason: &str,
        at: Timestamp,
    ) -> Result<(), RosterError> {
        if reason.trim().is_empty() {
            return Err(RosterError::Edit(
                "a revocation needs a reason (--reason)".into(),
            ));
        }
        let m = self.member_mut(member)?;
        if m.revoked_node_certs.iter().any(|r| r.sha256 == sha256) {
            return Err(RosterError::Edit(format!(
                "node certificate {} of {member} is already revoked",
                hex::encode(sha256)
            )));
        }
        m.revoked_node_certs.push(RevokedCert {
            sha256,
            revoked_at: at,
            reason: reason.to_owned(),
        });
        Ok(())
    }

    /// Revokes a message key of `member` from `at` on: what it signed
    /// before stays valid.
    pub fn revoke_message_key(
        &mut self,
        member: &AuthorityId,
        kid: &KeyId,
        at: Timestamp,
    ) -> Result<(), RosterError> {
        let m = self.member_mut(member)?;
        let Some(k) = m.message_keys.iter_mut().find(|k| &k.id() == kid) else {
            return Err(RosterError::Edit(format!(
                "{member} has no message key {kid} in the roster"
            )));
        };
        if let Some(before) = k.revoked_at {
            return Err(RosterError::Edit(format!(
                "message key {kid} of {member} is already revoked (at {before})"
            )));
        }
        if at < k.valid_from {
            return Err(RosterError::Edit(format!(
                "--at {at} is before the key's valid_from {}",
                k.valid_from
            )));
        }
        k.revoked_at = Some(at);
        Ok(())
    }
}

/// In [`Editor::update_member`]: keeps what the roster revoked when a
/// member's entry is replaced from its member.json (which knows nothing of
/// revocations).
pub(super) fn keep_revocations(old: &Member, new: &mut Member) {
    for k in &mut new.message_keys {
        if k.revoked_at.is_none()
            && let Some(o) = old.message_keys.iter().find(|o| o.id() == k.id())
        {
            k.revoked_at = o.revoked_at;
        }
    }
    for r in &old.revoked_node_certs {
        if !new.revoked_node_certs.iter().any(|n| n.sha256 == r.sha256) {
            new.revoked_node_certs.push(r.clone());
        }
    }
}
