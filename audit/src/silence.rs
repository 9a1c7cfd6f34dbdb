//! Proof of silence: from the requested authority's own signed log, that it
//! sent nothing in a readmission case before the requesting authority's
//! clock deemed the request accepted (`kurir audit prove-deadline`, and the
//! report's section on deadlines).
//!
//! The requesting side's log records the request (`submitted`), its
//! delivery with the requested side's signed receipt (`delivered`), and the
//! moment its readmission clock found the reply overdue (`deadline`
//! `deemed_accepted`, at T). That moment is after the reply's due date: the
//! clock fires only once the due date has passed. The proof then holds when
//! the requested side's bundle shows all of:
//!
//! - it received the request (its `received` entry);
//! - a checkpoint of its log, cosigned by a peer at a time after T, covers
//!   its first entry dated at or after T: its log up to then can no longer
//!   change without contradicting that peer, and every entry written later
//!   comes after an entry dated after T;
//! - no entry of that checkpoint dated before T is a message it sent in the
//!   case (`submitted` with the case id): no reply, no extension request,
//!   nothing.
//!
//! Entries after the checkpoint dated before T are out of time order (they
//! were written after an entry dated after T); they are listed, never
//! counted as answers in time.
//!
//! The due date itself is not in the logs (it follows from the agreement
//! between the two authorities, in each relay's configuration); the proof
//! is about T, which is later.

use std::fmt;

use kurir_proto::audit::{CaseDeadline, Entry, Record};
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, CaseId, Digest, Timestamp};

use crate::verify::{Log, VerifiedBundle};

/// What a proof reads of a verified bundle: its log and which checkpoints
/// its peers cosigned.
#[derive(Debug, Clone, Copy)]
pub struct LogView<'a> {
    /// The log.
    pub log: &'a Log,
    /// Per checkpoint (oldest first): its size and its valid cosignatures
    /// with their times (Unix seconds), as [`VerifiedBundle::cosigned`].
    pub cosigned: &'a [(u64, Vec<(AuthorityId, u64)>)],
}

impl<'a> From<&'a VerifiedBundle> for LogView<'a> {
    fn from(b: &'a VerifiedBundle) -> LogView<'a> {
        LogView {
            log: &b.log,
            cosigned: &b.cosigned,
        }
    }
}

/// One entry of one authority's log, as a proof names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// Whose log.
    pub authority: AuthorityId,
    /// Its index in that log.
    pub index: u64,
    /// Its time (that relay's clock).
    pub at: Timestamp,
    /// Its leaf hash.
    pub leaf: Digest,
}

impl EntryRef {
    /// The reference to `entry` of `authority`'s log.
    pub fn of(authority: &AuthorityId, entry: &Entry) -> EntryRef {
        EntryRef {
            authority: authority.clone(),
            index: entry.index,
            at: entry.at,
            leaf: entry.leaf_hash(),
        }
    }
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} of {}'s log ({}, leaf {})",
            self.index, self.authority, self.at, self.leaf
        )
    }
}

/// A checkpoint of a log with its peers' cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignedCheckpoint {
    /// Its size (entries covered).
    pub size: u64,
    /// Its root hash.
    pub root: Digest,
    /// The peers whose valid cosignature it carries, with when each
    /// cosigned (Unix seconds, as the cosignature states it).
    pub cosigners: Vec<(AuthorityId, u64)>,
}

/// A proof that the requested side sent nothing in a case before the
/// requesting side deemed the request accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// The case.
    pub case_id: CaseId,
    /// The authority that asked for readmission.
    pub requesting: AuthorityId,
    /// The authority asked.
    pub requested: AuthorityId,
    /// The request as the requesting side sent it (`submitted`).
    pub request_sent: EntryRef,
    /// Its delivery with the requested side's receipt, if logged.
    pub request_delivered: Option<EntryRef>,
    /// The requesting side's `deadline deemed_accepted` entry: T.
    pub deemed: EntryRef,
    /// The requested side's arrival of the request (`received`).
    pub request_received: EntryRef,
    /// The requested side's own `deemed_accepted` entry, if its clock
    /// fired too.
    pub requested_deemed: Option<EntryRef>,
    /// The requested side's first entry dated at or after T.
    pub first_after: EntryRef,
    /// The requested side's checkpoint that covers `first_after`, with its
    /// cosignatures dated after T.
    pub checkpoint: CosignedCheckpoint,
    /// Messages the requested side sent in the case, dated at or after T
    /// (too late to be an answer in time).
    pub late: Vec<(EntryRef, MessageKind)>,
    /// Entries after the checkpoint dated before T: out of time order.
    pub out_of_order: Vec<EntryRef>,
}

