//! `kurir-certs roster revoke-node` and `roster revoke-key`: edit the
//! draft like the other roster edits (next version, signatures removed).

use std::path::Path;

use anyhow::Result;
use kurir_certs::error::PkiError;
use kurir_certs::roster::{self, Editor, SignedRoster};
use kurir_certs::{files, x509};
use kurir_proto::{AuthorityId, Date, KeyId, Timestamp};

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
    let bad = || format!("{text:?} is neither Unix milliseconds nor YYYY-MM-DDTHH:MM:SS[.fff]Z");
    let (date, rest) = text.split_once('T').ok_or_else(bad)?;
    let date = Date::parse(date).map_err(|e| format!("{text:?}: {e}"))?;
    let rest = rest.strip_suffix('Z').ok_or_else(bad)?;
    let (hms, frac) = match rest.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (rest, None),
    };
    let parts: Vec<u64> = hms
        .split(':')
        .map(|p| {
            if p.len() == 2 {
                p.parse::<u64>().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [h, m, s] = parts.as_slice() else {
        return Err(bad());
    };
    if *h > 23 || *m > 59 || *s > 59 {
        return Err(bad());
    }
    let ms = match frac {
        None => 0,
        Some(f) if (1..=3).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}").parse::<u64>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    let days = u64::try_from(date.days_since_epoch()).map_err(|_| bad())?;
    Ok(Timestamp(
        days * 86_400_000 + ((h * 60 + m) * 60 + s) * 1000 + ms,
    ))
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
