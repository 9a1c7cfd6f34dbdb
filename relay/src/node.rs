//! The tokio/quinn driver: one QUIC endpoint for peers and officers, the
//! outbox loop, and the handlers. It only carries out what the sans-IO core
//! ([`crate::core`]) decides and what the store makes durable: a handler
//! reads what a decision needs from the store, calls the core, stores what
//! it returns, then answers.
//!
//! Tasks never outlive the [`Node`]: every task is in one `JoinSet`, and
//! [`Node::shutdown`] stops accepting, lets in-flight work finish (bounded),
//! closes the endpoint and flushes the store, in that order.
//!
//! # State
//!
//! The state is in parts, each owning its own data, and each task gets the
//! parts it uses:
//!
//! - `Base`: the store, the configuration, the clock, the metrics and the
//!   shutdown signal (every task);
//! - `Authority`: who this relay is: its id, the roster in force (replaced
//!   whole when a newer one is put in force; each operation takes a
//!   snapshot), its message keys (each signature takes the newest valid at
//!   its moment) and its log key;
//! - `Deliveries` (`outbox`): the core's outbox, the outbox loop's
//!   wake-up, the `status` requests waiting for deliveries to settle and
//!   the recent messages `status` answers from (`recent`);
//! - `Links` (`links`): the endpoint, the peer connections, the dials and
//!   the connection slots per peer;
//! - `Cosigning`: the lock that serialises witnessing peers' checkpoints,
//!   and the rollback alarm (what peers have cosigned of our log is the
//!   checkpoint loop's own);
//! - `Cases`: the lock that serialises updates of readmission cases;
//! - the arrivals channel that officers' `subscribe` streams listen to.
//!
//! # Layout
//!
//! This file holds the [`Node`] (start, accessors, shutdown), [`NodeError`]
//! and the parts.
//!
//! - `startup`: the start-up checks (the log against its newest checkpoint,
//!   the roster against the stored one, the message keys) and the endpoint
//!   setup;
//! - `conn`: accepting and identifying connections, serving their streams,
//!   reading and writing frames;
//! - `links`: connections to peers: one dial per peer at a time, control
//!   exchanges, connection slots, the connections served from each peer;
//! - `peer`: serving peer streams: parcels (decided by
//!   [`crate::core::inbound`]), refusals, cosigning and proof requests;
//! - `outbox`: the outbox loop and sending parcels;
//! - `officer`: the officer API (submissions built by
//!   [`crate::core::submit`]); `fetch`: a message to an officer, its body
//!   only where [`crate::core::access`] allows, every body read or refused
//!   logged first; `status`: delivery status and waiting for it to settle;
//!   `recent`: the summaries and stored delivery states of the messages
//!   submitted last, which `status` answers from without the store;
//! - `checkpoints`: signing checkpoints, asking peers to cosign them, the
//!   rollback alarm (who is asked and what an answer means:
//!   [`crate::core::cosign`]);
//! - `proofs`: inclusion proofs of receipts, both sides (which to ask for
//!   and which to keep: [`crate::core::proofs`]);
//! - `revocation`: the CRL in force, reloaded on SIGHUP and when the file
//!   changes (which CRL wins: [`crate::core::crl`]), and the open officer
//!   connections a new CRL closes;
//! - `roster`: the roster in force while the relay runs: the file read
//!   again on SIGHUP and when it changes, rosters taken from peers, each
//!   verified, stored and swapped in everywhere (what changes:
//!   [`crate::core::roster`]), the connections of members removed closed;
//! - `renewal`: the node certificate in force, read again on SIGHUP and
//!   swapped into the resolver every handshake reads (open connections
//!   keep theirs);
//! - `expiry`: what expires when, as gauges, as `/health/expiry` and as
//!   the warnings [`crate::core::expiry`] says are due;
//! - `admin`: the admin socket in the data directory, which a local
//!   `kurir-relay backup` asks for a snapshot on (the protocol and who can
//!   reach it: [`crate::backup`]);
//! - `upkeep`: the readmission clock loop and the retention policy (which
//!   bodies are due: [`crate::core::retention`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kurir_certs::Roster;
use kurir_certs::tls::{Credentials, FederationVerifier, NodeCertSummary, OfficerTrust};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::MessageKind;
use kurir_proto::{AuthorityId, Timestamp};
use rand::RngExt;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::RelayConfig;
use crate::core::delivery::Outbox;
use crate::core::events;
use crate::core::inbound::Federation;
use crate::core::keys::MessageKeys;
use crate::core::pacing::{CosignGate, Cover};
use crate::core::submit::Members;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, StoreOptions};

