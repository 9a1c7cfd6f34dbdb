//! The commands, one module per group, and what they share: the profile, the
//! connection to the relay, the roster, and turning relay answers into exit
//! codes.

use std::time::Duration;

use anyhow::{Context, Result};
use kurir_certs::Roster;
use kurir_proto::api::{DeliveryStatus, ErrorCode, Request, Response, Submission, Summary};
use kurir_proto::message::{Handling, Message, MessageKind};
use kurir_proto::{AuthorityId, CaseId, MessageId, Timestamp};

use crate::Client;
use crate::cli::{Cli, Command, HandlingArg};
use crate::exit::{Exit, fail, usage};
use crate::output::{self, Output};
use crate::profile::{Profile, Source};

pub mod audit;
pub mod case;
pub mod messages;
pub mod profile;
pub mod readmission;
pub mod report;
pub mod send;
pub mod transfer;
pub mod watch;

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    /// Where output goes.
    pub out: Output,
    /// `--profile`, if given.
    pub profile_flag: Option<std::path::PathBuf>,
    /// How long to wait for the relay to answer the connection.
    pub connect_timeout: Duration,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        out: Output { json: cli.json },
        profile_flag: cli.profile,
        connect_timeout: Duration::from_secs(cli.connect_timeout.max(1)),
    };
    match cli.command {
        Command::Profile(c) => profile::run(&ctx, c),
        // Offline: no profile, no relay (except export, which asks the relay).
        Command::Audit(c) if !matches!(c, crate::cli::AuditCmd::Export { .. }) => {
            audit::run(&ctx, c)
        }
        Command::Readmission(crate::cli::ReadmissionCmd::Template { document }) => {
            readmission::template(&ctx, document);
            Ok(())
        }
        command => {
            // Profile, roster and certificate are checked here; the relay is
            // contacted only when a command needs it, after its own input
            // (files, ids, dates) has been checked.
            let session = Session::load(&ctx)?;
            let result = dispatch(&ctx, &session, command).await;
            session.close().await;
            result
        }
    }
}

async fn dispatch(ctx: &Ctx, s: &Session, command: Command) -> Result<()> {
    match command {
        Command::Profile(_) => Ok(()),
        Command::Whoami => profile::whoami(ctx, s).await,
        Command::Send(c) => send::run(ctx, s, c).await,
        Command::Readmission(c) => readmission::run(ctx, s, c).await,
        Command::Transfer(c) => transfer::run(ctx, s, c).await,
        Command::Inbox(a) => messages::inbox(ctx, s, a).await,
        Command::Show(a) => messages::show(ctx, s, a).await,
        Command::Status(a) => messages::status(ctx, s, a).await,
        Command::Case(a) => case::show(ctx, s, a).await,
        Command::Deadlines(a) => case::deadlines(ctx, s, a).await,
        Command::Watch => watch::run(ctx, s).await,
        Command::Audit(crate::cli::AuditCmd::Export { out }) => audit::export(ctx, s, &out).await,
        Command::Audit(_) => Ok(()),
    }
}

/// An officer's session: profile, roster, and the connection to the relay,
/// opened on first use.
#[derive(Debug)]
pub struct Session {
    /// The profile.
    pub profile: Profile,
    /// The federation roster, verified.
    pub roster: Roster,
    connect_timeout: Duration,
    client: tokio::sync::OnceCell<Client>,
}

impl Session {
    /// Loads the profile and roster and checks the certificate; no network.
    pub fn load(ctx: &Ctx) -> Result<Session> {
        let source = Source::pick(ctx.profile_flag.as_deref())?;
        let profile = Profile::load(&source)?;
        let now = now();
        let roster = load_roster(&profile, now)?;
        check_certificate(&profile, now)?;
        Ok(Session {
            profile,
            roster,
            connect_timeout: ctx.connect_timeout,
            client: tokio::sync::OnceCell::new(),
        })
    }

    /// The connection, opened on first use.
    pub async fn client(&self) -> Result<&Client> {
        self.client.get_or_try_init(|| self.connect()).await
    }

    /// Closes the connection, if one was opened.
    pub async fn close(self) {
        if let Some(c) = self.client.into_inner() {
            c.close().await;
        }
    }

