//! Exit codes in one place: the text `--help` shows, and the mapping from
//! an error to its documented code.

use kurir_certs::error::{FileError, PkiError, RosterError, TlsError};

fn file_code(e: &FileError) -> u8 {
    match e {
        FileError::Exists { .. } => 5,
        _ => 3,
    }
}

/// Maps an error to the documented exit code.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<FileError>() {
            return file_code(e);
        }
        if let Some(e) = cause.downcast_ref::<PkiError>() {
            return match e {
                PkiError::File(f) => file_code(f),
                PkiError::CertificateTime { .. } => 4,
                PkiError::Rcgen { .. } | PkiError::Random => 1,
                _ => 3,
            };
        }
        if let Some(e) = cause.downcast_ref::<RosterError>() {
            return match e {
                RosterError::File(f) => file_code(f),
                RosterError::Invalid { .. } => 4,
                RosterError::Encode(_) => 1,
                _ => 3,
            };
        }
        if let Some(e) = cause.downcast_ref::<TlsError>() {
            return match e {
                TlsError::File(f) => file_code(f),
                _ => 3,
            };
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
    }
    1
}

/// A usage error found after parsing (a bad value clap cannot check): exit
/// code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);
