//! Fixtures of the audit tests: a log of `started` entries and checkpoints
//! of it.

use ed25519_dalek::SigningKey;

use super::{Entry, Record};
use crate::checkpoint::{Checkpoint, NoteVerifier, SignedCheckpoint};
use crate::merkle;
use crate::time::Timestamp;

/// The log's origin.
pub(super) const ORIGIN: &str = "kurir/RS.MUP";

/// A log of `n` entries (`started`, version `e0`, `e1`, ...).
pub(super) fn log(n: u64) -> Vec<Vec<u8>> {
    let mut prev = None;
    (0..n)
        .map(|i| {
            let bytes = Entry {
                index: i,
                prev,
                ..Entry::new(
                    Timestamp(1_000 + i),
                    Record::Started {
                        version: format!("e{i}"),
                    },
                )
            }
            .encode();
            prev = Some(merkle::leaf_hash(&bytes));
            bytes
        })
        .collect()
}

/// A checkpoint of the first `size` entries, signed with `key`.
pub(super) fn checkpoint(entries: &[Vec<u8>], size: usize, key: &SigningKey) -> Vec<u8> {
    let leaves: Vec<_> = entries[..size]
        .iter()
        .map(|b| merkle::leaf_hash(b))
        .collect();
    let c = Checkpoint::new(ORIGIN, size as u64, merkle::root(&leaves)).unwrap();
    SignedCheckpoint::sign(c, ORIGIN, key)
        .unwrap()
        .note()
        .to_string()
        .into_bytes()
}

/// Ten entries, checkpoints at 4 and 9, the log's verifier and key.
pub(super) fn setup() -> (Vec<Vec<u8>>, Vec<Vec<u8>>, NoteVerifier, SigningKey) {
    let key = SigningKey::from_bytes(&[8; 32]);
    let entries = log(10);
    let cps = vec![checkpoint(&entries, 4, &key), checkpoint(&entries, 9, &key)];
    let v = NoteVerifier::ed25519(ORIGIN, key.verifying_key()).unwrap();
    (entries, cps, v, key)
}
