//! Why a bundle is not verified: [`VerifyError`], and the [`Problem`] it
//! names, one variant per check that can fail, with where it failed (entry
//! index, checkpoint, receipt or envelope number, roster).
//!
//! The messages are the ones `kurir audit verify` prints; numbers of
//! receipts, envelopes, rosters and checkpoints count from 1, entry indices
//! from 0, as in the bundle.

use std::fmt;
use std::path::PathBuf;

use kurir_certs::RosterError;
use kurir_proto::audit::{Event, InclusionError, LogError, ReceiptKind};
use kurir_proto::cbor::CborError;
use kurir_proto::checkpoint::CheckpointError;
use kurir_proto::{AuthorityId, Digest, MessageId, OpenError, Timestamp};

use crate::verify::WitnessSource;

/// Why [`crate::load_verified`] refused a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// `bundle.cbor` could not be read (the `kurir` CLI: exit 2).
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bundle was read and a check failed (the `kurir` CLI: exit 4).
    #[error("{}: NOT VERIFIED: {problem}", path.display())]
    NotVerified {
        /// The `bundle.cbor` checked.
        path: PathBuf,
        /// The first problem found.
        problem: Box<Problem>,
    },
}

impl VerifyError {
    /// The problem found, unless the bundle could not be read.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            VerifyError::Unreadable { .. } => None,
            VerifyError::NotVerified { problem, .. } => Some(problem.as_ref()),
        }
    }
}

