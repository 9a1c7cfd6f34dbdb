//! A member that misbehaves, or a local user, against the relay's operation
//! (issue #13): the data directory private to the relay's user, the message
//! key chosen at each signature, resource bounds (stalled streams, officer
//! connections, address validation under many handshakes, the metrics
//! endpoint), and a member's expired CA that must not stop the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use kurir_certs::Roster;
use kurir_certs::authority::{self, InitParams};
use kurir_certs::files::Overwrite;
use kurir_certs::roster::{Editor, RosterKey, member_from_file};
use kurir_client::Client;
use kurir_demo::federation::LOCAL_HOST;
use kurir_proto::api::{ErrorCode, Request, Response, Submission};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{Attachment, Message, examples};
use kurir_proto::{KeyId, MessageId, Timestamp, open_receipt, verify_envelope};
use kurir_relay::clock::{Clock, ManualClock, SystemClock};
use kurir_tests::{
    AUDITOR, DUTY_OFFICER, Harness, POLL, PeerLink, STEP_TIMEOUT, authority as id, await_final,
    inbox, logs, notice_submission, request, submit_notice,
};

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

/// Appends `text` to the `relay.toml` of `who` (read at its next start).
fn configure(h: &Harness, who: &str, text: &str) {
    let path = h.config_path(who).unwrap();
    let mut config = std::fs::read_to_string(path).unwrap();
    config.push_str(text);
    std::fs::write(path, config).unwrap();
}

/// Signs the roster again with roster keys the test holds (the founding
/// keys are not kept), from the members' `member.json` as they are now,
/// with `change` applied; saves it as the federation's roster file.
fn sign_roster(h: &Harness, members: &[&str], change: impl FnOnce(&mut Editor)) -> Roster {
    let now = h.now();
    let keys: Vec<SigningKey> = (0..3)
        .map(|_| kurir_certs::keys::generate_ed25519().unwrap())
        .collect();
    let mut editor = Editor::create(
        2,
        keys.iter()
            .enumerate()
            .map(|(i, k)| RosterKey {
                label: format!("test roster key {i}"),
                key: k.verifying_key(),
            })
            .collect(),
        now,
    )
    .unwrap();
    for who in members {
        let file = h
            .authority_dir(who)
            .unwrap()
            .join(authority::layout::MEMBER);
        editor.add_member(member_from_file(&file).unwrap()).unwrap();
    }
    change(&mut editor);
    let mut signed = editor.finish(now).unwrap();
    signed.sign(&keys[0]);
    signed.sign(&keys[1]);
    signed.save(h.roster_path()).unwrap();
    Roster::load(h.roster_path(), None, now).unwrap()
}

// ---------------------------------------------------------------------
// The data directory private to the relay's user (item 4).

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// `dir` is 0700 and nothing in it grants the group or others anything;
/// returns how many files it holds.
fn assert_private(dir: &Path) -> usize {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} has mode {m:04o}", path.display());
            if path.is_dir() {
                pending.push(path);
            } else {
                files += 1;
            }
        }
    }
    files
}

/// An officer's notice with an attachment of 256 KiB: its body goes to a
/// body file of its own.
fn bulky_submission(to: &[&str]) -> Submission {
    let mut notice = examples::notice();
    notice.attachments = vec![Attachment {
        name: "scan.bin".into(),
        media_type: "application/octet-stream".into(),
        data: vec![0x5a; 256 * 1024],
    }];
    Submission {
        body: Message::OperationalNotice(notice).encode().unwrap(),
        ..notice_submission(to).unwrap()
    }
}

