//! The store's format version: where it is recorded, how it is read at
//! open, and a newer one refused before anything is changed.
//!
//! A store records its format twice, written together by [`record`]:
//!
//! - in `meta`, under `format_version` (u32, big-endian), with the
//!   kurir-relay version that wrote it under `format_written_by` (text):
//!   the record that travels with the database;
//! - in the file [`FORMAT_FILE`] beside the database, two lines of text
//!   (`kurir-relay store format N`, `written by kurir-relay V`): read
//!   before sled opens anything, so that a store of a newer format is
//!   refused without sled touching it (sled rewrites its `snap.*` index
//!   at every open), even one whose database a later kurir-relay no
//!   longer keeps in sled at all.
//!
//! At open ([`check_file`], then [`check_format`]), a newer format in
//! either is refused with [`StoreError::TooNew`], which names the data
//! directory, both formats, both versions and what to do. Otherwise
//! `meta` decides: a store with no data is new ([`Found::New`]); one with
//! data but no `format_version` is of format 0, the layout of every relay
//! from before formats were recorded. `migrate` brings it to
//! [`FORMAT_VERSION`].

use std::path::Path;

use super::trees::{TreeId, Trees};
use super::{Store, StoreError};

/// The store format this binary reads and writes.
pub const FORMAT_VERSION: u32 = 4;

/// The `meta` key of the store's format version (u32, big-endian).
pub(super) const FORMAT_KEY: &[u8] = b"format_version";

/// The `meta` key of the kurir-relay version that wrote the format (text).
pub(super) const WRITTEN_BY_KEY: &[u8] = b"format_written_by";

/// The file beside the database that repeats the format.
pub(super) const FORMAT_FILE: &str = "store-format";

/// The first line of [`FORMAT_FILE`], before the number.
const FILE_FORMAT: &str = "kurir-relay store format ";

/// The second line of [`FORMAT_FILE`], before the version.
const FILE_WRITTEN_BY: &str = "written by kurir-relay ";

/// This binary's version, as the store records it.
const OURS: &str = env!("CARGO_PKG_VERSION");

/// What a store's `meta` says of its format, read at open before anything
/// is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// No data at all: a store created now.
    New,
    /// Data of this format (0: from before formats were recorded).
    Format(u32),
}

impl Store {
    /// The format recorded in the store: [`FORMAT_VERSION`] once it is
    /// open (a new store gets it, an older one is upgraded to it).
    pub fn format_version(&self) -> Result<Option<u32>, StoreError> {
        let value = self
            .tree(TreeId::Meta)?
            .get(FORMAT_KEY)
            .map_err(|e| self.sled(e))?;
        value.map(|v| parse_key(&self.path, &v)).transpose()
    }
}

/// Reads [`FORMAT_FILE`] in `dir`, if there is one, before sled opens
/// anything; refuses a format newer than [`FORMAT_VERSION`].
pub(super) fn check_file(dir: &Path) -> Result<Option<u32>, StoreError> {
    let path = dir.join(FORMAT_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::DataDir { path, source }),
    };
    let mut lines = text.lines();
    let found = lines
        .next()
        .and_then(|l| l.strip_prefix(FILE_FORMAT))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .ok_or_else(|| StoreError::Corrupt {
            path: dir.to_owned(),
            tree: "meta",
            reason: format!(
                "{} does not start with `{FILE_FORMAT}N`: restore it from a backup, or \
                 remove it to have the format read from the database",
                path.display()
            ),
        })?;
    let written_by = lines
        .next()
        .and_then(|l| l.strip_prefix(FILE_WRITTEN_BY))
        .map(|v| v.trim().to_owned());
    refuse_newer(dir, found, written_by)?;
    Ok(Some(found))
}

/// Reads the format recorded in `meta` of the database `db` in `dir`
/// without creating or changing anything; refuses a format newer than
/// [`FORMAT_VERSION`].
pub(super) fn check_format(dir: &Path, db: &sled::Db) -> Result<Found, StoreError> {
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    let names = db.tree_names();
    if names.iter().any(|n| n.as_ref() == b"meta") {
        let meta = db.open_tree("meta").map_err(sled_err)?;
        if let Some(value) = meta.get(FORMAT_KEY).map_err(sled_err)? {
            let found = parse_key(dir, &value)?;
            let written_by = meta
                .get(WRITTEN_BY_KEY)
                .map_err(sled_err)?
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            refuse_newer(dir, found, written_by)?;
            return Ok(Found::Format(found));
        }
    }
    for name in names {
        if !db.open_tree(&name).map_err(sled_err)?.is_empty() {
            return Ok(Found::Format(0));
        }
    }
    Ok(Found::New)
}

/// Records `version` as the store's format, written by this binary: in
/// `meta`, made durable with `sync` (the writer's flush), then in
/// [`FORMAT_FILE`] (written aside, synced and renamed into place).
pub(super) fn record(
    dir: &Path,
    trees: &Trees,
    version: u32,
    sync: impl Fn() -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    batch.insert(FORMAT_KEY, &version.to_be_bytes()[..]);
    batch.insert(WRITTEN_BY_KEY, OURS.as_bytes());
    trees
        .meta
        .apply_batch(batch)
        .map_err(|source| StoreError::Sled {
            path: dir.to_owned(),
            source,
        })?;
    sync()?;
    let path = dir.join(FORMAT_FILE);
    let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
    let err = |source| StoreError::Sync {
        path: path.clone(),
        source,
    };
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        write!(f, "{FILE_FORMAT}{version}\n{FILE_WRITTEN_BY}{OURS}\n").map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &path).map_err(err)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

/// The format in the `format_version` value `bytes`.
fn parse_key(dir: &Path, bytes: &[u8]) -> Result<u32, StoreError> {
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        path: dir.to_owned(),
        tree: "meta",
        reason: format!(
            "format_version is {} bytes long, not 4 (a big-endian u32)",
            bytes.len()
        ),
    })?;
    Ok(u32::from_be_bytes(bytes))
}

/// [`StoreError::TooNew`] for a store of a format newer than
/// [`FORMAT_VERSION`], written by the kurir-relay `written_by` if known.
fn refuse_newer(dir: &Path, found: u32, written_by: Option<String>) -> Result<(), StoreError> {
    if found <= FORMAT_VERSION {
        return Ok(());
    }
    Err(StoreError::TooNew {
        path: dir.to_owned(),
        found,
        known: FORMAT_VERSION,
        ours: OURS,
        need: match written_by {
            Some(v) => format!("a kurir-relay of version ≥ {v}"),
            None => format!("a kurir-relay that reads store format {found}"),
        },
    })
}
