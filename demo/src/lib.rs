//! The kurir demo and the founding of local federations.
//!
//! The relay daemon does not link the officer's CLI library, and neither
//! links the other; a demo needs both (relays to run, officers to send and
//! read). So it lives here, in a crate of its own, with the code that founds
//! a whole federation on loopback, which the test harness (`kurir-tests`)
//! and the benchmarks (`kurir-bench`) use too.
//!
//! # Layout
//!
//! - [`federation`]: founds a federation in one directory with the
//!   `kurir-certs` library: each authority's PKI, a roster signed by 2 of 3
//!   roster keys, officer certificates, a `relay.toml` per authority and
//!   pre-bound loopback sockets.
//! - [`run`]: the demo itself (`kurir-demo`): four relays, a notice to two
//!   authorities, a readmission case read and confirmed, every signature
//!   and receipt verified against the roster, a timeline on stdout; then
//!   the audit of every log.
//! - `join`: the demo's second act: AT.BMI joins through roster v2
//!   installed at RS.MUP alone, taken by the other relays from their peers
//!   without restarts, and exchanges a notice with ME.UP.

#![forbid(unsafe_code)]

pub mod federation;
mod join;
pub mod run;
