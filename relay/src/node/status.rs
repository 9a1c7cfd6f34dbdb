//! The delivery status of a sent message, per recipient: the stored
//! state, or the outbox's live state while an attempt is under way, with
//! the receipt's inclusion proof once it has one. The summary and the
//! stored states come from [`Recent`](super::recent::Recent) when it holds
//! the message, else from the store. A `status` request with `wait_ms`
//! registers with [`Settled`] before it reads the status, and the outbox
//! wakes it once a final delivery state is on disk.

use std::collections::HashMap;
use std::sync::Mutex;

use kurir_proto::api::{DeliveryStatus, ErrorCode, MAX_STATUS_WAIT_MS, Response};
use kurir_proto::{AuthorityId, MessageId};
use tokio::sync::oneshot;

use super::Base;
use super::officer::{not_found, storage_failed, summary_of_outbound};
use super::outbox::Deliveries;
use super::recent::Known;
use crate::core::delivery::{Delivery, DeliveryState};
use crate::store::Store;

/// The delivery status of a sent message: per recipient, the stored state,
/// or the outbox's live state while an attempt is under way.
pub(super) fn status(base: &Base, outbox: &Deliveries, msg_id: MessageId) -> Response {
    let known = match outbox.recent.get(msg_id) {
        Some(known) => known,
        None => match read_known(&base.store, msg_id) {
            Ok(known) => {
                if known.settled() {
                    outbox.recent.keep(known.clone());
                }
                known
            }
            Err(answer) => return *answer,
        },
    };
    // The outbox knows about attempts on the wire right now.
    let open: Vec<AuthorityId> = known
        .deliveries
        .iter()
        .filter(|d| !d.state.is_final())
        .map(|d| d.peer.clone())
        .collect();
    let live = match open.is_empty() {
        true => HashMap::new(),
        false => outbox.live(msg_id, &open),
    };
    answer(&base.store, &live, known)
}

/// A sent message's summary and stored deliveries, read from the store; or
/// the answer that says why not.
pub(super) fn read_known(store: &Store, msg_id: MessageId) -> Result<Known, Box<Response>> {
    let record = match store.outbound_head(msg_id) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(Box::new(not_found(msg_id))),
        Err(e) => return Err(Box::new(storage_failed(e))),
    };
    let deliveries = store
        .deliveries_of(msg_id)
        .map_err(|e| Box::new(storage_failed(e)))?;
    match summary_of_outbound(&record) {
        Some(summary) => Ok(Known {
            summary,
            deliveries,
        }),
        None => Err(Box::new(Response::error(
            ErrorCode::Unavailable,
            "stored message is damaged",
        ))),
    }
}

/// The answer: each stored delivery, or its live state while it is not
/// final, with the inclusion proof of a delivered one's receipt if stored.
pub(super) fn answer(
    store: &Store,
    live: &HashMap<AuthorityId, Delivery>,
    known: Known,
) -> Response {
    let Known {
        summary,
        deliveries,
    } = known;
    let deliveries = deliveries
        .into_iter()
        .map(|d| match live.get(&d.peer) {
            Some(l) if !d.state.is_final() => l.clone(),
            _ => d,
        })
        .map(|d| {
            let inclusion = match d.state {
                DeliveryState::Delivered { .. } => store
                    .receipt_proof(summary.msg_id, &d.peer)
                    .unwrap_or_default(),
                _ => None,
            };
            DeliveryStatus {
                inclusion,
                ..delivery_status(d)
            }
        })
        .collect();
    Response::Status {
        summary,
        deliveries,
    }
}

/// Whether every delivery in a status answer is final.
fn settled(response: &Response) -> bool {
    match response {
        Response::Status { deliveries, .. } => deliveries.iter().all(DeliveryStatus::is_final),
        _ => true,
    }
}

