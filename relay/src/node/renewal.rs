//! Node-certificate renewal while the relay runs: on SIGHUP
//! ([`crate::node::Node::reload_node_certificate`]) `node.crt.pem` and
//! `node.key.pem` are read again; a pair that fits, names this authority,
//! chains to the CA the roster in force lists for it and is valid now is
//! put in force for every handshake from then on, as server and as client
//! ([`NodeCertificate`] is the resolver of both). Connections already open
//! keep the certificate they were made with, so nothing in flight is
//! dropped. Anything else is refused and logged, and the certificate in
//! force stays.

use std::path::PathBuf;
use std::sync::Arc;

use kurir_certs::tls::{Credentials, NodeCertSummary, NodeCertificate};
use rustls::pki_types::CertificateDer;
use tracing::{error, info};

use super::expiry::Expiry;
use super::{Authority, Base};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCertReload {
    /// The files hold the certificate in force.
    Unchanged(NodeCertSummary),
    /// A renewed certificate is in force now for new connections.
    Renewed(NodeCertSummary),
}

/// Why a node certificate was refused (the one in force stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeCertRefused {
    /// The files could not be read, the key does not fit the certificate,
    /// the certificate names another authority, does not chain to the CA
    /// the roster lists for this authority, or is not valid now.
    #[error("{0}")]
    Invalid(#[from] kurir_certs::TlsError),
    /// The roster in force does not list this authority.
    #[error("the roster in force does not list {0}: no CA to check a node certificate against")]
    NotAMember(kurir_proto::AuthorityId),
}

/// The node certificate in force and where it is read from.
pub(super) struct Renewal {
    base: Arc<Base>,
    authority: Arc<Authority>,
    expiry: Arc<Expiry>,
    node: Arc<NodeCertificate>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl Renewal {
    pub(super) fn new(
        base: Arc<Base>,
        authority: Arc<Authority>,
        expiry: Arc<Expiry>,
        node: Arc<NodeCertificate>,
    ) -> Renewal {
        let dir = &base.config.authority_dir;
        let cert_path = dir.join(kurir_certs::authority::layout::NODE_CERT);
        let key_path = dir.join(kurir_certs::authority::layout::NODE_KEY);
        Renewal {
            base,
            authority,
            expiry,
            node,
            cert_path,
            key_path,
        }
    }

    /// The certificate in force.
    pub(super) fn in_force(&self) -> NodeCertSummary {
        self.node.summary()
    }

    fn reload(&self) -> Result<NodeCertReload, NodeCertRefused> {
        let credentials = Credentials::load(&self.cert_path, &self.key_path)?;
        let roster = self.authority.roster();
        let me = &self.authority.me;
        let ca = roster
            .member(me)
            .map(|m| CertificateDer::from(m.tls_ca.clone()))
            .ok_or_else(|| NodeCertRefused::NotAMember(me.clone()))?;
        let before = self.node.summary();
        let now = self.base.now();
        let after = self.node.replace(&credentials, &ca, now, &self.cert_path)?;
        if after.fingerprint == before.fingerprint {
            return Ok(NodeCertReload::Unchanged(after));
        }
        self.expiry.set_node_certificate(after.not_after);
        Ok(NodeCertReload::Renewed(after))
    }

    /// Reloads and logs the outcome: what SIGHUP does.
    pub(super) fn reload_logged(&self) -> Result<NodeCertReload, NodeCertRefused> {
        let outcome = self.reload();
        match &outcome {
            Ok(NodeCertReload::Unchanged(c)) => {
                info!(path = %self.cert_path.display(), fingerprint = %c.fingerprint, not_after = %c.not_after, "node certificate reloaded: unchanged");
            }
            Ok(NodeCertReload::Renewed(c)) => {
                info!(path = %self.cert_path.display(), fingerprint = %c.fingerprint, not_after = %c.not_after, "renewed node certificate in force for new connections; open connections keep theirs");
            }
            Err(e) => {
                let kept = self.node.summary();
                error!(error = %e, in_force = %kept.fingerprint, not_after = %kept.not_after, "node certificate refused; the certificate in force stays");
            }
        }
        outcome
    }
}