mod admin;
mod cases;
mod checkpoints;
mod conn;
mod expiry;
mod fetch;
mod links;
mod log_key;
mod message_keys;
mod officer;
mod outbox;
mod peer;
mod proofs;
mod recent;
mod renewal;
mod revocation;
mod roster;
mod startup;
mod status;
mod upkeep;

use cases::{Cases, log_case_change};

use links::{LinkLimits, Links};
use outbox::Deliveries;
use renewal::Renewal;
pub use renewal::{NodeCertRefused, NodeCertReload};
use revocation::Revocation;
pub use revocation::{CrlRefused, CrlReload};
use roster::RosterInForce;
pub use roster::{RosterRefused, RosterReload};

/// How long shutdown waits for in-flight work.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// QUIC application error codes.
const CLOSE_REFUSED: u32 = 1;
const CLOSE_SHUTDOWN: u32 = 2;
/// A stream stopped because its frame did not arrive within
/// `[limits] read_timeout_secs`.
const CLOSE_STALLED: u32 = 3;
/// An officer's connection closed because a new CRL revokes its certificate.
const CLOSE_REVOKED: u32 = 4;
/// A peer's connection closed (or refused) because the roster in force no
/// longer lists its authority.
const CLOSE_NOT_A_MEMBER: u32 = 5;
/// A peer's connection closed because the roster in force revokes the node
/// certificate it presented.
const CLOSE_NODE_REVOKED: u32 = 6;

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
    /// A message or log key could not be read, or does not fit the roster.
    #[error("{0}")]
    MessageKey(String),
    /// None of the message keys the relay holds is valid now.
    #[error("{source} (message keys in {})", dir.display())]
    NoMessageKey {
        /// The authority's `message-keys` directory.
        dir: std::path::PathBuf,
        /// Which keys are held, and the moment none covers.
        source: crate::core::keys::NoValidKey,
    },
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
    /// The admin socket could not be set up.
    #[error("{0}")]
    Admin(String),
}

/// What every task uses.
struct Base {
    config: RelayConfig,
    clock: Arc<dyn Clock>,
    store: Store,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

impl Base {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Who this relay is: fixed at start but for the roster in force, which
/// a newer roster replaces while the relay runs (`node::roster`).
struct Authority {
    me: AuthorityId,
    /// The roster in force; each operation takes a snapshot
    /// ([`Authority::roster`]) and uses it throughout.
    roster: RwLock<Arc<Roster>>,
    /// Sign envelopes and receipts: at each signature, the newest key
    /// valid at that moment ([`MessageKeys::at`]); rebuilt when a roster is
    /// put in force and on SIGHUP (`node::message_keys`).
    message_keys: RwLock<Arc<MessageKeys>>,
    /// Signs this relay's checkpoints and cosignatures: the key the roster
    /// in force lists (`log_key`), replaced when a newer roster lists
    /// another.
    log_key: RwLock<SigningKey>,
}

impl Authority {
    /// A snapshot of the roster in force.
    fn roster(&self) -> Arc<Roster> {
        match self.roster.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `roster` in force for every operation that starts from now on.
    fn set_roster(&self, roster: Arc<Roster>) {
        match self.roster.write() {
            Ok(mut slot) => *slot = roster,
            Err(poisoned) => *poisoned.into_inner() = roster,
        }
    }
}

/// Cosigning state that tasks share: the witness side's gate and the
/// owner side's rollback alarm.
struct Cosigning {
    /// Serialises witnessing of peers' checkpoints, and paces it per peer.
    witness: tokio::sync::Mutex<CosignGate>,
    /// Set when peers' cosignatures show that our log was rolled back.
    alarm: Mutex<Option<String>>,
}

/// The core sees the roster through its traits.
impl Federation for Roster {
    fn accepts(&self, member: &AuthorityId, kind: MessageKind) -> bool {
        Roster::accepts(self, member, kind)
    }
}

impl Members for Roster {
    fn version(&self) -> u64 {
        Roster::version(self)
    }

