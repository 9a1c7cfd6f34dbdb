//! An authority's directory: its CA, node certificate, Ed25519 keys, the
//! public member description that goes into the roster, and the officer
//! revocation list.
//!
//! ```text
//! DIR/
//!   ca.crt.pem            CA certificate (public; goes into the roster)
//!   ca.key.pem            CA private key, 0600 (keep offline)
//!   node.crt.pem          relay TLS certificate (DNS SAN = relay host,
//!                         URI SAN urn:kurir:authority:<ID>)
//!   node.key.pem          relay TLS private key, 0600 (relay host)
//!   message-keys/<KID>.key  Ed25519 message/receipt signing keys, 0600 (relay host)
//!   log.key               Ed25519 audit-log key, 0600 (relay host)
//!   log.key.<N>           earlier audit-log keys after `rotate-log-key`,
//!                         0600 (relay host, until the roster lists the new key)
//!   member.json           public description for the roster
//!   crl.pem               officer revocation list signed by the CA (relay host)
//!   revocations.json      register of revoked officer serials
//!   officers/<SERIAL>.crt.pem  copy of every officer certificate issued
//! ```

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use kurir_proto::{AuthorityId, KeyId, MessageKind, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};

use crate::crl::{self, Revocations};
use crate::error::{FileError, PkiError};
use crate::files::{self, Overwrite};
use crate::keys;
use crate::x509::{self, CertInfo, DAY_MS, URI_AUTHORITY};

/// File names inside an authority directory.
pub use crate::layout;

/// Format tag of `member.json`.
pub const MEMBER_FORMAT: &str = "kurir-member/1";

/// The public description of an authority (`member.json`): everything the
/// roster needs, nothing secret. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFile {
    /// Always [`MEMBER_FORMAT`].
    pub format: String,
    /// Authority id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Relay endpoints.
    pub endpoints: Vec<EndpointFile>,
    /// The CA certificate, PEM.
    pub tls_ca_pem: String,
    /// Message/receipt keys, oldest first.
    pub message_keys: Vec<KeyFile>,
    /// Audit-log key, hex.
    pub log_key: String,
    /// Message kinds the authority accepts (empty: all).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Focal points.
    #[serde(default)]
    pub focal_points: Vec<FocalPointFile>,
    /// Earlier audit-log keys, oldest first (`authority rotate-log-key`
    /// adds one); absent when the log key never rotated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_keys_before: Vec<PastLogKeyFile>,
}

/// An earlier audit-log key in `member.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastLogKeyFile {
    /// Public key, hex.
    pub public: String,
    /// Unix milliseconds from which it no longer signs.
    pub valid_until: u64,
}

/// An endpoint in `member.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFile {
    /// Host name (or IP address).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

/// A message key in `member.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Key id (derived; informative).
    pub kid: String,
    /// Public key, hex.
    pub public: String,
    /// First millisecond of validity.
    pub valid_from: u64,
    /// First millisecond after validity (`null`: open).
    pub valid_until: Option<u64>,
}

/// A focal point in `member.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPointFile {
    /// Name.
    pub name: String,
    /// Role or function.
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// E-mail address.
    pub email: String,
}

impl MemberFile {
    /// Reads and parses `member.json`.
    pub fn load(path: &Path) -> Result<MemberFile, FileError> {
        let text = files::read_text(path)?;
        let m: MemberFile = serde_json::from_str(&text).map_err(|e| FileError::Malformed {
            path: path.to_owned(),
            reason: format!("not a kurir member file: {e}"),
        })?;
        if m.format != MEMBER_FORMAT {
            return Err(FileError::Malformed {
                path: path.to_owned(),
                reason: format!("format {:?}, expected {MEMBER_FORMAT:?}", m.format),
            });
        }
        Ok(m)
    }

    fn save(&self, path: &Path, overwrite: Overwrite) -> Result<(), FileError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| FileError::Malformed {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        match overwrite {
            Overwrite::Refuse => files::write_public(path, text.as_bytes(), overwrite),
            Overwrite::Replace => files::replace(path, text.as_bytes(), 0o644),
        }
    }
}

/// Days a new message key is valid by default (`--key-days`): the
/// documented maximum ([`crate::roster::MAX_KEY_LIFETIME_MS`], 730 days).
pub const DEFAULT_KEY_DAYS: u32 = 730;

