//! The relay's own node certificate, swappable while the relay runs.
//!
//! [`NodeCertificate`] is both the server's certificate resolver (what
//! peers and officers see when they connect) and the client certificate
//! resolver of the connections the relay dials: every handshake reads the
//! certificate in force at that moment. [`NodeCertificate::replace`] puts a
//! renewed certificate in force after checking it ([`check_node`]);
//! connections already open keep the certificate they were made with.

use std::path::Path;
use std::sync::{Arc, RwLock};

use kurir_proto::{AuthorityId, Timestamp};
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use super::{Credentials, provider, roots, unix_time};
use crate::error::TlsError;
use crate::x509::{CertInfo, Claim, fingerprint};

/// What a checked node certificate is: its fingerprint and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCertSummary {
    /// SHA-256 of the end-entity certificate, hex.
    pub fingerprint: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
}

/// A node certificate with its key, checked.
struct Checked {
    key: Arc<CertifiedKey>,
    summary: NodeCertSummary,
}

/// Checks that `credentials` can serve as the node certificate of `own`:
/// the private key is usable and belongs to the end-entity certificate,
/// the certificate carries `urn:kurir:authority:<own>`, and it chains to
/// `ca` (the CA the roster lists for `own`, which peers check it against)
/// and is valid at `now`. With `now` absent, the chain is checked at the
/// certificate's own start of validity (what a relay that starts does: an
/// expired certificate only warns there, as every expiry does). `path`
/// names the files in errors.
fn check_node(
    own: &AuthorityId,
    credentials: &Credentials,
    ca: &CertificateDer<'static>,
    now: Option<Timestamp>,
    path: &Path,
) -> Result<Checked, TlsError> {
    let refuse = |reason: String| TlsError::Refused {
        who: format!("this relay ({own}, {})", path.display()),
        reason,
    };
    let (ee, rest) = credentials
        .chain
        .split_first()
        .ok_or_else(|| refuse("the file holds no certificate".into()))?;
    let provider = provider();
    let key = CertifiedKey::from_der(
        credentials.chain.clone(),
        credentials.key.clone_key(),
        &provider,
    )
    .map_err(|e| {
        refuse(format!(
            "the private key does not fit the certificate ({e}): copy node.crt.pem and \
             node.key.pem from the same `kurir-certs authority renew-node`"
        ))
    })?;
    // `from_der` lets an unknown consistency pass; kurir's keys are ECDSA
    // P-256, whose public key ring always knows.
    key.keys_match().map_err(|e| {
        refuse(format!(
            "the private key does not fit the certificate ({e}): copy node.crt.pem and \
             node.key.pem from the same `kurir-certs authority renew-node`"
        ))
    })?;
    let info = CertInfo::parse(ee).map_err(refuse)?;
    match info.claim().map_err(refuse)? {
        Claim::Node(id) if &id == own => {}
        other => {
            return Err(refuse(format!(
                "it names {other:?}, not the relay of {own}"
            )));
        }
    }
    WebPkiClientVerifier::builder_with_provider(roots(ca, own.as_str())?, provider)
        .build()
        .map_err(|e| TlsError::Config(format!("node certificate check: {e}")))?
        .verify_client_cert(ee, rest, unix_time(now.unwrap_or(info.not_before)))
        .map_err(|e| {
            refuse(format!(
                "{e} (it must be valid now and chain to the CA the roster lists for {own})"
            ))
        })?;
    Ok(Checked {
        key: Arc::new(key),
        summary: NodeCertSummary {
            fingerprint: fingerprint(ee),
            not_before: info.not_before,
            not_after: info.not_after,
        },
    })
}

/// The relay's node certificate in force, which every new handshake
/// presents, as server and as client.
#[derive(Debug)]
pub struct NodeCertificate {
    own: AuthorityId,
    current: RwLock<(Arc<CertifiedKey>, NodeCertSummary)>,
}

impl NodeCertificate {
    /// The certificate the relay starts with, checked as
    /// [`NodeCertificate::replace`] checks a renewed one but for the time:
    /// a relay starts with an expired certificate (its peers refuse it, and
    /// the expiry metrics and warnings say so) rather than not at all.
    pub fn new(
        own: &AuthorityId,
        credentials: &Credentials,
        ca: &CertificateDer<'static>,
        path: &Path,
    ) -> Result<Arc<NodeCertificate>, TlsError> {
        let checked = check_node(own, credentials, ca, None, path)?;
        Ok(Arc::new(NodeCertificate {
            own: own.clone(),
            current: RwLock::new((checked.key, checked.summary)),
        }))
    }

    /// Puts `credentials` in force for every handshake from now on, if
    /// they pass the checks of [`NodeCertificate::new`] and are valid at
    /// `now`; otherwise the
    /// certificate in force stays and the error says why. Connections
    /// already open are not touched.
    pub fn replace(
        &self,
        credentials: &Credentials,
        ca: &CertificateDer<'static>,
        now: Timestamp,
        path: &Path,
    ) -> Result<NodeCertSummary, TlsError> {
        let checked = check_node(&self.own, credentials, ca, Some(now), path)?;
        let summary = checked.summary.clone();
        match self.current.write() {
            Ok(mut slot) => *slot = (checked.key, checked.summary),
            Err(poisoned) => *poisoned.into_inner() = (checked.key, checked.summary),
        }
        Ok(summary)
    }

    /// The fingerprint and validity of the certificate in force.
    pub fn summary(&self) -> NodeCertSummary {
        match self.current.read() {
            Ok(c) => c.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// The certificate and key in force.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => c.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }
}

impl ResolvesServerCert for NodeCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }
}

impl ResolvesClientCert for NodeCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
