//! The check of the audit log at open ([`open_log`]), which reads only the
//! entries after the newest checkpoint, and the full check on demand
//! ([`verify_log`], `kurir-relay verify-log`), which reads every entry.
//!
//! # At open
//!
//! Each checkpoint is stored with the log's Merkle frontier at its size
//! (the compact range: the roots of its perfect subtrees, `frontiers`),
//! written in the same transaction. The open:
//!
//! 1. parses the newest checkpoint and loads its frontier; one that does
//!    not decode, or whose root is not the checkpoint's signed root, is
//!    refused;
//! 2. checks the last entry the checkpoint covers against its signed root
//!    (its RFC 9162 inclusion proof, from the stored subtree hashes): the
//!    chain of the entries after it is anchored there;
//! 3. reads only the entries after the checkpoint: each there (no gap),
//!    decodable, carrying its own index and linked (`prev`) to the one
//!    before, appended to the frontier;
//! 4. checks the `last-checkpoint.note` marker beside the database, as
//!    every open does: a database that falls short of it, or differs from
//!    it, is refused.
//!
//! It reads the whole log instead (and then stores the frontier) when the
//! newest checkpoint has no frontier (a store written before frontiers
//! were kept, or by an older binary), when the marker is older than the
//! newest checkpoint (its root is known only from the entries), when
//! subtree hashes before the checkpoint are missing (they are rebuilt), or
//! when the log does not reach the checkpoint (the full replay says how
//! far it gets, and the relay refuses to start on it).
//!
//! Entries before the newest checkpoint are not read at open: a change to
//! one of them is found by [`verify_log`], and by an auditor.

use std::collections::BTreeMap;
use std::path::Path;

use kurir_proto::Digest;
use kurir_proto::audit::Entry;
use kurir_proto::checkpoint::SignedCheckpoint;
use kurir_proto::merkle::{self, CompactRange};

use super::StoreError;
use super::checkpoints::{check_marker, read_marker};
use super::keys::{checkpoint_key, node_key};
use super::log::{LogState, entries_from, entry_at};
use super::migrate::LogNodesRebuild;
use super::proofs::{STORED_LEVEL, SubtreeError, subtree_hash};
use super::trees::{self, Trees};

/// What the check at open found: the log's range, its newest leaf hash
/// (the next entry's `prev`) and the state it reports.
pub(super) type Opened = (CompactRange, Option<Digest>, LogState);

/// What to do about a database the open finds damaged.
const DAMAGED: &str = "Do not run on it: check the whole log with `kurir-relay verify-log \
                       --data-dir DIR` (the relay stopped), and restore the data directory \
                       from a backup or have an auditor examine it";

/// The newest stored checkpoint: its signed note, size and signed root.
struct Newest {
    note: Vec<u8>,
    size: u64,
    root: Digest,
}

/// Checks the audit log in `dir` at open (see the module docs): from the
/// frontier of the newest checkpoint when there is one, else every entry.
pub(super) fn open_log(dir: &Path, trees: &Trees) -> Result<Opened, StoreError> {
    let marker = read_marker(dir)?;
    let newest = newest_checkpoint(dir, trees)?;
    if let Some(newest) = &newest {
        match resume(dir, trees, marker, newest)? {
            Resumed::Done(opened) => return Ok(opened),
            Resumed::Replay(why) => tracing::info!(
                data_dir = %dir.display(),
                checkpoint = newest.size,
                "checking the whole audit log at open: {why}"
            ),
        }
    }
    let (opened, frontier) = replay_all(dir, trees, marker, newest.as_ref())?;
    if let (Some(newest), Some(frontier)) = (&newest, frontier)
        && frontier.root() == newest.root
    {
        store_frontier(dir, trees, newest.size, &frontier)?;
    }
    Ok(opened)
}

/// The frontier `range` as stored: its nodes, 32 bytes each.
pub(super) fn encode_frontier(range: &CompactRange) -> Vec<u8> {
    range.nodes().iter().flat_map(|d| d.0).collect()
}

