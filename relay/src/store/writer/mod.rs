//! The one thread that writes: it takes [`Job`]s from a channel, checks the
//! free space before each batch, commits the batch's group (`commit`: its
//! record synced to the commit journal, then its writes applied to sled;
//! or one sled transaction and a full flush, see `journal`), and only then
//! answers each caller.
//!
//! A small group (at most `ANSWER_FIRST` operations: one message in
//! flight) that the journal took, with no other job queued behind it, is
//! answered before its writes are applied: it is durable once its record is synced, and the apply, tens
//! of µs a write, then overlaps with the caller's next step instead of
//! delaying the answer. The writer marks the trees it writes unshown,
//! answers, applies it at once and shows them again; a read of those trees
//! waits meanwhile (see `shown`). Anything of the writer's that reads or
//! writes sled (the next batch, a checkpoint, a full flush, a snapshot,
//! the last flush) applies such a group first.
//!
//! [`Op`] is the message a [`Store`](super::Store) method sends; [`Writer::apply`]
//! hands each to its own function, which lives with its concern:
//!
//! | operation | function |
//! |-----------|----------|
//! | [`Op::Submit`], [`Op::Delivery`] | `Writer::submit`, `Writer::update_delivery` (`outbound`) |
//! | [`Op::SubmitUnsigned`] | `Writer::sign_submissions` (`outbound`), for the whole batch before it is applied: each becomes an [`Op::Submit`] |
//! | [`Op::Proofs`] | `Writer::store_proofs` (`receipts`) |
//! | [`Op::Inbound`], [`Op::MarkRead`], [`Op::Refusal`] | `Writer::accept_inbound`, `Writer::mark_read`, `Writer::record_refusal` (`inbox`) |
//! | [`Op::Erase`] | `Writer::erase_body` (`bodies`) |
//! | [`Op::Case`] | `Writer::put_case` (`cases`) |
//! | [`Op::Roster`] | `Writer::set_roster` (`rosters`) |
//! | [`Op::Audit`] | `Writer::audit` (`log`) |
//! | [`Op::Witnessed`], [`Op::AddCosignature`], [`Op::Checkpoint`] | `Writer::set_witnessed`, `Writer::add_cosignature`, `Writer::checkpoint` (`checkpoints`) |
//!
//! Each checks its operation and adds its writes to the group's
//! [`Pending`] writes; it writes nothing if it fails, so one operation
//! that fails its checks fails alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use kurir_proto::checkpoint::NoteSignature;
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::merkle::CompactRange;
use kurir_proto::{AuthorityId, MessageId};
use tokio::sync::oneshot;

use super::outbound::{DeliveryRow, SubmitRows, UnsignedSubmit};
use super::trees::Trees;
use super::{
    Accepted, Durability, Erased, FreeSpace, InboxRecord, ReadMark, ReceiptDraft, RefusalRecord,
    Status, StoreError,
};
use crate::core::deadline::Case;
use crate::core::pacing::Cover;
use crate::core::witness::Witnessed;

mod commit;

use super::backup::SnapshotInfo;
use super::journal::Journal;

pub(super) use commit::{Deferred, Pending};

/// How many operations one group commit takes at most.
const MAX_BATCH: usize = 512;

/// An operation for the writer.
pub(super) enum Op {
    /// A submission, encoded by the caller.
    Submit(Box<SubmitRows>),
    /// A submission whose parcel the writer signs with the others of its
    /// batch; it becomes an [`Op::Submit`] before the batch is applied
    /// (`Writer::sign_submissions`).
    SubmitUnsigned(Box<UnsignedSubmit>),
    /// A delivery's new state, encoded by the caller.
    Delivery(DeliveryRow),
    /// A received message (its body sealed, with its key, in the record).
    Inbound(InboxRecord, Option<Case>, Box<ReceiptDraft>),
    /// Erase the body of a received (`true`) or sent message.
    Erase(MessageId, bool, Erased),
    Case(Case),
    Refusal(RefusalRecord),
    MarkRead(MessageId, ReadMark),
    Roster(Vec<u8>, String),
    /// Only the audit entries.
    Audit,
    /// A peer's checkpoint this relay cosigned.
    Witnessed(AuthorityId, Witnessed),
    /// Add a peer's verified cosignature line to the checkpoint of `size`.
    AddCosignature(u64, NoteSignature),
    /// Sign a checkpoint under the origin with the key, if the log grew
    /// by what the [`Cover`] counts.
    Checkpoint(String, SigningKey, Cover),
    /// Inclusion proofs for held receipts: (delivery key, proof bytes).
    Proofs(Vec<(Vec<u8>, Vec<u8>)>),
    /// A snapshot of everything committed, staged in this directory
    /// (taken between two batches, see `backup`).
    Snapshot(PathBuf),
}

