//! Crash suite: RS.MUP and BA.SPS run as child processes
//! (`kurir-test-relay`, the relay's `Node` started exactly as `kurir-relay
//! run` does).
//!
//! - `kill_9_of_sender_and_receiver_loses_and_duplicates_nothing`: three
//!   officers of RS.MUP submit notices to BA.SPS concurrently while the
//!   test kills the sender or the receiver with SIGKILL at seeded random
//!   moments of the traffic and restarts it, again and again.
//! - `kills_at_each_crash_point_lose_and_duplicate_nothing`: aimed kills.
//!   The test relay is built with the relay's `crashpoints` feature; for
//!   each named point (`kurir_relay::crashpoint`: during receive before and
//!   after the commit, at the sender after a receipt arrived and after it
//!   was stored, in the store writer before and after the flush, and
//!   after a small group is answered, before it is applied to sled) the
//!   relay that passes it is restarted with `KURIR_CRASHPOINT=point:n`
//!   (`n` seeded), aborts there under traffic, and is restarted clean.
//!
//! Then, after everything stored is delivered and both relays stopped
//! ([`check_after_run`]):
//!
//! - every acknowledged submission is in RS.MUP's outbound store;
//! - every stored outbound message is in BA.SPS's inbox exactly once;
//! - every one has exactly one delivery at RS.MUP, `delivered`, with a
//!   stored receipt that verifies against the roster, names the message
//!   and BA.SPS, and is byte for byte the receipt BA.SPS stored with the
//!   message;
//! - both audit logs verify, and each receipt RS.MUP holds names the
//!   `received` entry of its message within BA.SPS's log.
//!
//! Sizes: `KURIR_CRASH_MESSAGES` (default 300; the full run is
//! 2000), seeds `KURIR_CRASH_SEED` and `KURIR_CRASHPOINT_SEED`. The figures
//! are printed (`--nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kurir_client::Client;
use kurir_proto::api::{Request, Response};
use kurir_proto::audit::{Entry, Event};
use kurir_proto::{MessageId, ReceiptStatus, open_receipt};
use kurir_relay::core::delivery::DeliveryState;
use kurir_relay::store::{Durability, Store};
use kurir_tests::child::RelayChild;
use kurir_tests::{DUTY_OFFICER, Harness, await_final, notice_submission, verify_audit_log};
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