    fn is_member(&self, authority: &AuthorityId) -> bool {
        self.member(authority).is_some()
    }
}

/// What `/metrics`, `/health` and `/health/expiry` read, each at the
/// moment of the request.
fn metrics_endpoints(
    base: &Arc<Base>,
    authority: &Arc<Authority>,
    deliveries: &Arc<Deliveries>,
    cosigning: &Arc<Cosigning>,
    expiry: Arc<expiry::Expiry>,
) -> crate::metrics::http::Endpoints {
    let (b, a, d, c, x) = (
        base.clone(),
        authority.clone(),
        deliveries.clone(),
        cosigning.clone(),
        expiry.clone(),
    );
    let metrics = move || {
        let now = b.now();
        b.metrics.render(&crate::metrics::Scrape {
            now,
            queues: d.queues(),
            storage: b.store.health(),
            commits: b.store.commit_counts(),
            // A poisoned lock: a task panicked while raising or reading it.
            integrity_alarm: c.alarm.lock().map_or(true, |a| a.is_some()),
            expiry: x.gauges(
                &expiry::Live {
                    keys: &a.message_keys(),
                    log_key_before: a.log_key_before(),
                },
                now,
            ),
        })
    };
    let store = base.store.clone();
    let (b, a) = (base.clone(), authority.clone());
    crate::metrics::http::Endpoints {
        metrics: Box::new(metrics),
        health: Box::new(move || store.health()),
        expiry: Box::new(move || {
            let live = expiry::Live {
                keys: &a.message_keys(),
                log_key_before: a.log_key_before(),
            };
            expiry.detail(&live, b.now())
        }),
    }
}

/// A running relay. Dropping it without [`Node::shutdown`] aborts its tasks.
pub struct Node {
    /// The arrivals officers' subscriptions listen to.
    arrivals: broadcast::Sender<kurir_proto::api::Summary>,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    base: Arc<Base>,
    authority: Arc<Authority>,
    deliveries: Arc<Deliveries>,
    links: Arc<Links>,
    cosigning: Arc<Cosigning>,
    revocation: Arc<Revocation>,
    rosters: Arc<RosterInForce>,
    renewal: Arc<Renewal>,
    /// The admin socket, removed at shutdown.
    admin: std::path::PathBuf,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.authority.me)
            .field("local_addr", &self.local_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
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
        let held_log_keys = log_key::held(&config.authority_dir)?;
        startup::check_log(&store, &me, &held_log_keys, now)?;
        store.audit(vec![events::started(now)]).await?;
        let roster = Arc::new(startup::load_roster(&config.roster_path, &me, &store, now).await?);
        if let Err(e) = store.keep_roster_copy(roster.to_bytes()) {
            warn!(error = %e, "cannot keep the copy of the roster in force beside the database (`kurir-relay roster install` reads it)");
        }
        let log_key = match log_key::pick(&held_log_keys, &roster, &me) {
            Some(key) => key,
            None => {
                let Some(key) = log_key::pick_earlier(&held_log_keys, &roster, &me, now) else {
                    return Err(NodeError::MessageKey(format!(
                        "none of the log keys in {} (log.key, log.key.<N>) is a log key the \
                         roster lets {me} sign with now",
                        config.authority_dir.display()
                    )));
                };
                warn!(
                    dir = %config.authority_dir.display(),
                    "this relay does not hold the log key the roster lists for it: it signs with \
                     an earlier key the roster still allows until its end; copy the new log.key \
                     (kurir-certs authority rotate-log-key) and send SIGHUP"
                );
                key
            }
        };
        if roster.member(&me).is_none() {
            return Err(NodeError::MessageKey(format!(
                "the roster {} (version {}) does not list {me}: add this authority to the \
                 roster first (kurir-certs roster add)",
                config.roster_path.display(),
                roster.version()
            )));
        }
        let message_keys = startup::load_message_keys(&config.authority_dir, &me, &roster, now)?;
        let windows = message_keys.windows();
        info!(keys = %windows.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "), "message keys held");
        // Within the first expiry warning's reach (30 days); further off
        // it is the expiry gauges' and warnings' to say.
        let soon = now.plus_millis(crate::core::expiry::WARN_DAYS[0] * 86_400_000);
        if let Some(end) = message_keys
            .last_valid_until(now)
            .filter(|end| *end <= soon)
        {
            warn!(
                %end,
                "the message keys this relay holds stop being valid at {end} and no later key is \
                 held: rotate the key (kurir-certs authority rotate-key) and put the new key in \
                 the roster before then, or submissions and receipts are refused from then on"
            );
        }
        // Who reads bodies is configuration: it goes in the log at each start.
        let focal_points = roster.member(&me).map_or(0, |m| m.focal_points.len());
        info!(reads = %config.reads.describe(), focal_points, "who reads message bodies: H0/H1 officers, H3 the roster's focal points");
        let credentials = Credentials::node(&config.authority_dir)?;
        let node_cert = startup::node_certificate(&config, &me, &roster, &credentials)?;
        let officers = OfficerTrust::load(&config.authority_dir)?;
        let verifier = FederationVerifier::new(&roster, &officers)?;
        info!(
            number = officers.crl.number,
            revoked = officers.crl.revoked.len(),
            "CRL in force"
        );
        let expiry = Arc::new(expiry::Expiry::new(
            credentials.chain.first().map(|c| c.as_ref()),
            &officers.ca,
            &roster,
            config
                .authority_dir
                .join(kurir_certs::authority::layout::OFFICERS),
            &officers.crl.revoked,
        ));
        let revocation = Arc::new(Revocation::new(
            config
                .authority_dir
                .join(kurir_certs::authority::layout::CRL),
            verifier.clone(),
            officers,
        ));
        let endpoint = startup::endpoint(
            &config,
            &log_key,
            verifier.clone(),
            node_cert.clone(),
            socket,
        )?;
        let local_addr = endpoint.local_addr().map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;

        let cosigned = startup::cosigned_by_peers(&store, &roster, &me)?;
        let (admin_listener, admin) = admin::bind(&config.data_dir)?;
        let mut outbox = Outbox::new(config.retry, rand::rng().random());
        // Deliveries to a peer the roster no longer lists (removed while the
        // relay was stopped) end at the outbox loop's first turn.
        let members = roster.members().iter().map(|m| m.id.clone());
        outbox.set_members(members, now);
        let open = store.open_deliveries()?;
        let resumed = open.len();
        for d in open {
            outbox.insert(d);
        }
        let (stop, shutdown) = watch::channel(false);
        let (arrivals, _) = broadcast::channel(1024);
        let links = Arc::new(Links::new(
            endpoint,
            verifier,
            node_cert.clone(),
            roster.clone(),
            clock.clone(),
            LinkLimits {
                per_peer: config.max_connections_per_peer,
                per_officer: config.max_connections_per_officer,
                handshakes_before_retry: config.handshakes_before_retry,
            },
        ));
        for expired in links.cas().not_valid_at(now) {
            warn!(member = %expired.member, not_after = %expired.not_after, "{expired}");
        }
        let base = Arc::new(Base {
            metrics: Metrics::default(),
            config,
            clock,
            store,
            shutdown,
        });
        let authority = Arc::new(Authority {
            me: me.clone(),
            roster: RwLock::new(roster.clone()),
            message_keys: RwLock::new(Arc::new(message_keys)),
            log_key: RwLock::new(log_key),
        });
        let deliveries = Arc::new(Deliveries::new(outbox));
        let rosters = Arc::new(RosterInForce::new(
            base.clone(),
            authority.clone(),
            links.clone(),
            expiry.clone(),
            deliveries.clone(),
        ));
        let renewal = Arc::new(Renewal::new(
            base.clone(),
            authority.clone(),
            expiry.clone(),
            node_cert,
        ));
        let cases = Arc::new(Cases::default());
        let cosigning = Arc::new(Cosigning {
            witness: tokio::sync::Mutex::new(CosignGate::for_interval(
                base.config.checkpoint_interval_ms,
            )),
            alarm: Mutex::new(None),
        });
        info!(
            authority = %me,
            addr = %local_addr,
            roster_version = roster.version(),
            roster_fingerprint = %roster.fingerprint(),
            resumed_deliveries = resumed,
            "relay started"
        );
        let peers = peer::PeerSide {
            base: base.clone(),
            authority: authority.clone(),
            cases: cases.clone(),
            cosigning: cosigning.clone(),
            rosters: rosters.clone(),
            arrivals: arrivals.clone(),
            envelope_sigs: Arc::new(kurir_proto::batch::Remembered::default()),
        };
        let officers = officer::OfficerSide {
            base: base.clone(),
            authority: authority.clone(),
            deliveries: deliveries.clone(),
            cases: cases.clone(),
            arrivals: arrivals.clone(),
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(conn::accept_loop(
            links.clone(),
            revocation.clone(),
            peers,
            officers,
        ));
        tasks.spawn(revocation::crl_loop(
            revocation.clone(),
            base.config.crl_check,
            base.shutdown.clone(),
        ));
        tasks.spawn(roster::roster_loop(
            rosters.clone(),
            base.config.roster_check,
            base.shutdown.clone(),
        ));
        tasks.spawn(roster::roster_sync_loop(
            rosters.clone(),
            Duration::from_millis(base.config.checkpoint_interval_ms.max(1)),
            base.shutdown.clone(),
        ));
        tasks.spawn(outbox::outbox_loop(
            base.clone(),
            authority.clone(),
            deliveries.clone(),
            links.clone(),
        ));
        tasks.spawn(upkeep::upkeep_loop(
            base.clone(),
            cases,
            authority.clone(),
            expiry.clone(),
            revocation.clone(),
        ));
        tasks.spawn(checkpoints::checkpoint_loop(
            checkpoints::Checkpoints {
                base: base.clone(),
                authority: authority.clone(),
                links: links.clone(),
                cosigning: cosigning.clone(),
            },
            cosigned,
        ));
        tasks.spawn(admin::admin_loop(admin_listener, base.clone()));
        let mut metrics_addr = None;
        if let Some(addr) = base.config.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| NodeError::Listen { addr, source })?;
            metrics_addr = listener.local_addr().ok();
            let endpoints = metrics_endpoints(&base, &authority, &deliveries, &cosigning, expiry);
            tasks.spawn(crate::metrics::http::serve(
                listener,
                endpoints,
                crate::metrics::http::Limits::default(),
                base.shutdown.clone(),
            ));
        }
        Ok(Node {
            arrivals,
            local_addr,
            metrics_addr,
            base,
            authority,
            deliveries,
            links,
            cosigning,
            revocation,
            rosters,
            renewal,
            admin,
            stop,
            tasks,
        })
    }