    async fn connect(&self) -> Result<Client> {
        let profile = &self.profile;
        let connect = Client::connect_with_dir(
            profile.relay,
            &profile.server_name,
            &profile.authority,
            &profile.officer_dir,
        );
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(crate::ClientError::Tls(e))) => Err(usage(format!(
                "cannot use the officer certificate in {}: {e} (check `officer_dir` in \
                 the profile {})",
                profile.officer_dir.display(),
                profile.path.display()
            ))),
            Ok(Err(e)) => Err(connection_failure(profile, &e.to_string())),
            Err(_) => Err(fail(
                Exit::Connection,
                format!(
                    "the relay at {} did not answer within {} s: check that it is \
                     running and that `relay` in {} is right (or raise --connect-timeout)",
                    profile.relay,
                    self.connect_timeout.as_secs(),
                    profile.path.display()
                ),
            )),
        }
    }

    /// Sends a request; a relay error becomes a failure with its exit code.
    pub async fn call(&self, request: &Request) -> Result<Response> {
        let response = self
            .client()
            .await?
            .request(request)
            .await
            .map_err(|e| connection_failure(&self.profile, &e.to_string()))?;
        relay_refusal(response)
    }

    /// Sends a request and returns relay errors as values.
    pub async fn call_raw(&self, request: &Request) -> Result<Response> {
        self.client()
            .await?
            .request(request)
            .await
            .map_err(|e| connection_failure(&self.profile, &e.to_string()))
    }

    /// [`Session::submit`] as one `submit_wait` exchange: the message's id
    /// and time, and its status if the relay gave it by `until` (it waits
    /// at most `MAX_STATUS_WAIT_MS`; `None` if the stream ended first).
    pub async fn submit_wait(
        &self,
        s: Submission,
        until: std::time::Instant,
    ) -> Result<(MessageId, Timestamp, Option<(Summary, Vec<DeliveryStatus>)>)> {
        check_recipients(&self.roster, &self.profile.authority, &s.to, s.kind)?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        let wait_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        let failed = |e: crate::ClientError| connection_failure(&self.profile, &e.to_string());
        let mut answers = self
            .client()
            .await?
            .submit_wait(s, wait_ms)
            .await
            .map_err(failed)?;
        let first = answers
            .next()
            .await
            .map_err(failed)?
            .ok_or_else(|| fail(Exit::Internal, "the relay answered nothing"))?;
        let (msg_id, created_at) = match relay_refusal(first)? {
            Response::Submitted { msg_id, created_at } => (msg_id, created_at),
            other => return Err(unexpected(&other)),
        };
        // The message is queued: a failure from here on is reported with
        // its id, so the officer can follow it with `kurir status`.
        let status = match answers.next().await {
            Ok(Some(Response::Status {
                summary,
                deliveries,
            })) => Some((summary, deliveries)),
            Ok(_) | Err(_) => None,
        };
        Ok((msg_id, created_at, status))
    }

    /// Checks recipients and kind against the roster, then submits.
    pub async fn submit(&self, s: Submission) -> Result<(MessageId, Timestamp)> {
        check_recipients(&self.roster, &self.profile.authority, &s.to, s.kind)?;
        match self.call(&Request::Submit(s)).await? {
            Response::Submitted { msg_id, created_at } => Ok((msg_id, created_at)),
            other => Err(unexpected(&other)),
        }
    }
}

/// A relay's error response as a failure with its exit code; any other
/// response as it is.
fn relay_refusal(response: Response) -> Result<Response> {
    match response {
        Response::Error { code, message } => Err(fail(
            Exit::of_relay(code),
            format!("the relay refused: {message}{}", hint(code)),
        )),
        other => Ok(other),
    }
}

fn hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Forbidden => {
            " (your certificate's role or name does not allow this; `kurir whoami` shows them)"
        }
        ErrorCode::Unavailable => " (try again in a moment)",
        ErrorCode::BadRequest | ErrorCode::NotFound => "",
    }
}

/// A relay answer that does not fit the request.
pub fn unexpected(r: &Response) -> anyhow::Error {
    fail(
        Exit::Internal,
        format!("the relay answered something unexpected: {r:?}"),
    )
}

fn connection_failure(profile: &Profile, reason: &str) -> anyhow::Error {
    let lower = reason.to_ascii_lowercase();
    let what = if lower.contains("revoked") {
        "the relay refused your officer certificate: it is REVOKED. Ask your authority's \
         admin for a new one (kurir-certs officer issue) and point `officer_dir` at it"
    } else if lower.contains("expired") || lower.contains("notvalidyet") {
        "the relay refused your officer certificate as expired or not yet valid: ask your \
         authority's admin for a new one, and check this computer's clock"
    } else if lower.contains("certificate") || lower.contains("handshake") || lower.contains("tls")
    {
        "the TLS handshake failed: your officer certificate may be from another authority's \
         CA, or `server_name` in the profile does not match the relay's certificate; ask \
         your authority's admin"
    } else {
        "check that the relay is running and that `relay` in the profile is right"
    };
    fail(
        Exit::Connection,
        format!(
            "cannot talk to the relay at {}: {what} (profile {}; detail: {reason})",
            profile.relay,
            profile.path.display()
        ),
    )
}

/// Loads and verifies the roster named in the profile.
pub fn load_roster(profile: &Profile, now: Timestamp) -> Result<Roster> {
    Roster::load(&profile.roster, None, now).map_err(|e| {
        usage(format!(
            "cannot use the roster {} named in the profile {}: {e}",
            profile.roster.display(),
            profile.path.display()
        ))
    })
}

