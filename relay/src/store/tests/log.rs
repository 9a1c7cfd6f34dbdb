//! The audit log: checkpoints, the replay at open and what it refuses,
//! proofs from the stored subtree hashes.

use kurir_proto::audit::Event;
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};

use super::*;
use crate::core::pacing::Cover;
use crate::store::checkpoints::MARKER;
use crate::store::proofs::STORED_LEVEL;

#[tokio::test]
async fn checkpoints_sign_the_log_and_replay_finds_their_root() {
    let dir = super::tempdir();
    let key = SigningKey::from_bytes(&[4; 32]);
    let origin = "kurir/RS.MUP".to_owned();
    {
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        assert_eq!(
            store
                .checkpoint(origin.clone(), key.clone(), Cover::Anything)
                .await
                .unwrap(),
            None
        );
        store
            .audit(vec![entry(Event::Started), entry(Event::Roster)])
            .await
            .unwrap();
        let note = store
            .checkpoint(origin.clone(), key.clone(), Cover::Anything)
            .await
            .unwrap()
            .unwrap();
        let signed = SignedCheckpoint::parse(&note).unwrap();
        signed
            .verify(&NoteVerifier::ed25519(&origin, key.verifying_key()).unwrap())
            .unwrap();
        assert_eq!(signed.checkpoint().size(), 2);
        // Nothing new: no new checkpoint.
        assert_eq!(
            store
                .checkpoint(origin.clone(), key.clone(), Cover::Anything)
                .await
                .unwrap(),
            None
        );
        store.audit(vec![entry(Event::Started)]).await.unwrap();
        store.close().unwrap();
    }
    let store = reopen(dir.path());
    let state = store.log_state();
    assert_eq!(state.size, 3);
    let (note, size, root) = state.last_checkpoint.clone().unwrap();
    assert_eq!(size, 2);
    assert_eq!(
        *SignedCheckpoint::parse(&note).unwrap().checkpoint().root(),
        root
    );
    assert_eq!(store.checkpoints().unwrap().len(), 1);
}

#[tokio::test]
async fn a_database_replaced_as_a_whole_is_refused_at_open() {
    let dir = super::tempdir();
    let key = SigningKey::from_bytes(&[4; 32]);
    {
        let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
        let e = || entry(Event::Started);
        store.audit(vec![e(), e(), e()]).await.unwrap();
        store
            .checkpoint("kurir/RS.MUP".into(), key, Cover::Anything)
            .await
            .unwrap()
            .unwrap();
        store.close().unwrap();
    }
    assert!(dir.path().join(MARKER).exists());
    // Everything in the database is gone; the marker beside it remains.
    std::fs::remove_file(dir.path().join("db")).unwrap();
    let err = Store::open(dir.path(), Durability::ProcessCrash)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds 0 audit entries"), "{err}");
    assert!(err.contains("covers 3"), "{err}");
}

#[tokio::test]
async fn a_gap_or_a_changed_entry_in_the_log_is_found_at_open() {
    let dir = super::tempdir();
    {
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        let e = || entry(Event::Started);
        store.audit(vec![e(), e(), e()]).await.unwrap();
        store.close().unwrap();
    }
    {
        let db = retry(|| sled::open(dir.path()));
        put_stored_entry(&db, 1, None);
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), Durability::ProcessCrash)
        .unwrap_err()
        .to_string();
    assert!(err.contains("entry 1 is missing"), "{err}");
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_hold_and_survive_lost_subtree_hashes() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    // 75 entries in groups of different sizes (concurrent appends).
    let mut appends = Vec::new();
    for i in 0..75u64 {
        let store = store.clone();
        appends.push(tokio::spawn(async move {
            store
                .audit(vec![entry_at(Timestamp(T0.0 + i), Event::Started)])
                .await
        }));
    }
    for a in appends {
        a.await.unwrap().unwrap();
    }
    let check = |store: &Store| {
        let leaves = leaves(store);
        assert_eq!(leaves.len(), 75);
        for size in [1, 16, 17, 33, 64, 75] {
            let root = kurir_proto::merkle::root(&leaves[..size as usize]);
            let all: Vec<u64> = (0..80).collect();
            let proofs = store.inclusion_proofs(&all, size).unwrap();
            assert_eq!(
                proofs.len() as u64,
                size,
                "indexes beyond the size are left out"
            );
            for (index, proof) in proofs {
                // The same as from every entry, and as asked alone.
                let expected = kurir_proto::merkle::inclusion_proof(&leaves, index, size).unwrap();
                assert_eq!(proof, expected, "entry {index} at {size}");
                assert_eq!(
                    store.inclusion_proofs(&[index], size).unwrap(),
                    vec![(index, expected)]
                );
                kurir_proto::merkle::verify_inclusion(
                    &leaves[index as usize],
                    index,
                    size,
                    &proof,
                    &root,
                )
                .unwrap();
            }
            // Consistency proofs from the same subtree hashes equal
            // those computed from every entry.
            for old in [1, 5, 16, 17, 32, 33, 63, 64, 75] {
                if old <= size {
                    assert_eq!(
                        store.consistency_proof(old, size).unwrap(),
                        kurir_proto::merkle::consistency_proof(&leaves, old, size).unwrap(),
                        "{old} to {size}"
                    );
                }
            }
        }
    };
    check(&store);
    // Subtrees of 16 and more are stored; smaller ones are not.
    let stored: Vec<u8> = store
        .trees()
        .unwrap()
        .log_nodes
        .iter()
        .keys()
        .map(|k| k.unwrap()[0])
        .collect();
    assert!(stored.iter().all(|&level| level >= STORED_LEVEL));
    assert_eq!(
        stored.len(),
        4 + 2 + 1,
        "levels 4, 5 and 6 below 75 entries"
    );
    // A database whose subtree hashes are lost (or from before they were
    // kept) gets them rebuilt at open.
    store.trees().unwrap().log_nodes.clear().unwrap();
    store.close().unwrap();
    drop(store);
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    assert_eq!(store.trees().unwrap().log_nodes.len(), 7);
    check(&store);
    store.close().unwrap();
}

