//! The workload: a two-relay federation, officers submitting with W
//! requests in flight, and the measurement of each message from submit to
//! the sender relay holding the receiver's signed receipt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kurir_certs::Roster;
use kurir_certs::officer::Role;
use kurir_client::{Client, Subscription};
use kurir_demo::federation::{self, Federation, LOCAL_HOST, MemberSpec};
use kurir_proto::api::{Request, Response, Submission};
use kurir_proto::message::{Attachment, Handling, Message, MessageKind, Priority};
use kurir_proto::{AuthorityId, MessageId, ReceiptStatus, open_receipt};
use kurir_relay::clock::{Clock, SystemClock};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::procs::{Memory, RelayProc, SyncCounter};

/// The sending and the receiving authority.
pub(crate) const SENDER: &str = "RS.MUP";
pub(crate) const RECEIVER: &str = "BA.SPS";
const OFFICER: &str = "duty officer";
const AUDITOR: &str = "auditor";
/// How long one message may take before the run is called failed.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages in flight (`submit_wait` exchanges) per officer connection.
const WAITS_PER_CONNECTION: usize = 48;

/// What a run does.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub(crate) label: String,
    pub(crate) messages: usize,
    pub(crate) size: usize,
    pub(crate) window: usize,
    pub(crate) warmup: usize,
    pub(crate) durability: String,
    pub(crate) relay_in_flight: Option<usize>,
    pub(crate) verify_every: usize,
    pub(crate) fsyncs: bool,
    pub(crate) keep: bool,
}

/// What a run measured (the `data` of a `run` line in `--json`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunResult {
    pub(crate) label: String,
    pub(crate) messages: usize,
    pub(crate) body_bytes: usize,
    pub(crate) parcel_bytes: usize,
    pub(crate) window: usize,
    pub(crate) durability: String,
    pub(crate) relay_in_flight: usize,
    pub(crate) elapsed_secs: f64,
    pub(crate) msgs_per_sec: f64,
    pub(crate) mb_per_sec: f64,
    /// Submit sent → sender's status shows `delivered` with the receipt.
    pub(crate) latency_ms: Percentiles,
    /// Submit sent → `Submitted` answer (stored on the sender's disk).
    pub(crate) submit_ms: Percentiles,
    /// Submit sent → the receiver's subscription announces it (stored there).
    pub(crate) arrival_ms: Percentiles,
    pub(crate) status_polls_per_msg: f64,
    pub(crate) receipts_verified: usize,
    pub(crate) relays: Vec<RelayFigures>,
}

/// Per relay.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RelayFigures {
    pub(crate) authority: String,
    pub(crate) cpu_secs_per_1000: f64,
    pub(crate) memory: Memory,
    pub(crate) ready_secs: f64,
    /// The store's group commits and sled rows per message while the
    /// messages were measured (from the relay's `/metrics`, read with the
    /// CPU), the proofs of earlier messages' receipts included.
    pub(crate) store_commits_per_msg: f64,
    pub(crate) store_rows_per_msg: f64,
    /// Only with `--fsyncs` (strace -c, which slows the run down).
    pub(crate) syncs_per_msg: Option<Vec<(String, f64)>>,
}

/// p50, p99, p99.9 and max, in ms.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

