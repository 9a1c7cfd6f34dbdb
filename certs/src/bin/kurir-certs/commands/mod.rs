//! The commands, one module per group: each takes its parsed subcommand and
//! the current time, prints what it did, and returns the exit code.

use anyhow::Result;
use kurir_certs::x509;

use kurir_certs::cli::{Cli, Command};

mod authority;
mod officer;
mod report;
mod revoke;
mod roster;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> Result<u8> {
    let now = x509::now();
    match cli.command {
        Command::Authority(cmd) => authority::authority_cmd(cmd, now),
        Command::Officer(cmd) => officer::officer_cmd(cmd, now),
        Command::Roster(cmd) => roster::roster_cmd(cmd, now),
    }
}
