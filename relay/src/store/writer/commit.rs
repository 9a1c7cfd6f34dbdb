//! Group commit: a batch's operations gather their writes in [`Pending`]
//! (where later operations of the group read them); the group's record is
//! written to the commit journal and synced, then its writes go to sled
//! (or, while the journal cannot take it, to sled in one transaction with
//! a full flush: `journal` says when), all before any caller is answered;
//! except a small group the journal holds (at most [`ANSWER_FIRST`]
//! operations, nothing queued behind it), which is kept as [`Deferred`] and
//! applied right after its answers, while readers of its trees wait (see
//! `shown`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use kurir_proto::Digest;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Answered, Job, Op, Writer};
use crate::store::journal::{SEQ_KEY, Write};
use crate::store::keys::Row;
use crate::store::log::LogRows;
use crate::store::trees::TreeId;
use crate::store::{Durability, InboxRecord, ReceiptDraft, Status, StoreError};

/// The largest group (in operations) that is answered before its writes
/// are applied to sled, once its journal record is synced. With one
/// message in flight each of its commits is a group of one or two
/// operations, and the apply (tens of µs) no longer delays the answer;
/// larger groups, from many callers at once, are applied before their
/// answers, which keeps their callers' next reads from waiting on the apply
/// (and so is a small group with other work queued behind it: `run`).
pub(in crate::store) const ANSWER_FIRST: usize = 2;

/// A group the journal holds, answered before its writes are applied to
/// sled: the writer applies it right after the answers
/// ([`Writer::apply_deferred`]), and before anything else reads or writes
/// sled.
pub(in crate::store) struct Deferred {
    /// The group's number in the journal.
    seq: u64,
    /// Its writes and audit rows.
    pending: Pending,
    /// The `log_nodes` rows of the subtrees its entries complete.
    nodes: Vec<([u8; 9], Digest)>,
}

impl Deferred {
    /// The trees the group writes, as a mask of [`TreeId::bit`]: those of
    /// its writes, `log` and `log_nodes` for its audit rows, and `meta`,
    /// where every group writes its number.
    pub(in crate::store) fn trees(&self) -> u32 {
        let mut mask = TreeId::Meta.bit();
        for (tree, _, _) in &self.pending.writes {
            mask |= tree.bit();
        }
        if !self.pending.log_rows.is_empty() {
            mask |= TreeId::Log.bit();
        }
        if !self.nodes.is_empty() {
            mask |= TreeId::LogNodes.bit();
        }
        mask
    }
}

/// The writes of a group's operations, not yet committed.
#[derive(Default)]
pub(in crate::store) struct Pending {
    writes: Vec<(TreeId, sled::IVec, Option<sled::IVec>)>,
    /// The newest pending value of each key, for reads later in the group.
    overlay: HashMap<(TreeId, Vec<u8>), Option<sled::IVec>>,
    /// The audit entries of the group, in order.
    log: LogRows,
    /// Their `log` rows, made at the commit ([`LogRows::rows`]).
    log_rows: Vec<Row>,
    /// The operations (positions in the group) that fail if the commit does.
    owners: Vec<usize>,
    /// New received messages whose receipts are signed at the commit, and
    /// where each is in `unsigned` by message id.
    unsigned: Vec<Unsigned>,
    unsigned_at: HashMap<Vec<u8>, usize>,
}

/// A received message of the group whose receipt is not signed yet.
pub(in crate::store) struct Unsigned {
    /// The record as accepted (without its receipt).
    pub(in crate::store) record: InboxRecord,
    pub(in crate::store) draft: ReceiptDraft,
    /// The record's value as put in the group (without the receipt): if
    /// the group leaves it so, `record` is written with its receipt.
    pub(in crate::store) written: Option<sled::IVec>,
    /// The answers (positions in the group) that carry the receipt: the
    /// operation that stored it, and duplicates later in the group.
    pub(in crate::store) answers: Vec<usize>,
}

