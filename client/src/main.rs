//! `kurir`: the command-line tool for officers and auditors.
//!
//! # Layout
//!
//! For now only the command line exists; the commands that talk to the
//! officer's own relay arrive with the relay. See `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

use clap::Parser;

/// kurir for officers and auditors: send notices and readmission
/// applications to other authorities through your own relay, read your
/// inbox, follow cases and their deadlines, and verify audit logs offline.
///
/// Not yet implemented in this version: every subcommand. Only `--help` and
/// `--version` work.
#[derive(Debug, Parser)]
#[command(name = "kurir", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
}
