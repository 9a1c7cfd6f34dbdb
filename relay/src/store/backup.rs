//! Snapshots of a store: taken through the writer, so that a snapshot is
//! the state after exactly one group commit, on a running relay or a
//! stopped one; written as one file, streaming, and copied out.
//!
//! # Taking a snapshot ([`Store::snapshot`])
//!
//! The writer takes the snapshot between two batches, after the batch
//! before it is flushed (and its `last-checkpoint.note` written), so the
//! snapshot holds exactly what has been acknowledged up to one commit, and
//! nothing of a later one. While it holds the writer it streams every tree,
//! in tree-name and key order, to the backup file [`SNAPSHOT_FILE`] in the
//! staging directory [`STAGING`] inside the data directory (the format is
//! in `stream`: a header with the commit's log size and root and the
//! marker, the records, a trailer with counts and a SHA-256), through a
//! buffer, and syncs it; it hard-links each body file the records name
//! into `STAGING/bodies` (a copy where a link is refused), so that a body
//! file erased after the snapshot stays in it, and copies the
//! `store-format` file. It holds one record at a time: memory does not
//! grow with the store. How long it held the writer is in
//! [`SnapshotInfo::held`]; the caller waits for it without the bound of a
//! commit (`flush_timeout`), while commits queued behind it keep theirs.
//! Everything staged is private to the relay's user (0700/0600).
//!
//! Only one snapshot exists at a time: the staging directory is refused if
//! it exists, removed by [`Store::drop_snapshot`], and a leftover (the
//! relay stopped during a backup) is removed at the next open.
//!
//! # Copying it
//!
//! [`copy_snapshot`] copies a snapshot to a new or empty directory,
//! keeping it private (directories 0700, files 0600, each file synced).
//! The copy is checked from its file by `verify_backup`
//! ([`verify_snapshot`](super::verify_snapshot)); `restore` builds a store
//! from a checked backup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kurir_proto::Digest;

use super::at_rest::{self, Stored, record_parcel};
use super::checkpoints::MARKER;
use super::format::FORMAT_FILE;
use super::stream::{Counts, Header, SNAPSHOT_FILE, StreamWriter};
use super::writer::{Op, OpResult, Writer};
use super::{FORMAT_VERSION, Store, StoreError};

/// The directory inside the data directory where a snapshot is staged.
pub const STAGING: &str = "backup-staging";

/// What a snapshot holds, and how long it held the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Audit log entries: the commit the snapshot matches is the one that
    /// left the log at this size.
    pub entries: u64,
    /// The audit log's Merkle root at that size.
    pub root: Digest,
    /// The size of the newest checkpoint in the snapshot.
    pub checkpoint: Option<u64>,
    /// Sent messages.
    pub outbound: u64,
    /// Received messages.
    pub inbox: u64,
    /// Body files (bodies too large to keep in their record).
    pub body_files: u64,
    /// The backup file's size in bytes.
    pub bytes: u64,
    /// How long the writer was held.
    pub held: Duration,
}

/// What a checked copy of a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// Audit log entries, each checked and linked to the one before.
    pub entries: u64,
    /// The log's root.
    pub root: Digest,
    /// Checkpoints (the newest one's root checked against the log).
    pub checkpoints: usize,
    /// The newest checkpoint's size.
    pub newest_checkpoint: Option<u64>,
    /// Sent messages.
    pub outbound: u64,
    /// Received messages.
    pub inbox: u64,
    /// Body files.
    pub body_files: u64,
    /// Records (of every tree).
    pub records: u64,
    /// Bytes in the directory.
    pub bytes: u64,
}

impl Store {
    /// Takes a snapshot of the store through the writer and writes it to
    /// [`STAGING`] in the data directory (see the module docs). Refused
    /// while another snapshot is staged.
    pub async fn snapshot(&self) -> Result<SnapshotInfo, StoreError> {
        let staging = self.path.join(STAGING);
        match self.submit_unbounded(Op::Snapshot(staging)).await {
            Ok(OpResult::Snapshot(info)) => {
                tracing::info!(data_dir = %self.path.display(), entries = info.entries,
                    bytes = info.bytes, held_ms = info.held.as_millis(), "snapshot taken");
                Ok(*info)
            }
            Ok(_) => {
                self.drop_snapshot();
                Err(self.corrupt("snapshot", "the writer answered another way".into()))
            }
            // Another backup's snapshot: not ours to remove.
            Err(e @ StoreError::DataDir { .. }) if is_busy(&e) => Err(e),
            Err(e) => {
                self.drop_snapshot();
                Err(e)
            }
        }
    }

    /// The staged snapshot's directory.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.path.join(STAGING)
    }

    /// Removes the staged snapshot (a failure is logged; the next open
    /// removes it).
    pub fn drop_snapshot(&self) {
        remove_staging(&self.path);
    }
}

/// Removes a staged snapshot in the data directory `dir`, if there is one.
pub(super) fn remove_staging(dir: &Path) {
    let staging = dir.join(STAGING);
    match std::fs::remove_dir_all(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %staging.display(), error = %e,
            "cannot remove a staged snapshot; it is removed at the next start"),
    }
}

/// Whether `e` is the refusal of a second snapshot.
fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::DataDir { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
}

