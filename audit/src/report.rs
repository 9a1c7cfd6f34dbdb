//! The auditor's report (`kurir audit report`): what verified bundles of
//! one or more authorities show, gathered into a [`Report`] and written as
//! one self-contained HTML file ([`html`]).
//!
//! The report holds what the logs hold (ids, digests, kinds, authorities,
//! times, case ids, officer certificate serials), never a message body, so
//! a data-protection officer can hand it on. Built from bundles that passed
//! [`crate::load_verified_with`] and were held to each other
//! ([`cross_check`]); bundles that did not are listed as failures, and the
//! report says so at the top.
//!
//! - [`build`] gathers the report: the bundles, the roster, every
//!   readmission case with its deadlines and, where the asked authority's
//!   bundle is given, the proof of silence ([`crate::silence`]), the
//!   traffic between authorities, refusals and rejections, reads of
//!   personal data, and the reconciliation of every pair;
//! - [`html`] renders it (`report/html.rs`, the chart in `report/chart.rs`).

mod chart;
mod html;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kurir_proto::audit::{CaseDeadline, Entry, Record};
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, CaseId, Date, Digest, MessageId, Timestamp};

pub use html::html;

use crate::reconcile::{Direction, Finding, Side, reconcile_logs};
use crate::silence::{EntryRef, LogView, NoProof, Silence, prove_silence};
use crate::verify::{Anchored, Log, VerifiedBundle, witnessed_in};

/// A bundle that did not verify, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The bundle directory.
    pub path: PathBuf,
    /// The first problem found (the text `kurir audit verify` prints).
    pub error: String,
}

/// Holds every bundle to the checkpoints the others' logs record cosigning
/// of it (as `kurir audit reconcile` does for two): a bundle whose log
/// contradicts what a peer cosigned moves to the failures.
pub fn cross_check(bundles: Vec<VerifiedBundle>) -> (Vec<VerifiedBundle>, Vec<Failed>) {
    let views: Vec<_> = bundles
        .iter()
        .map(|b| {
            bundles
                .iter()
                .filter(|o| o.log.authority != b.log.authority)
                .flat_map(|o| witnessed_in(&o.log, &b.log.authority))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (b, views) in bundles.into_iter().zip(views) {
        match b.check_witnessed(&views) {
            Ok(()) => ok.push(b),
            Err(e) => failed.push(Failed {
                path: b.path.clone(),
                error: e.to_string(),
            }),
        }
    }
    (ok, failed)
}

/// Everything the report shows, in its order.
#[derive(Debug, Clone)]
pub struct Report {
    /// When the report was made.
    pub generated_at: Timestamp,
    /// What the bundles were anchored to, as the auditor gave it.
    pub anchor: String,
    /// The bundles that verified.
    pub bundles: Vec<BundleView>,
    /// The bundles that did not (only with `--include-failures`).
    pub failed: Vec<Failed>,
    /// The newest roster among the bundles.
    pub roster: Option<RosterView>,
    /// Every readmission case the logs name.
    pub cases: Vec<CaseView>,
    /// Messages between authorities.
    pub traffic: Traffic,
    /// Refusals, rejections and expiries.
    pub refusals: Vec<RefusalView>,
    /// Reads of message bodies (personal data), by officer certificate.
    pub reads: Vec<ReadView>,
    /// The reconciliation of every pair of bundles.
    pub pairs: Vec<PairView>,
}

impl Report {
    /// Whether every bundle given verified and every pair reconciled.
    pub fn verified(&self) -> bool {
        self.failed.is_empty() && self.pairs.iter().all(|p| p.reconciled)
    }
}

/// One verified bundle: who exported what, and when.
#[derive(Debug, Clone)]
pub struct BundleView {
    /// Whose log.
    pub authority: AuthorityId,
    /// The bundle directory.
    pub path: PathBuf,
    /// When it was exported.
    pub exported_at: Timestamp,
    /// Entries in the log.
    pub entries: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// The newest checkpoint's size and root.
    pub newest: Option<(u64, Digest)>,
    /// The newest checkpoint that carries peers' cosignatures: its size,
    /// and who cosigned it when (Unix seconds).
    pub newest_cosigned: Option<(u64, Vec<(AuthorityId, u64)>)>,
    /// Entries after the newest checkpoint.
    pub uncovered: u64,
    /// Receipts kept.
    pub receipts: usize,
    /// Signed envelopes verified.
    pub envelopes: usize,
    /// What its rosters were anchored to.
    pub anchored: String,
}

/// The roster, as the newest bundle holds it.
#[derive(Debug, Clone)]
pub struct RosterView {
    /// Its version.
    pub version: u64,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// Signatures needed (k) of roster keys (n).
    pub threshold: u64,
    /// Roster keys (n).
    pub keys: usize,
    /// The members: id, name, kinds accepted, focal points.
    pub members: Vec<(AuthorityId, String, usize, usize)>,
}

/// Where a deadline stands, from what the logs record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineState {
    /// Met: the answer came before any clock fired.
    Met {
        /// When.
        at: Timestamp,
    },
    /// No reply in time: a readmission clock deemed the request accepted.
    DeemedAccepted {
        /// When the first clock fired.
        at: Timestamp,
        /// A reply sent after that, if any.
        late_reply: Option<Timestamp>,
    },
    /// Missed: the clock found the transfer overdue.
    Missed {
        /// When.
        at: Timestamp,
    },
    /// Still open when the logs were exported.
    Open,
    /// Not running (the transfer, before the request is answered).
    NotStarted,
}

impl DeadlineState {
    /// `met`, `deemed_accepted`, `missed`, `open` or `not_started`.
    pub fn code(&self) -> &'static str {
        match self {
            DeadlineState::Met { .. } => "met",
            DeadlineState::DeemedAccepted { .. } => "deemed_accepted",
            DeadlineState::Missed { .. } => "missed",
            DeadlineState::Open => "open",
            DeadlineState::NotStarted => "not_started",
        }
    }
}

