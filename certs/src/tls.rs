//! rustls configurations for the relay's QUIC endpoint and its clients, and
//! the identity of whoever is on the other side.
//!
//! One server configuration serves both kinds of client:
//!
//! - **peers** (ALPN [`ALPN_PEER`]): a member relay's node certificate,
//!   which must carry `urn:kurir:authority:<ID>` and chain to the CA that the
//!   current roster lists for `<ID>` (a certificate of another authority's CA
//!   that claims `<ID>` is refused), and not be among the node certificates
//!   the roster revokes for `<ID>` (checked too when this relay dials `<ID>`);
//! - **officers** (ALPN [`ALPN_OFFICER`]): an officer certificate that
//!   carries `urn:kurir:officer:<OWN-ID>:<ROLE>`, chains to this authority's
//!   own CA and is not on its CRL.
//!
//! After the handshake, [`FederationVerifier::identify`] checks the chain
//! again, checks that the ALPN fits the kind of certificate, and returns the
//! [`Identity`]. Only the ring crypto provider and TLS 1.3 are used.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kurir_proto::{AuthorityId, Timestamp};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme,
};

use crate::authority::{self, layout};
use crate::crl::{self, CheckedCrl};
use crate::error::{FileError, TlsError};
use crate::files;
use crate::officer::officer_layout;
use crate::roster::{RevokedCert, Roster};
use crate::x509::{CertInfo, Claim, Role};

mod node;
pub use node::{NodeCertSummary, NodeCertificate};

/// ALPN of relay-to-relay connections.
pub const ALPN_PEER: &[u8] = b"kurir/1";
/// ALPN of officer-to-relay connections.
pub const ALPN_OFFICER: &[u8] = b"kurir-client/1";

/// The ring crypto provider, the only one kurir uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A [`Timestamp`] as rustls time.
pub fn unix_time(t: Timestamp) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_millis(t.0))
}

/// Who is on the other end of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A member relay.
    Peer(AuthorityId),
    /// An officer of this authority.
    Officer(Officer),
}

/// An authenticated officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    /// The officer's authority (always this relay's).
    pub authority: AuthorityId,
    /// The name in the certificate.
    pub name: String,
    /// The role in the certificate.
    pub role: Role,
    /// The certificate's serial number, hex.
    pub serial: String,
}

/// A certificate chain with its private key, to present in a handshake.
pub struct Credentials {
    /// End-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Credentials {
    /// Reads a PEM certificate chain and a PEM private key (mode 0600).
    pub fn load(cert: &Path, key: &Path) -> Result<Credentials, TlsError> {
        let text = files::read_text(cert)?;
        let chain =
            crate::x509::pem_certificates(&text).map_err(|reason| FileError::Malformed {
                path: cert.to_owned(),
                reason,
            })?;
        let key_bytes = files::read_secret(key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| FileError::Malformed {
            path: key.to_owned(),
            reason: format!("not a PEM private key: {e}"),
        })?;
        Ok(Credentials { chain, key })
    }

    /// A relay's node certificate and key from its authority directory.
    pub fn node(authority_dir: &Path) -> Result<Credentials, TlsError> {
        Self::load(
            &authority_dir.join(layout::NODE_CERT),
            &authority_dir.join(layout::NODE_KEY),
        )
    }

    /// An officer's certificate and key from the directory `officer issue` wrote.
    pub fn officer(officer_dir: &Path) -> Result<Credentials, TlsError> {
        Self::load(
            &officer_dir.join(officer_layout::CERT),
            &officer_dir.join(officer_layout::KEY),
        )
    }

    /// Builds credentials from DER parts.
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Credentials { chain, key }
    }
}

/// This authority's CA and CRL: what officer certificates are checked against.
#[derive(Debug, Clone)]
pub struct OfficerTrust {
    /// This authority.
    pub authority: AuthorityId,
    /// Its CA certificate.
    pub ca: CertificateDer<'static>,
    /// Its CRL, signed by that CA ([`crl::check`]).
    pub crl: CheckedCrl,
}

