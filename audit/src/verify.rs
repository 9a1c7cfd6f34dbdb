//! Verifying one bundle: [`load_verified`] and the [`VerifiedBundle`] it
//! returns, what `kurir audit verify` checks and every other auditor's
//! command starts from.
//!
//! In order, the first problem being the error: the rosters (submodule
//! `rosters`), the log key, the entries and checkpoints
//! ([`kurir_proto::audit::verify_log`]), every receipt and its inclusion
//! proof (`receipts`), every envelope (`envelopes`), the peers'
//! cosignatures on each checkpoint, and, across a log-key rotation, that
//! no retired key vouched for what came after its end (`log_keys`).

mod envelopes;
mod log_keys;
mod receipts;
mod rosters;
mod witnessed;

pub use rosters::{Anchored, RosterAnchor};
pub use witnessed::{MAX_CLOCK_SKEW_MS, WitnessSource, Witnessed, witnessed_in};

use std::path::{Path, PathBuf};

use kurir_certs::Roster;
use kurir_proto::audit::{Bundle, Entry, LogReport, ReceiptKind, cosigners_with, log_origin};
use kurir_proto::batch::SignatureCheck;
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::{AuthorityId, Digest, Receipt, Timestamp};

use crate::bundle::{self, BUNDLE_FILE};
use crate::error::{Problem, VerifyError};

/// A receipt of a bundle, its signature verified against the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    /// Issued or held.
    pub kind: ReceiptKind,
    /// What it attests.
    pub receipt: Receipt,
    /// [`kurir_proto::audit::receipt_digest`] of its bytes, as log entries
    /// name it.
    pub digest: Digest,
    /// For a held acceptance with a verified inclusion proof: the size and
    /// root of the receiver's checkpoint it proves the entry in.
    pub included_in: Option<(u64, Digest)>,
}

/// One authority's log: what [`crate::reconcile_logs`] and
/// [`crate::Filter`] work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Whose log it is.
    pub authority: AuthorityId,
    /// Every entry, in order (`entries[i].index == i`).
    pub entries: Vec<Entry>,
    /// The receipts kept with it.
    pub receipts: Vec<KeptReceipt>,
}

/// A bundle that passed every check of `kurir audit verify`.
#[derive(Debug)]
pub struct VerifiedBundle {
    /// The `bundle.cbor` it was read from.
    pub path: PathBuf,
    /// The roster in the bundle, its signatures verified.
    pub roster: Roster,
    /// What the log check established.
    pub report: LogReport,
    /// The decoded log and receipts.
    pub log: Log,
    /// Per checkpoint (oldest first): its size and the peers whose valid
    /// cosignature it carries, with the time each cosigned.
    pub cosigned: Vec<(u64, Vec<(AuthorityId, u64)>)>,
    /// Signed envelopes verified and matched to their entries.
    pub envelopes: usize,
    /// When the bundle says it was exported.
    pub exported_at: Timestamp,
    /// What the rosters were anchored to.
    pub anchored: Anchored,
    /// Checkpoints the auditor gave, each verified with the authority's
    /// log key and held against the log.
    pub witnessed: Vec<Witnessed>,
}

/// What the auditor holds outside the bundle ([`load_verified_with`]).
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// The roster the auditor trusts; `None`: the bundle's rosters are
    /// checked only against each other.
    pub roster: Option<RosterAnchor>,
    /// Signed checkpoint notes of the bundle's authority that the auditor
    /// holds (e.g. from an earlier export, or a peer's), with their
    /// cosignatures.
    pub checkpoints: Vec<Vec<u8>>,
}

impl VerifiedBundle {
    /// Holds the log to checkpoints witnessed outside the bundle (a peer's
    /// log's `peer_checkpoint` entries, [`witnessed_in`]): each one's root
    /// must be the log's at its size, and one cosigned before the export
    /// must be covered by a checkpoint of the bundle.
    pub fn check_witnessed(&self, views: &[Witnessed]) -> Result<(), VerifyError> {
        let newest = self.report.newest.map_or(0, |(size, _)| size);
        witnessed::check_witnessed(&self.log.entries, newest, self.exported_at, views).map_err(
            |problem| VerifyError::NotVerified {
                path: self.path.clone(),
                problem: Box::new(problem),
            },
        )
    }

    /// The peers whose valid cosignature the newest checkpoint carries.
    pub fn newest_cosigners(&self) -> &[(AuthorityId, u64)] {
        self.cosigned.last().map_or(&[], |(_, by)| by.as_slice())
    }

