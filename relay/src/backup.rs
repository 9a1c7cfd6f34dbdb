//! `kurir-relay backup` and `kurir-relay restore`, and the admin channel a
//! running relay answers a backup on.
//!
//! # The admin channel
//!
//! A running relay listens on the Unix domain socket [`ADMIN_SOCKET`] in
//! its data directory: created at start (a stale one, left by a relay that
//! did not stop cleanly, is replaced: the store's lock says no other relay
//! runs there), mode 0600 inside the 0700 data directory, removed at stop.
//! Only the relay's own user (and root) can reach it: the file modes
//! refuse everyone else, and the relay also checks the caller's user id
//! (`SO_PEERCRED`) and closes any other. Peers and officers only ever
//! reach the relay over QUIC with mutual TLS; nothing they can send opens
//! or names this socket.
//!
//! The protocol is lines of UTF-8 text, one request at a time:
//!
//! | caller sends | relay answers |
//! |---|---|
//! | `snapshot` | `ok entries=N root=HEX checkpoint=N\|- outbound=N inbox=N bodies=N bytes=N held_us=N`, once the snapshot (the backup file `store.snapshot`, the body files, `store-format`) is staged in `DATA/backup-staging` ([`crate::store::Store::snapshot`]); or `error TEXT` |
//! | `done` | `ok`, once the staged snapshot is removed |
//!
//! The caller copies the staged snapshot between the two; if it closes
//! the connection instead of sending `done`, the relay removes the staged
//! snapshot all the same. Anything else is answered `error TEXT`.
//!
//! # Backup ([`backup`])
//!
//! With a relay answering on the socket, the snapshot is the running
//! relay's; with none (no socket, or nobody listening on it), the command
//! opens the store itself (refused if a relay holds it) and takes the
//! snapshot the same way, through the store's writer. Either way the
//! staged snapshot is copied to the output directory (new or empty; never
//! overwritten), and the copy is checked from its backup file, streaming
//! ([`crate::store::verify_snapshot`]: checksum and counts, the audit log
//! chained and its root recomputed, the newest checkpoint, the body files
//! named), and its log size, root, newest checkpoint and message counts
//! compared with what the writer saw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kurir_proto::Digest;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::store::{
    Durability, SnapshotCheck, SnapshotInfo, Store, StoreError, copy_snapshot, ensure_empty,
    verify_snapshot,
};

/// The admin socket's file name in the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// The admin socket of the relay whose data directory is `data_dir`.
pub fn admin_socket(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_SOCKET)
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The store (the relay's, or the copy) refused or failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The running relay refused or failed the snapshot.
    #[error("the relay refused the snapshot: {0}")]
    Refused(String),
    /// The admin socket failed mid-way.
    #[error("the admin socket {path}: {source}")]
    Channel {
        /// The socket.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The relay answered something this command does not understand.
    #[error("the relay's answer on {path} is not understood: {line:?}")]
    Answer {
        /// The socket.
        path: PathBuf,
        /// The line.
        line: String,
    },
    /// The copy does not hold what the snapshot held.
    #[error("the copy in {out} does not match the snapshot: {what}; do not use it")]
    Mismatch {
        /// The output directory.
        out: PathBuf,
        /// What differs.
        what: String,
    },
}

/// What [`backup`] wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// Whether a running relay took the snapshot (else the command did, on
    /// a stopped relay's store).
    pub online: bool,
    /// What the writer saw.
    pub snapshot: SnapshotInfo,
    /// What the checked copy holds.
    pub check: SnapshotCheck,
}

/// The `ok …` line answering `snapshot`.
pub fn info_line(info: &SnapshotInfo) -> String {
    format!(
        "ok entries={} root={} checkpoint={} outbound={} inbox={} bodies={} bytes={} held_us={}",
        info.entries,
        info.root,
        info.checkpoint.map_or("-".into(), |c| c.to_string()),
        info.outbound,
        info.inbox,
        info.body_files,
        info.bytes,
        info.held.as_micros()
    )
}

/// Parses an `ok …` line ([`info_line`]).
pub fn parse_info(line: &str) -> Option<SnapshotInfo> {
    let mut fields = std::collections::BTreeMap::new();
    let mut words = line.split_whitespace();
    if words.next() != Some("ok") {
        return None;
    }
    for word in words {
        let (k, v) = word.split_once('=')?;
        fields.insert(k, v);
    }
    let num = |k: &str| fields.get(k)?.parse::<u64>().ok();
    let root = hex::decode(fields.get("root")?).ok()?;
    let checkpoint = match *fields.get("checkpoint")? {
        "-" => None,
        n => Some(n.parse().ok()?),
    };
    Some(SnapshotInfo {
        entries: num("entries")?,
        root: Digest::from_slice(&root)?,
        checkpoint,
        outbound: num("outbound")?,
        inbox: num("inbox")?,
        body_files: num("bodies")?,
        bytes: num("bytes")?,
        held: Duration::from_micros(num("held_us")?),
    })
}

