//! `kurir case` and `kurir deadlines`, and looking a case up for the
//! commands that answer in it.

use anyhow::Result;
use kurir_proto::api::{CaseState, CaseView, DeadlineKind, ErrorCode, Request, Response, Summary};
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, CaseId, MessageId};
use serde_json::json;

use super::{Ctx, Session, case_id, unexpected};
use crate::cli::{CaseArgs, DeadlinesArgs};
use crate::exit::{Exit, fail};
use crate::output::{self, short_time, summary_json};

/// A case as the client knows it: from the relay's case tracking when it
/// has it, else put together from the inbox and the sent messages.
#[derive(Debug, Clone)]
pub struct CaseInfo {
    /// The case.
    pub case_id: CaseId,
    /// The authority that asked for readmission.
    pub requesting: AuthorityId,
    /// The authority asked to readmit.
    pub requested: AuthorityId,
    /// The relay's view, when it tracks cases.
    pub view: Option<CaseView>,
    /// Every message of the case known here, oldest first.
    pub messages: Vec<Summary>,
}

impl CaseInfo {
    /// The other party of the case.
    pub fn counterpart(&self, me: &AuthorityId) -> AuthorityId {
        if &self.requesting == me {
            self.requested.clone()
        } else {
            self.requesting.clone()
        }
    }

    /// The newest message of `kind`.
    pub fn latest(&self, kind: MessageKind) -> Option<&Summary> {
        self.messages.iter().rev().find(|m| m.kind == kind)
    }

    /// The state, when known.
    pub fn state(&self) -> Option<CaseState> {
        self.view.as_ref().map(|v| v.state)
    }

    /// Whether nothing more may be sent in the case.
    pub fn is_closed(&self) -> bool {
        match self.state() {
            Some(s) => s.is_closed(),
            None => self.latest(MessageKind::HandoverConfirmation).is_some(),
        }
    }
}

/// Looks a case up at the relay.
pub async fn lookup(s: &Session, case: &CaseId) -> Result<CaseInfo> {
    match s
        .call_raw(&Request::Case {
            case_id: case.clone(),
        })
        .await?
    {
        Response::Case(view) => Ok(CaseInfo {
            case_id: view.case_id.clone(),
            requesting: view.requesting.clone(),
            requested: view.requested.clone(),
            messages: view.messages.clone(),
            view: Some(view),
        }),
        Response::Error {
            code: ErrorCode::NotFound,
            ..
        } => Err(not_found(case)),
        // A relay without case tracking: put the thread together here.
        Response::Error {
            code: ErrorCode::BadRequest,
            message,
        } if message.contains("does not track") => thread_from_lists(s, case).await,
        Response::Error { code, message } => Err(fail(
            Exit::of_relay(code),
            format!("the relay refused: {message}"),
        )),
        other => Err(unexpected(&other)),
    }
}

fn not_found(case: &CaseId) -> anyhow::Error {
    fail(
        Exit::NotFound,
        format!(
            "no case {case} at this relay: check the case id (`kurir inbox` lists the cases \
             of received messages)"
        ),
    )
}

async fn thread_from_lists(s: &Session, case: &CaseId) -> Result<CaseInfo> {
    let mut messages = Vec::new();
    if let Response::List { items } = s
        .call(&Request::Inbox {
            unread_only: false,
            kind: None,
            case_id: Some(case.clone()),
        })
        .await?
    {
        messages.extend(items);
    }
    if let Response::List { items } = s.call(&Request::Sent).await? {
        messages.extend(
            items
                .into_iter()
                .filter(|m| m.case_id.as_ref() == Some(case)),
        );
    }
    messages.sort_by_key(|m| (m.created_at, m.msg_id));
    messages.dedup_by_key(|m| m.msg_id);
    let Some(request) = messages
        .iter()
        .find(|m| m.kind == MessageKind::ReadmissionRequest)
    else {
        return Err(not_found(case));
    };
    let requesting = request.from.clone();
    let Some(requested) = request.to.first().cloned() else {
        return Err(not_found(case));
    };
    Ok(CaseInfo {
        case_id: case.clone(),
        requesting,
        requested,
        view: None,
        messages,
    })
}

