//! The federation test harness: real relays on loopback with a fresh PKI in
//! temporary directories.
//!
//! [`Harness::new`] founds a federation with `kurir_demo::federation::found`
//! (the same code the demo, `kurir-demo`, uses) in a [`tempfile::TempDir`] the
//! harness owns: every member gets an authority directory, a signed roster
//! entry, a `relay.toml`, an officer named [`DUTY_OFFICER`] and one named
//! [`AUDITOR`], and a UDP socket pre-bound on `127.0.0.1:0` so the roster names
//! the real port. Relays are then started, stopped and restarted by id; a
//! restarted relay reads the same `relay.toml` and data directory and binds
//! the same port again.
//!
//! Until a relay is first started, its pre-bound socket stays open with
//! nobody reading it: packets sent to it are held by the OS (an attempt to
//! connect times out) and the relay reads them, stale, when it starts. After
//! [`Harness::stop`] the port is closed.
//!
//! Tests talk to relays as officers ([`Harness::officer`], a
//! [`kurir_client::Client`]) or, to play a misbehaving or duplicating peer,
//! over a raw peer connection ([`PeerLink`]) with any member's node
//! credentials or foreign ones.
//!
//! Nothing waits a fixed time for an event: [`await_final`] asks the relay to
//! answer once every delivery is final (`status` with `wait_ms`),
//! [`await_deliveries`] polls the relay's status every [`POLL`] for other
//! conditions, both up to [`STEP_TIMEOUT`], and the relay logs are captured
//! ([`logs`]) so a test can wait for a line.
//!
//! # Layout
//!
//! - [`harness`]: [`Harness`], the federation and its relays.
//! - [`officer`]: officer helpers (submit the example notice, await
//!   deliveries, read the inbox).
//! - [`peer`]: [`PeerLink`], playing a peer relay; checking signed rejections.
//! - [`audit`]: verifying a stopped relay's audit log offline.
//! - [`logs`]: the relays' log lines, captured.
//! - [`witness`]: [`witness::HostileWitness`], a member's relay played by
//!   the test as a server (answering cosigning requests as it decides).
//! - `child.rs`: [`child::RelayChild`], a relay as a child process.
//! - `proxy.rs`: [`proxy::FaultProxy`], the UDP fault proxy of the
//!   partition suite.
//! - `tests/*.rs`: end-to-end tests, one binary per area (`delivery.rs`,
//!   `restart.rs`, `peers.rs`, `hostile.rs`, `partition.rs`, `crash.rs`,
//!   `decoders.rs`, `cosign.rs`, `overload.rs`, `rotation.rs`
//!   (log-key rotation and node-certificate renewal while relays run), `roster.rs` (rosters
//!   while relays run), `revoke.rs` (node certificates and message keys revoked
//!   in the roster), and `cli.rs`, the `kurir`
//!   command line driven as an officer and an auditor would).
//! - `src/bin/`: `kurir-test-relay` (a relay as a child process, with crash
//!   points) and `kurir-test-cli` (the `kurir` command line).

#![forbid(unsafe_code)]

pub mod child;
pub mod proxy;

pub mod audit;
pub mod harness;
pub mod logs;
pub mod officer;
pub mod peer;
pub mod witness;

pub use audit::{AuditCheck, verify_audit_log};
pub use harness::Harness;
pub use officer::*;
pub use peer::*;

use std::time::Duration;

use anyhow::{Context, Result};
use kurir_proto::AuthorityId;

/// The officer every founded member has (role `officer`).
pub const DUTY_OFFICER: &str = "duty officer";
/// The auditor every founded member has (role `auditor`).
pub const AUDITOR: &str = "auditor";
/// How long any one awaited event may take before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a status is polled.
pub const POLL: Duration = Duration::from_millis(20);
/// How long a restarted relay may wait for the stopped one's port and
/// database lock to be released.
pub(crate) const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Seed of the harness's randomness (message ids, salts, stray keys).
pub(crate) const SEED: u64 = 0x006b_7572_6972;

/// Parses an authority id.
pub fn authority(s: &str) -> Result<AuthorityId> {
    AuthorityId::parse(s).with_context(|| format!("{s:?} is not an authority id"))
}

/// `GET /metrics` of a running relay at `addr` (its `[metrics] listen`
/// address): the whole HTTP answer, head and body, on a connection closed
/// after it.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> Result<String> {
    kurir_demo::federation::scrape_metrics(addr)
        .await
        .with_context(|| format!("GET /metrics from {addr}"))
}