/// A relay's data directory and every file in it (sled's, the body files,
/// the checkpoint marker) are private to the relay's user. The relays run
/// with a small parcel limit, so QUIC's receive windows are bound to it,
/// and a parcel near that limit still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relays_data_dir_and_every_file_in_it_are_private() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    for who in ["RS.MUP", "BA.SPS"] {
        configure(&h, who, "\n[limits]\nmax_parcel_bytes = 300000\n");
        h.start(who).await.unwrap();
    }
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let msg_id = match request(&rs, &Request::Submit(bulky_submission(&["BA.SPS"])))
        .await
        .unwrap()
    {
        Response::Submitted { msg_id, .. } => msg_id,
        other => panic!("not submitted: {other:?}"),
    };
    assert_eq!(
        await_final(&rs, msg_id).await.unwrap()[0].state,
        "delivered"
    );
    rs.close().await;
    let data: Vec<_> = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|who| h.config(who).unwrap().data_dir)
        .collect();
    // Stopped: the last checkpoint and its marker are written.
    h.stop("RS.MUP").await.unwrap();
    h.stop("BA.SPS").await.unwrap();
    for dir in &data {
        let files = assert_private(dir);
        assert!(files >= 3, "{}: {files} files", dir.display());
        assert!(dir.join("last-checkpoint.note").exists());
        let bodies = std::fs::read_dir(dir.join("bodies")).unwrap().count();
        assert_eq!(bodies, 1, "the large body is in a body file");
        eprintln!(
            "{}: 0700, {files} files, none open to others",
            dir.display()
        );
    }
    h.shutdown().await.unwrap();
}

/// A data directory made readable by the group or others, or one file in
/// it, is refused at start, naming the path and saying how to fix it; once
/// fixed, the relay starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_others_may_read_is_refused_at_start_with_how_to_fix_it() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    h.start("BA.SPS").await.unwrap();
    h.stop("BA.SPS").await.unwrap();
    let data = h.config("BA.SPS").unwrap().data_dir;
    let fix = format!("chmod -R go-rwx {}", data.display());

    for (path, loose) in [(data.clone(), 0o755), (data.join("db"), 0o644)] {
        let before = mode(&path);
        chmod(&path, loose);
        let err = h
            .start("BA.SPS")
            .await
            .expect_err("a data dir open to others must be refused");
        let text = format!("{err:#}");
        eprintln!("mode {loose:04o}: the relay refused to start: {text}");
        assert!(
            text.contains(&format!("{} is open to other users", path.display())),
            "{text}"
        );
        assert!(text.contains(&format!("mode {loose:04o}")), "{text}");
        assert!(text.contains(&fix), "{text}");
        assert!(!h.is_running("BA.SPS").unwrap());
        chmod(&path, before);
    }
    h.start("BA.SPS").await.unwrap();
    h.shutdown().await.unwrap();
}

/// The demo (`kurir-demo --keep`): every relay's data directory is 0700
/// and no file in it is open to others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_data_directories_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    kurir_demo::run::run(Some(dir.clone()), true).await.unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = entry.unwrap().path().join("data");
        if data.is_dir() {
            assert_private(&data);
            seen += 1;
        }
    }
    assert_eq!(seen, 5, "five relays' data directories (AT.BMI joins)");
}

// ---------------------------------------------------------------------
// The message key chosen at each signature (item 7).

/// The key id that signed a stored parcel's envelope.
fn envelope_kid(roster: &Roster, stored: &[u8]) -> KeyId {
    let envelope = kurir_relay::store::Store::envelope(stored).unwrap();
    verify_envelope(&envelope, roster).unwrap().kid
}

fn kid(key: &kurir_proto::ed25519_dalek::VerifyingKey) -> KeyId {
    KeyId::of(key)
}

