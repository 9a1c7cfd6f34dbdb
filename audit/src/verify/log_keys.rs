//! Log keys across a rotation: which key may vouch for what.
//!
//! A member's earlier log keys (a roster's `log_keys_before`) each stop at
//! their `valid_until`. A checkpoint is made no earlier than the newest
//! entry it covers, so it must verify with a key that had not stopped at
//! that entry's time; a cosignature carries its own time, and must verify
//! with a key that had not stopped then. A key no roster lists as earlier
//! (every current key) has no end. So a retired, perhaps leaked, log key
//! cannot sign checkpoints that cover later entries, nor later
//! cosignatures, without `kurir audit verify` saying so.

use kurir_certs::Roster;
use kurir_proto::audit::{cosigners, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::VerifyingKey;
use kurir_proto::{AuthorityId, KeyId, Timestamp};

use crate::error::Problem;

/// Each earlier log key the rosters list, with its member and the earliest
/// end any roster gives it.
pub(super) fn key_ends(rosters: &[Roster]) -> Vec<(AuthorityId, VerifyingKey, Timestamp)> {
    let mut ends: Vec<(AuthorityId, VerifyingKey, Timestamp)> = Vec::new();
    for r in rosters {
        for m in r.members() {
            for k in &m.log_keys_before {
                match ends
                    .iter_mut()
                    .find(|(id, key, _)| id == &m.id && key == &k.key)
                {
                    Some(e) => e.2 = e.2.min(k.valid_until),
                    None => ends.push((m.id.clone(), k.key, k.valid_until)),
                }
            }
        }
    }
    ends
}

fn end_of(
    ends: &[(AuthorityId, VerifyingKey, Timestamp)],
    id: &AuthorityId,
    key: &VerifyingKey,
) -> Option<Timestamp> {
    ends.iter()
        .find(|(i, k, _)| i == id && k == key)
        .map(|(_, _, t)| *t)
}

/// Every checkpoint of `authority` verifies with one of `keys` that had
/// not stopped at the time of the newest entry it covers (`entry_times`,
/// by index). The checkpoints' signatures were checked already; this only
/// holds them to their keys' ends.
pub(super) fn check_checkpoints(
    authority: &AuthorityId,
    checkpoints: &[Vec<u8>],
    entry_times: &[Timestamp],
    keys: &[VerifyingKey],
    ends: &[(AuthorityId, VerifyingKey, Timestamp)],
) -> Result<(), Problem> {
    let origin = log_origin(authority);
    for (i, note) in checkpoints.iter().enumerate() {
        let Ok(signed) = SignedCheckpoint::parse(note) else {
            continue;
        };
        let size = signed.checkpoint().size();
        let Some(made) = size
            .checked_sub(1)
            .and_then(|last| entry_times.get(usize::try_from(last).ok()?))
        else {
            continue;
        };
        let signers: Vec<&VerifyingKey> = keys
            .iter()
            .filter(|k| {
                NoteVerifier::ed25519(&origin, **k).is_ok_and(|v| signed.verify(&v).is_ok())
            })
            .collect();
        let ended = signers
            .iter()
            .map(|k| (k, end_of(ends, authority, k)))
            .filter_map(|(k, end)| Some((k, end?)))
            .filter(|(_, end)| *made >= *end)
            .collect::<Vec<_>>();
        if !signers.is_empty() && ended.len() == signers.len() {
            let (key, until) = ended[0];
            return Err(Problem::LogKeyEnded {
                what: format!("checkpoint {} (size {size})", i + 1),
                signer: authority.clone(),
                kid: KeyId::of(key),
                until,
                at: *made,
            });
        }
    }
    Ok(())
}

/// No cosignature on the checkpoints is made by an earlier log key of a
/// peer at or after that key's end.
pub(super) fn check_cosignatures(
    checkpoints: &[Vec<u8>],
    ends: &[(AuthorityId, VerifyingKey, Timestamp)],
) -> Result<(), Problem> {
    for (i, note) in checkpoints.iter().enumerate() {
        for (peer, key, until) in ends {
            let Ok(found) = cosigners(note, &[(peer.clone(), *key)]) else {
                continue;
            };
            for (_, secs) in found {
                let at = Timestamp(secs.saturating_mul(1000));
                if at >= *until {
                    return Err(Problem::LogKeyEnded {
                        what: format!("the cosignature of {peer} on checkpoint {}", i + 1),
                        signer: peer.clone(),
                        kid: KeyId::of(key),
                        until: *until,
                        at,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use kurir_proto::checkpoint::Checkpoint;
    use kurir_proto::ed25519_dalek::SigningKey;
    use kurir_proto::merkle::{leaf_hash, root};

    use super::*;

    fn checkpoint(size: usize, key: &SigningKey) -> SignedCheckpoint {
        let rs = AuthorityId::parse("RS.MUP").unwrap();
        let origin = log_origin(&rs);
        let leaves: Vec<_> = (0..size as u64)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let c = Checkpoint::new(&origin, size as u64, root(&leaves)).unwrap();
        SignedCheckpoint::sign(c, &origin, key).unwrap()
    }

    #[test]
    fn an_earlier_log_key_vouches_only_for_what_came_before_its_end() {
        let rs = AuthorityId::parse("RS.MUP").unwrap();
        let ba = AuthorityId::parse("BA.SPS").unwrap();
        let (old, new) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let ba_old = SigningKey::from_bytes(&[3; 32]);
        let keys = [new.verifying_key(), old.verifying_key()];
        // Entries at 10, 20, ..., 100; the old key stopped at 50.
        let times: Vec<_> = (1..=10).map(|i| Timestamp(i * 10)).collect();
        let ends = vec![
            (rs.clone(), old.verifying_key(), Timestamp(50)),
            (ba.clone(), ba_old.verifying_key(), Timestamp(60_000)),
        ];
        let note = |c: SignedCheckpoint| c.note().to_string().into_bytes();
        // Old key over entries up to 40, new key after: holds.
        let good = vec![note(checkpoint(4, &old)), note(checkpoint(8, &new))];
        check_checkpoints(&rs, &good, &times, &keys, &ends).unwrap();
        // The old key over the entry at 50 (its end): refused.
        let late = vec![note(checkpoint(4, &old)), note(checkpoint(5, &old))];
        let err = check_checkpoints(&rs, &late, &times, &keys, &ends).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("checkpoint 2 (size 5)"), "{text}");
        assert!(
            text.contains(&KeyId::of(&old.verifying_key()).to_string()),
            "{text}"
        );
        // The new key has no end.
        let new_only = vec![note(checkpoint(10, &new))];
        check_checkpoints(&rs, &new_only, &times, &keys, &ends).unwrap();

        // BA.SPS's old key cosigns before its end (at 59 s), not after (60 s).
        let mut c = checkpoint(8, &new);
        let line = c.cosign(&log_origin(&ba), &ba_old, 59).unwrap();
        c.add_signature(line).unwrap();
        check_cosignatures(&[note(c)], &ends).unwrap();
        let mut c = checkpoint(8, &new);
        let line = c.cosign(&log_origin(&ba), &ba_old, 60).unwrap();
        c.add_signature(line).unwrap();
        let err = check_cosignatures(&[note(c)], &ends).unwrap_err();
        assert!(
            err.to_string().contains("the cosignature of BA.SPS"),
            "{err}"
        );
    }
}
