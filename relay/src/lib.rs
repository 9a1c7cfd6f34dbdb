//! The kurir relay daemon.
//!
//! # Layout
//!
//! - [`core`]: the sans-IO core: state machines and decisions that take
//!   values and `now` and return what to do ([`core::delivery`], the
//!   sender's outbox; [`core::inbound`], checking a parcel; [`core::deadline`],
//!   the readmission clock; [`core::witness`] and [`core::cosign`], both sides
//!   of cosigning; [`core::proofs`], inclusion proofs for held receipts;
//!   [`core::retention`], which bodies are due for erasure).
//! - [`node`]: the tokio/quinn layer that drives the core: the QUIC endpoint
//!   with mutual TLS for peers and officers, the outbox loop, the officer
//!   API, checkpoints and the clock loop.
//! - [`store`]: all sled storage, with a group-commit writer; nothing is
//!   acknowledged before it is on disk; large bodies in body files; a
//!   free-space reserve guard and bounded waits on the disk.
//! - [`config`], [`audit`] (export bundles), [`metrics`], [`clock`].
//! - [`crashpoint`]: named abort points for the crash suite (the
//!   `crashpoints` feature; none in a default build).
//!
//! `docs/ARCHITECTURE.md` has the whole map.

#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod config;
pub mod core;
pub mod crashpoint;
pub mod metrics;
pub mod node;
pub mod store;
