//! Verification, the trust rule of the module docs: [`SignedRoster::check`]
//! (body, k of n signatures of the roster's own keys, no bad or duplicated
//! signature, issue time, CA validity, and against a current roster the
//! version rule and the current quorum, so that changing the key set needs
//! the old quorum and the new one), and the ways a [`Roster`] is made from
//! a file that passes it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use ed25519_dalek::Signature;
use kurir_proto::{KeyId, PublicKey, Timestamp};

use crate::error::RosterError;
use crate::files;
use crate::x509::CertInfo;

use super::codec::field;
use super::trusted::{Accepted, Roster};
use super::{
    MAX_CLOCK_SKEW_MS, Problem, Problems, RosterBody, RosterKey, SIGNING_DOMAIN, SignedRoster,
};

/// Whether a verification holds the members' CA certificates to their
/// validity dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaDates {
    /// A member CA not valid at the time of the check is a problem: for
    /// signing a roster, `kurir-certs roster verify`, a client.
    #[default]
    Checked,
    /// Not checked: a relay reading at start the roster it runs with. One
    /// member's CA expiring must not stop every relay from starting; the
    /// relay refuses that member's connections instead (TLS checks the
    /// dates of certificates at each handshake, the relay those of the
    /// member CAs), and says which CA is out of date.
    Unchecked,
}

impl SignedRoster {
    /// Checks everything: body, signatures, threshold, and against
    /// `current` the version and the current quorum. Returns the body and
    /// every problem found.
    pub fn check(
        &self,
        current: Option<&Roster>,
        now: Timestamp,
    ) -> (Option<RosterBody>, Vec<Problem>) {
        self.check_with(current, now, CaDates::Checked)
    }

    /// [`SignedRoster::check`], with the members' CA dates checked or not.
    pub fn check_with(
        &self,
        current: Option<&Roster>,
        now: Timestamp,
        ca_dates: CaDates,
    ) -> (Option<RosterBody>, Vec<Problem>) {
        let mut problems = Vec::new();
        let body = match self.body() {
            Ok(b) => Some(b),
            Err(p) => {
                problems.extend(p.0);
                None
            }
        };
        // Keys usable for signatures: this roster's (if its body decoded) and the current one's.
        let own: Vec<RosterKey> = body
            .as_ref()
            .map(|b| b.roster_keys.clone())
            .unwrap_or_default();
        let old: Vec<RosterKey> = current
            .map(|c| c.body.roster_keys.clone())
            .unwrap_or_default();
        let mut msg = SIGNING_DOMAIN.to_vec();
        msg.extend_from_slice(&self.body_bytes);
        let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut valid: BTreeSet<KeyId> = BTreeSet::new();
        for (index, s) in self.signatures.iter().enumerate() {
            let kid = match KeyId::from_slice(&s.kid) {
                Ok(k) => k,
                Err(e) => {
                    problems.push(Problem::MalformedSignature {
                        index,
                        reason: format!("kid: {e}"),
                    });
                    continue;
                }
            };
            if !seen.insert(s.kid.clone()) {
                problems.push(Problem::DuplicateSignature {
                    index,
                    kid: kid.to_string(),
                });
                continue;
            }
            let Some(rk) = own.iter().chain(old.iter()).find(|k| k.id() == kid) else {
                // Without a current roster, a signature by a key this version
                // dropped cannot be checked: it is skipped (it never counts).
                // Against a current roster every signer must be known.
                if current.is_some() || body.is_none() {
                    problems.push(Problem::UnknownSigner {
                        index,
                        kid: kid.to_string(),
                    });
                }
                continue;
            };
            let Ok(sig) = Signature::from_slice(&s.sig) else {
                problems.push(Problem::MalformedSignature {
                    index,
                    reason: format!(
                        "sig: an Ed25519 signature has 64 bytes, this has {}",
                        s.sig.len()
                    ),
                });
                continue;
            };
            if rk.key.verify_strict(&msg, &sig).is_err() {
                problems.push(Problem::BadSignature {
                    index,
                    kid: kid.to_string(),
                    label: rk.label.clone(),
                });
                continue;
            }
            valid.insert(kid);
        }
        if let Some(b) = &body {
            let count = own.iter().filter(|k| valid.contains(&k.id())).count();
            if (count as u64) < b.threshold {
                problems.push(Problem::TooFewSignatures {
                    valid: count,
                    threshold: b.threshold,
                    of: "this roster's keys",
                });
            }
            if b.issued_at.0 > now.0.saturating_add(MAX_CLOCK_SKEW_MS) {
                problems.push(Problem::IssuedInFuture {
                    issued_at: b.issued_at,
                    now,
                });
            }
            for (i, m) in b.members.iter().enumerate() {
                if ca_dates == CaDates::Checked
                    && let Ok(info) = CertInfo::parse(&m.tls_ca)
                    && !info.valid_at(now)
                {
                    problems.push(field(
                        format!("members[{i}] ({}).tls_ca", m.id),
                        format!(
                            "the CA certificate is not valid now ({now}): valid from {} until {}",
                            info.not_before, info.not_after
                        ),
                    ));
                }
            }
        }
        if let Some(c) = current {
            let count = old.iter().filter(|k| valid.contains(&k.id())).count();
            if (count as u64) < c.body.threshold {
                problems.push(Problem::TooFewSignatures {
                    valid: count,
                    threshold: c.body.threshold,
                    of: "the current roster's keys",
                });
            }
            if let Some(b) = &body {
                if b.version < c.body.version {
                    problems.push(Problem::Rollback {
                        version: b.version,
                        current: c.body.version,
                    });
                } else if b.version == c.body.version && self.body_bytes != c.body_bytes {
                    problems.push(Problem::SameVersion { version: b.version });
                }
            }
        }
        (body, problems)
    }
}

