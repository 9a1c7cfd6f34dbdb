//! `kurir-bench`: end-to-end performance of kurir relays on loopback.
//!
//! Each run founds a fresh two-authority federation (RS.MUP sends, BA.SPS
//! receives) in a temporary directory, starts both relays as child
//! processes, and has an RS.MUP officer submit M messages of S bytes with W
//! requests in flight through the officer API, over one QUIC connection.
//! Every message is followed until the sender's relay holds the receiver's
//! signed receipt; `docs/PERFORMANCE.md` says exactly what each figure means.
//! `--mode federation` founds N relays instead and measures them idle and
//! exchanging notices all-to-all (`federation.rs`).
//!
//! # Layout
//!
//! - `main.rs`: the command line and the report (text table or `--json`
//!   JSON Lines, each `{"type": "run" | "queue", "data": {...}}`).
//! - `load.rs`: founding, the workload and its measurement.
//! - `federation.rs`: `--mode federation`, N relays idle and then
//!   exchanging notices all-to-all (CPU, audit-log and data-dir growth,
//!   cosignatures per relay).
//! - `procs.rs`: relays as child processes (`kurir-bench relay`), CPU and
//!   memory from `/proc`, sync calls counted with `strace -c`.
//!
//! Micro benchmarks (criterion) are in `benches/micro.rs`.
//!
//! The relays run as children of this binary, so its global allocator is
//! theirs: the features `mimalloc` / `jemalloc` (the default) choose it as
//! they do for `kurir-relay`, and the report's first line names it.

#![forbid(unsafe_code)]

#[cfg(all(feature = "mimalloc", feature = "jemalloc"))]
compile_error!(
    "the features `mimalloc` and `jemalloc` exclude each other: jemalloc is the default, so \
     build mimalloc with `--no-default-features --features mimalloc`"
);

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The global allocator this binary (and so each relay it runs) uses.
const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else if cfg!(feature = "jemalloc") {
    "jemalloc"
} else {
    "system"
};

mod audit_log;
mod federation;
mod journal_replay;
mod load;
mod procs;
mod restart_log;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::load::{QueueResult, RunResult, RunSpec};