    /// Requires at least `min` peer cosignatures on the newest checkpoint
    /// (`kurir audit verify --min-cosigners`).
    pub fn require_cosigners(&self, min: usize) -> Result<(), VerifyError> {
        let found = self.newest_cosigners().len();
        if found < min {
            return Err(VerifyError::NotVerified {
                path: self.path.clone(),
                problem: Box::new(Problem::TooFewCosigners {
                    found,
                    required: min,
                }),
            });
        }
        Ok(())
    }
}

/// Reads `dir/bundle.cbor` and checks it as `kurir audit verify` does: the
/// roster's signatures, every entry, every checkpoint, every receipt against
/// the log. The first problem is the error.
///
/// The signatures of checkpoints, cosignatures, receipts, inclusion proofs
/// and envelopes are verified in batches ([`kurir_proto::batch::batched`]):
/// the checks run once with every signature taken as valid and collected,
/// and again, with the failing ones refused, only if a batch fails, so the
/// first problem reported is the one a check of each signature in turn
/// finds. The rosters' signatures (a few per roster) are verified one at a
/// time, before.
pub fn load_verified(dir: &Path) -> Result<VerifiedBundle, VerifyError> {
    load_verified_with(dir, &Anchors::default())
}

/// [`load_verified`], and then the bundle held to the auditor's own
/// anchors: its rosters must reach the roster given
/// ([`Anchors::roster`]), and the checkpoints given must agree with its
/// log and be covered by its checkpoints (see [`VerifiedBundle::check_witnessed`]).
pub fn load_verified_with(dir: &Path, anchors: &Anchors) -> Result<VerifiedBundle, VerifyError> {
    let path = dir.join(BUNDLE_FILE);
    let bundle = bundle::read(dir)?;
    let bad = |problem: Problem| VerifyError::NotVerified {
        path: path.clone(),
        problem: Box::new(problem),
    };
    let (roster, rosters) = rosters::verify(&bundle).map_err(|e| bad(e.into()))?;
    let anchored = match &anchors.roster {
        Some(given) => rosters::anchor(&bundle, &rosters, given).map_err(|e| bad(e.into()))?,
        None => Anchored::Unanchored,
    };
    let checked =
        kurir_proto::batch::batched(|sigs| check_bundle(&bundle, &rosters, sigs)).map_err(bad)?;
    witnessed::check_times(&checked.entries, &checked.cosigned, bundle.exported_at).map_err(bad)?;
    let witnessed =
        given_checkpoints(&bundle.authority, &anchors.checkpoints, &rosters).map_err(bad)?;
    let v = VerifiedBundle {
        cosigned: checked.cosigned,
        envelopes: checked.envelopes,
        exported_at: bundle.exported_at,
        anchored,
        path,
        roster,
        report: checked.report,
        log: Log {
            authority: bundle.authority,
            entries: checked.entries,
            receipts: checked.receipts,
        },
        witnessed,
    };
    v.check_witnessed(&v.witnessed)?;
    Ok(v)
}

