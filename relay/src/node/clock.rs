//! Readmission cases and retention over time: the clock loop (every
//! minute, and before case, deadline and fetch requests) that moves every
//! case's clock and erases the bodies the retention policy says are due,
//! and the change a readmission message makes to its case when it is sent
//! or received.

use std::sync::Arc;
use std::time::Duration;

use kurir_proto::api::Summary;
use kurir_proto::audit::{Entry, Record};
use kurir_proto::{Header, Message, Timestamp};
use tracing::{error, info, warn};

use super::Shared;
use crate::core::deadline::Case;
use crate::core::retention::settled_at;

/// The case a readmission message opens or updates (sent or received).
pub(super) fn case_with(
    shared: &Shared,
    header: &Header,
    message: &Message,
    summary: Summary,
    now: Timestamp,
) -> Option<Case> {
    let case_id = header.case_id.as_ref()?;
    let agreements = &shared.config.agreements;
    let existing = match shared.store.case(case_id) {
        Ok(c) => c,
        Err(e) => {
            error!(%case_id, error = %e, "cannot read a case");
            return None;
        }
    };
    match (message, existing) {
        (Message::ReadmissionRequest(r), None) => {
            let case = Case::open(header, summary, r.procedure, now, agreements)?;
            info!(%case_id, due = %case.reply_due(), "readmission case opened");
            Some(case)
        }
        (_, Some(mut case)) => {
            case.apply(header, summary, message, now, agreements);
            Some(case)
        }
        (_, None) => {
            warn!(%case_id, msg_id = %header.id, kind = %header.kind, "message for a case this relay does not know");
            None
        }
    }
}

/// How often the readmission clock runs by itself (requests for cases and
/// deadlines also run it first).
const CLOCK_INTERVAL: Duration = Duration::from_secs(60);

pub(super) async fn clock_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        if let Err(e) = tick_cases(&shared).await {
            error!(error = %e, "cannot run the readmission clock");
        }
        if let Err(e) = erase_due(&shared).await {
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
pub(super) async fn erase_due(shared: &Shared) -> Result<(), crate::store::StoreError> {
    let retention = &shared.config.retention;
    if retention.keeps_all() {
        return Ok(());
    }
    let now = shared.now();
    let mut due = Vec::new();
    for r in shared.store.inbox_all()? {
        let rule = retention.rule(r.kind, true, r.erased.is_some());
        if let Some(policy) = rule.and_then(|rule| rule.due(r.read.as_ref().map(|m| m.at), now)) {
            due.push((r.msg_id, true, policy));
        }
    }
    for o in shared.store.outbound_all()? {
        let Some(rule) = retention.rule(o.kind, false, o.erased.is_some()) else {
            continue;
        };
        let deliveries = shared.store.deliveries_of(o.msg_id)?;
        if let Some(policy) = rule.due(settled_at(&deliveries), now) {
            due.push((o.msg_id, false, policy));
        }
    }
    for (msg_id, inbox, policy) in due {
        let entry = Entry::new(
            now,
            Record::BodyErased {
                msg_id,
                policy: policy.clone(),
            },
        );
        let erased = crate::store::Erased { at: now, policy };
        shared
            .store
            .erase_body(msg_id, inbox, erased, vec![entry])
            .await?;
        info!(%msg_id, "body erased under the retention policy");
    }
    Ok(())
}

/// Moves every case's clock to now and stores what changed.
pub(super) async fn tick_cases(shared: &Shared) -> Result<(), crate::store::StoreError> {
    let _guard = shared.cases_lock.lock().await;
    let now = shared.now();
    for mut case in shared.store.cases()? {
        let events = case.tick(now, &shared.config.agreements);
        if events.is_empty() {
            continue;
        }
        let mut audit = Vec::with_capacity(events.len());
        for e in &events {
            info!(case_id = %case.case_id, event = %e.event.what, "deadline event");
            audit.push(Entry::new(
                now,
                Record::Deadline {
                    case_id: case.case_id.clone(),
                    what: e.code,
                },
            ));
        }
        shared.store.put_case(case, audit).await?;
    }
    Ok(())
}
