//! What [`super::reconcile_logs`] reports: each [`Finding`] is a
//! [`Discrepancy`] (one variant per situation it detects, with the entries
//! and values concerned) between the sender and the receiver of a message.

use std::fmt;

use kurir_proto::audit::Event;
use kurir_proto::{AuthorityId, Digest, MessageId};

use crate::error::MessageText;

/// What kind of disagreement a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    /// Sent (or a receipt recorded) on one side, with nothing on the other.
    Missing,
    /// Received on one side, never sent by the other.
    Extra,
    /// Both sides record it, but differently (digests, entries named).
    Contradictory,
    /// Not delivered yet, legitimately (the receiver was unreachable, or the
    /// sender has not yet got the receipt back). Not an error.
    Pending,
}

impl FindingKind {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Missing => "missing",
            FindingKind::Extra => "extra",
            FindingKind::Contradictory => "contradictory",
            FindingKind::Pending => "pending",
        }
    }

    /// Whether it makes the logs fail to reconcile.
    pub fn is_error(self) -> bool {
        self != FindingKind::Pending
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the two logs disagree on (or a pending delivery). Its
/// `Display` says what, naming entries by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind ([`Discrepancy::kind`] of `what`).
    pub kind: FindingKind,
    /// The sending authority of the message concerned.
    pub from: AuthorityId,
    /// The receiving authority.
    pub to: AuthorityId,
    /// The message, when known.
    pub msg_id: Option<MessageId>,
    /// The envelope digest concerned, if any.
    pub envelope_digest: Option<Digest>,
    /// The receipt concerned, if any.
    pub receipt_digest: Option<Digest>,
    /// What exactly.
    pub what: Discrepancy,
}

/// The situations [`super::reconcile_logs`] detects. "The sender" and "the
/// receiver" are the finding's `from` and `to`; entries are named by their
/// index in the log of the side named.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discrepancy {
    /// The sender's log records an outcome of the message to the receiver
    /// (`entry`: delivered, rejected or expired) but no submission of it to
    /// the receiver.
    OutcomeWithoutSubmission {
        /// The first outcome entry.
        entry: u64,
    },
    /// The receiver's log records the message (`event`: received or
    /// refused) with another envelope digest than the sender sent.
    DigestDiffers {
        /// The sender's digest.
        sent: Digest,
        /// The sender's `submitted` entry.
        submitted: u64,
        /// `received` or `refused`.
        event: Event,
        /// The receiver's digest.
        recorded: Digest,
        /// The receiver's entry.
        entry: u64,
    },
    /// The sender's log says the receiver accepted (`delivered`) or refused
    /// (`rejected`) the message; the receiver's log has no arrival or
    /// refusal of it.
    NotRecorded {
        /// `delivered` or `rejected`.
        event: Event,
        /// The sender's entry.
        entry: u64,
    },
    /// Pending: the message expired undelivered, and the receiver's log has
    /// no record of it.
    ExpiredUndelivered {
        /// The sender's `expired` entry.
        entry: u64,
    },
    /// Pending: the sender ended the delivery undelivered before the
    /// message expired (its `failed` entry: the receiver left the roster),
    /// and the receiver's log has no record of it.
    FailedUndelivered {
        /// The sender's `failed` entry.
        entry: u64,
    },
    /// Pending: the sender holds no receipt and the receiver's log has no
    /// record of the message.
    NotDeliveredYet,
    /// The sender's log records a receipt from the receiver that the
    /// sender's bundle does not hold.
    ReceiptNotHeld {
        /// The receipt.
        receipt: Digest,
        /// The sender's entry recording it.
        entry: u64,
        /// Its event (`delivered` or `rejected`).
        event: Event,
        /// Whether the receiver's bundle lists it as issued.
        issued: bool,
    },
    /// The sender holds a receipt signed by the receiver that the
    /// receiver's bundle does not list as issued.
    HeldNotIssued {
        /// The receipt.
        receipt: Digest,
    },
    /// An acceptance the sender holds from the receiver does not agree with
    /// the receiver's log.
    HeldAcceptance(HeldProblem),
    /// The sender holds a rejection signed by the receiver, and the
    /// receiver's log has no refusal with it.
    RejectionNotLogged {
        /// The rejection.
        receipt: Digest,
    },
    /// The receiver issued an acceptance, and the sender's log records
    /// another receipt for the message.
    OtherReceiptRecorded {
        /// The receipt the receiver issued.
        issued: Digest,
        /// The receipt the sender's entry records.
        recorded: Option<Digest>,
        /// The sender's `delivered` entry.
        entry: u64,
    },
    /// The receiver accepted the message, and the sender's log records it
    /// rejected or expired.
    AcceptedButRecordedOtherwise {
        /// The receipt the receiver issued.
        receipt: Digest,
        /// `rejected` or `expired`.
        event: Event,
        /// The sender's entry.
        entry: u64,
    },
    /// Pending: the receiver accepted the message, and the sender has not
    /// recorded the receipt yet (it comes back on the next attempt).
    ReceiptNotBackYet {
        /// The receipt the receiver issued.
        receipt: Digest,
    },
    /// The receiver's log records an arrival or a refusal (`event`) from
    /// the sender, whose log has no such message to the receiver.
    NeverSent {
        /// `received` or `refused`.
        event: Event,
        /// The receiver's entry.
        entry: u64,
    },
}

