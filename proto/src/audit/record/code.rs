//! The text of the codes that are more than one name: each written by one
//! function and read back by its `parse_` twin, which also requires the
//! text to be exactly what the writer gives for what it read.

use crate::digest::Digest;
use crate::ids::AuthorityId;
use crate::message::MessageKind;
use crate::role::Role;

use super::ReadRefusal;

use super::MAX_TEXT;

pub(super) const STARTED: &str = "`kurir-relay VERSION`";
pub(super) const ROSTER: &str = "`version N sha256 HEX`";
pub(super) const SUBMITTED: &str = "`KIND to A,B`";
pub(super) const PEER_CHECKPOINT: &str = "`size N root HEX`";
pub(super) const BODY_READ: &str = "`ROLE NAME`";
pub(super) const BODY_REFUSED: &str = "`REASON ROLE NAME`";
pub(super) const REASON: &str = "a reason code";
pub(super) const KIND: &str = "a message kind";
pub(super) const FAILURE: &str = "`not_a_member`";
pub(super) const DEADLINE: &str = "`due_soon`, `deemed_accepted` or `transfer_overdue`";

/// `kurir-relay VERSION`.
pub(super) fn started(version: &str) -> String {
    format!("kurir-relay {version}")
}

pub(super) fn parse_started(code: &str) -> Option<String> {
    code.strip_prefix("kurir-relay ")
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `version N sha256 HEX`.
pub(super) fn roster(version: u64, fingerprint: &Digest) -> String {
    format!("version {version} sha256 {fingerprint}")
}

pub(super) fn parse_roster(code: &str) -> Option<(u64, Digest)> {
    let (version, fingerprint) = code.strip_prefix("version ")?.split_once(" sha256 ")?;
    let parsed = (version.parse().ok()?, digest(fingerprint)?);
    (roster(parsed.0, &parsed.1) == code).then_some(parsed)
}

/// `KIND to A,B`: the recipients in order, comma-separated.
pub(super) fn submitted(kind: MessageKind, to: &[AuthorityId]) -> String {
    let to: Vec<&str> = to.iter().map(AuthorityId::as_str).collect();
    format!("{kind} to {}", to.join(","))
}

/// The kind and recipients. A code of [`MAX_TEXT`] bytes may have been
/// cut inside its last recipient, which is then left out.
pub(super) fn parse_submitted(code: &str) -> Option<(MessageKind, Vec<AuthorityId>)> {
    let (kind, list) = code.split_once(" to ")?;
    let kind: MessageKind = kind.parse().ok()?;
    let mut names: Vec<&str> = list.split(',').collect();
    let mut to = Vec::with_capacity(names.len());
    let last = names.pop()?;
    for name in names {
        to.push(AuthorityId::parse(name).ok()?);
    }
    let cut = match AuthorityId::parse(last) {
        Ok(id) => {
            to.push(id);
            None
        }
        Err(_) if code.len() == MAX_TEXT && !to.is_empty() => Some(last),
        Err(_) => return None,
    };
    let mut again = submitted(kind, &to);
    if let Some(cut) = cut {
        again.push(',');
        again.push_str(cut);
    }
    (again == code).then_some((kind, to))
}

/// `size N root HEX`.
pub(super) fn peer_checkpoint(size: u64, root: &Digest) -> String {
    format!("size {size} root {root}")
}

pub(super) fn parse_peer_checkpoint(code: &str) -> Option<(u64, Digest)> {
    let (size, root) = code.strip_prefix("size ")?.split_once(" root ")?;
    let parsed = (size.parse().ok()?, digest(root)?);
    (peer_checkpoint(parsed.0, &parsed.1) == code).then_some(parsed)
}

/// `ROLE NAME`: the reader's role and certificate name.
pub(super) fn body_read(role: Role, name: &str) -> String {
    format!("{role} {name}")
}

/// The role and name; a name cut where an entry cuts its code stays as cut.
pub(super) fn parse_body_read(code: &str) -> Option<(Role, String)> {
    let (role, name) = code.split_once(' ')?;
    let role: Role = role.parse().ok()?;
    (!name.is_empty()).then(|| (role, name.to_owned()))
}

/// `REASON ROLE NAME`.
pub(super) fn body_refused(reason: ReadRefusal, role: Role, name: &str) -> String {
    format!("{reason} {}", body_read(role, name))
}

pub(super) fn parse_body_refused(code: &str) -> Option<(ReadRefusal, Role, String)> {
    let (reason, rest) = code.split_once(' ')?;
    let reason = ReadRefusal::parse(reason)?;
    let (role, name) = parse_body_read(rest)?;
    Some((reason, role, name))
}

/// 64 hex digits (lower case: the writers' form is checked after).
fn digest(hex: &str) -> Option<Digest> {
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex, &mut d).ok()?;
    Some(Digest(d))
}
