//! The commit journal: how a group commit becomes durable with one write
//! and one `fdatasync`.
//!
//! sled's `flush()` hands its work through a pool of I/O threads and waits
//! on `sync_file_range` more than once per call; with the `fsync` the
//! writer adds for power loss, a commit cost about 0.4 ms on a disk whose
//! own `fsync` takes 0.09 ms (docs/PERFORMANCE.md). So the writer applies a
//! group to sled as before (one transaction, seen by readers at once), then
//! appends the group's writes to the file [`JOURNAL`] beside the database
//! and syncs that file alone; only then are the group's callers answered.
//! sled itself is flushed (a *full flush*, `Writer::sync`) only now and
//! then: when the journal has grown past [`LIMIT`], when a group holds
//! writes the journal does not carry (a checkpoint, a cosignature, which
//! the writer writes to sled on their own), after the journal failed, and
//! at close. After each full flush the journal is emptied ([`Journal::reset`]).
//!
//! # Which groups are where
//!
//! Every journaled transaction also writes its number to `meta`
//! ([`SEQ_KEY`]), in the same sled transaction. sled comes back from a
//! crash with a prefix of its transactions, so the number it holds names
//! the newest group it kept; the journal holds every group acknowledged
//! since the last full flush. At open, [`replay`] applies the records after
//! that number again, in order, each in one transaction with its number,
//! then flushes sled and empties the journal.
//!
//! The journal only ever holds an unbroken run of groups that starts at or
//! before sled's flushed state: a group is written to it only while it is
//! *clean*; a write or sync that fails leaves it unclean, and every group
//! after that takes a full flush, until one succeeds and the journal is
//! emptied.
//!
//! # Record format
//!
//! | field | bytes |
//! |-------|-------|
//! | length of the body | 4, big-endian |
//! | body: version [`VERSION`] (1) ‖ group number (8, big-endian) ‖ writes | length |
//! | SHA-256 of `"kurir/v1/journal\0"` ‖ the body | 32 |
//!
//! A write is the tree (1: its place in `Trees::all`) ‖ 0 for a removal,
//! 1 for a value (1) ‖ the key's length (4, big-endian) ‖ the key ‖ for a
//! value, its length (4, big-endian) ‖ the value.
//!
//! A crash while appending leaves a cut-short or damaged last record; it
//! was never acknowledged (its group was answered only after the sync), so
//! reading stops there and says so in the log. A record whose number does
//! not follow the one before it, or that would leave a gap after sled's
//! own, means the journal is not this database's (a data directory put
//! together by hand): the store is not opened, and the error says what to
//! do.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use kurir_proto::Digest;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::trees::{TreeId, Trees};
use super::{Durability, StoreError};

/// The journal's file name in the data directory.
pub(super) const JOURNAL: &str = "journal";

/// The `meta` key of the newest journaled group sled holds (8 bytes,
/// big-endian).
pub(super) const SEQ_KEY: &[u8] = b"journal_seq";

/// The domain tag of a record's checksum.
const DOMAIN: &[u8] = b"kurir/v1/journal\0";

/// The record format's version.
const VERSION: u8 = 1;

/// Past this many bytes the next group takes a full flush, which empties
/// the journal: it bounds the replay at open (about 0.1 s per 16 MiB).
pub(super) const LIMIT: u64 = 16 * 1024 * 1024;

/// The journal of the writer thread.
pub(super) struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
    /// Records of this batch, not written yet.
    buf: Vec<u8>,
    /// The number the next journaled transaction gets.
    next: u64,
    /// Whether the file holds an unbroken run of groups ending at the
    /// newest one applied (see the module doc).
    clean: bool,
}

/// One write of a record: the tree's index, the key, the value or `None`
/// for a removal.
pub(super) type Write<'a> = (u8, &'a [u8], Option<&'a [u8]>);

impl Journal {
    /// The number for the next journaled transaction (it must write it to
    /// `meta` under [`SEQ_KEY`]); taken by [`Journal::add`].
    pub(super) fn next(&self) -> u64 {
        self.next
    }

