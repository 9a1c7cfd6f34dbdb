//! The commit journal: commits made durable in it alone come back at the
//! next open; a record cut short is dropped; a journal that does not
//! follow the database is refused; full flushes empty it, and older
//! records left behind in the file are told apart.

use kurir_proto::audit::Event;

use super::*;
use crate::core::pacing::Cover;
use crate::store::StoreError;
use crate::store::journal::{ID_KEY, JOURNAL, fail_replay, records};

/// Submits message `n` (alone in its group commit).
async fn submit(store: &Store, n: u8) {
    let (record, deliveries) = outbound(n);
    store
        .submit(record, deliveries, None, vec![about(n, Event::Submitted)])
        .await
        .unwrap();
}

/// The journal of a store that committed messages 1 to `n`, one group
/// each, read while it is still open (nothing else holds them), and the
/// store's journal id.
async fn journal_of(n: u8) -> (Vec<u8>, Vec<u8>) {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    for i in 1..=n {
        submit(&store, i).await;
    }
    let journal = std::fs::read(dir.path().join(JOURNAL)).unwrap();
    let id = store
        .trees()
        .unwrap()
        .meta
        .get(ID_KEY)
        .unwrap()
        .unwrap()
        .to_vec();
    store.close().unwrap();
    (journal, id)
}

/// A new, empty store in a directory of its own, closed, with `journal`
/// put beside its database and, unless `None`, the journal id `id`.
fn empty_store_with(journal: &[u8], id: Option<&[u8]>) -> tempfile::TempDir {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    if let Some(id) = id {
        store.trees().unwrap().meta.insert(ID_KEY, id).unwrap();
        store.trees().unwrap().db.flush().unwrap();
    }
    store.close().unwrap();
    std::fs::write(dir.path().join(JOURNAL), journal).unwrap();
    dir
}

#[tokio::test]
async fn commits_held_only_in_the_journal_come_back_at_open() {
    let (journal, jid) = journal_of(3).await;
    assert_eq!(
        records(&journal).len(),
        3,
        "the commits went to the journal"
    );
    // A store that never saw these commits: only the journal holds them.
    let dir = empty_store_with(&journal, Some(&jid));
    let store = reopen(dir.path());
    for n in 1..=3 {
        let out = store.outbound(id(n)).unwrap().expect("the message is back");
        assert_eq!(store.parcel(id(n), &out.parcel).unwrap(), Some(parcel(n)));
        assert_eq!(store.deliveries_of(id(n)).unwrap().len(), 2);
    }
    assert_eq!(store.log_state().size, 3);
    let events: Vec<_> = entries(&store).iter().map(|e| e.event).collect();
    assert_eq!(events, vec![Event::Submitted; 3]);
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
    let (journal, jid) = journal_of(3).await;
    let ends: Vec<usize> = records(&journal).iter().map(|r| r.1).collect();
    assert_eq!(ends.len(), 3);
    let dir = empty_store_with(&journal[..ends[2] - 10], Some(&jid));
    // `verify-log` applies them first, as the relay's start would.
    let report = retry(|| crate::store::verify_log(dir.path()));
    assert_eq!((report.recovered, report.entries), (2, 2));
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert!(store.outbound(id(2)).unwrap().is_some());
    assert!(
        store.outbound(id(3)).unwrap().is_none(),
        "the cut record is not applied"
    );
    assert_eq!(store.log_state().size, 2);
}