impl Percentiles {
    pub(crate) fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

/// How the relays of a bed are configured.
#[derive(Debug, Clone)]
pub(crate) struct BedConfig {
    /// `storage.durability`.
    pub(crate) durability: String,
    /// `limits.max_parcel_bytes`.
    pub(crate) max_parcel: usize,
    /// `retry.max_in_flight_per_peer` (the relay's default if none).
    pub(crate) relay_in_flight: Option<usize>,
    /// `audit.checkpoint_secs` (the relay's default, 5, if none).
    pub(crate) checkpoint_secs: Option<u64>,
}

/// A founded federation whose relays run as child processes.
#[derive(Debug)]
pub(crate) struct Bed {
    pub(crate) fed: Federation,
    pub(crate) roster: Roster,
    pub(crate) dir: PathBuf,
    /// Each relay's `[metrics] listen` address, by authority.
    metrics: HashMap<String, SocketAddr>,
    /// Removed when the bed is dropped, unless kept.
    _temp: Option<tempfile::TempDir>,
}

pub(crate) fn authority(s: &str) -> Result<AuthorityId> {
    AuthorityId::parse(s).with_context(|| format!("bad authority id {s}"))
}

impl Bed {
    /// Founds RS.MUP and BA.SPS in a fresh temporary directory and writes
    /// each `relay.toml` for the benchmark.
    pub(crate) fn found(
        durability: &str,
        max_parcel: usize,
        relay_in_flight: Option<usize>,
        keep: bool,
    ) -> Result<Bed> {
        let members = [(SENDER, "Sender"), (RECEIVER, "Receiver")];
        let members: Vec<_> = members
            .iter()
            .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
            .collect();
        let config = BedConfig {
            durability: durability.to_owned(),
            max_parcel,
            relay_in_flight,
            checkpoint_secs: None,
        };
        Bed::found_members(&members, &config, keep)
    }

