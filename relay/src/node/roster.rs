//! The roster in force while the relay runs: the configured roster file
//! read again on SIGHUP ([`crate::node::Node::reload_roster`]) and whenever
//! it changes (checked every `[roster] check_secs`), verified against the
//! roster in force, stored, and put in force in every part that reads it.
//!
//! A roster is put in force only if it passes [`Roster::accept_with`]
//! against the roster in force (k of n of its own keys, the old quorum
//! too when the key set changes, version only forward). It is stored
//! first (the roster, its place in the history and its `roster` audit
//! entry in one commit), then swapped in: the TLS verifier of incoming
//! connections, the dials (endpoints, CAs), the key lookups of envelopes,
//! receipts, checkpoints and cosignatures, the kinds and focal points, the
//! expiry gauges. What it changes is decided by [`crate::core::roster`]:
//! the connections of members removed are closed with their own code
//! ([`super::CLOSE_NOT_A_MEMBER`]), those of members reached elsewhere or
//! under another CA are closed and dialed again.
//!
//! A file older than the roster in force is behind, not an error: the
//! roster in force stays and a warning says so, once per change of the
//! file. Anything else refused is logged as an error, once per change of
//! the file (always on SIGHUP), and the roster in force stays.
//!
//! Between relays ([`roster_sync_loop`]): every checkpoint interval, and
//! at once after a roster is put in force, the relay tells each member its
//! roster version and fingerprint (`PeerRequest::Rosters`); a member that
//! holds newer rosters answers with them, oldest first, and each is
//! verified here against the roster in force, exactly as a file is, before
//! it is stored and put in force. A roster from a peer that does not
//! verify (forged, older) and a peer holding another roster of our version
//! are refused, logged as errors and counted (`kurir_roster_alarms_total`);
//! nothing of theirs is taken. A peer of an older build answers the
//! request as malformed: it is left alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kurir_certs::roster::CaDates;
use kurir_certs::{Accepted, Roster, RosterError, SignedRoster};
use tracing::{error, info, warn};

use kurir_proto::AuthorityId;
use kurir_proto::audit::serde_bytes_vec::Bytes;
use kurir_proto::audit::{MAX_ROSTER_CHAIN, PeerRequest, PeerResponse};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::debug;

use super::expiry::Expiry;
use super::links::Links;
use super::outbox::Deliveries;
use super::{Authority, Base, CLOSE_NOT_A_MEMBER};
use crate::core::events;
use crate::core::roster::{self, FileVersus, PeerRoster, RosterChange};

/// The largest roster answer read from a peer.
const MAX_ROSTERS_ANSWER: usize = 4 * 1024 * 1024;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RosterReload {
    /// The file holds the roster in force (or one with the same body).
    Unchanged,
    /// The file holds an older version than the roster in force (adopted
    /// since the file was written): the roster in force stays.
    Behind {
        /// The file's version.
        file: u64,
        /// The version in force.
        in_force: u64,
    },
    /// A newer roster is in force now.
    Applied {
        /// What it changed.
        change: RosterChange,
        /// Connections closed because of it.
        closed: usize,
    },
}

/// Why a roster was refused (the roster in force stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterRefused {
    /// The file could not be read, or the roster does not verify against
    /// the roster in force (its signatures, its version, its content).
    #[error("{0}")]
    Invalid(#[from] RosterError),
    /// Its members' CA certificates cannot be used for TLS.
    #[error("the roster from {origin}: {source}")]
    Tls {
        /// Where it came from: the file, or a peer.
        origin: String,
        /// What TLS said.
        source: kurir_certs::TlsError,
    },
    /// It could not be stored; it is not in force.
    #[error("the roster from {origin} could not be stored, it is not in force: {source}")]
    Store {
        /// Where it came from: the file, or a peer.
        origin: String,
        /// What the store said.
        source: crate::store::StoreError,
    },
}

/// The bytes last examined and the refusal logged last.
#[derive(Default)]
struct Seen {
    bytes: Vec<u8>,
    refusal: Option<String>,
}

/// The roster in force and the parts that read it.
pub(super) struct RosterInForce {
    path: PathBuf,
    base: Arc<Base>,
    authority: Arc<Authority>,
    links: Arc<Links>,
    expiry: Arc<Expiry>,
    /// The outbox: deliveries to members removed end.
    deliveries: Arc<Deliveries>,
    /// Serialises reloads and rosters taken from peers; what was read
    /// last.
    seen: tokio::sync::Mutex<Seen>,
    /// Wakes the roster exchange with peers (after a roster is put in
    /// force, or a peer shows it is ahead).
    wake: Notify,
}

