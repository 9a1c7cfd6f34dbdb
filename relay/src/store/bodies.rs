//! Message bodies, as the store handles them: sealing a parcel's body
//! before its record is committed (in the record, or in a body file when
//! large, if the free space holds it), opening it again, erasing it, and
//! removing the body files no record names. The at-rest format itself is
//! in `at_rest`.
//!
//! A stored parcel keeps its envelope in clear (signatures and audit proofs
//! never need the body) and its salt and body encrypted:
//! `[envelope: bstr, sealed: bstr / null]`, where `sealed` = 12-byte nonce ‖
//! ChaCha20-Poly1305 (RFC 8439, via ring) of the CBOR array `[salt, body]`,
//! with the envelope digest as associated data and a random key per message,
//! kept in the record beside it (in `body_keys` in stores of format 2 and
//! older, see `at_rest`). Erasing a body deletes its key and ciphertext in
//! one commit, with a `body_erased` audit entry; the envelope, receipts and
//! the log stay verifiable.

use std::path::Path;

use kurir_proto::MessageId;
use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use serde::Serialize;

use super::at_rest::{self, BodyKey, Stored, record_parcel};
use super::records::encode;
use super::trees::{TreeId, Trees};
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Durability, Erased, InboxRecord, OutboundRecord, Store, StoreError};

impl Store {
    /// Replaces a parcel in clear with its at-rest form (which holds its
    /// key); returns, for a large body, the body file it wrote (synced,
    /// with power-loss durability, before this returns: the record that
    /// names it is committed after).
    pub(super) async fn seal_body(
        &self,
        msg_id: MessageId,
        parcel: &mut Vec<u8>,
    ) -> Result<Option<String>, StoreError> {
        self.seal_body_keeping(msg_id, parcel)
            .await
            .map(|(file, _)| file)
    }

