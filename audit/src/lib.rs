//! The auditor's side of kurir: offline tools for the audit bundles a relay
//! exports (`kurir-relay audit-export`, `kurir audit export`).
//!
//! A bundle is one authority's whole audit log with everything needed to
//! check it without the relay: its entries, signed checkpoints, the rosters
//! it accepted, the receipts it issued and holds, and the signed envelopes
//! of the messages it sent and received (`docs/AUDIT.md`). This crate
//!
//! - writes a bundle directory ([`bundle::write`], the one writer, used by
//!   the relay's export and by the `kurir` CLI) and reads one
//!   ([`bundle::read`]);
//! - verifies a bundle ([`load_verified`]): rosters, entries, checkpoints,
//!   cosignatures, receipts, inclusion proofs and envelopes, with the first
//!   problem as a typed [`VerifyError`];
//! - cross-checks the bundles of two authorities ([`reconcile_logs`]), with
//!   each disagreement a typed [`Finding`];
//! - selects entries for a timeline ([`Filter`]), and the reads of a
//!   message's body in it ([`Read`]).
//!
//! It is a library of pure checks over files: no async runtime, no network,
//! no printing. The `kurir` CLI does the printing and maps the errors to
//! its exit codes.
//!
//! # Layout
//!
//! - [`bundle`]: reading a bundle directory, and writing one.
//! - [`verify`]: [`load_verified`] and what it returns ([`VerifiedBundle`],
//!   [`Log`], [`KeptReceipt`]); the rosters, receipts (with their inclusion
//!   proofs) and envelopes are checked in its submodules.
//! - [`reconcile`]: [`reconcile_logs`] and its findings ([`Finding`],
//!   [`Discrepancy`]).
//! - [`timeline`]: the selection of `kurir audit show` ([`Filter`]), the
//!   reads it lists ([`Read`]) and its time bounds ([`time_bound`]).
//! - [`error`]: [`VerifyError`] and the problems it names.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
pub mod error;
pub mod reconcile;
pub mod report;
pub mod silence;
pub mod timeline;
pub mod verify;

#[cfg(test)]
mod testing;

pub use bundle::WriteError;
pub use error::{
    EnvelopeProblem, InclusionProblem, Problem, ReceiptProblem, RosterProblem, VerifyError,
};
pub use kurir_proto::audit::ReceiptKind;
pub use reconcile::{
    Direction, Discrepancy, Finding, FindingKind, HeldProblem, Reconciliation, reconcile_logs,
};
pub use silence::{LogView, NoProof, Silence, prove_silence};
pub use timeline::{Filter, Read, TimeBoundError, time_bound};
pub use verify::{
    Anchored, Anchors, KeptReceipt, Log, MAX_CLOCK_SKEW_MS, RosterAnchor, VerifiedBundle,
    WitnessSource, Witnessed, load_verified, load_verified_with, witnessed_in,
};
