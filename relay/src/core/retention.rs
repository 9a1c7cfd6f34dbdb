//! The retention policy: which stored bodies are due for erasure, and under
//! which rule. Received messages are erased some days after they were first
//! read, sent ones some days after their last delivery became final; unread
//! and undelivered messages are kept.
//!
//! Pure: the driver (`node/clock.rs`) reads the records and their
//! deliveries, asks [`Retention::rule`] and [`Rule::due`] with `now`, and
//! erases what is due.

use kurir_proto::Timestamp;
use kurir_proto::message::MessageKind;

use super::delivery::{Delivery, DeliveryState};

const DAY_MS: u64 = 86_400_000;

/// When message bodies are erased. Days count from when a received message
/// was first read, or from when the last delivery of a sent message became
/// final; unread and undelivered messages are kept. `None`: kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Received messages, days after read.
    pub received_days: Option<u16>,
    /// Sent messages, days after delivery.
    pub sent_days: Option<u16>,
    /// Per kind, for both directions, overriding the two above.
    pub kinds: std::collections::HashMap<MessageKind, u16>,
}

impl Retention {
    /// The days after which a body of `kind` is erased, and the rule's text.
    pub fn days_for(&self, kind: MessageKind, received: bool) -> Option<(u16, String)> {
        let after = if received {
            "after it was read"
        } else {
            "after delivery"
        };
        if let Some(d) = self.kinds.get(&kind) {
            return Some((
                *d,
                format!("retention.kinds.{kind} = {d}: {d} days {after}"),
            ));
        }
        let (d, key) = if received {
            (self.received_days?, "retention.received_days")
        } else {
            (self.sent_days?, "retention.sent_days")
        };
        Some((d, format!("{key} = {d}: {d} days {after}")))
    }

    /// Whether the policy erases nothing at all (no rule configured), so
    /// the records need not be read.
    pub fn keeps_all(&self) -> bool {
        self == &Retention::default()
    }

    /// The rule for a body of `kind` (`received`: in the inbox, else sent),
    /// or `None` when the body is kept: no rule applies, or it is already
    /// erased (`erased`).
    pub fn rule(&self, kind: MessageKind, received: bool, erased: bool) -> Option<Rule> {
        if erased {
            return None;
        }
        let (days, text) = self.days_for(kind, received)?;
        Some(Rule { days, text })
    }
}

/// A retention rule that applies to a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Days after the body's start (first read, or final delivery).
    pub days: u16,
    /// The rule's text, recorded with the erasure.
    pub text: String,
}

impl Rule {
    /// The rule's text when the body is due at `now`: `since` (when it was
    /// first read, or its last delivery became final; `None`: not yet) plus
    /// the rule's days has come. `None`: keep it for now.
    pub fn due(self, since: Option<Timestamp>, now: Timestamp) -> Option<String> {
        let since = since?;
        (now >= since.plus_millis(u64::from(self.days) * DAY_MS)).then_some(self.text)
    }
}