/// What `authority init` is given.
#[derive(Debug, Clone)]
pub struct InitParams {
    /// Authority id, e.g. `RS.MUP`.
    pub id: AuthorityId,
    /// Display name.
    pub name: String,
    /// Relay host name (DNS SAN of the node certificate).
    pub relay_host: String,
    /// Relay UDP port.
    pub relay_port: u16,
    /// CA validity in days.
    pub ca_days: u32,
    /// Node certificate validity in days.
    pub node_days: u32,
    /// Message key validity in days from `now` (its `valid_until`; at
    /// most [`crate::roster::MAX_KEY_LIFETIME_MS`] for `roster add` to take
    /// it without `--allow-long-key`; [`DEFAULT_KEY_DAYS`] by default).
    pub key_days: u32,
    /// The current time.
    pub now: Timestamp,
    /// Replace existing files.
    pub overwrite: Overwrite,
}

/// What `authority init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// SHA-256 fingerprint of the CA certificate.
    pub ca_fingerprint: String,
    /// SHA-256 fingerprint of the node certificate.
    pub node_fingerprint: String,
    /// The message key.
    pub message_key: VerifyingKey,
    /// The log key.
    pub log_key: VerifyingKey,
    /// Every file written.
    pub files: Vec<PathBuf>,
}

fn rcgen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Rcgen {
        what,
        error: source,
    }
}

/// A random positive 16-byte serial number.
pub fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = keys::random_bytes::<16>()?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Checks a relay host name: a DNS name or an IP address.
pub fn check_host(host: &str) -> Result<(), String> {
    rustls::pki_types::ServerName::try_from(host)
        .map(|_| ())
        .map_err(|_| format!("{host:?} is not a valid DNS name or IP address"))
}

/// Creates an authority directory: CA, node certificate, message key, log
/// key, an empty CRL and `member.json`.
pub fn init(dir: &Path, p: &InitParams) -> Result<InitReport, PkiError> {
    if p.name.trim().is_empty() {
        return Err(PkiError::Invalid {
            field: "--name",
            reason: "the display name must not be empty".into(),
        });
    }
    check_host(&p.relay_host).map_err(|reason| PkiError::Invalid {
        field: "--relay-host",
        reason,
    })?;
    if p.key_days == 0 {
        return Err(PkiError::Invalid {
            field: "--key-days",
            reason: "a message key must be valid for at least one day".into(),
        });
    }
    if p.relay_port == 0 {
        return Err(PkiError::Invalid {
            field: "--relay-port",
            reason: "the port must be between 1 and 65535".into(),
        });
    }
    files::create_dir(dir)?;
    let path = |name: &str| dir.join(name);
    // Refuse before writing anything, so a refused init leaves no half-made directory.
    for name in [
        layout::CA_CERT,
        layout::CA_KEY,
        layout::NODE_CERT,
        layout::NODE_KEY,
        layout::LOG_KEY,
        layout::MEMBER,
        layout::CRL,
        layout::REVOCATIONS,
    ] {
        files::check_absent(&path(name), p.overwrite)?;
    }

    // The CA.
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err("CA key"))?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{} kurir CA", p.id));
    ca.distinguished_name
        .push(DnType::OrganizationName, p.name.clone());
    ca.distinguished_name
        .push(DnType::CountryName, p.id.country().to_owned());
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = x509::to_offset(p.now.plus_millis(0).saturating_back(3_600_000));
    ca.not_after = x509::to_offset(p.now.plus_millis(u64::from(p.ca_days) * DAY_MS));
    ca.serial_number = Some(random_serial()?);
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(rcgen_err("CA certificate"))?;
    let issuer = Issuer::new(ca, ca_key);

    // The node certificate.
    let node_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err("node key"))?;
    let node = node_params(p)?;
    let node_cert = node
        .signed_by(&node_key, &issuer)
        .map_err(rcgen_err("node certificate"))?;

    let message_key = keys::generate_ed25519()?;
    let log_key = keys::generate_ed25519()?;

    let ca_pem = ca_cert.pem();
    let mut written = Vec::new();
    let mut put_secret = |name: &str, bytes: &[u8]| -> Result<(), PkiError> {
        files::write_secret(&path(name), bytes, p.overwrite)?;
        written.push(path(name));
        Ok(())
    };
    put_secret(layout::CA_KEY, issuer.key().serialize_pem().as_bytes())?;
    put_secret(layout::NODE_KEY, node_key.serialize_pem().as_bytes())?;
    keys::write_secret_key(&path(layout::LOG_KEY), &log_key, p.overwrite)?;
    written.push(path(layout::LOG_KEY));
    files::write_public(&path(layout::CA_CERT), ca_pem.as_bytes(), p.overwrite)?;
    written.push(path(layout::CA_CERT));
    files::write_public(
        &path(layout::NODE_CERT),
        node_cert.pem().as_bytes(),
        p.overwrite,
    )?;
    written.push(path(layout::NODE_CERT));
    written.push(write_message_key(dir, &message_key, p.overwrite)?);

    let member = MemberFile {
        format: MEMBER_FORMAT.into(),
        id: p.id.to_string(),
        name: p.name.clone(),
        endpoints: vec![EndpointFile {
            host: p.relay_host.clone(),
            port: p.relay_port,
        }],
        tls_ca_pem: ca_pem,
        message_keys: vec![key_file(
            &message_key.verifying_key(),
            p.now,
            Some(p.now.plus_millis(u64::from(p.key_days) * x509::DAY_MS)),
        )],
        log_key: hex::encode(log_key.verifying_key().as_bytes()),
        kinds: MessageKind::ALL.iter().map(|k| k.to_string()).collect(),
        focal_points: Vec::new(),
        log_keys_before: Vec::new(),
    };
    member.save(&path(layout::MEMBER), p.overwrite)?;
    written.push(path(layout::MEMBER));

    files::create_dir(&path(layout::OFFICERS))?;
    crl::write_crl(dir, &issuer, &Revocations::default(), p.now, p.overwrite)?;
    written.push(path(layout::CRL));
    written.push(path(layout::REVOCATIONS));

    Ok(InitReport {
        ca_fingerprint: x509::fingerprint(ca_cert.der()),
        node_fingerprint: x509::fingerprint(node_cert.der()),
        message_key: message_key.verifying_key(),
        log_key: log_key.verifying_key(),
        files: written,
    })
}

