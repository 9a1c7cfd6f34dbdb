//! `kurir audit report` and `kurir audit prove-deadline`: the auditor's
//! report as one HTML file ([`kurir_audit::report`]) and the proof of
//! silence as text or JSON ([`kurir_audit::prove_silence`]), over bundles
//! verified as `kurir audit verify` does and held to each other as
//! `kurir audit reconcile` does.

use std::path::{Path, PathBuf};

use anyhow::Result;
use kurir_audit::report::{self, Failed};
use kurir_audit::silence::EntryRef;
use kurir_audit::{LogView, NoProof, Silence, VerifiedBundle, VerifyError, prove_silence};
use kurir_proto::CaseId;
use serde_json::{Value, json};

use super::audit::{AnchorSource, anchors, warn_unanchored};
use crate::cli::AnchorArgs;
use crate::commands::{Ctx, now};
use crate::exit::{Exit, fail, usage};
use crate::output::time;

/// `--checkpoint` names one authority's checkpoints: for `verify` only.
fn no_checkpoints(args: &AnchorArgs, command: &str) -> Result<()> {
    if args.checkpoint.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "--checkpoint is for `kurir audit verify` of the bundle it belongs to; {command} holds \
         each bundle to the checkpoints the others' logs record cosigning"
    )))
}

/// The anchor as the report names it.
fn source_text(source: &AnchorSource, sha: Option<String>) -> String {
    let sha = sha.map_or(String::new(), |s| format!(" (sha256 {s})"));
    match source {
        AnchorSource::File(p) => format!("the roster {}{sha}, given with --roster", p.display()),
        AnchorSource::Sha256 => format!("the roster fingerprint given with --roster-sha256{sha}"),
        AnchorSource::Profile(p) => format!("the profile's roster {}{sha}", p.display()),
        AnchorSource::None => "none: the bundles' rosters were checked only against each other \
                               (give --roster FILE or --roster-sha256 HEX)"
            .to_owned(),
    }
}

/// Verifies every bundle in `dirs` and holds them to each other; an
/// unreadable bundle is a usage error, two bundles of one authority too.
fn verify_all(
    ctx: &Ctx,
    dirs: &[PathBuf],
    args: &AnchorArgs,
) -> Result<(Vec<VerifiedBundle>, Vec<Failed>, String)> {
    let (anchors, source) = anchors(ctx, args)?;
    warn_unanchored(&source);
    let sha = anchors.roster.as_ref().map(|r| r.fingerprint().to_string());
    let mut ok: Vec<VerifiedBundle> = Vec::new();
    let mut failed = Vec::new();
    for dir in dirs {
        match kurir_audit::load_verified_with(dir, &anchors) {
            Ok(v) => {
                if let Some(other) = ok.iter().find(|o| o.log.authority == v.log.authority) {
                    return Err(usage(format!(
                        "{} and {} are both bundles of {}: give one bundle per authority",
                        other.path.display(),
                        v.path.display(),
                        v.log.authority
                    )));
                }
                ok.push(v);
            }
            Err(e @ VerifyError::Unreadable { .. }) => return Err(usage(e.to_string())),
            Err(e) => failed.push(Failed {
                path: dir.clone(),
                error: e.to_string(),
            }),
        }
    }
    let (ok, more) = report::cross_check(ok);
    failed.extend(more);
    Ok((ok, failed, source_text(&source, sha)))
}

