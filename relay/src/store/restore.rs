//! Putting a snapshot in place of a data directory ([`restore`]).
//!
//! 1. The data directory's database lock (the one sled takes on its `db`
//!    file, and a running relay holds) is taken and held to the end: a
//!    running relay is refused ([`RestoreError::Running`]), and no relay
//!    starts on the directory meanwhile.
//! 2. A data directory with anything in it is refused without `force`
//!    ([`RestoreError::NotEmpty`]).
//! 3. A fresh store is built beside the data directory
//!    (`DATA.restore-T`, private) from the backup file, streaming: each
//!    record checked as [`verify_snapshot`](super::verify_snapshot) checks
//!    it and inserted on its own (one record in memory at a time: memory
//!    does not grow with the store); the body files are copied, the
//!    `last-checkpoint.note` marker and `store-format` written. The new
//!    store is then checked as `kurir-relay verify-log` checks a data
//!    directory ([`verify_log`]), and its log size and root compared with
//!    the backup's. One that does not check out is removed and nothing
//!    else changes ([`RestoreError::Snapshot`]). A backup in the older
//!    layout (a copy of the database) is refused, with what to do.
//! 4. With `force`, the old data directory is renamed aside
//!    (`DATA.before-restore-T`, never deleted); an empty one is removed.
//!    The checked copy is renamed into its place.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::backup::{
    SnapshotCheck, await_closed, copy_snapshot, private_dir, read_optional, write_private,
};
use super::checkpoints::MARKER;
use super::format::FORMAT_FILE;
use super::verify_backup::read_checked;
use super::{StoreError, at_rest, trees, verify_log};

/// How long [`restore`] waits for the database lock a stopping relay
/// releases.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Why a restore was refused or failed. Nothing was changed in the data
/// directory unless the message says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A relay holds the data directory's database.
    #[error(
        "a relay is running on {0} (it holds the database lock): stop it first \
         (systemctl stop kurir-relay); nothing was changed"
    )]
    Running(PathBuf),
    /// The data directory holds something and `force` was not given.
    #[error(
        "{0} is not empty: give --force to put the snapshot in place (the data directory is \
         then kept aside, renamed to {0}.before-restore-TIME, never deleted); nothing was changed"
    )]
    NotEmpty(PathBuf),
    /// The snapshot does not check out.
    #[error("the snapshot {path} does not check out, nothing was changed: {source}")]
    Snapshot {
        /// The snapshot directory.
        path: PathBuf,
        /// What the check found.
        source: StoreError,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// What the restored data directory holds (as checked before it was
    /// put in place).
    pub check: SnapshotCheck,
    /// Where the old data directory was kept, if it held anything.
    pub kept_aside: Option<PathBuf>,
}

/// Puts the snapshot `from` in place of `data_dir` (see the module docs).
/// `stamp` names the directories made beside it (seconds since the epoch).
pub fn restore(
    from: &Path,
    data_dir: &Path,
    force: bool,
    stamp: u64,
) -> Result<RestoreReport, RestoreError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RestoreError::Io { path, source }
    };
    super::private::restrict_umask();
    let _lock = hold_lock(data_dir)?;
    let occupied = match std::fs::read_dir(data_dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(source) => return Err(io(data_dir)(source)),
    };
    if occupied && !force {
        return Err(RestoreError::NotEmpty(data_dir.to_owned()));
    }
    let beside = |what: &str| {
        let mut name = data_dir.as_os_str().to_owned();
        name.push(format!(".{what}-{stamp}"));
        PathBuf::from(name)
    };
    let staging = beside("restore");
    let snapshot = |source| RestoreError::Snapshot {
        path: from.to_owned(),
        source,
    };
    if staging.exists() {
        return Err(io(&staging)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists (left by another restore?): remove it and try again",
        )));
    }
    let checked = build(from, &staging);
    let check = match checked {
        Ok(check) => check,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(snapshot(e));
        }
    };
    let mut kept_aside = None;
    if occupied {
        let aside = beside("before-restore");
        std::fs::rename(data_dir, &aside).map_err(io(data_dir))?;
        tracing::warn!(data_dir = %data_dir.display(), kept = %aside.display(),
            "the old data directory is kept aside");
        kept_aside = Some(aside);
    } else if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(io(data_dir))?;
    }
    std::fs::rename(&staging, data_dir).map_err(io(data_dir))?;
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    Ok(RestoreReport { check, kept_aside })
}

/// Takes the database lock of `data_dir` (the `db` file's, as sled does),
/// if it has a database; waits a moment for one a stopping relay still
/// holds.
fn hold_lock(data_dir: &Path) -> Result<Option<std::fs::File>, RestoreError> {
    let db = data_dir.join("db");
    let file = match std::fs::OpenOptions::new().read(true).write(true).open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RestoreError::Io { path: db, source }),
    };
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RestoreError::Running(data_dir.to_owned()));
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(RestoreError::Io { path: db, source });
            }
        }
    }
}

/// Builds a store in the new directory `staging` from the backup in
/// `from` (see the module docs, step 3), one record at a time; what it
/// holds.
pub(super) fn build(from: &Path, staging: &Path) -> Result<SnapshotCheck, StoreError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::DataDir { path, source }
    };
    let sled_err = |source| StoreError::Sled {
        path: staging.to_owned(),
        source,
    };
    private_dir(staging).map_err(io(staging))?;
    let (mut check, header) = {
        let db = trees::open_sled(staging).map_err(sled_err)?;
        let mut tree: Option<(Vec<u8>, sled::Tree)> = None;
        let read = read_checked(from, |rec| {
            let into = match &tree {
                Some((name, t)) if *name == rec.tree => t,
                _ => {
                    let t = db.open_tree(&rec.tree).map_err(sled_err)?;
                    &tree.insert((rec.tree.clone(), t)).1
                }
            };
            // One insert at a time: sled's `apply_batch` of 10,000 records
            // at a time took the restore of 1,000,000 messages to 4 GB.
            into.insert(&rec.key[..], &rec.value[..])
                .map_err(sled_err)?;
            Ok(())
        })?;
        db.flush().map_err(sled_err)?;
        read
    };
    // sled finishes closing on its own threads.
    await_closed(staging)?;
    let bodies = from.join(at_rest::BODIES);
    if bodies.is_dir() {
        copy_snapshot(&bodies, &staging.join(at_rest::BODIES))?;
    }
    if let Some(marker) = &header.marker {
        let path = staging.join(MARKER);
        write_private(&path, marker).map_err(io(&path))?;
    }
    if let Some(format) = read_optional(&from.join(FORMAT_FILE))? {
        let path = staging.join(FORMAT_FILE);
        write_private(&path, &format).map_err(io(&path))?;
    }
    let report = verify_log(staging)?;
    if (report.entries, report.root) != (check.entries, check.root) {
        return Err(StoreError::Backup {
            path: from.to_owned(),
            reason: format!(
                "the store built from it holds {} audit entries with root {}, the backup {} \
                 with root {}",
                report.entries, report.root, check.entries, check.root
            ),
        });
    }
    check.checkpoints = report.checkpoints;
    check.bytes = super::backup::dir_bytes(staging);
    Ok(check)
}
