//! Receipts and envelopes signed in batches (PROTOCOL.md §10.1, §6.1)
//! between real relays: a relay that receives many parcels at once signs
//! the receipts of one group commit together, and one that sends many signs
//! the envelopes of one group commit together; each verifies alone, and
//! the audit exports of both relays verify.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use kurir_proto::cose::{
    CONTENT_TYPE_HEADER, CONTENT_TYPE_HEADER_BATCH, CONTENT_TYPE_RECEIPT,
    CONTENT_TYPE_RECEIPT_BATCH, content_type,
};
use kurir_proto::{ReceiptStatus, open_receipt};
use kurir_tests::{DUTY_OFFICER, Harness, authority, await_final, submit_notice};

/// Parallel submissions, and notices each.
const WORKERS: usize = 32;
const EACH: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_relays_sign_receipts_and_envelopes_in_batches_that_verify_everywhere() {
    let mut h = Harness::started(&["RS.MUP", "BA.SPS"]).await.unwrap();
    let officer = Arc::new(h.officer("RS.MUP", DUTY_OFFICER).await.unwrap());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let officer = officer.clone();
        workers.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..EACH {
                ids.push(submit_notice(&officer, &["BA.SPS"]).await.unwrap());
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = workers.join_next().await {
        ids.extend(done.unwrap());
    }
    assert_eq!(ids.len(), WORKERS * EACH);

    let roster = h.roster().clone();
    let ba = authority("BA.SPS").unwrap();
    let mut receipts = Vec::new();
    for id in &ids {
        let d = await_final(&officer, *id).await.unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].state, "delivered", "{d:?}");
        let bytes = d[0].receipt.clone().unwrap();
        let v = open_receipt(&bytes, &roster).unwrap();
        assert_eq!(v.receipt.msg_id, Some(*id));
        assert_eq!(v.receipt.receiver, ba);
        assert_eq!(v.receipt.status, ReceiptStatus::Accepted);
        receipts.push(bytes);
    }
    // The receiver keeps each receipt it sent, byte for byte.
    let store = h.node("BA.SPS").unwrap().store();
    for (id, bytes) in ids.iter().zip(&receipts) {
        assert_eq!(store.inbox(*id).unwrap().unwrap().receipt, *bytes);
    }
    // Some group commits held several receipts: batched receipts sharing a
    // signature (the last 64 bytes of the COSE_Sign1).
    let mut by_signature: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut batched = 0;
    for r in &receipts {
        match content_type(r).as_deref() {
            Some(CONTENT_TYPE_RECEIPT_BATCH) => {
                batched += 1;
                *by_signature.entry(r[r.len() - 64..].to_vec()).or_default() += 1;
            }
            Some(CONTENT_TYPE_RECEIPT) => {}
            other => panic!("receipt of content type {other:?}"),
        }
    }
    let shared = by_signature.values().filter(|n| **n >= 2).count();
    eprintln!(
        "{} receipts, {batched} batched, in {} signatures ({shared} shared)",
        receipts.len(),
        by_signature.len()
    );
    assert!(batched >= 2, "no receipt was signed in a batch");
    assert!(shared >= 1, "no signature covers two receipts");

    // The audit exports of both relays verify, receipts included, and
    // reconcile.
    Arc::try_unwrap(officer).ok().unwrap().close().await;
    let (mut verified, mut envelopes) = (Vec::new(), Vec::new());
    for who in ["RS.MUP", "BA.SPS"] {
        let data = h.config(who).unwrap().data_dir;
        h.stop(who).await.unwrap();
        let out = h.dir().join(format!("audit-{who}"));
        kurir_relay::audit::export(&data, &out, h.now()).unwrap();
        let bundle =
            kurir_proto::audit::Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap())
                .unwrap();
        verified.push(kurir_audit::load_verified(&out).unwrap());
        // Every envelope, in both bundles: some of them batched, sharing a
        // signature, and the same bytes at both ends.
        let mut by_signature: HashMap<Vec<u8>, usize> = HashMap::new();
        for e in &bundle.envelopes {
            match content_type(&e.0).as_deref() {
                Some(CONTENT_TYPE_HEADER_BATCH) => {
                    *by_signature
                        .entry(e.0[e.0.len() - 64..].to_vec())
                        .or_default() += 1;
                }
                Some(CONTENT_TYPE_HEADER) => {}
                other => panic!("envelope of content type {other:?}"),
            }
        }
        let batched_envelopes: usize = by_signature.values().sum();
        eprintln!(
            "{who}: {} envelopes, {batched_envelopes} batched, under {} signatures",
            bundle.envelopes.len(),
            by_signature.len()
        );
        assert!(
            by_signature.values().any(|n| *n >= 2),
            "{who}: no signature covers two envelopes"
        );
        envelopes.push(bundle.envelopes.clone());
        if who == "RS.MUP" {
            let in_bundle = bundle
                .receipts
                .iter()
                .filter(|r| content_type(&r.receipt).as_deref() == Some(CONTENT_TYPE_RECEIPT_BATCH))
                .count();
            assert_eq!(
                in_bundle, batched,
                "the sender's bundle holds every batched receipt"
            );
        }
    }
    let sorted = |mut e: Vec<_>| {
        e.sort_by(|a: &kurir_proto::audit::serde_bytes_vec::Bytes, b| a.0.cmp(&b.0));
        e
    };
    assert_eq!(
        sorted(envelopes[0].clone()),
        sorted(envelopes[1].clone()),
        "the receiver holds the envelopes the sender signed, byte for byte"
    );
    let r = kurir_audit::reconcile_logs(&verified[0].log, &verified[1].log);
    assert!(r.reconciled(), "{:?}", r.findings);
    h.shutdown().await.unwrap();
}
