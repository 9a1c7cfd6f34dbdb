//! The commit journal: how a group commit becomes durable with one write
//! and one `fdatasync`.
//!
//! sled's `flush()` hands its work through a pool of I/O threads and waits
//! on `sync_file_range` more than once per call, and each sled transaction
//! writes and syncs sled's log twice more on those threads; with the
//! `fsync` the writer adds for power loss, a commit cost about 0.4 ms on a
//! disk whose own `fsync` takes 0.09 ms (docs/PERFORMANCE.md). So the
//! writer makes a group durable the way a database's write-ahead log does:
//! it writes the group's record to the file [`JOURNAL`] beside the
//! database and `fdatasync`s that file alone, then applies the writes to
//! sled one by one, without a sled transaction; only then are the group's
//! callers answered. The file is filled with zeros ahead of the records
//! ([`CHUNK`] at a time) and records are written over them, so a record's
//! sync changes no file metadata. sled itself is flushed (a *full flush*, `Writer::sync`) only
//! now and then: when the journal has grown past [`LIMIT`], when a batch
//! holds writes the journal does not carry (a checkpoint, a cosignature,
//! which the writer writes to sled on their own), after the journal
//! failed, and at close. After each full flush the journal is emptied
//! ([`Journal::reset`]): the next record goes to the start of the file,
//! over the older ones, and the file keeps its size (at most about
//! [`LIMIT`] plus one group). While the journal cannot take a group (past its
//! limit, or failed), the group goes to sled in one transaction and its
//! batch takes a full flush, as before the journal.
//!
//! # Which groups are where
//!
//! Every group also writes its number to `meta` ([`SEQ_KEY`]), as its last
//! write in sled. sled comes back from a crash with a prefix of its log, so
//! the number it holds names the newest group it kept whole; a group it
//! holds only part of (a crash while it was applied) has a higher number,
//! and its record is in the journal, which holds every group since the
//! last full flush. At open, [`open`] reads the records from the start of
//! the file and applies those after sled's number again, in order, each
//! as the writer applies a group (its writes one by one, its number last;
//! a write applied twice leaves the same value), then flushes sled. A record synced but never applied (a crash
//! between the two) is applied then too: it was durable, though not yet
//! answered. Reading stops at the first bytes that are not a whole record
//! (the zeros ahead, a record cut short by a crash, which was never
//! acknowledged, or the middle of an older one) and at a record numbered
//! below the one before it: the journal was emptied since that one was
//! written, so sled holds it. Every record also carries the database's
//! journal id ([`ID_KEY`]); records of another database are never applied
//! (a warning says so).
//!
//! The journal only ever holds an unbroken run of groups that starts at or
//! before sled's flushed state: a group is written to it only while it is
//! *clean*; a write or sync that fails leaves it unclean, and every group
//! after that goes to sled in a transaction with a full flush, until one
//! succeeds and the journal is emptied. If sled fails while applying a
//! journaled group, the writer refuses everything after it and never
//! empties the journal, so the next start completes that group.
//!
//! # Record format
//!
//! | field | bytes |
//! |-------|-------|
//! | length of the body | 4, big-endian |
//! | body: version [`VERSION`] (1) ‖ the database's journal id (16, [`ID_KEY`]) ‖ group number (8, big-endian) ‖ writes | length |
//! | SHA-256 of `"kurir/v1/journal\0"` ‖ the body | 32 |
//!
//! A write is the tree (1: its place in `Trees::all`) ‖ 0 for a removal,
//! 1 for a value (1) ‖ the key's length (4, big-endian) ‖ the key ‖ for a
//! value, its length (4, big-endian) ‖ the value.
//!
//! A record numbered after the one before it by more than one, or that
//! would leave a gap after sled's own number, means the journal does not
//! follow this database: the store is not opened, and the error says what
//! to do.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use kurir_proto::Digest;

use super::trees::Trees;
use super::{Durability, StoreError};

/// The journal's file name in the data directory.
pub(super) const JOURNAL: &str = "journal";

/// The `meta` key of the newest journaled group sled holds (8 bytes,
/// big-endian).
pub(super) const SEQ_KEY: &[u8] = b"journal_seq";

