//! The test plays a peer relay over a raw `kurir/1` connection: duplicates,
//! and every kind of refusal the receiving relay must sign and record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use kurir_certs::authority::{self, InitParams};
use kurir_certs::files::Overwrite;
use kurir_certs::tls::Credentials;
use kurir_demo::federation::LOCAL_HOST;
use kurir_proto::{ReceiptStatus, RejectCode, open_receipt};
use kurir_relay::clock::{Clock, ManualClock, SystemClock};
use kurir_tests::{
    Harness, PeerLink, assert_refused, authority as id, logs, open_rejection, receiver_only,
};

/// The same parcel sent twice, on two streams of one connection and once
/// more on a second connection: one inbox entry, and every answer is the
/// original receipt, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_gets_the_original_receipt_and_one_inbox_entry() {
    let mut h = receiver_only().await;
    let key = h.message_key("RS.MUP").unwrap();
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let parcel = h.seal_notice(header, &key).unwrap();
    let bytes = parcel.to_bytes();

    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let first = link.exchange(&bytes).await.unwrap();
    // A receipt signed afresh from here on would carry a later received_at.
    let signed_at = open_receipt(&first, h.roster())
        .unwrap()
        .receipt
        .received_at;
    h.await_clock_past(signed_at).await;
    let second = link.exchange(&bytes).await.unwrap();
    assert_eq!(first, second, "a duplicate gets the original receipt");
    link.close().await;
    let again = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    assert_eq!(again.exchange(&bytes).await.unwrap(), first);
    again.close().await;

    let r = open_receipt(&first, h.roster()).unwrap();
    assert_eq!(r.receipt.status, ReceiptStatus::Accepted);
    assert_eq!(r.receipt.receiver.as_str(), "BA.SPS");
    assert_eq!(r.receipt.sender.as_str(), "RS.MUP");
    let header = kurir_proto::envelope::header_unverified(&parcel.envelope).unwrap();
    assert_eq!(r.receipt.msg_id, Some(header.id));
    assert_eq!(r.receipt.envelope_digest, parcel.envelope_digest());

    let store = h.node("BA.SPS").unwrap().store();
    let inbox = store.inbox_all().unwrap();
    assert_eq!(inbox.len(), 1, "one inbox entry");
    assert_eq!(inbox[0].msg_id, header.id);
    assert_eq!(inbox[0].receipt, first);
    assert!(store.refusals().unwrap().is_empty());
    h.shutdown().await.unwrap();
}

/// The same parcel on several streams at once: exactly one is stored, and
/// all get the same receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_stored_once() {
    let mut h = receiver_only().await;
    let key = h.message_key("RS.MUP").unwrap();
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let bytes = h.seal_notice(header, &key).unwrap().to_bytes();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let (a, b, c, d) = tokio::join!(
        link.exchange(&bytes),
        link.exchange(&bytes),
        link.exchange(&bytes),
        link.exchange(&bytes)
    );
    let a = a.unwrap();
    for other in [b, c, d] {
        assert_eq!(other.unwrap(), a);
    }
    assert_eq!(
        open_receipt(&a, h.roster()).unwrap().receipt.status,
        ReceiptStatus::Accepted
    );
    assert_eq!(
        h.node("BA.SPS").unwrap().store().inbox_all().unwrap().len(),
        1
    );
    link.close().await;
    h.shutdown().await.unwrap();
}