#[tokio::test]
async fn a_journal_that_does_not_follow_the_database_is_refused_untouched() {
    let (journal, jid) = journal_of(3).await;
    let first = records(&journal)[0].1;
    // Records 2 and 3 on a store that holds nothing: record 1 is missing.
    let dir = empty_store_with(&journal[first..], Some(&jid));
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

/// The numbers of the records the journal in `dir` holds from its start.
fn numbers(dir: &Path) -> Vec<u64> {
    let bytes = std::fs::read(dir.join(JOURNAL)).unwrap();
    records(&bytes).iter().map(|r| r.0).collect()
}

#[tokio::test]
async fn commits_go_to_the_journal_and_full_flushes_empty_it() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    assert_eq!(numbers(dir.path()), Vec::<u64>::new());
    submit(&store, 1).await;
    submit(&store, 2).await;
    assert_eq!(numbers(dir.path()), vec![1, 2], "a record per commit");
    // A checkpoint is written to sled on its own: a full flush, and the
    // journal starts again at the front, over the older records.
    let key = SigningKey::from_bytes(&[3; 32]);
    store
        .checkpoint("kurir/RS.MUP".into(), key, Cover::Anything)
        .await
        .unwrap()
        .expect("a checkpoint");
    submit(&store, 3).await;
    assert_eq!(
        numbers(dir.path()),
        vec![3],
        "the journal starts again at the front, over records 1 and 2"
    );
    store.close().unwrap();
    drop(store);
    // Every record left in the file is older than what sled holds: the
    // next open applies none of them and keeps everything.
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert!(store.outbound(id(3)).unwrap().is_some());
    assert_eq!(store.log_state().size, 3);
}

#[tokio::test]
async fn older_records_after_the_newest_ones_end_the_journal() {
    // Records 1 to 3 as a store wrote them, and record 1 of another
    // group after them, as if left behind from an earlier round.
    let (journal, jid) = journal_of(3).await;
    let ends: Vec<usize> = records(&journal).iter().map(|r| r.1).collect();
    let mut file = journal[..ends[2]].to_vec();
    file.extend_from_slice(&journal[..ends[0]]);
    file.extend_from_slice(&[0; 64]);
    let dir = empty_store_with(&file, Some(&jid));
    let store = reopen(dir.path());
    assert_eq!(store.log_state().size, 3);
    assert!(store.outbound(id(3)).unwrap().is_some());
}

#[tokio::test]
async fn the_journal_of_another_database_is_not_applied() {
    let (journal, _) = journal_of(2).await;
    // Same numbers, another database: its own journal id.
    let dir = empty_store_with(&journal, None);
    let store = reopen(dir.path());
    assert!(store.outbound(id(1)).unwrap().is_none());
    assert_eq!(store.log_state().size, 0);
}

#[tokio::test]
async fn past_its_limit_the_journal_hands_a_group_to_a_full_flush_and_starts_again() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    // Any record fills it: every other group goes to sled in a
    // transaction with a full flush, which empties the journal.
    store
        .status
        .journal_limit
        .store(1, std::sync::atomic::Ordering::SeqCst);
    submit(&store, 1).await;
    assert_eq!(numbers(dir.path()), vec![1]);
    submit(&store, 2).await;
    assert_eq!(
        numbers(dir.path()),
        vec![1],
        "group 2 went to sled in a transaction, not to the journal"
    );
    submit(&store, 3).await;
    assert_eq!(
        numbers(dir.path()),
        vec![3],
        "after the full flush, from the front"
    );
    let held = store
        .trees()
        .unwrap()
        .meta
        .get(crate::store::journal::SEQ_KEY)
        .unwrap();
    assert_eq!(held.as_deref(), Some(&3u64.to_be_bytes()[..]));
    submit(&store, 4).await;
    store.close().unwrap();
    drop(store);
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    for n in 1..=4 {
        assert!(store.outbound(id(n)).unwrap().is_some(), "message {n}");
    }
    assert_eq!(store.log_state().size, 4);
}

