//! Received messages: accepting a parcel once (concurrent duplicates get
//! the original receipt), the `inbox` records (listed in the order
//! received), read marks, and the parcels refused (`refusals`).

use std::collections::HashMap;
use std::sync::Arc;

use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{KeyId, MessageId, Receipt, seal_receipts};

use super::cases::case_row;
use super::keys::refusal_key;
use super::records::encode;
use super::trees::TreeId;
use super::writer::{Answered, Op, OpResult, Pending, Writer};
use super::{Accepted, InboxRecord, ReadMark, RefusalRecord, Store, StoreError};
use crate::core::deadline::Case;

/// The receipt for a received message, to be completed with its audit
/// entry's index and leaf hash and signed with `key` by the writer. The
/// receipts of one group commit are signed together (one signature per
/// key, `docs/PROTOCOL.md` §10.1).
#[derive(Clone)]
pub struct ReceiptDraft {
    /// Everything but `log_index` and `leaf_hash`, which the writer sets.
    pub receipt: Receipt,
    /// The key valid at the receipt's `received_at`.
    pub key: Arc<SigningKey>,
}

impl std::fmt::Debug for ReceiptDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptDraft")
            .field("receipt", &self.receipt)
            .field("key", &KeyId::of(&self.key.verifying_key()))
            .finish()
    }
}

impl Store {
    /// Stores a received message unless its id is already there; durable
    /// when it returns. Exactly one of several concurrent calls with the same
    /// id gets [`Accepted::New`].
    ///
    /// When the message is new, the store appends `received` to the audit
    /// log, completes the `receipt` draft with that entry's index and leaf
    /// hash and signs it, together with the other receipts of the same
    /// group commit (the receipt is kept in the record, and sent again on
    /// duplicates), and stores record, entry and `case` in one commit.
    pub async fn accept_inbound(
        &self,
        record: InboxRecord,
        case: Option<Case>,
        received: Entry,
        receipt: ReceiptDraft,
    ) -> Result<Accepted, StoreError> {
        let mut record = record;
        let file = match self.seal_body(record.msg_id, &mut record.parcel).await {
            Ok(sealed) => sealed,
            // No room for a new body: a message stored before still gets
            // its original receipt.
            Err(e) if e.is_low_space() => match self.inbox(record.msg_id)? {
                Some(old) => return Ok(Accepted::Duplicate(Box::new(old))),
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let result = self
            .submit_op(Op::Inbound(record, case, Box::new(receipt)), vec![received])
            .await;
        match result {
            Ok(OpResult::Accepted(a @ Accepted::New(_))) => Ok(a),
            // The first copy's body is the one kept.
            Ok(OpResult::Accepted(a @ Accepted::Duplicate(_))) => {
                self.forget_body_file(file.as_deref());
                Ok(a)
            }
            Ok(_) => Err(StoreError::Closed),
            Err(e) => {
                self.forget_body_file(file.as_deref());
                Err(e)
            }
        }
    }

    /// Records a refused parcel and the rejection sent back, durably.
    pub async fn record_refusal(
        &self,
        r: RefusalRecord,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Refusal(r), audit).await.map(drop)
    }

    /// Marks a received message read (the first mark stays, and only the
    /// first appends `audit`); returns the record, or `None` if there is no
    /// such message.
    pub async fn mark_read(
        &self,
        msg_id: MessageId,
        mark: ReadMark,
        audit: Vec<Entry>,
    ) -> Result<Option<InboxRecord>, StoreError> {
        match self.submit_op(Op::MarkRead(msg_id, mark), audit).await? {
            OpResult::Read(r) => Ok(r),
            _ => Err(StoreError::Closed),
        }
    }

    /// A received message.
    pub fn inbox(&self, msg_id: MessageId) -> Result<Option<InboxRecord>, StoreError> {
        self.get(self.tree(TreeId::Inbox)?, "inbox", msg_id.as_bytes())
    }

    /// Every received message, in the order received (by `received_at`,
    /// then message id: sorted here, as every record is read anyway; stores
    /// of format 2 and older kept an index of that order, `inbox_order`).
    pub fn inbox_all(&self) -> Result<Vec<InboxRecord>, StoreError> {
        let mut out: Vec<InboxRecord> = self.scan(self.tree(TreeId::Inbox)?, "inbox", &[])?;
        out.sort_by_key(|r| (r.received_at, *r.msg_id.as_bytes()));
        Ok(out)
    }

    /// Every refused parcel, oldest first.
    pub fn refusals(&self) -> Result<Vec<RefusalRecord>, StoreError> {
        self.scan(self.tree(TreeId::Refusals)?, "refusals", &[])
    }
}

impl Writer {
    /// [`Op::Inbound`]: a duplicate (stored, or earlier in the group) gets
    /// the original record; a new message gets its `received` entry
    /// numbered, its receipt completed over that entry (and checked), and
    /// is stored (its body key in its record) with its case. The receipt
    /// is signed, and the record written, when the group commits
    /// ([`Writer::seal_receipts`]).
    pub(super) fn accept_inbound(
        &self,
        record: InboxRecord,
        case: Option<Case>,
        mut draft: ReceiptDraft,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let key = record.msg_id.as_bytes().to_vec();
        // Earlier in this group, not signed yet: its receipt comes with it.
        if let Some(first) = pending.unsigned(&key) {
            return Ok(OpResult::Accepted(Accepted::Duplicate(Box::new(first))));
        }
        // One writer: what is not there now cannot appear before this
        // group is committed.
        if let Some(old) = self.read(pending, TreeId::Inbox, &key)? {
            let old = cbor::from_slice(&old).map_err(|e| self.corrupt("inbox", e.to_string()))?;
            return Ok(OpResult::Accepted(Accepted::Duplicate(Box::new(old))));
        }
        let log_rows = self.log_rows(pending.log_tail(), audit);
        let (Some(index), Some(leaf)) = (audit.first().map(|e| e.index), log_rows.leaves.first())
        else {
            return Err(self.corrupt("log", "a received message needs its audit entry".into()));
        };
        draft.receipt.log_index = Some(index);
        draft.receipt.leaf_hash = Some(*leaf);
        // Checked now, so that the group's signing cannot fail on it.
        draft
            .receipt
            .encode()
            .map_err(|e| self.corrupt("inbox", format!("the receipt: {e}")))?;
        let case_row = case_row(case.as_ref()).map_err(|r| self.corrupt("cases", r))?;
        // Without its receipt until the group commits: later operations of
        // the group (a mark read) see the record.
        let value = encode(&record).map_err(|r| self.corrupt("inbox", r))?;
        pending.put(TreeId::Inbox, key.clone(), value);
        if let Some((k, v)) = case_row {
            pending.put(TreeId::Cases, k, v);
        }
        pending.log(log_rows);
        pending.sign_later(key, record.clone(), draft);
        Ok(OpResult::Accepted(Accepted::New(Box::new(record))))
    }

