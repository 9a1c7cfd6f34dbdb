//! The log key in force: the relay signs its checkpoints and cosignatures
//! with the key the roster in force lists as its `log_key`.
//!
//! `kurir-certs authority rotate-log-key` writes a new `log.key` and keeps
//! the old one as `log.key.<N>`. Until a roster that lists the new key is in
//! force, the relay keeps signing with the old one (found among the held
//! files); when such a roster is put in force (at start, on SIGHUP, or from
//! a peer), it switches to the new key. The log goes on: the witnesses
//! check the new key's checkpoints for consistency with what they cosigned
//! under the old one ([`crate::core::witness::witness_any`]).

use std::path::Path;

use kurir_certs::Roster;
use kurir_certs::authority::layout::LOG_KEY;
use kurir_proto::ed25519_dalek::SigningKey;
use tracing::{error, info};

use super::{Authority, NodeError};

/// The log keys held in the authority directory: `log.key` first, then
/// every `log.key.<N>`.
pub(super) fn held(dir: &Path) -> Result<Vec<SigningKey>, NodeError> {
    let read = |p: &Path| {
        kurir_certs::keys::read_secret_key(p).map_err(|e| NodeError::MessageKey(e.to_string()))
    };
    let mut keys = vec![read(&dir.join(LOG_KEY))?];
    let entries = std::fs::read_dir(dir)
        .map_err(|e| NodeError::MessageKey(format!("cannot list {}: {e}", dir.display())))?;
    let prefix = format!("{LOG_KEY}.");
    let mut earlier: Vec<(u64, std::path::PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    earlier.sort();
    for (_, path) in earlier.iter().rev() {
        keys.push(read(path)?);
    }
    Ok(keys)
}

/// Of the `held` keys, the one the roster lists as `me`'s log key.
pub(super) fn pick(
    held: &[SigningKey],
    roster: &Roster,
    me: &kurir_proto::AuthorityId,
) -> Option<SigningKey> {
    let listed = roster.log_key(me)?;
    held.iter().find(|k| k.verifying_key() == listed).cloned()
}

/// At start, when the relay does not hold the key the roster lists: an
/// earlier key of `me` the roster still lets sign at `now`, if held. The
/// relay then starts with it (and says so) rather than not at all.
pub(super) fn pick_earlier(
    held: &[SigningKey],
    roster: &Roster,
    me: &kurir_proto::AuthorityId,
    now: kurir_proto::Timestamp,
) -> Option<SigningKey> {
    let valid = roster.log_keys_at(me, now);
    held.iter()
        .find(|k| valid.contains(&k.verifying_key()))
        .cloned()
}

impl Authority {
    /// The key that signs checkpoints and cosignatures now.
    pub(super) fn log_key(&self) -> SigningKey {
        match self.log_key.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// While the relay signs with an earlier log key (the roster in force
    /// lists a newer one the relay does not hold): that key's
    /// `valid_until` in the roster in force. `None` when it signs with the
    /// key the roster lists.
    pub(super) fn log_key_before(&self) -> Option<kurir_proto::Timestamp> {
        let roster = self.roster();
        let current = self.log_key().verifying_key();
        if roster.log_key(&self.me) == Some(current) {
            return None;
        }
        roster
            .member(&self.me)?
            .log_keys_before
            .iter()
            .find(|k| k.key == current)
            .map(|k| k.valid_until)
    }

    fn set_log_key(&self, key: SigningKey) {
        match self.log_key.write() {
            Ok(mut slot) => *slot = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }

    /// After `roster` was put in force: if it lists another log key for
    /// this relay, signs with that key from now on (read from `dir`). If
    /// the relay does not hold it, the key in force stays and the error is
    /// logged: peers then refuse its new checkpoints until `log.key` is put
    /// in place and the relay restarted or sent SIGHUP again.
    pub(super) fn follow_log_key(&self, roster: &Roster, dir: &Path) {
        let Some(listed) = roster.log_key(&self.me) else {
            return;
        };
        let current = self.log_key();
        if current.verifying_key() == listed {
            return;
        }
        match held(dir).map(|keys| pick(&keys, roster, &self.me)) {
            Ok(Some(key)) => {
                info!(
                    roster_version = roster.version(),
                    old = %kurir_proto::KeyId::of(&current.verifying_key()),
                    new = %kurir_proto::KeyId::of(&listed),
                    "the roster in force lists a new log key: checkpoints and cosignatures are \
                     signed with it from now on"
                );
                self.set_log_key(key);
            }
            Ok(None) => error!(
                roster_version = roster.version(),
                listed = %kurir_proto::KeyId::of(&listed),
                dir = %dir.display(),
                "the roster in force lists a log key this relay does not hold: copy the new \
                 log.key (from `kurir-certs authority rotate-log-key`) to the authority directory \
                 and send SIGHUP; the old key signs until then"
            ),
            Err(e) => error!(error = %e, "cannot read the log keys; the log key in force stays"),
        }
    }
}