/// The `meta` key of the database's journal id (16 random bytes, made at
/// the first open with a journal): every record carries it, so records of
/// another database (a data directory put together from two) are never
/// applied.
pub(super) const ID_KEY: &[u8] = b"journal_id";

/// The domain tag of a record's checksum.
const DOMAIN: &[u8] = b"kurir/v1/journal\0";

/// The record format's version.
const VERSION: u8 = 1;

/// Past this many bytes the next group takes a full flush, which empties
/// the journal: it bounds the file and the replay at open (after a crash
/// in a `kurir-bench` run, 23 groups replayed and the log checked took
/// 0.06 s: sled's own background flush keeps what it lacks short).
pub(super) const LIMIT: u64 = 16 * 1024 * 1024;

/// The file grows by this many bytes of zeros at a time, before records
/// are written into them: a record written over bytes the file already
/// holds changes none of its metadata, so its `fdatasync` flushes only
/// the record (an append would also commit the new file size, which
/// costs about twice as much).
const CHUNK: u64 = 1024 * 1024;

/// The most bytes of record buffer kept between groups.
const KEEP: usize = 4 * 1024 * 1024;

/// The journal of the writer thread.
pub(super) struct Journal {
    path: PathBuf,
    file: File,
    /// The database's journal id ([`ID_KEY`]).
    id: [u8; 16],
    /// Where the next record goes: the end of the records since the
    /// journal was last emptied.
    len: u64,
    /// The file's size: records, then zeros or older records.
    size: u64,
    /// The record being written, kept between groups so that a large
    /// group's record is not allocated and freed each time (at most
    /// [`KEEP`] bytes are kept).
    buf: Vec<u8>,
    /// The number the next group gets.
    next: u64,
    /// Whether the file holds an unbroken run of groups ending at the
    /// newest one applied (see the module doc).
    clean: bool,
    /// [`LIMIT`], or less in tests.
    pub(super) limit: u64,
}

/// One write of a record: the tree's index, the key, the value or `None`
/// for a removal.
pub(super) type Write<'a> = (u8, &'a [u8], Option<&'a [u8]>);

impl Journal {
    /// The number of the next group, journaled or not (it must write it to
    /// `meta` under [`SEQ_KEY`], last).
    pub(super) fn number(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }

    /// Whether a group must go to sled in a transaction, with a full flush:
    /// the journal failed, or has grown past [`LIMIT`].
    pub(super) fn wants_full(&self) -> bool {
        !self.clean || self.len >= self.limit
    }

