//! `kurir-certs`: the PKI and the signed federation roster, for admins.
//!
//! A thin command line over the `kurir_certs` library; `docs/PKI.md` is the
//! guide. Data goes to stdout, diagnostics to stderr.
//!
//! # Layout
//!
//! - `cli`: the clap definitions of every command, flag and help text;
//! - `commands`: one module per command group (`authority`, `officer`,
//!   `roster`, and `report`, the output of `roster verify` and `show`);
//! - `exit`: the exit codes and the error-to-code mapping.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use kurir_certs::cli;

mod commands;
mod exit;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::exit_code(&err))
        }
    }
}
