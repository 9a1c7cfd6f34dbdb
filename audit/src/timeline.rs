//! The timeline of `kurir audit show`: which entries of a verified log it
//! prints ([`Filter`]), the reads of message bodies in it ([`Read`], for
//! "who saw this person's data"), and the time bounds given on its command
//! line ([`time_bound`]).

use std::collections::BTreeSet;

use kurir_proto::audit::{Entry, Event, ReadRefusal, Record};
use kurir_proto::{CaseId, Date, MessageId, Role, Timestamp};

/// Which entries `kurir audit show` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries of this case: those naming it, and every entry about a
    /// message of it (deliveries, reads).
    pub case: Option<CaseId>,
    /// Only entries at or after this time.
    pub from: Option<Timestamp>,
    /// Only entries at or before this time.
    pub to: Option<Timestamp>,
    /// Only entries about this message.
    pub message: Option<MessageId>,
    /// Only the reads: `body_read`, `body_refused` and `read` (marked
    /// read) entries ([`Read::of`]).
    pub reads: bool,
}

impl Filter {
    /// The entries of `entries` that pass, in log order.
    pub fn select<'a>(&self, entries: &'a [Entry]) -> Vec<&'a Entry> {
        let messages: BTreeSet<MessageId> = match &self.case {
            Some(c) => entries
                .iter()
                .filter(|e| e.case_id.as_ref() == Some(c))
                .filter_map(|e| e.msg_id)
                .collect(),
            None => BTreeSet::new(),
        };
        entries
            .iter()
            .filter(|e| match &self.case {
                Some(c) => {
                    e.case_id.as_ref() == Some(c) || e.msg_id.is_some_and(|m| messages.contains(&m))
                }
                None => true,
            })
            .filter(|e| self.message.is_none_or(|m| e.msg_id == Some(m)))
            .filter(|e| !self.reads || Read::of(e).is_some())
            .filter(|e| self.from.is_none_or(|t| e.at >= t))
            .filter(|e| self.to.is_none_or(|t| e.at <= t))
            .collect()
    }
}

/// A read of a message in the log: who, as the entry names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// `body_read`, `body_refused` or `read`.
    pub event: Event,
    /// The officer's certificate serial (hex).
    pub serial: String,
    /// The role in the certificate (`body_read`, `body_refused`).
    pub role: Option<Role>,
    /// The name in the certificate (`body_read`, `body_refused`).
    pub name: Option<String>,
    /// Why the body was refused (`body_refused`).
    pub refused: Option<ReadRefusal>,
}

impl Read {
    /// The read an entry records, if it records one: a body given
    /// (`body_read`) or refused (`body_refused`), or a message marked read
    /// (`read`, which names the serial only).
    pub fn of(e: &Entry) -> Option<Read> {
        let read = |event, serial, role, name, refused| Read {
            event,
            serial,
            role,
            name,
            refused,
        };
        match e.record().ok()? {
            Record::BodyRead {
                officer,
                role,
                name,
                ..
            } => Some(read(Event::BodyRead, officer, Some(role), Some(name), None)),
            Record::BodyRefused {
                officer,
                role,
                name,
                reason,
                ..
            } => Some(read(
                Event::BodyRefused,
                officer,
                Some(role),
                Some(name),
                Some(reason),
            )),
            Record::Read { officer, .. } => Some(read(Event::Read, officer, None, None, None)),
            _ => None,
        }
    }
}

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// A time bound that is neither an RFC 3339 UTC time nor a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{flag} {input:?}: expected a UTC time like 2026-11-28T13:54:10Z or a date like 2026-11-28"
)]
pub struct TimeBoundError {
    /// The option it was given with (`--from`, `--to`).
    pub flag: String,
    /// What was given (trimmed).
    pub input: String,
}

