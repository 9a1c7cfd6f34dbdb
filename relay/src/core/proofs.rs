//! Inclusion proofs for receipts, sender side (`PROTOCOL.md` §15,
//! `AUDIT.md` §4): which receipts to ask each peer about, in what order and
//! how many at a time, when to stop, and which of a peer's answers to keep.
//!
//! Pure: the driver (`node/proofs.rs`) reads the receipts still due from
//! the store, runs each exchange, and stores what [`check`] keeps.

use std::collections::{BTreeMap, HashMap};

use kurir_proto::audit::{InclusionProof, MAX_PROVE};
use kurir_proto::batch::{Remembered, SignatureCheck, Strict};
use kurir_proto::checkpoint::NoteVerifier;
use kurir_proto::{AuthorityId, Digest, MessageId};

/// A held receipt waiting for its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unproven {
    /// The message sent.
    pub msg_id: MessageId,
    /// The recipient that signed the receipt.
    pub peer: AuthorityId,
    /// The recipient's log entry the receipt names.
    pub index: u64,
    /// That entry's leaf hash, as the receipt names it.
    pub leaf: Digest,
}

/// A verified proof to store: the message, the peer, the proof bytes.
pub type Proven = (MessageId, AuthorityId, Vec<u8>);

/// The receipts one peer signed that still lack a proof, asked for in log
/// order, at most [`MAX_PROVE`] entries per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asking {
    peer: AuthorityId,
    due: Vec<Unproven>,
    /// Where the next chunk starts; `due.len()` when this round is over.
    next: usize,
}

impl Asking {
    /// The peer asked.
    pub fn peer(&self) -> &AuthorityId {
        &self.peer
    }

    /// The entries to ask for next, or `None` when this round is over.
    pub fn next_chunk(&self) -> Option<&[Unproven]> {
        let rest = self.due.get(self.next..).filter(|r| !r.is_empty())?;
        Some(&rest[..rest.len().min(MAX_PROVE)])
    }

    /// The peer's answer to the last chunk gave `stored` proofs to keep.
    /// Entries are asked in log order: when the peer's newest checkpoint
    /// covers none of these, it covers none after.
    pub fn stored(&mut self, stored: usize) {
        if stored == 0 {
            self.next = self.due.len();
        } else {
            self.next = self.due.len().min(self.next + MAX_PROVE);
        }
    }

    /// The exchange for the last chunk failed: ask this peer again next
    /// round.
    pub fn failed(&mut self) {
        self.next = self.due.len();
    }
}

/// Groups the receipts due a proof by peer (in peer order), each peer's in
/// log order.
pub fn by_peer(due: Vec<Unproven>) -> Vec<Asking> {
    let mut by_peer: BTreeMap<AuthorityId, Vec<Unproven>> = BTreeMap::new();
    for u in due {
        by_peer.entry(u.peer.clone()).or_default().push(u);
    }
    by_peer
        .into_iter()
        .map(|(peer, mut due)| {
            due.sort_by_key(|u| u.index);
            Asking { peer, due, next: 0 }
        })
        .collect()
}

/// Matches proofs to the receipts that asked for them and keeps those that
/// hold, with why the others failed. The proofs of one answer are usually
/// against one checkpoint: its signature is verified once
/// ([`Remembered`]), not once per proof.
pub fn check(
    due: &[Unproven],
    proofs: &[InclusionProof],
    log: &NoteVerifier,
) -> (Vec<Proven>, Vec<String>) {
    check_with(
        due,
        proofs,
        log,
        &Remembered::new(Strict, CHECKPOINTS_REMEMBERED),
    )
}

/// How many checkpoint signatures one answer's check remembers: an answer
/// names a handful of checkpoints at most.
const CHECKPOINTS_REMEMBERED: usize = 16;

