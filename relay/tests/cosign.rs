//! Peers cosign each other's checkpoints: two relays on loopback, a message
//! between them, and each relay's newest checkpoint ends up carrying the
//! other's verified cosignature; the witness records what it cosigned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kurir_certs::officer::Role;
use kurir_client::Client;
use kurir_proto::AuthorityId;
use kurir_proto::api::{Request, Response, Submission};
use kurir_proto::audit::{Entry, Event, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::message::{Handling, Message, MessageKind, examples};
use kurir_relay::clock::{Clock, SystemClock};
use kurir_relay::config::RelayConfig;
use kurir_relay::federation::{self, LOCAL_HOST, MemberSpec};
use kurir_relay::node::Node;

fn a(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_cosign_each_others_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let specs: Vec<_> = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|m| MemberSpec {
            id: a(m),
            name: (*m).to_owned(),
            officers: vec![("duty officer".to_owned(), Role::Officer)],
        })
        .collect();
    let mut fed = federation::found(dir.path(), &specs, clock.now()).unwrap();
    let roster = kurir_certs::Roster::load(&fed.roster_path, None, clock.now()).unwrap();
    let mut nodes = Vec::new();
    for m in &mut fed.members {
        let mut text = std::fs::read_to_string(&m.config_path).unwrap();
        text.push_str("\n[audit]\ncheckpoint_secs = 1\n");
        std::fs::write(&m.config_path, text).unwrap();
        let config = RelayConfig::load(&m.config_path).unwrap();
        nodes.push(
            Node::start(config, clock.clone(), m.socket.take())
                .await
                .unwrap(),
        );
    }
    let rs = fed.member(&a("RS.MUP")).unwrap();
    let officer = Client::connect_with_dir(
        rs.addr,
        LOCAL_HOST,
        &rs.id,
        rs.officer_dir("duty officer").unwrap(),
    )
    .await
    .unwrap();
    let answer = officer
        .request(&Request::Submit(Submission {
            to: vec![a("BA.SPS")],
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            expires_in_ms: None,
            body: Message::OperationalNotice(examples::notice())
                .encode()
                .unwrap(),
        }))
        .await
        .unwrap();
    assert!(matches!(answer, Response::Submitted { .. }), "{answer:?}");

    // Each relay's newest checkpoint gains the other's cosignature.
    let pairs = [(0usize, "RS.MUP", "BA.SPS"), (1, "BA.SPS", "RS.MUP")];
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, owner, witness) in pairs {
        let witness_key = roster.log_key(&a(witness)).unwrap();
        let verifier = NoteVerifier::cosigner(&log_origin(&a(witness)), witness_key).unwrap();
        loop {
            let notes = nodes[i].store().checkpoints().unwrap();
            let cosigned = notes.iter().rev().find_map(|n| {
                let c = SignedCheckpoint::parse(n).unwrap();
                c.verify_cosignature(&verifier).ok().map(|t| (c, t))
            });
            if let Some((c, time)) = cosigned {
                let owner_key = roster.log_key(&a(owner)).unwrap();
                c.verify(&NoteVerifier::ed25519(&log_origin(&a(owner)), owner_key).unwrap())
                    .unwrap();
                assert!(time <= clock.now().0 / 1000 + 1);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{owner}'s checkpoint not cosigned by {witness}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The witness remembers what it cosigned and logged it.
        let w = nodes[1 - i].store().witnessed(&a(owner)).unwrap().unwrap();
        assert!(w.size > 0);
        let logged = nodes[1 - i]
            .store()
            .log_entries()
            .unwrap()
            .iter()
            .map(|b| Entry::decode(b).unwrap())
            .any(|e| e.event == Event::PeerCheckpoint && e.peer == Some(a(owner)));
        assert!(logged, "{witness} logged no peer_checkpoint for {owner}");
    }
    officer.close().await;
    for node in nodes {
        node.shutdown().await.unwrap();
    }
    // The export carries the cosignatures for offline auditors.
    let rs = fed.member(&a("RS.MUP")).unwrap();
    let data = rs.config_path.parent().unwrap().join("data");
    let out = dir.path().join("export");
    let mut exported = None;
    for _ in 0..200 {
        match kurir_relay::audit::export(&data, &out, clock.now()) {
            Ok(r) => {
                exported = Some(r);
                break;
            }
            // sled releases its lock a moment after the relay stopped.
            Err(e) if e.to_string().contains("lock") => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(exported.is_some());
    let bundle =
        kurir_proto::audit::Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap())
            .unwrap();
    let ba = (a("BA.SPS"), roster.log_key(&a("BA.SPS")).unwrap());
    let cosigned = bundle
        .checkpoints
        .iter()
        .filter(|n| !kurir_proto::audit::cosigners(&n.0, std::slice::from_ref(&ba)).is_empty())
        .count();
    assert!(
        cosigned >= 1,
        "no exported checkpoint carries BA.SPS's cosignature"
    );
}