/// When the last of a sent message's deliveries became final (delivered,
/// rejected or expired); `None` while any is still open, or when there are
/// none.
pub fn settled_at(deliveries: &[Delivery]) -> Option<Timestamp> {
    let finals: Option<Vec<Timestamp>> = deliveries
        .iter()
        .map(|d| match &d.state {
            DeliveryState::Delivered { at, .. }
            | DeliveryState::Rejected { at, .. }
            | DeliveryState::Expired { at }
            | DeliveryState::Failed { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    finals.and_then(|f| f.into_iter().max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::{AuthorityId, MessageId};

    const T0: Timestamp = Timestamp(1_795_874_050_000);

    fn days(n: u64) -> u64 {
        n * DAY_MS
    }

    /// Received after 90 days, sent after 10, notices 30 both ways.
    fn policy() -> Retention {
        Retention {
            received_days: Some(90),
            sent_days: Some(10),
            kinds: [(MessageKind::OperationalNotice, 30)].into(),
        }
    }

    /// The rule text when the body is due at `now`, counted from `since`.
    fn due_at(
        r: &Retention,
        kind: MessageKind,
        received: bool,
        erased: bool,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<String> {
        r.rule(kind, received, erased)?.due(since, now)
    }

    fn delivery(state: DeliveryState) -> Delivery {
        Delivery {
            msg_id: MessageId::new_v7(T0.0, [1; 10]),
            peer: AuthorityId::parse("BA.SPS").unwrap(),
            expires_at: T0.plus_millis(days(30)),
            attempts: 1,
            state,
        }
    }

    #[test]
    fn no_rule_keeps_everything() {
        let r = Retention::default();
        assert!(r.keeps_all());
        for received in [true, false] {
            assert_eq!(
                r.rule(MessageKind::ReadmissionRequest, received, false),
                None
            );
        }
        assert!(!policy().keeps_all());
        let only_kinds = Retention {
            kinds: [(MessageKind::HandoverConfirmation, 1)].into(),
            ..Retention::default()
        };
        assert!(!only_kinds.keeps_all());
        // Sent messages are kept when only received ones have a rule.
        let received_only = Retention {
            received_days: Some(7),
            ..Retention::default()
        };
        assert_eq!(
            received_only.rule(MessageKind::ReadmissionRequest, false, false),
            None
        );
    }

    #[test]
    fn received_bodies_are_due_days_after_they_were_read() {
        let r = policy();
        let kind = MessageKind::ReadmissionRequest;
        let read = Some(T0);
        let text = "retention.received_days = 90: 90 days after it was read";
        // Exactly at the boundary: due.
        let at = T0.plus_millis(days(90));
        assert_eq!(due_at(&r, kind, true, false, read, at), Some(text.into()));
        assert_eq!(
            due_at(&r, kind, true, false, read, at.plus_millis(1)),
            Some(text.into())
        );
        // A millisecond before: not yet.
        let before = Timestamp(at.0 - 1);
        assert_eq!(due_at(&r, kind, true, false, read, before), None);
        // Unread: kept however old.
        assert_eq!(
            due_at(&r, kind, true, false, None, T0.plus_millis(days(1000))),
            None
        );
    }

    #[test]
    fn sent_bodies_are_due_days_after_delivery() {
        let r = policy();
        let kind = MessageKind::ReadmissionReply;
        let text = "retention.sent_days = 10: 10 days after delivery";
        let at = T0.plus_millis(days(10));
        assert_eq!(
            due_at(&r, kind, false, false, Some(T0), at),
            Some(text.into())
        );
        assert_eq!(
            due_at(&r, kind, false, false, Some(T0), Timestamp(at.0 - 1)),
            None
        );
        // Undelivered: kept.
        assert_eq!(
            due_at(&r, kind, false, false, None, T0.plus_millis(days(1000))),
            None
        );
    }

    #[test]
    fn a_rule_for_the_kind_overrides_both_directions() {
        let r = policy();
        let kind = MessageKind::OperationalNotice;
        let at = T0.plus_millis(days(30));
        assert_eq!(
            due_at(&r, kind, true, false, Some(T0), at),
            Some("retention.kinds.operational-notice = 30: 30 days after it was read".into())
        );
        assert_eq!(
            due_at(&r, kind, false, false, Some(T0), at),
            Some("retention.kinds.operational-notice = 30: 30 days after delivery".into())
        );
        // Sent notices wait 30 days, not the 10 of `sent_days`.
        assert_eq!(
            due_at(&r, kind, false, false, Some(T0), T0.plus_millis(days(10))),
            None
        );
        // Received notices are due after 30 days, not the 90 of `received_days`.
        assert!(due_at(&r, kind, true, false, Some(T0), at).is_some());
    }

    #[test]
    fn an_erased_body_is_never_due_again() {
        let r = policy();
        let late = T0.plus_millis(days(1000));
        for received in [true, false] {
            assert_eq!(
                r.rule(MessageKind::ReadmissionRequest, received, true),
                None
            );
            assert_eq!(
                due_at(
                    &r,
                    MessageKind::OperationalNotice,
                    received,
                    true,
                    Some(T0),
                    late
                ),
                None
            );
        }
    }

    #[test]
    fn a_sent_message_settles_when_its_last_delivery_is_final() {
        let delivered = |at: Timestamp| {
            delivery(DeliveryState::Delivered {
                at,
                receipt: vec![1],
            })
        };
        let rejected = delivery(DeliveryState::Rejected {
            at: T0.plus_millis(5),
            code: "kind-not-allowed".into(),
            detail: None,
            receipt: vec![2],
        });
        let expired = delivery(DeliveryState::Expired {
            at: T0.plus_millis(days(30)),
        });
        assert_eq!(settled_at(&[delivered(T0)]), Some(T0));
        // The latest of the final states counts.
        assert_eq!(
            settled_at(&[
                delivered(T0.plus_millis(9)),
                rejected.clone(),
                delivered(T0)
            ]),
            Some(T0.plus_millis(9))
        );
        assert_eq!(
            settled_at(&[delivered(T0), expired.clone()]),
            Some(T0.plus_millis(days(30)))
        );
        // One delivery still open: not settled.
        for open in [
            DeliveryState::Queued,
            DeliveryState::Sending { since: T0 },
            DeliveryState::Retrying {
                next_at: T0,
                last_error: "timed out".into(),
            },
        ] {
            assert_eq!(settled_at(&[delivered(T0), delivery(open)]), None);
        }
        // No delivery at all: not settled.
        assert_eq!(settled_at(&[]), None);
    }
}