/// Answers a `status` request with a wait: once every delivery is final, or
/// after `wait_ms` (at most [`MAX_STATUS_WAIT_MS`]), or at shutdown, with the
/// status as it is then.
pub(super) async fn status_when_settled(
    base: &Base,
    outbox: &Deliveries,
    msg_id: MessageId,
    wait_ms: u64,
) -> Response {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(wait_ms.min(MAX_STATUS_WAIT_MS));
    let mut shutdown = base.shutdown.clone();
    loop {
        // Watch before reading, so a delivery that becomes final between
        // the read and the wait still wakes us.
        let mut change = outbox.settled.watch(msg_id);
        let response = status(base, outbox, msg_id);
        if settled(&response) {
            return response;
        }
        tokio::select! {
            _ = change.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return status(base, outbox, msg_id),
            _ = shutdown.changed() => return response,
        }
    }
}

/// Wakes the `status` requests waiting on a message when one of its
/// deliveries becomes final.
#[derive(Debug, Default)]
pub(super) struct Settled {
    waiting: Mutex<HashMap<MessageId, Vec<oneshot::Sender<()>>>>,
}

impl Settled {
    /// Registers interest in `msg_id`'s next final delivery.
    fn watch(&self, msg_id: MessageId) -> Change<'_> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.entry(msg_id).or_default().push(tx);
        }
        Change {
            settled: self,
            msg_id,
            rx,
        }
    }

    /// How many waits are registered.
    pub(super) fn count(&self) -> usize {
        self.waiting
            .lock()
            .map_or(0, |w| w.values().map(Vec::len).sum())
    }

    /// Called once a final state of one of `msg_id`'s deliveries is stored.
    pub(super) fn notify(&self, msg_id: MessageId) {
        let woken = self.waiting.lock().ok().and_then(|mut w| w.remove(&msg_id));
        for tx in woken.into_iter().flatten() {
            let _ = tx.send(());
        }
    }
}

/// One registration with [`Settled`]; removes itself when dropped, so
/// waits that time out leave nothing behind.
struct Change<'a> {
    settled: &'a Settled,
    msg_id: MessageId,
    rx: oneshot::Receiver<()>,
}

impl Change<'_> {
    async fn changed(&mut self) {
        let _ = (&mut self.rx).await;
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.rx.close();
        let Ok(mut w) = self.settled.waiting.lock() else {
            return;
        };
        if let Some(list) = w.get_mut(&self.msg_id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                w.remove(&self.msg_id);
            }
        }
    }
}

