//! The rosters this relay accepted and the authority it belongs to, in
//! `meta`: the roster in force, every roster accepted before it (the relay
//! refuses older ones), and the authority.

use kurir_proto::AuthorityId;
use kurir_proto::audit::Entry;

use super::keys::{AUTHORITY, ROSTER, ROSTER_HISTORY, roster_history_key};
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError};

impl Store {
    /// Records the roster now in force (the relay refuses older ones later)
    /// and the authority this store belongs to.
    pub async fn set_roster(
        &self,
        authority: &AuthorityId,
        bytes: Vec<u8>,
        audit: Vec<Entry>,
    ) -> Result<(), StoreError> {
        self.submit_op(Op::Roster(bytes, authority.to_string()), audit)
            .await
            .map(drop)
    }

    /// The authority recorded with the roster.
    pub fn authority(&self) -> Result<Option<AuthorityId>, StoreError> {
        let Some(v) = self.trees.meta.get(AUTHORITY).map_err(|e| self.sled(e))? else {
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
            .trees
            .meta
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
            .trees
            .meta
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
