//! The commit journal: commits made durable in it alone come back at the
//! next open; a record cut short is dropped; a journal that does not
//! follow the database is refused; full flushes empty it.

use kurir_proto::audit::Event;

use super::*;
use crate::core::pacing::Cover;
use crate::store::StoreError;
use crate::store::journal::JOURNAL;

/// Submits message `n` (alone in its group commit).
async fn submit(store: &Store, n: u8) {
    let (record, deliveries) = outbound(n);
    store
        .submit(record, deliveries, None, vec![about(n, Event::Submitted)])
        .await
        .unwrap();
}

/// The journal of a store (in `dir`) that committed messages 1 to `n`, one
/// group each, read while it is still open: nothing else holds them.
async fn journal_of(n: u8) -> Vec<u8> {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    for i in 1..=n {
        submit(&store, i).await;
    }
    let journal = std::fs::read(dir.path().join(JOURNAL)).unwrap();
    store.close().unwrap();
    journal
}

/// A new, empty store in a directory of its own, closed, with `journal`
/// put beside its database.
fn empty_store_with(journal: &[u8]) -> tempfile::TempDir {
    let dir = super::tempdir();
    Store::open(dir.path(), Durability::PowerLoss)
        .unwrap()
        .close()
        .unwrap();
    std::fs::write(dir.path().join(JOURNAL), journal).unwrap();
    dir
}

#[tokio::test]
async fn commits_held_only_in_the_journal_come_back_at_open() {
    let journal = journal_of(3).await;
    assert!(!journal.is_empty(), "the commits went to the journal");
    // A store that never saw these commits: only the journal holds them.
    let dir = empty_store_with(&journal);
    let store = reopen(dir.path());
    for n in 1..=3 {
        let out = store.outbound(id(n)).unwrap().expect("the message is back");
        assert_eq!(store.parcel(id(n), &out.parcel).unwrap(), Some(parcel(n)));
        assert_eq!(store.deliveries_of(id(n)).unwrap().len(), 2);
    }
    assert_eq!(store.log_state().size, 3);
    let events: Vec<_> = entries(&store).iter().map(|e| e.event).collect();
    assert_eq!(events, vec![Event::Submitted; 3]);
    // Replayed, flushed and emptied: the next open finds it all in sled.
    assert_eq!(
        std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len(),
        0
    );
    store.close().unwrap();
    drop(store);
    let report = retry(|| crate::store::verify_log(dir.path()));
    assert_eq!(report.entries, 3);
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert!(store.outbound(id(3)).unwrap().is_some());
    // Numbering goes on after the replayed groups.
    submit(&store, 4).await;
    store.close().unwrap();
    drop(store);
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.log_state().size, 4);
}

#[tokio::test]
async fn a_record_cut_short_is_dropped_and_the_ones_before_it_kept() {
    let journal = journal_of(3).await;
    let dir = empty_store_with(&journal[..journal.len() - 10]);
    let store = reopen(dir.path());
    assert!(store.outbound(id(2)).unwrap().is_some());
    assert!(
        store.outbound(id(3)).unwrap().is_none(),
        "the cut record is not applied"
    );
    assert_eq!(store.log_state().size, 2);
}

#[tokio::test]
async fn a_journal_that_does_not_follow_the_database_is_refused_untouched() {
    let journal = journal_of(3).await;
    let first = crate::store::journal::first_len(&journal).unwrap();
    // Records 2 and 3 on a store that holds nothing: record 1 is missing.
    let dir = empty_store_with(&journal[first..]);
    let err = Store::open(dir.path(), Durability::PowerLoss).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                tree: "journal",
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("the first record sled lacks is 2, but sled holds up to 0"),
        "{text}"
    );
    assert!(text.contains("Move"), "says what to do: {text}");
    assert_eq!(
        std::fs::read(dir.path().join(JOURNAL)).unwrap(),
        &journal[first..],
        "the journal is kept as it was"
    );
}

#[tokio::test]
async fn commits_go_to_the_journal_and_full_flushes_empty_it() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    let len = || std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
    assert_eq!(len(), 0);
    submit(&store, 1).await;
    let one = len();
    assert!(one > 0, "a commit is made durable in the journal");
    submit(&store, 2).await;
    assert!(len() > one, "each commit appends");
    // A checkpoint is written to sled on its own: a full flush.
    let key = SigningKey::from_bytes(&[3; 32]);
    store
        .checkpoint("kurir/RS.MUP".into(), key, Cover::Anything)
        .await
        .unwrap()
        .expect("a checkpoint");
    assert_eq!(len(), 0, "the full flush emptied the journal");
    submit(&store, 3).await;
    assert!(len() > 0);
    store.close().unwrap();
    assert_eq!(len(), 0, "closing flushes sled and empties the journal");
}
