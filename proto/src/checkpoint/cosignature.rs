//! The cosignature/v1 format (C2SP tlog-cosignature §Format, §Ed25519 signed
//! message): its limits and the message an Ed25519 cosignature signs.

/// The largest cosignature timestamp, `2^63 - 1` (tlog-cosignature §Format).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The first line of the message an Ed25519 cosignature signs.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// Length of an Ed25519 signature.
const ED25519_SIG_LEN: usize = 64;
/// Length of a `timestamped_signature` with an Ed25519 signature.
pub(super) const COSIGNATURE_LEN: usize = 8 + ED25519_SIG_LEN;

/// The message an Ed25519 cosignature signs (tlog-cosignature §Ed25519
/// signed message): `cosignature/v1\ntime <time>\n` followed by the note text
/// of the checkpoint.
pub fn cosignature_message(time: u64, checkpoint_text: &str) -> String {
    format!("{COSIGNATURE_V1_HEADER}\ntime {time}\n{checkpoint_text}")
}