/// The frontier of `size` entries stored as `bytes`.
fn decode_frontier(size: u64, bytes: &[u8]) -> Result<CompactRange, String> {
    if !bytes.len().is_multiple_of(32) {
        return Err(format!(
            "it is {} bytes long, not a multiple of 32",
            bytes.len()
        ));
    }
    let nodes = bytes
        .chunks_exact(32)
        .filter_map(Digest::from_slice)
        .collect();
    CompactRange::from_parts(size, nodes).map_err(|e| e.to_string())
}

fn corrupt(dir: &Path, tree: &'static str, reason: String) -> StoreError {
    StoreError::Corrupt {
        path: dir.to_owned(),
        tree,
        reason,
    }
}

fn sled_err(dir: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |source| StoreError::Sled {
        path: dir.to_owned(),
        source,
    }
}

/// The newest stored checkpoint, if any.
fn newest_checkpoint(dir: &Path, trees: &Trees) -> Result<Option<Newest>, StoreError> {
    let Some((_, note)) = trees.checkpoints.last().map_err(sled_err(dir))? else {
        return Ok(None);
    };
    let signed = SignedCheckpoint::parse(&note).map_err(|e| {
        corrupt(
            dir,
            "log",
            format!("the newest checkpoint does not parse: {e}"),
        )
    })?;
    Ok(Some(Newest {
        note: note.to_vec(),
        size: signed.checkpoint().size(),
        root: *signed.checkpoint().root(),
    }))
}

/// What the open from the newest checkpoint's frontier came to.
enum Resumed {
    /// Checked.
    Done(Opened),
    /// The whole log must be read, for this reason.
    Replay(&'static str),
}

/// Resumes from the frontier of `newest`: checks it and the last entry it
/// covers against the signed root, then the entries after it.
fn resume(
    dir: &Path,
    trees: &Trees,
    marker: Option<(u64, Digest)>,
    newest: &Newest,
) -> Result<Resumed, StoreError> {
    let size = newest.size;
    let stored = trees
        .frontiers
        .get(checkpoint_key(size))
        .map_err(sled_err(dir))?;
    let Some(stored) = stored else {
        return Ok(Resumed::Replay(
            "no Merkle frontier is stored with the newest checkpoint (a store written \
             before frontiers were kept); it is stored now",
        ));
    };
    let frontier = decode_frontier(size, &stored).map_err(|why| {
        corrupt(
            dir,
            "frontiers",
            format!(
                "the Merkle frontier stored with the newest checkpoint (size {size}) does \
                 not decode: {why}. {DAMAGED}"
            ),
        )
    })?;
    if frontier.root() != newest.root {
        return Err(corrupt(
            dir,
            "frontiers",
            format!(
                "the Merkle frontier stored with the newest checkpoint (size {size}) has \
                 root {}, not the checkpoint's signed root {}: the database was damaged. \
                 {DAMAGED}",
                frontier.root(),
                newest.root
            ),
        ));
    }
    if marker.is_some_and(|(marked, _)| marked < size) {
        return Ok(Resumed::Replay(
            "the checkpoint recorded beside the database is older than the newest in it",
        ));
    }
    let mut nodes = LogNodesRebuild::start(trees).map_err(sled_err(dir))?;
    if nodes.from() < (size >> STORED_LEVEL) << STORED_LEVEL {
        return Ok(Resumed::Replay(
            "subtree hashes before the newest checkpoint are missing; they are rebuilt",
        ));
    }
    let last_leaf = match size.checked_sub(1) {
        None => None,
        Some(last) => match last_covered(dir, trees, last, newest)? {
            Some(leaf) => Some(leaf),
            None => {
                return Ok(Resumed::Replay(
                    "an entry or subtree hash up to the newest checkpoint is missing",
                ));
            }
        },
    };
    let mut range = frontier;
    let mut marker_root = MarkerRoot::new(marker, &range);
    let last_leaf = check_entries(dir, trees, &mut range, last_leaf, |range, index, leaf| {
        nodes.append(range, index, leaf);
        marker_root.see(range);
        Ok(())
    })?;
    nodes.finish(trees).map_err(sled_err(dir))?;
    marker_root.check(dir, range.size())?;
    let state = LogState {
        size: range.size(),
        last_checkpoint: Some((newest.note.clone(), size, newest.root)),
    };
    Ok(Resumed::Done((range, last_leaf, state)))
}

/// The leaf hash of entry `last`, the last one `newest` covers, checked
/// against its signed root; `None` when the entry or a subtree hash its
/// proof needs is missing (the whole log is then read).
fn last_covered(
    dir: &Path,
    trees: &Trees,
    last: u64,
    newest: &Newest,
) -> Result<Option<Digest>, StoreError> {
    let Some(bytes) = entry_at(&trees.log, last).map_err(|e| e.in_store(dir))? else {
        return Ok(None);
    };
    let leaf = merkle::leaf_hash(&bytes);
    let proof = merkle::inclusion_proof_from(last, newest.size, |level, n| {
        subtree_hash(dir, trees, level, n).map_err(SubtreeError::Store)
    });
    let proof = match proof {
        Ok(proof) => proof,
        Err(SubtreeError::Store(StoreError::Corrupt { .. })) => return Ok(None),
        Err(SubtreeError::Store(e)) => return Err(e),
        Err(SubtreeError::Proof(e)) => return Err(corrupt(dir, "log_nodes", e.to_string())),
    };
    merkle::verify_inclusion(&leaf, last, newest.size, &proof, &newest.root).map_err(|e| {
        corrupt(
            dir,
            "log",
            format!(
                "entry {last} (or a subtree hash stored before it) differs from the newest \
                 checkpoint (size {}): {e}. {DAMAGED}",
                newest.size
            ),
        )
    })?;
    Ok(Some(leaf))
}

/// The root of the log at the size `last-checkpoint.note` names (the
/// marker), caught as the range grows during a replay, for
/// [`check_marker`].
struct MarkerRoot {
    marker: Option<(u64, Digest)>,
    root: Option<Digest>,
}

impl MarkerRoot {
    /// Watching for `marker`, from `start` (the range the replay starts at).
    fn new(marker: Option<(u64, Digest)>, start: &CompactRange) -> MarkerRoot {
        let mut watch = MarkerRoot { marker, root: None };
        watch.see(start);
        watch
    }

