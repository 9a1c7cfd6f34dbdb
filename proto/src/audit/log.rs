//! Verifying a whole log offline ([`verify_log`]): its entries and
//! checkpoints; and reading the peers' cosignatures on a checkpoint
//! ([`cosigners`]).

use crate::digest::Digest;
use crate::ids::AuthorityId;
use crate::merkle;

use super::entry::Entry;

/// What [`verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The size and root of the newest checkpoint.
    pub newest: Option<(u64, Digest)>,
    /// Entries after the newest checkpoint (not yet covered by a signature).
    pub uncovered: u64,
}

/// Why a log does not verify. Every variant names the first bad item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An entry does not decode (flipped byte, foreign data).
    #[error("entry {index}: {reason}")]
    BadEntry {
        /// Its position in the log.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry is at the wrong position (dropped, inserted or swapped entries).
    #[error(
        "entry {position} says it is entry {claimed}: entries are missing, added or out of order"
    )]
    OutOfOrder {
        /// Where it is.
        position: u64,
        /// The index it carries.
        claimed: u64,
    },
    /// A checkpoint does not parse or is not signed by the log key.
    #[error("checkpoint {number}: {reason}")]
    BadCheckpoint {
        /// Its position among the checkpoints (1-based).
        number: usize,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint covers more entries than the log has.
    #[error(
        "checkpoint {number} covers {size} entries but the log has only {entries}: entries were removed"
    )]
    Truncated {
        /// Its position among the checkpoints (1-based).
        number: usize,
        /// Its tree size.
        size: u64,
        /// Entries present.
        entries: u64,
    },
    /// The log's root at a checkpoint's size differs from the signed root.
    /// The hash chain holds up to it, so the last entry it covers
    /// (`size - 1`) is one that was changed.
    #[error(
        "checkpoint {number} (size {size}) signs root {signed}, but the entries give {computed}: \
         entry {} was changed (the entries' hash chain holds up to it, so it, or a run of \
         entries ending at it, was rewritten)", size.saturating_sub(1)
    )]
    RootMismatch {
        /// Its position among the checkpoints (1-based).
        number: usize,
        /// Its tree size.
        size: u64,
        /// The signed root.
        signed: Digest,
        /// The root recomputed from the entries.
        computed: Digest,
    },
    /// An entry does not match the hash the next entry records for it
    /// (`prev`): that entry was changed after it was written.
    #[error(
        "entry {index} was changed: entry {next} records its hash as {recorded}, but it hashes \
         to {actual}"
    )]
    Changed {
        /// The changed entry.
        index: u64,
        /// The entry whose `prev` names it.
        next: u64,
        /// The hash `next` records.
        recorded: Digest,
        /// The hash of the entry as it is now.
        actual: Digest,
    },
    /// The last entry's `prev` does not match the entry before it, and no
    /// later entry tells which of the two was changed.
    #[error(
        "entry {index}, the last, does not link to entry {}: one of the two was changed",
        index.saturating_sub(1)
    )]
    LastLinkBroken {
        /// The last entry.
        index: u64,
    },
    /// Checkpoints are not in increasing order of size.
    #[error("checkpoint {number} is smaller than the one before it")]
    Order {
        /// Its position among the checkpoints (1-based).
        number: usize,
    },
}

/// Verifies a whole log offline: every entry decodes strictly, sits at its
/// own index and links to the one before; every checkpoint is signed by one
/// of `logs` (the log's keys over its life: a rotated key signed the older
/// checkpoints) and its root equals the root recomputed from the entries at
/// its size (which also proves each checkpoint consistent with the ones
/// before it).
pub fn verify_log(
    entries: &[Vec<u8>],
    checkpoints: &[Vec<u8>],
    logs: &[crate::checkpoint::NoteVerifier],
) -> Result<LogReport, LogError> {
    verify_log_with(entries, checkpoints, logs, &crate::batch::Strict)
}

