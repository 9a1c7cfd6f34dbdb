//! `kurir-demo`: a four-authority federation on loopback, end to end.
//!
//! Founds RS.MUP, BA.SPS, ME.UP and MK.MVR with a fresh PKI and a signed
//! roster, starts four relays on 127.0.0.1, and has officers send an
//! operational notice to two authorities and a readmission request that the
//! requested authority reads and confirms. Every parcel the officers fetch
//! and every receipt the senders hold is verified against the roster here,
//! independently of the relays. Afterwards it exports each relay's audit
//! log, verifies every bundle offline and reconciles them, as an auditor
//! would (`kurir-audit`). Between the two, AT.BMI joins the running
//! federation (`crate::join`): a roster installed at one relay, taken by
//! the others from their peers, no restart. Prints a timeline; succeeds
//! only if everything was delivered and verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kurir_certs::Roster;
use kurir_certs::officer::Role;
use kurir_client::Client;
use kurir_proto::api::{ErrorCode, Request, Response, Submission, Summary};
use kurir_proto::message::{Handling, Message, MessageKind, Procedure, examples};
use kurir_proto::{AuthorityId, CaseId, MessageId, ReceiptStatus, open_receipt};

use kurir_relay::clock::{Clock, SystemClock};
use kurir_relay::config::RelayConfig;
use kurir_relay::node::Node;

use crate::federation::{self, LOCAL_HOST, MemberSpec};
use crate::join;

/// How long the demo waits for any one step.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
#[error("demo failed: {0}")]
pub struct DemoError(String);

pub(crate) fn fail(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

pub(crate) struct Timeline {
    start: Instant,
    lines: Vec<String>,
}

impl Timeline {
    pub(crate) fn say(&mut self, text: impl Into<String>) {
        let line = format!(
            "{:>8.3}s  {}",
            self.start.elapsed().as_secs_f64(),
            text.into()
        );
        println!("{line}");
        self.lines.push(line);
    }
}

pub(crate) fn id(s: &str) -> Result<AuthorityId, DemoError> {
    AuthorityId::parse(s).map_err(fail)
}

/// Runs the demo in `dir` (a fresh temporary directory when `None`; kept
/// afterwards only when `keep`).
pub async fn run(dir: Option<PathBuf>, keep: bool) -> Result<(), DemoError> {
    let temp;
    let dir = match dir {
        Some(d) => {
            if d.exists() && d.read_dir().map_err(fail)?.next().is_some() {
                return Err(fail(format!(
                    "{} is not empty: give a new or empty directory",
                    d.display()
                )));
            }
            d
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("kurir-demo-")
                .tempdir()
                .map_err(fail)?;
            if keep {
                temp.keep()
            } else {
                temp.path().to_owned()
            }
        }
    };
    let result = run_in(&dir).await;
    if keep {
        println!("\nThe federation's files are kept in {}", dir.display());
    }
    result
}

async fn run_in(dir: &Path) -> Result<(), DemoError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut t = Timeline {
        start: Instant::now(),
        lines: vec![],
    };
    println!("kurir demo: a four-authority federation on loopback\n");
    let members = [
        ("RS.MUP", "Ministry of Interior of the Republic of Serbia"),
        (
            "BA.SPS",
            "Service for Foreigners' Affairs of Bosnia and Herzegovina",
        ),
        ("ME.UP", "Police Directorate of Montenegro"),
        ("MK.MVR", "Ministry of Interior of North Macedonia"),
    ];
    let specs = members
        .iter()
        .map(|(m, name)| {
            Ok(MemberSpec {
                id: id(m)?,
                name: (*name).to_owned(),
                officers: vec![
                    ("duty officer".to_owned(), Role::Officer),
                    ("auditor".to_owned(), Role::Auditor),
                ],
                focal_points: vec![],
            })
        })
        .collect::<Result<Vec<_>, DemoError>>()?;
    let mut fed = federation::found(dir, &specs, clock.now()).map_err(fail)?;
    let roster = Roster::load(&fed.roster_path, None, clock.now()).map_err(fail)?;
    // Each relay reads a roster file of its own: a newer roster reaches the
    // others only through the relays.
    for m in &fed.members {
        join::own_roster_file(m, roster.to_bytes())?;
    }
    t.say(format!(
        "founded the federation in {}: 4 authorities, roster v{} signed by 2 of 3 roster keys (fingerprint {}…)",
        dir.display(),
        roster.version(),
        &roster.fingerprint()[..16]
    ));

    let mut nodes = Vec::new();
    for m in &mut fed.members {
        let config = RelayConfig::load(&m.config_path).map_err(fail)?;
        let node = Node::start(config, clock.clone(), m.socket.take())
            .await
            .map_err(|e| fail(format!("relay {}: {e}", m.id)))?;
        t.say(format!(
            "relay {} listening on {} (QUIC, mutual TLS)",
            m.id,
            node.local_addr()
        ));
        nodes.push(node);
    }

    let mut outcome = exchange(&fed, &roster, &mut t).await;
    if outcome.is_ok() {
        outcome = join::join(&mut fed, &mut nodes, &roster, &clock, &mut t)
            .await
            .map(drop);
    }
    for node in nodes {
        node.shutdown().await.map_err(fail)?;
    }
    t.say("all relays stopped cleanly");
    outcome?;
    audit(&fed, dir, clock.now(), &mut t)?;
    println!(
        "\ndemo passed: every message delivered, every signature and receipt verified, \
         every audit log verified and reconciled"
    );
    Ok(())
}

