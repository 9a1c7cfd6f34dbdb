//! The typed audit events: [`Record`], one variant per event with exactly
//! the data that event records, and the text of every entry `code`.
//!
//! An entry on the wire is a flat map ([`super::Entry`]); which of its
//! fields an event fills, and the text of its `code`, are fixed here, and
//! only here (`docs/AUDIT.md` §1 lists them):
//!
//! | event | fields | `code` |
//! |-------|--------|--------|
//! | `started` | | `kurir-relay VERSION` |
//! | `roster` | | `version N sha256 HEX` |
//! | `submitted` | `msg_id`, `envelope_digest`, `case_id` if any, `officer` | `KIND to A,B` |
//! | `delivered` | `msg_id`, `peer`, `receipt_digest` | |
//! | `rejected` | `msg_id`, `peer`, `receipt_digest` | the reason ([`RejectCode`]) |
//! | `expired` | `msg_id`, `peer` | |
//! | `failed` | `msg_id`, `peer` | the reason ([`DeliveryFailure`]) |
//! | `received` | `msg_id`, `envelope_digest`, `peer`, `case_id` if any | the kind |
//! | `refused` | `msg_id` if known, `envelope_digest`, `peer`, `receipt_digest` | the reason ([`RejectCode`]) |
//! | `read` | `msg_id`, `officer` | |
//! | `body_read` | `msg_id`, `officer` | `ROLE NAME` (the reader's certificate) |
//! | `body_refused` | `msg_id`, `officer` | `REASON ROLE NAME` ([`ReadRefusal`]) |
//! | `body_erased` | `msg_id` | the retention rule |
//! | `deadline` | `case_id` | [`CaseDeadline`] |
//! | `peer_checkpoint` | `peer` | `size N root HEX` |
//!
//! Decoding is strict: a field the event does not have, a missing one, or a
//! code that is not in the event's form (re-formatted, it must give the same
//! text) is a [`RecordError`].

use crate::digest::Digest;
use crate::error::RejectCode;
use crate::ids::{AuthorityId, CaseId, MessageId};
use crate::message::MessageKind;
use crate::time::Timestamp;

use super::entry::{Entry, MAX_TEXT};
use super::event::{CaseDeadline, DeliveryFailure, Event, ReadRefusal};
use crate::role::Role;

mod code;

/// What an entry records: its event, with exactly the data that event
/// has. [`Entry::new`] turns it into the wire fields; [`Entry::record`] and
/// [`Entry::decode`] turn them back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// The relay started.
    Started {
        /// Its software version (code `kurir-relay VERSION`).
        version: String,
    },
    /// The relay accepted a roster.
    Roster {
        /// The roster's version.
        version: u64,
        /// SHA-256 of its signed file bytes.
        fingerprint: Digest,
    },
    /// An officer submitted a message; the relay signed and queued it.
    Submitted {
        /// The message.
        msg_id: MessageId,
        /// Its envelope digest.
        envelope_digest: Digest,
        /// Its kind.
        kind: MessageKind,
        /// Its recipients, in the header's order. An entry's code is cut at
        /// [`MAX_TEXT`] bytes: a list cut there ends with the last recipient
        /// that is still an authority id, which may itself be cut short.
        to: Vec<AuthorityId>,
        /// Its case, if any.
        case_id: Option<CaseId>,
        /// The officer's certificate serial (hex).
        officer: String,
    },
    /// A peer's signed receipt for a sent message was verified and stored.
    Delivered {
        /// The message.
        msg_id: MessageId,
        /// The recipient.
        peer: AuthorityId,
        /// [`super::receipt_digest`] of the receipt.
        receipt_digest: Digest,
    },
    /// A peer refused a sent message with a signed rejection.
    Rejected {
        /// The message.
        msg_id: MessageId,
        /// The recipient.
        peer: AuthorityId,
        /// [`super::receipt_digest`] of the rejection.
        receipt_digest: Digest,
        /// Why.
        reason: RejectCode,
    },
    /// A sent message expired undelivered to a peer.
    Expired {
        /// The message.
        msg_id: MessageId,
        /// The recipient it did not reach.
        peer: AuthorityId,
    },
    /// A sent message's delivery to a peer ended undelivered before the
    /// message expired.
    Failed {
        /// The message.
        msg_id: MessageId,
        /// The recipient it did not reach.
        peer: AuthorityId,
        /// Why.
        reason: DeliveryFailure,
    },
    /// A message from a peer was verified and stored; the receipt went back.
    Received {
        /// The message.
        msg_id: MessageId,
        /// Its envelope digest.
        envelope_digest: Digest,
        /// The sender.
        peer: AuthorityId,
        /// Its case, if any.
        case_id: Option<CaseId>,
        /// Its kind.
        kind: MessageKind,
    },
    /// A parcel from a peer was refused with a signed rejection.
    Refused {
        /// The message, if its header could be read.
        msg_id: Option<MessageId>,
        /// The parcel's envelope digest.
        envelope_digest: Digest,
        /// The sender.
        peer: AuthorityId,
        /// [`super::receipt_digest`] of the rejection.
        receipt_digest: Digest,
        /// Why.
        reason: RejectCode,
    },
    /// An officer first read a received message.
    Read {
        /// The message.
        msg_id: MessageId,
        /// The officer's certificate serial (hex).
        officer: String,
    },
    /// An officer was given a message body (every time, not only the
    /// first): the reader as its certificate names it.
    BodyRead {
        /// The message.
        msg_id: MessageId,
        /// The officer's certificate serial (hex).
        officer: String,
        /// The role in the certificate.
        role: Role,
        /// The name in the certificate (the reader's, never the name of a
        /// person the message is about). An entry's code is cut at
        /// [`MAX_TEXT`] bytes, and the name with it.
        name: String,
    },
    /// An officer was refused a message body.
    BodyRefused {
        /// The message.
        msg_id: MessageId,
        /// The officer's certificate serial (hex).
        officer: String,
        /// The role in the certificate.
        role: Role,
        /// The name in the certificate (cut as in [`Record::BodyRead`]).
        name: String,
        /// Why.
        reason: ReadRefusal,
    },
    /// A message body and its key were erased under the retention policy.
    BodyErased {
        /// The message.
        msg_id: MessageId,
        /// The retention rule that erased it (as `[retention]` states it).
        policy: String,
    },
    /// The readmission clock of a case fired.
    Deadline {
        /// The case.
        case_id: CaseId,
        /// What it recorded.
        what: CaseDeadline,
    },
    /// A peer's checkpoint was verified (consistent with the last one seen)
    /// and cosigned.
    PeerCheckpoint {
        /// The peer.
        peer: AuthorityId,
        /// The checkpoint's tree size.
        size: u64,
        /// Its root hash.
        root: Digest,
    },
}

