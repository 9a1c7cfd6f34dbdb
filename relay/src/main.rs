//! `kurir-relay`: thin binary over the `kurir_relay` library.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use kurir_relay::cli::{Cli, Command, RosterCommand};
use kurir_relay::clock::SystemClock;
use kurir_relay::config::{LogFormat, RelayConfig};
use kurir_relay::node::Node;

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kurir-relay: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Run { config } => runtime.block_on(run(config)),
        Command::VerifyLog { data_dir } => verify_log(&data_dir),
        Command::Roster {
            command: RosterCommand::Install { file, config },
        } => install_roster(&config, &file),
        Command::AuditExport { data_dir, out } => {
            use kurir_relay::clock::Clock;
            match kurir_relay::audit::export(&data_dir, &out, SystemClock.now()) {
                Ok(r) => {
                    println!(
                        "exported {} entries, {} checkpoints and {} receipts to {}",
                        r.entries,
                        r.checkpoints,
                        r.receipts,
                        out.display()
                    );
                    println!("verify it with: kurir audit verify {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kurir-relay: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `kurir-relay roster install`.
fn install_roster(config: &std::path::Path, file: &std::path::Path) -> ExitCode {
    use kurir_relay::clock::Clock;
    use kurir_relay::install::{InstallError, Installed, install};
    match install(config, file, SystemClock.now()) {
        Ok(Installed::AlreadyInForce { version }) => {
            println!(
                "{} is the roster in force (version {version}): nothing to do",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Ok(Installed::Written {
            path,
            from,
            version,
            fingerprint,
        }) => {
            println!(
                "installed roster version {version} (fingerprint {fingerprint}) at {}, \
                 replacing version {from}",
                path.display()
            );
            println!(
                "the running relay takes it within [roster] check_secs, or at once on SIGHUP \
                 (kill -HUP <pid>); it logs \"new roster in force\""
            );
            ExitCode::SUCCESS
        }
        Err(e @ InstallError::Config(_)) => {
            eprintln!("kurir-relay: {e}");
            ExitCode::from(2)
        }
        Err(e @ InstallError::File(_)) => {
            eprintln!("kurir-relay: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("kurir-relay: {e}");
            ExitCode::from(1)
        }
    }
}

/// `kurir-relay verify-log`: the whole audit log of a stopped relay.
fn verify_log(data_dir: &std::path::Path) -> ExitCode {
    use kurir_relay::store::StoreError;
    match kurir_relay::store::verify_log(data_dir) {
        Ok(r) => {
            println!(
                "the audit log in {} verifies: {} entries, each linked to the one before; \
                 {} checkpoints and {} Merkle frontiers match the log; {} subtree hashes \
                 checked; root {}",
                data_dir.display(),
                r.entries,
                r.checkpoints,
                r.frontiers,
                r.subtrees,
                r.root
            );
            ExitCode::SUCCESS
        }
        Err(e @ StoreError::Corrupt { .. }) => {
            eprintln!("kurir-relay: the audit log does not verify: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("kurir-relay: cannot check the audit log: {e}");
            ExitCode::from(3)
        }
    }
}

async fn run(path: PathBuf) -> ExitCode {
    let config = match RelayConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kurir-relay: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format, &config.log_level);
    let node = match Node::start(config, Arc::new(SystemClock), None).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("kurir-relay: cannot start: {e}");
            return ExitCode::from(3);
        }
    };
    wait_for_signal(&node).await;
    match node.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kurir-relay: shutdown: {e}");
            ExitCode::from(1)
        }
    }
}

/// Waits for SIGTERM or ctrl-c. SIGHUP reloads the CRL and the roster (the
/// outcomes are logged; a refused CRL or roster leaves the one in force)
/// and keeps waiting.
async fn wait_for_signal(node: &Node) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (term, hup) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        match (term, hup) {
            (Ok(mut term), Ok(mut hup)) => loop {
                tokio::select! {
                    _ = term.recv() => return,
                    _ = tokio::signal::ctrl_c() => return,
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading the CRL and the roster");
                        let _ = node.reload_crl();
                        let _ = node.reload_roster().await;
                    }
                }
            },
            _ => {
                tracing::warn!("cannot listen for SIGTERM/SIGHUP; stop the relay with ctrl-c");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = node;
        let _ = tokio::signal::ctrl_c().await;
    }
}