fn node_params(p: &InitParams) -> Result<CertificateParams, PkiError> {
    let mut node = CertificateParams::default();
    node.distinguished_name = DistinguishedName::new();
    node.distinguished_name
        .push(DnType::CommonName, p.relay_host.clone());
    node.distinguished_name
        .push(DnType::OrganizationName, p.name.clone());
    let host_san =
        match p.relay_host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(p.relay_host.clone().try_into().map_err(|_| {
                PkiError::Invalid {
                    field: "--relay-host",
                    reason: format!("{:?} is not a valid DNS name", p.relay_host),
                }
            })?),
        };
    let uri = format!("{URI_AUTHORITY}{}", p.id);
    node.subject_alt_names = vec![
        host_san,
        SanType::URI(uri.try_into().map_err(rcgen_err("node URI SAN"))?),
    ];
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    node.use_authority_key_identifier_extension = true;
    node.not_before = x509::to_offset(p.now.saturating_back(3_600_000));
    node.not_after = x509::to_offset(p.now.plus_millis(u64::from(p.node_days) * DAY_MS));
    node.serial_number = Some(random_serial()?);
    Ok(node)
}

/// Back-dating helper.
trait SaturatingBack {
    fn saturating_back(self, millis: u64) -> Timestamp;
}

impl SaturatingBack for Timestamp {
    fn saturating_back(self, millis: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis))
    }
}

fn key_file(key: &VerifyingKey, from: Timestamp, until: Option<Timestamp>) -> KeyFile {
    KeyFile {
        kid: KeyId::of(key).to_string(),
        public: hex::encode(key.as_bytes()),
        valid_from: from.0,
        valid_until: until.map(|t| t.0),
    }
}

fn write_message_key(
    dir: &Path,
    key: &SigningKey,
    overwrite: Overwrite,
) -> Result<PathBuf, PkiError> {
    let kdir = dir.join(layout::MESSAGE_KEYS);
    files::create_dir(&kdir)?;
    let path = kdir.join(format!("{}.key", KeyId::of(&key.verifying_key())));
    keys::write_secret_key(&path, key, overwrite)?;
    Ok(path)
}