impl Pending {
    /// Tests: the writes so far, in order: tree, key, and whether it is a
    /// put (or a removal).
    #[cfg(test)]
    pub(in crate::store) fn writes(&self) -> Vec<(TreeId, Vec<u8>, bool)> {
        self.writes
            .iter()
            .map(|(t, k, v)| (*t, k.to_vec(), v.is_some()))
            .collect()
    }

    /// Writes `value` under `key` in `tree`.
    pub(in crate::store) fn put(&mut self, tree: TreeId, key: Vec<u8>, value: Vec<u8>) {
        let value = sled::IVec::from(value);
        self.writes
            .push((tree, sled::IVec::from(&key[..]), Some(value.clone())));
        self.overlay.insert((tree, key), Some(value));
    }

    /// Removes `key` from `tree`.
    pub(in crate::store) fn remove(&mut self, tree: TreeId, key: Vec<u8>) {
        self.writes.push((tree, sled::IVec::from(&key[..]), None));
        self.overlay.insert((tree, key), None);
    }

    /// Sets the values of keys of `tree` written earlier in the group,
    /// everywhere they were written.
    pub(in crate::store) fn replace(
        &mut self,
        tree: TreeId,
        mut values: HashMap<Vec<u8>, Vec<u8>>,
    ) {
        let values: HashMap<Vec<u8>, sled::IVec> = values
            .drain()
            .map(|(k, v)| (k, sled::IVec::from(v)))
            .collect();
        for (t, key, value) in &mut self.writes {
            if *t == tree
                && let Some(v) = values.get(key.as_ref())
            {
                *value = Some(v.clone());
            }
        }
        for (key, value) in values {
            self.overlay.insert((tree, key), Some(value));
        }
    }

    /// Keeps a new received message whose receipt is signed at the commit,
    /// for the operation being applied.
    pub(in crate::store) fn sign_later(
        &mut self,
        key: Vec<u8>,
        record: InboxRecord,
        draft: ReceiptDraft,
    ) {
        let written = self
            .overlay
            .get(&(TreeId::Inbox, key.clone()))
            .cloned()
            .flatten();
        self.unsigned_at.insert(key, self.unsigned.len());
        self.unsigned.push(Unsigned {
            record,
            draft,
            written,
            answers: self.owners.last().copied().into_iter().collect(),
        });
    }

    /// The record of a message received earlier in the group and not signed
    /// yet; the operation being applied gets its receipt too.
    pub(in crate::store) fn unsigned(&mut self, key: &[u8]) -> Option<InboxRecord> {
        let u = self.unsigned.get_mut(*self.unsigned_at.get(key)?)?;
        u.answers.extend(self.owners.last().copied());
        Some(u.record.clone())
    }

    /// The messages whose receipts are still to be signed.
    pub(in crate::store) fn take_unsigned(&mut self) -> Vec<Unsigned> {
        self.unsigned_at.clear();
        std::mem::take(&mut self.unsigned)
    }

    /// How many audit entries the group holds so far, and the newest's
    /// leaf hash: where the next entries are numbered and linked from.
    pub(in crate::store) fn log_tail(&self) -> (usize, Option<Digest>) {
        (self.log.leaves.len(), self.log.leaves.last().copied())
    }

    /// Appends audit rows after those of the group so far.
    pub(in crate::store) fn log(&mut self, rows: LogRows) {
        self.log.entries.extend(rows.entries);
        self.log.leaves.extend(rows.leaves);
    }
}

