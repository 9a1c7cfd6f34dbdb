//! Sending to peers: the core's [`Outbox`] says what to send now, and one
//! task per send connects (with a bounded timeout), sends the parcel on a
//! bidirectional stream of its own, verifies the receipt, persists the
//! change and starts what the outbox has room for next. A submission
//! starts its first sends straight from the officer's task; the outbox
//! loop only wakes for retries and expiries. [`Deliveries`] holds the
//! outbox, the parcels kept for their attempts ([`Parcels`]), the loop's
//! wake-up, the `status` requests waiting for deliveries to settle and the
//! recent messages `status` answers from ([`Recent`]), each delivery state
//! there once its commit has returned.
//!
//! [`Recent`]: super::recent::Recent
//!
//! [`Outbox`]: crate::core::delivery::Outbox
//! [`Parcels`]: crate::core::parcels::Parcels

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use kurir_proto::batch::Remembered;
use kurir_proto::{AuthorityId, Digest, MessageId};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::links::{Links, RECEIPT_TIMEOUT, round_trip};
use super::recent::Recent;
use super::status::Settled;
use super::{Authority, Base};
use crate::core::delivery::{Delivery, DeliveryState, Outbox, Outcome, QueueStat};
use crate::core::events;
use crate::core::inbound::{self, Expected};
use crate::core::parcels::Parcels;
use crate::metrics::{AttemptFailure, FinalFailure};

/// Largest receipt accepted from a peer (receipts are a few hundred bytes).
pub(super) const MAX_RECEIPT: usize = 64 * 1024;

/// The outbox, the outbox loop's wake-up, the `status` requests waiting
/// for deliveries to become final, and what `status` answers from.
pub(super) struct Deliveries {
    outbox: Mutex<Outbox>,
    /// Sent parcels kept in memory for their deliveries' attempts.
    parcels: Mutex<Parcels>,
    wake: Notify,
    /// What starts sends, once the outbox loop runs.
    sends: OnceLock<Weak<Sends>>,
    /// `status` requests waiting for deliveries to become final.
    pub(super) settled: Settled,
    /// The messages submitted last, as stored.
    pub(super) recent: Recent,
}

impl Deliveries {
    pub(super) fn new(outbox: Outbox) -> Deliveries {
        Deliveries {
            outbox: Mutex::new(outbox),
            parcels: Mutex::new(Parcels::default()),
            wake: Notify::new(),
            sends: OnceLock::new(),
            settled: Settled::default(),
            recent: Recent::default(),
        }
    }

    /// Queues a stored submission's deliveries and starts the sends the
    /// outbox has room for at once (no wake-up of the outbox loop between).
    /// `parcel` is the parcel in clear, kept for the attempts if the bounds
    /// of [`Parcels`] allow; otherwise each attempt reads the store.
    pub(super) fn queue(&self, deliveries: Vec<Delivery>, parcel: Bytes) {
        let Some(msg_id) = deliveries.first().map(|d| d.msg_id) else {
            return;
        };
        let open = deliveries.iter().filter(|d| !d.state.is_final()).count();
        if let Ok(mut outbox) = self.outbox.lock() {
            // Kept before any of its deliveries can end (which drops it).
            let depth = deliveries
                .iter()
                .map(|d| outbox.depth(&d.peer) + 1)
                .max()
                .unwrap_or(0);
            if let Ok(mut parcels) = self.parcels.lock() {
                parcels.offer(msg_id, parcel, open, depth);
            }
            for d in deliveries {
                outbox.insert(d);
            }
        }
        match self.sends.get().and_then(Weak::upgrade) {
            Some(sends) => sends.dispatch(),
            None => self.wake.notify_one(),
        }
    }

    /// The parcel of `msg_id`, if kept in memory.
    fn parcel(&self, msg_id: MessageId) -> Option<Bytes> {
        self.parcels.lock().ok()?.get(msg_id)
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
            persist(base, self, d, Cause::Other).await;
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

/// What the outbox loop and its sends use, and the sends on the wire.
struct Sends {
    base: Arc<Base>,
    authority: Arc<Authority>,
    deliveries: Arc<Deliveries>,
    links: Arc<Links>,
    tasks: Mutex<JoinSet<()>>,
    /// Receipt signatures verified: a batch's is checked once.
    receipt_sigs: Remembered,
}

impl Sends {
    /// Ends what is due (expired, or to a peer the roster no longer
    /// lists) and starts every send the outbox has room for now; not once
    /// the relay is stopping.
    fn dispatch(self: &Arc<Self>) {
        if self.base.stopping() {
            return;
        }
        let now = self.base.now();
        let (orders, ended_now) = {
            let Ok(mut outbox) = self.deliveries.outbox.lock() else {
                error!("outbox lock poisoned; stopping delivery");
                return;
            };
            let ended_now = outbox.handle_timeout(now);
            let mut orders = vec![];
            while let Some(order) = outbox.poll_send(now) {
                orders.push(order);
            }
            (orders, ended_now)
        };
        if orders.is_empty() && ended_now.is_empty() {
            return;
        }
        let Ok(mut tasks) = self.tasks.lock() else {
            error!("send tasks lock poisoned; stopping delivery");
            return;
        };
        // Finished sends leave their results here until taken.
        while tasks.try_join_next().is_some() {}
        if !ended_now.is_empty() {
            let sends = self.clone();
            tasks.spawn(async move {
                for d in ended_now {
                    ended(&sends.base, &d);
                    persist(&sends.base, &sends.deliveries, d, Cause::Other).await;
                }
            });
        }
        for order in orders {
            tasks.spawn(send_one(
                self.clone(),
                order.msg_id,
                order.peer,
                order.attempt,
            ));
        }
    }
}

/// Aborts the sends still running when the outbox loop is dropped (the
/// relay's tasks aborted at shutdown).
struct AbortSends(Arc<Sends>);

impl Drop for AbortSends {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.0.tasks.lock() {
            tasks.abort_all();
        }
    }
}

/// Wakes for retries and expiries (and when asked), starting what is due;
/// at shutdown, waits for the sends on the wire (their outcome is
/// persisted).
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
        tasks: Mutex::new(JoinSet::new()),
        receipt_sigs: Remembered::default(),
    });
    let _abort = AbortSends(sender.clone());
    let (base, deliveries) = (&sender.base, &sender.deliveries);
    let _ = deliveries.sends.set(Arc::downgrade(&sender));
    let mut shutdown = base.shutdown.clone();
    loop {
        let now = base.now();
        sender.dispatch();
        let wake_at = match deliveries.outbox.lock() {
            Ok(outbox) => outbox.next_wakeup(),
            Err(_) => {
                error!("outbox lock poisoned; stopping delivery");
                break;
            }
        };
        let sleep = match wake_at {
            Some(t) => Duration::from_millis(t.0.saturating_sub(now.0).max(1)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = deliveries.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => break,
        }
    }
    // Let sends on the wire finish; none start once the relay is stopping.
    loop {
        let mut sends = match sender.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => break,
        };
        if sends.is_empty() {
            break;
        }
        while sends.join_next().await.is_some() {}
    }
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

