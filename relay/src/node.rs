//! The tokio/quinn driver: one QUIC endpoint for peers and officers, the
//! outbox loop, and the handlers. It only carries out what the sans-IO core
//! decides and what the store makes durable.
//!
//! Tasks never outlive the [`Node`]: every task is in one `JoinSet`, and
//! [`Node::shutdown`] stops accepting, lets in-flight work finish (bounded),
//! closes the endpoint and flushes the store, in that order.
//!
//! # Layout
//!
//! This file holds the [`Node`] (start, accessors, shutdown), the state its
//! tasks share, [`NodeError`], the endpoint setup and start-up checks, and
//! the connection plumbing every side uses: accepting and identifying
//! connections, serving their streams, reading and writing frames.
//!
//! - `peer`: serving peer streams (parcels, refusals, cosigning and proof
//!   requests);
//! - `outbox`: the outbox loop, sending parcels, dialing peers, control
//!   exchanges with them;
//! - `officer`: the officer API;
//! - `checkpoints`: signing checkpoints, asking peers to cosign them, the
//!   rollback alarm (who is asked and what an answer means:
//!   [`crate::core::cosign`]);
//! - `proofs`: inclusion proofs of receipts, both sides (which to ask for
//!   and which to keep: [`crate::core::proofs`]);
//! - `clock`: the readmission clock, the retention policy (which bodies are
//!   due: [`crate::core::retention`]), case updates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kurir_certs::tls::{self, Credentials, FederationVerifier, Identity, OfficerTrust};
use kurir_certs::{Accepted as RosterAccepted, Roster};
use kurir_proto::api::Summary;
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, Timestamp, frame};
use rand::RngExt;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::clock::Clock;
use crate::config::RelayConfig;
use kurir_proto::audit::{Entry, Record};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};

use crate::core::delivery::Outbox;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, StoreOptions};

mod checkpoints;
mod clock;
mod officer;
mod outbox;
mod peer;
mod proofs;

use outbox::Dial;

/// How long shutdown waits for in-flight work.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// QUIC application error codes.
const CLOSE_REFUSED: u32 = 1;
const CLOSE_SHUTDOWN: u32 = 2;

