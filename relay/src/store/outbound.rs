//! Sent messages and their deliveries: the `outbound` records, one
//! [`Delivery`] per recipient in `deliveries`, and the copies of the open
//! ones in `meta` (under `open/`) that the outbox loads at start.

use bytes::Bytes;
use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use kurir_proto::{Digest, MessageId};

use super::at_rest::BodyKey;
use super::at_rest::{self, Stored, record_parcel, without_body};
use super::cases::case_row;
use super::keys::{OPEN_PREFIX, Row, delivery_key, open_key};
use super::receipts::unproven_value;
use super::records::encode;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{OutboundRecord, Store, StoreError};
use crate::core::deadline::Case;
use crate::core::delivery::{Delivery, DeliveryState};

impl Store {
    /// Records a submitted message, its deliveries and the updated case it
    /// belongs to, in one durable commit. Returns the parcel in clear (the
    /// record holds it sealed) for the delivery attempts, moved, not copied.
    pub async fn submit(
        &self,
        record: OutboundRecord,
        deliveries: Vec<Delivery>,
        case: Option<Case>,
        audit: Vec<Entry>,
    ) -> Result<Bytes, StoreError> {
        let mut record = record;
        let (key, file, clear) = self
            .seal_body_keeping(record.msg_id, &mut record.parcel)
            .await?;
        // Encoded here, on the caller's task: the one writer thread only
        // adds the rows to its group.
        let result = match SubmitRows::new(&record, &deliveries, case.as_ref(), key) {
            Ok(rows) => self.submit_op(Op::Submit(Box::new(rows)), audit).await,
            Err((tree, reason)) => Err(self.corrupt(tree, reason)),
        };
        if result.is_err() {
            self.forget_body_file(file.as_deref());
        }
        result.map(|_| Bytes::from(clear))
    }

    /// Records a delivery's new state, durably.
    pub async fn update_delivery(&self, d: Delivery, audit: Vec<Entry>) -> Result<(), StoreError> {
        let row = DeliveryRow::new(&d).map_err(|r| self.corrupt("deliveries", r))?;
        self.submit_op(Op::Delivery(row), audit).await.map(drop)
    }

    /// [`Store::update_delivery`] for a delivered state whose receipt the
    /// caller has just verified: `entry` is the receiver's log entry the
    /// receipt names, as read then ([`crate::core::delivery::Outcome`]),
    /// so the receipt is not read again.
    pub async fn update_delivery_verified(
        &self,
        d: Delivery,
        audit: Vec<Entry>,
        entry: Option<(u64, Digest)>,
    ) -> Result<(), StoreError> {
        let row = DeliveryRow::with_entry(&d, entry).map_err(|r| self.corrupt("deliveries", r))?;
        self.submit_op(Op::Delivery(row), audit).await.map(drop)
    }

    /// A sent message.
    pub fn outbound(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        self.get(self.tree(TreeId::Outbound)?, "outbound", msg_id.as_bytes())
    }

    /// The deliveries of a sent message, one per recipient.
    pub fn deliveries_of(&self, msg_id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        self.scan(
            self.tree(TreeId::Deliveries)?,
            "deliveries",
            msg_id.as_bytes(),
        )
    }

    /// Every delivery that is not final, for the outbox at start: read
    /// through the index of open deliveries, so the cost follows the queue,
    /// not every message ever sent.
    pub fn open_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .scan::<Delivery>(self.tree(TreeId::Meta)?, "meta", OPEN_PREFIX)?
            .into_iter()
            .filter(|d| !d.state.is_final())
            .collect())
    }

    /// Every sent message, oldest first.
    pub fn outbound_all(&self) -> Result<Vec<OutboundRecord>, StoreError> {
        self.scan(self.tree(TreeId::Outbound)?, "outbound", &[])
    }

    /// A sent message without its body, for status and listings: `parcel`
    /// holds only the envelope (read its header with [`Store::envelope`]),
    /// and the body, however large, is neither decoded nor copied.
    pub fn outbound_head(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        match self
            .tree(TreeId::Outbound)?
            .get(msg_id.as_bytes())
            .map_err(|e| self.sled(e))?
        {
            Some(v) => self.decode_head(&v).map(Some),
            None => Ok(None),
        }
    }

    /// The parcel of a sent message, to deliver it: `None` if there is no
    /// such message or its body was erased. The stored record is not
    /// decoded.
    pub fn sent_parcel(&self, msg_id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(stored) = self
            .tree(TreeId::Outbound)?
            .get(msg_id.as_bytes())
            .map_err(|e| self.sled(e))?
        else {
            return Ok(None);
        };
        match record_parcel(&stored) {
            Some(parcel) => self.parcel(msg_id, parcel),
            None => Err(self.corrupt("outbound", format!("no parcel in the record of {msg_id}"))),
        }
    }

    /// Every sent message without its body (see [`Store::outbound_head`]).
    pub fn outbound_heads(&self) -> Result<Vec<OutboundRecord>, StoreError> {
        self.tree(TreeId::Outbound)?
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(|e| self.sled(e))?;
                self.decode_head(&v)
            })
            .collect()
    }

    fn decode_head(&self, stored: &[u8]) -> Result<OutboundRecord, StoreError> {
        let decoded = match without_body(stored) {
            Some(light) => cbor::from_slice(&light),
            // Not in the shape this store writes: decode it all.
            None => cbor::from_slice::<OutboundRecord>(stored).map(|mut r| {
                r.parcel = Stored::parse(&r.parcel)
                    .map(|p| at_rest::erased(p.envelope()))
                    .unwrap_or_default();
                r
            }),
        };
        decoded.map_err(|e| self.corrupt("outbound", e.to_string()))
    }
}