impl RosterInForce {
    pub(super) fn new(
        base: Arc<Base>,
        authority: Arc<Authority>,
        links: Arc<Links>,
        expiry: Arc<Expiry>,
        deliveries: Arc<Deliveries>,
    ) -> RosterInForce {
        let path = base.config.roster_path.clone();
        let bytes = kurir_certs::files::read(&path).unwrap_or_default();
        RosterInForce {
            path,
            base,
            authority,
            links,
            expiry,
            deliveries,
            seen: tokio::sync::Mutex::new(Seen {
                bytes,
                refusal: None,
            }),
            wake: Notify::new(),
        }
    }

    /// Reads the roster file and puts it in force if it verifies and is
    /// newer. With `force` false the file is examined only if it changed
    /// since it was last read (the periodic check).
    async fn reload(&self, force: bool, seen: &mut Seen) -> Result<RosterReload, RosterRefused> {
        let bytes = kurir_certs::files::read(&self.path).map_err(RosterError::File)?;
        if !force && bytes == seen.bytes {
            return Ok(RosterReload::Unchanged);
        }
        seen.bytes = bytes.clone();
        self.offer(&bytes, Some(&self.path)).await
    }

    /// Verifies `bytes` against the roster in force and, if newer, stores
    /// it and puts it in force. `file` is the file it was read from (none:
    /// a peer sent it). The caller holds `seen`.
    async fn offer(
        &self,
        bytes: &[u8],
        file: Option<&std::path::Path>,
    ) -> Result<RosterReload, RosterRefused> {
        let origin = match file {
            Some(p) => p.display().to_string(),
            None => "a peer".to_owned(),
        };
        let in_force = self.authority.roster();
        let now = self.base.now();
        let version = SignedRoster::decode(bytes)
            .ok()
            .and_then(|s| s.body().ok())
            .map(|b| b.version);
        if let Some(v) = version
            && let FileVersus::Behind { file, in_force } =
                roster::file_versus(v, in_force.version())
        {
            return Ok(RosterReload::Behind { file, in_force });
        }
        let accepted = Roster::accept_with(bytes, Some(&in_force), now, CaDates::Unchecked)
            .map_err(|e| match file {
                Some(path) => with_path(e, path),
                None => e,
            })?;
        let new = match accepted {
            Accepted::Unchanged => return Ok(RosterReload::Unchanged),
            Accepted::Newer(r) => Arc::new(r),
        };
        let me = &self.authority.me;
        let change = roster::diff(me, in_force.body(), new.body());
        // The TLS verifier first: the one step that can fail on content.
        self.links
            .set_roster(new.clone())
            .map_err(|source| RosterRefused::Tls {
                origin: origin.clone(),
                source,
            })?;
        let stored = self
            .base
            .store
            .set_roster(me, new.to_bytes().to_vec(), vec![events::roster(now, &new)])
            .await;
        if let Err(source) = stored {
            if let Err(e) = self.links.set_roster(in_force.clone()) {
                error!(error = %e, "cannot put the previous roster back in the TLS verifier");
            }
            return Err(RosterRefused::Store { origin, source });
        }
        // The keys the new roster puts in force first, then the roster:
        // whoever sees the new version (`Node::roster_in_force`) sees its
        // keys in force too.
        self.authority
            .follow_log_key(&new, &self.base.config.authority_dir);
        self.authority
            .follow_message_keys(&new, &self.base.config.authority_dir, now);
        self.authority.set_roster(new.clone());
        self.expiry.set_roster(&new);
        let members = new.members().iter().map(|m| m.id.clone());
        let ended = self.deliveries.set_members(&self.base, members).await;
        if ended > 0 {
            info!(
                ended,
                version = new.version(),
                "deliveries queued for members the roster removed ended (failed, not_a_member)"
            );
        }
        let closed = self
            .links
            .close_members(&change.removed, CLOSE_NOT_A_MEMBER, b"not a member")
            .await
            + self
                .links
                .close_members(
                    &changed_links(&change),
                    super::CLOSE_SHUTDOWN,
                    b"roster changed",
                )
                .await
            + self
                .links
                .close_revoked_nodes(&new, super::CLOSE_NODE_REVOKED)
                .await;
        self.wake.notify_one();
        Ok(RosterReload::Applied { change, closed })
    }