/// One readmission case.
#[derive(Debug, Clone)]
pub struct CaseView {
    /// The case.
    pub case_id: CaseId,
    /// Who asked (the case id's namespace).
    pub requesting: AuthorityId,
    /// Who was asked, when the request is in the logs.
    pub requested: Option<AuthorityId>,
    /// Everything the logs record of it, in time order.
    pub events: Vec<CaseEvent>,
    /// The reply deadline.
    pub reply: DeadlineState,
    /// The transfer deadline.
    pub transfer: DeadlineState,
    /// For a case deemed accepted: the proof of silence, or why there is
    /// none.
    pub silence: Option<Result<Silence, NoProof>>,
}

/// One entry of a case's timeline.
#[derive(Debug, Clone)]
pub struct CaseEvent {
    /// The entry.
    pub entry: EntryRef,
    /// What it records, in words.
    pub text: String,
    /// The message it is about, if any.
    pub msg_id: Option<MessageId>,
    /// Its place among events about one message at the same time.
    rank: u8,
}

/// Messages between authorities: each message counted once per recipient,
/// whether the sender's log, the recipient's or both record it.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// Every authority that sent or received, in order.
    pub authorities: Vec<AuthorityId>,
    /// (from, to) → messages.
    pub matrix: BTreeMap<(AuthorityId, AuthorityId), usize>,
    /// Day (UTC) → messages sent that day.
    pub per_day: BTreeMap<Date, usize>,
}

impl Traffic {
    /// All messages counted.
    pub fn total(&self) -> usize {
        self.matrix.values().sum()
    }
}

/// A refusal, rejection or expiry.
#[derive(Debug, Clone)]
pub struct RefusalView {
    /// The entry.
    pub entry: EntryRef,
    /// The message, when known.
    pub msg_id: Option<MessageId>,
    /// What happened, in words.
    pub what: String,
    /// The reason code.
    pub reason: String,
}

