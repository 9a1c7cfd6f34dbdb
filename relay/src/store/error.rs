//! [`StoreError`]: why the store failed, with the data directory, tree or
//! file it concerns.

use std::path::{Path, PathBuf};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error.
    #[error("storage error in {path}: {source}")]
    Sled {
        /// The data directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// The fsync after a flush failed.
    #[error("could not sync {path} to disk: {source}")]
    Sync {
        /// The database file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A stored record does not decode: the data directory is damaged.
    #[error("damaged record in tree {tree} of {path}: {reason}")]
    Corrupt {
        /// The data directory.
        path: PathBuf,
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A peer's cosignature was not added to a stored checkpoint.
    #[error("the cosignature {name} of checkpoint {size} in {path} was not stored: {reason}")]
    Cosignature {
        /// The data directory.
        path: PathBuf,
        /// The checkpoint's size.
        size: u64,
        /// The line's key name (the peer's).
        name: String,
        /// Why.
        reason: Box<crate::core::cosign::MergeRefusal>,
    },
    /// A backup file ([`SNAPSHOT_FILE`](super::SNAPSHOT_FILE)) does not
    /// check out: damaged, cut short, changed or not a backup.
    #[error("the backup {path} does not check out: {reason}")]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// What failed, and where in the file.
        reason: String,
    },
    /// The writer thread is gone (the store was closed).
    #[error("the store is closed")]
    Closed,
    /// Free space is below the reserve: new work is refused.
    #[error(
        "the data dir {path} has {free_mib} MiB free, below the reserve of {reserve_mib} MiB \
         ([storage] min_free_mb): new work is refused, work already accepted is still \
         completed; free space on that filesystem (or move the data dir to a larger one) \
         and it is accepted again, no restart needed"
    )]
    LowSpace {
        /// The data directory.
        path: PathBuf,
        /// Free space for unprivileged writers, in MiB.
        free_mib: u64,
        /// The configured reserve, in MiB.
        reserve_mib: u64,
    },
    /// A body file could not be written or read.
    #[error("body file {path}: {source}")]
    BodyFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The data directory could not be created or read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory, or the entry in it.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The data directory, or something in it, grants the group or others
    /// a permission (Unix).
    #[error(
        "{path} is open to other users (mode {mode:04o}): the data directory holds every \
         message body and the keys that decrypt them, so it must be private to the relay's \
         user; run `chmod -R go-rwx {data_dir}` (and check who else had access), then start \
         the relay again"
    )]
    NotPrivate {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The data directory.
        data_dir: PathBuf,
    },
    /// The store is of a newer format than this binary reads: it was
    /// written (or upgraded) by a newer kurir-relay. Nothing in it was
    /// changed.
    #[error(
        "the data directory {path} holds a store of format {found}, newer than this \
         kurir-relay {ours} reads (format {known} and older): it was written or upgraded by \
         a newer kurir-relay; run {need}, or restore a backup of the data directory made by \
         this version; nothing in {path} was changed"
    )]
    TooNew {
        /// The data directory.
        path: PathBuf,
        /// The store's format.
        found: u32,
        /// The newest format this binary reads.
        known: u32,
        /// This binary's version.
        ours: &'static str,
        /// Which kurir-relay reads it ("a kurir-relay of version ≥ …").
        need: String,
    },
    /// A commit did not complete within the bound.
    #[error(
        "storage is not responding: no commit to the data dir {path} completed within {secs} s \
         (a full disk, a failing device or a hung network filesystem?); this was not \
         acknowledged; check the disk and the kernel log, then restart the relay"
    )]
    NotResponding {
        /// The data directory.
        path: PathBuf,
        /// The bound, in seconds.
        secs: u64,
    },
}

impl StoreError {
    /// Whether the store refused new work for lack of free space.
    pub fn is_low_space(&self) -> bool {
        matches!(self, StoreError::LowSpace { .. })
    }

    /// The same error again, for each caller of a failed batch.
    pub(super) fn clone_for_caller(&self, path: &Path) -> StoreError {
        StoreError::Corrupt {
            path: path.to_owned(),
            tree: "commit",
            reason: format!("the group commit failed: {self}"),
        }
    }
}