impl Writer {
    /// [`Op::Snapshot`], between two batches: everything committed,
    /// streamed to the backup file in `staging`, and the body files it
    /// names linked beside it.
    pub(super) fn snapshot(&self, staging: &Path) -> Result<OpResult, StoreError> {
        let started = Instant::now();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::DataDir { path, source }
        };
        let bodies = staging.join(at_rest::BODIES);
        if staging.exists() {
            return Err(StoreError::DataDir {
                path: staging.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a backup is in progress (its snapshot is staged here); try again once it \
                     has finished",
                ),
            });
        }
        private_dir(&bodies).map_err(io(&bodies))?;
        let header = Header {
            store_format: FORMAT_VERSION,
            entries: self.range.size(),
            root: self.range.root(),
            marker: read_optional(&self.path.join(MARKER))?,
        };
        let file = staging.join(SNAPSHOT_FILE);
        let mut out = StreamWriter::create(&file, &header).map_err(io(&file))?;
        let db = &self.trees.db;
        let mut names = db.tree_names();
        names.sort();
        let mut counts = Counts::default();
        for name in names {
            let tree = db.open_tree(&name).map_err(|e| self.sled_err(e))?;
            let is_messages = matches!(&name[..], b"outbound" | b"inbox");
            for item in tree.iter() {
                let (key, value) = item.map_err(|e| self.sled_err(e))?;
                out.record(&name, &key, &value).map_err(io(&file))?;
                if !is_messages {
                    continue;
                }
                if &name[..] == b"outbound" {
                    counts.outbound += 1;
                } else {
                    counts.inbox += 1;
                }
                if let Some(body) = record_parcel(&value)
                    .and_then(|p| Stored::parse(p).ok())
                    .and_then(|p| p.file())
                {
                    let from = self.path.join(at_rest::BODIES).join(body);
                    link_or_copy(&from, &bodies.join(body)).map_err(|source| {
                        StoreError::BodyFile {
                            path: from.clone(),
                            source,
                        }
                    })?;
                    counts.body_files += 1;
                }
            }
        }
        let bytes = out.finish(counts).map_err(io(&file))?;
        if let Some(format) = read_optional(&self.path.join(FORMAT_FILE))? {
            let path = staging.join(FORMAT_FILE);
            write_private(&path, &format).map_err(io(&path))?;
        }
        let checkpoint = self
            .trees
            .checkpoints
            .last()
            .map_err(|e| self.sled_err(e))?
            .and_then(|(k, _)| <[u8; 8]>::try_from(&k[..]).ok())
            .map(u64::from_be_bytes);
        Ok(OpResult::Snapshot(Box::new(SnapshotInfo {
            entries: header.entries,
            root: header.root,
            checkpoint,
            outbound: counts.outbound,
            inbox: counts.inbox,
            body_files: counts.body_files,
            bytes,
            held: started.elapsed(),
        })))
    }
}

/// A file's bytes, or `None` if it does not exist.
pub(super) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::DataDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Hard-links `from` to `to`, or copies it where links are refused.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    copy_private(from, to).map(drop)
}

/// Creates `dir` (and its parents) private to this user (0700).
pub(super) fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut create = std::fs::DirBuilder::new();
    create.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut create, 0o700);
    create.create(dir)?;
    set_mode(dir, 0o700)
}

/// Sets a private mode (Unix; nothing elsewhere).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Copies the file `from` to the new file `to` (0600), synced; its size.
fn copy_private(from: &Path, to: &Path) -> std::io::Result<u64> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(to)?;
    let mut src = std::fs::File::open(from)?;
    let n = std::io::copy(&mut src, &mut out)?;
    out.sync_all()?;
    set_mode(to, 0o600)?;
    Ok(n)
}

/// Writes a private file, synced.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Waits (bounded) until nothing holds the database lock in `dir`.
pub(super) fn await_closed(dir: &Path) -> Result<(), StoreError> {
    let db = dir.join("db");
    let io = |source| StoreError::DataDir {
        path: db.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&db)
        .map_err(io)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return file.unlock().map_err(io),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < CLOSE_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the snapshot's database did not close",
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

/// How long [`await_closed`] waits.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Refuses `out` unless it does not exist or is an empty directory.
pub fn ensure_empty(out: &Path) -> Result<(), StoreError> {
    let not_empty = |what: &str| StoreError::DataDir {
        path: out.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, what.to_owned()),
    };
    match std::fs::read_dir(out) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(not_empty(
                "not empty: give a new or empty directory (nothing is overwritten)",
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(not_empty("exists and is not a directory"))
        }
        Err(source) => Err(StoreError::DataDir {
            path: out.to_owned(),
            source,
        }),
    }
}

/// Copies the snapshot (or data directory) `from` into `out`, a new or
/// empty directory: directories 0700, regular files 0600 and synced;
/// anything else (a socket, a link) is left out. Returns the bytes copied.
pub fn copy_snapshot(from: &Path, out: &Path) -> Result<u64, StoreError> {
    ensure_empty(out)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::DataDir { path, source }
    };
    let mut bytes = 0;
    let mut pending = vec![(from.to_owned(), out.to_owned())];
    while let Some((src, dst)) = pending.pop() {
        private_dir(&dst).map_err(io(&dst))?;
        for entry in std::fs::read_dir(&src).map_err(io(&src))? {
            let entry = entry.map_err(io(&src))?;
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            let to = dst.join(entry.file_name());
            if kind.is_dir() {
                pending.push((entry.path(), to));
            } else if kind.is_file() {
                bytes += copy_private(&entry.path(), &to).map_err(io(&to))?;
            }
        }
        std::fs::File::open(&dst)
            .and_then(|d| d.sync_all())
            .map_err(io(&dst))?;
    }
    Ok(bytes)
}

/// The bytes of the regular files under `dir`.
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
