//! Key encodings of the trees (listed in `trees`): numbers big-endian, so
//! sled's byte order is numeric and time order.

use kurir_proto::{AuthorityId, MessageId, Timestamp};

use crate::core::delivery::Delivery;

/// A key and value to insert.
pub(super) type Row = (Vec<u8>, Vec<u8>);

/// The `log` key of entry `index`.
pub(super) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The `checkpoints` key of the checkpoint of `size` entries.
pub(super) fn checkpoint_key(size: u64) -> [u8; 8] {
    size.to_be_bytes()
}

/// The `log_nodes` key of the perfect subtree `(level, index)`.
pub(super) fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The index part of a `log_nodes` key.
pub(super) fn node_index(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Message id ‖ recipient: the key of a final delivery in `deliveries`,
/// and of its receipt in `unproven` and `receipt_proofs`.
pub(super) fn recipient_key(msg_id: MessageId, peer: &AuthorityId) -> Vec<u8> {
    let mut k = msg_id.as_bytes().to_vec();
    k.extend_from_slice(peer.as_str().as_bytes());
    k
}

/// The key of a delivery (see [`recipient_key`]).
pub(super) fn delivery_key(d: &Delivery) -> Vec<u8> {
    recipient_key(d.msg_id, &d.peer)
}

/// Keys in `meta` that hold the deliveries not yet final (`open/` ‖ the
/// delivery's key), written with each change of state and removed when it
/// is final, in the commit that writes it to `deliveries`. (Until format 3
/// they were copies: `deliveries` held every delivery.)
pub(super) const OPEN_PREFIX: &[u8] = b"open/";

/// Set in `meta` once the index of open deliveries exists (stores from
/// before it get it built at open).
pub(super) const OPEN_INDEXED: &[u8] = b"open-indexed";

/// The `meta` key of the copy of an open delivery.
pub(super) fn open_key(d: &Delivery) -> Vec<u8> {
    let mut k = OPEN_PREFIX.to_vec();
    k.extend_from_slice(&delivery_key(d));
    k
}

/// refused_at ‖ envelope digest ‖ sequence: the `refusals` key of a
/// refusal. Refusals in the same millisecond may share a digest (every
/// oversized parcel has the digest of nothing): the sequence number keeps
/// each one.
pub(super) fn refusal_key(at: Timestamp, envelope_digest: &[u8], seq: u64) -> Vec<u8> {
    let mut k = at.0.to_be_bytes().to_vec();
    k.extend_from_slice(envelope_digest);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The `meta` key of the roster in force.
pub(super) const ROSTER: &[u8] = b"roster";

/// The `meta` key of the authority this store belongs to.
pub(super) const AUTHORITY: &[u8] = b"authority";

/// The `meta` key prefix of every accepted roster.
pub(super) const ROSTER_HISTORY: &[u8] = b"rosters/";

/// `rosters/` ‖ the roster's SHA-256 (hex, as its fingerprint and the
/// `roster` audit entry give it).
pub(super) fn roster_history_key(bytes: &[u8]) -> Vec<u8> {
    let mut k = ROSTER_HISTORY.to_vec();
    k.extend_from_slice(kurir_proto::Digest::of(&[bytes]).to_string().as_bytes());
    k
}
