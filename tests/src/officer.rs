//! Officer helpers: submitting the example notice, waiting for deliveries,
//! reading the inbox.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kurir_client::Client;
use kurir_proto::MessageId;
use kurir_proto::api::{DeliveryStatus, Request, Response, Submission, Summary};
use kurir_proto::message::{Handling, Message, MessageKind, examples};

use crate::{POLL, STEP_TIMEOUT, authority};

/// A submission of the example operational notice to `to`.
pub fn notice_submission(to: &[&str]) -> Result<Submission> {
    Ok(Submission {
        to: to.iter().map(|t| authority(t)).collect::<Result<_>>()?,
        kind: MessageKind::OperationalNotice,
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        expires_in_ms: None,
        body: Message::OperationalNotice(examples::notice()).encode()?,
    })
}

/// Sends one request and fails on a transport error (not on an error response).
pub async fn request(client: &Client, req: &Request) -> Result<Response> {
    tokio::time::timeout(STEP_TIMEOUT, client.request(req))
        .await
        .map_err(|_| anyhow!("no answer to {req:?} within {STEP_TIMEOUT:?}"))?
        .context("officer request")
}

/// Submits the example notice to `to`; fails unless the relay accepted it.
pub async fn submit_notice(client: &Client, to: &[&str]) -> Result<MessageId> {
    match request(client, &Request::Submit(notice_submission(to)?)).await? {
        Response::Submitted { msg_id, .. } => Ok(msg_id),
        other => bail!("submission refused: {other:?}"),
    }
}

/// The delivery states of a sent message.
pub async fn deliveries(client: &Client, msg_id: MessageId) -> Result<Vec<DeliveryStatus>> {
    match request(
        client,
        &Request::Status {
            msg_id,
            wait_ms: None,
        },
    )
    .await?
    {
        Response::Status { deliveries, .. } => Ok(deliveries),
        other => bail!("status of {msg_id}: {other:?}"),
    }
}

/// Polls the status of `msg_id` every [`POLL`] until `done` holds for its
/// deliveries, for at most [`STEP_TIMEOUT`].
pub async fn await_deliveries(
    client: &Client,
    msg_id: MessageId,
    what: &str,
    done: impl Fn(&[DeliveryStatus]) -> bool,
) -> Result<Vec<DeliveryStatus>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let d = deliveries(client, msg_id).await?;
        if done(&d) {
            return Ok(d);
        }
        if Instant::now() > deadline {
            bail!("{msg_id}: not {what} within {STEP_TIMEOUT:?}; last status {d:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every delivery of `msg_id` is final, and returns them.
pub async fn await_final(client: &Client, msg_id: MessageId) -> Result<Vec<DeliveryStatus>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        // The relay answers when every delivery is final, or when the wait
        // ends; leave a second for the answer to arrive.
        let left = deadline.saturating_duration_since(Instant::now());
        let wait_ms = u64::try_from(left.saturating_sub(Duration::from_secs(1)).as_millis())?;
        let req = Request::Status {
            msg_id,
            wait_ms: Some(wait_ms),
        };
        let d = match tokio::time::timeout(left, client.request(&req)).await {
            Ok(Ok(Response::Status { deliveries, .. })) => deliveries,
            Ok(Ok(other)) => bail!("status of {msg_id}: {other:?}"),
            Ok(Err(e)) => return Err(e).context("officer request"),
            Err(_) => bail!("{msg_id}: no answer within {STEP_TIMEOUT:?}"),
        };
        if !d.is_empty() && d.iter().all(DeliveryStatus::is_final) {
            return Ok(d);
        }
        if Instant::now() >= deadline {
            bail!("{msg_id}: not final within {STEP_TIMEOUT:?}; last status {d:?}");
        }
    }
}

/// The inbox as an officer sees it, oldest first.
pub async fn inbox(client: &Client) -> Result<Vec<Summary>> {
    let req = Request::Inbox {
        unread_only: false,
        kind: None,
        case_id: None,
    };
    match request(client, &req).await? {
        Response::List { items } => Ok(items),
        other => bail!("inbox: {other:?}"),
    }
}