/// A node certificate for RS.MUP from a CA that is not in the roster: the
/// handshake is refused, the relay logs it, and nothing is stored, though
/// the parcel itself is properly signed with RS.MUP's real message key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_certificate_from_an_unknown_ca_is_refused() {
    let mut h = receiver_only().await;
    let rogue = tempfile::tempdir().unwrap();
    let rogue_dir = rogue.path().join("authority");
    authority::init(
        &rogue_dir,
        &InitParams {
            id: id("RS.MUP").unwrap(),
            name: "Not the Ministry of Interior".into(),
            relay_host: LOCAL_HOST.into(),
            relay_port: 7443,
            ca_days: 30,
            node_days: 30,
            key_days: kurir_certs::authority::DEFAULT_KEY_DAYS,
            now: h.now(),
            overwrite: Overwrite::Refuse,
        },
    )
    .unwrap();
    let creds = Credentials::node(&rogue_dir).unwrap();
    let key = h.message_key("RS.MUP").unwrap();
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let bytes = h.seal_notice(header, &key).unwrap().to_bytes();

    let endpoint = PeerLink::bind().unwrap();
    let local = endpoint.local_addr().unwrap();
    let to = id("BA.SPS").unwrap();
    let addr = h.addr("BA.SPS").unwrap();
    let outcome = async {
        let link = PeerLink::connect_on(endpoint, h.roster(), &creds, &to, addr).await?;
        link.exchange(&bytes).await
    }
    .await;
    let err = outcome.expect_err("a foreign certificate must not get through");
    eprintln!("the client saw: {err:#}");

    let line = logs::await_line("about the refused handshake", |l| {
        l.contains("handshake failed") && l.contains(&format!("remote={local}"))
    })
    .await
    .unwrap();
    eprintln!("the relay logged: {line}");

    let store = h.node("BA.SPS").unwrap().store();
    assert!(store.inbox_all().unwrap().is_empty());
    assert!(store.refusals().unwrap().is_empty(), "no parcel was read");
    h.shutdown().await.unwrap();
}

/// Signed with a key that is in no roster: `unknown_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_signed_by_an_unknown_key_is_refused() {
    let mut h = receiver_only().await;
    let stray = h.stray_key();
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let parcel = h.seal_notice(header, &stray).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&parcel.to_bytes()).await.unwrap();
    let v = assert_refused(&h, &answer, RejectCode::UnknownKey);
    assert_eq!(v.receipt.msg_id, None, "the envelope did not verify");
    assert_eq!(v.receipt.envelope_digest, parcel.envelope_digest());
    link.close().await;
    h.shutdown().await.unwrap();
}

/// A header that claims RS.MUP (the TLS peer) as sender, signed with
/// ME.UP's real roster key: `signer_mismatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_signed_by_another_members_key_is_refused() {
    let mut h = receiver_only().await;
    let me_key = h.message_key("ME.UP").unwrap();
    let header = h.notice_header("RS.MUP", &["BA.SPS"]).unwrap();
    let parcel = h.seal_notice(header, &me_key).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&parcel.to_bytes()).await.unwrap();
    let v = assert_refused(&h, &answer, RejectCode::SignerMismatch);
    assert_eq!(v.receipt.envelope_digest, parcel.envelope_digest());
    link.close().await;
    h.shutdown().await.unwrap();
}

/// A valid RS.MUP parcel addressed to ME.UP, handed to BA.SPS:
/// `wrong_recipient`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parcel_for_another_recipient_is_refused() {
    let mut h = receiver_only().await;
    let key = h.message_key("RS.MUP").unwrap();
    let header = h.notice_header("RS.MUP", &["ME.UP"]).unwrap();
    let parcel = h.seal_notice(header, &key).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&parcel.to_bytes()).await.unwrap();
    assert_refused(&h, &answer, RejectCode::WrongRecipient);
    link.close().await;
    h.shutdown().await.unwrap();
}

/// A valid parcel from ME.UP (signed with ME.UP's key) relayed over RS.MUP's
/// connection: the sender differs from the TLS identity, `transport_mismatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_other_than_the_tls_peer_is_refused() {
    let mut h = receiver_only().await;
    let me_key = h.message_key("ME.UP").unwrap();
    let header = h.notice_header("ME.UP", &["BA.SPS"]).unwrap();
    let msg_id = header.id;
    let parcel = h.seal_notice(header, &me_key).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange(&parcel.to_bytes()).await.unwrap();
    let v = assert_refused(&h, &answer, RejectCode::TransportMismatch);
    assert_eq!(
        v.receipt.msg_id,
        Some(msg_id),
        "the envelope itself verified"
    );
    link.close().await;
    h.shutdown().await.unwrap();
}

/// A frame prefix declaring one byte more than `limits.max_parcel_bytes`,
/// with no payload behind it and the stream left open: the relay answers
/// `too_large` from the prefix alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_parcel_is_refused_before_its_payload_is_read() {
    let h = receiver_only().await;
    let max = h.config("BA.SPS").unwrap().max_parcel_bytes;
    let declared = u32::try_from(max + 1).unwrap();
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let answer = link.exchange_prefix_only(declared).await.unwrap();
    let v = assert_refused(&h, &answer, RejectCode::TooLarge);
    assert_eq!(v.receipt.msg_id, None);
    link.close().await;
    h.shutdown().await.unwrap();
}