    /// Notes the root when `range` has reached the marker's size.
    fn see(&mut self, range: &CompactRange) {
        if let Some((marked, _)) = self.marker
            && marked == range.size()
        {
            self.root = Some(range.root());
        }
    }

    /// [`check_marker`] of what was seen, for a log of `size` entries.
    fn check(self, dir: &Path, size: u64) -> Result<(), StoreError> {
        match self.marker {
            Some(marker) => check_marker(dir, marker, self.root, size),
            None => Ok(()),
        }
    }
}

/// Reads every entry, rebuilding the range and any missing subtree
/// hashes; returns what was found, and the range at the size of the
/// newest checkpoint if the log reaches it.
fn replay_all(
    dir: &Path,
    trees: &Trees,
    marker: Option<(u64, Digest)>,
    newest: Option<&Newest>,
) -> Result<(Opened, Option<CompactRange>), StoreError> {
    let checkpoint = newest.map(|n| n.size);
    let mut marker_root = MarkerRoot::new(marker, &CompactRange::new());
    let mut at_checkpoint = (checkpoint == Some(0)).then(CompactRange::new);
    let mut nodes = LogNodesRebuild::start(trees).map_err(sled_err(dir))?;
    let mut range = CompactRange::new();
    let last_leaf = check_entries(dir, trees, &mut range, None, |range, index, leaf| {
        nodes.append(range, index, leaf);
        if checkpoint == Some(range.size()) {
            at_checkpoint = Some(range.clone());
        }
        marker_root.see(range);
        Ok(())
    })?;
    nodes.finish(trees).map_err(sled_err(dir))?;
    marker_root.check(dir, range.size())?;
    let state = LogState {
        size: range.size(),
        last_checkpoint: newest.map(|n| {
            // A log shorter than its newest checkpoint has no root at its
            // size; the relay refuses to start on it.
            let root = at_checkpoint
                .as_ref()
                .map_or(Digest([0; 32]), CompactRange::root);
            (n.note.clone(), n.size, root)
        }),
    };
    Ok(((range, last_leaf, state), at_checkpoint))
}

/// Stores the frontier of the checkpoint of `size` (found by a full
/// replay), flushed at once.
fn store_frontier(
    dir: &Path,
    trees: &Trees,
    size: u64,
    frontier: &CompactRange,
) -> Result<(), StoreError> {
    trees
        .frontiers
        .insert(checkpoint_key(size), encode_frontier(frontier))
        .map_err(sled_err(dir))?;
    trees.db.flush().map_err(sled_err(dir))?;
    Ok(())
}

/// Reads the entries from `range.size()` on and checks each: there (no
/// gap), decodable, carrying its own index, linked to the one before
/// (`last_leaf`, the leaf hash of the entry before the first read). Hands
/// each leaf hash to `append`, which appends it to the range and may check
/// the range grown. Returns the newest leaf hash.
fn check_entries(
    dir: &Path,
    trees: &Trees,
    range: &mut CompactRange,
    mut last_leaf: Option<Digest>,
    mut append: impl FnMut(&mut CompactRange, u64, Digest) -> Result<(), StoreError>,
) -> Result<Option<Digest>, StoreError> {
    let bad = |reason: String| corrupt(dir, "log", reason);
    for item in entries_from(&trees.log, range.size()) {
        let (index, value) = item.map_err(|e| e.in_store(dir))?;
        let entry = Entry::decode(&value)
            .map_err(|e| bad(format!("entry {index} does not decode: {e}")))?;
        if entry.index != index {
            return Err(bad(format!(
                "entry {index} says it is entry {}",
                entry.index
            )));
        }
        if index > 0 && entry.prev != last_leaf {
            return Err(bad(format!(
                "entry {} was changed: entry {index} records another hash for it",
                index - 1
            )));
        }
        let leaf = merkle::leaf_hash(&value);
        last_leaf = Some(leaf);
        append(range, index, leaf)?;
    }
    Ok(last_leaf)
}

/// What [`verify_log`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Entries read, each checked and linked to the one before.
    pub entries: u64,
    /// Checkpoints whose signed root equals the log's root at their size.
    pub checkpoints: usize,
    /// Stored Merkle frontiers equal to the log's at their size.
    pub frontiers: usize,
    /// Stored subtree hashes equal to the log's.
    pub subtrees: u64,
    /// The log's root now.
    pub root: Digest,
    /// Commits the store's journal held and the database lacked (after a
    /// crash), applied before the check, as the relay applies them at
    /// its start.
    pub recovered: u64,
}