/// What an operation gives back.
pub(super) enum OpResult {
    Done,
    /// A submission the writer signed: its parcel in clear.
    Sealed(Vec<u8>),
    Accepted(Accepted),
    Read(Option<InboxRecord>),
    Checkpoint(Option<Vec<u8>>),
    Snapshot(Box<SnapshotInfo>),
}

/// An operation, its audit entries, and where its caller waits.
pub(super) struct Job {
    pub(super) op: Op,
    /// Audit entries to append in the same transaction (indices are set by
    /// the writer). For `Inbound` the first is the `received` entry the
    /// receipt names; for `MarkRead` they are appended only on the first mark.
    pub(super) audit: Vec<Entry>,
    pub(super) done: oneshot::Sender<Result<OpResult, StoreError>>,
}

/// Where a caller waits for its operation's result.
pub(super) type Answer = oneshot::Sender<Result<OpResult, StoreError>>;

/// An operation's result, and where its caller waits for it.
pub(super) type Answered = (Answer, Result<OpResult, StoreError>);

/// The one thread that writes.
pub(super) struct Writer {
    pub(super) path: PathBuf,
    pub(super) db_file: PathBuf,
    pub(super) durability: Durability,
    pub(super) trees: Arc<Trees>,
    /// The Merkle log's right edge, for appends and checkpoints.
    pub(super) range: CompactRange,
    /// The newest entry's leaf hash: the next entry's `prev`.
    pub(super) last_leaf: Option<Digest>,
    /// A checkpoint to record beside the database once its batch is on disk.
    pub(super) marker: Option<Vec<u8>>,
    pub(super) space: Arc<dyn FreeSpace>,
    pub(super) status: Arc<Status>,
    /// Where each batch's writes are made durable between full flushes.
    pub(super) journal: Journal,
    /// The batch holds writes outside the journal: it takes a full flush.
    pub(super) full_flush: bool,
    /// Set when sled failed while applying a group the journal holds:
    /// every later operation gets this error (see `commit`).
    pub(super) broken: Option<StoreError>,
    /// A group answered before its writes are applied to sled (see
    /// `commit`): applied right after its answers.
    pub(super) deferred: Option<Deferred>,
}

impl Writer {
    /// Commits batches until every sender is gone, then flushes once more.
    /// A snapshot is taken on its own, after the batch before it is on
    /// disk and before the next is applied. The callers of a batch are
    /// answered once it is durable ([`Writer::answer`]).
    pub(super) fn run(mut self, rx: mpsc::Receiver<Job>) -> Result<(), StoreError> {
        let mut held: Option<Job> = None;
        // Whether the last flush succeeded: a snapshot is taken only then.
        let mut on_disk = true;
        while let Some(first) = held.take().or_else(|| rx.recv().ok()) {
            if let Op::Snapshot(staging) = &first.op {
                // The snapshot reads sled (none is deferred here in
                // practice: one is applied right after its answers).
                let applied = self.apply_deferred();
                let answer = if let Err(e) = applied {
                    Err(e)
                } else if on_disk {
                    self.status.snapshotting.store(true, Ordering::SeqCst);
                    #[cfg(test)]
                    std::thread::sleep(std::time::Duration::from_millis(
                        self.status.snapshot_pause_ms.load(Ordering::SeqCst),
                    ));
                    let taken = self.snapshot(staging);
                    self.status.snapshotting.store(false, Ordering::SeqCst);
                    self.status.snapshots_done.fetch_add(1, Ordering::SeqCst);
                    taken
                } else {
                    Err(self.corrupt(
                        "snapshot",
                        "the last commit did not reach the disk: no snapshot until one does".into(),
                    ))
                };
                let _ = first.done.send(answer);
                continue;
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) if matches!(job.op, Op::Snapshot(_)) => {
                        held = Some(job);
                        break;
                    }
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let low = self.check_space();
            // Counted before sled shows the group's writes to readers.
            let group = self.status.applied.fetch_add(1, Ordering::SeqCst) + 1;
            let (answers, wrote) = self.apply_batch(batch, low.as_ref());
            let mut synced = Ok(());
            if wrote {
                crate::crashpoint::hit("store.before_flush");
                #[cfg(test)]
                while self.status.hold_flush.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                synced = self.make_durable();
                if synced.is_ok()
                    && let Some(note) = self.marker.take()
                {
                    synced = self.write_marker(&note);
                }
                crate::crashpoint::hit("store.after_flush");
                on_disk = synced.is_ok();
            }
            // A journal sync or a full flush makes everything applied so
            // far durable: after one that succeeded, every group up to this
            // one is on disk.
            if on_disk {
                self.status.durable.send_replace(group);
            }
            // Answering before the apply pays only while nothing else
            // waits (one message in flight): with work queued, the next
            // batch would apply the group before its operations anyway,
            // and readers of its trees would wait on that apply instead.
            if self.deferred.is_some() {
                if held.is_none() {
                    held = rx.try_recv().ok();
                }
                if held.is_some() {
                    // A failure breaks the writer, as in `answer`.
                    let _ = self.apply_deferred();
                }
            }
            self.answer(answers, &synced);
        }
        // What the journal holds is in sled before the last flush empties it.
        let applied = self.apply_deferred();
        self.sync()?;
        self.reset_journal();
        applied
    }

