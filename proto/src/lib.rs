//! The kurir wire protocol.
//!
//! Authorities exchange **parcels**: a signed header (a COSE_Sign1 envelope,
//! Ed25519) with the message body beside it, bound by a salted digest. This
//! crate defines every byte of that: identifiers, the message catalogue,
//! deterministic CBOR, the envelope and receipt formats, and stream framing.
//! `docs/PROTOCOL.md` is the normative specification; the test vectors in
//! `proto/tests/vectors/` pin it.
//!
//! The crate is pure: no async runtime, no sockets, no clock, no random
//! source. Callers pass the current time and random bytes in.
//!
//! # Layout
//!
//! - [`audit`]: the audit log: entries (the leaves of the Merkle log) and
//!   their typed events ([`audit::Record`]), the offline log check, the
//!   export bundle, inclusion proofs, the control messages between relays.
//! - [`api`]: the officer API on ALPN `kurir-client/1` (requests, responses).
//! - [`ids`]: `AuthorityId`, `MessageId` (UUIDv7), `CaseId`, `KeyId`.
//! - [`role`]: an officer's [`Role`] (officer, auditor, admin).
//! - [`time`]: `Timestamp` (Unix milliseconds) and calendar `Date`.
//! - [`message`]: the catalogue of message kinds and their bodies:
//!   `MessageKind` and `Message` (encoding, per-kind rules) in the module
//!   itself; the bodies in `notice`, `readmission` (request and reply),
//!   `extension`, `transfer` (arrangement and handover) and
//!   `data_protection`; shared field types in `fields`; fixed bodies in
//!   [`message::examples`].
//! - [`header`]: the signed header and its integer-keyed map.
//! - [`cbor`]: the deterministic-CBOR profile (RFC 8949 §4.2.1).
//! - [`cose`]: COSE_Sign1 with EdDSA, key lookup.
//! - [`envelope`]: parcels, [`seal`], [`open`], [`verify`].
//! - [`receipt`]: signed delivery receipts and rejections.
//! - [`frame`]: length-prefixed framing with a hard maximum.
//! - [`digest`]: domain-separated SHA-256.
//! - [`merkle`]: RFC 6962 Merkle trees: `hash` (leaf and node hashes,
//!   roots), `range` (the compact range), `inclusion` and `consistency`
//!   (proofs), `subtree`, `error` (`ProofError`).
//! - [`checkpoint`]: C2SP signed notes, checkpoints and cosignatures: `note`,
//!   `signature` (signature lines), `key` (key names, types and ids),
//!   `verifier` (vkeys), `tlog` (the checkpoint text), `signed` (a
//!   checkpoint with its signatures, cosigning), `cosignature` (the
//!   cosignature/v1 message), `error` (`CheckpointError`).
//! - [`batch`]: Ed25519 signatures verified in batches, with
//!   `verify_strict`'s verdict on every signature a batch refuses.
//! - [`error`]: `OpenError`, `SealError`, `RejectCode`.
//!
//! # Example
//!
//! ```
//! use kurir_proto::*;
//! use kurir_proto::message::{examples, Handling, Message, MessageKind};
//!
//! let rs = AuthorityId::parse("RS.MUP")?;
//! let me = AuthorityId::parse("ME.UP")?;
//! let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let mut keys = KeyRing::new();
//! keys.insert(PublicKey {
//!     authority: rs.clone(),
//!     key: key.verifying_key(),
//!     valid_from: Timestamp(0),
//!     valid_until: None,
//!     revoked_at: None,
//! });
//!
//! let now = Timestamp(1_795_874_050_000);
//! let header = Header {
//!     id: MessageId::new_v7(now.0, [1; 10]),
//!     kind: MessageKind::OperationalNotice,
//!     from: rs,
//!     to: vec![me.clone()],
//!     created_at: now,
//!     expires_at: now.plus_millis(86_400_000),
//!     case_id: None,
//!     in_reply_to: None,
//!     procedure: None,
//!     handling: Handling::H1,
//!     legal_basis: None,
//!     body_digest: Digest([0; 32]), // filled in by seal
//! };
//! let parcel = seal(header, &Message::OperationalNotice(examples::notice()), [9; 32], &key)?;
//!
//! let ctx = OpenContext { me: &me, now, max_parcel: DEFAULT_MAX_PARCEL };
//! let opened = open(&parcel.to_bytes(), &keys, &ctx)?;
//! assert_eq!(opened.message.kind(), MessageKind::OperationalNotice);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod batch;
pub mod cbor;
pub mod checkpoint;
pub mod cose;
pub mod digest;
pub mod envelope;
pub mod error;
pub mod frame;
pub mod header;
pub mod ids;
pub mod merkle;
pub mod message;
pub mod receipt;
pub mod role;
pub mod time;

pub use checkpoint::{
    Checkpoint, CheckpointError, Note, NoteSignature, NoteVerifier, SignedCheckpoint,
};
pub use cose::{KeyLookup, KeyRing, PublicKey};
pub use digest::Digest;
pub use envelope::{
    DEFAULT_MAX_PARCEL, EncodedMessage, OpenContext, Parcel, SALT_LEN, Unsigned, Verified,
    VerifiedEnvelope, open, open_with, prepare, seal, seal_encoded, sign_prepared, verify,
    verify_envelope, verify_with,
};
pub use error::{OpenError, RejectCode, SealError};
pub use header::Header;
pub use ids::{AuthorityId, CaseId, IdError, KeyId, MessageId};
pub use merkle::{CompactRange, ProofError};
pub use message::{Message, MessageKind};
pub use receipt::{
    Receipt, ReceiptStatus, VerifiedReceipt, open_receipt, seal_receipt, seal_receipts,
};
pub use role::Role;
pub use time::{Date, TimeError, Timestamp};

/// Re-exported so callers use the same version of the key types.
pub use ed25519_dalek;