impl OfficerTrust {
    /// Reads `ca.crt.pem` and `crl.pem` of an authority directory (no
    /// private key needed: this is what the relay host holds). The CRL must
    /// be signed by the CA.
    pub fn load(authority_dir: &Path) -> Result<OfficerTrust, TlsError> {
        let member = authority::MemberFile::load(&authority_dir.join(layout::MEMBER))?;
        let id = AuthorityId::parse(&member.id).map_err(|e| FileError::Malformed {
            path: authority_dir.join(layout::MEMBER),
            reason: format!("id: {e}"),
        })?;
        let ca = authority::load_cert(&authority_dir.join(layout::CA_CERT)).map_err(pki_to_tls)?;
        let crl_path = authority_dir.join(layout::CRL);
        let crl = crl::check(&files::read(&crl_path)?, &ca, &crl_path)?;
        Ok(OfficerTrust {
            authority: id,
            ca,
            crl,
        })
    }

    /// The same CA with another CRL (`pem`, read from `path`), which must
    /// be signed by the CA: what a relay reloads while it runs.
    pub fn with_crl(&self, pem: &[u8], path: &Path) -> Result<OfficerTrust, TlsError> {
        Ok(OfficerTrust {
            authority: self.authority.clone(),
            ca: self.ca.clone(),
            crl: crl::check(pem, &self.ca, path)?,
        })
    }

    /// The webpki verifier of officer certificates: chains to the CA and
    /// is not on the CRL.
    fn verifier(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        WebPkiClientVerifier::builder_with_provider(
            roots(&self.ca, self.authority.as_str())?,
            provider.clone(),
        )
        .with_crls([CertificateRevocationListDer::from(self.crl.der.clone())])
        .only_check_end_entity_revocation()
        .build()
        .map_err(|e| TlsError::Config(format!("officer verifier: {e}")))
    }
}

fn pki_to_tls(e: crate::error::PkiError) -> TlsError {
    match e {
        crate::error::PkiError::File(f) => TlsError::File(f),
        other => TlsError::Certificate(other.to_string()),
    }
}

fn roots(ca: &CertificateDer<'static>, who: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    store
        .add(ca.clone())
        .map_err(|e| TlsError::Certificate(format!("CA of {who} is not usable: {e}")))?;
    Ok(Arc::new(store))
}

/// A client-certificate verifier per member, each trusting the CA the
/// roster lists for it.
type PeerVerifiers = HashMap<AuthorityId, Arc<dyn ClientCertVerifier>>;

/// The node certificates each member revoked in the roster.
type RevokedNodes = HashMap<AuthorityId, Vec<RevokedCert>>;

fn revoked_nodes(roster: &Roster) -> RevokedNodes {
    roster
        .members()
        .iter()
        .filter(|m| !m.revoked_node_certs.is_empty())
        .map(|m| (m.id.clone(), m.revoked_node_certs.clone()))
        .collect()
}

/// Refuses a node certificate of `id` that the roster revoked.
fn check_not_revoked(
    id: &AuthorityId,
    revoked: &[RevokedCert],
    end_entity: &[u8],
) -> Result<(), TlsError> {
    use sha2::{Digest as _, Sha256};
    let digest: [u8; 32] = Sha256::digest(end_entity).into();
    match revoked.iter().find(|r| r.sha256 == digest) {
        None => Ok(()),
        Some(r) => {
            tracing::warn!(
                member = %id,
                sha256 = %r.sha256_hex(),
                revoked_at = %r.revoked_at,
                reason = %r.reason,
                "refused at the handshake: a node certificate the roster in force revokes"
            );
            Err(TlsError::NodeRevoked {
                member: id.clone(),
                sha256: r.sha256_hex(),
                revoked_at: r.revoked_at,
                reason: r.reason.clone(),
            })
        }
    }
}

fn peer_verifiers(
    roster: &Roster,
    provider: &Arc<CryptoProvider>,
) -> Result<PeerVerifiers, TlsError> {
    let mut peers = HashMap::new();
    for m in roster.members() {
        let ca = CertificateDer::from(m.tls_ca.clone());
        let v = WebPkiClientVerifier::builder_with_provider(
            roots(&ca, m.id.as_str())?,
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsError::Config(format!("verifier for {}: {e}", m.id)))?;
        peers.insert(m.id.clone(), v);
    }
    Ok(peers)
}