impl Writer {
    /// Applies a group of operations: their writes go to sled in as few
    /// transactions as the group allows (one, unless it holds a checkpoint),
    /// each operation still checked on its own, so one that fails its checks
    /// fails alone. Nothing is answered here: the caller syncs first. The
    /// last group may be left unapplied, for `run` to apply after its
    /// answers ([`Deferred`]).
    ///
    /// Below the free-space reserve (`low`), new work is answered without
    /// being applied (see [`Writer::refuse_new`]). Returns the answers and
    /// whether anything was applied (and so needs a flush).
    pub(in crate::store) fn apply_batch(
        &mut self,
        batch: Vec<Job>,
        low: Option<&StoreError>,
    ) -> (Vec<Answered>, bool) {
        let mut answers = Vec::with_capacity(batch.len());
        let mut pending = Pending::default();
        let mut wrote = false;
        // The operations read sled (below the reserve too): a group
        // answered before its apply goes first. A failure breaks the
        // writer, and every operation below is refused.
        let _ = self.apply_deferred();
        // The submissions' parcels, signed together (below the reserve
        // they are refused unsigned).
        let batch = match (low, &self.broken) {
            (None, None) => self.sign_submissions(batch, &mut answers),
            _ => batch,
        };
        for job in batch {
            if let Some(broken) = &self.broken {
                answers.push((job.done, Err(broken.clone_for_caller(&self.path))));
                continue;
            }
            if let Some(refused) = low.and_then(|e| self.refuse_new(&job.op, e)) {
                answers.push((job.done, refused));
                continue;
            }
            wrote = true;
            let result = if matches!(job.op, Op::Checkpoint(..) | Op::AddCosignature(..)) {
                // These read what is committed: commit what is pending first.
                // They write to sled on their own, outside the journal.
                self.full_flush = true;
                self.commit(&mut pending, &mut answers);
                if let Some(broken) = &self.broken {
                    // Not over a group sled holds only part of.
                    answers.push((job.done, Err(broken.clone_for_caller(&self.path))));
                    continue;
                }
                self.apply(job.op, job.audit, &mut pending)
            } else {
                pending.owners.push(answers.len());
                self.apply(job.op, job.audit, &mut pending)
            };
            answers.push((job.done, result));
        }
        self.commit(&mut pending, &mut answers);
        (answers, wrote)
    }

    /// Writes what the operations since the last commit prepared. If it
    /// fails, every one of them fails (reads in the group may have seen
    /// their writes).
    ///
    /// The receipts of the new received messages are signed first, one
    /// signature per key for the transaction (see `inbox`). Then the writes
    /// go to the journal first, synced, and to sled after (see `journal`);
    /// while the journal cannot take them, to sled in one transaction,
    /// and the batch takes a full flush. A group of at most
    /// [`ANSWER_FIRST`] operations that the journal took, in a batch
    /// without a full flush, is durable once its record is synced: it is
    /// kept as [`Deferred`] and applied after its answers (see `run`).
    fn commit(&mut self, pending: &mut Pending, answers: &mut [Answered]) {
        let mut p = std::mem::take(pending);
        // Groups reach sled in their order, and a checkpoint after them
        // (none is deferred here in practice: `run` applies one right
        // after its answers, and `apply_batch` before its operations).
        if let Err(e) = self.apply_deferred() {
            return self.fail(&e, &p.owners, answers);
        }
        if p.writes.is_empty() && p.log.leaves.is_empty() {
            return;
        }
        if let Err(e) = self.seal_receipts(&mut p, answers) {
            return self.fail(&e, &p.owners, answers);
        }
        p.log_rows = p.log.rows(self.range.size());
        let (range, nodes) = self.grown(&p.log.leaves);
        let seq = self.journal.number();
        #[cfg(test)]
        if let n @ 1.. = self.status.journal_limit.load(Ordering::SeqCst) {
            self.journal.limit = n;
        }
        let journaled = if self.journal.wants_full() {
            Ok(false)
        } else {
            let durability = self.durability;
            let journal = &mut self.journal;
            timed(&self.status, || {
                journal.write(seq, rows(&p, &nodes), durability)
            })
        };
        let owners = std::mem::take(&mut p.owners);
        let last_leaf = p.log.leaves.last().copied();
        // Its rows, and the group's number.
        let row_count = rows(&p, &nodes).count() as u64 + 1;
        let written = match journaled {
            Ok(true) if owners.len() <= ANSWER_FIRST && !self.full_flush => {
                self.deferred = Some(Deferred {
                    seq,
                    pending: p,
                    nodes,
                });
                Ok(())
            }
            Ok(true) => self.apply_journaled(seq, &p, &nodes),
            Ok(false) => {
                self.full_flush = true;
                self.transact(seq, &p, &nodes)
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                self.status.commits.fetch_add(1, Ordering::Relaxed);
                self.status.rows.fetch_add(row_count, Ordering::Relaxed);
                self.range = range;
                if let Some(leaf) = last_leaf {
                    self.last_leaf = Some(leaf);
                }
            }
            Err(e) => self.fail(&e, &owners, answers),
        }
    }

