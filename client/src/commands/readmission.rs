//! `kurir readmission template|request|reply|extend|decide`.

use anyhow::Result;
use kurir_proto::api::Submission;
use kurir_proto::message::{
    Apprehension, DeadlineExtensionDecision, DeadlineExtensionRequest, Decision, EvidenceItem,
    Message, MessageKind, Procedure, ProposedTransfer, ReadmissionReply, ReadmissionRequest,
    Transit, Transport,
};
use kurir_proto::{CaseId, MessageId};
use rand::RngExt;
use serde_json::json;

use super::case::{CaseInfo, answered, ensure_open, lookup};
use super::send::submit_reported;
use super::{Ctx, Session, authority, body, case_id, date, handling, now};
use crate::cli::{
    DecideArgs, ExtendArgs, ProcedureArg, ReadmissionCmd, ReplyArgs, RequestArgs, TransportArg,
};
use crate::exit::{Exit, fail, usage};
use crate::files;

/// `kurir readmission template`
pub fn template(ctx: &Ctx, document: bool) {
    let text = if document {
        files::DOCUMENT_TEMPLATE
    } else {
        files::PERSON_TEMPLATE
    };
    ctx.out.line(
        "template",
        json!({ "format": "toml", "of": if document { "document" } else { "person" }, "text": text }),
    );
    if !ctx.out.json {
        print!("{text}");
    }
}

/// `kurir readmission ...`
pub async fn run(ctx: &Ctx, s: &Session, cmd: ReadmissionCmd) -> Result<()> {
    match cmd {
        ReadmissionCmd::Template { document } => {
            template(ctx, document);
            Ok(())
        }
        ReadmissionCmd::Request(a) => request(ctx, s, *a).await,
        ReadmissionCmd::Reply(a) => reply(ctx, s, a).await,
        ReadmissionCmd::Extend(a) => extend(ctx, s, a).await,
        ReadmissionCmd::Decide(a) => decide(ctx, s, a).await,
    }
}

/// A new case id: `<authority>:<year>-<6 random digits>`.
pub fn new_case_id(me: &kurir_proto::AuthorityId) -> Result<CaseId> {
    let year = now().date().year();
    let n: u32 = rand::rng().random_range(0..1_000_000);
    CaseId::parse(&format!("{me}:{year}-{n:06}"))
        .map_err(|e| fail(Exit::Internal, format!("generating a case id: {e}")))
}

/// The transport.
pub fn transport(t: TransportArg) -> Transport {
    match t {
        TransportArg::Air => Transport::Air,
        TransportArg::Road => Transport::Road,
        TransportArg::Rail => Transport::Rail,
        TransportArg::Water => Transport::Water,
    }
}

