//! The roster while relays run (issue #14 items 1 and 2): a newer roster
//! installed with `kurir-relay roster install` (the library function the
//! command runs) and taken by the running relay on SIGHUP
//! (`Node::reload_roster`, called here directly) or by its periodic file
//! check (`[roster] check_secs`, here 200 ms); a member added exchanges with
//! everyone and a member removed is refused, with no restart; forged, older
//! and conflicting rosters are refused and the roster in force stays; a
//! relay whose roster file is behind the roster it adopted starts with the
//! adopted one; deliveries queued for a member removed end as `failed`
//! (`not_a_member`).
//!
//! Each relay reads a roster file of its own ([`Harness::own_roster_file`]),
//! so a roster installed at one relay reaches the others only through the
//! relays themselves (`rosters` control requests, every checkpoint
//! interval and at once after a roster is put in force).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kurir_proto::api::{Request, Response};
use kurir_proto::audit::serde_bytes_vec::Bytes;
use kurir_proto::audit::{PeerRequest, PeerResponse};
use kurir_relay::install::{InstallError, Installed, install};
use kurir_relay::node::{RosterRefused, RosterReload};
use kurir_tests::witness::HostileWitness;
use kurir_tests::{
    DUTY_OFFICER, Harness, POLL, STEP_TIMEOUT, authority, await_deliveries, await_final, inbox,
    logs, notice_submission, request, submit_notice,
};

const FOUR: [&str; 4] = ["RS.MUP", "BA.SPS", "ME.UP", "MK.MVR"];

/// Writes `bytes` to a file in the harness's directory and installs it for
/// `who` with `roster install`.
fn install_at(h: &Harness, who: &str, name: &str, bytes: &[u8]) -> Result<Installed, InstallError> {
    let file = h.dir().join(name);
    std::fs::write(&file, bytes).unwrap();
    install(h.config_path(who).unwrap(), &file, h.now())
}

