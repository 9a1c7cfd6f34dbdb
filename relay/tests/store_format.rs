//! Data directories written by earlier kurir-relays open with this one:
//! each fixture under `tests/fixtures/` (see the README there) is copied
//! to a private temporary directory and opened; an older format is
//! upgraded once, logged, and the current format recorded; every message
//! it held is found, and its audit log, exported, verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kurir_proto::{MessageId, Timestamp};
use kurir_relay::core::delivery::DeliveryState;
use kurir_relay::store::{Durability, FORMAT_VERSION, Store};

/// The relay's log lines, captured on this thread (the store upgrades on
/// the thread that opens it).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Runs `f` with the relay's info lines captured.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let me = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }

    /// The lines captured that contain `text`.
    fn lines_with(&self, text: &str) -> usize {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

/// What a fixture's store holds (`expected.toml`).
#[derive(Debug, serde::Deserialize)]
struct Expected {
    authority: String,
    sent: Vec<String>,
    received: Vec<String>,
    read: Vec<String>,
    entries: usize,
    checkpoints: usize,
}

fn ids(texts: &[String]) -> Vec<MessageId> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

/// The fixtures, oldest format first.
fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("data").is_dir())
        .collect();
    all.sort();
    assert!(!all.is_empty(), "no fixtures in {}", dir.display());
    all
}

/// Copies the fixture's `data/` to `to`, private as the store demands
/// (directories 0700, files 0600: git keeps neither mode).
fn copy_private(from: &Path, to: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(to).unwrap();
    }
    #[cfg(not(unix))]
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_private(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
}

#[test]
fn every_fixture_opens_with_its_messages_and_a_verifying_audit_log() {
    for fixture in fixtures() {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Expected =
            toml::from_str(&std::fs::read_to_string(fixture.join("expected.toml")).unwrap())
                .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        copy_private(&fixture.join("data"), &data);

        let format: u32 = name
            .strip_prefix("store-format-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: not store-format-N"));
        assert!(format <= FORMAT_VERSION, "{name}: newer than this binary");

        let logs = Captured::default();
        let store = logs
            .during(|| Store::open(&data, Durability::ProcessCrash))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let upgraded = format!("store upgraded from format {format}");
        let want = usize::from(format < FORMAT_VERSION);
        assert_eq!(logs.lines_with(&upgraded), want, "{name}: logged once");
        assert_eq!(
            logs.lines_with(&format!("to format {FORMAT_VERSION}")),
            want,
            "{name}"
        );
        assert_eq!(
            store.format_version().unwrap(),
            Some(FORMAT_VERSION),
            "{name}"
        );
        let file = std::fs::read_to_string(data.join("store-format")).unwrap();
        assert!(
            file.starts_with(&format!("kurir-relay store format {FORMAT_VERSION}\n")),
            "{name}: {file}"
        );
        assert_eq!(
            store.authority().unwrap().map(|a| a.to_string()),
            Some(expected.authority.clone()),
            "{name}"
        );
        for id in ids(&expected.sent) {
            let sent = store.outbound(id).unwrap();
            assert!(sent.is_some(), "{name}: sent message {id} not found");
            assert!(
                store.sent_parcel(id).unwrap().is_some(),
                "{name}: the body of {id} does not open"
            );
            let deliveries = store.deliveries_of(id).unwrap();
            assert!(!deliveries.is_empty(), "{name}: {id}");
            assert!(
                deliveries
                    .iter()
                    .all(|d| matches!(d.state, DeliveryState::Delivered { .. })),
                "{name}: {deliveries:?}"
            );
        }
        let read = ids(&expected.read);
        for id in ids(&expected.received) {
            let record = store
                .inbox(id)
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: received message {id} not found"));
            assert!(
                store.parcel(id, &record.parcel).unwrap().is_some(),
                "{name}: the body of {id} does not open"
            );
            assert_eq!(record.read.is_some(), read.contains(&id), "{name}: {id}");
        }
        assert_eq!(store.open_deliveries().unwrap(), vec![], "{name}");
        assert_eq!(
            store.log_entries().unwrap().len(),
            expected.entries,
            "{name}"
        );
        assert_eq!(
            store.checkpoints().unwrap().len(),
            expected.checkpoints,
            "{name}"
        );
        store.close().unwrap();
        drop(store);

        // Upgraded once: opened again, nothing more is logged.
        let store = logs
            .during(|| Store::open(&data, Durability::ProcessCrash))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(logs.lines_with("store upgraded"), want, "{name}");
        store.close().unwrap();
        drop(store);

        // The auditor's check of the log, as exported from it.
        let out = tmp.path().join("bundle");
        let now = Timestamp(
            u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
        );
        let report = kurir_relay::audit::export(&data, &out, now)
            .unwrap_or_else(|e| panic!("{name}: export: {e}"));
        assert_eq!(report.entries, expected.entries, "{name}");
        let verified = kurir_audit::load_verified(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.log.entries.len(), expected.entries, "{name}");
    }
}