async fn request(ctx: &Ctx, s: &Session, a: RequestArgs) -> Result<()> {
    let to = authority(&a.to)?;
    super::check_recipients(
        &s.roster,
        &s.profile.authority,
        std::slice::from_ref(&to),
        MessageKind::ReadmissionRequest,
    )?;
    let procedure = match a.procedure {
        ProcedureArg::Standard => Procedure::Standard,
        ProcedureArg::Accelerated => Procedure::Accelerated,
        ProcedureArg::Transit => Procedure::Transit,
    };
    let person = files::read_person(&a.person)?;
    let documents = a
        .document
        .iter()
        .map(|p| files::read_document(p))
        .collect::<Result<Vec<_>>>()?;
    if a.evidence.len() != a.annex.len() {
        return Err(usage(format!(
            "{} --evidence file(s) but {} --annex number(s): give each --evidence FILE \
             followed by its --annex N",
            a.evidence.len(),
            a.annex.len()
        )));
    }
    // Document scans are in memory already; the encoded body is checked below.
    files::check_attachment_sizes(&a.evidence, s.profile.max_parcel_bytes)?;
    let mut evidence = Vec::new();
    for (path, annex) in a.evidence.iter().zip(&a.annex) {
        if !(1..=9).contains(annex) {
            return Err(usage(format!(
                "--annex {annex} for {}: the agreements' annexes are numbered 1 to 9",
                path.display()
            )));
        }
        let attachment = files::read_attachment(path)?;
        evidence.push(EvidenceItem {
            annex: *annex,
            description: format!("Annex {annex} evidence: {}", attachment.name),
            attachment: Some(attachment),
        });
    }
    let apprehension = match (&a.apprehended_on, &a.apprehended_at) {
        (Some(d), Some(p)) => Some(Apprehension {
            date: date(d, "--apprehended-on")?,
            place: p.clone(),
        }),
        (None, None) => None,
        _ => {
            return Err(usage(
                "give both --apprehended-on DATE and --apprehended-at PLACE",
            ));
        }
    };
    if procedure == Procedure::Accelerated && apprehension.is_none() {
        return Err(usage(
            "the accelerated procedure needs --apprehended-on DATE and --apprehended-at PLACE \
             (apprehension in the border region)",
        ));
    }
    let transit = match (&a.transit_destination, procedure) {
        (Some(dest), _) => Some(Transit {
            destination: dest.clone(),
            route: vec![],
            admission_assured: true,
        }),
        (None, Procedure::Transit) => {
            return Err(usage(
                "the transit procedure needs --transit-destination STATE",
            ));
        }
        (None, _) => None,
    };
    let proposed_transfer = match (&a.transfer_date, &a.transfer_crossing) {
        (Some(d), Some(c)) => Some(ProposedTransfer {
            date: date(d, "--transfer-date")?,
            border_crossing: c.clone(),
            transport: transport(a.transport),
        }),
        _ => None,
    };
    let case = match &a.case {
        Some(c) => case_id(c)?,
        None => new_case_id(&s.profile.authority)?,
    };
    let message = Message::ReadmissionRequest(Box::new(ReadmissionRequest {
        procedure,
        person,
        documents,
        evidence,
        apprehension,
        transit,
        proposed_transfer,
        health: a.health,
        escort: a.escort_needs,
        remarks: a.remarks,
    }));
    let body = body(&message)?;
    if body.len() + 16 * 1024 > s.profile.max_parcel_bytes {
        return Err(usage(format!(
            "the application with its attachments is {}, over the limit of {} for one \
             message: attach smaller scans",
            files::human_size(body.len() as u64),
            files::human_size(s.profile.max_parcel_bytes as u64)
        )));
    }
    let submission = Submission {
        to: vec![to],
        kind: MessageKind::ReadmissionRequest,
        case_id: Some(case.clone()),
        in_reply_to: None,
        procedure: Some(procedure),
        handling: handling(a.handling),
        legal_basis: a.legal_basis,
        expires_in_ms: None,
        body,
    };
    let sent = submit_reported(ctx, s, submission, a.wait.secs).await?;
    ctx.out.text(format!(
        "  case id: {case} (use it with `kurir case {case}`)"
    ));
    sent.show_status(ctx, s).await
}

/// Sends `message` in the case to the other party; with `wait` (seconds),
/// waits for its delivery as `--wait` says.
pub async fn send_in_case(
    ctx: &Ctx,
    s: &Session,
    info: &CaseInfo,
    message: Message,
    in_reply_to: Option<MessageId>,
    wait: Option<u64>,
) -> Result<()> {
    let kind = message.kind();
    if kind.needs_in_reply_to() && in_reply_to.is_none() {
        return Err(usage(format!(
            "no message to answer found in case {}: give --in-reply-to ID (`kurir case {}` \
             lists the thread)",
            info.case_id, info.case_id
        )));
    }
    let to = info.counterpart(&s.profile.authority);
    let submission = Submission {
        to: vec![to],
        kind,
        case_id: Some(info.case_id.clone()),
        in_reply_to,
        procedure: None,
        handling: kurir_proto::message::Handling::H2,
        legal_basis: None,
        expires_in_ms: None,
        body: body(&message)?,
    };
    submit_reported(ctx, s, submission, wait)
        .await?
        .show_status(ctx, s)
        .await
}

