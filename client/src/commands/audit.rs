//! `kurir audit ...`: offline tools for auditors, on bundles exported with
//! `kurir-relay audit-export`.
//!
//! - `verify` checks one bundle ([`load_verified`] does the checking, and
//!   every other command starts with it);
//! - `reconcile` cross-checks the bundles of two authorities: what one sent
//!   the other received, and every receipt one holds the other issued
//!   ([`reconcile_logs`], pure);
//! - `show` prints a verified bundle's entries as a timeline, filtered by
//!   case and time ([`Filter`], pure).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use kurir_certs::Roster;
use kurir_proto::audit::{
    Bundle, Entry, Event, LogReport, cosigners_with, log_origin, receipt_digest, verify_log_with,
};
use kurir_proto::batch::SignatureCheck;
use kurir_proto::checkpoint::NoteVerifier;
use kurir_proto::receipt::open_receipt_with;
use kurir_proto::{
    AuthorityId, CaseId, Date, Digest, MessageId, Receipt, ReceiptStatus, Timestamp,
};
use serde_json::{Value, json};

use crate::cli::AuditCmd;
use crate::commands::Ctx;
use crate::exit::{Exit, fail, usage};
use crate::output::{self, short_time, table};

/// Runs `kurir audit ...` (offline: no profile, no relay).
pub fn run(ctx: &Ctx, command: AuditCmd) -> Result<()> {
    match command {
        AuditCmd::Verify { dir, min_cosigners } => verify(ctx, &dir, min_cosigners),
        AuditCmd::Export { .. } => Err(usage(
            "audit export needs the relay: it runs with a profile",
        )),
        AuditCmd::Reconcile { dir_a, dir_b } => reconcile(ctx, &dir_a, &dir_b),
        AuditCmd::Show {
            dir,
            case,
            from,
            to,
        } => show(ctx, &dir, case.as_deref(), from.as_deref(), to.as_deref()),
    }
}