/// The checkpoints the auditor gave, each verified with a log key
/// `authority` has in the rosters and dated by its earliest valid peer
/// cosignature.
fn given_checkpoints(
    authority: &AuthorityId,
    notes: &[Vec<u8>],
    rosters: &[Roster],
) -> Result<Vec<Witnessed>, Problem> {
    let origin = log_origin(authority);
    let peers = peer_log_keys(authority, rosters);
    let mut out = Vec::with_capacity(notes.len());
    for (i, note) in notes.iter().enumerate() {
        let given = |error| Problem::GivenCheckpoint {
            number: i + 1,
            authority: authority.clone(),
            error: Box::new(error),
        };
        let signed = SignedCheckpoint::parse(note).map_err(given)?;
        let mut failed = None;
        for key in log_keys(rosters, authority) {
            let v = NoteVerifier::ed25519(&origin, key).map_err(given)?;
            match signed.verify(&v) {
                Ok(()) => {
                    failed = None;
                    break;
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            return Err(given(e));
        }
        let cosigned_at = kurir_proto::audit::cosigners(note, &peers)
            .map_err(|(_, e)| given(e))?
            .iter()
            .map(|(_, t)| Timestamp(t.saturating_mul(1000)))
            .min();
        out.push(Witnessed {
            size: signed.checkpoint().size(),
            root: *signed.checkpoint().root(),
            cosigned_at,
            source: WitnessSource::Given { number: i + 1 },
        });
    }
    Ok(out)
}

/// Per checkpoint, its size and its peers' valid cosignatures (who, when).
type Cosigned = Vec<(u64, Vec<(AuthorityId, u64)>)>;

/// What [`check_bundle`] established.
struct Checked {
    report: LogReport,
    entries: Vec<Entry>,
    receipts: Vec<KeptReceipt>,
    cosigned: Cosigned,
    envelopes: usize,
}

/// Every check of `kurir audit verify` after the rosters', in order, with
/// the signatures checked by `sigs`; the first problem is the error. Pure:
/// [`kurir_proto::batch::batched`] may run it twice.
fn check_bundle(
    bundle: &Bundle,
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> Result<Checked, Problem> {
    let authority = &bundle.authority;
    let origin = log_origin(authority);
    let verifiers = log_keys(rosters, authority)
        .into_iter()
        .map(|key| NoteVerifier::ed25519(&origin, key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Problem::LogKey {
            authority: authority.clone(),
            error: Box::new(error),
        })?;
    if verifiers.is_empty() {
        return Err(Problem::NoLogKey {
            authority: authority.clone(),
        });
    }
    let entries_raw: Vec<Vec<u8>> = bundle.entries.iter().map(|b| b.0.clone()).collect();
    let checkpoints: Vec<Vec<u8>> = bundle.checkpoints.iter().map(|b| b.0.clone()).collect();
    let report = kurir_proto::audit::verify_log_with(&entries_raw, &checkpoints, &verifiers, sigs)?;
    // verify_log decoded every entry already.
    let entries: Vec<Entry> = entries_raw
        .iter()
        .filter_map(|b| Entry::decode(b).ok())
        .collect();
    let receipts = receipts::check(bundle, &entries, rosters, sigs)?;
    let envelopes = envelopes::check(bundle, &entries, &AnyRoster(rosters), sigs)?;
    let cosigned = cosignatures(authority, &checkpoints, rosters, sigs)?;
    // Across a log-key rotation: each key only for what came before its end.
    let ends = log_keys::key_ends(rosters);
    let times: Vec<Timestamp> = entries.iter().map(|e| e.at).collect();
    let keys = log_keys(rosters, authority);
    log_keys::check_checkpoints(authority, &checkpoints, &times, &keys, &ends)?;
    log_keys::check_cosignatures(&checkpoints, &ends)?;
    Ok(Checked {
        report,
        entries,
        receipts,
        cosigned,
        envelopes,
    })
}

/// Per checkpoint, its size and the peers whose valid cosignature it
/// carries: a cosignature in a peer's name that does not verify is forged.
/// Every log key each peer had over the period counts (cosignatures by a
/// key since rotated still verify).
fn cosignatures(
    authority: &AuthorityId,
    checkpoints: &[Vec<u8>],
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> Result<Cosigned, Problem> {
    let peers = peer_log_keys(authority, rosters);
    let mut cosigned = Vec::with_capacity(checkpoints.len());
    for (i, note) in checkpoints.iter().enumerate() {
        let size = SignedCheckpoint::parse(note)
            .map(|c| c.checkpoint().size())
            .unwrap_or_default();
        let by = cosigners_with(note, &peers, sigs).map_err(|(peer, error)| {
            Problem::ForgedCosignature {
                number: i + 1,
                size,
                peer,
                error: Box::new(error),
            }
        })?;
        cosigned.push((size, by));
    }
    Ok(cosigned)
}

/// Every log key each member other than `authority` had in the rosters.
fn peer_log_keys(
    authority: &AuthorityId,
    rosters: &[Roster],
) -> Vec<(AuthorityId, kurir_proto::ed25519_dalek::VerifyingKey)> {
    let mut peers: Vec<_> = Vec::new();
    for r in rosters {
        for m in r.members().iter().filter(|m| &m.id != authority) {
            // Its current key and those it rotated from.
            for key in m.all_log_keys() {
                if !peers.contains(&(m.id.clone(), key)) {
                    peers.push((m.id.clone(), key));
                }
            }
        }
    }
    peers
}

/// Message keys from every roster of a bundle, newest roster first: a key
/// removed since still verifies what it signed while it was listed.
struct AnyRoster<'a>(&'a [Roster]);

impl kurir_proto::KeyLookup for AnyRoster<'_> {
    fn lookup(&self, kid: &kurir_proto::KeyId) -> Option<kurir_proto::PublicKey> {
        self.0.iter().find_map(|r| r.lookup(kid))
    }
}

/// The log keys `id` had over the rosters given, with those each roster
/// lists as rotated from (newest first, once each).
fn log_keys(rosters: &[Roster], id: &AuthorityId) -> Vec<kurir_proto::ed25519_dalek::VerifyingKey> {
    let mut keys = Vec::new();
    for key in rosters.iter().flat_map(|r| r.all_log_keys(id)) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}