/// [`verify_log`], with the checkpoints' signatures checked by `sigs` (for
/// [`crate::batch::batched`]).
pub fn verify_log_with(
    entries: &[Vec<u8>],
    checkpoints: &[Vec<u8>],
    logs: &[crate::checkpoint::NoteVerifier],
    sigs: &dyn crate::batch::SignatureCheck,
) -> Result<LogReport, LogError> {
    use crate::checkpoint::SignedCheckpoint;
    let mut parsed = Vec::with_capacity(checkpoints.len());
    for (i, note) in checkpoints.iter().enumerate() {
        let number = i + 1;
        let bad = |reason: String| LogError::BadCheckpoint { number, reason };
        let signed = SignedCheckpoint::parse(note).map_err(|e| bad(e.to_string()))?;
        let mut verified = Err("no log key to check it with".to_owned());
        for log in logs {
            verified = signed.verify_with(log, sigs).map_err(|e| e.to_string());
            if verified.is_ok() {
                break;
            }
        }
        verified.map_err(|e| bad(format!("not signed by the log key: {e}")))?;
        if let Some((_, prev)) = parsed.last()
            && signed.checkpoint().size() < *prev
        {
            return Err(LogError::Order { number });
        }
        let size = signed.checkpoint().size();
        parsed.push((signed, size));
    }
    let mut range = merkle::CompactRange::new();
    let mut next = parsed.iter().enumerate().peekable();
    // A checkpoint of the empty log.
    while let Some((i, (c, 0))) = next.peek().map(|(i, x)| (*i, x)) {
        check_root(i + 1, c, 0, &range.root())?;
        next.next();
    }
    // The previous entry's leaf hash (what its successor's `prev` must be).
    let mut previous: Option<Digest> = None;
    for (position, bytes) in entries.iter().enumerate() {
        let position = position as u64;
        let entry = Entry::decode(bytes).map_err(|e| LogError::BadEntry {
            index: position,
            reason: e.to_string(),
        })?;
        if entry.index != position {
            return Err(LogError::OutOfOrder {
                position,
                claimed: entry.index,
            });
        }
        let leaf = merkle::leaf_hash(bytes);
        if let (Some(recorded), Some(before)) = (entry.prev, previous)
            && recorded != before
        {
            // Which link broke tells which entry changed: if this entry's
            // own link from the next one breaks too, it is this entry (its
            // `prev` was altered); otherwise it is the one before.
            let next_records = entries
                .get(position as usize + 1)
                .map(|next| Entry::decode(next).ok().and_then(|n| n.prev));
            return Err(match next_records {
                Some(next_prev) if next_prev != Some(leaf) => LogError::Changed {
                    index: position,
                    next: position + 1,
                    recorded: next_prev.unwrap_or(Digest([0; 32])),
                    actual: leaf,
                },
                Some(_) => LogError::Changed {
                    index: position - 1,
                    next: position,
                    recorded,
                    actual: before,
                },
                // The last entry: no later link tells the two apart.
                None => LogError::LastLinkBroken { index: position },
            });
        }
        previous = Some(leaf);
        range.append(leaf);
        while let Some((i, (c, size))) = next.peek().map(|(i, x)| (*i, x))
            && *size == range.size()
        {
            check_root(i + 1, c, *size, &range.root())?;
            next.next();
        }
    }
    // Checkpoints the entries never reached: entries were removed at the end.
    if let Some((i, (_, size))) = next.next() {
        return Err(LogError::Truncated {
            number: i + 1,
            size: *size,
            entries: entries.len() as u64,
        });
    }
    let newest = parsed
        .last()
        .map(|(c, size)| (*size, *c.checkpoint().root()));
    Ok(LogReport {
        entries: entries.len() as u64,
        checkpoints: parsed.len() as u64,
        uncovered: entries.len() as u64 - newest.map_or(0, |(s, _)| s),
        newest,
    })
}

fn check_root(
    number: usize,
    c: &crate::checkpoint::SignedCheckpoint,
    size: u64,
    computed: &Digest,
) -> Result<(), LogError> {
    if c.checkpoint().root() != computed {
        return Err(LogError::RootMismatch {
            number,
            size,
            signed: *c.checkpoint().root(),
            computed: *computed,
        });
    }
    Ok(())
}

/// The peers whose valid cosignature/v1 a checkpoint note carries, with the
/// time each cosigned; `peers` are (authority, log key) pairs from the roster.
/// A line in a peer's name and key id that does not verify is an error
/// (a forged cosignature), naming the peer.
pub fn cosigners(
    note: &[u8],
    peers: &[(AuthorityId, ed25519_dalek::VerifyingKey)],
) -> Result<Vec<(AuthorityId, u64)>, (AuthorityId, crate::checkpoint::CheckpointError)> {
    cosigners_with(note, peers, &crate::batch::Strict)
}

/// [`cosigners`], with the signatures checked by `sigs` (for
/// [`crate::batch::batched`]).
pub fn cosigners_with(
    note: &[u8],
    peers: &[(AuthorityId, ed25519_dalek::VerifyingKey)],
    sigs: &dyn crate::batch::SignatureCheck,
) -> Result<Vec<(AuthorityId, u64)>, (AuthorityId, crate::checkpoint::CheckpointError)> {
    use crate::checkpoint::{CheckpointError, NoteVerifier, SignedCheckpoint};
    let Ok(signed) = SignedCheckpoint::parse(note) else {
        return Ok(vec![]);
    };
    let mut found = Vec::new();
    for (id, key) in peers {
        let Ok(v) = NoteVerifier::cosigner(&log_origin(id), *key) else {
            continue;
        };
        match signed.verify_cosignature_with(&v, sigs) {
            Ok(time) => found.push((id.clone(), time)),
            Err(CheckpointError::MissingSignature { .. }) => {}
            Err(e) => return Err((id.clone(), e)),
        }
    }
    Ok(found)
}