/// Both authorities' message keys are rotated: the first stops an hour
/// after the start, the second starts then. A relay started with the first
/// signs with the second from then on, envelopes and receipts alike, and
/// peers accept both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_message_key_expires_while_it_runs_signs_with_the_next_one() {
    let clock = ManualClock::new(SystemClock.now());
    let mut h = Harness::with_clock(&["RS.MUP", "BA.SPS"], Arc::new(clock.clone())).unwrap();
    let t0 = h.now();
    let mut rotated = Vec::new();
    for who in ["RS.MUP", "BA.SPS"] {
        let mut a = authority::Authority::open(h.authority_dir(who).unwrap()).unwrap();
        let second = a.rotate_message_key(t0.plus_millis(HOUR), 0, 730).unwrap();
        rotated.push(kid(&second));
    }
    let roster = sign_roster(&h, &["RS.MUP", "BA.SPS"], |_| {});
    let listed = |who: &str| {
        roster
            .member(&id(who).unwrap())
            .unwrap()
            .message_keys
            .iter()
            .map(|k| k.id())
            .collect::<Vec<_>>()
    };
    let (rs_keys, ba_keys) = (listed("RS.MUP"), listed("BA.SPS"));
    assert_eq!(rs_keys.len(), 2);
    assert_eq!(ba_keys.len(), 2);
    assert_eq!([rs_keys[1], ba_keys[1]], [rotated[0], rotated[1]]);
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();

    // Before the rotation: the first keys sign.
    let before = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    let d = await_final(&rs, before).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    let receipt = open_receipt(d[0].receipt.as_ref().unwrap(), &roster).unwrap();
    assert_eq!(receipt.kid, ba_keys[0]);

    // Two hours on: the first keys are no longer valid.
    clock.advance(2 * HOUR);
    let after = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    let d = await_final(&rs, after).await.unwrap();
    assert_eq!(
        d[0].state, "delivered",
        "BA.SPS must accept what RS.MUP signs after the rotation: {d:?}"
    );
    let receipt = open_receipt(d[0].receipt.as_ref().unwrap(), &roster).unwrap();
    assert_eq!(
        receipt.kid, ba_keys[1],
        "BA.SPS's receipt by its second key"
    );

    let store = h.node("RS.MUP").unwrap().store();
    let kid_of = |m: MessageId| envelope_kid(&roster, &store.outbound(m).unwrap().unwrap().parcel);
    assert_eq!(kid_of(before), rs_keys[0]);
    assert_eq!(
        kid_of(after),
        rs_keys[1],
        "RS.MUP's envelope by its second key"
    );
    let ba = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    assert_eq!(inbox(&ba).await.unwrap().len(), 2);
    rs.close().await;
    ba.close().await;
    h.shutdown().await.unwrap();
}

/// RS.MUP's only message key ends an hour after the start. Past its end the
/// relay signs nothing: an officer's submission is refused with a message
/// that says why and what to do, and a peer's parcel gets no receipt and is
/// not stored (the peer retries later); both are logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_message_key_valid_nothing_is_signed() {
    let clock = ManualClock::new(SystemClock.now());
    let mut h = Harness::with_clock(&["RS.MUP", "BA.SPS"], Arc::new(clock.clone())).unwrap();
    let t0 = h.now();
    let rs_id = id("RS.MUP").unwrap();
    sign_roster(&h, &["RS.MUP", "BA.SPS"], |e| {
        e.member_mut(&rs_id).unwrap().message_keys[0].valid_until = Some(t0.plus_millis(HOUR));
    });
    h.start("RS.MUP").await.unwrap();
    logs::await_line("warning that the message keys run out", |l| {
        l.contains("no later key is held")
    })
    .await
    .unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    clock.advance(2 * HOUR);

    match request(
        &rs,
        &Request::Submit(notice_submission(&["BA.SPS"]).unwrap()),
    )
    .await
    .unwrap()
    {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::Unavailable);
            assert!(
                message.starts_with("no message key of RS.MUP is valid at "),
                "{message}"
            );
            assert!(message.contains("rotate-key"), "{message}");
        }
        other => panic!("a submission with no valid key must be refused: {other:?}"),
    }
    assert!(
        h.node("RS.MUP")
            .unwrap()
            .store()
            .outbound_heads()
            .unwrap()
            .is_empty()
    );

    // BA.SPS (played by the test, its key valid) sends a parcel.
    let header = h.notice_header("BA.SPS", &["RS.MUP"]).unwrap();
    let ba_key = h.message_key("BA.SPS").unwrap();
    let parcel = h.seal_notice(header, &ba_key).unwrap();
    let link = h.peer_link("BA.SPS", "RS.MUP").await.unwrap();
    let answer = link.exchange(&parcel.to_bytes()).await;
    assert!(answer.is_err(), "no receipt may be signed: {answer:?}");
    logs::await_line("about the receipt not signed", |l| {
        l.contains("cannot sign a receipt") && l.contains("no message key of RS.MUP")
    })
    .await
    .unwrap();
    assert!(
        h.node("RS.MUP")
            .unwrap()
            .store()
            .inbox_all()
            .unwrap()
            .is_empty()
    );
    link.close().await;
    rs.close().await;
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// Resource bounds (item 9).

