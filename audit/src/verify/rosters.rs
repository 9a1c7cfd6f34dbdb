//! The bundle's rosters: the history of every roster the relay accepted,
//! and the current one.

use std::collections::{BTreeMap, BTreeSet};

use kurir_certs::Roster;
use kurir_proto::audit::{Bundle, Entry, Record};
use kurir_proto::{Digest, Timestamp};

use crate::error::RosterProblem;

/// Verifies the bundle's rosters. Each is verified as of when the log
/// records accepting it (so that certificates since expired do not fail an
/// old export), each later version against the one before it (its quorum
/// must have signed it), the newest must be the bundle's `roster`, and
/// every roster the log records accepting must be in the bundle.
///
/// Returns the current roster, and every verified roster (newest first, the
/// current one included).
pub(super) fn verify(bundle: &Bundle) -> Result<(Roster, Vec<Roster>), RosterProblem> {
    // The rosters the log records accepting, by fingerprint: the entry
    // and when.
    let mut accepted: BTreeMap<Digest, (u64, Timestamp)> = BTreeMap::new();
    for e in bundle
        .entries
        .iter()
        .filter_map(|b| Entry::decode(&b.0).ok())
    {
        if let Ok(Record::Roster { fingerprint, .. }) = e.record() {
            accepted.entry(fingerprint).or_insert((e.index, e.at));
        }
    }
    // A roster's fingerprint: SHA-256 of its signed file bytes.
    let fingerprint = |bytes: &[u8]| Digest::of(&[bytes]);
    let at = |bytes: &[u8]| {
        accepted
            .get(&fingerprint(bytes))
            .map_or(bundle.exported_at, |(_, t)| *t)
    };
    let mut held = BTreeSet::new();
    let mut history = Vec::new();
    let mut previous: Option<Roster> = None;
    for (i, b) in bundle.rosters.iter().enumerate() {
        let r = Roster::verify_against(&b.0, previous.as_ref(), at(&b.0)).map_err(|error| {
            RosterProblem::History {
                number: i + 1,
                of: bundle.rosters.len(),
                error,
            }
        })?;
        held.insert(fingerprint(r.to_bytes()));
        if let Some(p) = previous.replace(r) {
            history.push(p);
        }
    }
    let current =
        Roster::verify(&bundle.roster, at(&bundle.roster)).map_err(RosterProblem::Current)?;
    held.insert(fingerprint(current.to_bytes()));
    if let Some(last) = &previous
        && last.fingerprint() != current.fingerprint()
    {
        return Err(RosterProblem::NewestIsNotCurrent {
            history: last.version(),
            bundle: current.version(),
        });
    }
    if let Some((fp, (index, _))) = accepted.iter().find(|(fp, _)| !held.contains(*fp)) {
        return Err(RosterProblem::NotHeld {
            entry: *index,
            fingerprint: *fp,
        });
    }
    // `previous`, the newest of the history, is the current roster.
    history.reverse();
    let mut all = vec![current.clone()];
    all.extend(history);
    Ok((current, all))
}
