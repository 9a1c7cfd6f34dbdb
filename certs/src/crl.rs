//! The officer certificate revocation list: the register of revocations
//! (`revocations.json`) and the CRL (`crl.pem`) signed by the CA. `authority
//! init` writes the first (empty) one, `officer revoke` each next one.

use std::path::Path;

use kurir_proto::Timestamp;
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use serde::{Deserialize, Serialize};

use crate::error::{FileError, PkiError};
use crate::files::{self, Overwrite};
use crate::layout;
use crate::x509::{self, DAY_MS};

/// The register of revocations (`revocations.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocations {
    /// The number of the last CRL written.
    pub crl_number: u64,
    /// Revoked certificates.
    pub revoked: Vec<Revoked>,
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// Serial number, hex.
    pub serial: String,
    /// When it was revoked (Unix ms).
    pub revoked_at: u64,
}

impl Revocations {
    /// Reads the register.
    pub fn load(path: &Path) -> Result<Revocations, FileError> {
        let text = files::read_text(path)?;
        serde_json::from_str(&text).map_err(|e| FileError::Malformed {
            path: path.to_owned(),
            reason: format!("not a kurir revocation register: {e}"),
        })
    }
}

/// Writes `crl.pem` and `revocations.json` for `revocations` (whose
/// `crl_number` is incremented first).
pub fn write_crl(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    revocations: &Revocations,
    now: Timestamp,
    overwrite: Overwrite,
) -> Result<(), PkiError> {
    let mut revocations = revocations.clone();
    revocations.crl_number += 1;
    let mut revoked_certs = Vec::new();
    for r in &revocations.revoked {
        let serial = hex::decode(&r.serial).map_err(|_| FileError::Malformed {
            path: dir.join(layout::REVOCATIONS),
            reason: format!("serial {:?} is not hex", r.serial),
        })?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: x509::to_offset(Timestamp(r.revoked_at)),
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: x509::to_offset(now),
        next_update: x509::to_offset(now.plus_millis(365 * DAY_MS)),
        crl_number: SerialNumber::from(revocations.crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(issuer).map_err(|error| PkiError::Rcgen {
        what: "certificate revocation list",
        error,
    })?;
    let pem = crl.pem().map_err(|error| PkiError::Rcgen {
        what: "certificate revocation list",
        error,
    })?;
    let mut register = serde_json::to_string_pretty(&revocations).unwrap_or_default();
    register.push('\n');
    match overwrite {
        Overwrite::Refuse => {
            files::write_public(&dir.join(layout::CRL), pem.as_bytes(), overwrite)?;
            files::write_public(
                &dir.join(layout::REVOCATIONS),
                register.as_bytes(),
                overwrite,
            )?;
        }
        Overwrite::Replace => {
            files::replace(&dir.join(layout::REVOCATIONS), register.as_bytes(), 0o644)?;
            files::replace(&dir.join(layout::CRL), pem.as_bytes(), 0o644)?;
        }
    }
    Ok(())
}
