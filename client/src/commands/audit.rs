//! `kurir audit ...`: offline tools for auditors, on bundles exported with
//! `kurir-relay audit-export` or `kurir audit export`. The checking is
//! the `kurir_audit` library's; this module reads the arguments, prints
//! (tables or `--json`) and maps errors to exit codes (an unreadable bundle
//! 2, a bundle NOT VERIFIED or logs that do not reconcile 4).
//!
//! - `verify` checks one bundle ([`kurir_audit::load_verified`]; every
//!   other command starts with it);
//! - `reconcile` cross-checks the bundles of two authorities
//!   ([`kurir_audit::reconcile_logs`]);
//! - `show` prints a verified bundle's entries as a timeline, filtered by
//!   case and time ([`kurir_audit::Filter`]);
//! - `export` has the relay collect its bundle and writes it
//!   ([`kurir_audit::bundle::write`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use kurir_audit::bundle::{self, WriteError};
use kurir_audit::{
    Anchored, Anchors, Direction, Filter, Finding, FindingKind, Read, ReceiptKind, RosterAnchor,
    VerifiedBundle, VerifyError, reconcile_logs, time_bound, witnessed_in,
};
use kurir_proto::audit::{Bundle, Entry};
use kurir_proto::{AuthorityId, Digest, ReceiptStatus};
use serde_json::{Value, json};

use crate::cli::{AnchorArgs, AuditCmd};
use crate::commands::Ctx;
use crate::exit::{Exit, fail, usage};
use crate::output::{self, short_time, table};
use crate::profile::{Profile, Source};

/// Runs `kurir audit ...` (offline: no profile, no relay).
pub fn run(ctx: &Ctx, command: AuditCmd) -> Result<()> {
    match command {
        AuditCmd::Verify {
            dir,
            min_cosigners,
            anchors,
        } => verify(ctx, &dir, min_cosigners, &anchors),
        AuditCmd::Export { .. } => Err(usage(
            "audit export needs the relay: it runs with a profile",
        )),
        AuditCmd::Reconcile {
            dir_a,
            dir_b,
            anchors,
        } => reconcile(ctx, &dir_a, &dir_b, &anchors),
        AuditCmd::Show {
            dir,
            case,
            from,
            to,
            message,
            reads,
            anchors,
        } => show(
            ctx,
            &dir,
            &anchors,
            &ShowFilter {
                case: case.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                message: message.as_deref(),
                reads,
            },
        ),
        AuditCmd::Report {
            dirs,
            out,
            include_failures,
            force,
            anchors,
        } => super::report::report(ctx, &dirs, &out, include_failures, force, &anchors),
        AuditCmd::ProveDeadline {
            case,
            dirs,
            anchors,
        } => super::report::prove_deadline(ctx, &case, &dirs, &anchors),
    }
}

/// `kurir audit export --out DIR`: the relay's bundle, written and verified.
pub async fn export(ctx: &Ctx, s: &crate::commands::Session, out: &Path) -> Result<()> {
    bundle::ensure_empty(out).map_err(write_error)?;
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
    // Written as the relay's own export writes it.
    bundle::write(&decoded, out).map_err(write_error)?;
    output::note(format!(
        "wrote the audit bundle of {} to {}",
        decoded.authority,
        out.display()
    ));
    verify(ctx, out, 0, &AnchorArgs::default())
}

/// The exit code of a bundle that cannot be written: the output directory
/// is the user's to fix (2), the rest is internal (1).
fn write_error(e: WriteError) -> anyhow::Error {
    match e {
        WriteError::ReadDir { .. } | WriteError::NotEmpty { .. } => usage(e.to_string()),
        WriteError::Encode(e) => fail(Exit::Internal, e.to_string()),
        _ => fail(Exit::Internal, e.to_string()),
    }
}

/// [`kurir_audit::load_verified_with`], its error with its exit code: 2 if
/// the bundle cannot be read, 4 if it is not verified.
fn load_verified(dir: &Path, anchors: &Anchors) -> Result<VerifiedBundle> {
    kurir_audit::load_verified_with(dir, anchors).map_err(verify_error)
}

