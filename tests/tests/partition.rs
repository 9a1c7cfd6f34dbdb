//! Partition suite: RS.MUP sends to BA.SPS through a UDP fault proxy that
//! drops, delays, duplicates and reorders datagrams, and cuts the link for a
//! while. Messages sent during the cut are delivered after it heals, each
//! exactly once into BA.SPS's inbox with a verified receipt at RS.MUP, and
//! the retry traffic during the cut stays bounded.
//!
//! Sizes: `KURIR_PARTITION_MESSAGES` messages per phase (default 20),
//! seed `KURIR_PARTITION_SEED` (default fixed). The figures are printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kurir_client::Client;
use kurir_proto::{MessageId, ReceiptStatus, open_receipt};
use kurir_relay::core::delivery::DeliveryState;
use kurir_tests::proxy::{FaultProxy, Faults};
use kurir_tests::{DUTY_OFFICER, Harness, STEP_TIMEOUT, await_final, submit_notice};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Submits `n` notices to BA.SPS.
async fn submit(officer: &Client, n: u64) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(submit_notice(officer, &["BA.SPS"]).await.unwrap());
    }
    ids
}

/// Every id is delivered, with a stored receipt that verifies and names it.
async fn assert_delivered(h: &Harness, officer: &Client, ids: &[MessageId]) {
    for id in ids {
        let d = await_final(officer, *id).await.unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].state, "delivered", "{id}: {d:?}");
    }
    let store = h.node("RS.MUP").unwrap().store();
    for id in ids {
        let deliveries = store.deliveries_of(*id).unwrap();
        assert_eq!(deliveries.len(), 1, "{id}");
        let DeliveryState::Delivered { receipt, .. } = &deliveries[0].state else {
            unreachable!("{id}: stored state {:?}", deliveries[0].state);
        };
        let v = open_receipt(receipt, h.roster()).unwrap();
        assert_eq!(v.receipt.status, ReceiptStatus::Accepted);
        assert_eq!(v.receipt.msg_id, Some(*id));
        assert_eq!(v.receipt.receiver.as_str(), "BA.SPS");
    }
}

/// BA.SPS's inbox holds exactly `ids`, once each.
fn assert_inbox_exactly(h: &Harness, ids: &[MessageId]) {
    let inbox = h.node("BA.SPS").unwrap().store().inbox_all().unwrap();
    let got: Vec<MessageId> = inbox.iter().map(|r| r.msg_id).collect();
    let unique: BTreeSet<MessageId> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "a message is in the inbox twice");
    let want: BTreeSet<MessageId> = ids.iter().copied().collect();
    assert_eq!(unique, want);
}

/// Waits until the proxy has dropped at least `n` datagrams to the cut
/// since `before` (the sender keeps trying), at most [`STEP_TIMEOUT`].
async fn await_cut_drops(proxy: &FaultProxy, before: u64, n: u64) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while proxy.counts().cut < before + n {
        assert!(
            Instant::now() < deadline,
            "the sender did not try during the cut: {:?}",
            proxy.counts()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_during_a_cut_are_delivered_once_after_it_heals() {
    let n = env_or("KURIR_PARTITION_MESSAGES", 20);
    let seed = env_or("KURIR_PARTITION_SEED", 0x7061_7274);
    let started = Instant::now();
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    h.start("RS.MUP").await.unwrap();
    let proxy = h.start_behind_proxy("BA.SPS", seed).await.unwrap();
    let officer = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();

    // 1. A lossy link: drops, duplicates, reordering, delay.
    proxy.set(Faults::LOSSY);
    let lossy = submit(&officer, n).await;
    assert_delivered(&h, &officer, &lossy).await;
    let after_lossy = proxy.counts();
    eprintln!("lossy phase: {n} messages, proxy {after_lossy:?}");
    assert!(after_lossy.dropped > 0 && after_lossy.duplicated > 0 && after_lossy.reordered > 0);

    // 2. Cut: messages submitted now wait; the sender keeps trying.
    proxy.cut();
    let cut_at = Instant::now();
    let during = submit(&officer, n).await;
    await_cut_drops(&proxy, after_lossy.cut, 20).await;
    // The receiver has none of them.
    let inbox_len = h.node("BA.SPS").unwrap().store().inbox_all().unwrap().len();
    assert_eq!(inbox_len, lossy.len(), "nothing crosses a cut link");
    for id in &during {
        let d = kurir_tests::deliveries(&officer, *id).await.unwrap();
        assert!(
            d.iter().all(|d| d.state != "delivered"),
            "{id} delivered across a cut: {d:?}"
        );
    }
    let at_heal = proxy.counts();
    let cut_for = cut_at.elapsed();

    // 3. Heal, still lossy: everything arrives, once.
    proxy.heal();
    let healed_at = Instant::now();
    assert_delivered(&h, &officer, &during).await;
    let recovery = healed_at.elapsed();
    let end = proxy.counts();

    let all: Vec<MessageId> = lossy.iter().chain(&during).copied().collect();
    assert_inbox_exactly(&h, &all);

    // Bounded retry traffic: during the cut the sender backs off (retry
    // delays from 1 s doubling to 5 s, QUIC's own retransmission backoff),
    // so the datagrams it tried are few per message and per second.
    let tried = at_heal.from_clients - after_lossy.from_clients;
    let per_second = tried as f64 / cut_for.as_secs_f64();
    eprintln!(
        "cut for {cut_for:.1?}: {tried} datagrams tried ({per_second:.1}/s) for {n} queued \
         messages; recovered {recovery:.1?} after the heal; proxy at the end {end:?}; \
         suite {:.1?}",
        started.elapsed()
    );
    assert!(
        per_second < 200.0,
        "retry traffic during the cut is not bounded: {per_second:.1} datagrams/s"
    );
    assert!(recovery < STEP_TIMEOUT);
    officer.close().await;
    h.shutdown().await.unwrap();
    drop(proxy);
}