/// `kurir audit export --out DIR`: the relay's bundle, written and verified.
pub async fn export(ctx: &Ctx, s: &crate::commands::Session, out: &Path) -> Result<()> {
    if out.exists()
        && out
            .read_dir()
            .map_err(|e| usage(format!("cannot read {}: {e}", out.display())))?
            .next()
            .is_some()
    {
        return Err(usage(format!(
            "{} is not empty: give a new or empty directory",
            out.display()
        )));
    }
    let kurir_proto::api::Response::AuditBundle { bundle } =
        s.call(&kurir_proto::api::Request::AuditExport).await?
    else {
        return Err(fail(Exit::Internal, "the relay answered without a bundle"));
    };
    let decoded = Bundle::decode(&bundle).map_err(|e| {
        fail(
            Exit::Rejected,
            format!("the relay sent a malformed bundle: {e}"),
        )
    })?;
    // Written as the relay's own export writes it (the layout is the bundle's).
    let files = decoded
        .files()
        .map_err(|e| fail(Exit::Internal, e.to_string()))?;
    for (name, bytes) in files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                fail(
                    Exit::Internal,
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        std::fs::write(&path, bytes).map_err(|e| {
            fail(
                Exit::Internal,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    output::note(format!(
        "wrote the audit bundle of {} to {}",
        decoded.authority,
        out.display()
    ));
    verify(ctx, out, 0)
}

// ---------------------------------------------------------------------------
// Loading and verifying a bundle.

/// Whether the exporting relay signed a receipt or holds it from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// Signed by the exporting relay, for a message it received (or refused).
    Issued,
    /// Signed by a peer, for a message the exporting relay sent.
    Held,
}

/// A receipt of a bundle, its signature verified against the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    /// Issued or held.
    pub kind: ReceiptKind,
    /// What it attests.
    pub receipt: Receipt,
    /// [`receipt_digest`] of its bytes, as log entries name it.
    pub digest: Digest,
    /// For a held acceptance with a verified inclusion proof: the size and
    /// root of the receiver's checkpoint it proves the entry in.
    pub included_in: Option<(u64, Digest)>,
}

/// One authority's log: what [`reconcile_logs`] and [`Filter`] work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Whose log it is.
    pub authority: AuthorityId,
    /// Every entry, in order (`entries[i].index == i`).
    pub entries: Vec<Entry>,
    /// The receipts kept with it.
    pub receipts: Vec<KeptReceipt>,
}

/// A bundle that passed every check of `kurir audit verify`.
#[derive(Debug)]
pub struct VerifiedBundle {
    /// The `bundle.cbor` it was read from.
    pub path: PathBuf,
    /// The roster in the bundle, its signatures verified.
    pub roster: Roster,
    /// What the log check established.
    pub report: LogReport,
    /// The decoded log and receipts.
    pub log: Log,
    /// Per checkpoint (oldest first): its size and the peers whose valid
    /// cosignature it carries, with the time each cosigned.
    pub cosigned: Vec<(u64, Vec<(AuthorityId, u64)>)>,
    /// Signed envelopes verified and matched to their entries.
    pub envelopes: usize,
}

/// Reads `dir/bundle.cbor` and checks it as `kurir audit verify` does: the
/// roster's signatures, every entry, every checkpoint, every receipt against
/// the log. The first problem is the error (exit 4; exit 2 if unreadable).
///
/// The signatures of checkpoints, cosignatures, receipts, inclusion proofs
/// and envelopes are verified in batches ([`kurir_proto::batch::batched`]):
/// `check_bundle` runs once with every signature taken as valid and
/// collected, and again, with the failing ones refused, only if a batch
/// fails, so the first problem reported is the one a check of each
/// signature in turn finds. The rosters' signatures (a few per roster) are
/// verified one at a time, before.
pub fn load_verified(dir: &Path) -> Result<VerifiedBundle> {
    let path = dir.join("bundle.cbor");
    let bytes =
        std::fs::read(&path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let bad = |what: String| {
        fail(
            Exit::Rejected,
            format!("{}: NOT VERIFIED: {what}", path.display()),
        )
    };
    let bundle = Bundle::decode(&bytes).map_err(|e| bad(format!("not an audit bundle: {e}")))?;
    let (roster, rosters) = verify_rosters(&bundle).map_err(bad)?;
    let checked =
        kurir_proto::batch::batched(|sigs| check_bundle(&bundle, &rosters, sigs)).map_err(bad)?;
    Ok(VerifiedBundle {
        cosigned: checked.cosigned,
        envelopes: checked.envelopes,
        path,
        roster,
        report: checked.report,
        log: Log {
            authority: bundle.authority,
            entries: checked.entries,
            receipts: checked.receipts,
        },
    })
}

/// What [`check_bundle`] established.
struct Checked {
    report: LogReport,
    entries: Vec<Entry>,
    receipts: Vec<KeptReceipt>,
    cosigned: Vec<(u64, Vec<(AuthorityId, u64)>)>,
    envelopes: usize,
}

/// Every check of `kurir audit verify` after the rosters', in order, with
/// the signatures checked by `sigs`; the first problem is the error. Pure:
/// [`kurir_proto::batch::batched`] may run it twice.
fn check_bundle(
    bundle: &Bundle,
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> std::result::Result<Checked, String> {
    let authority = &bundle.authority;
    let origin = log_origin(authority);
    let verifiers = log_keys(rosters, authority)
        .into_iter()
        .map(|key| NoteVerifier::ed25519(&origin, key))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("log key of {authority}: {e}"))?;
    if verifiers.is_empty() {
        return Err(format!("the roster lists no log key for {authority}"));
    }
    let entries_raw: Vec<Vec<u8>> = bundle.entries.iter().map(|b| b.0.clone()).collect();
    let checkpoints: Vec<Vec<u8>> = bundle.checkpoints.iter().map(|b| b.0.clone()).collect();
    let report =
        verify_log_with(&entries_raw, &checkpoints, &verifiers, sigs).map_err(|e| e.to_string())?;
    // verify_log decoded every entry already.
    let entries: Vec<Entry> = entries_raw
        .iter()
        .filter_map(|b| Entry::decode(b).ok())
        .collect();
    let mut receipts = Vec::with_capacity(bundle.receipts.len());
    for (i, r) in bundle.receipts.iter().enumerate() {
        let n = i + 1;
        let v = open_receipt_with(&r.receipt, &AnyRoster(rosters), sigs)
            .map_err(|e| format!("receipt {n} ({}): {e}", r.kind))?;
        let rc = v.receipt;
        let digest = receipt_digest(&r.receipt);
        let mut included_in = None;
        let logged = |event: Event| {
            entries
                .iter()
                .any(|e| e.event == event && e.receipt_digest == Some(digest))
        };
        let kind = match (r.kind.as_str(), &rc.status) {
            ("issued", ReceiptStatus::Accepted) => {
                if &rc.receiver != authority {
                    return Err(format!(
                        "receipt {n} was issued by {}, not {authority}",
                        rc.receiver
                    ));
                }
                let (Some(index), Some(leaf)) = (rc.log_index, rc.leaf_hash) else {
                    return Err(format!("receipt {n} names no log entry"));
                };
                let entry = entries.get(index as usize).ok_or_else(|| {
                    format!("receipt {n} names log entry {index}, which the log does not have")
                })?;
                if entry.leaf_hash() != leaf
                    || entry.event != Event::Received
                    || entry.msg_id != rc.msg_id
                {
                    return Err(format!(
                        "receipt {n} names log entry {index}, but that entry is not the arrival of message {}",
                        rc.msg_id.map(|m| m.to_string()).unwrap_or_default()
                    ));
                }
                ReceiptKind::Issued
            }
            ("issued", ReceiptStatus::Rejected { .. }) => {
                if !logged(Event::Refused) {
                    return Err(format!(
                        "rejection {n} issued by {authority} is not in its log"
                    ));
                }
                ReceiptKind::Issued
            }
            ("held", status) => {
                if &rc.sender != authority {
                    return Err(format!(
                        "held receipt {n} is for a message of {}, not {authority}",
                        rc.sender
                    ));
                }
                let event = match status {
                    ReceiptStatus::Accepted => Event::Delivered,
                    ReceiptStatus::Rejected { .. } => Event::Rejected,
                };
                if !logged(event) {
                    return Err(format!(
                        "receipt {n} from {} (message {}) is not recorded in the log",
                        rc.receiver,
                        rc.msg_id.map(|m| m.to_string()).unwrap_or_default()
                    ));
                }
                if let Some(proof) = &r.inclusion {
                    included_in = Some(
                        check_inclusion(&proof.0, &rc, rosters, sigs)
                            .map_err(|e| format!("receipt {n} from {}: {e}", rc.receiver))?,
                    );
                }
                ReceiptKind::Held
            }
            (other, _) => return Err(format!("receipt {n} has unknown kind {other:?}")),
        };
        if r.inclusion.is_some() && kind == ReceiptKind::Issued {
            return Err(format!(
                "receipt {n} is issued by {authority}, whose own log proves it: it carries an \
                 inclusion proof only held receipts have"
            ));
        }
        receipts.push(KeptReceipt {
            kind,
            receipt: rc,
            digest,
            included_in,
        });
    }
    let envelopes = check_envelopes(bundle, &entries, &AnyRoster(rosters), sigs)?;
    // Every log key each peer had over the period (cosignatures by a key
    // since rotated still verify).
    let mut peers: Vec<_> = Vec::new();
    for r in rosters {
        for m in r.members().iter().filter(|m| &m.id != authority) {
            if !peers.contains(&(m.id.clone(), m.log_key)) {
                peers.push((m.id.clone(), m.log_key));
            }
        }
    }
    let mut cosigned = Vec::with_capacity(checkpoints.len());
    for (i, note) in checkpoints.iter().enumerate() {
        let size = kurir_proto::checkpoint::SignedCheckpoint::parse(note)
            .map(|c| c.checkpoint().size())
            .unwrap_or_default();
        let by = cosigners_with(note, &peers, sigs).map_err(|(peer, e)| {
            format!(
                "checkpoint {} (size {size}): the cosignature in the name of {peer} does not \
                 verify with {peer}'s log key ({e}): it is forged",
                i + 1
            )
        })?;
        cosigned.push((size, by));
    }
    Ok(Checked {
        report,
        entries,
        receipts,
        cosigned,
        envelopes,
    })
}

/// Verifies the bundle's rosters and returns the current one. Each is
/// verified as of when the log records accepting it (so that certificates
/// since expired do not fail an old export), each later version against the
/// one before it (its quorum must have signed it), the newest must be the
/// bundle's `roster`, and every roster the log records accepting must be in
/// the bundle.
/// Returns the current roster, and every verified roster (newest first, the
/// current one included).
fn verify_rosters(bundle: &Bundle) -> std::result::Result<(Roster, Vec<Roster>), String> {
    // `roster` entries: "version N sha256 HEX", by HEX.
    let mut accepted: BTreeMap<String, (u64, Timestamp)> = BTreeMap::new();
    for e in bundle
        .entries
        .iter()
        .filter_map(|b| Entry::decode(&b.0).ok())
    {
        if e.event == Event::Roster
            && let Some(fp) = e.code.as_deref().and_then(|c| c.split(" sha256 ").nth(1))
        {
            accepted.entry(fp.to_owned()).or_insert((e.index, e.at));
        }
    }
    let fingerprint = |bytes: &[u8]| Digest::of(&[bytes]).to_string();
    let at = |bytes: &[u8]| {
        accepted
            .get(&fingerprint(bytes))
            .map_or(bundle.exported_at, |(_, t)| *t)
    };
    let mut held = BTreeSet::new();
    let mut history = Vec::new();
    let mut previous: Option<Roster> = None;
    for (i, b) in bundle.rosters.iter().enumerate() {
        let r = Roster::verify_against(&b.0, previous.as_ref(), at(&b.0)).map_err(|e| {
            format!(
                "roster {} of {} in the history does not follow from the one before: {e}",
                i + 1,
                bundle.rosters.len()
            )
        })?;
        held.insert(r.fingerprint());
        if let Some(p) = previous.replace(r) {
            history.push(p);
        }
    }
    let current = Roster::verify(&bundle.roster, at(&bundle.roster))
        .map_err(|e| format!("the roster in the bundle is not valid: {e}"))?;
    held.insert(current.fingerprint());
    if let Some(last) = &previous
        && last.fingerprint() != current.fingerprint()
    {
        return Err(format!(
            "the newest roster of the history (version {}) is not the bundle's roster (version {})",
            last.version(),
            current.version()
        ));
    }
    if let Some((fp, (index, _))) = accepted.iter().find(|(fp, _)| !held.contains(*fp)) {
        return Err(format!(
            "entry {index} records accepting the roster with sha256 {fp}, which the bundle does \
             not hold"
        ));
    }
    // `previous`, the newest of the history, is the current roster.
    history.reverse();
    let mut all = vec![current.clone()];
    all.extend(history);
    Ok((current, all))
}

/// Message keys from every roster of a bundle, newest roster first: a key
/// removed since still verifies what it signed while it was listed.
struct AnyRoster<'a>(&'a [Roster]);

impl kurir_proto::KeyLookup for AnyRoster<'_> {
    fn lookup(&self, kid: &kurir_proto::KeyId) -> Option<kurir_proto::PublicKey> {
        self.0.iter().find_map(|r| r.lookup(kid))
    }
}

