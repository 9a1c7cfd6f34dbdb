//! `kurir-relay`: the daemon that runs at each authority.
//!
//! # Layout
//!
//! For now only the command line exists; the daemon (`run`) and the
//! federation demo (`demo`) are built on top of `kurir-proto` and
//! `kurir-certs` next. See `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

use clap::Parser;

/// The kurir relay: exchanges signed messages with the relays of other
/// authorities over QUIC with mutual TLS, keeps every delivery in a
/// tamper-evident audit log, and serves this authority's officers.
///
/// Not yet implemented in this version: `run` (the daemon) and `demo`
/// (a local four-authority federation). Only `--help` and `--version` work.
#[derive(Debug, Parser)]
#[command(name = "kurir-relay", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
}
