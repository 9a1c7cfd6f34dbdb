//! The federation test harness: real relays on loopback with a fresh PKI in
//! temporary directories.
//!
//! [`Harness::new`] founds a federation with `kurir_relay::federation::found`
//! (the same code `kurir-relay demo` uses) in a [`tempfile::TempDir`] the
//! harness owns: every member gets an authority directory, a signed roster
//! entry, a `relay.toml`, an officer named [`DUTY_OFFICER`] and one named
//! [`AUDITOR`], and a UDP socket pre-bound on `127.0.0.1:0` so the roster names
//! the real port. Relays are then started, stopped and restarted by id; a
//! restarted relay reads the same `relay.toml` and data directory and binds
//! the same port again.
//!
//! Until a relay is first started, its pre-bound socket stays open with
//! nobody reading it: packets sent to it are held by the OS (an attempt to
//! connect times out) and the relay reads them, stale, when it starts. After
//! [`Harness::stop`] the port is closed.
//!
//! Tests talk to relays as officers ([`Harness::officer`], a
//! [`kurir_client::Client`]) or, to play a misbehaving or duplicating peer,
//! over a raw peer connection ([`PeerLink`]) with any member's node
//! credentials or foreign ones.
//!
//! Nothing waits a fixed time for an event: [`await_final`] asks the relay to
//! answer once every delivery is final (`status` with `wait_ms`),
//! [`await_deliveries`] polls the relay's status every [`POLL`] for other
//! conditions, both up to [`STEP_TIMEOUT`], and the relay logs are captured
//! ([`logs`]) so a test can wait for a line.
//!
//! # Layout
//!
//! - this file: [`Harness`], [`PeerLink`], officer helpers, [`logs`].
//! - `child.rs`: [`child::RelayChild`], a relay as a child process.
//! - `proxy.rs`: [`proxy::FaultProxy`], the UDP fault proxy of the
//!   partition suite.
//! - `tests/*.rs`: end-to-end tests, one binary per area (`delivery.rs`,
//!   `restart.rs`, `peers.rs`, `hostile.rs`, `partition.rs`, `crash.rs`,
//!   `decoders.rs`, `cosign.rs`).

#![forbid(unsafe_code)]

pub mod child;
pub mod proxy;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kurir_certs::Roster;
use kurir_certs::officer::Role;
use kurir_certs::tls::Credentials;
use kurir_client::Client;
use kurir_proto::api::{DeliveryStatus, Request, Response, Submission, Summary};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{Handling, Message, MessageKind, examples};
use kurir_proto::{
    AuthorityId, Digest, Header, KeyId, MessageId, Parcel, ReceiptStatus, RejectCode, Timestamp,
    Verified, VerifiedReceipt, frame, open_receipt, seal, verify,
};
use kurir_relay::clock::{Clock, SystemClock};
use kurir_relay::federation::{self, Federation, LOCAL_HOST, MemberSpec};
use kurir_relay::node::{Node, NodeError};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tempfile::TempDir;

/// The officer every founded member has (role `officer`).
pub const DUTY_OFFICER: &str = "duty officer";
/// The auditor every founded member has (role `auditor`).
pub const AUDITOR: &str = "auditor";
/// How long any one awaited event may take before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a status is polled.
pub const POLL: Duration = Duration::from_millis(20);
/// How long a restarted relay may wait for the stopped one's port and
/// database lock to be released.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Seed of the harness's randomness (message ids, salts, stray keys).
const SEED: u64 = 0x006b_7572_6972;

/// Parses an authority id.
pub fn authority(s: &str) -> Result<AuthorityId> {
    AuthorityId::parse(s).with_context(|| format!("{s:?} is not an authority id"))
}

/// A founded federation and the relays running in it.
///
/// Drop order matters: running relays go first (dropping a [`Node`] aborts
/// its tasks), the temporary directory last. Prefer [`Harness::shutdown`],
/// which stops every relay gracefully.
#[derive(Debug)]
pub struct Harness {
    nodes: BTreeMap<AuthorityId, Node>,
    fed: Federation,
    roster: Roster,
    clock: Arc<dyn Clock>,
    rng: StdRng,
    dir: TempDir,
}

