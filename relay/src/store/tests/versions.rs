//! The store's format version: recorded in a new store, written once after
//! an older store's upgrades, and a newer format refused with nothing in
//! the data directory changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kurir_proto::audit::Event;

use super::*;
use crate::store::format::{FORMAT_FILE, FORMAT_KEY, WRITTEN_BY_KEY};
use crate::store::trees::open_sled;
use crate::store::{FORMAT_VERSION, StoreError};

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Sets (or, with `None`, removes) the format recorded in `meta` of the
/// closed store in `dir`, as another kurir-relay would have left it.
fn mark(dir: &Path, version: Option<u32>, written_by: Option<&str>) {
    let db = retry(|| open_sled(dir));
    let meta = db.open_tree("meta").unwrap();
    match version {
        Some(v) => meta.insert(FORMAT_KEY, &v.to_be_bytes()[..]).unwrap(),
        None => meta.remove(FORMAT_KEY).unwrap(),
    };
    match written_by {
        Some(w) => meta.insert(WRITTEN_BY_KEY, w.as_bytes()).unwrap(),
        None => meta.remove(WRITTEN_BY_KEY).unwrap(),
    };
    db.flush().unwrap();
}

/// Writes (or, with `None`, removes) the format file beside the database.
fn mark_file(dir: &Path, text: Option<&str>) {
    let path = dir.join(FORMAT_FILE);
    match text {
        Some(t) => std::fs::write(path, t).unwrap(),
        None => std::fs::remove_file(path).unwrap(),
    }
}

/// A store with a message received and its audit entry, closed.
async fn store_with_data(dir: &Path) {
    let store = Store::open(dir, Durability::ProcessCrash).unwrap();
    store
        .accept_inbound(inbox_record(1), None, received(1), signer(0))
        .await
        .unwrap();
    store.close().unwrap();
}

#[tokio::test]
async fn a_new_store_records_the_current_format() {
    let dir = super::tempdir();
    let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
    assert_eq!(store.format_version().unwrap(), Some(FORMAT_VERSION));
    let written_by = store
        .trees()
        .unwrap()
        .meta
        .get(WRITTEN_BY_KEY)
        .unwrap()
        .unwrap();
    assert_eq!(&written_by[..], env!("CARGO_PKG_VERSION").as_bytes());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
        format!(
            "kurir-relay store format {FORMAT_VERSION}\nwritten by kurir-relay {}\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    store.close().unwrap();
    drop(store);
    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.format_version().unwrap(), Some(FORMAT_VERSION));
}

