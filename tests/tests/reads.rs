//! Handling levels and reads through real relays (issue #13 item 5): who
//! may read a body, and every read of one in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kurir_certs::officer::Role;
use kurir_client::Client;
use kurir_proto::MessageId;
use kurir_proto::api::{ErrorCode, Request, Response, Submission};
use kurir_proto::audit::Entry;
use kurir_proto::message::Handling;
use kurir_tests::{
    AUDITOR, DUTY_OFFICER, Harness, await_final, notice_submission, request, submit_notice,
};

/// The officer every member lists as its focal point in the roster.
const FOCAL: &str = "focal point";
/// An admin at every member.
const ADMIN: &str = "relay admin";

/// RS.MUP and BA.SPS, each with [`FOCAL`] (an officer the roster names as
/// focal point) and [`ADMIN`] besides the duty officer and the auditor.
fn federation() -> Harness {
    Harness::with_people(
        &["RS.MUP", "BA.SPS"],
        &[(FOCAL, Role::Officer), (ADMIN, Role::Admin)],
        &[FOCAL],
    )
    .unwrap()
}

/// Sends the example notice at `handling` from RS.MUP to BA.SPS and waits
/// for its delivery.
async fn delivered(h: &Harness, handling: Handling) -> MessageId {
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let s = Submission {
        handling,
        ..notice_submission(&["BA.SPS"]).unwrap()
    };
    let msg_id = match request(&rs, &Request::Submit(s)).await.unwrap() {
        Response::Submitted { msg_id, .. } => msg_id,
        other => unreachable!("submission refused: {other:?}"),
    };
    let d = await_final(&rs, msg_id).await.unwrap();
    assert_eq!(d[0].state, "delivered", "{d:?}");
    rs.close().await;
    msg_id
}

/// A body fetch.
async fn fetch(c: &Client, msg_id: MessageId) -> Response {
    request(c, &body_request(msg_id)).await.unwrap()
}

fn body_request(msg_id: MessageId) -> Request {
    Request::Fetch {
        msg_id,
        envelope_only: false,
    }
}

/// The certificate serial of officer `name` of `who`.
fn serial(h: &Harness, who: &str, name: &str) -> String {
    let cert = h
        .officer_dir(who, name)
        .unwrap()
        .join(kurir_certs::officer::officer_layout::CERT);
    kurir_certs::officer::serial_of(cert.to_str().unwrap()).unwrap()
}

/// The audit entries of `who` about `msg_id` whose event is one of `events`.
fn entries(h: &Harness, who: &str, msg_id: MessageId, events: &[&str]) -> Vec<Entry> {
    h.log(who)
        .unwrap()
        .into_iter()
        .filter(|e| e.msg_id == Some(msg_id) && events.contains(&e.event.as_str()))
        .collect()
}

/// The error code and message of a refused request.
fn refused(r: Response) -> (ErrorCode, String) {
    match r {
        Response::Error { code, message } => (code, message),
        other => unreachable!("expected a refusal, got {other:?}"),
    }
}

/// An H3 body is refused to an officer the roster does not name as a focal
/// point of the receiving authority, with `Forbidden` saying the level and
/// who may read it, and logged as `body_refused`; the focal point reads it,
/// logged as `body_read`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h3_body_is_read_only_by_a_focal_point() {
    let mut h = federation();
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let msg_id = delivered(&h, Handling::H3).await;

    let duty = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    let (code, message) = refused(fetch(&duty, msg_id).await);
    assert_eq!(code, ErrorCode::Forbidden, "{message}");
    assert!(message.contains("H3"), "{message}");
    assert!(message.contains(FOCAL), "names who may read it: {message}");
    assert!(message.contains(DUTY_OFFICER), "{message}");

    let focal = h.officer("BA.SPS", FOCAL).await.unwrap();
    match fetch(&focal, msg_id).await {
        Response::Message { parcel, .. } => {
            let parcel = kurir_proto::Parcel::from_bytes(&parcel).unwrap();
            kurir_proto::verify(parcel, h.roster()).unwrap();
        }
        other => unreachable!("the focal point could not read: {other:?}"),
    }

    let log = entries(&h, "BA.SPS", msg_id, &["body_read", "body_refused"]);
    let seen: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|e| (e.event.as_str(), e.officer.as_deref()))
        .collect();
    let (duty_serial, focal_serial) = (
        serial(&h, "BA.SPS", DUTY_OFFICER),
        serial(&h, "BA.SPS", FOCAL),
    );
    assert_eq!(
        seen,
        [
            ("body_refused", Some(duty_serial.as_str())),
            ("body_read", Some(focal_serial.as_str())),
        ]
    );
    let code = log[0].code.as_deref().unwrap_or_default();
    assert!(code.contains("not_a_focal_point"), "{code}");
    assert!(code.contains(DUTY_OFFICER), "{code}");
    let code = log[1].code.as_deref().unwrap_or_default();
    assert_eq!(code, format!("officer {FOCAL}"));

    // A sent H3 message is governed the same way at the sender.
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let (code, message) = refused(fetch(&rs, msg_id).await);
    assert_eq!(code, ErrorCode::Forbidden, "{message}");
    let rs_focal = h.officer("RS.MUP", FOCAL).await.unwrap();
    assert!(matches!(
        fetch(&rs_focal, msg_id).await,
        Response::Message { .. }
    ));

    for c in [duty, focal, rs, rs_focal] {
        c.close().await;
    }
    h.shutdown().await.unwrap();
}

