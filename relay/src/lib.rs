//! The kurir relay daemon.
//!
//! # Layout
//!
//! - [`core`]: the sans-IO core: state machines and decisions that take
//!   values and `now` and return what to do ([`core::submit`], an
//!   officer's submission checked and signed; [`core::inbound`], a parcel
//!   checked, accepted or refused, and receipts checked; [`core::cases`],
//!   the rules of readmission cases in both directions; [`core::deadline`],
//!   the readmission clock; [`core::delivery`], the sender's outbox;
//!   [`core::events`], the audit entries; [`core::witness`] and
//!   [`core::cosign`], both sides of cosigning; [`core::roster`], what a
//!   newer roster changes; [`core::proofs`], inclusion proofs for held
//!   receipts; [`core::retention`], which bodies are due
//!   for erasure).
//! - [`node`]: the tokio/quinn layer that drives the core: the QUIC endpoint
//!   with mutual TLS for peers and officers, the outbox loop, the officer
//!   API, checkpoints and the upkeep loop (readmission clock, retention);
//!   its state in parts, each task given the parts it uses.
//! - [`store`]: all sled storage, with a group-commit writer; nothing is
//!   acknowledged before it is on disk; large bodies in body files; a
//!   free-space reserve guard and bounded waits on the disk.
//! - [`backup`]: `kurir-relay backup` and `restore`, and the admin socket
//!   a running relay answers a backup on.
//! - [`cli`]: the command line of `kurir-relay` (clap definitions);
//!   [`commands`]: what each command does, prints and exits with;
//!   [`install`]: `kurir-relay roster install`, a newer roster verified
//!   and put in place for a relay.
//! - [`config`], [`audit`] (export bundles), [`metrics`], [`clock`] (where
//!   "now" comes from: the system clock, or a clock tests move).
//! - [`crashpoint`]: named abort points for the crash suite (the
//!   `crashpoints` feature; none in a default build).
//!
//! Errors: the driver's is [`node::NodeError`]; the core's decisions return
//! typed refusals ([`core::submit::SubmitRefusal`],
//! [`core::cases::CaseRefusal`], [`core::inbound::Refusal`],
//! [`core::inbound::ReceiptError`], [`core::witness::WitnessRefusal`]);
//! the store's is [`store::StoreError`].
//!
//! `docs/ARCHITECTURE.md` has the whole map.

#![forbid(unsafe_code)]

pub mod audit;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod core;
pub mod crashpoint;
pub mod install;
pub mod metrics;
pub mod node;
pub mod store;
