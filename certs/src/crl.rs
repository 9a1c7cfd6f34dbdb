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

/// A CRL that parsed and is signed by the authority's CA: what a relay
/// puts in force ([`check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCrl {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// Its `cRLNumber` (0 if it has none).
    pub number: u64,
    /// The serial numbers it revokes, lower-case hex of the bytes as
    /// encoded (as [`crate::x509::CertInfo::serial_hex`] gives them).
    pub revoked: std::collections::BTreeSet<String>,
}

/// Parses `pem` (one PEM `X509 CRL` block) and checks that it is issued
/// and signed by the CA certificate `ca` (DER). `path` names the file in
/// errors. Nothing else in the file is accepted: a CRL that does not parse
/// or verify must not be put in force.
pub fn check(pem: &[u8], ca: &[u8], path: &Path) -> Result<CheckedCrl, crate::TlsError> {
    use rustls::pki_types::CertificateRevocationListDer;
    use rustls::pki_types::pem::PemObject;
    use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

    let bad = |reason: String| crate::TlsError::Crl {
        path: path.to_owned(),
        reason,
    };
    let blocks: Result<Vec<_>, _> = CertificateRevocationListDer::pem_slice_iter(pem).collect();
    let blocks = blocks.map_err(|e| bad(format!("not a PEM CRL: {e}")))?;
    let der = match blocks.as_slice() {
        [one] => one.as_ref().to_vec(),
        [] => return Err(bad("no X509 CRL block found".into())),
        more => {
            return Err(bad(format!(
                "{} X509 CRL blocks found, expected one",
                more.len()
            )));
        }
    };
    let (rest, crl) = CertificateRevocationList::from_der(&der)
        .map_err(|e| bad(format!("not an X.509 CRL: {e}")))?;
    if !rest.is_empty() {
        return Err(bad("bytes after the CRL".into()));
    }
    let (_, ca_cert) = X509Certificate::from_der(ca)
        .map_err(|e| bad(format!("the CA certificate does not parse: {e}")))?;
    if crl.issuer() != ca_cert.subject() {
        return Err(bad(format!(
            "issued by {}, not by this authority's CA {}",
            crl.issuer(),
            ca_cert.subject()
        )));
    }
    crl.verify_signature(ca_cert.public_key()).map_err(|e| {
        bad(format!(
            "its signature does not verify with the CA's key: {e}"
        ))
    })?;
    let number = match crl.crl_number() {
        None => 0,
        Some(n) => u64::try_from(n).map_err(|_| bad(format!("CRL number {n} is too large")))?,
    };
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    Ok(CheckedCrl {
        der,
        number,
        revoked,
    })
}
