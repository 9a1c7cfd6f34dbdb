//! What kurir reads out of X.509 certificates, and how it names identities
//! in them.
//!
//! - A node (relay) certificate carries the URI SAN
//!   `urn:kurir:authority:<AUTHORITY>` besides the DNS SAN of the relay host.
//! - An officer certificate carries the URI SAN
//!   `urn:kurir:officer:<AUTHORITY>:<ROLE>` (role `officer`, `auditor` or
//!   `admin`) and the officer's name as subject common name.

use kurir_proto::{AuthorityId, Timestamp};
use rustls::pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Prefix of the URI SAN that names a node's authority.
pub const URI_AUTHORITY: &str = "urn:kurir:authority:";
/// Prefix of the URI SAN that names an officer's authority and role.
pub const URI_OFFICER: &str = "urn:kurir:officer:";

/// The facts kurir uses from one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The serial number's bytes as encoded.
    pub serial: Vec<u8>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// Subject common name.
    pub common_name: Option<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Whether basic constraints say CA.
    pub is_ca: bool,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("bytes after the certificate".into());
        }
        let ts = |t: x509_parser::time::ASN1Time| {
            Timestamp(
                u64::try_from(t.timestamp())
                    .unwrap_or(0)
                    .saturating_mul(1000),
            )
        };
        let mut uris = Vec::new();
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(u) => uris.push((*u).to_owned()),
                    GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                    _ => {}
                }
            }
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        Ok(CertInfo {
            serial: cert.raw_serial().to_vec(),
            not_before: ts(cert.validity().not_before),
            not_after: ts(cert.validity().not_after),
            common_name,
            uris,
            dns_names,
            is_ca,
        })
    }

    /// Whether `now` lies within the validity period.
    pub fn valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// The serial number as lower-case hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    /// The kurir identity the certificate claims (not yet verified).
    pub fn claim(&self) -> Result<Claim, String> {
        let kurir: Vec<&String> = self
            .uris
            .iter()
            .filter(|u| u.starts_with("urn:kurir:"))
            .collect();
        let [uri] = kurir.as_slice() else {
            return Err(if kurir.is_empty() {
                format!(
                    "carries no kurir identity: expected one URI SAN {URI_AUTHORITY}<ID> \
                     (relay) or {URI_OFFICER}<ID>:<ROLE> (officer)"
                )
            } else {
                "carries more than one kurir URI SAN".into()
            });
        };
        if let Some(id) = uri.strip_prefix(URI_AUTHORITY) {
            let id = AuthorityId::parse(id).map_err(|e| format!("URI SAN {uri}: {e}"))?;
            return Ok(Claim::Node(id));
        }
        if let Some(rest) = uri.strip_prefix(URI_OFFICER) {
            let Some((id, role)) = rest.split_once(':') else {
                return Err(format!(
                    "URI SAN {uri}: officer certificate without a role \
                     (expected {URI_OFFICER}<ID>:officer|auditor|admin)"
                ));
            };
            let authority = AuthorityId::parse(id).map_err(|e| format!("URI SAN {uri}: {e}"))?;
            let role: Role = role
                .parse()
                .map_err(|e: String| format!("URI SAN {uri}: {e}"))?;
            let name = self
                .common_name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("officer certificate {uri} has no subject common name"))?;
            return Ok(Claim::Officer {
                authority,
                role,
                name,
            });
        }
        Err(format!("unknown kurir URI SAN {uri}"))
    }
}

/// The identity a certificate claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A relay of this authority.
    Node(AuthorityId),
    /// An officer of this authority with this role.
    Officer {
        /// The officer's authority.
        authority: AuthorityId,
        /// The role.
        role: Role,
        /// The subject common name.
        name: String,
    },
}

/// What an officer may do at its relay (defined with the wire formats).
pub use kurir_proto::Role;

/// SHA-256 of the DER bytes, as 64 hex digits.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Every certificate in a PEM text, in order.
pub fn pem_certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(text.as_bytes()).collect();
    let certs = certs.map_err(|e| format!("malformed PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(certs)
}

/// A DER certificate as PEM text.
pub fn to_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(char::from(T[(n >> 18) as usize & 63]));
        out.push(char::from(T[(n >> 12) as usize & 63]));
        out.push(if c.len() > 1 {
            char::from(T[(n >> 6) as usize & 63])
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            char::from(T[n as usize & 63])
        } else {
            '='
        });
    }
    out
}

/// A [`Timestamp`] as the `time` crate's date-time.
pub fn to_offset(t: Timestamp) -> time::OffsetDateTime {
    let nanos = i128::from(t.0) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The current time from the system clock.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;