/// [`check`], with the checkpoints' signatures checked by `sigs`.
fn check_with(
    due: &[Unproven],
    proofs: &[InclusionProof],
    log: &NoteVerifier,
    sigs: &dyn SignatureCheck,
) -> (Vec<Proven>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    // The first receipt asked for each entry (an answer holds up to
    // `MAX_PROVE` proofs).
    let mut asked: HashMap<u64, &Unproven> = HashMap::with_capacity(due.len());
    for u in due {
        asked.entry(u.index).or_insert(u);
    }
    for proof in proofs {
        let Some(u) = asked.get(&proof.index) else {
            bad.push(format!("entry {} was not asked for", proof.index));
            continue;
        };
        match proof.verify_with(&u.leaf, log, sigs) {
            Ok(_) => match proof.encode() {
                Ok(bytes) => good.push((u.msg_id, u.peer.clone(), bytes)),
                Err(e) => bad.push(format!("entry {}: {e}", proof.index)),
            },
            Err(e) => bad.push(format!("entry {} (message {}): {e}", proof.index, u.msg_id)),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::audit::log_origin;
    use kurir_proto::audit::serde_bytes_vec::Bytes;
    use kurir_proto::checkpoint::{Checkpoint, SignedCheckpoint};
    use kurir_proto::ed25519_dalek::SigningKey;
    use kurir_proto::merkle;

    /// A peer's log of `n` entries, its checkpoint note signed with `key`,
    /// and proofs against it.
    struct Log {
        leaves: Vec<Digest>,
        note: Vec<u8>,
    }

    impl Log {
        fn new(peer: &AuthorityId, n: u8, key: &SigningKey) -> Log {
            let origin = log_origin(peer);
            let leaves: Vec<Digest> = (0..n).map(|i| merkle::leaf_hash(&[i])).collect();
            let note = SignedCheckpoint::sign(
                Checkpoint::new(&origin, u64::from(n), merkle::root(&leaves)).unwrap(),
                &origin,
                key,
            )
            .unwrap()
            .note()
            .to_string()
            .into_bytes();
            Log { leaves, note }
        }

        fn proof(&self, index: u64) -> InclusionProof {
            InclusionProof {
                index,
                checkpoint: self.note.clone(),
                hashes: merkle::inclusion_proof(&self.leaves, index, self.leaves.len() as u64)
                    .unwrap()
                    .into_iter()
                    .map(|d| Bytes(d.0.to_vec()))
                    .collect(),
            }
        }
    }

    fn a(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn unproven(peer: &AuthorityId, index: u64, leaf: Digest) -> Unproven {
        Unproven {
            msg_id: MessageId::new_v7(1_795_874_050_000 + index, [index as u8; 10]),
            peer: peer.clone(),
            index,
            leaf,
        }
    }

    fn verifier(peer: &AuthorityId, key: &SigningKey) -> NoteVerifier {
        NoteVerifier::ed25519(&log_origin(peer), key.verifying_key()).unwrap()
    }

    #[test]
    fn only_asked_for_and_valid_proofs_are_kept() {
        let peer = a("BA.MSB");
        let key = SigningKey::from_bytes(&[3; 32]);
        let log = Log::new(&peer, 5, &key);
        let (leaves, proof) = (&log.leaves, |index: u64| log.proof(index));
        let due = |index: u64, leaf: Digest| unproven(&peer, index, leaf);
        // Entry 3's receipt names another leaf hash than the peer's log has.
        let asked = vec![due(1, leaves[1]), due(3, leaves[4])];
        let v = verifier(&peer, &key);
        let (good, bad) = check(&asked, &[proof(1), proof(3), proof(2)], &v);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].0, asked[0].msg_id);
        assert_eq!(InclusionProof::decode(&good[0].2).unwrap(), proof(1));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].starts_with("entry 3"), "{bad:?}");
        assert!(bad[1].contains("not asked for"), "{bad:?}");
    }

    /// Counts the signatures it is asked to verify, and verifies them.
    #[derive(Default)]
    struct Counting(std::cell::Cell<usize>);

    impl SignatureCheck for &Counting {
        fn check(
            &self,
            key: &kurir_proto::ed25519_dalek::VerifyingKey,
            message: &[u8],
            signature: &kurir_proto::ed25519_dalek::Signature,
        ) -> Result<(), kurir_proto::ed25519_dalek::SignatureError> {
            self.0.set(self.0.get() + 1);
            Strict.check(key, message, signature)
        }
    }

    #[test]
    fn the_checkpoint_of_an_answer_is_verified_once_for_all_its_proofs() {
        let peer = a("BA.MSB");
        let key = SigningKey::from_bytes(&[3; 32]);
        let log = Log::new(&peer, 8, &key);
        let asked: Vec<Unproven> = (0..8)
            .map(|i| unproven(&peer, i, log.leaves[i as usize]))
            .collect();
        let proofs: Vec<_> = (0..8).map(|i| log.proof(i)).collect();
        let counting = Counting::default();
        let sigs = Remembered::new(&counting, CHECKPOINTS_REMEMBERED);
        let (good, bad) = check_with(&asked, &proofs, &verifier(&peer, &key), &sigs);
        assert_eq!((good.len(), bad.len()), (8, 0), "{bad:?}");
        assert_eq!(counting.0.get(), 1, "one checkpoint, one verification");
        // A checkpoint signed by another key is still refused, every time.
        let forger = SigningKey::from_bytes(&[4; 32]);
        let forged = Log::new(&peer, 8, &forger);
        let forgeries: Vec<_> = (0..3).map(|i| forged.proof(i)).collect();
        let (good, bad) = check_with(&asked, &forgeries, &verifier(&peer, &key), &sigs);
        assert!(good.is_empty());
        assert_eq!(bad.len(), 3, "{bad:?}");
    }

    #[test]
    fn an_empty_answer_keeps_nothing_and_reports_nothing() {
        let peer = a("BA.MSB");
        let key = SigningKey::from_bytes(&[3; 32]);
        let log = Log::new(&peer, 4, &key);
        let asked = vec![unproven(&peer, 0, log.leaves[0])];
        let (good, bad) = check(&asked, &[], &verifier(&peer, &key));
        assert!(good.is_empty());
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn a_proof_not_asked_for_is_refused_even_when_it_holds() {
        let peer = a("BA.MSB");
        let key = SigningKey::from_bytes(&[3; 32]);
        let log = Log::new(&peer, 4, &key);
        let asked = vec![unproven(&peer, 0, log.leaves[0])];
        let (good, bad) = check(&asked, &[log.proof(2)], &verifier(&peer, &key));
        assert!(good.is_empty());
        assert_eq!(bad, vec!["entry 2 was not asked for".to_string()]);
        // Nothing asked: everything is unasked for.
        let (good, bad) = check(&[], &[log.proof(0)], &verifier(&peer, &key));
        assert!(good.is_empty());
        assert_eq!(bad, vec!["entry 0 was not asked for".to_string()]);
    }

    #[test]
    fn a_proof_that_does_not_verify_is_refused_with_the_message_named() {
        let peer = a("BA.MSB");
        let key = SigningKey::from_bytes(&[3; 32]);
        let asked_leaf = |log: &Log| unproven(&peer, 1, log.leaves[1]);
        // Signed by another key than the peer's log key.
        let forged = Log::new(&peer, 4, &SigningKey::from_bytes(&[4; 32]));
        let asked = vec![asked_leaf(&forged)];
        let (good, bad) = check(&asked, &[forged.proof(1)], &verifier(&peer, &key));
        assert!(good.is_empty());
        assert_eq!(bad.len(), 1, "{bad:?}");
        let named = format!("entry 1 (message {}): ", asked[0].msg_id);
        assert!(bad[0].starts_with(&named), "{bad:?}");
        assert!(bad[0].contains("not signed by the log key"), "{bad:?}");
        // The right key, but a hash of the path changed.
        let log = Log::new(&peer, 4, &key);
        let asked = vec![asked_leaf(&log)];
        let mut broken = log.proof(1);
        broken.hashes[0].0[0] ^= 1;
        let (good, bad) = check(&asked, &[broken], &verifier(&peer, &key));
        assert!(good.is_empty());
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].starts_with(&named), "{bad:?}");
        // And the intact proof holds.
        let (good, bad) = check(&asked, &[log.proof(1)], &verifier(&peer, &key));
        assert_eq!(
            good,
            vec![(
                asked[0].msg_id,
                peer.clone(),
                log.proof(1).encode().unwrap()
            )]
        );
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn receipts_are_grouped_by_peer_and_asked_in_log_order() {
        let (ba, me) = (a("BA.MSB"), a("ME.MUP"));
        let leaf = merkle::leaf_hash(b"x");
        let rounds = by_peer(vec![
            unproven(&me, 7, leaf),
            unproven(&ba, 5, leaf),
            unproven(&me, 2, leaf),
            unproven(&ba, 1, leaf),
            unproven(&ba, 3, leaf),
        ]);
        let asked: Vec<(AuthorityId, Vec<u64>)> = rounds
            .iter()
            .map(|r| {
                let chunk = r.next_chunk().unwrap();
                (r.peer().clone(), chunk.iter().map(|u| u.index).collect())
            })
            .collect();
        assert_eq!(asked, vec![(ba, vec![1, 3, 5]), (me, vec![2, 7])]);
        assert!(by_peer(vec![]).is_empty(), "nothing due: no peer asked");
    }

    #[test]
    fn chunks_of_max_prove_until_a_chunk_gives_no_proof() {
        let peer = a("BA.MSB");
        let leaf = merkle::leaf_hash(b"x");
        let n = 2 * MAX_PROVE + 1;
        let due: Vec<Unproven> = (0..n as u64)
            .rev()
            .map(|i| unproven(&peer, i, leaf))
            .collect();
        let fresh = by_peer(due).pop().unwrap();
        let first = |a: &Asking| a.next_chunk().map(|c| (c[0].index, c.len()));

        // Every chunk answered with proofs: three chunks, then done.
        let mut asking = fresh.clone();
        assert_eq!(first(&asking), Some((0, MAX_PROVE)));
        asking.stored(MAX_PROVE);
        assert_eq!(first(&asking), Some((MAX_PROVE as u64, MAX_PROVE)));
        asking.stored(1);
        assert_eq!(first(&asking), Some((2 * MAX_PROVE as u64, 1)));
        asking.stored(1);
        assert_eq!(first(&asking), None);

        // A chunk the peer's checkpoint covers none of ends the round.
        let mut asking = fresh.clone();
        asking.stored(0);
        assert_eq!(first(&asking), None);
        let mut asking = fresh.clone();
        asking.stored(3);
        asking.stored(0);
        assert_eq!(first(&asking), None);

        // So does a failed exchange.
        let mut asking = fresh;
        asking.stored(MAX_PROVE);
        asking.failed();
        assert_eq!(first(&asking), None);
    }
}
