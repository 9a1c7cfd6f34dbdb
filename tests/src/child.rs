//! Relays as child processes (`kurir-test-relay`, a binary of this
//! package): started from their `relay.toml`, killed with SIGKILL or
//! stopped gracefully by closing their stdin, or started with a crash
//! point armed ([`RelayChild::start_armed`]) so that they abort at a named
//! code point. Used by the crash and overload suites.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::STEP_TIMEOUT;

/// A relay child process.
#[derive(Debug)]
pub struct RelayChild {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl RelayChild {
    /// Starts `relay --config CONFIG` (stderr appended to `log`) and waits
    /// for its `ready` line; tries again for up to [`STEP_TIMEOUT`] while a
    /// killed instance's port or database lock is not yet free.
    pub async fn start(relay: &Path, config: &Path, log: &Path) -> Result<RelayChild> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let (relay, config, log) = (relay.to_owned(), config.to_owned(), log.to_owned());
            let started =
                tokio::task::spawn_blocking(move || Self::try_start(&relay, &config, &log, None))
                    .await
                    .context("the start task failed")?;
            match started {
                Ok(child) => return Ok(child),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("relay did not start, trying again: {e:#}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the relay once with `KURIR_CRASHPOINT=point:n` (see
    /// `kurir_relay::crashpoint`): it aborts on the `n`th hit of `point`.
    /// `Ok(None)` when it aborted before it was ready (the point is also
    /// passed while starting).
    pub async fn start_armed(
        relay: &Path,
        config: &Path,
        log: &Path,
        point: &str,
        n: u32,
    ) -> Result<Option<RelayChild>> {
        let (relay, config, log) = (relay.to_owned(), config.to_owned(), log.to_owned());
        let armed = format!("{point}:{n}");
        let started = tokio::task::spawn_blocking(move || {
            Self::try_start(&relay, &config, &log, Some(&armed))
        })
        .await
        .context("the start task failed")?;
        Ok(started.ok())
    }

    fn try_start(
        relay: &Path,
        config: &Path,
        log: &Path,
        crashpoint: Option<&str>,
    ) -> Result<RelayChild> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(relay);
        match crashpoint {
            Some(armed) => command.env(kurir_relay::crashpoint::ENV, armed),
            None => command.env_remove(kurir_relay::crashpoint::ENV),
        };
        let mut child = command
            .arg("--config")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("spawning {}", relay.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the child has no stdout"))?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        if read.is_err() || line.trim() != "ready" {
            let _ = child.kill();
            let status = child.wait();
            bail!("the relay exited ({status:?}); see {}", log.display());
        }
        let stdin = child.stdin.take();
        Ok(RelayChild { child, stdin })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (`VmHWM` of `/proc/PID/status`), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Whether the process has exited (an armed crash point aborted it).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin (graceful shutdown) and waits for a clean exit.
    pub fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the relay did not stop cleanly: {status}");
        }
        Ok(())
    }
}
