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
use kurir_proto::checkpoint::{
    CheckpointError, MAX_NOTE_LEN, MAX_SIGNATURES, Note, NoteSignature, NoteVerifier,
    SignedCheckpoint,
};
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

/// What a member's answer to a cosigning request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A valid cosignature of the checkpoint sent: add `line` (and only
    /// it) to the stored checkpoint of `size` ([`merge`]); the member has
    /// now cosigned `size`.
    Cosigned {
        /// The size cosigned (the one sent).
        size: u64,
        /// The member's one cosignature line, under the key id of its log
        /// key in the roster, verified over the checkpoint sent.
        line: NoteSignature,
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
    /// wrong kind of answer): nothing of it is kept.
    Invalid(String),
}

/// Reads `peer`'s answer to a request to cosign `sent`, our checkpoint.
/// `log_key` is the peer's log key from the roster (`None`: it lists none).
pub fn read_answer(
    peer: &AuthorityId,
    log_key: Option<VerifyingKey>,
    sent: &SignedCheckpoint,
    answer: PeerResponse,
) -> Answer {
    let size = sent.checkpoint().size();
    match answer {
        PeerResponse::Cosigned { note } => match cosignature(peer, log_key, sent, &note) {
            Ok(line) => Answer::Cosigned { size, line },
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
        PeerResponse::Rosters { .. } => Answer::Invalid("answered with rosters".into()),
    }
}

/// [`read_answer`] with every log key the roster lets `peer` sign with now
/// (its current key first, then earlier keys still valid): a witness that
/// rotated its log key cosigns with the key of the roster it has in force,
/// which may be either while the new roster spreads.
pub fn read_answer_any(
    peer: &AuthorityId,
    log_keys: &[VerifyingKey],
    sent: &SignedCheckpoint,
    answer: PeerResponse,
) -> Answer {
    let PeerResponse::Cosigned { note } = &answer else {
        return read_answer(peer, log_keys.first().copied(), sent, answer);
    };
    let mut why = format!("the roster lists no log key for {peer}");
    for key in log_keys {
        match cosignature(peer, Some(*key), sent, note) {
            Ok(line) => {
                return Answer::Cosigned {
                    size: sent.checkpoint().size(),
                    line,
                };
            }
            Err(e) => why = e,
        }
    }
    Answer::Invalid(why)
}

/// `peer`'s cosignature line in `note`, its answer: the note must be the
/// checkpoint `sent` (its text, byte for byte), and the line the one named
/// as `peer`'s log under the key id of `peer`'s log key in the roster,
/// verifying over that text. Every other line of the answer is ignored.
fn cosignature(
    peer: &AuthorityId,
    log_key: Option<VerifyingKey>,
    sent: &SignedCheckpoint,
    note: &[u8],
) -> Result<NoteSignature, String> {
    let key = log_key.ok_or_else(|| format!("the roster lists no log key for {peer}"))?;
    let theirs = SignedCheckpoint::parse(note)
        .map_err(|e| format!("the answer is not a checkpoint note: {e}"))?;
    if theirs.note().text() != sent.note().text() {
        let (c, ours) = (theirs.checkpoint(), sent.checkpoint());
        return Err(format!(
            "the cosigned checkpoint is not the checkpoint sent (it has size {} and root {}, \
             ours size {} and root {})",
            c.size(),
            c.root(),
            ours.size(),
            ours.root()
        ));
    }
    let verifier = NoteVerifier::cosigner(&log_origin(peer), key).map_err(|e| e.to_string())?;
    let line = theirs
        .signatures()
        .iter()
        .find(|s| verifier.matches(s))
        .cloned()
        .ok_or_else(|| {
            format!(
                "bad cosignature: the answer has no line {} under the key id {:08x} of \
                 {peer}'s log key",
                verifier.name(),
                verifier.key_id()
            )
        })?;
    // Verified alone over our exact checkpoint.
    let mut alone = bare(sent).map_err(|e| e.to_string())?;
    alone
        .add_signature(line.clone())
        .map_err(|e| e.to_string())?;
    alone
        .verify_cosignature(&verifier)
        .map_err(|e| format!("bad cosignature: {e}"))?;
    Ok(line)
}

/// `signed`'s checkpoint without any signature line.
fn bare(signed: &SignedCheckpoint) -> Result<SignedCheckpoint, CheckpointError> {
    SignedCheckpoint::from_note(Note::new(signed.note().text())?)
}

/// Why a peer's cosignature line is not added to a stored checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeRefusal {
    /// The stored checkpoint does not parse.
    #[error("the stored checkpoint does not parse: {0}")]
    Stored(#[source] CheckpointError),
    /// The line is in the name of the log itself.
    #[error("the line {0:?} is in the name of this relay's own log")]
    OwnName(String),
    /// The note would hold more signature lines than a note may.
    #[error(
        "the checkpoint would carry {count} signature lines, more than the {max} a note may \
         hold: the cosignature is not kept"
    )]
    TooManySignatures {
        /// The lines it would carry.
        count: usize,
        /// [`MAX_SIGNATURES`].
        max: usize,
    },
    /// The note would outgrow a note.
    #[error(
        "the checkpoint would be {len} bytes, more than the {max} a note may hold: the \
         cosignature is not kept"
    )]
    TooLarge {
        /// Its length with the line.
        len: usize,
        /// [`MAX_NOTE_LEN`].
        max: usize,
    },
}