/// Why the relay could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A PKI file (certificate, key, CRL) could not be used.
    #[error("{0}")]
    Pki(#[from] kurir_certs::TlsError),
    /// The roster was refused.
    #[error("{0}")]
    Roster(#[from] kurir_certs::RosterError),
    /// No message key for this authority is valid now.
    #[error("{0}")]
    MessageKey(String),
    /// Storage failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The network could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// QUIC/TLS configuration.
    #[error("QUIC configuration: {0}")]
    Quic(String),
    /// The audit log does not match its signed checkpoints.
    #[error("audit log integrity: {0}")]
    Integrity(String),
}

struct Shared {
    me: AuthorityId,
    config: RelayConfig,
    clock: Arc<dyn Clock>,
    roster: Arc<Roster>,
    message_key: SigningKey,
    /// Signs this relay's checkpoints.
    log_key: SigningKey,
    credentials: Credentials,
    verifier: Arc<FederationVerifier>,
    store: Store,
    outbox: Mutex<Outbox>,
    wake: Notify,
    arrivals: broadcast::Sender<Summary>,
    /// `status` requests waiting for deliveries to become final.
    settled: officer::Settled,
    endpoint: quinn::Endpoint,
    peers: tokio::sync::Mutex<HashMap<AuthorityId, quinn::Connection>>,
    dials: Mutex<HashMap<AuthorityId, Arc<tokio::sync::Mutex<Dial>>>>,
    peer_connections: Mutex<HashMap<AuthorityId, usize>>,
    /// Serialises updates of readmission cases.
    cases_lock: tokio::sync::Mutex<()>,
    /// Serialises witnessing of peers' checkpoints.
    witness_lock: tokio::sync::Mutex<()>,
    /// Per peer, the size of our newest checkpoint it has cosigned.
    cosigned: Mutex<HashMap<AuthorityId, u64>>,
    /// Set when peers' cosignatures show that our log was rolled back.
    alarm: Mutex<Option<String>>,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

/// A running relay. Dropping it without [`Node::shutdown`] aborts its tasks.
#[derive(Debug)]
pub struct Node {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shared: Arc<SharedHandle>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Keeps `Shared` out of `Debug` output.
struct SharedHandle(Arc<Shared>);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("me", &self.0.me).finish()
    }
}

impl Node {
    /// Starts a relay. `socket`, if given, is an already bound UDP socket
    /// (tests bind port 0 first, so the roster can name the real port).
    pub async fn start(
        config: RelayConfig,
        clock: Arc<dyn Clock>,
        socket: Option<std::net::UdpSocket>,
    ) -> Result<Node, NodeError> {
        let now = clock.now();
        let me = config.authority.clone();
        let store = Store::open_with(
            &config.data_dir,
            StoreOptions {
                min_free_bytes: config.min_free_bytes,
                flush_timeout: config.flush_timeout,
                ..StoreOptions::new(config.durability)
            },
        )?;
        let origin = log_origin(&me);
        let log_key = kurir_certs::keys::read_secret_key(
            &config
                .authority_dir
                .join(kurir_certs::authority::layout::LOG_KEY),
        )
        .map_err(|e| NodeError::MessageKey(e.to_string()))?;
        check_log(&store, &origin, &log_key.verifying_key())?;
        store
            .audit(vec![Entry::new(
                now,
                Record::Started {
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            )])
            .await?;
        let roster = Arc::new(load_roster(&config.roster_path, &me, &store, now).await?);
        if roster.log_key(&me) != Some(log_key.verifying_key()) {
            return Err(NodeError::MessageKey(format!(
                "the log key in {} is not the log key the roster lists for {me}",
                config.authority_dir.display()
            )));
        }
        if roster.member(&me).is_none() {
            return Err(NodeError::MessageKey(format!(
                "the roster {} (version {}) does not list {me}: add this authority to the \
                 roster first (kurir-certs roster add)",
                config.roster_path.display(),
                roster.version()
            )));
        }
        let message_key = pick_message_key(&config.authority_dir, &me, &roster, now)?;
        let credentials = Credentials::node(&config.authority_dir)?;
        let officers = OfficerTrust::load(&config.authority_dir)?;
        let verifier = FederationVerifier::new(&roster, &officers)?;
        let server_tls = tls::server_config(verifier.clone(), &credentials)?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(
            quinn::crypto::rustls::QuicServerConfig::try_from(server_tls)
                .map_err(|e| NodeError::Quic(e.to_string()))?,
        ));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(config.max_streams_per_connection.into())
            .max_concurrent_uni_streams(0u32.into())
            .keep_alive_interval(Some(Duration::from_secs(10)));
        let transport = Arc::new(transport);
        server.transport_config(transport.clone());

        let socket = match socket {
            Some(s) => s,
            None => {
                std::net::UdpSocket::bind(config.listen).map_err(|source| NodeError::Listen {
                    addr: config.listen,
                    source,
                })?
            }
        };
        let endpoint = quinn::Endpoint::new(
            endpoint_config(&log_key),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
        let local_addr = endpoint.local_addr().map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;

        let cosigned = cosigned_by_peers(&store, &roster, &me)?;
        let mut outbox = Outbox::new(config.retry, rand::rng().random());
        let open = store.open_deliveries()?;
        let resumed = open.len();
        for d in open {
            outbox.insert(d);
        }
        let (stop, shutdown) = watch::channel(false);
        let (arrivals, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            me: me.clone(),
            metrics: Metrics::default(),
            config,
            clock,
            roster,
            message_key,
            log_key,
            credentials,
            verifier,
            store,
            outbox: Mutex::new(outbox),
            wake: Notify::new(),
            arrivals,
            settled: officer::Settled::default(),
            endpoint,
            peers: tokio::sync::Mutex::new(HashMap::new()),
            dials: Mutex::new(HashMap::new()),
            peer_connections: Mutex::new(HashMap::new()),
            cases_lock: tokio::sync::Mutex::new(()),
            witness_lock: tokio::sync::Mutex::new(()),
            cosigned: Mutex::new(cosigned),
            alarm: Mutex::new(None),
            shutdown,
        });
        info!(
            authority = %me,
            addr = %local_addr,
            roster_version = shared.roster.version(),
            roster_fingerprint = %shared.roster.fingerprint(),
            resumed_deliveries = resumed,
            "relay started"
        );
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(shared.clone()));
        tasks.spawn(outbox::outbox_loop(shared.clone()));
        tasks.spawn(clock::clock_loop(shared.clone()));
        tasks.spawn(checkpoints::checkpoint_loop(shared.clone()));
        let mut metrics_addr = None;
        if let Some(addr) = shared.config.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| NodeError::Listen { addr, source })?;
            metrics_addr = listener.local_addr().ok();
            let s = shared.clone();
            tasks.spawn(async move {
                let stop = s.shutdown.clone();
                let store = s.store.clone();
                let snapshot = move || s.metrics_text();
                let health = move || store.health();
                if let Err(e) = crate::metrics::serve(listener, snapshot, health, stop).await {
                    error!(%addr, error = %e, "metrics endpoint failed");
                }
            });
        }
        Ok(Node {
            local_addr,
            metrics_addr,
            shared: Arc::new(SharedHandle(shared)),
            stop,
            tasks,
        })
    }

    /// The UDP address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TCP address of `/metrics` and `/health`, if they are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The relay's store (for tests and tools; the relay keeps writing to it).
    pub fn store(&self) -> &Store {
        &self.shared.0.store
    }

    /// An integrity alarm, if peers' cosignatures showed that this relay's
    /// audit log was rolled back (also logged, and counted in the metrics).
    pub fn integrity_alarm(&self) -> Option<String> {
        self.shared.0.alarm.lock().ok().and_then(|a| a.clone())
    }

    /// Stops accepting, lets in-flight work finish (at most a few seconds),
    /// closes connections and flushes the store.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        let shared = self.shared.0.clone();
        info!(authority = %shared.me, "relay stopping");
        let _ = self.stop.send(true);
        shared.wake.notify_waiters();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("in-flight work did not finish in time; aborting it");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        checkpoints::checkpoint(&shared).await;
        shared
            .endpoint
            .close(CLOSE_SHUTDOWN.into(), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), shared.endpoint.wait_idle()).await;
        // Bounded (the store's flush timeout), and off the async workers.
        let store = shared.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap_or(Err(StoreError::Closed));
        if let Err(e) = closed {
            error!(authority = %shared.me, error = %e, "the store did not close");
            return Err(e.into());
        }
        info!(authority = %shared.me, "relay stopped");
        Ok(())
    }
}

