//! Relays that stop and start again: queued messages survive and are
//! delivered exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use kurir_proto::MessageId;
use kurir_tests::{
    DUTY_OFFICER, Harness, await_deliveries, await_final, inbox, logs, submit_notice,
};

const BATCH: usize = 3;

/// Every message in `ids` is in the inbox of `who`'s relay exactly once,
/// and nothing else is.
async fn assert_inbox_exactly(h: &Harness, who: &str, ids: &[MessageId]) {
    let officer = h.officer(who, DUTY_OFFICER).await.unwrap();
    let items = inbox(&officer).await.unwrap();
    let got: Vec<MessageId> = items.iter().map(|s| s.msg_id).collect();
    let mut want = ids.to_vec();
    let mut sorted = got.clone();
    want.sort();
    sorted.sort();
    assert_eq!(sorted, want, "inbox of {who}: {items:?}");
    let stored = h.node(who).unwrap().store().inbox_all().unwrap();
    assert_eq!(stored.len(), ids.len());
    officer.close().await;
}

/// The recipient's relay stops; messages sent meanwhile are retried (the
/// status says so); once the recipient is back on the same port and data
/// directory, all are delivered, each exactly once into its inbox, next to
/// the one delivered before it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_down_then_back_all_delivered_once() {
    let mut h = Harness::started(&["RS.MUP", "BA.SPS"]).await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();

    // A first message while both run: the sender now holds a connection.
    let first = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    assert_eq!(await_final(&rs, first).await.unwrap()[0].state, "delivered");

    h.stop("BA.SPS").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..BATCH {
        ids.push(submit_notice(&rs, &["BA.SPS"]).await.unwrap());
    }
    for id in &ids {
        let d = await_deliveries(&rs, *id, "retrying", |d| {
            d.len() == 1 && d[0].state == "retrying"
        })
        .await
        .unwrap();
        assert!(d[0].attempts >= 1, "{d:?}");
        assert!(d[0].reason.is_some(), "a retry says why: {d:?}");
    }

    h.restart("BA.SPS").await.unwrap();
    for id in &ids {
        let d = await_final(&rs, *id).await.unwrap();
        assert_eq!(d[0].state, "delivered", "{d:?}");
        assert!(d[0].attempts >= 2, "{d:?}");
    }
    // First attempts and retries alike sent the parcels kept in memory.
    let reads = h.node("RS.MUP").unwrap().metrics().parcel_reads.get();
    assert_eq!(reads, 0, "no attempt read its parcel back from the store");
    let mut all = vec![first];
    all.extend(&ids);
    assert_inbox_exactly(&h, "BA.SPS", &all).await;
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        BATCH + 1,
        "distinct ids"
    );

    rs.close().await;
    h.shutdown().await.unwrap();
}

/// The sender's relay stops with messages still queued (the recipient was
/// down); the recipient starts; the sender restarts from the same data
/// directory, resumes its queue from the store and delivers everything,
/// each exactly once. The queue is twice as long as the number of
/// connections the recipient allows one peer: resuming it must not open a
/// connection per message (the recipient would refuse the surplus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_restarted_with_a_queue_delivers_all() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    let batch = 2 * h.config("BA.SPS").unwrap().max_connections_per_peer;
    h.start("RS.MUP").await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..batch {
        ids.push(submit_notice(&rs, &["BA.SPS"]).await.unwrap());
    }
    for id in &ids {
        let d = kurir_tests::deliveries(&rs, *id).await.unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            matches!(d[0].state.as_str(), "queued" | "sending" | "retrying"),
            "{d:?}"
        );
    }
    rs.close().await;
    h.stop("RS.MUP").await.unwrap();
    assert!(!h.is_running("RS.MUP").unwrap(), "the sender is down");

    h.start("BA.SPS").await.unwrap();
    assert!(
        h.node("BA.SPS")
            .unwrap()
            .store()
            .inbox_all()
            .unwrap()
            .is_empty(),
        "nothing can have arrived while the sender was down"
    );

    h.restart("RS.MUP").await.unwrap();
    let addr = h.addr("RS.MUP").unwrap();
    let started = format!("authority=RS.MUP addr={addr}");
    let resumed = format!("resumed_deliveries={batch}");
    assert!(
        logs::text()
            .lines()
            .any(|l| l.contains("relay started") && l.contains(&started) && l.contains(&resumed)),
        "the restarted sender did not report resuming {batch} deliveries from its store"
    );
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    for id in &ids {
        let d = await_final(&rs, *id).await.unwrap();
        assert_eq!(d[0].state, "delivered", "{d:?}");
    }
    assert_inbox_exactly(&h, "BA.SPS", &ids).await;
    // Nothing is kept across a restart: the parcels came from the store.
    let reads = h.node("RS.MUP").unwrap().metrics().parcel_reads.get();
    assert!(reads >= batch as u64, "{reads} parcels read for {batch}");
    let from_sender = format!("remote={addr}");
    let refused: Vec<String> = logs::text()
        .lines()
        .filter(|l| l.contains("too many connections") && l.contains(&from_sender))
        .map(str::to_owned)
        .collect();
    assert!(
        refused.is_empty(),
        "the sender exceeded the recipient's connection limit: {refused:#?}"
    );

    rs.close().await;
    h.shutdown().await.unwrap();
}

/// A `status` answer comes from what the relay holds of the messages sent
/// last while it runs, and from the store after a restart: the two are the
/// same, summary, states, receipts and their inclusion proofs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_messages_status_is_the_same_after_the_sender_restarts() {
    use kurir_proto::api::{Request, Response};

    let members = ["RS.MUP", "BA.SPS", "ME.UP"];
    let mut h = Harness::new(&members).unwrap();
    h.set_checkpoint_interval(std::time::Duration::from_millis(200));
    for m in members {
        h.start(m).await.unwrap();
    }
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let id = submit_notice(&rs, &["ME.UP", "BA.SPS"]).await.unwrap();
    let d = await_final(&rs, id).await.unwrap();
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.iter().all(|d| d.state == "delivered"), "{d:?}");
    // Both receipts proven: nothing of the answer changes any more.
    let d = await_deliveries(&rs, id, "proven", |d| {
        d.iter().all(|d| d.inclusion.is_some())
    })
    .await
    .unwrap();
    let ask = Request::Status {
        msg_id: id,
        wait_ms: None,
    };
    let before = kurir_tests::officer::request(&rs, &ask).await.unwrap();
    let Response::Status {
        summary,
        deliveries,
    } = &before
    else {
        panic!("not a status: {before:?}");
    };
    assert_eq!(summary.msg_id, id);
    assert_eq!(deliveries, &d);
    rs.close().await;

    h.restart("RS.MUP").await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let after = kurir_tests::officer::request(&rs, &ask).await.unwrap();
    assert_eq!(after, before);

    rs.close().await;
    h.shutdown().await.unwrap();
}
