//! What `kurir` prints: readable tables and timelines by default, JSON Lines
//! with `--json`.
//!
//! With `--json` every line on stdout is one JSON object
//! `{"type": "<type>", "data": {...}}`; `docs/CLI.md` lists the types and
//! their fields. Diagnostics go to stderr (with `--json`, an error is also a
//! JSON line there: `{"type":"error","data":{"exit":N,"message":"..."}}`).
//! Ids are text (message ids as hyphenated UUIDs), times are RFC 3339 UTC
//! text, dates `YYYY-MM-DD`.
//!
//! Text from other authorities (subjects, names, reasons, file names, free
//! text) never reaches the terminal raw: control characters (C0, DEL, C1)
//! and bidirectional-text controls are printed as escapes (`\x1b`,
//! `\u{202e}`; [`safe`], [`safe_multiline`]), so an escape sequence cannot
//! rewrite the "from" or "receipt" lines. Human output goes through
//! [`safe_multiline`] as a whole; one-line fields (table cells, reasons,
//! file names) through [`safe`], which escapes newlines too. JSON output
//! stays exact: serde escapes control characters in strings.

use std::io::Write;

use kurir_proto::Timestamp;
use kurir_proto::api::{CaseEvent, CaseView, Deadline, DeliveryStatus, Summary};
use serde_json::{Value, json};

/// Where data goes.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON Lines instead of text.
    pub json: bool,
}