/// The origin line of an authority's checkpoints, also the key name of its
/// log signatures: `kurir/<AUTHORITY>`.
pub fn log_origin(authority: &AuthorityId) -> String {
    format!("kurir/{authority}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Record;
    use crate::audit::testing::{ORIGIN, checkpoint, log, setup};
    use crate::checkpoint::NoteVerifier;
    use crate::time::Timestamp;
    use ed25519_dalek::SigningKey;

    #[test]
    fn a_good_log_verifies() {
        let (entries, cps, v, _) = setup();
        let r = verify_log(&entries, &cps, std::slice::from_ref(&v)).unwrap();
        assert_eq!((r.entries, r.checkpoints, r.uncovered), (10, 2, 1));
    }

    #[test]
    fn every_tampering_is_named() {
        let (entries, cps, v, key) = setup();
        // A flipped byte in entry 2 (its code text): entry 3's link names it.
        let flip = |e: &mut Vec<Vec<u8>>, i: usize, at: usize| {
            let at = e[i].len() - at;
            e[i][at] ^= 0x01;
        };
        let mut e = entries.clone();
        let at = e[2].windows(2).position(|w| w == b"e2").unwrap() + 1;
        e[2][at] ^= 0x01; // code "e2" becomes "e3"
        assert!(Entry::decode(&e[2]).is_ok(), "still a valid entry");
        let err = verify_log(&e, &cps, std::slice::from_ref(&v)).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Changed {
                    index: 2,
                    next: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("entry 2 was changed"), "{err}");
        // A flipped byte in entry 5's own link (prev): entry 5 is named.
        let mut e = entries.clone();
        flip(&mut e, 5, 1);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::Changed {
                index: 5,
                next: 6,
                ..
            })
        ));
        // The last entry a checkpoint covers (8, checkpoint size 9) has no
        // successor link checked before the root: the root names it.
        let mut e = entries.clone();
        let at = e[8].windows(2).position(|w| w == b"e8").unwrap() + 1;
        e[8][at] ^= 0x01;
        let err = verify_log(&e[..9], &cps, std::slice::from_ref(&v)).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::RootMismatch {
                    number: 2,
                    size: 9,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("entry 8 was changed"), "{err}");
        // The last entry's own link altered: the pair is named.
        let mut e = entries.clone();
        flip(&mut e, 9, 1);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::LastLinkBroken { index: 9 })
        ));
        // A flipped byte that breaks the CBOR.
        let mut e = entries.clone();
        e[5][0] ^= 0xff;
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::BadEntry { index: 5, .. })
        ));
        // A dropped entry.
        let mut e = entries.clone();
        e.remove(3);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::OutOfOrder {
                position: 3,
                claimed: 4
            })
        ));
        // Two entries swapped.
        let mut e = entries.clone();
        e.swap(6, 7);
        assert!(matches!(
            verify_log(&e, &cps, std::slice::from_ref(&v)),
            Err(LogError::OutOfOrder {
                position: 6,
                claimed: 7
            })
        ));
        // A replaced checkpoint, signed by another key.
        let other = SigningKey::from_bytes(&[9; 32]);
        let forged = vec![cps[0].clone(), checkpoint(&entries, 9, &other)];
        assert!(matches!(
            verify_log(&entries, &forged, std::slice::from_ref(&v)),
            Err(LogError::BadCheckpoint { number: 2, .. })
        ));
        // ... unless that key is the log's too (rotated): given both keys,
        // the older checkpoint by one and the newer by the other verify.
        let rotated = NoteVerifier::ed25519(ORIGIN, other.verifying_key()).unwrap();
        verify_log(&entries, &forged, &[v.clone(), rotated]).unwrap();
        // A log cut back below its checkpoint (rolled back).
        assert!(matches!(
            verify_log(&entries[..7], &cps, std::slice::from_ref(&v)),
            Err(LogError::Truncated {
                number: 2,
                size: 9,
                entries: 7
            })
        ));
        // A rewritten history with a new, validly signed checkpoint still
        // contradicts the older checkpoint.
        let mut e = log(10);
        e[1] = Entry {
            index: 1,
            prev: Some(merkle::leaf_hash(&e[0])),
            ..Entry::new(
                Timestamp(1),
                Record::Started {
                    version: "rewritten".into(),
                },
            )
        }
        .encode();
        // ... with the chain after it rebuilt too.
        for i in 2..e.len() {
            let mut next = Entry::decode(&e[i]).unwrap();
            next.prev = Some(merkle::leaf_hash(&e[i - 1]));
            e[i] = next.encode();
        }
        let rewritten = vec![cps[0].clone(), checkpoint(&e, 9, &key)];
        assert!(matches!(
            verify_log(&e, &rewritten, std::slice::from_ref(&v)),
            Err(LogError::RootMismatch { number: 1, .. })
        ));
    }
}
