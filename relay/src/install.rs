//! `kurir-relay roster install FILE --config relay.toml`: puts a newer
//! signed roster in place for a relay, running or not.
//!
//! FILE is verified against the roster in force: the newer of the
//! configured roster file and the copy of the roster in force the relay
//! keeps beside its database ([`crate::store::ROSTER_COPY`]; the database
//! of a running relay cannot be opened). It must be signed by k of n of its
//! own roster keys, by the current quorum too when the key set changes,
//! and be newer. Then it replaces the configured roster file atomically.
//! A running relay takes it on SIGHUP or at its next file check (`[roster]
//! check_secs`), verifies it again against its own roster in force, stores
//! it and applies it live ([`crate::node::Node::reload_roster`]).

use std::path::{Path, PathBuf};

use kurir_certs::roster::CaDates;
use kurir_certs::{Accepted, Roster, RosterError};
use kurir_proto::Timestamp;

use crate::config::{ConfigError, RelayConfig};

/// What `roster install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// FILE is the roster in force already: nothing written.
    AlreadyInForce {
        /// Its version.
        version: u64,
    },
    /// FILE replaced the configured roster file.
    Written {
        /// The configured roster file.
        path: PathBuf,
        /// The version in force before.
        from: u64,
        /// FILE's version.
        version: u64,
        /// FILE's fingerprint (SHA-256 of the file).
        fingerprint: String,
    },
}

/// Why `roster install` refused, or could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The relay's configuration does not load.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Neither the configured roster file nor the relay's copy holds a
    /// roster that verifies: nothing to verify FILE against.
    #[error(
        "no roster in force to verify {} against: the configured roster file {} does not \
         verify ({reason}) and the relay keeps no copy in {}. Start the relay once with its \
         founding roster first",
        file.display(), configured.display(), data_dir.display()
    )]
    NoRosterInForce {
        /// FILE.
        file: PathBuf,
        /// The configured roster file.
        configured: PathBuf,
        /// The data directory.
        data_dir: PathBuf,
        /// Why the configured file does not verify.
        reason: String,
    },
    /// FILE does not verify against the roster in force: bad or too few
    /// signatures, an older version, the same version with other content.
    #[error(
        "{} is refused: it does not verify against the roster in force (version {in_force}, \
         from {}): {source}",
        file.display(), in_force_from.display()
    )]
    Refused {
        /// FILE.
        file: PathBuf,
        /// The version in force.
        in_force: u64,
        /// Where the roster in force was read.
        in_force_from: PathBuf,
        /// What verification found.
        source: RosterError,
    },
    /// A file could not be read or written.
    #[error("{0}")]
    File(#[from] kurir_certs::FileError),
}

/// Verifies `file` against the roster in force for the relay configured
/// in `config` and, if it is newer, writes it over the configured roster
/// file (atomically, mode 0644).
pub fn install(config: &Path, file: &Path, now: Timestamp) -> Result<Installed, InstallError> {
    let config = RelayConfig::load(config)?;
    let bytes = kurir_certs::files::read(file)?;
    let (in_force, from) = roster_in_force(&config, file, now)?;
    let refused = |source| InstallError::Refused {
        file: file.to_owned(),
        in_force: in_force.version(),
        in_force_from: from.clone(),
        source,
    };
    match Roster::accept_with(&bytes, Some(&in_force), now, CaDates::Unchecked).map_err(refused)? {
        Accepted::Unchanged => Ok(Installed::AlreadyInForce {
            version: in_force.version(),
        }),
        Accepted::Newer(new) => {
            kurir_certs::files::replace(&config.roster_path, &bytes, 0o644)?;
            Ok(Installed::Written {
                path: config.roster_path.clone(),
                from: in_force.version(),
                version: new.version(),
                fingerprint: new.fingerprint(),
            })
        }
    }
}

/// The newer of the configured roster file and the relay's copy, each
/// verified on its own (the relay verified it against its history when it
/// put it in force), and where it was read.
fn roster_in_force(
    config: &RelayConfig,
    file: &Path,
    now: Timestamp,
) -> Result<(Roster, PathBuf), InstallError> {
    let verify = |bytes: &[u8]| Roster::verify_against_with(bytes, None, now, CaDates::Unchecked);
    let configured = kurir_certs::files::read(&config.roster_path)
        .map_err(RosterError::File)
        .and_then(|b| verify(&b));
    let copy_path = config.data_dir.join(crate::store::ROSTER_COPY);
    let copy = crate::store::roster_copy(&config.data_dir)
        .ok()
        .flatten()
        .and_then(|b| verify(&b).ok());
    match (configured, copy) {
        (Ok(c), Some(k)) if k.version() >= c.version() => Ok((k, copy_path)),
        (Ok(c), _) => Ok((c, config.roster_path.clone())),
        (Err(_), Some(k)) => Ok((k, copy_path)),
        (Err(e), None) => Err(InstallError::NoRosterInForce {
            file: file.to_owned(),
            configured: config.roster_path.clone(),
            data_dir: config.data_dir.clone(),
            reason: e.to_string(),
        }),
    }
}
