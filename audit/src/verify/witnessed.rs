//! What the auditor knows outside the bundle about its log, and the times a
//! bundle can be held to: checkpoints cosigned by peers ([`Witnessed`]:
//! given with `--checkpoint`, or recorded in a peer's log as
//! `peer_checkpoint` entries), and the bundle's `exported_at`.
//!
//! The rules (`docs/AUDIT.md` §6, "Anchors"):
//!
//! - no cosignature is dated after the export, and no checkpoint covers an
//!   entry dated after it ([`check_times`]);
//! - a witnessed checkpoint of size N ≤ the log's length has the log's root
//!   at N (else the log was rewritten after it was cosigned);
//! - a witnessed checkpoint cosigned before the export (beyond
//!   [`MAX_CLOCK_SKEW_MS`]) is covered by a checkpoint of the bundle (else
//!   the later checkpoints were dropped, and the log cut if it is shorter).
//!
//! Clocks of different relays differ: times from two clocks are compared
//! with [`MAX_CLOCK_SKEW_MS`] of slack, the relays' default
//! `max_clock_skew_secs`.

use std::fmt;

use kurir_proto::audit::{Entry, Record};
use kurir_proto::merkle::CompactRange;
use kurir_proto::{AuthorityId, Digest, Timestamp};

use crate::error::Problem;
use crate::verify::Log;

/// Slack between two clocks when times are compared: 5 minutes.
pub const MAX_CLOCK_SKEW_MS: u64 = 300_000;

/// A checkpoint of the bundle's authority known from outside the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// Its tree size.
    pub size: u64,
    /// Its root.
    pub root: Digest,
    /// The earliest time a peer is known to have cosigned it (its earliest
    /// valid cosignature, or the peer's log entry recording it); `None` if
    /// it carries no cosignature.
    pub cosigned_at: Option<Timestamp>,
    /// Where it comes from.
    pub source: WitnessSource,
}

/// Where a [`Witnessed`] checkpoint comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessSource {
    /// The `number`th checkpoint given with `--checkpoint` (from 1).
    Given {
        /// Its position among those given.
        number: usize,
    },
    /// A `peer_checkpoint` entry of a peer's log: the peer cosigned it.
    PeerLog {
        /// The peer whose log records it.
        peer: AuthorityId,
        /// The entry.
        entry: u64,
    },
}

impl fmt::Display for WitnessSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitnessSource::Given { number } => {
                write!(f, "the checkpoint given with --checkpoint ({number})")
            }
            WitnessSource::PeerLog { peer, entry } => write!(
                f,
                "{peer}'s log (entry {entry}, its cosignature of this log's checkpoint)"
            ),
        }
    }
}

/// The checkpoints of `of` that the log `witness` records cosigning (its
/// `peer_checkpoint` entries), dated by the entries.
pub fn witnessed_in(witness: &Log, of: &AuthorityId) -> Vec<Witnessed> {
    witness
        .entries
        .iter()
        .filter_map(|e| match e.record() {
            Ok(Record::PeerCheckpoint { peer, size, root }) if &peer == of => Some(Witnessed {
                size,
                root,
                cosigned_at: Some(e.at),
                source: WitnessSource::PeerLog {
                    peer: witness.authority.clone(),
                    entry: e.index,
                },
            }),
            _ => None,
        })
        .collect()
}

/// No cosignature dated after the export, no checkpoint covering an entry
/// dated after it. `cosigned` is per checkpoint (oldest first) its size and
/// its cosigners with their times (seconds).
pub(crate) fn check_times(
    entries: &[Entry],
    cosigned: &[(u64, Vec<(AuthorityId, u64)>)],
    exported_at: Timestamp,
) -> Result<(), Problem> {
    let limit = exported_at.0.saturating_add(MAX_CLOCK_SKEW_MS);
    for (i, (size, by)) in cosigned.iter().enumerate() {
        let last = size
            .checked_sub(1)
            .and_then(|n| entries.get(usize::try_from(n).ok()?));
        if let Some(e) = last
            && e.at.0 > limit
        {
            return Err(Problem::CheckpointAfterExport {
                number: i + 1,
                size: *size,
                entry: e.index,
                at: e.at,
                exported_at,
            });
        }
        if let Some((peer, t)) = by.iter().find(|(_, t)| t.saturating_mul(1000) > limit) {
            return Err(Problem::CosignedAfterExport {
                number: i + 1,
                size: *size,
                peer: peer.clone(),
                at: Timestamp(t.saturating_mul(1000)),
                exported_at,
            });
        }
    }
    Ok(())
}

/// Holds the log (its entries, the size its newest checkpoint covers, its
/// export time) to the checkpoints witnessed outside it; the first
/// contradiction is the error.
pub(crate) fn check_witnessed(
    entries: &[Entry],
    newest: u64,
    exported_at: Timestamp,
    views: &[Witnessed],
) -> Result<(), Problem> {
    // Roots at every witnessed size the log reaches, in one pass.
    let mut by_size: Vec<&Witnessed> = views.iter().collect();
    by_size.sort_by_key(|w| w.size);
    let mut range = CompactRange::new();
    let mut leaves = entries.iter();
    for w in &by_size {
        while range.size() < w.size {
            match leaves.next() {
                Some(e) => {
                    range.append(e.leaf_hash());
                }
                None => break,
            }
        }
        if range.size() == w.size && range.root() != w.root {
            return Err(Problem::WitnessedRootDiffers {
                by: w.source.clone(),
                size: w.size,
                witnessed: w.root,
                log: range.root(),
            });
        }
    }
    // Anything cosigned surely before the export must be covered.
    for w in views {
        if let Some(at) = w.cosigned_at
            && at.0.saturating_add(MAX_CLOCK_SKEW_MS) < exported_at.0
            && w.size > newest
        {
            return Err(Problem::WitnessedNotCovered {
                by: w.source.clone(),
                size: w.size,
                cosigned_at: at,
                exported_at,
                newest,
                entries: entries.len() as u64,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