/// Refuses early, with a clear message, a certificate that is not valid now.
fn check_certificate(profile: &Profile, now: Timestamp) -> Result<()> {
    let path = profile
        .officer_dir
        .join(kurir_certs::officer::officer_layout::CERT);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Err(usage(format!(
            "cannot read your officer certificate {}: check `officer_dir` in the profile {}",
            path.display(),
            profile.path.display()
        )));
    };
    let Some(der) = kurir_certs::x509::pem_certificates(&text)
        .ok()
        .and_then(|c| c.into_iter().next())
    else {
        return Err(usage(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    };
    let info = kurir_certs::x509::CertInfo::parse(&der)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    if now >= info.not_after {
        return Err(fail(
            Exit::Connection,
            format!(
                "your officer certificate {} expired on {}: ask your authority's admin for a \
                 new one (kurir-certs officer issue) and point `officer_dir` at it",
                path.display(),
                output::short_time(info.not_after)
            ),
        ));
    }
    if now < info.not_before {
        return Err(fail(
            Exit::Connection,
            format!(
                "your officer certificate {} is valid only from {}: check this computer's clock",
                path.display(),
                output::short_time(info.not_before)
            ),
        ));
    }
    Ok(())
}

/// Unknown authorities and kinds a recipient does not accept are refused
/// before anything is sent.
pub fn check_recipients(
    roster: &Roster,
    me: &AuthorityId,
    to: &[AuthorityId],
    kind: MessageKind,
) -> Result<()> {
    let known = || {
        roster
            .members()
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for a in to {
        let Some(member) = roster.member(a) else {
            return Err(usage(format!(
                "{a} is not a member of the federation (roster version {}); members: {}",
                roster.version(),
                known()
            )));
        };
        if a == me {
            return Err(usage(format!(
                "{a} is your own authority: send to another member"
            )));
        }
        if !member.kinds.contains(&kind) {
            return Err(usage(format!(
                "{a} does not accept {kind} messages (roster version {}; it accepts: {})",
                roster.version(),
                member
                    .kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// Parses an authority id given on the command line.
pub fn authority(s: &str) -> Result<AuthorityId> {
    AuthorityId::parse(s.trim()).map_err(|e| usage(e.to_string()))
}

/// Parses a case id given on the command line.
pub fn case_id(s: &str) -> Result<CaseId> {
    CaseId::parse(s.trim()).map_err(|e| usage(e.to_string()))
}

/// Parses a message id given on the command line.
pub fn message_id(s: &str) -> Result<MessageId> {
    MessageId::parse(s.trim()).map_err(|e| usage(format!("{e} (ids are listed by `kurir inbox`)")))
}

/// Parses a date given on the command line.
pub fn date(s: &str, what: &str) -> Result<kurir_proto::Date> {
    kurir_proto::Date::parse(s.trim()).map_err(|e| usage(format!("{what}: {e}")))
}

/// The handling code.
pub fn handling(h: HandlingArg) -> Handling {
    match h {
        HandlingArg::H0 => Handling::H0,
        HandlingArg::H1 => Handling::H1,
        HandlingArg::H2 => Handling::H2,
        HandlingArg::H3 => Handling::H3,
    }
}

/// Encodes a body, checking its rules first.
pub fn body(message: &Message) -> Result<Vec<u8>> {
    message.validate().map_err(|e| usage(e.to_string()))?;
    message
        .encode()
        .map_err(|e| usage(e.to_string()))
        .context("encoding the message")
}

/// The system clock.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Timestamp(ms)
}

/// Prints what was submitted.
pub fn report_submitted(
    ctx: &Ctx,
    kind: MessageKind,
    msg_id: MessageId,
    created_at: Timestamp,
    to: &[AuthorityId],
    case: Option<&CaseId>,
    in_reply_to: Option<MessageId>,
) {
    let to_text: Vec<&str> = to.iter().map(|a| a.as_str()).collect();
    ctx.out.line(
        "submitted",
        serde_json::json!({
            "msg_id": msg_id.to_string(),
            "kind": kind.as_str(),
            "to": to_text,
            "case_id": case.map(|c| c.as_str()),
            "in_reply_to": in_reply_to.map(|m| m.to_string()),
            "created_at": output::time(created_at),
        }),
    );
    let mut text = format!(
        "sent {kind} {msg_id} to {}{}",
        to_text.join(", "),
        case.map(|c| format!(" (case {c})")).unwrap_or_default()
    );
    text.push_str(&format!(
        "\n  signed and queued by your relay at {}; follow it with `kurir status {msg_id}`",
        output::short_time(created_at)
    ));
    ctx.out.text(text);
}