/// The first check a bundle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// `bundle.cbor` is not a bundle (CBOR, schema or format).
    #[error("not an audit bundle: {0}")]
    NotABundle(CborError),
    /// A roster, or the history of rosters, does not verify.
    #[error(transparent)]
    Roster(#[from] RosterProblem),
    /// The log key of the exporting authority is not usable.
    #[error("log key of {authority}: {error}")]
    LogKey {
        /// The exporting authority.
        authority: AuthorityId,
        /// Why.
        error: Box<CheckpointError>,
    },
    /// No roster lists a log key for the exporting authority.
    #[error("the roster lists no log key for {authority}")]
    NoLogKey {
        /// The exporting authority.
        authority: AuthorityId,
    },
    /// The entries and checkpoints do not verify
    /// ([`kurir_proto::audit::verify_log`]).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A receipt does not verify or does not match the log.
    #[error(transparent)]
    Receipt(#[from] ReceiptProblem),
    /// An envelope does not verify or does not match the log.
    #[error(transparent)]
    Envelope(#[from] EnvelopeProblem),
    /// A checkpoint, or a cosignature, verifies only with a log key that a
    /// rotation had retired before it was made (`log_keys_before` in a
    /// roster of the bundle).
    #[error(
        "{what} is signed with {signer}'s log key {kid}, which stopped signing at {until}, but it \
         was made at {at}: a log key retired by a rotation cannot vouch for what came later"
    )]
    LogKeyEnded {
        /// What was signed: a checkpoint, or a peer's cosignature on one.
        what: String,
        /// Whose key.
        signer: AuthorityId,
        /// The key's id.
        kid: kurir_proto::KeyId,
        /// When the key stopped signing.
        until: Timestamp,
        /// When the checkpoint (its newest entry) or cosignature was made.
        at: Timestamp,
    },
    /// A checkpoint carries a cosignature in a peer's name that does not
    /// verify with that peer's log key.
    #[error(
        "checkpoint {number} (size {size}): the cosignature in the name of {peer} does not \
         verify with {peer}'s log key ({error}): it is forged"
    )]
    ForgedCosignature {
        /// The checkpoint's position among the bundle's (from 1).
        number: usize,
        /// Its tree size.
        size: u64,
        /// The peer named.
        peer: AuthorityId,
        /// Why it does not verify.
        error: Box<CheckpointError>,
    },
    /// A checkpoint carries a peer's cosignature dated after the export:
    /// the bundle was changed after it was exported.
    #[error(
        "checkpoint {number} (size {size}) carries {peer}'s cosignature of {at}, after the \
         bundle's export at {exported_at}: a cosignature cannot postdate the export, the bundle \
         was put together afterwards"
    )]
    CosignedAfterExport {
        /// The checkpoint's position among the bundle's (from 1).
        number: usize,
        /// Its tree size.
        size: u64,
        /// The cosigner.
        peer: AuthorityId,
        /// When it says it cosigned.
        at: Timestamp,
        /// The bundle's `exported_at`.
        exported_at: Timestamp,
    },
    /// A checkpoint covers an entry dated after the export, so it was
    /// signed after the export.
    #[error(
        "checkpoint {number} (size {size}) covers entry {entry} dated {at}, after the bundle's \
         export at {exported_at}: the checkpoint was signed after the export"
    )]
    CheckpointAfterExport {
        /// The checkpoint's position among the bundle's (from 1).
        number: usize,
        /// Its tree size.
        size: u64,
        /// The last entry it covers.
        entry: u64,
        /// That entry's time.
        at: Timestamp,
        /// The bundle's `exported_at`.
        exported_at: Timestamp,
    },
    /// A checkpoint the auditor gave (`--checkpoint`) is not one of this
    /// authority's signed checkpoints.
    #[error(
        "the checkpoint given ({number}) is not a signed checkpoint of {authority}: {error} \
         (give a checkpoint note of the bundle's authority, e.g. from checkpoints/ of an \
         earlier export)"
    )]
    GivenCheckpoint {
        /// Its position among those given (from 1).
        number: usize,
        /// The bundle's authority.
        authority: AuthorityId,
        /// Why.
        error: Box<CheckpointError>,
    },
    /// A checkpoint witnessed outside the bundle has another root than the
    /// bundle's log at its size: the log was rewritten.
    #[error(
        "{by} has root {witnessed} at size {size}, but the bundle's log has root {log} \
         there: the log was rewritten after it was cosigned"
    )]
    WitnessedRootDiffers {
        /// Where the witnessed checkpoint comes from.
        by: WitnessSource,
        /// Its size.
        size: u64,
        /// The root witnessed.
        witnessed: Digest,
        /// The bundle's root at that size.
        log: Digest,
    },
    /// A checkpoint cosigned before the export is larger than every
    /// checkpoint in the bundle: checkpoints were dropped (and, if the log
    /// is shorter, entries too).
    #[error(
        "{by} covers size {size}, cosigned at {cosigned_at}, before the export at \
         {exported_at}; but the bundle's newest checkpoint covers {newest} of its {entries} \
         entries: {}",
        if size > entries {
            "the log was cut and its later checkpoints dropped"
        } else {
            "the later checkpoints were dropped (the entries they covered may have been rewritten)"
        }
    )]
    WitnessedNotCovered {
        /// Where the witnessed checkpoint comes from.
        by: WitnessSource,
        /// Its size.
        size: u64,
        /// When it was cosigned (the earliest time known).
        cosigned_at: Timestamp,
        /// The bundle's `exported_at`.
        exported_at: Timestamp,
        /// The size the bundle's newest checkpoint covers (0: none).
        newest: u64,
        /// Entries in the bundle.
        entries: u64,
    },
    /// Fewer peers cosigned the newest checkpoint than required
    /// ([`crate::VerifiedBundle::require_cosigners`]).
    #[error("the newest checkpoint carries {found} peer cosignature(s), {required} required")]
    TooFewCosigners {
        /// Valid peer cosignatures on the newest checkpoint.
        found: usize,
        /// How many were required.
        required: usize,
    },
}

