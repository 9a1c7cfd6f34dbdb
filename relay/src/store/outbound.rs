//! Sent messages and their deliveries: the `outbound` records and one
//! [`Delivery`] per recipient, under `open/` in `meta` while it is not final
//! (the outbox loads them at start) and in `deliveries` once it is.
//!
//! A delivery is written once per change of state, in one place: a
//! submission writes its record and its open deliveries, and the final
//! state moves a delivery from `open/` to `deliveries` in one commit.
//! Stores of format 2 and older wrote every state to `deliveries` and kept
//! a copy of the open ones under `open/`; the upgrade to format 3 removes
//! those rows from `deliveries` (`migrate`), and [`Store::deliveries_of`]
//! reads both places, a final state before an open one.

use std::sync::Arc;

use bytes::Bytes;
use kurir_proto::audit::{Entry, Event};
use kurir_proto::cbor;
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{Digest, MessageId, Parcel, Unsigned, sign_prepared};

use super::at_rest::{self, Stored, record_parcel, without_body};
use super::cases::case_row;
use super::keys::{OPEN_PREFIX, Row, delivery_key, open_key};
use super::receipts::unproven_value;
use super::records::encode;
use super::trees::TreeId;
use super::writer::{Answer, Answered, Job, Op, OpResult, Pending, Writer};
use super::{OutboundRecord, Store, StoreError};
use crate::core::deadline::Case;
use crate::core::delivery::{Delivery, DeliveryState};
use std::collections::BTreeMap;

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
        let (file, clear) = self
            .seal_body_keeping(record.msg_id, &mut record.parcel)
            .await?;
        // Encoded here, on the caller's task: the one writer thread only
        // adds the rows to its group.
        let result = match SubmitRows::new(&record, &deliveries, case.as_ref()) {
            Ok(rows) => self.submit_op(Op::Submit(Box::new(rows)), audit).await,
            Err((tree, reason)) => Err(self.corrupt(tree, reason)),
        };
        if result.is_err() {
            self.forget_body_file(file.as_deref());
        }
        result.map(|_| Bytes::from(clear))
    }

    /// [`Store::submit`] for a parcel not signed yet ([`ToSign`]): the
    /// writer signs it with the other submissions of its group that the
    /// same key signs, one signature for them all (PROTOCOL.md §6.1; one
    /// alone gets the single form), seals its body into the record, sets
    /// the `submitted` entry's envelope digest, and commits. Returns the
    /// parcel in clear, for the delivery attempts.
    pub async fn submit_unsigned(
        &self,
        record: OutboundRecord,
        to_sign: ToSign,
        deliveries: Vec<Delivery>,
        case: Option<Case>,
        audit: Vec<Entry>,
    ) -> Result<Bytes, StoreError> {
        let rows = UnsignedSubmit::new(record, to_sign, &deliveries, case.as_ref())
            .map_err(|(tree, reason)| self.corrupt(tree, reason))?;
        match self
            .submit_op(Op::SubmitUnsigned(Box::new(rows)), audit)
            .await?
        {
            OpResult::Sealed(clear) => Ok(Bytes::from(clear)),
            _ => Err(self.corrupt("outbound", "the writer did not sign the parcel".into())),
        }
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

    /// The deliveries of a sent message, one per recipient (in the order of
    /// their keys): the others from `open/`, read first, and the final ones
    /// from `deliveries` (a final state is written before its open one is
    /// removed, so a delivery that moves meanwhile is found in one or the
    /// other, see `DeliveryRow::write`). A delivery in both (while it
    /// moves, or left by a format 2 store, see the module doc) is read as
    /// its final state if it has one, else as its open one.
    pub fn deliveries_of(&self, msg_id: MessageId) -> Result<Vec<Delivery>, StoreError> {
        let trees = self.trees_of(&[TreeId::Deliveries, TreeId::Meta])?;
        let mut open_prefix = OPEN_PREFIX.to_vec();
        open_prefix.extend_from_slice(msg_id.as_bytes());
        let mut by_peer = BTreeMap::new();
        for d in self.scan::<Delivery>(&trees.meta, "meta", &open_prefix)? {
            by_peer.insert(delivery_key(&d), d);
        }
        for d in self.scan::<Delivery>(&trees.deliveries, "deliveries", msg_id.as_bytes())? {
            let key = delivery_key(&d);
            if d.state.is_final() || !by_peer.contains_key(&key) {
                by_peer.insert(key, d);
            }
        }
        Ok(by_peer.into_values().collect())
    }

    /// Every delivery that is not final, for the outbox at start: read
    /// from `open/`, so the cost follows the queue, not every message ever
    /// sent.
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

/// The rows of a submission ([`Op::Submit`]), encoded by the caller, or by
/// the writer once it signed the parcel (`clear`: the parcel, for the
/// caller).
pub(super) struct SubmitRows {
    msg_id: Vec<u8>,
    record: Vec<u8>,
    deliveries: Vec<DeliveryRow>,
    case: Option<Row>,
    clear: Option<Vec<u8>>,
}

/// A parcel for the store's writer to sign ([`Store::submit_unsigned`]).
#[derive(Debug)]
pub struct ToSign {
    /// The parcel, complete but for its signature.
    pub unsigned: Unsigned,
    /// The message key valid at the header's `created_at`.
    pub key: Arc<SigningKey>,
    /// The largest parcel this relay sends: one the batch form would take
    /// over it is signed alone.
    pub max_parcel: usize,
}

/// A submission whose parcel the writer signs ([`Op::SubmitUnsigned`]):
/// the parcel to sign, and the rest of the submission, encoded by the
/// caller but for the record, which holds the parcel.
pub(super) struct UnsignedSubmit {
    to_sign: ToSign,
    rest: Unfinished,
}

/// What a submission still needs once its parcel is signed
/// (`Writer::signed_rows`): its record (the parcel empty) and the rows of
/// its deliveries and case.
struct Unfinished {
    record: OutboundRecord,
    deliveries: Vec<DeliveryRow>,
    case: Option<Row>,
}

impl UnsignedSubmit {
    fn new(
        record: OutboundRecord,
        to_sign: ToSign,
        deliveries: &[Delivery],
        case: Option<&Case>,
    ) -> Result<UnsignedSubmit, (&'static str, String)> {
        let deliveries = deliveries
            .iter()
            .map(DeliveryRow::new)
            .collect::<Result<_, _>>()
            .map_err(|r| ("deliveries", r))?;
        let case = case_row(case).map_err(|r| ("cases", r))?;
        Ok(UnsignedSubmit {
            to_sign,
            rest: Unfinished {
                record,
                deliveries,
                case,
            },
        })
    }
}

/// A submission of the batch being signed: where its job goes back in the
/// batch, and what it needs once signed.
struct Signing {
    slot: usize,
    rest: Unfinished,
    max_parcel: usize,
    audit: Vec<Entry>,
    done: Answer,
}

/// The submissions of a batch that one key signs together, in order.
struct Group {
    key: Arc<SigningKey>,
    /// One parcel near its size limit, signed alone.
    alone: bool,
    signing: Vec<Signing>,
    unsigned: Vec<Unsigned>,
}

/// What the batch form may add to a parcel's length, at most, for the
/// batches one group holds (at most 512 envelopes: a path of 9 hashes):
/// the head, the path, the index and the longer content type. A parcel
/// closer than this to its limit is signed alone.
const BATCH_MARGIN: usize = 2048;

impl SubmitRows {
    /// Encodes the record (its parcel already sealed, with its key), its
    /// deliveries and the case; on failure, the tree and why.
    pub(super) fn new(
        record: &OutboundRecord,
        deliveries: &[Delivery],
        case: Option<&Case>,
    ) -> Result<SubmitRows, (&'static str, String)> {
        Ok(SubmitRows {
            msg_id: record.msg_id.as_bytes().to_vec(),
            record: encode(record).map_err(|r| ("outbound", r))?,
            deliveries: deliveries
                .iter()
                .map(DeliveryRow::new)
                .collect::<Result<_, _>>()
                .map_err(|r| ("deliveries", r))?,
            case: case_row(case).map_err(|r| ("cases", r))?,
            clear: None,
        })
    }
}

/// A delivery's state ([`Op::Delivery`]), encoded by the caller with its
/// keys: in `open/` while it is not final, in `deliveries` (and no longer
/// in `open/`) once it is, and for a receipt that names the peer's log
/// entry, the `unproven` row that holds it until its inclusion proof is
/// stored.
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
    /// [`Op::Submit`]: the record (with its body key), its deliveries
    /// (the open ones under `open/`), the case.
    pub(super) fn submit(
        &self,
        rows: SubmitRows,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        let SubmitRows {
            msg_id,
            record,
            deliveries,
            case,
            clear,
        } = rows;
        pending.put(TreeId::Outbound, msg_id, record);
        for d in deliveries {
            d.write(pending, false);
        }
        if let Some((k, v)) = case {
            pending.put(TreeId::Cases, k, v);
        }
        self.append(audit, pending);
        Ok(clear.map_or(OpResult::Done, OpResult::Sealed))
    }

    /// Signs the parcels of the batch's [`Op::SubmitUnsigned`] jobs, one
    /// signature per key for all of them (`proto::sign_prepared`), and
    /// turns each into the [`Op::Submit`] it would have been had its caller
    /// signed it: the record with the sealed parcel, the `submitted`
    /// entry with its envelope digest. A job that cannot be signed is
    /// answered with the error here and leaves the batch. The other jobs
    /// keep their order.
    pub(super) fn sign_submissions(
        &self,
        batch: Vec<Job>,
        answers: &mut Vec<Answered>,
    ) -> Vec<Job> {
        if !batch.iter().any(|j| matches!(j.op, Op::SubmitUnsigned(_))) {
            return batch;
        }
        let mut slots: Vec<Option<Job>> = Vec::with_capacity(batch.len());
        // Normally one group: one key signs at a time.
        let mut groups: Vec<Group> = Vec::new();
        for job in batch {
            let Job { op, audit, done } = job;
            let Op::SubmitUnsigned(u) = op else {
                slots.push(Some(Job { op, audit, done }));
                continue;
            };
            let UnsignedSubmit { to_sign, rest } = *u;
            let ToSign {
                unsigned,
                key,
                max_parcel,
            } = to_sign;
            let alone = unsigned.parcel_len() + BATCH_MARGIN > max_parcel;
            let signing = Signing {
                slot: slots.len(),
                rest,
                max_parcel,
                audit,
                done,
            };
            slots.push(None);
            match groups
                .iter_mut()
                .find(|g| !alone && !g.alone && *g.key == *key)
            {
                Some(g) => {
                    g.signing.push(signing);
                    g.unsigned.push(unsigned);
                }
                None => groups.push(Group {
                    key,
                    alone,
                    signing: vec![signing],
                    unsigned: vec![unsigned],
                }),
            }
        }
        for group in groups {
            let count = group.signing.len();
            let parcels = match sign_prepared(group.unsigned, &group.key) {
                Ok(parcels) if parcels.len() == count => parcels,
                result => {
                    let reason = match result {
                        Err(e) => format!("cannot sign {count} parcels: {e}"),
                        Ok(p) => format!("{} parcels signed for {count}", p.len()),
                    };
                    for s in group.signing {
                        answers.push((s.done, Err(self.corrupt("outbound", reason.clone()))));
                    }
                    continue;
                }
            };
            for (s, parcel) in group.signing.into_iter().zip(parcels) {
                match self.signed_rows(s.rest, &parcel, s.max_parcel, s.audit) {
                    Ok((rows, audit)) => {
                        slots[s.slot] = Some(Job {
                            op: Op::Submit(Box::new(rows)),
                            audit,
                            done: s.done,
                        });
                    }
                    Err(e) => answers.push((s.done, Err(e))),
                }
            }
        }
        slots.into_iter().flatten().collect()
    }

    /// The rows of a submission whose parcel the writer signed: the
    /// parcel sealed into the record, the envelope digest in the
    /// `submitted` entry.
    fn signed_rows(
        &self,
        rest: Unfinished,
        parcel: &Parcel,
        max_parcel: usize,
        mut audit: Vec<Entry>,
    ) -> Result<(SubmitRows, Vec<Entry>), StoreError> {
        let Unfinished {
            mut record,
            deliveries,
            case,
        } = rest;
        let clear = parcel.to_bytes();
        if clear.len() > max_parcel || clear.len() >= at_rest::FILE_MIN {
            return Err(self.corrupt(
                "outbound",
                format!(
                    "the signed parcel is {} bytes, over the limit of {max_parcel}",
                    clear.len()
                ),
            ));
        }
        let digest = parcel.envelope_digest();
        match audit.first_mut() {
            Some(e) if e.event == Event::Submitted && e.msg_id == Some(record.msg_id) => {
                e.envelope_digest = Some(digest);
            }
            _ => {
                return Err(self.corrupt(
                    "log",
                    "a submission needs its `submitted` entry first".into(),
                ));
            }
        }
        let sealed = at_rest::seal(&clear).map_err(|r| self.corrupt("parcel", r))?;
        record.parcel = at_rest::inline(&sealed.envelope, &sealed.sealed, &sealed.key);
        let rows = SubmitRows {
            msg_id: record.msg_id.as_bytes().to_vec(),
            record: encode(&record).map_err(|r| self.corrupt("outbound", r))?,
            deliveries,
            case,
            clear: Some(clear),
        };
        Ok((rows, audit))
    }

    /// [`Op::Delivery`]: see [`DeliveryRow`].
    pub(super) fn update_delivery(
        &self,
        d: DeliveryRow,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        d.write(pending, true);
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}

impl DeliveryRow {
    /// Adds the writes of this state to `pending` (see [`DeliveryRow`]);
    /// `was_open`: an earlier state may be under `open/` (not so at
    /// submission).
    pub(super) fn write(self, pending: &mut Pending, was_open: bool) {
        if let Some(unproven) = self.unproven {
            pending.put(TreeId::Unproven, self.key.clone(), unproven);
        }
        if self.is_final {
            // Written before the open one is removed: sled applies a
            // group's writes one by one, and `Store::deliveries_of` reads
            // `open/` first, so it finds one of the two at every moment.
            pending.put(TreeId::Deliveries, self.key, self.value);
            if was_open {
                pending.remove(TreeId::Meta, self.open_key);
            }
        } else {
            pending.put(TreeId::Meta, self.open_key, self.value);
        }
    }
}
