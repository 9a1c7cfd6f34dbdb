//! Error types, one per area. Each message names the file, field or member
//! at fault and, where it can, says what to do.
//!
//! [`Problem`] and [`Problems`], every thing wrong with a roster, live here
//! beside [`RosterError::Invalid`], which carries them; `roster` re-exports
//! them.

use std::fmt;
use std::path::PathBuf;

use kurir_proto::{IdError, Timestamp};

/// A file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading failed (missing file, no permission, ...).
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// Writing failed.
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The output exists and `--force` was not given.
    #[error("{} already exists; refusing to overwrite it (pass --force to replace it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A private key file that group or others may read.
    #[error(
        "{}: private key file has mode {mode:04o}, readable by others; \
         run `chmod 600 {}` (and consider the key compromised if others could read it)",
        path.display(), path.display()
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file was read but its content is not what it should be.
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Creating an authority, issuing or revoking certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file problem.
    #[error(transparent)]
    File(#[from] FileError),
    /// A malformed authority id.
    #[error("{field}: {error}")]
    Id {
        /// The argument or field.
        field: &'static str,
        /// The parse error.
        error: IdError,
    },
    /// An argument with an invalid value.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument or field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A certificate that is not valid now.
    #[error("{}: certificate is not valid at {now}: valid from {not_before} until {not_after}", path.display())]
    CertificateTime {
        /// The certificate file.
        path: PathBuf,
        /// The time checked.
        now: kurir_proto::Timestamp,
        /// Start of validity.
        not_before: kurir_proto::Timestamp,
        /// End of validity.
        not_after: kurir_proto::Timestamp,
    },
    /// The certificate generator failed.
    #[error("{what}: {error}")]
    Rcgen {
        /// What was being made.
        what: &'static str,
        /// The cause.
        error: rcgen::Error,
    },
    /// The system random source failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Reading, editing or verifying a roster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// A file problem.
    #[error(transparent)]
    File(#[from] FileError),
    /// The roster was checked and is not valid; every problem is listed.
    #[error("roster{}is not valid:\n{problems}", match path { Some(p) => format!(" {} ", p.display()), None => " ".to_owned() })]
    Invalid {
        /// The roster file, when known.
        path: Option<PathBuf>,
        /// What is wrong.
        problems: Problems,
    },
    /// An edit that would break the roster (e.g. a duplicate member).
    #[error("{0}")]
    Edit(String),
    /// A member description file (`member.json`) is malformed.
    #[error("{}: {reason}", path.display())]
    MemberFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Encoding failed (should not happen with a validated roster).
    #[error("cannot encode the roster: {0}")]
    Encode(String),
}

/// Building TLS configurations or identifying a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file problem.
    #[error(transparent)]
    File(#[from] FileError),
    /// A certificate could not be parsed or lacks what kurir needs.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The peer claims an authority that the roster does not list.
    #[error("certificate names authority {0}, which is not a member of the current roster")]
    UnknownAuthority(kurir_proto::AuthorityId),
    /// An officer certificate of another authority.
    #[error("officer certificate of {claimed} presented to the relay of {own}")]
    ForeignOfficer {
        /// The authority in the certificate.
        claimed: kurir_proto::AuthorityId,
        /// This relay's authority.
        own: kurir_proto::AuthorityId,
    },
    /// The chain does not verify (wrong CA, expired, revoked, ...).
    #[error("certificate of {who} refused: {reason}")]
    Refused {
        /// Who the certificate claims to be.
        who: String,
        /// What rustls/webpki said.
        reason: String,
    },
    /// A node certificate the roster revokes.
    #[error(
        "node certificate sha256 {sha256} of {member} was revoked in the roster at {revoked_at} \
         ({reason}); the relay of {member} needs a new node certificate \
         (`kurir-certs authority renew-node`)"
    )]
    NodeRevoked {
        /// The member whose certificate it is.
        member: kurir_proto::AuthorityId,
        /// Its SHA-256 fingerprint, hex.
        sha256: String,
        /// When the roster revoked it.
        revoked_at: kurir_proto::Timestamp,
        /// Why.
        reason: String,
    },
    /// The negotiated ALPN does not fit the identity.
    #[error("{0}")]
    Alpn(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A CRL that does not parse or is not signed by the authority's CA.
    #[error(
        "CRL {}: {reason} (write it again with `kurir-certs officer revoke`, which signs it with \
         the authority's CA)",
        path.display()
    )]
    Crl {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One thing wrong with a roster, naming the field, member or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not a roster in deterministic CBOR.
    Encoding {
        /// Which part (`file` or `body`).
        part: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// A field has an invalid value.
    Field {
        /// The field, e.g. `members[1] (BA.SPS).message_keys[0].valid_until`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Two members with one id.
    DuplicateMember(String),
    /// One key id used twice.
    DuplicateKey {
        /// The key id.
        kid: String,
        /// First use.
        first: String,
        /// Second use.
        second: String,
    },
    /// A signature's bytes are not well formed.
    MalformedSignature {
        /// Index in the file.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A signature by a key that is neither in this roster nor in the current one.
    UnknownSigner {
        /// Index in the file.
        index: usize,
        /// Key id.
        kid: String,
    },
    /// The same key signed twice.
    DuplicateSignature {
        /// Index of the second one.
        index: usize,
        /// Key id.
        kid: String,
    },
    /// The signature does not verify over this body.
    BadSignature {
        /// Index in the file.
        index: usize,
        /// Key id.
        kid: String,
        /// The key's label.
        label: String,
    },
    /// Fewer valid signatures than the threshold.
    TooFewSignatures {
        /// Valid signatures counted.
        valid: usize,
        /// Needed.
        threshold: u64,
        /// Whose keys and threshold.
        of: &'static str,
    },
    /// Lower version than the current roster.
    Rollback {
        /// This roster's version.
        version: u64,
        /// The current version.
        current: u64,
    },
    /// Same version as the current roster, different content.
    SameVersion {
        /// The version.
        version: u64,
    },
    /// Issued in the future.
    IssuedInFuture {
        /// `issued_at`.
        issued_at: Timestamp,
        /// Now.
        now: Timestamp,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Encoding { part, reason } => write!(
                f,
                "{part}: not a kurir roster in deterministic CBOR: {reason}"
            ),
            Problem::Field { field, reason } => write!(f, "{field}: {reason}"),
            Problem::DuplicateMember(id) => write!(
                f,
                "members: {id} is listed twice; each authority may appear once"
            ),
            Problem::DuplicateKey { kid, first, second } => write!(
                f,
                "{second}: key {kid} is already used as {first}; key ids must be unique in the roster"
            ),
            Problem::MalformedSignature { index, reason } => {
                write!(f, "signatures[{index}]: {reason}")
            }
            Problem::UnknownSigner { index, kid } => write!(
                f,
                "signatures[{index}]: key {kid} is not a roster key (neither of this roster nor of the current one)"
            ),
            Problem::DuplicateSignature { index, kid } => write!(
                f,
                "signatures[{index}]: key {kid} signed more than once; it counts once"
            ),
            Problem::BadSignature { index, kid, label } => write!(
                f,
                "signatures[{index}]: the signature of key {kid} ({label}) does not match the body; \
                 the roster was changed after signing, or signed with another key"
            ),
            Problem::TooFewSignatures {
                valid,
                threshold,
                of,
            } => write!(
                f,
                "signatures: {valid} valid signature(s) by {of}, {threshold} required"
            ),
            Problem::Rollback { version, current } => write!(
                f,
                "version: {version} is lower than the current roster's version {current}; refusing a rollback"
            ),
            Problem::SameVersion { version } => write!(
                f,
                "version: {version} equals the current roster's version but the content differs; \
                 a changed roster needs a higher version"
            ),
            Problem::IssuedInFuture { issued_at, now } => write!(
                f,
                "issued_at: {issued_at} lies in the future (now {now}); check the clocks"
            ),
        }
    }
}

/// A list of problems, one per line when displayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}
