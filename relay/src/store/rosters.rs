//! The rosters this relay accepted and the authority it belongs to, in
//! `meta`: the roster in force, every roster accepted before it (the relay
//! refuses older ones), and the authority. A copy of the roster in force is
//! kept beside the database ([`ROSTER_COPY`]) for `kurir-relay roster
//! install`, which cannot open the database of a running relay; the relay
//! itself never reads it.

use std::path::{Path, PathBuf};

use kurir_proto::AuthorityId;
use kurir_proto::audit::Entry;

use super::keys::{AUTHORITY, ROSTER, ROSTER_HISTORY, roster_history_key};
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError};

/// The copy of the roster in force beside the database.
pub const ROSTER_COPY: &str = "roster-in-force.cbor";

/// The copy of the roster in force that the relay keeps beside its
/// database in `data_dir` ([`ROSTER_COPY`]), if there is one. A copy for
/// tools: verify it before trusting it.
pub fn roster_copy(data_dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(data_dir.join(ROSTER_COPY)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Store {
    /// Records the roster now in force (the relay refuses older ones later)
    /// and the authority this store belongs to, then the copy beside the
    /// database ([`Store::keep_roster_copy`]; a copy that cannot be written
    /// is logged, the roster is stored all the same).
    pub async fn set_roster(
        &self,
        authority: &AuthorityId,
        bytes: Vec<u8>,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Roster(bytes.clone(), authority.to_string()), audit)
            .await?;
        if let Err(e) = self.keep_roster_copy(&bytes) {
            tracing::warn!(error = %e, "cannot keep the copy of the roster in force beside the database (`kurir-relay roster install` reads it)");
        }
        Ok(())
    }

    /// Writes `bytes` (the roster in force) beside the database unless the
    /// copy there is already the same: to a temporary file, synced,
    /// renamed.
    pub fn keep_roster_copy(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path.join(ROSTER_COPY);
        if std::fs::read(&path).is_ok_and(|b| b == bytes) {
            return Ok(());
        }
        let tmp: PathBuf = self.path.join(format!("{ROSTER_COPY}.tmp"));
        let err = |source| StoreError::Sync {
            path: path.clone(),
            source,
        };
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(bytes).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// The authority recorded with the roster.
    pub fn authority(&self) -> Result<Option<AuthorityId>, StoreError> {
        let Some(v) = self
            .tree(TreeId::Meta)?
            .get(AUTHORITY)
            .map_err(|e| self.sled(e))?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&v).into_owned();
        AuthorityId::parse(&text)
            .map(Some)
            .map_err(|e| self.corrupt("meta", e.to_string()))
    }

    /// Every roster recorded with [`Store::set_roster`] (signed file bytes,
    /// in no particular order), the current one included.
    pub fn rosters(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut all = self
            .tree(TreeId::Meta)?
            .scan_prefix(ROSTER_HISTORY)
            .map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| self.sled(e)))
            .collect::<Result<Vec<_>, _>>()?;
        // A database from before the history was kept.
        if let Some(current) = self.roster()?
            && !all.contains(&current)
        {
            all.push(current);
        }
        Ok(all)
    }

    /// The last roster recorded with [`Store::set_roster`].
    pub fn roster(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(TreeId::Meta)?
            .get(ROSTER)
            .map_err(|e| self.sled(e))?
            .map(|v| v.to_vec()))
    }
}

impl Writer {
    /// [`Op::Roster`]: the roster in force, kept in the history too, and
    /// the authority.
    pub(super) fn set_roster(
        &self,
        bytes: Vec<u8>,
        authority: String,
        audit: &mut [Entry],
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        pending.put(TreeId::Meta, roster_history_key(&bytes), bytes.clone());
        pending.put(TreeId::Meta, ROSTER.to_vec(), bytes);
        pending.put(TreeId::Meta, AUTHORITY.to_vec(), authority.into_bytes());
        self.append(audit, pending);
        Ok(OpResult::Done)
    }
}
