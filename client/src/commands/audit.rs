//! `kurir audit verify`: checks an exported audit bundle offline.

use std::path::Path;

use anyhow::Result;
use kurir_certs::Roster;
use kurir_proto::audit::{Bundle, Entry, Event, log_origin, receipt_digest, verify_log};
use kurir_proto::checkpoint::NoteVerifier;
use kurir_proto::{ReceiptStatus, open_receipt};
use serde_json::json;

use crate::commands::{Ctx, now};
use crate::exit::{Exit, fail, usage};

/// Verifies the bundle in `dir`; the first problem found is the error.
pub fn verify(ctx: &Ctx, dir: &Path) -> Result<()> {
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
    let roster = Roster::verify(&bundle.roster, now())
        .map_err(|e| bad(format!("the roster in the bundle is not valid: {e}")))?;
    let authority = &bundle.authority;
    let log_key = roster
        .log_key(authority)
        .ok_or_else(|| bad(format!("the roster lists no log key for {authority}")))?;
    let origin = log_origin(authority);
    let verifier = NoteVerifier::ed25519(&origin, log_key)
        .map_err(|e| bad(format!("log key of {authority}: {e}")))?;
    let entries_raw: Vec<Vec<u8>> = bundle.entries.iter().map(|b| b.0.clone()).collect();
    let checkpoints: Vec<Vec<u8>> = bundle.checkpoints.iter().map(|b| b.0.clone()).collect();
    let report =
        verify_log(&entries_raw, &checkpoints, &verifier).map_err(|e| bad(e.to_string()))?;
    // verify_log decoded every entry already.
    let entries: Vec<Entry> = entries_raw
        .iter()
        .filter_map(|b| Entry::decode(b).ok())
        .collect();
    for (i, r) in bundle.receipts.iter().enumerate() {
        let n = i + 1;
        let v = open_receipt(&r.receipt, &roster)
            .map_err(|e| bad(format!("receipt {n} ({}): {e}", r.kind)))?;
        let rc = &v.receipt;
        let digest = receipt_digest(&r.receipt);
        let logged = |event: Event| {
            entries
                .iter()
                .any(|e| e.event == event && e.receipt_digest == Some(digest))
        };
        match (r.kind.as_str(), &rc.status) {
            ("issued", ReceiptStatus::Accepted) => {
                if &rc.receiver != authority {
                    return Err(bad(format!(
                        "receipt {n} was issued by {}, not {authority}",
                        rc.receiver
                    )));
                }
                let (Some(index), Some(leaf)) = (rc.log_index, rc.leaf_hash) else {
                    return Err(bad(format!("receipt {n} names no log entry")));
                };
                let entry = entries.get(index as usize).ok_or_else(|| {
                    bad(format!(
                        "receipt {n} names log entry {index}, which the log does not have"
                    ))
                })?;
                if entry.leaf_hash() != leaf
                    || entry.event != Event::Received
                    || entry.msg_id != rc.msg_id
                {
                    return Err(bad(format!(
                        "receipt {n} names log entry {index}, but that entry is not the arrival of message {}",
                        rc.msg_id.map(|m| m.to_string()).unwrap_or_default()
                    )));
                }
            }
            ("issued", ReceiptStatus::Rejected { .. }) => {
                if !logged(Event::Refused) {
                    return Err(bad(format!(
                        "rejection {n} issued by {authority} is not in its log"
                    )));
                }
            }
            ("held", status) => {
                if &rc.sender != authority {
                    return Err(bad(format!(
                        "held receipt {n} is for a message of {}, not {authority}",
                        rc.sender
                    )));
                }
                let event = match status {
                    ReceiptStatus::Accepted => Event::Delivered,
                    ReceiptStatus::Rejected { .. } => Event::Rejected,
                };
                if !logged(event) {
                    return Err(bad(format!(
                        "receipt {n} from {} (message {}) is not recorded in the log",
                        rc.receiver,
                        rc.msg_id.map(|m| m.to_string()).unwrap_or_default()
                    )));
                }
            }
            (other, _) => return Err(bad(format!("receipt {n} has unknown kind {other:?}"))),
        }
    }
    let newest = report
        .newest
        .map(|(size, root)| json!({"size": size, "root": root.to_string()}));
    let data = json!({
        "authority": authority.as_str(),
        "roster_version": roster.version(),
        "roster_sha256": roster.fingerprint(),
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "newest_checkpoint": newest,
        "entries_after_newest_checkpoint": report.uncovered,
        "receipts": bundle.receipts.len(),
        "verified": true,
    });
    if ctx.out.json {
        ctx.out.line("audit_verified", data);
    } else {
        ctx.out.text(format!(
            "audit log of {authority}: VERIFIED\n  roster      version {} (sha256 {}; compare it with the federation's published fingerprint)\n  entries     {} (every one decoded, in order)\n  checkpoints {} (signed by {authority}'s log key; roots recomputed){}\n  receipts    {} (signatures verified against the roster and matched to log entries)",
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
            bundle.receipts.len()
        ));
    }
    Ok(())
}