/// QUIC endpoint settings that outlive the process: the stateless-reset
/// key and the connection-id key are derived from the relay's log key, so
/// a relay restarted after a crash recognises the connection ids of its
/// previous run and resets those connections (RFC 9000 §10.3). A peer
/// that was sending to it learns at once that the connection is gone and
/// dials again, instead of waiting for the receipt timeout or the idle
/// timeout on a connection nobody holds.
fn endpoint_config(secret: &SigningKey) -> quinn::EndpointConfig {
    let derive = |label: &[u8]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(label);
        ctx.update(secret.as_bytes());
        ctx.finish()
    };
    let reset = derive(b"kurir/quic stateless reset key\0");
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        reset.as_ref(),
    )));
    let cid = derive(b"kurir/quic connection id key\0");
    let key = cid
        .as_ref()
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_be_bytes(*b));
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(key)));
    config
}

/// Loads the roster file, refusing a rollback below the version the store
/// has accepted before, and records the accepted one.
async fn load_roster(
    path: &Path,
    me: &AuthorityId,
    store: &Store,
    now: Timestamp,
) -> Result<Roster, NodeError> {
    let bytes = kurir_certs::files::read(path)
        .map_err(|e| NodeError::Roster(kurir_certs::RosterError::File(e)))?;
    let stored = match store.roster()? {
        Some(old) => Some(Roster::verify(&old, now)?),
        None => None,
    };
    let roster =
        match Roster::accept(&bytes, stored.as_ref(), now).map_err(|e| with_path(e, path))? {
            RosterAccepted::Newer(r) => r,
            RosterAccepted::Unchanged => match stored {
                Some(r) => return Ok(r),
                None => Roster::verify(&bytes, now).map_err(|e| with_path(e, path))?,
            },
        };
    let entry = Entry::new(
        now,
        Record::Roster {
            version: roster.version(),
            // Roster::fingerprint: SHA-256 of the signed file bytes.
            fingerprint: kurir_proto::Digest::of(&[roster.to_bytes()]),
        },
    );
    store
        .set_roster(me, roster.to_bytes().to_vec(), vec![entry])
        .await?;
    Ok(roster)
}