/// Where the roster anchor came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AnchorSource {
    /// `--roster FILE` (and perhaps `--roster-sha256`).
    File(PathBuf),
    /// `--roster-sha256 HEX` alone.
    Sha256,
    /// The profile's roster.
    Profile(PathBuf),
    /// Nothing: the bundle's rosters are checked only against each other.
    None,
}

/// The auditor's anchors from the arguments: `--roster`, `--roster-sha256`,
/// else the profile's roster when there is a profile (a profile named with
/// --profile or KURIR_PROFILE must load; the default one may be absent),
/// and the `--checkpoint` files.
pub(super) fn anchors(ctx: &Ctx, args: &AnchorArgs) -> Result<(Anchors, AnchorSource)> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path)
            .map_err(|e| usage(format!("cannot read {what} {}: {e}", path.display())))
    };
    let sha = args
        .roster_sha256
        .as_deref()
        .map(|hex| {
            parse_sha256(hex).ok_or_else(|| {
                usage(format!(
                    "--roster-sha256 {hex:?} is not a SHA-256 fingerprint: give 64 hex digits, \
                     as `kurir-certs roster show` prints them"
                ))
            })
        })
        .transpose()?;
    let (roster, source) = match (&args.roster, sha) {
        (Some(path), sha) => {
            let bytes = read(path, "the roster")?;
            if let Some(want) = sha
                && RosterAnchor::File(bytes.clone()).fingerprint() != want
            {
                return Err(usage(format!(
                    "the roster {} has sha256 {}, not the {want} given with --roster-sha256",
                    path.display(),
                    RosterAnchor::File(bytes).fingerprint()
                )));
            }
            (
                Some(RosterAnchor::File(bytes)),
                AnchorSource::File(path.clone()),
            )
        }
        (None, Some(d)) => (Some(RosterAnchor::Sha256(d)), AnchorSource::Sha256),
        (None, None) => match profile_roster(ctx)? {
            Some(path) => {
                let bytes = read(&path, "the profile's roster")?;
                (Some(RosterAnchor::File(bytes)), AnchorSource::Profile(path))
            }
            None => (None, AnchorSource::None),
        },
    };
    let checkpoints = args
        .checkpoint
        .iter()
        .map(|p| read(p, "the checkpoint"))
        .collect::<Result<Vec<_>>>()?;
    Ok((
        Anchors {
            roster,
            checkpoints,
        },
        source,
    ))
}

/// The profile's roster file, if there is a profile: one named with
/// --profile or KURIR_PROFILE must load; the default location may hold none.
fn profile_roster(ctx: &Ctx) -> Result<Option<PathBuf>> {
    let Ok(source) = Source::pick(ctx.profile_flag.as_deref()) else {
        return Ok(None);
    };
    if matches!(source, Source::Default(_)) && !source.path().exists() {
        return Ok(None);
    }
    Ok(Some(Profile::load(&source)?.roster))
}

/// 64 hex digits as a digest.
fn parse_sha256(hex: &str) -> Option<Digest> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Digest(out))
}

/// Says loudly, on stderr, that nothing anchors the bundle.
pub(super) fn warn_unanchored(source: &AnchorSource) {
    if *source == AnchorSource::None {
        output::note(
            "WARNING: no roster to anchor to (no --roster, --roster-sha256 or profile): the \
             bundle's rosters are checked only against each other, so a bundle made up with \
             keys of its own would verify too. Give the federation's roster with --roster FILE \
             or its published fingerprint with --roster-sha256 HEX.",
        );
    }
}

