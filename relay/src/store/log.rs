//! The audit log: entries numbered, linked (`prev`) and appended in the
//! transaction of the event they record; the Merkle compact range the
//! writer keeps. What the check at open ([`open_log`](super::replay::open_log))
//! found is [`LogState`].
//!
//! # Rows
//!
//! The entries of one group commit are stored in as few `log` rows as
//! [`RUN_ENTRIES`] and [`RUN_BYTES`] allow (store format 4): sled's cost is
//! per row (an insert into a tree whose keys only grow splits its last
//! leaf about every eighth key), so a group of many entries costs a few
//! rows, not one per entry. A row's key is the index of its first entry
//! (8 bytes, big-endian). Its value is either
//!
//! - one entry's encoding, as it is hashed (a CBOR map): every row of
//!   format 3 and older, and a group's run of one entry; or
//! - a **run**: a CBOR array of two or more byte strings, each one entry's
//!   encoding, the entries numbered on from the key.
//!
//! Every reader takes the entries through [`entries_from`], which finds the
//! row that holds the first one asked for and refuses a gap between rows,
//! rows that overlap, and a row that is neither form.

use std::ops::Range;
use std::path::Path;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::cbor;
use kurir_proto::merkle::CompactRange;

use super::keys::{Row, log_key, node_key};
use super::proofs::STORED_LEVEL;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError};

/// What the store found in its audit log when it opened.
#[derive(Debug, Clone)]
pub struct LogState {
    /// Entries in the log.
    pub size: u64,
    /// The newest stored checkpoint (signed note bytes), its size and the
    /// root the log has at that size.
    pub last_checkpoint: Option<(Vec<u8>, u64, Digest)>,
}

/// The most entries one `log` row holds.
pub(super) const RUN_ENTRIES: usize = 32;

/// The most bytes of entries one `log` row holds (an entry larger than
/// this has a row of its own). sled keeps up to 17 rows in a leaf and
/// writes a node larger than a quarter of its 512 KiB segment to a file of
/// its own, once per rewrite of the node: 17 rows of this size stay under
/// that.
pub(super) const RUN_BYTES: usize = 6 * 1024;

/// The audit entries of a group, encoded, and the leaf hashes to append
/// once committed; [`LogRows::rows`] makes their `log` rows.
#[derive(Default)]
pub(super) struct LogRows {
    pub(super) entries: Vec<Vec<u8>>,
    pub(super) leaves: Vec<Digest>,
}

impl LogRows {
    /// The `log` rows of the entries, the first numbered `first`: runs of
    /// up to [`RUN_ENTRIES`] entries and [`RUN_BYTES`] bytes, one row
    /// each; a run of one entry is the entry alone (see the module's
    /// "Rows").
    pub(super) fn rows(&self, first: u64) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut at = 0;
        while at < self.entries.len() {
            let mut end = at + 1;
            let mut bytes = self.entries[at].len();
            while end < self.entries.len() && end - at < RUN_ENTRIES {
                bytes += self.entries[end].len();
                if bytes > RUN_BYTES {
                    break;
                }
                end += 1;
            }
            rows.push((
                log_key(first + at as u64).to_vec(),
                run(&self.entries[at..end]),
            ));
            at = end;
        }
        rows
    }
}

/// The value of a row of `entries`: the entry alone, or a run.
fn run(entries: &[Vec<u8>]) -> Vec<u8> {
    if let [one] = entries {
        return one.clone();
    }
    let len: usize = entries
        .iter()
        .map(|e| cbor::head_len(e.len() as u64) + e.len())
        .sum();
    let mut out = Vec::with_capacity(cbor::head_len(entries.len() as u64) + len);
    cbor::write_head(4, entries.len() as u64, &mut out);
    for e in entries {
        cbor::write_head(2, e.len() as u64, &mut out);
        out.extend_from_slice(e);
    }
    out
}

/// Where the entries of a `log` row's value are in it, in order: the
/// whole value for a row of one entry (a CBOR map), each byte string's
/// contents for a run. Anything else is refused, with why.
pub(super) fn row_entries(value: &[u8]) -> Result<Vec<Range<usize>>, String> {
    match cbor::split_head(value) {
        Some((5, _, _)) => Ok(std::iter::once(0..value.len()).collect()),
        Some((4, n, mut rest)) if n >= 2 => {
            let mut out = Vec::new();
            for i in 0..n {
                let (entry, after) = cbor::split_byte_string(rest)
                    .ok_or_else(|| format!("holds a run whose item {i} is not an entry"))?;
                let start = value.len() - after.len() - entry.len();
                out.push(start..start + entry.len());
                rest = after;
            }
            if !rest.is_empty() {
                return Err(format!("holds {} bytes after its run", rest.len()));
            }
            Ok(out)
        }
        _ => Err("is neither an entry nor a run of entries".into()),
    }
}