/// End-to-end benchmark of kurir relays on loopback (two, or N with --mode federation).
///
/// Examples:
///   kurir-bench                         # small messages, W = 1, 16, 128
///   kurir-bench --mode attachments      # 8 MiB bodies, MB/s
///   kurir-bench --mode queue            # 100,000 queued: RSS and restart
///   kurir-bench --mode audit            # audit-log entries/s, checkpoints on
///   kurir-bench --mode restart-log --entries 1000000  # open on a long log, full journal
///   kurir-bench --mode federation --relays 4,8,16     # N relays all-to-all
///   kurir-bench -m 20000 -w 128 --json  # one run, JSON Lines
#[derive(Debug, Parser)]
#[command(name = "kurir-bench", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// What to run.
    #[arg(long, value_enum, default_value_t = Mode::Small)]
    mode: Mode,
    /// Messages per run (default: 3,000 small, 24 attachments, 100,000
    /// queued; audit: entries, 20,000; federation: per relay, 200).
    #[arg(short = 'm', long)]
    messages: Option<usize>,
    /// Body size in bytes (default: 1024 small and queue, 8 MiB attachments).
    #[arg(short = 's', long)]
    size: Option<usize>,
    /// Requests in flight; repeat or separate with commas for several runs
    /// (default: 1,16,128 small; 1,4 attachments; 128 queue; 1,16,128 audit;
    /// federation: per relay, 8, at most 48).
    #[arg(short = 'w', long, value_delimiter = ',')]
    window: Vec<usize>,
    /// Messages sent before measuring (default: 200, 4 for attachments).
    #[arg(long)]
    warmup: Option<usize>,
    /// The relays' `storage.durability`.
    #[arg(long, default_value = "power-loss", value_parser = ["power-loss", "process-crash"])]
    durability: String,
    /// The relays' `retry.max_in_flight_per_peer` (default: the relay's, 64).
    #[arg(long)]
    relay_in_flight: Option<usize>,
    /// Verify every Nth receipt against the roster in the load generator
    /// (0: none; the relay verifies every receipt itself regardless).
    #[arg(long, default_value_t = 16)]
    verify_every: usize,
    /// Count sync system calls per message with `strace -c` (slows the run).
    #[arg(long)]
    fsyncs: bool,
    /// Queue mode: stop waiting for the queue to drain after this many seconds.
    #[arg(long, default_value_t = 120)]
    drain_secs: u64,
    /// Keep each run's federation directory (data, configs, relay logs) and
    /// print where it is, e.g. to profile a relay's start on a full queue.
    #[arg(long)]
    keep: bool,
    /// Audit mode: sign a checkpoint this often (the relay's default is 5 s).
    #[arg(long, default_value_t = 1000)]
    checkpoint_ms: u64,
    /// Federation mode: relays in the federation; repeat or separate with
    /// commas for several runs (default 16).
    #[arg(long, value_delimiter = ',')]
    relays: Vec<usize>,
    /// Federation mode: seconds of the idle phase (nobody sends).
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Federation mode: the relays' `audit.checkpoint_secs` (the relay's
    /// default is 5).
    #[arg(long, default_value_t = 5)]
    checkpoint_secs: u64,
    /// Restart-log mode: entries in the log built before the restart.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// JSON Lines on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one relay until stdin closes (used by kurir-bench itself).
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// 1 KiB notices with W = 1, 16, 128.
    Small,
    /// 8 MiB attachments: MB/s.
    Attachments,
    /// 100,000 messages queued for a receiver that is down: RSS, restart.
    Queue,
    /// Audit-log appends per second with checkpointing on (one store).
    Audit,
    /// The store's open (the relay's start) on a log of `--entries` entries, and after a
    /// crash that left the commit journal full.
    RestartLog,
    /// N relays (`--relays`): idle costs, then notices all-to-all.
    Federation,
    /// small, attachments, queue, then audit.
    All,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Relay { config }) => procs::run_relay(config),
        None => bench(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kurir-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn bench(cli: &Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let modes: &[Mode] = match cli.mode {
        Mode::All => &[Mode::Small, Mode::Attachments, Mode::Queue, Mode::Audit],
        Mode::Small => &[Mode::Small],
        Mode::Attachments => &[Mode::Attachments],
        Mode::Queue => &[Mode::Queue],
        Mode::Audit => &[Mode::Audit],
        Mode::RestartLog => &[Mode::RestartLog],
        Mode::Federation => &[Mode::Federation],
    };
    if !cli.json {
        println!("{}", machine_line());
    }
    for mode in modes {
        match mode {
            Mode::Small | Mode::Attachments => {
                let small = *mode == Mode::Small;
                let windows = if cli.window.is_empty() {
                    if small { vec![1, 16, 128] } else { vec![1, 4] }
                } else {
                    cli.window.clone()
                };
                if !cli.json {
                    println!("{}", RUN_HEADER);
                }
                for w in windows {
                    let spec = RunSpec {
                        label: if small { "small" } else { "attachments" }.to_owned(),
                        messages: cli.messages.unwrap_or(if small { 3000 } else { 24 }),
                        size: cli.size.unwrap_or(if small { 1024 } else { 8 << 20 }),
                        window: w,
                        warmup: cli.warmup.unwrap_or(if small { 200 } else { 4 }),
                        durability: cli.durability.clone(),
                        relay_in_flight: cli.relay_in_flight,
                        verify_every: cli.verify_every,
                        fsyncs: cli.fsyncs,
                        keep: cli.keep,
                    };
                    let r = runtime.block_on(load::run(&spec))?;
                    report_run(&r, cli.json)?;
                }
            }
            Mode::Queue => {
                let r = runtime.block_on(load::queue(
                    cli.messages.unwrap_or(100_000),
                    cli.size.unwrap_or(1024),
                    cli.window.first().copied().unwrap_or(128),
                    &cli.durability,
                    Duration::from_secs(cli.drain_secs),
                    cli.keep,
                ))?;
                report_queue(&r, cli.json)?;
            }
            Mode::Audit => {
                let windows = if cli.window.is_empty() {
                    vec![1, 16, 128]
                } else {
                    cli.window.clone()
                };
                for w in windows {
                    let r = runtime.block_on(audit_log::run(
                        cli.messages.unwrap_or(20_000),
                        w,
                        &cli.durability,
                        Duration::from_millis(cli.checkpoint_ms.max(1)),
                    ))?;
                    report_audit(&r, cli.json)?;
                }
            }
            Mode::RestartLog => {
                let r = restart_log::run(cli.entries)?;
                report_restart_log(&r, cli.json)?;
            }
            Mode::Federation => {
                let relays = if cli.relays.is_empty() {
                    vec![16]
                } else {
                    cli.relays.clone()
                };
                if !cli.json {
                    println!("{FED_HEADER}");
                }
                for n in relays {
                    let spec = federation::FedSpec {
                        relays: n,
                        messages: cli.messages.unwrap_or(200),
                        size: cli.size.unwrap_or(1024),
                        window: cli.window.first().copied().unwrap_or(8),
                        idle: Duration::from_secs(cli.idle_secs),
                        checkpoint_secs: cli.checkpoint_secs,
                        durability: cli.durability.clone(),
                        verify_every: cli.verify_every,
                        keep: cli.keep,
                    };
                    let r = runtime.block_on(federation::run(&spec))?;
                    report_federation(&r, cli.json)?;
                }
            }
            Mode::All => {}
        }
    }
    Ok(())
}

/// The machine, for the record.
fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("# {cores} cores, {cpu}, allocator {ALLOCATOR}")
}