    /// Sends each caller its answer, or the error of the batch's sync.
    /// A group kept to apply after its answers ([`Deferred`]) has its
    /// trees unshown before the first answer goes, and is applied right
    /// after the last, then shown again (see `shown`).
    fn answer(&mut self, answers: Vec<Answered>, synced: &Result<(), StoreError>) {
        if let Some(d) = &self.deferred {
            self.status.hide(d.trees());
        }
        for (done, result) in answers {
            let answer = match (synced, result) {
                (Ok(()), r) => r,
                (Err(e), _) => Err(e.clone_for_caller(&self.path)),
            };
            // A caller that gave up waiting is no reason to stop.
            let _ = done.send(answer);
        }
        if self.deferred.is_none() {
            return;
        }
        #[cfg(test)]
        while self.status.hold_apply.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        crate::crashpoint::hit("store.before_apply");
        // A failure breaks the writer (`broken`): the callers were answered
        // from the journal, which keeps the group, and every later
        // operation is refused until a restart completes it.
        let _ = self.apply_deferred();
        self.status.show();
    }

    /// Below the reserve: the answer to new work (a parcel already stored
    /// still gets its original receipt); `None` for work that completes
    /// what was accepted, which goes ahead.
    fn refuse_new(&self, op: &Op, low: &StoreError) -> Option<Result<OpResult, StoreError>> {
        let refused = || match low {
            StoreError::LowSpace {
                path,
                free_mib,
                reserve_mib,
            } => StoreError::LowSpace {
                path: path.clone(),
                free_mib: *free_mib,
                reserve_mib: *reserve_mib,
            },
            other => other.clone_for_caller(&self.path),
        };
        match op {
            Op::Submit(..) | Op::SubmitUnsigned(..) | Op::Refusal(_) => Some(Err(refused())),
            Op::Inbound(record, ..) => {
                let found = match self.trees.inbox.get(record.msg_id.as_bytes()) {
                    Ok(found) => found,
                    Err(e) => return Some(Err(self.sled_err(e))),
                };
                Some(match found {
                    Some(old) => cbor::from_slice(&old)
                        .map(|old| OpResult::Accepted(Accepted::Duplicate(Box::new(old))))
                        .map_err(|e| StoreError::Corrupt {
                            path: self.path.clone(),
                            tree: "inbox",
                            reason: e.to_string(),
                        }),
                    None => Err(refused()),
                })
            }
            _ => None,
        }
    }

    /// Checks one operation and adds its writes to `pending`; writes nothing
    /// if it fails.
    fn apply(
        &mut self,
        op: Op,
        mut audit: Vec<Entry>,
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let audit = &mut audit[..];
        match op {
            Op::Submit(rows) => self.submit(*rows, audit, pending),
            // Signed before the batch is applied (`sign_submissions`).
            Op::SubmitUnsigned(_) => Err(self.corrupt(
                "outbound",
                "a submission reached the writer unsigned".into(),
            )),
            Op::Delivery(d) => self.update_delivery(d, audit, pending),
            Op::Inbound(record, case, draft) => {
                self.accept_inbound(record, case, *draft, audit, pending)
            }
            Op::Erase(msg_id, inbox, erased) => {
                self.erase_body(msg_id, inbox, erased, audit, pending)
            }
            Op::Case(case) => self.put_case(&case, audit, pending),
            Op::Refusal(r) => self.record_refusal(&r, audit, pending),
            Op::MarkRead(msg_id, mark) => self.mark_read(msg_id, mark, audit, pending),
            Op::Roster(bytes, authority) => self.set_roster(bytes, authority, audit, pending),
            Op::Audit => self.audit(audit, pending),
            Op::Witnessed(peer, w) => self.set_witnessed(&peer, &w, audit, pending),
            Op::AddCosignature(size, line) => self.add_cosignature(size, &line),
            Op::Checkpoint(origin, key, cover) => self.checkpoint(&origin, &key, cover),
            Op::Proofs(proofs) => self.store_proofs(proofs, pending),
            // Taken by `run` between batches, never inside one.
            Op::Snapshot(_) => {
                Err(self.corrupt("snapshot", "a snapshot cannot be part of a batch".into()))
            }
        }
    }

    pub(super) fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// A record in `tree` that does not encode, decode or check out.
    pub(super) fn corrupt(&self, tree: &'static str, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            tree,
            reason,
        }
    }
}