/// Waits until the relay of `who` has roster `version` in force (at most
/// [`STEP_TIMEOUT`]).
async fn await_version(h: &Harness, who: &str, version: u64) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let (v, _) = h.node(who).unwrap().roster_in_force();
        if v == version {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} still has roster version {v}, not {version}, after {STEP_TIMEOUT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A notice from `from` to `to`, delivered (the sender verified the
/// receipt against its roster in force).
async fn exchange(h: &Harness, from: &str, to: &[&str]) {
    let officer = h.officer(from, DUTY_OFFICER).await.unwrap();
    let id = submit_notice(&officer, to).await.unwrap();
    let done = await_final(&officer, id).await.unwrap();
    assert_eq!(done.len(), to.len(), "{done:?}");
    for d in &done {
        assert_eq!(d.state, "delivered", "{from} to {}: {d:?}", d.peer);
    }
}

/// The number of messages from `from` in the inbox of `who`, and that no
/// message id is there twice.
async fn inbox_from(h: &Harness, who: &str, from: &str) -> usize {
    let officer = h.officer(who, DUTY_OFFICER).await.unwrap();
    let items = inbox(&officer).await.unwrap();
    let mut ids: Vec<_> = items.iter().map(|s| s.msg_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "a message twice in {who}'s inbox");
    let from = authority(from).unwrap();
    items.iter().filter(|s| s.from == from).count()
}

/// The checkpoint interval of the relays in the distribution test: each
/// relay asks every member for its roster this often.
const INTERVAL: Duration = Duration::from_secs(2);

/// Waits until every relay in `who` has roster `version` in force, at
/// most `within`; returns how long it took.
async fn await_adopted(h: &Harness, who: &[&str], version: u64, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let behind: Vec<_> = who
            .iter()
            .filter(|w| h.node(w).unwrap().roster_in_force().0 != version)
            .collect();
        if behind.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{behind:?} did not adopt roster version {version} within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Issue #14, "Done when": four relays run; roster v2 adding AT.BMI is
/// installed at RS.MUP alone (`roster install`, then SIGHUP) and BA.SPS,
/// ME.UP and MK.MVR adopt it from their peers within two checkpoint
/// intervals, with no restart; AT.BMI starts and exchanges verified notices
/// both ways with all four; v3 removing MK.MVR, installed at RS.MUP alone,
/// is adopted the same way, MK.MVR's connections are closed and its new
/// ones refused, and no officer can address it; messages sent throughout
/// are each delivered once; a forged v4 (one signature of the two
/// required), offered by a peer, is refused by every relay, counted as an
/// alarm, and never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rosters_installed_at_one_relay_reach_every_relay() {
    let mut h = Harness::new(&FOUR).unwrap();
    h.set_checkpoint_interval(INTERVAL);
    // Each relay reads its own file, checked only once an hour: a roster
    // reaches a relay whose file was not touched only through its peers.
    h.set_roster_check(Duration::from_secs(3600));
    for who in FOUR {
        h.own_roster_file(who).unwrap();
        h.start(who).await.unwrap();
    }
    exchange(&h, "RS.MUP", &["BA.SPS", "ME.UP", "MK.MVR"]).await;

    // Before v2 no relay knows AT.BMI.
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let refused = request(
        &rs,
        &Request::Submit(notice_submission(&["AT.BMI"]).unwrap()),
    )
    .await
    .unwrap();
    assert!(matches!(refused, Response::Error { .. }), "{refused:?}");

    let entry = h.join("AT.BMI").unwrap();
    let v2 = h
        .next_roster(|e| Ok(e.add_member(entry)?), &[0, 1])
        .unwrap();
    match install_at(&h, "RS.MUP", "roster-v2.cbor", &v2).unwrap() {
        Installed::Written { version, from, .. } => assert_eq!((from, version), (1, 2)),
        other => panic!("v2 not written: {other:?}"),
    }
    // A message sent while the others take v2 is delivered once.
    let during = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    // SIGHUP.
    match h.node("RS.MUP").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { change, .. } => {
            assert_eq!(change.added, vec![authority("AT.BMI").unwrap()]);
            assert!(change.removed.is_empty());
        }
        other => panic!("v2 not applied at RS.MUP: {other:?}"),
    }
    let took = await_adopted(&h, &["BA.SPS", "ME.UP", "MK.MVR"], 2, 2 * INTERVAL).await;
    eprintln!("v2 reached the three other relays in {took:?}");
    let done = await_final(&rs, during).await.unwrap();
    assert_eq!(done[0].state, "delivered", "{done:?}");
    let line = logs::await_line("about v2 from a peer", |l| {
        l.contains("new roster in force, from a peer") && l.contains("added=AT.BMI")
    })
    .await
    .unwrap();
    eprintln!("a relay logged: {line}");

    // AT.BMI starts with v2 and exchanges with all four, both ways.
    h.adopt_roster(&v2).unwrap();
    h.own_roster_file("AT.BMI").unwrap();
    h.start("AT.BMI").await.unwrap();
    exchange(&h, "AT.BMI", &FOUR).await;
    for who in FOUR {
        exchange(&h, who, &["AT.BMI"]).await;
    }
    assert_eq!(inbox_from(&h, "AT.BMI", "RS.MUP").await, 1);
    for who in FOUR {
        assert_eq!(inbox_from(&h, who, "AT.BMI").await, 1, "{who}");
    }

    // v3 removes MK.MVR; installed at RS.MUP alone.
    let mk = authority("MK.MVR").unwrap();
    let v3 = h
        .next_roster(|e| Ok(e.remove_member(&mk).map(drop)?), &[1, 2])
        .unwrap();
    // MK.MVR has a connection open to RS.MUP before the change.
    exchange(&h, "MK.MVR", &["RS.MUP"]).await;
    install_at(&h, "RS.MUP", "roster-v3.cbor", &v3).unwrap();
    let ba = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    let during = submit_notice(&ba, &["ME.UP", "AT.BMI"]).await.unwrap();
    match h.node("RS.MUP").unwrap().reload_roster().await.unwrap() {
        RosterReload::Applied { change, closed } => {
            assert_eq!(change.removed, vec![mk.clone()]);
            assert!(closed >= 1, "MK.MVR's connection to RS.MUP was not closed");
        }
        other => panic!("v3 not applied at RS.MUP: {other:?}"),
    }
    let took = await_adopted(&h, &["BA.SPS", "ME.UP", "AT.BMI"], 3, 2 * INTERVAL).await;
    eprintln!("v3 reached the other members in {took:?}");
    h.adopt_roster(&v3).unwrap();
    for d in await_final(&ba, during).await.unwrap() {
        assert_eq!(d.state, "delivered", "{d:?}");
    }

    // No officer can address MK.MVR any more.
    let refused = request(
        &rs,
        &Request::Submit(notice_submission(&["MK.MVR"]).unwrap()),
    )
    .await
    .unwrap();
    match refused {
        Response::Error { message, .. } => assert!(message.contains("MK.MVR"), "{message}"),
        other => panic!("a submission to a removed member was accepted: {other:?}"),
    }
    // MK.MVR's new connections are refused: its delivery to RS.MUP retries.
    let mk_officer = h.officer("MK.MVR", DUTY_OFFICER).await.unwrap();
    let refused_id = submit_notice(&mk_officer, &["RS.MUP"]).await.unwrap();
    let d = await_deliveries(&mk_officer, refused_id, "retrying", |d| {
        d.iter().all(|s| s.state == "retrying" && s.attempts >= 1)
    })
    .await
    .unwrap();
    eprintln!("MK.MVR's delivery to RS.MUP after v3: {d:?}");
    // The remaining members still exchange; each message arrived once.
    exchange(&h, "AT.BMI", &["RS.MUP", "BA.SPS", "ME.UP"]).await;
    assert_eq!(inbox_from(&h, "RS.MUP", "MK.MVR").await, 1);
    assert_eq!(inbox_from(&h, "BA.SPS", "RS.MUP").await, 2);
    assert_eq!(inbox_from(&h, "ME.UP", "BA.SPS").await, 1);
    assert_eq!(inbox_from(&h, "AT.BMI", "BA.SPS").await, 2);

    // A forged v4 (one signature of two), offered by ME.UP played by the
    // test: every relay that asks it refuses it.
    let forged = h
        .next_roster(
            |e| {
                e.member_mut(&authority("BA.SPS")?)?.name = "forged".into();
                Ok(())
            },
            &[0],
        )
        .unwrap();
    let forged_fp = kurir_certs::SignedRoster::decode(&forged)
        .unwrap()
        .fingerprint();
    h.stop("ME.UP").await.unwrap();
    let offered = forged.clone();
    let answer = std::sync::Arc::new(move |request: &PeerRequest| match request {
        PeerRequest::Rosters { .. } => PeerResponse::Rosters {
            version: 4,
            fingerprint: forged_fp.clone(),
            chain: vec![Bytes(offered.clone())],
        },
        _ => PeerResponse::Refused {
            reason: "not today".into(),
            witnessed_size: 0,
        },
    });
    let hostile = HostileWitness::start_after_stop(&mut h, "ME.UP", answer)
        .await
        .unwrap();
    let honest = ["RS.MUP", "BA.SPS", "AT.BMI"];
    let alarms = |h: &Harness| -> Vec<u64> {
        honest
            .iter()
            .map(|w| h.node(w).unwrap().metrics().roster_alarms.get())
            .collect()
    };
    let deadline = Instant::now() + STEP_TIMEOUT;
    while alarms(&h).contains(&0) {
        assert!(Instant::now() < deadline, "alarms {:?}", alarms(&h));
        tokio::time::sleep(POLL).await;
    }
    for w in honest {
        assert_eq!(
            h.node(w).unwrap().roster_in_force().0,
            3,
            "{w} took the forged roster"
        );
    }
    let line = logs::await_line("about the forged roster", |l| {
        l.contains("a roster from a peer refused") && l.contains("ME.UP")
    })
    .await
    .unwrap();
    eprintln!("a relay logged: {line}");
    hostile.close().await;
    h.shutdown().await.unwrap();
}

/// `roster install` and the running relay refuse a roster with one
/// signature of the two required, the roster in force put back (older),
/// and another roster of the same version; each says why, and the roster
/// in force stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_older_and_conflicting_rosters_are_refused() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    h.set_roster_check(Duration::from_millis(200));
    let path = h.own_roster_file("RS.MUP").unwrap();
    let v1 = std::fs::read(&path).unwrap();
    h.start("RS.MUP").await.unwrap();

    let ba = authority("BA.SPS").unwrap();
    let rename = |e: &mut kurir_certs::roster::Editor, name: &str| {
        e.member_mut(&ba)?.name = name.into();
        Ok(())
    };
    let forged = h.next_roster(|e| rename(e, "forged"), &[0]).unwrap();
    let err = install_at(&h, "RS.MUP", "forged.cbor", &forged).unwrap_err();
    let text = err.to_string();
    eprintln!("roster install said: {text}");
    assert!(matches!(err, InstallError::Refused { .. }), "{text}");
    assert!(text.contains("signatures"), "{text}");
    // Put in the file directly, the relay refuses it too.
    std::fs::write(&path, &forged).unwrap();
    let refused = h.node("RS.MUP").unwrap().reload_roster().await.unwrap_err();
    assert!(matches!(refused, RosterRefused::Invalid(_)), "{refused}");
    assert_eq!(h.node("RS.MUP").unwrap().roster_in_force().0, 1);

    let v2 = h.next_roster(|e| rename(e, "version 2"), &[0, 2]).unwrap();
    install_at(&h, "RS.MUP", "v2.cbor", &v2).unwrap();
    await_version(&h, "RS.MUP", 2).await;

    // v1 again: older. roster install refuses it; in the file it is behind.
    let err = install_at(&h, "RS.MUP", "v1.cbor", &v1).unwrap_err();
    eprintln!("roster install said: {err}");
    assert!(err.to_string().contains("rollback"), "{err}");
    std::fs::write(&path, &v1).unwrap();
    let behind = h.node("RS.MUP").unwrap().reload_roster().await.unwrap();
    assert_eq!(
        behind,
        RosterReload::Behind {
            file: 1,
            in_force: 2
        }
    );

    // Another version 2, properly signed: a conflict.
    h.adopt_roster(&v1).ok();
    let other = h
        .next_roster(|e| rename(e, "other version 2"), &[1, 2])
        .unwrap();
    let err = install_at(&h, "RS.MUP", "other.cbor", &other).unwrap_err();
    eprintln!("roster install said: {err}");
    assert!(err.to_string().contains("version 2"), "{err}");
    std::fs::write(&path, &other).unwrap();
    let refused = h.node("RS.MUP").unwrap().reload_roster().await.unwrap_err();
    eprintln!("the relay said: {refused}");
    let (version, fingerprint) = h.node("RS.MUP").unwrap().roster_in_force();
    assert_eq!(version, 2);
    assert_eq!(
        fingerprint,
        kurir_certs::Roster::verify(&v2, h.now())
            .unwrap()
            .fingerprint()
    );
    let line = logs::await_line("about the refused roster", |l| {
        l.contains("roster refused; the roster in force stays")
    })
    .await
    .unwrap();
    eprintln!("the relay logged: {line}");
    h.shutdown().await.unwrap();
}