/// Why the log could not be read ([`entries_from`]).
pub(super) enum LogReadError {
    Sled(sled::Error),
    /// The rows are not a log: a gap, an overlap, a row of neither form.
    Bad(String),
}

impl LogReadError {
    /// The error of the store in `dir`.
    pub(super) fn in_store(self, dir: &Path) -> StoreError {
        match self {
            LogReadError::Sled(source) => StoreError::Sled {
                path: dir.to_owned(),
                source,
            },
            LogReadError::Bad(reason) => StoreError::Corrupt {
                path: dir.to_owned(),
                tree: "log",
                reason,
            },
        }
    }
}

/// The entries of `log` from entry `from` on, in order, each with its
/// index; the iterator ends with the log (at once if it holds no entry
/// `from`). The entries are the rows' bytes, not copied. Rows must follow
/// each other without a gap or an overlap; after an error it ends.
pub(super) fn entries_from(log: &sled::Tree, from: u64) -> Entries {
    // The row that holds entry `from` starts at it or before it.
    let (start, failed) = match log.range(..=log_key(from)).next_back() {
        Some(Ok((key, _))) => (key.to_vec(), None),
        Some(Err(e)) => (log_key(from).to_vec(), Some(LogReadError::Sled(e))),
        None => (log_key(from).to_vec(), None),
    };
    Entries {
        rows: log.range(start..),
        row: None,
        next: from,
        first: true,
        failed,
        done: false,
    }
}

/// Entry `index` of `log`, if the log holds it.
pub(super) fn entry_at(log: &sled::Tree, index: u64) -> Result<Option<sled::IVec>, LogReadError> {
    entries_from(log, index)
        .next()
        .transpose()
        .map(|e| e.map(|(_, bytes)| bytes))
}

/// The iterator of [`entries_from`].
pub(super) struct Entries {
    rows: sled::Iter,
    /// The row being read: its value, where its entries are, the next one.
    row: Option<(sled::IVec, Vec<Range<usize>>, usize)>,
    /// The index of the next entry.
    next: u64,
    /// Whether no row was read yet (the first may start before `next`).
    first: bool,
    /// An error to give before ending.
    failed: Option<LogReadError>,
    done: bool,
}

impl Entries {
    /// Reads the next row; `Ok(false)` at the end of the log.
    fn next_row(&mut self) -> Result<bool, LogReadError> {
        let Some(item) = self.rows.next() else {
            return Ok(false);
        };
        let (key, value) = item.map_err(LogReadError::Sled)?;
        let start = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                LogReadError::Bad(format!("a row's key {} is not an index", hex::encode(&key)))
            })?;
        let ranges = row_entries(&value)
            .map_err(|why| LogReadError::Bad(format!("the row of entry {start} {why}")))?;
        let end = start + ranges.len() as u64;
        let first = std::mem::replace(&mut self.first, false);
        if start > self.next {
            // Past the end of the row before it: the rows that should
            // hold the entries between are missing.
            return Err(LogReadError::Bad(format!(
                "entry {} is missing (the next row starts at entry {start})",
                self.next
            )));
        }
        if start < self.next && !first {
            return Err(LogReadError::Bad(format!(
                "entry {start} is stored twice (in a run that ends at {} and in the next row)",
                self.next - 1
            )));
        }
        // Only the first row may hold entries before `next`.
        let skip = (self.next - start) as usize;
        if end <= self.next {
            self.row = None;
        } else {
            self.row = Some((value, ranges, skip));
        }
        Ok(true)
    }
}

