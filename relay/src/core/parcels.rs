//! Which sent parcels stay in memory for their delivery attempts.
//!
//! A submission builds the parcel in clear; the store keeps it encrypted.
//! Reading it back for an attempt costs a lookup, a decryption and a copy
//! (8 MiB for a large attachment), so the parcel a submission built is kept
//! as shared bytes and handed to each attempt of its deliveries until they
//! are all final. Memory is bounded two ways: a parcel is kept only while
//! every recipient's queue is shallow (at most [`HEAD`] open deliveries: it
//! will be on the wire soon, not behind a peer that is down with a long
//! queue), and only while the parcels kept total at most [`BUDGET`] bytes.
//! Whatever is not kept, and everything after a restart, is read from the
//! store.

use std::collections::HashMap;

use bytes::Bytes;
use kurir_proto::MessageId;

/// Bytes of parcels kept at most (8 MiB attachments at W = 4 fit, with room).
pub const BUDGET: usize = 64 * 1024 * 1024;

/// A parcel is kept only if no recipient has more open deliveries than this.
pub const HEAD: usize = 1024;

/// The parcels kept, each with the number of its deliveries still open.
#[derive(Debug)]
pub struct Parcels {
    budget: usize,
    head: usize,
    held: HashMap<MessageId, Held>,
    /// Sum of the lengths of the parcels in `held`.
    bytes: usize,
}

#[derive(Debug)]
struct Held {
    parcel: Bytes,
    open: usize,
}

impl Default for Parcels {
    fn default() -> Self {
        Parcels::new(BUDGET, HEAD)
    }
}

impl Parcels {
    /// Keeps at most `budget` bytes, of parcels whose recipients have at
    /// most `head` open deliveries each.
    pub fn new(budget: usize, head: usize) -> Parcels {
        Parcels {
            budget,
            head,
            held: HashMap::new(),
            bytes: 0,
        }
    }

    /// A message was stored with `open` deliveries not final, the longest
    /// of its recipients' queues (counting it) being `depth`: keeps its
    /// parcel if the bounds allow. Whether it was kept.
    pub fn offer(&mut self, msg_id: MessageId, parcel: Bytes, open: usize, depth: usize) -> bool {
        let fits = self
            .bytes
            .checked_add(parcel.len())
            .is_some_and(|total| total <= self.budget);
        if open == 0 || depth > self.head || !fits || self.held.contains_key(&msg_id) {
            return false;
        }
        self.bytes += parcel.len();
        self.held.insert(msg_id, Held { parcel, open });
        true
    }

    /// The parcel of `msg_id`, if kept (a cheap clone of shared bytes).
    pub fn get(&self, msg_id: MessageId) -> Option<Bytes> {
        self.held.get(&msg_id).map(|h| h.parcel.clone())
    }

    /// One of `msg_id`'s deliveries is final: once all are, its parcel goes.
    pub fn settled(&mut self, msg_id: MessageId) {
        let gone = match self.held.get_mut(&msg_id) {
            Some(h) => {
                h.open = h.open.saturating_sub(1);
                h.open == 0
            }
            None => false,
        };
        if gone {
            self.forget(msg_id);
        }
    }

    /// Drops the parcel of `msg_id`, if kept.
    pub fn forget(&mut self, msg_id: MessageId) {
        if let Some(h) = self.held.remove(&msg_id) {
            self.bytes -= h.parcel.len();
        }
    }

    /// Parcels kept, and their bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.held.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn id(n: u8) -> MessageId {
        MessageId::new_v7(1_000 + u64::from(n), [n; 10])
    }

    fn parcel(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[test]
    fn kept_until_every_delivery_is_final() {
        let mut p = Parcels::new(1000, 10);
        assert!(p.offer(id(1), parcel(100), 2, 1));
        assert_eq!(p.get(id(1)).map(|b| b.len()), Some(100));
        p.settled(id(1));
        assert!(
            p.get(id(1)).is_some(),
            "one of two deliveries is still open"
        );
        p.settled(id(1));
        assert!(p.get(id(1)).is_none());
        assert_eq!(p.held(), (0, 0));
        // Settling what is not kept changes nothing.
        p.settled(id(9));
        assert_eq!(p.held(), (0, 0));
    }

    #[test]
    fn the_budget_and_the_queue_depth_bound_what_is_kept() {
        let mut p = Parcels::new(1000, 10);
        assert!(p.offer(id(1), parcel(600), 1, 1));
        assert!(!p.offer(id(2), parcel(401), 1, 1), "over the budget");
        assert!(p.offer(id(3), parcel(400), 1, 1), "exactly the budget");
        assert_eq!(p.held(), (2, 1000));
        p.settled(id(1));
        assert_eq!(p.held(), (1, 400));
        assert!(!p.offer(id(4), parcel(10), 1, 11), "behind a long queue");
        assert!(p.offer(id(4), parcel(10), 1, 10));
        assert!(
            !p.offer(id(5), parcel(1001), 1, 0),
            "larger than the budget"
        );
        assert!(!p.offer(id(6), parcel(1), 0, 0), "no open delivery");
        assert!(!p.offer(id(4), parcel(10), 1, 0), "already kept");
        p.forget(id(4));
        p.forget(id(4));
        assert_eq!(p.held(), (1, 400));
        assert_eq!(p.get(id(3)).map(|b| b.len()), Some(400));
    }

    /// Random offers and settlements: the bytes counted are the bytes
    /// kept, never over the budget, and all go once everything settled.
    #[test]
    fn random_schedules_stay_within_the_budget() {
        let mut rng = StdRng::seed_from_u64(16);
        let budget = 10_000;
        let mut p = Parcels::new(budget, 50);
        let mut open: HashMap<MessageId, usize> = HashMap::new();
        for step in 0..5_000u32 {
            let n = rng.random_range(0..64u8);
            if rng.random_bool(0.5) {
                let recipients = rng.random_range(1..4);
                let len = rng.random_range(0..3_000);
                let depth = rng.random_range(0..60);
                let was_kept = p.get(id(n)).is_some();
                let kept = p.offer(id(n), parcel(len), recipients, depth);
                assert!(!(kept && was_kept), "step {step}: kept twice");
                if kept {
                    open.insert(id(n), recipients);
                }
            } else {
                p.settled(id(n));
                if let Some(o) = open.get_mut(&id(n)) {
                    *o -= 1;
                    if *o == 0 {
                        open.remove(&id(n));
                    }
                }
            }
            let sum: usize = open.keys().filter_map(|m| p.get(*m)).map(|b| b.len()).sum();
            assert_eq!(p.held(), (open.len(), sum), "step {step}");
            assert!(sum <= budget, "step {step}: {sum} bytes kept");
        }
        for (m, o) in open.clone() {
            for _ in 0..o {
                p.settled(m);
            }
        }
        assert_eq!(p.held(), (0, 0));
    }
}
