//! The data directory is private to the relay's user. It holds every
//! message body and, in the same directory (in the records, or sled's
//! `body_keys` tree for records of format 2 and older), the keys that
//! decrypt them, so at-rest encryption protects nothing from a local user
//! who can read it.
//!
//! On Unix, before sled opens anything:
//!
//! - the process's file-creation mask gets `go-rwx` added (`umask 077` or
//!   stricter), so every file and directory created from then on is private
//!   to the relay's user: sled's `db`, `conf`, `blobs/` and the snapshots
//!   it writes while running, the `last-checkpoint.note` marker, body files,
//!   an audit export. The mask is process-wide, and so meant: the relay
//!   process writes nothing that others should read;
//! - a data directory that does not exist is created with mode 0700 (and
//!   the store's own files are created 0600 explicitly, see `at_rest`);
//! - an existing one is refused when it, or anything in it, grants any
//!   permission to the group or to others: [`StoreError::NotPrivate`] names
//!   the path and says to run `chmod -R go-rwx DIR`. Symbolic links inside
//!   are not followed.
//!
//! On other platforms nothing is checked or changed: the data directory's
//! access is the operator's to set (docs/CONFIG.md says so).

use std::path::Path;

use super::StoreError;

/// The permission bits of the group and of others.
#[cfg(unix)]
const GROUP_OTHER: u32 = 0o077;

/// Makes files created from now on private, creates `dir` private if it
/// does not exist, and refuses a `dir` that is not private.
#[cfg(unix)]
pub(super) fn prepare(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;

    restrict_umask();
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::DataDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    check(dir)
}

/// Not on Unix: nothing to check or change here.
#[cfg(not(unix))]
pub(super) fn prepare(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Adds `go-rwx` to the process's file-creation mask (keeping anything
/// stricter it has).
#[cfg(unix)]
pub(super) fn restrict_umask() {
    use rustix::fs::Mode;
    use rustix::process::umask;

    let private = Mode::from_bits_truncate(GROUP_OTHER);
    let before = umask(private);
    if !before.contains(private) {
        umask(before | private);
    }
}

/// Refuses `dir`, or anything in it, with a permission for the group or
/// others.
#[cfg(unix)]
pub(super) fn check(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;

    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::DataDir { path, source }
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    let mut pending = vec![(dir.to_owned(), meta)];
    while let Some((path, meta)) = pending.pop() {
        let mode = meta.permissions().mode();
        if mode & GROUP_OTHER != 0 {
            return Err(StoreError::NotPrivate {
                path,
                mode: mode & 0o7777,
                data_dir: dir.to_owned(),
            });
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io(&path))? {
                let entry = entry.map_err(io(&path))?;
                let meta = entry.metadata().map_err(io(&entry.path()))?;
                if !meta.file_type().is_symlink() {
                    pending.push((entry.path(), meta));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_new_data_dir_is_created_private_and_new_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        // What is created from now on is private (the mask is the process's).
        std::fs::write(dir.join("f"), b"x").unwrap();
        std::fs::create_dir(dir.join("d")).unwrap();
        assert_eq!(mode(&dir.join("f")), 0o600);
        assert_eq!(mode(&dir.join("d")), 0o700);
        check(&dir).unwrap();
    }

    #[test]
    fn a_data_dir_or_file_others_may_read_is_refused_with_how_to_fix_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        prepare(&dir).unwrap();
        std::fs::create_dir(dir.join("bodies")).unwrap();
        std::fs::write(dir.join("bodies").join("b"), b"x").unwrap();
        check(&dir).unwrap();

        chmod(&dir.join("bodies").join("b"), 0o644);
        let err = prepare(&dir).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, StoreError::NotPrivate { path, mode: 0o644, .. } if path.ends_with("bodies/b")),
            "{err:?}"
        );
        assert!(text.contains("mode 0644"), "{text}");
        assert!(
            text.contains(&format!("chmod -R go-rwx {}", dir.display())),
            "{text}"
        );
        chmod(&dir.join("bodies").join("b"), 0o600);

        chmod(&dir, 0o750);
        let err = check(&dir).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotPrivate { path, mode: 0o750, .. } if path == &dir),
            "{err:?}"
        );
        chmod(&dir, 0o701);
        assert!(check(&dir).is_err(), "any bit for others is refused");
        chmod(&dir, 0o700);
        check(&dir).unwrap();
    }

    #[test]
    fn symbolic_links_inside_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        prepare(&dir).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, b"x").unwrap();
        chmod(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        check(&dir).unwrap();
    }
}