    /// Applies the group answered before its apply, if there is one (see
    /// [`Deferred`]). Its journal record is synced, so a failure here
    /// breaks the writer as one in [`Writer::apply_journaled`] does: its
    /// callers were answered, and a restart completes the group from the
    /// journal.
    pub(in crate::store) fn apply_deferred(&mut self) -> Result<(), StoreError> {
        let Some(d) = self.deferred.take() else {
            return Ok(());
        };
        self.apply_journaled(d.seq, &d.pending, &d.nodes)
    }

    /// Answers the operations `owners` of a commit that failed with `e`.
    fn fail(&self, e: &StoreError, owners: &[usize], answers: &mut [Answered]) {
        for i in owners {
            if let Some((_, result)) = answers.get_mut(*i) {
                *result = Err(e.clone_for_caller(&self.path));
            }
        }
    }

    /// The writes of group `seq`, whose record the journal holds, in sled
    /// one by one (sled's transactions would write and sync its own log
    /// twice each), the group's number last. A crash part way through
    /// leaves a group the journal holds whole, which the next open
    /// completes. A failure of sled here breaks the writer: the journal
    /// keeps the record, and every later commit fails until a restart
    /// completes it.
    fn apply_journaled(
        &mut self,
        seq: u64,
        p: &Pending,
        nodes: &[([u8; 9], Digest)],
    ) -> Result<(), StoreError> {
        let trees = &*self.trees;
        let all = trees.all();
        let applied = (|| {
            // The operations' values are shared (`IVec`), not copied again.
            for (tree, key, value) in &p.writes {
                let t = all[*tree as usize];
                match value {
                    Some(v) => t.insert(key.clone(), v.clone())?,
                    None => t.remove(key)?,
                };
                #[cfg(test)]
                if self.status.fail_apply.load(Ordering::SeqCst) {
                    return Err(sled::Error::Unsupported(
                        "failure injected by a test".into(),
                    ));
                }
            }
            for (k, v) in &p.log_rows {
                trees.log.insert(k.as_slice(), v.as_slice())?;
            }
            for (k, hash) in nodes {
                trees.log_nodes.insert(&k[..], &hash.0[..])?;
            }
            trees.meta.insert(SEQ_KEY, &seq.to_be_bytes()[..])?;
            Ok::<(), sled::Error>(())
        })();
        applied.map_err(|source| {
            let e = StoreError::Corrupt {
                path: self.path.clone(),
                tree: "commit",
                reason: format!(
                    "the database failed while applying a commit the journal holds ({source}): \
                     commits are refused until the relay is restarted, which completes it"
                ),
            };
            tracing::error!(data_dir = %self.path.display(), error = %e, "store broken");
            self.broken = Some(e.clone_for_caller(&self.path));
            e
        })
    }

