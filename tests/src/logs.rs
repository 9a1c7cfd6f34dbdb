//! The relays' log lines, captured for every test in the binary.
//!
//! Relay tasks run on the runtime's worker threads, so a per-thread
//! subscriber would miss them: the first [`capture`] installs a global one
//! that appends to a buffer (and, with `KURIR_TEST_LOG=1`, also to stderr).
//! Tests in one binary share the buffer; match on something of your own,
//! such as the local address of a [`PeerLink`](crate::PeerLink).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Result, bail};

static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Sink {
    buf: Arc<Mutex<Vec<u8>>>,
    tee: bool,
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.buf.lock() {
            b.extend_from_slice(bytes);
        }
        if self.tee {
            let _ = std::io::stderr().write_all(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per process). The filter comes
/// from `KURIR_TEST_LOG_FILTER`, by default `kurir_relay=debug,warn`.
pub fn capture() {
    BUFFER.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let tee = std::env::var_os("KURIR_TEST_LOG").is_some_and(|v| v == "1");
        let filter = tracing_subscriber::EnvFilter::try_from_env("KURIR_TEST_LOG_FILTER")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kurir_relay=debug,warn"));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(filter)
            .with_writer(move || Sink {
                buf: sink.clone(),
                tee,
            })
            .try_init();
        buf
    });
}

/// Everything captured so far.
pub fn text() -> String {
    BUFFER
        .get()
        .and_then(|b| {
            b.lock()
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_default()
}

/// Waits (polling) for a captured line for which `matches` holds.
pub async fn await_line(what: &str, matches: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + super::STEP_TIMEOUT;
    loop {
        if let Some(line) = text().lines().find(|l| matches(l)) {
            return Ok(line.to_owned());
        }
        if Instant::now() > deadline {
            bail!("no log line {what} within {:?}", super::STEP_TIMEOUT);
        }
        tokio::time::sleep(super::POLL).await;
    }
}
