//! The kurir relay daemon.
//!
//! # Layout
//!
//! - [`core`]: the sans-IO core. [`core::delivery`] is the sender's outbox
//!   state machine (queued → sending → delivered | retrying | expired |
//!   rejected), driven with simulated time in its tests.
//! - [`store`]: all sled storage, with a group-commit writer; nothing is
//!   acknowledged before it is on disk; a free-space reserve guard and
//!   bounded waits on the disk.
//! - [`crashpoint`]: named abort points for the crash suite (the
//!   `crashpoints` feature; none in a default build).
//!
//! Transport (QUIC + mutual TLS), the officer API, configuration and the
//! demo are not built yet; see `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod config;
pub mod core;
pub mod crashpoint;
pub mod demo;
pub mod federation;
pub mod metrics;
pub mod node;
pub mod store;
