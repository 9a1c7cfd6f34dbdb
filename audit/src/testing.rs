//! Helpers shared by the unit tests: logs built entry by entry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kurir_proto::audit::Entry;
use kurir_proto::{AuthorityId, MessageId};

use crate::Log;

/// 2026-11-28T13:54:10Z.
pub(crate) const T0: u64 = 1_795_874_050_000;

pub(crate) fn auth(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

pub(crate) fn msg(n: u8) -> MessageId {
    MessageId::new_v7(T0, [n; 10])
}

/// Appends `e` at the end of `log` (its index set); returns the index.
pub(crate) fn push(log: &mut Log, e: Entry) -> u64 {
    let index = log.entries.len() as u64;
    log.entries.push(Entry { index, ..e });
    index
}

pub(crate) fn empty(who: &str) -> Log {
    Log {
        authority: auth(who),
        entries: vec![],
        receipts: vec![],
    }
}
