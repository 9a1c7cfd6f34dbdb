//! `kurir watch`: new messages as they arrive, until Ctrl-C.

use anyhow::Result;
use kurir_proto::api::Response;

use super::{Ctx, Session, unexpected};
use crate::exit::{Exit, fail};
use crate::output::{self, short_time, summary_json};

/// `kurir watch`
pub async fn run(ctx: &Ctx, s: &Session) -> Result<()> {
    let mut sub = s
        .client()
        .await?
        .subscribe()
        .await
        .map_err(|e| fail(Exit::Connection, format!("cannot subscribe: {e}")))?;
    output::note(format!(
        "watching for new messages at {} (Ctrl-C to stop)",
        s.profile.relay
    ));
    loop {
        tokio::select! {
            next = sub.next() => match next {
                Ok(Some(Response::Event { summary })) => {
                    ctx.out.line("arrival", summary_json(&summary));
                    ctx.out.text(format!(
                        "{}  {:<27}  from {}{}  {}",
                        short_time(summary.stored_at),
                        summary.kind.as_str(),
                        summary.from,
                        summary.case_id.as_ref().map(|c| format!("  case {c}")).unwrap_or_default(),
                        summary.msg_id
                    ));
                }
                Ok(Some(Response::Error { code, message })) => {
                    return Err(fail(Exit::of_relay(code), format!("the relay refused: {message}")));
                }
                Ok(Some(other)) => return Err(unexpected(&other)),
                Ok(None) => {
                    return Err(fail(Exit::Connection, "the relay closed the stream (shutting down?)"));
                }
                Err(e) => return Err(fail(Exit::Connection, format!("the stream broke: {e}"))),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