/// `kurir audit report BUNDLE… --out FILE`.
pub fn report(
    ctx: &Ctx,
    dirs: &[PathBuf],
    out: &Path,
    include_failures: bool,
    force: bool,
    args: &AnchorArgs,
) -> Result<()> {
    no_checkpoints(args, "report")?;
    if out.exists() && !force {
        return Err(usage(format!(
            "{} exists: give another --out, or --force to replace it",
            out.display()
        )));
    }
    let (ok, failed, anchor) = verify_all(ctx, dirs, args)?;
    if !failed.is_empty() && !include_failures {
        let names: Vec<String> = failed
            .iter()
            .map(|f| format!("{}: {}", f.path.display(), f.error))
            .collect();
        return Err(fail(
            Exit::Rejected,
            format!(
                "no report written: {} bundle(s) NOT VERIFIED:\n{}\n(--include-failures writes \
                 a report that names them at the top)",
                failed.len(),
                names.join("\n")
            ),
        ));
    }
    let r = report::build(&ok, failed, anchor, now());
    write_file(out, report::html(&r).as_bytes())?;
    let deemed = r
        .cases
        .iter()
        .filter(|c| c.reply.code() == "deemed_accepted")
        .count();
    let proofs = r
        .cases
        .iter()
        .filter(|c| matches!(c.silence, Some(Ok(_))))
        .count();
    let verdict = if r.verified() {
        "VERIFIED"
    } else {
        "NOT VERIFIED"
    };
    if ctx.out.json {
        ctx.out.line(
            "audit_report",
            json!({
                "out": out.display().to_string(),
                "verified": r.verified(),
                "bundles": r.bundles.iter().map(|b| b.authority.as_str()).collect::<Vec<_>>(),
                "failed": r.failed.iter().map(|f| json!({
                    "path": f.path.display().to_string(), "error": f.error})).collect::<Vec<_>>(),
                "cases": r.cases.len(),
                "deemed_accepted": deemed,
                "proofs_of_silence": proofs,
                "messages": r.traffic.total(),
                "findings": r.pairs.iter().map(|p| p.findings.len()).sum::<usize>(),
            }),
        );
    } else {
        ctx.out.text(format!(
            "wrote {}: {verdict}; {} bundle(s) verified{}, {} case(s) ({deemed} deemed \
             accepted, {proofs} with a proof of silence), {} message(s) between {} \
             authorities",
            out.display(),
            r.bundles.len(),
            if r.failed.is_empty() {
                String::new()
            } else {
                format!(", {} NOT VERIFIED (named at the top)", r.failed.len())
            },
            r.cases.len(),
            r.traffic.total(),
            r.traffic.authorities.len()
        ));
    }
    if r.verified() {
        Ok(())
    } else {
        Err(fail(
            Exit::Rejected,
            format!(
                "the report {} says NOT VERIFIED: see its top for what failed",
                out.display()
            ),
        ))
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, so a
/// reader never sees half a report.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let cannot = |e: std::io::Error| usage(format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| usage(format!("--out {} names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(cannot)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cannot(e)
    })
}

/// `kurir audit prove-deadline CASE BUNDLE…`: exit 0 only when it holds.
pub fn prove_deadline(ctx: &Ctx, case: &str, dirs: &[PathBuf], args: &AnchorArgs) -> Result<()> {
    no_checkpoints(args, "prove-deadline")?;
    let case = CaseId::parse(case).map_err(|e| usage(format!("case {case:?}: {e}")))?;
    let (ok, failed, anchor) = verify_all(ctx, dirs, args)?;
    if let Some(f) = failed.first() {
        return Err(fail(
            Exit::Rejected,
            format!(
                "no proof: the bundle {} is NOT VERIFIED: {}",
                f.path.display(),
                f.error
            ),
        ));
    }
    let views: Vec<LogView<'_>> = ok.iter().map(LogView::from).collect();
    match prove_silence(&case, &views) {
        Ok(p) => {
            if ctx.out.json {
                ctx.out.line("proof_of_silence", proof_json(&p, &anchor));
            } else {
                ctx.out.text(proof_text(&p, &anchor));
            }
            Ok(())
        }
        Err(e) => {
            if ctx.out.json {
                ctx.out.line(
                    "proof_of_silence",
                    json!({"case_id": case.as_str(), "holds": false, "reason": e.to_string(),
                           "code": no_proof_code(&e)}),
                );
            }
            Err(fail(Exit::Rejected, format!("no proof of silence: {e}")))
        }
    }
}

fn no_proof_code(e: &NoProof) -> &'static str {
    match e {
        NoProof::UnknownCase { .. } => "unknown_case",
        NoProof::NoRequestedBundle { .. } => "no_requested_bundle",
        NoProof::NotDeemedAccepted { .. } => "not_deemed_accepted",
        NoProof::NotReceived { .. } => "not_received",
        NoProof::LogEndsBefore { .. } => "log_ends_before",
        NoProof::NotCovered { .. } => "not_covered",
        NoProof::Answered { .. } => "answered",
        _ => "other",
    }
}