/// A peer that opens a stream and sends half a frame prefix, then nothing:
/// the relay stops the stream after `[limits] read_timeout_secs` instead of
/// holding it for good. The same for an officer's stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_stopped_after_the_read_deadline() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    configure(&h, "BA.SPS", "\n[limits]\nread_timeout_secs = 1\n");
    h.start("BA.SPS").await.unwrap();

    let peer = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let officer = {
        let dir = h.officer_dir("BA.SPS", DUTY_OFFICER).unwrap();
        let creds = kurir_certs::tls::Credentials::officer(dir).unwrap();
        let ca = authority::load_cert(&dir.join(kurir_certs::officer::officer_layout::CA)).unwrap();
        let tls =
            kurir_certs::tls::officer_client_config(&ca, &id("BA.SPS").unwrap(), &creds).unwrap();
        PeerLink::connect_tls(
            PeerLink::bind().unwrap(),
            tls,
            LOCAL_HOST,
            h.addr("BA.SPS").unwrap(),
        )
        .await
        .unwrap()
    };
    for (who, link) in [("peer", &peer), ("officer", &officer)] {
        let (mut send, mut recv) = link.connection().open_bi().await.unwrap();
        send.write_all(&[0, 0]).await.unwrap();
        let started = Instant::now();
        let stopped = tokio::time::timeout(STEP_TIMEOUT, send.stopped())
            .await
            .unwrap_or_else(|_| panic!("the {who}'s stalled stream was held for {STEP_TIMEOUT:?}"))
            .unwrap();
        assert_eq!(stopped, Some(3u32.into()), "stopped as stalled (code 3)");
        eprintln!(
            "the {who}'s stalled stream was stopped after {:?}",
            started.elapsed()
        );
        // Nothing comes back on it.
        let rest = tokio::time::timeout(STEP_TIMEOUT, recv.read_to_end(1024))
            .await
            .unwrap();
        assert!(rest.map(|b| b.is_empty()).unwrap_or(true));
    }
    // The connection itself still works: a full parcel on a new stream.
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let key = h.message_key("RS.MUP").unwrap();
    let parcel = h.seal_notice(header, &key).unwrap();
    let receipt = peer.exchange(&parcel.to_bytes()).await.unwrap();
    open_receipt(&receipt, h.roster()).unwrap();
    peer.close().await;
    officer.close().await;
    h.shutdown().await.unwrap();
}

/// Connects officer `name` of `who` and asks who it is; `Err` when the
/// relay refused the connection.
async fn whoami(h: &Harness, who: &str, name: &str) -> anyhow::Result<Client> {
    let client = h.officer(who, name).await?;
    match tokio::time::timeout(STEP_TIMEOUT, client.request(&Request::Whoami)).await? {
        Ok(Response::Identity { .. }) => Ok(client),
        Ok(other) => anyhow::bail!("whoami: {other:?}"),
        Err(e) => Err(e.into()),
    }
}

