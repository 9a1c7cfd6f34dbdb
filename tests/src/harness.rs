//! [`Harness`]: founding a federation in a temp dir and starting, stopping
//! and restarting its relays by id; officers connected to them.

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
use kurir_demo::federation::{self, Federation, LOCAL_HOST, MemberSpec};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{Handling, Message, MessageKind, examples};
use kurir_proto::{AuthorityId, Digest, Header, KeyId, MessageId, Parcel, Timestamp, seal};
use kurir_relay::clock::{Clock, SystemClock};
use kurir_relay::node::{Node, NodeError};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tempfile::TempDir;

use crate::peer::PeerLink;
use crate::{AUDITOR, DUTY_OFFICER, POLL, RELEASE_TIMEOUT, SEED, authority, logs, proxy};

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
    /// Set by [`Harness::set_checkpoint_interval`]: overrides the
    /// configured interval of every relay started from then on.
    checkpoint_interval: Option<Duration>,
    /// Set by [`Harness::set_crl_check`]: overrides `[identity]
    /// crl_check_secs`.
    crl_check: Option<Duration>,
    /// Set by [`Harness::set_roster_check`]: overrides `[roster]
    /// check_secs`.
    roster_check: Option<Duration>,
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
        Self::found(members, clock, &[], &[])
    }

    /// [`Harness::new`] with more officers (role `officer`) at every
    /// member, besides [`DUTY_OFFICER`] and [`AUDITOR`].
    pub fn with_officers(members: &[&str], officers: &[&str]) -> Result<Harness> {
        let officers: Vec<_> = officers.iter().map(|o| (*o, Role::Officer)).collect();
        Self::found(members, Arc::new(SystemClock), &officers, &[])
    }

    /// [`Harness::new`] with more people at every member, besides
    /// [`DUTY_OFFICER`] and [`AUDITOR`]: `people` by name and role, and the
    /// names the roster lists as every member's focal points.
    pub fn with_people(
        members: &[&str],
        people: &[(&str, Role)],
        focal_points: &[&str],
    ) -> Result<Harness> {
        Self::found(members, Arc::new(SystemClock), people, focal_points)
    }

    fn found(
        members: &[&str],
        clock: Arc<dyn Clock>,
        extra: &[(&str, Role)],
        focal_points: &[&str],
    ) -> Result<Harness> {
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
                    .chain(extra.iter().map(|(o, role)| ((*o).to_owned(), *role)))
                    .collect(),
                    focal_points: focal_points.iter().map(|f| (*f).to_owned()).collect(),
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
            checkpoint_interval: None,
            crl_check: None,
            roster_check: None,
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
        let mut config = member.config()?;
        if let Some(every) = self.checkpoint_interval {
            config.checkpoint_interval_ms = every.as_millis().try_into()?;
        }
        if let Some(every) = self.crl_check {
            config.crl_check = every;
        }
        if let Some(every) = self.roster_check {
            config.roster_check = every;
        }
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
        let mut config = member.config()?;
        if let Some(every) = self.checkpoint_interval {
            config.checkpoint_interval_ms = every.as_millis().try_into()?;
        }
        if let Some(every) = self.crl_check {
            config.crl_check = every;
        }
        if let Some(every) = self.roster_check {
            config.roster_check = every;
        }
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

    /// Relays started from now on sign checkpoints (and ask for
    /// cosignatures) every `every` instead of their configured
    /// `checkpoint_secs`, which cannot go below a second.
    pub fn set_checkpoint_interval(&mut self, every: Duration) {
        self.checkpoint_interval = Some(every);
    }

    /// Relays started from now on check their CRL file every `every`
    /// instead of their configured `crl_check_secs`, which cannot go below
    /// a second.
    pub fn set_crl_check(&mut self, every: Duration) {
        self.crl_check = Some(every);
    }

    /// Relays started from now on check their roster file every `every`
    /// instead of their configured `[roster] check_secs`, which cannot go
    /// below a second.
    pub fn set_roster_check(&mut self, every: Duration) {
        self.roster_check = Some(every);
    }

    /// Gives the relay of `who` a roster file of its own, `<member
    /// dir>/roster.cbor`, holding the roster the harness has now, and points
    /// its `relay.toml` at it (read at its next start). By default every
    /// relay reads the federation's one roster file; with a file each, a
    /// roster installed at one relay reaches no other.
    pub fn own_roster_file(&self, who: &str) -> Result<std::path::PathBuf> {
        let member = self.member(who)?;
        let home = member
            .config_path
            .parent()
            .ok_or_else(|| anyhow!("the relay.toml of {who} has no directory"))?;
        let path = home.join("roster.cbor");
        std::fs::write(&path, self.roster.to_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        let config = std::fs::read_to_string(&member.config_path)?;
        let changed = config.replace("path = \"../roster.cbor\"", "path = \"roster.cbor\"");
        if changed == config && !config.contains("path = \"roster.cbor\"") {
            bail!("the relay.toml of {who} names no roster file the harness knows");
        }
        std::fs::write(&member.config_path, changed)?;
        Ok(path)
    }

    /// The authority `who` (e.g. `AT.BMI`) joins the federation: its PKI,
    /// officers ([`DUTY_OFFICER`], [`AUDITOR`]), `relay.toml` and socket are
    /// made as at founding. Returns its roster entry, for
    /// [`Harness::next_roster`]; its relay starts once a roster lists it.
    pub fn join(&mut self, who: &str) -> Result<kurir_certs::roster::Member> {
        let spec = MemberSpec {
            id: authority(who)?,
            name: format!("{who} (test authority)"),
            officers: vec![
                (DUTY_OFFICER.to_owned(), Role::Officer),
                (AUDITOR.to_owned(), Role::Auditor),
            ],
            focal_points: vec![],
        };
        Ok(self.fed.join(&spec, self.clock.now())?)
    }

    /// The next version of the harness's roster with `change` applied,
    /// signed by the founding roster keys numbered in `signers` (0 to 2; the
    /// threshold is 2): the signed file's bytes. The harness's own roster
    /// does not change ([`Harness::adopt_roster`]).
    pub fn next_roster(
        &self,
        change: impl FnOnce(&mut kurir_certs::roster::Editor) -> Result<()>,
        signers: &[usize],
    ) -> Result<Vec<u8>> {
        let current = kurir_certs::SignedRoster::decode(self.roster.to_bytes())
            .map_err(|p| anyhow!("the harness's roster: {p}"))?;
        let mut editor = kurir_certs::roster::Editor::open(&current)?;
        change(&mut editor)?;
        let mut next = editor.finish(self.clock.now())?;
        for &i in signers {
            let key = self
                .fed
                .roster_keys
                .get(i)
                .ok_or_else(|| anyhow!("there is no roster key {i}"))?;
            next.sign(key);
        }
        Ok(next.encode()?)
    }

    /// Makes `bytes` (verified against the harness's roster) the roster the
    /// harness verifies signatures and reaches relays with.
    pub fn adopt_roster(&mut self, bytes: &[u8]) -> Result<()> {
        self.roster = Roster::verify_against(bytes, Some(&self.roster), self.clock.now())?;
        Ok(())
    }

    /// Takes the pre-bound socket of `who` (first start only), for a test
    /// that plays the relay of `who` as a server on the port the roster
    /// names (see [`crate::witness::HostileWitness`]).
    pub fn take_socket(&mut self, who: &str) -> Result<std::net::UdpSocket> {
        let id = authority(who)?;
        let member = self
            .fed
            .member_mut(&id)
            .ok_or_else(|| anyhow!("{id} is not a member of this federation"))?;
        member
            .socket
            .take()
            .ok_or_else(|| anyhow!("the relay of {id} has been started before"))
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

    /// The audit log of `who`'s running relay, every entry decoded.
    pub fn log(&self, who: &str) -> Result<Vec<kurir_proto::audit::Entry>> {
        self.node(who)?
            .store()
            .log_entries()?
            .iter()
            .map(|b| kurir_proto::audit::Entry::decode(b).map_err(|e| anyhow!("{who}'s log: {e}")))
            .collect()
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