    /// [`Store::seal_body`], giving back the parcel in clear as well
    /// (moved, not copied).
    pub(super) async fn seal_body_keeping(
        &self,
        msg_id: MessageId,
        parcel: &mut Vec<u8>,
    ) -> Result<(Option<String>, Vec<u8>), StoreError> {
        let bad = |reason| StoreError::Corrupt {
            path: self.path.clone(),
            tree: "parcel",
            reason,
        };
        if parcel.len() < at_rest::FILE_MIN {
            let s = at_rest::seal(parcel).map_err(bad)?;
            let stored = at_rest::inline(&s.envelope, &s.sealed, &s.key);
            let clear = std::mem::replace(parcel, stored);
            return Ok((None, clear));
        }
        // A body file is written before the writer's free-space check: it
        // must leave the reserve, and what other body files being written
        // now will take, untouched.
        let _room = self.room_for(parcel.len() as u64)?;
        // Encrypting and writing megabytes is blocking work.
        let clear = std::mem::take(parcel);
        let (dir, path) = (self.bodies.clone(), self.path.clone());
        let sync = self.durability == Durability::PowerLoss;
        let (stored, name, clear) = tokio::task::spawn_blocking(move || {
            let s = at_rest::seal(&clear).map_err(|reason| StoreError::Corrupt {
                path,
                tree: "parcel",
                reason,
            })?;
            let name = at_rest::new_file_name(msg_id);
            at_rest::write_file(&dir, &name, &s.sealed, sync).map_err(|source| {
                StoreError::BodyFile {
                    path: dir.join(&name),
                    source,
                }
            })?;
            let stored = at_rest::in_file(&s.envelope, &name, &s.key);
            Ok::<_, StoreError>((stored, name, clear))
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        *parcel = stored;
        Ok((Some(name), clear))
    }

    /// Removes a body file no record names (its operation failed, or the
    /// message was a duplicate); a failure only leaves it for the next open.
    pub(super) fn forget_body_file(&self, name: Option<&str>) {
        if let Some(name) = name
            && let Err(e) = at_rest::remove_file(&self.bodies, name)
        {
            tracing::warn!(file = %self.bodies.join(name).display(), error = %e,
                "cannot remove an unused body file; it is removed at the next start");
        }
    }

    /// The parcel in clear of a stored record (`stored` is its `parcel`
    /// field), or `None` when its body was erased.
    pub fn parcel(&self, msg_id: MessageId, stored: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let bad = |reason| self.corrupt("parcel", reason);
        let parsed = Stored::parse(stored).map_err(bad)?;
        if let Stored::Erased { .. } = parsed {
            return Ok(None);
        }
        let key = match parsed.key() {
            Some(key) => *key,
            // A record of format 2 or older: its key has a row of its own,
            // and none when the body was erased.
            None => {
                let Some(row) = self
                    .tree(TreeId::BodyKeys)?
                    .get(msg_id.as_bytes())
                    .map_err(|e| self.sled(e))?
                else {
                    return Ok(None);
                };
                BodyKey::try_from(&row[..])
                    .map_err(|_| self.corrupt("body_keys", "a body key is not 32 bytes".into()))?
            }
        };
        let (envelope, sealed) = match parsed {
            Stored::Inline {
                envelope, sealed, ..
            } => (envelope, sealed.to_vec()),
            Stored::File { envelope, name, .. } => {
                let sealed = at_rest::read_file(&self.bodies, name).map_err(|source| {
                    StoreError::BodyFile {
                        path: self.bodies.join(name),
                        source,
                    }
                })?;
                (envelope, sealed)
            }
            Stored::Erased { .. } => return Ok(None),
        };
        at_rest::open(envelope, sealed, &key).map(Some).map_err(bad)
    }

    /// The signed envelope of a stored parcel (always kept).
    pub fn envelope(stored: &[u8]) -> Option<Vec<u8>> {
        Stored::parse(stored).ok().map(|s| s.envelope().to_vec())
    }

    /// Erases the body of a received (`inbox`) or sent message: deletes its
    /// key and ciphertext (the record's parcel reduced to its envelope, and
    /// the key's own row in a store of format 2 or older) and records
    /// `erased`, with `audit`, in one commit.
    pub async fn erase_body(
        &self,
        msg_id: MessageId,
        inbox: bool,
        erased: Erased,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        let tree = self.tree(if inbox {
            TreeId::Inbox
        } else {
            TreeId::Outbound
        })?;
        let stored = tree.get(msg_id.as_bytes()).map_err(|e| self.sled(e))?;
        let file = stored
            .as_deref()
            .and_then(record_parcel)
            .and_then(|p| Stored::parse(p).ok())
            .and_then(|p| p.file().map(str::to_owned));
        self.submit_op(Op::Erase(msg_id, inbox, erased), audit)
            .await?;
        // The record no longer names the file, and its key is gone.
        self.forget_body_file(file.as_deref());
        Ok(())
    }
}

impl Writer {
    /// [`Op::Erase`]: the record with its parcel reduced to the envelope
    /// (and the key it held) and `erased` set; a key of format 2 or older,
    /// in a row of its own, deleted.
    pub(super) fn erase_body(
        &self,
        msg_id: MessageId,
        inbox: bool,
        erased: Erased,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let key = msg_id.as_bytes().to_vec();
        let (tree, name) = if inbox {
            (TreeId::Inbox, "inbox")
        } else {
            (TreeId::Outbound, "outbound")
        };
        let Some(old) = self.read(pending, tree, &key)? else {
            return Err(self.corrupt(name, format!("no message {msg_id} to erase")));
        };
        let value = if inbox {
            erased_record::<InboxRecord>(&old, erased, |r| (&mut r.parcel, &mut r.erased))
        } else {
            erased_record::<OutboundRecord>(&old, erased, |r| (&mut r.parcel, &mut r.erased))
        }
        .map_err(|e| self.corrupt(name, e))?;
        let keyless = record_parcel(&old)
            .and_then(|p| Stored::parse(p).ok())
            .is_none_or(|p| p.key().is_none());
        pending.put(tree, key.clone(), value);
        if keyless {
            pending.remove(TreeId::BodyKeys, key);
        }
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}

/// A stored record (inbox or outbound) with its body erased: the parcel
/// reduced to its envelope and `erased` set.
fn erased_record<T: serde::de::DeserializeOwned + Serialize>(
    stored: &[u8],
    erased: Erased,
    fields: impl FnOnce(&mut T) -> (&mut Vec<u8>, &mut Option<Erased>),
) -> Result<Vec<u8>, String> {
    let mut record: T = cbor::from_slice(stored).map_err(|e| e.to_string())?;
    let (parcel, mark) = fields(&mut record);
    *parcel = erase_at_rest(parcel)?;
    *mark = Some(erased);
    encode(&record)
}

/// The stored form without its body.
fn erase_at_rest(stored: &[u8]) -> Result<Vec<u8>, String> {
    Ok(at_rest::erased(at_rest::Stored::parse(stored)?.envelope()))
}

/// Creates the body files' directory, and removes the body files no record
/// names: written for an operation that failed or a duplicate, or left by
/// an erasure, when the relay stopped before it could remove them.
pub(super) fn remove_orphan_bodies(
    dir: &Path,
    bodies: &Path,
    trees: &Trees,
) -> Result<(), StoreError> {
    let io = |source| StoreError::BodyFile {
        path: bodies.to_owned(),
        source,
    };
    let mut create = std::fs::DirBuilder::new();
    create.recursive(true);
    // Private to the relay's user, whatever the umask (see `private`).
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut create, 0o700);
    create.create(bodies).map_err(io)?;
    let (files, other) = at_rest::list_files(bodies).map_err(io)?;
    for path in other {
        tracing::warn!(path = %path.display(), "not a body file; left alone");
    }
    for name in files {
        let named = at_rest::file_msg_id(&name).is_some_and(|msg_id| {
            [&trees.inbox, &trees.outbound].iter().any(|tree| {
                tree.get(msg_id.as_bytes())
                    .ok()
                    .flatten()
                    .as_deref()
                    .and_then(record_parcel)
                    .and_then(|p| Stored::parse(p).ok())
                    .and_then(|p| p.file())
                    == Some(name.as_str())
            })
        });
        if !named {
            tracing::info!(data_dir = %dir.display(), file = %name,
                "removing a body file no record names");
            at_rest::remove_file(bodies, &name).map_err(io)?;
        }
    }
    Ok(())
}
