//! Node-certificate renewal while relays run (issue #14 item 5): RS.MUP's
//! node certificate renewed with `kurir-certs authority renew-node` (the
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

use kurir_certs::authority::{Authority, layout};
use kurir_certs::x509;
use kurir_proto::MessageId;
use kurir_relay::node::{NodeCertRefused, NodeCertReload};
use kurir_tests::{DUTY_OFFICER, Harness, PeerLink, await_final, inbox, submit_notice};

const DAY_SECS: i64 = 86_400;

fn configure(h: &Harness, who: &str, text: &str) {
    let path = h.config_path(who).unwrap();
    let mut config = std::fs::read_to_string(path).unwrap();
    config.push_str(text);
    std::fs::write(path, config).unwrap();
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Seconds left on the node certificate, as `/metrics` shows them.
async fn node_certificate_gauge(h: &Harness, who: &str) -> i64 {
    let text = metrics(h.node(who).unwrap().metrics_addr().unwrap()).await;
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
