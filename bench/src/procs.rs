//! Relays as child processes, and what `/proc` says about them.
//!
//! Each relay runs as `kurir-bench relay --config FILE` (this same binary,
//! calling `kurir_relay::node::Node::start` exactly as `kurir-relay run`
//! does), so its CPU time and peak RSS are its own and not the load
//! generator's. The child prints `ready` on stdout once `Node::start` has
//! returned (store open, roster verified, open deliveries loaded, endpoint
//! bound) and shuts down cleanly when its stdin closes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kurir_relay::clock::SystemClock;
use kurir_relay::config::RelayConfig;
use kurir_relay::node::Node;

/// The line a relay child prints when it is ready.
const READY: &str = "ready";

/// A relay running as a child process.
#[derive(Debug)]
pub(crate) struct RelayProc {
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// From spawn to the `ready` line.
    pub(crate) ready_after: Duration,
}

impl RelayProc {
    /// Spawns `kurir-bench relay --config CONFIG` and waits for `ready`.
    pub(crate) fn spawn(name: &str, config: &Path, log: &Path) -> Result<RelayProc> {
        let exe = std::env::current_exe().context("cannot find the kurir-bench executable")?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let started = Instant::now();
        let mut child = Command::new(exe)
            .arg("relay")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("cannot start relay {name}"))?;
        let stdout = child
            .stdout
            .take()
            .context("the relay child has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .with_context(|| format!("relay {name} did not start"))?;
        if line.trim() != READY {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "relay {name} did not start (see {}): {}",
                log.display(),
                line.trim()
            );
        }
        let ready_after = started.elapsed();
        let stdin = child.stdin.take();
        Ok(RelayProc {
            name: name.to_owned(),
            child,
            stdin,
            ready_after,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) so far.
    pub(crate) fn cpu_secs(&self) -> Result<f64> {
        cpu_secs(self.pid())
    }

    /// Memory figures from `/proc/PID/status`.
    pub(crate) fn memory(&self) -> Result<Memory> {
        memory(self.pid())
    }

    /// Closes the relay's stdin (it shuts down cleanly) and waits; returns
    /// how long the shutdown took.
    pub(crate) fn stop(mut self) -> Result<Duration> {
        let started = Instant::now();
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for relay {}", self.name))?;
        if !status.success() {
            bail!("relay {} exited with {status}", self.name);
        }
        Ok(started.elapsed())
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            // Not stopped cleanly (an error on the way): do not leave it running.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Memory of one process, in MiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Memory {
    /// Resident set size now (VmRSS).
    pub(crate) rss_mib: f64,
    /// Peak resident set size (VmHWM).
    pub(crate) peak_rss_mib: f64,
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds (`/proc/PID/stat`, fields 14, 15).
pub(crate) fn cpu_secs(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let field = |n: usize| -> Result<f64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no field {n} in {path}"))
    };
    Ok((field(14)? + field(15)?) / clock_ticks())
}

/// VmRSS and VmHWM of a process (`/proc/PID/status`).
pub(crate) fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kib = |key: &str| -> Result<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .with_context(|| format!("no {key} in {path}"))
    };
    Ok(Memory {
        rss_mib: kib("VmRSS:")? / 1024.0,
        peak_rss_mib: kib("VmHWM:")? / 1024.0,
    })
}

/// `strace -c` attached to a running relay, counting sync system calls.
#[derive(Debug)]
pub(crate) struct SyncCounter {
    child: Child,
    out: PathBuf,
}

/// The system calls that reach the disk's cache or the device.
const SYNC_CALLS: &str = "fsync,fdatasync,sync_file_range,msync";

impl SyncCounter {
    /// Attaches `strace -f -c` to `pid`.
    pub(crate) fn attach(pid: u32, out: &Path) -> Result<SyncCounter> {
        let child = Command::new("strace")
            .args(["-f", "-c", "-e", &format!("trace={SYNC_CALLS}"), "-o"])
            .arg(out)
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run strace (install it, or leave out --fsyncs)")?;
        // strace needs a moment to attach to every thread.
        std::thread::sleep(Duration::from_millis(500));
        Ok(SyncCounter {
            child,
            out: out.to_owned(),
        })
    }

    /// Detaches (SIGINT makes strace write its summary) and returns the
    /// number of calls per system call name.
    pub(crate) fn finish(mut self) -> Result<Vec<(String, u64)>> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .context("cannot signal strace")?;
        if !status.success() {
            bail!("cannot signal strace");
        }
        self.child.wait().context("waiting for strace")?;
        let text = std::fs::read_to_string(&self.out)
            .with_context(|| format!("cannot read {}", self.out.display()))?;
        Ok(parse_strace_summary(&text))
    }
}

/// Reads `calls` per syscall from an `strace -c` table.
fn parse_strace_summary(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors], syscall
            let name = cols.last()?;
            if cols.len() < 5 || !SYNC_CALLS.split(',').any(|s| s == *name) {
                return None;
            }
            Some(((*name).to_owned(), cols.get(3)?.parse().ok()?))
        })
        .collect()
}

/// The hidden `relay` subcommand: runs one relay until stdin closes.
pub(crate) fn run_relay(config: &Path) -> Result<()> {
    let config = RelayConfig::load(config)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let node = Node::start(config, Arc::new(SystemClock), None).await?;
        println!("{READY}");
        // Wait for the parent to close our stdin (or to die).
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while matches!(std::io::stdin().read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        })
        .await?;
        node.shutdown().await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_summary_is_read() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                     80.00    0.100000          50      2000           fsync\n\
                     20.00    0.020000          10      2000           sync_file_range\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.120000          30      4000           total\n";
        assert_eq!(
            parse_strace_summary(text),
            vec![
                ("fsync".to_owned(), 2000),
                ("sync_file_range".to_owned(), 2000)
            ]
        );
    }

    #[test]
    fn own_process_is_measured() {
        let pid = std::process::id();
        assert!(cpu_secs(pid).unwrap() >= 0.0);
        let m = memory(pid).unwrap();
        assert!(m.peak_rss_mib >= m.rss_mib && m.rss_mib > 0.0);
    }
}