    /// Writes the record of group `seq` and (for power loss) `fdatasync`s
    /// it. `Ok(false)` if the record cannot be written (a key, value or
    /// record over 4 GiB): nothing was written, and the journal is unclean
    /// until the next full flush. After a failure, too, it is unclean.
    pub(super) fn write<'a>(
        &mut self,
        seq: u64,
        writes: impl Iterator<Item = Write<'a>> + Clone,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let mut record = std::mem::take(&mut self.buf);
        if !encode(&mut record, &self.id, seq, writes) {
            self.buf = record;
            self.clean = false;
            return Ok(false);
        }
        let at = self.len;
        let end = at + record.len() as u64;
        let written = self
            .grow(end)
            .and_then(|()| write_at(&self.file, &record, at))
            .and_then(|()| match durability {
                Durability::PowerLoss => self.file.sync_data(),
                Durability::ProcessCrash => Ok(()),
            });
        self.len = end;
        record.clear();
        record.shrink_to(KEEP);
        self.buf = record;
        written.map(|()| true).map_err(|source| {
            self.clean = false;
            StoreError::Sync {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Fills the file with zeros up to the chunk that holds `end`.
    fn grow(&mut self, end: u64) -> std::io::Result<()> {
        /// Zeros to write from, in static memory (no allocation).
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        if end <= self.size {
            return Ok(());
        }
        let size = end.div_ceil(CHUNK) * CHUNK;
        let mut at = self.size;
        while at < size {
            let n = (size - at).min(ZEROS.len() as u64);
            write_at(&self.file, &ZEROS[..n as usize], at)?;
            at += n;
        }
        self.size = size;
        Ok(())
    }

    /// Empties the journal after a full flush has put every group in it on
    /// disk in sled: the next record is written at its start, over the
    /// older ones, which the next open tells apart by their numbers (see
    /// the module doc). The journal is clean again.
    pub(super) fn reset(&mut self) {
        self.len = 0;
        self.clean = true;
    }
}

/// Writes all of `bytes` at `at` in `file`.
fn write_at(file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Seek as _, SeekFrom, Write as _};
        let mut file = file;
        file.seek(SeekFrom::Start(at))?;
        file.write_all(bytes)
    }
}

/// Encodes the record of group `seq` into `buf` (emptied first); `false`
/// if a length does not fit in 4 bytes.
fn encode<'a>(
    buf: &mut Vec<u8>,
    id: &[u8; 16],
    seq: u64,
    writes: impl Iterator<Item = Write<'a>> + Clone,
) -> bool {
    let size: usize = writes
        .clone()
        .map(|(_, k, v)| 2 + 4 + k.len() + v.map_or(0, |v| 4 + v.len()))
        .sum();
    buf.clear();
    buf.reserve(4 + 1 + 16 + 8 + size + 32);
    buf.extend_from_slice(&[0; 4]);
    buf.push(VERSION);
    buf.extend_from_slice(id);
    buf.extend_from_slice(&seq.to_be_bytes());
    let mut fits = true;
    for (tree, key, value) in writes {
        buf.push(tree);
        buf.push(u8::from(value.is_some()));
        fits &= put_bytes(buf, key);
        if let Some(value) = value {
            fits &= put_bytes(buf, value);
        }
    }
    let Some(len) = u32::try_from(buf.len() - 4).ok().filter(|_| fits) else {
        buf.clear();
        return false;
    };
    buf[..4].copy_from_slice(&len.to_be_bytes());
    let digest = digest(&buf[4..]);
    buf.extend_from_slice(&digest.0);
    true
}

/// A record body's checksum: SHA-256 with the journal's domain tag.
fn digest(body: &[u8]) -> Digest {
    Digest::of(&[DOMAIN, body])
}

/// Appends `bytes` with their length; `false` if that is over 4 GiB.
fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let Ok(len) = u32::try_from(bytes.len()) else {
        return false;
    };
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
    true
}

/// What [`open`] found in the journal.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Replayed {
    /// Groups applied to sled again.
    pub(super) applied: u64,
    /// Groups sled held already.
    pub(super) skipped: u64,
    /// The first record is another database's (none was applied).
    pub(super) foreign: bool,
}

/// Opens the journal of the store in `dir` (sled opened as `trees`):
/// applies the groups it holds that sled lacks, then flushes sled (`fsync`
/// for power loss); a new journal gets its first chunk of zeros, synced
/// with the directory. Returns the journal, empty and ready for the
/// writer, and what was replayed.
pub(super) fn open(
    dir: &Path,
    trees: &Trees,
    durability: Durability,
) -> Result<(Journal, Replayed), StoreError> {
    let path = dir.join(JOURNAL);
    let io = |source| StoreError::Sync {
        path: path.clone(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    let held = held_seq(dir, trees)?;
    let sled_err = |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    };
    let (id, new_id) = match journal_id(dir, trees)? {
        Some(id) => (id, false),
        None => {
            // A new store, or one from before the journal: no record can be
            // its own. Recorded (and flushed below) before any record.
            use rand::RngExt as _;
            let id: [u8; 16] = rand::rng().random();
            trees.meta.insert(ID_KEY, &id[..]).map_err(sled_err)?;
            (id, true)
        }
    };
    let (replayed, last) = apply(dir, &path, trees, &bytes, held, &id)?;
    if replayed.foreign {
        tracing::warn!(path = %path.display(),
            "the commit journal holds records of another database (the data directory was \
             put together from two?): none of them was applied");
    }
    if replayed.applied > 0 {
        tracing::info!(path = %path.display(), groups = replayed.applied,
            "commits recovered from the journal");
    }
    if replayed.applied > 0 || new_id {
        trees.db.flush().map_err(sled_err)?;
        if durability == Durability::PowerLoss {
            File::open(dir.join("db"))
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Sync {
                    path: dir.join("db"),
                    source,
                })?;
        }
    }
    let mut journal = Journal {
        path: path.clone(),
        file,
        id,
        buf: Vec::new(),
        limit: LIMIT,
        len: 0,
        size: bytes.len() as u64,
        next: last.max(held) + 1,
        clean: true,
    };
    if journal.size < CHUNK {
        // A new journal: its first chunk and its name on disk before any
        // record relies on them.
        journal
            .grow(CHUNK)
            .and_then(|()| journal.file.sync_all())
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(io)?;
    }
    Ok((journal, replayed))
}