/// The rows of a submission ([`Op::Submit`]), encoded by the caller.
pub(super) struct SubmitRows {
    msg_id: Vec<u8>,
    record: Vec<u8>,
    body_key: BodyKey,
    deliveries: Vec<DeliveryRow>,
    case: Option<Row>,
}

impl SubmitRows {
    /// Encodes the record (its parcel already sealed), its deliveries and
    /// the case; on failure, the tree and why.
    pub(super) fn new(
        record: &OutboundRecord,
        deliveries: &[Delivery],
        case: Option<&Case>,
        body_key: BodyKey,
    ) -> Result<SubmitRows, (&'static str, String)> {
        Ok(SubmitRows {
            msg_id: record.msg_id.as_bytes().to_vec(),
            record: encode(record).map_err(|r| ("outbound", r))?,
            body_key,
            deliveries: deliveries
                .iter()
                .map(DeliveryRow::new)
                .collect::<Result<_, _>>()
                .map_err(|r| ("deliveries", r))?,
            case: case_row(case).map_err(|r| ("cases", r))?,
        })
    }
}

/// A delivery's state ([`Op::Delivery`]), encoded by the caller with its
/// keys: its row, its copy among the open ones (removed once final), and
/// for a receipt that names the peer's log entry, the `unproven` row that
/// holds it until its inclusion proof is stored.
pub(super) struct DeliveryRow {
    key: Vec<u8>,
    open_key: Vec<u8>,
    value: Vec<u8>,
    is_final: bool,
    unproven: Option<Vec<u8>>,
}

impl DeliveryRow {
    pub(super) fn new(d: &Delivery) -> Result<DeliveryRow, String> {
        DeliveryRow::with_entry(d, named_entry(d))
    }

    /// [`DeliveryRow::new`], with the log entry a delivered state's receipt
    /// names as its caller read it (the same as [`named_entry`]).
    fn with_entry(d: &Delivery, entry: Option<(u64, Digest)>) -> Result<DeliveryRow, String> {
        debug_assert_eq!(entry, named_entry(d), "the entry its receipt names");
        // A receipt naming the peer's log entry: ask for its inclusion
        // proof once the peer's checkpoints cover it.
        let unproven = match &d.state {
            DeliveryState::Delivered { .. } => {
                entry.map(|(index, leaf)| unproven_value(index, &leaf))
            }
            _ => None,
        };
        Ok(DeliveryRow {
            key: delivery_key(d),
            open_key: open_key(d),
            value: encode(d)?,
            is_final: d.state.is_final(),
            unproven,
        })
    }
}

/// The receiver's log entry (index, leaf hash) a delivered state's receipt
/// names, read from the receipt (verified before it was stored).
fn named_entry(d: &Delivery) -> Option<(u64, Digest)> {
    match &d.state {
        DeliveryState::Delivered { receipt, .. } => {
            let r = kurir_proto::receipt::receipt_unverified(receipt)?;
            r.log_index.zip(r.leaf_hash)
        }
        _ => None,
    }
}

impl Writer {
    /// [`Op::Submit`]: the record, its body key, its deliveries (and the
    /// copies of the open ones), the case.
    pub(super) fn submit(
        &self,
        rows: SubmitRows,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let SubmitRows {
            msg_id,
            record,
            body_key,
            deliveries,
            case,
        } = rows;
        pending.put(TreeId::Outbound, msg_id.clone(), record);
        pending.put(TreeId::BodyKeys, msg_id, body_key.to_vec());
        for d in deliveries {
            if !d.is_final {
                pending.put(TreeId::Meta, d.open_key, d.value.clone());
            }
            pending.put(TreeId::Deliveries, d.key, d.value);
        }
        if let Some((k, v)) = case {
            pending.put(TreeId::Cases, k, v);
        }
        self.append(audit, pending);
        Ok(OpResult::Done)
    }

    /// [`Op::Delivery`]: see [`DeliveryRow`].
    pub(super) fn update_delivery(
        &self,
        d: DeliveryRow,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        if let Some(unproven) = d.unproven {
            pending.put(TreeId::Unproven, d.key.clone(), unproven);
        }
        if d.is_final {
            pending.remove(TreeId::Meta, d.open_key);
        } else {
            pending.put(TreeId::Meta, d.open_key, d.value.clone());
        }
        pending.put(TreeId::Deliveries, d.key, d.value);
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}