use kurir_proto::audit::log_origin;

/// For each peer, the largest of our checkpoints it has cosigned (from the
/// cosignature lines in the stored checkpoints).
fn cosigned_by_peers(
    store: &Store,
    roster: &Roster,
    me: &AuthorityId,
) -> Result<HashMap<AuthorityId, u64>, NodeError> {
    let mut map = HashMap::new();
    for note in store.checkpoints()? {
        let Ok(signed) = SignedCheckpoint::parse(&note) else {
            continue;
        };
        for m in roster.members().iter().filter(|m| &m.id != me) {
            let Ok(v) = NoteVerifier::cosigner(&log_origin(&m.id), m.log_key) else {
                continue;
            };
            if signed.verify_cosignature(&v).is_ok() {
                map.insert(m.id.clone(), signed.checkpoint().size());
            }
        }
    }
    Ok(map)
}

/// Refuses to run on an audit log that is shorter than, or differs from,
/// its newest signed checkpoint (a data directory restored from an old
/// backup, or entries changed on disk).
fn check_log(
    store: &Store,
    origin: &str,
    log_key: &kurir_proto::ed25519_dalek::VerifyingKey,
) -> Result<(), NodeError> {
    let state = store.log_state();
    let Some((note, size, root)) = &state.last_checkpoint else {
        return Ok(());
    };
    let integrity = |reason: String| NodeError::Integrity(reason);
    let signed = SignedCheckpoint::parse(note)
        .map_err(|e| integrity(format!("the newest checkpoint does not parse: {e}")))?;
    let verifier =
        NoteVerifier::ed25519(origin, *log_key).map_err(|e| integrity(format!("log key: {e}")))?;
    signed.verify(&verifier).map_err(|e| {
        integrity(format!(
            "the newest checkpoint (size {size}) is not signed by this relay's log key: {e}"
        ))
    })?;
    if state.size < *size {
        return Err(integrity(format!(
            "the audit log holds {} entries but its last signed checkpoint covers {size}: the \
             data directory was rolled back or truncated. Do not run on it: restore the newest \
             backup, or have an auditor examine it",
            state.size
        )));
    }
    if signed.checkpoint().root() != root {
        return Err(integrity(format!(
            "the audit log differs from its last signed checkpoint at size {size} (root {} \
             signed, {} found): entries were changed on disk. Do not run on it; have an \
             auditor examine it",
            signed.checkpoint().root(),
            root
        )));
    }
    Ok(())
}

fn with_path(e: kurir_certs::RosterError, path: &Path) -> kurir_certs::RosterError {
    match e {
        kurir_certs::RosterError::Invalid { problems, .. } => kurir_certs::RosterError::Invalid {
            path: Some(path.to_owned()),
            problems,
        },
        other => other,
    }
}

/// The message key to sign with: of the keys in `message-keys/`, the one the
/// roster lists for this authority as valid now, newest first.
fn pick_message_key(
    authority_dir: &Path,
    me: &AuthorityId,
    roster: &Roster,
    now: Timestamp,
) -> Result<SigningKey, NodeError> {
    let dir: PathBuf = authority_dir.join(kurir_certs::authority::layout::MESSAGE_KEYS);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        NodeError::MessageKey(format!(
            "cannot read message keys in {}: {e}",
            dir.display()
        ))
    })?;
    let mut best: Option<(Timestamp, SigningKey)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let key = kurir_certs::keys::read_secret_key(&path)
            .map_err(|e| NodeError::MessageKey(e.to_string()))?;
        let kid = KeyId::of(&key.verifying_key());
        if let Some(pk) = roster.lookup(&kid)
            && &pk.authority == me
            && pk.valid_at(now)
            && best.as_ref().is_none_or(|(from, _)| pk.valid_from > *from)
        {
            best = Some((pk.valid_from, key));
        }
    }
    best.map(|(_, k)| k).ok_or_else(|| {
        NodeError::MessageKey(format!(
            "none of the keys in {} is a message key of {me} valid now in the roster; \
             add the current key to the roster (kurir-certs roster update) or check the clock",
            dir.display()
        ))
    })
}