fn entry_json(e: &EntryRef) -> Value {
    json!({"authority": e.authority.as_str(), "index": e.index, "at": time(e.at),
           "leaf_hash": e.leaf.to_string()})
}

fn proof_json(p: &Silence, anchor: &str) -> Value {
    json!({
        "case_id": p.case_id.as_str(),
        "holds": true,
        "requesting": p.requesting.as_str(),
        "requested": p.requested.as_str(),
        "deemed_accepted_at": time(p.deemed.at),
        "request_sent": entry_json(&p.request_sent),
        "request_delivered": p.request_delivered.as_ref().map(entry_json),
        "deemed_accepted": entry_json(&p.deemed),
        "request_received": entry_json(&p.request_received),
        "requested_deemed_accepted": p.requested_deemed.as_ref().map(entry_json),
        "first_entry_after": entry_json(&p.first_after),
        "checkpoint": {
            "authority": p.requested.as_str(),
            "size": p.checkpoint.size,
            "root": p.checkpoint.root.to_string(),
            "cosigned_by": p.checkpoint.cosigners.iter().map(|(who, secs)| json!({
                "authority": who.as_str(),
                "at": time(kurir_proto::Timestamp(secs.saturating_mul(1000))),
            })).collect::<Vec<_>>(),
        },
        "sent_after": p.late.iter().map(|(e, kind)| json!({"kind": kind.as_str(), "entry": entry_json(e)})).collect::<Vec<_>>(),
        "out_of_time_order": p.out_of_order.iter().map(entry_json).collect::<Vec<_>>(),
        "anchor": anchor,
    })
}

fn entry_text(e: &EntryRef) -> String {
    format!(
        "{} entry {} at {} (leaf {})",
        e.authority,
        e.index,
        time(e.at),
        e.leaf
    )
}

fn proof_text(p: &Silence, anchor: &str) -> String {
    let mut lines = vec![
        format!(
            "case {}: PROOF OF SILENCE HOLDS: {} sent nothing in the case before {} deemed \
             the request accepted at {}",
            p.case_id,
            p.requested,
            p.requesting,
            time(p.deemed.at)
        ),
        format!("  anchor      {anchor}"),
        format!("  request     sent: {}", entry_text(&p.request_sent)),
    ];
    if let Some(d) = &p.request_delivered {
        lines.push(format!(
            "              delivered, {}'s receipt held: {}",
            p.requested,
            entry_text(d)
        ));
    }
    lines.push(format!(
        "              received: {}",
        entry_text(&p.request_received)
    ));
    lines.push(format!("  deemed      {}", entry_text(&p.deemed)));
    if let Some(d) = &p.requested_deemed {
        lines.push(format!(
            "              and by {}: {}",
            p.requested,
            entry_text(d)
        ));
    }
    let cosigners: Vec<String> = p
        .checkpoint
        .cosigners
        .iter()
        .map(|(who, secs)| {
            format!(
                "{who} at {}",
                time(kurir_proto::Timestamp(secs.saturating_mul(1000)))
            )
        })
        .collect();
    lines.push(format!(
        "  checkpoint  {}'s of size {} (root {}), cosigned by {}; it covers {}",
        p.requested,
        p.checkpoint.size,
        p.checkpoint.root,
        cosigners.join(", "),
        entry_text(&p.first_after)
    ));
    lines.push(format!(
        "  silence     none of those {} entries dated before {} is a message {} sent in the case",
        p.checkpoint.size,
        time(p.deemed.at),
        p.requested
    ));
    for (e, kind) in &p.late {
        lines.push(format!("  later       {kind}: {}", entry_text(e)));
    }
    for e in &p.out_of_order {
        lines.push(format!(
            "  out of order {} (written after an entry dated after the deemed acceptance)",
            entry_text(e)
        ));
    }
    lines.join("\n")
}