fn to_rustls(e: TlsError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// The client-certificate verifier of a relay: peers against the roster,
/// officers against this authority's CA and CRL.
#[derive(Debug)]
pub struct FederationVerifier {
    own: AuthorityId,
    /// One verifier per member, replaced whole when a newer roster is put
    /// in force ([`FederationVerifier::set_roster`]).
    peers: RwLock<Arc<PeerVerifiers>>,
    /// The node certificates the roster in force revoked, replaced with
    /// `peers`.
    revoked: RwLock<Arc<RevokedNodes>>,
    /// Replaced whole when a new CRL is put in force
    /// ([`FederationVerifier::set_officers`]); every handshake reads the
    /// one in force.
    officers: RwLock<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl FederationVerifier {
    /// Builds the verifier for the current roster. A newer roster is put
    /// in force with [`FederationVerifier::set_roster`], a newer CRL with
    /// [`FederationVerifier::set_officers`].
    pub fn new(roster: &Roster, officers: &OfficerTrust) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let peers = peer_verifiers(roster, &provider)?;
        let officer_verifier = officers.verifier(&provider)?;
        Ok(Arc::new(FederationVerifier {
            own: officers.authority.clone(),
            peers: RwLock::new(Arc::new(peers)),
            revoked: RwLock::new(Arc::new(revoked_nodes(roster))),
            officers: RwLock::new(officer_verifier),
            provider,
        }))
    }

    /// Puts a newer roster in force: every handshake and identification
    /// from now on checks node certificates against the CAs it lists, and
    /// a member it no longer lists is refused, and so is a node
    /// certificate it revokes. Connections already open are the caller's
    /// to close.
    pub fn set_roster(&self, roster: &Roster) -> Result<(), TlsError> {
        let peers = peer_verifiers(roster, &self.provider)?;
        let mut slot = self
            .peers
            .write()
            .map_err(|_| TlsError::Config("the peer verifier lock is poisoned".into()))?;
        *slot = Arc::new(peers);
        drop(slot);
        let mut slot = self
            .revoked
            .write()
            .map_err(|_| TlsError::Config("the revoked-node lock is poisoned".into()))?;
        *slot = Arc::new(revoked_nodes(roster));
        Ok(())
    }

    fn check_node_not_revoked(&self, id: &AuthorityId, end_entity: &[u8]) -> Result<(), TlsError> {
        let revoked = self
            .revoked
            .read()
            .map_err(|_| TlsError::Config("the revoked-node lock is poisoned".into()))?
            .clone();
        match revoked.get(id) {
            Some(list) => check_not_revoked(id, list, end_entity),
            None => Ok(()),
        }
    }

    fn peer_verifier(&self, id: &AuthorityId) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let peers = self
            .peers
            .read()
            .map_err(|_| TlsError::Config("the peer verifier lock is poisoned".into()))?;
        peers
            .get(id)
            .cloned()
            .ok_or_else(|| TlsError::UnknownAuthority(id.clone()))
    }

    /// Puts another CRL of this authority in force: every handshake and
    /// identification from now on checks officer certificates against it.
    /// Connections already open are the caller's to close.
    pub fn set_officers(&self, officers: &OfficerTrust) -> Result<(), TlsError> {
        if officers.authority != self.own {
            return Err(TlsError::Config(format!(
                "officer trust of {} given to the relay of {}",
                officers.authority, self.own
            )));
        }
        let verifier = officers.verifier(&self.provider)?;
        let mut slot = self
            .officers
            .write()
            .map_err(|_| TlsError::Config("the officer verifier lock is poisoned".into()))?;
        *slot = verifier;
        Ok(())
    }

    fn officer_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        self.officers
            .read()
            .map(|v| v.clone())
            .map_err(|_| TlsError::Config("the officer verifier lock is poisoned".into()))
    }

    /// Verifies a client chain and says who it is (without the ALPN check).
    pub fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Identity, TlsError> {
        let info = CertInfo::parse(end_entity).map_err(TlsError::Certificate)?;
        let claim = info.claim().map_err(TlsError::Certificate)?;
        match claim {
            Claim::Node(id) => {
                let v = self.peer_verifier(&id)?;
                v.verify_client_cert(end_entity, intermediates, now)
                    .map_err(|e| TlsError::Refused {
                        who: format!("relay {id}"),
                        reason: format!("{e} (it must chain to the CA the roster lists for {id})"),
                    })?;
                self.check_node_not_revoked(&id, end_entity)?;
                Ok(Identity::Peer(id))
            }
            Claim::Officer {
                authority,
                role,
                name,
            } => {
                if authority != self.own {
                    return Err(TlsError::ForeignOfficer {
                        claimed: authority,
                        own: self.own.clone(),
                    });
                }
                self.officer_verifier()?
                    .verify_client_cert(end_entity, intermediates, now)
                    .map_err(|e| TlsError::Refused {
                        who: format!("officer {name:?} ({role})"),
                        reason: e.to_string(),
                    })?;
                Ok(Identity::Officer(Officer {
                    authority,
                    name,
                    role,
                    serial: info.serial_hex(),
                }))
            }
        }
    }

    /// After the handshake: checks the peer's chain again and that the
    /// negotiated ALPN fits it, and returns who it is. `chain` is what
    /// `peer_certificates()` (rustls) or `peer_identity()` (quinn) returns.
    pub fn identify(
        &self,
        chain: &[CertificateDer<'_>],
        alpn: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Identity, TlsError> {
        let (ee, rest) = chain
            .split_first()
            .ok_or_else(|| TlsError::Certificate("the client presented no certificate".into()))?;
        let id = self.verify_chain(ee, rest, now)?;
        match (&id, alpn) {
            (Identity::Peer(_), Some(ALPN_PEER)) | (Identity::Officer(_), Some(ALPN_OFFICER)) => {
                Ok(id)
            }
            (Identity::Peer(a), _) => Err(TlsError::Alpn(format!(
                "relay {a} connected without ALPN kurir/1"
            ))),
            (Identity::Officer(o), _) => Err(TlsError::Alpn(format!(
                "officer {:?} connected without ALPN kurir-client/1",
                o.name
            ))),
        }
    }
}

impl ClientCertVerifier for FederationVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)
            .map(|_| ClientCertVerified::assertion())
            .map_err(to_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The relay's server configuration (both ALPNs, client certificates
/// required), with the system clock.
pub fn server_config(
    verifier: Arc<FederationVerifier>,
    own: &Credentials,
) -> Result<ServerConfig, TlsError> {
    server_config_with_time(
        verifier,
        own,
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )
}

/// [`server_config`] with a given clock (tests).
pub fn server_config_with_time(
    verifier: Arc<FederationVerifier>,
    own: &Credentials,
    time: Arc<dyn TimeProvider>,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_details(provider(), time)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(own.chain.clone(), own.key.clone_key())
        .map_err(|e| TlsError::Config(format!("own certificate and key: {e}")))?;
    config.alpn_protocols = vec![ALPN_PEER.to_vec(), ALPN_OFFICER.to_vec()];
    Ok(config)
}

/// The relay's server configuration with its node certificate behind
/// `node`: every handshake presents the certificate in force at that moment
/// ([`NodeCertificate::replace`] renews it without a new endpoint).
pub fn node_server_config(
    verifier: Arc<FederationVerifier>,
    node: Arc<NodeCertificate>,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(node);
    config.alpn_protocols = vec![ALPN_PEER.to_vec(), ALPN_OFFICER.to_vec()];
    Ok(config)
}

/// Checks a relay's server certificate: chains to `ca`, names the host, and
/// carries `urn:kurir:authority:<expected>`.
#[derive(Debug)]
struct RelayServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    expected: AuthorityId,
    /// Node certificates of `expected` the roster revoked (empty for an
    /// officer's own relay).
    revoked: Vec<RevokedCert>,
}