/// A submission alone is a group the writer answers before it applies it
/// (see `writer`): its journal record is synced, so it is acknowledged, and
/// sled failing on it afterwards breaks the writer for what comes next.
/// (Before the writer answered small groups first, the submission itself
/// got the error; what the test protects is the same: nothing acknowledged
/// is lost, a broken writer refuses later work, the next open completes
/// the group.)
#[tokio::test]
async fn a_group_sled_fails_to_apply_is_completed_from_the_journal_at_the_next_open() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    submit(&store, 1).await;
    // Group 1 is answered before its apply: a read of it waits for the
    // apply, so the failure below is group 2's.
    assert!(store.outbound(id(1)).unwrap().is_some());
    let fail = |on: bool| {
        store
            .status
            .fail_apply
            .store(on, std::sync::atomic::Ordering::SeqCst)
    };
    fail(true);
    // Acknowledged: the journal holds it.
    submit(&store, 2).await;
    // A read of what it wrote waits for its apply, which fails after the
    // first write: sled holds a part of group 2.
    store.outbound(id(2)).unwrap();
    fail(false);
    // Broken: nothing more is taken, not even what would apply now.
    let (record, deliveries) = outbound(3);
    let err = store
        .submit(record, deliveries, None, vec![about(3, Event::Submitted)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("restarted"), "{err}");
    assert_eq!(numbers(dir.path()), vec![1, 2], "group 3 was not journaled");
    store.close().unwrap();
    drop(store);
    // The journal kept group 2: the next open applies all of it.
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    let out = store.outbound(id(2)).unwrap().expect("message 2 is whole");
    assert_eq!(store.parcel(id(2), &out.parcel).unwrap(), Some(parcel(2)));
    assert_eq!(store.deliveries_of(id(2)).unwrap().len(), 2);
    assert!(store.outbound(id(3)).unwrap().is_none());
    assert_eq!(store.log_state().size, 2);
    // And takes new work again, numbered after it.
    submit(&store, 3).await;
    let events: Vec<_> = entries(&store).iter().map(|e| (e.index, e.event)).collect();
    assert_eq!(
        events,
        vec![
            (0, Event::Submitted),
            (1, Event::Submitted),
            (2, Event::Submitted)
        ]
    );
}

#[tokio::test]
async fn a_replay_cut_short_part_way_through_a_group_is_completed_at_the_next_open() {
    let (journal, jid) = journal_of(3).await;
    let dir = empty_store_with(&journal, Some(&jid));
    // A submission is seven writes: the second group fails after three of
    // its writes are in sled, as a crash there would leave it.
    fail_replay::after(Some(10));
    let refused = Store::open(dir.path(), Durability::ProcessCrash);
    fail_replay::after(None);
    let Err(e) = refused else {
        panic!("the open went through the injected failure")
    };
    assert!(e.to_string().contains("failure injected"), "{e}");
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    for n in 1..=3 {
        assert!(store.outbound(id(n)).unwrap().is_some(), "message {n}");
        assert_eq!(store.deliveries_of(id(n)).unwrap().len(), 2);
    }
    assert_eq!(store.log_state().size, 3);
    store.close().unwrap();
    drop(store);
    let report = retry(|| crate::store::verify_log(dir.path()));
    assert_eq!(report.entries, 3);
    assert_eq!(
        report.recovered, 0,
        "the open applied what the journal held"
    );
}

#[tokio::test]
async fn a_rewound_store_applies_its_whole_journal_again_at_the_next_open() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::PowerLoss).unwrap();
    for n in 1..=3 {
        submit(&store, n).await;
    }
    store.close().unwrap();
    drop(store);
    let rewound = retry(|| crate::store::rewind_journal(dir.path()));
    let journal = std::fs::read(dir.path().join(JOURNAL)).unwrap();
    assert_eq!(rewound.groups, 3);
    assert_eq!(rewound.bytes, records(&journal)[2].1 as u64);
    let report = retry(|| crate::store::verify_log(dir.path()));
    assert_eq!(report.recovered, 3, "every record applied again");
    assert_eq!(report.entries, 3);
    let store = reopen(dir.path());
    for n in 1..=3 {
        assert_eq!(store.deliveries_of(id(n)).unwrap().len(), 2);
    }
}