impl Iterator for Entries {
    type Item = Result<(u64, sled::IVec), LogReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.failed.take() {
            self.done = true;
            return Some(Err(e));
        }
        loop {
            if let Some((value, ranges, at)) = &mut self.row {
                if let Some(r) = ranges.get(*at) {
                    let entry = value.subslice(r.start, r.len());
                    *at += 1;
                    let index = self.next;
                    self.next += 1;
                    return Some(Ok((index, entry)));
                }
                self.row = None;
            }
            match self.next_row() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Store {
    /// What the audit log held when the store opened.
    pub fn log_state(&self) -> &LogState {
        &self.log_state
    }

    /// Appends audit entries on their own (events with no other record).
    pub async fn audit(&self, entries: Vec<Entry>) -> Result<(), StoreError> {
        self.submit_op(Op::Audit, entries).await.map(drop)
    }

    /// Every audit entry, in order (the raw CBOR of each).
    pub fn log_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        entries_from(self.tree(TreeId::Log)?, 0)
            .map(|item| {
                item.map(|(_, v)| v.to_vec())
                    .map_err(|e| e.in_store(&self.path))
            })
            .collect()
    }
}

impl Writer {
    /// [`Op::Audit`]: only the audit entries.
    pub(super) fn audit(
        &self,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        self.append(audit, pending);
        Ok(OpResult::Done)
    }

    /// Numbers `audit` after the entries of the group so far and adds them
    /// to the group's writes.
    pub(super) fn append(&self, audit: &mut [Entry], pending: &mut Pending) {
        let rows = self.log_rows(pending.log_tail(), audit);
        pending.log(rows);
    }

    /// Numbers the entries from the log's current size plus the entries of
    /// the group not committed yet (`pending`: how many, and the newest's
    /// leaf hash), links each to the one before it (`prev`) and encodes them.
    pub(super) fn log_rows(
        &self,
        pending: (usize, Option<Digest>),
        entries: &mut [Entry],
    ) -> LogRows {
        let mut encoded = Vec::with_capacity(entries.len());
        let mut leaves = Vec::with_capacity(entries.len());
        let mut prev = pending.1.or(self.last_leaf);
        for (i, entry) in entries.iter_mut().enumerate() {
            entry.index = self.range.size() + (pending.0 + i) as u64;
            entry.prev = prev;
            let bytes = entry.encode();
            let leaf = kurir_proto::merkle::leaf_hash(&bytes);
            prev = Some(leaf);
            leaves.push(leaf);
            encoded.push(bytes);
        }
        LogRows {
            entries: encoded,
            leaves,
        }
    }