/// Why the bundle's rosters do not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterProblem {
    /// A roster of the history is not signed by the quorum of the one
    /// before it (or is not valid).
    #[error("roster {number} of {of} in the history does not follow from the one before: {error}")]
    History {
        /// Its position in the history (from 1, oldest first).
        number: usize,
        /// How many rosters the history holds.
        of: usize,
        /// Why.
        error: RosterError,
    },
    /// The bundle's current roster is not valid.
    #[error("the roster in the bundle is not valid: {0}")]
    Current(RosterError),
    /// The newest roster of the history is not the bundle's roster.
    #[error(
        "the newest roster of the history (version {history}) is not the bundle's roster \
         (version {bundle})"
    )]
    NewestIsNotCurrent {
        /// The newest version of the history.
        history: u64,
        /// The version of the bundle's roster.
        bundle: u64,
    },
    /// The roster the auditor gave is not a valid roster.
    #[error("the roster you gave is not valid: {0}")]
    Given(RosterError),
    /// The bundle's roster history neither holds the roster the auditor
    /// gave nor follows from it.
    #[error(
        "the bundle's rosters (version{} {}) neither include the roster you gave (sha256 \
         {given}{}) nor follow from it (signed by its quorum): the bundle is of another \
         federation, or its roster history was made up. If your roster is newer than the \
         export, give the roster the federation had when it was exported (--roster FILE)",
        if versions.len() == 1 { "" } else { "s" },
        versions.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        given_version.map(|v| format!(", version {v}")).unwrap_or_default()
    )]
    NotAnchored {
        /// The given roster's fingerprint.
        given: Digest,
        /// Its version, when the file was given.
        given_version: Option<u64>,
        /// The versions of the bundle's rosters, oldest first.
        versions: Vec<u64>,
    },
    /// The log records accepting a roster the bundle does not hold.
    #[error(
        "entry {entry} records accepting the roster with sha256 {fingerprint}, which the bundle \
         does not hold"
    )]
    NotHeld {
        /// The `roster` entry.
        entry: u64,
        /// The fingerprint it records.
        fingerprint: Digest,
    },
}

/// Why one of the bundle's receipts does not verify or does not match the
/// log. `number` is its position among the bundle's receipts (from 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptProblem {
    /// Its signature, or the receipt itself, does not verify.
    #[error("receipt {number} ({kind}): {error}")]
    Invalid {
        /// Which receipt.
        number: usize,
        /// Issued or held.
        kind: ReceiptKind,
        /// Why.
        error: OpenError,
    },
    /// An issued acceptance signed by another authority.
    #[error("receipt {number} was issued by {issuer}, not {authority}")]
    IssuedByOther {
        /// Which receipt.
        number: usize,
        /// Who signed it.
        issuer: AuthorityId,
        /// The exporting authority.
        authority: AuthorityId,
    },
    /// An issued acceptance that names no log entry.
    #[error("receipt {number} names no log entry")]
    NamesNoEntry {
        /// Which receipt.
        number: usize,
    },
    /// An issued acceptance naming an entry beyond the log.
    #[error("receipt {number} names log entry {index}, which the log does not have")]
    EntryMissing {
        /// Which receipt.
        number: usize,
        /// The entry it names.
        index: u64,
    },
    /// An issued acceptance naming an entry that is not the arrival of its
    /// message (another leaf hash, event or message).
    #[error(
        "receipt {number} names log entry {index}, but that entry is not the arrival of message {}",
        msg_id.map(|m| m.to_string()).unwrap_or_default()
    )]
    NotTheArrival {
        /// Which receipt.
        number: usize,
        /// The entry it names.
        index: u64,
        /// The message it attests.
        msg_id: Option<MessageId>,
    },
    /// An issued rejection with no `refused` entry naming it.
    #[error("rejection {number} issued by {authority} is not in its log")]
    RejectionNotLogged {
        /// Which receipt.
        number: usize,
        /// The exporting authority.
        authority: AuthorityId,
    },
    /// A held receipt for a message another authority sent.
    #[error("held receipt {number} is for a message of {sender}, not {authority}")]
    HeldForOther {
        /// Which receipt.
        number: usize,
        /// The sender it names.
        sender: AuthorityId,
        /// The exporting authority.
        authority: AuthorityId,
    },
    /// A held receipt no `delivered` (or `rejected`) entry names.
    #[error(
        "receipt {number} from {receiver} (message {}) is not recorded in the log",
        msg_id.map(|m| m.to_string()).unwrap_or_default()
    )]
    NotLogged {
        /// Which receipt.
        number: usize,
        /// Who signed it.
        receiver: AuthorityId,
        /// The message it attests.
        msg_id: Option<MessageId>,
    },
    /// A held receipt's inclusion proof does not hold.
    #[error("receipt {number} from {receiver}: {problem}")]
    Inclusion {
        /// Which receipt.
        number: usize,
        /// Who signed it.
        receiver: AuthorityId,
        /// Why.
        problem: InclusionProblem,
    },
    /// An issued receipt with an inclusion proof (only held ones have one).
    #[error(
        "receipt {number} is issued by {authority}, whose own log proves it: it carries an \
         inclusion proof only held receipts have"
    )]
    IssuedWithProof {
        /// Which receipt.
        number: usize,
        /// The exporting authority.
        authority: AuthorityId,
    },
}

