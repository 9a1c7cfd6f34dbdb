//! Expiry ahead: what runs out when (this relay's node certificate, the
//! authority's CA, the cover of its message keys, each member's CA in the
//! roster), the seconds left for the metrics, and which warnings are due:
//! one at 30, 7 and 1 days ahead and one when it has run out, each once
//! per item. Nothing here disconnects anything: an expired member CA is
//! refused by the driver (`links::MemberCas`) and only warned about here.

use std::collections::BTreeMap;
use std::fmt;

use kurir_proto::{AuthorityId, Timestamp};

/// Days ahead of an expiry at which a warning is logged, widest first.
pub const WARN_DAYS: [u64; 3] = [30, 7, 1];
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Something that expires.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// This relay's node (TLS) certificate.
    NodeCertificate,
    /// This authority's CA certificate (officer certificates chain to it).
    AuthorityCa,
    /// The end of the message keys' cover: the last moment a held key is
    /// valid with none to follow it.
    MessageKeys,
    /// A member's CA certificate in the roster.
    MemberCa(AuthorityId),
    /// An officer certificate this authority issued (`officers/`) that
    /// the CRL in force does not revoke.
    OfficerCertificate {
        /// Its serial number, lower-case hex.
        serial: String,
        /// The officer's name (the certificate's common name).
        name: String,
    },
    /// An earlier log key the relay still signs with (the roster in force
    /// lists a newer one the relay does not hold): its `valid_until`.
    LogKeyBefore,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::NodeCertificate => f.write_str("this relay's node certificate"),
            Item::AuthorityCa => f.write_str("this authority's CA certificate"),
            Item::MessageKeys => f.write_str("this authority's message keys"),
            Item::MemberCa(m) => write!(f, "the CA certificate the roster lists for {m}"),
            Item::OfficerCertificate { serial, name } => {
                write!(f, "the officer certificate of {name} (serial {serial})")
            }
            Item::LogKeyBefore => f.write_str("the earlier log key this relay still signs with"),
        }
    }
}

impl Item {
    /// What renews it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Item::NodeCertificate => {
                "renew the node certificate (kurir-certs) and restart the relay"
            }
            Item::AuthorityCa => {
                "renew the authority's CA, re-issue officer certificates and put the CA in the roster"
            }
            Item::MessageKeys => {
                "rotate the message key (kurir-certs authority rotate-key) and put the new key in \
                 the roster"
            }
            Item::MemberCa(_) => {
                "that member must renew its CA and the federation sign a roster that lists it; \
                 until then its connections are refused"
            }
            Item::OfficerCertificate { .. } => {
                "issue the officer a new certificate (kurir-certs officer issue) and revoke the \
                 old one; once it expires the officer cannot connect"
            }
            Item::LogKeyBefore => {
                "copy the new log.key (kurir-certs authority rotate-log-key) to the authority \
                 directory and send SIGHUP; after that date peers refuse the relay's checkpoints"
            }
        }
    }
}

/// How close an item is to its end, as a warning level (ordered by
/// closeness: `Within(30) < Within(7) < Within(1) < Expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Within this many days (one of [`WARN_DAYS`]).
    Within(u64),
    /// Past its end.
    Expired,
}

impl Level {
    fn closeness(self) -> u64 {
        match self {
            Level::Within(days) => u64::MAX - 1 - days,
            Level::Expired => u64::MAX,
        }
    }
}

impl PartialOrd for Level {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Level {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.closeness().cmp(&other.closeness())
    }
}

/// A warning to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What expires.
    pub item: Item,
    /// When.
    pub at: Timestamp,
    /// How close.
    pub level: Level,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Level::Within(days) => write!(
                f,
                "{} expires at {} (within {days} day{}): {}",
                self.item,
                self.at,
                if days == 1 { "" } else { "s" },
                self.item.remedy()
            ),
            Level::Expired => write!(
                f,
                "{} expired at {}: {}",
                self.item,
                self.at,
                self.item.remedy()
            ),
        }
    }
}

