//! The events of the audit log by name ([`Event`]), what the
//! readmission clock of a case records ([`CaseDeadline`]), and why a body
//! was refused ([`ReadRefusal`]).

use std::fmt;

/// What happened: the `event` of an entry, the kind of its
/// [`super::Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// An officer submitted a message; the relay signed and queued it.
    Submitted,
    /// A peer's signed receipt for a sent message was verified and stored.
    Delivered,
    /// A peer refused a sent message with a signed rejection.
    Rejected,
    /// A sent message expired undelivered to a peer.
    Expired,
    /// A sent message's delivery to a peer ended undelivered before its
    /// expiry (code: [`DeliveryFailure`]).
    Failed,
    /// A message from a peer was verified and stored; the receipt went back.
    Received,
    /// A parcel from a peer was refused with a signed rejection.
    Refused,
    /// An officer first read a received message (marked it read).
    Read,
    /// An officer was given a message body (code: role and name).
    BodyRead,
    /// An officer was refused a message body (code: reason, role and name).
    BodyRefused,
    /// A message body and its key were erased under the retention policy.
    BodyErased,
    /// A readmission deadline event (code: due_soon, deemed_accepted, transfer_overdue).
    Deadline,
    /// The relay accepted a roster (code: version and fingerprint).
    Roster,
    /// The relay started (code: software version).
    Started,
    /// A peer's checkpoint was verified (consistent with the last one seen)
    /// and cosigned (code: `size N root HEX`).
    PeerCheckpoint,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 15] = [
        Event::Submitted,
        Event::Delivered,
        Event::Rejected,
        Event::Expired,
        Event::Failed,
        Event::Received,
        Event::Refused,
        Event::Read,
        Event::BodyRead,
        Event::BodyRefused,
        Event::BodyErased,
        Event::Deadline,
        Event::Roster,
        Event::Started,
        Event::PeerCheckpoint,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Submitted => "submitted",
            Event::Delivered => "delivered",
            Event::Rejected => "rejected",
            Event::Expired => "expired",
            Event::Failed => "failed",
            Event::Received => "received",
            Event::Refused => "refused",
            Event::Read => "read",
            Event::BodyRead => "body_read",
            Event::BodyRefused => "body_refused",
            Event::BodyErased => "body_erased",
            Event::Deadline => "deadline",
            Event::Roster => "roster",
            Event::Started => "started",
            Event::PeerCheckpoint => "peer_checkpoint",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the readmission clock of a case recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaseDeadline {
    /// The reply to the request is due soon.
    DueSoon,
    /// No reply came by its due date: the readmission is deemed accepted.
    DeemedAccepted,
    /// The transfer is overdue.
    TransferOverdue,
}

impl CaseDeadline {
    /// Every deadline event.
    pub const ALL: [CaseDeadline; 3] = [
        CaseDeadline::DueSoon,
        CaseDeadline::DeemedAccepted,
        CaseDeadline::TransferOverdue,
    ];

    /// The code: `due_soon`, `deemed_accepted` or `transfer_overdue`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseDeadline::DueSoon => "due_soon",
            CaseDeadline::DeemedAccepted => "deemed_accepted",
            CaseDeadline::TransferOverdue => "transfer_overdue",
        }
    }

    /// Parses the code.
    pub fn parse(s: &str) -> Option<CaseDeadline> {
        CaseDeadline::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for CaseDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a delivery ended undelivered before its message expired
/// (`failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// The roster in force no longer lists the recipient: it was removed
    /// from the federation, and a member added again later does not get
    /// the message.
    NotAMember,
}

impl DeliveryFailure {
    /// Every reason.
    pub const ALL: [DeliveryFailure; 1] = [DeliveryFailure::NotAMember];

    /// The code: `not_a_member`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryFailure::NotAMember => "not_a_member",
        }
    }

    /// Parses the code.
    pub fn parse(s: &str) -> Option<DeliveryFailure> {
        DeliveryFailure::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a relay refused an officer a message body (`body_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadRefusal {
    /// The officer's role may not read bodies of the message's handling
    /// level and kind (auditors and admins, and `[reads]` for H2).
    RoleNotAllowed,
    /// The message is H3 and the roster does not name the officer as a
    /// focal point of the relay's authority.
    NotAFocalPoint,
}

impl ReadRefusal {
    /// Every reason.
    pub const ALL: [ReadRefusal; 2] = [ReadRefusal::RoleNotAllowed, ReadRefusal::NotAFocalPoint];

    /// The code: `role_not_allowed` or `not_a_focal_point`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadRefusal::RoleNotAllowed => "role_not_allowed",
            ReadRefusal::NotAFocalPoint => "not_a_focal_point",
        }
    }

    /// Parses the code.
    pub fn parse(s: &str) -> Option<ReadRefusal> {
        ReadRefusal::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