/// The message a command answers: `--in-reply-to`, else the newest of
/// `kind` in the case.
pub fn answered(
    info: &CaseInfo,
    explicit: Option<&str>,
    kind: MessageKind,
) -> Result<Option<MessageId>> {
    if let Some(id) = explicit {
        return super::message_id(id).map(Some);
    }
    Ok(info.latest(kind).map(|m| m.msg_id))
}

/// Refuses to answer in a closed case.
pub fn ensure_open(info: &CaseInfo) -> Result<()> {
    if info.is_closed() {
        let state = info.state().map_or("handed over", |s| s.as_str());
        return Err(fail(
            Exit::Rejected,
            format!(
                "case {} is closed ({state}): nothing more can be sent in it; `kurir case {}` \
                 shows its thread",
                info.case_id, info.case_id
            ),
        ));
    }
    Ok(())
}

/// `kurir case CASE`
pub async fn show(ctx: &Ctx, s: &Session, a: CaseArgs) -> Result<()> {
    let case = case_id(&a.case)?;
    let info = lookup(s, &case).await?;
    match &info.view {
        Some(view) => {
            ctx.out.line("case", output::case_json(view));
        }
        None => {
            output::note(
                "note: this relay does not track readmission cases yet, so the state and the \
                 deadlines are not shown; the thread below is put together from the inbox and \
                 the sent messages",
            );
            ctx.out.line(
                "case",
                json!({
                    "case_id": info.case_id.as_str(),
                    "requesting": info.requesting.as_str(),
                    "requested": info.requested.as_str(),
                    "procedure": null,
                    "state": null,
                    "reply_due": null,
                    "extension_days": null,
                    "transfer_due": null,
                    "messages": info.messages.iter().map(summary_json).collect::<Vec<_>>(),
                    "events": [],
                }),
            );
        }
    }
    if ctx.out.json {
        return Ok(());
    }
    let mut text = format!(
        "case {}: {} asks {} to readmit",
        info.case_id, info.requesting, info.requested
    );
    if let Some(v) = &info.view {
        text.push_str(&format!(
            " ({} procedure)\nstate: {}",
            v.procedure.as_str(),
            v.state.as_str().replace('_', " ")
        ));
        if let Some(d) = v.reply_due {
            text.push_str(&format!("\nreply due: {d}"));
            if v.extension_days > 0 {
                text.push_str(&format!(" (extended by {} days)", v.extension_days));
            }
        }
        if let Some(d) = v.transfer_due {
            text.push_str(&format!("\ntransfer due: {d}"));
        }
    }
    text.push_str("\n\nmessages:");
    for m in &info.messages {
        text.push_str(&format!(
            "\n  {}  {:<27}  {} -> {}  {}",
            short_time(m.created_at),
            m.kind.as_str(),
            m.from,
            m.to.iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(","),
            m.msg_id
        ));
    }
    if let Some(v) = &info.view
        && !v.events.is_empty()
    {
        text.push_str("\n\ntimeline:");
        for e in &v.events {
            text.push_str(&format!("\n  {}  {}", short_time(e.at), e.what));
        }
    }
    ctx.out.text(text);
    Ok(())
}

/// `kurir deadlines`
pub async fn deadlines(ctx: &Ctx, s: &Session, a: DeadlinesArgs) -> Result<()> {
    let items = match s
        .call(&Request::Deadlines {
            overdue_only: a.overdue,
        })
        .await?
    {
        Response::Deadlines { items } => items,
        other => return Err(unexpected(&other)),
    };
    for d in &items {
        ctx.out.line("deadline", output::deadline_json(d));
    }
    if items.is_empty() {
        ctx.out.text(if a.overdue {
            "no overdue deadlines"
        } else {
            "no open deadlines"
        });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            vec![
                d.due.to_string(),
                if d.overdue {
                    format!("OVERDUE {} d", -d.days_left)
                } else {
                    format!("{} d left", d.days_left)
                },
                d.case_id.to_string(),
                match d.kind {
                    DeadlineKind::Reply => "reply".to_owned(),
                    DeadlineKind::Transfer => "transfer".to_owned(),
                },
                d.party.to_string(),
                d.counterpart.to_string(),
            ]
        })
        .collect();
    ctx.out.text(output::table(
        &["DUE", "LEFT", "CASE", "DEADLINE", "WHO ACTS", "COUNTERPART"],
        &rows,
    ));
    Ok(())
}