    /// The log's range after appending `leaves`, and the `log_nodes` rows
    /// of the perfect subtrees they complete (levels from
    /// [`STORED_LEVEL`]), to write in the same transaction.
    pub(super) fn grown(&self, leaves: &[Digest]) -> (CompactRange, Vec<([u8; 9], Digest)>) {
        let mut range = self.range.clone();
        let mut nodes = Vec::new();
        for leaf in leaves {
            range.append_with(*leaf, |level, i, hash| {
                if level >= STORED_LEVEL {
                    nodes.push((node_key(level, i), hash));
                }
            });
        }
        (range, nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(rows: &[(u64, &[&[u8]])]) -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = db.open_tree("log").unwrap();
        for (first, entries) in rows {
            let entries = LogRows {
                entries: entries.iter().map(|e| e.to_vec()).collect(),
                leaves: Vec::new(),
            };
            for (k, v) in entries.rows(*first) {
                log.insert(k, v).unwrap();
            }
        }
        log
    }

    fn read(log: &sled::Tree, from: u64) -> Result<Vec<(u64, Vec<u8>)>, String> {
        entries_from(log, from)
            .map(|e| match e {
                Ok((i, b)) => Ok((i, b.to_vec())),
                Err(LogReadError::Bad(why)) => Err(why),
                Err(LogReadError::Sled(e)) => Err(e.to_string()),
            })
            .collect()
    }

    // Stand-ins for entries: any CBOR map reads as an entry here.
    const A: &[u8] = &[0xa1, 0x00, 0x00];
    const B: &[u8] = &[0xa1, 0x00, 0x01];
    const C: &[u8] = &[0xa1, 0x00, 0x02];

    #[test]
    fn a_run_is_an_array_of_the_entries_and_a_run_of_one_the_entry_alone() {
        let rows = LogRows {
            entries: vec![A.to_vec(), B.to_vec()],
            leaves: Vec::new(),
        };
        let mut want = vec![0x82, 0x43];
        want.extend_from_slice(A);
        want.push(0x43);
        want.extend_from_slice(B);
        assert_eq!(rows.rows(7), vec![(7u64.to_be_bytes().to_vec(), want)]);
        let one = LogRows {
            entries: vec![C.to_vec()],
            leaves: Vec::new(),
        };
        assert_eq!(one.rows(9), vec![(9u64.to_be_bytes().to_vec(), C.to_vec())]);
    }

    #[test]
    fn a_run_ends_at_its_count_or_its_bytes_and_a_large_entry_is_alone() {
        let sized = |n: usize, len: usize| vec![vec![0xa0; len]; n];
        let runs = |entries: Vec<Vec<u8>>| {
            let rows = LogRows {
                entries,
                leaves: Vec::new(),
            };
            rows.rows(100)
                .iter()
                .map(|(k, v)| {
                    let first = u64::from_be_bytes(k[..].try_into().unwrap());
                    let n = match cbor::split_head(v) {
                        Some((4, n, _)) => n as usize,
                        _ => 1,
                    };
                    (first, n)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(runs(sized(70, 10)), vec![(100, 32), (132, 32), (164, 6)]);
        // Five of 1,100 bytes fit RUN_BYTES, six do not.
        assert_eq!(runs(sized(12, 1100)), vec![(100, 5), (105, 5), (110, 2)]);
        let mut large = sized(1, RUN_BYTES + 1);
        large.extend(sized(2, 10));
        assert_eq!(runs(large), vec![(100, 1), (101, 2)]);
        assert_eq!(runs(Vec::new()), vec![]);
    }

    #[test]
    fn rows_that_are_neither_an_entry_nor_a_run_are_refused() {
        let mut one = vec![0x81, 0x43];
        one.extend_from_slice(A);
        let mut trailing = vec![0x82, 0x43];
        trailing.extend_from_slice(A);
        trailing.push(0x43);
        trailing.extend_from_slice(B);
        trailing.push(0);
        for (value, why) in [
            (&one[..], "neither an entry nor a run"),
            (
                &[0x82, 0x43, 0xa1, 0x00, 0x00, 0x01][..],
                "item 1 is not an entry",
            ),
            (&trailing[..], "1 bytes after its run"),
            (&[0x63, b'a', b'b', b'c'][..], "neither an entry nor a run"),
            (&[][..], "neither an entry nor a run"),
        ] {
            let err = row_entries(value).unwrap_err();
            assert!(err.contains(why), "{value:02x?}: {err}");
        }
    }

    #[test]
    fn entries_are_read_from_any_index_across_runs_and_single_rows() {
        let log = log_of(&[(0, &[A, B, C]), (3, &[A]), (4, &[B, C])]);
        let all = read(&log, 0).unwrap();
        assert_eq!(
            all.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..6).collect::<Vec<_>>()
        );
        assert_eq!(all[5].1, C);
        // From inside a run, from a single row, from the end, past it.
        assert_eq!(read(&log, 1).unwrap(), all[1..]);
        assert_eq!(read(&log, 3).unwrap(), all[3..]);
        assert_eq!(read(&log, 5).unwrap(), all[5..]);
        assert_eq!(read(&log, 6).unwrap(), vec![]);
        assert_eq!(read(&log, 60).unwrap(), vec![]);
        assert_eq!(entry_at(&log, 4).ok().flatten().as_deref(), Some(B));
        assert!(entry_at(&log, 6).ok().unwrap().is_none());
        assert_eq!(read(&log_of(&[]), 0).unwrap(), vec![]);
    }

    #[test]
    fn a_gap_or_an_overlap_between_rows_is_refused() {
        // Entries 3 and 4 missing.
        let gap = log_of(&[(0, &[A, B, C]), (5, &[A, B])]);
        for from in [0, 2, 3] {
            let err = read(&gap, from).unwrap_err();
            assert!(
                err.contains("entry 3 is missing (the next row starts at entry 5)"),
                "{from}: {err}"
            );
        }
        // Entry 2 stored twice: in the run from 0 and in the row from 2.
        let overlap = log_of(&[(0, &[A, B, C]), (2, &[A, B])]);
        let err = read(&overlap, 0).unwrap_err();
        assert!(err.contains("entry 2 is stored twice"), "{err}");
        // A row that is not a log row, named by its first entry.
        let log = log_of(&[(0, &[A, B])]);
        log.insert(2u64.to_be_bytes(), &b"\x63abc"[..]).unwrap();
        let err = read(&log, 0).unwrap_err();
        assert!(err.contains("the row of entry 2 is neither"), "{err}");
        log.remove(2u64.to_be_bytes()).unwrap();
        log.insert(&b"key"[..], A).unwrap();
        let err = read(&log, 0).unwrap_err();
        assert!(err.contains("is not an index"), "{err}");
    }
}
