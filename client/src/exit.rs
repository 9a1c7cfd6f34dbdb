//! Exit codes, in one place.
//!
//! Every failure of a `kurir` command ends in one of these codes; the table
//! is printed by `kurir --help` ([`EXIT_CODES`]) and in `docs/CLI.md`.

use kurir_proto::api::ErrorCode;

use crate::ClientError;

/// What `kurir --help` says about exit codes.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (a bug, or a relay answer that makes no sense)
  2  usage or bad input: bad arguments, a missing or invalid profile, a person
     or document file with a missing or wrong field, an unknown authority, a
     kind the recipient does not accept, attachments over the size limit, an
     extension over the allowed days, an existing output file
  3  connection or TLS: the relay is unreachable or too slow, it refused the
     officer certificate (expired, revoked, from another CA), or it is
     unavailable for now (try again)
  4  rejected by the relay: the request breaks a rule (bad request) or the
     officer's role does not allow it (forbidden), a reply to a closed case;
     or a message, receipt or audit bundle that fails verification
  5  not found: no such message or case at this relay";

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0
    Ok,
    /// 1
    Internal,
    /// 2
    Usage,
    /// 3
    Connection,
    /// 4
    Rejected,
    /// 5
    NotFound,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::Connection => 3,
            Exit::Rejected => 4,
            Exit::NotFound => 5,
        }
    }

    /// The code for an error class the relay answered with.
    pub fn of_relay(code: ErrorCode) -> Exit {
        match code {
            ErrorCode::BadRequest | ErrorCode::Forbidden => Exit::Rejected,
            ErrorCode::NotFound => Exit::NotFound,
            ErrorCode::Unavailable => Exit::Connection,
        }
    }
}

/// A failure with its exit code and a message that says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong and what to do about it.
    pub message: String,
}

/// An error with an exit code, for `?`.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        message: message.into(),
    })
}

/// Bad input: exit 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    fail(Exit::Usage, message)
}

/// The exit code of an error: the first [`Failure`] or [`ClientError`] in
/// its chain decides; anything else is internal.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.exit;
        }
        if cause.downcast_ref::<ClientError>().is_some() {
            return Exit::Connection;
        }
    }
    Exit::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn relay_error_classes_map_to_documented_codes() {
        assert_eq!(Exit::of_relay(ErrorCode::BadRequest).code(), 4);
        assert_eq!(Exit::of_relay(ErrorCode::Forbidden).code(), 4);
        assert_eq!(Exit::of_relay(ErrorCode::NotFound).code(), 5);
        assert_eq!(Exit::of_relay(ErrorCode::Unavailable).code(), 3);
    }

    #[test]
    fn the_first_failure_in_the_chain_decides() {
        let e = Err::<(), _>(usage("no such file"))
            .context("reading the person file")
            .unwrap_err();
        assert_eq!(exit_of(&e), Exit::Usage);
        let e = anyhow::Error::new(ClientError::Protocol("reset".into())).context("sending");
        assert_eq!(exit_of(&e).code(), 3);
        assert_eq!(exit_of(&anyhow::anyhow!("bug")).code(), 1);
        for (exit, code) in [
            (Exit::Ok, 0),
            (Exit::Internal, 1),
            (Exit::Usage, 2),
            (Exit::Connection, 3),
            (Exit::Rejected, 4),
            (Exit::NotFound, 5),
        ] {
            assert_eq!(exit.code(), code);
            assert!(EXIT_CODES.contains(&format!("  {code}  ")), "{code}");
        }
    }
}
