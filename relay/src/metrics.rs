//! Prometheus text metrics and a health check on a local address.
//!
//! `GET /metrics` gives the counters, the queue depth per peer and a
//! delivery-latency histogram in the Prometheus text format 0.0.4;
//! `GET /health` answers `200 ok`, `200 degraded: WHY` (free space below
//! the store's reserve: new work is refused, the rest works) or
//! `503 unhealthy: WHY` (storage is not responding); `GET /health/expiry`
//! one line per expiring item (`ITEM END DAYS`, see `docs/CONFIG.md`). Nothing else is served. The endpoint is meant
//! for a local scraper: bind it to 127.0.0.1.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kurir_proto::AuthorityId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::store::StoreHealth;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Delivery latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// The relay's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages submitted by officers.
    pub submitted: Counter,
    /// Deliveries confirmed by a verified receipt.
    pub delivered: Counter,
    /// Deliveries rejected or expired.
    pub failed: Counter,
    /// Messages received and stored.
    pub received: Counter,
    /// Duplicate deliveries answered with the original receipt.
    pub duplicates: Counter,
    /// Parcels refused with a signed rejection.
    pub refused_parcels: Counter,
    /// Parcels refused `id_conflict`: a message id received before from
    /// another sender or with another envelope (an alarm).
    pub id_conflicts: Counter,
    /// Connections refused (handshake, identity, limits).
    pub refused_connections: Counter,
    /// Rosters from peers refused (forged, older, or another roster of
    /// the same version), and peers holding another roster of our version:
    /// an alarm.
    pub roster_alarms: Counter,
    /// New connections asked to prove their address first (QUIC Retry),
    /// while many handshakes were in progress.
    pub retries: Counter,
    /// Peers' cosignatures showed this relay's audit log was rolled back.
    pub integrity_alarms: Counter,
    /// New work (submissions, parcels) refused: free space below the reserve.
    pub refused_low_space: Counter,
    /// Time from sending a parcel to holding its verified receipt.
    pub latency: Histogram,
}

impl Metrics {
    /// Prometheus text, with the current queue depth per peer and the
    /// store's health.
    pub fn render(&self, depth: &HashMap<AuthorityId, usize>, storage: &StoreHealth) -> String {
        let mut out = String::new();
        let counters = [
            (
                "kurir_submitted_total",
                "Messages submitted by officers.",
                &self.submitted,
            ),
            (
                "kurir_delivered_total",
                "Deliveries confirmed by a verified receipt.",
                &self.delivered,
            ),
            (
                "kurir_failed_total",
                "Deliveries rejected by the recipient or expired.",
                &self.failed,
            ),
            (
                "kurir_received_total",
                "Messages received and stored.",
                &self.received,
            ),
            (
                "kurir_duplicates_total",
                "Duplicate deliveries answered with the original receipt.",
                &self.duplicates,
            ),
            (
                "kurir_refused_parcels_total",
                "Parcels refused with a signed rejection.",
                &self.refused_parcels,
            ),
            (
                "kurir_id_conflicts_total",
                "Message ids claimed by a second sender or envelope (refused id_conflict).",
                &self.id_conflicts,
            ),
            (
                "kurir_roster_alarms_total",
                "Rosters from peers refused (forged, older, conflicting) and peers holding another roster of our version.",
                &self.roster_alarms,
            ),
            (
                "kurir_refused_connections_total",
                "Connections refused.",
                &self.refused_connections,
            ),
            (
                "kurir_retries_total",
                "New connections asked to prove their address first (QUIC Retry).",
                &self.retries,
            ),
            (
                "kurir_integrity_alarms_total",
                "Peers showed that this relay's audit log was rolled back.",
                &self.integrity_alarms,
            ),
            (
                "kurir_refused_low_space_total",
                "New work refused because free space is below the store's reserve.",
                &self.refused_low_space,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.get()
            );
        }
        let (low, stuck) = match storage {
            StoreHealth::Ok => (0, 0),
            StoreHealth::Degraded(_) => (1, 0),
            StoreHealth::Unhealthy(_) => (0, 1),
        };
        let _ = writeln!(
            out,
            "# HELP kurir_storage_low_space 1 while free space is below the reserve (new work refused).\n\
             # TYPE kurir_storage_low_space gauge\nkurir_storage_low_space {low}\n\
             # HELP kurir_storage_not_responding 1 while a commit has not completed within its bound.\n\
             # TYPE kurir_storage_not_responding gauge\nkurir_storage_not_responding {stuck}"
        );
        let _ = writeln!(
            out,
            "# HELP kurir_queue_depth Deliveries not yet final, per recipient.\n# TYPE kurir_queue_depth gauge"
        );
        let mut peers: Vec<_> = depth.iter().collect();
        peers.sort();
        for (peer, n) in peers {
            let _ = writeln!(out, "kurir_queue_depth{{peer=\"{peer}\"}} {n}");
        }
        let h = &self.latency;
        let _ = writeln!(
            out,
            "# HELP kurir_delivery_latency_seconds From sending a parcel to holding its verified receipt.\n# TYPE kurir_delivery_latency_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "kurir_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                h.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "kurir_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "kurir_delivery_latency_seconds_sum {}",
            h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "kurir_delivery_latency_seconds_count {count}");
        out
    }
}

