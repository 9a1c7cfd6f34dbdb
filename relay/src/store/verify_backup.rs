//! The check of a backup from its file ([`verify_snapshot`]), streaming:
//! what `kurir-relay backup` runs on the copy it wrote, and `restore` on
//! the backup it builds a store from.
//!
//! Read once, a record at a time ([`read_checked`]):
//!
//! 1. the header: the backup format, and a store format this binary reads;
//! 2. the records: in tree-name and key order, each (tree, key) once;
//!    every stored checkpoint parses and is stored under its own size (the
//!    newest is kept); the audit log's entries, in index order (a row holds
//!    one or a run of them, see `log`): each there (no gap), decodable, carrying its own index and linked (`prev`) to
//!    the one before, appended to a Merkle range; each sent or received
//!    message whose body is in a file names a file present in `bodies/`;
//! 3. the log's root at the size of the newest checkpoint is that
//!    checkpoint's signed root, and at the size of the
//!    `last-checkpoint.note` marker the marker's; the log's size and root
//!    at its end are the header's (the commit the snapshot matches);
//! 4. the trailer: its counts are what was read, its SHA-256 is the
//!    file's, and nothing follows it.
//!
//! The first fault found is the error ([`StoreError::Backup`], naming the
//! record, entry or byte). Memory holds one record, the Merkle range (one
//! digest per level) and the newest checkpoint, whatever the store's size.

use std::path::Path;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::checkpoint::SignedCheckpoint;
use kurir_proto::merkle::{self, CompactRange};

use super::at_rest::{self, Stored, record_parcel};
use super::backup::{SnapshotCheck, dir_bytes};
use super::keys::{checkpoint_key, log_key};
use super::log::row_entries;
use super::stream::{Counts, Header, Record, SNAPSHOT_FILE, StreamReader};
use super::{FORMAT_VERSION, StoreError};

/// Checks the backup in the directory `dir` (its [`SNAPSHOT_FILE`] and
/// body files; see the module docs).
pub fn verify_snapshot(dir: &Path) -> Result<SnapshotCheck, StoreError> {
    read_checked(dir, |_| Ok(())).map(|(check, _)| check)
}

/// Reads and checks the backup in `dir`, handing each record to `sink`
/// once it is checked; what it holds and its header.
pub(super) fn read_checked(
    dir: &Path,
    mut sink: impl FnMut(&Record) -> Result<(), StoreError>,
) -> Result<(SnapshotCheck, Header), StoreError> {
    let file = dir.join(SNAPSHOT_FILE);
    if !file.is_file() {
        let reason = if dir.join("db").is_file() {
            "this is a backup in the older layout (a copy of the database, written by a \
             kurir-relay before backups were one file): this kurir-relay does not restore it; \
             restore it with the kurir-relay that wrote it, start the relay and take a new \
             backup"
        } else {
            "it is not there: give the directory `kurir-relay backup` wrote"
        };
        return Err(StoreError::Backup {
            path: file,
            reason: reason.into(),
        });
    }
    let mut reader = StreamReader::open(&file)?;
    let header = reader.header().clone();
    if header.store_format > FORMAT_VERSION {
        return Err(reader.bad(&format!(
            "it holds a store of format {}, newer than this kurir-relay reads (format \
             {FORMAT_VERSION} and older): restore it with a newer kurir-relay",
            header.store_format
        )));
    }
    let mut check = Checker::new(dir, &header);
    let mut rec = Record::default();
    let trailer = loop {
        match reader.next(&mut rec)? {
            Some(trailer) => break trailer,
            None => {
                check.record(&rec).map_err(|why| reader.bad(&why))?;
                sink(&rec)?;
            }
        }
    };
    let found = check.finish(trailer).map_err(|why| reader.bad(&why))?;
    Ok((
        SnapshotCheck {
            bytes: dir_bytes(dir),
            ..found
        },
        header,
    ))
}

/// The checks of step 2 and 3, fed one record at a time.
struct Checker<'a> {
    bodies: std::path::PathBuf,
    header: &'a Header,
    /// The previous record's tree and key (order).
    last: Option<(Vec<u8>, Vec<u8>)>,
    records: u64,
    range: CompactRange,
    last_leaf: Option<Digest>,
    /// Roots the log must have at a size: (size, root, what says so).
    expect: Vec<(u64, Digest, &'static str)>,
    checkpoints: usize,
    newest: Option<u64>,
    counts: Counts,
}

