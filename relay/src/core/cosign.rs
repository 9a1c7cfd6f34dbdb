//! Cosigning, owner side: which members are due a request to cosign this
//! relay's newest checkpoint and from which size they cosigned before, and
//! what a member's answer means. The other side, cosigning a peer's
//! checkpoint, is [`super::witness`].
//!
//! Pure: the driver (`node/checkpoints.rs`) reads the newest checkpoint and
//! the consistency proofs from the store, runs the exchanges, and carries
//! out each [`Answer`] (storing a cosignature, raising the rollback alarm,
//! remembering where to prove consistency from next time).

use std::collections::HashMap;

use kurir_proto::AuthorityId;
use kurir_proto::audit::{PeerResponse, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::VerifyingKey;

/// A member to ask for a cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The member.
    pub peer: AuthorityId,
    /// The size of our log it cosigned last (0: none), where the
    /// consistency proof sent with the request starts.
    pub old_size: u64,
}

/// The members other than `me` whose cosigned size (`cosigned`, 0 when
/// absent) is below `size`, the newest checkpoint's, in `members` order.
pub fn due<'a>(
    members: impl IntoIterator<Item = &'a AuthorityId>,
    me: &AuthorityId,
    cosigned: &HashMap<AuthorityId, u64>,
    size: u64,
) -> Vec<Due> {
    members
        .into_iter()
        .filter(|m| *m != me)
        .map(|m| Due {
            peer: m.clone(),
            old_size: cosigned.get(m).copied().unwrap_or(0),
        })
        .filter(|d| d.old_size < size)
        .collect()
}

/// What a member's answer to a cosigning request of size `size` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A valid cosignature of the checkpoint sent: store `note`; the member
    /// has now cosigned `size`.
    Cosigned {
        /// The size cosigned (the one sent).
        size: u64,
        /// The checkpoint note with the member's cosignature.
        note: Vec<u8>,
    },
    /// The member cosigned more of our log than we hold: this data
    /// directory was rolled back. Raise `alarm`.
    RolledBack {
        /// The alarm text for operators.
        alarm: String,
        /// The size the member has cosigned.
        witnessed_size: u64,
        /// The member's reason for refusing.
        reason: String,
    },
    /// The member refused; next time prove consistency from
    /// `witnessed_size`, what it has cosigned.
    RefusedFrom {
        /// The size the member has cosigned.
        witnessed_size: u64,
        /// The member's reason.
        reason: String,
    },
    /// The answer does not hold (a bad or misdirected cosignature, or the
    /// wrong kind of answer).
    Invalid(String),
}

/// Reads `peer`'s answer to a request to cosign our checkpoint of `size`.
/// `log_key` is the peer's log key from the roster (`None`: it lists none).
pub fn read_answer(
    peer: &AuthorityId,
    log_key: Option<VerifyingKey>,
    size: u64,
    answer: PeerResponse,
) -> Answer {
    match answer {
        PeerResponse::Cosigned { note } => match check_cosignature(peer, log_key, size, &note) {
            Ok(()) => Answer::Cosigned { size, note },
            Err(e) => Answer::Invalid(e),
        },
        PeerResponse::Refused {
            reason,
            witnessed_size,
        } if witnessed_size > size => Answer::RolledBack {
            alarm: format!(
                "{peer} has cosigned this relay's audit log up to {witnessed_size} entries, \
                 but the log now holds {size}: this data directory was rolled back to an \
                 earlier copy. Stop the relay and have an auditor examine it"
            ),
            witnessed_size,
            reason,
        },
        PeerResponse::Refused {
            reason,
            witnessed_size,
        } => Answer::RefusedFrom {
            witnessed_size,
            reason,
        },
        PeerResponse::Proofs { .. } => Answer::Invalid("answered with inclusion proofs".into()),
    }
}