/// Why the proof of silence does not hold, or cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoProof {
    /// The case id is not one of a readmission case in these bundles.
    #[error(
        "no bundle given records a readmission request in case {case}: give the bundle of \
         the authority that asked ({requesting})"
    )]
    UnknownCase {
        /// The case.
        case: CaseId,
        /// The authority whose namespace the case id is in.
        requesting: AuthorityId,
    },
    /// The requested side's bundle is not among those given.
    #[error(
        "the bundle of {requested}, the authority asked in case {case}, is not given: the \
         proof is made from its own log"
    )]
    NoRequestedBundle {
        /// The case.
        case: CaseId,
        /// The authority asked.
        requested: AuthorityId,
    },
    /// The requesting side never deemed the request accepted.
    #[error(
        "{requesting}'s log has no deemed acceptance in case {case}: its clock never found \
         the reply overdue (a reply came in time, or the due date had not passed when the \
         bundle was exported)"
    )]
    NotDeemedAccepted {
        /// The case.
        case: CaseId,
        /// The authority that asked.
        requesting: AuthorityId,
    },
    /// The requested side's log does not record the request's arrival.
    #[error(
        "{requested}'s log does not record receiving the request of case {case} (message \
         {msg}): reconcile the two bundles to see why"
    )]
    NotReceived {
        /// The case.
        case: CaseId,
        /// The authority asked.
        requested: AuthorityId,
        /// The request's message id.
        msg: String,
    },
    /// The requested side's log has nothing dated at or after T.
    #[error(
        "{requested}'s log ends before {deemed_at}, when {requesting} deemed the request \
         accepted: export {requested}'s log again, later"
    )]
    LogEndsBefore {
        /// The authority asked.
        requested: AuthorityId,
        /// The authority that asked.
        requesting: AuthorityId,
        /// T.
        deemed_at: Timestamp,
    },
    /// No checkpoint cosigned after T covers the requested side's log up to
    /// its first entry at or after T.
    #[error(
        "no checkpoint of {requested}'s log cosigned after {deemed_at} covers its entry \
         {first_after} (its first dated after {requesting} deemed the request accepted): \
         without a peer's cosignature the log could still be rewritten; export it again \
         once its next checkpoint is cosigned"
    )]
    NotCovered {
        /// The authority asked.
        requested: AuthorityId,
        /// The authority that asked.
        requesting: AuthorityId,
        /// T.
        deemed_at: Timestamp,
        /// The index of its first entry dated at or after T.
        first_after: u64,
    },
    /// The requested side did send something in the case before T.
    #[error(
        "{requested} did answer: it sent a {kind} in case {case} at {at} ({entry}), before \
         {requesting} deemed the request accepted at {deemed_at}"
    )]
    Answered {
        /// The case.
        case: CaseId,
        /// The authority asked.
        requested: AuthorityId,
        /// The authority that asked.
        requesting: AuthorityId,
        /// What it sent.
        kind: MessageKind,
        /// When.
        at: Timestamp,
        /// Its `submitted` entry.
        entry: Box<EntryRef>,
        /// T.
        deemed_at: Timestamp,
    },
}

/// The bundle of `who` among `bundles`.
fn find<'a>(bundles: &[LogView<'a>], who: &AuthorityId) -> Option<LogView<'a>> {
    bundles.iter().copied().find(|b| &b.log.authority == who)
}

