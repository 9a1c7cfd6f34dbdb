//! The bundle's rosters: the history of every roster the relay accepted,
//! and the current one.

use std::collections::{BTreeMap, BTreeSet};

use kurir_certs::{Roster, SignedRoster};
use kurir_proto::audit::{Bundle, Entry, Record};
use kurir_proto::{Digest, Timestamp};

use crate::error::RosterProblem;

/// The roster the auditor trusts, obtained out of band (`kurir audit
/// verify --roster FILE`, `--roster-sha256 HEX`, or the profile's roster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterAnchor {
    /// A roster file's bytes.
    File(Vec<u8>),
    /// A roster file's SHA-256 fingerprint.
    Sha256(Digest),
}

impl RosterAnchor {
    /// The fingerprint of the roster it names.
    pub fn fingerprint(&self) -> Digest {
        match self {
            RosterAnchor::File(bytes) => fingerprint(bytes),
            RosterAnchor::Sha256(d) => *d,
        }
    }
}

/// What the bundle's rosters were anchored to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchored {
    /// No anchor was given: the rosters were checked only against each
    /// other, so a made-up federation would verify too.
    Unanchored,
    /// The bundle's history holds the given roster.
    Holds {
        /// Its version.
        version: u64,
        /// Its fingerprint.
        fingerprint: Digest,
    },
    /// A roster of the bundle's history follows from the given one (the
    /// given roster's quorum signed it), so the history is anchored from
    /// there on.
    FollowsFrom {
        /// The given roster's version.
        given_version: u64,
        /// The given roster's fingerprint.
        given: Digest,
        /// The first roster of the bundle that follows from it.
        version: u64,
    },
}

/// A roster's fingerprint: SHA-256 of its signed file bytes.
fn fingerprint(bytes: &[u8]) -> Digest {
    Digest::of(&[bytes])
}

/// The rosters the log records accepting, by fingerprint: the entry and
/// when.
fn accepted(bundle: &Bundle) -> BTreeMap<Digest, (u64, Timestamp)> {
    let mut accepted = BTreeMap::new();
    for e in bundle
        .entries
        .iter()
        .filter_map(|b| Entry::decode(&b.0).ok())
    {
        if let Ok(Record::Roster { fingerprint, .. }) = e.record() {
            accepted.entry(fingerprint).or_insert((e.index, e.at));
        }
    }
    accepted
}

/// When the log records accepting the roster `bytes` (the export's time if
/// it does not): the time it is verified as of.
fn accepted_at(
    bundle: &Bundle,
    accepted: &BTreeMap<Digest, (u64, Timestamp)>,
    bytes: &[u8],
) -> Timestamp {
    accepted
        .get(&fingerprint(bytes))
        .map_or(bundle.exported_at, |(_, t)| *t)
}

/// Anchors the bundle's verified rosters (`history`, newest first, as
/// [`verify`] returns them) to the roster the auditor gave: the history
/// must hold it, or one of its rosters must follow from it (signed by its
/// quorum, a higher version), verified as of when the log records
/// accepting that roster. A roster newer than every roster of the bundle
/// cannot be anchored (a made-up roster could name its signers with any
/// threshold), so it is refused with what to give instead.
pub(super) fn anchor(
    bundle: &Bundle,
    history: &[Roster],
    given: &RosterAnchor,
) -> Result<Anchored, RosterProblem> {
    let given_fp = given.fingerprint();
    if let Some(r) = history
        .iter()
        .find(|r| fingerprint(r.to_bytes()) == given_fp)
    {
        return Ok(Anchored::Holds {
            version: r.version(),
            fingerprint: given_fp,
        });
    }
    let mut given_version = None;
    if let RosterAnchor::File(bytes) = given {
        let signed = SignedRoster::decode(bytes).map_err(|p| {
            RosterProblem::Given(kurir_certs::RosterError::Invalid {
                path: None,
                problems: p,
            })
        })?;
        given_version = signed.body().ok().map(|b| b.version);
        let accepted = accepted(bundle);
        // Oldest first: the earliest roster that follows from the given one.
        for r in history.iter().rev() {
            let at = accepted_at(bundle, &accepted, r.to_bytes());
            let Ok(trusted) = Roster::verify(bytes, at) else {
                continue;
            };
            if Roster::verify_against(r.to_bytes(), Some(&trusted), at).is_ok() {
                return Ok(Anchored::FollowsFrom {
                    given_version: trusted.version(),
                    given: given_fp,
                    version: r.version(),
                });
            }
        }
    }
    Err(RosterProblem::NotAnchored {
        given: given_fp,
        given_version,
        versions: history.iter().rev().map(Roster::version).collect(),
    })
}

/// Verifies the bundle's rosters. Each is verified as of when the log
/// records accepting it (so that certificates since expired do not fail an
/// old export), each later version against the one before it (its quorum
/// must have signed it), the newest must be the bundle's `roster`, and
/// every roster the log records accepting must be in the bundle.
///
/// Returns the current roster, and every verified roster (newest first, the
/// current one included).
pub(super) fn verify(bundle: &Bundle) -> Result<(Roster, Vec<Roster>), RosterProblem> {
    let accepted = accepted(bundle);
    let at = |bytes: &[u8]| accepted_at(bundle, &accepted, bytes);
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
