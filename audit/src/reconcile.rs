//! `kurir audit reconcile`: cross-checking the logs of two authorities
//! ([`reconcile_logs`], pure). What one sent the other received, and every
//! receipt one holds the other issued; each disagreement is a [`Finding`].
//!
//! Each direction (sender `s` to receiver `r`) is checked in four steps,
//! one function each: every message `s` sent to `r`, every receipt `s`
//! holds from `r`, every acceptance `r` issued to `s`, and everything `r`
//! received from `s`.

mod finding;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use kurir_proto::audit::{Entry, Event, ReceiptKind, Record};
use kurir_proto::{Digest, MessageId, ReceiptStatus};

pub use finding::{Discrepancy, Finding, FindingKind, HeldProblem, Side};

use crate::verify::{KeptReceipt, Log};

/// Counts for one direction (sender to receiver).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Direction {
    /// Messages the sender's log records sending to the receiver.
    pub sent: usize,
    /// Of those, recorded as received (or refused) by the receiver, same digest.
    pub matched: usize,
    /// Receipts the sender holds from the receiver, checked against the receiver's log.
    pub held_receipts: usize,
    /// Receipts the receiver issued to the sender, checked against the sender's log.
    pub issued_receipts: usize,
}

/// What [`reconcile_logs`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// A to B.
    pub a_to_b: Direction,
    /// B to A.
    pub b_to_a: Direction,
    /// Every finding, A to B first.
    pub findings: Vec<Finding>,
}

impl Reconciliation {
    /// Findings of `kind`.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    /// True when nothing but pending deliveries was found.
    pub fn reconciled(&self) -> bool {
        !self.findings.iter().any(|f| f.kind.is_error())
    }
}

/// Cross-checks two logs in both directions.
pub fn reconcile_logs(a: &Log, b: &Log) -> Reconciliation {
    let mut findings = Vec::new();
    let a_to_b = OneWay::new(a, b).check(&mut findings);
    let b_to_a = OneWay::new(b, a).check(&mut findings);
    Reconciliation {
        a_to_b,
        b_to_a,
        findings,
    }
}

/// What the sender's log says about one message to the receiver.
#[derive(Debug, Default)]
struct Sent<'a> {
    submitted: Option<&'a Entry>,
    delivered: Vec<&'a Entry>,
    rejected: Vec<&'a Entry>,
    /// Its `expired` and `failed` entries: ended undelivered.
    expired: Vec<&'a Entry>,
}

/// One direction: what sender `s` sent to receiver `r`, and the receipts
/// between them, gathered from both logs.
struct OneWay<'a> {
    s: &'a Log,
    r: &'a Log,
    /// The sender's entries about each message to the receiver.
    sent: BTreeMap<MessageId, Sent<'a>>,
    /// The receipts the sender holds from the receiver, by digest.
    held: BTreeMap<Digest, &'a KeptReceipt>,
    /// The receipts the receiver issued to the sender, by digest.
    issued: BTreeMap<Digest, &'a KeptReceipt>,
}