    /// Reads the CRL file again (what SIGHUP does): a CRL signed by the
    /// authority's CA with a higher number is put in force, and the open
    /// connections of the officers it revokes are closed. A CRL that does
    /// not verify, or is older, is refused and logged; the one in force
    /// stays. The relay also checks the file every `[identity]
    /// crl_check_secs`.
    pub fn reload_crl(&self) -> Result<CrlReload, CrlRefused> {
        self.revocation.reload_logged(true)
    }

    /// Reads the roster file again (what SIGHUP does): a roster that
    /// verifies against the roster in force (k of n, version only forward,
    /// the old quorum too on a key-set change) and is newer is stored with
    /// its `roster` audit entry and put in force at once: TLS, dials, key
    /// lookups, kinds, focal points, expiry. The connections of members it
    /// removes are closed (code 5, `not a member`). A roster that does not
    /// verify is refused and logged; a file older than the roster in force
    /// only warns. The relay also checks the file every `[roster]
    /// check_secs`.
    pub async fn reload_roster(&self) -> Result<RosterReload, RosterRefused> {
        self.rosters.reload_logged(true).await
    }

    /// Reads `node.crt.pem` and `node.key.pem` again (what SIGHUP does):
    /// a certificate whose key fits, that names this authority, chains to
    /// the CA the roster in force lists for it and is valid now is
    /// presented by every handshake from now on, incoming and dialed, and
    /// its end is what the expiry gauge shows. Open connections keep the
    /// certificate they were made with. Anything else is refused and
    /// logged; the certificate in force stays.
    pub fn reload_node_certificate(&self) -> Result<NodeCertReload, NodeCertRefused> {
        self.renewal.reload_logged()
    }