/// Why an entry's fields are not those of its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A field the event needs is absent.
    #[error("a {event} entry needs {field}")]
    Missing {
        /// The entry's event.
        event: Event,
        /// The field's name.
        field: &'static str,
    },
    /// A field the event does not have is present.
    #[error("a {event} entry has no {field}")]
    Unexpected {
        /// The entry's event.
        event: Event,
        /// The field's name.
        field: &'static str,
    },
    /// The code is not in the event's form.
    #[error("the code {code:?} of a {event} entry is not {expected}")]
    Code {
        /// The entry's event.
        event: Event,
        /// The code found.
        code: String,
        /// The form expected.
        expected: &'static str,
    },
}

impl Record {
    /// The event it records.
    pub fn event(&self) -> Event {
        match self {
            Record::Started { .. } => Event::Started,
            Record::Roster { .. } => Event::Roster,
            Record::Submitted { .. } => Event::Submitted,
            Record::Delivered { .. } => Event::Delivered,
            Record::Rejected { .. } => Event::Rejected,
            Record::Expired { .. } => Event::Expired,
            Record::Failed { .. } => Event::Failed,
            Record::Received { .. } => Event::Received,
            Record::Refused { .. } => Event::Refused,
            Record::Read { .. } => Event::Read,
            Record::BodyRead { .. } => Event::BodyRead,
            Record::BodyRefused { .. } => Event::BodyRefused,
            Record::BodyErased { .. } => Event::BodyErased,
            Record::Deadline { .. } => Event::Deadline,
            Record::PeerCheckpoint { .. } => Event::PeerCheckpoint,
        }
    }

    /// The `code` text of its entry, if the event has one (before an entry
    /// cuts it at [`MAX_TEXT`] bytes).
    pub fn code(&self) -> Option<String> {
        match self {
            Record::Started { version } => Some(code::started(version)),
            Record::Roster {
                version,
                fingerprint,
            } => Some(code::roster(*version, fingerprint)),
            Record::Submitted { kind, to, .. } => Some(code::submitted(*kind, to)),
            Record::Rejected { reason, .. } | Record::Refused { reason, .. } => {
                Some(reason.as_str().to_owned())
            }
            Record::Received { kind, .. } => Some(kind.as_str().to_owned()),
            Record::Failed { reason, .. } => Some(reason.as_str().to_owned()),
            Record::BodyErased { policy, .. } => Some(policy.clone()),
            Record::BodyRead { role, name, .. } => Some(code::body_read(*role, name)),
            Record::BodyRefused {
                role, name, reason, ..
            } => Some(code::body_refused(*reason, *role, name)),
            Record::Deadline { what, .. } => Some(what.as_str().to_owned()),
            Record::PeerCheckpoint { size, root, .. } => Some(code::peer_checkpoint(*size, root)),
            Record::Delivered { .. } | Record::Expired { .. } | Record::Read { .. } => None,
        }
    }

