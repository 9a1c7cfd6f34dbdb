//! `--mode restart-log`: how long a relay's store takes to open on a log
//! of N entries.
//!
//! Builds the log directly through the store API (entries in commits of
//! [`PER_COMMIT`], a checkpoint every [`CHECKPOINT_EVERY`] entries as a
//! relay signs them, the newest [`TAIL`] entries after the newest
//! checkpoint), then times: the open (the start's check, from the newest
//! checkpoint's Merkle frontier), the open of the same store with its
//! frontiers removed (every entry read, as every start did before
//! frontiers were kept; it stores the frontier again), and
//! `verify-log`'s full check; then, on another store, the open after a
//! crash that left the commit journal full ([`crate::journal_replay`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kurir_proto::Timestamp;
use kurir_proto::audit::{Entry, Record};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_relay::core::pacing::Cover;
use kurir_relay::store::{Durability, Store};
use serde::Serialize;

/// Entries per commit while building.
const PER_COMMIT: u64 = 10_000;
/// A checkpoint every this many entries.
const CHECKPOINT_EVERY: u64 = 100_000;
/// Entries after the newest checkpoint.
const TAIL: u64 = 1_000;
/// Opens timed (the best is reported, and the median).
const OPENS: usize = 5;

/// What one restart-log run measured.
#[derive(Debug, Serialize)]
pub(crate) struct RestartLogResult {
    /// Entries in the log.
    pub entries: u64,
    /// Seconds to build the log.
    pub build_secs: f64,
    /// Bytes of the data directory.
    pub data_bytes: u64,
    /// The open (the start's check), best of [`OPENS`], milliseconds.
    pub open_ms_best: f64,
    /// The open, median of [`OPENS`], milliseconds.
    pub open_ms_median: f64,
    /// The open reading every entry (no frontier), milliseconds.
    pub full_replay_open_ms: f64,
    /// `verify-log`'s full check, milliseconds.
    pub verify_log_ms: f64,
    /// The open that replays a full commit journal.
    pub journal: crate::journal_replay::JournalReplay,
}

/// Builds a log of `entries` entries in a temporary directory and times
/// its restarts.
pub(crate) fn run(entries: u64) -> Result<RestartLogResult> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let data = dir.path().join("data");
    let started = Instant::now();
    build(&data, entries)?;
    let build_secs = started.elapsed().as_secs_f64();
    let data_bytes = dir_bytes(&data);
    let mut opens = Vec::with_capacity(OPENS);
    for _ in 0..OPENS {
        opens.push(time_open(&data, entries, Durability::ProcessCrash)?);
    }
    opens.sort();
    // As before frontiers were kept: the open reads every entry.
    {
        let db = sled::open(&data).context("opening the database to remove its frontiers")?;
        db.drop_tree("frontiers")?;
        db.flush()?;
    }
    let full_replay = time_open(&data, entries, Durability::ProcessCrash)?;
    let started = Instant::now();
    let report = kurir_relay::store::verify_log(&data)?;
    let verify = started.elapsed();
    anyhow::ensure!(
        report.entries == entries,
        "verify-log read {}",
        report.entries
    );
    let journal = crate::journal_replay::run(dir.path())?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(RestartLogResult {
        entries,
        build_secs,
        data_bytes,
        open_ms_best: ms(opens[0]),
        open_ms_median: ms(opens[OPENS / 2]),
        full_replay_open_ms: ms(full_replay),
        verify_log_ms: ms(verify),
        journal,
    })
}

/// Appends `entries` entries to a new store in `data`, with checkpoints.
fn build(data: &Path, entries: u64) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(data, Durability::ProcessCrash)?;
        let key = SigningKey::from_bytes(&[7; 32]);
        let last_checkpoint = entries.saturating_sub(TAIL);
        let mut written = 0u64;
        while written < entries {
            // The next checkpoint: a multiple of CHECKPOINT_EVERY before
            // the last one, or the last one.
            let next_multiple = (written / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY;
            let next_checkpoint = if next_multiple < last_checkpoint {
                next_multiple
            } else if written < last_checkpoint {
                last_checkpoint
            } else {
                entries
            };
            let until = (written + PER_COMMIT).min(entries).min(next_checkpoint);
            let batch = (written..until)
                .map(|i| {
                    Entry::new(
                        Timestamp(1_795_874_050_000 + i),
                        Record::Started {
                            version: "bench".into(),
                        },
                    )
                })
                .collect();
            store.audit(batch).await?;
            written = until;
            if written == next_checkpoint && written <= last_checkpoint {
                store
                    .checkpoint("kurir/BENCH".into(), key.clone(), Cover::Anything)
                    .await?;
            }
        }
        store.close()?;
        Ok(())
    })
}

/// Opens the store in `data` with `durability` and closes it, checking it
/// holds `entries` entries; the time to open.
pub(crate) fn time_open(data: &Path, entries: u64, durability: Durability) -> Result<Duration> {
    // sled releases its lock a moment after the last close, from a
    // background thread: let it, outside the time (a relay restarted by
    // systemd does not meet that wait).
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let store = Store::open(data, durability)?;
    let took = started.elapsed();
    anyhow::ensure!(
        store.log_state().size == entries,
        "the store opened with {} entries, not {entries}",
        store.log_state().size
    );
    store.close()?;
    Ok(took)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