/// The database's journal id, if it has one.
fn journal_id(dir: &Path, trees: &Trees) -> Result<Option<[u8; 16]>, StoreError> {
    let found = trees.meta.get(ID_KEY).map_err(|source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    })?;
    found
        .map(|v| {
            <[u8; 16]>::try_from(v.as_ref()).map_err(|_| StoreError::Corrupt {
                path: dir.to_owned(),
                tree: "meta",
                reason: format!("journal_id is {} bytes long, not 16", v.len()),
            })
        })
        .transpose()
}

/// The number of the newest journaled group sled holds (0 for none).
fn held_seq(dir: &Path, trees: &Trees) -> Result<u64, StoreError> {
    let found = trees.meta.get(SEQ_KEY).map_err(|source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    })?;
    match found {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                path: dir.to_owned(),
                tree: "meta",
                reason: format!("journal_seq is {} bytes long, not 8", v.len()),
            }),
    }
}

/// One record read back: its number and writes.
struct Record<'a> {
    id: [u8; 16],
    seq: u64,
    writes: Vec<Write<'a>>,
}

/// The record at the start of `bytes` and its length, or `None` if it is
/// cut short or damaged.
fn parse(bytes: &[u8]) -> Option<(Record<'_>, usize)> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    let body = bytes.get(4..end)?;
    let sum = bytes.get(end..end.checked_add(32)?)?;
    if digest(body).0[..] != *sum {
        return None;
    }
    let (&version, rest) = body.split_first()?;
    if version != VERSION {
        return None;
    }
    let id: [u8; 16] = rest.get(..16)?.try_into().ok()?;
    let seq = u64::from_be_bytes(rest.get(16..24)?.try_into().ok()?);
    let mut rest = rest.get(24..)?;
    let mut writes = Vec::new();
    while let Some((&tree, after)) = rest.split_first() {
        let (&kind, after) = after.split_first()?;
        let (key, after) = take_bytes(after)?;
        let (value, after) = match kind {
            0 => (None, after),
            1 => take_bytes(after).map(|(v, a)| (Some(v), a))?,
            _ => return None,
        };
        writes.push((tree, key, value));
        rest = after;
    }
    Some((Record { id, seq, writes }, end + 32))
}

/// The records at the start of `bytes`, as the next open reads them:
/// each one's number and where it ends.
pub(super) fn records(bytes: &[u8]) -> Vec<(u64, usize)> {
    let mut found: Vec<(u64, usize)> = Vec::new();
    let mut at = 0;
    while let Some((record, len)) = bytes.get(at..).and_then(parse) {
        if found.last().is_some_and(|(last, _)| record.seq <= *last) {
            break;
        }
        at += len;
        found.push((record.seq, at));
    }
    found
}

fn take_bytes(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let value = bytes.get(4..4usize.checked_add(len)?)?;
    Some((value, &bytes[4 + len..]))
}

