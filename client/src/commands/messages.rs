//! `kurir inbox`, `kurir show` and `kurir status`.

use std::time::{Duration, Instant};

use anyhow::Result;
use kurir_proto::api::{DeliveryStatus, Request, Response, Summary};
use kurir_proto::message::{Attachment, Message, MessageKind};
use kurir_proto::{MessageId, ReceiptStatus, open_receipt};
use serde_json::{Value, json};

use super::{Ctx, Session, case_id, message_id, unexpected};
use crate::cli::{InboxArgs, ShowArgs, StatusArgs};
use crate::exit::{Exit, fail, usage};
use crate::fetch::{FetchError, Fetched};
use crate::files;
use crate::output::{self, short_time, summary_json};

/// `kurir inbox`
pub async fn inbox(ctx: &Ctx, s: &Session, a: InboxArgs) -> Result<()> {
    let kind = a
        .kind
        .as_deref()
        .map(|k| k.parse::<MessageKind>().map_err(|e| usage(e.to_string())))
        .transpose()?;
    let case = a.case.as_deref().map(case_id).transpose()?;
    let request = if a.sent {
        Request::Sent
    } else {
        Request::Inbox {
            unread_only: a.unread,
            kind,
            case_id: case.clone(),
        }
    };
    let Response::List { items } = s.call(&request).await? else {
        return Err(fail(Exit::Internal, "the relay answered without a list"));
    };
    // The sent list has no filters at the relay.
    let items: Vec<Summary> = items
        .into_iter()
        .filter(|m| kind.is_none_or(|k| m.kind == k))
        .filter(|m| case.as_ref().is_none_or(|c| m.case_id.as_ref() == Some(c)))
        .collect();
    for m in &items {
        ctx.out.line("message", summary_json(m));
    }
    if items.is_empty() {
        ctx.out.text(if a.sent {
            "no sent messages"
        } else {
            "no messages"
        });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            let mut row = vec![
                m.msg_id.to_string(),
                short_time(m.created_at),
                m.kind.as_str().to_owned(),
                if a.sent {
                    m.to.iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    m.from.to_string()
                },
                m.case_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            ];
            if !a.sent {
                let mark = if m.read_at.is_none() { "*" } else { "" };
                row.insert(0, mark.to_owned());
            }
            row
        })
        .collect();
    let header: &[&str] = if a.sent {
        &["ID", "CREATED", "KIND", "TO", "CASE"]
    } else {
        &["", "ID", "CREATED", "KIND", "FROM", "CASE"]
    };
    ctx.out.text(output::table(header, &rows));
    if !a.sent {
        ctx.out.text("(* unread; `kurir show ID` opens one)");
    }
    Ok(())
}

/// Fetches a message and verifies it against the profile's roster
/// ([`Client::fetch_verified`](crate::Client::fetch_verified)), with the
/// failures mapped to the CLI's exit codes and advice.
pub async fn fetch_verified(s: &Session, msg_id: MessageId) -> Result<Fetched> {
    fetch_checked(s, msg_id, false).await
}

/// [`fetch_verified`], or with `envelope_only` the envelope alone
/// ([`Client::fetch_envelope_verified`](crate::Client::fetch_envelope_verified)).
async fn fetch_checked(s: &Session, msg_id: MessageId, envelope_only: bool) -> Result<Fetched> {
    let client = s.client().await?;
    let fetched = if envelope_only {
        client.fetch_envelope_verified(&s.roster, msg_id).await
    } else {
        client.fetch_verified(&s.roster, msg_id).await
    };
    fetched.map_err(|e| match e {
        FetchError::Client(e) => super::connection_failure(&s.profile, &e.to_string()),
        FetchError::Refused(response) => match super::relay_refusal(*response) {
            Ok(_) => fail(Exit::Internal, "the relay answered without the message"),
            Err(e) => e,
        },
        FetchError::DoesNotVerify { msg_id, source } => fail(
            Exit::Rejected,
            format!(
                "message {msg_id} does NOT verify against the roster {}: {source}. Do not \
                     act on it; tell your relay's admin",
                s.profile.roster.display()
            ),
        ),
        e => fail(Exit::Internal, e.to_string()),
    })
}

