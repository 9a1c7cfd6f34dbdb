//! The sender's delivery state machine: per-peer outboxes, retries with
//! backoff and jitter, expiry.
//!
//! No I/O and no clock: the driver feeds in events with the current time and
//! carries out what comes back. Every state change is returned as a
//! [`Change`] for the driver to persist; the driver acknowledges nothing to
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
//! ```

use std::collections::{BTreeMap, HashMap};

use kurir_proto::{AuthorityId, MessageId, RejectCode, Timestamp};
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
    /// At most this many deliveries to one peer at once.
    pub max_in_flight_per_peer: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_ms: 1_000,
            max_ms: 300_000,
            max_in_flight_per_peer: 16,
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
}

impl DeliveryState {
    /// Whether nothing more will happen to it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered { .. }
                | DeliveryState::Rejected { .. }
                | DeliveryState::Expired { .. }
        )
    }

    /// A one-word name: queued, sending, retrying, delivered, rejected, expired.
    pub fn name(&self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending { .. } => "sending",
            DeliveryState::Retrying { .. } => "retrying",
            DeliveryState::Delivered { .. } => "delivered",
            DeliveryState::Rejected { .. } => "rejected",
            DeliveryState::Expired { .. } => "expired",
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

/// The per-peer outboxes of one relay.
#[derive(Debug)]
pub struct Outbox {
    policy: RetryPolicy,
    rng: StdRng,
    /// Every delivery that is not final, in message-id (time) order.
    open: BTreeMap<(MessageId, AuthorityId), Delivery>,
    in_flight: HashMap<AuthorityId, usize>,
}

impl Outbox {
    /// An empty outbox. `seed` drives the jitter; use a fixed one in tests.
    pub fn new(policy: RetryPolicy, seed: u64) -> Self {
        Outbox {
            policy,
            rng: StdRng::seed_from_u64(seed),
            open: BTreeMap::new(),
            in_flight: HashMap::new(),
        }
    }

    /// Takes a delivery in (a new submission, or one loaded at start). A
    /// delivery that was `Sending` when the relay stopped is queued again;
    /// final ones are ignored.
    pub fn insert(&mut self, mut d: Delivery) {
        if d.state.is_final() {
            return;
        }
        if matches!(d.state, DeliveryState::Sending { .. }) {
            d.state = DeliveryState::Queued;
        }
        self.open.insert((d.msg_id, d.peer.clone()), d);
    }

    /// The next delivery due now, if any peer has room for it; it becomes
    /// `Sending`. Call until it returns `None`.
    pub fn poll_send(&mut self, now: Timestamp) -> Option<SendOrder> {
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

    /// The peer answered with a verified receipt or rejection.
    pub fn on_outcome(
        &mut self,
        msg_id: MessageId,
        peer: &AuthorityId,
        outcome: Outcome,
        now: Timestamp,
    ) -> Option<Delivery> {
        match outcome {
            Outcome::Accepted { receipt } => {
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
        let key = (msg_id, peer.clone());
        let d = self.open.get_mut(&key)?;
        if !matches!(d.state, DeliveryState::Sending { .. }) {
            return None;
        }
        release(&mut self.in_flight, peer);
        let next_at = now.plus_millis(self.policy.backoff(d.attempts, &mut self.rng));
        if next_at >= d.expires_at {
            return self.finish_unchecked(key, DeliveryState::Expired { at: now });
        }
        d.state = DeliveryState::Retrying {
            next_at,
            last_error: error,
        };
        Some(d.clone())
    }

    /// Expires every open delivery past its `expires_at` (not one on the
    /// wire: its outcome decides). Returns the changes to persist.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<Delivery> {
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

    /// When the driver should call [`Outbox::handle_timeout`] and
    /// [`Outbox::poll_send`] next, if nothing else happens first.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.open
            .values()
            .filter_map(|d| match &d.state {
                DeliveryState::Queued => None,
                DeliveryState::Retrying { next_at, .. } => Some((*next_at).min(d.expires_at)),
                _ => Some(d.expires_at),
            })
            .min()
    }

    /// Open deliveries per peer (queued, sending or retrying).
    pub fn depth_by_peer(&self) -> HashMap<AuthorityId, usize> {
        let mut depth = HashMap::new();
        for d in self.open.values() {
            *depth.entry(d.peer.clone()).or_default() += 1;
        }
        depth
    }

    /// A delivery that is still open.
    pub fn get(&self, msg_id: MessageId, peer: &AuthorityId) -> Option<&Delivery> {
        self.open.get(&(msg_id, peer.clone()))
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

    fn finish_unchecked(
        &mut self,
        key: (MessageId, AuthorityId),
        state: DeliveryState,
    ) -> Option<Delivery> {
        let mut d = self.open.remove(&key)?;
        if matches!(d.state, DeliveryState::Sending { .. }) {
            release(&mut self.in_flight, &d.peer);
        }
        d.state = state;
        Some(d)
    }
}

fn d_start(d: &mut Delivery, now: Timestamp) {
    d.attempts += 1;
    d.state = DeliveryState::Sending { since: now };
}

fn release(in_flight: &mut HashMap<AuthorityId, usize>, peer: &AuthorityId) {
    if let Some(n) = in_flight.get_mut(peer) {
        *n = n.saturating_sub(1);
    }
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
        Delivery {
            msg_id: MessageId::new_v7(T0.0 + u64::from(n), [n; 10]),
            peer: peer(to),
            expires_at: T0.plus_millis(24 * HOUR),
            attempts: 0,
            state: DeliveryState::Queued,
        }
    }

    fn accepted() -> Outcome {
        Outcome::Accepted {
            receipt: vec![1, 2, 3],
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
}