    /// The writes of group `seq` in one sled transaction, with its number
    /// (for a batch that takes a full flush).
    fn transact(
        &self,
        seq: u64,
        p: &Pending,
        nodes: &[([u8; 9], Digest)],
    ) -> Result<(), StoreError> {
        let seq = seq.to_be_bytes();
        let all = self.trees.all();
        all[..]
            .transaction(|view| {
                for (tree, key, value) in rows(p, nodes) {
                    let t = &view[usize::from(tree)];
                    match value {
                        Some(v) => t.insert(key, v)?,
                        None => t.remove(key)?,
                    };
                }
                view[TreeId::Meta as usize].insert(SEQ_KEY, &seq[..])?;
                Ok::<_, ConflictableTransactionError<String>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(reason) => StoreError::Corrupt {
                    path: self.path.clone(),
                    tree: "transaction",
                    reason,
                },
                TransactionError::Storage(source) => self.sled_err(source),
            })
    }

    /// A value as the group sees it: written earlier in the group, or stored.
    pub(in crate::store) fn read(
        &self,
        pending: &Pending,
        tree: TreeId,
        key: &[u8],
    ) -> Result<Option<sled::IVec>, StoreError> {
        if let Some(v) = pending.overlay.get(&(tree, key.to_vec())) {
            return Ok(v.clone());
        }
        self.trees.all()[tree as usize]
            .get(key)
            .map_err(|e| self.sled_err(e))
    }

    /// Makes the batch just applied durable: its journaled groups are
    /// already (each synced before sled saw it); a batch that holds writes
    /// outside the journal (a checkpoint, a cosignature, a group written
    /// while the journal could not take it) takes a full flush, which
    /// empties the journal (see `journal`).
    pub(in crate::store) fn make_durable(&mut self) -> Result<(), StoreError> {
        if !self.full_flush {
            return Ok(());
        }
        // The flush empties the journal: what it holds must be in sled.
        self.apply_deferred()?;
        self.sync()?;
        self.full_flush = false;
        self.reset_journal();
        Ok(())
    }

    /// Empties the journal after a full flush, unless the writer is broken
    /// (the journal then holds a group sled lacks part of).
    pub(in crate::store) fn reset_journal(&mut self) {
        if self.broken.is_none() {
            self.journal.reset();
        }
    }

    /// Flushes sled (and fsyncs), telling [`Store::health`] while it runs.
    ///
    /// [`Store::health`]: crate::store::Store::health
    pub(in crate::store) fn sync(&self) -> Result<(), StoreError> {
        timed(&self.status, || self.sync_now())
    }

    fn sync_now(&self) -> Result<(), StoreError> {
        self.trees.db.flush().map_err(|source| StoreError::Sled {
            path: self.path.clone(),
            source,
        })?;
        if self.durability == Durability::PowerLoss {
            std::fs::File::open(&self.db_file)
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Sync {
                    path: self.db_file.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Every write of a group, as the journal records them: the operations'
/// writes, the audit entries, the Merkle subtree hashes.
fn rows<'a>(
    p: &'a Pending,
    nodes: &'a [([u8; 9], Digest)],
) -> impl Iterator<Item = Write<'a>> + Clone {
    let writes = p
        .writes
        .iter()
        .map(|(t, k, v)| (*t as u8, &k[..], v.as_deref()));
    let log = p
        .log_rows
        .iter()
        .map(|(k, v)| (TreeId::Log as u8, &k[..], Some(&v[..])));
    let nodes = nodes
        .iter()
        .map(|(k, h)| (TreeId::LogNodes as u8, &k[..], Some(&h.0[..])));
    writes.chain(log).chain(nodes)
}

/// Runs `sync`, a wait on the disk, telling [`Store::health`] while it runs.
///
/// [`Store::health`]: crate::store::Store::health
fn timed<T>(s: &Status, sync: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    s.flush_started
        .store(s.since_epoch_ms().saturating_add(1), Ordering::SeqCst);
    let synced = sync();
    s.flush_started.store(0, Ordering::SeqCst);
    if synced.is_ok() {
        s.stalled.store(false, Ordering::SeqCst);
    }
    synced
}
