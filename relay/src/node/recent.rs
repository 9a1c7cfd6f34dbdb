//! What a `status` answer is built from, kept in memory for the messages
//! submitted most recently, so that asking does not read and decode the
//! stored record and its deliveries: the message's summary and each
//! recipient's delivery state as last stored ([`Known`]).
//!
//! It holds only what is on disk: a message is taken in once its
//! submission's commit has returned, a delivery's new state once its
//! commit has returned (before the `status` requests waiting on it are
//! woken), and a message read from the store whose deliveries are all
//! final (nothing changes them any more). A failed commit forgets the
//! message. At most [`RECENT`] messages are held; the oldest taken in goes
//! first. A message not held (older, pushed out, submitted before a
//! restart) is read from the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kurir_proto::api::Summary;
use kurir_proto::{Header, MessageId, Timestamp};

use crate::core::delivery::Delivery;

/// How many messages [`Recent`] holds: the last submitted (a few hundred
/// bytes each, with one delivery and its receipt per recipient).
pub(super) const RECENT: usize = 1024;

/// A sent message as a `status` answer needs it: its summary and its
/// deliveries as stored, one per recipient, in the store's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) summary: Summary,
    pub(super) deliveries: Vec<Delivery>,
}

impl Known {
    /// Whether every delivery is final: nothing will change it.
    pub(super) fn settled(&self) -> bool {
        self.deliveries.iter().all(|d| d.state.is_final())
    }
}

/// The messages held, oldest first out.
#[derive(Debug)]
pub(super) struct Recent {
    inner: Mutex<Held>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Held {
    /// Each message with the number it was taken in under.
    by_id: HashMap<MessageId, (u64, Known)>,
    /// The messages by the number they were taken in under.
    order: BTreeMap<u64, MessageId>,
    next: u64,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new(RECENT)
    }
}

impl Recent {
    /// Holds at most `capacity` messages.
    pub(super) fn new(capacity: usize) -> Recent {
        Recent {
            inner: Mutex::new(Held::default()),
            capacity,
        }
    }

    /// A submission whose commit has returned: `header` is the message's,
    /// stored at `created_at`, with these deliveries.
    pub(super) fn submitted(
        &self,
        header: &Header,
        created_at: Timestamp,
        deliveries: &[Delivery],
    ) {
        let mut deliveries = deliveries.to_vec();
        // The store's order: its keys are the message id, then the
        // recipient's id.
        deliveries.sort_by(|a, b| a.peer.as_str().as_bytes().cmp(b.peer.as_str().as_bytes()));
        let mut summary = Summary::of(header, created_at, None);
        // As sealing writes them into the stored header.
        summary.to.sort();
        self.keep(Known {
            summary,
            deliveries,
        });
    }