    /// Adds the record of the transaction numbered [`Journal::next`],
    /// committed to sled, to the batch's records. A record that cannot be
    /// written (a key, value or record over 4 GiB) leaves the journal
    /// unclean instead: the batch then takes a full flush.
    pub(super) fn add<'a>(&mut self, writes: impl Iterator<Item = Write<'a>>) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.push(VERSION);
        self.buf.extend_from_slice(&self.next.to_be_bytes());
        let mut fits = true;
        for (tree, key, value) in writes {
            self.buf.push(tree);
            self.buf.push(u8::from(value.is_some()));
            fits &= put_bytes(&mut self.buf, key);
            if let Some(value) = value {
                fits &= put_bytes(&mut self.buf, value);
            }
        }
        let body = start + 4;
        match u32::try_from(self.buf.len() - body) {
            Ok(len) if fits => self.buf[start..body].copy_from_slice(&len.to_be_bytes()),
            _ => self.clean = false,
        }
        let digest = digest(&self.buf[body..]);
        self.buf.extend_from_slice(&digest.0);
        self.next += 1;
    }

    /// Whether the next sync must be a full flush: the journal failed, or
    /// has grown past [`LIMIT`].
    pub(super) fn wants_full(&self) -> bool {
        !self.clean || self.len >= LIMIT
    }

    /// Forgets the batch's records: a full flush covers them. Until the
    /// journal is emptied after it, it is unclean.
    pub(super) fn covered(&mut self) {
        self.buf.clear();
        self.clean = false;
    }

    /// Writes the batch's records and (for power loss) `fdatasync`s them.
    /// After a failure the journal is unclean.
    pub(super) fn sync(&mut self, durability: Durability) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&self.buf).and_then(|()| {
            if durability == Durability::PowerLoss {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        self.len += self.buf.len() as u64;
        self.buf.clear();
        written.map_err(|source| {
            self.clean = false;
            StoreError::Sync {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Empties the journal after a full flush has put everything in it on
    /// disk in sled; the journal is clean again. A failure is logged and
    /// leaves it unclean (the next group takes a full flush and tries
    /// again): nothing acknowledged depends on it.
    pub(super) fn reset(&mut self) {
        self.buf.clear();
        match self.file.set_len(0).and_then(|()| self.file.sync_all()) {
            Ok(()) => {
                self.len = 0;
                self.clean = true;
            }
            Err(e) => {
                self.clean = false;
                tracing::warn!(path = %self.path.display(), error = %e,
                    "could not empty the commit journal; commits take a full flush until it can be");
            }
        }
    }
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

/// What [`replay`] found in the journal.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Replayed {
    /// Groups applied to sled again.
    pub(super) applied: u64,
    /// Groups sled held already.
    pub(super) skipped: u64,
    /// Bytes at the end that were not a whole record (a write cut short).
    pub(super) dropped: u64,
}

/// Opens the journal of the store in `dir` (sled opened as `trees`):
/// applies the groups it holds that sled lacks, flushes sled (`fsync`
/// for power loss) and empties the journal. Returns the journal, ready
/// for the writer, and what was replayed.
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
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(io)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    let held = held_seq(dir, trees)?;
    let (replayed, last) = apply(dir, &path, trees, &bytes, held)?;
    if replayed.dropped > 0 {
        tracing::warn!(path = %path.display(), bytes = replayed.dropped,
            "the commit journal ends in a record cut short (a crash while it was written; \
             its group was never acknowledged): dropped");
    }
    if replayed.applied > 0 {
        tracing::info!(path = %path.display(), groups = replayed.applied,
            "commits recovered from the journal");
    }
    if !bytes.is_empty() {
        trees.db.flush().map_err(|source| StoreError::Sled {
            path: dir.to_owned(),
            source,
        })?;
        if durability == Durability::PowerLoss {
            File::open(dir.join("db"))
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Sync {
                    path: dir.join("db"),
                    source,
                })?;
        }
        file.set_len(0).and_then(|()| file.sync_all()).map_err(io)?;
    }
    let journal = Journal {
        path,
        file,
        len: 0,
        buf: Vec::new(),
        next: last.max(held) + 1,
        clean: true,
    };
    Ok((journal, replayed))
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
    let seq = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let mut rest = rest.get(8..)?;
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
    Some((Record { seq, writes }, end + 32))
}

/// The length of the whole first record of `bytes`, if it reads.
#[cfg(test)]
pub(super) fn first_len(bytes: &[u8]) -> Option<usize> {
    parse(bytes).map(|(_, len)| len)
}

fn take_bytes(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let value = bytes.get(4..4usize.checked_add(len)?)?;
    Some((value, &bytes[4 + len..]))
}

/// Applies the records of `bytes` after `held`, each in one transaction;
/// returns what it did and the newest number read.
fn apply(
    dir: &Path,
    path: &Path,
    trees: &Trees,
    bytes: &[u8],
    held: u64,
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
    while at < bytes.len() {
        let Some((record, len)) = parse(&bytes[at..]) else {
            replayed.dropped = (bytes.len() - at) as u64;
            break;
        };
        if let Some(last) = last
            && record.seq != last + 1
        {
            return Err(not_ours(format!(
                "record {} follows record {last} at byte {at}",
                record.seq
            )));
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

/// Applies one record in one transaction, with its number.
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
    let seq = record.seq.to_be_bytes();
    all[..]
        .transaction(|view| {
            for (tree, key, value) in &record.writes {
                let t = &view[usize::from(*tree)];
                match value {
                    Some(v) => t.insert(*key, *v)?,
                    None => t.remove(*key)?,
                };
            }
            view[TreeId::Meta as usize].insert(SEQ_KEY, &seq[..])?;
            Ok::<_, ConflictableTransactionError<String>>(())
        })
        .map_err(|e| match e {
            TransactionError::Abort(reason) => StoreError::Corrupt {
                path: dir.to_owned(),
                tree: "journal",
                reason,
            },
            TransactionError::Storage(source) => StoreError::Sled {
                path: dir.to_owned(),
                source,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed part of a record: length, version, number, digest.
    const OVERHEAD: usize = 4 + 1 + 8 + 32;

    fn record(seq: u64, writes: &[Write<'_>]) -> Vec<u8> {
        let (mut j, _dir) = scratch();
        j.next = seq;
        j.add(writes.iter().copied());
        j.buf
    }

    fn scratch() -> (Journal, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .unwrap();
        let j = Journal {
            path,
            file,
            len: 0,
            buf: Vec::new(),
            next: 1,
            clean: true,
        };
        (j, dir)
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