/// One officer certificate may hold `[limits] max_connections_per_officer`
/// connections at once: the next is refused and logged, another officer is
/// not affected, and a connection closed frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_officer_connection_cap_refuses_the_next_connection() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    configure(
        &h,
        "RS.MUP",
        "\n[limits]\nmax_connections_per_officer = 2\n",
    );
    h.start("RS.MUP").await.unwrap();
    let first = whoami(&h, "RS.MUP", DUTY_OFFICER).await.unwrap();
    let second = whoami(&h, "RS.MUP", DUTY_OFFICER).await.unwrap();
    let third = whoami(&h, "RS.MUP", DUTY_OFFICER).await;
    assert!(third.is_err(), "a third connection must be refused");
    logs::await_line("about the refused officer connection", |l| {
        l.contains("too many connections from this officer certificate")
            && l.contains("duty officer")
    })
    .await
    .unwrap();
    let auditor = whoami(&h, "RS.MUP", AUDITOR).await.unwrap();
    first.close().await;
    // The relay frees the slot once it has seen the close.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let again = loop {
        match whoami(&h, "RS.MUP", DUTY_OFFICER).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(POLL).await;
            }
            Err(e) => panic!("the slot was not freed: {e:#}"),
        }
    };
    for c in [second, again, auditor] {
        c.close().await;
    }
    h.shutdown().await.unwrap();
}

/// The value of the counter or gauge `name` (with its labels) in `/metrics`.
fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| unreachable!("{name} is not in /metrics"))
}

/// With `[limits] handshakes_before_retry = 0` every new connection must
/// first prove its address (a QUIC Retry): peers and officers still connect
/// and deliver. With the default, a lone connection is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_prove_their_address_when_handshakes_crowd() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    configure(
        &h,
        "BA.SPS",
        "\n[limits]\nhandshakes_before_retry = 0\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    configure(&h, "RS.MUP", "\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let msg_id = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    assert_eq!(
        await_final(&rs, msg_id).await.unwrap()[0].state,
        "delivered"
    );
    let ba = whoami(&h, "BA.SPS", DUTY_OFFICER).await.unwrap();
    assert_eq!(inbox(&ba).await.unwrap().len(), 1);

    let at_ba = kurir_tests::scrape_metrics(h.node("BA.SPS").unwrap().metrics_addr().unwrap())
        .await
        .unwrap();
    let at_rs = kurir_tests::scrape_metrics(h.node("RS.MUP").unwrap().metrics_addr().unwrap())
        .await
        .unwrap();
    let retried = metric(&at_ba, "kurir_retries_total");
    assert!(
        retried >= 2,
        "RS.MUP's dial and BA.SPS's officer: {retried}"
    );
    assert_eq!(metric(&at_rs, "kurir_retries_total"), 0);
    assert_eq!(metric(&at_ba, "kurir_refused_connections_total"), 0);
    // The store's commits and rows reach the metrics: at least the
    // message's (the relays' own audit entries add more).
    assert!(metric(&at_ba, "kurir_store_commits_total") >= 1);
    assert!(
        metric(&at_ba, "kurir_store_rows_total") >= 3,
        "inbox, log, number"
    );
    assert!(metric(&at_rs, "kurir_store_commits_total") >= 2);
    assert!(metric(&at_rs, "kurir_store_rows_total") >= 3 + 4 + 2);
    rs.close().await;
    ba.close().await;
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// A member's expired CA (item 11b).

/// ME.UP's CA is valid for one day. Two days on, RS.MUP and BA.SPS restart
/// (the roster they hold lists the expired CA), say which member's CA
/// expired, exchange with each other, and refuse ME.UP: its connections
/// Makes `who`'s authority again with a CA of one day at `t0` (its node
/// certificate stays valid for a year), and signs the roster of `members`
/// again with it.
fn short_lived_ca(h: &Harness, who: &str, t0: Timestamp, members: &[&str]) {
    authority::init(
        h.authority_dir(who).unwrap(),
        &InitParams {
            id: id(who).unwrap(),
            name: format!("{who}, short-lived CA"),
            relay_host: LOCAL_HOST.into(),
            relay_port: h.addr(who).unwrap().port(),
            ca_days: 1,
            node_days: 365,
            key_days: kurir_certs::authority::DEFAULT_KEY_DAYS,
            now: t0,
            overwrite: Overwrite::Replace,
        },
    )
    .unwrap();
    sign_roster(h, members, |_| {});
}

