//! Online backup and restore: a snapshot of a running relay taken while
//! officers submit, restored and started again; what the federation sees
//! of the messages acknowledged after the snapshot; and the
//! `kurir-relay backup` / `restore` commands end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kurir_proto::MessageId;
use kurir_relay::backup::backup;
use kurir_relay::store::{RestoreError, restore, verify_log};
use kurir_tests::{DUTY_OFFICER, Harness, STEP_TIMEOUT, await_final, logs, submit_notice};

/// `kurir-relay` itself (`src/bin/kurir-test-relay-cli.rs`).
const RELAY: &str = env!("CARGO_BIN_EXE_kurir-test-relay-cli");

const SENDER: &str = "RS.MUP";
const PEERS: [&str; 2] = ["BA.SPS", "ME.MUP"];

/// Messages a task submits until told to stop: each with whether its
/// submission started after `mark` was set, in the order acknowledged.
#[derive(Default)]
struct Flow {
    acked: Mutex<Vec<(MessageId, bool)>>,
    mark: AtomicBool,
    stop: AtomicBool,
}

impl Flow {
    fn acked(&self) -> Vec<(MessageId, bool)> {
        self.acked.lock().unwrap().clone()
    }

    async fn await_count(&self, n: usize) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while self.acked().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} acknowledged",
                self.acked().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every directory under `dir` is 0700 and every file 0600.
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// Waits until `check` holds, polling.
async fn await_that(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A backup of the sending relay taken while an officer submits holds
/// every message acknowledged before it started; restored and started, the
/// relay finds them all (each delivered, with its receipts), and its audit
/// log verifies. The messages acknowledged after the snapshot are gone
/// from it: the peers, which hold them and cosigned the longer log, refuse
/// to cosign the restored one and the relay raises the rollback alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_messages_flow_restores_every_message_acknowledged_before_it() {
    let mut h = Harness::new(&[SENDER, PEERS[0], PEERS[1]]).unwrap();
    h.set_checkpoint_interval(Duration::from_millis(200));
    for m in [SENDER, PEERS[0], PEERS[1]] {
        h.start(m).await.unwrap();
    }
    let data_dir = h.config(SENDER).unwrap().data_dir;
    let officer = h.officer(SENDER, DUTY_OFFICER).await.unwrap();
    let flow = Arc::new(Flow::default());
    let submitter = h.officer(SENDER, DUTY_OFFICER).await.unwrap();
    let sender = tokio::spawn({
        let (flow, officer) = (flow.clone(), submitter);
        async move {
            while !flow.stop.load(Ordering::SeqCst) {
                let after = flow.mark.load(Ordering::SeqCst);
                let id = submit_notice(&officer, &PEERS).await.unwrap();
                flow.acked.lock().unwrap().push((id, after));
            }
            officer.close().await;
        }
    });

    // A peer's message to the sender, acknowledged (delivered) before the
    // snapshot.
    let peer_officer = h.officer(PEERS[0], DUTY_OFFICER).await.unwrap();
    let received_before = submit_notice(&peer_officer, &[SENDER]).await.unwrap();
    let d = await_final(&peer_officer, received_before).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    flow.await_count(15).await;
    // Every message acknowledged before the snapshot is asked for.
    let before: Vec<MessageId> = flow.acked().iter().map(|(id, _)| *id).collect();
    let out = h.dir().join("backup-1");
    let report = backup(&data_dir, &out).await.unwrap();
    flow.mark.store(true, Ordering::SeqCst);
    assert!(report.online, "the running relay took the snapshot");
    assert!(
        report.snapshot.outbound >= before.len() as u64,
        "{report:?}"
    );
    assert_eq!(report.check.entries, report.snapshot.entries);
    assert_eq!(report.check.root, report.snapshot.root);
    assert!(report.snapshot.held < Duration::from_secs(1), "{report:?}");
    assert_private(&out);
    assert!(out.join("store-format").is_file());
    assert!(
        !data_dir.join(kurir_relay::store::STAGING).exists(),
        "the staged snapshot is removed once copied"
    );

    // A peer's message to the sender, delivered after the snapshot: the
    // peer holds the sender's receipt for it.
    let received_after = submit_notice(&peer_officer, &[SENDER]).await.unwrap();
    let d = await_final(&peer_officer, received_after).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    assert!(d[0].receipt.is_some(), "{d:?}");

    // Messages submitted after the snapshot, delivered to both peers.
    let n = flow.acked().len();
    flow.await_count(n + 12).await;
    flow.stop.store(true, Ordering::SeqCst);
    sender.await.unwrap();
    let acked = flow.acked();
    let after: Vec<MessageId> = acked
        .iter()
        .filter(|(_, a)| *a)
        .map(|(id, _)| *id)
        .collect();
    assert!(after.len() >= 10, "{}", after.len());
    for (id, _) in &acked {
        let d = await_final(&officer, *id).await.unwrap();
        assert!(d.iter().all(|d| d.state == "delivered"), "{d:?}");
    }
    // Both peers cosign well past the snapshot (what the restored relay
    // will hold when it asks them again).
    let me = kurir_tests::authority(SENDER).unwrap();
    let cosigned = |h: &Harness, peer: &str| {
        let w = h.node(peer).unwrap().store().witnessed(&me).unwrap();
        w.map_or(0, |w| w.size)
    };
    let bar = report.snapshot.entries + 40;
    await_that("the peers to cosign the longer log", || {
        PEERS.iter().all(|p| cosigned(&h, p) > bar)
    })
    .await;
    officer.close().await;

    // Restore: refused while running, and refused on a non-empty data
    // directory without --force.
    let refused = restore(&out, &data_dir, true, 1);
    assert!(
        matches!(refused, Err(RestoreError::Running(_))),
        "{refused:?}"
    );
    h.stop(SENDER).await.unwrap();
    let refused = restore(&out, &data_dir, false, 1);
    assert!(
        matches!(refused, Err(RestoreError::NotEmpty(_))),
        "{refused:?}"
    );
    let restored = restore(&out, &data_dir, true, 1).unwrap();
    let aside = restored.kept_aside.clone().unwrap();
    assert!(aside.join("db").is_file(), "the old data directory is kept");
    assert_private(&data_dir);
    assert_eq!(restored.check.entries, report.snapshot.entries);

    let started_at = logs::text().len();
    h.start(SENDER).await.unwrap();
    let officer = h.officer(SENDER, DUTY_OFFICER).await.unwrap();
    for id in &before {
        let d = await_final(&officer, *id).await.unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.iter().all(|d| d.state == "delivered"), "{id}: {d:?}");
    }
    let store = h.node(SENDER).unwrap().store();
    for id in &after {
        assert!(
            store.outbound(*id).unwrap().is_none(),
            "{id} was acknowledged after the snapshot"
        );
    }
    // Received before the snapshot: there; received after it: gone, while
    // the peer still shows it delivered, with the receipt, and does not
    // send it again.
    assert!(store.inbox(received_before).unwrap().is_some());
    assert!(store.inbox(received_after).unwrap().is_none());
    let d = await_final(&peer_officer, received_after).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    assert!(d[0].receipt.is_some(), "{d:?}");
    // The peers still hold every message, before and after.
    for peer in PEERS {
        let inbox: BTreeSet<MessageId> = h
            .node(peer)
            .unwrap()
            .store()
            .inbox_all()
            .unwrap()
            .iter()
            .map(|r| r.msg_id)
            .collect();
        for (id, _) in &acked {
            assert!(inbox.contains(id), "{peer} lacks {id}");
        }
    }
    // The peers cosigned more of the log than the restored relay holds.
    let node = h.node(SENDER).unwrap();
    await_that("the rollback alarm", || node.integrity_alarm().is_some()).await;
    let alarm = node.integrity_alarm().unwrap();
    assert!(alarm.contains("rolled back"), "{alarm}");
    let text = logs::text()[started_at..].to_owned();
    assert!(text.contains("audit log rollback detected"), "{text}");
    assert!(
        text.contains("refused to cosign a peer checkpoint"),
        "{text}"
    );
    assert!(text.contains("already cosigned: a rollback"), "{text}");
    assert!(
        store.inbox(received_after).unwrap().is_none(),
        "not sent again"
    );

    // The restored relay still delivers new messages; once its log grows
    // past what the peers cosigned, they refuse it as a fork: it differs
    // from the log they cosigned at that size.
    let witnessed = PEERS.iter().map(|p| cosigned(&h, p)).max().unwrap();
    let mut fresh = Vec::new();
    while (store.log_entries().unwrap().len() as u64) <= witnessed + 10 {
        fresh.push(submit_notice(&officer, &PEERS).await.unwrap());
    }
    for id in &fresh {
        let d = await_final(&officer, *id).await.unwrap();
        assert!(d.iter().all(|d| d.state == "delivered"), "{d:?}");
    }
    logs::await_line("a fork refusal", |l| {
        l.contains("refused to cosign a peer checkpoint") && l.contains("a fork")
    })
    .await
    .unwrap();
    officer.close().await;
    peer_officer.close().await;

    h.stop(SENDER).await.unwrap();
    let deadline = Instant::now() + STEP_TIMEOUT;
    let verified = loop {
        match verify_log(&data_dir) {
            Err(e) if e.to_string().contains("lock") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    let verified = verified.unwrap();
    assert!(verified.entries > report.snapshot.entries, "{verified:?}");
    h.shutdown().await.unwrap();
}

/// Runs `kurir-relay ARGS`: exit code, stdout, stderr.
fn relay(args: &[&str], paths: &[&Path]) -> (i32, String, String) {
    let out = Command::new(RELAY).args(args).args(paths).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kurir-relay backup` of a running relay, its refusals, `kurir-relay
/// restore` refused while the relay runs and on a non-empty data directory
/// without --force, then restoring with --force and starting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_commands_end_to_end() {
    let mut h = Harness::started(&[SENDER, PEERS[0]]).await.unwrap();
    let officer = h.officer(SENDER, DUTY_OFFICER).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit_notice(&officer, &[PEERS[0]]).await.unwrap());
    }
    officer.close().await;
    let config = h.config_path(SENDER).unwrap().to_owned();
    let data_dir = h.config(SENDER).unwrap().data_dir;
    let out = h.dir().join("nightly");

    // The admin socket: the relay's user only; anything but its two
    // requests is answered with an error.
    let socket = kurir_relay::backup::admin_socket(&data_dir);
    assert_eq!(mode(&socket), 0o600);
    let answer = tokio::task::spawn_blocking({
        let socket = socket.clone();
        move || {
            use std::io::{BufRead, Write};
            let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            s.write_all(b"export everything\n").unwrap();
            let mut line = String::new();
            std::io::BufReader::new(s).read_line(&mut line).unwrap();
            line
        }
    })
    .await
    .unwrap();
    assert!(answer.starts_with("error unknown request"), "{answer}");

    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let (config, out) = (config.clone(), out.clone());
        move || {
            relay(
                &["backup", "--config"],
                &[&config, Path::new("--out"), &out],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("running relay"), "{stdout}");
    for line in [
        "size: ",
        "log: ",
        "newest checkpoint: ",
        "commit: the log at ",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(stdout.contains("messages: 3 sent"), "{stdout}");
    assert_private(&out);
    // The backup is one file (and the body files, `store-format`), 0600.
    let file = out.join(kurir_relay::store::SNAPSHOT_FILE);
    assert_eq!(mode(&file), 0o600);
    assert!(!out.join("db").exists());

    // The same directory again: refused, nothing overwritten.
    let (code, _, stderr) = relay(
        &["backup", "--config"],
        &[&config, Path::new("--out"), &out],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");

    let (code, _, stderr) = relay(
        &["restore", "--from"],
        &[&out, Path::new("--config"), &config],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("a relay is running"), "{stderr}");

    h.stop(SENDER).await.unwrap();
    let (code, _, stderr) = relay(
        &["restore", "--from"],
        &[&out, Path::new("--config"), &config],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    let (code, stdout, stderr) = relay(
        &["restore", "--force", "--from"],
        &[&out, Path::new("--config"), &config],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("the old data directory is kept in"),
        "{stdout}"
    );
    assert_private(&data_dir);

    // A backup of the stopped relay works too.
    let offline = h.dir().join("offline");
    let (code, stdout, stderr) = relay(
        &["backup", "--config"],
        &[&config, Path::new("--out"), &offline],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("stopped relay"), "{stdout}");

    // A backup with one byte changed: refused, exit 1, the data directory
    // unchanged.
    let file = offline.join(kurir_relay::store::SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (code, stdout, stderr) = relay(
        &["restore", "--force", "--from"],
        &[&offline, Path::new("--config"), &config],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("does not check out"), "{stderr}");
    assert!(stderr.contains("SHA-256"), "{stderr}");

    h.start(SENDER).await.unwrap();
    let store = h.node(SENDER).unwrap().store().clone();
    for id in &ids {
        assert!(store.outbound(*id).unwrap().is_some(), "{id}");
    }
    h.shutdown().await.unwrap();
}