/// What anchored the bundle, as text and JSON.
fn anchor_report(v: &VerifiedBundle, source: &AnchorSource) -> (String, Value) {
    let from = match source {
        AnchorSource::File(p) => format!("--roster {}", p.display()),
        AnchorSource::Sha256 => "--roster-sha256".to_owned(),
        AnchorSource::Profile(p) => format!("the profile's roster {}", p.display()),
        AnchorSource::None => String::new(),
    };
    match &v.anchored {
        Anchored::Unanchored => (
            "NONE: the rosters were checked only against each other (give --roster FILE or \
             --roster-sha256 HEX)"
                .to_owned(),
            json!({"anchored": false}),
        ),
        Anchored::Holds {
            version,
            fingerprint,
        } => (
            format!(
                "roster version {version} (sha256 {fingerprint}) from {from}: the bundle's \
                 history holds it"
            ),
            json!({"anchored": true, "from": from, "version": version,
                   "sha256": fingerprint.to_string(), "how": "held"}),
        ),
        Anchored::FollowsFrom {
            given_version,
            given,
            version,
        } => (
            format!(
                "roster version {given_version} (sha256 {given}) from {from}: the bundle's \
                 roster version {version} follows from it (signed by its quorum)"
            ),
            json!({"anchored": true, "from": from, "version": given_version,
                   "sha256": given.to_string(), "how": "follows_from",
                   "first_anchored_version": version}),
        ),
    }
}