/// and their own dials to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_expired_ca_does_not_stop_the_others_from_restarting() {
    let clock = ManualClock::new(SystemClock.now());
    let members = ["RS.MUP", "BA.SPS", "ME.UP"];
    let mut h = Harness::with_clock(&members, Arc::new(clock.clone())).unwrap();
    let t0 = h.now();
    // ME.UP's authority made again with a CA of one day (its node
    // certificate stays valid for a year).
    short_lived_ca(&h, "ME.UP", t0, &members);
    for who in members {
        h.start(who).await.unwrap();
    }
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let both = submit_notice(&rs, &["BA.SPS", "ME.UP"]).await.unwrap();
    let d = await_final(&rs, both).await.unwrap();
    assert!(d.iter().all(|d| d.state == "delivered"), "{d:?}");
    rs.close().await;
    for who in members {
        h.stop(who).await.unwrap();
    }

    clock.advance(2 * DAY);
    h.start("RS.MUP").await.expect("RS.MUP must restart");
    h.start("BA.SPS").await.expect("BA.SPS must restart");
    let line = logs::await_line("about ME.UP's expired CA", |l| {
        l.contains("the CA certificate the roster lists for ME.UP is not valid")
    })
    .await
    .unwrap();
    eprintln!("the relay warned: {line}");

    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let to_ba = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    assert_eq!(await_final(&rs, to_ba).await.unwrap()[0].state, "delivered");

    // RS.MUP does not dial ME.UP: the delivery waits, saying why.
    let to_me = submit_notice(&rs, &["ME.UP"]).await.unwrap();
    let d = kurir_tests::await_deliveries(&rs, to_me, "retrying", |d| {
        d.len() == 1 && d[0].state == "retrying"
    })
    .await
    .unwrap();
    let reason = d[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("CA certificate the roster lists for ME.UP"),
        "{reason}"
    );

    // ME.UP's relay (its node certificate still valid) is refused.
    let link = h.peer_link("ME.UP", "RS.MUP").await;
    let refused = match link {
        Err(_) => true,
        Ok(link) => {
            let header = h.notice_header("ME.UP", &["RS.MUP"]).unwrap();
            let key = SigningKey::from_bytes(&[9; 32]);
            let parcel = h.seal_notice(header, &key).unwrap();
            link.exchange(&parcel.to_bytes()).await.is_err()
        }
    };
    assert!(refused, "ME.UP's connection must be refused");
    logs::await_line("about ME.UP's refused connection", |l| {
        l.contains("connection refused") && l.contains("ME.UP") && l.contains("not valid")
    })
    .await
    .unwrap();
    rs.close().await;
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// Expiry never disconnects (issue #14 item 6).