impl ServerCertVerifier for RelayServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let info = CertInfo::parse(end_entity).map_err(|e| to_rustls(TlsError::Certificate(e)))?;
        match info
            .claim()
            .map_err(|e| to_rustls(TlsError::Certificate(e)))?
        {
            Claim::Node(id) if id == self.expected => {
                check_not_revoked(&id, &self.revoked, end_entity).map_err(to_rustls)?;
                Ok(verified)
            }
            other => Err(to_rustls(TlsError::Certificate(format!(
                "expected the relay of {}, the certificate claims {other:?}",
                self.expected
            )))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client builder for a relay of `expected` whose certificate chains
/// to `ca`, up to the client's own certificate.
fn client_builder(
    ca: &CertificateDer<'static>,
    expected: &AuthorityId,
    revoked: Vec<RevokedCert>,
    time: Arc<dyn TimeProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, TlsError> {
    let provider = provider();
    let inner = WebPkiServerVerifier::builder_with_provider(
        roots(ca, expected.as_str())?,
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Config(e.to_string()))?;
    let verifier = Arc::new(RelayServerVerifier {
        inner,
        expected: expected.clone(),
        revoked,
    });
    Ok(ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier))
}

fn client_config(
    ca: &CertificateDer<'static>,
    expected: &AuthorityId,
    revoked: Vec<RevokedCert>,
    own: &Credentials,
    alpn: &[u8],
    time: Arc<dyn TimeProvider>,
) -> Result<ClientConfig, TlsError> {
    let mut config = client_builder(ca, expected, revoked, time)?
        .with_client_auth_cert(own.chain.clone(), own.key.clone_key())
        .map_err(|e| TlsError::Config(format!("own certificate and key: {e}")))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// Configuration to connect to the relay of `peer`: its server certificate
/// must chain to the CA the roster lists for `peer`, name the endpoint
/// host and not be revoked in the roster; this relay presents its node
/// certificate. Returns the server name
/// to connect with (the first endpoint's host) and its port.
pub fn peer_client_config(
    roster: &Roster,
    own: &Credentials,
    peer: &AuthorityId,
) -> Result<(ClientConfig, ServerName<'static>, u16), TlsError> {
    peer_client_config_with_time(
        roster,
        own,
        peer,
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )
}

/// [`peer_client_config`] with a given clock (tests).
pub fn peer_client_config_with_time(
    roster: &Roster,
    own: &Credentials,
    peer: &AuthorityId,
    time: Arc<dyn TimeProvider>,
) -> Result<(ClientConfig, ServerName<'static>, u16), TlsError> {
    let to = PeerEndpoint::of(roster, peer)?;
    let config = client_config(&to.ca, peer, to.revoked, own, ALPN_PEER, time)?;
    Ok((config, to.name, to.port))
}

/// [`peer_client_config`] presenting the node certificate in force behind
/// `node` at each handshake: what the relay dials with.
pub fn node_peer_client_config(
    roster: &Roster,
    node: Arc<NodeCertificate>,
    peer: &AuthorityId,
) -> Result<(ClientConfig, ServerName<'static>, u16), TlsError> {
    let to = PeerEndpoint::of(roster, peer)?;
    let mut config = client_builder(
        &to.ca,
        peer,
        to.revoked,
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )?
    .with_client_cert_resolver(node);
    config.alpn_protocols = vec![ALPN_PEER.to_vec()];
    Ok((config, to.name, to.port))
}

/// What dialing a peer takes from the roster: the server name and port of
/// its first endpoint, the CA its certificate must chain to, and the node
/// certificates the roster revoked.
struct PeerEndpoint {
    name: ServerName<'static>,
    port: u16,
    ca: CertificateDer<'static>,
    revoked: Vec<RevokedCert>,
}

impl PeerEndpoint {
    fn of(roster: &Roster, peer: &AuthorityId) -> Result<PeerEndpoint, TlsError> {
        let member = roster
            .member(peer)
            .ok_or_else(|| TlsError::UnknownAuthority(peer.clone()))?;
        let endpoint = member
            .endpoints
            .first()
            .ok_or_else(|| TlsError::Config(format!("the roster lists no endpoint for {peer}")))?;
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| TlsError::Config(format!("endpoint host of {peer}: {e}")))?;
        Ok(PeerEndpoint {
            name,
            port: endpoint.port,
            ca: CertificateDer::from(member.tls_ca.clone()),
            revoked: member.revoked_node_certs.clone(),
        })
    }
}

/// Configuration for an officer to connect to its own relay: the relay's
/// certificate must chain to `ca` (the authority's CA) and carry
/// `urn:kurir:authority:<authority>`; the officer presents its certificate.
pub fn officer_client_config(
    ca: &CertificateDer<'static>,
    authority: &AuthorityId,
    officer: &Credentials,
) -> Result<ClientConfig, TlsError> {
    officer_client_config_with_time(
        ca,
        authority,
        officer,
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )
}

/// [`officer_client_config`] with a given clock (tests).
pub fn officer_client_config_with_time(
    ca: &CertificateDer<'static>,
    authority: &AuthorityId,
    officer: &Credentials,
    time: Arc<dyn TimeProvider>,
) -> Result<ClientConfig, TlsError> {
    client_config(ca, authority, Vec::new(), officer, ALPN_OFFICER, time)
}

/// A fixed clock, for tests and for checking at a chosen time.
#[derive(Debug, Clone, Copy)]
pub struct FixedTime(pub Timestamp);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(unix_time(self.0))
    }
}
