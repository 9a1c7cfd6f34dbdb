//! Sending to peers: the outbox loop polls the core's [`Outbox`] and spawns
//! one task per send (connect with a bounded timeout, one bidirectional
//! stream per parcel, verify the receipt), then persists each change.
//! [`Deliveries`] holds the outbox with the loop's wake-up and the
//! `status` requests waiting for deliveries to settle.
//!
//! [`Outbox`]: crate::core::delivery::Outbox

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kurir_proto::batch::Remembered;
use kurir_proto::{AuthorityId, MessageId};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::links::{Links, RECEIPT_TIMEOUT, round_trip};
use super::status::Settled;
use super::{Authority, Base};
use crate::core::delivery::{Delivery, DeliveryState, Outbox, Outcome, QueueStat};
use crate::core::events;
use crate::core::inbound::{self, Expected};
use crate::metrics::{AttemptFailure, FinalFailure};

/// Largest receipt accepted from a peer (receipts are a few hundred bytes).
pub(super) const MAX_RECEIPT: usize = 64 * 1024;

/// The outbox, the outbox loop's wake-up, and the `status` requests
/// waiting for deliveries to become final.
pub(super) struct Deliveries {
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// `status` requests waiting for deliveries to become final.
    pub(super) settled: Settled,
}

impl Deliveries {
    pub(super) fn new(outbox: Outbox) -> Deliveries {
        Deliveries {
            outbox: Mutex::new(outbox),
            wake: Notify::new(),
            settled: Settled::default(),
        }
    }

    /// Queues stored deliveries and wakes the outbox loop.
    pub(super) fn queue(&self, deliveries: Vec<Delivery>) {
        if let Ok(mut outbox) = self.outbox.lock() {
            for d in deliveries {
                outbox.insert(d);
            }
        }
        self.wake.notify_one();
    }

    /// The roster in force lists these members: the open deliveries to
    /// any other that are not on the wire end (`failed`, `not_a_member`),
    /// logged, counted and stored with their audit entries before this
    /// returns. Returns how many ended.
    pub(super) async fn set_members(
        &self,
        base: &Base,
        members: impl IntoIterator<Item = AuthorityId>,
    ) -> usize {
        let now = base.now();
        let finished = match self.outbox.lock() {
            Ok(mut outbox) => outbox.set_members(members, now),
            Err(_) => return 0,
        };
        let n = finished.len();
        for d in finished {
            ended(base, &d);
            persist(base, self, d).await;
        }
        self.wake.notify_one();
        n
    }

    /// Wakes the outbox loop and whatever waits with it (at shutdown).
    pub(super) fn wake_all(&self) {
        self.wake.notify_waiters();
    }

    /// Open deliveries per peer, for the metrics.
    pub(super) fn queues(&self) -> Vec<QueueStat> {
        self.outbox.lock().map(|o| o.queues()).unwrap_or_default()
    }

