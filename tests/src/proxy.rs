//! A UDP fault proxy for the partition suite: it sits where the roster says
//! a relay listens, forwards datagrams to the relay's real socket and back,
//! and on the way drops, delays, duplicates and reorders them at seeded
//! random, or cuts the link altogether until it is healed.
//!
//! Each client address (a peer relay's endpoint) gets its own upstream
//! socket, so the relay sees one remote per client, as without the proxy.
//! Every task lives in the proxy's `JoinSet`: dropping the [`FaultProxy`]
//! stops them all.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// What the proxy does to each datagram, in either direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by `reorder_delay`, so that
    /// later ones overtake it.
    pub reorder: f64,
    /// Every datagram is delayed by a uniform random time up to this.
    pub max_delay: Duration,
    /// How long a reordered datagram is held back (on top of the delay).
    pub reorder_delay: Duration,
    /// The link is cut: every datagram is dropped.
    pub cut: bool,
}

impl Faults {
    /// A clean link.
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        max_delay: Duration::ZERO,
        reorder_delay: Duration::ZERO,
        cut: false,
    };

    /// A bad but working link: 10 % dropped, 10 % duplicated, 10 %
    /// reordered, up to 20 ms of delay.
    pub const LOSSY: Faults = Faults {
        drop: 0.10,
        duplicate: 0.10,
        reorder: 0.10,
        max_delay: Duration::from_millis(20),
        reorder_delay: Duration::from_millis(30),
        cut: false,
    };
}

/// Datagram counts since the proxy started.
#[derive(Debug, Default)]
pub struct Counts {
    /// Datagrams received from clients (peer relays).
    pub from_clients: AtomicU64,
    /// Datagrams received from the relay behind the proxy.
    pub from_relay: AtomicU64,
    /// Datagrams dropped, cut ones included.
    pub dropped: AtomicU64,
    /// Datagrams dropped because the link was cut.
    pub cut: AtomicU64,
    /// Extra copies sent.
    pub duplicated: AtomicU64,
    /// Datagrams held back to be overtaken.
    pub reordered: AtomicU64,
}

/// A snapshot of [`Counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountsSnapshot {
    /// See [`Counts::from_clients`].
    pub from_clients: u64,
    /// See [`Counts::from_relay`].
    pub from_relay: u64,
    /// See [`Counts::dropped`].
    pub dropped: u64,
    /// See [`Counts::cut`].
    pub cut: u64,
    /// See [`Counts::duplicated`].
    pub duplicated: u64,
    /// See [`Counts::reordered`].
    pub reordered: u64,
}

struct State {
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    counts: Counts,
}

/// A running fault proxy.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    state: Arc<StateHandle>,
    _tasks: JoinSet<()>,
}

struct StateHandle(Arc<State>);

impl std::fmt::Debug for StateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyState").finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy that reads on `front` (already bound, e.g. the port
    /// the roster names) and forwards to `target`, with faults drawn from
    /// `seed`. It starts as a clean link.
    pub fn start(front: std::net::UdpSocket, target: SocketAddr, seed: u64) -> Result<FaultProxy> {
        front.set_nonblocking(true)?;
        let addr = front.local_addr()?;
        let front = Arc::new(UdpSocket::from_std(front).context("proxy front socket")?);
        let state = Arc::new(State {
            faults: Mutex::new(Faults::NONE),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: Counts::default(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(run(front, target, state.clone()));
        Ok(FaultProxy {
            addr,
            target,
            state: Arc::new(StateHandle(state)),
            _tasks: tasks,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it forwards to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Sets the faults from now on.
    pub fn set(&self, faults: Faults) {
        if let Ok(mut f) = self.state.0.faults.lock() {
            *f = faults;
        }
    }

    /// Cuts the link (keeping the other faults for after [`FaultProxy::heal`]).
    pub fn cut(&self) {
        if let Ok(mut f) = self.state.0.faults.lock() {
            f.cut = true;
        }
    }

    /// Heals a cut.
    pub fn heal(&self) {
        if let Ok(mut f) = self.state.0.faults.lock() {
            f.cut = false;
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> CountsSnapshot {
        let c = &self.state.0.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountsSnapshot {
            from_clients: get(&c.from_clients),
            from_relay: get(&c.from_relay),
            dropped: get(&c.dropped),
            cut: get(&c.cut),
            duplicated: get(&c.duplicated),
            reordered: get(&c.reordered),
        }
    }
}

/// What to do with one datagram.
struct Fate {
    copies: usize,
    delay: Duration,
}

impl State {
    fn fate(&self) -> Fate {
        let faults = self.faults.lock().map(|f| *f).unwrap_or(Faults::NONE);
        let c = &self.counts;
        if faults.cut {
            c.cut.fetch_add(1, Ordering::Relaxed);
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return Fate {
                copies: 0,
                delay: Duration::ZERO,
            };
        }
        let Ok(mut rng) = self.rng.lock() else {
            return Fate {
                copies: 1,
                delay: Duration::ZERO,
            };
        };
        if rng.random_bool(faults.drop) {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return Fate {
                copies: 0,
                delay: Duration::ZERO,
            };
        }
        let mut copies = 1;
        if rng.random_bool(faults.duplicate) {
            c.duplicated.fetch_add(1, Ordering::Relaxed);
            copies = 2;
        }
        let max = u64::try_from(faults.max_delay.as_micros()).unwrap_or(u64::MAX);
        let mut delay = Duration::from_micros(if max == 0 {
            0
        } else {
            rng.random_range(0..=max)
        });
        if rng.random_bool(faults.reorder) {
            c.reordered.fetch_add(1, Ordering::Relaxed);
            delay += faults.reorder_delay;
        }
        Fate { copies, delay }
    }
}

/// Sends `bytes` to `to` from `socket` according to `fate` (delayed ones
/// from a task in `tasks`).
fn forward(
    tasks: &mut JoinSet<()>,
    socket: &Arc<UdpSocket>,
    to: SocketAddr,
    bytes: &[u8],
    fate: Fate,
) {
    if fate.copies == 0 {
        return;
    }
    let socket = socket.clone();
    let bytes = bytes.to_vec();
    tasks.spawn(async move {
        if !fate.delay.is_zero() {
            tokio::time::sleep(fate.delay).await;
        }
        for _ in 0..fate.copies {
            let _ = socket.send_to(&bytes, to).await;
        }
    });
}

async fn run(front: Arc<UdpSocket>, target: SocketAddr, state: Arc<State>) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            received = front.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                state.counts.from_clients.fetch_add(1, Ordering::Relaxed);
                let upstream = match upstreams.get(&client) {
                    Some(u) => u.clone(),
                    None => {
                        let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await else {
                            continue;
                        };
                        let socket = Arc::new(socket);
                        upstreams.insert(client, socket.clone());
                        tasks.spawn(back(socket.clone(), front.clone(), client, state.clone()));
                        socket
                    }
                };
                let fate = state.fate();
                forward(&mut tasks, &upstream, target, &buf[..n], fate);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Carries the relay's answers to `client` back through the front socket.
async fn back(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    state: Arc<State>,
) {
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            received = upstream.recv_from(&mut buf) => {
                let Ok((n, _)) = received else { continue };
                state.counts.from_relay.fetch_add(1, Ordering::Relaxed);
                let fate = state.fate();
                forward(&mut tasks, &front, client, &buf[..n], fate);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}