/// A read of a message body, a refused one, or a message marked read.
#[derive(Debug, Clone)]
pub struct ReadView {
    /// The entry.
    pub entry: EntryRef,
    /// The message.
    pub msg_id: MessageId,
    /// The officer certificate's serial.
    pub officer: String,
    /// The name and role in the certificate, where the entry records them
    /// (`body_read`, `body_refused`).
    pub reader: Option<(String, String)>,
    /// What: `body read`, `body refused: REASON` or `marked read`.
    pub what: String,
}

/// Two authorities' logs reconciled.
#[derive(Debug, Clone)]
pub struct PairView {
    /// The first authority.
    pub a: AuthorityId,
    /// The second.
    pub b: AuthorityId,
    /// Messages from a to b.
    pub a_to_b: Direction,
    /// Messages from b to a.
    pub b_to_a: Direction,
    /// Whether the logs agree (pending deliveries allowed).
    pub reconciled: bool,
    /// Each finding, with the entries it is based on.
    pub findings: Vec<(Finding, Vec<EntryRef>)>,
}

/// Gathers the report of `bundles` (verified and cross-checked), listing
/// `failed` at the top.
pub fn build(
    bundles: &[VerifiedBundle],
    failed: Vec<Failed>,
    anchor: String,
    generated_at: Timestamp,
) -> Report {
    let views: Vec<LogView<'_>> = bundles.iter().map(LogView::from).collect();
    Report {
        generated_at,
        anchor,
        bundles: bundles.iter().map(bundle_view).collect(),
        failed,
        roster: bundles
            .iter()
            .max_by_key(|b| b.roster.version())
            .map(|b| roster_view(&b.roster)),
        cases: cases(&views),
        traffic: traffic(&views),
        refusals: refusals(&views),
        reads: reads(&views),
        pairs: pairs(&views),
    }
}

fn bundle_view(b: &VerifiedBundle) -> BundleView {
    BundleView {
        authority: b.log.authority.clone(),
        path: b.path.clone(),
        exported_at: b.exported_at,
        entries: b.report.entries,
        checkpoints: b.report.checkpoints,
        newest: b.report.newest,
        newest_cosigned: b
            .cosigned
            .iter()
            .rev()
            .find(|(_, by)| !by.is_empty())
            .cloned(),
        uncovered: b.report.uncovered,
        receipts: b.log.receipts.len(),
        envelopes: b.envelopes,
        anchored: match &b.anchored {
            Anchored::Unanchored => "none".to_owned(),
            Anchored::Holds { version, .. } => format!("holds the given roster (v{version})"),
            Anchored::FollowsFrom {
                given_version,
                version,
                ..
            } => format!("v{version} follows from the given v{given_version}"),
        },
    }
}

fn roster_view(r: &kurir_certs::Roster) -> RosterView {
    let body = r.body();
    RosterView {
        version: r.version(),
        fingerprint: r.fingerprint(),
        issued_at: body.issued_at,
        threshold: body.threshold,
        keys: body.roster_keys.len(),
        members: body
            .members
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    m.name.clone(),
                    m.kinds.len(),
                    m.focal_points.len(),
                )
            })
            .collect(),
    }
}

/// Each entry of every log with its decoded record (entries of verified
/// bundles decode; one that does not is skipped).
fn records<'a>(
    bundles: &'a [LogView<'a>],
) -> impl Iterator<Item = (&'a AuthorityId, &'a Entry, Record)> {
    bundles.iter().flat_map(|b| {
        b.log
            .entries
            .iter()
            .filter_map(move |e| e.record().ok().map(|r| (&b.log.authority, e, r)))
    })
}

/// A message of a case, from whichever log records it.
struct CaseMessage {
    from: AuthorityId,
    kind: MessageKind,
    at: Timestamp,
}