/// Auditors and admins read no body, whatever its level, and each refusal
/// is logged; they fetch the envelope, which verifies against the roster
/// and is no read (nothing logged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_and_admins_read_no_body() {
    let mut h = federation();
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let msg_id = delivered(&h, Handling::H0).await;

    for who in [AUDITOR, ADMIN] {
        let c = h.officer("BA.SPS", who).await.unwrap();
        let (code, message) = refused(fetch(&c, msg_id).await);
        assert_eq!(code, ErrorCode::Forbidden, "{who}: {message}");
        assert!(message.contains("H0"), "{message}");
        let env = c.fetch_envelope_verified(h.roster(), msg_id).await.unwrap();
        assert!(env.envelope_only);
        assert_eq!(env.message, None);
        assert_eq!(env.header.id, msg_id);
        assert_eq!(env.header.handling, Handling::H0);
        c.close().await;
    }
    let log = entries(&h, "BA.SPS", msg_id, &["body_read", "body_refused"]);
    let seen: Vec<(&str, Option<String>)> = log
        .iter()
        .map(|e| (e.event.as_str(), e.officer.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("body_refused", Some(serial(&h, "BA.SPS", AUDITOR))),
            ("body_refused", Some(serial(&h, "BA.SPS", ADMIN))),
        ]
    );
    assert_eq!(
        log[0].code.as_deref(),
        Some(format!("role_not_allowed auditor {AUDITOR}").as_str())
    );
    h.shutdown().await.unwrap();
}

/// Every body read is logged, not only the first: two reads by the same
/// officer are two `body_read` entries with the certificate's serial, each
/// on disk before the body was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_read_is_logged_with_the_serial() {
    let h = Harness::started(&["RS.MUP", "BA.SPS"]).await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let msg_id = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
    await_final(&rs, msg_id).await.unwrap();

    let duty = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    for n in 1..=2 {
        assert!(matches!(
            fetch(&duty, msg_id).await,
            Response::Message { .. }
        ));
        let log = entries(&h, "BA.SPS", msg_id, &["body_read"]);
        assert_eq!(log.len(), n, "read {n}: {log:?}");
    }
    let log = entries(&h, "BA.SPS", msg_id, &["body_read"]);
    let serial = serial(&h, "BA.SPS", DUTY_OFFICER);
    for e in &log {
        assert_eq!(e.officer.as_deref(), Some(serial.as_str()));
        assert_eq!(e.code.as_deref(), Some("officer duty officer"));
    }
    duty.close().await;
    rs.close().await;
    h.shutdown().await.unwrap();
}

/// `[reads.h2]` decides who reads H2 bodies of a kind: closed to every
/// role, the duty officer is refused (and H1 of the same kind still reads);
/// widened to admins, the admin reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_follows_the_reads_setting() {
    let mut h = federation();
    let config = h.config_path("BA.SPS").unwrap().to_owned();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[reads.h2]\n\"operational-notice\" = [\"admin\"]\n");
    std::fs::write(&config, text).unwrap();
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let h2 = delivered(&h, Handling::H2).await;
    let h1 = delivered(&h, Handling::H1).await;

    let duty = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();
    let (code, message) = refused(fetch(&duty, h2).await);
    assert_eq!(code, ErrorCode::Forbidden, "{message}");
    assert!(
        message.contains("H2") && message.contains("admin"),
        "{message}"
    );
    assert!(matches!(fetch(&duty, h1).await, Response::Message { .. }));
    let admin = h.officer("BA.SPS", ADMIN).await.unwrap();
    assert!(matches!(fetch(&admin, h2).await, Response::Message { .. }));
    assert!(
        matches!(fetch(&admin, h1).await, Response::Message { .. }),
        "a role granted H2 of a kind reads its H1 bodies too"
    );
    // The sender's default: officers read their own H2 message.
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    assert!(matches!(fetch(&rs, h2).await, Response::Message { .. }));

    let log = entries(&h, "BA.SPS", h2, &["body_read", "body_refused"]);
    let seen: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(seen, ["body_refused", "body_read"]);
    assert_eq!(
        log[1].code.as_deref(),
        Some(format!("admin {ADMIN}").as_str())
    );
    for c in [duty, admin, rs] {
        c.close().await;
    }
    h.shutdown().await.unwrap();
}
