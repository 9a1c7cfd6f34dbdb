//! Received messages: accepting a parcel once (concurrent duplicates get
//! the original receipt), the `inbox` records in the order received
//! (`inbox_order`), read marks, and the parcels refused (`refusals`).

use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use kurir_proto::{Digest, MessageId};

use super::at_rest::BodyKey;
use super::cases::case_row;
use super::keys::{inbox_order_key, refusal_key};
use super::records::encode;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Accepted, InboxRecord, ReadMark, RefusalRecord, Store, StoreError};
use crate::core::deadline::Case;

/// Signs the receipt for a received message once its audit entry's index
/// and leaf hash are known (the receipt names them).
pub type ReceiptSigner = Box<dyn FnOnce(u64, Digest) -> Result<Vec<u8>, String> + Send>;

impl Store {
    /// Stores a received message unless its id is already there; durable
    /// when it returns. Exactly one of several concurrent calls with the same
    /// id gets [`Accepted::New`].
    ///
    /// When the message is new, the store appends `received` to the audit
    /// log, calls `sign` with that entry's index and leaf hash to get the
    /// receipt (kept in the record, and sent again on duplicates), and
    /// stores record, entry and `case` in one commit.
    pub async fn accept_inbound(
        &self,
        record: InboxRecord,
        case: Option<Case>,
        received: Entry,
        sign: ReceiptSigner,
    ) -> Result<Accepted, StoreError> {
        let mut record = record;
        let (key, file) = match self.seal_body(record.msg_id, &mut record.parcel).await {
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
            .submit_op(Op::Inbound(record, case, sign, key), vec![received])
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
        self.get(&self.trees.inbox, "inbox", msg_id.as_bytes())
    }

    /// Every received message, in the order received.
    pub fn inbox_all(&self) -> Result<Vec<InboxRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.inbox_order.iter() {
            let (key, _) = item.map_err(|e| self.sled(e))?;
            let Some(id) = key.get(8..24) else {
                return Err(self.corrupt("inbox_order", "short key".into()));
            };
            if let Some(r) = self.get(&self.trees.inbox, "inbox", id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Every refused parcel, oldest first.
    pub fn refusals(&self) -> Result<Vec<RefusalRecord>, StoreError> {
        self.scan(&self.trees.refusals, "refusals", &[])
    }
}

impl Writer {
    /// [`Op::Inbound`]: a duplicate (stored, or earlier in the group) gets
    /// the original record; a new message gets its `received` entry
    /// numbered, its receipt signed over that entry, and is stored with its
    /// body key, its place in the inbox order and its case.
    pub(super) fn accept_inbound(
        &self,
        mut record: InboxRecord,
        case: Option<Case>,
        sign: ReceiptSigner,
        body_key: BodyKey,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let key = record.msg_id.as_bytes().to_vec();
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
        record.receipt = sign(index, *leaf).map_err(|r| self.corrupt("inbox", r))?;
        let value = encode(&record).map_err(|r| self.corrupt("inbox", r))?;
        let case_row = case_row(case.as_ref()).map_err(|r| self.corrupt("cases", r))?;
        let order_key = inbox_order_key(record.received_at, record.msg_id);
        pending.put(TreeId::Inbox, key.clone(), value);
        pending.put(TreeId::BodyKeys, key, body_key.to_vec());
        pending.put(TreeId::InboxOrder, order_key, vec![]);
        if let Some((k, v)) = case_row {
            pending.put(TreeId::Cases, k, v);
        }
        pending.log(log_rows);
        Ok(OpResult::Accepted(Accepted::New(Box::new(record))))
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