/// What an auditor does afterwards, offline: exports each stopped relay's
/// audit log (the relay's own export), verifies every bundle with
/// `kurir-audit` (entries, checkpoints, receipts, envelopes against the
/// roster) and reconciles RS.MUP's log with each peer's.
fn audit(
    fed: &federation::Federation,
    dir: &Path,
    now: kurir_proto::Timestamp,
    t: &mut Timeline,
) -> Result<(), DemoError> {
    // Anchored to the federation's roster, as an auditor who holds it would.
    let roster = std::fs::read(&fed.roster_path)
        .map_err(|e| fail(format!("reading {}: {e}", fed.roster_path.display())))?;
    let anchors = kurir_audit::Anchors {
        roster: Some(kurir_audit::RosterAnchor::File(roster)),
        checkpoints: vec![],
    };
    let mut verified = Vec::new();
    for m in &fed.members {
        let config = m.config().map_err(fail)?;
        let out = dir.join("audit").join(m.id.as_str());
        kurir_relay::audit::export(&config.data_dir, &out, now)
            .map_err(|e| fail(format!("exporting the audit log of {}: {e}", m.id)))?;
        let v = kurir_audit::load_verified_with(&out, &anchors).map_err(fail)?;
        t.say(format!(
            "audit log of {} exported and verified offline: {} entries, {} checkpoint(s), {} receipt(s), {} envelope(s)",
            m.id,
            v.report.entries,
            v.report.checkpoints,
            v.log.receipts.len(),
            v.envelopes
        ));
        verified.push(v);
    }
    let (first, rest) = verified
        .split_first()
        .ok_or_else(|| fail("no member to audit"))?;
    // RS.MUP's log with each other's, and the new member's with ME.UP's.
    let joined = verified
        .iter()
        .find(|v| v.log.authority.as_str() == join::JOINS);
    let me = verified
        .iter()
        .find(|v| v.log.authority.as_str() == "ME.UP");
    let pairs = rest
        .iter()
        .map(|other| (first, other))
        .chain(joined.zip(me));
    for (first, other) in pairs {
        let r = kurir_audit::reconcile_logs(&first.log, &other.log);
        if !r.reconciled() {
            return Err(fail(format!(
                "the logs of {} and {} do not reconcile: {:?}",
                first.log.authority, other.log.authority, r.findings
            )));
        }
        t.say(format!(
            "logs of {} and {} reconciled: {} sent and {} matched one way, {} and {} the other",
            first.log.authority,
            other.log.authority,
            r.a_to_b.sent,
            r.a_to_b.matched,
            r.b_to_a.sent,
            r.b_to_a.matched
        ));
    }
    // The auditor's report of every log, as `kurir audit report` writes it.
    let logs = verified.len();
    let (verified, failed) = kurir_audit::report::cross_check(verified);
    if let Some(f) = failed.first() {
        return Err(fail(format!("{}: {}", f.path.display(), f.error)));
    }
    let report = kurir_audit::report::build(
        &verified,
        failed,
        format!("the federation's roster {}", fed.roster_path.display()),
        now,
    );
    let path = dir.join("audit").join("report.html");
    std::fs::write(&path, kurir_audit::report::html(&report))
        .map_err(|e| fail(format!("writing {}: {e}", path.display())))?;
    if !report.verified() {
        return Err(fail(format!(
            "the report {} says NOT VERIFIED",
            path.display()
        )));
    }
    t.say(format!(
        "auditor's report of the {logs} logs written: {} ({} case(s), {} message(s); open it \
         in a browser; with --keep it stays)",
        path.display(),
        report.cases.len(),
        report.traffic.total()
    ));
    Ok(())
}

pub(crate) async fn officer(
    fed: &federation::Federation,
    who: &str,
    name: &str,
) -> Result<Client, DemoError> {
    let member = fed
        .member(&id(who)?)
        .ok_or_else(|| fail(format!("{who} is not founded")))?;
    let dir = member
        .officer_dir(name)
        .ok_or_else(|| fail(format!("no officer {name} at {who}")))?;
    Client::connect_with_dir(member.addr, LOCAL_HOST, &member.id, dir)
        .await
        .map_err(|e| fail(format!("officer of {who}: {e}")))
}

