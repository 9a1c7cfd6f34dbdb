//! Editing: [`member_from_file`] (a member from an authority's
//! `member.json`) and the [`Editor`], which turns a signed roster into the
//! unsigned draft of its next version.

use std::path::Path;

use kurir_proto::{AuthorityId, KeyId, MessageKind, Timestamp};

use crate::error::{FileError, RosterError};
use crate::x509;

use super::{
    Endpoint, FocalPoint, Member, MessageKey, Problems, RosterBody, RosterKey, SignedRoster,
};

/// Reads the key-file-independent parts of a member from its CA PEM.
pub fn ca_der_from_pem(pem: &str, path: &Path) -> Result<Vec<u8>, FileError> {
    let certs = x509::pem_certificates(pem).map_err(|reason| FileError::Malformed {
        path: path.to_owned(),
        reason: format!("tls_ca_pem: {reason}"),
    })?;
    Ok(certs[0].to_vec())
}

/// Builds a roster member from an authority's `member.json`.
pub fn member_from_file(path: &Path) -> Result<Member, RosterError> {
    let f = crate::authority::MemberFile::load(path)?;
    let bad = |reason: String| RosterError::MemberFile {
        path: path.to_owned(),
        reason,
    };
    let id = AuthorityId::parse(&f.id).map_err(|e| bad(format!("id: {e}")))?;
    let tls_ca = ca_der_from_pem(&f.tls_ca_pem, path)?;
    let mut message_keys = Vec::new();
    for (i, k) in f.message_keys.iter().enumerate() {
        let key = crate::keys::parse_public_hex(&k.public)
            .map_err(|e| bad(format!("message_keys[{i}].public: {e}")))?;
        message_keys.push(MessageKey {
            key,
            valid_from: Timestamp(k.valid_from),
            valid_until: k.valid_until.map(Timestamp),
            revoked_at: None,
        });
    }
    let log_key =
        crate::keys::parse_public_hex(&f.log_key).map_err(|e| bad(format!("log_key: {e}")))?;
    let mut kinds = Vec::new();
    for (i, k) in f.kinds.iter().enumerate() {
        kinds.push(
            k.parse::<MessageKind>()
                .map_err(|e| bad(format!("kinds[{i}]: {e}")))?,
        );
    }
    if kinds.is_empty() {
        kinds = MessageKind::ALL.to_vec();
    }
    let endpoints = f
        .endpoints
        .iter()
        .map(|e| Endpoint {
            host: e.host.clone(),
            port: e.port,
        })
        .collect();
    let focal_points = f
        .focal_points
        .iter()
        .map(|p| FocalPoint {
            name: p.name.clone(),
            role: p.role.clone(),
            phone: p.phone.clone(),
            email: p.email.clone(),
        })
        .collect();
    let log_keys_before = super::log_keys::from_member_file(&f.log_keys_before)
        .map_err(|e| bad(format!("log_keys_before: {e}")))?;
    Ok(Member {
        id,
        name: f.name,
        endpoints,
        tls_ca,
        message_keys,
        log_key,
        kinds,
        focal_points,
        log_keys_before,
        revoked_node_certs: Vec::new(),
    })
}

/// Edits a roster. A signed roster being edited becomes a draft of the next
/// version: its signatures are dropped, its version goes up by one. A draft
/// (no signatures) keeps its version.
#[derive(Debug, Clone)]
pub struct Editor {
    /// The body being edited.
    pub body: RosterBody,
    was_signed: bool,
}

fn edit_err(problems: Problems) -> RosterError {
    RosterError::Edit(format!("the edited roster would not be valid:\n{problems}"))
}

impl Editor {
    /// A new roster, version 1.
    pub fn create(
        threshold: u64,
        roster_keys: Vec<RosterKey>,
        now: Timestamp,
    ) -> Result<Editor, RosterError> {
        let body = RosterBody {
            version: 1,
            issued_at: now,
            threshold,
            roster_keys,
            members: Vec::new(),
        };
        body.check().map_err(edit_err)?;
        Ok(Editor {
            body,
            was_signed: false,
        })
    }