/// ME.UP's CA is valid for one day: RS.MUP's `/metrics` shows the seconds
/// left on its node certificate and CA (a year), on its message key, on
/// each member's CA (ME.UP's under a day) and the roster's age;
/// `/health/expiry` lists them; the log warns that ME.UP's CA expires
/// within a day, and the relays still exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_time_left_and_the_log_warns_ahead() {
    let members = ["RS.MUP", "BA.SPS", "ME.UP"];
    let mut h = Harness::new(&members).unwrap();
    let t0 = h.now();
    short_lived_ca(&h, "ME.UP", t0, &members);
    configure(&h, "RS.MUP", "\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    for who in members {
        h.start(who).await.unwrap();
    }
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let both = submit_notice(&rs, &["BA.SPS", "ME.UP"]).await.unwrap();
    let d = await_final(&rs, both).await.unwrap();
    assert!(d.iter().all(|d| d.state == "delivered"), "{d:?}");

    let addr = h.node("RS.MUP").unwrap().metrics_addr().unwrap();
    let text = kurir_tests::scrape_metrics(addr).await.unwrap();
    let year: i64 = 365 * 86_400;
    let node = metric(&text, "kurir_expiry_seconds{item=\"node_certificate\"}");
    assert!(node > year - 2 * 86_400 && node <= year + 86_400, "{node}");
    let ca = metric(&text, "kurir_expiry_seconds{item=\"authority_ca\"}");
    assert!(ca > 300 * 86_400, "{ca}");
    let me_ca = metric(&text, "kurir_member_ca_expiry_seconds{member=\"ME.UP\"}");
    assert!(me_ca > 0 && me_ca <= 86_400, "{me_ca}");
    let ba_ca = metric(&text, "kurir_member_ca_expiry_seconds{member=\"BA.SPS\"}");
    assert!(ba_ca > 300 * 86_400, "{ba_ca}");
    let age = metric(&text, "kurir_roster_age_seconds");
    assert!((0..3600).contains(&age), "{age}");
    let next = metric(&text, "kurir_message_key_next");
    assert!(next == 0 || next == 1, "{next}");
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("kurir_expiry_seconds{item=\"message_key\"}"))
    {
        let left: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(left > 0, "{line}");
    }

    let detail = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health/expiry HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(detail.starts_with("HTTP/1.1 200"), "{detail}");
    assert!(detail.contains("\nmember_ca:ME.UP "), "{detail}");
    assert!(detail.contains("\nnode_certificate "), "{detail}");
    assert!(detail.contains("\nroster_issued "), "{detail}");

    let line = logs::await_line("warning ahead of ME.UP's CA expiry", |l| {
        l.contains("WARN")
            && l.contains("the CA certificate the roster lists for ME.UP expires")
            && l.contains("within 1 day")
    })
    .await
    .unwrap();
    eprintln!("the relay warned: {line}");
    rs.close().await;
    h.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------
// What an operator alerts on (issue #15 item 5).

/// The value of the gauge `name` (with its labels) in `/metrics`, if the
/// series is there.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

/// Polls `/metrics` until `done` holds (within STEP_TIMEOUT).
async fn await_metrics(
    addr: std::net::SocketAddr,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let text = kurir_tests::scrape_metrics(addr).await.unwrap();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}:\n{text}");
        tokio::time::sleep(POLL).await;
    }
}