/// `note` must carry `peer`'s cosignature and be of size `size`.
fn check_cosignature(
    peer: &AuthorityId,
    log_key: Option<VerifyingKey>,
    size: u64,
    note: &[u8],
) -> Result<(), String> {
    let signed = SignedCheckpoint::parse(note).map_err(|e| e.to_string())?;
    let key = log_key.ok_or_else(|| format!("the roster lists no log key for {peer}"))?;
    let verifier = NoteVerifier::cosigner(&log_origin(peer), key).map_err(|e| e.to_string())?;
    signed
        .verify_cosignature(&verifier)
        .map_err(|e| format!("bad cosignature: {e}"))?;
    if signed.checkpoint().size() != size {
        return Err("the cosigned checkpoint is not the one sent".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::witness::witness;
    use kurir_proto::checkpoint::Checkpoint;
    use kurir_proto::ed25519_dalek::SigningKey;
    use kurir_proto::merkle::{leaf_hash, root};
    use kurir_proto::{Digest, Timestamp};

    fn a(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn me() -> AuthorityId {
        a("RS.MUP")
    }

    fn peer() -> AuthorityId {
        a("BA.SPS")
    }

    fn my_key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn peer_key() -> SigningKey {
        SigningKey::from_bytes(&[2; 32])
    }

    /// Our checkpoint of `size` entries, signed with our log key.
    fn checkpoint(size: u64) -> Vec<u8> {
        let origin = log_origin(&me());
        let leaves: Vec<Digest> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let c = Checkpoint::new(&origin, size, root(&leaves)).unwrap();
        SignedCheckpoint::sign(c, &origin, &my_key())
            .unwrap()
            .note()
            .to_string()
            .into_bytes()
    }

    /// Our checkpoint of `size` cosigned as `peer()` with `key`.
    fn cosigned(size: u64, key: &SigningKey) -> Vec<u8> {
        let now = Timestamp(1_795_874_050_000);
        let (me, peer) = (me(), peer());
        witness(
            &checkpoint(size),
            0,
            &[],
            &me,
            my_key().verifying_key(),
            None,
            &peer,
            key,
            now,
        )
        .unwrap()
        .note
    }

    fn read(size: u64, answer: PeerResponse) -> Answer {
        read_answer(&peer(), Some(peer_key().verifying_key()), size, answer)
    }

    fn refused(witnessed_size: u64) -> PeerResponse {
        PeerResponse::Refused {
            reason: "not consistent".into(),
            witnessed_size,
        }
    }

    #[test]
    fn no_member_is_due_when_all_have_cosigned_the_newest_size() {
        let (me, ba, me2) = (me(), a("BA.SPS"), a("ME.MUP"));
        let members = [me.clone(), ba.clone(), me2.clone()];
        let done: HashMap<AuthorityId, u64> = [(ba.clone(), 12), (me2.clone(), 12)].into();
        assert_eq!(due(&members, &me, &done, 12), vec![]);
        // Cosigned more than the newest size is not due either (the
        // refusal that says so raises the rollback alarm).
        let ahead: HashMap<AuthorityId, u64> = [(ba, 20), (me2, 13)].into();
        assert_eq!(due(&members, &me, &ahead, 12), vec![]);
        // An empty log: nobody is asked.
        assert_eq!(due(&members, &me, &HashMap::new(), 0), vec![]);
        // Alone in the roster: nobody is asked.
        assert_eq!(due([&me], &me, &HashMap::new(), 12), vec![]);
    }

    #[test]
    fn members_below_the_newest_size_are_due_from_what_they_cosigned() {
        let (me, ba, me2, hr) = (me(), a("BA.SPS"), a("ME.MUP"), a("HR.MUP"));
        let members = [ba.clone(), me.clone(), me2.clone(), hr.clone()];
        // `me` in the map is ignored: a relay does not cosign its own log.
        let done: HashMap<AuthorityId, u64> = [(me.clone(), 0), (ba.clone(), 5), (hr, 12)].into();
        assert_eq!(
            due(&members, &me, &done, 12),
            vec![
                Due {
                    peer: ba,
                    old_size: 5
                },
                Due {
                    peer: me2,
                    old_size: 0
                },
            ]
        );
    }

    #[test]
    fn a_valid_cosignature_of_the_size_sent_is_kept() {
        let note = cosigned(12, &peer_key());
        assert_eq!(
            read(12, PeerResponse::Cosigned { note: note.clone() }),
            Answer::Cosigned { size: 12, note }
        );
    }

    #[test]
    fn a_cosignature_for_another_size_is_invalid() {
        let note = cosigned(11, &peer_key());
        assert_eq!(
            read(12, PeerResponse::Cosigned { note }),
            Answer::Invalid("the cosigned checkpoint is not the one sent".into())
        );
    }

    #[test]
    fn a_forged_cosignature_is_invalid() {
        // Cosigned with another key than the peer's log key.
        let note = cosigned(12, &SigningKey::from_bytes(&[9; 32]));
        let Answer::Invalid(reason) = read(12, PeerResponse::Cosigned { note }) else {
            panic!("a forged cosignature was accepted");
        };
        assert!(reason.starts_with("bad cosignature: "), "{reason}");
        // Our own checkpoint sent back without any cosignature.
        let Answer::Invalid(reason) = read(
            12,
            PeerResponse::Cosigned {
                note: checkpoint(12),
            },
        ) else {
            panic!("a note without cosignature was accepted");
        };
        assert!(reason.starts_with("bad cosignature: "), "{reason}");
        // Not a note at all.
        assert!(matches!(
            read(
                12,
                PeerResponse::Cosigned {
                    note: b"junk".to_vec()
                }
            ),
            Answer::Invalid(_)
        ));
        // A peer the roster lists no log key for.
        let note = cosigned(12, &peer_key());
        assert_eq!(
            read_answer(&peer(), None, 12, PeerResponse::Cosigned { note }),
            Answer::Invalid("the roster lists no log key for BA.SPS".into())
        );
    }

    #[test]
    fn a_refusal_from_beyond_our_size_is_a_rollback() {
        assert_eq!(
            read(12, refused(13)),
            Answer::RolledBack {
                alarm: "BA.SPS has cosigned this relay's audit log up to 13 entries, but the \
                        log now holds 12: this data directory was rolled back to an earlier \
                        copy. Stop the relay and have an auditor examine it"
                    .into(),
                witnessed_size: 13,
                reason: "not consistent".into(),
            }
        );
    }

    #[test]
    fn a_refusal_at_or_below_our_size_says_where_to_prove_from() {
        for witnessed_size in [0, 5, 12] {
            assert_eq!(
                read(12, refused(witnessed_size)),
                Answer::RefusedFrom {
                    witnessed_size,
                    reason: "not consistent".into(),
                }
            );
        }
    }

    #[test]
    fn proofs_are_not_an_answer_to_a_cosigning_request() {
        assert_eq!(
            read(12, PeerResponse::Proofs { proofs: vec![] }),
            Answer::Invalid("answered with inclusion proofs".into())
        );
    }
}