/// Why a held receipt's inclusion proof does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionProblem {
    /// The proof does not decode.
    #[error("its inclusion proof does not decode: {0}")]
    Decode(CborError),
    /// The receipt names no entry to prove.
    #[error("it carries an inclusion proof but names no log entry")]
    NamesNoEntry,
    /// The proof is for another entry than the receipt names.
    #[error("its inclusion proof is for entry {proof}, but the receipt names entry {receipt}")]
    OtherEntry {
        /// The entry the proof is for.
        proof: u64,
        /// The entry the receipt names.
        receipt: u64,
    },
    /// No roster lists a log key for the receiver.
    #[error("the roster lists no log key for {receiver}")]
    NoLogKey {
        /// The receiver.
        receiver: AuthorityId,
    },
    /// The receiver's log key is not usable.
    #[error("{0}")]
    LogKey(Box<CheckpointError>),
    /// The proof fails with every log key the receiver had (the error is
    /// the last key's).
    #[error("its inclusion proof does not hold: {0}")]
    DoesNotHold(InclusionError),
    /// The proof's checkpoint does not parse.
    #[error("{0}")]
    Checkpoint(Box<CheckpointError>),
}

/// Why one of the bundle's envelopes does not verify or does not match the
/// log. `number` is its position among the bundle's envelopes (from 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeProblem {
    /// Its signature, or the header, does not verify.
    #[error("envelope {number}: {error}")]
    Invalid {
        /// Which envelope.
        number: usize,
        /// Why.
        error: OpenError,
    },
    /// No `submitted` or `received` entry records its digest.
    #[error(
        "envelope {number} (message {msg_id} from {from}) is in no submitted or received entry \
         of the log"
    )]
    NotLogged {
        /// Which envelope.
        number: usize,
        /// Its message.
        msg_id: MessageId,
        /// Its sender.
        from: AuthorityId,
    },
    /// The entry recording its digest is about another message, or the
    /// sender does not fit the event.
    #[error(
        "envelope {number} (message {msg_id} from {from}) does not match entry {entry} ({event} \
         of message {})",
        MessageText(*entry_msg_id)
    )]
    Mismatch {
        /// Which envelope.
        number: usize,
        /// Its message.
        msg_id: MessageId,
        /// Its sender.
        from: AuthorityId,
        /// The entry recording its digest.
        entry: u64,
        /// That entry's event.
        event: Event,
        /// That entry's message.
        entry_msg_id: Option<MessageId>,
    },
    /// A `submitted` or `received` entry whose envelope the bundle lacks.
    #[error(
        "entry {entry} ({event} of message {}) names an envelope the bundle does not hold",
        MessageText(*msg_id)
    )]
    Missing {
        /// The entry.
        entry: u64,
        /// Its event.
        event: Event,
        /// Its message.
        msg_id: Option<MessageId>,
        /// The envelope digest it records.
        digest: Digest,
    },
}

/// A message id as text, `(unknown)` when absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageText(pub(crate) Option<MessageId>);

impl fmt::Display for MessageText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(m) => write!(f, "{m}"),
            None => f.write_str("(unknown)"),
        }
    }
}
