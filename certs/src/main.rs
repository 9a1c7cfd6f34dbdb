//! `kurir-certs`: the PKI and the signed federation roster.
//!
//! # Layout
//!
//! For now only the command line exists; authority, officer and roster
//! commands arrive with the PKI. See `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

use clap::Parser;

/// kurir PKI: create an authority's CA and keys, issue and revoke officer
/// certificates, and build, sign and verify the federation roster that says
/// who the members are, where their relays listen and which keys they use.
///
/// Not yet implemented in this version: every subcommand. Only `--help` and
/// `--version` work.
#[derive(Debug, Parser)]
#[command(name = "kurir-certs", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
}