async fn reply(ctx: &Ctx, s: &Session, a: ReplyArgs) -> Result<()> {
    let case = case_id(&a.target.case)?;
    let info = lookup(s, &case).await?;
    ensure_open(&info)?;
    if info.requested != s.profile.authority {
        return Err(usage(format!(
            "case {case} is {}'s request to {}: only {} replies to it",
            info.requesting, info.requested, info.requested
        )));
    }
    let in_reply_to = answered(
        &info,
        a.target.in_reply_to.as_deref(),
        MessageKind::ReadmissionRequest,
    )?;
    let reasons: Vec<String> = a
        .reason
        .into_iter()
        .filter(|r| !r.trim().is_empty())
        .collect();
    if a.reject && reasons.is_empty() {
        return Err(usage("a rejection needs at least one --reason"));
    }
    let message = Message::ReadmissionReply(ReadmissionReply {
        decision: if a.reject {
            Decision::Rejected
        } else {
            Decision::Confirmed
        },
        reasons,
        travel_document: a.travel_document,
        remarks: a.remarks,
    });
    send_in_case(ctx, s, &info, message, in_reply_to, a.target.wait.secs).await
}

async fn extend(ctx: &Ctx, s: &Session, a: ExtendArgs) -> Result<()> {
    // The agreed maximum is per agreement: the relay checks it (exit 4).
    if a.days == 0 {
        return Err(usage("--days must be at least 1"));
    }
    if a.reason.trim().is_empty() {
        return Err(usage("an extension request needs a --reason"));
    }
    let case = case_id(&a.target.case)?;
    let info = lookup(s, &case).await?;
    ensure_open(&info)?;
    let in_reply_to = answered(
        &info,
        a.target.in_reply_to.as_deref(),
        MessageKind::ReadmissionRequest,
    )?;
    let message = Message::DeadlineExtensionRequest(DeadlineExtensionRequest {
        days: a.days,
        reason: a.reason,
    });
    send_in_case(ctx, s, &info, message, in_reply_to, a.target.wait.secs).await
}

async fn decide(ctx: &Ctx, s: &Session, a: DecideArgs) -> Result<()> {
    let case = case_id(&a.target.case)?;
    let info = lookup(s, &case).await?;
    ensure_open(&info)?;
    let in_reply_to = answered(
        &info,
        a.target.in_reply_to.as_deref(),
        MessageKind::DeadlineExtensionRequest,
    )?;
    if a.target.in_reply_to.is_none() && in_reply_to.is_none() {
        return Err(usage(format!(
            "no extension request in case {case} to decide on"
        )));
    }
    let message = if a.refuse {
        let reason = a
            .reason
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| usage("refusing an extension needs a --reason"))?;
        DeadlineExtensionDecision {
            granted: false,
            days: 0,
            reason: Some(reason),
        }
    } else {
        let days = match a.days {
            Some(d) => d,
            None => asked_days(s, in_reply_to).await?,
        };
        if days == 0 {
            return Err(usage("--days must be at least 1"));
        }
        DeadlineExtensionDecision {
            granted: true,
            days,
            reason: a.reason,
        }
    };
    send_in_case(
        ctx,
        s,
        &info,
        Message::DeadlineExtensionDecision(message),
        in_reply_to,
        a.target.wait.secs,
    )
    .await
}

/// The days an extension request asked for.
async fn asked_days(s: &Session, id: Option<MessageId>) -> Result<u16> {
    let Some(msg_id) = id else {
        return Err(usage("give --days N"));
    };
    let fetched = super::messages::fetch_verified(s, msg_id).await?;
    match fetched.message {
        Some(Message::DeadlineExtensionRequest(r)) => Ok(r.days),
        _ => Err(usage(format!(
            "{msg_id} is not an extension request: give --days N"
        ))),
    }
}
