//! The read barrier. The writer answers a small group that the commit
//! journal holds before it applies the group's writes to sled (see
//! `writer`): the group is durable once its journal record is synced, and
//! the apply then overlaps with what the caller does next. sled shows
//! nothing of the group until the apply, so a caller that reads what it
//! was just told is stored must wait for it.
//!
//! From just before those answers until the apply is done, the trees the
//! group writes are *unshown* (`Status::unshown`, a mask of
//! [`TreeId::bit`]). Every read of sled by a [`Store`] method goes through
//! [`Store::tree`] or [`Store::trees_of`] (the tests' through
//! `Store::trees`), which wait
//! until the trees they read are shown again. Waiting per tree keeps reads
//! of the trees the group does not write from waiting at all: `status`
//! reads `receipt_proofs` right after the `deliveries` a delivery's group
//! has just written, and a wait there would give back what answering first
//! gains. A group's trees are shown all at once, after its last write, so
//! a reader that waited for one of them finds the whole group in sled.
//!
//! The wait blocks the calling thread on a condvar, also on the async
//! paths that read the store: the writer applies the group right after
//! sending the answers, which takes microseconds (tens of µs a write).
//! Only a writer stuck in sled would hold a reader longer, so the wait is
//! bounded by [`StoreOptions::flush_timeout`](super::StoreOptions), after
//! which the read fails with [`StoreError::NotResponding`] as a commit
//! does, and [`Store::health`] reports the store unhealthy.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::trees::{TreeId, Trees};
use super::{Status, Store, StoreError};

impl Status {
    /// Marks the trees of `mask` unshown: a group that writes them is
    /// about to be answered before it is applied.
    pub(super) fn hide(&self, mask: u32) {
        let mut unshown = self.unshown.lock().unwrap_or_else(PoisonError::into_inner);
        *unshown |= mask;
    }

    /// Shows every tree again, once the group is applied (or its apply
    /// failed, which breaks the writer: readers then see what sled holds,
    /// as they did before the writer answered first), and wakes the
    /// readers waiting for it.
    pub(super) fn show(&self) {
        let mut unshown = self.unshown.lock().unwrap_or_else(PoisonError::into_inner);
        *unshown = 0;
        drop(unshown);
        self.shown_cv.notify_all();
    }

    /// Waits until no tree of `mask` is unshown, for at most `bound`;
    /// whether none is.
    fn wait_shown(&self, mask: u32, bound: Duration) -> bool {
        let unshown = self.unshown.lock().unwrap_or_else(PoisonError::into_inner);
        if *unshown & mask == 0 {
            return true;
        }
        #[cfg(test)]
        self.unshown_waits.fetch_add(1, Ordering::SeqCst);
        let (unshown, _) = self
            .shown_cv
            .wait_timeout_while(unshown, bound, |u| *u & mask != 0)
            .unwrap_or_else(PoisonError::into_inner);
        *unshown & mask == 0
    }
}

impl Store {
    /// sled's tree `id`, once every group answered so far that writes it
    /// is in sled.
    pub(super) fn tree(&self, id: TreeId) -> Result<&sled::Tree, StoreError> {
        let trees = self.trees_of(&[id])?;
        Ok(trees.all()[id as usize])
    }

    /// sled's trees, to read those of `ids` (and only those), once every
    /// group answered so far that writes one of them is in sled.
    pub(super) fn trees_of(&self, ids: &[TreeId]) -> Result<&Trees, StoreError> {
        self.shown(ids.iter().fold(0, |mask, id| mask | id.bit()))
    }

    /// Tests: sled's trees, to read any of them, once every group answered
    /// so far is in sled.
    #[cfg(test)]
    pub(super) fn trees(&self) -> Result<&Trees, StoreError> {
        self.shown(u32::MAX)
    }

    /// sled's `checkpoints` tree, without a wait: no group commit writes
    /// it (the writer writes a checkpoint itself, after it applied every
    /// group before it, and answers once it is flushed).
    pub(super) fn checkpoint_tree(&self) -> &sled::Tree {
        &self.sled_trees.checkpoints
    }

    /// sled's trees once none of `mask` is unshown, or
    /// [`StoreError::NotResponding`] after the store's bound.
    fn shown(&self, mask: u32) -> Result<&Trees, StoreError> {
        if self.status.wait_shown(mask, self.flush_timeout) {
            Ok(&self.sled_trees)
        } else {
            self.status.stalled.store(true, Ordering::SeqCst);
            Err(self.not_responding())
        }
    }
}
