//! Signed checkpoints of the audit log: C2SP signed notes, checkpoints and
//! Ed25519 cosignatures.
//!
//! A relay publishes the head of its Merkle log ([`crate::merkle`]) as a
//! **checkpoint**: a short text naming the log (its *origin*), the tree size
//! and the root hash, signed as a **note** with the relay's Ed25519 key. Peer
//! relays check that each new checkpoint is consistent with the last one they
//! saw and add their **cosignature** to it.
//!
//! ```text
//! kurir.rs.mup/audit
//! 4
//! m81RJAr0AFFo8DMSG6hb5abtTw5qX6wmIGZym4+/3ss=
//!
//! — kurir.rs.mup/audit SSCwLKCkJmbKgZt8wEHT6sjBA6UmtvGSGqhSVTfmyKc2PnH703fmq2kqhQNOm2cqacB8jueh92KfOHKS6tebduX2cgA=
//! — kurir.me.up/witness H6pbvwAAAABrCt0CzzB6BEj9R07M/NTmp1VfsD5ERIZpuudsqjz1iMYeBRqeA/NHiTZKF9MdyoIkZtNiBTRZ63YRV/zfwcebgeoQDQ==
//! ```
//!
//! (The 4 leaves `0x00`..`0x03`, signed with the test keys `[1; 32]` and
//! `[2; 32]`, cosigned at 1795874050; `proto/tests/checkpoint.rs` pins it.)
//!
//! | Item | Specification |
//! |---|---|
//! | [`Note`], [`NoteSignature`], [`Note::parse`], [`Note::verify`] | C2SP signed-note §Format, §Signatures |
//! | [`key_id`], [`SignatureType`] | signed-note §Signatures, §Signature types |
//! | [`NoteVerifier`] (vkey text) | signed-note §Verifier keys |
//! | [`Note::sign`] (type 0x01) | signed-note §Ed25519 signatures |
//! | [`Checkpoint`] | C2SP tlog-checkpoint §Note text |
//! | [`SignedCheckpoint`] | tlog-checkpoint §Signatures |
//! | [`SignedCheckpoint::cosign`], [`SignedCheckpoint::verify_cosignature`], [`cosignature_message`] (type 0x04) | C2SP tlog-cosignature §Format, §Ed25519 signed message |
//!
//! ML-DSA-44 cosignatures (type 0x06), ECDSA and the other signature types are
//! not supported: their signature lines are kept and ignored, as the
//! signed-note spec requires of unknown keys.
//!
//! The module is pure: signing keys and the cosignature time are passed in by
//! the caller.
//!
//! # Layout
//!
//! - `note`: [`Note`], the signed note (parse, sign, verify), and the limits
//!   [`MAX_SIGNATURES`], [`MAX_NOTE_LEN`];
//! - `signature`: [`NoteSignature`], one signature line;
//! - `key`: key names, [`SignatureType`], [`key_id`];
//! - `verifier`: [`NoteVerifier`], a key that checks signatures, as vkey text;
//! - `tlog`: [`Checkpoint`], the note text of a log's head;
//! - `signed`: [`SignedCheckpoint`], a checkpoint with its signature and
//!   cosignatures;
//! - `cosignature`: the cosignature/v1 message ([`cosignature_message`],
//!   [`COSIGNATURE_V1_HEADER`], [`MAX_TIMESTAMP`]);
//! - `error`: [`CheckpointError`].
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use kurir_proto::checkpoint::{Checkpoint, NoteVerifier, SignedCheckpoint};
//! use kurir_proto::merkle;
//!
//! let log_key = SigningKey::from_bytes(&[1; 32]);
//! let witness_key = SigningKey::from_bytes(&[2; 32]);
//! let leaves: Vec<_> = (0u8..4).map(|i| merkle::leaf_hash(&[i])).collect();
//!
//! let checkpoint = Checkpoint::new("kurir.rs.mup/audit", 4, merkle::root(&leaves))?;
//! let mut signed = SignedCheckpoint::sign(checkpoint, "kurir.rs.mup/audit", &log_key)?;
//! let cosignature = signed.cosign("kurir.me.up/witness", &witness_key, 1_795_874_050)?;
//! signed.add_signature(cosignature)?;
//!
//! let text = signed.to_string();
//! let parsed = SignedCheckpoint::parse(text.as_bytes())?;
//! let log = NoteVerifier::ed25519("kurir.rs.mup/audit", log_key.verifying_key())?;
//! let witness = NoteVerifier::cosigner("kurir.me.up/witness", witness_key.verifying_key())?;
//! parsed.verify(&log)?;
//! assert_eq!(parsed.verify_cosignature(&witness)?, 1_795_874_050);
//! assert_eq!(parsed.checkpoint().size(), 4);
//! # Ok::<(), kurir_proto::checkpoint::CheckpointError>(())
//! ```

mod cosignature;
mod error;
mod key;
mod note;
mod signature;
mod signed;
mod tlog;
mod verifier;

pub use cosignature::{COSIGNATURE_V1_HEADER, MAX_TIMESTAMP, cosignature_message};
pub use error::CheckpointError;
pub use key::{SignatureType, key_id};
pub use note::{MAX_NOTE_LEN, MAX_SIGNATURES, Note};
pub use signature::NoteSignature;
pub use signed::SignedCheckpoint;
pub use tlog::Checkpoint;
pub use verifier::NoteVerifier;