impl Roster {
    /// Verifies a roster file on its own (no current roster): body valid and
    /// signed by `threshold` of its own roster keys. Use this for the first
    /// roster only after comparing its fingerprint out of band.
    pub fn verify(bytes: &[u8], now: Timestamp) -> Result<Roster, RosterError> {
        Self::verify_against(bytes, None, now)
    }

    /// Verifies a roster file, and when `current` is given also the version
    /// rule and the current quorum (see the module docs).
    pub fn verify_against(
        bytes: &[u8],
        current: Option<&Roster>,
        now: Timestamp,
    ) -> Result<Roster, RosterError> {
        Self::verify_against_with(bytes, current, now, CaDates::Checked)
    }

    /// [`Roster::verify_against`], with the members' CA dates checked or
    /// not ([`CaDates`]).
    pub fn verify_against_with(
        bytes: &[u8],
        current: Option<&Roster>,
        now: Timestamp,
        ca_dates: CaDates,
    ) -> Result<Roster, RosterError> {
        let invalid = |problems: Vec<Problem>| RosterError::Invalid {
            path: None,
            problems: Problems(problems),
        };
        let signed = SignedRoster::decode(bytes).map_err(|p| invalid(p.0))?;
        let (body, problems) = signed.check_with(current, now, ca_dates);
        match body {
            Some(body) if problems.is_empty() => Ok(Roster::from_parts(body, signed, bytes)),
            _ => Err(invalid(problems)),
        }
    }

    /// Reads and verifies a roster file (see [`Roster::verify_against`]).
    pub fn load(
        path: &Path,
        current: Option<&Roster>,
        now: Timestamp,
    ) -> Result<Roster, RosterError> {
        let bytes = files::read(path)?;
        Self::verify_against(&bytes, current, now).map_err(|e| match e {
            RosterError::Invalid { problems, .. } => RosterError::Invalid {
                path: Some(path.to_owned()),
                problems,
            },
            other => other,
        })
    }

    /// What a relay calls when a roster arrives: refuses anything invalid,
    /// older, or of equal version with other content.
    pub fn accept(
        bytes: &[u8],
        current: Option<&Roster>,
        now: Timestamp,
    ) -> Result<Accepted, RosterError> {
        Self::accept_with(bytes, current, now, CaDates::Checked)
    }

    /// [`Roster::accept`], with the members' CA dates checked or not
    /// ([`CaDates`]).
    pub fn accept_with(
        bytes: &[u8],
        current: Option<&Roster>,
        now: Timestamp,
        ca_dates: CaDates,
    ) -> Result<Accepted, RosterError> {
        if let Some(c) = current
            && c.file_bytes == bytes
        {
            return Ok(Accepted::Unchanged);
        }
        let new = Self::verify_against_with(bytes, current, now, ca_dates)?;
        if let Some(c) = current
            && new.body_bytes == c.body_bytes
        {
            // Same body, other signature set: nothing new to trust.
            return Ok(Accepted::Unchanged);
        }
        Ok(Accepted::Newer(new))
    }

    fn from_parts(body: RosterBody, signed: SignedRoster, bytes: &[u8]) -> Roster {
        let mut keys = HashMap::new();
        for m in &body.members {
            for k in &m.message_keys {
                keys.insert(
                    k.id(),
                    PublicKey {
                        authority: m.id.clone(),
                        key: k.key,
                        valid_from: k.valid_from,
                        valid_until: k.valid_until,
                        revoked_at: k.revoked_at,
                    },
                );
            }
        }
        Roster {
            body,
            body_bytes: signed.body_bytes,
            file_bytes: bytes.to_vec(),
            keys,
        }
    }
}