    /// Its entry at `at`: index 0 and no `prev`, which the log sets.
    pub(super) fn into_entry(self, at: Timestamp) -> Entry {
        let code = self.code();
        let mut e = Entry {
            index: 0,
            at,
            event: self.event(),
            msg_id: None,
            envelope_digest: None,
            peer: None,
            case_id: None,
            receipt_digest: None,
            officer: None,
            code,
            prev: None,
        };
        match self {
            Record::Started { .. } | Record::Roster { .. } => {}
            Record::Submitted {
                msg_id,
                envelope_digest,
                case_id,
                officer,
                ..
            } => {
                e.msg_id = Some(msg_id);
                e.envelope_digest = Some(envelope_digest);
                e.case_id = case_id;
                e.officer = Some(officer);
            }
            Record::Delivered {
                msg_id,
                peer,
                receipt_digest,
            }
            | Record::Rejected {
                msg_id,
                peer,
                receipt_digest,
                ..
            } => {
                e.msg_id = Some(msg_id);
                e.peer = Some(peer);
                e.receipt_digest = Some(receipt_digest);
            }
            Record::Expired { msg_id, peer } | Record::Failed { msg_id, peer, .. } => {
                e.msg_id = Some(msg_id);
                e.peer = Some(peer);
            }
            Record::Received {
                msg_id,
                envelope_digest,
                peer,
                case_id,
                ..
            } => {
                e.msg_id = Some(msg_id);
                e.envelope_digest = Some(envelope_digest);
                e.peer = Some(peer);
                e.case_id = case_id;
            }
            Record::Refused {
                msg_id,
                envelope_digest,
                peer,
                receipt_digest,
                ..
            } => {
                e.msg_id = msg_id;
                e.envelope_digest = Some(envelope_digest);
                e.peer = Some(peer);
                e.receipt_digest = Some(receipt_digest);
            }
            Record::Read { msg_id, officer }
            | Record::BodyRead {
                msg_id, officer, ..
            }
            | Record::BodyRefused {
                msg_id, officer, ..
            } => {
                e.msg_id = Some(msg_id);
                e.officer = Some(officer);
            }
            Record::BodyErased { msg_id, .. } => e.msg_id = Some(msg_id),
            Record::Deadline { case_id, .. } => e.case_id = Some(case_id),
            Record::PeerCheckpoint { peer, .. } => e.peer = Some(peer),
        }
        e
    }