/// How an acceptance the sender holds disagrees with the receiver's log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeldProblem {
    /// It names no entry of the receiver's log.
    NamesNoEntry,
    /// It names an entry beyond the receiver's log.
    EntryBeyondLog {
        /// The entry it names.
        index: u64,
        /// How many entries the receiver's log has.
        entries: usize,
    },
    /// The entry it names has another leaf hash.
    LeafDiffers {
        /// The entry it names.
        index: u64,
        /// The leaf hash it attests.
        attested: Digest,
        /// The leaf hash of that entry.
        actual: Digest,
    },
    /// The entry it names is not the arrival of its message.
    NotTheArrival {
        /// The entry it names.
        index: u64,
    },
    /// The entry it names records another envelope digest.
    EnvelopeDiffers {
        /// The entry it names.
        index: u64,
        /// The digest it attests.
        attested: Digest,
        /// The digest that entry records.
        recorded: Option<Digest>,
    },
    /// Its inclusion proof came with the receiver's signed checkpoint, and
    /// the receiver's exported log gives another root at that size.
    Rewritten {
        /// The checkpoint's size.
        size: u64,
        /// Its signed root.
        root: Digest,
        /// The root of the exported log at that size.
        computed: Digest,
    },
    /// Its inclusion proof came with the receiver's signed checkpoint of a
    /// size beyond the receiver's exported log.
    EntriesRemoved {
        /// The checkpoint's size.
        size: u64,
        /// How many entries the exported log has.
        entries: usize,
    },
}

/// Whose log an entry a finding names is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The sender's (the finding's `from`).
    Sender,
    /// The receiver's (the finding's `to`).
    Receiver,
}

impl Discrepancy {
    /// The entries it names, each with the log it is in.
    pub fn entries(&self) -> Vec<(Side, u64)> {
        match self {
            Discrepancy::OutcomeWithoutSubmission { entry }
            | Discrepancy::NotRecorded { entry, .. }
            | Discrepancy::ExpiredUndelivered { entry }
            | Discrepancy::FailedUndelivered { entry }
            | Discrepancy::ReceiptNotHeld { entry, .. }
            | Discrepancy::OtherReceiptRecorded { entry, .. }
            | Discrepancy::AcceptedButRecordedOtherwise { entry, .. } => {
                vec![(Side::Sender, *entry)]
            }
            Discrepancy::DigestDiffers {
                submitted, entry, ..
            } => vec![(Side::Sender, *submitted), (Side::Receiver, *entry)],
            Discrepancy::NeverSent { entry, .. } => vec![(Side::Receiver, *entry)],
            Discrepancy::HeldAcceptance(
                HeldProblem::EntryBeyondLog { index, .. }
                | HeldProblem::LeafDiffers { index, .. }
                | HeldProblem::NotTheArrival { index }
                | HeldProblem::EnvelopeDiffers { index, .. },
            ) => vec![(Side::Receiver, *index)],
            Discrepancy::HeldAcceptance(_)
            | Discrepancy::NotDeliveredYet
            | Discrepancy::HeldNotIssued { .. }
            | Discrepancy::RejectionNotLogged { .. }
            | Discrepancy::ReceiptNotBackYet { .. } => vec![],
        }
    }