/// With both relays stopped, checks the promise on their stores and
/// returns how many messages were sent:
///
/// - every acknowledged submission is in RS.MUP's outbound store;
/// - BA.SPS's inbox holds exactly the messages RS.MUP stored, each once;
/// - each has one delivery at RS.MUP, `delivered`, whose receipt verifies
///   against the roster, names the message and BA.SPS, and is byte for
///   byte the receipt BA.SPS stored;
/// - both audit logs verify (the offline bundle of each data dir, built by
///   the export code, checked with the relay's log key from the roster),
///   and every receipt RS.MUP holds names an entry within BA.SPS's log:
///   the `received` entry of that message, with the leaf hash it states.
fn check_after_run(h: &Harness, acked: &[MessageId]) -> usize {
    let data = |who: &str| h.config(who).unwrap().data_dir;
    let rs_store = Store::open(&data("RS.MUP"), Durability::ProcessCrash).unwrap();
    let ba_store = Store::open(&data("BA.SPS"), Durability::ProcessCrash).unwrap();
    let outbound: BTreeSet<MessageId> = rs_store
        .outbound_all()
        .unwrap()
        .iter()
        .map(|r| r.msg_id)
        .collect();
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
    // Let go of both databases before the audit check opens them again.
    drop((rs_store, ba_store));

    let rs_audit = verify_audit_log(h.roster(), "RS.MUP", &data("RS.MUP")).unwrap();
    let ba_audit = verify_audit_log(h.roster(), "BA.SPS", &data("BA.SPS")).unwrap();
    let ba_log = &ba_audit.bundle.entries;
    assert_eq!(ba_audit.report.entries, ba_log.len() as u64);
    let mut held = 0;
    for r in rs_audit
        .bundle
        .receipts
        .iter()
        .filter(|r| r.kind == kurir_proto::audit::ReceiptKind::Held)
    {
        let v = open_receipt(&r.receipt, h.roster()).unwrap();
        let id = v.receipt.msg_id;
        let index = v
            .receipt
            .log_index
            .expect("an acceptance names its log entry");
        let entry = ba_log
            .get(usize::try_from(index).unwrap())
            .unwrap_or_else(|| {
                panic!(
                    "{id:?}: the receipt names entry {index}, BA.SPS's log has {}",
                    ba_log.len()
                )
            });
        assert_eq!(
            v.receipt.leaf_hash,
            Some(kurir_proto::merkle::leaf_hash(&entry.0)),
            "{id:?}: entry {index} is not the one the receipt names"
        );
        let entry = Entry::decode(&entry.0).unwrap();
        assert_eq!(entry.event, Event::Received, "{id:?}: entry {index}");
        assert_eq!(entry.msg_id, id, "entry {index}");
        held += 1;
    }
    assert_eq!(held, inbox.len(), "one held receipt per message");
    outbound.len()
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

    let acked: Vec<MessageId> = acked.lock().unwrap().clone();
    let stored = check_after_run(&h, &acked);

    eprintln!(
        "crash suite (seed {seed:#x}): {} acknowledged of {n} wanted by {} officers ({ok} ok, \
         {failed} lost to kills); {} stored and delivered exactly once; {sender_kills} sender \
         and {receiver_kills} receiver kills in {chaos:.1?}; all delivered {settled:.1?} after the \
         last kill; total {:.1?}",
        acked.len(),
        OFFICERS.len(),
        stored,
        started.elapsed()
    );
    let h = Arc::try_unwrap(h).unwrap();
    h.shutdown().await.unwrap();
}

/// The crash points and which relay passes them under this traffic (RS.MUP
/// sends, BA.SPS receives); the store's points are visited on both.
const AIMED: [(&str, &str); 10] = [
    ("BA.SPS", "inbound.before_commit"),
    ("BA.SPS", "inbound.after_commit"),
    ("RS.MUP", "outbound.receipt_received"),
    ("RS.MUP", "outbound.receipt_stored"),
    ("BA.SPS", "store.before_flush"),
    ("RS.MUP", "store.before_flush"),
    ("BA.SPS", "store.after_flush"),
    ("RS.MUP", "store.after_flush"),
    ("BA.SPS", "store.before_apply"),
    ("RS.MUP", "store.before_apply"),
];

/// Submissions one round may take before its crash point must have hit.
const ROUND_SUBMISSIONS: usize = 40;

