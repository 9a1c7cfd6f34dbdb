//! Free space: reading it ([`FreeSpace`], [`StatVfs`]), the reserve new
//! work may not eat into (checked by the writer before each batch, and by
//! [`Store::room_for`] before a body file is written), and [`Room`], the
//! bytes claimed by body files being written.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::writer::Writer;
use super::{Status, Store, StoreError};

/// Reads how much space is free for the relay on a directory's filesystem.
pub trait FreeSpace: Send + Sync + std::fmt::Debug {
    /// Bytes an unprivileged writer may still use on the filesystem of `dir`.
    fn available(&self, dir: &Path) -> std::io::Result<u64>;
}

/// [`FreeSpace`] from `statvfs(2)`: `f_bavail × f_frsize`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatVfs;

impl FreeSpace for StatVfs {
    #[cfg(unix)]
    fn available(&self, dir: &Path) -> std::io::Result<u64> {
        let s = rustix::fs::statvfs(dir)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }

    #[cfg(not(unix))]
    fn available(&self, _dir: &Path) -> std::io::Result<u64> {
        Err(std::io::Error::other(
            "free space is only read on Unix; the reserve is not enforced here",
        ))
    }
}

/// The default reserve, `[storage] min_free_mb`.
pub const DEFAULT_MIN_FREE_MB: u64 = 256;

pub(super) const MIB: u64 = 1024 * 1024;

/// Bytes claimed for a body file being written; released when dropped.
pub(super) struct Room<'a> {
    status: &'a Status,
    len: u64,
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.status.writing.fetch_sub(self.len, Ordering::SeqCst);
    }
}

impl Store {
    /// Changes the free-space reserve while the store runs (the next batch
    /// is checked against it).
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.status.min_free.store(bytes, Ordering::SeqCst);
    }

    /// Claims `len` bytes for a body file about to be written, or refuses
    /// new work as the writer does when the free space, less the reserve and
    /// the body files being written, does not hold them.
    pub(super) fn room_for(&self, len: u64) -> Result<Room<'_>, StoreError> {
        let s = &*self.status;
        let writing = s
            .writing
            .fetch_add(len, Ordering::SeqCst)
            .saturating_add(len);
        let room = Room { status: s, len };
        let reserve = s.min_free.load(Ordering::SeqCst);
        if reserve == 0 {
            return Ok(room);
        }
        match self.space.available(&self.path) {
            Ok(free) if free < reserve.saturating_add(writing) => {
                // Reported as the free space that would be left.
                let left = free.saturating_sub(writing);
                tracing::warn!(
                    data_dir = %self.path.display(),
                    free_mib = free / MIB,
                    body_bytes = len,
                    reserve_mib = reserve / MIB,
                    "refusing a large body: it would leave less than the reserve free"
                );
                Err(StoreError::LowSpace {
                    path: self.path.clone(),
                    free_mib: left / MIB,
                    reserve_mib: reserve / MIB,
                })
            }
            // Unreadable: the writer logs it and does not check either.
            _ => Ok(room),
        }
    }
}

impl Writer {
    /// Reads the free space; below the reserve, the error new work gets
    /// (and [`Store::health`] reports it). An unreadable free space is
    /// logged and does not stop anything.
    pub(super) fn check_space(&self) -> Option<StoreError> {
        let reserve = self.status.min_free.load(Ordering::SeqCst);
        if reserve == 0 {
            self.status.low_free.store(u64::MAX, Ordering::SeqCst);
            return None;
        }
        match self.space.available(&self.path) {
            Ok(free) if free < reserve => {
                let was = self.status.low_free.swap(free, Ordering::SeqCst);
                if was == u64::MAX {
                    tracing::warn!(
                        data_dir = %self.path.display(),
                        free_mib = free / MIB,
                        reserve_mib = reserve / MIB,
                        "free space below the reserve: refusing new work until space is freed"
                    );
                }
                Some(StoreError::LowSpace {
                    path: self.path.clone(),
                    free_mib: free / MIB,
                    reserve_mib: reserve / MIB,
                })
            }
            Ok(free) => {
                let was = self.status.low_free.swap(u64::MAX, Ordering::SeqCst);
                if was != u64::MAX {
                    tracing::info!(
                        data_dir = %self.path.display(),
                        free_mib = free / MIB,
                        "free space above the reserve again: accepting new work"
                    );
                }
                None
            }
            Err(e) => {
                tracing::warn!(
                    data_dir = %self.path.display(),
                    error = %e,
                    "cannot read the free space of the data dir; the reserve is not checked"
                );
                None
            }
        }
    }
}