fn cases(bundles: &[LogView<'_>]) -> Vec<CaseView> {
    let mut ids: BTreeSet<CaseId> = BTreeSet::new();
    let mut case_of: BTreeMap<MessageId, CaseId> = BTreeMap::new();
    for (_, _, r) in records(bundles) {
        match r {
            Record::Submitted {
                msg_id,
                case_id: Some(c),
                ..
            }
            | Record::Received {
                msg_id,
                case_id: Some(c),
                ..
            } => {
                case_of.insert(msg_id, c.clone());
                ids.insert(c);
            }
            Record::Deadline { case_id, .. } => {
                ids.insert(case_id);
            }
            _ => {}
        }
    }
    ids.into_iter()
        .map(|id| case_view(bundles, &case_of, id))
        .collect()
}

fn case_view(
    bundles: &[LogView<'_>],
    case_of: &BTreeMap<MessageId, CaseId>,
    id: CaseId,
) -> CaseView {
    let in_case = |m: &MessageId| case_of.get(m) == Some(&id);
    let mut events = Vec::new();
    let mut messages: BTreeMap<MessageId, CaseMessage> = BTreeMap::new();
    let mut requested = None;
    let mut deemed: Option<Timestamp> = None;
    let mut overdue: Option<Timestamp> = None;
    for (who, e, r) in records(bundles) {
        let rank = match &r {
            Record::Submitted { .. } => 0,
            Record::Received { .. } => 1,
            Record::Delivered { .. } | Record::Rejected { .. } => 2,
            Record::Read { .. } | Record::BodyRead { .. } | Record::BodyRefused { .. } => 3,
            _ => 4,
        };
        let text = match r {
            Record::Submitted {
                msg_id,
                kind,
                to,
                case_id: Some(c),
                ..
            } if c == id => {
                if kind == MessageKind::ReadmissionRequest {
                    requested = to.first().cloned();
                }
                note(&mut messages, msg_id, who, kind, e.at);
                format!("{who} sent {kind} {msg_id} to {}", list(&to))
            }
            Record::Received {
                msg_id,
                peer,
                kind,
                case_id: Some(c),
                ..
            } if c == id => {
                if kind == MessageKind::ReadmissionRequest {
                    requested = Some(who.clone());
                }
                note(&mut messages, msg_id, &peer, kind, e.at);
                format!("{who} received {kind} {msg_id} from {peer}")
            }
            Record::Delivered { msg_id, peer, .. } if in_case(&msg_id) => {
                format!("{who} holds {peer}'s signed receipt for {msg_id}")
            }
            Record::Rejected {
                msg_id,
                peer,
                reason,
                ..
            } if in_case(&msg_id) => format!("{peer} rejected {msg_id} ({reason})"),
            Record::Read { msg_id, officer } if in_case(&msg_id) => {
                format!("{who}: officer certificate {officer} marked {msg_id} read")
            }
            Record::BodyRead {
                msg_id,
                officer,
                role,
                name,
            } if in_case(&msg_id) => {
                format!("{who}: {name} ({role}, certificate {officer}) read the body of {msg_id}")
            }
            Record::BodyRefused {
                msg_id,
                officer,
                role,
                name,
                reason,
            } if in_case(&msg_id) => format!(
                "{who}: {name} ({role}, certificate {officer}) was refused the body of {msg_id} \
                 ({reason})"
            ),
            Record::Deadline { case_id, what } if case_id == id => {
                let first = |t: &mut Option<Timestamp>| *t = Some(t.map_or(e.at, |t| t.min(e.at)));
                match what {
                    CaseDeadline::DeemedAccepted => first(&mut deemed),
                    CaseDeadline::TransferOverdue => first(&mut overdue),
                    _ => {}
                }
                format!("{who}'s readmission clock: {}", deadline_words(what))
            }
            _ => continue,
        };
        events.push(CaseEvent {
            entry: EntryRef::of(who, e),
            msg_id: e.msg_id,
            rank,
            text,
        });
    }
    // In time order; at the same time, message by message in the order
    // the logs first name them, and for each in the order things happen to
    // it (sent, received, receipt held, read).
    let mut first_named: Vec<MessageId> = Vec::new();
    for m in events.iter().filter_map(|e| e.msg_id) {
        if !first_named.contains(&m) {
            first_named.push(m);
        }
    }
    let seq = |e: &CaseEvent| {
        e.msg_id
            .and_then(|m| first_named.iter().position(|f| *f == m))
            .unwrap_or(usize::MAX)
    };
    events.sort_by(|a, b| {
        (
            a.entry.at,
            seq(a),
            a.rank,
            &a.entry.authority,
            a.entry.index,
        )
            .cmp(&(
                b.entry.at,
                seq(b),
                b.rank,
                &b.entry.authority,
                b.entry.index,
            ))
    });
    let requesting = id.authority();
    let first_from = |kind: MessageKind, from: Option<&AuthorityId>| {
        messages
            .values()
            .filter(|m| m.kind == kind && from.is_none_or(|f| &m.from == f))
            .map(|m| m.at)
            .min()
    };
    let reply = first_from(MessageKind::ReadmissionReply, requested.as_ref());
    let reply_state = match (reply, deemed) {
        (Some(r), d) if d.is_none_or(|d| r < d) => DeadlineState::Met { at: r },
        (r, Some(d)) => DeadlineState::DeemedAccepted {
            at: d,
            late_reply: r,
        },
        _ => DeadlineState::Open,
    };
    let handover = first_from(MessageKind::HandoverConfirmation, None);
    let transfer = match (handover, overdue) {
        _ if reply.is_none() && deemed.is_none() => DeadlineState::NotStarted,
        (Some(h), o) if o.is_none_or(|o| h < o) => DeadlineState::Met { at: h },
        (_, Some(o)) => DeadlineState::Missed { at: o },
        _ => DeadlineState::Open,
    };
    let silence = deemed.map(|_| prove_silence(&id, bundles));
    CaseView {
        case_id: id,
        requesting,
        requested,
        events,
        reply: reply_state,
        transfer,
        silence,
    }
}

/// Keeps the earliest time a message is seen.
fn note(
    messages: &mut BTreeMap<MessageId, CaseMessage>,
    id: MessageId,
    from: &AuthorityId,
    kind: MessageKind,
    at: Timestamp,
) {
    let m = messages.entry(id).or_insert(CaseMessage {
        from: from.clone(),
        kind,
        at,
    });
    m.at = m.at.min(at);
}

fn deadline_words(what: CaseDeadline) -> &'static str {
    match what {
        CaseDeadline::DueSoon => "the reply is due soon",
        CaseDeadline::DeemedAccepted => "no reply by the due date: deemed accepted",
        CaseDeadline::TransferOverdue => "the transfer is overdue",
        _ => "a deadline event",
    }
}

fn list(ids: &[AuthorityId]) -> String {
    ids.iter()
        .map(AuthorityId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn traffic(bundles: &[LogView<'_>]) -> Traffic {
    // (message, from, to) → when sent (or received, if only the receiver's
    // log is given).
    let mut seen: BTreeMap<(MessageId, AuthorityId, AuthorityId), Timestamp> = BTreeMap::new();
    let mut keep = |key, at: Timestamp| {
        let t = seen.entry(key).or_insert(at);
        *t = (*t).min(at);
    };
    for (who, e, r) in records(bundles) {
        match r {
            Record::Submitted { msg_id, to, .. } => {
                for t in to {
                    keep((msg_id, who.clone(), t), e.at);
                }
            }
            Record::Received { msg_id, peer, .. } => keep((msg_id, peer, who.clone()), e.at),
            _ => {}
        }
    }
    let mut traffic = Traffic::default();
    let mut authorities = BTreeSet::new();
    for ((_, from, to), at) in seen {
        authorities.insert(from.clone());
        authorities.insert(to.clone());
        *traffic.matrix.entry((from, to)).or_default() += 1;
        *traffic.per_day.entry(at.date()).or_default() += 1;
    }
    traffic.authorities = authorities.into_iter().collect();
    traffic
}

fn refusals(bundles: &[LogView<'_>]) -> Vec<RefusalView> {
    let mut out = Vec::new();
    for (who, e, r) in records(bundles) {
        let (msg_id, what, reason) = match r {
            Record::Refused {
                msg_id,
                peer,
                reason,
                ..
            } => (
                msg_id,
                format!("{who} refused a parcel from {peer}"),
                reason.as_str().to_owned(),
            ),
            Record::Rejected {
                msg_id,
                peer,
                reason,
                ..
            } => (
                Some(msg_id),
                format!("{peer} rejected a message of {who}"),
                reason.as_str().to_owned(),
            ),
            Record::Expired { msg_id, peer } => (
                Some(msg_id),
                format!("a message of {who} to {peer} expired undelivered"),
                "expired".to_owned(),
            ),
            Record::Failed {
                msg_id,
                peer,
                reason,
            } => (
                Some(msg_id),
                format!("a message of {who} to {peer} ended undelivered: {peer} left the roster"),
                reason.as_str().to_owned(),
            ),
            _ => continue,
        };
        out.push(RefusalView {
            entry: EntryRef::of(who, e),
            msg_id,
            what,
            reason,
        });
    }
    out.sort_by_key(|r| r.entry.at);
    out
}

fn reads(bundles: &[LogView<'_>]) -> Vec<ReadView> {
    let mut out: Vec<ReadView> = records(bundles)
        .filter_map(|(who, e, r)| match r {
            Record::BodyRead {
                msg_id,
                officer,
                role,
                name,
            } => Some(ReadView {
                entry: EntryRef::of(who, e),
                msg_id,
                officer,
                reader: Some((name, role.to_string())),
                what: "body read".to_owned(),
            }),
            Record::BodyRefused {
                msg_id,
                officer,
                role,
                name,
                reason,
            } => Some(ReadView {
                entry: EntryRef::of(who, e),
                msg_id,
                officer,
                reader: Some((name, role.to_string())),
                what: format!("body refused: {reason}"),
            }),
            Record::Read { msg_id, officer } => Some(ReadView {
                entry: EntryRef::of(who, e),
                msg_id,
                officer,
                reader: None,
                what: "marked read".to_owned(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by_key(|r| r.entry.at);
    out
}

fn pairs(bundles: &[LogView<'_>]) -> Vec<PairView> {
    let mut out = Vec::new();
    for (i, a) in bundles.iter().enumerate() {
        for b in &bundles[i + 1..] {
            let r = reconcile_logs(a.log, b.log);
            let findings = r
                .findings
                .iter()
                .map(|f| (f.clone(), finding_entries(f, a.log, b.log)))
                .collect();
            out.push(PairView {
                a: a.log.authority.clone(),
                b: b.log.authority.clone(),
                a_to_b: r.a_to_b.clone(),
                b_to_a: r.b_to_a.clone(),
                reconciled: r.reconciled(),
                findings,
            });
        }
    }
    out
}

/// The entries a finding names, and every entry of either log about its
/// message.
fn finding_entries(f: &Finding, a: &Log, b: &Log) -> Vec<EntryRef> {
    let log_of = |who: &AuthorityId| [a, b].into_iter().find(|l| &l.authority == who);
    let mut refs: Vec<EntryRef> = Vec::new();
    let mut add = |log: &Log, index: u64| {
        let Some(e) = usize::try_from(index).ok().and_then(|i| log.entries.get(i)) else {
            return;
        };
        if !refs
            .iter()
            .any(|r| r.authority == log.authority && r.index == index)
        {
            refs.push(EntryRef::of(&log.authority, e));
        }
    };
    for (side, index) in f.what.entries() {
        let who = match side {
            Side::Sender => &f.from,
            Side::Receiver => &f.to,
        };
        if let Some(log) = log_of(who) {
            add(log, index);
        }
    }
    if let Some(m) = f.msg_id {
        for log in [a, b] {
            for e in log.entries.iter().filter(|e| e.msg_id == Some(m)) {
                add(log, e.index);
            }
        }
    }
    refs
}

#[cfg(test)]
mod tests;