const RUN_HEADER: &str = "mode         W  msgs   body B  msgs/s     MB/s   p50 ms  p99 ms p99.9 ms  \
submit p50  arrive p50  polls  CPU s/1k snd/rcv  peak RSS MiB snd/rcv  rows/msg snd/rcv  syncs/msg snd/rcv";

fn syncs(r: &load::RelayFigures) -> String {
    match &r.syncs_per_msg {
        None => "-".to_owned(),
        Some(v) => v
            .iter()
            .map(|(name, n)| format!("{name}={n:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn report_run(r: &RunResult, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"type": "run", "data": serde_json::to_value(r)?})
        );
        return Ok(());
    }
    let (s, v) = match r.relays.as_slice() {
        [s, v] => (s, v),
        _ => anyhow::bail!("expected two relays"),
    };
    println!(
        "{:<11} {:>3} {:>5} {:>8} {:>7.0} {:>8.1} {:>8.2} {:>7.2} {:>8.2} {:>11.2} {:>11.2} {:>6.2} {:>8.3}/{:<8.3} {:>9.1}/{:<9.1} {:>8.2}/{:<8.2} {} / {}",
        r.label,
        r.window,
        r.messages,
        r.body_bytes,
        r.msgs_per_sec,
        r.mb_per_sec,
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.latency_ms.p999,
        r.submit_ms.p50,
        r.arrival_ms.p50,
        r.status_polls_per_msg,
        s.cpu_secs_per_1000,
        v.cpu_secs_per_1000,
        s.memory.peak_rss_mib,
        v.memory.peak_rss_mib,
        s.store_rows_per_msg,
        v.store_rows_per_msg,
        syncs(s),
        syncs(v),
    );
    Ok(())
}

const FED_HEADER: &str = "relays  msgs  msgs/s  CPU ms/msg  busy CPU s/relay  \
checkpoints/relay  cosigned/relay  cosigs held/relay | idle per relay per hour (extrapolated): \
CPU s  entries  data KiB  cosigned";

fn report_federation(r: &federation::FedResult, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"type": "federation", "data": serde_json::to_value(r)?})
        );
        return Ok(());
    }
    let busy_cpu = r.per_relay.iter().map(|p| p.busy_cpu_secs).sum::<f64>() / r.relays as f64;
    println!(
        "{:>6} {:>5} {:>7.0} {:>11.3} {:>17.2} {:>18.1} {:>15.1} {:>18.1} | {:>5.2} {:>8.0} {:>9.1} {:>9.0}",
        r.relays,
        r.delivered,
        r.msgs_per_sec,
        r.cpu_ms_per_msg,
        busy_cpu,
        r.busy_checkpoints_per_relay,
        r.busy_cosigned_per_relay,
        r.busy_cosignatures_held_per_relay,
        r.idle_cpu_secs_per_relay_hour,
        r.idle_entries_per_relay_hour,
        r.idle_data_bytes_per_relay_hour / 1024.0,
        r.idle_cosigned_per_relay_hour,
    );
    Ok(())
}