impl<'a> Checker<'a> {
    fn new(dir: &Path, header: &'a Header) -> Checker<'a> {
        Checker {
            bodies: dir.join(at_rest::BODIES),
            header,
            last: None,
            records: 0,
            range: CompactRange::new(),
            last_leaf: None,
            expect: Vec::new(),
            checkpoints: 0,
            newest: None,
            counts: Counts::default(),
        }
    }

    fn record(&mut self, rec: &Record) -> Result<(), String> {
        let at = self.records;
        let tree = String::from_utf8_lossy(&rec.tree).into_owned();
        match &mut self.last {
            Some((t, k)) if (&t[..], &k[..]) >= (&rec.tree[..], &rec.key[..]) => {
                return Err(format!(
                    "record {at} (tree {tree}, key {}) is out of order",
                    hex::encode(&rec.key)
                ));
            }
            Some((t, k)) => {
                t.clone_from(&rec.tree);
                k.clone_from(&rec.key);
            }
            None => self.last = Some((rec.tree.clone(), rec.key.clone())),
        }
        self.records += 1;
        match &rec.tree[..] {
            b"checkpoints" => self.checkpoint(rec),
            b"log" => self.entry(rec),
            b"outbound" | b"inbox" => self.message(rec, &tree),
            _ => Ok(()),
        }
    }

    fn checkpoint(&mut self, rec: &Record) -> Result<(), String> {
        let signed = SignedCheckpoint::parse(&rec.value).map_err(|e| {
            format!(
                "the checkpoint under key {} does not parse: {e}",
                hex::encode(&rec.key)
            )
        })?;
        let size = signed.checkpoint().size();
        if rec.key[..] != checkpoint_key(size) {
            return Err(format!(
                "the checkpoint of size {size} is stored under key {}",
                hex::encode(&rec.key)
            ));
        }
        self.checkpoints += 1;
        // Keys ascend: the last one read is the newest.
        self.newest = Some(size);
        self.expect.retain(|e| e.2 != "the newest checkpoint");
        self.expect
            .push((size, *signed.checkpoint().root(), "the newest checkpoint"));
        Ok(())
    }

    /// A `log` row: one entry, or a run of them (see `log`), the first
    /// numbered by the key.
    fn entry(&mut self, rec: &Record) -> Result<(), String> {
        if self.range.size() == 0 {
            self.expect_marker()?;
        }
        let first = self.range.size();
        if rec.key[..] != log_key(first) {
            return Err(format!(
                "audit entry {first} is missing (the next key is {})",
                hex::encode(&rec.key)
            ));
        }
        let ranges = row_entries(&rec.value)
            .map_err(|why| format!("the row of audit entry {first} {why}"))?;
        for r in ranges {
            self.one_entry(&rec.value[r])?;
        }
        Ok(())
    }

    fn one_entry(&mut self, bytes: &[u8]) -> Result<(), String> {
        let index = self.range.size();
        let entry = Entry::decode(bytes)
            .map_err(|e| format!("audit entry {index} does not decode: {e}"))?;
        if entry.index != index {
            return Err(format!(
                "audit entry {index} says it is entry {}",
                entry.index
            ));
        }
        if index > 0 && entry.prev != self.last_leaf {
            return Err(format!(
                "audit entry {} was changed: entry {index} records another hash for it",
                index - 1
            ));
        }
        let leaf = merkle::leaf_hash(bytes);
        self.last_leaf = Some(leaf);
        self.range.append(leaf);
        self.check_expected()
    }

    /// Adds the marker's checkpoint to what the log must match.
    fn expect_marker(&mut self) -> Result<(), String> {
        if let Some(note) = &self.header.marker {
            let signed = SignedCheckpoint::parse(note).map_err(|e| {
                format!("the last-checkpoint.note in its header does not parse: {e}")
            })?;
            let c = signed.checkpoint();
            self.expect
                .push((c.size(), *c.root(), "the last-checkpoint.note"));
        }
        self.check_expected()
    }

    /// Compares the log's root with each expectation at its size.
    fn check_expected(&mut self) -> Result<(), String> {
        let size = self.range.size();
        for (at, root, what) in &self.expect {
            if *at == size && self.range.root() != *root {
                return Err(format!(
                    "the audit log's root at {size} entries is not the one {what} signed: the \
                     log or the checkpoint was changed"
                ));
            }
        }
        Ok(())
    }

    fn message(&mut self, rec: &Record, tree: &str) -> Result<(), String> {
        if tree == "outbound" {
            self.counts.outbound += 1;
        } else {
            self.counts.inbox += 1;
        }
        let file = record_parcel(&rec.value)
            .and_then(|p| Stored::parse(p).ok())
            .and_then(|p| p.file().map(str::to_owned));
        if let Some(file) = file {
            if !self.bodies.join(&file).is_file() {
                return Err(format!(
                    "the message {} (tree {tree}) has its body in the file {file}, which is not \
                     in {}",
                    hex::encode(&rec.key),
                    self.bodies.display()
                ));
            }
            self.counts.body_files += 1;
        }
        Ok(())
    }

    fn finish(mut self, trailer: Counts) -> Result<SnapshotCheck, String> {
        if self.range.size() == 0 {
            self.expect_marker()?;
        }
        let (size, root) = (self.range.size(), self.range.root());
        if let Some((at, _, what)) = self.expect.iter().find(|e| e.0 > size) {
            return Err(format!(
                "{what} covers {at} audit entries, the log in the file holds {size}"
            ));
        }
        if (size, root) != (self.header.entries, self.header.root) {
            return Err(format!(
                "the audit log holds {size} entries with root {root}, its header says {} \
                 entries with root {}",
                self.header.entries, self.header.root
            ));
        }
        let counts = Counts {
            records: self.records,
            ..self.counts
        };
        if counts != trailer {
            return Err(format!(
                "its trailer counts {trailer:?}, the file holds {counts:?}"
            ));
        }
        Ok(SnapshotCheck {
            entries: size,
            root,
            checkpoints: self.checkpoints,
            newest_checkpoint: self.newest,
            outbound: counts.outbound,
            inbox: counts.inbox,
            body_files: counts.body_files,
            records: counts.records,
            bytes: 0,
        })
    }
}