    /// The answer to a peer's `rosters` request: our roster in force and
    /// the rosters we hold newer than its version. A peer ahead of us
    /// wakes our own exchange; another roster of our version is an alarm.
    pub(super) fn answer(
        &self,
        peer: &AuthorityId,
        version: u64,
        fingerprint: &str,
    ) -> PeerResponse {
        let in_force = self.authority.roster();
        let ours = in_force.fingerprint();
        let chain = match roster::versus_peer((in_force.version(), &ours), (version, fingerprint)) {
            PeerRoster::Same => vec![],
            PeerRoster::Ahead { theirs } => {
                info!(%peer, theirs, ours = in_force.version(), "a peer holds a newer roster: asking it");
                self.wake.notify_one();
                vec![]
            }
            PeerRoster::Conflict { version } => {
                self.conflict(peer, version, fingerprint, &ours);
                vec![]
            }
            PeerRoster::Behind { .. } => match self.base.store.rosters() {
                Ok(held) => {
                    let held = held
                        .into_iter()
                        .filter_map(|b| {
                            let v = SignedRoster::decode(&b).ok()?.body().ok()?.version;
                            Some((v, b))
                        })
                        .collect();
                    roster::chain_after(held, version, MAX_ROSTER_CHAIN)
                }
                Err(e) => {
                    error!(%peer, error = %e, "cannot read the rosters held, for a peer that is behind");
                    vec![]
                }
            },
        };
        PeerResponse::Rosters {
            version: in_force.version(),
            fingerprint: ours,
            chain: chain.into_iter().map(Bytes).collect(),
        }
    }

    fn conflict(&self, peer: &AuthorityId, version: u64, theirs: &str, ours: &str) {
        self.base.metrics.roster_alarms.inc();
        error!(
            %peer,
            version,
            ours,
            theirs,
            "a peer holds another roster of the version in force: two different rosters claim one \
             version. Nothing of it is taken; compare both fingerprints with the roster officers"
        );
    }

    /// Asks `peer` for its roster and takes the newer rosters it sends,
    /// each verified against the roster in force.
    async fn sync_with(&self, peer: &AuthorityId) {
        let in_force = self.authority.roster();
        let ask = PeerRequest::Rosters {
            version: in_force.version(),
            fingerprint: in_force.fingerprint(),
        };
        let answer = match self.links.exchange(peer, &ask, MAX_ROSTERS_ANSWER).await {
            Ok(a) => a,
            Err(e) => {
                debug!(%peer, error = %e, "roster exchange failed");
                return;
            }
        };
        let PeerResponse::Rosters {
            version,
            fingerprint,
            chain,
        } = answer
        else {
            // A relay of an older build does not know the request.
            debug!(%peer, "the peer does not exchange rosters");
            return;
        };
        let ours = in_force.fingerprint();
        match roster::versus_peer((in_force.version(), &ours), (version, &fingerprint)) {
            PeerRoster::Same | PeerRoster::Behind { .. } => {}
            PeerRoster::Conflict { version } => self.conflict(peer, version, &fingerprint, &ours),
            PeerRoster::Ahead { .. } => self.take_from(peer, version, chain).await,
        }
    }

    /// Verifies and puts in force, one by one, the rosters a peer sent.
    async fn take_from(&self, peer: &AuthorityId, theirs: u64, chain: Vec<Bytes>) {
        if chain.is_empty() {
            warn!(%peer, theirs, "a peer says it holds a newer roster but sent none");
            return;
        }
        let _serialised = self.seen.lock().await;
        for Bytes(bytes) in chain {
            match self.offer(&bytes, None).await {
                Ok(RosterReload::Applied { change, closed }) => {
                    info!(
                        %peer,
                        from = change.from,
                        version = change.to,
                        fingerprint = %self.authority.roster().fingerprint(),
                        added = %list(&change.added),
                        removed = %list(&change.removed),
                        endpoints_changed = %list(&change.endpoints),
                        cas_changed = %list(&change.cas),
                        closed_connections = closed,
                        "new roster in force, from a peer"
                    );
                    if change.me_removed {
                        error!(authority = %self.authority.me, version = change.to, "the roster in force no longer lists this authority: its peers refuse it");
                    }
                }
                Ok(RosterReload::Unchanged) => {}
                Ok(RosterReload::Behind { file, in_force }) => {
                    self.base.metrics.roster_alarms.inc();
                    error!(%peer, offered = file, in_force, "a peer offered an older roster than the roster in force: refused");
                    return;
                }
                Err(e) => {
                    self.base.metrics.roster_alarms.inc();
                    error!(%peer, error = %e, in_force = self.authority.roster().version(), "a roster from a peer refused; the roster in force stays");
                    return;
                }
            }
        }
    }

