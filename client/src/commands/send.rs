//! `kurir send notice`.

use std::time::{Duration, Instant};

use anyhow::Result;
use kurir_proto::MessageId;
use kurir_proto::api::{DeliveryStatus, Submission, Summary};
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
    submit_reported(ctx, s, submission, a.wait.secs)
        .await?
        .show_status(ctx, s)
        .await
}

/// Submits a message and reports it as submitted; with `wait`, in one
/// exchange (`submit_wait`): the relay answers the submission, then the
/// status once every delivery is final or the wait ends, which
/// [`Sent::show_status`] shows.
pub(super) async fn submit_reported(
    ctx: &Ctx,
    s: &Session,
    submission: Submission,
    wait: Option<u64>,
) -> Result<Sent> {
    let (kind, to) = (submission.kind, submission.to.clone());
    let (case, in_reply_to) = (submission.case_id.clone(), submission.in_reply_to);
    let until = wait.map(|secs| Instant::now() + Duration::from_secs(secs));
    let (msg_id, created_at, status) = match until {
        Some(until) => s.submit_wait(submission, until).await?,
        None => {
            let (msg_id, created_at) = s.submit(submission).await?;
            (msg_id, created_at, None)
        }
    };
    report_submitted(
        ctx,
        kind,
        msg_id,
        created_at,
        &to,
        case.as_ref(),
        in_reply_to,
    );
    Ok(Sent {
        msg_id,
        waited: until.map(|until| (until, status)),
    })
}

/// A message submitted and reported ([`submit_reported`]).
pub(super) struct Sent {
    msg_id: MessageId,
    /// With a wait: until when, and the status the relay gave with the
    /// submission, if it gave one.
    waited: Option<(Instant, Option<Status>)>,
}

/// A message's status as the relay gives it.
type Status = (Summary, Vec<DeliveryStatus>);

impl Sent {
    /// Without a wait, nothing; with one, the status once every delivery
    /// is final or the wait ends, as `kurir status --wait` shows it (exit
    /// 3 if a delivery is still open).
    pub(super) async fn show_status(self, ctx: &Ctx, s: &Session) -> Result<()> {
        let Some((until, status)) = self.waited else {
            return Ok(());
        };
        let (summary, deliveries) = wait_status(s, self.msg_id, Some(until), status).await?;
        show_status(ctx, s, summary, deliveries, true)
    }
}