pub(crate) async fn send(client: &Client, s: Submission) -> Result<MessageId, DemoError> {
    match client.request(&Request::Submit(s)).await.map_err(fail)? {
        Response::Submitted { msg_id, .. } => Ok(msg_id),
        other => Err(fail(format!("submission refused: {other:?}"))),
    }
}

pub(crate) async fn next_arrival(
    sub: &mut kurir_client::Subscription,
) -> Result<Summary, DemoError> {
    match tokio::time::timeout(STEP_TIMEOUT, sub.next()).await {
        Ok(Ok(Some(Response::Event { summary }))) => Ok(summary),
        Ok(other) => Err(fail(format!("subscription ended: {other:?}"))),
        Err(_) => Err(fail("no message arrived in time")),
    }
}

/// Waits until every delivery of `msg_id` is final; verifies each receipt
/// against the roster and reports it.
pub(crate) async fn await_delivery(
    client: &Client,
    roster: &Roster,
    msg_id: MessageId,
    t: &mut Timeline,
) -> Result<(), DemoError> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let Response::Status {
            deliveries,
            summary,
        } = client
            .request(&Request::Status {
                msg_id,
                wait_ms: Some(millis(deadline.saturating_duration_since(Instant::now()))),
            })
            .await
            .map_err(fail)?
        else {
            return Err(fail("status request failed"));
        };
        if deliveries
            .iter()
            .all(kurir_proto::api::DeliveryStatus::is_final)
        {
            for d in deliveries {
                let Some(bytes) = d.receipt.filter(|_| d.state == "delivered") else {
                    return Err(fail(format!(
                        "{} to {}: {} ({:?})",
                        summary.kind, d.peer, d.state, d.reason
                    )));
                };
                let r = open_receipt(&bytes, roster).map_err(fail)?;
                if r.receipt.receiver != d.peer
                    || r.receipt.msg_id != Some(msg_id)
                    || r.receipt.status != ReceiptStatus::Accepted
                {
                    return Err(fail("a receipt does not match its message"));
                }
                t.say(format!(
                    "  {} delivered to {} after {} attempt(s); receipt signed by {} key {} verified",
                    summary.kind, d.peer, d.attempts, r.receipt.receiver, r.kid
                ));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(fail(format!("{msg_id} not delivered in time")));
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn case_view(
    client: &Client,
    case_id: &CaseId,
) -> Result<kurir_proto::api::CaseView, DemoError> {
    match client
        .request(&Request::Case {
            case_id: case_id.clone(),
        })
        .await
        .map_err(fail)?
    {
        Response::Case(view) => Ok(view),
        other => Err(fail(format!("case {case_id}: {other:?}"))),
    }
}

/// Fetches a received message, verifies it against the roster (the
/// client library's check, independent of the relays) and marks it read.
pub(crate) async fn fetch_verified(
    client: &Client,
    roster: &Roster,
    msg_id: MessageId,
    t: &mut Timeline,
    reader: &str,
) -> Result<Message, DemoError> {
    let fetched = client.fetch_verified(roster, msg_id).await.map_err(fail)?;
    let message = fetched.message.ok_or_else(|| {
        fail(format!(
            "the body of {msg_id} was erased before it was read"
        ))
    })?;
    t.say(format!(
        "{reader} opened {} {}: signed by {} key {} (verified against the roster), body digest matches",
        fetched.header.kind, fetched.header.id, fetched.header.from, fetched.kid
    ));
    match client
        .request(&Request::MarkRead { msg_id })
        .await
        .map_err(fail)?
    {
        Response::Marked { .. } => {}
        other => return Err(fail(format!("mark read failed: {other:?}"))),
    }
    Ok(message)
}

async fn exchange(
    fed: &federation::Federation,
    roster: &Roster,
    t: &mut Timeline,
) -> Result<(), DemoError> {
    let rs = officer(fed, "RS.MUP", "duty officer").await?;
    let ba = officer(fed, "BA.SPS", "duty officer").await?;
    let me = officer(fed, "ME.UP", "duty officer").await?;
    let mk = officer(fed, "MK.MVR", "duty officer").await?;
    let mut ba_inbox = ba.subscribe().await.map_err(fail)?;
    let mut rs_inbox = rs.subscribe().await.map_err(fail)?;
    let mut me_inbox = me.subscribe().await.map_err(fail)?;
    let mut mk_inbox = mk.subscribe().await.map_err(fail)?;
    t.say("officers of RS.MUP, BA.SPS, ME.UP and MK.MVR connected to their own relays");

    // 1. An operational notice to two authorities.
    let notice = Message::OperationalNotice(examples::notice());
    let notice_id = send(
        &rs,
        Submission {
            to: vec![id("ME.UP")?, id("MK.MVR")?],
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            expires_in_ms: None,
            body: notice.encode().map_err(fail)?,
        },
    )
    .await?;
    t.say(format!(
        "RS.MUP officer sent operational-notice {notice_id} to ME.UP and MK.MVR"
    ));
    for (who, inbox, client) in [
        ("ME.UP", &mut me_inbox, &me),
        ("MK.MVR", &mut mk_inbox, &mk),
    ] {
        let s = next_arrival(inbox).await?;
        t.say(format!(
            "{who} received {} {} from {}",
            s.kind, s.msg_id, s.from
        ));
        fetch_verified(client, roster, s.msg_id, t, &format!("{who} officer")).await?;
    }
    await_delivery(&rs, roster, notice_id, t).await?;

    // 2. A readmission request, read and confirmed.
    let case = CaseId::parse("RS.MUP:2026-000123").map_err(fail)?;
    let request = Message::ReadmissionRequest(Box::new(examples::readmission_request()));
    let request_id = send(
        &rs,
        Submission {
            to: vec![id("BA.SPS")?],
            kind: MessageKind::ReadmissionRequest,
            case_id: Some(case.clone()),
            in_reply_to: None,
            procedure: Some(Procedure::Standard),
            handling: Handling::H2,
            legal_basis: Some("EU–BA readmission agreement, Art. 3".into()),
            expires_in_ms: None,
            body: request.encode().map_err(fail)?,
        },
    )
    .await?;
    t.say(format!(
        "RS.MUP officer sent readmission-request {request_id} (case {case}) to BA.SPS"
    ));
    let arrived = next_arrival(&mut ba_inbox).await?;
    t.say(format!(
        "BA.SPS received {} {} from {}",
        arrived.kind, arrived.msg_id, arrived.from
    ));
    let Message::ReadmissionRequest(req) =
        fetch_verified(&ba, roster, arrived.msg_id, t, "BA.SPS officer").await?
    else {
        return Err(fail("BA.SPS got another kind than it was sent"));
    };
    t.say(format!(
        "BA.SPS officer checks the application: {} {}, born {}, {} document(s)",
        req.person.given_names,
        req.person.surname,
        req.person.birth_date,
        req.documents.len()
    ));
    await_delivery(&rs, roster, request_id, t).await?;
    let view = case_view(&ba, &case).await?;
    t.say(format!(
        "BA.SPS relay's readmission clock: case {} {}, reply due {} (agreement: 10 calendar days, standard procedure)",
        view.case_id,
        view.state.as_str(),
        view.reply_due.map(|d| d.to_string()).unwrap_or_default()
    ));

    let reply = Message::ReadmissionReply(examples::confirmation());
    let reply_id = send(
        &ba,
        Submission {
            to: vec![id("RS.MUP")?],
            kind: MessageKind::ReadmissionReply,
            case_id: Some(case.clone()),
            in_reply_to: Some(arrived.msg_id),
            procedure: None,
            handling: Handling::H2,
            legal_basis: None,
            expires_in_ms: None,
            body: reply.encode().map_err(fail)?,
        },
    )
    .await?;
    t.say(format!(
        "BA.SPS officer confirmed readmission: readmission-reply {reply_id}"
    ));
    let answer = next_arrival(&mut rs_inbox).await?;
    if answer.in_reply_to != Some(request_id) {
        return Err(fail("the reply does not answer the request"));
    }
    fetch_verified(&rs, roster, answer.msg_id, t, "RS.MUP officer").await?;
    await_delivery(&ba, roster, reply_id, t).await?;
    let view = case_view(&rs, &case).await?;
    if view.state != kurir_proto::api::CaseState::Confirmed || view.messages.len() != 2 {
        return Err(fail(format!(
            "case {case} is not confirmed at RS.MUP: {view:?}"
        )));
    }
    t.say(format!(
        "RS.MUP relay's readmission clock: case {} {}, {} messages, transfer due by {}",
        view.case_id,
        view.state.as_str(),
        view.messages.len(),
        view.transfer_due.map(|d| d.to_string()).unwrap_or_default()
    ));

    // 3. Roles are enforced: an auditor cannot send.
    let auditor = officer(fed, "RS.MUP", "auditor").await?;
    match auditor
        .request(&Request::Submit(Submission {
            to: vec![id("ME.UP")?],
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H0,
            legal_basis: None,
            expires_in_ms: None,
            body: notice.encode().map_err(fail)?,
        }))
        .await
        .map_err(fail)?
    {
        Response::Error {
            code: ErrorCode::Forbidden,
            message,
        } => t.say(format!(
            "RS.MUP auditor tried to send and was refused: {message}"
        )),
        other => return Err(fail(format!("an auditor could send: {other:?}"))),
    }
    for c in [rs, ba, me, mk, auditor] {
        c.close().await;
    }
    Ok(())
}