/// What a delivery's new state was made from, as far as the store cares.
#[derive(Clone, Copy)]
enum Cause {
    /// An accepted receipt verified just now, with the receiver's log entry
    /// it names (`Outcome::Accepted`): the store need not read it again.
    Accepted(Option<(u64, Digest)>),
    /// Anything else: a rejection, a failed attempt, an expiry.
    Other,
}

/// Stores a delivery's new state, with the audit entry a final state gets.
async fn persist(base: &Base, deliveries: &Deliveries, d: Delivery, cause: Cause) {
    let now = base.now();
    let audit = match events::delivery(now, &d) {
        Ok(entry) => entry.into_iter().collect(),
        Err(e) => {
            error!(error = %e, "a delivery state is stored without its audit entry");
            vec![]
        }
    };
    let last = d.state.is_final();
    if last && let Ok(mut parcels) = deliveries.parcels.lock() {
        parcels.settled(d.msg_id);
    }
    let stored = match (&d.state, cause) {
        (DeliveryState::Delivered { .. }, Cause::Accepted(entry)) => {
            let store = &base.store;
            store
                .update_delivery_verified(d.clone(), audit, entry)
                .await
        }
        _ => base.store.update_delivery(d.clone(), audit).await,
    };
    match stored {
        Ok(_) => {
            // On disk: `status` may answer it, and the waiters read it.
            deliveries.recent.stored(&d);
            if last {
                deliveries.settled.notify(d.msg_id);
            }
        }
        Err(e) => {
            deliveries.recent.forget(d.msg_id);
            error!(msg_id = %d.msg_id, peer = %d.peer, error = %e, "cannot store a delivery state")
        }
    }
}

async fn send_one(sender: Arc<Sends>, msg_id: MessageId, peer: AuthorityId, attempt: u32) {
    let (base, deliveries) = (&sender.base, &sender.deliveries);
    let started = std::time::Instant::now();
    let result = attempt_delivery(&sender, msg_id, &peer).await;
    let now = base.now();
    let mut cause = Cause::Other;
    let change = {
        let Ok(mut outbox) = deliveries.outbox.lock() else {
            return;
        };
        match result {
            Ok(outcome) => {
                if let Outcome::Accepted { entry, .. } = &outcome {
                    cause = Cause::Accepted(*entry);
                }
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
    // The attempt made room on the wire: start what waited for it now,
    // while this change is being stored. A retry sets a time the loop must
    // wake for.
    sender.dispatch();
    if change
        .as_ref()
        .is_some_and(|d| matches!(d.state, DeliveryState::Retrying { .. }))
    {
        deliveries.wake.notify_one();
    }
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
        persist(base, deliveries, d, cause).await;
        if delivered {
            crate::crashpoint::hit("outbound.receipt_stored");
        }
    }
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
    // The parcel the submission built, if kept; else the stored one.
    let bytes = match sender.deliveries.parcel(msg_id) {
        Some(kept) => kept,
        None => {
            sender.base.metrics.parcel_reads.inc();
            sender
                .base
                .store
                .sent_parcel(msg_id)
                .map_err(|e| store(e.to_string()))?
                .map(Bytes::from)
                .ok_or_else(|| {
                    store(format!(
                        "message {msg_id} is not in the store, or its body was erased"
                    ))
                })?
        }
    };
    let envelope_digest = crate::store::envelope_of(&bytes)
        .map(kurir_proto::Digest::of_envelope)
        .ok_or_else(|| store(format!("the stored parcel of {msg_id} has no envelope")))?;
    let conn = links
        .connect(peer)
        .await
        .map_err(|e| (AttemptFailure::Connect, e))?;
    let exchange = round_trip(&conn, bytes.clone(), MAX_RECEIPT, "no receipt");
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