/// Writes a checked snapshot of the relay whose data directory is
/// `data_dir` to `out` (see the module docs).
pub async fn backup(data_dir: &Path, out: &Path) -> Result<BackupReport, BackupError> {
    ensure_empty(out)?;
    let socket = admin_socket(data_dir);
    let (online, snapshot) = match tokio::net::UnixStream::connect(&socket).await {
        Ok(stream) => (true, online(stream, &socket, data_dir, out).await?),
        Err(e) => {
            if socket.exists() {
                tracing::info!(socket = %socket.display(), error = %e,
                    "no relay answers on the admin socket; taking the snapshot from the store");
            }
            (false, offline(data_dir, out).await?)
        }
    };
    let dir = out.to_owned();
    let check = tokio::task::spawn_blocking(move || verify_snapshot(&dir))
        .await
        .map_err(|_| StoreError::Closed)??;
    let differs = [
        ("log entries", snapshot.entries, check.entries),
        ("sent messages", snapshot.outbound, check.outbound),
        ("received messages", snapshot.inbox, check.inbox),
        ("body files", snapshot.body_files, check.body_files),
    ]
    .into_iter()
    .find(|(_, a, b)| a != b);
    if let Some((what, a, b)) = differs {
        return Err(BackupError::Mismatch {
            out: out.to_owned(),
            what: format!("{what}: {a} in the snapshot, {b} in the copy"),
        });
    }
    if snapshot.root != check.root || snapshot.checkpoint != check.newest_checkpoint {
        return Err(BackupError::Mismatch {
            out: out.to_owned(),
            what: format!(
                "log root {} / checkpoint {:?} in the snapshot, {} / {:?} in the copy",
                snapshot.root, snapshot.checkpoint, check.root, check.newest_checkpoint
            ),
        });
    }
    Ok(BackupReport {
        online,
        snapshot,
        check,
    })
}

/// Asks the running relay on `stream` for a snapshot, copies it to `out`
/// and tells the relay it is done.
async fn online(
    stream: tokio::net::UnixStream,
    socket: &Path,
    data_dir: &Path,
    out: &Path,
) -> Result<SnapshotInfo, BackupError> {
    let channel = |source| BackupError::Channel {
        path: socket.to_owned(),
        source,
    };
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"snapshot\n").await.map_err(channel)?;
    let line = lines
        .next_line()
        .await
        .map_err(channel)?
        .unwrap_or_default();
    if let Some(why) = line.strip_prefix("error ") {
        return Err(BackupError::Refused(why.to_owned()));
    }
    let info = parse_info(&line).ok_or_else(|| BackupError::Answer {
        path: socket.to_owned(),
        line: line.clone(),
    })?;
    let (staged, dir) = (data_dir.join(crate::store::STAGING), out.to_owned());
    tokio::task::spawn_blocking(move || copy_snapshot(&staged, &dir))
        .await
        .map_err(|_| StoreError::Closed)??;
    write.write_all(b"done\n").await.map_err(channel)?;
    let line = lines
        .next_line()
        .await
        .map_err(channel)?
        .unwrap_or_default();
    if line != "ok" {
        tracing::warn!(socket = %socket.display(), answer = %line,
            "the relay did not confirm removing the staged snapshot");
    }
    Ok(info)
}

/// Opens the stopped relay's store, takes the snapshot, copies it to `out`.
async fn offline(data_dir: &Path, out: &Path) -> Result<SnapshotInfo, BackupError> {
    if !data_dir.join("db").is_file() {
        return Err(StoreError::DataDir {
            path: data_dir.join("db"),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no relay database here: give the relay's configuration ([storage] data_dir)",
            ),
        }
        .into());
    }
    let store = Store::open(data_dir, Durability::PowerLoss)?;
    let taken = store.snapshot().await;
    let copied = match &taken {
        Ok(_) => {
            let (staged, dir) = (store.snapshot_dir(), out.to_owned());
            tokio::task::spawn_blocking(move || copy_snapshot(&staged, &dir))
                .await
                .map_err(|_| StoreError::Closed)
                .and_then(|r| r)
        }
        Err(_) => Ok(0),
    };
    store.drop_snapshot();
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .map_err(|_| StoreError::Closed)??;
    copied?;
    Ok(taken?)
}
