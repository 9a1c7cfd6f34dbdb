//! Connections to and from peers: the QUIC endpoint, the open connection
//! to each peer (shared by every send and control exchange), one dial per
//! peer at a time, the connections served from each peer, and the slots
//! that cap them. The roster these read (endpoints, CAs) is replaced whole
//! when a newer one is put in force ([`Links::set_roster`]), and the
//! connections it ends are closed ([`Links::close_members`], and
//! [`Links::close_revoked_nodes`] for those that presented a node
//! certificate it revokes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kurir_certs::Roster;
use kurir_certs::tls::{self, FederationVerifier, NodeCertificate};
use kurir_certs::x509::CertInfo;
use kurir_proto::audit::{PeerRequest, PeerResponse};
use kurir_proto::{AuthorityId, Timestamp, frame};

use super::conn::read_frame;
use crate::clock::Clock;

/// How long a peer has to answer a parcel with a receipt, or a control
/// request.
pub(super) const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// What a peer may send on a connection this relay dialed before it is
/// read: a few answers of the largest kind (1 MiB).
const DIALED_RECEIVE_WINDOW: u32 = 4 * 1024 * 1024;

/// The endpoint and the connections to peers.
pub(super) struct Links {
    endpoint: quinn::Endpoint,
    /// Identifies the peer or officer behind an incoming connection.
    verifier: Arc<FederationVerifier>,
    /// Presented when dialing a peer: the node certificate in force at
    /// each handshake.
    node_cert: Arc<NodeCertificate>,
    /// Where peers are and which certificates they present.
    roster: RwLock<Arc<Roster>>,
    /// When each member's CA certificate (in the roster) is valid.
    cas: RwLock<Arc<MemberCas>>,
    /// The connections served from peers: stable id → (peer, connection).
    served: Mutex<HashMap<usize, (AuthorityId, quinn::Connection)>>,
    /// The relay's clock (the CAs' validity is checked against it).
    clock: Arc<dyn Clock>,
    /// The open connection to each peer.
    peers: tokio::sync::Mutex<HashMap<AuthorityId, quinn::Connection>>,
    /// The dial in progress or last failed, per peer.
    dials: Mutex<HashMap<AuthorityId, Arc<tokio::sync::Mutex<Dial>>>>,
    /// Connections now served from each peer.
    peer_slots: Slots<AuthorityId>,
    /// Connections now served from each officer certificate (by serial).
    officer_slots: Slots<String>,
    /// Incoming handshakes in progress, and how many before a new one must
    /// prove its address first (QUIC Retry).
    handshakes: AtomicUsize,
    handshakes_before_retry: usize,
}

/// Deregisters a connection served from a peer when its handler ends.
pub(super) struct Serving<'a> {
    links: &'a Links,
    id: usize,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if let Ok(mut served) = self.links.served.lock() {
            served.remove(&self.id);
        }
    }
}

/// The connection limits [`Links`] enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkLimits {
    /// Connections served at once from one peer.
    pub(super) per_peer: usize,
    /// Connections served at once from one officer certificate.
    pub(super) per_officer: usize,
    /// Handshakes in progress above which new connections are retried.
    pub(super) handshakes_before_retry: usize,
}

/// The last connection attempt to one peer.
#[derive(Debug, Default)]
struct Dial {
    /// When it failed, and why.
    failed: Option<(std::time::Instant, String)>,
}

/// Counted slots per key (a peer, an officer) with a cap.
#[derive(Debug)]
struct Slots<K> {
    cap: usize,
    held: Mutex<HashMap<K, usize>>,
}