/// Proves that the authority asked in `case` sent nothing in it before the
/// asking authority deemed the request accepted, from `bundles` (each
/// already verified, [`LogView::from`] a [`VerifiedBundle`]; the asking and
/// the asked authority's must be among them).
pub fn prove_silence(case: &CaseId, bundles: &[LogView<'_>]) -> Result<Silence, NoProof> {
    let requesting = case.authority();
    let unknown = || NoProof::UnknownCase {
        case: case.clone(),
        requesting: requesting.clone(),
    };
    let asker = find(bundles, &requesting).ok_or_else(unknown)?;
    // The request, as its sender logged it.
    let (request, msg_id, requested) = asker
        .log
        .entries
        .iter()
        .find_map(|e| match e.record() {
            Ok(Record::Submitted {
                msg_id,
                kind: MessageKind::ReadmissionRequest,
                to,
                case_id: Some(c),
                ..
            }) if &c == case => to.first().cloned().map(|r| (e, msg_id, r)),
            _ => None,
        })
        .ok_or_else(unknown)?;
    let delivered = asker.log.entries.iter().find(|e| {
        matches!(e.record(), Ok(Record::Delivered { msg_id: m, peer, .. })
            if m == msg_id && peer == requested)
    });
    let deemed = asker
        .log
        .entries
        .iter()
        .find(|e| is_deemed(e, case))
        .ok_or_else(|| NoProof::NotDeemedAccepted {
            case: case.clone(),
            requesting: requesting.clone(),
        })?;
    let asked = find(bundles, &requested).ok_or_else(|| NoProof::NoRequestedBundle {
        case: case.clone(),
        requested: requested.clone(),
    })?;
    let t = deemed.at;
    let entries = &asked.log.entries;
    let received = entries
        .iter()
        .find(|e| matches!(e.record(), Ok(Record::Received { msg_id: m, .. }) if m == msg_id))
        .ok_or_else(|| NoProof::NotReceived {
            case: case.clone(),
            requested: requested.clone(),
            msg: msg_id.to_string(),
        })?;
    let first_after = entries
        .iter()
        .find(|e| e.at >= t)
        .ok_or_else(|| NoProof::LogEndsBefore {
            requested: requested.clone(),
            requesting: requesting.clone(),
            deemed_at: t,
        })?;
    let checkpoint =
        covering_checkpoint(asked, first_after.index, t).ok_or_else(|| NoProof::NotCovered {
            requested: requested.clone(),
            requesting: requesting.clone(),
            deemed_at: t,
            first_after: first_after.index,
        })?;
    let covered = entries.iter().take_while(|e| e.index < checkpoint.size);
    let mut late = Vec::new();
    for e in covered {
        if let Ok(Record::Submitted {
            kind,
            case_id: Some(c),
            ..
        }) = e.record()
            && &c == case
        {
            let at = EntryRef::of(&requested, e);
            if e.at < t {
                return Err(NoProof::Answered {
                    case: case.clone(),
                    requested: requested.clone(),
                    requesting: requesting.clone(),
                    kind,
                    at: e.at,
                    entry: Box::new(at),
                    deemed_at: t,
                });
            }
            late.push((at, kind));
        }
    }
    let out_of_order = entries
        .iter()
        .filter(|e| e.index >= checkpoint.size && e.at < t)
        .map(|e| EntryRef::of(&requested, e))
        .collect();
    Ok(Silence {
        case_id: case.clone(),
        requesting: requesting.clone(),
        requested: requested.clone(),
        request_sent: EntryRef::of(&requesting, request),
        request_delivered: delivered.map(|e| EntryRef::of(&requesting, e)),
        deemed: EntryRef::of(&requesting, deemed),
        request_received: EntryRef::of(&requested, received),
        requested_deemed: entries
            .iter()
            .find(|e| is_deemed(e, case))
            .map(|e| EntryRef::of(&requested, e)),
        first_after: EntryRef::of(&requested, first_after),
        checkpoint,
        late,
        out_of_order,
    })
}

/// Whether `e` is the readmission clock deeming the request of `case`
/// accepted.
fn is_deemed(e: &Entry, case: &CaseId) -> bool {
    matches!(e.record(), Ok(Record::Deadline { case_id, what: CaseDeadline::DeemedAccepted })
        if &case_id == case)
}

/// The oldest checkpoint of `b` that covers entry `index` and carries a
/// cosignature dated after `t` (only those cosignatures are kept).
fn covering_checkpoint(b: LogView<'_>, index: u64, t: Timestamp) -> Option<CosignedCheckpoint> {
    let (size, cosigners) = b.cosigned.iter().find_map(|(size, by)| {
        let after: Vec<(AuthorityId, u64)> = by
            .iter()
            .filter(|(_, secs)| secs.saturating_mul(1000) > t.0)
            .cloned()
            .collect();
        (*size > index && !after.is_empty()).then_some((*size, after))
    })?;
    let leaves: Vec<Digest> = b
        .log
        .entries
        .get(..usize::try_from(size).ok()?)?
        .iter()
        .map(Entry::leaf_hash)
        .collect();
    let root = kurir_proto::merkle::root(&leaves);
    Some(CosignedCheckpoint {
        size,
        root,
        cosigners,
    })
}

#[cfg(test)]
mod tests;