    /// Opens a roster file for editing.
    pub fn open(signed: &SignedRoster) -> Result<Editor, RosterError> {
        let body = signed.body().map_err(|problems| RosterError::Invalid {
            path: None,
            problems,
        })?;
        Ok(Editor {
            body,
            was_signed: !signed.signatures.is_empty(),
        })
    }

    /// Adds a member; refuses a duplicate.
    pub fn add_member(&mut self, member: Member) -> Result<(), RosterError> {
        if self.body.member(&member.id).is_some() {
            return Err(RosterError::Edit(format!(
                "{} is already a member; use `roster update` to change its entry",
                member.id
            )));
        }
        self.body.members.push(member);
        self.body.members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(())
    }

    /// Replaces a member's entry. Message keys are merged by key id: keys
    /// already in the roster stay (so old messages still verify), keys in
    /// `member` win for their windows.
    pub fn update_member(&mut self, member: Member) -> Result<(), RosterError> {
        let Some(old) = self.body.members.iter_mut().find(|m| m.id == member.id) else {
            return Err(RosterError::Edit(format!(
                "{} is not a member; use `roster add`",
                member.id
            )));
        };
        let mut keys = member.message_keys.clone();
        for k in &old.message_keys {
            if !keys.iter().any(|n| n.id() == k.id()) {
                keys.push(k.clone());
            }
        }
        keys.sort_by_key(|k| k.valid_from);
        let log_keys_before = super::log_keys::merge(old, &member);
        let mut new = Member {
            message_keys: keys,
            log_keys_before,
            ..member
        };
        super::revocation::keep_revocations(old, &mut new);
        *old = new;
        Ok(())
    }

    /// Mutable access to a member.
    pub fn member_mut(&mut self, id: &AuthorityId) -> Result<&mut Member, RosterError> {
        self.body
            .members
            .iter_mut()
            .find(|m| &m.id == id)
            .ok_or_else(|| RosterError::Edit(format!("{id} is not a member of the roster")))
    }

    /// Removes a member.
    pub fn remove_member(&mut self, id: &AuthorityId) -> Result<Member, RosterError> {
        let at = self
            .body
            .members
            .iter()
            .position(|m| &m.id == id)
            .ok_or_else(|| RosterError::Edit(format!("{id} is not a member of the roster")))?;
        Ok(self.body.members.remove(at))
    }

    /// Adds a roster key.
    pub fn add_roster_key(&mut self, key: RosterKey) -> Result<(), RosterError> {
        if self.body.roster_keys.iter().any(|k| k.id() == key.id()) {
            return Err(RosterError::Edit(format!(
                "roster key {} is already in the roster",
                key.id()
            )));
        }
        self.body.roster_keys.push(key);
        Ok(())
    }

    /// Removes a roster key.
    pub fn remove_roster_key(&mut self, kid: &KeyId) -> Result<(), RosterError> {
        let before = self.body.roster_keys.len();
        self.body.roster_keys.retain(|k| &k.id() != kid);
        if self.body.roster_keys.len() == before {
            return Err(RosterError::Edit(format!(
                "roster key {kid} is not in the roster"
            )));
        }
        Ok(())
    }

    /// Checks the result and returns the unsigned roster file.
    pub fn finish(mut self, now: Timestamp) -> Result<SignedRoster, RosterError> {
        if self.was_signed {
            self.body.version = self.body.version.saturating_add(1);
        }
        self.body.issued_at = now;
        self.body.check().map_err(edit_err)?;
        SignedRoster::unsigned(&self.body)
    }

    /// Whether the roster had signatures (and so becomes the next version).
    pub fn was_signed(&self) -> bool {
        self.was_signed
    }
}