/// The body as JSON, attachments shown by name, type and size.
pub fn body_json(message: &Message) -> Value {
    let v = match message {
        Message::OperationalNotice(m) => serde_json::to_value(m),
        Message::ReadmissionRequest(m) => serde_json::to_value(m),
        Message::ReadmissionReply(m) => serde_json::to_value(m),
        Message::DeadlineExtensionRequest(m) => serde_json::to_value(m),
        Message::DeadlineExtensionDecision(m) => serde_json::to_value(m),
        Message::TransferArrangement(m) => serde_json::to_value(m),
        Message::HandoverConfirmation(m) => serde_json::to_value(m),
        Message::DataProtectionNotice(m) => Ok(json!({
            "concerns": m.concerns.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "action": m.action,
            "details": m.details,
        })),
    };
    let mut v = v.unwrap_or(Value::Null);
    strip_attachment_bytes(&mut v);
    if let Message::HandoverConfirmation(h) = message
        && let Some(o) = v.as_object_mut()
    {
        o.insert(
            "handed_over_at".into(),
            Value::String(output::time(h.handed_over_at)),
        );
    }
    v
}

/// Replaces `data` (bytes) of attachment objects by `size`.
fn strip_attachment_bytes(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("media_type")
                && let Some(Value::Array(bytes)) = map.remove("data")
            {
                map.insert("size".into(), Value::from(bytes.len()));
            }
            for child in map.values_mut() {
                strip_attachment_bytes(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_attachment_bytes),
        _ => {}
    }
}

/// Every attachment of a body, in order.
pub fn attachments(message: &Message) -> Vec<&Attachment> {
    match message {
        Message::OperationalNotice(m) => m.attachments.iter().collect(),
        Message::ReadmissionRequest(r) => r
            .documents
            .iter()
            .filter_map(|d| d.copy.as_ref())
            .chain(r.evidence.iter().filter_map(|e| e.attachment.as_ref()))
            .collect(),
        _ => vec![],
    }
}

fn receipt_json(s: &Session, bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else {
        return Value::Null;
    };
    match open_receipt(bytes, &s.roster) {
        Ok(r) => {
            let (status, reason) = match &r.receipt.status {
                ReceiptStatus::Accepted => ("accepted", None),
                ReceiptStatus::Rejected { reason, detail } => (
                    "rejected",
                    Some(match detail {
                        Some(d) => format!("{}: {d}", reason.as_str()),
                        None => reason.as_str().to_owned(),
                    }),
                ),
            };
            json!({
                "verified": true,
                "signer": r.receipt.receiver.as_str(),
                "kid": r.kid.to_string(),
                "status": status,
                "reason": reason,
                "received_at": output::time(r.receipt.received_at),
                "log_index": r.receipt.log_index,
            })
        }
        Err(e) => json!({ "verified": false, "error": e.to_string() }),
    }
}

/// The inclusion proof of a delivery's receipt, checked against the
/// recipient's log key: `null` while there is none.
fn inclusion_json(s: &Session, d: &DeliveryStatus) -> Value {
    let (Some(proof), Some(receipt)) = (&d.inclusion, &d.receipt) else {
        return Value::Null;
    };
    let check = || -> std::result::Result<(u64, u64), String> {
        let proof = kurir_proto::audit::InclusionProof::decode(proof).map_err(|e| e.to_string())?;
        let r = open_receipt(receipt, &s.roster)
            .map_err(|e| e.to_string())?
            .receipt;
        let leaf = r.leaf_hash.ok_or("the receipt names no log entry")?;
        if r.log_index != Some(proof.index) {
            return Err(format!("the proof is for another entry ({})", proof.index));
        }
        let key = s
            .roster
            .log_key(&r.receiver)
            .ok_or_else(|| format!("the roster lists no log key for {}", r.receiver))?;
        let log = kurir_proto::checkpoint::NoteVerifier::ed25519(
            &kurir_proto::audit::log_origin(&r.receiver),
            key,
        )
        .map_err(|e| e.to_string())?;
        let size = proof.verify(&leaf, &log).map_err(|e| e.to_string())?;
        Ok((proof.index, size))
    };
    match check() {
        Ok((index, size)) => json!({"verified": true, "index": index, "checkpoint_size": size}),
        Err(e) => json!({"verified": false, "error": e}),
    }
}