    /// The record of an entry's fields, strictly: see the module docs.
    pub(super) fn of_entry(e: &Entry) -> Result<Record, RecordError> {
        let event = e.event;
        let mut f = Fields {
            event,
            msg_id: e.msg_id,
            envelope_digest: e.envelope_digest,
            peer: e.peer.clone(),
            case_id: e.case_id.clone(),
            receipt_digest: e.receipt_digest,
            officer: e.officer.clone(),
            code: e.code.clone(),
        };
        let bad_code = |code: String, expected| RecordError::Code {
            event,
            code,
            expected,
        };
        let record = match event {
            Event::Started => {
                let c = f.code()?;
                let version = code::parse_started(&c).ok_or_else(|| bad_code(c, code::STARTED))?;
                Record::Started { version }
            }
            Event::Roster => {
                let c = f.code()?;
                let (version, fingerprint) =
                    code::parse_roster(&c).ok_or_else(|| bad_code(c, code::ROSTER))?;
                Record::Roster {
                    version,
                    fingerprint,
                }
            }
            Event::Submitted => {
                let c = f.code()?;
                let (kind, to) =
                    code::parse_submitted(&c).ok_or_else(|| bad_code(c, code::SUBMITTED))?;
                Record::Submitted {
                    msg_id: f.msg_id()?,
                    envelope_digest: f.envelope_digest()?,
                    kind,
                    to,
                    case_id: f.case_id.take(),
                    officer: f.officer()?,
                }
            }
            Event::Delivered => Record::Delivered {
                msg_id: f.msg_id()?,
                peer: f.peer()?,
                receipt_digest: f.receipt_digest()?,
            },
            Event::Rejected => {
                let c = f.code()?;
                let reason = c.parse().map_err(|()| bad_code(c, code::REASON))?;
                Record::Rejected {
                    msg_id: f.msg_id()?,
                    peer: f.peer()?,
                    receipt_digest: f.receipt_digest()?,
                    reason,
                }
            }
            Event::Expired => Record::Expired {
                msg_id: f.msg_id()?,
                peer: f.peer()?,
            },
            Event::Failed => {
                let c = f.code()?;
                let reason =
                    DeliveryFailure::parse(&c).ok_or_else(|| bad_code(c, code::FAILURE))?;
                Record::Failed {
                    msg_id: f.msg_id()?,
                    peer: f.peer()?,
                    reason,
                }
            }
            Event::Received => {
                let c = f.code()?;
                let kind = c.parse().map_err(|_| bad_code(c, code::KIND))?;
                Record::Received {
                    msg_id: f.msg_id()?,
                    envelope_digest: f.envelope_digest()?,
                    peer: f.peer()?,
                    case_id: f.case_id.take(),
                    kind,
                }
            }
            Event::Refused => {
                let c = f.code()?;
                let reason = c.parse().map_err(|()| bad_code(c, code::REASON))?;
                Record::Refused {
                    msg_id: f.msg_id.take(),
                    envelope_digest: f.envelope_digest()?,
                    peer: f.peer()?,
                    receipt_digest: f.receipt_digest()?,
                    reason,
                }
            }
            Event::Read => Record::Read {
                msg_id: f.msg_id()?,
                officer: f.officer()?,
            },
            Event::BodyRead => {
                let c = f.code()?;
                let (role, name) =
                    code::parse_body_read(&c).ok_or_else(|| bad_code(c, code::BODY_READ))?;
                Record::BodyRead {
                    msg_id: f.msg_id()?,
                    officer: f.officer()?,
                    role,
                    name,
                }
            }
            Event::BodyRefused => {
                let c = f.code()?;
                let (reason, role, name) =
                    code::parse_body_refused(&c).ok_or_else(|| bad_code(c, code::BODY_REFUSED))?;
                Record::BodyRefused {
                    msg_id: f.msg_id()?,
                    officer: f.officer()?,
                    role,
                    name,
                    reason,
                }
            }
            Event::BodyErased => Record::BodyErased {
                policy: f.code()?,
                msg_id: f.msg_id()?,
            },
            Event::Deadline => {
                let c = f.code()?;
                let what = CaseDeadline::parse(&c).ok_or_else(|| bad_code(c, code::DEADLINE))?;
                Record::Deadline {
                    case_id: f.case_id()?,
                    what,
                }
            }
            Event::PeerCheckpoint => {
                let c = f.code()?;
                let (size, root) = code::parse_peer_checkpoint(&c)
                    .ok_or_else(|| bad_code(c, code::PEER_CHECKPOINT))?;
                Record::PeerCheckpoint {
                    peer: f.peer()?,
                    size,
                    root,
                }
            }
        };
        f.finish()?;
        Ok(record)
    }
}

/// An entry's optional fields, taken one by one by the event that has
/// them; any left over is a field the event does not have.
struct Fields {
    event: Event,
    msg_id: Option<MessageId>,
    envelope_digest: Option<Digest>,
    peer: Option<AuthorityId>,
    case_id: Option<CaseId>,
    receipt_digest: Option<Digest>,
    officer: Option<String>,
    code: Option<String>,
}

impl Fields {
    fn need<T>(event: Event, slot: &mut Option<T>, field: &'static str) -> Result<T, RecordError> {
        slot.take().ok_or(RecordError::Missing { event, field })
    }

    fn msg_id(&mut self) -> Result<MessageId, RecordError> {
        Self::need(self.event, &mut self.msg_id, "msg_id")
    }

    fn envelope_digest(&mut self) -> Result<Digest, RecordError> {
        Self::need(self.event, &mut self.envelope_digest, "envelope_digest")
    }

    fn peer(&mut self) -> Result<AuthorityId, RecordError> {
        Self::need(self.event, &mut self.peer, "peer")
    }

    fn case_id(&mut self) -> Result<CaseId, RecordError> {
        Self::need(self.event, &mut self.case_id, "case_id")
    }

    fn receipt_digest(&mut self) -> Result<Digest, RecordError> {
        Self::need(self.event, &mut self.receipt_digest, "receipt_digest")
    }

    fn officer(&mut self) -> Result<String, RecordError> {
        Self::need(self.event, &mut self.officer, "officer")
    }

    fn code(&mut self) -> Result<String, RecordError> {
        Self::need(self.event, &mut self.code, "code")
    }

    fn finish(self) -> Result<(), RecordError> {
        let left = [
            ("msg_id", self.msg_id.is_some()),
            ("envelope_digest", self.envelope_digest.is_some()),
            ("peer", self.peer.is_some()),
            ("case_id", self.case_id.is_some()),
            ("receipt_digest", self.receipt_digest.is_some()),
            ("officer", self.officer.is_some()),
            ("code", self.code.is_some()),
        ];
        match left.into_iter().find(|(_, present)| *present) {
            Some((field, _)) => Err(RecordError::Unexpected {
                event: self.event,
                field,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
