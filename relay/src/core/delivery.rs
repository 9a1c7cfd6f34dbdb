//! The sender's delivery state machine: per-peer outboxes, retries with
//! backoff and jitter, expiry.
//!
//! No I/O and no clock: the driver feeds in events with the current time and
//! carries out what comes back. Every state change is returned as a
//! changed [`Delivery`] for the driver to persist; the driver acknowledges nothing to
//! anyone before that is on disk.
//!
//! ```text
//!            poll_send                on_outcome(Accepted)
//!  Queued ─────────────▶ Sending ─────────────────────────▶ Delivered
//!    ▲                     │  │      on_outcome(Rejected, final)
//!    │ (restart)           │  └─────────────────────────────▶ Rejected
//!    │                     │ on_failure / transient rejection
//!    │                     ▼
//!    └──────────────── Retrying (next_at = now + backoff)
//!  any non-final state past expires_at ────────────────────▶ Expired
//!  Queued/Retrying to a peer the roster no longer lists ────▶ Failed
//! ```
//!
//! A recipient the roster in force no longer lists ([`Outbox::set_members`])
//! is never sent to again: its deliveries that are not on the wire end at
//! once as `Failed` (`not_a_member`); one on the wire ends with its outcome
//! (delivered, rejected), or as `Failed` if the attempt fails. So a message
//! in flight at the change is delivered once or ends once. A member added
//! again later does not get them: a final delivery is never reopened.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kurir_proto::audit::DeliveryFailure;
use kurir_proto::{AuthorityId, Digest, MessageId, RejectCode, Timestamp};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// When and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry, in ms.
    pub initial_ms: u64,
    /// Longest delay between attempts, in ms.
    pub max_ms: u64,
    /// At most this many deliveries to one peer at once. The default, 64,
    /// matches a peer's default `limits.max_streams_per_connection`: more
    /// would wait for stream credit on the one connection to that peer.
    pub max_in_flight_per_peer: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_ms: 1_000,
            max_ms: 300_000,
            max_in_flight_per_peer: 64,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` failures:
    /// `initial × 2^(attempts-1)`, capped at `max`, then "equal jitter": a
    /// uniformly random point in the upper half, so peers that failed
    /// together do not retry together.
    pub fn backoff(&self, attempts: u32, rng: &mut StdRng) -> u64 {
        let exp = attempts.saturating_sub(1).min(40);
        let delay = self
            .initial_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_ms)
            .max(1);
        let half = delay / 2;
        half + rng.random_range(0..=delay - half)
    }
}

/// Where one message stands with one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting to be sent.
    Queued,
    /// On the wire now (never persisted: a restart finds it `Queued`).
    Sending {
        /// When the attempt started.
        since: Timestamp,
    },
    /// The last attempt failed; the next one is due at `next_at`.
    Retrying {
        /// When to try again.
        next_at: Timestamp,
        /// Why the last attempt failed.
        last_error: String,
    },
    /// The peer accepted it and its signed receipt is stored.
    Delivered {
        /// When the receipt arrived.
        at: Timestamp,
        /// The signed receipt.
        #[serde(with = "kurir_proto::cbor::bytes")]
        receipt: Vec<u8>,
    },
    /// The peer refused it for good, with a signed rejection.
    Rejected {
        /// When the rejection arrived.
        at: Timestamp,
        /// The reason code.
        code: String,
        /// The peer's explanation.
        detail: Option<String>,
        /// The signed rejection.
        #[serde(with = "kurir_proto::cbor::bytes")]
        receipt: Vec<u8>,
    },
    /// Not delivered before `expires_at`.
    Expired {
        /// When the relay gave up.
        at: Timestamp,
    },
    /// Ended undelivered before `expires_at`, for a reason of the relay's
    /// own (no peer signed anything).
    Failed {
        /// When the relay gave up.
        at: Timestamp,
        /// The reason code, a [`DeliveryFailure`] (`not_a_member`).
        reason: String,
    },
}

impl DeliveryState {
    /// Whether nothing more will happen to it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered { .. }
                | DeliveryState::Rejected { .. }
                | DeliveryState::Expired { .. }
                | DeliveryState::Failed { .. }
        )
    }

    /// A one-word name: queued, sending, retrying, delivered, rejected,
    /// expired, failed.
    pub fn name(&self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending { .. } => "sending",
            DeliveryState::Retrying { .. } => "retrying",
            DeliveryState::Delivered { .. } => "delivered",
            DeliveryState::Rejected { .. } => "rejected",
            DeliveryState::Expired { .. } => "expired",
            DeliveryState::Failed { .. } => "failed",
        }
    }
}

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message.
    pub msg_id: MessageId,
    /// The recipient authority.
    pub peer: AuthorityId,
    /// From the signed header.
    pub expires_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
}

impl Delivery {
    /// A new delivery of `msg_id` to `peer`, queued, no attempt made yet.
    pub fn queued(msg_id: MessageId, peer: AuthorityId, expires_at: Timestamp) -> Delivery {
        Delivery {
            msg_id,
            peer,
            expires_at,
            attempts: 0,
            state: DeliveryState::Queued,
        }
    }
}

/// The driver must send this message to this peer now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOrder {
    /// The message.
    pub msg_id: MessageId,
    /// The recipient.
    pub peer: AuthorityId,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// What came back from the peer, already verified by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A signed receipt with status accepted.
    Accepted {
        /// The receipt bytes.
        receipt: Vec<u8>,
        /// The receiver's log entry the receipt names (index, leaf hash),
        /// read when it was verified: the store keeps it to ask for the
        /// entry's inclusion proof, without reading the receipt again.
        entry: Option<(u64, Digest)>,
    },
    /// A signed rejection.
    Rejected {
        /// The reason.
        code: RejectCode,
        /// The peer's explanation.
        detail: Option<String>,
        /// The rejection bytes.
        receipt: Vec<u8>,
    },
}

/// A delivery's place in the outbox: message, then recipient.
type Key = (MessageId, AuthorityId);

/// A peer's number in the outbox: the indexes hold it instead of a copy of
/// the peer's name for every delivery.
type PeerNo = u32;

/// One peer's share of the outbox.
#[derive(Debug)]
struct PeerQueue {
    peer: AuthorityId,
    /// Deliveries that may be sent now (queued, or retrying with their
    /// retry time passed), in message-id order.
    ready: BTreeSet<MessageId>,
    /// Deliveries on the wire.
    in_flight: usize,
    /// Open deliveries of any state: their number is the queue depth, the
    /// first is the oldest (message ids begin with their submission time).
    open: BTreeSet<MessageId>,
}

/// One peer's queue, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStat {
    /// The recipient.
    pub peer: AuthorityId,
    /// Open deliveries to it (queued, sending or retrying).
    pub depth: usize,
    /// The oldest of them: the lowest message id, whose UUIDv7 time is when
    /// it was submitted.
    pub oldest: MessageId,
}

impl QueueStat {
    /// How long the oldest open delivery has waited at `now`, in
    /// milliseconds (0 if its id's time is ahead of `now`).
    pub fn oldest_age_millis(&self, now: Timestamp) -> u64 {
        now.0.saturating_sub(self.oldest.unix_millis())
    }
}

/// The per-peer outboxes of one relay.
///
/// Every event costs O(log n) in the number of open deliveries: besides the
/// deliveries themselves the outbox keeps, per peer, the set of deliveries
/// ready to send; the set of peers that have room, keyed by their oldest
/// ready message (so the next send is the oldest ready delivery to any peer
/// with room, as a scan in message-id order would find it); the retries
/// waiting for their time; and the deliveries not on the wire by expiry.
#[derive(Debug)]
pub struct Outbox {
    policy: RetryPolicy,
    rng: StdRng,
    /// Every delivery that is not final.
    open: BTreeMap<(MessageId, PeerNo), Delivery>,
    /// Every peer seen, by number (peers are the roster's few members).
    peers: Vec<PeerQueue>,
    peer_nos: HashMap<AuthorityId, PeerNo>,
    /// `(oldest ready message, peer)` for each peer with a ready delivery
    /// and fewer than `max_in_flight_per_peer` on the wire.
    heads: BTreeSet<Key>,
    /// Retrying deliveries whose time has not come yet, by
    /// `min(next_at, expires_at)`.
    retries: BTreeSet<(Timestamp, MessageId, PeerNo)>,
    /// Every open delivery that is not on the wire, by `expires_at`.
    expiries: BTreeSet<(Timestamp, MessageId, PeerNo)>,
    /// The members of the roster in force, once the driver has told
    /// ([`Outbox::set_members`]); until then every peer is one.
    members: Option<BTreeSet<AuthorityId>>,
    /// Peers the roster no longer lists that may hold open deliveries not
    /// on the wire: [`Outbox::handle_timeout`] ends them.
    sweep: BTreeSet<PeerNo>,
}

impl Outbox {
    /// An empty outbox. `seed` drives the jitter; use a fixed one in tests.
    pub fn new(policy: RetryPolicy, seed: u64) -> Self {
        Outbox {
            policy,
            rng: StdRng::seed_from_u64(seed),
            open: BTreeMap::new(),
            peers: Vec::new(),
            peer_nos: HashMap::new(),
            heads: BTreeSet::new(),
            retries: BTreeSet::new(),
            expiries: BTreeSet::new(),
            members: None,
            sweep: BTreeSet::new(),
        }
    }

    /// The roster in force lists these members (at start, and after every
    /// roster change). The open deliveries to a peer it does not list that
    /// are not on the wire end as `Failed` (`not_a_member`) and are
    /// returned to persist; one on the wire ends with its outcome, or as
    /// `Failed` if the attempt fails. A member listed again gets new
    /// deliveries only.
    pub fn set_members(
        &mut self,
        members: impl IntoIterator<Item = AuthorityId>,
        now: Timestamp,
    ) -> Vec<Delivery> {
        let members: BTreeSet<AuthorityId> = members.into_iter().collect();
        for (p, q) in self.peers.iter().enumerate() {
            let p = PeerNo::try_from(p).unwrap_or(PeerNo::MAX);
            if !members.contains(&q.peer) && !q.open.is_empty() {
                self.sweep.insert(p);
            }
        }
        // A peer's place in `heads` depends on its membership.
        let peers: Vec<PeerNo> = (0..self.peers.len())
            .map(|p| PeerNo::try_from(p).unwrap_or(PeerNo::MAX))
            .collect();
        for &p in &peers {
            self.unhead(p);
        }
        self.members = Some(members);
        for &p in &peers {
            self.rehead(p);
        }
        self.end_non_members(now)
    }

    /// Whether the roster in force lists `peer` (every peer does until
    /// [`Outbox::set_members`] is called).
    fn is_member(&self, peer: &AuthorityId) -> bool {
        self.members.as_ref().is_none_or(|m| m.contains(peer))
    }

    /// Ends the open deliveries not on the wire to the peers in `sweep`.
    fn end_non_members(&mut self, now: Timestamp) -> Vec<Delivery> {
        let mut ended = vec![];
        for p in std::mem::take(&mut self.sweep) {
            let Some(q) = self.peers.get(p as usize) else {
                continue;
            };
            if self.is_member(&q.peer) {
                continue;
            }
            let ids: Vec<MessageId> = q.open.iter().copied().collect();
            for msg_id in ids {
                let on_wire = self
                    .open
                    .get(&(msg_id, p))
                    .is_none_or(|d| matches!(d.state, DeliveryState::Sending { .. }));
                if !on_wire {
                    ended.extend(self.finish_unchecked((msg_id, p), not_a_member(now)));
                }
            }
        }
        ended.sort_by(|a, b| (a.msg_id, &a.peer).cmp(&(b.msg_id, &b.peer)));
        ended
    }

    /// Takes a delivery in (a new submission, or one loaded at start). A
    /// delivery that was `Sending` when the relay stopped is queued again;
    /// final ones are ignored. One already open under the same message and
    /// peer is replaced.
    pub fn insert(&mut self, mut d: Delivery) {
        if d.state.is_final() {
            return;
        }
        if matches!(d.state, DeliveryState::Sending { .. }) {
            d.state = DeliveryState::Queued;
        }
        let p = self.peer_no(&d.peer);
        if !self.is_member(&d.peer) {
            // Never sent: handle_timeout ends it.
            self.sweep.insert(p);
        }
        if let Some(old) = self.open.remove(&(d.msg_id, p)) {
            self.detach(&old, p);
        }
        self.unhead(p);
        self.expiries.insert((d.expires_at, d.msg_id, p));
        match &d.state {
            DeliveryState::Retrying { next_at, .. } => {
                self.retries
                    .insert(((*next_at).min(d.expires_at), d.msg_id, p));
            }
            _ => {
                if let Some(q) = self.queue(p) {
                    q.ready.insert(d.msg_id);
                }
            }
        }
        if let Some(q) = self.queue(p) {
            q.open.insert(d.msg_id);
        }
        self.rehead(p);
        self.open.insert((d.msg_id, p), d);
    }

    /// The next delivery due now, if any peer has room for it; it becomes
    /// `Sending`. Call until it returns `None`.
    ///
    /// Of the deliveries that are queued, or retrying with `next_at <= now`,
    /// not expired, and whose peer has fewer than `max_in_flight_per_peer`
    /// on the wire, the one with the lowest message id (then peer) goes
    /// first.
    pub fn poll_send(&mut self, now: Timestamp) -> Option<SendOrder> {
        self.promote(now);
        loop {
            let (msg_id, peer) = self.heads.first()?;
            let (msg_id, p) = (*msg_id, *self.peer_nos.get(peer)?);
            let expires_at = self.open.get(&(msg_id, p))?.expires_at;
            self.unhead(p);
            let q = self.queue(p)?;
            q.ready.remove(&msg_id);
            if now >= expires_at {
                // Never sent again; handle_timeout expires it.
                self.rehead(p);
                continue;
            }
            q.in_flight += 1;
            self.rehead(p);
            self.expiries.remove(&(expires_at, msg_id, p));
            let d = self.open.get_mut(&(msg_id, p))?;
            d_start(d, now);
            return Some(SendOrder {
                msg_id: d.msg_id,
                peer: d.peer.clone(),
                attempt: d.attempts,
            });
        }
    }

    /// The peer answered with a verified receipt or rejection.
    pub fn on_outcome(
        &mut self,
        msg_id: MessageId,
        peer: &AuthorityId,
        outcome: Outcome,
        now: Timestamp,
    ) -> Option<Delivery> {
        match outcome {
            Outcome::Accepted { receipt, .. } => {
                self.finish(msg_id, peer, DeliveryState::Delivered { at: now, receipt })
            }
            Outcome::Rejected { code, detail, .. } if code.is_transient() => {
                let why = match detail {
                    Some(d) => format!("{} rejected it for now ({code}): {d}", peer),
                    None => format!("{} rejected it for now ({code})", peer),
                };
                self.on_failure(msg_id, peer, why, now)
            }
            Outcome::Rejected {
                code,
                detail,
                receipt,
            } => self.finish(
                msg_id,
                peer,
                DeliveryState::Rejected {
                    at: now,
                    code: code.as_str().to_owned(),
                    detail,
                    receipt,
                },
            ),
        }
    }

    /// The attempt failed without an answer (connection refused, timeout,
    /// unverifiable receipt): retry after a backoff, unless that would be past
    /// the expiry.
    pub fn on_failure(
        &mut self,
        msg_id: MessageId,
        peer: &AuthorityId,
        error: String,
        now: Timestamp,
    ) -> Option<Delivery> {
        let p = *self.peer_nos.get(peer)?;
        let d = self.open.get(&(msg_id, p))?;
        if !matches!(d.state, DeliveryState::Sending { .. }) {
            return None;
        }
        if !self.is_member(peer) {
            return self.finish_unchecked((msg_id, p), not_a_member(now));
        }
        let next_at = now.plus_millis(self.policy.backoff(d.attempts, &mut self.rng));
        let expires_at = d.expires_at;
        if next_at >= expires_at {
            return self.finish_unchecked((msg_id, p), DeliveryState::Expired { at: now });
        }
        self.unhead(p);
        if let Some(q) = self.queue(p) {
            q.in_flight = q.in_flight.saturating_sub(1);
        }
        self.rehead(p);
        self.expiries.insert((expires_at, msg_id, p));
        self.retries.insert((next_at, msg_id, p));
        let d = self.open.get_mut(&(msg_id, p))?;
        d.state = DeliveryState::Retrying {
            next_at,
            last_error: error,
        };
        Some(d.clone())
    }

    /// Expires every open delivery past its `expires_at` (not one on the
    /// wire: its outcome decides), and ends those to a peer the roster no
    /// longer lists that were queued since ([`Outbox::set_members`]).
    /// Returns the changes to persist, in message-id order.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<Delivery> {
        let mut due = self.end_non_members(now);
        while let Some(&(at, msg_id, p)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.remove(&(at, msg_id, p));
            due.extend(self.finish_unchecked((msg_id, p), DeliveryState::Expired { at: now }));
        }
        due.sort_by(|a, b| (a.msg_id, &a.peer).cmp(&(b.msg_id, &b.peer)));
        due
    }

    /// When the driver should call [`Outbox::handle_timeout`] and
    /// [`Outbox::poll_send`] next, if nothing else happens first: the
    /// earliest retry not yet due (or its expiry, if sooner). Deliveries
    /// ready to send are not woken for: they go at once, or when an attempt
    /// to their peer ends and makes room (the driver calls again then), and
    /// their expiry is handled on that call.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.retries.first().map(|(at, ..)| *at)
    }

    /// Open deliveries to `peer` (queued, sending or retrying).
    pub fn depth(&self, peer: &AuthorityId) -> usize {
        self.peer_nos
            .get(peer)
            .and_then(|p| self.peers.get(*p as usize))
            .map_or(0, |q| q.open.len())
    }

    /// Open deliveries per peer (queued, sending or retrying).
    pub fn depth_by_peer(&self) -> HashMap<AuthorityId, usize> {
        self.peers
            .iter()
            .filter(|q| !q.open.is_empty())
            .map(|q| (q.peer.clone(), q.open.len()))
            .collect()
    }

    /// Every peer with open deliveries: how many, and the oldest; by peer.
    pub fn queues(&self) -> Vec<QueueStat> {
        let mut queues: Vec<QueueStat> = self
            .peers
            .iter()
            .filter_map(|q| {
                Some(QueueStat {
                    peer: q.peer.clone(),
                    depth: q.open.len(),
                    oldest: *q.open.first()?,
                })
            })
            .collect();
        queues.sort_by(|a, b| a.peer.cmp(&b.peer));
        queues
    }

    /// A delivery that is still open.
    pub fn get(&self, msg_id: MessageId, peer: &AuthorityId) -> Option<&Delivery> {
        self.open.get(&(msg_id, *self.peer_nos.get(peer)?))
    }

    /// The peer's number, given on first sight.
    fn peer_no(&mut self, peer: &AuthorityId) -> PeerNo {
        if let Some(p) = self.peer_nos.get(peer) {
            return *p;
        }
        let p = PeerNo::try_from(self.peers.len()).unwrap_or(PeerNo::MAX);
        self.peers.push(PeerQueue {
            peer: peer.clone(),
            ready: BTreeSet::new(),
            in_flight: 0,
            open: BTreeSet::new(),
        });
        self.peer_nos.insert(peer.clone(), p);
        p
    }

    fn queue(&mut self, p: PeerNo) -> Option<&mut PeerQueue> {
        self.peers.get_mut(p as usize)
    }

    /// Moves the retries whose time has come to their peers' ready sets.
    fn promote(&mut self, now: Timestamp) {
        while let Some(&(at, msg_id, p)) = self.retries.first() {
            if at > now {
                break;
            }
            self.retries.remove(&(at, msg_id, p));
            let ready = self
                .open
                .get(&(msg_id, p))
                .is_some_and(|d| now < d.expires_at);
            // An expired one waits for handle_timeout.
            if ready {
                self.unhead(p);
                if let Some(q) = self.queue(p) {
                    q.ready.insert(msg_id);
                }
                self.rehead(p);
            }
        }
    }

    /// The peer's entry in `heads`, if it has one.
    fn head_of(&self, p: PeerNo) -> Option<Key> {
        let q = self.peers.get(p as usize)?;
        if q.in_flight >= self.policy.max_in_flight_per_peer || !self.is_member(&q.peer) {
            return None;
        }
        Some((*q.ready.first()?, q.peer.clone()))
    }

    /// Call before changing a peer's ready set or in-flight count ...
    fn unhead(&mut self, p: PeerNo) {
        if let Some(head) = self.head_of(p) {
            self.heads.remove(&head);
        }
    }

    /// ... and this after.
    fn rehead(&mut self, p: PeerNo) {
        if let Some(head) = self.head_of(p) {
            self.heads.insert(head);
        }
    }

    /// Takes a delivery just removed from `open` out of every index.
    fn detach(&mut self, d: &Delivery, p: PeerNo) {
        self.unhead(p);
        match &d.state {
            DeliveryState::Sending { .. } => {
                if let Some(q) = self.queue(p) {
                    q.in_flight = q.in_flight.saturating_sub(1);
                }
            }
            state => {
                self.expiries.remove(&(d.expires_at, d.msg_id, p));
                if let DeliveryState::Retrying { next_at, .. } = state {
                    self.retries
                        .remove(&((*next_at).min(d.expires_at), d.msg_id, p));
                }
                if let Some(q) = self.queue(p) {
                    q.ready.remove(&d.msg_id);
                }
            }
        }
        if let Some(q) = self.queue(p) {
            q.open.remove(&d.msg_id);
        }
        self.rehead(p);
    }

    fn finish(
        &mut self,
        msg_id: MessageId,
        peer: &AuthorityId,
        state: DeliveryState,
    ) -> Option<Delivery> {
        let p = *self.peer_nos.get(peer)?;
        if !matches!(
            self.open.get(&(msg_id, p)).map(|d| &d.state),
            Some(DeliveryState::Sending { .. })
        ) {
            return None;
        }
        self.finish_unchecked((msg_id, p), state)
    }

    fn finish_unchecked(
        &mut self,
        key: (MessageId, PeerNo),
        state: DeliveryState,
    ) -> Option<Delivery> {
        let mut d = self.open.remove(&key)?;
        self.detach(&d, key.1);
        d.state = state;
        Some(d)
    }
}

fn not_a_member(now: Timestamp) -> DeliveryState {
    DeliveryState::Failed {
        at: now,
        reason: DeliveryFailure::NotAMember.as_str().to_owned(),
    }
}

fn d_start(d: &mut Delivery, now: Timestamp) {
    d.attempts += 1;
    d.state = DeliveryState::Sending { since: now };
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_795_874_050_000);
    const HOUR: u64 = 3_600_000;

    fn peer(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn delivery(n: u8, to: &str) -> Delivery {
        Delivery::queued(
            MessageId::new_v7(T0.0 + u64::from(n), [n; 10]),
            peer(to),
            T0.plus_millis(24 * HOUR),
        )
    }

    fn accepted() -> Outcome {
        Outcome::Accepted {
            receipt: vec![1, 2, 3],
            entry: None,
        }
    }

    #[test]
    fn send_in_order_and_deliver() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        o.insert(delivery(2, "ME.UP"));
        o.insert(delivery(1, "ME.UP"));
        let first = o.poll_send(T0).unwrap();
        assert_eq!(first.msg_id, delivery(1, "ME.UP").msg_id);
        assert_eq!(first.attempt, 1);
        let second = o.poll_send(T0).unwrap();
        assert_eq!(second.msg_id, delivery(2, "ME.UP").msg_id);
        assert_eq!(o.poll_send(T0), None, "both are on the wire");

        let done = o
            .on_outcome(first.msg_id, &first.peer, accepted(), T0.plus_millis(5))
            .unwrap();
        assert_eq!(
            done.state,
            DeliveryState::Delivered {
                at: T0.plus_millis(5),
                receipt: vec![1, 2, 3]
            }
        );
        assert!(
            o.get(first.msg_id, &first.peer).is_none(),
            "final leaves the outbox"
        );
        // A duplicate outcome for a finished delivery changes nothing.
        assert_eq!(
            o.on_outcome(first.msg_id, &first.peer, accepted(), T0),
            None
        );
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            initial_ms: 1_000,
            max_ms: 60_000,
            max_in_flight_per_peer: 1,
        };
        let mut o = Outbox::new(policy, 7);
        let d = delivery(1, "BA.SPS");
        o.insert(d.clone());
        let mut now = T0;
        let mut delays = vec![];
        for attempt in 1..=10u32 {
            let order = o.poll_send(now).unwrap();
            assert_eq!(order.attempt, attempt);
            let change = o
                .on_failure(d.msg_id, &d.peer, "refused".into(), now)
                .unwrap();
            let DeliveryState::Retrying {
                next_at,
                last_error,
            } = change.state
            else {
                panic!("expected retrying, got {:?}", change.state);
            };
            assert_eq!(last_error, "refused");
            let delay = next_at.0 - now.0;
            let nominal = (1_000u64 << (attempt - 1)).min(60_000);
            assert!(
                (nominal / 2..=nominal).contains(&delay),
                "attempt {attempt}: delay {delay} outside [{}, {nominal}]",
                nominal / 2
            );
            delays.push(delay);
            // Not due a moment before next_at; due at next_at.
            assert_eq!(o.poll_send(Timestamp(next_at.0 - 1)), None);
            now = next_at;
        }
        assert!(delays[9] <= 60_000, "capped");
        // Same seed, same delays: the jitter is reproducible.
        let mut again = Outbox::new(policy, 7);
        again.insert(d.clone());
        let mut now = T0;
        for &expected in &delays {
            again.poll_send(now).unwrap();
            let c = again
                .on_failure(d.msg_id, &d.peer, "x".into(), now)
                .unwrap();
            let DeliveryState::Retrying { next_at, .. } = c.state else {
                panic!()
            };
            assert_eq!(next_at.0 - now.0, expected);
            now = next_at;
        }
    }

    /// Depth and the oldest open delivery per peer, whatever its state:
    /// the oldest moves on only when it becomes final.
    #[test]
    fn queues_give_depth_and_oldest_per_peer() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        assert_eq!(o.queues(), vec![]);
        o.insert(delivery(30, "ME.UP"));
        o.insert(delivery(10, "ME.UP"));
        o.insert(delivery(20, "MK.MVR"));
        let q = o.queues();
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].peer.clone(), q[0].depth), (peer("ME.UP"), 2));
        assert_eq!(q[0].oldest, delivery(10, "ME.UP").msg_id);
        // The id's time is T0 + 10 ms; 5 s later it has waited 4990 ms.
        assert_eq!(q[0].oldest_age_millis(T0.plus_millis(5_000)), 4_990);
        assert_eq!(q[0].oldest_age_millis(T0), 0, "a clock behind the id");
        assert_eq!((q[1].peer.clone(), q[1].depth), (peer("MK.MVR"), 1));
        // On the wire, then retrying: still the oldest.
        let first = o.poll_send(T0).unwrap();
        assert_eq!(first.msg_id, delivery(10, "ME.UP").msg_id);
        assert_eq!(o.queues()[0].oldest, first.msg_id);
        o.on_failure(first.msg_id, &first.peer, "down".into(), T0)
            .unwrap();
        assert_eq!(o.queues()[0].oldest, first.msg_id);
        assert_eq!(o.queues()[0].depth, 2);
        // Delivered: the next one is the oldest.
        let t = T0.plus_millis(HOUR);
        while let Some(order) = o.poll_send(t) {
            if order.msg_id == first.msg_id {
                o.on_outcome(order.msg_id, &order.peer, accepted(), t)
                    .unwrap();
            }
        }
        let q = o.queues();
        assert_eq!(q[0].oldest, delivery(30, "ME.UP").msg_id);
        assert_eq!(q[0].depth, 1);
    }

    #[test]
    fn per_peer_limit_does_not_block_other_peers() {
        let policy = RetryPolicy {
            max_in_flight_per_peer: 1,
            ..RetryPolicy::default()
        };
        let mut o = Outbox::new(policy, 1);
        o.insert(delivery(1, "ME.UP"));
        o.insert(delivery(2, "ME.UP"));
        o.insert(delivery(3, "MK.MVR"));
        assert_eq!(o.poll_send(T0).unwrap().peer, peer("ME.UP"));
        assert_eq!(o.poll_send(T0).unwrap().peer, peer("MK.MVR"));
        assert_eq!(o.poll_send(T0), None);
        let id1 = delivery(1, "ME.UP").msg_id;
        o.on_outcome(id1, &peer("ME.UP"), accepted(), T0).unwrap();
        assert_eq!(o.poll_send(T0).unwrap().msg_id, delivery(2, "ME.UP").msg_id);
        assert_eq!(o.depth_by_peer()[&peer("ME.UP")], 1);
    }

    #[test]
    fn final_and_transient_rejections() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        let d = delivery(1, "ME.UP");
        o.insert(d.clone());
        o.poll_send(T0).unwrap();
        let change = o
            .on_outcome(
                d.msg_id,
                &d.peer,
                Outcome::Rejected {
                    code: RejectCode::RateLimited,
                    detail: None,
                    receipt: vec![9],
                },
                T0,
            )
            .unwrap();
        assert_eq!(change.state.name(), "retrying", "rate_limited is transient");

        let next = o.next_wakeup().unwrap();
        o.poll_send(next).unwrap();
        let change = o
            .on_outcome(
                d.msg_id,
                &d.peer,
                Outcome::Rejected {
                    code: RejectCode::KindNotAllowed,
                    detail: Some("no".into()),
                    receipt: vec![9],
                },
                next,
            )
            .unwrap();
        assert_eq!(change.attempts, 2);
        assert!(matches!(
            change.state,
            DeliveryState::Rejected { ref code, .. } if code == "kind_not_allowed"
        ));
    }

    #[test]
    fn expiry() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        let d = delivery(1, "ME.UP");
        o.insert(d.clone());
        assert_eq!(
            o.next_wakeup(),
            None,
            "queued work is sent at once, not woken for"
        );
        // Nothing is sent after expiry, and the timeout expires it.
        assert_eq!(o.poll_send(d.expires_at), None);
        let changes = o.handle_timeout(d.expires_at);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].state,
            DeliveryState::Expired { at: d.expires_at }
        );
        assert!(o.handle_timeout(d.expires_at).is_empty());

        // A retry that would fall after expiry expires instead.
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        let short = Delivery {
            expires_at: T0.plus_millis(100),
            ..delivery(2, "ME.UP")
        };
        o.insert(short.clone());
        o.poll_send(T0).unwrap();
        let c = o
            .on_failure(short.msg_id, &short.peer, "down".into(), T0)
            .unwrap();
        assert_eq!(c.state.name(), "expired");
    }

    #[test]
    fn a_restart_requeues_what_was_on_the_wire() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        let mut d = delivery(1, "ME.UP");
        d.state = DeliveryState::Sending { since: T0 };
        d.attempts = 3;
        o.insert(d.clone());
        let order = o.poll_send(T0).unwrap();
        assert_eq!(order.attempt, 4);
        // Final deliveries loaded at start are not resent.
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        o.insert(Delivery {
            state: DeliveryState::Expired { at: T0 },
            ..delivery(2, "ME.UP")
        });
        assert_eq!(o.poll_send(T0), None);
    }

    #[test]
    fn an_attempt_that_fails_into_expiry_frees_one_slot_not_two() {
        let policy = RetryPolicy {
            initial_ms: 1_000,
            max_ms: 1_000,
            max_in_flight_per_peer: 2,
        };
        let mut o = Outbox::new(policy, 3);
        let short = Delivery {
            expires_at: T0.plus_millis(100),
            ..delivery(1, "ME.UP")
        };
        o.insert(short.clone());
        for n in 2..=5 {
            o.insert(delivery(n, "ME.UP"));
        }
        assert_eq!(o.poll_send(T0).unwrap().msg_id, short.msg_id);
        assert_eq!(o.poll_send(T0).unwrap().msg_id, delivery(2, "ME.UP").msg_id);
        assert_eq!(o.poll_send(T0), None, "two on the wire");
        let c = o
            .on_failure(short.msg_id, &short.peer, "down".into(), T0)
            .unwrap();
        assert_eq!(c.state.name(), "expired");
        assert_eq!(o.poll_send(T0).unwrap().msg_id, delivery(3, "ME.UP").msg_id);
        assert_eq!(o.poll_send(T0), None, "still at most two on the wire");
    }

    #[test]
    fn a_due_retry_waits_for_room_without_waking_the_driver() {
        let policy = RetryPolicy {
            initial_ms: 1_000,
            max_ms: 1_000,
            max_in_flight_per_peer: 1,
        };
        let mut o = Outbox::new(policy, 5);
        let a = delivery(1, "ME.UP");
        let b = delivery(2, "ME.UP");
        o.insert(a.clone());
        o.insert(b.clone());
        o.poll_send(T0).unwrap();
        let c = o.on_failure(a.msg_id, &a.peer, "x".into(), T0).unwrap();
        let DeliveryState::Retrying { next_at, .. } = c.state else {
            panic!("expected retrying, got {:?}", c.state);
        };
        assert_eq!(o.next_wakeup(), Some(next_at));
        // b takes the slot; a falls due while the peer is full.
        assert_eq!(o.poll_send(T0).unwrap().msg_id, b.msg_id);
        assert_eq!(o.poll_send(next_at), None);
        assert_eq!(o.next_wakeup(), None, "nothing to wake for until b ends");
        o.on_outcome(b.msg_id, &b.peer, accepted(), next_at)
            .unwrap();
        let again = o.poll_send(next_at).unwrap();
        assert_eq!((again.msg_id, again.attempt), (a.msg_id, 2));
    }

    #[test]
    fn a_removed_members_deliveries_end_once_and_a_readded_member_gets_only_new_ones() {
        let mut o = Outbox::new(RetryPolicy::default(), 3);
        let gone = peer("MK.MVR");
        for n in 1..=4 {
            o.insert(delivery(n, "MK.MVR"));
        }
        o.insert(delivery(9, "ME.UP"));
        for _ in 0..5 {
            o.poll_send(T0).unwrap();
        }
        // 1 and 2 stay on the wire, 3 and 4 wait for a retry, 5 is queued.
        let later = T0.plus_millis(10);
        for n in [3, 4] {
            o.on_failure(delivery(n, "MK.MVR").msg_id, &gone, "down".into(), T0)
                .unwrap();
        }
        o.insert(delivery(5, "MK.MVR"));

        let members = ["RS.MUP", "BA.SPS", "ME.UP"].map(peer);
        let ended = o.set_members(members.clone(), later);
        let ids: Vec<MessageId> = ended.iter().map(|d| d.msg_id).collect();
        assert_eq!(
            ids,
            [3, 4, 5].map(|n| delivery(n, "MK.MVR").msg_id),
            "every delivery to the removed member not on the wire ends now"
        );
        for d in &ended {
            assert_eq!(
                d.state,
                DeliveryState::Failed {
                    at: later,
                    reason: "not_a_member".into()
                }
            );
            assert!(d.state.is_final());
            assert_eq!(d.state.name(), "failed");
        }
        assert_eq!(o.depth_by_peer()[&gone], 2, "the two on the wire stay open");
        // Nothing is sent to it again, however late.
        assert_eq!(o.poll_send(T0.plus_millis(HOUR)), None);
        assert_eq!(o.next_wakeup(), None);

        // In flight at the change: delivered once, or ended once.
        let (d1, d2) = (delivery(1, "MK.MVR"), delivery(2, "MK.MVR"));
        let done = o.on_outcome(d1.msg_id, &gone, accepted(), later).unwrap();
        assert!(matches!(done.state, DeliveryState::Delivered { .. }));
        let failed = o
            .on_failure(d2.msg_id, &gone, "closed".into(), later)
            .unwrap();
        assert_eq!(failed.state.name(), "failed");
        assert_eq!(o.on_failure(d2.msg_id, &gone, "x".into(), later), None);
        assert_eq!(o.on_outcome(d1.msg_id, &gone, accepted(), later), None);
        assert!(o.queues().is_empty() || o.queues().iter().all(|q| q.peer != gone));

        // One queued after the change (a submission checked against the
        // roster before it) ends at the next timeout, unsent.
        let raced = delivery(6, "MK.MVR");
        o.insert(raced.clone());
        assert_eq!(o.poll_send(later), None);
        let ended = o.handle_timeout(later);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].msg_id, raced.msg_id);
        assert_eq!(ended[0].state.name(), "failed");
        assert_eq!(ended[0].attempts, 0);
        assert!(o.handle_timeout(later).is_empty());

        // Listed again: the ended ones stay ended (loaded at a restart they
        // are final and ignored); new ones go.
        let readded = members.into_iter().chain([gone.clone()]);
        assert!(o.set_members(readded, later).is_empty());
        for d in ended {
            o.insert(d.clone());
            assert!(o.get(d.msg_id, &gone).is_none());
        }
        assert_eq!(o.poll_send(later), None);
        o.insert(delivery(7, "MK.MVR"));
        let order = o.poll_send(later).unwrap();
        assert_eq!(order.msg_id, delivery(7, "MK.MVR").msg_id);
        assert_eq!(o.poll_send(later), None);
    }

    #[test]
    fn a_member_removed_while_others_wait_for_room_frees_nothing_it_did_not_hold() {
        let policy = RetryPolicy {
            max_in_flight_per_peer: 1,
            ..RetryPolicy::default()
        };
        let mut o = Outbox::new(policy, 5);
        o.insert(delivery(1, "MK.MVR"));
        o.insert(delivery(2, "MK.MVR"));
        o.insert(delivery(3, "ME.UP"));
        o.insert(delivery(4, "ME.UP"));
        // Before any roster is given every peer is a member.
        assert_eq!(o.poll_send(T0).unwrap().peer, peer("MK.MVR"));
        assert_eq!(o.poll_send(T0).unwrap().peer, peer("ME.UP"));
        assert_eq!(o.poll_send(T0), None, "one each on the wire");
        let ended = o.set_members([peer("ME.UP")], T0);
        assert_eq!(ended.len(), 1, "MK.MVR's queued one");
        // ME.UP still holds its one slot: its next waits for room.
        assert_eq!(o.poll_send(T0), None);
        o.on_outcome(delivery(3, "ME.UP").msg_id, &peer("ME.UP"), accepted(), T0)
            .unwrap();
        assert_eq!(o.poll_send(T0).unwrap().msg_id, delivery(4, "ME.UP").msg_id);
    }

    #[test]
    fn deliveries_loaded_at_start_keep_their_retry_time_and_expiry() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        let later = T0.plus_millis(5_000);
        o.insert(Delivery {
            attempts: 2,
            state: DeliveryState::Retrying {
                next_at: later,
                last_error: "down".into(),
            },
            ..delivery(1, "ME.UP")
        });
        // A retry loaded with its time past its expiry wakes at the expiry.
        let stale = Delivery {
            expires_at: T0.plus_millis(1_000),
            state: DeliveryState::Retrying {
                next_at: later,
                last_error: "down".into(),
            },
            ..delivery(2, "ME.UP")
        };
        o.insert(stale.clone());
        assert_eq!(o.next_wakeup(), Some(stale.expires_at));
        assert_eq!(o.poll_send(stale.expires_at), None);
        let expired = o.handle_timeout(stale.expires_at);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].msg_id, stale.msg_id);
        assert_eq!(o.next_wakeup(), Some(later));
        assert_eq!(o.poll_send(T0.plus_millis(4_999)), None);
        assert_eq!(o.poll_send(later).unwrap().attempt, 3);
        // Inserting the same delivery again replaces it.
        o.insert(delivery(1, "ME.UP"));
        assert_eq!(o.depth_by_peer()[&peer("ME.UP")], 1);
        assert_eq!(o.poll_send(later).unwrap().attempt, 1);
    }

    /// The outbox as it was first written: every call scans every open
    /// delivery. The indexed outbox must decide exactly as this does.
    struct ScanOutbox {
        policy: RetryPolicy,
        rng: StdRng,
        open: BTreeMap<Key, Delivery>,
        in_flight: HashMap<AuthorityId, usize>,
    }

    impl ScanOutbox {
        fn new(policy: RetryPolicy, seed: u64) -> Self {
            ScanOutbox {
                policy,
                rng: StdRng::seed_from_u64(seed),
                open: BTreeMap::new(),
                in_flight: HashMap::new(),
            }
        }

        fn insert(&mut self, mut d: Delivery) {
            if d.state.is_final() {
                return;
            }
            if matches!(d.state, DeliveryState::Sending { .. }) {
                d.state = DeliveryState::Queued;
            }
            if let Some(old) = self.open.insert((d.msg_id, d.peer.clone()), d.clone())
                && matches!(old.state, DeliveryState::Sending { .. })
            {
                self.release(&d.peer);
            }
        }

        fn release(&mut self, peer: &AuthorityId) {
            if let Some(n) = self.in_flight.get_mut(peer) {
                *n = n.saturating_sub(1);
            }
        }

        fn poll_send(&mut self, now: Timestamp) -> Option<SendOrder> {
            let max = self.policy.max_in_flight_per_peer;
            let in_flight = &self.in_flight;
            let due = self.open.values_mut().find(|d| {
                let ready = match &d.state {
                    DeliveryState::Queued => true,
                    DeliveryState::Retrying { next_at, .. } => *next_at <= now,
                    _ => false,
                };
                ready && now < d.expires_at && in_flight.get(&d.peer).copied().unwrap_or(0) < max
            })?;
            d_start(due, now);
            *self.in_flight.entry(due.peer.clone()).or_default() += 1;
            Some(SendOrder {
                msg_id: due.msg_id,
                peer: due.peer.clone(),
                attempt: due.attempts,
            })
        }

        fn on_outcome(
            &mut self,
            msg_id: MessageId,
            peer: &AuthorityId,
            outcome: Outcome,
            now: Timestamp,
        ) -> Option<Delivery> {
            match outcome {
                Outcome::Accepted { receipt, .. } => {
                    self.finish(msg_id, peer, DeliveryState::Delivered { at: now, receipt })
                }
                Outcome::Rejected { code, detail, .. } if code.is_transient() => {
                    let why = match detail {
                        Some(d) => format!("{} rejected it for now ({code}): {d}", peer),
                        None => format!("{} rejected it for now ({code})", peer),
                    };
                    self.on_failure(msg_id, peer, why, now)
                }
                Outcome::Rejected {
                    code,
                    detail,
                    receipt,
                } => self.finish(
                    msg_id,
                    peer,
                    DeliveryState::Rejected {
                        at: now,
                        code: code.as_str().to_owned(),
                        detail,
                        receipt,
                    },
                ),
            }
        }

        fn on_failure(
            &mut self,
            msg_id: MessageId,
            peer: &AuthorityId,
            error: String,
            now: Timestamp,
        ) -> Option<Delivery> {
            let key = (msg_id, peer.clone());
            let d = self.open.get_mut(&key)?;
            if !matches!(d.state, DeliveryState::Sending { .. }) {
                return None;
            }
            let next_at = now.plus_millis(self.policy.backoff(d.attempts, &mut self.rng));
            if next_at >= d.expires_at {
                return self.finish_unchecked(key, DeliveryState::Expired { at: now });
            }
            d.state = DeliveryState::Retrying {
                next_at,
                last_error: error,
            };
            let d = d.clone();
            self.release(peer);
            Some(d)
        }

        fn handle_timeout(&mut self, now: Timestamp) -> Vec<Delivery> {
            let expired: Vec<_> = self
                .open
                .iter()
                .filter(|(_, d)| {
                    now >= d.expires_at && !matches!(d.state, DeliveryState::Sending { .. })
                })
                .map(|(k, _)| k.clone())
                .collect();
            expired
                .into_iter()
                .filter_map(|k| self.finish_unchecked(k, DeliveryState::Expired { at: now }))
                .collect()
        }

        /// Right after `handle_timeout(now)` and `poll_send(now)`: the
        /// earliest retry not yet due.
        fn next_wakeup(&self, now: Timestamp) -> Option<Timestamp> {
            self.open
                .values()
                .filter_map(|d| match &d.state {
                    DeliveryState::Retrying { next_at, .. } if *next_at > now => {
                        Some((*next_at).min(d.expires_at))
                    }
                    _ => None,
                })
                .min()
        }

        fn depth_by_peer(&self) -> HashMap<AuthorityId, usize> {
            let mut depth = HashMap::new();
            for d in self.open.values() {
                *depth.entry(d.peer.clone()).or_default() += 1;
            }
            depth
        }

        /// The oldest open delivery per peer, by scanning all of them.
        fn oldest_by_peer(&self) -> BTreeMap<AuthorityId, MessageId> {
            let mut oldest: BTreeMap<AuthorityId, MessageId> = BTreeMap::new();
            for d in self.open.values() {
                let o = oldest.entry(d.peer.clone()).or_insert(d.msg_id);
                *o = (*o).min(d.msg_id);
            }
            oldest
        }

        fn finish(
            &mut self,
            msg_id: MessageId,
            peer: &AuthorityId,
            state: DeliveryState,
        ) -> Option<Delivery> {
            let key = (msg_id, peer.clone());
            if !matches!(
                self.open.get(&key).map(|d| &d.state),
                Some(DeliveryState::Sending { .. })
            ) {
                return None;
            }
            self.finish_unchecked(key, state)
        }

        fn finish_unchecked(&mut self, key: Key, state: DeliveryState) -> Option<Delivery> {
            let mut d = self.open.remove(&key)?;
            if matches!(d.state, DeliveryState::Sending { .. }) {
                self.release(&d.peer);
            }
            d.state = state;
            Some(d)
        }
    }

    /// One random schedule: submissions (some loaded mid-retry, some to
    /// several peers), clock steps with the driver's calls, and outcomes of
    /// every kind for attempts on the wire, in random order.
    fn compare_on_random_schedule(seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let policy = RetryPolicy {
            initial_ms: rng.random_range(1..2_000),
            max_ms: rng.random_range(2_000..60_000),
            max_in_flight_per_peer: rng.random_range(1..5),
        };
        let peers = [peer("ME.UP"), peer("MK.MVR"), peer("BA.SPS")];
        let mut fast = Outbox::new(policy, seed);
        let mut scan = ScanOutbox::new(policy, seed);
        let mut now = T0;
        let mut on_wire: Vec<SendOrder> = vec![];
        let mut known: Vec<Key> = vec![];
        let mut sent = 0usize;
        for step in 0..600 {
            match rng.random_range(0..10) {
                0..=2 => {
                    let mut random = [0u8; 10];
                    rng.fill(&mut random);
                    let msg_id = MessageId::new_v7(T0.0 + rng.random_range(0..100_000), random);
                    let expires_at = now.plus_millis(rng.random_range(1..30_000));
                    let state = match rng.random_range(0..8) {
                        0 => DeliveryState::Retrying {
                            next_at: now.plus_millis(rng.random_range(0..40_000)),
                            last_error: "loaded".into(),
                        },
                        1 => DeliveryState::Sending { since: now },
                        2 => DeliveryState::Expired { at: now },
                        _ => DeliveryState::Queued,
                    };
                    let attempts = rng.random_range(0..3);
                    let fan_out = rng.random_range(1..=peers.len());
                    for p in peers.iter().take(fan_out) {
                        let d = Delivery {
                            msg_id,
                            peer: p.clone(),
                            expires_at,
                            attempts,
                            state: state.clone(),
                        };
                        fast.insert(d.clone());
                        scan.insert(d);
                        known.push((msg_id, p.clone()));
                    }
                }
                3..=5 => {
                    now = now.plus_millis(rng.random_range(0..3_000));
                    assert_eq!(
                        fast.handle_timeout(now),
                        scan.handle_timeout(now),
                        "seed {seed} step {step}: expiries"
                    );
                    loop {
                        let order = fast.poll_send(now);
                        assert_eq!(order, scan.poll_send(now), "seed {seed} step {step}: send");
                        let Some(order) = order else { break };
                        on_wire.push(order);
                        sent += 1;
                    }
                    assert_eq!(
                        fast.next_wakeup(),
                        scan.next_wakeup(now),
                        "seed {seed} step {step}: wakeup"
                    );
                }
                _ if on_wire.is_empty() => {}
                kind => {
                    let order = on_wire.swap_remove(rng.random_range(0..on_wire.len()));
                    let (id, p) = (order.msg_id, &order.peer);
                    let (a, b) = if kind == 9 {
                        (
                            fast.on_failure(id, p, "refused".into(), now),
                            scan.on_failure(id, p, "refused".into(), now),
                        )
                    } else {
                        let outcome = match rng.random_range(0..3) {
                            0 => accepted(),
                            1 => Outcome::Rejected {
                                code: RejectCode::RateLimited,
                                detail: Some("busy".into()),
                                receipt: vec![7],
                            },
                            _ => Outcome::Rejected {
                                code: RejectCode::KindNotAllowed,
                                detail: None,
                                receipt: vec![8],
                            },
                        };
                        (
                            fast.on_outcome(id, p, outcome.clone(), now),
                            scan.on_outcome(id, p, outcome, now),
                        )
                    };
                    assert_eq!(a, b, "seed {seed} step {step}: outcome");
                }
            }
            assert_eq!(fast.depth_by_peer(), scan.depth_by_peer(), "seed {seed}");
            let depth = scan.depth_by_peer();
            for p in &peers {
                let want = depth.get(p).copied().unwrap_or(0);
                assert_eq!(fast.depth(p), want, "seed {seed}: depth of {p}");
            }
            let expected: Vec<QueueStat> = scan
                .oldest_by_peer()
                .into_iter()
                .map(|(peer, oldest)| QueueStat {
                    depth: depth[&peer],
                    peer,
                    oldest,
                })
                .collect();
            assert_eq!(fast.queues(), expected, "seed {seed}: queues");
            for (id, p) in &known {
                assert_eq!(fast.get(*id, p), scan.open.get(&(*id, p.clone())));
            }
            for p in &peers {
                let wire = fast
                    .open
                    .values()
                    .filter(|d| &d.peer == p && d.state.name() == "sending")
                    .count();
                assert!(wire <= policy.max_in_flight_per_peer, "seed {seed}: limit");
            }
            known.retain(|(id, p)| fast.get(*id, p).is_some());
        }
        assert!(sent > 0, "seed {seed}: the schedule sent nothing");
    }

    #[test]
    fn decides_as_a_scan_of_every_delivery_would_on_random_schedules() {
        for seed in 0..200 {
            compare_on_random_schedule(seed);
        }
    }
}
