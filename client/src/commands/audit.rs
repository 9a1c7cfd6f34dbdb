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

use std::path::Path;

use anyhow::Result;
use kurir_audit::bundle::{self, WriteError};
use kurir_audit::{
    Direction, Filter, Finding, FindingKind, ReceiptKind, VerifiedBundle, VerifyError,
    reconcile_logs, time_bound,
};
use kurir_proto::audit::{Bundle, Entry};
use kurir_proto::{AuthorityId, ReceiptStatus};
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
    verify(ctx, out, 0)
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

/// [`kurir_audit::load_verified`], its error with its exit code: 2 if the
/// bundle cannot be read, 4 if it is not verified.
fn load_verified(dir: &Path) -> Result<VerifiedBundle> {
    kurir_audit::load_verified(dir).map_err(verify_error)
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
pub fn verify(ctx: &Ctx, dir: &Path, min_cosigners: usize) -> Result<()> {
    let v = load_verified(dir)?;
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
        from: from.map(|s| bound(s, "--from", false)).transpose()?,
        to: to.map(|s| bound(s, "--to", true)).transpose()?,
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