impl Output {
    /// Prints one JSON line (in `--json` mode only).
    pub fn line(&self, kind: &str, data: Value) {
        if self.json {
            let line = jsonl(kind, &data);
            let mut out = std::io::stdout().lock();
            // A closed pipe (`kurir inbox --json | head`) is not an error worth a panic.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    /// Prints text (in human mode only), control and bidi characters
    /// escaped ([`safe_multiline`]).
    pub fn text(&self, text: impl std::fmt::Display) {
        if !self.json {
            let text = safe_multiline(&text.to_string());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

/// A diagnostic on stderr, control and bidi characters escaped.
pub fn note(text: impl std::fmt::Display) {
    eprintln!("{}", safe_multiline(&text.to_string()));
}

/// True for a character that must not reach a terminal raw: C0 controls,
/// DEL, C1 controls (ESC, CSI, OSC start sequences), and the bidirectional
/// controls that reorder what is shown (U+202A–U+202E, U+2066–U+2069,
/// U+200E, U+200F).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'
        )
}

fn escape_into(c: char, out: &mut String) {
    use std::fmt::Write as _;
    let n = u32::from(c);
    let _ = if n <= 0xFF {
        write!(out, "\\x{n:02x}")
    } else {
        write!(out, "\\u{{{n:x}}}")
    };
}

/// Foreign text for one line of human output: every unsafe character
/// ([`is_unsafe_char`]), newline and tab included, as an escape.
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe_char(c) {
            escape_into(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for human output that may span lines: as [`safe`], but newlines
/// and tabs are kept.
pub fn safe_multiline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe_char(c) && c != '\n' && c != '\t' {
            escape_into(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// One JSON line, `type` first.
pub fn jsonl(kind: &str, data: &Value) -> String {
    format!("{{\"type\":{},\"data\":{data}}}", Value::from(kind))
}

/// The error line `kurir` prints on stderr with `--json`.
pub fn error_line(exit: u8, message: &str) -> String {
    jsonl("error", &json!({ "exit": exit, "message": message }))
}

/// A time as RFC 3339 text.
pub fn time(t: Timestamp) -> String {
    t.to_string()
}

/// A time for tables: `2026-11-28 13:54:10Z`.
pub fn short_time(t: Timestamp) -> String {
    let s = t.to_string();
    // 2026-11-28T13:54:10.123Z
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(h)) => format!("{d} {h}Z"),
        _ => s,
    }
}

/// JSON of a message summary.
pub fn summary_json(s: &Summary) -> Value {
    json!({
        "msg_id": s.msg_id.to_string(),
        "kind": s.kind.as_str(),
        "from": s.from.as_str(),
        "to": s.to.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "case_id": s.case_id.as_ref().map(|c| c.as_str()),
        "in_reply_to": s.in_reply_to.map(|m| m.to_string()),
        "created_at": time(s.created_at),
        "stored_at": time(s.stored_at),
        "read_at": s.read_at.map(time),
    })
}

/// JSON of one delivery; `receipt` is what the client found checking the
/// receipt against the roster.
pub fn delivery_json(d: &DeliveryStatus, receipt: Value) -> Value {
    json!({
        "peer": d.peer.as_str(),
        "state": d.state,
        "attempts": d.attempts,
        "at": d.at.map(time),
        "reason": d.reason,
        "receipt": receipt,
    })
}

/// JSON of a deadline.
pub fn deadline_json(d: &Deadline) -> Value {
    json!({
        "case_id": d.case_id.as_str(),
        "kind": match d.kind {
            kurir_proto::api::DeadlineKind::Reply => "reply",
            kurir_proto::api::DeadlineKind::Transfer => "transfer",
        },
        "due": d.due.to_string(),
        "party": d.party.as_str(),
        "counterpart": d.counterpart.as_str(),
        "days_left": d.days_left,
        "overdue": d.overdue,
    })
}

/// JSON of a case event.
pub fn event_json(e: &CaseEvent) -> Value {
    json!({ "at": time(e.at), "what": e.what })
}

/// JSON of a case.
pub fn case_json(c: &CaseView) -> Value {
    json!({
        "case_id": c.case_id.as_str(),
        "requesting": c.requesting.as_str(),
        "requested": c.requested.as_str(),
        "procedure": c.procedure.as_str(),
        "state": c.state.as_str(),
        "reply_due": c.reply_due.map(|d| d.to_string()),
        "extension_days": c.extension_days,
        "transfer_due": c.transfer_due.map(|d| d.to_string()),
        "messages": c.messages.iter().map(summary_json).collect::<Vec<_>>(),
        "events": c.events.iter().map(event_json).collect::<Vec<_>>(),
    })
}

/// A plain text table: a header row and rows, columns padded to fit.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| safe(c)).collect())
        .collect();
    let rows = rows.as_slice();
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let fmt_row = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = width[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        line.trim_end().to_owned()
    };
    let mut out = vec![fmt_row(header.to_vec())];
    for r in rows {
        out.push(fmt_row(r.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// Renders a JSON value as indented `key: value` lines, for message bodies.
pub fn render_value(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) => {
                        out.push_str(&format!("{pad}{}:\n", safe(k)));
                        render_value(v, indent + 1, out);
                    }
                    Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                        out.push_str(&format!("{pad}{}:\n", safe(k)));
                        for (n, item) in items.iter().enumerate() {
                            out.push_str(&format!("{pad}  [{}]\n", n + 1));
                            render_value(item, indent + 2, out);
                        }
                    }
                    other => out.push_str(&format!(
                        "{pad}{}: {}\n",
                        safe(k),
                        continued(&scalar(other), &pad)
                    )),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", continued(&scalar(other), &pad))),
    }
}

/// Free text over several lines, each continuation indented under its
/// field (so a line of foreign text cannot pass for a line of ours), every
/// other unsafe character escaped.
fn continued(text: &str, pad: &str) -> String {
    text.split('\n')
        .map(safe)
        .collect::<Vec<_>>()
        .join(&format!("\n{pad}    "))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::api::{CaseState, DeadlineKind};
    use kurir_proto::message::{MessageKind, Procedure};
    use kurir_proto::{AuthorityId, CaseId, Date, MessageId};

    fn summary() -> Summary {
        Summary {
            msg_id: MessageId::new_v7(1_795_874_050_000, [1; 10]),
            kind: MessageKind::ReadmissionRequest,
            from: AuthorityId::parse("RS.MUP").unwrap(),
            to: vec![AuthorityId::parse("BA.SPS").unwrap()],
            case_id: Some(CaseId::parse("RS.MUP:2026-000123").unwrap()),
            in_reply_to: None,
            created_at: Timestamp(1_795_874_050_000),
            stored_at: Timestamp(1_795_874_050_123),
            read_at: None,
        }
    }

    #[test]
    fn summaries_are_text_ids_and_rfc3339_times() {
        let v = summary_json(&summary());
        assert_eq!(v["kind"], "readmission-request");
        assert_eq!(v["from"], "RS.MUP");
        assert_eq!(v["to"], json!(["BA.SPS"]));
        assert_eq!(v["case_id"], "RS.MUP:2026-000123");
        assert_eq!(v["created_at"], "2026-11-28T13:54:10.000Z");
        assert_eq!(v["read_at"], Value::Null);
        let id = v["msg_id"].as_str().unwrap();
        assert_eq!(MessageId::parse(id).unwrap(), summary().msg_id);
    }

    #[test]
    fn every_line_has_type_and_data() {
        let line = error_line(4, "refused \"x\"");
        assert!(line.starts_with("{\"type\":\"error\",\"data\":"), "{line}");
        let e: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["type"], "error");
        assert_eq!(e["data"]["exit"], 4);
        assert_eq!(e["data"]["message"], "refused \"x\"");
        let case = CaseView {
            case_id: CaseId::parse("RS.MUP:2026-000123").unwrap(),
            requesting: AuthorityId::parse("RS.MUP").unwrap(),
            requested: AuthorityId::parse("BA.SPS").unwrap(),
            procedure: Procedure::Standard,
            state: CaseState::DeemedAccepted,
            reply_due: Some(Date::parse("2026-12-08").unwrap()),
            extension_days: 0,
            transfer_due: None,
            messages: vec![summary()],
            events: vec![CaseEvent {
                at: Timestamp(0),
                what: "request received".into(),
            }],
        };
        let v = case_json(&case);
        assert_eq!(v["state"], "deemed_accepted");
        assert_eq!(v["reply_due"], "2026-12-08");
        assert_eq!(v["messages"][0]["kind"], "readmission-request");
        assert_eq!(v["events"][0]["at"], "1970-01-01T00:00:00.000Z");
        let d = deadline_json(&Deadline {
            case_id: case.case_id.clone(),
            kind: DeadlineKind::Reply,
            due: Date::parse("2026-12-08").unwrap(),
            party: case.requested.clone(),
            counterpart: case.requesting.clone(),
            days_left: -1,
            overdue: true,
        });
        assert_eq!(d["kind"], "reply");
        assert_eq!(d["overdue"], true);
        assert_eq!(d["days_left"], -1);
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let hostile =
            "Joint patrol\x1b]8;;http://x\x07\x1b[2K\rfrom RS.MUP\u{202e}exe.pdf\u{7f}\u{9b}";
        let one = safe(hostile);
        assert_eq!(
            one,
            "Joint patrol\\x1b]8;;http://x\\x07\\x1b[2K\\x0dfrom RS.MUP\\u{202e}exe.pdf\\x7f\\x9b"
        );
        assert!(!one.chars().any(is_unsafe_char), "{one}");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\0', '\x1b', '\x7f', '\u{80}',
            '\u{9f}',
        ] {
            assert!(is_unsafe_char(c), "{c:?}");
            assert!(!safe(&c.to_string()).chars().any(is_unsafe_char));
        }
        // Ordinary text, accents and Cyrillic pass unchanged.
        assert_eq!(safe("Horgoš – Хоргош 06:00"), "Horgoš – Хоргош 06:00");
        // A line break: escaped on one line, kept (tabs too) over several.
        assert_eq!(safe("a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(safe_multiline("a\nb\tc\x1b"), "a\nb\tc\\x1b");
        // Table cells are one line; body text continues under its field.
        assert_eq!(
            table(&["A", "B"], &[vec!["x\ny".into(), "\x1b[31m".into()]]),
            "A       B\nx\\x0ay  \\x1b[31m"
        );
        let mut s = String::new();
        render_value(
            &json!({"text": "line 1\nfrom: RS.MUP (verified)"}),
            1,
            &mut s,
        );
        assert_eq!(s, "  text: line 1\n      from: RS.MUP (verified)\n");
    }

    #[test]
    fn tables_and_bodies_read_well() {
        let t = table(
            &["ID", "KIND"],
            &[
                vec!["1".into(), "notice".into()],
                vec!["22".into(), "x".into()],
            ],
        );
        assert_eq!(t, "ID  KIND\n1   notice\n22  x");
        let mut s = String::new();
        render_value(
            &json!({"person": {"surname": "X", "aliases": ["a", "b"]}, "note": null}),
            0,
            &mut s,
        );
        assert_eq!(s, "note: -\nperson:\n  aliases: a, b\n  surname: X\n");
        assert_eq!(
            short_time(Timestamp(1_795_874_050_123)),
            "2026-11-28 13:54:10Z"
        );
    }
}