/// Oversized parcels from two peers, refused in the same millisecond (the
/// receiver's clock stands still): every signed rejection is recorded, none
/// overwrites another (they all have the envelope digest of nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_in_the_same_millisecond_are_all_recorded() {
    let clock = ManualClock::new(SystemClock.now());
    let mut h = Harness::with_clock(&["RS.MUP", "BA.SPS", "ME.UP"], Arc::new(clock)).unwrap();
    h.start("BA.SPS").await.unwrap();
    let declared = u32::try_from(h.config("BA.SPS").unwrap().max_parcel_bytes + 1).unwrap();
    let mut answers = Vec::new();
    for from in ["RS.MUP", "ME.UP", "RS.MUP"] {
        let link = h.peer_link(from, "BA.SPS").await.unwrap();
        answers.push((from, link.exchange_prefix_only(declared).await.unwrap()));
        link.close().await;
    }
    let refusals = h.node("BA.SPS").unwrap().store().refusals().unwrap();
    assert_eq!(refusals.len(), answers.len(), "{refusals:#?}");
    for (from, answer) in &answers {
        let (v, code) = open_rejection(h.roster(), answer).unwrap();
        assert_eq!(code, RejectCode::TooLarge);
        assert_eq!(v.receipt.sender.as_str(), *from);
        assert!(
            refusals
                .iter()
                .any(|r| &r.receipt == answer && r.from.as_str() == *from),
            "the rejection sent to {from} is not recorded"
        );
    }
    h.shutdown().await.unwrap();
}

/// A parcel over the receiver's `max_parcel_bytes` (but within the
/// sender's): BA.SPS refuses it from the frame prefix, naming what it could
/// read, the declared length, and RS.MUP matches that rejection on its own
/// stream to the parcel it sent: the delivery ends `rejected` (`too_large`)
/// after one attempt instead of being retried until it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parcel_over_the_receivers_limit_ends_rejected_after_one_attempt() {
    use kurir_proto::api::{Request, Response};
    use kurir_proto::message::{Message, OperationalNotice, Priority};
    use kurir_tests::{DUTY_OFFICER, await_final, notice_submission, request};

    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    {
        use std::io::Write as _;
        let mut toml = std::fs::OpenOptions::new()
            .append(true)
            .open(h.config_path("BA.SPS").unwrap())
            .unwrap();
        writeln!(toml, "\n[limits]\nmax_parcel_bytes = 4096").unwrap();
    }
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let mut submission = notice_submission(&["BA.SPS"]).unwrap();
    submission.body = Message::OperationalNotice(OperationalNotice {
        subject: "A long notice".into(),
        text: "x".repeat(8000),
        priority: Priority::Normal,
        attachments: vec![],
    })
    .encode()
    .unwrap();
    let msg_id = match request(&rs, &Request::Submit(submission)).await.unwrap() {
        Response::Submitted { msg_id, .. } => msg_id,
        other => unreachable!("{other:?}"),
    };
    let d = await_final(&rs, msg_id).await.unwrap();
    assert_eq!(d[0].state, "rejected", "{d:?}");
    let reason = d[0].reason.as_deref().unwrap();
    assert!(reason.starts_with("too_large: "), "{reason}");
    assert_eq!(d[0].attempts, 1, "{d:?}");
    let (v, code) = open_rejection(h.roster(), d[0].receipt.as_ref().unwrap()).unwrap();
    assert_eq!(code, RejectCode::TooLarge);
    assert_eq!(v.receipt.msg_id, None, "BA.SPS read no envelope");
    assert_eq!(v.receipt.sender.as_str(), "RS.MUP");
    // It names what BA.SPS read: the declared length of RS.MUP's parcel.
    let sent = h.node("RS.MUP").unwrap().store().sent_parcel(msg_id);
    let declared = u32::try_from(sent.unwrap().unwrap().len()).unwrap();
    assert_eq!(
        v.receipt.envelope_digest,
        kurir_proto::Digest::of_envelope(&declared.to_be_bytes())
    );
    let refusals = h.node("BA.SPS").unwrap().store().refusals().unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        h.node("BA.SPS")
            .unwrap()
            .store()
            .inbox_all()
            .unwrap()
            .is_empty()
    );
    rs.close().await;
    h.shutdown().await.unwrap();
}