    /// The fingerprint and validity of the node certificate in force.
    pub fn node_certificate(&self) -> NodeCertSummary {
        self.renewal.in_force()
    }

    /// Signs with the log key the roster in force lists, if it is not the
    /// key in force and the relay holds it (`log.key` or `log.key.<N>`):
    /// what SIGHUP does after `rotate-log-key`'s `log.key` was copied late.
    /// Returns the key id in force.
    pub fn reload_log_key(&self) -> kurir_proto::KeyId {
        self.authority
            .follow_log_key(&self.authority.roster(), &self.base.config.authority_dir);
        kurir_proto::KeyId::of(&self.authority.log_key().verifying_key())
    }

    /// Reads the authority's `message-keys/` directory again and matches it
    /// against the roster in force: what SIGHUP does after a key file was
    /// copied late. A file the roster does not list is skipped with a
    /// warning; when no key would be valid now, the keys in force stay and
    /// the error is logged. Returns the keys in force, newest first.
    pub fn reload_message_keys(&self) -> Vec<crate::core::keys::KeyWindow> {
        self.authority.follow_message_keys(
            &self.authority.roster(),
            &self.base.config.authority_dir,
            self.base.now(),
        )
    }

    /// The message keys in force, newest first, with their validity (the
    /// end is `valid_until` or `revoked_at`, whichever is first).
    pub fn message_keys(&self) -> Vec<crate::core::keys::KeyWindow> {
        self.authority.message_keys().windows()
    }