    /// The outbox's live state of `msg_id`'s deliveries to `peers`, which
    /// knows about attempts on the wire right now.
    pub(super) fn live(
        &self,
        msg_id: MessageId,
        peers: &[AuthorityId],
    ) -> HashMap<AuthorityId, Delivery> {
        self.outbox
            .lock()
            .map(|o| {
                peers
                    .iter()
                    .filter_map(|p| o.get(msg_id, p).map(|d| (p.clone(), d.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What the outbox loop and its sends use.
struct Sends {
    base: Arc<Base>,
    authority: Arc<Authority>,
    deliveries: Arc<Deliveries>,
    links: Arc<Links>,
    /// Receipt signatures verified: a batch's is checked once.
    receipt_sigs: Remembered,
}

pub(super) async fn outbox_loop(
    base: Arc<Base>,
    authority: Arc<Authority>,
    deliveries: Arc<Deliveries>,
    links: Arc<Links>,
) {
    let sender = Arc::new(Sends {
        base,
        authority,
        deliveries,
        links,
        receipt_sigs: Remembered::default(),
    });
    let (base, deliveries) = (&sender.base, &sender.deliveries);
    let mut sends = JoinSet::new();
    let mut shutdown = base.shutdown.clone();
    loop {
        let now = base.now();
        let (orders, expired, wake_at) = {
            let Ok(mut outbox) = deliveries.outbox.lock() else {
                error!("outbox lock poisoned; stopping delivery");
                break;
            };
            let expired = outbox.handle_timeout(now);
            let mut orders = vec![];
            while let Some(order) = outbox.poll_send(now) {
                orders.push(order);
            }
            (orders, expired, outbox.next_wakeup())
        };
        for d in expired {
            ended(base, &d);
            persist(base, deliveries, d).await;
        }
        for order in orders {
            sends.spawn(send_one(
                sender.clone(),
                order.msg_id,
                order.peer,
                order.attempt,
            ));
        }
        let sleep = match wake_at {
            Some(t) => Duration::from_millis(t.0.saturating_sub(now.0).max(1)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = deliveries.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            Some(_) = sends.join_next(), if !sends.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Let sends on the wire finish (their outcome is persisted).
    while sends.join_next().await.is_some() {}
}

/// Logs and counts a delivery the relay ended: expired, or to a peer the
/// roster no longer lists.
fn ended(base: &Base, d: &Delivery) {
    match &d.state {
        DeliveryState::Expired { .. } => {
            warn!(msg_id = %d.msg_id, peer = %d.peer, "expired undelivered");
            base.metrics.delivery_failed(&d.peer, FinalFailure::Expired);
        }
        DeliveryState::Failed { reason, .. } => {
            warn!(
                msg_id = %d.msg_id, peer = %d.peer, %reason,
                "ended undelivered: the roster in force no longer lists the recipient"
            );
            base.metrics
                .delivery_failed(&d.peer, FinalFailure::NotAMember);
        }
        _ => {}
    }
}

/// Stores a delivery's new state, with the audit entry a final state gets.
async fn persist(base: &Base, deliveries: &Deliveries, d: Delivery) {
    let now = base.now();
    let audit = match events::delivery(now, &d) {
        Ok(entry) => entry.into_iter().collect(),
        Err(e) => {
            error!(error = %e, "a delivery state is stored without its audit entry");
            vec![]
        }
    };
    let last = d.state.is_final();
    match base.store.update_delivery(d.clone(), audit).await {
        Ok(_) if last => deliveries.settled.notify(d.msg_id),
        Ok(_) => {}
        Err(e) => {
            error!(msg_id = %d.msg_id, peer = %d.peer, error = %e, "cannot store a delivery state")
        }
    }
}

async fn send_one(sender: Arc<Sends>, msg_id: MessageId, peer: AuthorityId, attempt: u32) {
    let (base, deliveries) = (&sender.base, &sender.deliveries);
    let started = std::time::Instant::now();
    let result = attempt_delivery(&sender, msg_id, &peer).await;
    let now = base.now();
    let change = {
        let Ok(mut outbox) = deliveries.outbox.lock() else {
            return;
        };
        match result {
            Ok(outcome) => {
                if let Outcome::Rejected { code, .. } = &outcome
                    && code.is_transient()
                {
                    base.metrics
                        .attempt_failed(&peer, AttemptFailure::RejectedForNow(*code));
                }
                outbox.on_outcome(msg_id, &peer, outcome, now)
            }
            Err((why, e)) => {
                warn!(%msg_id, %peer, attempt, error = %e, "delivery attempt failed");
                base.metrics.attempt_failed(&peer, why);
                outbox.on_failure(msg_id, &peer, e, now)
            }
        }
    };
    if let Some(d) = change {
        let delivered = matches!(d.state, DeliveryState::Delivered { .. });
        match &d.state {
            DeliveryState::Delivered { .. } => {
                crate::crashpoint::hit("outbound.receipt_received");
                info!(%msg_id, %peer, attempt, "delivered, receipt verified");
                base.metrics.delivered.inc();
                base.metrics
                    .latency
                    .observe(started.elapsed().as_secs_f64());
            }
            DeliveryState::Rejected { code, .. } => {
                warn!(%msg_id, %peer, %code, "rejected by the recipient");
                base.metrics
                    .delivery_failed(&peer, FinalFailure::Rejected(code));
            }
            DeliveryState::Expired { .. } | DeliveryState::Failed { .. } => ended(base, &d),
            _ => {}
        }
        persist(base, deliveries, d).await;
        if delivered {
            crate::crashpoint::hit("outbound.receipt_stored");
        }
    }
    deliveries.wake.notify_one();
}

/// One attempt: its verified outcome, or why it failed (for the metrics)
/// and what to log and keep as the delivery's last error.
async fn attempt_delivery(
    sender: &Sends,
    msg_id: MessageId,
    peer: &AuthorityId,
) -> Result<Outcome, (AttemptFailure, String)> {
    let links = &sender.links;
    let store = |e: String| (AttemptFailure::Store, e);
    let bytes = sender
        .base
        .store
        .sent_parcel(msg_id)
        .map_err(|e| store(e.to_string()))?
        .ok_or_else(|| {
            store(format!(
                "message {msg_id} is not in the store, or its body was erased"
            ))
        })?;
    let envelope_digest = crate::store::envelope_of(&bytes)
        .map(kurir_proto::Digest::of_envelope)
        .ok_or_else(|| store(format!("the stored parcel of {msg_id} has no envelope")))?;
    let conn = links
        .connect(peer)
        .await
        .map_err(|e| (AttemptFailure::Connect, e))?;
    let exchange = round_trip(&conn, &bytes, MAX_RECEIPT, "no receipt");
    let receipt = match tokio::time::timeout(RECEIPT_TIMEOUT, exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            links.forget(peer, &conn).await;
            return Err((AttemptFailure::Exchange, e));
        }
        Err(_) => {
            links.forget(peer, &conn).await;
            return Err((
                AttemptFailure::Timeout,
                format!("no receipt within {} s", RECEIPT_TIMEOUT.as_secs()),
            ));
        }
    };
    let expected = Expected {
        msg_id,
        envelope_digest,
        me: &sender.authority.me,
        peer,
        parcel_len: bytes.len(),
    };
    inbound::check_receipt_with(
        &receipt,
        &*sender.authority.roster(),
        &expected,
        &sender.receipt_sigs,
    )
    .map_err(|e| (AttemptFailure::BadReceipt, e.to_string()))
}