/// Parses a `--from`/`--to` bound: RFC 3339 UTC (`2026-11-28T13:54:10Z`,
/// fractions of a second allowed) or a date `YYYY-MM-DD`, which means the
/// start of that day, or its end when `end_of_day`. `flag` names the option
/// in the error.
pub fn time_bound(s: &str, flag: &str, end_of_day: bool) -> Result<Timestamp, TimeBoundError> {
    let s = s.trim();
    let bad = || TimeBoundError {
        flag: flag.to_owned(),
        input: s.to_owned(),
    };
    let day_start = |d: &str| -> Result<u64, TimeBoundError> {
        let day = Date::parse(d).map_err(|_| bad())?;
        u64::try_from(day.days_since_epoch())
            .map(|days| days * DAY_MS)
            .map_err(|_| bad())
    };
    if s.contains(['T', 't']) {
        // A date and a time: RFC 3339 in UTC, as `Timestamp` displays it.
        return s.parse::<Timestamp>().map_err(|_| bad());
    }
    let start = day_start(s)?;
    Ok(Timestamp(if end_of_day {
        start + DAY_MS - 1
    } else {
        start
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::testing::{T0, auth, empty, msg, push};
    use kurir_proto::Digest;
    use kurir_proto::audit::{CaseDeadline, Record};
    use kurir_proto::message::MessageKind;

    fn show_log() -> Vec<Entry> {
        let case = CaseId::parse("RS.MUP:2026-000001").unwrap();
        let submitted = |n: u8, case_id: Option<CaseId>| Record::Submitted {
            msg_id: msg(n),
            envelope_digest: Digest([n; 32]),
            kind: MessageKind::ReadmissionRequest,
            to: vec![auth("BA.SPS")],
            case_id,
            officer: "0a1b".into(),
        };
        let mut log = empty("RS.MUP");
        let started = Record::Started {
            version: "0.1.0".into(),
        };
        push(&mut log, Entry::new(Timestamp(T0), started));
        push(
            &mut log,
            Entry::new(Timestamp(T0 + DAY_MS), submitted(1, Some(case.clone()))),
        );
        push(
            &mut log,
            Entry::new(Timestamp(T0 + DAY_MS), submitted(2, None)),
        );
        push(
            &mut log,
            Entry::new(
                Timestamp(T0 + 2 * DAY_MS),
                Record::Delivered {
                    msg_id: msg(1),
                    peer: auth("BA.SPS"),
                    receipt_digest: Digest([3; 32]),
                },
            ),
        );
        push(
            &mut log,
            Entry::new(
                Timestamp(T0 + 3 * DAY_MS),
                Record::Deadline {
                    case_id: case,
                    what: CaseDeadline::DueSoon,
                },
            ),
        );
        log.entries
    }

    #[test]
    fn reads_of_a_message() {
        let mut log = show_log();
        let mut add = |n: u8, r: Record| {
            let mut l = empty("RS.MUP");
            l.entries = std::mem::take(&mut log);
            push(
                &mut l,
                Entry::new(Timestamp(T0 + 4 * DAY_MS + u64::from(n)), r),
            );
            log = l.entries;
        };
        add(
            1,
            Record::BodyRead {
                msg_id: msg(1),
                officer: "0a".into(),
                role: Role::Officer,
                name: "Ana".into(),
            },
        );
        add(
            2,
            Record::BodyRefused {
                msg_id: msg(1),
                officer: "0b".into(),
                role: Role::Auditor,
                name: "Eve".into(),
                reason: ReadRefusal::RoleNotAllowed,
            },
        );
        add(
            3,
            Record::Read {
                msg_id: msg(1),
                officer: "0a".into(),
            },
        );
        add(
            4,
            Record::BodyRead {
                msg_id: msg(2),
                officer: "0a".into(),
                role: Role::Officer,
                name: "Ana".into(),
            },
        );
        let reads = Filter {
            message: Some(msg(1)),
            reads: true,
            ..Filter::default()
        };
        assert_eq!(indices(reads.select(&log)), [5, 6, 7]);
        let of_message = Filter {
            message: Some(msg(1)),
            ..Filter::default()
        };
        assert_eq!(indices(of_message.select(&log)), [1, 3, 5, 6, 7]);
        let all_reads = Filter {
            reads: true,
            ..Filter::default()
        };
        assert_eq!(indices(all_reads.select(&log)), [5, 6, 7, 8]);
        let refused = Read::of(&log[6]).unwrap();
        assert_eq!(
            (
                refused.serial.as_str(),
                refused.role,
                refused.name.as_deref()
            ),
            ("0b", Some(Role::Auditor), Some("Eve"))
        );
        assert_eq!(refused.refused, Some(ReadRefusal::RoleNotAllowed));
        assert_eq!(Read::of(&log[7]).unwrap().name, None);
        assert_eq!(Read::of(&log[1]), None);
    }

    fn indices(v: Vec<&Entry>) -> Vec<u64> {
        v.into_iter().map(|e| e.index).collect()
    }

    #[test]
    fn show_filters_by_case_and_time() {
        let log = show_log();
        assert_eq!(indices(Filter::default().select(&log)), [0, 1, 2, 3, 4]);
        let case = Filter {
            case: Some(CaseId::parse("RS.MUP:2026-000001").unwrap()),
            ..Filter::default()
        };
        // The delivery of the case's message belongs to the case.
        assert_eq!(indices(case.select(&log)), [1, 3, 4]);
        let day = |n: u64| Timestamp(T0 + n * DAY_MS).date().to_string();
        let window = Filter {
            from: Some(time_bound(&day(1), "--from", false).unwrap()),
            to: Some(time_bound(&day(2), "--to", true).unwrap()),
            ..case.clone()
        };
        assert_eq!(indices(window.select(&log)), [1, 3]);
        let exact = Filter {
            from: Some(Timestamp(T0 + 2 * DAY_MS)),
            to: Some(Timestamp(T0 + 2 * DAY_MS)),
            ..Filter::default()
        };
        assert_eq!(indices(exact.select(&log)), [3]);
    }

    /// Inputs that are neither a UTC time nor a date.
    const BAD_BOUNDS: [&str; 6] = [
        "yesterday",
        "2026-11-28T13:54Z",
        "2026-11-28T13:54:10",
        "2026-11-28T25:00:00Z",
        "2026-13-01",
        "2026-11-28T13:54:10.Z",
    ];

    #[test]
    fn time_bounds_parse_rfc3339_and_dates() {
        // T0 is 2026-11-28T13:54:10Z.
        assert_eq!(
            time_bound("2026-11-28T13:54:10Z", "--from", false).unwrap(),
            Timestamp(T0)
        );
        assert_eq!(
            time_bound("2026-11-28T13:54:10.5Z", "--from", false).unwrap(),
            Timestamp(T0 + 500)
        );
        let midnight = T0 - (13 * 3600 + 54 * 60 + 10) * 1000;
        assert_eq!(
            time_bound("2026-11-28", "--from", false).unwrap(),
            Timestamp(midnight)
        );
        assert_eq!(
            time_bound("2026-11-28", "--to", true).unwrap(),
            Timestamp(midnight + DAY_MS - 1)
        );
        for bad in BAD_BOUNDS {
            let e = time_bound(bad, "--from", false).unwrap_err();
            // (The CLI maps it to exit 2: its own test.)
            assert_eq!(e.input, bad, "{bad}");
            assert!(e.to_string().contains("--from"), "{e}");
        }
    }
}