/// An authority directory opened for use.
#[derive(Debug, Clone)]
pub struct Authority {
    dir: PathBuf,
    /// The public description.
    pub member: MemberFile,
    /// The authority id.
    pub id: AuthorityId,
}

impl Authority {
    /// Opens an authority directory (reads `member.json`).
    pub fn open(dir: &Path) -> Result<Authority, PkiError> {
        let member = MemberFile::load(&dir.join(layout::MEMBER))?;
        let id = AuthorityId::parse(&member.id).map_err(|error| PkiError::Id {
            field: "member.json: id",
            error,
        })?;
        Ok(Authority {
            dir: dir.to_owned(),
            member,
            id,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The CA certificate (DER).
    pub fn ca_cert(&self) -> Result<rustls::pki_types::CertificateDer<'static>, PkiError> {
        load_cert(&self.path(layout::CA_CERT))
    }

    /// The CA as an issuer (reads the private key: offline use).
    pub fn issuer(&self, now: Timestamp) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key_path = self.path(layout::CA_KEY);
        let key_pem = String::from_utf8(files::read_secret(&key_path)?).unwrap_or_default();
        let key = KeyPair::from_pem(&key_pem).map_err(|e| FileError::Malformed {
            path: key_path.clone(),
            reason: format!("not a PEM private key: {e}"),
        })?;
        let cert_path = self.path(layout::CA_CERT);
        let der = load_cert(&cert_path)?;
        check_time(&cert_path, &der, now)?;
        Issuer::from_ca_cert_der(&der, key).map_err(|e| {
            PkiError::File(FileError::Malformed {
                path: cert_path,
                reason: format!("not a usable CA certificate: {e}"),
            })
        })
    }

    /// The message signing keys with their windows, oldest first.
    pub fn message_keys(&self) -> Result<Vec<(KeyFile, SigningKey)>, PkiError> {
        let mut out = Vec::new();
        for k in &self.member.message_keys {
            let path = self
                .path(layout::MESSAGE_KEYS)
                .join(format!("{}.key", k.kid));
            out.push((k.clone(), keys::read_secret_key(&path)?));
        }
        Ok(out)
    }

    /// The message key to sign with at `now`: of the keys valid at `now`,
    /// the one that became valid last.
    pub fn signing_key_at(&self, now: Timestamp) -> Result<Option<SigningKey>, PkiError> {
        Ok(self
            .message_keys()?
            .into_iter()
            .filter(|(k, _)| k.valid_from <= now.0 && k.valid_until.is_none_or(|u| now.0 < u))
            .max_by_key(|(k, _)| k.valid_from)
            .map(|(_, s)| s))
    }

    /// Issues a new node (relay TLS) certificate and key under the same CA,
    /// replacing `node.crt.pem` and `node.key.pem` (reads the CA key:
    /// offline). Returns the new certificate's fingerprint. The roster does
    /// not change: peers check node certificates against the CA.
    pub fn renew_node(&self, days: u32, now: Timestamp) -> Result<String, PkiError> {
        let endpoint = self
            .member
            .endpoints
            .first()
            .ok_or_else(|| PkiError::Invalid {
                field: "member.json: endpoints",
                reason: "no relay endpoint to name in the certificate".into(),
            })?;
        let issuer = self.issuer(now)?;
        let params = node_params(&InitParams {
            id: self.id.clone(),
            name: self.member.name.clone(),
            relay_host: endpoint.host.clone(),
            relay_port: endpoint.port,
            ca_days: 0,
            node_days: days,
            key_days: 0,
            now,
            overwrite: Overwrite::Replace,
        })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err("node key"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(rcgen_err("node certificate"))?;
        files::replace(
            &self.path(layout::NODE_KEY),
            key.serialize_pem().as_bytes(),
            0o600,
        )?;
        files::replace(&self.path(layout::NODE_CERT), cert.pem().as_bytes(), 0o644)?;
        Ok(x509::fingerprint(cert.der()))
    }

    /// The audit-log key.
    pub fn log_key(&self) -> Result<SigningKey, PkiError> {
        Ok(keys::read_secret_key(&self.path(layout::LOG_KEY))?)
    }

    /// Rotates the audit-log key: the key in `log.key` is kept as
    /// `log.key.<N>` (the first number not taken) and listed in
    /// `member.json` under `log_keys_before`, valid until `until`; a new
    /// key is written to `log.key` and becomes `log_key`. Returns the new
    /// public key and the file the old key was kept in. The relay signs
    /// with the new key once a roster that lists it is in force, and must
    /// before `until`: after it, what the old key signs no longer verifies.
    pub fn rotate_log_key(
        &mut self,
        until: Timestamp,
    ) -> Result<(VerifyingKey, PathBuf), PkiError> {
        if let Some(last) = self.member.log_keys_before.last()
            && until.0 <= last.valid_until
        {
            return Err(PkiError::Invalid {
                field: "--until-days",
                reason: format!(
                    "the current log key must stay valid after the earlier one ends ({})",
                    Timestamp(last.valid_until)
                ),
            });
        }
        let old = self.log_key()?;
        let kept = (1..)
            .map(|n| self.path(&format!("{}.{n}", layout::LOG_KEY)))
            .find(|p| !p.exists())
            .ok_or_else(|| PkiError::Invalid {
                field: "log.key",
                reason: "no free log.key.<N> name".into(),
            })?;
        keys::write_secret_key(&kept, &old, Overwrite::Refuse)?;
        let new = keys::generate_ed25519()?;
        keys::write_secret_key(&self.path(layout::LOG_KEY), &new, Overwrite::Replace)?;
        self.member.log_keys_before.push(PastLogKeyFile {
            public: hex::encode(old.verifying_key().as_bytes()),
            valid_until: until.0,
        });
        self.member.log_key = hex::encode(new.verifying_key().as_bytes());
        self.member
            .save(&self.path(layout::MEMBER), Overwrite::Replace)?;
        Ok((new.verifying_key(), kept))
    }

    /// Adds a new message key valid from `valid_from` for `key_days` days;
    /// every older key that is open-ended or ends later gets `valid_until =
    /// valid_from + overlap`. Returns the new key.
    pub fn rotate_message_key(
        &mut self,
        valid_from: Timestamp,
        overlap_ms: u64,
        key_days: u32,
    ) -> Result<VerifyingKey, PkiError> {
        if key_days == 0 {
            return Err(PkiError::Invalid {
                field: "--key-days",
                reason: "a message key must be valid for at least one day".into(),
            });
        }
        if let Some(last) = self.member.message_keys.last()
            && valid_from.0 <= last.valid_from
        {
            return Err(PkiError::Invalid {
                field: "--in-days",
                reason: format!(
                    "the new key must become valid after the newest key {} (valid from {})",
                    last.kid,
                    Timestamp(last.valid_from)
                ),
            });
        }
        let key = keys::generate_ed25519()?;
        write_message_key(&self.dir, &key, Overwrite::Refuse)?;
        let end = valid_from.plus_millis(overlap_ms).0;
        for k in &mut self.member.message_keys {
            if k.valid_until.is_none_or(|u| u > end) {
                k.valid_until = Some(end);
            }
        }
        self.member.message_keys.push(key_file(
            &key.verifying_key(),
            valid_from,
            Some(valid_from.plus_millis(u64::from(key_days) * x509::DAY_MS)),
        ));
        self.member
            .save(&self.path(layout::MEMBER), Overwrite::Replace)?;
        Ok(key.verifying_key())
    }
}

/// Reads the first certificate of a PEM file.
pub fn load_cert(path: &Path) -> Result<rustls::pki_types::CertificateDer<'static>, PkiError> {
    let text = files::read_text(path)?;
    let mut certs = x509::pem_certificates(&text).map_err(|reason| FileError::Malformed {
        path: path.to_owned(),
        reason,
    })?;
    Ok(certs.swap_remove(0))
}

/// Refuses a certificate that is not valid at `now`.
pub fn check_time(path: &Path, der: &[u8], now: Timestamp) -> Result<CertInfo, PkiError> {
    let info = CertInfo::parse(der).map_err(|reason| FileError::Malformed {
        path: path.to_owned(),
        reason,
    })?;
    if !info.valid_at(now) {
        return Err(PkiError::CertificateTime {
            path: path.to_owned(),
            now,
            not_before: info.not_before,
            not_after: info.not_after,
        });
    }
    Ok(info)
}