    /// The kind of finding it is.
    pub fn kind(&self) -> FindingKind {
        match self {
            Discrepancy::NotRecorded { .. }
            | Discrepancy::ReceiptNotHeld { .. }
            | Discrepancy::HeldNotIssued { .. } => FindingKind::Missing,
            Discrepancy::NeverSent { .. } => FindingKind::Extra,
            Discrepancy::ExpiredUndelivered { .. }
            | Discrepancy::FailedUndelivered { .. }
            | Discrepancy::NotDeliveredYet
            | Discrepancy::ReceiptNotBackYet { .. } => FindingKind::Pending,
            Discrepancy::OutcomeWithoutSubmission { .. }
            | Discrepancy::DigestDiffers { .. }
            | Discrepancy::HeldAcceptance(_)
            | Discrepancy::RejectionNotLogged { .. }
            | Discrepancy::OtherReceiptRecorded { .. }
            | Discrepancy::AcceptedButRecordedOtherwise { .. } => FindingKind::Contradictory,
        }
    }
}

impl Finding {
    /// A finding of `what` about a message from `from` to `to`.
    pub fn new(
        from: &AuthorityId,
        to: &AuthorityId,
        msg_id: Option<MessageId>,
        envelope_digest: Option<Digest>,
        receipt_digest: Option<Digest>,
        what: Discrepancy,
    ) -> Finding {
        Finding {
            kind: what.kind(),
            from: from.clone(),
            to: to.clone(),
            msg_id,
            envelope_digest,
            receipt_digest,
            what,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sa, ra) = (&self.from, &self.to);
        let id = MessageText(self.msg_id);
        match &self.what {
            Discrepancy::OutcomeWithoutSubmission { entry } => write!(
                f,
                "{sa}'s log records the outcome of message {id} to {ra} (entry {entry}) but no \
                 submission of it to {ra}"
            ),
            Discrepancy::DigestDiffers {
                sent,
                submitted,
                event,
                recorded,
                entry,
            } => write!(
                f,
                "{sa} sent message {id} with envelope digest {sent} (entry {submitted}), but \
                 {ra}'s log records it {} with digest {recorded} (entry {entry})",
                if *event == Event::Received {
                    "received"
                } else {
                    "refused"
                }
            ),
            Discrepancy::NotRecorded { event, entry } => {
                let (what, how) = if *event == Event::Delivered {
                    ("accepted", "arrival")
                } else {
                    ("refused", "refusal")
                };
                write!(
                    f,
                    "{sa}'s log says {ra} {what} message {id} (entry {entry}), but {ra}'s log \
                     has no {how} of it"
                )
            }
            Discrepancy::ExpiredUndelivered { entry } => write!(
                f,
                "message {id} expired undelivered to {ra} (entry {entry} of {sa}'s log); \
                 {ra}'s log has no record of it"
            ),
            Discrepancy::FailedUndelivered { entry } => write!(
                f,
                "message {id} was not delivered to {ra}, which left the roster (entry {entry} of \
                 {sa}'s log); {ra}'s log has no record of it"
            ),
            Discrepancy::NotDeliveredYet => write!(
                f,
                "message {id} is not delivered yet: {sa} holds no receipt and {ra}'s log has no \
                 record of it ({ra} may have been unreachable)"
            ),
            Discrepancy::ReceiptNotHeld {
                receipt,
                entry,
                event,
                issued,
            } => {
                write!(
                    f,
                    "{sa}'s log records receipt {receipt} from {ra} for message {id} (entry \
                     {entry}, {event}), but {sa}'s bundle does not hold it; "
                )?;
                if *issued {
                    write!(f, "{ra}'s bundle lists it as issued")
                } else {
                    write!(f, "{ra}'s bundle does not have it either")
                }
            }
            Discrepancy::HeldNotIssued { receipt } => write!(
                f,
                "{sa} holds a receipt signed by {ra} for message {id} ({receipt}), but {ra}'s \
                 bundle does not list it as issued"
            ),
            Discrepancy::HeldAcceptance(p) => {
                write!(f, "the receipt {sa} holds from {ra} for message {id} ")?;
                held_problem(f, p, ra, id)
            }
            Discrepancy::RejectionNotLogged { receipt } => write!(
                f,
                "{sa} holds a rejection signed by {ra} for message {id} ({receipt}), but {ra}'s \
                 log has no refusal with it"
            ),
            Discrepancy::OtherReceiptRecorded {
                issued,
                recorded,
                entry,
            } => write!(
                f,
                "{ra} issued receipt {issued} for message {id}, but {sa}'s log records receipt \
                 {} for it (entry {entry})",
                recorded.map(|d| d.to_string()).unwrap_or_default()
            ),
            Discrepancy::AcceptedButRecordedOtherwise {
                receipt,
                event,
                entry,
            } => write!(
                f,
                "{ra} accepted message {id} (receipt {receipt}), but {sa}'s log records it \
                 {event} (entry {entry})"
            ),
            Discrepancy::ReceiptNotBackYet { receipt } => write!(
                f,
                "{ra} accepted message {id} (receipt {receipt}), but {sa} has not recorded the \
                 receipt yet (it comes back on {sa}'s next attempt)"
            ),
            Discrepancy::NeverSent { event, entry } => write!(
                f,
                "{ra}'s log records {} message {id} from {sa} (entry {entry}), but {sa}'s log \
                 has no such message to {ra}",
                if *event == Event::Received {
                    "the arrival of"
                } else {
                    "refusing"
                }
            ),
        }
    }
}