/// Checks the whole audit log of the stopped relay whose data directory is
/// `dir`: every entry (there, decodable, numbered, linked to the one
/// before), every stored checkpoint's root and Merkle frontier and every
/// stored subtree hash against the log's own, and the
/// `last-checkpoint.note` beside the database. The first fault found is
/// the error ([`StoreError::Corrupt`], naming the entry).
pub fn verify_log(dir: &Path) -> Result<LogReport, StoreError> {
    let db_file = dir.join("db");
    if !db_file.is_file() {
        return Err(StoreError::DataDir {
            path: db_file,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no relay database here: give the relay's [storage] data_dir",
            ),
        });
    }
    super::format::check_file(dir)?;
    let db = trees::open_sled(dir).map_err(sled_err(dir))?;
    super::format::check_format(dir, &db)?;
    let trees = Trees::open(db).map_err(sled_err(dir))?;
    // What the relay would recover at its next start, it is checked with.
    let (_, replayed) = super::journal::open(dir, &trees, super::Durability::PowerLoss)?;
    let mut report = check_whole_log(dir, &trees)?;
    report.recovered = replayed.applied;
    Ok(report)
}

/// A stored checkpoint's signed root and the frontier stored with it.
type Signed = (Digest, Option<CompactRange>);

/// [`verify_log`] on the opened `trees`.
fn check_whole_log(dir: &Path, trees: &Trees) -> Result<LogReport, StoreError> {
    let marker = read_marker(dir)?;
    let mut signed: BTreeMap<u64, Signed> = BTreeMap::new();
    for item in trees.checkpoints.iter() {
        let (key, note) = item.map_err(sled_err(dir))?;
        let checkpoint = SignedCheckpoint::parse(&note).map_err(|e| {
            corrupt(
                dir,
                "checkpoints",
                format!(
                    "the checkpoint stored under key {} does not parse: {e}",
                    hex::encode(&key)
                ),
            )
        })?;
        let size = checkpoint.checkpoint().size();
        if key.as_ref() != checkpoint_key(size) {
            return Err(corrupt(
                dir,
                "checkpoints",
                format!(
                    "the checkpoint of size {size} is stored under key {}",
                    hex::encode(&key)
                ),
            ));
        }
        let frontier = trees.frontiers.get(key).map_err(sled_err(dir))?;
        let frontier = frontier
            .map(|bytes| decode_frontier(size, &bytes))
            .transpose()
            .map_err(|why| {
                corrupt(
                    dir,
                    "frontiers",
                    format!("the Merkle frontier of checkpoint {size} does not decode: {why}"),
                )
            })?;
        signed.insert(size, (*checkpoint.checkpoint().root(), frontier));
    }
    let mut report = LogReport {
        entries: 0,
        checkpoints: 0,
        frontiers: 0,
        subtrees: 0,
        root: merkle::EMPTY_ROOT,
        recovered: 0,
    };
    let mut marker_root = MarkerRoot::new(marker, &CompactRange::new());
    let mut range = CompactRange::new();
    check_entries(dir, trees, &mut range, None, |range, index, leaf| {
        let mut completed = Vec::new();
        range.append_with(leaf, |level, i, hash| {
            if level >= STORED_LEVEL {
                completed.push((level, i, hash));
            }
        });
        for (level, i, hash) in completed {
            let stored = trees.log_nodes.get(node_key(level, i));
            match stored.map_err(sled_err(dir))?.as_deref() {
                Some(v) if v == hash.0 => report.subtrees += 1,
                Some(_) => {
                    return Err(corrupt(
                        dir,
                        "log_nodes",
                        format!(
                            "the stored subtree hash ({level}, {i}) differs from the hash of \
                             its entries (up to entry {index})"
                        ),
                    ));
                }
                None => {}
            }
        }
        check_signed(dir, range, &signed, &mut report)?;
        marker_root.see(range);
        Ok(())
    })?;
    if let Some((&size, _)) = signed.range(range.size() + 1..).next() {
        return Err(corrupt(
            dir,
            "log",
            format!(
                "the log holds {} entries but its checkpoint of size {size} covers more: \
                 entry {} is missing",
                range.size(),
                range.size()
            ),
        ));
    }
    marker_root.check(dir, range.size())?;
    report.entries = range.size();
    report.root = range.root();
    Ok(report)
}

/// Checks the checkpoint of the log's size now, if one is stored: its
/// signed root, and the frontier stored with it.
fn check_signed(
    dir: &Path,
    range: &CompactRange,
    signed: &BTreeMap<u64, Signed>,
    report: &mut LogReport,
) -> Result<(), StoreError> {
    let size = range.size();
    let Some((root, frontier)) = signed.get(&size) else {
        return Ok(());
    };
    if range.root() != *root {
        return Err(corrupt(
            dir,
            "log",
            format!(
                "entry {} differs from what checkpoint {size} signed (root {root} signed, {} \
                 found): the entries up to it link to one another, so it was changed, or \
                 rewritten with the entries before it",
                size - 1,
                range.root()
            ),
        ));
    }
    report.checkpoints += 1;
    if let Some(frontier) = frontier {
        if frontier != range {
            return Err(corrupt(
                dir,
                "frontiers",
                format!(
                    "the Merkle frontier stored with checkpoint {size} differs from the log's \
                     at that size"
                ),
            ));
        }
        report.frontiers += 1;
    }
    Ok(())
}