/// Applies the records of `bytes` after `held`, each in one transaction;
/// returns what it did and the newest number read. Reading stops at the
/// first bytes that are not a whole record (zeros, a record cut short by a
/// crash, the middle of an older record), at a record numbered below
/// the one before it (an older record, from before the journal was last
/// emptied: sled holds it already), or at a record of another database.
fn apply(
    dir: &Path,
    path: &Path,
    trees: &Trees,
    bytes: &[u8],
    held: u64,
    id: &[u8; 16],
) -> Result<(Replayed, u64), StoreError> {
    let mut replayed = Replayed::default();
    let mut at = 0;
    let mut last: Option<u64> = None;
    let not_ours = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        tree: "journal",
        reason: format!(
            "{reason}: this journal does not belong to this database (a data directory put \
             together by hand?); the relay was not started. Move {} aside and start again only \
             if you know the database holds every commit",
            path.display()
        ),
    };
    while let Some((record, len)) = bytes.get(at..).and_then(parse) {
        if record.id != *id {
            replayed.foreign = last.is_none();
            break;
        }
        match last {
            Some(last) if record.seq <= last => break,
            Some(last) if record.seq != last + 1 => {
                return Err(not_ours(format!(
                    "record {} follows record {last} at byte {at}",
                    record.seq
                )));
            }
            _ => {}
        }
        last = Some(record.seq);
        at += len;
        if record.seq <= held {
            replayed.skipped += 1;
            continue;
        }
        if record.seq != held + replayed.applied + 1 {
            return Err(not_ours(format!(
                "the first record sled lacks is {}, but sled holds up to {held}",
                record.seq
            )));
        }
        commit(dir, trees, &record)?;
        replayed.applied += 1;
    }
    Ok((replayed, last.unwrap_or(0)))
}

/// Applies one record's writes one by one, its number last, as the writer
/// applies a group (`Writer::apply_journaled`): a crash part way through
/// leaves sled's number before this record, and the next open applies it
/// again (a write applied twice leaves the same value).
fn commit(dir: &Path, trees: &Trees, record: &Record<'_>) -> Result<(), StoreError> {
    let all = trees.all();
    if let Some((tree, ..)) = record
        .writes
        .iter()
        .find(|(tree, ..)| usize::from(*tree) >= all.len())
    {
        return Err(StoreError::Corrupt {
            path: dir.join(JOURNAL),
            tree: "journal",
            reason: format!(
                "record {} names tree {tree}, which does not exist",
                record.seq
            ),
        });
    }
    let applied = (|| {
        for (tree, key, value) in &record.writes {
            #[cfg(test)]
            if fail_replay::due() {
                return Err(sled::Error::Unsupported(
                    "failure injected by a test".into(),
                ));
            }
            let t = all[usize::from(*tree)];
            match value {
                Some(v) => t.insert(*key, *v)?,
                None => t.remove(*key)?,
            };
        }
        trees.meta.insert(SEQ_KEY, &record.seq.to_be_bytes()[..])?;
        Ok::<(), sled::Error>(())
    })();
    applied.map_err(|source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    })
}

/// A failure injected into the replay by a test on its own thread: after
/// this many writes applied, the next fails.
#[cfg(test)]
pub(super) mod fail_replay {
    use std::cell::Cell;

    thread_local! {
        static AFTER: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Fails the replay's write after `writes` more on this thread (`None`:
    /// never).
    pub(in crate::store) fn after(writes: Option<usize>) {
        AFTER.set(writes);
    }

    /// Whether this write is the one to fail.
    pub(super) fn due() -> bool {
        match AFTER.get() {
            Some(0) => true,
            Some(n) => {
                AFTER.set(Some(n - 1));
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed part of a record: length, version, id, number, digest.
    const OVERHEAD: usize = 4 + 1 + 16 + 8 + 32;

    fn record(seq: u64, writes: &[Write<'_>]) -> Vec<u8> {
        let mut buf = Vec::new();
        assert!(encode(&mut buf, &[5; 16], seq, writes.iter().copied()));
        buf
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let bytes = record(
            7,
            &[
                (2, b"k1", Some(b"v1")),
                (5, b"k2", None),
                (0, b"", Some(b"")),
            ],
        );
        assert_eq!(
            bytes.len(),
            OVERHEAD + (2 + 4 + 2 + 4 + 2) + (2 + 4 + 2) + (2 + 4 + 4)
        );
        let (r, len) = parse(&bytes).unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(r.seq, 7);
        assert_eq!(r.id, [5; 16]);
        assert_eq!(
            r.writes,
            vec![
                (2, &b"k1"[..], Some(&b"v1"[..])),
                (5, b"k2", None),
                (0, b"", Some(b""))
            ]
        );
    }

    #[test]
    fn a_cut_short_or_changed_record_does_not_read() {
        let bytes = record(1, &[(2, b"key", Some(b"value"))]);
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            assert!(parse(&changed).is_none(), "byte {i} changed");
        }
    }
}