impl<K: std::hash::Hash + Eq + Clone> Slots<K> {
    fn new(cap: usize) -> Slots<K> {
        Slots {
            cap,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn claim(&self, key: &K) -> bool {
        let Ok(mut counts) = self.held.lock() else {
            return false;
        };
        let n = counts.entry(key.clone()).or_default();
        if *n >= self.cap {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, key: &K) {
        if let Ok(mut counts) = self.held.lock()
            && let Some(n) = counts.get_mut(key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(key);
            }
        }
    }
}

/// When each member's CA certificate is valid, from the roster. A CA can
/// expire while the roster that lists it stays in force; TLS does not
/// check the validity of a trust anchor, so the relay does: a member whose
/// CA is not valid is refused, its connections and dials alike, until a
/// roster with its renewed CA is in force.
#[derive(Debug, Default)]
pub(super) struct MemberCas(HashMap<AuthorityId, (Timestamp, Timestamp)>);

impl MemberCas {
    pub(super) fn of(roster: &Roster) -> MemberCas {
        MemberCas(
            roster
                .members()
                .iter()
                .filter_map(|m| {
                    let info = CertInfo::parse(&m.tls_ca).ok()?;
                    Some((m.id.clone(), (info.not_before, info.not_after)))
                })
                .collect(),
        )
    }

    /// Why `member`'s CA is not valid at `now`, if it is not.
    pub(super) fn check(&self, member: &AuthorityId, now: Timestamp) -> Result<(), CaNotValid> {
        match self.0.get(member) {
            Some(&(not_before, not_after)) if now < not_before || now > not_after => {
                Err(CaNotValid {
                    member: member.clone(),
                    now,
                    not_before,
                    not_after,
                })
            }
            _ => Ok(()),
        }
    }

    /// Every member whose CA is not valid at `now`.
    pub(super) fn not_valid_at(&self, now: Timestamp) -> Vec<CaNotValid> {
        let mut out: Vec<CaNotValid> = self
            .0
            .keys()
            .filter_map(|m| self.check(m, now).err())
            .collect();
        out.sort_by(|a, b| a.member.cmp(&b.member));
        out
    }
}

/// A member's CA certificate in the roster is outside its validity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the CA certificate the roster lists for {member} is not valid at {now} (valid from \
     {not_before} until {not_after}): {member}'s connections are refused until a roster with its \
     renewed CA is in force"
)]
pub(super) struct CaNotValid {
    pub(super) member: AuthorityId,
    pub(super) now: Timestamp,
    pub(super) not_before: Timestamp,
    pub(super) not_after: Timestamp,
}

impl Links {
    pub(super) fn new(
        endpoint: quinn::Endpoint,
        verifier: Arc<FederationVerifier>,
        node_cert: Arc<NodeCertificate>,
        roster: Arc<Roster>,
        clock: Arc<dyn Clock>,
        limits: LinkLimits,
    ) -> Links {
        Links {
            clock,
            endpoint,
            verifier,
            node_cert,
            cas: RwLock::new(Arc::new(MemberCas::of(&roster))),
            roster: RwLock::new(roster),
            served: Mutex::new(HashMap::new()),
            peers: tokio::sync::Mutex::new(HashMap::new()),
            dials: Mutex::new(HashMap::new()),
            peer_slots: Slots::new(limits.per_peer),
            officer_slots: Slots::new(limits.per_officer),
            handshakes: AtomicUsize::new(0),
            handshakes_before_retry: limits.handshakes_before_retry,
        }
    }

    pub(super) fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    pub(super) fn verifier(&self) -> &FederationVerifier {
        &self.verifier
    }

