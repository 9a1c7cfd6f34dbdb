//! What `kurir-relay` does, behind its thin `main.rs`: parsing the
//! command line ([`crate::cli`]), logging, and each command's output and
//! exit code. Also the `main` of the test binary that the end-to-end tests
//! run as `kurir-relay`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Cli, Command, RosterCommand};
use crate::clock::SystemClock;
use crate::config::{LogFormat, RelayConfig};
use crate::node::Node;
use clap::{CommandFactory, FromArgMatches};

/// The global allocator of the running binary: its `main` sets it (Rust's
/// `#[global_allocator]`) and names it here, for `--version` and the
/// start-up log line, so an admin can see which one a relay runs with and
/// which environment variables tune it (docs/CONFIG.md, "Memory").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// The C library's malloc (glibc on Linux): tuned by `MALLOC_ARENA_MAX`,
    /// `MALLOC_TRIM_THRESHOLD_` and the other `MALLOC_*` variables.
    System,
    /// mimalloc: tuned by the `MIMALLOC_*` variables.
    Mimalloc,
    /// jemalloc (tikv-jemallocator, its symbols prefixed): tuned by
    /// `_RJEM_MALLOC_CONF`.
    Jemalloc,
}

impl Allocator {
    /// Its name as `--version` and the log print it.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::System => "system",
            Allocator::Mimalloc => "mimalloc",
            Allocator::Jemalloc => "jemalloc",
        }
    }

    /// The `--version` text: the package version and the allocator.
    fn version(self) -> &'static str {
        match self {
            Allocator::System => concat!(env!("CARGO_PKG_VERSION"), " (allocator: system)"),
            Allocator::Mimalloc => concat!(env!("CARGO_PKG_VERSION"), " (allocator: mimalloc)"),
            Allocator::Jemalloc => concat!(env!("CARGO_PKG_VERSION"), " (allocator: jemalloc)"),
        }
    }

    /// The environment variables that tune it, as set for this process
    /// (`NAME=value`, space-separated; empty if none is set).
    fn tuning(self) -> String {
        let wanted = |name: &str| match self {
            Allocator::System => name.starts_with("MALLOC_"),
            Allocator::Mimalloc => name.starts_with("MIMALLOC_"),
            Allocator::Jemalloc => name == "_RJEM_MALLOC_CONF",
        };
        let mut set: Vec<String> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                wanted(&k).then(|| format!("{k}={}", v.to_string_lossy()))
            })
            .collect();
        set.sort();
        set.join(" ")
    }
}

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