#[tokio::test]
async fn an_unversioned_store_is_upgraded_and_marked_once() {
    let dir = super::tempdir();
    store_with_data(dir.path()).await;
    mark(dir.path(), None, None);
    mark_file(dir.path(), None);

    let store = retry(|| Store::open(dir.path(), Durability::ProcessCrash));
    assert_eq!(store.format_version().unwrap(), Some(FORMAT_VERSION));
    assert!(store.inbox(id(1)).unwrap().is_some(), "the data is kept");
    assert_eq!(entries(&store).len(), 1);
    assert!(dir.path().join(FORMAT_FILE).exists());
    store.close().unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_store_of_a_newer_format_is_refused_and_left_unchanged() {
    let dir = super::tempdir();
    store_with_data(dir.path()).await;
    let newer = FORMAT_VERSION + 1;
    // As a kurir-relay 9.8.7 of format `newer` leaves it.
    mark(dir.path(), Some(newer), Some("9.8.7"));
    mark_file(
        dir.path(),
        Some(&format!(
            "kurir-relay store format {newer}\nwritten by kurir-relay 9.8.7\n"
        )),
    );
    await_released(dir.path());
    let before = snapshot(dir.path());
    assert!(before.keys().any(|p| p.ends_with("db")), "{before:?}");

    for durability in [Durability::PowerLoss, Durability::ProcessCrash] {
        let err = refused(dir.path(), durability);
        assert!(
            matches!(&err, StoreError::TooNew { found, known, .. }
                if *found == newer && *known == FORMAT_VERSION),
            "{err:?}"
        );
        let text = err.to_string();
        for part in [
            &dir.path().display().to_string(),
            &format!("format {newer}"),
            &format!("format {FORMAT_VERSION} and older"),
            &format!("kurir-relay {}", env!("CARGO_PKG_VERSION")),
            "run a kurir-relay of version ≥ 9.8.7",
            "restore a backup of the data directory made by this version",
        ] {
            assert!(text.contains(part), "{part:?} not in: {text}");
        }
        await_released(dir.path());
        assert!(snapshot(dir.path()) == before, "the data directory changed");
    }

    // The file alone is enough (whatever the database holds, sled does
    // not open it); without the version that wrote it, the message names
    // the format.
    mark(dir.path(), Some(FORMAT_VERSION), None);
    mark_file(
        dir.path(),
        Some(&format!("kurir-relay store format {newer}\n")),
    );
    await_released(dir.path());
    let before = snapshot(dir.path());
    let err = refused(dir.path(), Durability::ProcessCrash);
    assert!(
        err.to_string().contains(&format!(
            "run a kurir-relay that reads store format {newer}"
        )),
        "{err}"
    );
    assert!(snapshot(dir.path()) == before, "the data directory changed");

    // So is `meta` alone (a file lost or from an older backup): refused,
    // the database unchanged.
    mark(dir.path(), Some(newer), Some("9.8.7"));
    mark_file(dir.path(), None);
    await_released(dir.path());
    let db_before = std::fs::read(dir.path().join("db")).unwrap();
    let err = refused(dir.path(), Durability::ProcessCrash);
    assert!(
        matches!(err, StoreError::TooNew { found, .. } if found == newer),
        "{err:?}"
    );
    await_released(dir.path());
    assert!(std::fs::read(dir.path().join("db")).unwrap() == db_before);
    assert!(!dir.path().join(FORMAT_FILE).exists());
}

/// The error opening the store in `dir` fails with (once sled's lock of an
/// earlier handle is released).
fn refused(dir: &Path, durability: Durability) -> StoreError {
    for _ in 0..200 {
        match Store::open(dir, durability) {
            Err(e) if e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(25))
            }
            Err(e) => return e,
            Ok(_) => panic!("the store in {} was opened", dir.display()),
        }
    }
    panic!("the database lock was not released");
}

#[cfg(unix)]
/// Waits until no sled handle holds the database in `dir` (sled locks its
/// `db` file with `flock`, and lets go once its last write is done).
fn await_released(dir: &Path) {
    use rustix::fs::{FlockOperation, flock};
    let file = std::fs::File::open(dir.join("db")).unwrap();
    for _ in 0..200 {
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            flock(&file, FlockOperation::Unlock).unwrap();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the database lock was not released");
}

#[tokio::test]
async fn a_damaged_format_version_is_refused() {
    let dir = super::tempdir();
    store_with_data(dir.path()).await;
    {
        let db = retry(|| open_sled(dir.path()));
        let meta = db.open_tree("meta").unwrap();
        meta.insert(FORMAT_KEY, &[1u8][..]).unwrap();
        db.flush().unwrap();
    }
    let err = refused(dir.path(), Durability::ProcessCrash);
    assert!(
        matches!(&err, StoreError::Corrupt { tree: "meta", reason, .. } if reason.contains("format_version")),
        "{err:?}"
    );

    mark(dir.path(), Some(FORMAT_VERSION), None);
    mark_file(dir.path(), Some("kurir-relay store format one\n"));
    let err = refused(dir.path(), Durability::ProcessCrash);
    let text = err.to_string();
    assert!(
        text.contains(FORMAT_FILE) && text.contains("remove it to have the format read"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unversioned_store_is_not_taken_for_a_new_one() {
    // Data in any tree makes it format 0 (and so upgraded), not new.
    let dir = super::tempdir();
    {
        let store = Store::open(dir.path(), Durability::ProcessCrash).unwrap();
        store.audit(vec![entry(Event::Started)]).await.unwrap();
        store.close().unwrap();
    }
    mark(dir.path(), None, None);
    let db = retry(|| open_sled(dir.path()));
    assert_eq!(
        crate::store::format::check_format(dir.path(), &db).unwrap(),
        crate::store::format::Found::Format(0)
    );
    drop(db);
    let db = open_sled(&dir.path().join("fresh")).unwrap();
    assert_eq!(
        crate::store::format::check_format(dir.path(), &db).unwrap(),
        crate::store::format::Found::New
    );
}
