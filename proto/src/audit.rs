//! The audit log: what a relay records about every event, as leaves of its
//! RFC 6962 Merkle log (see [`crate::merkle`]), signed checkpoints of it,
//! and the formats auditors and peers exchange about it. `docs/AUDIT.md` is
//! the normative description.
//!
//! - `entry.rs`: [`Entry`], an entry's wire fields (deterministic CBOR,
//!   strict decoding), and [`receipt_digest`], how entries name receipts.
//! - `event.rs`: [`Event`], the events by name, [`CaseDeadline`], [`DeliveryFailure`] and
//!   [`ReadRefusal`].
//! - `record.rs`: [`Record`], the typed events, each with exactly the data
//!   it records, and the text of every entry's `code` (`record/code.rs`).
//! - `log.rs`: [`verify_log`], an offline check of entries and
//!   checkpoints; the peers' cosignatures on a checkpoint ([`cosigners`]);
//!   [`log_origin`].
//! - `inclusion.rs`: [`InclusionProof`], an entry proved in a signed
//!   checkpoint.
//! - `bundle.rs`: the export [`Bundle`] and its [`BundleReceipt`]s.
//! - `peer.rs`: the control messages between relays ([`PeerRequest`],
//!   [`PeerResponse`]).

mod bundle;
mod entry;
mod event;
mod inclusion;
mod log;
mod peer;
mod record;
#[cfg(test)]
mod testing;

pub use bundle::{BUNDLE_FORMAT, Bundle, BundleReceipt, ReceiptKind, serde_bytes_vec};
pub use entry::{Entry, EntryError, MAX_TEXT, RECEIPT_TAG, receipt_digest};
pub use event::{CaseDeadline, DeliveryFailure, Event, ReadRefusal};
pub use inclusion::{InclusionError, InclusionProof};
pub use log::{
    LogError, LogReport, cosigners, cosigners_with, log_origin, verify_log, verify_log_with,
};
pub use peer::{MAX_PROVE, MAX_ROSTER_CHAIN, PeerRequest, PeerResponse};
pub use record::{Record, RecordError};