impl Shared {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn metrics_text(&self) -> String {
        let depth = self
            .outbox
            .lock()
            .map(|o| o.depth_by_peer())
            .unwrap_or_default();
        self.metrics.render(&depth, &self.store.health())
    }
}

// ---------------------------------------------------------------------------
// Accepting connections.

async fn accept_loop(shared: Arc<Shared>) {
    let mut handlers = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            incoming = shared.endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                handlers.spawn(handle_connection(shared.clone(), incoming));
            }
            _ = shutdown.changed() => break,
            Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
        }
    }
    // Stop new connections; let the handlers finish what they hold.
    shared.endpoint.set_server_config(None);
    while handlers.join_next().await.is_some() {}
}

async fn handle_connection(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            warn!(%remote, error = %e, "handshake failed");
            shared.metrics.refused_connections.inc();
            return;
        }
    };
    let chain = conn
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .map(|b| *b)
        .unwrap_or_default();
    let alpn = conn
        .handshake_data()
        .and_then(|any| any.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    let identity =
        match shared
            .verifier
            .identify(&chain, alpn.as_deref(), tls::unix_time(shared.now()))
        {
            Ok(id) => id,
            Err(e) => {
                warn!(%remote, error = %e, "connection refused");
                shared.metrics.refused_connections.inc();
                conn.close(CLOSE_REFUSED.into(), b"refused");
                return;
            }
        };
    match identity {
        Identity::Peer(peer) => {
            if !claim_peer_slot(&shared, &peer) {
                warn!(%remote, %peer, "connection refused: too many connections from this peer");
                shared.metrics.refused_connections.inc();
                conn.close(CLOSE_REFUSED.into(), b"too many connections");
                return;
            }
            debug!(%remote, %peer, "peer connected");
            peer::serve_peer(&shared, &conn, &peer).await;
            release_peer_slot(&shared, &peer);
        }
        Identity::Officer(officer) => {
            debug!(%remote, officer = %officer.name, role = %officer.role, "officer connected");
            officer::serve_officer(&shared, &conn, &officer).await;
        }
    }
}

fn claim_peer_slot(shared: &Shared, peer: &AuthorityId) -> bool {
    let Ok(mut counts) = shared.peer_connections.lock() else {
        return false;
    };
    let n = counts.entry(peer.clone()).or_default();
    if *n >= shared.config.max_connections_per_peer {
        return false;
    }
    *n += 1;
    true
}

fn release_peer_slot(shared: &Shared, peer: &AuthorityId) {
    if let Ok(mut counts) = shared.peer_connections.lock()
        && let Some(n) = counts.get_mut(peer)
    {
        *n = n.saturating_sub(1);
    }
}

// ---------------------------------------------------------------------------
// Streams and frames.

/// Reads one frame, refusing a declared length over `max` before reading it.
async fn read_frame(recv: &mut quinn::RecvStream, max: usize) -> Result<Vec<u8>, FrameReadError> {
    let mut prefix = [0u8; frame::PREFIX_LEN];
    recv.read_exact(&mut prefix)
        .await
        .map_err(|e| FrameReadError::Io(e.to_string()))?;
    let len = frame::payload_len(prefix, max).map_err(FrameReadError::TooLarge)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload)
        .await
        .map_err(|e| FrameReadError::Io(e.to_string()))?;
    Ok(payload)
}

#[derive(Debug)]
enum FrameReadError {
    TooLarge(frame::FrameError),
    Io(String),
}

async fn write_frame(send: &mut quinn::SendStream, payload: &[u8]) -> Result<(), String> {
    let framed = frame::encode(payload, frame::HARD_MAX_FRAME).map_err(|e| e.to_string())?;
    send.write_all(&framed).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())
}

/// Runs `handle` on every bidirectional stream the connection opens, until
/// it closes or the relay shuts down; then waits for the streams in flight.
async fn serve_streams<F, Fut>(shared: &Shared, conn: &quinn::Connection, mut handle: F)
where
    F: FnMut(quinn::SendStream, quinn::RecvStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut streams = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    streams.spawn(handle(send, recv));
                }
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    while streams.join_next().await.is_some() {}
}