/// A relay that adopted a newer roster while it ran starts again although
/// its roster file is older: it uses the stored roster and warns that the
/// file is behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_starts_with_the_adopted_roster_when_its_file_is_behind() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    let path = h.own_roster_file("RS.MUP").unwrap();
    let v1 = std::fs::read(&path).unwrap();
    h.start("RS.MUP").await.unwrap();
    let ba = authority("BA.SPS").unwrap();
    let v2 = h
        .next_roster(
            |e| {
                e.member_mut(&ba)?.name = "version 2".into();
                Ok(())
            },
            &[0, 1],
        )
        .unwrap();
    std::fs::write(&path, &v2).unwrap();
    let applied = h.node("RS.MUP").unwrap().reload_roster().await.unwrap();
    assert!(
        matches!(applied, RosterReload::Applied { .. }),
        "{applied:?}"
    );
    h.stop("RS.MUP").await.unwrap();

    std::fs::write(&path, &v1).unwrap();
    h.start("RS.MUP").await.unwrap();
    assert_eq!(h.node("RS.MUP").unwrap().roster_in_force().0, 2);
    let line = logs::await_line("about the file behind", |l| {
        l.contains("the roster file is behind the roster this relay adopted")
    })
    .await
    .unwrap();
    eprintln!("the relay logged: {line}");
    h.start("BA.SPS").await.unwrap();
    exchange(&h, "RS.MUP", &["BA.SPS"]).await;
    h.shutdown().await.unwrap();
}