    /// Reloads and logs the outcome: what SIGHUP and the periodic check do.
    pub(super) async fn reload_logged(&self, force: bool) -> Result<RosterReload, RosterRefused> {
        let mut seen = self.seen.lock().await;
        let outcome = self.reload(force, &mut seen).await;
        let text = match &outcome {
            Err(e) => Some(e.to_string()),
            Ok(RosterReload::Behind { file, in_force }) => {
                Some(format!("behind: file {file}, in force {in_force}"))
            }
            Ok(_) => None,
        };
        let worth = text
            .as_deref()
            .is_some_and(|t| crate::core::crl::worth_logging(seen.refusal.as_deref(), t, force));
        seen.refusal = text;
        drop(seen);
        let path = self.path.display();
        match &outcome {
            Ok(RosterReload::Unchanged) if force => {
                let version = self.authority.roster().version();
                info!(path = %path, version, "roster reloaded: unchanged");
            }
            Ok(RosterReload::Unchanged) => {}
            Ok(RosterReload::Behind { file, in_force }) if worth => {
                warn!(path = %path, file_version = file, in_force, "the roster file is behind the roster in force (version {in_force}); the roster in force stays. Put the newest roster in the file");
            }
            Ok(RosterReload::Behind { .. }) => {}
            Ok(RosterReload::Applied { change, closed }) => {
                let fingerprint = self.authority.roster().fingerprint();
                info!(
                    path = %path,
                    from = change.from,
                    version = change.to,
                    fingerprint = %fingerprint,
                    added = %list(&change.added),
                    removed = %list(&change.removed),
                    endpoints_changed = %list(&change.endpoints),
                    cas_changed = %list(&change.cas),
                    closed_connections = closed,
                    "new roster in force"
                );
                if change.me_removed {
                    error!(authority = %self.authority.me, version = change.to, "the roster in force no longer lists this authority: its peers refuse it");
                }
            }
            Err(e) if worth => {
                let in_force = self.authority.roster().version();
                error!(error = %e, in_force, "roster refused; the roster in force stays");
            }
            Err(_) => {}
        }
        outcome
    }
}

/// Members whose connections end because they are reached elsewhere or
/// under another CA (not removed: those get their own code).
fn changed_links(change: &RosterChange) -> Vec<kurir_proto::AuthorityId> {
    change
        .to_close()
        .into_iter()
        .filter(|m| !change.removed.contains(m))
        .collect()
}

fn list(ids: &[kurir_proto::AuthorityId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn with_path(e: RosterError, path: &std::path::Path) -> RosterError {
    match e {
        RosterError::Invalid { problems, .. } => RosterError::Invalid {
            path: Some(path.to_owned()),
            problems,
        },
        other => other,
    }
}

/// Checks the roster file every `every` until shutdown.
pub(super) async fn roster_loop(
    rosters: Arc<RosterInForce>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let _ = rosters.reload_logged(false).await;
    }
}

/// Tells each member our roster every `every`, and at once when woken (a
/// roster put in force, a peer ahead), until shutdown; takes the newer
/// rosters they send.
pub(super) async fn roster_sync_loop(
    rosters: Arc<RosterInForce>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = rosters.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        let roster = rosters.authority.roster();
        let me = &rosters.authority.me;
        let mut asks = JoinSet::new();
        for m in roster.members().iter().filter(|m| &m.id != me) {
            let (r, peer) = (rosters.clone(), m.id.clone());
            asks.spawn(async move { r.sync_with(&peer).await });
        }
        loop {
            tokio::select! {
                next = asks.join_next() => if next.is_none() { break },
                _ = shutdown.changed() => return,
            }
        }
    }
}