#[tokio::test]
async fn one_cosignature_per_peer_is_stored_within_the_limits_of_a_note() {
    let dir = super::tempdir();
    let key = SigningKey::from_bytes(&[4; 32]);
    let peer_key = SigningKey::from_bytes(&[5; 32]);
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    store.audit(vec![entry(Event::Started)]).await.unwrap();
    let note = store
        .checkpoint("kurir/RS.MUP".into(), key, Cover::Anything)
        .await
        .unwrap()
        .unwrap();
    let signed = SignedCheckpoint::parse(&note).unwrap();
    let lines_of = |store: &Store| {
        let stored = store.last_checkpoint().unwrap().unwrap();
        SignedCheckpoint::parse(&stored)
            .unwrap()
            .signatures()
            .iter()
            .map(|s| s.name().to_owned())
            .collect::<Vec<_>>()
    };
    // A second cosignature from the same peer replaces the first.
    for time in [1, 2] {
        let line = signed.cosign("kurir/BA.SPS", &peer_key, time).unwrap();
        store.add_cosignature(1, line).await.unwrap();
    }
    assert_eq!(lines_of(&store), ["kurir/RS.MUP", "kurir/BA.SPS"]);
    let stored = SignedCheckpoint::parse(&store.last_checkpoint().unwrap().unwrap()).unwrap();
    let ba = NoteVerifier::cosigner("kurir/BA.SPS", peer_key.verifying_key()).unwrap();
    assert_eq!(stored.verify_cosignature(&ba).unwrap(), 2);
    // Up to the limit of a note's signature lines, and no further.
    for n in 2..kurir_proto::checkpoint::MAX_SIGNATURES {
        let line = signed.cosign(&format!("kurir/P{n}"), &peer_key, 1).unwrap();
        store.add_cosignature(1, line).await.unwrap();
    }
    let full = store.last_checkpoint().unwrap().unwrap();
    let line = signed.cosign("kurir/ONE.MORE", &peer_key, 1).unwrap();
    let err = store.add_cosignature(1, line).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "the cosignature kurir/ONE.MORE of checkpoint 1 in {} was not stored: the \
             checkpoint would carry 65 signature lines, more than the 64 a note may hold"
                .replace("{}", &dir.path().display().to_string())
                .as_str()
        ),
        "{err}"
    );
    assert_eq!(store.last_checkpoint().unwrap().unwrap(), full, "unchanged");
    // A line in the log's own name never replaces its signature.
    let line = signed.cosign("kurir/RS.MUP", &peer_key, 1).unwrap();
    let err = store.add_cosignature(1, line).await.unwrap_err();
    assert!(err.to_string().contains("this relay's own log"), "{err}");
    store.close().unwrap();
    drop(store);
    // What was stored opens again.
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.last_checkpoint().unwrap().unwrap(), full);
}

/// The entries of one group commit share `log` rows (runs of up to
/// `RUN_ENTRIES` entries; a run of one is the entry alone, see
/// `store::log`), and every reader reads them: the listing, proofs at
/// sizes inside runs, the check at open, `verify-log`.
#[tokio::test]
async fn a_group_commit_stores_its_entries_in_runs_that_every_reader_reads() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    let started = |i: u64| entry_at(Timestamp(T0.0 + i), Event::Started);
    // 70 entries in one commit, then one alone, then 12.
    for n in [70, 1, 12] {
        store.audit((0..n).map(started).collect()).await.unwrap();
    }
    let rows: Vec<(u64, usize, bool)> = store
        .trees()
        .unwrap()
        .log
        .iter()
        .map(|item| {
            let (k, v) = item.unwrap();
            let first = u64::from_be_bytes(k.as_ref().try_into().unwrap());
            (
                first,
                crate::store::log::row_entries(&v).unwrap().len(),
                v[0] >> 5 == 4,
            )
        })
        .collect();
    assert_eq!(crate::store::log::RUN_ENTRIES, 32);
    assert_eq!(
        rows,
        vec![
            (0, 32, true),
            (32, 32, true),
            (64, 6, true),
            (70, 1, false),
            (71, 12, true),
        ],
        "(first entry, entries, a run)"
    );

    let listed = entries(&store);
    assert_eq!(
        listed.iter().map(|e| e.index).collect::<Vec<_>>(),
        (0..83).collect::<Vec<_>>()
    );
    let leaves = leaves(&store);
    for size in [33, 70, 71, 77, 83] {
        let root = kurir_proto::merkle::root(&leaves[..size as usize]);
        let all: Vec<u64> = (0..size).collect();
        for (index, proof) in store.inclusion_proofs(&all, size).unwrap() {
            kurir_proto::merkle::verify_inclusion(
                &leaves[index as usize],
                index,
                size,
                &proof,
                &root,
            )
            .unwrap_or_else(|e| panic!("entry {index} at {size}: {e}"));
        }
    }
    sign_checkpoint(&store).await;
    store.audit((0..3).map(started).collect()).await.unwrap();
    store.close().unwrap();
    drop(store);

    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.log_state().size, 86);
    assert_eq!(entries(&store).len(), 86);
    store.close().unwrap();
    drop(store);
    let report = retry(|| crate::store::verify_log(dir.path()));
    assert_eq!((report.entries, report.checkpoints), (86, 1));
}
