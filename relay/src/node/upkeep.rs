//! Upkeep over time: the loop (every minute, and before case and deadline
//! requests) that logs the expiry warnings due ([`crate::core::expiry`]),
//! moves every readmission case's clock
//! ([`crate::core::deadline`]) and erases the bodies the retention policy
//! says are due ([`crate::core::retention`]); a fetch erases the one
//! message it shows first, if it is due.

use std::sync::Arc;
use std::time::Duration;

use kurir_proto::{MessageId, Timestamp};
use tracing::{error, info};

use super::expiry::Expiry;
use super::{Authority, Base, Cases};
use crate::core::events;
use crate::core::retention::settled_at;
use crate::store::{InboxRecord, OutboundRecord};

/// How often the readmission clock runs by itself (requests for cases and
/// deadlines also run it first).
const CLOCK_INTERVAL: Duration = Duration::from_secs(60);

pub(super) async fn upkeep_loop(
    base: Arc<Base>,
    cases: Arc<Cases>,
    authority: Arc<Authority>,
    expiry: Arc<Expiry>,
    revocation: Arc<super::revocation::Revocation>,
) {
    let mut shutdown = base.shutdown.clone();
    loop {
        expiry.refresh_officers(&revocation.revoked());
        let live = super::expiry::Live {
            keys: &authority.message_keys(),
            log_key_before: authority.log_key_before(),
        };
        expiry.warn_due(&live, base.now());
        if let Err(e) = tick_cases(&base, &cases).await {
            error!(error = %e, "cannot run the readmission clock");
        }
        if let Err(e) = erase_due(&base).await {
            error!(error = %e, "cannot apply the retention policy");
        }
        tokio::select! {
            _ = tokio::time::sleep(CLOCK_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Erases the bodies the retention policy says are due: received messages
/// some days after they were first read, sent ones some days after their
/// last delivery became final. Unread and undelivered messages are kept.
/// Which are due is decided by [`crate::core::retention`]. Reads every
/// record: the upkeep loop runs it once a minute.
pub(super) async fn erase_due(base: &Base) -> Result<(), crate::store::StoreError> {
    if base.config.retention.keeps_all() {
        return Ok(());
    }
    let now = base.now();
    let mut due = Vec::new();
    for r in base.store.inbox_all()? {
        due.extend(inbox_due(base, &r, now));
    }
    for o in base.store.outbound_all()? {
        due.extend(outbound_due(base, &o, now)?);
    }
    erase(base, due, now).await
}

/// Erases the body of `msg_id` if it is due, so nothing due is shown:
/// what a fetch runs first. Reads that one message only (the rest is the
/// upkeep loop's).
pub(super) async fn erase_if_due(
    base: &Base,
    msg_id: MessageId,
) -> Result<(), crate::store::StoreError> {
    if base.config.retention.keeps_all() {
        return Ok(());
    }
    let now = base.now();
    let mut due = Vec::new();
    if let Some(r) = base.store.inbox(msg_id)? {
        due.extend(inbox_due(base, &r, now));
    }
    if let Some(o) = base.store.outbound(msg_id)? {
        due.extend(outbound_due(base, &o, now)?);
    }
    erase(base, due, now).await
}

/// A body due for erasure: the message, whether it was received, the
/// rule's text.
type Due = (MessageId, bool, String);

fn inbox_due(base: &Base, r: &InboxRecord, now: Timestamp) -> Option<Due> {
    let rule = base
        .config
        .retention
        .rule(r.kind, true, r.erased.is_some())?;
    let policy = rule.due(r.read.as_ref().map(|m| m.at), now)?;
    Some((r.msg_id, true, policy))
}

fn outbound_due(
    base: &Base,
    o: &OutboundRecord,
    now: Timestamp,
) -> Result<Option<Due>, crate::store::StoreError> {
    let Some(rule) = base
        .config
        .retention
        .rule(o.kind, false, o.erased.is_some())
    else {
        return Ok(None);
    };
    let deliveries = base.store.deliveries_of(o.msg_id)?;
    Ok(rule
        .due(settled_at(&deliveries), now)
        .map(|policy| (o.msg_id, false, policy)))
}

async fn erase(base: &Base, due: Vec<Due>, now: Timestamp) -> Result<(), crate::store::StoreError> {
    for (msg_id, inbox, policy) in due {
        let entry = events::body_erased(now, msg_id, &policy);
        let erased = crate::store::Erased { at: now, policy };
        base.store
            .erase_body(msg_id, inbox, erased, vec![entry])
            .await?;
        info!(%msg_id, "body erased under the retention policy");
    }
    Ok(())
}

/// Moves every case's clock to now and stores what changed.
pub(super) async fn tick_cases(base: &Base, cases: &Cases) -> Result<(), crate::store::StoreError> {
    let _guard = cases.lock.lock().await;
    let now = base.now();
    for mut case in base.store.cases()? {
        let ticked = case.tick(now, &base.config.agreements);
        if ticked.is_empty() {
            continue;
        }
        let mut audit = Vec::with_capacity(ticked.len());
        for e in &ticked {
            info!(case_id = %case.case_id, event = %e.event.what, "deadline event");
            audit.push(events::deadline(now, &case, e));
        }
        base.store.put_case(case, audit).await?;
    }
    Ok(())
}