/// The log keys `id` had over the rosters given (newest first, once each).
fn log_keys(rosters: &[Roster], id: &AuthorityId) -> Vec<kurir_proto::ed25519_dalek::VerifyingKey> {
    let mut keys = Vec::new();
    for key in rosters.iter().filter_map(|r| r.log_key(id)) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Checks a held receipt's inclusion proof: it proves the very entry the
/// receipt names, in a checkpoint signed by the receiver's log key. Returns
/// that checkpoint's size and root.
fn check_inclusion(
    proof: &[u8],
    receipt: &Receipt,
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> std::result::Result<(u64, Digest), String> {
    let proof = kurir_proto::audit::InclusionProof::decode(proof)
        .map_err(|e| format!("its inclusion proof does not decode: {e}"))?;
    let (Some(index), Some(leaf)) = (receipt.log_index, receipt.leaf_hash) else {
        return Err("it carries an inclusion proof but names no log entry".into());
    };
    if proof.index != index {
        return Err(format!(
            "its inclusion proof is for entry {}, but the receipt names entry {index}",
            proof.index
        ));
    }
    let receiver = &receipt.receiver;
    let mut held = Err(format!("the roster lists no log key for {receiver}"));
    for key in log_keys(rosters, receiver) {
        let log = NoteVerifier::ed25519(&log_origin(receiver), key).map_err(|e| e.to_string())?;
        held = proof
            .verify_with(&leaf, &log, sigs)
            .map_err(|e| format!("its inclusion proof does not hold: {e}"));
        if held.is_ok() {
            break;
        }
    }
    let size = held?;
    let root = kurir_proto::checkpoint::SignedCheckpoint::parse(&proof.checkpoint)
        .map(|c| *c.checkpoint().root())
        .map_err(|e| e.to_string())?;
    Ok((size, root))
}

/// Checks the bundle's envelopes: each is signed by a roster key of its
/// sender, and is the message of a `submitted` (sent by this authority) or
/// `received` entry with its digest; every such entry has its envelope.
/// Returns how many were checked.
fn check_envelopes(
    bundle: &Bundle,
    entries: &[Entry],
    keys: &dyn kurir_proto::KeyLookup,
    sigs: &dyn SignatureCheck,
) -> std::result::Result<usize, String> {
    let authority = &bundle.authority;
    let mut logged: BTreeMap<Digest, &Entry> = BTreeMap::new();
    for e in entries {
        if matches!(e.event, Event::Submitted | Event::Received)
            && let Some(d) = e.envelope_digest
        {
            logged.insert(d, e);
        }
    }
    let mut seen = BTreeSet::new();
    for (i, env) in bundle.envelopes.iter().enumerate() {
        let n = i + 1;
        let v = kurir_proto::envelope::verify_envelope_with(&env.0, keys, sigs)
            .map_err(|e| format!("envelope {n}: {e}"))?;
        let h = &v.header;
        let Some(entry) = logged.get(&v.envelope_digest) else {
            return Err(format!(
                "envelope {n} (message {} from {}) is in no submitted or received entry of the log",
                h.id, h.from
            ));
        };
        let fits = entry.msg_id == Some(h.id)
            && match entry.event {
                Event::Submitted => &h.from == authority,
                _ => &h.from != authority && entry.peer.as_ref() == Some(&h.from),
            };
        if !fits {
            return Err(format!(
                "envelope {n} (message {} from {}) does not match entry {} ({} of message {})",
                h.id,
                h.from,
                entry.index,
                entry.event,
                id_text(entry.msg_id)
            ));
        }
        seen.insert(v.envelope_digest);
    }
    if let Some((_, e)) = logged.iter().find(|(d, _)| !seen.contains(*d)) {
        return Err(format!(
            "entry {} ({} of message {}) names an envelope the bundle does not hold",
            e.index,
            e.event,
            id_text(e.msg_id)
        ));
    }
    Ok(seen.len())
}

// ---------------------------------------------------------------------------
// verify

/// `kurir audit verify DIR`: the first problem found is the error.
pub fn verify(ctx: &Ctx, dir: &Path, min_cosigners: usize) -> Result<()> {
    let v = load_verified(dir)?;
    let newest_count = v.cosigned.last().map_or(0, |(_, by)| by.len());
    if newest_count < min_cosigners {
        return Err(fail(
            Exit::Rejected,
            format!(
                "{}: NOT VERIFIED: the newest checkpoint carries {newest_count} peer \
                 cosignature(s), {min_cosigners} required",
                v.path.display()
            ),
        ));
    }
    let (report, roster, authority) = (&v.report, &v.roster, &v.log.authority);
    let receipts = v.log.receipts.len();
    let held_acceptances = v
        .log
        .receipts
        .iter()
        .filter(|r| r.kind == ReceiptKind::Held && r.receipt.status == ReceiptStatus::Accepted)
        .count();
    let proven = v
        .log
        .receipts
        .iter()
        .filter(|r| r.included_in.is_some())
        .count();
    let newest_cosigners: Vec<String> = v
        .cosigned
        .last()
        .map(|(_, c)| c.iter().map(|(a, _)| a.to_string()).collect())
        .unwrap_or_default();
    let cosigned_checkpoints = v.cosigned.iter().filter(|(_, c)| !c.is_empty()).count();
    let newest = report.newest.map(|(size, root)| {
        json!({"size": size, "root": root.to_string(), "cosigned_by": newest_cosigners})
    });
    let data = json!({
        "authority": authority.as_str(),
        "roster_version": roster.version(),
        "roster_sha256": roster.fingerprint(),
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "newest_checkpoint": newest,
        "entries_after_newest_checkpoint": report.uncovered,
        "receipts": receipts,
        "held_acceptances": held_acceptances,
        "held_acceptances_proven_included": proven,
        "envelopes": v.envelopes,
        "cosigned_checkpoints": cosigned_checkpoints,
        "verified": true,
    });
    if ctx.out.json {
        ctx.out.line("audit_verified", data);
    } else {
        ctx.out.text(format!(
            "audit log of {authority}: VERIFIED\n  roster      version {} (sha256 {}; compare it with the federation's published fingerprint)\n  entries     {} (every one decoded, in order)\n  checkpoints {} (signed by {authority}'s log key; roots recomputed){}\n  receipts    {} (signatures verified against the roster and matched to log entries)\n              {proven} of {held_acceptances} held acceptances proven included in the receiver's signed log{}\n  envelopes   {} (signed by their senders' roster keys; each matches its submitted or received entry)",
            roster.version(),
            roster.fingerprint(),
            report.entries,
            report.checkpoints,
            match report.newest {
                Some((size, _)) if report.uncovered > 0 => format!(
                    "\n              newest covers {size}; {} later entries are not yet covered by a signature",
                    report.uncovered
                ),
                Some((size, _)) => format!("\n              newest covers all {size}"),
                None => "\n              none: nothing is covered by a signature yet".into(),
            },
            receipts,
            if proven < held_acceptances {
                " (the others: not yet covered by a receiver checkpoint when exported)"
            } else {
                ""
            },
            v.envelopes
        ));
        ctx.out.text(format!(
            "  cosigned    {cosigned_checkpoints} of {} checkpoints carry peers' cosignatures (verified with their log keys); the newest: {}",
            report.checkpoints,
            if newest_cosigners.is_empty() {
                "none (a peer that never cosigned cannot contradict a rewritten history)".to_owned()
            } else {
                newest_cosigners.join(", ")
            }
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// reconcile: the matching (pure).

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

/// One thing the two logs disagree on (or a pending delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind.
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
    /// What exactly, naming entries by index.
    pub detail: String,
}

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

/// The recipients named in a `submitted` entry's code, `KIND to A,B`.
pub fn recipients(code: &str) -> Vec<&str> {
    code.split_once(" to ")
        .map(|(_, to)| to.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// Cross-checks two logs in both directions.
pub fn reconcile_logs(a: &Log, b: &Log) -> Reconciliation {
    let mut findings = Vec::new();
    let a_to_b = one_way(a, b, &mut findings);
    let b_to_a = one_way(b, a, &mut findings);
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
    expired: Vec<&'a Entry>,
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

fn id_text(m: Option<MessageId>) -> String {
    m.map_or_else(|| "(unknown)".to_owned(), |m| m.to_string())
}

/// Checks what `s` sent to `r`, and the receipts between them.
fn one_way(s: &Log, r: &Log, findings: &mut Vec<Finding>) -> Direction {
    let (sa, ra) = (&s.authority, &r.authority);
    let finding = |kind, msg_id, envelope_digest, receipt_digest, detail: String| Finding {
        kind,
        from: sa.clone(),
        to: ra.clone(),
        msg_id,
        envelope_digest,
        receipt_digest,
        detail,
    };
    let mut stats = Direction::default();

    // The sender's side: messages to r, and the receipts it holds from r.
    let mut sent: BTreeMap<MessageId, Sent<'_>> = BTreeMap::new();
    for e in &s.entries {
        let Some(id) = e.msg_id else { continue };
        match e.event {
            Event::Submitted
                if e.code
                    .as_deref()
                    .is_some_and(|c| recipients(c).contains(&ra.as_str())) =>
            {
                sent.entry(id).or_default().submitted = Some(e);
            }
            Event::Delivered if e.peer.as_ref() == Some(ra) => {
                sent.entry(id).or_default().delivered.push(e);
            }
            Event::Rejected if e.peer.as_ref() == Some(ra) => {
                sent.entry(id).or_default().rejected.push(e);
            }
            Event::Expired if e.peer.as_ref() == Some(ra) => {
                sent.entry(id).or_default().expired.push(e);
            }
            _ => {}
        }
    }
    let held: BTreeMap<Digest, &KeptReceipt> = s
        .receipts
        .iter()
        .filter(|k| k.kind == ReceiptKind::Held && &k.receipt.receiver == ra)
        .map(|k| (k.digest, k))
        .collect();
    let sent_digests: BTreeSet<Digest> = sent
        .values()
        .filter_map(|m| m.submitted.and_then(|e| e.envelope_digest))
        .collect();

    // The receiver's side: arrivals and refusals from s, receipts issued to s.
    let from_s = |event: Event| {
        r.entries
            .iter()
            .filter(move |e| e.event == event && e.peer.as_ref() == Some(sa))
    };
    let issued: BTreeMap<Digest, &KeptReceipt> = r
        .receipts
        .iter()
        .filter(|k| k.kind == ReceiptKind::Issued && &k.receipt.sender == sa)
        .map(|k| (k.digest, k))
        .collect();

    // 1. Every message s sent to r: r's log has its arrival or refusal, with
    //    the same envelope digest; every receipt s's log records is held.
    stats.sent = sent.len();
    for (id, m) in &sent {
        let digest = m.submitted.and_then(|e| e.envelope_digest);
        if m.submitted.is_none() {
            let e = m
                .delivered
                .first()
                .or(m.rejected.first())
                .or(m.expired.first());
            findings.push(finding(
                FindingKind::Contradictory,
                Some(*id),
                None,
                None,
                format!(
                    "{sa}'s log records the outcome of message {id} to {ra} (entry {}) but no \
                     submission of it to {ra}",
                    e.map_or(0, |e| e.index)
                ),
            ));
        }
        // A refusal names the message only if its header could be read;
        // otherwise the envelope digest is what links it.
        let records: Vec<&Entry> = from_s(Event::Received)
            .chain(from_s(Event::Refused))
            .filter(|e| {
                e.msg_id == Some(*id)
                    || (e.msg_id.is_none() && digest.is_some() && e.envelope_digest == digest)
            })
            .collect();
        let mut agrees = !records.is_empty();
        for e in &records {
            if let (Some(sent_d), Some(got_d)) = (digest, e.envelope_digest)
                && sent_d != got_d
            {
                agrees = false;
                findings.push(finding(
                    FindingKind::Contradictory,
                    Some(*id),
                    Some(sent_d),
                    None,
                    format!(
                        "{sa} sent message {id} with envelope digest {sent_d} (entry {}), but \
                         {ra}'s log records it {} with digest {got_d} (entry {})",
                        m.submitted.map_or(0, |e| e.index),
                        if e.event == Event::Received {
                            "received"
                        } else {
                            "refused"
                        },
                        e.index
                    ),
                ));
            }
        }
        if agrees {
            stats.matched += 1;
        }
        if records.is_empty() {
            if let Some(e) = m.delivered.first().or(m.rejected.first()) {
                let (what, how) = if e.event == Event::Delivered {
                    ("accepted", "arrival")
                } else {
                    ("refused", "refusal")
                };
                findings.push(finding(
                    FindingKind::Missing,
                    Some(*id),
                    digest,
                    e.receipt_digest,
                    format!(
                        "{sa}'s log says {ra} {what} message {id} (entry {}), but {ra}'s log \
                         has no {how} of it",
                        e.index
                    ),
                ));
            } else if let Some(e) = m.expired.first() {
                findings.push(finding(
                    FindingKind::Pending,
                    Some(*id),
                    digest,
                    None,
                    format!(
                        "message {id} expired undelivered to {ra} (entry {} of {sa}'s log); \
                         {ra}'s log has no record of it",
                        e.index
                    ),
                ));
            } else {
                findings.push(finding(
                    FindingKind::Pending,
                    Some(*id),
                    digest,
                    None,
                    format!(
                        "message {id} is not delivered yet: {sa} holds no receipt and {ra}'s \
                         log has no record of it ({ra} may have been unreachable)"
                    ),
                ));
            }
        }
        for e in m.delivered.iter().chain(&m.rejected) {
            let Some(d) = e.receipt_digest else { continue };
            if held.contains_key(&d) {
                continue;
            }
            let elsewhere = if issued.contains_key(&d) {
                format!("{ra}'s bundle lists it as issued")
            } else {
                format!("{ra}'s bundle does not have it either")
            };
            findings.push(finding(
                FindingKind::Missing,
                Some(*id),
                digest,
                Some(d),
                format!(
                    "{sa}'s log records receipt {d} from {ra} for message {id} (entry {}, {}), \
                     but {sa}'s bundle does not hold it; {elsewhere}",
                    e.index, e.event
                ),
            ));
        }
    }

    // 2. Every receipt s holds from r is one r issued, naming an entry r's
    //    log has (and, with an inclusion proof, r's log has the root r
    //    signed at that size).
    let r_leaves: Vec<Digest> = r.entries.iter().map(Entry::leaf_hash).collect();
    let mut roots: BTreeMap<u64, Digest> = BTreeMap::new();
    for (d, k) in &held {
        stats.held_receipts += 1;
        let rc = &k.receipt;
        let id = rc.msg_id;
        let idt = id_text(id);
        if !issued.contains_key(d) {
            findings.push(finding(
                FindingKind::Missing,
                id,
                Some(rc.envelope_digest),
                Some(*d),
                format!(
                    "{sa} holds a receipt signed by {ra} for message {idt} ({d}), but {ra}'s \
                     bundle does not list it as issued"
                ),
            ));
        }
        match &rc.status {
            ReceiptStatus::Accepted => {
                let (Some(index), Some(leaf)) = (rc.log_index, rc.leaf_hash) else {
                    findings.push(finding(
                        FindingKind::Contradictory,
                        id,
                        Some(rc.envelope_digest),
                        Some(*d),
                        format!(
                            "the receipt {sa} holds from {ra} for message {idt} names no \
                             entry of {ra}'s log"
                        ),
                    ));
                    continue;
                };
                let problem = match usize::try_from(index).ok().and_then(|i| r.entries.get(i)) {
                    None => Some(format!(
                        "names entry {index} of {ra}'s log, which has only {} entries",
                        r.entries.len()
                    )),
                    Some(e) if e.leaf_hash() != leaf => Some(format!(
                        "names entry {index} of {ra}'s log with leaf hash {leaf}, but that \
                         entry's leaf hash is {}",
                        e.leaf_hash()
                    )),
                    Some(e) if e.event != Event::Received || e.msg_id != id => Some(format!(
                        "names entry {index} of {ra}'s log, which is not the arrival of \
                         message {idt}"
                    )),
                    Some(e) if e.envelope_digest != Some(rc.envelope_digest) => Some(format!(
                        "attests envelope digest {}, but entry {index} of {ra}'s log records {}",
                        rc.envelope_digest,
                        e.envelope_digest.map(|d| d.to_string()).unwrap_or_default()
                    )),
                    Some(_) => None,
                };
                // The receiver's own signed checkpoint, via the inclusion
                // proof s holds: r's exported log must have that root.
                let problem = problem.or_else(|| {
                    let (size, root) = k.included_in?;
                    let computed = root_at(&mut roots, &r_leaves, size)?;
                    (computed != root).then(|| {
                        format!(
                            "comes with {ra}'s signed checkpoint of size {size} (root {root}), \
                             but {ra}'s exported log gives root {computed} at that size: {ra}'s \
                             log was rewritten"
                        )
                    })
                });
                let problem = problem.or_else(|| {
                    let (size, _) = k.included_in?;
                    (size > r.entries.len() as u64).then(|| {
                        format!(
                            "comes with {ra}'s signed checkpoint of size {size}, but {ra}'s \
                             exported log has only {} entries: entries were removed",
                            r.entries.len()
                        )
                    })
                });
                if let Some(p) = problem {
                    findings.push(finding(
                        FindingKind::Contradictory,
                        id,
                        Some(rc.envelope_digest),
                        Some(*d),
                        format!("the receipt {sa} holds from {ra} for message {idt} {p}"),
                    ));
                }
            }
            ReceiptStatus::Rejected { .. } => {
                let logged = r
                    .entries
                    .iter()
                    .any(|e| e.event == Event::Refused && e.receipt_digest == Some(*d));
                if !logged {
                    findings.push(finding(
                        FindingKind::Contradictory,
                        id,
                        Some(rc.envelope_digest),
                        Some(*d),
                        format!(
                            "{sa} holds a rejection signed by {ra} for message {idt} ({d}), \
                             but {ra}'s log has no refusal with it"
                        ),
                    ));
                }
            }
        }
    }

    // 3. Every acceptance r issued to s is recorded by s (or still on its way
    //    back). Rejections are not: each refused attempt gets its own, and
    //    the sender keeps only the last one it got.
    for (d, k) in &issued {
        let rc = &k.receipt;
        let (ReceiptStatus::Accepted, Some(id)) = (&rc.status, rc.msg_id) else {
            continue;
        };
        stats.issued_receipts += 1;
        let Some(m) = sent.get(&id) else {
            // An arrival s never sent: reported with the arrivals below.
            continue;
        };
        if m.delivered.iter().any(|e| e.receipt_digest == Some(*d)) {
            continue;
        }
        let (kind, detail) = if let Some(e) = m.delivered.first() {
            (
                FindingKind::Contradictory,
                format!(
                    "{ra} issued receipt {d} for message {id}, but {sa}'s log records receipt \
                     {} for it (entry {})",
                    e.receipt_digest.map(|d| d.to_string()).unwrap_or_default(),
                    e.index
                ),
            )
        } else if let Some(e) = m.rejected.first().or(m.expired.first()) {
            (
                FindingKind::Contradictory,
                format!(
                    "{ra} accepted message {id} (receipt {d}), but {sa}'s log records it {} \
                     (entry {})",
                    e.event, e.index
                ),
            )
        } else {
            (
                FindingKind::Pending,
                format!(
                    "{ra} accepted message {id} (receipt {d}), but {sa} has not recorded the \
                     receipt yet (it comes back on {sa}'s next attempt)"
                ),
            )
        };
        findings.push(finding(
            kind,
            Some(id),
            Some(rc.envelope_digest),
            Some(*d),
            detail,
        ));
    }

    // 4. Everything r received or refused from s, s sent.
    for e in from_s(Event::Received).chain(from_s(Event::Refused)) {
        let known = match e.msg_id {
            // An outcome with no submission is reported above.
            Some(id) => sent.contains_key(&id),
            None => e.envelope_digest.is_some_and(|d| sent_digests.contains(&d)),
        };
        if !known {
            findings.push(finding(
                FindingKind::Extra,
                e.msg_id,
                e.envelope_digest,
                e.receipt_digest,
                format!(
                    "{ra}'s log records {} message {} from {sa} (entry {}), but {sa}'s log has \
                     no such message to {ra}",
                    if e.event == Event::Received {
                        "the arrival of"
                    } else {
                        "refusing"
                    },
                    id_text(e.msg_id),
                    e.index
                ),
            ));
        }
    }
    stats
}

// ---------------------------------------------------------------------------
// reconcile: the command.

/// JSON of a finding.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "kind": f.kind.as_str(),
        "from": f.from.as_str(),
        "to": f.to.as_str(),
        "msg_id": f.msg_id.map(|m| m.to_string()),
        "envelope_digest": f.envelope_digest.map(|d| d.to_string()),
        "receipt_digest": f.receipt_digest.map(|d| d.to_string()),
        "detail": f.detail,
    })
}

fn direction_json(from: &AuthorityId, to: &AuthorityId, d: &Direction) -> Value {
    json!({
        "from": from.as_str(),
        "to": to.as_str(),
        "sent": d.sent,
        "matched": d.matched,
        "held_receipts": d.held_receipts,
        "issued_receipts": d.issued_receipts,
    })
}

fn bundle_json(v: &VerifiedBundle) -> Value {
    json!({
        "authority": v.log.authority.as_str(),
        "entries": v.report.entries,
        "receipts": v.log.receipts.len(),
        "roster_version": v.roster.version(),
        "roster_sha256": v.roster.fingerprint(),
    })
}

fn receipts(n: usize) -> String {
    format!("{n} receipt{}", if n == 1 { "" } else { "s" })
}

/// `kurir audit reconcile DIR_A DIR_B`: exit 0 only if everything matches.
pub fn reconcile(ctx: &Ctx, dir_a: &Path, dir_b: &Path) -> Result<()> {
    let a = load_verified(dir_a)?;
    let b = load_verified(dir_b)?;
    let (an, bn) = (&a.log.authority, &b.log.authority);
    if an == bn {
        return Err(usage(format!(
            "both bundles are audit logs of {an}: give the bundles of two authorities"
        )));
    }
    let r = reconcile_logs(&a.log, &b.log);
    let counts = |k| r.count(k);
    let (missing, extra, contradictory, pending) = (
        counts(FindingKind::Missing),
        counts(FindingKind::Extra),
        counts(FindingKind::Contradictory),
        counts(FindingKind::Pending),
    );
    if ctx.out.json {
        for f in &r.findings {
            ctx.out.line("finding", finding_json(f));
        }
        ctx.out.line(
            "reconcile_summary",
            json!({
                "a": bundle_json(&a),
                "b": bundle_json(&b),
                "directions": [
                    direction_json(an, bn, &r.a_to_b),
                    direction_json(bn, an, &r.b_to_a),
                ],
                "missing": missing,
                "extra": extra,
                "contradictory": contradictory,
                "pending": pending,
                "reconciled": r.reconciled(),
            }),
        );
    } else {
        let mut text = format!(
            "audit logs of {an} and {bn}: {}\n",
            if r.reconciled() {
                "RECONCILED".to_owned()
            } else {
                format!(
                    "DO NOT RECONCILE ({missing} missing, {extra} extra, {contradictory} contradictory)"
                )
            }
        );
        for v in [&a, &b] {
            text.push_str(&format!(
                "  {}  verified: {} entries, {}, roster version {} (sha256 {})\n",
                v.log.authority,
                v.report.entries,
                receipts(v.log.receipts.len()),
                v.roster.version(),
                v.roster.fingerprint()
            ));
        }
        for (from, to, d) in [(an, bn, &r.a_to_b), (bn, an, &r.b_to_a)] {
            text.push_str(&format!(
                "  {from} -> {to}  {} sent, {} matched; {} held by {from} and {} issued by {to} checked\n",
                d.sent,
                d.matched,
                receipts(d.held_receipts),
                receipts(d.issued_receipts)
            ));
        }
        if pending > 0 {
            text.push_str(&format!(
                "  {pending} pending (not errors: not delivered yet, or the receipt not yet back)\n"
            ));
        }
        if !r.findings.is_empty() {
            let rows: Vec<Vec<String>> = r
                .findings
                .iter()
                .map(|f| {
                    vec![
                        f.kind.as_str().to_uppercase(),
                        format!("{} -> {}", f.from, f.to),
                        f.detail.clone(),
                    ]
                })
                .collect();
            text.push('\n');
            text.push_str(&table(&["FINDING", "DIRECTION", "WHAT"], &rows));
        }
        ctx.out.text(text.trim_end());
    }
    if r.reconciled() {
        Ok(())
    } else {
        Err(fail(
            Exit::Rejected,
            format!(
                "the audit logs of {an} and {bn} do not reconcile: {missing} missing, {extra} \
                 extra, {contradictory} contradictory (listed on stdout)"
            ),
        ))
    }
}

// ---------------------------------------------------------------------------
// show

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
            .filter(|e| self.from.is_none_or(|t| e.at >= t))
            .filter(|e| self.to.is_none_or(|t| e.at <= t))
            .collect()
    }
}

const DAY_MS: u64 = 86_400_000;

/// Parses a `--from`/`--to` bound: RFC 3339 UTC (`2026-11-28T13:54:10Z`,
/// fractions of a second allowed) or a date `YYYY-MM-DD`, which means the
/// start of that day, or its end when `end_of_day`.
pub fn time_bound(s: &str, flag: &str, end_of_day: bool) -> Result<Timestamp> {
    let s = s.trim();
    let bad = || {
        usage(format!(
            "{flag} {s:?}: expected a UTC time like 2026-11-28T13:54:10Z or a date like \
             2026-11-28"
        ))
    };
    let day_start = |d: &str| -> Result<u64> {
        let day = Date::parse(d).map_err(|_| bad())?;
        u64::try_from(day.days_since_epoch())
            .map(|days| days * DAY_MS)
            .map_err(|_| bad())
    };
    let Some((d, t)) = s.split_once(['T', 't']) else {
        let start = day_start(s)?;
        return Ok(Timestamp(if end_of_day {
            start + DAY_MS - 1
        } else {
            start
        }));
    };
    let start = day_start(d)?;
    let t = t
        .strip_suffix('Z')
        .or_else(|| t.strip_suffix('z'))
        .ok_or_else(bad)?;
    let (hms, frac) = match t.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (t, None),
    };
    let nums: Vec<u64> = hms
        .split(':')
        .map(|p| {
            if p.len() == 2 {
                p.parse::<u64>().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [h, m, sec] = nums.as_slice() else {
        return Err(bad());
    };
    if *h > 23 || *m > 59 || *sec > 59 {
        return Err(bad());
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Milliseconds: the first three digits, padded.
            let three: String = f.chars().chain("00".chars()).take(3).collect();
            three.parse::<u64>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    Ok(Timestamp(
        start + h * 3_600_000 + m * 60_000 + sec * 1000 + ms,
    ))
}

/// JSON of an entry.
pub fn entry_json(e: &Entry, covered: bool) -> Value {
    json!({
        "index": e.index,
        "at": output::time(e.at),
        "event": e.event.as_str(),
        "msg_id": e.msg_id.map(|m| m.to_string()),
        "envelope_digest": e.envelope_digest.map(|d| d.to_string()),
        "peer": e.peer.as_ref().map(|p| p.as_str()),
        "case_id": e.case_id.as_ref().map(|c| c.as_str()),
        "receipt_digest": e.receipt_digest.map(|d| d.to_string()),
        "officer": e.officer,
        "code": e.code,
        "covered": covered,
    })
}

/// `kurir audit show DIR [--case C] [--from T] [--to T]`.
pub fn show(
    ctx: &Ctx,
    dir: &Path,
    case: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<()> {
    // The command's own input first (exit 2), then the bundle.
    let filter = Filter {
        case: case.map(crate::commands::case_id).transpose()?,
        from: from.map(|s| time_bound(s, "--from", false)).transpose()?,
        to: to.map(|s| time_bound(s, "--to", true)).transpose()?,
    };
    if let (Some(f), Some(t)) = (filter.from, filter.to)
        && f > t
    {
        return Err(usage(format!(
            "--from {} is after --to {}: nothing could match",
            output::time(f),
            output::time(t)
        )));
    }
    let v = load_verified(dir)?;
    let covered_up_to = v.report.newest.map_or(0, |(size, _)| size);
    let shown = filter.select(&v.log.entries);
    if ctx.out.json {
        for e in &shown {
            ctx.out
                .line("entry", entry_json(e, e.index < covered_up_to));
        }
        return Ok(());
    }
    let authority = &v.log.authority;
    let mut text = format!(
        "audit log of {authority} (verified): {} of {} entries",
        shown.len(),
        v.log.entries.len()
    );
    let mut what = vec![];
    if let Some(c) = &filter.case {
        what.push(format!("case {c}"));
    }
    if let Some(t) = filter.from {
        what.push(format!("from {}", short_time(t)));
    }
    if let Some(t) = filter.to {
        what.push(format!("to {}", short_time(t)));
    }
    if !what.is_empty() {
        text.push_str(&format!(" ({})", what.join(", ")));
    }
    if v.report.uncovered > 0 {
        text.push_str(&format!(
            "\n  entries from #{covered_up_to} on are not yet covered by a signed checkpoint (marked *)"
        ));
    }
    if shown.is_empty() {
        text.push_str("\nno entries match");
    } else {
        let dash = || "-".to_owned();
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|e| {
                vec![
                    short_time(e.at),
                    format!(
                        "{}{}",
                        e.index,
                        if e.index < covered_up_to { "" } else { "*" }
                    ),
                    e.event.as_str().to_owned(),
                    e.msg_id.map_or_else(dash, |m| m.to_string()),
                    e.peer.as_ref().map_or_else(dash, |p| p.to_string()),
                    e.case_id.as_ref().map_or_else(dash, |c| c.to_string()),
                    e.officer.clone().unwrap_or_else(dash),
                    e.code.clone().unwrap_or_else(dash),
                ]
            })
            .collect();
        text.push('\n');
        text.push_str(&table(
            &[
                "TIME", "#", "EVENT", "MESSAGE", "PEER", "CASE", "OFFICER", "CODE",
            ],
            &rows,
        ));
    }
    ctx.out.text(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::RejectCode;

    const T0: u64 = 1_795_874_050_000;

    fn auth(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn msg(n: u8) -> MessageId {
        MessageId::new_v7(T0, [n; 10])
    }

    /// Two logs built event by event, as two relays would write them.
    struct Pair {
        a: Log,
        b: Log,
    }

    fn push(log: &mut Log, e: Entry) -> u64 {
        let index = log.entries.len() as u64;
        log.entries.push(Entry { index, ..e });
        index
    }

    fn empty(who: &str) -> Log {
        Log {
            authority: auth(who),
            entries: vec![],
            receipts: vec![],
        }
    }

    impl Pair {
        fn new() -> Pair {
            Pair {
                a: empty("RS.MUP"),
                b: empty("BA.SPS"),
            }
        }

        fn logs(&mut self, from_a: bool) -> (&mut Log, &mut Log) {
            if from_a {
                (&mut self.a, &mut self.b)
            } else {
                (&mut self.b, &mut self.a)
            }
        }

        /// `from` submits message n to the other side.
        fn submit(&mut self, from_a: bool, n: u8) {
            let (s, r) = self.logs(from_a);
            let to = r.authority.to_string();
            push(
                s,
                Entry {
                    msg_id: Some(msg(n)),
                    envelope_digest: Some(Digest([n; 32])),
                    officer: Some("0a1b".into()),
                    code: Some(format!("operational-notice to {to}")),
                    ..Entry::new(Timestamp(T0 + u64::from(n)), Event::Submitted)
                },
            );
        }

        /// The other side receives message n and issues a receipt; the
        /// sender records it when `back`.
        fn deliver(&mut self, from_a: bool, n: u8, back: bool) {
            let (s, r) = self.logs(from_a);
            let (sa, ra) = (s.authority.clone(), r.authority.clone());
            let arrival = Entry {
                msg_id: Some(msg(n)),
                envelope_digest: Some(Digest([n; 32])),
                peer: Some(sa.clone()),
                code: Some("operational-notice".into()),
                ..Entry::new(Timestamp(T0 + 100), Event::Received)
            };
            let index = push(r, arrival);
            let receipt = Receipt {
                msg_id: Some(msg(n)),
                envelope_digest: Digest([n; 32]),
                sender: sa,
                receiver: ra.clone(),
                received_at: Timestamp(T0 + 100),
                status: ReceiptStatus::Accepted,
                log_index: Some(index),
                leaf_hash: Some(r.entries[index as usize].leaf_hash()),
            };
            let digest = Digest([n.wrapping_add(100); 32]);
            r.receipts.push(KeptReceipt {
                kind: ReceiptKind::Issued,
                receipt: receipt.clone(),
                digest,
                included_in: None,
            });
            if back {
                push(
                    s,
                    Entry {
                        msg_id: Some(msg(n)),
                        peer: Some(ra),
                        receipt_digest: Some(digest),
                        ..Entry::new(Timestamp(T0 + 200), Event::Delivered)
                    },
                );
                s.receipts.push(KeptReceipt {
                    kind: ReceiptKind::Held,
                    receipt,
                    digest,
                    included_in: None,
                });
            }
        }

        /// The other side refuses message n with a signed rejection.
        fn refuse(&mut self, from_a: bool, n: u8) {
            let (s, r) = self.logs(from_a);
            let (sa, ra) = (s.authority.clone(), r.authority.clone());
            let digest = Digest([n.wrapping_add(200); 32]);
            push(
                r,
                Entry {
                    msg_id: Some(msg(n)),
                    envelope_digest: Some(Digest([n; 32])),
                    peer: Some(sa.clone()),
                    receipt_digest: Some(digest),
                    code: Some("expired".into()),
                    ..Entry::new(Timestamp(T0 + 100), Event::Refused)
                },
            );
            let receipt = Receipt {
                msg_id: Some(msg(n)),
                envelope_digest: Digest([n; 32]),
                sender: sa,
                receiver: ra.clone(),
                received_at: Timestamp(T0 + 100),
                status: ReceiptStatus::Rejected {
                    reason: RejectCode::Expired,
                    detail: None,
                },
                log_index: None,
                leaf_hash: None,
            };
            r.receipts.push(KeptReceipt {
                kind: ReceiptKind::Issued,
                receipt: receipt.clone(),
                digest,
                included_in: None,
            });
            push(
                s,
                Entry {
                    msg_id: Some(msg(n)),
                    peer: Some(ra),
                    receipt_digest: Some(digest),
                    code: Some("expired".into()),
                    ..Entry::new(Timestamp(T0 + 200), Event::Rejected)
                },
            );
            s.receipts.push(KeptReceipt {
                kind: ReceiptKind::Held,
                receipt,
                digest,
                included_in: None,
            });
        }

        fn run(&self) -> Reconciliation {
            reconcile_logs(&self.a, &self.b)
        }
    }

    /// A to B: 1 delivered, 2 refused; B to A: 3 delivered.
    fn matching() -> Pair {
        let mut p = Pair::new();
        p.submit(true, 1);
        p.deliver(true, 1, true);
        p.submit(true, 2);
        p.refuse(true, 2);
        p.submit(false, 3);
        p.deliver(false, 3, true);
        p
    }

    fn kinds(r: &Reconciliation) -> Vec<(FindingKind, Option<MessageId>)> {
        r.findings.iter().map(|f| (f.kind, f.msg_id)).collect()
    }

    #[test]
    fn the_code_names_the_recipients() {
        assert_eq!(
            recipients("operational-notice to ME.UP,MK.MVR"),
            ["ME.UP", "MK.MVR"]
        );
        assert_eq!(recipients("readmission-request to BA.SPS"), ["BA.SPS"]);
        assert!(recipients("0.1.0").is_empty());
    }

    #[test]
    fn matching_logs_reconcile() {
        let p = matching();
        let r = p.run();
        assert_eq!(r.findings, vec![], "{r:?}");
        assert!(r.reconciled());
        assert_eq!(
            r.a_to_b,
            Direction {
                sent: 2,
                matched: 2,
                held_receipts: 2,
                issued_receipts: 1
            }
        );
        assert_eq!(
            r.b_to_a,
            Direction {
                sent: 1,
                matched: 1,
                held_receipts: 1,
                issued_receipts: 1
            }
        );
        // A message to a third authority is not B's business.
        let mut p = matching();
        push(
            &mut p.a,
            Entry {
                msg_id: Some(msg(9)),
                envelope_digest: Some(Digest([9; 32])),
                code: Some("operational-notice to ME.UP".into()),
                ..Entry::new(Timestamp(T0), Event::Submitted)
            },
        );
        assert!(p.run().findings.is_empty());
    }

    #[test]
    fn a_receivers_rewritten_log_contradicts_its_own_checkpoint_held_by_the_sender() {
        // A holds B's receipt for message 1 with an inclusion proof into B's
        // checkpoint of B's log at size 1 (verified when A's bundle loaded).
        let mut p = matching();
        let b_root = kurir_proto::merkle::root(&[p.b.entries[0].leaf_hash()]);
        let held = p
            .a
            .receipts
            .iter_mut()
            .find(|k| k.kind == ReceiptKind::Held && k.receipt.status == ReceiptStatus::Accepted)
            .unwrap();
        held.included_in = Some((1, b_root));
        assert!(p.run().findings.is_empty(), "{:?}", p.run());
        // B's export is later shown with a different root at that size...
        let held =
            p.a.receipts
                .iter_mut()
                .find(|k| k.included_in.is_some())
                .unwrap();
        held.included_in = Some((1, Digest([7; 32])));
        let r = p.run();
        assert_eq!(kinds(&r), vec![(FindingKind::Contradictory, Some(msg(1)))]);
        assert!(r.findings[0].detail.contains("log was rewritten"), "{r:?}");
        // ... or with fewer entries than B's signed checkpoint covered.
        let held =
            p.a.receipts
                .iter_mut()
                .find(|k| k.included_in.is_some())
                .unwrap();
        held.included_in = Some((50, b_root));
        let r = p.run();
        assert_eq!(kinds(&r), vec![(FindingKind::Contradictory, Some(msg(1)))]);
        assert!(
            r.findings[0].detail.contains("entries were removed"),
            "{r:?}"
        );
    }

    #[test]
    fn undelivered_messages_are_pending_not_errors() {
        let mut p = matching();
        // Sent while B was down.
        p.submit(true, 4);
        // Received by B, the receipt not back at A yet.
        p.submit(true, 5);
        p.deliver(true, 5, false);
        let r = p.run();
        assert_eq!(
            kinds(&r),
            [
                (FindingKind::Pending, Some(msg(4))),
                (FindingKind::Pending, Some(msg(5)))
            ],
            "{r:?}"
        );
        assert!(r.reconciled());
        assert_eq!(r.a_to_b.matched, 3);
    }

    #[test]
    fn a_receipt_deleted_from_one_side_is_named() {
        // A's bundle no longer holds the receipt its log records.
        let mut p = matching();
        p.a.receipts.retain(|k| k.receipt.msg_id != Some(msg(1)));
        let r = p.run();
        assert_eq!(kinds(&r), [(FindingKind::Missing, Some(msg(1)))], "{r:?}");
        assert!(r.findings[0].detail.contains("does not hold it"), "{r:?}");
        assert!(r.findings[0].detail.contains("lists it as issued"), "{r:?}");
        assert!(!r.reconciled());
        // B's bundle no longer lists a receipt A holds.
        let mut p = matching();
        p.b.receipts
            .retain(|k| !(k.kind == ReceiptKind::Issued && k.receipt.msg_id == Some(msg(1))));
        let r = p.run();
        assert_eq!(kinds(&r), [(FindingKind::Missing, Some(msg(1)))], "{r:?}");
        assert!(r.findings[0].detail.contains("does not list it as issued"));
        // A rejection A holds that B's log does not have.
        let mut p = matching();
        p.b.entries.retain(|e| e.event != Event::Refused);
        let r = p.run();
        assert!(
            kinds(&r).contains(&(FindingKind::Contradictory, Some(msg(2)))),
            "{r:?}"
        );
        assert!(
            kinds(&r).contains(&(FindingKind::Missing, Some(msg(2)))),
            "{r:?}"
        );
    }

    #[test]
    fn sent_but_not_received_and_received_but_not_sent() {
        // A's log says B accepted message 1; B's log has no arrival.
        let mut p = matching();
        p.b.entries
            .retain(|e| !(e.event == Event::Received && e.msg_id == Some(msg(1))));
        let r = p.run();
        assert!(
            r.findings.iter().any(|f| f.kind == FindingKind::Missing
                && f.msg_id == Some(msg(1))
                && f.detail.contains("has no arrival")),
            "{r:?}"
        );
        // B logs an arrival from A that A never sent.
        let mut p = matching();
        push(
            &mut p.b,
            Entry {
                msg_id: Some(msg(7)),
                envelope_digest: Some(Digest([7; 32])),
                peer: Some(auth("RS.MUP")),
                ..Entry::new(Timestamp(T0), Event::Received)
            },
        );
        let r = p.run();
        assert_eq!(kinds(&r), [(FindingKind::Extra, Some(msg(7)))], "{r:?}");
        assert_eq!(r.findings[0].from, auth("RS.MUP"));
        assert_eq!(r.findings[0].to, auth("BA.SPS"));
        // A's log records the delivery of a message it never submitted:
        // one finding, not also an extra arrival at B.
        let mut p = matching();
        for e in &mut p.a.entries {
            if e.event == Event::Submitted && e.msg_id == Some(msg(1)) {
                e.code = Some("operational-notice to ME.UP".into());
            }
        }
        let r = p.run();
        assert_eq!(
            kinds(&r),
            [(FindingKind::Contradictory, Some(msg(1)))],
            "{r:?}"
        );
        assert!(r.findings[0].detail.contains("no submission"), "{r:?}");
    }

    #[test]
    fn a_refusal_without_a_message_id_matches_by_envelope_digest() {
        let mut p = matching();
        for e in &mut p.b.entries {
            if e.event == Event::Refused {
                e.msg_id = None;
            }
        }
        let r = p.run();
        assert!(r.findings.is_empty(), "{r:?}");
        assert_eq!(r.a_to_b.matched, 2);
        // ... and one whose digest A never sent is extra.
        let mut p = matching();
        push(
            &mut p.b,
            Entry {
                envelope_digest: Some(Digest([0xab; 32])),
                peer: Some(auth("RS.MUP")),
                code: Some("malformed".into()),
                ..Entry::new(Timestamp(T0), Event::Refused)
            },
        );
        let r = p.run();
        assert_eq!(kinds(&r), [(FindingKind::Extra, None)], "{r:?}");
    }

    #[test]
    fn different_digests_and_wrong_entries_contradict() {
        // Same message id, another envelope digest at B.
        let mut p = matching();
        for e in &mut p.b.entries {
            if e.event == Event::Received && e.msg_id == Some(msg(1)) {
                e.envelope_digest = Some(Digest([0xee; 32]));
            }
        }
        let r = p.run();
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == FindingKind::Contradictory
                    && f.msg_id == Some(msg(1))
                    && f.detail.contains("with digest")),
            "{r:?}"
        );
        assert_eq!(r.a_to_b.matched, 1);
        // The receipt A holds names an entry B's log does not have.
        let mut p = matching();
        for k in &mut p.a.receipts {
            if k.receipt.msg_id == Some(msg(1)) {
                k.receipt.log_index = Some(99);
            }
        }
        let r = p.run();
        assert_eq!(
            kinds(&r),
            [(FindingKind::Contradictory, Some(msg(1)))],
            "{r:?}"
        );
        assert!(r.findings[0].detail.contains("names entry 99"), "{r:?}");
        // ... or one whose leaf hash differs.
        let mut p = matching();
        for k in &mut p.a.receipts {
            if k.receipt.msg_id == Some(msg(1)) {
                k.receipt.leaf_hash = Some(Digest([0; 32]));
            }
        }
        let r = p.run();
        assert!(r.findings[0].detail.contains("leaf hash"), "{r:?}");
        // B accepted it, A records it as expired.
        let mut p = matching();
        p.submit(true, 6);
        p.deliver(true, 6, false);
        push(
            &mut p.a,
            Entry {
                msg_id: Some(msg(6)),
                peer: Some(auth("BA.SPS")),
                ..Entry::new(Timestamp(T0), Event::Expired)
            },
        );
        let r = p.run();
        assert_eq!(
            kinds(&r),
            [(FindingKind::Contradictory, Some(msg(6)))],
            "{r:?}"
        );
    }

    fn show_log() -> Vec<Entry> {
        let case = CaseId::parse("RS.MUP:2026-000001").unwrap();
        let mut log = empty("RS.MUP");
        push(&mut log, Entry::new(Timestamp(T0), Event::Started));
        push(
            &mut log,
            Entry {
                msg_id: Some(msg(1)),
                case_id: Some(case.clone()),
                ..Entry::new(Timestamp(T0 + DAY_MS), Event::Submitted)
            },
        );
        push(
            &mut log,
            Entry {
                msg_id: Some(msg(2)),
                ..Entry::new(Timestamp(T0 + DAY_MS), Event::Submitted)
            },
        );
        push(
            &mut log,
            Entry {
                msg_id: Some(msg(1)),
                ..Entry::new(Timestamp(T0 + 2 * DAY_MS), Event::Delivered)
            },
        );
        push(
            &mut log,
            Entry {
                case_id: Some(case),
                code: Some("due_soon".into()),
                ..Entry::new(Timestamp(T0 + 3 * DAY_MS), Event::Deadline)
            },
        );
        log.entries
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
            case: None,
        };
        assert_eq!(indices(exact.select(&log)), [3]);
    }

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
        for bad in [
            "yesterday",
            "2026-11-28T13:54Z",
            "2026-11-28T13:54:10",
            "2026-11-28T25:00:00Z",
            "2026-13-01",
            "2026-11-28T13:54:10.Z",
        ] {
            let e = time_bound(bad, "--from", false).unwrap_err();
            assert_eq!(crate::exit::exit_of(&e), Exit::Usage, "{bad}");
            assert!(e.to_string().contains("--from"), "{e}");
        }
    }
}
