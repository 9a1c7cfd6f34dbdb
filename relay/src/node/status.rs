//! The delivery status of a sent message, per recipient: the stored
//! state, or the outbox's live state while an attempt is under way, with
//! the receipt's inclusion proof once it has one. A `status` request with
//! `wait_ms` registers with [`Settled`] before it reads the status, and
//! the outbox wakes it once a final delivery state is on disk.

use std::collections::HashMap;
use std::sync::Mutex;

use kurir_proto::MessageId;
use kurir_proto::api::{DeliveryStatus, ErrorCode, MAX_STATUS_WAIT_MS, Response};
use tokio::sync::oneshot;

use super::Base;
use super::officer::{not_found, storage_failed, summary_of_outbound};
use super::outbox::Deliveries;
use crate::core::delivery::{Delivery, DeliveryState};

/// The delivery status of a sent message: per recipient, the stored state,
/// or the outbox's live state while an attempt is under way.
pub(super) fn status(base: &Base, outbox: &Deliveries, msg_id: MessageId) -> Response {
    let record = match base.store.outbound_head(msg_id) {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(msg_id),
        Err(e) => return storage_failed(e),
    };
    let stored = match base.store.deliveries_of(msg_id) {
        Ok(d) => d,
        Err(e) => return storage_failed(e),
    };
    // The outbox knows about attempts on the wire right now.
    let live = outbox.live(msg_id, &record.to);
    let deliveries = stored
        .into_iter()
        .map(|d| {
            live.get(&d.peer)
                .cloned()
                .filter(|_| !d.state.is_final())
                .unwrap_or(d)
        })
        .map(|d| {
            let inclusion = match d.state {
                DeliveryState::Delivered { .. } => base
                    .store
                    .receipt_proof(msg_id, &d.peer)
                    .unwrap_or_default(),
                _ => None,
            };
            DeliveryStatus {
                inclusion,
                ..delivery_status(d)
            }
        })
        .collect();
    match summary_of_outbound(&record) {
        Some(summary) => Response::Status {
            summary,
            deliveries,
        },
        None => Response::error(ErrorCode::Unavailable, "stored message is damaged"),
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
        s.waiting.lock().unwrap().values().map(Vec::len).sum()
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
}
