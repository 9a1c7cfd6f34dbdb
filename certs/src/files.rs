//! Reading and writing the PKI's files.
//!
//! Private keys are written with mode `0600` and read only when no one but
//! the owner can read them. No file is replaced unless the caller asks for it
//! (`--force`); the commands that maintain a file on purpose (the CRL, the
//! revocation register, a roster being edited) replace it atomically.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::FileError;

/// What to do when an output file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse with [`FileError::Exists`].
    Refuse,
    /// Replace the file.
    Replace,
}

impl Overwrite {
    /// `Replace` when `force` is set.
    pub fn from_force(force: bool) -> Self {
        if force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        }
    }
}

/// Writes a private key (or any secret) with mode `0600`.
pub fn write_secret(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<(), FileError> {
    write_with_mode(path, bytes, overwrite, 0o600)
}

/// Writes public material with mode `0644`.
pub fn write_public(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<(), FileError> {
    write_with_mode(path, bytes, overwrite, 0o644)
}

/// Refuses early if `path` exists and may not be replaced.
pub fn check_absent(path: &Path, overwrite: Overwrite) -> Result<(), FileError> {
    if overwrite == Overwrite::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(FileError::Exists {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn write_with_mode(
    path: &Path,
    bytes: &[u8],
    overwrite: Overwrite,
    mode: u32,
) -> Result<(), FileError> {
    let write_err = |error| FileError::Write {
        path: path.to_owned(),
        error,
    };
    match overwrite {
        Overwrite::Refuse => {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        FileError::Exists {
                            path: path.to_owned(),
                        }
                    } else {
                        write_err(e)
                    }
                })?;
            file.write_all(bytes).map_err(write_err)?;
            file.sync_all().map_err(write_err)?;
        }
        Overwrite::Replace => replace(path, bytes, mode)?,
    }
    Ok(())
}

/// Replaces `path` atomically: writes a temporary file beside it with `mode`,
/// syncs it and renames it over the old one.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let write_err = |error| FileError::Write {
        path: path.to_owned(),
        error,
    };
    let tmp = temp_path(path);
    let _ = fs::remove_file(&tmp);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(write_err)?;
        file.write_all(bytes).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    fs::read(path).map_err(|error| FileError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Reads a UTF-8 text file.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    String::from_utf8(read(path)?).map_err(|_| FileError::Malformed {
        path: path.to_owned(),
        reason: "not UTF-8 text".into(),
    })
}

/// Reads a private key file, refusing it if group or others may read it.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, FileError> {
    let meta = fs::metadata(path).map_err(|error| FileError::Read {
        path: path.to_owned(),
        error,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    read(path)
}

/// Creates a directory (and its parents) with mode `0700` if missing.
pub fn create_dir(path: &Path) -> Result<(), FileError> {
    fs::create_dir_all(path).map_err(|error| FileError::Write {
        path: path.to_owned(),
        error,
    })?;
    Ok(())
}
