//! `kurir-demo`: a four-authority federation on loopback, end to end. A thin
//! binary over [`kurir_demo::run`].

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Found a four-authority federation (RS.MUP, BA.SPS, ME.UP, MK.MVR) on
/// loopback and run notices and a readmission case through it.
///
/// Founds a fresh PKI and a roster signed by 2 of 3 roster keys, starts four
/// relays on 127.0.0.1, has officers send an operational notice to two
/// authorities and a readmission request that BA.SPS reads and confirms,
/// verifies every fetched message and every receipt against the roster, and
/// shows that an auditor cannot send. Then AT.BMI joins the running
/// federation: roster v2 adding it is installed at RS.MUP alone, the other
/// relays take it from their peers without a restart, and AT.BMI exchanges
/// a notice with ME.UP. Finally every audit log is exported, verified and
/// reconciled. Prints a timeline.
///
/// Exit codes: 0 every message was delivered and every signature and
/// receipt verified; 1 the demo failed (the message says where).
#[derive(Debug, Parser)]
#[command(name = "kurir-demo", version)]
struct Cli {
    /// Where to put the federation's files (default: a new temporary
    /// directory). Must be new or empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the files afterwards.
    #[arg(long)]
    keep: bool,
    /// Show the relays' own logs on stderr.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose { "info" } else { "error" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kurir-demo: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(kurir_demo::run::run(cli.dir, cli.keep)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kurir-demo: {e}");
            ExitCode::from(1)
        }
    }
}
