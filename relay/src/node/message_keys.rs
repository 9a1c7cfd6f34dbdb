//! The message keys in force: the relay signs envelopes and receipts with
//! the keys of its authority's `message-keys/` directory that the roster in
//! force lists, each with the validity (and `revoked_at`) that roster gives
//! it ([`MessageKeys`]).
//!
//! The set is rebuilt while the relay runs, like the log key
//! (`node::log_key`): whenever a roster is put in force (file, SIGHUP or
//! from a peer) and on SIGHUP, the directory is read again and matched
//! against the roster in force. So a key added with `kurir-certs authority
//! rotate-key` signs as soon as a roster listing it is in force, and a key
//! the roster revokes stops signing at its `revoked_at`, with no restart.
//! A key file the roster does not list for this authority, or that cannot
//! be read, is skipped with a warning. What goes in force is decided by
//! [`keys::choose`] (pure, in the core): when no key read would be valid
//! now, the keys in force stay, as the roster in force lists them, and the
//! error is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kurir_certs::Roster;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, Timestamp};
use tracing::{error, info, warn};

use super::{Authority, NodeError};
use crate::core::keys::{self, Choice, HeldKey, KeyWindow, MessageKeys};

/// The authority's `message-keys/` directory.
pub(super) fn dir_of(authority_dir: &Path) -> PathBuf {
    authority_dir.join(kurir_certs::authority::layout::MESSAGE_KEYS)
}

/// What reading the directory found.
pub(super) struct Scan {
    /// The keys the roster lists for `me`.
    pub(super) held: Vec<HeldKey>,
    /// Files skipped, with the reason.
    pub(super) skipped: Vec<(PathBuf, String)>,
}

/// Reads every `*.key` in `dir` and keeps the keys `roster` lists for `me`.
/// Fails only when the directory cannot be listed.
pub(super) fn scan(dir: &Path, me: &AuthorityId, roster: &Roster) -> Result<Scan, NodeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        NodeError::MessageKey(format!(
            "cannot read message keys in {}: {e}",
            dir.display()
        ))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("key"))
        .collect();
    paths.sort();
    let mut out = Scan {
        held: Vec::new(),
        skipped: Vec::new(),
    };
    for path in paths {
        let key = match kurir_certs::keys::read_secret_key(&path) {
            Ok(key) => key,
            Err(e) => {
                out.skipped.push((path, e.to_string()));
                continue;
            }
        };
        let kid = KeyId::of(&key.verifying_key());
        match roster.lookup(&kid) {
            Some(listed) if &listed.authority == me => out.held.push(HeldKey { key, listed }),
            Some(listed) => out.skipped.push((
                path,
                format!(
                    "the roster (version {}) lists key {kid} for {}, not for {me}",
                    roster.version(),
                    listed.authority
                ),
            )),
            None => out.skipped.push((
                path,
                format!(
                    "the roster (version {}) does not list key {kid}",
                    roster.version()
                ),
            )),
        }
    }
    Ok(out)
}

fn describe(windows: &[KeyWindow]) -> String {
    if windows.is_empty() {
        return "none".to_owned();
    }
    windows
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Authority {
    /// A snapshot of the message keys in force.
    pub(super) fn message_keys(&self) -> Arc<MessageKeys> {
        match self.message_keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_message_keys(&self, keys: Arc<MessageKeys>) {
        match self.message_keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// Reads `message-keys/` under `authority_dir` again and matches it
    /// against `roster` (the roster in force); [`keys::choose`] decides
    /// what goes in force, and this logs it. Returns the windows of the
    /// keys in force afterwards.
    pub(super) fn follow_message_keys(
        &self,
        roster: &Roster,
        authority_dir: &Path,
        now: Timestamp,
    ) -> Vec<KeyWindow> {
        let dir = dir_of(authority_dir);
        let current = self.message_keys().relisted(roster);
        let read = match scan(&dir, &self.me, roster) {
            Ok(scan) => {
                for (path, reason) in &scan.skipped {
                    warn!(
                        file = %path.display(),
                        %reason,
                        "a message key file is not used: it does not match the roster in force \
                         (a key from `kurir-certs authority rotate-key` signs once a roster that \
                         lists it is installed)"
                    );
                }
                Some(MessageKeys::new(self.me.clone(), scan.held))
            }
            Err(e) => {
                error!(error = %e, "cannot read the message keys; the keys in force stay");
                None
            }
        };
        let was = current.windows();
        let keys = match keys::choose(current, read, now) {
            Choice::Read {
                keys,
                changed,
                ends_soon,
            } => {
                if changed {
                    info!(
                        roster_version = roster.version(),
                        was = %describe(&was),
                        now = %describe(&keys.windows()),
                        "message keys in force changed: envelopes and receipts are signed with \
                         the newest key valid at each moment"
                    );
                }
                if let Some(end) = ends_soon {
                    warn!(
                        %end,
                        "the message keys this relay holds stop being valid at {end} and no \
                         later key is held: rotate the key (kurir-certs authority rotate-key) \
                         and install a roster that lists the new key before then"
                    );
                }
                keys
            }
            Choice::Kept {
                keys,
                refused,
                signs_nothing,
            } => {
                if let Some(e) = refused {
                    error!(
                        roster_version = roster.version(),
                        dir = %dir.display(),
                        error = %e,
                        in_force = %describe(&was),
                        "no message key file would be valid now against the roster in force: \
                         the keys in force stay, as that roster lists them"
                    );
                }
                if let Some(e) = signs_nothing {
                    error!(
                        error = %e,
                        "the roster in force leaves this relay no valid message key: envelopes \
                         and receipts are refused until a key it lists is installed \
                         (kurir-certs authority rotate-key, then a roster that lists the new key)"
                    );
                }
                keys
            }
        };
        let windows = keys.windows();
        self.set_message_keys(Arc::new(keys));
        windows
    }
}