/// Submits one notice as RS.MUP's duty officer, reconnecting when needed;
/// the id when it was acknowledged.
async fn submit_once(h: &Harness, client: &mut Option<Client>) -> Option<MessageId> {
    let submission = Request::Submit(notice_submission(&["BA.SPS"]).unwrap());
    let c = match client.take() {
        Some(c) => c,
        None => match tokio::time::timeout(REQUEST_WITHIN, h.officer("RS.MUP", DUTY_OFFICER)).await
        {
            Ok(Ok(c)) => c,
            _ => return None,
        },
    };
    match tokio::time::timeout(REQUEST_WITHIN, c.request(&submission)).await {
        Ok(Ok(Response::Submitted { msg_id, .. })) => {
            *client = Some(c);
            Some(msg_id)
        }
        Ok(Ok(other)) => unreachable!("submission refused: {other:?}"),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_at_each_crash_point_lose_and_duplicate_nothing() {
    const {
        assert!(
            kurir_relay::crashpoint::ENABLED,
            "kurir-tests must build the relay with its crashpoints feature"
        )
    };
    let seed = env_or("KURIR_CRASHPOINT_SEED", 0x006b_696c_6c6c);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    for who in ["RS.MUP", "BA.SPS"] {
        h.release_socket(who).unwrap();
    }
    let logs: PathBuf = h.dir().join("child-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = |who: &str| h.config_path(who).unwrap().to_owned();
    let log = |who: &str| logs.join(format!("{who}.log"));
    let mut children = std::collections::BTreeMap::new();
    for who in ["RS.MUP", "BA.SPS"] {
        let child = RelayChild::start(RELAY.as_ref(), &config(who), &log(who))
            .await
            .unwrap();
        children.insert(who, child);
    }

    let mut client = None;
    let mut acked = Vec::new();
    let mut report = Vec::new();
    for (who, point) in AIMED {
        // Late enough that the store's points fall in the traffic, not
        // (usually) in the start; a hit while starting is a crash too.
        let n = if point.starts_with("store.") {
            rng.random_range(4..=9)
        } else {
            rng.random_range(1..=3)
        };
        children.remove(who).unwrap().stop().unwrap();
        let armed = RelayChild::start_armed(RELAY.as_ref(), &config(who), &log(who), point, n)
            .await
            .unwrap();
        let mut submitted = 0;
        let round = Instant::now();
        if let Some(mut child) = armed {
            loop {
                if child.has_exited() {
                    break;
                }
                if submitted >= ROUND_SUBMISSIONS {
                    let text = std::fs::read_to_string(log(who)).unwrap_or_default();
                    let tail: Vec<_> = text.lines().rev().take(30).collect();
                    panic!(
                        "{who} never reached crash point {point} hit {n}; its log ends:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                if let Some(id) = submit_once(&h, &mut client).await {
                    acked.push(id);
                }
                submitted += 1;
                // Give the delivery (and so the armed point) a moment,
                // returning as soon as the relay is gone.
                for _ in 0..25 {
                    if child.has_exited() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            child.kill(); // reap it
        }
        let restarted = RelayChild::start(RELAY.as_ref(), &config(who), &log(who))
            .await
            .unwrap();
        children.insert(who, restarted);
        report.push(format!(
            "{who} {point}:{n} after {submitted} submissions in {:.1?}",
            round.elapsed()
        ));
    }
    // A little more traffic after the last restart.
    for _ in 0..3 {
        if let Some(id) = submit_once(&h, &mut client).await {
            acked.push(id);
        }
    }
    if let Some(c) = client.take() {
        c.close().await;
    }

    // Let everything that was stored be delivered.
    let officer = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    for id in sent_ids(&officer).await {
        let d = await_final(&officer, id).await.unwrap();
        assert_eq!(d.len(), 1, "{id}: {d:?}");
        assert_eq!(d[0].state, "delivered", "{id}: {d:?}");
    }
    officer.close().await;
    for (_, child) in std::mem::take(&mut children) {
        child.stop().unwrap();
    }
    let crashed = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|who| {
            let text = std::fs::read_to_string(log(who)).unwrap_or_default();
            text.matches("aborting").count()
        })
        .sum::<usize>();
    assert_eq!(
        crashed,
        AIMED.len(),
        "every armed point aborted its relay once"
    );
    // A kill after a group's journal sync, before sled flushed it, leaves
    // that group to the journal: the restart must have replayed some.
    let recovered = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|who| {
            let text = std::fs::read_to_string(log(who)).unwrap_or_default();
            text.matches("commits recovered from the journal").count()
        })
        .sum::<usize>();
    assert!(
        recovered > 0,
        "no restart after a kill recovered commits from the store's journal"
    );
    let stored = check_after_run(&h, &acked);
    eprintln!(
        "crash points (seed {seed:#x}): {} acknowledged, {stored} stored and delivered exactly \
         once; {recovered} restarts recovered commits from the journal; {}; total {:.1?}",
        acked.len(),
        report.join("; "),
        started.elapsed()
    );
    h.shutdown().await.unwrap();
}