fn report_audit(r: &audit_log::AuditResult, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"type": "audit", "data": serde_json::to_value(r)?})
        );
        return Ok(());
    }
    println!(
        "audit: W={:<3} {} entries ({}): {:.0} entries/s; commit p50 {:.2} ms p99 {:.2} ms; \
         {} checkpoints (every {} ms, signing p50 {:.2} ms); {:.0} inclusion proofs/s",
        r.window,
        r.entries,
        r.durability,
        r.entries_per_sec,
        r.commit_ms.p50,
        r.commit_ms.p99,
        r.checkpoints,
        r.checkpoint_ms,
        r.checkpoint_sign_ms.p50,
        r.proofs_per_sec
    );
    Ok(())
}

fn report_restart_log(r: &restart_log::RestartLogResult, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"type": "restart-log", "data": serde_json::to_value(r)?})
        );
        return Ok(());
    }
    println!(
        "restart-log: {} entries (built in {:.1} s, data dir {:.1} MiB): open {:.1} ms \
         (median {:.1} ms); open reading every entry (no frontier) {:.1} ms; verify-log {:.1} ms",
        r.entries,
        r.build_secs,
        r.data_bytes as f64 / (1024.0 * 1024.0),
        r.open_ms_best,
        r.open_ms_median,
        r.full_replay_open_ms,
        r.verify_log_ms
    );
    println!(
        "restart-log: open after a crash with the commit journal full: {:.1} ms, \
         {} group commits ({:.1} MiB) applied again (verify-log on a copy applied {})",
        r.journal.open_ms,
        r.journal.groups,
        r.journal.bytes as f64 / (1024.0 * 1024.0),
        r.journal.verify_log_recovered
    );
    Ok(())
}

fn report_queue(r: &QueueResult, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"type": "queue", "data": serde_json::to_value(r)?})
        );
        return Ok(());
    }
    println!(
        "queue: {} messages of {} B submitted in {:.1} s ({:.0}/s in the first tenth, {:.0}/s in the last); sender CPU {:.1} s",
        r.queued,
        r.body_bytes,
        r.submit_secs,
        r.submits_per_sec_first_10pct,
        r.submits_per_sec_last_10pct,
        r.sender_cpu_secs_while_queueing
    );
    println!(
        "queue: sender RSS with the queue {:.1} MiB (peak {:.1}); data dir {:.1} MiB",
        r.memory_queued.rss_mib, r.memory_queued.peak_rss_mib, r.data_dir_mib
    );
    println!(
        "queue: shutdown {:.2} s; restart to ready {:.2} s; RSS after restart {:.1} MiB (peak {:.1})",
        r.shutdown_secs,
        r.restart_ready_secs,
        r.memory_after_restart.rss_mib,
        r.memory_after_restart.peak_rss_mib
    );
    println!(
        "queue: drained {} of {} in {:.1} s ({:.0}/s at the receiver); sender peak RSS {:.1} MiB",
        r.drained, r.queued, r.drain_secs, r.drain_msgs_per_sec, r.memory_after_drain.peak_rss_mib
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn windows_parse_from_commas() {
        let cli = Cli::parse_from(["kurir-bench", "-w", "1,16", "-w", "128"]);
        assert_eq!(cli.window, vec![1, 16, 128]);
        assert_eq!(cli.mode, Mode::Small);
    }
}
