//! Length-prefixed framing for QUIC streams.
//!
//! A frame is a 4-byte big-endian length `n` followed by `n` bytes of payload.
//! The length is checked against the receiver's maximum as soon as the four
//! prefix bytes are in, before any buffer for the payload is allocated, and
//! the maximum itself can never exceed [`HARD_MAX_FRAME`].
//!
//! This module works on byte slices; the relay's stream code reads the
//! prefix, calls [`payload_len`], and only then reads the payload.

/// Length of the prefix in bytes.
pub const PREFIX_LEN: usize = 4;

/// No configuration can raise a frame limit above 64 MiB.
pub const HARD_MAX_FRAME: usize = 64 << 20;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared or given length is over the limit.
    #[error("frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The declared length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
}

/// The effective limit: `max`, but never above [`HARD_MAX_FRAME`].
pub fn effective_max(max: usize) -> usize {
    max.min(HARD_MAX_FRAME)
}

/// Reads the payload length from a prefix and checks it against `max`.
pub fn payload_len(prefix: [u8; PREFIX_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix);
    let max = effective_max(max);
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        }),
    }
}

/// Frames a payload.
pub fn encode(payload: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let max = effective_max(max);
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= max)
        .ok_or(FrameError::TooLarge {
            len: payload.len() as u64,
            max,
        })?;
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Takes one frame from the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((payload,
/// consumed)))` for a whole frame, and an error as soon as the prefix declares
/// a length over `max` (without waiting for the payload).
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(prefix) = buf.first_chunk::<PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = payload_len(*prefix, max)?;
    let end = PREFIX_LEN + len;
    Ok(buf.get(PREFIX_LEN..end).map(|payload| (payload, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_input() {
        let framed = encode(b"hello", 16).unwrap();
        assert_eq!(framed, b"\x00\x00\x00\x05hello");
        for cut in 0..framed.len() {
            assert_eq!(decode(&framed[..cut], 16).unwrap(), None, "cut at {cut}");
        }
        let mut two = framed.clone();
        two.extend_from_slice(&encode(b"", 16).unwrap());
        let (p, used) = decode(&two, 16).unwrap().unwrap();
        assert_eq!((p, used), (&b"hello"[..], 9));
        assert_eq!(decode(&two[used..], 16).unwrap(), Some((&b""[..], 4)));
    }

    #[test]
    fn oversized_frame_is_refused_from_the_prefix_alone() {
        // Only the 4 prefix bytes are present: the decoder refuses at once
        // instead of asking for (and buffering) 4 GiB of payload.
        let prefix = u32::MAX.to_be_bytes();
        assert_eq!(
            decode(&prefix, 1024),
            Err(FrameError::TooLarge {
                len: u64::from(u32::MAX),
                max: 1024
            })
        );
        assert!(payload_len(1025u32.to_be_bytes(), 1024).is_err());
        assert_eq!(payload_len(1024u32.to_be_bytes(), 1024), Ok(1024));
        // The hard ceiling holds whatever the configured limit.
        let over = (HARD_MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(payload_len(over, usize::MAX).is_err());
        assert!(encode(&[0; 17], 16).is_err());
    }
}