/// Deliveries queued for a member that a new roster removes end at once
/// as `failed` with reason `not_a_member`: logged, counted in
/// `kurir_delivery_failures_total{reason="not_a_member"}`, with a `failed`
/// audit entry; a restart does not reopen them, and the member added again
/// later receives only what is sent to it after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_for_a_removed_member_end_as_failed_not_a_member() {
    let mut h = Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).unwrap();
    h.set_roster_check(Duration::from_secs(3600));
    h.own_roster_file("RS.MUP").unwrap();
    let config = h.config_path("RS.MUP").unwrap().to_owned();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).unwrap();
    h.start("RS.MUP").await.unwrap();
    // ME.UP never starts (yet): the deliveries to it wait.
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let ids = [
        submit_notice(&rs, &["ME.UP"]).await.unwrap(),
        submit_notice(&rs, &["ME.UP"]).await.unwrap(),
    ];
    for id in ids {
        await_deliveries(&rs, id, "retrying", |d| {
            d.iter().all(|s| s.state == "retrying")
        })
        .await
        .unwrap();
    }
    let me = authority("ME.UP").unwrap();
    let mut removed = None;
    let v2 = h
        .next_roster(
            |e| {
                removed = Some(e.remove_member(&me)?);
                Ok(())
            },
            &[0, 1],
        )
        .unwrap();
    install_at(&h, "RS.MUP", "v2.cbor", &v2).unwrap();
    let applied = h.node("RS.MUP").unwrap().reload_roster().await.unwrap();
    assert!(
        matches!(applied, RosterReload::Applied { .. }),
        "{applied:?}"
    );
    let is_failed = |d: &[kurir_proto::api::DeliveryStatus]| {
        d.len() == 1
            && d[0].state == "failed"
            && d[0].reason.as_deref() == Some("not_a_member")
            && d[0].is_final()
    };
    for id in ids {
        // The status is final at once: `await_final` returns it.
        let d = await_final(&rs, id).await.unwrap();
        assert!(is_failed(&d), "{id}: {d:?}");
    }
    let line = logs::await_line("the ended deliveries logged", |l| {
        l.contains("ended undelivered") && l.contains("not_a_member")
    })
    .await
    .unwrap();
    eprintln!("the relay logged: {line}");
    let failed_entries = |h: &Harness| -> Vec<kurir_proto::audit::Entry> {
        h.log("RS.MUP")
            .unwrap()
            .into_iter()
            .filter(|e| e.event == kurir_proto::audit::Event::Failed)
            .collect()
    };
    let entries = failed_entries(&h);
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (e, id) in entries.iter().zip(ids) {
        assert_eq!(e.msg_id, Some(id));
        assert_eq!(e.peer.as_ref(), Some(&me));
        assert_eq!(e.code.as_deref(), Some("not_a_member"));
    }
    let addr = h.node("RS.MUP").unwrap().metrics_addr().unwrap();
    let metrics = kurir_tests::scrape_metrics(addr).await.unwrap();
    let counted = r#"kurir_delivery_failures_total{peer="ME.UP",reason="not_a_member",code=""} 2"#;
    assert!(metrics.contains(counted), "{metrics}");
    assert!(
        !metrics.contains(r#"kurir_queue_depth{peer="ME.UP"}"#),
        "the queue to ME.UP is empty"
    );

    // A restart does not reopen them.
    h.restart("RS.MUP").await.unwrap();
    assert_eq!(h.node("RS.MUP").unwrap().roster_in_force().0, 2);
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    for id in ids {
        let d = request(
            &rs,
            &Request::Status {
                msg_id: id,
                wait_ms: None,
            },
        )
        .await
        .unwrap();
        let Response::Status { deliveries, .. } = d else {
            panic!("{d:?}");
        };
        assert!(is_failed(&deliveries), "after a restart: {deliveries:?}");
    }
    assert_eq!(failed_entries(&h).len(), 2, "no second entry");

    // ME.UP is added again (v3) and starts: it gets a new notice, not the
    // two that ended.
    h.adopt_roster(&v2).unwrap();
    let member = removed.unwrap();
    let v3 = h
        .next_roster(|e| Ok(e.add_member(member)?), &[0, 2])
        .unwrap();
    install_at(&h, "RS.MUP", "v3.cbor", &v3).unwrap();
    let applied = h.node("RS.MUP").unwrap().reload_roster().await.unwrap();
    assert!(
        matches!(applied, RosterReload::Applied { .. }),
        "{applied:?}"
    );
    h.adopt_roster(&v3).unwrap();
    h.start("ME.UP").await.unwrap();
    let fresh = submit_notice(&rs, &["ME.UP"]).await.unwrap();
    let d = await_final(&rs, fresh).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    for id in ids {
        let d = request(
            &rs,
            &Request::Status {
                msg_id: id,
                wait_ms: None,
            },
        )
        .await
        .unwrap();
        let Response::Status { deliveries, .. } = d else {
            panic!("{d:?}");
        };
        assert!(
            is_failed(&deliveries),
            "after ME.UP's return: {deliveries:?}"
        );
    }
    let me_officer = h.officer("ME.UP", DUTY_OFFICER).await.unwrap();
    let got: Vec<_> = inbox(&me_officer)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.msg_id)
        .collect();
    assert_eq!(got, vec![fresh], "ME.UP holds only the message sent after");
    h.shutdown().await.unwrap();
}