/// Clients served at once; a client beyond them is answered `503` at once.
pub const MAX_CLIENTS: usize = 16;
/// How long a client may take to send its request line, and to take the
/// answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `/metrics` and `/health` on `listener` until `stop` turns true.
/// Each client is served in a task of its own (at most [`MAX_CLIENTS`] at
/// once, each within [`CLIENT_TIMEOUT`]), so a slow or silent client does
/// not hold up a health check.
pub async fn serve(
    listener: tokio::net::TcpListener,
    snapshot: impl Fn() -> String + Send + Sync + 'static,
    health: impl Fn() -> StoreHealth + Send + Sync + 'static,
    expiry: impl Fn() -> String + Send + Sync + 'static,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics and health endpoint listening");
    }
    let answer = Arc::new(move |path: &str| respond(path, &snapshot, &health, &expiry));
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let answer = answer.clone();
                        clients.spawn(async move {
                            let _ = tokio::time::timeout(
                                CLIENT_TIMEOUT,
                                serve_client(&mut stream, &*answer),
                            )
                            .await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        clients.spawn(async move {
                            let busy = response("503 Service Unavailable", "text/plain", "busy\n");
                            let _ = tokio::time::timeout(
                                CLIENT_TIMEOUT,
                                stream.write_all(busy.as_bytes()),
                            )
                            .await;
                        });
                    }
                }
            }
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
            _ = stop.changed() => {
                clients.abort_all();
                while clients.join_next().await.is_some() {}
                return Ok(());
            }
        }
    }
}

/// Reads one request line and writes the answer.
async fn serve_client(
    stream: &mut tokio::net::TcpStream,
    answer: &(dyn Fn(&str) -> String + Send + Sync),
) {
    let mut buf = [0u8; 1024];
    let Ok(n) = stream.read(&mut buf).await else {
        return;
    };
    let request = String::from_utf8_lossy(&buf[..n]);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let _ = stream.write_all(answer(path).as_bytes()).await;
}

/// The whole HTTP answer for `path`.
fn respond(
    path: &str,
    snapshot: &impl Fn() -> String,
    health: &impl Fn() -> StoreHealth,
    expiry: &impl Fn() -> String,
) -> String {
    match path {
        "/health/expiry" => response("200 OK", "text/plain", &expiry()),
        "/metrics" => response("200 OK", "text/plain; version=0.0.4", &snapshot()),
        "/health" => match health() {
            StoreHealth::Ok => response("200 OK", "text/plain", "ok\n"),
            StoreHealth::Degraded(why) => {
                response("200 OK", "text/plain", &format!("degraded: {why}\n"))
            }
            StoreHealth::Unhealthy(why) => response(
                "503 Service Unavailable",
                "text/plain",
                &format!("unhealthy: {why}\n"),
            ),
        },
        _ => response("404 Not Found", "text/plain", "not found\n"),
    }
}

fn response(status: &str, ctype: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn renders_counters_depth_and_histogram() {
        let m = Metrics::default();
        m.delivered.inc();
        m.latency.observe(Duration::from_millis(20));
        let mut depth = HashMap::new();
        depth.insert(AuthorityId::parse("ME.UP").unwrap(), 3);
        let text = m.render(&depth, &StoreHealth::Degraded("low".into()));
        assert!(text.contains("kurir_storage_low_space 1"), "{text}");
        assert!(text.contains("kurir_storage_not_responding 0"), "{text}");
        assert!(text.contains("kurir_delivered_total 1"), "{text}");
        assert!(
            text.contains("kurir_queue_depth{peer=\"ME.UP\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("kurir_delivery_latency_seconds_bucket{le=\"0.01\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("kurir_delivery_latency_seconds_bucket{le=\"0.025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kurir_delivery_latency_seconds_count 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn serves_health_and_metrics() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let health = Arc::new(Mutex::new(StoreHealth::Ok));
        let now = health.clone();
        let server = tokio::spawn(serve(
            listener,
            || "kurir_x 1\n".to_owned(),
            move || now.lock().unwrap().clone(),
            || "node_certificate 2027-01-01T00:00:00.000Z 30\n".to_owned(),
            stop,
        ));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/health").await.ends_with("ok\n"));
        *health.lock().unwrap() = StoreHealth::Degraded("the data dir is low".into());
        let degraded = get("/health").await;
        assert!(degraded.starts_with("HTTP/1.1 200"), "{degraded}");
        assert!(
            degraded.ends_with("degraded: the data dir is low\n"),
            "{degraded}"
        );
        *health.lock().unwrap() = StoreHealth::Unhealthy("stuck".into());
        let unhealthy = get("/health").await;
        assert!(unhealthy.starts_with("HTTP/1.1 503"), "{unhealthy}");
        assert!(get("/metrics").await.contains("kurir_x 1"));
        assert!(
            get("/health/expiry")
                .await
                .ends_with("\r\n\r\nnode_certificate 2027-01-01T00:00:00.000Z 30\n")
        );
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        stop_tx.send(true).unwrap();
        server.await.unwrap().unwrap();
    }

    /// A client that connects and sends nothing (or never reads) does not
    /// hold up another client's health check: each is served on its own.
    #[tokio::test]
    async fn a_slow_client_does_not_block_a_health_check() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let server = tokio::spawn(serve(
            listener,
            || "kurir_x 1\n".to_owned(),
            || StoreHealth::Ok,
            String::new,
            stop,
        ));
        // Silent clients, as many as may be served at once, minus one.
        let mut silent = Vec::new();
        for _ in 0..MAX_CLIENTS - 1 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let health = async {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\n\r\n").await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        // Well before the silent clients' deadline (CLIENT_TIMEOUT).
        let answer = tokio::time::timeout(CLIENT_TIMEOUT / 2, health)
            .await
            .expect("the health check waited for the silent clients");
        assert!(answer.ends_with("ok\n"), "{answer}");
        // Beyond the bound, a client is told at once that the endpoint is busy.
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(CLIENT_TIMEOUT / 2, extra.read_to_string(&mut out))
            .await
            .expect("a client over the bound was not answered at once")
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
        stop_tx.send(true).unwrap();
        server.await.unwrap().unwrap();
        drop(silent);
    }
}
