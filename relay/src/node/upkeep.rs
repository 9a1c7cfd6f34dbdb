//! Upkeep over time: the loop (every minute, and before case, deadline and
//! fetch requests) that moves every readmission case's clock
//! ([`crate::core::deadline`]) and erases the bodies the retention policy
//! says are due ([`crate::core::retention`]).

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use super::{Base, Cases};
use crate::core::events;
use crate::core::retention::settled_at;

/// How often the readmission clock runs by itself (requests for cases and
/// deadlines also run it first).
const CLOCK_INTERVAL: Duration = Duration::from_secs(60);

pub(super) async fn upkeep_loop(base: Arc<Base>, cases: Arc<Cases>) {
    let mut shutdown = base.shutdown.clone();
    loop {
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
/// Which are due is decided by [`crate::core::retention`].
pub(super) async fn erase_due(base: &Base) -> Result<(), crate::store::StoreError> {
    let retention = &base.config.retention;
    if retention.keeps_all() {
        return Ok(());
    }
    let now = base.now();
    let mut due = Vec::new();
    for r in base.store.inbox_all()? {
        let rule = retention.rule(r.kind, true, r.erased.is_some());
        if let Some(policy) = rule.and_then(|rule| rule.due(r.read.as_ref().map(|m| m.at), now)) {
            due.push((r.msg_id, true, policy));
        }
    }
    for o in base.store.outbound_all()? {
        let Some(rule) = retention.rule(o.kind, false, o.erased.is_some()) else {
            continue;
        };
        let deliveries = base.store.deliveries_of(o.msg_id)?;
        if let Some(policy) = rule.due(settled_at(&deliveries), now) {
            due.push((o.msg_id, false, policy));
        }
    }
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
