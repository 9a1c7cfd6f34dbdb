//! Revocation in the roster (issue #14 item 4), step by step as the PKI.md
//! runbooks "revoke a node certificate" and "revoke a message key" say: the
//! roster edited with `kurir-certs roster revoke-node` / `revoke-key` (the
//! editor functions the commands run), signed by two roster keys, installed
//! at one relay with `kurir-relay roster install` (the library function)
//! and SIGHUP (`Node::reload_roster`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kurir_proto::receipt::ReceiptStatus;
use kurir_proto::{KeyId, RejectCode, Timestamp};
use kurir_relay::install::install;
use kurir_relay::node::RosterReload;
use kurir_tests::{
    DUTY_OFFICER, Harness, POLL, authority, await_deliveries, await_final, logs, open_rejection,
    submit_notice,
};

const INTERVAL: Duration = Duration::from_secs(2);

fn install_at(h: &Harness, who: &str, name: &str, bytes: &[u8]) {
    let file = h.dir().join(name);
    std::fs::write(&file, bytes).unwrap();
    install(h.config_path(who).unwrap(), &file, h.now()).unwrap();
}

async fn await_adopted(h: &Harness, who: &[&str], version: u64, within: Duration) {
    let started = Instant::now();
    loop {
        if who
            .iter()
            .all(|w| h.node(w).unwrap().roster_in_force().0 == version)
        {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{who:?} did not all adopt roster version {version} within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn exchange(h: &Harness, from: &str, to: &[&str]) {
    let officer = h.officer(from, DUTY_OFFICER).await.unwrap();
    let id = submit_notice(&officer, to).await.unwrap();
    for d in await_final(&officer, id).await.unwrap() {
        assert_eq!(d.state, "delivered", "{from} to {}: {d:?}", d.peer);
    }
}

/// Whether a connection from the relay of BA.SPS to `to`, presenting its
/// node certificate, is refused (at the handshake, or at the first stream:
/// with TLS 1.3 the client may finish before the server checked it).
async fn ba_is_refused_by(h: &Harness, to: &str) -> String {
    match h.peer_link("BA.SPS", to).await {
        Err(e) => format!("{e:#}"),
        Ok(link) => match link.exchange(b"anything").await {
            Err(e) => format!("{e:#}"),
            Ok(answer) => panic!("{to} answered BA.SPS's revoked certificate: {answer:?}"),
        },
    }
}

/// A roster revoking BA.SPS's node certificate, installed at RS.MUP alone,
/// is adopted by ME.UP from its peer; BA.SPS's open connections are closed,
/// its reconnects refused at the handshake by every relay, and no relay
/// dials it; each relay logs the member and the fingerprint. With a renewed
/// node certificate, BA.SPS exchanges again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_node_certificate_is_closed_and_refused_everywhere() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).unwrap();
    h.set_checkpoint_interval(INTERVAL);
    h.set_roster_check(Duration::from_secs(3600));
    for who in ["RS.MUP", "BA.SPS", "ME.UP"] {
        h.own_roster_file(who).unwrap();
        h.start(who).await.unwrap();
    }
    // BA.SPS has connections open to both, and they to it.
    exchange(&h, "BA.SPS", &["RS.MUP", "ME.UP"]).await;
    exchange(&h, "RS.MUP", &["BA.SPS"]).await;

    let ba = authority("BA.SPS").unwrap();
    let cert = h.node_credentials("BA.SPS").unwrap().chain[0].clone();
    let sha = kurir_certs::x509::fingerprint(&cert);
    let sha_bytes = kurir_certs::roster::parse_fingerprint(&sha).unwrap();
    let now = h.now();
    let v2 = h
        .next_roster(
            |e| Ok(e.revoke_node_cert(&ba, sha_bytes, "relay host stolen", now)?),
            &[0, 1],
        )
        .unwrap();
    install_at(&h, "RS.MUP", "roster-v2.cbor", &v2);
    match h.node("RS.MUP").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { change, closed } => {
            assert_eq!(change.details, vec![ba.clone()]);
            assert!(
                closed >= 1,
                "BA.SPS's connections to RS.MUP were not closed"
            );
        }
        other => panic!("v2 not applied at RS.MUP: {other:?}"),
    }
    await_adopted(&h, &["ME.UP"], 2, 2 * INTERVAL).await;
    h.adopt_roster(&v2).unwrap();
    let line = logs::await_line("a connection closed for the revoked certificate", |l| {
        l.contains("closing a connection whose node certificate the roster in force revokes")
            && l.contains(&sha)
            && l.contains("peer=BA.SPS")
    })
    .await
    .unwrap();
    eprintln!("a relay logged: {line}");

    // Its reconnects are refused by both relays, naming the certificate.
    for to in ["RS.MUP", "ME.UP"] {
        let err = ba_is_refused_by(&h, to).await;
        eprintln!("BA.SPS's reconnect to {to}: {err}");
    }
    let line = logs::await_line("the refused handshake", |l| {
        l.contains("refused at the handshake: a node certificate the roster in force revokes")
            && l.contains(&format!("sha256={sha}"))
            && l.contains("member=BA.SPS")
    })
    .await
    .unwrap();
    eprintln!("a relay logged: {line}");
    // BA.SPS's own relay cannot deliver: every handshake it tries is refused.
    let ba_officer = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    let stuck = submit_notice(&ba_officer, &["ME.UP"]).await.unwrap();
    let d = await_deliveries(&ba_officer, stuck, "retrying", |d| {
        d.iter().all(|s| s.state == "retrying" && s.attempts >= 1)
    })
    .await
    .unwrap();
    eprintln!("BA.SPS's delivery after its certificate was revoked: {d:?}");
    // And no relay that holds v2 dials the revoked certificate: RS.MUP's
    // delivery to BA.SPS waits, and RS.MUP says why.
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let waiting = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    await_deliveries(&rs, waiting, "retrying", |d| {
        d.iter().all(|s| s.state == "retrying" && s.attempts >= 1)
    })
    .await
    .unwrap();

    // The runbook's last step: BA.SPS renews its node certificate and
    // restarts; it exchanges again and the waiting messages arrive.
    kurir_certs::authority::Authority::open(h.authority_dir("BA.SPS").unwrap())
        .unwrap()
        .renew_node(30, h.now())
        .unwrap();
    h.restart("BA.SPS").await.unwrap();
    for (who, id) in [("BA.SPS", stuck), ("RS.MUP", waiting)] {
        let officer = h.officer(who, DUTY_OFFICER).await.unwrap();
        await_deliveries(&officer, id, "delivered", |d| {
            d.iter().all(|s| s.state == "delivered")
        })
        .await
        .unwrap();
    }
    exchange(&h, "BA.SPS", &["RS.MUP", "ME.UP"]).await;
    h.shutdown().await.unwrap();
}

/// A message key revoked at a moment: an envelope it signed before that
/// moment is accepted and, after the relay adopted the roster that revokes
/// the key, still verifies in the offline audit (`kurir audit verify`'s
/// library); one it signed at or after is refused `key_revoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_message_key_signs_nothing_after_revoked_at() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).unwrap();
    h.own_roster_file("BA.SPS").unwrap();
    h.start("BA.SPS").await.unwrap();
    let key = h.message_key("RS.MUP").unwrap();
    let kid = KeyId::of(&key.verifying_key());

    // Before the revocation: accepted.
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let before = h.seal_notice(header, &key).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&before.to_bytes()).await.unwrap();
    let receipt = kurir_proto::receipt::open_receipt(&answer, h.roster()).unwrap();
    assert_eq!(receipt.receipt.status, ReceiptStatus::Accepted);
    link.close().await;

    let revoked_at = Timestamp(h.now().0 + 1);
    let rs = authority("RS.MUP").unwrap();
    let v2 = h
        .next_roster(
            |e| Ok(e.revoke_message_key(&rs, &kid, revoked_at)?),
            &[0, 2],
        )
        .unwrap();
    install_at(&h, "BA.SPS", "roster-v2.cbor", &v2);
    assert!(matches!(
        h.node("BA.SPS").unwrap().reload_roster().await.unwrap(),
        RosterReload::Applied { .. }
    ));
    h.adopt_roster(&v2).unwrap();
    h.await_clock_past(revoked_at).await;

    // Signed after revoked_at: refused key_revoked, recorded as such.
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    assert!(header.created_at >= revoked_at);
    let after = h.seal_notice(header, &key).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&after.to_bytes()).await.unwrap();
    let (v, code) = open_rejection(h.roster(), &answer).unwrap();
    assert_eq!(code, RejectCode::KeyRevoked, "{v:?}");
    assert_eq!(v.receipt.envelope_digest, after.envelope_digest());
    link.close().await;
    let refusals = h.node("BA.SPS").unwrap().store().refusals().unwrap();
    assert!(
        refusals.iter().any(|r| r.code == "key_revoked"),
        "{refusals:?}"
    );
    // Offline, the same envelope against the new roster: the error names
    // the key and when it was revoked.
    let err = kurir_proto::envelope::verify_envelope(&after.envelope, h.roster()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("key {kid} was revoked at {revoked_at}")),
        "{err}"
    );

    // The envelope signed before still verifies in the audit of BA.SPS's
    // log, whose bundle holds the roster that revokes the key.
    let data_dir = h.config("BA.SPS").unwrap().data_dir;
    h.stop("BA.SPS").await.unwrap();
    let store =
        kurir_relay::store::Store::open(&data_dir, kurir_relay::store::Durability::ProcessCrash)
            .unwrap();
    let bundle = kurir_relay::audit::collect(&store, h.now())
        .unwrap()
        .unwrap();
    store.close().unwrap();
    let out = h.dir().join("audit-ba");
    kurir_audit::bundle::write(&bundle, &out).unwrap();
    let verified = kurir_audit::load_verified(&out).unwrap();
    assert_eq!(
        verified.roster.version(),
        2,
        "the bundle's roster revokes the key"
    );
    assert_eq!(
        verified.envelopes, 1,
        "the envelope signed before revoked_at"
    );
    h.shutdown().await.unwrap();
}