/// Runs `kurir-relay` with the process's arguments; `allocator` is the
/// global allocator the binary set.
pub fn main(allocator: Allocator) -> ExitCode {
    let matches = Cli::command().version(allocator.version()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
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
        Command::Run { config } => runtime.block_on(run(config, allocator)),
        Command::VerifyLog { data_dir } => verify_log(&data_dir),
        Command::Roster {
            command: RosterCommand::Install { file, config },
        } => install_roster(&config, &file),
        Command::Backup { config, out } => runtime.block_on(backup(&config, &out)),
        Command::Restore {
            from,
            config,
            force,
        } => restore(&from, &config, force),
        Command::AuditExport { data_dir, out } => {
            use crate::clock::Clock;
            match crate::audit::export(&data_dir, &out, SystemClock.now()) {
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
fn install_roster(config: &Path, file: &Path) -> ExitCode {
    use crate::clock::Clock;
    use crate::install::{InstallError, Installed, install};
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
    use crate::store::StoreError;
    match crate::store::verify_log(data_dir) {
        Ok(r) => {
            if r.recovered > 0 {
                println!(
                    "{} commits the store's journal held and the database lacked (the relay \
                     stopped without closing its store) were applied first, as the relay's next \
                     start would",
                    r.recovered
                );
            }
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

/// The configuration at `path`, for the commands that only need its data
/// directory; logs to stderr at `info`.
fn load_for_tool(path: &Path) -> Result<RelayConfig, ExitCode> {
    match RelayConfig::load(path) {
        Ok(c) => {
            init_logging(c.log_format, "warn,kurir_relay=info");
            Ok(c)
        }
        Err(e) => {
            eprintln!("kurir-relay: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// `kurir-relay backup`.
async fn backup(config: &Path, out: &Path) -> ExitCode {
    use crate::backup::BackupError;
    use crate::store::StoreError;
    let config = match load_for_tool(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::backup::backup(&config.data_dir, out).await {
        Ok(r) => {
            let (s, c) = (&r.snapshot, &r.check);
            println!(
                "wrote a snapshot of {} to {} (taken through the store's writer of the {} relay)",
                config.data_dir.display(),
                out.display(),
                if r.online { "running" } else { "stopped" }
            );
            println!(
                "size: {} bytes ({} in the backup file, {} records)",
                c.bytes, s.bytes, c.records
            );
            println!(
                "log: {} entries, each linked to the one before; {} checkpoints{}",
                c.entries,
                c.checkpoints,
                if c.checkpoints > 0 {
                    ", the newest matches it"
                } else {
                    ""
                }
            );
            match c.newest_checkpoint {
                Some(n) => println!("newest checkpoint: size {n}"),
                None => println!("newest checkpoint: none yet"),
            }
            println!("commit: the log at {} entries, root {}", s.entries, s.root);
            println!(
                "messages: {} sent, {} received, {} body files",
                c.outbound, c.inbox, c.body_files
            );
            println!("the writer was held for {} µs", s.held.as_micros());
            ExitCode::SUCCESS
        }
        Err(BackupError::Store(e @ StoreError::DataDir { .. })) if out_refused(&e, out) => {
            eprintln!("kurir-relay: backup refused: {e}");
            ExitCode::from(4)
        }
        Err(e) => {
            let hint = if e.to_string().contains("could not acquire lock") {
                " (a relay holds the data directory but did not answer on its admin socket \
                 DATA/admin.sock: a kurir-relay older than this one? stop it, or upgrade it)"
            } else {
                ""
            };
            eprintln!("kurir-relay: backup failed: {e}{hint}");
            ExitCode::from(1)
        }
    }
}

/// Whether `e` is the refusal of an output directory that is not empty.
fn out_refused(e: &crate::store::StoreError, out: &Path) -> bool {
    matches!(e, crate::store::StoreError::DataDir { path, source }
        if path == out && source.kind() == std::io::ErrorKind::AlreadyExists)
}

/// `kurir-relay restore`.
fn restore(from: &Path, config: &Path, force: bool) -> ExitCode {
    use crate::store::RestoreError;
    let config = match load_for_tool(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match crate::store::restore(from, &config.data_dir, force, stamp) {
        Ok(r) => {
            let c = &r.check;
            println!(
                "restored {} into {}: {} log entries (root {}), newest checkpoint {}, {} sent and {} received messages, {} body files, {} bytes",
                from.display(),
                config.data_dir.display(),
                c.entries,
                c.root,
                c.newest_checkpoint
                    .map_or("none".into(), |n| format!("size {n}")),
                c.outbound,
                c.inbox,
                c.body_files,
                c.bytes
            );
            if let Some(aside) = &r.kept_aside {
                println!("the old data directory is kept in {}", aside.display());
            }
            println!(
                "before starting the relay, read docs/OPERATIONS.md \"Backups and restore\": what was acknowledged after this snapshot is not in it"
            );
            ExitCode::SUCCESS
        }
        Err(e @ (RestoreError::Running(_) | RestoreError::NotEmpty(_))) => {
            eprintln!("kurir-relay: restore refused: {e}");
            ExitCode::from(4)
        }
        Err(e) => {
            eprintln!("kurir-relay: restore failed: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(path: PathBuf, allocator: Allocator) -> ExitCode {
    let config = match RelayConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kurir-relay: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format, &config.log_level);
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        allocator = %allocator.name(),
        allocator_env = %allocator.tuning(),
        "kurir-relay starting"
    );
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

/// Waits for SIGTERM or ctrl-c. SIGHUP reloads the CRL, the roster, the
/// node certificate, the log key and the message keys (the outcomes are
/// logged; a refused one leaves the one in force)
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
                        tracing::info!("SIGHUP: reloading the CRL, the roster, the node certificate and the keys");
                        let _ = node.reload_crl();
                        let _ = node.reload_roster().await;
                        let _ = node.reload_node_certificate();
                        let _ = node.reload_log_key();
                        let _ = node.reload_message_keys();
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
