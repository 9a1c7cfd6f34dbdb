//! Officer revocation while the relay runs: the CRL in force, reloaded on
//! SIGHUP ([`crate::node::Node::reload_crl`]) and whenever the file changes
//! (checked every `[identity] crl_check_secs`), and the open officer
//! connections with their certificate serials, so that those a new CRL
//! revokes are closed.
//!
//! A CRL is put in force only if it is signed by the authority's CA
//! ([`kurir_certs::crl::check`]) and its number is not below the one in
//! force ([`crate::core::crl`]); anything else is refused, logged, and the
//! CRL in force stays: a bad file never opens the relay to a revoked
//! officer and never stops it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kurir_certs::tls::{FederationVerifier, OfficerTrust};
use tracing::{error, info, warn};

use super::CLOSE_REVOKED;
use crate::core::crl::{self, CrlDecision, CrlFacts};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlReload {
    /// The file holds the CRL in force.
    Unchanged,
    /// A newer CRL is in force now.
    Applied {
        /// Its number.
        number: u64,
        /// Open officer connections closed because it revokes them.
        closed: usize,
    },
}

/// Why a CRL was refused (the one in force stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlRefused {
    /// The file could not be read, does not parse, or is not signed by
    /// the authority's CA.
    #[error("{0}")]
    Invalid(#[from] kurir_certs::TlsError),
    /// Its number is below the one in force.
    #[error(
        "CRL {} has number {offered}, below the CRL in force (number {in_force}): an older CRL \
         was put back. It is refused; put the newest CRL from the authority directory in place",
        path.display()
    )]
    Rollback {
        /// The file.
        path: PathBuf,
        /// The number in force.
        in_force: u64,
        /// The number offered.
        offered: u64,
    },
    /// The number in force, with other revocations.
    #[error(
        "CRL {} has number {number}, the number of the CRL in force, but revokes other \
         certificates: it is refused. Write a new CRL with `kurir-certs officer revoke`",
        path.display()
    )]
    Conflict {
        /// The file.
        path: PathBuf,
        /// The number.
        number: u64,
    },
}

/// The CRL in force and the bytes last examined.
struct InForce {
    trust: OfficerTrust,
    /// The file's bytes when last read (put in force or refused), so the
    /// periodic check examines (and logs) a file once per change.
    last_seen: Vec<u8>,
}

/// The CRL in force and the officer connections it may end.
pub(super) struct Revocation {
    path: PathBuf,
    verifier: Arc<FederationVerifier>,
    in_force: Mutex<InForce>,
    /// Open officer connections: id → (serial, officer name, connection).
    officers: Mutex<HashMap<u64, (String, String, quinn::Connection)>>,
    next_id: AtomicU64,
    /// The text of the refusal logged last (cleared by a CRL read well).
    last_refused: Mutex<Option<String>>,
}

/// Deregisters an officer connection when its handler ends.
pub(super) struct Registered<'a> {
    revocation: &'a Revocation,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut officers) = self.revocation.officers.lock() {
            officers.remove(&self.id);
        }
    }
}

impl Revocation {
    /// `trust` is the CRL the verifier was built with, read from `path`.
    pub(super) fn new(
        path: PathBuf,
        verifier: Arc<FederationVerifier>,
        trust: OfficerTrust,
    ) -> Revocation {
        let last_seen = kurir_certs::files::read(&path).unwrap_or_default();
        Revocation {
            path,
            verifier,
            in_force: Mutex::new(InForce { trust, last_seen }),
            officers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            last_refused: Mutex::new(None),
        }
    }

    /// The serials the CRL in force revokes.
    pub(super) fn revoked(&self) -> std::collections::BTreeSet<String> {
        self.in_force
            .lock()
            .map(|f| f.trust.crl.revoked.clone())
            .unwrap_or_default()
    }

    /// The number of the CRL in force.
    pub(super) fn number(&self) -> u64 {
        self.in_force.lock().map_or(0, |f| f.trust.crl.number)
    }

