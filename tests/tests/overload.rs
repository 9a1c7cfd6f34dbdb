//! Overload suite, run by hand (it prints figures rather than asserting
//! tight bounds):
//!
//! ```sh
//! cargo test -p kurir-tests --test overload -- --ignored --nocapture
//! ```
//!
//! BA.SPS runs as a child process (so its peak RSS is its own). ME.UP, an
//! honest peer, sends `KURIR_OVERLOAD_MESSAGES` notices (default 20) to it,
//! once on a quiet link and once while the test, playing RS.MUP with a
//! valid node certificate, floods connections (far over
//! `max_connections_per_peer`), streams and oversized frame prefixes, and
//! while an unauthenticated client (no client certificate) floods
//! handshakes. It prints ME.UP's delivery latency with and without the
//! flood, BA.SPS's peak RSS, and how many refusals BA.SPS logged; it
//! asserts only that every honest message is delivered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kurir_client::Client;
use kurir_tests::child::RelayChild;
use kurir_tests::{DUTY_OFFICER, Harness, PeerLink, await_final, submit_notice};

const RELAY: &str = env!("CARGO_BIN_EXE_kurir-test-relay");

/// Presents no certificate at all.
#[derive(Debug)]
struct NoClientCert;

impl rustls::client::ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Sends `n` notices from ME.UP to BA.SPS one after another and returns the
/// submit-to-delivered latency of each.
async fn latencies(officer: &Client, n: u64) -> Vec<Duration> {
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let id = submit_notice(officer, &["BA.SPS"]).await.unwrap();
        let d = await_final(officer, id).await.unwrap();
        assert_eq!(d[0].state, "delivered", "{d:?}");
        out.push(t.elapsed());
    }
    out
}

fn summary(mut l: Vec<Duration>) -> String {
    l.sort();
    let pick = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.0?}, p90 {:.0?}, max {:.0?}",
        pick(0.5),
        pick(0.9),
        pick(1.0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "overload figures, run by hand with --ignored --nocapture"]
async fn a_flooding_peer_and_handshake_flood_do_not_starve_others() {
    let n: u64 = std::env::var("KURIR_OVERLOAD_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).unwrap();
    h.release_socket("BA.SPS").unwrap();
    let log = h.dir().join("BA.SPS.log");
    let config = h.config_path("BA.SPS").unwrap().to_owned();
    let ba = RelayChild::start(RELAY.as_ref(), &config, &log)
        .await
        .unwrap();
    h.start("ME.UP").await.unwrap();
    let me = h.officer("ME.UP", DUTY_OFFICER).await.unwrap();

    let quiet = latencies(&me, n).await;
    let rss_quiet = ba.peak_rss_kib();

    // The flood.
    let stop = Arc::new(AtomicBool::new(false));
    let (conns_ok, conns_refused, streams, handshakes) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let max = h.config("BA.SPS").unwrap().max_parcel_bytes;
    let declared = u32::try_from(max + 1).unwrap();
    let h = Arc::new(h);
    let mut flood = tokio::task::JoinSet::new();
    // RS.MUP: connections far over the limit, each opening streams that
    // declare oversized frames.
    for _ in 0..16 {
        let (h, stop, ok, refused, streams) = (
            h.clone(),
            stop.clone(),
            conns_ok.clone(),
            conns_refused.clone(),
            streams.clone(),
        );
        flood.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(link) = h.peer_link("RS.MUP", "BA.SPS").await else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                ok.fetch_add(1, Ordering::Relaxed);
                for _ in 0..32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let answer = tokio::time::timeout(
                        Duration::from_secs(2),
                        link.exchange_prefix_only(declared),
                    )
                    .await;
                    streams.fetch_add(1, Ordering::Relaxed);
                    if !matches!(answer, Ok(Ok(_))) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                link.connection().close(0u32.into(), b"flood");
            }
        });
    }
    // Anyone: handshakes without a client certificate.
    for _ in 0..8 {
        let (h, stop, handshakes) = (h.clone(), stop.clone(), handshakes.clone());
        flood.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (mut tls, name) = h.peer_tls("RS.MUP", "BA.SPS").unwrap();
                tls.client_auth_cert_resolver = Arc::new(NoClientCert);
                let endpoint = PeerLink::bind().unwrap();
                let addr = h.addr("BA.SPS").unwrap();
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    PeerLink::connect_tls(endpoint, tls, &name, addr),
                )
                .await;
                handshakes.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let flood_started = Instant::now();
    let loaded = latencies(&me, n).await;
    let flood_for = flood_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    while flood.join_next().await.is_some() {}
    let rss_flood = ba.peak_rss_kib();
    me.close().await;
    ba.stop().unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    eprintln!("overload suite, {n} honest messages ME.UP -> BA.SPS each time:");
    eprintln!("  without flood: {}", summary(quiet));
    eprintln!(
        "  during flood:  {} (flood ran {flood_for:.1?})",
        summary(loaded)
    );
    eprintln!(
        "  flood: RS.MUP connections accepted {} / failed or refused {}, oversized streams {}, \
         unauthenticated handshakes {}",
        conns_ok.load(Ordering::Relaxed),
        conns_refused.load(Ordering::Relaxed),
        streams.load(Ordering::Relaxed),
        handshakes.load(Ordering::Relaxed)
    );
    eprintln!("  BA.SPS peak RSS: quiet {rss_quiet:?} KiB, after the flood {rss_flood:?} KiB");
    eprintln!(
        "  BA.SPS logged: {} 'too many connections', {} 'handshake failed', {} 'refused a parcel'",
        count("too many connections"),
        count("handshake failed"),
        count("refused a parcel")
    );
    let h = Arc::try_unwrap(h).unwrap();
    h.shutdown().await.unwrap();
}
