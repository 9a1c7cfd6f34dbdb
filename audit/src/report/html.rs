//! The report as one HTML file that needs nothing else: styles inline, no
//! script, no font, image or link to fetch (a Content-Security-Policy of
//! `default-src 'none'` says so to the browser too), and print styles for
//! A4. Every string from a log is escaped, with control and bidi characters
//! shown as `\u{…}`, so a log cannot change what the page says.
//!
//! Elements the tests read carry `id`s and `data-` attributes: the verdict
//! (`#verdict`, `data-verdict`), each case (`data-case`, `data-reply`,
//! `data-transfer`, `data-silence`), each matrix cell (`data-from`,
//! `data-to`).

use std::fmt::Write as _;

use kurir_proto::Timestamp;

use super::chart::per_day_svg;
use super::{
    CaseView, DeadlineState, PairView, ReadView, RefusalView, Report, RosterView, Traffic,
};
use crate::silence::{EntryRef, Silence};

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10.5pt;
       color: #111; margin: 2em auto; max-width: 60em; line-height: 1.4; }
h1 { font-size: 18pt; margin-bottom: 0.2em; }
h2 { font-size: 14pt; border-bottom: 1px solid #888; margin-top: 1.6em; }
h3 { font-size: 11.5pt; margin-bottom: 0.3em; }
table { border-collapse: collapse; width: 100%; margin: 0.4em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.4em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 9pt;
              word-break: break-all; }
.verdict { padding: 0.6em 0.8em; border: 2px solid; font-weight: bold; font-size: 12pt; }
.verdict.ok { border-color: #1a7f37; background: #e6f4ea; }
.verdict.bad { border-color: #b42318; background: #fdecea; }
.failure { border-left: 4px solid #b42318; padding-left: 0.6em; }
.state { display: inline-block; padding: 0 0.4em; border-radius: 0.3em; font-weight: bold; }
.state.met { background: #e6f4ea; color: #1a7f37; }
.state.deemed_accepted, .state.missed { background: #fdecea; color: #b42318; }
.state.open, .state.not_started { background: #f1f1f1; color: #444; }
.proof { border: 1px solid #888; padding: 0.4em 0.8em; margin: 0.4em 0 1em; background: #fafafa; }
.proof.holds { border-color: #1a7f37; }
.muted { color: #555; }
.case { break-inside: avoid; }
@page { size: A4; margin: 15mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  h2 { break-before: page; }
  h2.first { break-before: avoid; }
  tr, .proof { break-inside: avoid; }
}
"#;

/// The report as a complete HTML document.
pub fn html(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n",
    );
    let _ = writeln!(
        o,
        "<title>kurir audit report, {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        time(r.generated_at)
    );
    header(&mut o, r);
    bundles(&mut o, r);
    if let Some(roster) = &r.roster {
        roster_section(&mut o, roster);
    }
    cases(&mut o, &r.cases);
    traffic(&mut o, &r.traffic);
    refusals(&mut o, &r.refusals);
    reads(&mut o, &r.reads);
    findings(&mut o, &r.pairs);
    o.push_str(
        "<p class=\"muted\">This report holds what the audit logs hold: message and case ids, \
         digests, kinds, authorities, times and officer certificate serials. It holds no \
         message body.</p>\n</body>\n</html>\n",
    );
    o
}

fn header(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<h1>kurir audit report</h1>\n<p>Made {} from {} bundle(s). Anchor: {}.</p>",
        time(r.generated_at),
        r.bundles.len() + r.failed.len(),
        text(&r.anchor)
    );
    let bad_pairs: Vec<&PairView> = r.pairs.iter().filter(|p| !p.reconciled).collect();
    if r.verified() {
        let _ = writeln!(
            o,
            "<p id=\"verdict\" class=\"verdict ok\" data-verdict=\"verified\">VERIFIED: every \
             bundle verified offline (entries, checkpoints, cosignatures, receipts, envelopes \
             against the roster){}.</p>",
            if r.pairs.is_empty() {
                String::new()
            } else {
                format!(" and {} pair(s) of logs reconciled", r.pairs.len())
            }
        );
    } else {
        let _ = writeln!(
            o,
            "<p id=\"verdict\" class=\"verdict bad\" data-verdict=\"not-verified\">NOT \
             VERIFIED: {} bundle(s) failed verification, {} pair(s) of logs do not \
             reconcile. What failed is listed here; nothing else in this report comes from a \
             bundle that failed.</p>",
            r.failed.len(),
            bad_pairs.len()
        );
        for f in &r.failed {
            let _ = writeln!(
                o,
                "<p class=\"failure\" data-failed=\"{}\"><b>{}</b>: {}</p>",
                attr(&f.path.display().to_string()),
                text(&f.path.display().to_string()),
                text(&f.error)
            );
        }
        for p in bad_pairs {
            let _ = writeln!(
                o,
                "<p class=\"failure\">The logs of {} and {} do not reconcile: {} finding(s), \
                 listed under Reconciliation.</p>",
                text(p.a.as_str()),
                text(p.b.as_str()),
                p.findings.iter().filter(|(f, _)| f.kind.is_error()).count()
            );
        }
    }
}

fn bundles(o: &mut String, r: &Report) {
    o.push_str("<h2 class=\"first\">Bundles: who exported what, and when</h2>\n");
    o.push_str(
        "<table><tr><th>authority</th><th>exported</th><th class=\"n\">entries</th>\
         <th>newest checkpoint</th><th>newest cosigned checkpoint</th>\
         <th class=\"n\">receipts</th><th class=\"n\">envelopes</th><th>roster</th></tr>\n",
    );
    for b in &r.bundles {
        let newest = match b.newest {
            Some((size, root)) => format!(
                "size {size}, root <code title=\"{root}\">{}…</code>{}",
                root.to_string().get(..16).unwrap_or_default(),
                if b.uncovered > 0 {
                    format!("; {} later entries not yet covered", b.uncovered)
                } else {
                    String::new()
                }
            ),
            None => "none".to_owned(),
        };
        let cosigned = match &b.newest_cosigned {
            Some((size, by)) => format!(
                "size {size}, by {}",
                by.iter()
                    .map(|(who, secs)| format!(
                        "{} at {}",
                        text(who.as_str()),
                        time(secs_time(*secs))
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "none: no peer has cosigned a checkpoint of this log".to_owned(),
        };
        let _ = writeln!(
            o,
            "<tr data-bundle=\"{}\"><td><b>{}</b><br><span class=\"mono\">{}</span></td>\
             <td>{}</td><td class=\"n\">{}</td><td>{newest}</td><td>{cosigned}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            attr(b.authority.as_str()),
            text(b.authority.as_str()),
            text(&b.path.display().to_string()),
            time(b.exported_at),
            b.entries,
            b.receipts,
            b.envelopes,
            text(&b.anchored)
        );
    }
    o.push_str("</table>\n");
}

fn roster_section(o: &mut String, r: &RosterView) {
    let _ = writeln!(
        o,
        "<h2>Roster</h2>\n<p>Version {}, issued {}, signed by {} of {} roster keys. SHA-256 \
         fingerprint <code>{}</code>: compare it with the one the federation publishes.</p>",
        r.version,
        time(r.issued_at),
        r.threshold,
        r.keys,
        text(&r.fingerprint)
    );
    o.push_str(
        "<table><tr><th>member</th><th>name</th><th class=\"n\">message kinds accepted</th>\
         <th class=\"n\">focal points</th></tr>\n",
    );
    for (id, name, kinds, focal) in &r.members {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{kinds}</td><td class=\"n\">{focal}</td></tr>",
            text(id.as_str()),
            text(name)
        );
    }
    o.push_str("</table>\n");
}

fn state(s: &DeadlineState) -> String {
    let words = match s {
        DeadlineState::Met { at } => format!("met ({})", time(*at)),
        DeadlineState::DeemedAccepted { at, late_reply } => format!(
            "deemed accepted ({}){}",
            time(*at),
            late_reply.map_or(String::new(), |r| format!(
                "; a reply came later, {}",
                time(r)
            ))
        ),
        DeadlineState::Missed { at } => format!("missed: overdue since {}", time(*at)),
        DeadlineState::Open => "open".to_owned(),
        DeadlineState::NotStarted => "not started".to_owned(),
    };
    format!("<span class=\"state {}\">{}</span>", s.code(), text(&words))
}

fn cases(o: &mut String, cases: &[CaseView]) {
    let _ = writeln!(
        o,
        "<h2>Readmission cases</h2>\n<p>{} case(s). A deadline is <b>met</b> when the answer \
         came before any readmission clock fired, <b>deemed accepted</b> when a clock found \
         no reply by the due date, <b>missed</b> when a clock found the transfer overdue. The \
         due dates follow from the agreement between the two authorities and are not in the \
         logs; the logs record when each clock fired.</p>",
        cases.len()
    );
    for c in cases {
        let silence = match &c.silence {
            None => "none",
            Some(Ok(_)) => "holds",
            Some(Err(_)) => "not-proven",
        };
        let _ = writeln!(
            o,
            "<div class=\"case\" data-case=\"{}\" data-reply=\"{}\" data-transfer=\"{}\" \
             data-silence=\"{silence}\">\n<h3>Case {}: {} asked {}</h3>\n<p>Reply: {} \
             &nbsp; Transfer: {}</p>",
            attr(c.case_id.as_str()),
            c.reply.code(),
            c.transfer.code(),
            text(c.case_id.as_str()),
            text(c.requesting.as_str()),
            c.requested
                .as_ref()
                .map_or("(request not in these logs)".to_owned(), |r| text(
                    r.as_str()
                )),
            state(&c.reply),
            state(&c.transfer)
        );
        o.push_str("<table><tr><th>time</th><th>what</th><th>entry</th></tr>\n");
        for e in &c.events {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(e.entry.at),
                text(&e.text),
                entry(&e.entry)
            );
        }
        o.push_str("</table>\n");
        match &c.silence {
            Some(Ok(p)) => proof(o, p),
            Some(Err(e)) => {
                let _ = writeln!(
                    o,
                    "<div class=\"proof\"><b>Proof of silence: not made.</b> {}</div>",
                    text(&e.to_string())
                );
            }
            None => {}
        }
        o.push_str("</div>\n");
    }
}

fn proof(o: &mut String, p: &Silence) {
    let cosigners = p
        .checkpoint
        .cosigners
        .iter()
        .map(|(who, secs)| format!("{} at {}", text(who.as_str()), time(secs_time(*secs))))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        o,
        "<div class=\"proof holds\"><b>Proof of silence: holds.</b> {requested} sent nothing \
         in case {case} before {requesting} deemed the request accepted at {t}.\n<ul>\n\
         <li>{requesting} sent the request: {sent}.</li>\n{delivered}\
         <li>{requested} received it: {received}.</li>\n\
         <li>{requesting}'s readmission clock found no reply by the due date: {deemed}.</li>\n\
         {own}<li>{requested}'s checkpoint of size {size} (root <code>{root}</code>) covers \
         its log up to its first entry dated after that moment ({first}), and was cosigned \
         after it by {cosigners}: that part of its log cannot change without contradicting \
         them.</li>\n<li>None of its {size} entries dated before {t} is a message {requested} \
         sent in case {case}.</li>\n{late}{ooo}</ul></div>",
        requested = text(p.requested.as_str()),
        requesting = text(p.requesting.as_str()),
        case = text(p.case_id.as_str()),
        t = time(p.deemed.at),
        sent = entry(&p.request_sent),
        delivered = p
            .request_delivered
            .as_ref()
            .map_or(String::new(), |d| format!(
                "<li>{} holds {}'s signed receipt for it: {}.</li>\n",
                text(p.requesting.as_str()),
                text(p.requested.as_str()),
                entry(d)
            )),
        received = entry(&p.request_received),
        deemed = entry(&p.deemed),
        own = p
            .requested_deemed
            .as_ref()
            .map_or(String::new(), |d| format!(
                "<li>{}'s own clock found the same: {}.</li>\n",
                text(p.requested.as_str()),
                entry(d)
            )),
        size = p.checkpoint.size,
        root = p.checkpoint.root,
        first = entry(&p.first_after),
        late = if p.late.is_empty() {
            String::new()
        } else {
            format!(
                "<li>Sent later, after the request was deemed accepted: {}.</li>\n",
                p.late
                    .iter()
                    .map(|(e, kind)| format!("{kind} ({})", entry(e)))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
        ooo = if p.out_of_order.is_empty() {
            String::new()
        } else {
            format!(
                "<li>Out of time order (written after an entry dated after {}, yet dated \
                 before it): {}.</li>\n",
                time(p.deemed.at),
                p.out_of_order
                    .iter()
                    .map(entry)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    );
}

fn traffic(o: &mut String, t: &Traffic) {
    let _ = writeln!(
        o,
        "<h2>Traffic between authorities</h2>\n<p>{} message(s), each counted once per \
         recipient, from the sender's log or the recipient's. Rows: from; columns: to.</p>",
        t.total()
    );
    o.push_str("<table id=\"matrix\"><tr><th>from \\ to</th>");
    for a in &t.authorities {
        let _ = write!(o, "<th>{}</th>", text(a.as_str()));
    }
    o.push_str("</tr>\n");
    for from in &t.authorities {
        let _ = write!(o, "<tr><th>{}</th>", text(from.as_str()));
        for to in &t.authorities {
            let n = t
                .matrix
                .get(&(from.clone(), to.clone()))
                .copied()
                .unwrap_or(0);
            let _ = write!(
                o,
                "<td class=\"n\" data-from=\"{}\" data-to=\"{}\">{n}</td>",
                attr(from.as_str()),
                attr(to.as_str())
            );
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n<h3>Messages per day (UTC)</h3>\n");
    o.push_str(&per_day_svg(&t.per_day));
}

fn refusals(o: &mut String, rows: &[RefusalView]) {
    let _ = writeln!(
        o,
        "<h2>Refusals and rejections</h2>\n<p>{} entr{}.</p>",
        rows.len(),
        if rows.len() == 1 { "y" } else { "ies" }
    );
    if rows.is_empty() {
        return;
    }
    o.push_str(
        "<table><tr><th>time</th><th>what</th><th>message</th><th>reason</th><th>entry</th></tr>\n",
    );
    for r in rows {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
            time(r.entry.at),
            text(&r.what),
            r.msg_id.map_or("-".to_owned(), |m| m.to_string()),
            text(&r.reason),
            entry(&r.entry)
        );
    }
    o.push_str("</table>\n");
}

fn reads(o: &mut String, rows: &[ReadView]) {
    let _ = writeln!(
        o,
        "<h2>Reads of personal data</h2>\n<p>{} entr{} recorded: every message body an officer \
         was given or refused, and every message marked read, by officer certificate.</p>",
        rows.len(),
        if rows.len() == 1 { "y" } else { "ies" }
    );
    if rows.is_empty() {
        return;
    }
    o.push_str("<table><tr><th>time</th><th>authority</th><th>message</th><th>officer</th><th>certificate serial</th><th>what</th><th>entry</th></tr>\n");
    for r in rows {
        let reader = r.reader.as_ref().map_or("-".to_owned(), |(name, role)| {
            format!("{} ({})", text(name), text(role))
        });
        let _ = writeln!(
            o,
            "<tr class=\"read\"><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{reader}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            time(r.entry.at),
            text(r.entry.authority.as_str()),
            r.msg_id,
            text(&r.officer),
            text(&r.what),
            entry(&r.entry)
        );
    }
    o.push_str("</table>\n");
}

fn findings(o: &mut String, pairs: &[PairView]) {
    o.push_str("<h2>Reconciliation</h2>\n");
    if pairs.is_empty() {
        o.push_str("<p>One bundle given: nothing to reconcile it with.</p>\n");
        return;
    }
    o.push_str(
        "<table><tr><th>logs</th><th>sent → matched</th><th>sent ← matched</th><th>result</th></tr>\n",
    );
    for p in pairs {
        let errors = p.findings.iter().filter(|(f, _)| f.kind.is_error()).count();
        let _ = writeln!(
            o,
            "<tr data-pair=\"{}-{}\"><td>{} and {}</td><td class=\"n\">{} → {}</td>\
             <td class=\"n\">{} ← {}</td><td>{}</td></tr>",
            attr(p.a.as_str()),
            attr(p.b.as_str()),
            text(p.a.as_str()),
            text(p.b.as_str()),
            p.a_to_b.sent,
            p.a_to_b.matched,
            p.b_to_a.sent,
            p.b_to_a.matched,
            if p.reconciled {
                format!(
                    "reconciled{}",
                    if p.findings.is_empty() {
                        String::new()
                    } else {
                        format!(", {} pending", p.findings.len())
                    }
                )
            } else {
                format!("<b>{errors} finding(s)</b>")
            }
        );
    }
    o.push_str("</table>\n");
    for p in pairs.iter().filter(|p| !p.findings.is_empty()) {
        let _ = writeln!(
            o,
            "<h3>{} and {}</h3>\n<table><tr><th>kind</th><th>finding</th><th>entries</th></tr>",
            text(p.a.as_str()),
            text(p.b.as_str())
        );
        for (f, entries) in &p.findings {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.kind,
                text(&f.to_string()),
                entries.iter().map(entry).collect::<Vec<_>>().join("<br>")
            );
        }
        o.push_str("</table>\n");
    }
}

/// An entry as the report names it: whose log, index, leaf hash.
fn entry(e: &EntryRef) -> String {
    format!(
        "{} #{} <code title=\"leaf hash\">{}</code>",
        text(e.authority.as_str()),
        e.index,
        e.leaf
    )
}

fn time(t: Timestamp) -> String {
    let s = t.to_string();
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(h)) => format!("{d} {h}Z"),
        _ => s,
    }
}

/// A cosignature's time (Unix seconds).
fn secs_time(secs: u64) -> Timestamp {
    Timestamp(secs.saturating_mul(1000))
}

/// Text for the page: HTML escaped, with control and bidi characters shown
/// as `\u{…}` so that no log string can reorder or hide what is around it.
pub(super) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// An attribute value (the same escaping).
fn attr(s: &str) -> String {
    text(s)
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
