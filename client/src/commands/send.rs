//! `kurir send notice`.

use std::time::{Duration, Instant};

use anyhow::Result;
use kurir_proto::api::Submission;
use kurir_proto::message::{Message, MessageKind, OperationalNotice, Priority};

use super::messages::{show_status, wait_status};
use super::{Ctx, Session, authority, body, handling, report_submitted};
use crate::cli::{NoticeArgs, PriorityArg, SendCmd};
use crate::exit::usage;
use crate::files;

/// `kurir send ...`
pub async fn run(ctx: &Ctx, s: &Session, cmd: SendCmd) -> Result<()> {
    match cmd {
        SendCmd::Notice(a) => notice(ctx, s, a).await,
    }
}

async fn notice(ctx: &Ctx, s: &Session, a: NoticeArgs) -> Result<()> {
    let mut to =
        a.to.iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| authority(t))
            .collect::<Result<Vec<_>>>()?;
    to.sort();
    to.dedup();
    if to.is_empty() {
        return Err(usage("--to names no authority"));
    }
    super::check_recipients(
        &s.roster,
        &s.profile.authority,
        &to,
        MessageKind::OperationalNotice,
    )?;
    let text = match (a.text, a.text_file) {
        (Some(t), _) => t,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| usage(format!("cannot read --text-file {}: {e}", f.display())))?,
        (None, None) => return Err(usage("give the text with --text or --text-file")),
    };
    files::check_attachment_sizes(&a.attach, s.profile.max_parcel_bytes)?;
    let attachments = a
        .attach
        .iter()
        .map(|p| files::read_attachment(p))
        .collect::<Result<Vec<_>>>()?;
    let priority = match a.priority {
        PriorityArg::Low => Priority::Low,
        PriorityArg::Normal => Priority::Normal,
        PriorityArg::High => Priority::High,
        PriorityArg::Urgent => Priority::Urgent,
    };
    let message = Message::OperationalNotice(OperationalNotice {
        subject: a.subject,
        text,
        priority,
        attachments,
    });
    let body = body(&message)?;
    let submission = Submission {
        to: to.clone(),
        kind: MessageKind::OperationalNotice,
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: handling(a.handling),
        legal_basis: a.legal_basis,
        expires_in_ms: None,
        body,
    };
    // With a wait, one exchange: the relay answers the submission, then
    // the status once every delivery is final (or the wait ends).
    let until = a
        .wait
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let (msg_id, created_at, status) = match until {
        Some(until) => s.submit_wait(submission, until).await?,
        None => {
            let (msg_id, created_at) = s.submit(submission).await?;
            (msg_id, created_at, None)
        }
    };
    report_submitted(
        ctx,
        MessageKind::OperationalNotice,
        msg_id,
        created_at,
        &to,
        None,
        None,
    );
    let Some(until) = until else {
        return Ok(());
    };
    let (summary, deliveries) = wait_status(s, msg_id, Some(until), status).await?;
    show_status(ctx, s, summary, deliveries, true)
}