impl<'a> OneWay<'a> {
    fn new(s: &'a Log, r: &'a Log) -> OneWay<'a> {
        let ra = &r.authority;
        let mut sent: BTreeMap<MessageId, Sent<'a>> = BTreeMap::new();
        // (Entries that are not those of their event, which a verified
        // log does not have, are no message's.)
        for e in &s.entries {
            match e.record() {
                Ok(Record::Submitted { msg_id, to, .. }) if to.contains(ra) => {
                    sent.entry(msg_id).or_default().submitted = Some(e);
                }
                Ok(Record::Delivered { msg_id, peer, .. }) if &peer == ra => {
                    sent.entry(msg_id).or_default().delivered.push(e);
                }
                Ok(Record::Rejected { msg_id, peer, .. }) if &peer == ra => {
                    sent.entry(msg_id).or_default().rejected.push(e);
                }
                Ok(Record::Expired { msg_id, peer } | Record::Failed { msg_id, peer, .. })
                    if &peer == ra =>
                {
                    sent.entry(msg_id).or_default().expired.push(e);
                }
                _ => {}
            }
        }
        let held = s
            .receipts
            .iter()
            .filter(|k| k.kind == ReceiptKind::Held && &k.receipt.receiver == ra)
            .map(|k| (k.digest, k))
            .collect();
        let issued = r
            .receipts
            .iter()
            .filter(|k| k.kind == ReceiptKind::Issued && k.receipt.sender == s.authority)
            .map(|k| (k.digest, k))
            .collect();
        OneWay {
            s,
            r,
            sent,
            held,
            issued,
        }
    }

    /// Every check of this direction, in order.
    fn check(&self, findings: &mut Vec<Finding>) -> Direction {
        let mut stats = Direction::default();
        self.sent(&mut stats, findings);
        self.held(&mut stats, findings);
        self.issued(&mut stats, findings);
        self.arrivals(findings);
        stats
    }

    /// A finding about a message from `s` to `r`.
    fn finding(
        &self,
        msg_id: Option<MessageId>,
        envelope_digest: Option<Digest>,
        receipt_digest: Option<Digest>,
        what: Discrepancy,
    ) -> Finding {
        Finding::new(
            &self.s.authority,
            &self.r.authority,
            msg_id,
            envelope_digest,
            receipt_digest,
            what,
        )
    }

    /// The receiver's entries of `event` from the sender.
    fn entries_from_sender(&self, event: Event) -> impl Iterator<Item = &'a Entry> + use<'a> {
        let (s, r): (&'a Log, &'a Log) = (self.s, self.r);
        r.entries
            .iter()
            .filter(move |e| e.event == event && e.peer.as_ref() == Some(&s.authority))
    }

    /// 1. Every message `s` sent to `r`: `r`'s log has its arrival or
    ///    refusal, with the same envelope digest; every receipt `s`'s log
    ///    records is held.
    fn sent(&self, stats: &mut Direction, findings: &mut Vec<Finding>) {
        stats.sent = self.sent.len();
        for (id, m) in &self.sent {
            let digest = m.submitted.and_then(|e| e.envelope_digest);
            if m.submitted.is_none() {
                let e = m
                    .delivered
                    .first()
                    .or(m.rejected.first())
                    .or(m.expired.first());
                findings.push(self.finding(
                    Some(*id),
                    None,
                    None,
                    Discrepancy::OutcomeWithoutSubmission {
                        entry: e.map_or(0, |e| e.index),
                    },
                ));
            }
            let records = self.records_of(*id, digest);
            if self.same_digest(*id, m, &records, findings) {
                stats.matched += 1;
            }
            if records.is_empty() {
                findings.push(self.unrecorded(*id, m, digest));
            }
            self.recorded_receipts_held(*id, m, digest, findings);
        }
    }

    /// The receiver's arrivals and refusals of message `id`. A refusal
    /// names the message only if its header could be read; otherwise the
    /// envelope digest is what links it.
    fn records_of(&self, id: MessageId, digest: Option<Digest>) -> Vec<&'a Entry> {
        self.entries_from_sender(Event::Received)
            .chain(self.entries_from_sender(Event::Refused))
            .filter(|e| {
                e.msg_id == Some(id)
                    || (e.msg_id.is_none() && digest.is_some() && e.envelope_digest == digest)
            })
            .collect()
    }

    /// Whether the receiver records message `id` (`records`) with the
    /// digest the sender sent; each record with another is a finding.
    fn same_digest(
        &self,
        id: MessageId,
        m: &Sent<'_>,
        records: &[&Entry],
        findings: &mut Vec<Finding>,
    ) -> bool {
        let digest = m.submitted.and_then(|e| e.envelope_digest);
        let mut agrees = !records.is_empty();
        for e in records {
            if let (Some(sent), Some(recorded)) = (digest, e.envelope_digest)
                && sent != recorded
            {
                agrees = false;
                findings.push(self.finding(
                    Some(id),
                    Some(sent),
                    None,
                    Discrepancy::DigestDiffers {
                        sent,
                        submitted: m.submitted.map_or(0, |e| e.index),
                        event: e.event,
                        recorded,
                        entry: e.index,
                    },
                ));
            }
        }
        agrees
    }

    /// Message `id` the receiver has no record of: missing if the sender
    /// records its outcome, pending otherwise.
    fn unrecorded(&self, id: MessageId, m: &Sent<'_>, digest: Option<Digest>) -> Finding {
        if let Some(e) = m.delivered.first().or(m.rejected.first()) {
            self.finding(
                Some(id),
                digest,
                e.receipt_digest,
                Discrepancy::NotRecorded {
                    event: e.event,
                    entry: e.index,
                },
            )
        } else if let Some(e) = m.expired.first() {
            let what = match e.event {
                Event::Failed => Discrepancy::FailedUndelivered { entry: e.index },
                _ => Discrepancy::ExpiredUndelivered { entry: e.index },
            };
            self.finding(Some(id), digest, None, what)
        } else {
            self.finding(Some(id), digest, None, Discrepancy::NotDeliveredYet)
        }
    }

    /// Every receipt the sender's log records for message `id` is in the
    /// sender's bundle.
    fn recorded_receipts_held(
        &self,
        id: MessageId,
        m: &Sent<'_>,
        digest: Option<Digest>,
        findings: &mut Vec<Finding>,
    ) {
        for e in m.delivered.iter().chain(&m.rejected) {
            let Some(d) = e.receipt_digest else { continue };
            if self.held.contains_key(&d) {
                continue;
            }
            findings.push(self.finding(
                Some(id),
                digest,
                Some(d),
                Discrepancy::ReceiptNotHeld {
                    receipt: d,
                    entry: e.index,
                    event: e.event,
                    issued: self.issued.contains_key(&d),
                },
            ));
        }
    }

    /// 2. Every receipt `s` holds from `r` is one `r` issued, naming an
    ///    entry `r`'s log has (and, with an inclusion proof, `r`'s log has
    ///    the root `r` signed at that size).
    fn held(&self, stats: &mut Direction, findings: &mut Vec<Finding>) {
        let r_leaves: Vec<Digest> = self.r.entries.iter().map(Entry::leaf_hash).collect();
        let mut roots: BTreeMap<u64, Digest> = BTreeMap::new();
        for (d, k) in &self.held {
            stats.held_receipts += 1;
            let rc = &k.receipt;
            let finding = |what| self.finding(rc.msg_id, Some(rc.envelope_digest), Some(*d), what);
            if !self.issued.contains_key(d) {
                findings.push(finding(Discrepancy::HeldNotIssued { receipt: *d }));
            }
            let problem = match &rc.status {
                ReceiptStatus::Accepted => self
                    .held_acceptance(k, &r_leaves, &mut roots)
                    .map(Discrepancy::HeldAcceptance),
                ReceiptStatus::Rejected { .. } => {
                    let logged = self
                        .r
                        .entries
                        .iter()
                        .any(|e| e.event == Event::Refused && e.receipt_digest == Some(*d));
                    (!logged).then_some(Discrepancy::RejectionNotLogged { receipt: *d })
                }
            };
            findings.extend(problem.map(finding));
        }
    }

    /// How an acceptance `k` the sender holds disagrees with the receiver's
    /// log (`r_leaves` its leaf hashes, `roots` a cache of its roots).
    fn held_acceptance(
        &self,
        k: &KeptReceipt,
        r_leaves: &[Digest],
        roots: &mut BTreeMap<u64, Digest>,
    ) -> Option<HeldProblem> {
        let rc = &k.receipt;
        let entries = &self.r.entries;
        let (Some(index), Some(leaf)) = (rc.log_index, rc.leaf_hash) else {
            return Some(HeldProblem::NamesNoEntry);
        };
        let problem = match usize::try_from(index).ok().and_then(|i| entries.get(i)) {
            None => Some(HeldProblem::EntryBeyondLog {
                index,
                entries: entries.len(),
            }),
            Some(e) if e.leaf_hash() != leaf => Some(HeldProblem::LeafDiffers {
                index,
                attested: leaf,
                actual: e.leaf_hash(),
            }),
            Some(e) if e.event != Event::Received || e.msg_id != rc.msg_id => {
                Some(HeldProblem::NotTheArrival { index })
            }
            Some(e) if e.envelope_digest != Some(rc.envelope_digest) => {
                Some(HeldProblem::EnvelopeDiffers {
                    index,
                    attested: rc.envelope_digest,
                    recorded: e.envelope_digest,
                })
            }
            Some(_) => None,
        };
        // The receiver's own signed checkpoint, via the inclusion proof the
        // sender holds: the receiver's exported log must have that root.
        let problem = problem.or_else(|| {
            let (size, root) = k.included_in?;
            let computed = root_at(roots, r_leaves, size)?;
            (computed != root).then_some(HeldProblem::Rewritten {
                size,
                root,
                computed,
            })
        });
        problem.or_else(|| {
            let (size, _) = k.included_in?;
            (size > entries.len() as u64).then_some(HeldProblem::EntriesRemoved {
                size,
                entries: entries.len(),
            })
        })
    }

    /// 3. Every acceptance `r` issued to `s` is recorded by `s` (or still on
    ///    its way back). Rejections are not: each refused attempt gets its
    ///    own, and the sender keeps only the last one it got.
    fn issued(&self, stats: &mut Direction, findings: &mut Vec<Finding>) {
        for (d, k) in &self.issued {
            let rc = &k.receipt;
            let (ReceiptStatus::Accepted, Some(id)) = (&rc.status, rc.msg_id) else {
                continue;
            };
            stats.issued_receipts += 1;
            let Some(m) = self.sent.get(&id) else {
                // An arrival s never sent: reported with the arrivals.
                continue;
            };
            if m.delivered.iter().any(|e| e.receipt_digest == Some(*d)) {
                continue;
            }
            let what = if let Some(e) = m.delivered.first() {
                Discrepancy::OtherReceiptRecorded {
                    issued: *d,
                    recorded: e.receipt_digest,
                    entry: e.index,
                }
            } else if let Some(e) = m.rejected.first().or(m.expired.first()) {
                Discrepancy::AcceptedButRecordedOtherwise {
                    receipt: *d,
                    event: e.event,
                    entry: e.index,
                }
            } else {
                Discrepancy::ReceiptNotBackYet { receipt: *d }
            };
            findings.push(self.finding(Some(id), Some(rc.envelope_digest), Some(*d), what));
        }
    }

    /// 4. Everything `r` received or refused from `s`, `s` sent.
    fn arrivals(&self, findings: &mut Vec<Finding>) {
        let sent_digests: BTreeSet<Digest> = self
            .sent
            .values()
            .filter_map(|m| m.submitted.and_then(|e| e.envelope_digest))
            .collect();
        for e in self
            .entries_from_sender(Event::Received)
            .chain(self.entries_from_sender(Event::Refused))
        {
            let known = match e.msg_id {
                // An outcome with no submission is reported with the sent.
                Some(id) => self.sent.contains_key(&id),
                None => e.envelope_digest.is_some_and(|d| sent_digests.contains(&d)),
            };
            if !known {
                findings.push(self.finding(
                    e.msg_id,
                    e.envelope_digest,
                    e.receipt_digest,
                    Discrepancy::NeverSent {
                        event: e.event,
                        entry: e.index,
                    },
                ));
            }
        }
    }
}

/// The root of the first `size` of `leaves`, cached; `None` if there are
/// fewer leaves.
fn root_at(cache: &mut BTreeMap<u64, Digest>, leaves: &[Digest], size: u64) -> Option<Digest> {
    if let Some(root) = cache.get(&size) {
        return Some(*root);
    }
    let root = kurir_proto::merkle::root(leaves.get(..usize::try_from(size).ok()?)?);
    cache.insert(size, root);
    Some(root)
}
