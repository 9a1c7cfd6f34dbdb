//! `kurir-certs roster revoke-node` and `roster revoke-key`: edit the
//! draft like the other roster edits (next version, signatures removed).

use std::path::Path;

use anyhow::Result;
use kurir_certs::error::PkiError;
use kurir_certs::roster::{self, Editor, SignedRoster};
use kurir_certs::{files, x509};
use kurir_proto::{AuthorityId, KeyId, Timestamp};

use super::roster::save_draft;
use crate::exit::UsageError;

fn member_id(text: &str) -> Result<AuthorityId> {
    Ok(AuthorityId::parse(text).map_err(|error| PkiError::Id {
        field: "--member",
        error,
    })?)
}

/// `roster revoke-node`.
pub(super) fn revoke_node(
    path: &Path,
    member: &str,
    cert: Option<&Path>,
    fingerprint: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> Result<u8> {
    let id = member_id(member)?;
    let sha256 = match (cert, fingerprint) {
        (Some(cert), _) => {
            let text = files::read_text(cert)?;
            let certs = x509::pem_certificates(&text)
                .map_err(|e| UsageError(format!("--cert {}: {e}", cert.display())))?;
            let info = x509::CertInfo::parse(&certs[0])
                .map_err(|e| UsageError(format!("--cert {}: {e}", cert.display())))?;
            match info.claim() {
                Ok(x509::Claim::Node(claimed)) if claimed == id => {}
                other => {
                    return Err(UsageError(format!(
                        "--cert {} is not a node certificate of {id} (it claims {other:?})",
                        cert.display()
                    ))
                    .into());
                }
            }
            roster::parse_fingerprint(&x509::fingerprint(&certs[0]))
                .map_err(|e| UsageError(format!("--cert: {e}")))?
        }
        (None, Some(hex)) => {
            roster::parse_fingerprint(hex).map_err(|e| UsageError(format!("--fingerprint: {e}")))?
        }
        (None, None) => {
            return Err(UsageError("give --cert FILE or --fingerprint HEX".into()).into());
        }
    };
    let mut editor = Editor::open(&SignedRoster::load(path)?)?;
    editor.revoke_node_cert(&id, sha256, reason, now)?;
    eprintln!(
        "revoked node certificate sha256 {} of {id}: {reason}",
        hex::encode(sha256)
    );
    save_draft(editor, path, now)
}

/// `roster revoke-key`.
pub(super) fn revoke_key(
    path: &Path,
    member: &str,
    kid: &str,
    at: Option<&str>,
    now: Timestamp,
) -> Result<u8> {
    let id = member_id(member)?;
    let kid = KeyId::parse(kid).map_err(|e| UsageError(format!("--kid: {e}")))?;
    let at = match at {
        None => now,
        Some(text) => parse_time(text).map_err(|e| UsageError(format!("--at: {e}")))?,
    };
    let mut editor = Editor::open(&SignedRoster::load(path)?)?;
    editor.revoke_message_key(&id, &kid, at)?;
    eprintln!("revoked message key {kid} of {id} from {at}");
    save_draft(editor, path, now)
}

/// A moment: Unix milliseconds, or RFC 3339 in UTC
/// (`YYYY-MM-DDTHH:MM:SS[.fff]Z`).
pub(crate) fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(Timestamp(ms));
    }
    text.parse::<Timestamp>().map_err(|_| {
        format!(
            "{text:?} is neither Unix milliseconds nor YYYY-MM-DDTHH:MM:SS[.fff]Z (RFC 3339, UTC)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_millis() {
        let t = parse_time("2026-11-28T13:54:10.5Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T13:54:10.500Z");
        assert_eq!(parse_time("1000").unwrap(), Timestamp(1000));
        for bad in [
            "yesterday",
            "2026-11-28T13:54Z",
            "2026-11-28T25:00:00Z",
            "2026-11-28",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