    /// The members' CA validity, in the roster in force.
    pub(super) fn cas(&self) -> Arc<MemberCas> {
        match self.cas.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A snapshot of the roster in force.
    fn roster(&self) -> Arc<Roster> {
        match self.roster.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a newer roster in force for dials, the members' CA validity
    /// and the TLS verifier of incoming connections.
    pub(super) fn set_roster(&self, roster: Arc<Roster>) -> Result<(), kurir_certs::TlsError> {
        self.verifier.set_roster(&roster)?;
        let cas = Arc::new(MemberCas::of(&roster));
        match self.cas.write() {
            Ok(mut slot) => *slot = cas,
            Err(poisoned) => *poisoned.into_inner() = cas,
        }
        match self.roster.write() {
            Ok(mut slot) => *slot = roster,
            Err(poisoned) => *poisoned.into_inner() = roster,
        }
        Ok(())
    }

    /// Whether the roster in force lists `peer`.
    pub(super) fn is_member(&self, peer: &AuthorityId) -> bool {
        self.roster().member(peer).is_some()
    }

    /// Whether the roster in force revokes the node certificate `cert` of
    /// `peer`.
    pub(super) fn revokes(&self, peer: &AuthorityId, cert: &[u8]) -> bool {
        self.roster().revoked_node_cert(peer, cert).is_some()
    }

    /// Tracks a connection served from `peer` until the guard is dropped,
    /// so that a roster that removes `peer` closes it.
    pub(super) fn serving(&self, peer: &AuthorityId, conn: &quinn::Connection) -> Serving<'_> {
        let id = conn.stable_id();
        if let Ok(mut served) = self.served.lock() {
            served.insert(id, (peer.clone(), conn.clone()));
        }
        Serving { links: self, id }
    }

    /// Closes every connection to and from the members in `ids` with
    /// `code` and `reason`; returns how many were closed.
    pub(super) async fn close_members(
        &self,
        ids: &[AuthorityId],
        code: u32,
        reason: &[u8],
    ) -> usize {
        let mut closed = 0;
        if let Ok(served) = self.served.lock() {
            for (peer, conn) in served.values() {
                if ids.contains(peer) {
                    conn.close(code.into(), reason);
                    closed += 1;
                }
            }
        }
        let mut peers = self.peers.lock().await;
        for id in ids {
            if let Some(conn) = peers.remove(id) {
                conn.close(code.into(), reason);
                closed += 1;
            }
        }
        closed
    }

    /// Closes every connection to and from a peer whose node certificate
    /// `roster` revokes (the certificate each presented at its handshake),
    /// logging the member and the fingerprint; returns how many were closed.
    pub(super) async fn close_revoked_nodes(&self, roster: &Roster, code: u32) -> usize {
        let revoked = |peer: &AuthorityId, conn: &quinn::Connection| {
            let chain = conn
                .peer_identity()
                .and_then(|any| {
                    any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                        .ok()
                })
                .map(|b| *b)
                .unwrap_or_default();
            let cert = chain.first()?;
            roster.revoked_node_cert(peer, cert).cloned()
        };
        let mut closed = 0;
        let mut close = |peer: &AuthorityId, conn: &quinn::Connection, dialed: bool| {
            if let Some(r) = revoked(peer, conn) {
                tracing::warn!(
                    %peer,
                    sha256 = %r.sha256_hex(),
                    revoked_at = %r.revoked_at,
                    reason = %r.reason,
                    dialed,
                    "closing a connection whose node certificate the roster in force revokes"
                );
                conn.close(code.into(), b"node certificate revoked");
                closed += 1;
                true
            } else {
                false
            }
        };
        if let Ok(served) = self.served.lock() {
            for (peer, conn) in served.values() {
                close(peer, conn, false);
            }
        }
        let mut peers = self.peers.lock().await;
        peers.retain(|peer, conn| !close(peer, conn, true));
        closed
    }

    pub(super) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Takes a slot for a connection from `peer`; `false` when it has as
    /// many connections as it may.
    pub(super) fn claim_slot(&self, peer: &AuthorityId) -> bool {
        self.peer_slots.claim(peer)
    }

    /// Gives back a slot [`Links::claim_slot`] took.
    pub(super) fn release_slot(&self, peer: &AuthorityId) {
        self.peer_slots.release(peer);
    }

    /// Takes a slot for a connection of the officer certificate `serial`;
    /// `false` when it has as many connections as it may.
    pub(super) fn claim_officer_slot(&self, serial: &String) -> bool {
        self.officer_slots.claim(serial)
    }

    /// Gives back a slot [`Links::claim_officer_slot`] took.
    pub(super) fn release_officer_slot(&self, serial: &String) {
        self.officer_slots.release(serial);
    }

    /// Counts a handshake that starts; `true` when so many are in progress
    /// already that this one must first prove its address (QUIC Retry).
    /// Every call is matched by [`Links::handshake_done`].
    pub(super) fn handshake_started(&self) -> bool {
        let before = self.handshakes.fetch_add(1, Ordering::SeqCst);
        before >= self.handshakes_before_retry
    }

    /// A handshake counted by [`Links::handshake_started`] ended.
    pub(super) fn handshake_done(&self) {
        self.handshakes.fetch_sub(1, Ordering::SeqCst);
    }

    /// The open connection to `peer`, or a new one. One attempt per peer at
    /// a time: deliveries that find no connection wait for the attempt in
    /// progress and share its outcome, instead of each opening a connection
    /// of its own (a queue resumed after a restart would exceed the peer's
    /// per-peer connection limit and have the surplus refused). The
    /// connection table is not held while connecting, so a peer that does
    /// not answer never holds up the others.
    pub(super) async fn connect(&self, peer: &AuthorityId) -> Result<quinn::Connection, String> {
        if let Some(c) = self.open_connection(peer).await {
            return Ok(c);
        }
        let dial = self
            .dials
            .lock()
            .map_err(|_| "connection attempts lock poisoned".to_owned())?
            .entry(peer.clone())
            .or_default()
            .clone();
        let waiting_since = std::time::Instant::now();
        let mut dial = dial.lock().await;
        if let Some(c) = self.open_connection(peer).await {
            return Ok(c);
        }
        if let Some((at, e)) = &dial.failed
            && *at >= waiting_since
        {
            return Err(e.clone());
        }
        let result = self.dial(peer).await;
        dial.failed = result
            .as_ref()
            .err()
            .map(|e| (std::time::Instant::now(), e.clone()));
        result
    }

    async fn open_connection(&self, peer: &AuthorityId) -> Option<quinn::Connection> {
        let peers = self.peers.lock().await;
        peers
            .get(peer)
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    async fn dial(&self, peer: &AuthorityId) -> Result<quinn::Connection, String> {
        let roster = self.roster();
        if roster.member(peer).is_none() {
            return Err(format!(
                "{peer} is not a member of the roster in force (version {}): not dialed",
                roster.version()
            ));
        }
        self.cas()
            .check(peer, self.now())
            .map_err(|e| e.to_string())?;
        let (tls_config, name, port) =
            tls::node_peer_client_config(&self.roster(), self.node_cert.clone(), peer)
                .map_err(|e| e.to_string())?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls_config)
            .map_err(|e| e.to_string())?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic));
        // On a connection it dials, the relay only reads the answers on its
        // own streams (a receipt, a control answer of at most 1 MiB): the
        // peer may open no streams, and gets a bounded window.
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(0u32.into())
            .max_concurrent_uni_streams(0u32.into())
            .receive_window(DIALED_RECEIVE_WINDOW.into())
            .keep_alive_interval(Some(Duration::from_secs(10)));
        client.transport_config(Arc::new(transport));
        let host = name.to_str().into_owned();
        let local_v4 = self
            .endpoint
            .local_addr()
            .map(|a| a.is_ipv4())
            .unwrap_or(true);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .find(|a| a.is_ipv4() == local_v4)
            .ok_or_else(|| format!("{host} has no address of this relay's IP version"))?;
        let connecting = self
            .endpoint
            .connect_with(client, addr, &host)
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                format!(
                    "cannot connect to {peer} at {host}:{port}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("cannot connect to {peer} at {host}:{port}: {e}"))?;
        self.peers.lock().await.insert(peer.clone(), conn.clone());
        Ok(conn)
    }