/// RS.MUP sends to BA.SPS, which is down: `/metrics` shows BA.SPS's queue
/// (depth 1, the oldest waiting), the failed attempts by reason
/// (`connect`), and `/health` stays ok. Once BA.SPS is up the delivery
/// goes through, the queue series is gone, and the latency is observed.
/// The endpoint keeps a connection open for a second request and says
/// what it serves (OpenMetrics text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_queue_waiting_for_a_peer_that_is_down_and_why() {
    let members = ["RS.MUP", "BA.SPS"];
    let mut h = Harness::new(&members).unwrap();
    configure(&h, "RS.MUP", "\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    h.start("RS.MUP").await.unwrap();
    let addr = h.node("RS.MUP").unwrap().metrics_addr().unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let msg = submit_notice(&rs, &["BA.SPS"]).await.unwrap();

    let failed = r#"kurir_delivery_attempt_failures_total{peer="BA.SPS",reason="connect",code=""}"#;
    let text = await_metrics(addr, "no failed attempt to BA.SPS counted", |t| {
        gauge(t, failed).is_some_and(|n| n >= 1.0)
    })
    .await;
    assert_eq!(
        gauge(&text, r#"kurir_queue_depth{peer="BA.SPS"}"#),
        Some(1.0)
    );
    let age = gauge(&text, r#"kurir_queue_oldest_age_seconds{peer="BA.SPS"}"#).unwrap();
    assert!(age >= 0.0, "{age}");
    // Grows while it waits.
    let waited = await_metrics(addr, "the oldest delivery's age did not grow", |t| {
        gauge(t, r#"kurir_queue_oldest_age_seconds{peer="BA.SPS"}"#).is_some_and(|a| a > age)
    })
    .await;
    assert_eq!(
        metric(&waited, "kurir_failed_total"),
        0,
        "not failed for good"
    );
    assert_eq!(gauge(&waited, "kurir_storage_health"), Some(0.0));
    assert_eq!(gauge(&waited, "kurir_integrity_alarm"), Some(0.0));

    // Two requests on one connection, and the content type.
    {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let mut c = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        for path in ["/health", "/metrics"] {
            c.get_mut()
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut head = vec![];
            loop {
                let mut line = String::new();
                c.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_ascii_lowercase());
            }
            assert_eq!(head[0], "http/1.1 200 ok", "{path}: {head:?}");
            let len: usize = head
                .iter()
                .find_map(|h| h.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            let mut body = vec![0; len];
            c.read_exact(&mut body).await.unwrap();
            if path == "/metrics" {
                assert!(
                    head.contains(
                        &"content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
                            .to_owned()
                    ),
                    "{head:?}"
                );
                assert!(body.ends_with(b"# EOF\n"));
            } else {
                assert_eq!(body, b"ok\n");
            }
        }
    }

    h.start("BA.SPS").await.unwrap();
    let d = await_final(&rs, msg).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    let text = await_metrics(addr, "the queue to BA.SPS is still shown", |t| {
        gauge(t, r#"kurir_queue_depth{peer="BA.SPS"}"#).is_none()
    })
    .await;
    assert!(gauge(&text, r#"kurir_queue_oldest_age_seconds{peer="BA.SPS"}"#).is_none());
    assert_eq!(metric(&text, "kurir_delivered_total"), 1);
    assert_eq!(metric(&text, "kurir_delivery_latency_seconds_count"), 1);
    rs.close().await;
    h.shutdown().await.unwrap();
}

/// The officer certificates this authority issued (`officers/`), on a
/// simulated clock: started 340 days after they were issued for 365, the
/// relay shows each one the CRL does not revoke as
/// `kurir_officer_cert_expiry_seconds{serial,name}` and in
/// `/health/expiry`, and warns 30 days ahead; the revoked one is left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_certificates_show_their_time_left_and_the_log_warns_ahead() {
    const DAY_MS: u64 = 86_400_000;
    let t0 = SystemClock.now();
    let clock = ManualClock::new(t0);
    let mut h = Harness::with_clock(&["RS.MUP", "BA.SPS"], Arc::new(clock.clone())).unwrap();
    configure(&h, "RS.MUP", "\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let serial_of = |name: &str| {
        let path = h
            .officer_dir("RS.MUP", name)
            .unwrap()
            .join("officer.crt.pem");
        let der = kurir_certs::authority::load_cert(&path).unwrap();
        kurir_certs::x509::CertInfo::parse(&der)
            .unwrap()
            .serial_hex()
    };
    let (duty, auditor) = (serial_of(DUTY_OFFICER), serial_of(AUDITOR));
    let ca = authority::Authority::open(h.authority_dir("RS.MUP").unwrap()).unwrap();
    kurir_certs::officer::revoke(&ca, &auditor, t0).unwrap();
    clock.advance(340 * DAY_MS);
    h.start("RS.MUP").await.unwrap();

    let addr = h.node("RS.MUP").unwrap().metrics_addr().unwrap();
    let text = kurir_tests::scrape_metrics(addr).await.unwrap();
    let left = metric(
        &text,
        &format!("kurir_officer_cert_expiry_seconds{{serial=\"{duty}\",name=\"{DUTY_OFFICER}\"}}"),
    );
    assert!(
        (24 * 86_400..=25 * 86_400).contains(&left),
        "{left} seconds left"
    );
    assert!(
        !text.contains(&format!("serial=\"{auditor}\"")),
        "the revoked certificate is not watched:\n{text}"
    );
    let detail = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health/expiry HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(
        detail.contains(&format!("\nofficer_certificate:{duty} ")),
        "{detail}"
    );
    assert!(!detail.contains(&auditor), "{detail}");
    let line = logs::await_line("warning ahead of the officer certificate's expiry", |l| {
        l.contains("WARN")
            && l.contains(&format!(
                "the officer certificate of {DUTY_OFFICER} (serial {duty}) expires"
            ))
            && l.contains("within 30 days")
    })
    .await
    .unwrap();
    eprintln!("the relay warned: {line}");
    h.shutdown().await.unwrap();
}
