//! Sent messages and their deliveries: the `outbound` records, one
//! [`Delivery`] per recipient in `deliveries`, and the copies of the open
//! ones in `meta` (under `open/`) that the outbox loads at start.

use kurir_proto::MessageId;
use kurir_proto::audit::Entry;
use kurir_proto::cbor;

use super::at_rest::BodyKey;
use super::at_rest::{self, Stored, record_parcel, without_body};
use super::cases::case_row;
use super::keys::{OPEN_PREFIX, delivery_key, open_key};
use super::receipts::unproven_value;
use super::records::encode;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{OutboundRecord, Store, StoreError};
use crate::core::deadline::Case;
use crate::core::delivery::{Delivery, DeliveryState};

impl Store {
    /// Records a submitted message, its deliveries and the updated case it
    /// belongs to, in one durable commit.
    pub async fn submit(
        &self,
        record: OutboundRecord,
        deliveries: Vec<Delivery>,
        case: Option<Case>,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        let mut record = record;
        let (key, file) = self.seal_body(record.msg_id, &mut record.parcel).await?;
        let result = self
            .submit_op(Op::Submit(record, deliveries, case, key), audit)
            .await;
        if result.is_err() {
            self.forget_body_file(file.as_deref());
        }
        result.map(drop)
    }

    /// Records a delivery's new state, durably.
    pub async fn update_delivery(&self, d: Delivery, audit: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Delivery(d), audit).await.map(drop)
    }

    /// A sent message.
    pub fn outbound(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        self.get(&self.trees.outbound, "outbound", msg_id.as_bytes())
    }

    /// The deliveries of a sent message, one per recipient.
    pub fn deliveries_of(&self, msg_id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        self.scan(&self.trees.deliveries, "deliveries", msg_id.as_bytes())
    }

    /// Every delivery that is not final, for the outbox at start: read
    /// through the index of open deliveries, so the cost follows the queue,
    /// not every message ever sent.
    pub fn open_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .scan::<Delivery>(&self.trees.meta, "meta", OPEN_PREFIX)?
            .into_iter()
            .filter(|d| !d.state.is_final())
            .collect())
    }

    /// Every sent message, oldest first.
    pub fn outbound_all(&self) -> Result<Vec<OutboundRecord>, StoreError> {
        self.scan(&self.trees.outbound, "outbound", &[])
    }

    /// A sent message without its body, for status and listings: `parcel`
    /// holds only the envelope (read its header with [`Store::envelope`]),
    /// and the body, however large, is neither decoded nor copied.
    pub fn outbound_head(&self, msg_id: MessageId) -> Result<Option<OutboundRecord>, StoreError> {
        match self
            .trees
            .outbound
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
            .trees
            .outbound
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
        self.trees
            .outbound
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

impl Writer {
    /// [`Op::Submit`]: the record, its body key, its deliveries (and the
    /// copies of the open ones), the case.
    pub(super) fn submit(
        &self,
        record: OutboundRecord,
        deliveries: Vec<Delivery>,
        case: Option<Case>,
        body_key: BodyKey,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let value = encode(&record).map_err(|r| self.corrupt("outbound", r))?;
        let case_row = case_row(case.as_ref()).map_err(|r| self.corrupt("cases", r))?;
        let rows = deliveries
            .iter()
            .map(|d| Ok((delivery_key(d), encode(d)?)))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|r| self.corrupt("deliveries", r))?;
        let key = record.msg_id.as_bytes().to_vec();
        pending.put(TreeId::Outbound, key.clone(), value);
        pending.put(TreeId::BodyKeys, key, body_key.to_vec());
        for ((k, v), d) in rows.into_iter().zip(&deliveries) {
            if !d.state.is_final() {
                pending.put(TreeId::Meta, open_key(d), v.clone());
            }
            pending.put(TreeId::Deliveries, k, v);
        }
        if let Some((k, v)) = case_row {
            pending.put(TreeId::Cases, k, v);
        }
        self.append(audit, pending);
        Ok(OpResult::Done)
    }

    /// [`Op::Delivery`]: a delivery's new state, its copy among the open
    /// ones (removed once final), and, for a receipt that names the peer's
    /// log entry, the receipt held until its inclusion proof is stored.
    pub(super) fn update_delivery(
        &self,
        d: Delivery,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let value = encode(&d).map_err(|r| self.corrupt("deliveries", r))?;
        let key = delivery_key(&d);
        // A receipt naming the peer's log entry: ask for its
        // inclusion proof once the peer's checkpoints cover it.
        if let DeliveryState::Delivered { receipt, .. } = &d.state
            && let Some((index, leaf)) = kurir_proto::receipt::receipt_unverified(receipt)
                .and_then(|r| Some((r.log_index?, r.leaf_hash?)))
        {
            pending.put(TreeId::Unproven, key.clone(), unproven_value(index, &leaf));
        }
        if d.state.is_final() {
            pending.remove(TreeId::Meta, open_key(&d));
        } else {
            pending.put(TreeId::Meta, open_key(&d), value.clone());
        }
        pending.put(TreeId::Deliveries, key, value);
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}
