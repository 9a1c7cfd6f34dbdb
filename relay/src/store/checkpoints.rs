//! Checkpoints: this relay's signed checkpoints of its log (with the
//! cosignatures peers add), the `last-checkpoint.note` marker beside the
//! database that repeats the newest one, and the peer checkpoints this
//! relay cosigned (`witnessed`).
//!
//! Each checkpoint is written with the log's Merkle frontier at its size
//! (`frontiers`), in the same transaction; the open resumes from the
//! newest one (`replay`).
//!
//! The newest checkpoint is written to [`MARKER`] after the batch that
//! signed it is on disk; at open, a log shorter than it or with another
//! root at its size is refused, so a database damaged, replaced or rolled
//! back as a whole is noticed.

use std::path::Path;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::checkpoint::{Checkpoint, NoteSignature, SignedCheckpoint};
use kurir_proto::ed25519_dalek::SigningKey;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::keys::checkpoint_key;
use super::log::entries_from;
use super::records::encode;
use super::replay::encode_frontier;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError};
use crate::core::cosign::merge;
use crate::core::pacing::{Cover, worth_a_checkpoint};
use crate::core::witness::Witnessed;
use kurir_proto::AuthorityId;

/// The file beside the database that repeats the newest checkpoint.
pub(super) const MARKER: &str = "last-checkpoint.note";

impl Store {
    /// Signs a checkpoint of the log with `key` under `origin` if the log
    /// grew since the last one by entries `cover` counts; returns the
    /// signed note when one was made.
    pub async fn checkpoint(
        &self,
        origin: String,
        key: SigningKey,
        cover: Cover,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self
            .submit_op(Op::Checkpoint(origin, key, cover), vec![])
            .await?
        {
            OpResult::Checkpoint(note) => Ok(note),
            _ => Err(StoreError::Closed),
        }
    }

    /// Adds a peer's verified cosignature line to the stored checkpoint of
    /// `size`, replacing any line in its name; refused, and nothing
    /// changed, when the note would outgrow the limits of a note
    /// ([`crate::core::cosign::merge`]).
    pub async fn add_cosignature(&self, size: u64, line: NoteSignature) -> Result<(), StoreError> {
        self.submit_op(Op::AddCosignature(size, line), vec![])
            .await
            .map(drop)
    }

    /// The newest stored checkpoint (signed note), if any.
    pub fn last_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .checkpoint_tree()
            .last()
            .map_err(|e| self.sled(e))?
            .map(|(_, v)| v.to_vec()))
    }

    /// Every stored checkpoint (signed notes), oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.checkpoint_tree()
            .iter()
            .map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| self.sled(e)))
            .collect()
    }

    /// Records the peer checkpoint this relay just cosigned, with its audit entry.
    pub async fn set_witnessed(
        &self,
        peer: &AuthorityId,
        w: Witnessed,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Witnessed(peer.clone(), w), audit)
            .await
            .map(drop)
    }

    /// The last checkpoint of `peer` this relay cosigned.
    pub fn witnessed(&self, peer: &AuthorityId) -> Result<Option<Witnessed>, StoreError> {
        self.get(
            self.tree(TreeId::Witnessed)?,
            "witnessed",
            peer.as_str().as_bytes(),
        )
    }
}