    /// Founds the given members (id, name) in a fresh temporary directory,
    /// each with an officer ([`Bed::officer`]) and an auditor
    /// ([`Bed::auditor`]), and writes each `relay.toml`.
    pub(crate) fn found_members(
        members: &[(String, String)],
        config: &BedConfig,
        keep: bool,
    ) -> Result<Bed> {
        let BedConfig {
            durability,
            max_parcel,
            relay_in_flight,
            checkpoint_secs,
        } = config;
        let temp = tempfile::Builder::new()
            .prefix("kurir-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let dir = temp.path().to_owned();
        let specs = members
            .iter()
            .map(|(id, name)| {
                Ok(MemberSpec {
                    id: authority(id)?,
                    name: name.clone(),
                    officers: vec![
                        (OFFICER.to_owned(), Role::Officer),
                        (AUDITOR.to_owned(), Role::Auditor),
                    ],
                    focal_points: vec![],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let now = SystemClock.now();
        let mut fed = federation::found(&dir, &specs, now)?;
        let mut metrics = HashMap::new();
        for m in &mut fed.members {
            // The roster names this port: free it for the child to bind.
            drop(m.socket.take());
            // A free port for the metrics, freed the same way.
            let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("cannot find a free port for a relay's metrics")?;
            metrics.insert(m.id.to_string(), metrics_addr);
            let in_flight = relay_in_flight
                .map(|n| format!("max_in_flight_per_peer = {n}\n"))
                .unwrap_or_default();
            let config = format!(
                "[identity]\nauthority = \"{id}\"\nauthority_dir = \"authority\"\n\n\
                 [network]\nlisten = \"{addr}\"\n\n\
                 [roster]\npath = \"../roster.cbor\"\n\n\
                 [storage]\ndata_dir = \"data\"\ndurability = \"{durability}\"\n\n\
                 [limits]\nmax_parcel_bytes = {max_parcel}\n\n\
                 [retry]\ninitial_secs = 1\nmax_secs = 5\n{in_flight}\n\
                 [logging]\nlevel = \"warn\"\n\n\
                 [metrics]\nlisten = \"{metrics_addr}\"\n{audit}",
                id = m.id,
                addr = m.addr,
                audit = checkpoint_secs
                    .map(|s| format!("\n[audit]\ncheckpoint_secs = {s}\n"))
                    .unwrap_or_default(),
            );
            std::fs::write(&m.config_path, config)
                .with_context(|| format!("cannot write {}", m.config_path.display()))?;
        }
        let roster = Roster::load(&fed.roster_path, None, now)?;
        let temp = if keep {
            eprintln!("kurir-bench: keeping {}", temp.keep().display());
            None
        } else {
            Some(temp)
        };
        Ok(Bed {
            fed,
            roster,
            dir,
            metrics,
            _temp: temp,
        })
    }

    pub(crate) fn start(&self, who: &str) -> Result<RelayProc> {
        let m = self
            .fed
            .member(&authority(who)?)
            .with_context(|| format!("{who} is not founded"))?;
        RelayProc::spawn(who, &m.config_path, &self.dir.join(format!("{who}.log")))
    }

    /// The group commits and sled rows `who`'s store has made since it
    /// started (`kurir_store_commits_total`, `kurir_store_rows_total`).
    pub(crate) async fn store_counts(&self, who: &str) -> Result<(u64, u64)> {
        let addr = *self
            .metrics
            .get(who)
            .with_context(|| format!("{who} has no metrics address"))?;
        let text = federation::scrape_metrics(addr)
            .await
            .with_context(|| format!("GET /metrics from {who} at {addr}"))?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .with_context(|| format!("{who}'s /metrics has no {name}"))
        };
        Ok((
            value("kurir_store_commits_total")?,
            value("kurir_store_rows_total")?,
        ))
    }

    pub(crate) async fn officer(&self, who: &str) -> Result<Client> {
        self.client(who, OFFICER).await
    }

    /// A connection with the auditor's certificate (it may export the log).
    pub(crate) async fn auditor(&self, who: &str) -> Result<Client> {
        self.client(who, AUDITOR).await
    }

    async fn client(&self, who: &str, name: &str) -> Result<Client> {
        let m = self
            .fed
            .member(&authority(who)?)
            .with_context(|| format!("{who} is not founded"))?;
        let dir = m
            .officer_dir(name)
            .with_context(|| format!("no {name} at {who}"))?;
        Ok(Client::connect_with_dir(m.addr, LOCAL_HOST, &m.id, dir).await?)
    }

    pub(crate) fn data_dir(&self, who: &str) -> PathBuf {
        self.dir.join(who).join("data")
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

/// The body of an operational notice of about `size` encoded bytes: a text
/// notice for small sizes, one attachment for large ones.
pub(crate) fn body_of(size: usize) -> Result<Vec<u8>> {
    let notice = |text: String, attachments: Vec<Attachment>| {
        Message::OperationalNotice(kurir_proto::message::OperationalNotice {
            subject: "kurir-bench".to_owned(),
            text,
            priority: Priority::Normal,
            attachments,
        })
        .encode()
    };
    let build = |fill: usize| {
        if size >= 64 * 1024 {
            notice(
                "attachment".to_owned(),
                vec![Attachment {
                    name: "scan.bin".to_owned(),
                    media_type: "application/octet-stream".to_owned(),
                    data: (0..fill).map(|i| (i % 251) as u8).collect(),
                }],
            )
        } else {
            notice("x".repeat(fill), vec![])
        }
    };
    // Once to learn the overhead, once more with the fill that gives `size`.
    let overhead = build(size)?.len().saturating_sub(size);
    Ok(build(size.saturating_sub(overhead))?)
}

pub(crate) fn submission(body: &[u8], to: &AuthorityId) -> Request {
    Request::Submit(submission_of(body, to))
}

/// A notice of `body` to `to`, as the load's officer submits it.
fn submission_of(body: &[u8], to: &AuthorityId) -> Submission {
    Submission {
        to: vec![to.clone()],
        kind: MessageKind::OperationalNotice,
        case_id: None,
        in_reply_to: None,
        procedure: None,
        handling: Handling::H1,
        legal_basis: None,
        expires_in_ms: None,
        body: body.to_vec(),
    }
}

/// Arrivals announced by the receiver, matched to waiting workers.
#[derive(Debug, Default)]
struct Arrivals {
    /// Workers waiting for a message.
    waiting: HashMap<MessageId, oneshot::Sender<Instant>>,
    /// Arrivals announced before their worker asked.
    early: HashMap<MessageId, Instant>,
}

impl Arrivals {
    fn announce(&mut self, id: MessageId, at: Instant) {
        match self.waiting.remove(&id) {
            Some(tx) => {
                let _ = tx.send(at);
            }
            None => {
                self.early.insert(id, at);
            }
        }
    }

    fn wait_for(&mut self, id: MessageId) -> Result<Instant, oneshot::Receiver<Instant>> {
        if let Some(at) = self.early.remove(&id) {
            return Ok(at);
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(id, tx);
        Err(rx)
    }
}

async fn listen(mut sub: Subscription, arrivals: Arc<Mutex<Arrivals>>) {
    while let Ok(Some(Response::Event { summary })) = sub.next().await {
        let at = Instant::now();
        if let Ok(mut a) = arrivals.lock() {
            a.announce(summary.msg_id, at);
        }
    }
}

/// One message's times from the moment its submit request was sent.
#[derive(Debug, Clone, Copy)]
struct Sample {
    submitted: Duration,
    arrived: Duration,
    delivered: Duration,
    polls: u32,
}

struct Driver {
    /// The officer's connection for the listing at the end.
    sender: Client,
    /// Officer connections for the `submit_wait` exchanges, each of which
    /// holds a stream until its message is delivered (the relay allows
    /// `limits.max_streams_per_connection`, 64, on each).
    watchers: Vec<Client>,
    arrivals: Arc<Mutex<Arrivals>>,
    roster: Roster,
    receiver: AuthorityId,
    body: Vec<u8>,
    verify_every: usize,
}

impl Driver {
    /// Sends one message and follows it to a stored receipt ([`deliver`]),
    /// and takes the time BA.SPS announced its arrival.
    async fn one(&self, index: usize) -> Result<(Sample, bool)> {
        let start = Instant::now();
        let watcher = &self.watchers[index % self.watchers.len()];
        let followed = deliver(watcher, &self.body, &self.receiver, MESSAGE_TIMEOUT).await?;
        let msg_id = followed.msg_id;
        // The arrival the receiver announced (before the receipt went back,
        // so in all but rare cases already here).
        let waiting = self
            .arrivals
            .lock()
            .map_err(|_| anyhow::anyhow!("arrivals lock poisoned"))?
            .wait_for(msg_id);
        let arrived_at = match waiting {
            Ok(at) => at,
            Err(rx) => tokio::time::timeout(MESSAGE_TIMEOUT, rx)
                .await
                .with_context(|| format!("{msg_id} did not arrive at the receiver"))?
                .context("the receiver's subscription ended")?,
        };
        let verify = self.verify_every > 0 && index.is_multiple_of(self.verify_every);
        if verify {
            followed.check_receipt(&self.roster, &self.receiver)?;
        }
        Ok((
            Sample {
                submitted: followed.submitted,
                arrived: arrived_at.saturating_duration_since(start),
                delivered: followed.delivered,
                polls: followed.polls,
            },
            verify,
        ))
    }
}

/// A message [`deliver`] followed to its delivery.
pub(crate) struct Followed {
    pub(crate) msg_id: MessageId,
    /// From the request to the `Submitted` answer.
    pub(crate) submitted: Duration,
    /// From the request to the status that shows it delivered.
    pub(crate) delivered: Duration,
    /// Status answers read: 1 unless the first was not final yet.
    pub(crate) polls: u32,
    /// The stored receipt the status carried.
    receipt: Option<Vec<u8>>,
}

impl Followed {
    /// Verifies the receipt against `roster`: an acceptance of this
    /// message, signed by `receiver`.
    pub(crate) fn check_receipt(&self, roster: &Roster, receiver: &AuthorityId) -> Result<()> {
        let bytes = self
            .receipt
            .as_deref()
            .context("delivered without receipt")?;
        let r = open_receipt(bytes, roster)?;
        if r.receipt.msg_id != Some(self.msg_id)
            || r.receipt.status != ReceiptStatus::Accepted
            || &r.receipt.receiver != receiver
        {
            bail!("the receipt for {} does not match it", self.msg_id);
        }
        Ok(())
    }
}

/// Sends a notice of `body` to `to` and follows it to a stored receipt:
/// one `submit_wait` exchange (the `Submitted` answer, then the status once
/// the delivery is final), and `status` requests with a wait only if that
/// status is not final yet; a failure once `timeout` has passed.
pub(crate) async fn deliver(
    officer: &Client,
    body: &[u8],
    to: &AuthorityId,
    timeout: Duration,
) -> Result<Followed> {
    let start = Instant::now();
    let wait_ms = || {
        let wait = timeout.saturating_sub(start.elapsed());
        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
    };
    let mut answers = officer
        .submit_wait(submission_of(body, to), wait_ms())
        .await?;
    let msg_id = match answers.next().await? {
        Some(Response::Submitted { msg_id, .. }) => msg_id,
        other => bail!("submission refused: {other:?}"),
    };
    let submitted = start.elapsed();
    let mut polls = 1;
    let mut answer = answers.next().await?;
    loop {
        let Some(Response::Status { deliveries, .. }) = answer else {
            bail!("status of {msg_id} failed: {answer:?}");
        };
        let Some(d) = deliveries.into_iter().next() else {
            bail!("{msg_id} has no delivery");
        };
        match d.state.as_str() {
            "delivered" => {
                return Ok(Followed {
                    msg_id,
                    submitted,
                    delivered: start.elapsed(),
                    polls,
                    receipt: d.receipt,
                });
            }
            "queued" | "sending" | "retrying" => {}
            other => bail!("{msg_id}: {other} ({:?})", d.reason),
        }
        if start.elapsed() > timeout {
            bail!("{msg_id} not delivered within {timeout:?}");
        }
        polls += 1;
        answer = Some(
            officer
                .request(&Request::Status {
                    msg_id,
                    wait_ms: Some(wait_ms()),
                })
                .await?,
        );
    }
}

/// Runs `count` messages with `window` workers; returns the samples.
async fn drive(
    driver: &Arc<Driver>,
    count: usize,
    window: usize,
) -> Result<(Vec<Sample>, usize, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..window.max(1) {
        let driver = driver.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut samples = vec![];
            let mut verified = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>((samples, verified));
                }
                let (s, v) = driver.one(i).await?;
                samples.push(s);
                verified += usize::from(v);
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    let mut verified = 0;
    while let Some(done) = workers.join_next().await {
        let (samples, v) = done??;
        all.extend(samples);
        verified += v;
    }
    Ok((all, verified, started.elapsed()))
}

/// One measured run on a fresh federation.
pub(crate) async fn run(spec: &RunSpec) -> Result<RunResult> {
    let body = body_of(spec.size)?;
    let max_parcel = (body.len() + (1 << 20)).max(kurir_proto::DEFAULT_MAX_PARCEL);
    let bed = Bed::found(
        &spec.durability,
        max_parcel,
        spec.relay_in_flight,
        spec.keep,
    )?;
    let sender_proc = bed.start(SENDER)?;
    let receiver_proc = bed.start(RECEIVER)?;
    let sender = bed.officer(SENDER).await?;
    let mut watchers = vec![];
    for _ in 0..spec.window.div_ceil(WAITS_PER_CONNECTION).max(1) {
        watchers.push(bed.officer(SENDER).await?);
    }
    let receiving = bed.officer(RECEIVER).await?;
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let listener = tokio::spawn(listen(receiving.subscribe().await?, arrivals.clone()));
    let driver = Arc::new(Driver {
        sender,
        watchers,
        arrivals,
        roster: bed.roster.clone(),
        receiver: authority(RECEIVER)?,
        body,
        verify_every: spec.verify_every,
    });
    // Warm up: the peer connection, sled's caches, the allocator.
    drive(&driver, spec.warmup, spec.window.min(spec.warmup.max(1))).await?;
    let procs = [&sender_proc, &receiver_proc];
    let counters = if spec.fsyncs {
        procs
            .iter()
            .map(|p| {
                SyncCounter::attach(p.pid(), &bed.path().join(format!("{}.strace", p.name)))
                    .map(Some)
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![None, None]
    };
    let mut counts_before = vec![];
    for p in procs {
        counts_before.push(bed.store_counts(&p.name).await?);
    }
    let cpu_before = procs
        .iter()
        .map(|p| p.cpu_secs())
        .collect::<Result<Vec<_>>>()?;
    let (mut samples, verified, elapsed) = drive(&driver, spec.messages, spec.window).await?;
    let cpu_after = procs
        .iter()
        .map(|p| p.cpu_secs())
        .collect::<Result<Vec<_>>>()?;
    let mut counts_after = vec![];
    for p in procs {
        counts_after.push(bed.store_counts(&p.name).await?);
    }
    let per_msg = |n: u64| n as f64 / spec.messages.max(1) as f64;
    let mut relays = vec![];
    for ((((p, before), after), counter), (counts0, counts1)) in procs
        .iter()
        .zip(cpu_before)
        .zip(cpu_after)
        .zip(counters)
        .zip(counts_before.into_iter().zip(counts_after))
    {
        let syncs = match counter {
            Some(c) => Some(
                c.finish()?
                    .into_iter()
                    .map(|(name, n)| (name, n as f64 / spec.messages.max(1) as f64))
                    .collect(),
            ),
            None => None,
        };
        relays.push(RelayFigures {
            authority: p.name.clone(),
            cpu_secs_per_1000: (after - before) * 1000.0 / spec.messages.max(1) as f64,
            memory: p.memory()?,
            ready_secs: p.ready_after.as_secs_f64(),
            store_commits_per_msg: per_msg(counts1.0.saturating_sub(counts0.0)),
            store_rows_per_msg: per_msg(counts1.1.saturating_sub(counts0.1)),
            syncs_per_msg: syncs,
        });
    }
    let polls: u64 = samples.iter().map(|s| u64::from(s.polls)).sum();
    let mut latency: Vec<_> = samples.iter().map(|s| s.delivered).collect();
    let mut submit: Vec<_> = samples.iter().map(|s| s.submitted).collect();
    let mut arrival: Vec<_> = samples.iter_mut().map(|s| s.arrived).collect();
    let parcel_bytes = sample_parcel_size(&driver).await.unwrap_or(0);
    let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let result = RunResult {
        label: spec.label.clone(),
        messages: spec.messages,
        body_bytes: driver.body.len(),
        parcel_bytes,
        window: spec.window,
        durability: spec.durability.clone(),
        relay_in_flight: spec
            .relay_in_flight
            .unwrap_or(kurir_relay::core::delivery::RetryPolicy::default().max_in_flight_per_peer),
        elapsed_secs: secs,
        msgs_per_sec: spec.messages as f64 / secs,
        mb_per_sec: (spec.messages * driver.body.len()) as f64 / secs / 1e6,
        latency_ms: Percentiles::of(&mut latency),
        submit_ms: Percentiles::of(&mut submit),
        arrival_ms: Percentiles::of(&mut arrival),
        status_polls_per_msg: polls as f64 / spec.messages.max(1) as f64,
        receipts_verified: verified,
        relays,
    };
    listener.abort();
    drop(driver);
    receiving.close().await;
    sender_proc.stop()?;
    receiver_proc.stop()?;
    Ok(result)
}

/// The size of the parcel the sender built for the last message it sent.
async fn sample_parcel_size(driver: &Driver) -> Result<usize> {
    let Response::List { items } = driver.sender.request(&Request::Sent).await? else {
        bail!("no list of sent messages");
    };
    let Some(last) = items.last() else {
        bail!("nothing sent");
    };
    match driver
        .sender
        .request(&Request::Fetch {
            msg_id: last.msg_id,
            envelope_only: false,
        })
        .await?
    {
        Response::Message { parcel, .. } => Ok(parcel.len()),
        other => bail!("fetch failed: {other:?}"),
    }
}

/// What the queue run measured (`queue` line in `--json`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueueResult {
    pub(crate) queued: usize,
    pub(crate) body_bytes: usize,
    pub(crate) submit_secs: f64,
    pub(crate) submits_per_sec_first_10pct: f64,
    pub(crate) submits_per_sec_last_10pct: f64,
    pub(crate) sender_cpu_secs_while_queueing: f64,
    pub(crate) memory_queued: Memory,
    pub(crate) data_dir_mib: f64,
    pub(crate) shutdown_secs: f64,
    pub(crate) restart_ready_secs: f64,
    pub(crate) memory_after_restart: Memory,
    pub(crate) drained: usize,
    pub(crate) drain_secs: f64,
    pub(crate) drain_msgs_per_sec: f64,
    pub(crate) memory_after_drain: Memory,
}

/// Queues `count` messages for a receiver that is down, restarts the
/// sender, then starts the receiver and lets the queue drain (bounded).
pub(crate) async fn queue(
    count: usize,
    size: usize,
    window: usize,
    durability: &str,
    drain_limit: Duration,
    keep: bool,
) -> Result<QueueResult> {
    let body = body_of(size)?;
    let bed = Bed::found(durability, kurir_proto::DEFAULT_MAX_PARCEL, None, keep)?;
    let sender_proc = bed.start(SENDER)?;
    let sender = Arc::new(bed.officer(SENDER).await?);
    let to = authority(RECEIVER)?;
    let request = Arc::new(submission(&body, &to));
    let next = Arc::new(AtomicUsize::new(0));
    let tenth = (count / 10).max(1);
    let marks = Arc::new(Mutex::new(HashMap::<usize, Instant>::new()));
    let cpu_before = sender_proc.cpu_secs()?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..window.max(1) {
        let (sender, request, next, marks) =
            (sender.clone(), request.clone(), next.clone(), marks.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                match sender.request(&request).await? {
                    Response::Submitted { .. } => {}
                    other => bail!("submission refused: {other:?}"),
                }
                if (i == tenth || i == count - tenth)
                    && let Ok(mut m) = marks.lock()
                {
                    m.insert(i, Instant::now());
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    let submit_secs = started.elapsed().as_secs_f64();
    let cpu = sender_proc.cpu_secs()? - cpu_before;
    let (first, last) = {
        let m = marks
            .lock()
            .map_err(|_| anyhow::anyhow!("marks lock poisoned"))?;
        let first = m
            .get(&tenth)
            .map(|t| t.duration_since(started).as_secs_f64());
        let last = m
            .get(&(count - tenth))
            .map(|t| (started.elapsed() - t.duration_since(started)).as_secs_f64());
        (first, last)
    };
    let rate = |secs: Option<f64>| secs.map_or(0.0, |s| tenth as f64 / s.max(1e-9));
    let memory_queued = sender_proc.memory()?;
    if let Ok(s) = Arc::try_unwrap(sender) {
        s.close().await;
    }
    let data_dir_mib = dir_size(&bed.data_dir(SENDER)) as f64 / (1 << 20) as f64;
    let shutdown = sender_proc.stop()?;
    let sender_proc = bed.start(SENDER)?;
    let restart_ready_secs = sender_proc.ready_after.as_secs_f64();
    let memory_after_restart = sender_proc.memory()?;

    // Now let the receiver come up and count what arrives.
    let receiver_proc = bed.start(RECEIVER)?;
    let receiving = bed.officer(RECEIVER).await?;
    let mut sub = receiving.subscribe().await?;
    let drain_started = Instant::now();
    let mut drained = 0;
    while drained < count {
        let left = drain_limit.saturating_sub(drain_started.elapsed());
        match tokio::time::timeout(left, sub.next()).await {
            Ok(Ok(Some(Response::Event { .. }))) => drained += 1,
            Ok(_) => bail!("the receiver's subscription ended"),
            Err(_) => break,
        }
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let memory_after_drain = sender_proc.memory()?;
    drop(sub);
    receiving.close().await;
    sender_proc.stop()?;
    receiver_proc.stop()?;
    Ok(QueueResult {
        queued: count,
        body_bytes: body.len(),
        submit_secs,
        submits_per_sec_first_10pct: rate(first),
        submits_per_sec_last_10pct: rate(last),
        sender_cpu_secs_while_queueing: cpu,
        memory_queued,
        data_dir_mib,
        shutdown_secs: shutdown.as_secs_f64(),
        restart_ready_secs,
        memory_after_restart,
        drained,
        drain_secs,
        drain_msgs_per_sec: drained as f64 / drain_secs.max(1e-9),
        memory_after_drain,
    })
}

pub(crate) fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let mut v: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p99, p.p999, p.max), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(Percentiles::of(&mut []).max, 0.0);
    }

    #[test]
    fn bodies_have_about_the_asked_size() {
        for size in [1024, 8 << 20] {
            let body = body_of(size).unwrap();
            assert!(body.len().abs_diff(size) < 4, "{size}: {}", body.len());
            Message::decode(MessageKind::OperationalNotice, &body).unwrap();
        }
    }

    #[test]
    fn early_arrivals_are_kept() {
        let mut a = Arrivals::default();
        let id = MessageId::new_v7(1, [1; 10]);
        let at = Instant::now();
        a.announce(id, at);
        assert_eq!(a.wait_for(id).ok(), Some(at));
        assert!(a.wait_for(id).is_err(), "taken once");
    }
}