    /// The version and fingerprint of the roster in force.
    pub fn roster_in_force(&self) -> (u64, String) {
        let roster = self.authority.roster();
        (roster.version(), roster.fingerprint())
    }

    /// The UDP address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TCP address of `/metrics` and `/health`, if they are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The relay's counters (what `/metrics` shows).
    pub fn metrics(&self) -> &Metrics {
        &self.base.metrics
    }

    /// How many officers' subscriptions to arrivals are open.
    pub fn subscriptions(&self) -> usize {
        self.arrivals.receiver_count()
    }

    /// How many officers' requests (`status` or `submit_wait` with a
    /// wait) are waiting for a message's deliveries to become final.
    pub fn status_waits(&self) -> usize {
        self.deliveries.settled.count()
    }

    /// The relay's store (for tests and tools; the relay keeps writing to it).
    pub fn store(&self) -> &Store {
        &self.base.store
    }

    /// An integrity alarm, if peers' cosignatures showed that this relay's
    /// audit log was rolled back (also logged, and counted in the metrics).
    pub fn integrity_alarm(&self) -> Option<String> {
        self.cosigning.alarm.lock().ok().and_then(|a| a.clone())
    }

    /// Stops accepting, lets in-flight work finish (at most a few seconds),
    /// closes connections and flushes the store.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        let authority = self.authority.clone();
        let me = &authority.me;
        info!(authority = %me, "relay stopping");
        let _ = self.stop.send(true);
        self.deliveries.wake_all();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("in-flight work did not finish in time; aborting it");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        if let Err(e) = std::fs::remove_file(&self.admin) {
            warn!(socket = %self.admin.display(), error = %e, "cannot remove the admin socket");
        }
        checkpoints::checkpoint(&self.base, &self.authority, Cover::Anything).await;
        let endpoint = self.links.endpoint();
        endpoint.close(CLOSE_SHUTDOWN.into(), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        // Bounded (the store's flush timeout), and off the async workers.
        let store = self.base.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap_or(Err(StoreError::Closed));
        if let Err(e) = closed {
            error!(authority = %me, error = %e, "the store did not close");
            return Err(e.into());
        }
        info!(authority = %me, "relay stopped");
        Ok(())
    }
}