    /// Tracks an open officer connection until the guard is dropped.
    /// Returns `None` (and the caller closes the connection) if the CRL in
    /// force revokes `serial`: a CRL put in force between the handshake and
    /// this call would otherwise miss the connection.
    pub(super) fn register(
        &self,
        serial: &str,
        name: &str,
        conn: &quinn::Connection,
    ) -> Option<Registered<'_>> {
        let in_force = self.in_force.lock().ok()?;
        if in_force.trust.crl.revoked.contains(serial) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.officers
            .lock()
            .ok()?
            .insert(id, (serial.to_owned(), name.to_owned(), conn.clone()));
        drop(in_force);
        Some(Registered {
            revocation: self,
            id,
        })
    }

    /// Reads the CRL file and puts it in force if it verifies and is
    /// newer; closes the open connections of the officers it revokes.
    /// With `force` false the file is examined only if it changed since it
    /// was last read (the periodic check).
    pub(super) fn reload(&self, force: bool) -> Result<CrlReload, CrlRefused> {
        let bytes = kurir_certs::files::read(&self.path).map_err(kurir_certs::TlsError::from)?;
        let mut in_force = self
            .in_force
            .lock()
            .map_err(|_| kurir_certs::TlsError::Config("the CRL lock is poisoned".into()))?;
        if !force && bytes == in_force.last_seen {
            return Ok(CrlReload::Unchanged);
        }
        in_force.last_seen = bytes.clone();
        let offered = in_force.trust.with_crl(&bytes, &self.path)?;
        let decision = crl::decide(
            CrlFacts {
                number: in_force.trust.crl.number,
                revoked: &in_force.trust.crl.revoked,
            },
            CrlFacts {
                number: offered.crl.number,
                revoked: &offered.crl.revoked,
            },
        );
        match decision {
            CrlDecision::Same => Ok(CrlReload::Unchanged),
            CrlDecision::Rollback { in_force, offered } => Err(CrlRefused::Rollback {
                path: self.path.clone(),
                in_force,
                offered,
            }),
            CrlDecision::Conflict { number } => Err(CrlRefused::Conflict {
                path: self.path.clone(),
                number,
            }),
            CrlDecision::Apply { .. } => {
                self.verifier.set_officers(&offered)?;
                let number = offered.crl.number;
                in_force.trust = offered;
                let closed = self.close_revoked(&in_force.trust.crl.revoked);
                Ok(CrlReload::Applied { number, closed })
            }
        }
    }

    /// Closes every open officer connection whose serial is in `revoked`.
    fn close_revoked(&self, revoked: &std::collections::BTreeSet<String>) -> usize {
        let Ok(officers) = self.officers.lock() else {
            return 0;
        };
        let mut closed = 0;
        for (serial, name, conn) in officers.values() {
            if revoked.contains(serial) {
                warn!(%serial, officer = %name, remote = %conn.remote_address(), "closing the connection of an officer whose certificate the new CRL revokes");
                conn.close(CLOSE_REVOKED.into(), b"certificate revoked");
                closed += 1;
            }
        }
        closed
    }

    /// Reloads and logs the outcome: what SIGHUP and the periodic check do.
    pub(super) fn reload_logged(&self, force: bool) -> Result<CrlReload, CrlRefused> {
        let outcome = self.reload(force);
        let refusal = outcome.as_ref().err().map(ToString::to_string);
        let mut last = self.last_refused.lock().ok();
        let log_refusal = refusal.as_deref().is_some_and(|r| {
            crl::worth_logging(last.as_ref().and_then(|l| l.as_deref()), r, force)
        });
        if let Some(last) = last.as_mut() {
            **last = refusal;
        }
        drop(last);
        match &outcome {
            Ok(CrlReload::Unchanged) if force => {
                info!(path = %self.path.display(), number = self.number(), "CRL reloaded: unchanged");
            }
            Ok(CrlReload::Unchanged) => {}
            Ok(CrlReload::Applied { number, closed }) => {
                info!(path = %self.path.display(), number, closed_connections = closed, "new CRL in force");
            }
            Err(e) if log_refusal => {
                error!(error = %e, in_force = self.number(), "CRL refused; the CRL in force stays");
            }
            Err(_) => {}
        }
        outcome
    }
}

/// Checks the CRL file every `every` until shutdown.
pub(super) async fn crl_loop(
    revocation: Arc<Revocation>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let _ = revocation.reload_logged(false);
    }
}