    /// Holds `known` (read from the store, or just submitted), the newest.
    pub(super) fn keep(&self, known: Known) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut held) = self.inner.lock() else {
            return;
        };
        let msg_id = known.summary.msg_id;
        let n = held.next;
        held.next += 1;
        if let Some((old, _)) = held.by_id.insert(msg_id, (n, known)) {
            held.order.remove(&old);
        }
        held.order.insert(n, msg_id);
        while held.by_id.len() > self.capacity {
            let Some((_, oldest)) = held.order.pop_first() else {
                break;
            };
            held.by_id.remove(&oldest);
        }
    }

    /// The message as held, if it is.
    pub(super) fn get(&self, msg_id: MessageId) -> Option<Known> {
        let held = self.inner.lock().ok()?;
        held.by_id.get(&msg_id).map(|(_, k)| k.clone())
    }

    /// A delivery's new state, once its commit has returned. A final state
    /// held stays, and so does a state of a later attempt: commits that
    /// returned out of order leave what the store holds.
    pub(super) fn stored(&self, d: &Delivery) {
        let Ok(mut held) = self.inner.lock() else {
            return;
        };
        let Some((_, known)) = held.by_id.get_mut(&d.msg_id) else {
            return;
        };
        if let Some(mine) = known.deliveries.iter_mut().find(|m| m.peer == d.peer)
            && !mine.state.is_final()
            && mine.attempts <= d.attempts
        {
            mine.clone_from(d);
        }
    }

    /// Forgets a message (a commit of it failed: what the store holds is
    /// not known here).
    pub(super) fn forget(&self, msg_id: MessageId) {
        let Ok(mut held) = self.inner.lock() else {
            return;
        };
        if let Some((n, _)) = held.by_id.remove(&msg_id) {
            held.order.remove(&n);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map(|h| h.by_id.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::core::delivery::DeliveryState;
    use kurir_proto::AuthorityId;
    use kurir_proto::message::MessageKind;

    fn known(n: u8, peers: &[&str]) -> Known {
        let id = MessageId::new_v7(1_795_874_050_000 + u64::from(n), [n; 10]);
        let to: Vec<AuthorityId> = peers
            .iter()
            .map(|p| AuthorityId::parse(p).unwrap())
            .collect();
        Known {
            summary: Summary {
                msg_id: id,
                kind: MessageKind::OperationalNotice,
                from: AuthorityId::parse("RS.MUP").unwrap(),
                to: to.clone(),
                case_id: None,
                in_reply_to: None,
                created_at: Timestamp(1),
                stored_at: Timestamp(1),
                read_at: None,
            },
            deliveries: to
                .into_iter()
                .map(|peer| Delivery::queued(id, peer, Timestamp(2)))
                .collect(),
        }
    }

    #[test]
    fn holds_at_most_its_capacity_the_oldest_taken_in_leaving_first() {
        let recent = Recent::new(2);
        let (a, b, c) = (
            known(1, &["ME.UP"]),
            known(2, &["ME.UP"]),
            known(3, &["ME.UP"]),
        );
        recent.keep(a.clone());
        recent.keep(b.clone());
        // Taken in again: it is the newest now, and held once.
        recent.keep(a.clone());
        assert_eq!(recent.len(), 2);
        recent.keep(c.clone());
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.get(b.summary.msg_id), None, "the oldest left");
        assert_eq!(recent.get(a.summary.msg_id), Some(a.clone()));
        assert_eq!(recent.get(c.summary.msg_id), Some(c.clone()));

        // A change of a message not held is not taken in.
        let mut d = b.deliveries[0].clone();
        d.attempts = 1;
        recent.stored(&d);
        assert_eq!(recent.get(b.summary.msg_id), None);

        // A message forgotten is no longer held, and leaves room.
        recent.forget(a.summary.msg_id);
        assert_eq!(recent.get(a.summary.msg_id), None);
        recent.keep(b.clone());
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.get(c.summary.msg_id), Some(c));

        let none = Recent::new(0);
        none.keep(a.clone());
        assert_eq!(none.get(a.summary.msg_id), None);
    }

    #[test]
    fn a_final_state_or_a_later_attempt_is_not_undone_by_a_commit_returning_late() {
        let recent = Recent::new(4);
        let k = known(1, &["BA.SPS", "ME.UP"]);
        let id = k.summary.msg_id;
        recent.keep(k.clone());
        let at = |attempts: u32, state: DeliveryState| Delivery {
            attempts,
            state,
            ..k.deliveries[1].clone()
        };
        let retry = |attempts: u32| {
            at(
                attempts,
                DeliveryState::Retrying {
                    next_at: Timestamp(5),
                    last_error: format!("attempt {attempts}"),
                },
            )
        };
        recent.stored(&retry(2));
        recent.stored(&retry(1));
        assert_eq!(recent.get(id).unwrap().deliveries[1], retry(2));
        let delivered = at(
            3,
            DeliveryState::Delivered {
                at: Timestamp(6),
                receipt: vec![1],
            },
        );
        recent.stored(&delivered);
        recent.stored(&retry(3));
        let held = recent.get(id).unwrap();
        assert_eq!(held.deliveries, vec![k.deliveries[0].clone(), delivered]);
        assert!(!held.settled());
    }
}
