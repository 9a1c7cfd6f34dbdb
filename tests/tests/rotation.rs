//! Rotation while relays run (issue #14 item 5).
//!
//! **Log key**: RS.MUP rotates its log key with `kurir-certs authority
//! rotate-log-key` and `roster update` (the library functions the commands
//! run); roster v2 is installed at RS.MUP alone and reaches its peers; RS.MUP
//! signs with the new key from then on, its peers keep cosigning its log
//! (the new key's checkpoints consistent with what they cosigned under the
//! old one) and it keeps cosigning theirs; the bundles exported across the
//! rotation verify and reconcile. The PKI.md runbook "rotate the log key"
//! is these steps.
//!
//! **Node certificate**: RS.MUP's node certificate renewed with `kurir-certs authority renew-node` (the
//! library function the command runs) and taken by the running relay on
//! SIGHUP (`Node::reload_node_certificate`, called here directly), while
//! officers of both relays keep submitting. New connections see the renewed
//! certificate, a connection opened before the renewal keeps working, the
//! expiry gauge shows the new end, every message is delivered once; a bad
//! certificate is refused and the one in force stays. The PKI.md runbook
//! "renew the node certificate" is these steps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kurir_certs::authority::{Authority, layout};
use kurir_certs::roster::member_from_file;
use kurir_certs::x509;
use kurir_proto::audit::{cosigners, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::ed25519_dalek::VerifyingKey;
use kurir_proto::{KeyId, MessageId, Timestamp};
use kurir_relay::install::{Installed, install};
use kurir_relay::node::{NodeCertRefused, NodeCertReload, RosterReload};
use kurir_tests::{
    DUTY_OFFICER, Harness, POLL, PeerLink, STEP_TIMEOUT, authority, await_final, inbox,
    submit_notice,
};

const DAY_SECS: i64 = 86_400;

fn configure(h: &Harness, who: &str, text: &str) {
    let path = h.config_path(who).unwrap();
    let mut config = std::fs::read_to_string(path).unwrap();
    config.push_str(text);
    std::fs::write(path, config).unwrap();
}

/// Seconds left on the node certificate, as `/metrics` shows them.
async fn node_certificate_gauge(h: &Harness, who: &str) -> i64 {
    let text = kurir_tests::scrape_metrics(h.node(who).unwrap().metrics_addr().unwrap())
        .await
        .unwrap();
    let name = "kurir_expiry_seconds{item=\"node_certificate\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| unreachable!("{name} is not in /metrics:\n{text}"))
}

/// The fingerprint of the certificate the relay presented on `link`.
fn server_fingerprint(link: &PeerLink) -> String {
    let identity = link.connection().peer_identity().unwrap();
    let chain = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .unwrap();
    x509::fingerprint(&chain[0])
}

/// Submits notices from `officer` to `to` one after the other until
/// `stop`, and returns their ids.
fn keep_submitting(
    officer: kurir_client::Client,
    to: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(kurir_client::Client, Vec<MessageId>)> {
    tokio::spawn(async move {
        let mut ids = Vec::new();
        while !stop.load(Ordering::Relaxed) && ids.len() < 200 {
            ids.push(submit_notice(&officer, &[to]).await.unwrap());
        }
        (officer, ids)
    })
}

/// Every message in `ids` is delivered, and the inbox of `to` holds each
/// of them once.
async fn delivered_once(h: &Harness, officer: &kurir_client::Client, ids: &[MessageId], to: &str) {
    for id in ids {
        let done = await_final(officer, *id).await.unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].state, "delivered", "{id}: {done:?}");
    }
    let reader = h.officer(to, DUTY_OFFICER).await.unwrap();
    let items = inbox(&reader).await.unwrap();
    for id in ids {
        let n = items.iter().filter(|s| s.msg_id == *id).count();
        assert_eq!(n, 1, "{id} is {n} times in {to}'s inbox");
    }
    reader.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_node_certificate_taken_on_reload_while_messages_flow() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    configure(&h, "RS.MUP", "\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let rs_dir = h.authority_dir("RS.MUP").unwrap().to_owned();
    let before = h.node("RS.MUP").unwrap().node_certificate();
    let gauge_before = node_certificate_gauge(&h, "RS.MUP").await;
    assert!(gauge_before > 300 * DAY_SECS, "{gauge_before}");

    // Messages flow both ways throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let rs_to_ba = keep_submitting(
        h.officer("RS.MUP", DUTY_OFFICER).await.unwrap(),
        "BA.SPS",
        stop.clone(),
    );
    let ba_to_rs = keep_submitting(
        h.officer("BA.SPS", DUTY_OFFICER).await.unwrap(),
        "RS.MUP",
        stop.clone(),
    );

    // A connection to RS.MUP opened before the renewal (the test plays
    // BA.SPS's relay) presents the old certificate.
    let old_link = h.peer_link("BA.SPS", "RS.MUP").await.unwrap();
    assert_eq!(server_fingerprint(&old_link), before.fingerprint);

    // Step 1 (CA machine): renew-node, 30 days, a new key.
    let fingerprint = Authority::open(&rs_dir)
        .unwrap()
        .renew_node(30, h.now())
        .unwrap();
    assert_ne!(fingerprint, before.fingerprint);
    // Until the relay is told, it presents the certificate in force.
    assert_eq!(
        server_fingerprint(&h.peer_link("BA.SPS", "RS.MUP").await.unwrap()),
        before.fingerprint
    );

    // Step 2 (relay host): SIGHUP.
    let reload = h.node("RS.MUP").unwrap().reload_node_certificate().unwrap();
    let NodeCertReload::Renewed(renewed) = reload else {
        panic!("expected the renewed certificate in force, got {reload:?}");
    };
    assert_eq!(renewed.fingerprint, fingerprint);
    assert_eq!(h.node("RS.MUP").unwrap().node_certificate(), renewed);
    // A second SIGHUP finds it unchanged.
    assert_eq!(
        h.node("RS.MUP").unwrap().reload_node_certificate().unwrap(),
        NodeCertReload::Unchanged(renewed.clone())
    );

    // New connections see the renewed certificate ...
    let new_link = h.peer_link("BA.SPS", "RS.MUP").await.unwrap();
    assert_eq!(server_fingerprint(&new_link), fingerprint);
    // ... the one opened before still carries parcels ...
    let header = h.notice_header("BA.SPS", &["RS.MUP"]).unwrap();
    let id = header.id;
    let key = h.message_key("BA.SPS").unwrap();
    let parcel = h.seal_notice(header, &key).unwrap();
    old_link.exchange(&parcel.to_bytes()).await.unwrap();
    let stored = h.node("RS.MUP").unwrap().store().inbox_all().unwrap();
    assert!(
        stored.iter().any(|m| m.msg_id == id),
        "the parcel sent on the old connection was not received"
    );
    old_link.close().await;
    new_link.close().await;

    // ... and the expiry gauge shows the new end (30 days).
    let gauge = node_certificate_gauge(&h, "RS.MUP").await;
    assert!(
        gauge > 29 * DAY_SECS && gauge <= 30 * DAY_SECS,
        "node_certificate gauge {gauge}"
    );

    // The submissions of both officers, made before, during and after the
    // renewal, are each delivered once.
    stop.store(true, Ordering::Relaxed);
    let (rs_officer, sent_rs) = rs_to_ba.await.unwrap();
    let (ba_officer, sent_ba) = ba_to_rs.await.unwrap();
    assert!(!sent_rs.is_empty() && !sent_ba.is_empty());
    eprintln!(
        "submitted {} RS.MUP -> BA.SPS, {} BA.SPS -> RS.MUP",
        sent_rs.len(),
        sent_ba.len()
    );
    delivered_once(&h, &rs_officer, &sent_rs, "BA.SPS").await;
    delivered_once(&h, &ba_officer, &sent_ba, "RS.MUP").await;
    ba_officer.close().await;

    // RS.MUP dials BA.SPS anew (BA.SPS restarted) with the renewed
    // certificate, which BA.SPS accepts against the same CA.
    h.restart("BA.SPS").await.unwrap();
    let after = submit_notice(&rs_officer, &["BA.SPS"]).await.unwrap();
    delivered_once(&h, &rs_officer, &[after], "BA.SPS").await;
    rs_officer.close().await;
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_node_certificate_refused_on_reload_and_the_old_one_kept() {
    let h = Harness::started(&["RS.MUP", "BA.SPS"]).await.unwrap();
    let rs_dir = h.authority_dir("RS.MUP").unwrap().to_owned();
    let ba_dir = h.authority_dir("BA.SPS").unwrap().to_owned();
    let in_force = h.node("RS.MUP").unwrap().node_certificate();
    let (cert, key) = (
        rs_dir.join(layout::NODE_CERT),
        rs_dir.join(layout::NODE_KEY),
    );
    let (good_cert, good_key) = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());

    // BA.SPS's certificate and key copied to RS.MUP by mistake.
    std::fs::copy(ba_dir.join(layout::NODE_CERT), &cert).unwrap();
    std::fs::copy(ba_dir.join(layout::NODE_KEY), &key).unwrap();
    let err = h
        .node("RS.MUP")
        .unwrap()
        .reload_node_certificate()
        .unwrap_err();
    assert!(matches!(err, NodeCertRefused::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("not the relay of RS.MUP"), "{err}");

    // A renewed certificate with the old key (only one file copied).
    std::fs::write(&key, &good_key).unwrap();
    let renewed = Authority::open(&rs_dir).unwrap();
    renewed.renew_node(30, h.now()).unwrap();
    std::fs::write(&key, &good_key).unwrap();
    let err = h
        .node("RS.MUP")
        .unwrap()
        .reload_node_certificate()
        .unwrap_err();
    assert!(
        err.to_string().contains("does not fit the certificate"),
        "{err}"
    );

    // The certificate in force stays: handshakes present it, exchanges go on.
    assert_eq!(h.node("RS.MUP").unwrap().node_certificate(), in_force);
    let link = h.peer_link("BA.SPS", "RS.MUP").await.unwrap();
    assert_eq!(server_fingerprint(&link), in_force.fingerprint);
    link.close().await;
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let id = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    assert_eq!(await_final(&rs, id).await.unwrap()[0].state, "delivered");

    // The good pair back: unchanged.
    std::fs::write(&cert, &good_cert).unwrap();
    std::fs::write(&key, &good_key).unwrap();
    assert_eq!(
        h.node("RS.MUP").unwrap().reload_node_certificate().unwrap(),
        NodeCertReload::Unchanged(in_force)
    );
    rs.close().await;
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// Log-key rotation.

const THREE: [&str; 3] = ["RS.MUP", "BA.SPS", "ME.UP"];
/// The checkpoint interval: each relay signs, asks for cosignatures and
/// passes rosters on this often.
const INTERVAL: Duration = Duration::from_millis(500);

/// The newest checkpoint of `owner` in its store that is signed by
/// `key` and cosigned by every one of `witnesses` (with the log keys
/// given), waited for at most [`STEP_TIMEOUT`]; returns its size.
async fn await_cosigned(
    h: &Harness,
    owner: &str,
    key: VerifyingKey,
    witnesses: &[(&str, VerifyingKey)],
) -> u64 {
    let id = authority(owner).unwrap();
    let verifier = NoteVerifier::ed25519(&log_origin(&id), key).unwrap();
    let peers: Vec<_> = witnesses
        .iter()
        .map(|(w, k)| (authority(w).unwrap(), *k))
        .collect();
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let notes = h.node(owner).unwrap().store().checkpoints().unwrap();
        let found = notes.iter().rev().find_map(|note| {
            let signed = SignedCheckpoint::parse(note).ok()?;
            signed.verify(&verifier).ok()?;
            let by = cosigners(note, &peers).ok()?;
            (by.len() == peers.len()).then(|| signed.checkpoint().size())
        });
        if let Some(size) = found {
            return size;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {owner} signed by log key {} and cosigned by {witnesses:?} \
             within {STEP_TIMEOUT:?}",
            KeyId::of(&key)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A notice from `from` to `to`, delivered.
async fn exchange(h: &Harness, from: &str, to: &str) -> MessageId {
    let officer = h.officer(from, DUTY_OFFICER).await.unwrap();
    let id = submit_notice(&officer, &[to]).await.unwrap();
    let done = await_final(&officer, id).await.unwrap();
    assert_eq!(done[0].state, "delivered", "{from} to {to}: {done:?}");
    officer.close().await;
    id
}

/// Waits until every relay in `who` has roster `version` in force.
async fn await_version(h: &Harness, who: &[&str], version: u64) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let behind: Vec<_> = who
            .iter()
            .filter(|w| h.node(w).unwrap().roster_in_force().0 != version)
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{behind:?} did not adopt roster version {version}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_key_rotated_while_relays_exchange_and_bundles_verify_across_it() {
    let mut h = Harness::new(&THREE).unwrap();
    h.set_checkpoint_interval(INTERVAL);
    configure(&h, "RS.MUP", "\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    // A roster reaches BA.SPS and ME.UP only through RS.MUP.
    h.set_roster_check(Duration::from_secs(3600));
    for who in THREE {
        h.own_roster_file(who).unwrap();
        h.start(who).await.unwrap();
    }
    let key_of = |h: &Harness, who: &str| h.roster().log_key(&authority(who).unwrap()).unwrap();
    let (ba_key, me_key) = (key_of(&h, "BA.SPS"), key_of(&h, "ME.UP"));
    let old = key_of(&h, "RS.MUP");
    let mut sent = vec![
        exchange(&h, "RS.MUP", "BA.SPS").await,
        exchange(&h, "BA.SPS", "RS.MUP").await,
    ];
    // Under the old key, both peers cosign RS.MUP's log.
    let before = await_cosigned(&h, "RS.MUP", old, &[("BA.SPS", ba_key), ("ME.UP", me_key)]).await;

    // Step 1 (CA machine): rotate-log-key; the old key stays valid 7 days.
    let rs_dir = h.authority_dir("RS.MUP").unwrap().to_owned();
    let mut rs = Authority::open(&rs_dir).unwrap();
    let until = h.now().plus_millis(7 * 86_400_000);
    let (new, kept) = rs.rotate_log_key(until).unwrap();
    assert_eq!(kept, rs_dir.join("log.key.1"));
    assert_ne!(new, old);
    // Until a roster lists the new key, the relay signs with the old one
    // (now in log.key.1), even when asked to look again.
    assert_eq!(h.node("RS.MUP").unwrap().reload_log_key(), KeyId::of(&old));

    // Step 2: roster update with member.json, signed by two roster keys.
    let member = member_from_file(&rs_dir.join(layout::MEMBER)).unwrap();
    assert_eq!(member.log_key, new);
    assert_eq!(member.log_keys_before.len(), 1);
    assert_eq!(member.log_keys_before[0].key, old);
    let v2 = h
        .next_roster(|e| Ok(e.update_member(member)?), &[0, 1])
        .unwrap();

    // Step 3: installed at RS.MUP alone, SIGHUP; messages in flight.
    let file = h.dir().join("roster-v2.cbor");
    std::fs::write(&file, &v2).unwrap();
    match install(h.config_path("RS.MUP").unwrap(), &file, h.now()).unwrap() {
        Installed::Written { version, .. } => assert_eq!(version, 2),
        other => panic!("v2 not written: {other:?}"),
    }
    let officer = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    let during = submit_notice(&officer, &["RS.MUP"]).await.unwrap();
    match h.node("RS.MUP").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { .. } => {}
        other => panic!("v2 not applied at RS.MUP: {other:?}"),
    }
    assert_eq!(h.node("RS.MUP").unwrap().reload_log_key(), KeyId::of(&new));
    await_version(&h, &["BA.SPS", "ME.UP"], 2).await;
    h.adopt_roster(&v2).unwrap();
    assert_eq!(
        await_final(&officer, during).await.unwrap()[0].state,
        "delivered"
    );
    officer.close().await;
    sent.push(during);

    // The relays keep exchanging; the peers cosign RS.MUP's new-key
    // checkpoints, which extend what they cosigned under the old key ...
    sent.push(exchange(&h, "RS.MUP", "ME.UP").await);
    sent.push(exchange(&h, "ME.UP", "RS.MUP").await);
    sent.push(exchange(&h, "RS.MUP", "BA.SPS").await);
    let after = await_cosigned(&h, "RS.MUP", new, &[("BA.SPS", ba_key), ("ME.UP", me_key)]).await;
    assert!(after > before, "{after} > {before}");
    // ... and RS.MUP cosigns theirs with its new key.
    sent.push(exchange(&h, "BA.SPS", "ME.UP").await);
    await_cosigned(&h, "BA.SPS", ba_key, &[("RS.MUP", new), ("ME.UP", me_key)]).await;
    assert!(h.node("RS.MUP").unwrap().integrity_alarm().is_none());

    // RS.MUP restarts: its log is checked against its newest checkpoint
    // (signed with whichever key) and it signs with the new key.
    h.restart("RS.MUP").await.unwrap();
    assert_eq!(h.node("RS.MUP").unwrap().reload_log_key(), KeyId::of(&new));
    sent.push(exchange(&h, "RS.MUP", "BA.SPS").await);

    // A relay host where the new log.key was not copied (log.key still the
    // old key): the relay starts with the old key, which the roster still
    // allows, and takes the new one on SIGHUP once it is in place.
    h.stop("RS.MUP").await.unwrap();
    let (key_file, aside) = (rs_dir.join("log.key"), rs_dir.join("log.key.new"));
    std::fs::rename(&key_file, &aside).unwrap();
    std::fs::copy(rs_dir.join("log.key.1"), &key_file).unwrap();
    h.start("RS.MUP").await.unwrap();
    assert_eq!(h.node("RS.MUP").unwrap().reload_log_key(), KeyId::of(&old));
    // The old key's end is watched: a gauge, and a warning 7 days ahead.
    let addr = h.node("RS.MUP").unwrap().metrics_addr().unwrap();
    let text = kurir_tests::scrape_metrics(addr).await.unwrap();
    let series = "kurir_expiry_seconds{item=\"log_key_before\"} ";
    let left: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        (6 * DAY_SECS..=7 * DAY_SECS).contains(&left),
        "{left} seconds left"
    );
    kurir_tests::logs::await_line("warning ahead of the earlier log key's end", |l| {
        l.contains("WARN")
            && l.contains("the earlier log key this relay still signs with expires")
            && l.contains("within 7 days")
    })
    .await
    .unwrap();
    sent.push(exchange(&h, "RS.MUP", "ME.UP").await);
    std::fs::rename(&aside, &key_file).unwrap();
    assert_eq!(h.node("RS.MUP").unwrap().reload_log_key(), KeyId::of(&new));
    // Signing with the key the roster lists, nothing earlier is watched.
    let text = kurir_tests::scrape_metrics(addr).await.unwrap();
    assert!(!text.contains(series), "{text}");
    sent.push(exchange(&h, "RS.MUP", "BA.SPS").await);
    await_cosigned(&h, "RS.MUP", new, &[("BA.SPS", ba_key), ("ME.UP", me_key)]).await;
    eprintln!("{} notices delivered across the rotation", sent.len());

    // The bundles exported across the rotation verify and reconcile.
    let mut dirs = Vec::new();
    for who in ["RS.MUP", "BA.SPS"] {
        let data = h.config(who).unwrap().data_dir;
        h.stop(who).await.unwrap();
        let out = h.dir().join(format!("audit-{who}"));
        kurir_relay::audit::export(&data, &out, h.now()).unwrap();
        dirs.push(out);
    }
    let rs_bundle = kurir_audit::load_verified(&dirs[0]).unwrap();
    let ba_bundle = kurir_audit::load_verified(&dirs[1]).unwrap();
    let signed_by = |dir: &std::path::Path, key: VerifyingKey| {
        let v = NoteVerifier::ed25519(&log_origin(&authority("RS.MUP").unwrap()), key).unwrap();
        let raw = kurir_audit::bundle::read(dir).unwrap();
        raw.checkpoints
            .iter()
            .filter(|n| SignedCheckpoint::parse(&n.0).unwrap().verify(&v).is_ok())
            .count()
    };
    assert!(
        signed_by(&dirs[0], old) > 0,
        "no old-key checkpoint in the bundle"
    );
    assert!(
        signed_by(&dirs[0], new) > 0,
        "no new-key checkpoint in the bundle"
    );
    // BA.SPS's checkpoints carry RS.MUP's cosignatures under both keys.
    let rs_id = authority("RS.MUP").unwrap();
    assert!(
        ba_bundle
            .cosigned
            .iter()
            .any(|(_, by)| by.iter().any(|(who, _)| who == &rs_id))
    );
    let r = kurir_audit::reconcile_logs(&rs_bundle.log, &ba_bundle.log);
    assert!(r.reconciled(), "{:?}", r.findings);
    h.shutdown().await.unwrap();
}

/// The key RS.MUP signed the envelope of `id` with, read from the inbox of
/// `at` and checked against the harness's roster.
fn signed_with(h: &Harness, at: &str, id: MessageId) -> KeyId {
    let record = h.node(at).unwrap().store().inbox(id).unwrap().unwrap();
    let envelope = kurir_relay::store::Store::envelope(&record.parcel).unwrap();
    kurir_proto::envelope::verify_envelope(&envelope, h.roster())
        .unwrap()
        .kid
}

/// The PKI.md runbooks "rotate a message key" and "revoke a message key",
/// with no restart: RS.MUP's message key rotated with `kurir-certs
/// authority rotate-key` and `roster update` (the library functions the
/// commands run), roster v2 installed at RS.MUP alone; the relay signs
/// with the new key as soon as v2 is in force, and its peers accept it;
/// roster v3 revoking the old key, installed at BA.SPS, reaches RS.MUP
/// from its peer and is taken the same way. With the key files gone from
/// the host, a reload keeps the keys in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_key_rotated_and_the_old_one_revoked_while_the_relay_runs() {
    let mut h = Harness::new(&THREE).unwrap();
    h.set_checkpoint_interval(INTERVAL);
    h.set_roster_check(Duration::from_secs(3600));
    for who in THREE {
        h.own_roster_file(who).unwrap();
        h.start(who).await.unwrap();
    }
    let rs_id = authority("RS.MUP").unwrap();
    let old = KeyId::of(&h.message_key("RS.MUP").unwrap().verifying_key());
    let first = exchange(&h, "RS.MUP", "BA.SPS").await;
    assert_eq!(signed_with(&h, "BA.SPS", first), old);

    // Step 1 (CA machine): rotate-key; the old key stays valid 7 days.
    let rs_dir = h.authority_dir("RS.MUP").unwrap().to_owned();
    let mut rs = Authority::open(&rs_dir).unwrap();
    let new = KeyId::of(&rs.rotate_message_key(h.now(), 7 * 86_400_000, 730).unwrap());
    assert_ne!(new, old);
    // The new key file is in message-keys/ but no roster lists it yet: the
    // relay skips it, even when asked to look again, and signs with the old.
    let node = h.node("RS.MUP").unwrap();
    let in_force: Vec<KeyId> = node.reload_message_keys().iter().map(|w| w.kid).collect();
    assert_eq!(in_force, vec![old]);
    let before_v2 = exchange(&h, "RS.MUP", "ME.UP").await;
    assert_eq!(signed_with(&h, "ME.UP", before_v2), old);

    // Step 2: roster update with member.json, signed by two roster keys,
    // installed at RS.MUP alone and put in force (SIGHUP).
    let member = member_from_file(&rs_dir.join(layout::MEMBER)).unwrap();
    let v2 = h
        .next_roster(|e| Ok(e.update_member(member)?), &[0, 1])
        .unwrap();
    let file = h.dir().join("roster-v2.cbor");
    std::fs::write(&file, &v2).unwrap();
    install(h.config_path("RS.MUP").unwrap(), &file, h.now()).unwrap();
    match h.node("RS.MUP").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { .. } => {}
        other => panic!("v2 not applied at RS.MUP: {other:?}"),
    }
    let windows = h.node("RS.MUP").unwrap().message_keys();
    assert_eq!(
        windows.iter().map(|w| w.kid).collect::<Vec<_>>(),
        vec![new, old],
        "v2 in force: both keys held, the new one first"
    );
    await_version(&h, &["BA.SPS", "ME.UP"], 2).await;
    h.adopt_roster(&v2).unwrap();
    // Envelopes and receipts RS.MUP signs now use the new key; both peers
    // accept them.
    for to in ["BA.SPS", "ME.UP"] {
        let id = exchange(&h, "RS.MUP", to).await;
        assert_eq!(signed_with(&h, to, id), new, "RS.MUP to {to}");
        exchange(&h, to, "RS.MUP").await;
    }

    // Step 3: roster v3 revokes the old key; installed at BA.SPS alone,
    // RS.MUP takes it from its peer.
    let revoked_at = Timestamp(h.now().0 + 1);
    let v3 = h
        .next_roster(
            |e| Ok(e.revoke_message_key(&rs_id, &old, revoked_at)?),
            &[0, 2],
        )
        .unwrap();
    let file = h.dir().join("roster-v3.cbor");
    std::fs::write(&file, &v3).unwrap();
    install(h.config_path("BA.SPS").unwrap(), &file, h.now()).unwrap();
    match h.node("BA.SPS").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { .. } => {}
        other => panic!("v3 not applied at BA.SPS: {other:?}"),
    }
    await_version(&h, &["RS.MUP", "ME.UP"], 3).await;
    // The old key's end is now its revoked_at (before its valid_until).
    let windows = h.node("RS.MUP").unwrap().message_keys();
    let old_window = windows.iter().find(|w| w.kid == old).unwrap();
    assert_eq!(old_window.valid_until, Some(revoked_at), "{windows:?}");
    h.adopt_roster(&v3).unwrap();
    h.await_clock_past(revoked_at).await;
    for to in ["BA.SPS", "ME.UP"] {
        let id = exchange(&h, "RS.MUP", to).await;
        assert_eq!(signed_with(&h, to, id), new, "RS.MUP to {to} after v3");
        exchange(&h, to, "RS.MUP").await;
    }
    // The key files moved away (a mistake on the relay host): on SIGHUP no
    // key would be valid, so the keys in force stay and keep signing.
    let keys_dir = rs_dir.join(layout::MESSAGE_KEYS);
    let aside = h.dir().join("message-keys-aside");
    std::fs::rename(&keys_dir, &aside).unwrap();
    std::fs::create_dir(&keys_dir).unwrap();
    let kept = h.node("RS.MUP").unwrap().reload_message_keys();
    assert_eq!(kept, windows, "the keys in force stay");
    let id = exchange(&h, "RS.MUP", "ME.UP").await;
    assert_eq!(signed_with(&h, "ME.UP", id), new);
    std::fs::remove_dir(&keys_dir).unwrap();
    std::fs::rename(&aside, &keys_dir).unwrap();
    assert!(h.node("RS.MUP").unwrap().integrity_alarm().is_none());
    h.shutdown().await.unwrap();
}