fn delivery_status(d: Delivery) -> DeliveryStatus {
    let (at, reason, receipt) = match &d.state {
        DeliveryState::Queued | DeliveryState::Sending { .. } => (None, None, None),
        DeliveryState::Retrying {
            next_at,
            last_error,
        } => (Some(*next_at), Some(last_error.clone()), None),
        DeliveryState::Delivered { at, receipt } => (Some(*at), None, Some(receipt.clone())),
        DeliveryState::Rejected {
            at,
            code,
            detail,
            receipt,
        } => (
            Some(*at),
            Some(match detail {
                Some(d) => format!("{code}: {d}"),
                None => code.clone(),
            }),
            Some(receipt.clone()),
        ),
        DeliveryState::Expired { at } => (Some(*at), None, None),
        DeliveryState::Failed { at, reason } => (Some(*at), Some(reason.clone()), None),
    };
    DeliveryStatus {
        peer: d.peer,
        state: d.state.name().to_owned(),
        attempts: d.attempts,
        at,
        reason,
        receipt,
        inclusion: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::Duration;

    fn waiting(s: &Settled) -> usize {
        s.count()
    }

    #[tokio::test]
    async fn a_final_delivery_wakes_every_waiter_of_its_message_and_ended_waits_leave_nothing() {
        let s = Settled::default();
        let id = MessageId::new_v7(1, [1; 10]);
        let other = MessageId::new_v7(1, [2; 10]);
        {
            let _a = s.watch(id);
            let _b = s.watch(id);
            assert_eq!(waiting(&s), 2);
        }
        assert_eq!(waiting(&s), 0, "waits that ended are forgotten");

        let mut a = s.watch(id);
        let mut b = s.watch(id);
        let mut c = s.watch(other);
        s.notify(id);
        let woken = Duration::from_secs(5);
        tokio::time::timeout(woken, a.changed())
            .await
            .expect("a woken");
        tokio::time::timeout(woken, b.changed())
            .await
            .expect("b woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), c.changed())
                .await
                .is_err(),
            "another message's waiter stays asleep"
        );
        assert_eq!(waiting(&s), 1);
        drop((a, b, c));
        assert_eq!(waiting(&s), 0);
    }

    use super::super::recent::Recent;
    use crate::store::{Durability, OutboundRecord};
    use kurir_proto::message::{Handling, Message, MessageKind, examples};
    use kurir_proto::{Digest, Header, Timestamp};

    const T0: Timestamp = Timestamp(1_795_874_050_000);

    fn peer(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    /// A sealed message to `to` (in this order), its record and its queued
    /// deliveries, as a submission builds them.
    fn submission(to: &[&str]) -> (Header, OutboundRecord, Vec<Delivery>) {
        let header = Header {
            id: MessageId::new_v7(T0.0, [3; 10]),
            kind: MessageKind::OperationalNotice,
            from: peer("AT.BMI"),
            to: to.iter().map(|p| peer(p)).collect(),
            created_at: T0,
            expires_at: T0.plus_millis(60_000),
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            body_digest: Digest([0; 32]),
        };
        let key = kurir_proto::ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let parcel = kurir_proto::seal(
            header.clone(),
            &Message::OperationalNotice(examples::notice()),
            [3; 32],
            &key,
        )
        .unwrap()
        .to_bytes();
        let deliveries = header
            .to
            .iter()
            .map(|p| Delivery::queued(header.id, p.clone(), header.expires_at))
            .collect();
        let record = OutboundRecord {
            msg_id: header.id,
            kind: header.kind,
            to: header.to.clone(),
            case_id: None,
            created_at: T0,
            expires_at: header.expires_at,
            submitted_by: "0a1b".into(),
            parcel,
            erased: None,
        };
        (header, record, deliveries)
    }

    /// What `Recent` holds of `msg_id` is what the store holds, and the
    /// answers built from each (with `live`) are the same.
    fn same(store: &Store, recent: &Recent, msg_id: MessageId, live: &[Delivery]) -> Response {
        let live: HashMap<_, _> = live.iter().map(|d| (d.peer.clone(), d.clone())).collect();
        let held = recent.get(msg_id).expect("held");
        let read = read_known(store, msg_id).expect("stored");
        assert_eq!(held, read, "held and stored differ");
        let fast = answer(store, &live, held);
        assert_eq!(fast, answer(store, &live, read));
        fast
    }

    fn states(r: &Response) -> Vec<(String, String, u32, bool)> {
        let Response::Status { deliveries, .. } = r else {
            panic!("not a status: {r:?}");
        };
        deliveries
            .iter()
            .map(|d| {
                let p = d.peer.as_str().to_owned();
                (p, d.state.clone(), d.attempts, d.inclusion.is_some())
            })
            .collect()
    }

    fn st(p: &str, state: &str, attempts: u32, proof: bool) -> (String, String, u32, bool) {
        (p.to_owned(), state.to_owned(), attempts, proof)
    }

    #[tokio::test]
    async fn the_held_status_is_the_stored_one_through_every_state_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data, Durability::ProcessCrash).unwrap();
        let recent = Recent::default();
        // Not in the store's order (which sorts the recipients).
        let (header, record, deliveries) = submission(&["RS.MUP", "ME.UP", "BA.SPS", "MK.MVR"]);
        let id = header.id;
        store
            .submit(record.clone(), deliveries.clone(), None, vec![])
            .await
            .unwrap();
        recent.submitted(&header, record.created_at, &deliveries);
        let r = same(&store, &recent, id, &[]);
        let Response::Status { summary, .. } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(
            summary.to,
            ["BA.SPS", "ME.UP", "MK.MVR", "RS.MUP"].map(peer)
        );
        assert_eq!(
            states(&r),
            ["BA.SPS", "ME.UP", "MK.MVR", "RS.MUP"].map(|p| st(p, "queued", 0, false))
        );

        let change = |p: &str, attempts: u32, state: DeliveryState| Delivery {
            attempts,
            state,
            ..deliveries
                .iter()
                .find(|d| d.peer.as_str() == p)
                .unwrap()
                .clone()
        };
        let step = async |d: Delivery| {
            store.update_delivery(d.clone(), vec![]).await.unwrap();
            recent.stored(&d);
        };
        // On the wire (never stored): the live state shows, from either.
        let sending = change("ME.UP", 1, DeliveryState::Sending { since: T0 });
        let r = same(&store, &recent, id, std::slice::from_ref(&sending));
        assert_eq!(states(&r)[1], st("ME.UP", "sending", 1, false));

        let retrying = change(
            "ME.UP",
            1,
            DeliveryState::Retrying {
                next_at: T0.plus_millis(500),
                last_error: "connection refused".into(),
            },
        );
        step(retrying.clone()).await;
        assert_eq!(
            states(&same(&store, &recent, id, &[])),
            [
                st("BA.SPS", "queued", 0, false),
                st("ME.UP", "retrying", 1, false),
                st("MK.MVR", "queued", 0, false),
                st("RS.MUP", "queued", 0, false)
            ]
        );
        step(change(
            "ME.UP",
            2,
            DeliveryState::Delivered {
                at: T0.plus_millis(900),
                receipt: vec![7; 40],
            },
        ))
        .await;
        // A commit that returns late does not undo a later one.
        recent.stored(&retrying);
        step(change(
            "MK.MVR",
            1,
            DeliveryState::Rejected {
                at: T0.plus_millis(901),
                code: "unknown_kind".into(),
                detail: Some("no such thing".into()),
                receipt: vec![8; 40],
            },
        ))
        .await;
        step(change(
            "BA.SPS",
            0,
            DeliveryState::Expired {
                at: T0.plus_millis(60_000),
            },
        ))
        .await;
        assert!(!recent.get(id).unwrap().settled());
        step(change(
            "RS.MUP",
            0,
            DeliveryState::Failed {
                at: T0.plus_millis(902),
                reason: "not_a_member".into(),
            },
        ))
        .await;
        let r = same(&store, &recent, id, &[]);
        assert_eq!(
            states(&r),
            [
                st("BA.SPS", "expired", 0, false),
                st("ME.UP", "delivered", 2, false),
                st("MK.MVR", "rejected", 1, false),
                st("RS.MUP", "failed", 0, false)
            ]
        );
        assert!(recent.get(id).unwrap().settled());
        // The proof is read from the store whichever way the rest came.
        store
            .store_proofs(vec![(id, peer("ME.UP"), vec![9; 64])])
            .await
            .unwrap();
        let r = same(&store, &recent, id, &[]);
        assert_eq!(states(&r)[1], st("ME.UP", "delivered", 2, true));

        // A restart holds nothing: the store answers, the same.
        let before = recent.get(id).unwrap();
        store.close().unwrap();
        drop(store);
        let store = Store::open(&data, Durability::ProcessCrash).unwrap();
        let after = Recent::default();
        assert_eq!(after.get(id), None);
        assert_eq!(read_known(&store, id).unwrap(), before);
        assert_eq!(
            answer(&store, &HashMap::new(), read_known(&store, id).unwrap()),
            r
        );
        // An unknown message: the store says so.
        let other = MessageId::new_v7(T0.0, [4; 10]);
        assert!(matches!(
            read_known(&store, other).map_err(|e| *e),
            Err(Response::Error {
                code: ErrorCode::NotFound,
                ..
            })
        ));
    }
}