fn verify_error(e: VerifyError) -> anyhow::Error {
    match e {
        VerifyError::Unreadable { .. } => usage(e.to_string()),
        _ => fail(Exit::Rejected, e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// verify

/// `kurir audit verify DIR`: the first problem found is the error.
pub fn verify(ctx: &Ctx, dir: &Path, min_cosigners: usize, args: &AnchorArgs) -> Result<()> {
    let (anchors, source) = anchors(ctx, args)?;
    warn_unanchored(&source);
    let v = load_verified(dir, &anchors)?;
    let (anchor_text, anchor_json) = anchor_report(&v, &source);
    v.require_cosigners(min_cosigners).map_err(verify_error)?;
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
        .newest_cosigners()
        .iter()
        .map(|(a, _)| a.to_string())
        .collect();
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
        "anchor": anchor_json,
        "checkpoints_given": v.witnessed.len(),
        "verified": true,
    });
    if ctx.out.json {
        ctx.out.line("audit_verified", data);
    } else {
        ctx.out.text(format!(
            "audit log of {authority}: VERIFIED\n  anchor      {anchor_text}\n  roster      version {} (sha256 {}; compare it with the federation's published fingerprint)\n  entries     {} (every one decoded, in order)\n  checkpoints {} (signed by {authority}'s log key; roots recomputed){}\n  receipts    {} (signatures verified against the roster and matched to log entries)\n              {proven} of {held_acceptances} held acceptances proven included in the receiver's signed log{}\n  envelopes   {} (signed by their senders' roster keys; each matches its submitted or received entry)",
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
        if !v.witnessed.is_empty() {
            ctx.out.text(format!(
                "  given       {} checkpoint(s) you gave: signed by {authority}'s log key, their \
                 roots are the log's, and those cosigned before the export are covered",
                v.witnessed.len()
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// reconcile

/// JSON of a finding.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "kind": f.kind.as_str(),
        "from": f.from.as_str(),
        "to": f.to.as_str(),
        "msg_id": f.msg_id.map(|m| m.to_string()),
        "envelope_digest": f.envelope_digest.map(|d| d.to_string()),
        "receipt_digest": f.receipt_digest.map(|d| d.to_string()),
        "detail": f.to_string(),
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
///
/// Each bundle is verified as by `audit verify` (with the roster anchor),
/// then held to what the other's log records cosigning of it.
pub fn reconcile(ctx: &Ctx, dir_a: &Path, dir_b: &Path, args: &AnchorArgs) -> Result<()> {
    if !args.checkpoint.is_empty() {
        return Err(usage(
            "--checkpoint is for `kurir audit verify` of the bundle it belongs to; reconcile \
             holds each bundle to the checkpoints the other's log records cosigning",
        ));
    }
    let (anchors, source) = anchors(ctx, args)?;
    warn_unanchored(&source);
    let a = load_verified(dir_a, &anchors)?;
    let b = load_verified(dir_b, &anchors)?;
    let (an, bn) = (&a.log.authority, &b.log.authority);
    if an == bn {
        return Err(usage(format!(
            "both bundles are audit logs of {an}: give the bundles of two authorities"
        )));
    }
    a.check_witnessed(&witnessed_in(&b.log, an))
        .map_err(verify_error)?;
    b.check_witnessed(&witnessed_in(&a.log, bn))
        .map_err(verify_error)?;
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
                        f.to_string(),
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

/// The selection of `kurir audit show` as given on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShowFilter<'a> {
    /// `--case`.
    pub case: Option<&'a str>,
    /// `--from`.
    pub from: Option<&'a str>,
    /// `--to`.
    pub to: Option<&'a str>,
    /// `--message`.
    pub message: Option<&'a str>,
    /// `--reads`.
    pub reads: bool,
}

/// `kurir audit show DIR [--case C] [--from T] [--to T] [--message ID] [--reads]`.
pub fn show(ctx: &Ctx, dir: &Path, args: &AnchorArgs, given: &ShowFilter<'_>) -> Result<()> {
    // The command's own input first (exit 2), then the bundle.
    let filter = Filter {
        case: given.case.map(crate::commands::case_id).transpose()?,
        from: given.from.map(|s| bound(s, "--from", false)).transpose()?,
        to: given.to.map(|s| bound(s, "--to", true)).transpose()?,
        message: given.message.map(crate::commands::message_id).transpose()?,
        reads: given.reads,
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
    let (anchors, source) = anchors(ctx, args)?;
    warn_unanchored(&source);
    let v = load_verified(dir, &anchors)?;
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
    if let Some(m) = filter.message {
        what.push(format!("message {m}"));
    }
    if filter.reads {
        what.push("reads".to_owned());
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
    } else if filter.reads {
        text.push('\n');
        text.push_str(&reads_table(&shown, covered_up_to));
    } else {
        let dash = || "-".to_owned();
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|e| {
                let mut row = lead_cells(e, covered_up_to);
                row.extend([
                    e.peer.as_ref().map_or_else(dash, |p| p.to_string()),
                    e.case_id.as_ref().map_or_else(dash, |c| c.to_string()),
                    e.officer.clone().unwrap_or_else(dash),
                    e.code.clone().unwrap_or_else(dash),
                ]);
                row
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

/// The reads of `--reads`: who read or was refused a body, and who marked
/// a message read (names and roles are the certificates', printed safe by
/// [`table`]).
fn reads_table(shown: &[&Entry], covered_up_to: u64) -> String {
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .filter_map(|e| Some((e, Read::of(e)?)))
        .map(|(e, r)| {
            let mut row = lead_cells(e, covered_up_to);
            row.extend([
                r.name.unwrap_or_else(dash),
                r.role.map_or_else(dash, |role| role.as_str().to_owned()),
                r.serial,
                r.refused.map_or_else(dash, |why| why.as_str().to_owned()),
            ]);
            row
        })
        .collect();
    table(
        &[
            "TIME", "#", "EVENT", "MESSAGE", "OFFICER", "ROLE", "SERIAL", "REFUSED",
        ],
        &rows,
    )
}

/// The first cells of a row of `audit show`: time, index (`*` when no
/// signed checkpoint covers it yet), event, message.
fn lead_cells(e: &Entry, covered_up_to: u64) -> Vec<String> {
    vec![
        short_time(e.at),
        format!(
            "{}{}",
            e.index,
            if e.index < covered_up_to { "" } else { "*" }
        ),
        e.event.as_str().to_owned(),
        e.msg_id.map_or_else(|| "-".to_owned(), |m| m.to_string()),
    ]
}

/// A `--from`/`--to` bound ([`time_bound`]); a bad one is a usage error.
fn bound(s: &str, flag: &str, end_of_day: bool) -> Result<kurir_proto::Timestamp> {
    time_bound(s, flag, end_of_day).map_err(|e| usage(e.to_string()))
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
        "reader": Read::of(e).map(|r| json!({
            "name": r.name,
            "role": r.role.map(|role| role.as_str()),
            "serial": r.serial,
            "refused": r.refused.map(|why| why.as_str()),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_time_bound_is_a_usage_error() {
        for bad in [
            "yesterday",
            "2026-11-28T13:54Z",
            "2026-11-28T13:54:10",
            "2026-11-28T25:00:00Z",
            "2026-13-01",
            "2026-11-28T13:54:10.Z",
        ] {
            let e = bound(bad, "--from", false).unwrap_err();
            assert_eq!(crate::exit::exit_of(&e), Exit::Usage, "{bad}");
            assert!(e.to_string().contains("--from"), "{e}");
        }
    }
}