/// The stored checkpoint note `stored` with `line` (a peer's verified
/// cosignature, [`Answer::Cosigned`]) added: every line in the same name
/// is replaced (one cosignature per peer), and the note stays within
/// [`MAX_SIGNATURES`] and [`MAX_NOTE_LEN`], or nothing is added.
pub fn merge(stored: &[u8], line: &NoteSignature) -> Result<Vec<u8>, MergeRefusal> {
    let note = SignedCheckpoint::parse(stored).map_err(MergeRefusal::Stored)?;
    if line.name() == note.checkpoint().origin() {
        return Err(MergeRefusal::OwnName(line.name().to_owned()));
    }
    let kept: Vec<&NoteSignature> = note
        .signatures()
        .iter()
        .filter(|s| s.name() != line.name())
        .collect();
    let count = kept.len() + 1;
    if count > MAX_SIGNATURES {
        return Err(MergeRefusal::TooManySignatures {
            count,
            max: MAX_SIGNATURES,
        });
    }
    let mut merged = bare(&note).map_err(MergeRefusal::Stored)?;
    for s in kept.into_iter().chain([line]) {
        merged
            .add_signature(s.clone())
            .map_err(MergeRefusal::Stored)?;
    }
    let bytes = merged.note().to_string().into_bytes();
    if bytes.len() > MAX_NOTE_LEN {
        return Err(MergeRefusal::TooLarge {
            len: bytes.len(),
            max: MAX_NOTE_LEN,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::witness::witness;
    use kurir_proto::checkpoint::{Checkpoint, MAX_NOTE_LEN};
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

    /// Our checkpoint of `size`, as sent.
    fn sent(size: u64) -> SignedCheckpoint {
        SignedCheckpoint::parse(&checkpoint(size)).unwrap()
    }

    fn read(size: u64, answer: PeerResponse) -> Answer {
        read_answer(
            &peer(),
            Some(peer_key().verifying_key()),
            &sent(size),
            answer,
        )
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
        let Answer::Cosigned { size, line } = read(12, PeerResponse::Cosigned { note }) else {
            panic!("a valid cosignature was not kept");
        };
        assert_eq!((size, line.to_string()), (12, peers_line(12)));
    }

    #[test]
    fn a_cosignature_for_another_size_is_invalid() {
        let note = cosigned(11, &peer_key());
        let Answer::Invalid(reason) = read(12, PeerResponse::Cosigned { note }) else {
            panic!("a cosignature of another size was accepted");
        };
        assert!(
            reason.starts_with(
                "the cosigned checkpoint is not the checkpoint sent (it has size 11 and root "
            ) && reason.contains(", ours size 12 and root "),
            "{reason}"
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
            read_answer(&peer(), None, &sent(12), PeerResponse::Cosigned { note }),
            Answer::Invalid("the roster lists no log key for BA.SPS".into())
        );
    }

    /// A checkpoint of `size` entries of our log with another history
    /// (another root), signed with our log key.
    fn other_checkpoint(size: u64) -> Vec<u8> {
        let origin = log_origin(&me());
        let leaves: Vec<Digest> = (0..size).map(|i| leaf_hash(&[0xee, i as u8])).collect();
        let c = Checkpoint::new(&origin, size, root(&leaves)).unwrap();
        SignedCheckpoint::sign(c, &origin, &my_key())
            .unwrap()
            .note()
            .to_string()
            .into_bytes()
    }

    /// A signature line made up by hand: `name`, `key_id`, `sig`.
    fn line(name: &str, key_id: u32, sig: &[u8]) -> String {
        use base64::Engine as _;
        let mut payload = key_id.to_be_bytes().to_vec();
        payload.extend_from_slice(sig);
        format!(
            "\u{2014} {name} {}\n",
            base64::engine::general_purpose::STANDARD.encode(payload)
        )
    }

    /// `note` with `lines` appended to its signatures.
    fn with_lines(note: &[u8], lines: &[String]) -> Vec<u8> {
        let mut text = String::from_utf8(note.to_vec()).unwrap();
        for l in lines {
            text.push_str(l);
        }
        text.into_bytes()
    }

    /// What the owner takes from `answer`: the peer's cosignature line.
    fn taken(answer: Answer) -> Vec<String> {
        match answer {
            Answer::Cosigned { line, .. } => vec![line.to_string()],
            other => panic!("not taken: {other:?}"),
        }
    }

    /// The peer's valid cosignature line of our checkpoint of `size`.
    fn peers_line(size: u64) -> String {
        let note = cosigned(size, &peer_key());
        let name = log_origin(&peer());
        SignedCheckpoint::parse(&note)
            .unwrap()
            .signatures()
            .iter()
            .find(|s| s.name() == name)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_cosignature_over_another_root_is_invalid() {
        // The peer cosigns a checkpoint of the size sent, but of another
        // history: stored with ours, it would not verify.
        let (me, peer) = (me(), peer());
        let note = witness(
            &other_checkpoint(12),
            0,
            &[],
            &me,
            my_key().verifying_key(),
            None,
            &peer,
            &peer_key(),
            Timestamp(1_795_874_050_000),
        )
        .unwrap()
        .note;
        let Answer::Invalid(reason) = read(12, PeerResponse::Cosigned { note }) else {
            panic!("a cosignature over another root was accepted");
        };
        assert!(reason.contains("not the checkpoint sent"), "{reason}");
    }

    #[test]
    fn only_the_peers_one_line_is_taken_from_an_answer() {
        let name = log_origin(&peer());
        let extra = [
            // More lines in the peer's name, under other key ids.
            line(&name, 0x0102_0304, &[7; 72]),
            line(&name, 0x0506_0708, &[8; 2000]),
            // Lines in other names: another member, a second one in ours,
            // another origin altogether.
            line(&log_origin(&a("ME.UP")), 0x0a0b_0c0d, &[9; 72]),
            line(&log_origin(&me()), 0x1111_2222, &[1; 64]),
            line("example.org/log", 0x3333_4444, &[2; 64]),
        ];
        let note = with_lines(&cosigned(12, &peer_key()), &extra);
        assert_eq!(
            taken(read(12, PeerResponse::Cosigned { note })),
            vec![peers_line(12)]
        );
    }

    #[test]
    fn a_padded_answer_gives_only_the_peers_line() {
        // Padded close to the limit of a note with lines in the peer's name.
        let name = log_origin(&peer());
        let mut note = cosigned(12, &peer_key());
        let mut i = 0u32;
        while note.len() + 1100 < MAX_NOTE_LEN {
            note = with_lines(&note, &[line(&name, 0xabc0_0000 + i, &[3; 800])]);
            i += 1;
        }
        assert!(SignedCheckpoint::parse(&note).is_ok());
        assert_eq!(
            taken(read(12, PeerResponse::Cosigned { note })),
            vec![peers_line(12)]
        );
    }

    #[test]
    fn a_line_in_the_peers_name_under_another_key_id_is_not_its_cosignature() {
        // The peer's real cosignature bytes, under the key id of another
        // key type: the roster's key id decides, not the line's claim.
        let real = cosigned(12, &peer_key());
        let sig = SignedCheckpoint::parse(&real)
            .unwrap()
            .signatures()
            .iter()
            .find(|s| s.name() == log_origin(&peer()))
            .unwrap()
            .signature()
            .to_vec();
        let other_id = kurir_proto::checkpoint::key_id(
            &log_origin(&peer()),
            kurir_proto::checkpoint::SignatureType::Ed25519,
            &peer_key().verifying_key(),
        );
        let note = with_lines(
            &checkpoint(12),
            &[line(&log_origin(&peer()), other_id, &sig)],
        );
        assert!(matches!(
            read(12, PeerResponse::Cosigned { note }),
            Answer::Invalid(_)
        ));
    }

    /// `note` with lines named `name` added up to `len` bytes, or a few
    /// bytes less.
    fn padded_to(note: &[u8], name: &str, len: usize) -> Vec<u8> {
        let mut note = note.to_vec();
        let mut id = 0xabc0_0000u32;
        // "— " (4 bytes), the name, a space, the base64, a newline.
        let overhead = 4 + name.len() + 2;
        while note.len() + overhead + 8 <= len {
            let room = len - note.len();
            // Base64 of n bytes is 4 * n / 3 long (n a multiple of 3).
            let b64 = (room - overhead).min(4000) / 4 * 4;
            let line = line(name, id, &vec![3; b64 / 4 * 3 - 4]);
            note = with_lines(&note, &[line]);
            id += 1;
        }
        note
    }

    #[test]
    fn a_stored_note_never_outgrows_a_note() {
        // A stored note already near the limit (as a relay before this
        // check could have stored): adding a line is refused.
        let name = log_origin(&peer());
        let line = SignedCheckpoint::parse(&cosigned(12, &peer_key()))
            .unwrap()
            .signatures()
            .iter()
            .find(|s| s.name() == name)
            .unwrap()
            .clone();
        let near = padded_to(&checkpoint(12), "kurir/X", MAX_NOTE_LEN - 8);
        assert!(near.len() > MAX_NOTE_LEN - 32, "{}", near.len());
        assert!(SignedCheckpoint::parse(&near).is_ok());
        match merge(&near, &line) {
            Err(MergeRefusal::TooLarge { len, max }) => {
                assert!(len > max && max == MAX_NOTE_LEN)
            }
            Err(MergeRefusal::TooManySignatures { .. }) => {}
            other => panic!("merged past the limits: {other:?}"),
        }
        // Below the limits: the peer's line replaces its earlier ones.
        let merged = merge(&checkpoint(12), &line).unwrap();
        let again = merge(&merged, &line).unwrap();
        assert_eq!(merged, again);
        let names: Vec<String> = SignedCheckpoint::parse(&again)
            .unwrap()
            .signatures()
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        assert_eq!(names, [log_origin(&me()), name]);
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