impl Harness {
    /// Founds a federation of `members` (e.g. `["RS.MUP", "BA.SPS"]`) in a
    /// fresh temporary directory. No relay runs yet: see [`Harness::start`].
    pub fn new(members: &[&str]) -> Result<Harness> {
        Self::with_clock(members, Arc::new(SystemClock))
    }

    /// [`Harness::new`] with the relays on `clock`, e.g. a
    /// [`kurir_relay::clock::ManualClock`] standing still, so that events
    /// share a timestamp. The federation is founded at `clock.now()`. A
    /// stopped clock also stops retries: use it for receiving relays only.
    pub fn with_clock(members: &[&str], clock: Arc<dyn Clock>) -> Result<Harness> {
        Self::found(members, clock, &[])
    }

    /// [`Harness::new`] with more officers (role `officer`) at every
    /// member, besides [`DUTY_OFFICER`] and [`AUDITOR`].
    pub fn with_officers(members: &[&str], officers: &[&str]) -> Result<Harness> {
        Self::found(members, Arc::new(SystemClock), officers)
    }

    fn found(members: &[&str], clock: Arc<dyn Clock>, extra: &[&str]) -> Result<Harness> {
        logs::capture();
        let dir = tempfile::Builder::new()
            .prefix("kurir-tests-")
            .tempdir()
            .context("creating the federation directory")?;
        let specs = members
            .iter()
            .map(|m| {
                Ok(MemberSpec {
                    id: authority(m)?,
                    name: format!("{m} (test authority)"),
                    officers: [
                        (DUTY_OFFICER.to_owned(), Role::Officer),
                        (AUDITOR.to_owned(), Role::Auditor),
                    ]
                    .into_iter()
                    .chain(extra.iter().map(|o| ((*o).to_owned(), Role::Officer)))
                    .collect(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fed = federation::found(dir.path(), &specs, clock.now())?;
        let roster = Roster::load(&fed.roster_path, None, clock.now())
            .context("loading the founded roster")?;
        Ok(Harness {
            nodes: BTreeMap::new(),
            fed,
            roster,
            clock,
            rng: StdRng::seed_from_u64(SEED),
            dir,
        })
    }

    /// Founds a federation and starts every member's relay.
    pub async fn started(members: &[&str]) -> Result<Harness> {
        let mut h = Harness::new(members)?;
        for m in members {
            h.start(m).await?;
        }
        Ok(h)
    }

    /// Starts the relay of `who` from its `relay.toml`. The first start uses
    /// the socket bound when founding; a later one lets the relay bind the
    /// configured address itself (the same port), trying again for up to
    /// five seconds while the stopped instance's port or database lock is
    /// not yet released.
    pub async fn start(&mut self, who: &str) -> Result<()> {
        let id = authority(who)?;
        if self.nodes.contains_key(&id) {
            bail!("the relay of {id} is already running");
        }
        let member = self
            .fed
            .member_mut(&id)
            .ok_or_else(|| anyhow!("{id} is not a member of this federation"))?;
        let config = member.config()?;
        let node = match member.socket.take() {
            Some(socket) => Node::start(config, self.clock.clone(), Some(socket))
                .await
                .with_context(|| format!("starting the relay of {id}"))?,
            None => {
                let deadline = Instant::now() + RELEASE_TIMEOUT;
                loop {
                    match Node::start(config.clone(), self.clock.clone(), None).await {
                        Ok(node) => break node,
                        Err(e) if still_released(&e) && Instant::now() < deadline => {
                            tokio::time::sleep(POLL).await;
                        }
                        Err(e) => {
                            return Err(e).with_context(|| format!("restarting the relay of {id}"));
                        }
                    }
                }
            }
        };
        self.nodes.insert(id, node);
        Ok(())
    }

    /// Starts the relay of `who` (first start only) behind a
    /// [`proxy::FaultProxy`]: the proxy takes the socket the roster names,
    /// the relay gets a fresh one on `127.0.0.1:0`, and every peer reaches
    /// the relay through the proxy. Officers connecting with
    /// [`Harness::officer`] go through it too; tests that cut the link read
    /// the relay's store instead. Such a relay cannot be restarted (its
    /// configured port belongs to the proxy).
    pub async fn start_behind_proxy(&mut self, who: &str, seed: u64) -> Result<proxy::FaultProxy> {
        let id = authority(who)?;
        if self.nodes.contains_key(&id) {
            bail!("the relay of {id} is already running");
        }
        let member = self
            .fed
            .member_mut(&id)
            .ok_or_else(|| anyhow!("{id} is not a member of this federation"))?;
        let config = member.config()?;
        let front = member
            .socket
            .take()
            .ok_or_else(|| anyhow!("the relay of {id} has been started before"))?;
        let inner = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let target = inner.local_addr()?;
        let proxy = proxy::FaultProxy::start(front, target, seed)?;
        let node = Node::start(config, self.clock.clone(), Some(inner))
            .await
            .with_context(|| format!("starting the relay of {id} behind a proxy"))?;
        self.nodes.insert(id, node);
        Ok(proxy)
    }

    /// Closes the pre-bound socket of `who`, so that a relay in another
    /// process can bind the port the roster names (the crash suite).
    pub fn release_socket(&mut self, who: &str) -> Result<()> {
        let id = authority(who)?;
        let member = self
            .fed
            .member_mut(&id)
            .ok_or_else(|| anyhow!("{id} is not a member of this federation"))?;
        drop(member.socket.take());
        Ok(())
    }

    /// The `relay.toml` of `who`.
    pub fn config_path(&self, who: &str) -> Result<&Path> {
        Ok(&self.member(who)?.config_path)
    }

    /// Stops the relay of `who` gracefully ([`Node::shutdown`]).
    pub async fn stop(&mut self, who: &str) -> Result<()> {
        let id = authority(who)?;
        let node = self
            .nodes
            .remove(&id)
            .ok_or_else(|| anyhow!("the relay of {id} is not running"))?;
        node.shutdown()
            .await
            .with_context(|| format!("stopping the relay of {id}"))
    }

    /// Starts the relay of `who` again with the same configuration, data
    /// directory and port (stopping it first if it runs).
    pub async fn restart(&mut self, who: &str) -> Result<()> {
        if self.is_running(who)? {
            self.stop(who).await?;
        }
        self.start(who).await
    }

    /// Whether the relay of `who` runs.
    pub fn is_running(&self, who: &str) -> Result<bool> {
        Ok(self.nodes.contains_key(&authority(who)?))
    }

    /// The running relay of `who`.
    pub fn node(&self, who: &str) -> Result<&Node> {
        let id = authority(who)?;
        self.nodes
            .get(&id)
            .ok_or_else(|| anyhow!("the relay of {id} is not running"))
    }

    /// The federation's verified roster (what tests verify signatures against).
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The directory the federation was founded in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The current time of the relays' clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Waits until the relays' clock has passed `t` (at most a millisecond
    /// or so), e.g. so a receipt signed again now would differ from one
    /// signed at `t`.
    pub async fn await_clock_past(&self, t: Timestamp) {
        while self.clock.now() <= t {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn member(&self, who: &str) -> Result<&federation::FoundedMember> {
        let id = authority(who)?;
        self.fed
            .member(&id)
            .ok_or_else(|| anyhow!("{id} is not a member of this federation"))
    }

    /// The address the relay of `who` listens on (the port in the roster).
    pub fn addr(&self, who: &str) -> Result<SocketAddr> {
        Ok(self.member(who)?.addr)
    }

    /// The authority directory of `who` (CA, node certificate, message keys).
    pub fn authority_dir(&self, who: &str) -> Result<&Path> {
        Ok(&self.member(who)?.authority_dir)
    }

    /// The relay configuration of `who`, as read from its `relay.toml`.
    pub fn config(&self, who: &str) -> Result<kurir_relay::config::RelayConfig> {
        Ok(self.member(who)?.config()?)
    }

    /// Connects officer `name` of `who` to its own relay.
    pub async fn officer(&self, who: &str, name: &str) -> Result<Client> {
        let member = self.member(who)?;
        let dir = member
            .officer_dir(name)
            .ok_or_else(|| anyhow!("no officer {name:?} at {who}"))?;
        Client::connect_with_dir(member.addr, LOCAL_HOST, &member.id, dir)
            .await
            .with_context(|| format!("connecting officer {name:?} to the relay of {who}"))
    }

    /// The certificate directory of officer `name` of `who`.
    pub fn officer_dir(&self, who: &str, name: &str) -> Result<&Path> {
        self.member(who)?
            .officer_dir(name)
            .ok_or_else(|| anyhow!("no officer {name:?} at {who}"))
    }

    /// The signed roster file every relay of the federation reads at start.
    pub fn roster_path(&self) -> &Path {
        &self.fed.roster_path
    }

    /// The TLS client configuration a relay of `from` uses to reach `to`
    /// (ALPN `kurir/1`, `from`'s node certificate), and the server name to
    /// connect with: a test may change it (ALPN, client certificate) before
    /// connecting with [`PeerLink::connect_tls`].
    pub fn peer_tls(&self, from: &str, to: &str) -> Result<(rustls::ClientConfig, String)> {
        let creds = self.node_credentials(from)?;
        let (tls, name, _port) =
            kurir_certs::tls::peer_client_config(&self.roster, &creds, &authority(to)?)?;
        Ok((tls, name.to_str().into_owned()))
    }

    /// The node TLS credentials of `who`.
    pub fn node_credentials(&self, who: &str) -> Result<Credentials> {
        Credentials::node(self.authority_dir(who)?)
            .with_context(|| format!("node credentials of {who}"))
    }

    /// The message signing key of `who`: the key in `message-keys/*.key`
    /// that the roster lists for `who`.
    pub fn message_key(&self, who: &str) -> Result<SigningKey> {
        let id = authority(who)?;
        let dir = self
            .authority_dir(who)?
            .join(kurir_certs::authority::layout::MESSAGE_KEYS);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir:?}"))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("key") {
                continue;
            }
            let key = kurir_certs::keys::read_secret_key(&path)?;
            let listed =
                kurir_proto::KeyLookup::lookup(&self.roster, &KeyId::of(&key.verifying_key()));
            if listed.is_some_and(|pk| pk.authority == id) {
                return Ok(key);
            }
        }
        bail!("no message key of {id} in {dir:?} is in the roster")
    }

    /// A signing key no roster lists, drawn from the harness's seeded randomness.
    pub fn stray_key(&mut self) -> SigningKey {
        SigningKey::from_bytes(&self.rng.random())
    }

    /// Opens a raw peer connection (ALPN `kurir/1`) to the relay of `to`,
    /// presenting the node certificate of `from`: the test plays `from`'s relay.
    pub async fn peer_link(&self, from: &str, to: &str) -> Result<PeerLink> {
        let creds = self.node_credentials(from)?;
        PeerLink::connect(&self.roster, &creds, &authority(to)?, self.addr(to)?).await
    }

    /// An operational-notice header from `from` to `to`, created now and
    /// valid for a day, with an id from the harness's seeded randomness.
    pub fn notice_header(&mut self, from: &str, to: &[&str]) -> Result<Header> {
        let now = self.now();
        Ok(Header {
            id: MessageId::new_v7(now.0, self.rng.random()),
            kind: MessageKind::OperationalNotice,
            from: authority(from)?,
            to: to.iter().map(|t| authority(t)).collect::<Result<_>>()?,
            created_at: now,
            expires_at: now.plus_millis(86_400_000),
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            body_digest: Digest([0; 32]),
        })
    }

    /// Seals `header` over the example notice with `key` (a salt from the
    /// harness's seeded randomness).
    pub fn seal_notice(&mut self, header: Header, key: &SigningKey) -> Result<Parcel> {
        let message = Message::OperationalNotice(examples::notice());
        Ok(seal(header, &message, self.rng.random(), key)?)
    }

    /// Stops every running relay gracefully, then removes the directory.
    pub async fn shutdown(mut self) -> Result<()> {
        let mut failures = Vec::new();
        while let Some((id, node)) = self.nodes.pop_first() {
            if let Err(e) = node.shutdown().await {
                failures.push(format!("{id}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("relays did not stop cleanly: {}", failures.join("; "))
        }
    }
}

/// Whether a relay failed to start only because the previous instance in
/// this process has not quite let go of its resources: the UDP port, or the
/// sled database lock. sled 0.34 releases its file lock from a background
/// thread some time after the last `Db` handle is dropped (spacejam/sled
/// issues 1234 and 1289); a relay restarted as a new process never sees
/// this. sled reports it as an `io::ErrorKind::Other` error, so only its
/// message identifies it.
fn still_released(e: &NodeError) -> bool {
    match e {
        NodeError::Listen { source, .. } => source.kind() == std::io::ErrorKind::AddrInUse,
        NodeError::Store(s) => s.to_string().contains("could not acquire lock"),
        _ => false,
    }
}

/// What [`verify_audit_log`] found in a stopped relay's data directory.
#[derive(Debug)]
pub struct AuditCheck {
    /// The offline bundle (what `kurir-relay audit-export` writes).
    pub bundle: kurir_proto::audit::Bundle,
    /// What [`kurir_proto::audit::verify_log`] established.
    pub report: kurir_proto::audit::LogReport,
}

/// Opens the store in `data_dir` of the stopped relay of `who`, builds its
/// offline audit bundle with the export code (`kurir_relay::audit::collect`)
/// and verifies the log and every checkpoint with `who`'s log key from
/// `roster` ([`kurir_proto::audit::verify_log`]).
pub fn verify_audit_log(roster: &Roster, who: &str, data_dir: &Path) -> Result<AuditCheck> {
    use kurir_relay::store::{Durability, Store};
    let id = authority(who)?;
    let key = roster
        .log_key(&id)
        .ok_or_else(|| anyhow!("the roster lists no log key for {id}"))?;
    let verifier =
        kurir_proto::checkpoint::NoteVerifier::ed25519(&kurir_proto::audit::log_origin(&id), key)
            .map_err(|e| anyhow!("log key of {id}: {e}"))?;
    let store = Store::open(data_dir, Durability::ProcessCrash)
        .with_context(|| format!("opening the store of {id}"))?;
    let bundle = kurir_relay::audit::collect(&store, SystemClock.now());
    store.close()?;
    let bundle = bundle?.ok_or_else(|| anyhow!("the store of {id} holds no relay data"))?;
    let entries: Vec<Vec<u8>> = bundle.entries.iter().map(|b| b.0.clone()).collect();
    let checkpoints: Vec<Vec<u8>> = bundle.checkpoints.iter().map(|b| b.0.clone()).collect();
    let report = kurir_proto::audit::verify_log(&entries, &checkpoints, &[verifier])
        .with_context(|| format!("the audit log of {id} does not verify"))?;
    Ok(AuditCheck { bundle, report })
}

/// A submission of the example operational notice to `to`.
pub fn notice_submission(to: &[&str]) -> Result<Submission> {
    Ok(Submission {
        to: to.iter().map(|t| authority(t)).collect::<Result<_>>()?,
        kind: MessageKind::OperationalNotice,
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        expires_in_ms: None,
        body: Message::OperationalNotice(examples::notice()).encode()?,
    })
}

/// Sends one request and fails on a transport error (not on an error response).
pub async fn request(client: &Client, req: &Request) -> Result<Response> {
    tokio::time::timeout(STEP_TIMEOUT, client.request(req))
        .await
        .map_err(|_| anyhow!("no answer to {req:?} within {STEP_TIMEOUT:?}"))?
        .context("officer request")
}

/// Submits the example notice to `to`; fails unless the relay accepted it.
pub async fn submit_notice(client: &Client, to: &[&str]) -> Result<MessageId> {
    match request(client, &Request::Submit(notice_submission(to)?)).await? {
        Response::Submitted { msg_id, .. } => Ok(msg_id),
        other => bail!("submission refused: {other:?}"),
    }
}

/// The delivery states of a sent message.
pub async fn deliveries(client: &Client, msg_id: MessageId) -> Result<Vec<DeliveryStatus>> {
    match request(
        client,
        &Request::Status {
            msg_id,
            wait_ms: None,
        },
    )
    .await?
    {
        Response::Status { deliveries, .. } => Ok(deliveries),
        other => bail!("status of {msg_id}: {other:?}"),
    }
}

/// Polls the status of `msg_id` every [`POLL`] until `done` holds for its
/// deliveries, for at most [`STEP_TIMEOUT`].
pub async fn await_deliveries(
    client: &Client,
    msg_id: MessageId,
    what: &str,
    done: impl Fn(&[DeliveryStatus]) -> bool,
) -> Result<Vec<DeliveryStatus>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let d = deliveries(client, msg_id).await?;
        if done(&d) {
            return Ok(d);
        }
        if Instant::now() > deadline {
            bail!("{msg_id}: not {what} within {STEP_TIMEOUT:?}; last status {d:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every delivery of `msg_id` is final, and returns them.
pub async fn await_final(client: &Client, msg_id: MessageId) -> Result<Vec<DeliveryStatus>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        // The relay answers when every delivery is final, or when the wait
        // ends; leave a second for the answer to arrive.
        let left = deadline.saturating_duration_since(Instant::now());
        let wait_ms = u64::try_from(left.saturating_sub(Duration::from_secs(1)).as_millis())?;
        let req = Request::Status {
            msg_id,
            wait_ms: Some(wait_ms),
        };
        let d = match tokio::time::timeout(left, client.request(&req)).await {
            Ok(Ok(Response::Status { deliveries, .. })) => deliveries,
            Ok(Ok(other)) => bail!("status of {msg_id}: {other:?}"),
            Ok(Err(e)) => return Err(e).context("officer request"),
            Err(_) => bail!("{msg_id}: no answer within {STEP_TIMEOUT:?}"),
        };
        if !d.is_empty() && d.iter().all(DeliveryStatus::is_final) {
            return Ok(d);
        }
        if Instant::now() >= deadline {
            bail!("{msg_id}: not final within {STEP_TIMEOUT:?}; last status {d:?}");
        }
    }
}

/// The inbox as an officer sees it, oldest first.
pub async fn inbox(client: &Client) -> Result<Vec<Summary>> {
    let req = Request::Inbox {
        unread_only: false,
        kind: None,
        case_id: None,
    };
    match request(client, &req).await? {
        Response::List { items } => Ok(items),
        other => bail!("inbox: {other:?}"),
    }
}

/// Fetches a message and verifies its parcel against the roster,
/// independently of the relay; returns it with the receipt the relay issued.
pub async fn fetch_verified(
    client: &Client,
    roster: &Roster,
    msg_id: MessageId,
) -> Result<(Verified, Option<Vec<u8>>)> {
    match request(client, &Request::Fetch { msg_id }).await? {
        Response::Message {
            parcel, receipt, ..
        } => {
            let parcel = Parcel::from_bytes(&parcel)?;
            let v = verify(parcel, roster).context("the fetched parcel does not verify")?;
            Ok((v, receipt))
        }
        other => bail!("fetch {msg_id}: {other:?}"),
    }
}

/// Founds RS.MUP, BA.SPS and ME.UP and starts only BA.SPS: the test plays
/// the other relays itself.
#[allow(clippy::expect_used)]
pub async fn receiver_only() -> Harness {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).expect("founding a federation");
    h.start("BA.SPS").await.expect("starting BA.SPS");
    h
}

/// `bytes` (sent by the test as RS.MUP's relay) came back as a rejection
/// with `code` that verifies against the roster and is signed by BA.SPS;
/// BA.SPS recorded that very rejection and its inbox is empty.
#[allow(clippy::unwrap_used)]
pub fn assert_refused(h: &Harness, answer: &[u8], code: RejectCode) -> VerifiedReceipt {
    let (v, got) = open_rejection(h.roster(), answer).unwrap();
    assert_eq!(got, code, "{v:?}");
    assert_eq!(v.receipt.receiver.as_str(), "BA.SPS");
    assert_eq!(v.receipt.sender.as_str(), "RS.MUP", "the TLS peer");
    let key = kurir_proto::KeyLookup::lookup(h.roster(), &v.kid).unwrap();
    assert_eq!(key.authority.as_str(), "BA.SPS", "signed with BA.SPS's key");
    let store = h.node("BA.SPS").unwrap().store();
    let refusals = store.refusals().unwrap();
    let record = refusals
        .iter()
        .find(|r| r.receipt == answer)
        .unwrap_or_else(|| unreachable!("refusal not recorded: {refusals:?}"));
    assert_eq!(record.code, code.as_str());
    assert_eq!(record.from.as_str(), "RS.MUP");
    assert_eq!(record.msg_id, v.receipt.msg_id);
    assert!(store.inbox_all().unwrap().is_empty(), "nothing delivered");
    v
}

/// Verifies a signed rejection against the roster and returns it with its code.
pub fn open_rejection(roster: &Roster, bytes: &[u8]) -> Result<(VerifiedReceipt, RejectCode)> {
    let v = open_receipt(bytes, roster).context("the rejection does not verify")?;
    match &v.receipt.status {
        ReceiptStatus::Rejected { reason, .. } => {
            let code = *reason;
            Ok((v, code))
        }
        ReceiptStatus::Accepted => bail!("expected a rejection, got an acceptance: {v:?}"),
    }
}

/// A raw relay-to-relay connection: the test plays a peer relay, sending
/// parcels (or anything else) one frame per bidirectional stream and reading
/// the one frame that comes back.
#[derive(Debug)]
pub struct PeerLink {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl PeerLink {
    /// Connects to the relay of `to` at `addr` with `creds` (a node
    /// certificate), checking the relay's certificate against the roster.
    ///
    /// With TLS 1.3 the client finishes its handshake before the server has
    /// checked the client certificate, so a refused certificate may show up
    /// here or only on the first stream.
    pub async fn connect(
        roster: &Roster,
        creds: &Credentials,
        to: &AuthorityId,
        addr: SocketAddr,
    ) -> Result<PeerLink> {
        Self::connect_on(Self::bind()?, roster, creds, to, addr).await
    }

    /// A client endpoint on `127.0.0.1`, port chosen by the OS; bind first
    /// when the test needs its address before the handshake (to find the
    /// relay's log line about a refused handshake).
    pub fn bind() -> Result<quinn::Endpoint> {
        Ok(quinn::Endpoint::client((Ipv4Addr::LOCALHOST, 0).into())?)
    }

    /// [`PeerLink::connect`] from an endpoint made by [`PeerLink::bind`].
    pub async fn connect_on(
        mut endpoint: quinn::Endpoint,
        roster: &Roster,
        creds: &Credentials,
        to: &AuthorityId,
        addr: SocketAddr,
    ) -> Result<PeerLink> {
        let (tls, name, _port) = kurir_certs::tls::peer_client_config(roster, creds, to)?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connecting = endpoint.connect(addr, &name.to_str())?;
        let conn = tokio::time::timeout(STEP_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow!("no handshake with {to} within {STEP_TIMEOUT:?}"))??;
        Ok(PeerLink { endpoint, conn })
    }

    /// Connects from `endpoint` to `addr` with a TLS configuration the test
    /// built or changed (see [`Harness::peer_tls`]).
    pub async fn connect_tls(
        mut endpoint: quinn::Endpoint,
        tls: rustls::ClientConfig,
        server_name: &str,
        addr: SocketAddr,
    ) -> Result<PeerLink> {
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connecting = endpoint.connect(addr, server_name)?;
        let conn = tokio::time::timeout(STEP_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow!("no handshake with {addr} within {STEP_TIMEOUT:?}"))??;
        Ok(PeerLink { endpoint, conn })
    }

    /// The local address of this end (what the relay logs as `remote`).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    /// The connection.
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Sends `payload` as one frame on a new stream and returns the frame
    /// that comes back (a receipt or a signed rejection).
    pub async fn exchange(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let framed = frame::encode(payload, frame::HARD_MAX_FRAME)?;
        self.exchange_raw(&framed, true).await
    }

    /// Sends only a frame prefix declaring `declared` payload bytes, never
    /// the payload, and keeps the stream open: a relay that waited for the
    /// payload would never answer.
    pub async fn exchange_prefix_only(&self, declared: u32) -> Result<Vec<u8>> {
        self.exchange_raw(&declared.to_be_bytes(), false).await
    }

    async fn exchange_raw(&self, bytes: &[u8], finish: bool) -> Result<Vec<u8>> {
        let work = async {
            let (mut send, mut recv) = self.conn.open_bi().await?;
            send.write_all(bytes).await?;
            if finish {
                send.finish()?;
            }
            let mut prefix = [0u8; frame::PREFIX_LEN];
            recv.read_exact(&mut prefix).await?;
            let len = frame::payload_len(prefix, frame::HARD_MAX_FRAME)?;
            let mut payload = vec![0u8; len];
            recv.read_exact(&mut payload).await?;
            drop(send);
            Ok::<_, anyhow::Error>(payload)
        };
        tokio::time::timeout(STEP_TIMEOUT, work)
            .await
            .map_err(|_| anyhow!("no answer within {STEP_TIMEOUT:?}"))?
    }

    /// Closes the connection and waits until the relay has been told.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.wait_idle().await;
    }
}

/// The relays' log lines, captured for every test in the binary.
///
/// Relay tasks run on the runtime's worker threads, so a per-thread
/// subscriber would miss them: the first [`logs::capture`] installs a global one
/// that appends to a buffer (and, with `KURIR_TEST_LOG=1`, also to stderr).
/// Tests in one binary share the buffer; match on something of your own,
/// such as the local address of a [`PeerLink`].
pub mod logs {
    use std::io::Write;
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Instant;

    use anyhow::{Result, bail};

    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

    struct Sink {
        buf: Arc<Mutex<Vec<u8>>>,
        tee: bool,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.buf.lock() {
                b.extend_from_slice(bytes);
            }
            if self.tee {
                let _ = std::io::stderr().write_all(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Installs the capturing subscriber (once per process). The filter comes
    /// from `KURIR_TEST_LOG_FILTER`, by default `kurir_relay=debug,warn`.
    pub fn capture() {
        BUFFER.get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let tee = std::env::var_os("KURIR_TEST_LOG").is_some_and(|v| v == "1");
            let filter = tracing_subscriber::EnvFilter::try_from_env("KURIR_TEST_LOG_FILTER")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kurir_relay=debug,warn"));
            let sink = buf.clone();
            let _ = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_env_filter(filter)
                .with_writer(move || Sink {
                    buf: sink.clone(),
                    tee,
                })
                .try_init();
            buf
        });
    }

    /// Everything captured so far.
    pub fn text() -> String {
        BUFFER
            .get()
            .and_then(|b| {
                b.lock()
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .unwrap_or_default()
    }

    /// Waits (polling) for a captured line for which `matches` holds.
    pub async fn await_line(what: &str, matches: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + super::STEP_TIMEOUT;
        loop {
            if let Some(line) = text().lines().find(|l| matches(l)) {
                return Ok(line.to_owned());
            }
            if Instant::now() > deadline {
                bail!("no log line {what} within {:?}", super::STEP_TIMEOUT);
            }
            tokio::time::sleep(super::POLL).await;
        }
    }
}