/// A relay that accepted an envelope signed after the key's `revoked_at`
/// (before it had the roster that revokes the key) holds it in its log;
/// the offline audit of its bundle, which carries that roster, names the
/// envelope, the key and the time it was revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_names_an_envelope_signed_after_its_key_was_revoked() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).unwrap();
    h.own_roster_file("BA.SPS").unwrap();
    h.start("BA.SPS").await.unwrap();
    let key = h.message_key("RS.MUP").unwrap();
    let kid = KeyId::of(&key.verifying_key());
    let revoked_at = Timestamp(h.now().0 + 1);
    h.await_clock_past(revoked_at).await;

    // BA.SPS still has roster v1: the envelope, signed after revoked_at, is accepted.
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    assert!(header.created_at >= revoked_at);
    let late = h.seal_notice(header, &key).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&late.to_bytes()).await.unwrap();
    let receipt = kurir_proto::receipt::open_receipt(&answer, h.roster()).unwrap();
    assert_eq!(receipt.receipt.status, ReceiptStatus::Accepted);
    link.close().await;

    let rs = authority("RS.MUP").unwrap();
    let v2 = h
        .next_roster(
            |e| Ok(e.revoke_message_key(&rs, &kid, revoked_at)?),
            &[1, 2],
        )
        .unwrap();
    install_at(&h, "BA.SPS", "roster-v2.cbor", &v2);
    assert!(matches!(
        h.node("BA.SPS").unwrap().reload_roster().await.unwrap(),
        RosterReload::Applied { .. }
    ));
    let data_dir = h.config("BA.SPS").unwrap().data_dir;
    h.stop("BA.SPS").await.unwrap();
    let store =
        kurir_relay::store::Store::open(&data_dir, kurir_relay::store::Durability::ProcessCrash)
            .unwrap();
    let bundle = kurir_relay::audit::collect(&store, h.now())
        .unwrap()
        .unwrap();
    store.close().unwrap();
    let out = h.dir().join("audit-ba");
    kurir_audit::bundle::write(&bundle, &out).unwrap();
    let err = kurir_audit::load_verified(&out).unwrap_err().to_string();
    eprintln!("the audit of BA.SPS's bundle: {err}");
    assert!(
        err.contains(&format!(
            "envelope 1: key {kid} was revoked at {revoked_at}"
        )),
        "{err}"
    );
    h.shutdown().await.unwrap();
}
