//! Crash suite: RS.MUP and BA.SPS run as child processes
//! (`kurir-test-relay`, the relay's `Node` started exactly as `kurir-relay
//! run` does). Three officers of RS.MUP submit notices to BA.SPS
//! concurrently while the test kills the sender or the receiver with
//! SIGKILL at seeded random moments of the traffic (so during receiving,
//! before and after a store flush, while a receipt is on the wire: the
//! moments are random, not aimed at a code point) and restarts it, again
//! and again. Then:
//!
//! - every acknowledged submission is in RS.MUP's outbound store;
//! - every stored outbound message is in BA.SPS's inbox exactly once;
//! - every one has exactly one delivery at RS.MUP, `delivered`, with a
//!   stored receipt that verifies against the roster, names the message
//!   and BA.SPS, and is byte for byte the receipt BA.SPS stored with the
//!   message.
//!
//! Not checked yet: that the audit logs verify after the crashes (the
//! audit log was being built when this suite was written).
//!
//! Sizes: `KURIR_CRASH_MESSAGES` (default 300; the full run is
//! 2000), seed `KURIR_CRASH_SEED`. The figures are printed (`--nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kurir_client::Client;
use kurir_proto::api::{Request, Response};
use kurir_proto::{MessageId, ReceiptStatus, open_receipt};
use kurir_relay::core::delivery::DeliveryState;
use kurir_relay::store::{Durability, Store};
use kurir_tests::child::RelayChild;
use kurir_tests::{DUTY_OFFICER, Harness, await_final, notice_submission};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const RELAY: &str = env!("CARGO_BIN_EXE_kurir-test-relay");
/// How long one officer request may take before the officer gives up on
/// the connection (a killed relay never closes it).
const REQUEST_WITHIN: Duration = Duration::from_secs(2);
/// Pause of each officer after an acknowledged submission.
const PACE: Duration = Duration::from_millis(100);
const OFFICERS: [&str; 3] = [DUTY_OFFICER, "officer two", "officer three"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One officer submitting notices until `done`, reconnecting whenever the
/// relay went away; returns the ids the relay acknowledged.
async fn submitter(
    h: Arc<Harness>,
    name: &'static str,
    acked: Arc<Mutex<Vec<MessageId>>>,
    target: usize,
    done: Arc<AtomicBool>,
) -> (u64, u64) {
    let submission = Request::Submit(notice_submission(&["BA.SPS"]).unwrap());
    let mut client: Option<Client> = None;
    let (mut ok, mut failed) = (0u64, 0u64);
    while !done.load(Ordering::SeqCst) {
        if acked.lock().unwrap().len() >= target {
            break;
        }
        let c = match client.take() {
            Some(c) => c,
            None => match tokio::time::timeout(REQUEST_WITHIN, h.officer("RS.MUP", name)).await {
                Ok(Ok(c)) => c,
                _ => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        match tokio::time::timeout(REQUEST_WITHIN, c.request(&submission)).await {
            Ok(Ok(Response::Submitted { msg_id, .. })) => {
                acked.lock().unwrap().push(msg_id);
                ok += 1;
                client = Some(c);
                // Paced, so that the kills fall among the submissions.
                tokio::time::sleep(PACE).await;
            }
            Ok(Ok(other)) => unreachable!("submission refused: {other:?}"),
            _ => failed += 1, // the relay went away: not acknowledged
        }
    }
    (ok, failed)
}

/// Every message RS.MUP has sent, as its officer lists them.
async fn sent_ids(client: &Client) -> Vec<MessageId> {
    match kurir_tests::request(client, &Request::Sent).await.unwrap() {
        Response::List { items } => items.iter().map(|s| s.msg_id).collect(),
        other => unreachable!("sent list: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_sender_and_receiver_loses_and_duplicates_nothing() {
    let n = usize::try_from(env_or("KURIR_CRASH_MESSAGES", 300)).unwrap();
    let seed = env_or("KURIR_CRASH_SEED", 0x0063_7261_7368);
    let started = Instant::now();
    let mut h = Harness::with_officers(&["RS.MUP", "BA.SPS"], &OFFICERS[1..]).unwrap();
    for who in ["RS.MUP", "BA.SPS"] {
        h.release_socket(who).unwrap();
    }
    let logs: PathBuf = h.dir().join("child-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = |who: &str| h.config_path(who).unwrap().to_owned();
    let (rs_config, ba_config) = (config("RS.MUP"), config("BA.SPS"));
    let (rs_log, ba_log) = (logs.join("RS.MUP.log"), logs.join("BA.SPS.log"));
    let mut rs = Some(
        RelayChild::start(RELAY.as_ref(), &rs_config, &rs_log)
            .await
            .unwrap(),
    );
    let mut ba = Some(
        RelayChild::start(RELAY.as_ref(), &ba_config, &ba_log)
            .await
            .unwrap(),
    );

    let h = Arc::new(h);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let mut officers = tokio::task::JoinSet::new();
    for name in OFFICERS {
        officers.spawn(submitter(h.clone(), name, acked.clone(), n, done.clone()));
    }

    // Kill at seeded random moments until every submission is acknowledged.
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut sender_kills, mut receiver_kills) = (0u32, 0u32);
    let chaos_deadline = Instant::now()
        + Duration::from_secs(60)
        + Duration::from_millis(200) * u32::try_from(n).unwrap();
    while acked.lock().unwrap().len() < n {
        assert!(
            Instant::now() < chaos_deadline,
            "only {} of {n} submissions acknowledged",
            acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..300))).await;
        let down = Duration::from_millis(rng.random_range(0..200));
        if rng.random_bool(0.5) {
            rs.take().unwrap().kill();
            sender_kills += 1;
            tokio::time::sleep(down).await;
            rs = Some(
                RelayChild::start(RELAY.as_ref(), &rs_config, &rs_log)
                    .await
                    .unwrap(),
            );
        } else {
            ba.take().unwrap().kill();
            receiver_kills += 1;
            tokio::time::sleep(down).await;
            ba = Some(
                RelayChild::start(RELAY.as_ref(), &ba_config, &ba_log)
                    .await
                    .unwrap(),
            );
        }
    }
    done.store(true, Ordering::SeqCst);
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = officers.join_next().await {
        let (o, f) = r.unwrap();
        ok += o;
        failed += f;
    }
    let chaos = started.elapsed();
    let settling = Instant::now();

    // Let everything that was stored be delivered.
    let officer = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let sent = sent_ids(&officer).await;
    for id in &sent {
        let d = await_final(&officer, *id).await.unwrap();
        assert_eq!(d.len(), 1, "{id}: {d:?}");
        assert_eq!(d[0].state, "delivered", "{id}: {d:?}");
    }
    officer.close().await;
    let settled = settling.elapsed();
    rs.take().unwrap().stop().unwrap();
    ba.take().unwrap().stop().unwrap();

    // Check the stores themselves.
    let data = |who: &str| h.config(who).unwrap().data_dir;
    let rs_store = Store::open(&data("RS.MUP"), Durability::ProcessCrash).unwrap();
    let ba_store = Store::open(&data("BA.SPS"), Durability::ProcessCrash).unwrap();
    let outbound: BTreeSet<MessageId> = rs_store
        .outbound_all()
        .unwrap()
        .iter()
        .map(|r| r.msg_id)
        .collect();
    let acked: Vec<MessageId> = acked.lock().unwrap().clone();
    let missing: Vec<_> = acked.iter().filter(|id| !outbound.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    let inbox = ba_store.inbox_all().unwrap();
    let in_ids: Vec<MessageId> = inbox.iter().map(|r| r.msg_id).collect();
    let unique: BTreeSet<MessageId> = in_ids.iter().copied().collect();
    assert_eq!(
        in_ids.len(),
        unique.len(),
        "a message is in the inbox twice"
    );
    assert_eq!(unique, outbound, "the inbox is not what was sent");

    for record in &inbox {
        let id = record.msg_id;
        let deliveries = rs_store.deliveries_of(id).unwrap();
        assert_eq!(deliveries.len(), 1, "{id}: {deliveries:?}");
        let DeliveryState::Delivered { receipt, .. } = &deliveries[0].state else {
            unreachable!("{id}: {:?}", deliveries[0].state);
        };
        let v = open_receipt(receipt, h.roster()).unwrap();
        assert_eq!(v.receipt.status, ReceiptStatus::Accepted);
        assert_eq!(v.receipt.msg_id, Some(id));
        assert_eq!(v.receipt.receiver.as_str(), "BA.SPS");
        assert_eq!(
            receipt, &record.receipt,
            "{id}: not the receipt BA.SPS stored"
        );
    }
    rs_store.close().unwrap();
    ba_store.close().unwrap();

    eprintln!(
        "crash suite (seed {seed:#x}): {} acknowledged of {n} wanted by {} officers ({ok} ok, \
         {failed} lost to kills); {} stored and delivered exactly once; {sender_kills} sender \
         and {receiver_kills} receiver kills in {chaos:.1?}; all delivered {settled:.1?} after the \
         last kill; total {:.1?}",
        acked.len(),
        OFFICERS.len(),
        outbound.len(),
        started.elapsed()
    );
    let h = Arc::try_unwrap(h).unwrap();
    h.shutdown().await.unwrap();
}
