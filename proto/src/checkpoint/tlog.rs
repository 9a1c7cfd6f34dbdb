//! [`Checkpoint`]: the head of a Merkle log as note text (C2SP
//! tlog-checkpoint §Note text), and consistency between two of them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::digest::Digest;
use crate::merkle;

use super::CheckpointError;
use super::note::check_controls;

fn malformed(reason: impl Into<String>) -> CheckpointError {
    CheckpointError::MalformedCheckpoint {
        reason: reason.into(),
    }
}

/// The head of a Merkle log (C2SP tlog-checkpoint §Note text).
///
/// As text, newline-terminated lines: the origin, the tree size in decimal,
/// the root hash in base64, then any extension lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Digest,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint with no extension lines. The origin must be non-empty and
    /// hold no control characters.
    pub fn new(origin: &str, size: u64, root: Digest) -> Result<Checkpoint, CheckpointError> {
        check_line("origin", origin)?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (non-empty, no control characters). The spec
    /// advises against them: monitors cannot audit them.
    pub fn with_extension(mut self, line: &str) -> Result<Checkpoint, CheckpointError> {
        check_line("extension line", line)?;
        self.extensions.push(line.to_owned());
        Ok(self)
    }

    /// Parses checkpoint note text, with its final newline: at least three
    /// lines; a non-empty origin; a size in decimal without leading zeros; a
    /// root of exactly 32 bytes in standard padded base64; non-empty
    /// extension lines.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        check_controls("checkpoint", text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline { what: "checkpoint" })?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(malformed(format!(
                "it has {} lines; origin, size and root hash are required",
                lines.len()
            )));
        };
        check_line("origin", origin)?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        for line in extensions {
            check_line("extension line", line)?;
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// The log's identity.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree at [`Checkpoint::size`].
    pub fn root(&self) -> &Digest {
        &self.root
    }

    /// The extension lines, without newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Checks that `newer` is a later state of the same log: same origin, and
    /// a consistency proof from this checkpoint to it verifies.
    pub fn verify_consistency(
        &self,
        newer: &Checkpoint,
        proof: &[Digest],
    ) -> Result<(), CheckpointError> {
        if self.origin != newer.origin {
            return Err(CheckpointError::OriginMismatch {
                old: self.origin.clone(),
                new: newer.origin.clone(),
            });
        }
        merkle::verify_consistency(self.size, newer.size, &self.root, &newer.root, proof).map_err(
            |source| CheckpointError::Inconsistent {
                old_size: self.size,
                new_size: newer.size,
                source,
            },
        )
    }
}

impl fmt::Display for Checkpoint {
    /// The note text, ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", BASE64.encode(self.root.as_bytes()))?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl FromStr for Checkpoint {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, CheckpointError> {
        Checkpoint::parse(s)
    }
}

/// A checkpoint line: non-empty, no newline or other control character.
fn check_line(what: &'static str, line: &str) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(malformed(format!("the {what} is empty")));
    }
    if line.bytes().any(|b| b < 0x20) {
        return Err(malformed(format!(
            "the {what} contains a newline or another control character"
        )));
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "the tree size {line:?} is not a decimal number"
        )));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(malformed(format!(
            "the tree size {line:?} has a leading zero"
        )));
    }
    line.parse()
        .map_err(|_| malformed(format!("the tree size {line:?} does not fit in 64 bits")))
}

fn parse_root(line: &str) -> Result<Digest, CheckpointError> {
    let bytes = BASE64.decode(line).map_err(|_| {
        malformed(format!(
            "the root hash {line:?} is not standard padded base64"
        ))
    })?;
    Digest::from_slice(&bytes)
        .ok_or_else(|| malformed(format!("the root hash is {} bytes, not 32", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("18446744073709551615").unwrap(), u64::MAX);
        for bad in ["", "01", "-1", "+1", "1 ", "18446744073709551616", "0x10"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