    /// Forgets `conn` as the connection to `peer` (after it failed), unless
    /// another one replaced it already.
    pub(super) async fn forget(&self, peer: &AuthorityId, conn: &quinn::Connection) {
        let mut peers = self.peers.lock().await;
        if peers
            .get(peer)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            peers.remove(peer);
        }
    }

    /// Sends a control request to a peer on a stream of its own and reads
    /// the answer (at most `max` bytes), within [`RECEIPT_TIMEOUT`].
    pub(super) async fn exchange(
        &self,
        peer: &AuthorityId,
        request: &PeerRequest,
        max: usize,
    ) -> Result<PeerResponse, String> {
        let bytes = request.encode().map_err(|e| e.to_string())?;
        let conn = self.connect(peer).await?;
        let exchange = round_trip(&conn, Bytes::from(bytes), max, "no answer");
        let answer = tokio::time::timeout(RECEIPT_TIMEOUT, exchange)
            .await
            .map_err(|_| "no answer in time".to_owned())??;
        PeerResponse::decode(&answer).map_err(|e| e.to_string())
    }
}

/// One exchange on a stream of its own: writes `bytes` as one frame and
/// reads the answer (at most `max` bytes), also when the peer stopped the
/// write; `missing` starts the error when no answer comes.
pub(super) async fn round_trip(
    conn: &quinn::Connection,
    bytes: Bytes,
    max: usize,
    missing: &str,
) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    // A receiver that refuses the frame from its length prefix stops
    // reading and answers with a signed rejection: read it even when the
    // write was cut short.
    let written = write_shared_frame(&mut send, bytes).await;
    match read_frame(&mut recv, max, RECEIPT_TIMEOUT).await {
        Ok(answer) => Ok(answer),
        Err(e) => {
            written?;
            Err(format!("{missing}: {e:?}"))
        }
    }
}

/// Writes `payload` as one frame and finishes the stream, as
/// `conn::write_frame` does, but hands the shared bytes to the stream as they
/// are instead of copying them into a frame first.
async fn write_shared_frame(send: &mut quinn::SendStream, payload: Bytes) -> Result<(), String> {
    let too_large = || {
        frame::FrameError::TooLarge {
            len: payload.len() as u64,
            max: frame::HARD_MAX_FRAME,
        }
        .to_string()
    };
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= frame::HARD_MAX_FRAME)
        .ok_or_else(too_large)?;
    let mut chunks = [Bytes::copy_from_slice(&len.to_be_bytes()), payload];
    send.write_all_chunks(&mut chunks)
        .await
        .map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())
}
