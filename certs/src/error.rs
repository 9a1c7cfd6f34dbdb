//! Error types, one per area. Each message names the file, field or member
//! at fault and, where it can, says what to do.

use std::path::PathBuf;

use kurir_proto::IdError;

use crate::roster::Problems;

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
    /// The negotiated ALPN does not fit the identity.
    #[error("{0}")]
    Alpn(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}
