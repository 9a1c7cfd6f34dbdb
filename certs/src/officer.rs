//! Officer client certificates: issuing them with a role and revoking them.
//!
//! The [`Role`] is named in the certificate ([`crate::x509`]); the
//! certificate revocation list (CRL) the relay reads is written by
//! [`crate::crl`]. Both are re-exported here.

use std::path::{Path, PathBuf};

use kurir_proto::Timestamp;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};

use crate::authority::{self, Authority, random_serial};
use crate::error::{FileError, PkiError};
use crate::files::{self, Overwrite};
use crate::layout;
use crate::x509::{self, CertInfo, DAY_MS, URI_OFFICER};

pub use crate::crl::{Revocations, Revoked, write_crl};
pub use crate::x509::Role;

/// File names in an officer's output directory.
pub mod officer_layout {
    /// The officer certificate.
    pub const CERT: &str = "officer.crt.pem";
    /// The officer private key.
    pub const KEY: &str = "officer.key.pem";
    /// The authority CA, to verify the relay.
    pub const CA: &str = "ca.crt.pem";
}

/// What `officer issue` made.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// End of validity.
    pub not_after: Timestamp,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Issues an officer certificate into `out` (certificate, key, CA).
#[allow(clippy::too_many_arguments)]
pub fn issue(
    authority: &Authority,
    name: &str,
    role: Option<Role>,
    days: u32,
    now: Timestamp,
    out: &Path,
    overwrite: Overwrite,
) -> Result<Issued, PkiError> {
    if name.trim().is_empty() {
        return Err(PkiError::Invalid {
            field: "--name",
            reason: "the officer's name must not be empty".into(),
        });
    }
    if days == 0 {
        return Err(PkiError::Invalid {
            field: "--days",
            reason: "must be at least 1".into(),
        });
    }
    let issuer = authority.issuer(now)?;
    files::create_dir(out)?;
    for f in [
        officer_layout::CERT,
        officer_layout::KEY,
        officer_layout::CA,
    ] {
        files::check_absent(&out.join(f), overwrite)?;
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|error| PkiError::Rcgen {
        what: "officer key",
        error,
    })?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, name.to_owned());
    params
        .distinguished_name
        .push(DnType::OrganizationName, authority.member.name.clone());
    if let Some(role) = role {
        let uri = format!("{URI_OFFICER}{}:{role}", authority.id);
        params.subject_alt_names = vec![SanType::URI(uri.try_into().map_err(|source| {
            PkiError::Rcgen {
                what: "officer URI SAN",
                error: source,
            }
        })?)];
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = x509::to_offset(Timestamp(now.0.saturating_sub(3_600_000)));
    let not_after = now.plus_millis(u64::from(days) * DAY_MS);
    params.not_after = x509::to_offset(not_after);
    let serial = random_serial()?;
    params.serial_number = Some(serial.clone());
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|error| PkiError::Rcgen {
            what: "officer certificate",
            error,
        })?;
    let serial_hex = hex::encode(serial.to_bytes());
    let cert_path = out.join(officer_layout::CERT);
    let key_path = out.join(officer_layout::KEY);
    let ca_path = out.join(officer_layout::CA);
    files::write_secret(&key_path, key.serialize_pem().as_bytes(), overwrite)?;
    files::write_public(&cert_path, cert.pem().as_bytes(), overwrite)?;
    let ca_pem = x509::to_pem(&authority.ca_cert()?);
    files::write_public(&ca_path, ca_pem.as_bytes(), overwrite)?;
    let register = authority
        .path(layout::OFFICERS)
        .join(format!("{serial_hex}.crt.pem"));
    files::create_dir(&authority.path(layout::OFFICERS))?;
    files::write_public(&register, cert.pem().as_bytes(), Overwrite::Refuse)?;
    Ok(Issued {
        serial: serial_hex,
        fingerprint: x509::fingerprint(cert.der()),
        not_after,
        files: vec![cert_path, key_path, ca_path, register],
    })
}

/// What `officer revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Newly revoked; the CRL now has this number.
    Revoked {
        /// Serial, hex.
        serial: String,
        /// CRL number.
        crl_number: u64,
    },
    /// It was already on the list; nothing changed.
    AlreadyRevoked {
        /// Serial, hex.
        serial: String,
    },
}

/// Resolves a `SERIAL|FILE` argument to a serial number (hex).
pub fn serial_of(arg: &str) -> Result<String, PkiError> {
    let path = Path::new(arg);
    if path.is_file() {
        let der = authority::load_cert(path)?;
        let info = CertInfo::parse(&der).map_err(|reason| FileError::Malformed {
            path: path.to_owned(),
            reason,
        })?;
        return Ok(info.serial_hex());
    }
    let s = arg.trim().to_ascii_lowercase().replace(':', "");
    if s.is_empty() || s.len() > 40 || hex::decode(&s).is_err() {
        return Err(PkiError::Invalid {
            field: "SERIAL|FILE",
            reason: format!(
                "{arg:?} is neither a certificate file nor a serial number in hex (as printed by `officer issue`)"
            ),
        });
    }
    Ok(s)
}

/// Revokes an officer certificate: adds it to the register and writes a new
/// CRL signed by the CA.
pub fn revoke(
    authority: &Authority,
    serial_hex: &str,
    now: Timestamp,
) -> Result<RevokeOutcome, PkiError> {
    let reg_path = authority.path(layout::REVOCATIONS);
    let mut revocations = Revocations::load(&reg_path)?;
    if revocations.revoked.iter().any(|r| r.serial == serial_hex) {
        return Ok(RevokeOutcome::AlreadyRevoked {
            serial: serial_hex.to_owned(),
        });
    }
    let issuer = authority.issuer(now)?;
    revocations.revoked.push(Revoked {
        serial: serial_hex.to_owned(),
        revoked_at: now.0,
    });
    write_crl(
        authority.dir(),
        &issuer,
        &revocations,
        now,
        Overwrite::Replace,
    )?;
    Ok(RevokeOutcome::Revoked {
        serial: serial_hex.to_owned(),
        crl_number: revocations.crl_number + 1,
    })
}