impl Writer {
    /// [`Op::Checkpoint`]: signs a checkpoint of what is committed, unless
    /// the log is empty, the newest checkpoint has its size, or (with
    /// [`Cover::RealActivity`]) the entries after it are only echoes of
    /// cosigning ([`worth_a_checkpoint`]); written at once (the caller
    /// committed the group before it), and to the marker after the flush.
    pub(super) fn checkpoint(
        &mut self,
        origin: &str,
        key: &SigningKey,
        cover: Cover,
    ) -> Result<OpResult, StoreError> {
        let size = self.range.size();
        let last = self
            .trees
            .checkpoints
            .last()
            .map_err(|e| self.sled_err(e))?
            .and_then(|(k, _)| <[u8; 8]>::try_from(k.as_ref()).ok())
            .map(u64::from_be_bytes);
        if size == 0 || last == Some(size) {
            return Ok(OpResult::Checkpoint(None));
        }
        if cover == Cover::RealActivity && !self.worth_it(last)? {
            return Ok(OpResult::Checkpoint(None));
        }
        let checkpoint = Checkpoint::new(origin, size, self.range.root())
            .map_err(|e| self.corrupt("checkpoints", e.to_string()))?;
        let signed = SignedCheckpoint::sign(checkpoint, origin, key)
            .map_err(|e| self.corrupt("checkpoints", e.to_string()))?;
        let note = signed.note().to_string().into_bytes();
        // The checkpoint and the log's frontier at its size, in one
        // transaction: the next open resumes from it.
        let frontier = encode_frontier(&self.range);
        let key = checkpoint_key(size);
        (&self.trees.checkpoints, &self.trees.frontiers)
            .transaction(|(checkpoints, frontiers)| {
                checkpoints.insert(&key[..], note.as_slice())?;
                frontiers.insert(&key[..], frontier.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => self.sled_err(e),
                TransactionError::Abort(()) => {
                    self.corrupt("checkpoints", "the checkpoint was not written".into())
                }
            })?;
        self.marker = Some(note.clone());
        Ok(OpResult::Checkpoint(Some(note)))
    }

    /// Whether the entries after the checkpoint of size `last` (all of them
    /// with none) are worth a checkpoint ([`worth_a_checkpoint`]). The
    /// entries are read and decoded only until that is known: with real
    /// activity, the first one after the checkpoint answers it.
    fn worth_it(&self, last: Option<u64>) -> Result<bool, StoreError> {
        let mut failed = None;
        let events = entries_from(&self.trees.log, last.unwrap_or(0)).map_while(|item| {
            let decoded = item
                .map_err(|e| e.in_store(&self.path))
                .and_then(|(_, bytes)| {
                    Entry::decode(&bytes)
                        .map(|e| e.event)
                        .map_err(|e| self.corrupt("log", format!("an entry does not decode: {e}")))
                });
            decoded.map_err(|e| failed = Some(e)).ok()
        });
        let worth = worth_a_checkpoint(events);
        match failed {
            Some(e) => Err(e),
            None => Ok(worth),
        }
    }

    /// [`Op::AddCosignature`]: adds `line` to the stored checkpoint of
    /// `size` ([`merge`]); written at once.
    pub(super) fn add_cosignature(
        &self,
        size: u64,
        line: &NoteSignature,
    ) -> Result<OpResult, StoreError> {
        let key = checkpoint_key(size);
        let Some(stored) = self
            .trees
            .checkpoints
            .get(key)
            .map_err(|e| self.sled_err(e))?
        else {
            return Err(self.corrupt("checkpoints", format!("no checkpoint of size {size}")));
        };
        let merged = merge(&stored, line).map_err(|reason| StoreError::Cosignature {
            path: self.path.clone(),
            size,
            name: line.name().to_owned(),
            reason: Box::new(reason),
        })?;
        self.trees
            .checkpoints
            .insert(key, merged)
            .map_err(|e| self.sled_err(e))?;
        Ok(OpResult::Done)
    }

    /// [`Op::Witnessed`]: the peer checkpoint this relay cosigned.
    pub(super) fn set_witnessed(
        &self,
        peer: &AuthorityId,
        w: &Witnessed,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let value = encode(w).map_err(|r| self.corrupt("witnessed", r))?;
        let key = peer.as_str().as_bytes().to_vec();
        pending.put(TreeId::Witnessed, key, value);
        self.append(audit, pending);
        Ok(OpResult::Done)
    }

    /// Records the newest checkpoint in a file beside the database (written
    /// to a temporary file, synced, renamed, directory synced), only after
    /// the database holds everything it covers.
    pub(super) fn write_marker(&self, note: &[u8]) -> Result<(), StoreError> {
        let path = self.path.join(MARKER);
        let tmp = self.path.join(format!("{MARKER}.tmp"));
        let err = |source| StoreError::Sync {
            path: path.clone(),
            source,
        };
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(note).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)?;
        std::fs::File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}

/// The size and root of the checkpoint in the marker beside the database
/// in `dir`, if there is one.
pub(super) fn read_marker(dir: &Path) -> Result<Option<(u64, Digest)>, StoreError> {
    match std::fs::read(dir.join(MARKER)) {
        Ok(bytes) => {
            let signed = SignedCheckpoint::parse(&bytes).map_err(|e| StoreError::Corrupt {
                path: dir.to_owned(),
                tree: "log",
                reason: format!("{} does not parse: {e}", dir.join(MARKER).display()),
            })?;
            Ok(Some((
                signed.checkpoint().size(),
                *signed.checkpoint().root(),
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Sync {
            path: dir.join(MARKER),
            source: e,
        }),
    }
}

/// Refuses a log of `size` entries that falls short of the marker's
/// checkpoint (`(size, root)`), or whose root at that size (`found`) is
/// another.
pub(super) fn check_marker(
    dir: &Path,
    (marked, root): (u64, Digest),
    found: Option<Digest>,
    size: u64,
) -> Result<(), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: dir.to_owned(),
        tree: "log",
        reason,
    };
    match found {
        None => Err(corrupt(format!(
            "the database holds {size} audit entries but the last checkpoint recorded \
             beside it ({}) covers {marked}: the database was damaged, replaced or \
             rolled back. Do not run on it: restore it from a backup no older than \
             that checkpoint, or have an auditor examine it",
            dir.join(MARKER).display()
        ))),
        Some(found) if found != root => Err(corrupt(format!(
            "the audit log in the database differs from the last checkpoint recorded \
             beside it ({}) at size {marked}: the database was damaged or replaced. Do \
             not run on it; have an auditor examine it",
            dir.join(MARKER).display()
        ))),
        Some(_) => Ok(()),
    }
}