fn inclusion_text(peer: &str, v: &Value) -> String {
    match v.get("verified").and_then(Value::as_bool) {
        None => format!("not yet proven (no checkpoint of {peer} covers its entry yet)"),
        Some(false) => format!(
            "PROOF DOES NOT VERIFY: {}",
            v["error"].as_str().unwrap_or("unknown error")
        ),
        Some(true) => format!(
            "entry {} of {peer}'s audit log, proven in its signed checkpoint of size {}",
            v["index"], v["checkpoint_size"]
        ),
    }
}

fn receipt_text(v: &Value) -> String {
    match v.get("verified").and_then(Value::as_bool) {
        None => "none".to_owned(),
        Some(false) => format!(
            "DOES NOT VERIFY: {}",
            output::safe(v["error"].as_str().unwrap_or("unknown error"))
        ),
        Some(true) => format!(
            "{} by {} at {}, signed with key {} (verified against the roster)",
            v["status"].as_str().unwrap_or("?"),
            v["signer"].as_str().unwrap_or("?"),
            v["received_at"].as_str().unwrap_or("?"),
            v["kid"].as_str().unwrap_or("?"),
        ),
    }
}

/// `kurir show ID`
pub async fn show(ctx: &Ctx, s: &Session, a: ShowArgs) -> Result<()> {
    let msg_id = message_id(&a.id)?;
    let f = fetch_checked(s, msg_id, a.envelope).await?;
    let h = &f.header;
    let received = h.from != s.profile.authority;
    let receipt = receipt_json(s, f.receipt.as_deref());
    let body = match (&f.message, &f.erased) {
        (Some(m), _) => body_json(m),
        (None, Some(e)) => json!({"erased_at": output::time(e.at), "erased_under": e.policy}),
        (None, None) if f.envelope_only => json!({"not_fetched": "envelope only"}),
        (None, None) => Value::Null,
    };
    let all_attachments = f.message.as_ref().map(attachments).unwrap_or_default();
    let mut saved = Vec::new();
    if let Some(dir) = &a.save_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
        for att in &all_attachments {
            let path = files::save_new(dir, &att.name, &att.data)?;
            saved.push((att, path));
        }
    }
    let mut read_at = f.summary.read_at;
    // An envelope is no read of the message.
    if received && !a.no_mark_read && !f.envelope_only && read_at.is_none() {
        match s.call_raw(&Request::MarkRead { msg_id }).await? {
            Response::Marked { read_at: at, .. } => read_at = Some(at),
            Response::Error { message, .. } => {
                output::note(format!("note: not marked read: {message}"));
            }
            other => return Err(unexpected(&other)),
        }
    }
    let mut summary = summary_json(&f.summary);
    if let Some(o) = summary.as_object_mut() {
        o.insert("read_at".into(), json!(read_at.map(output::time)));
    }
    ctx.out.line(
        "message",
        json!({
            "summary": summary,
            "header": {
                "id": h.id.to_string(),
                "kind": h.kind.as_str(),
                "from": h.from.as_str(),
                "to": h.to.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                "created_at": output::time(h.created_at),
                "expires_at": output::time(h.expires_at),
                "case_id": h.case_id.as_ref().map(|c| c.as_str()),
                "in_reply_to": h.in_reply_to.map(|m| m.to_string()),
                "procedure": h.procedure.map(|p| p.as_str()),
                "handling": h.handling.as_str(),
                "legal_basis": h.legal_basis,
            },
            "signature": {
                "verified": true,
                "signer": h.from.as_str(),
                "kid": f.kid.to_string(),
                "envelope_digest": hex_digest(&f.envelope_digest.0),
            },
            "body": body,
            "receipt": receipt,
        }),
    );
    for (att, path) in &saved {
        ctx.out.line(
            "saved",
            json!({
                "name": att.name,
                "media_type": att.media_type,
                "size": att.data.len(),
                "path": path.display().to_string(),
            }),
        );
    }
    if ctx.out.json {
        return Ok(());
    }
    let mut t = String::new();
    t.push_str(&format!("{} {}\n", h.kind, h.id));
    t.push_str(&format!("  from        {}\n", h.from));
    t.push_str(&format!(
        "  to          {}\n",
        h.to.iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    t.push_str(&format!("  created     {}\n", h.created_at));
    t.push_str(&format!("  expires     {}\n", h.expires_at));
    if let Some(c) = &h.case_id {
        t.push_str(&format!("  case        {c}\n"));
    }
    if let Some(r) = &h.in_reply_to {
        t.push_str(&format!("  in reply to {r}\n"));
    }
    if let Some(p) = h.procedure {
        t.push_str(&format!("  procedure   {}\n", p.as_str()));
    }
    t.push_str(&format!("  handling    {}\n", h.handling.as_str()));
    if let Some(b) = &h.legal_basis {
        t.push_str(&format!("  legal basis {b}\n"));
    }
    t.push_str(&format!(
        "  signature   verified: signed by {} with key {} (roster {})\n",
        h.from,
        f.kid,
        s.profile.roster.display()
    ));
    if let Some(e) = &f.erased {
        t.push_str(&format!(
            "  body        erased at {} under the retention policy \"{}\" (the signature above still verifies)\n",
            output::time(e.at),
            output::safe(&e.policy)
        ));
    }
    if f.envelope_only {
        t.push_str(
            "  body        not fetched (--envelope): without --envelope, reading it is logged \
             in the relay's audit log\n",
        );
    }
    if received {
        t.push_str(&format!("  receipt     {}\n", receipt_text(&receipt)));
        t.push_str(&format!(
            "  read        {}\n",
            read_at.map_or("not yet".to_owned(), output::time)
        ));
    }
    t.push('\n');
    output::render_value(&body, 1, &mut t);
    for (att, path) in &saved {
        t.push_str(&format!(
            "\nsaved {} ({}, {}) to {}",
            output::safe(&att.name),
            output::safe(&att.media_type),
            files::human_size(att.data.len() as u64),
            path.display()
        ));
    }
    let n = all_attachments.len();
    if a.save_dir.is_none() && n > 0 {
        t.push_str(&format!(
            "\n{n} attachment(s): save them with --save-dir DIR"
        ));
    }
    ctx.out.text(t.trim_end());
    Ok(())
}

fn hex_digest(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `kurir status ID`
pub async fn status(ctx: &Ctx, s: &Session, a: StatusArgs) -> Result<()> {
    let msg_id = message_id(&a.id)?;
    let until = a.wait.map(|w| Instant::now() + Duration::from_secs(w));
    let (summary, deliveries) = wait_status(s, msg_id, until, None).await?;
    show_status(ctx, s, summary, deliveries, until.is_some())
}

/// The status of `msg_id`: with `until`, once every delivery is final or
/// at `until`, whichever comes first, starting from `known` (a status the
/// relay already gave, e.g. after `submit_wait`) if there is one.
pub(super) async fn wait_status(
    s: &Session,
    msg_id: MessageId,
    until: Option<Instant>,
    known: Option<(Summary, Vec<DeliveryStatus>)>,
) -> Result<(Summary, Vec<DeliveryStatus>)> {
    let mut known = known;
    // The relay holds a waiting request until every delivery is final, for
    // at most MAX_STATUS_WAIT_MS at a time; longer waits ask again.
    loop {
        if let Some((summary, deliveries)) = known.take() {
            let done = deliveries.iter().all(DeliveryStatus::is_final);
            match until {
                Some(t) if !done && Instant::now() < t => {}
                _ => return Ok((summary, deliveries)),
            }
        }
        let wait_ms = until.map(|t| {
            let left = t.saturating_duration_since(Instant::now()).as_millis();
            u64::try_from(left).unwrap_or(u64::MAX)
        });
        let Response::Status {
            summary,
            deliveries,
        } = s.call(&Request::Status { msg_id, wait_ms }).await?
        else {
            return Err(fail(Exit::Internal, "the relay answered without a status"));
        };
        known = Some((summary, deliveries));
    }
}

/// Shows a message's delivery status as `kurir status` does; `waited`:
/// the status was waited for, so a delivery still open is a failure
/// (exit 3).
pub(super) fn show_status(
    ctx: &Ctx,
    s: &Session,
    summary: Summary,
    deliveries: Vec<DeliveryStatus>,
    waited: bool,
) -> Result<()> {
    let msg_id = summary.msg_id;
    let rows: Vec<(DeliveryStatus, Value)> = deliveries
        .into_iter()
        .map(|d| {
            let mut r = receipt_json(s, d.receipt.as_deref());
            if let Some(fields) = r.as_object_mut() {
                fields.insert("inclusion".into(), inclusion_json(s, &d));
            }
            (d, r)
        })
        .collect();
    ctx.out.line(
        "status",
        json!({
            "summary": summary_json(&summary),
            "deliveries": rows.iter().map(|(d, r)| output::delivery_json(d, r.clone())).collect::<Vec<_>>(),
        }),
    );
    let mut t = format!(
        "{} {} to {}{}\n  created  {}\n",
        summary.kind,
        summary.msg_id,
        summary
            .to
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        summary
            .case_id
            .as_ref()
            .map(|c| format!(" (case {c})"))
            .unwrap_or_default(),
        summary.created_at
    );
    for (d, r) in &rows {
        t.push_str(&format!(
            "  {:<8} {} after {} attempt(s){}{}\n",
            d.peer,
            d.state,
            d.attempts,
            d.at.map(|at| format!(
                " {} {}",
                if d.state == "retrying" {
                    "next at"
                } else {
                    "at"
                },
                at
            ))
            .unwrap_or_default(),
            d.reason
                .as_ref()
                .map(|r| format!(" ({})", output::safe(r)))
                .unwrap_or_default()
        ));
        if d.receipt.is_some() {
            t.push_str(&format!("           receipt: {}\n", receipt_text(r)));
        }
        if d.state == "delivered" {
            t.push_str(&format!(
                "           included: {}\n",
                inclusion_text(d.peer.as_str(), &r["inclusion"])
            ));
        }
    }
    ctx.out.text(t.trim_end());
    if waited && !rows.iter().all(|(d, _)| d.is_final()) {
        return Err(fail(
            Exit::Connection,
            format!("{msg_id} is not delivered to every recipient yet"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::message::examples;

    #[test]
    fn bodies_show_attachments_by_size_not_bytes() {
        let mut n = examples::notice();
        n.attachments.push(Attachment {
            name: "list.pdf".into(),
            media_type: "application/pdf".into(),
            data: vec![1, 2, 3],
        });
        let v = body_json(&Message::OperationalNotice(n));
        assert_eq!(v["attachments"][0]["size"], 3);
        assert!(v["attachments"][0].get("data").is_none());
        assert_eq!(v["priority"], "normal");
        let r = body_json(&Message::ReadmissionRequest(Box::new(
            examples::readmission_request(),
        )));
        assert_eq!(r["person"]["surname"], "EXAMPLE");
        assert_eq!(r["documents"][0]["document_type"], "passport");
    }
}
