//! Bundle directories: [`read()`] one, and [`write()`] one (the one writer, used
//! by the relay's `audit-export` and by `kurir audit export`).
//!
//! ```text
//! DIR/
//!   bundle.cbor              everything, deterministic CBOR (kurir_proto::audit::Bundle)
//!   roster.cbor              the roster the relay had accepted (also in the bundle)
//!   checkpoints/<size>.note  each signed checkpoint as text (also in the bundle)
//! ```
//!
//! Only `bundle.cbor` is read back: the other files are for people looking
//! at a bundle without tools.

use std::path::{Path, PathBuf};

use kurir_proto::audit::Bundle;
use kurir_proto::cbor::CborError;
use kurir_proto::checkpoint::SignedCheckpoint;

use crate::error::{Problem, VerifyError};

/// The file of a bundle directory that holds the whole bundle.
pub const BUNDLE_FILE: &str = "bundle.cbor";

/// Why a bundle directory could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The output directory exists and could not be listed.
    #[error("cannot read {}: {source}", path.display())]
    ReadDir {
        /// The output directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The output directory exists and is not empty.
    #[error("{} is not empty: give a new or empty directory", path.display())]
    NotEmpty {
        /// The output directory.
        path: PathBuf,
    },
    /// The bundle could not be encoded.
    #[error("cannot encode the bundle: {0}")]
    Encode(CborError),
    /// A directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Reads and decodes `dir/bundle.cbor` (strictly: [`Bundle::decode`]).
/// Nothing in it is verified yet: that is [`crate::load_verified`].
pub fn read(dir: &Path) -> Result<Bundle, VerifyError> {
    let path = dir.join(BUNDLE_FILE);
    let bytes = std::fs::read(&path).map_err(|source| VerifyError::Unreadable {
        path: path.clone(),
        source,
    })?;
    Bundle::decode(&bytes).map_err(|e| VerifyError::NotVerified {
        path,
        problem: Box::new(Problem::NotABundle(e)),
    })
}

/// Checks that `out` can take a bundle: it does not exist, or is an empty
/// directory. [`write()`] checks it again; callers check it first to refuse
/// before collecting a bundle.
pub fn ensure_empty(out: &Path) -> Result<(), WriteError> {
    if out.exists()
        && out
            .read_dir()
            .map_err(|source| WriteError::ReadDir {
                path: out.to_owned(),
                source,
            })?
            .next()
            .is_some()
    {
        return Err(WriteError::NotEmpty {
            path: out.to_owned(),
        });
    }
    Ok(())
}

/// Writes `bundle` as a bundle directory `out`, which must not exist or be
/// empty; missing parent directories are created.
pub fn write(bundle: &Bundle, out: &Path) -> Result<(), WriteError> {
    ensure_empty(out)?;
    for (name, bytes) in files(bundle).map_err(WriteError::Encode)? {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WriteError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| WriteError::Write { path, source })?;
    }
    Ok(())
}

/// The files of a bundle directory, as (path relative to the directory,
/// contents): `bundle.cbor` (everything), and for people reading it
/// without tools `roster.cbor` and `checkpoints/<size>.note`.
fn files(bundle: &Bundle) -> Result<Vec<(String, Vec<u8>)>, CborError> {
    let mut files = vec![
        (BUNDLE_FILE.to_owned(), bundle.encode()?),
        ("roster.cbor".to_owned(), bundle.roster.clone()),
    ];
    for note in &bundle.checkpoints {
        let size = SignedCheckpoint::parse(&note.0)
            .map(|c| c.checkpoint().size())
            .unwrap_or_default();
        files.push((format!("checkpoints/{size:012}.note"), note.0.clone()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use kurir_proto::audit::{BUNDLE_FORMAT, serde_bytes_vec::Bytes};
    use kurir_proto::checkpoint::Checkpoint;
    use kurir_proto::{AuthorityId, Digest, Timestamp};

    fn bundle() -> Bundle {
        let key = kurir_proto::ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let origin = "kurir/RS.MUP";
        let note = |size: u64| {
            let c = Checkpoint::new(origin, size, Digest([size as u8; 32])).unwrap();
            SignedCheckpoint::sign(c, origin, &key)
                .unwrap()
                .note()
                .to_string()
                .into_bytes()
        };
        Bundle {
            format: BUNDLE_FORMAT.into(),
            authority: AuthorityId::parse("RS.MUP").unwrap(),
            exported_at: Timestamp(1_795_874_050_000),
            roster: b"roster bytes".to_vec(),
            rosters: vec![Bytes(b"roster bytes".to_vec())],
            entries: vec![],
            checkpoints: vec![Bytes(note(3)), Bytes(note(12))],
            receipts: vec![],
            envelopes: vec![],
        }
    }

    #[test]
    fn a_bundle_directory_is_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/parent/out");
        let b = bundle();
        write(&b, &out).unwrap();
        assert_eq!(read(&out).unwrap(), b);
        assert_eq!(std::fs::read(out.join("roster.cbor")).unwrap(), b.roster);
        assert_eq!(
            std::fs::read(out.join("checkpoints/000000000012.note")).unwrap(),
            b.checkpoints[1].0
        );
        assert!(out.join("checkpoints/000000000003.note").exists());
        // A directory that is not empty is refused, and left as it was.
        let err = write(&b, &out).unwrap_err();
        assert!(matches!(err, WriteError::NotEmpty { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("is not empty: give a new or empty directory")
        );
        // An empty one is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        ensure_empty(&empty).unwrap();
        write(&b, &empty).unwrap();
    }

    #[test]
    fn an_unreadable_or_foreign_bundle_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, VerifyError::Unreadable { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        std::fs::write(dir.path().join(BUNDLE_FILE), b"\xa0").unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(
            matches!(err.problem(), Some(Problem::NotABundle(_))),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(": NOT VERIFIED: not an audit bundle: "),
            "{err}"
        );
    }
}