    /// Signs the receipts of the group's new messages, one signature per
    /// key ([`seal_receipts`]), puts each into its record (as the group
    /// left it) and into its callers' answers. Before the transaction: if
    /// it fails, nothing of the group is written.
    pub(super) fn seal_receipts(
        &self,
        pending: &mut Pending,
        answers: &mut [Answered],
    ) -> Result<(), StoreError> {
        let unsigned = pending.take_unsigned();
        if unsigned.is_empty() {
            return Ok(());
        }
        // Grouped by key, in order; normally there is one.
        let mut by_key: Vec<(&SigningKey, Vec<usize>)> = Vec::new();
        for (i, u) in unsigned.iter().enumerate() {
            match by_key.iter_mut().find(|(k, _)| **k == *u.draft.key) {
                Some((_, members)) => members.push(i),
                None => by_key.push((&u.draft.key, vec![i])),
            }
        }
        let mut signed = vec![Vec::new(); unsigned.len()];
        for (key, members) in by_key {
            let receipts: Vec<Receipt> = members
                .iter()
                .map(|&i| unsigned[i].draft.receipt.clone())
                .collect();
            let sealed = seal_receipts(&receipts, key)
                .map_err(|e| self.corrupt("inbox", format!("cannot sign receipts: {e}")))?;
            for (i, bytes) in members.into_iter().zip(sealed) {
                signed[i] = bytes;
            }
        }
        let mut finals = HashMap::with_capacity(signed.len());
        for (u, receipt) in unsigned.into_iter().zip(signed) {
            let key = u.record.msg_id.as_bytes().to_vec();
            // As the group left it (a mark read may have changed it).
            let mut record: InboxRecord = match self.read(pending, TreeId::Inbox, &key)? {
                Some(now) if Some(&now) != u.written.as_ref() => {
                    cbor::from_slice(&now).map_err(|e| self.corrupt("inbox", e.to_string()))?
                }
                _ => u.record,
            };
            record.receipt = receipt;
            let value = encode(&record).map_err(|r| self.corrupt("inbox", r))?;
            finals.insert(key, value);
            for &a in &u.answers {
                if let Some((
                    _,
                    Ok(OpResult::Accepted(Accepted::New(r) | Accepted::Duplicate(r))),
                )) = answers.get_mut(a)
                {
                    r.receipt.clone_from(&record.receipt);
                }
            }
        }
        pending.replace(TreeId::Inbox, finals);
        Ok(())
    }

    /// [`Op::MarkRead`]: the first mark stays, and only the first appends
    /// its audit entries.
    pub(super) fn mark_read(
        &self,
        msg_id: MessageId,
        mark: ReadMark,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let key = msg_id.as_bytes().to_vec();
        let Some(old) = self.read(pending, TreeId::Inbox, &key)? else {
            return Ok(OpResult::Read(None));
        };
        let mut record: InboxRecord =
            cbor::from_slice(&old).map_err(|e| self.corrupt("inbox", e.to_string()))?;
        if record.read.is_some() {
            return Ok(OpResult::Read(Some(record)));
        }
        record.read = Some(mark);
        let value = encode(&record).map_err(|r| self.corrupt("inbox", r))?;
        pending.put(TreeId::Inbox, key, value);
        self.append(audit, pending);
        Ok(OpResult::Read(Some(record)))
    }

    /// [`Op::Refusal`]: the refused parcel's record, under a sequence
    /// number of its own.
    pub(super) fn record_refusal(
        &self,
        r: &RefusalRecord,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let value = encode(r).map_err(|reason| self.corrupt("refusals", reason))?;
        // Refusals in the same millisecond may share a digest (every
        // oversized parcel has the digest of nothing): a sequence number
        // keeps each one.
        let seq = self.trees.db.generate_id().map_err(|e| self.sled_err(e))?;
        let key = refusal_key(r.at, &r.envelope_digest, seq);
        pending.put(TreeId::Refusals, key, value);
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}
