//! A relay as a child process for the crash suite: `kurir-test-relay
//! --config FILE` starts `kurir_relay::node::Node` exactly as `kurir-relay
//! run --config FILE` does (same configuration loading, system clock, the
//! port from `relay.toml`), prints `ready` on stdout once `Node::start` has
//! returned, logs to stderr, and shuts down gracefully when its stdin
//! closes. The crash suite kills it with SIGKILL at random moments.
//!
//! A binary of this package (rather than `kurir-relay` itself) so that
//! `cargo test -p kurir-tests` always builds it from the current sources
//! and the tests find it through `CARGO_BIN_EXE_kurir-test-relay`.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kurir_relay::clock::SystemClock;
use kurir_relay::config::RelayConfig;
use kurir_relay::node::Node;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let config = match (args.next(), args.next()) {
        (Some(flag), Some(path)) if flag == "--config" => PathBuf::from(path),
        _ => {
            eprintln!("usage: kurir-test-relay --config FILE");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kurir-test-relay: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(config))
}

async fn run(path: PathBuf) -> ExitCode {
    let config = match RelayConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kurir-test-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = std::env::var("KURIR_CHILD_LOG").unwrap_or_else(|_| config.log_level.clone());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let node = match Node::start(config, Arc::new(SystemClock), None).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("kurir-test-relay: cannot start: {e}");
            return ExitCode::from(3);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
            return ExitCode::from(1);
        }
    }
    // Until stdin closes (or the parent goes away).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
    match node.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kurir-test-relay: shutdown: {e}");
            ExitCode::from(1)
        }
    }
}
