//! Connections to and from peers: the QUIC endpoint, the open connection
//! to each peer (shared by every send and control exchange), one dial per
//! peer at a time, and the slots that cap connections from each peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kurir_certs::Roster;
use kurir_certs::tls::{self, Credentials, FederationVerifier};
use kurir_proto::AuthorityId;
use kurir_proto::audit::{PeerRequest, PeerResponse};

use super::conn::{read_frame, write_frame};

/// How long a peer has to answer a parcel with a receipt, or a control
/// request.
pub(super) const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoint and the connections to peers.
pub(super) struct Links {
    endpoint: quinn::Endpoint,
    /// Identifies the peer or officer behind an incoming connection.
    verifier: Arc<FederationVerifier>,
    /// Presented when dialing a peer.
    credentials: Credentials,
    /// Where peers are and which certificates they present.
    roster: Arc<Roster>,
    /// Connections served at once from one peer.
    max_per_peer: usize,
    /// The open connection to each peer.
    peers: tokio::sync::Mutex<HashMap<AuthorityId, quinn::Connection>>,
    /// The dial in progress or last failed, per peer.
    dials: Mutex<HashMap<AuthorityId, Arc<tokio::sync::Mutex<Dial>>>>,
    /// Connections now served from each peer.
    slots: Mutex<HashMap<AuthorityId, usize>>,
}

/// The last connection attempt to one peer.
#[derive(Debug, Default)]
struct Dial {
    /// When it failed, and why.
    failed: Option<(std::time::Instant, String)>,
}

impl Links {
    pub(super) fn new(
        endpoint: quinn::Endpoint,
        verifier: Arc<FederationVerifier>,
        credentials: Credentials,
        roster: Arc<Roster>,
        max_per_peer: usize,
    ) -> Links {
        Links {
            endpoint,
            verifier,
            credentials,
            roster,
            max_per_peer,
            peers: tokio::sync::Mutex::new(HashMap::new()),
            dials: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    pub(super) fn verifier(&self) -> &FederationVerifier {
        &self.verifier
    }

    /// Takes a slot for a connection from `peer`; `false` when it has as
    /// many connections as it may.
    pub(super) fn claim_slot(&self, peer: &AuthorityId) -> bool {
        let Ok(mut counts) = self.slots.lock() else {
            return false;
        };
        let n = counts.entry(peer.clone()).or_default();
        if *n >= self.max_per_peer {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives back a slot [`Links::claim_slot`] took.
    pub(super) fn release_slot(&self, peer: &AuthorityId) {
        if let Ok(mut counts) = self.slots.lock()
            && let Some(n) = counts.get_mut(peer)
        {
            *n = n.saturating_sub(1);
        }
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
        let (tls_config, name, port) =
            tls::peer_client_config(&self.roster, &self.credentials, peer)
                .map_err(|e| e.to_string())?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls_config)
            .map_err(|e| e.to_string())?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic));
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_secs(10)));
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
        let exchange = round_trip(&conn, &bytes, max, "no answer");
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
    bytes: &[u8],
    max: usize,
    missing: &str,
) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    // A receiver that refuses the frame from its length prefix stops
    // reading and answers with a signed rejection: read it even when the
    // write was cut short.
    let written = write_frame(&mut send, bytes).await;
    match read_frame(&mut recv, max).await {
        Ok(answer) => Ok(answer),
        Err(e) => {
            written?;
            Err(format!("{missing}: {e:?}"))
        }
    }
}
