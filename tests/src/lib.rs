//! The federation test harness: real relays on loopback with a fresh PKI in
//! temporary directories.
//!
//! # Layout
//!
//! - `tests/*.rs`: end-to-end tests, one binary per area.
//!
//! The harness that starts relays arrives with the relay; until then the
//! end-to-end tests exercise the protocol crate through its public API, as a
//! peer implementation would.

#![forbid(unsafe_code)]
