//! `kurir-certs` itself for the end-to-end tests (`tests/runbooks.rs`):
//! the binary's own `main`, `commands` and `exit` modules compiled from
//! their sources in `certs/src/bin/kurir-certs/`, as a binary of this
//! package, so that `cargo test -p kurir-tests` builds it from the current
//! sources and the tests find it through `CARGO_BIN_EXE_kurir-test-certs`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use kurir_certs::cli;

#[path = "../../../certs/src/bin/kurir-certs/commands/mod.rs"]
mod commands;
#[path = "../../../certs/src/bin/kurir-certs/exit.rs"]
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