/// The end of a [`Discrepancy::HeldAcceptance`] sentence.
fn held_problem(
    f: &mut fmt::Formatter<'_>,
    p: &HeldProblem,
    ra: &AuthorityId,
    id: MessageText,
) -> fmt::Result {
    match p {
        HeldProblem::NamesNoEntry => write!(f, "names no entry of {ra}'s log"),
        HeldProblem::EntryBeyondLog { index, entries } => write!(
            f,
            "names entry {index} of {ra}'s log, which has only {entries} entries"
        ),
        HeldProblem::LeafDiffers {
            index,
            attested,
            actual,
        } => write!(
            f,
            "names entry {index} of {ra}'s log with leaf hash {attested}, but that entry's leaf \
             hash is {actual}"
        ),
        HeldProblem::NotTheArrival { index } => write!(
            f,
            "names entry {index} of {ra}'s log, which is not the arrival of message {id}"
        ),
        HeldProblem::EnvelopeDiffers {
            index,
            attested,
            recorded,
        } => write!(
            f,
            "attests envelope digest {attested}, but entry {index} of {ra}'s log records {}",
            recorded.map(|d| d.to_string()).unwrap_or_default()
        ),
        HeldProblem::Rewritten {
            size,
            root,
            computed,
        } => write!(
            f,
            "comes with {ra}'s signed checkpoint of size {size} (root {root}), but {ra}'s \
             exported log gives root {computed} at that size: {ra}'s log was rewritten"
        ),
        HeldProblem::EntriesRemoved { size, entries } => write!(
            f,
            "comes with {ra}'s signed checkpoint of size {size}, but {ra}'s exported log has \
             only {entries} entries: entries were removed"
        ),
    }
}
