//! Part of `--mode restart-log`: the start after a crash that left the
//! store's commit journal full, its worst case.
//!
//! The journal holds every group commit since sled's last full flush, up to
//! about 16 MiB (`relay/src/store/journal.rs`), and the open applies again
//! the records sled lacks. A crash cannot be timed from inside this
//! process, so the worst case is built instead: groups of [`PER_GROUP`]
//! audit entries (about the size of one message's commit) are committed
//! until the journal file has grown to [`FILL`], the store is closed (which
//! flushes sled and empties the journal without erasing its records), and
//! the store is set back to what a crash right after the journal's first
//! record leaves ([`kurir_relay::store::rewind_journal`]).
//! The open then applies every record again (the writes are the same
//! values, so the store ends as it was): the time is that of the worst
//! replay. `verify-log` on a copy counts the records it applied first.

use std::path::Path;

use anyhow::Result;
use kurir_proto::Timestamp;
use kurir_proto::audit::{Entry, Record};
use kurir_relay::store::{Durability, Rewound, Store};
use serde::Serialize;

/// Audit entries per group commit.
const PER_GROUP: u64 = 10;
/// The journal file's size at which the filling stops: below the journal's
/// 16 MiB limit, at which the writer would flush sled and start it again.
const FILL: u64 = 15 * 1024 * 1024;

/// What the worst-case replay measured.
#[derive(Debug, Serialize)]
pub(crate) struct JournalReplay {
    /// Group commits the journal held, all applied again at the open.
    pub groups: u64,
    /// Bytes of those records.
    pub bytes: u64,
    /// The open, replay included, milliseconds.
    pub open_ms: f64,
    /// Records `verify-log` reported applying (on a copy), which must be
    /// `groups`.
    pub verify_log_recovered: u64,
}

/// Builds a full journal in `dir` and times the open that replays it.
pub(crate) fn run(dir: &Path) -> Result<JournalReplay> {
    let data = dir.join("journal-data");
    let entries = fill(&data)?;
    // As a crash right after the journal's first record leaves it (the
    // store's open waits for the lock the close leaves for a moment).
    let Rewound { groups, bytes } = kurir_relay::store::rewind_journal(&data)?;
    let copy = dir.join("journal-copy");
    copy_dir(&data, &copy)?;
    let report = kurir_relay::store::verify_log(&copy)?;
    let took = crate::restart_log::time_open(&data, entries, Durability::PowerLoss)?;
    anyhow::ensure!(
        report.recovered == groups,
        "verify-log applied {} records of the journal's {groups}",
        report.recovered
    );
    Ok(JournalReplay {
        groups,
        bytes,
        open_ms: took.as_secs_f64() * 1000.0,
        verify_log_recovered: report.recovered,
    })
}

/// Commits groups of audit entries to a new store in `data` until its
/// journal file reaches [`FILL`], then closes it; the entries written.
fn fill(data: &Path) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(data, Durability::ProcessCrash)?;
        let journal = data.join("journal");
        let mut written = 0u64;
        while std::fs::metadata(&journal).map_or(0, |m| m.len()) < FILL {
            let group = (written..written + PER_GROUP)
                .map(|i| {
                    Entry::new(
                        Timestamp(1_795_874_050_000 + i),
                        Record::Started {
                            version: format!("bench {i:0>200}"),
                        },
                    )
                })
                .collect();
            store.audit(group).await?;
            written += PER_GROUP;
        }
        store.close()?;
        Ok(written)
    })
}

/// Copies the files of `from` (and its directories) to `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    // Private, as the store wants its directories.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
