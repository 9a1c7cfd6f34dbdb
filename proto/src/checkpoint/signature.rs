//! [`NoteSignature`]: one signature line of a note (C2SP signed-note
//! §Signatures), parsed and written.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::CheckpointError;
use super::key::check_key_name;

/// The em dash and space that start a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// One signature line of a note: `— <name> base64(key id ‖ signature)`.
///
/// Holding one says nothing about its validity; see [`Note::verify`].
///
/// [`Note::verify`]: super::Note::verify
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    pub(super) name: String,
    pub(super) key_id: u32,
    pub(super) signature: Vec<u8>,
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (the first four bytes of the base64 payload).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes after the key id (for type 0x04: the 8-byte
    /// timestamp followed by the Ed25519 signature).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Parses one signature line, without the final newline.
    pub(super) fn parse_line(line: &str, number: usize) -> Result<NoteSignature, CheckpointError> {
        let bad = |reason| CheckpointError::MalformedSignatureLine {
            line: number,
            reason,
        };
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad("it does not start with an em dash (U+2014) and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space between the key name and the signature"))?;
        check_key_name(name)?;
        let bytes = BASE64
            .decode(b64)
            .map_err(|_| bad("the signature is not standard padded base64"))?;
        if bytes.len() < 5 {
            return Err(bad("the signature is shorter than a key id and one byte"));
        }
        let (id, signature) = bytes.split_at(4);
        let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id,
            signature: signature.to_vec(),
        })
    }
}

impl fmt::Display for NoteSignature {
    /// The signature line, with its final newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut payload = Vec::with_capacity(4 + self.signature.len());
        payload.extend_from_slice(&self.key_id.to_be_bytes());
        payload.extend_from_slice(&self.signature);
        writeln!(
            f,
            "{SIGNATURE_PREFIX}{} {}",
            self.name,
            BASE64.encode(payload)
        )
    }
}