/// The level of an item ending at `at`, seen at `now`: `None` while more
/// than the widest threshold is left.
pub fn level(at: Timestamp, now: Timestamp) -> Option<Level> {
    if now.0 >= at.0 {
        return Some(Level::Expired);
    }
    let left = at.0 - now.0;
    WARN_DAYS
        .iter()
        .rev()
        .find(|d| left <= *d * DAY_MS)
        .map(|d| Level::Within(*d))
}

/// Seconds from `now` to `at` (negative once past).
pub fn seconds_left(at: Timestamp, now: Timestamp) -> i64 {
    let ms = i128::from(at.0) - i128::from(now.0);
    i64::try_from(ms / 1000).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// Which warnings were given, so each is given once.
#[derive(Debug, Default)]
pub struct Warnings {
    given: BTreeMap<Item, (Timestamp, Level)>,
}

impl Warnings {
    /// The warnings due at `now` for `items` (each with its end): for each
    /// item, one for the closest threshold it has crossed, unless that or
    /// a closer one was given before for the same end. A new end (a
    /// renewed certificate) starts over.
    pub fn due(&mut self, items: &[(Item, Timestamp)], now: Timestamp) -> Vec<Warning> {
        let mut out = Vec::new();
        for (item, at) in items {
            let Some(level) = level(*at, now) else {
                continue;
            };
            let before = self.given.get(item).filter(|(end, _)| end == at);
            if before.is_some_and(|(_, l)| *l >= level) {
                continue;
            }
            self.given.insert(item.clone(), (*at, level));
            out.push(Warning {
                item: item.clone(),
                at: *at,
                level,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn day(d: u64) -> u64 {
        d * DAY_MS
    }

    fn levels(w: &[Warning]) -> Vec<(Item, Level)> {
        w.iter().map(|w| (w.item.clone(), w.level)).collect()
    }

    #[test]
    fn warns_once_at_30_7_and_1_days_and_at_the_end() {
        let end = Timestamp(T0 + day(40));
        let items = [(Item::NodeCertificate, end)];
        let mut w = Warnings::default();
        let mut seen = Vec::new();
        // A simulated clock in steps of an hour, from 40 days ahead to a
        // day past the end.
        let mut now = T0;
        while now <= T0 + day(41) {
            seen.extend(levels(&w.due(&items, Timestamp(now))));
            now += 60 * 60 * 1000;
        }
        assert_eq!(
            seen,
            vec![
                (Item::NodeCertificate, Level::Within(30)),
                (Item::NodeCertificate, Level::Within(7)),
                (Item::NodeCertificate, Level::Within(1)),
                (Item::NodeCertificate, Level::Expired),
            ]
        );
    }

    #[test]
    fn a_relay_started_late_gives_only_the_closest_warning() {
        let end = Timestamp(T0 + day(5));
        let items = [(Item::AuthorityCa, end)];
        let mut w = Warnings::default();
        assert_eq!(
            levels(&w.due(&items, Timestamp(T0))),
            vec![(Item::AuthorityCa, Level::Within(7))]
        );
        assert!(w.due(&items, Timestamp(T0 + day(1))).is_empty());
    }

    #[test]
    fn nothing_far_ahead_and_a_renewal_starts_over() {
        let member = Item::MemberCa(AuthorityId::parse("BA.SPS").unwrap());
        let mut w = Warnings::default();
        assert!(
            w.due(&[(member.clone(), Timestamp(T0 + day(31)))], Timestamp(T0))
                .is_empty()
        );
        let old = Timestamp(T0 + day(2));
        assert_eq!(
            levels(&w.due(&[(member.clone(), old)], Timestamp(T0))),
            vec![(member.clone(), Level::Within(7))]
        );
        // Renewed: the new end is far; later it comes close again.
        let renewed = Timestamp(T0 + day(40));
        assert!(
            w.due(&[(member.clone(), renewed)], Timestamp(T0 + day(1)))
                .is_empty()
        );
        assert_eq!(
            levels(&w.due(&[(member.clone(), renewed)], Timestamp(T0 + day(34)))),
            vec![(member, Level::Within(7))]
        );
    }

    #[test]
    fn seconds_left_is_negative_past_the_end() {
        assert_eq!(seconds_left(Timestamp(T0 + 90_000), Timestamp(T0)), 90);
        assert_eq!(seconds_left(Timestamp(T0), Timestamp(T0 + 5_000)), -5);
    }
}