/// A roster that revokes a relay's only message key leaves it nothing to
/// sign with: its officers' submissions are refused at once, by the relay
/// itself, instead of being signed with the revoked key and refused
/// `key_revoked` by every peer (the relay must not sign what its peers
/// refuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_only_message_key_the_roster_revokes_signs_nothing() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    h.set_checkpoint_interval(INTERVAL);
    h.set_roster_check(Duration::from_secs(3600));
    for who in ["RS.MUP", "BA.SPS"] {
        h.own_roster_file(who).unwrap();
        h.start(who).await.unwrap();
    }
    let rs_id = authority("RS.MUP").unwrap();
    let only = KeyId::of(&h.message_key("RS.MUP").unwrap().verifying_key());
    exchange(&h, "RS.MUP", "BA.SPS").await;

    let revoked_at = Timestamp(h.now().0 + 1);
    let v2 = h
        .next_roster(
            |e| Ok(e.revoke_message_key(&rs_id, &only, revoked_at)?),
            &[0, 1],
        )
        .unwrap();
    let file = h.dir().join("roster-v2.cbor");
    std::fs::write(&file, &v2).unwrap();
    install(h.config_path("RS.MUP").unwrap(), &file, h.now()).unwrap();
    match h.node("RS.MUP").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { .. } => {}
        other => panic!("v2 not applied at RS.MUP: {other:?}"),
    }
    h.await_clock_past(revoked_at).await;
    let windows = h.node("RS.MUP").unwrap().message_keys();
    assert_eq!(
        windows
            .iter()
            .map(|w| (w.kid, w.valid_until))
            .collect::<Vec<_>>(),
        vec![(only, Some(revoked_at))],
        "the key in force ends at its revoked_at"
    );
    let officer = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let refused = submit_notice(&officer, &["BA.SPS"]).await.unwrap_err();
    assert!(
        refused.to_string().contains("message key"),
        "refused for want of a valid key: {refused:#}"
    );
    officer.close().await;
    let ba = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    assert_eq!(
        inbox(&ba).await.unwrap().len(),
        1,
        "nothing signed after revoked_at reached BA.SPS"
    );
    ba.close().await;
    h.shutdown().await.unwrap();
}
