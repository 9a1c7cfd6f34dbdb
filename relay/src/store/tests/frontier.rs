//! The check of the log at open from the Merkle frontier of the newest
//! checkpoint, what it refuses, the fall-back to the full replay, and the
//! full check on demand ([`verify_log`]).

use kurir_proto::audit::Event;

use super::*;
use crate::store::keys::checkpoint_key;
use crate::store::{StoreError, verify_log};

/// A store in `dir` with `before` entries, a checkpoint of them, and
/// `after` entries more.
async fn log_with_checkpoint(dir: &Path, before: u64, after: u64) {
    let store = Store::open(dir, Durability::ProcessCrash).unwrap();
    let e = |i: u64| entry_at(Timestamp(T0.0 + i), Event::Started);
    store.audit((0..before).map(e).collect()).await.unwrap();
    sign_checkpoint(&store).await;
    if after > 0 {
        store
            .audit((before..before + after).map(e).collect())
            .await
            .unwrap();
    }
    store.close().unwrap();
}

/// Opens the database in `dir` on its own and hands its trees to `change`.
fn tamper(dir: &Path, change: impl FnOnce(&sled::Db)) {
    let db = retry(|| sled::open(dir));
    change(&db);
    db.flush().unwrap();
}

/// Rewrites entry `index` with another time, its number and link intact.
fn change_entry(db: &sled::Db, index: u64) {
    let mut entry = Entry::decode(&stored_entry(db, index)).unwrap();
    entry.at = Timestamp(entry.at.0 + 1_000);
    put_stored_entry(db, index, Some(entry.encode()));
}

fn open_err(dir: &Path) -> String {
    retry_err(|| Store::open(dir, Durability::ProcessCrash))
}

/// The error of `open`, waiting out sled's lock of the last close.
fn retry_err<T>(mut open: impl FnMut() -> Result<T, StoreError>) -> String {
    for _ in 0..200 {
        match open() {
            Ok(_) => panic!("opened"),
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(25))
            }
            Err(e) => return e.to_string(),
        }
    }
    panic!("the database lock was not released");
}

#[tokio::test]
async fn a_damaged_entry_after_the_newest_checkpoint_is_refused_at_open() {
    let dir = super::tempdir();
    log_with_checkpoint(dir.path(), 40, 10).await;
    tamper(dir.path(), |db| change_entry(db, 44));
    let err = open_err(dir.path());
    assert!(
        err.contains("entry 44 was changed: entry 45 records another hash for it"),
        "{err}"
    );
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    // The full check names the same entry.
    let err = verify_log(dir.path()).unwrap_err().to_string();
    assert!(err.contains("entry 44 was changed"), "{err}");
}

#[tokio::test]
async fn a_gap_after_the_newest_checkpoint_is_refused_at_open() {
    let dir = super::tempdir();
    log_with_checkpoint(dir.path(), 40, 10).await;
    tamper(dir.path(), |db| {
        put_stored_entry(db, 42, None);
    });
    let err = open_err(dir.path());
    assert!(err.contains("entry 42 is missing"), "{err}");
}

#[tokio::test]
async fn the_last_entry_a_checkpoint_covers_is_checked_against_its_root() {
    let dir = super::tempdir();
    log_with_checkpoint(dir.path(), 40, 0).await;
    tamper(dir.path(), |db| change_entry(db, 39));
    let err = open_err(dir.path());
    assert!(
        err.contains("entry 39 (or a subtree hash stored before it) differs from the newest checkpoint (size 40)"),
        "{err}"
    );
    let err = verify_log(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("entry 39 differs from what checkpoint 40 signed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_damaged_frontier_is_refused_at_open() {
    let dir = super::tempdir();
    log_with_checkpoint(dir.path(), 40, 3).await;
    // 40 = 32 + 8: two subtree roots. One byte of the second flipped.
    tamper(dir.path(), |db| {
        let frontiers = db.open_tree("frontiers").unwrap();
        let mut bytes = frontiers.get(checkpoint_key(40)).unwrap().unwrap().to_vec();
        assert_eq!(bytes.len(), 64);
        bytes[40] ^= 1;
        frontiers.insert(checkpoint_key(40), bytes).unwrap();
    });
    let err = open_err(dir.path());
    assert!(
        err.contains("the Merkle frontier stored with the newest checkpoint (size 40) has root")
            && err.contains("not the checkpoint's signed root"),
        "{err}"
    );
    assert!(err.contains("kurir-relay verify-log"), "{err}");
    // A frontier cut short does not decode.
    tamper(dir.path(), |db| {
        let frontiers = db.open_tree("frontiers").unwrap();
        frontiers
            .insert(checkpoint_key(40), &[0u8; 32][..])
            .unwrap();
    });
    let err = open_err(dir.path());
    assert!(err.contains("does not decode"), "{err}");
    let err = verify_log(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("frontier of checkpoint 40 does not decode"),
        "{err}"
    );
}

#[tokio::test]
async fn the_open_reads_only_the_entries_after_the_newest_checkpoint() {
    let dir = super::tempdir();
    log_with_checkpoint(dir.path(), 40, 5).await;
    // An entry well before the checkpoint, changed on disk: not read at
    // open (that is what keeps the open short), found by the full check.
    tamper(dir.path(), |db| change_entry(db, 3));
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.log_state().size, 45);
    store.close().unwrap();
    drop(store);
    let err = retry_err(|| verify_log(dir.path()));
    assert!(
        err.contains("entry 3 was changed: entry 4 records another hash for it"),
        "{err}"
    );
}

#[tokio::test]
async fn a_store_without_frontiers_is_replayed_once_and_gets_one() {
    let dir = super::tempdir();
    log_with_checkpoint(dir.path(), 40, 5).await;
    let stored = |db: &sled::Db| {
        db.open_tree("frontiers")
            .unwrap()
            .get(checkpoint_key(40))
            .unwrap()
    };
    let mut kept = None;
    tamper(dir.path(), |db| {
        kept = stored(db);
        assert!(kept.is_some());
        db.open_tree("frontiers").unwrap().clear().unwrap();
    });
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    let (_, size, root) = store.log_state().last_checkpoint.clone().unwrap();
    assert_eq!((store.log_state().size, size), (45, 40));
    assert_eq!(
        store
            .trees()
            .unwrap()
            .frontiers
            .get(checkpoint_key(40))
            .unwrap(),
        kept,
        "the same frontier, stored again"
    );
    // Appends after the open continue the log the frontier describes.
    store.audit(vec![entry(Event::Started)]).await.unwrap();
    store.close().unwrap();
    drop(store);
    let report = retry(|| verify_log(dir.path()));
    assert_eq!(report.entries, 46);
    assert_eq!((report.checkpoints, report.frontiers), (1, 1));
    assert_eq!(
        report.subtrees,
        2 + 1,
        "levels 4 (twice) and 5 below 46 entries"
    );
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.log_state().last_checkpoint.clone().unwrap().2, root);
    assert_eq!(store.log_state().size, 46);
}
