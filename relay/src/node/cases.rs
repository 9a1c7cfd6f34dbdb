//! Readmission cases at the relay: the lock under which a message of a
//! case is checked against the stored case and committed with it, and the
//! log line of what a message did to its case.

use kurir_proto::{Header, MessageKind};
use tracing::{info, warn};

use crate::core::cases::{CaseChange, is_case_kind};

/// Readmission cases change one message at a time: the case is read,
/// decided on and stored in the same commit as the message, under this
/// lock.
#[derive(Default)]
pub(super) struct Cases {
    pub(super) lock: tokio::sync::Mutex<()>,
}

impl Cases {
    /// Holds the lock while a message of `kind` is handled, if it belongs
    /// to a case.
    pub(super) async fn guard(&self, kind: MessageKind) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if is_case_kind(kind) {
            Some(self.lock.lock().await)
        } else {
            None
        }
    }
}

/// Logs what a message sent or received did to its case.
pub(super) fn log_case_change(change: &CaseChange, header: &Header) {
    match change {
        CaseChange::Opened(case) => {
            info!(case_id = %case.case_id, due = %case.reply_due(), "readmission case opened");
        }
        CaseChange::Unknown(case_id) => {
            warn!(%case_id, msg_id = %header.id, kind = %header.kind, "message for a case this relay does not know");
        }
        CaseChange::Unchanged | CaseChange::Recorded(_) => {}
    }
}
