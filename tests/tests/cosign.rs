//! Peers cosign each other's checkpoints: two relays on loopback, a message
//! between them, and each relay's newest checkpoint ends up carrying the
//! other's verified cosignature; the witness records what it cosigned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kurir_certs::officer::Role;
use kurir_client::Client;
use kurir_demo::federation::{self, LOCAL_HOST, MemberSpec};
use kurir_proto::AuthorityId;
use kurir_proto::api::{Request, Response, Submission};
use kurir_proto::audit::{Entry, Event, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::message::{Handling, Message, MessageKind, examples};
use kurir_relay::clock::{Clock, SystemClock};
use kurir_relay::config::RelayConfig;
use kurir_relay::node::Node;

fn a(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

/// RS.MUP and BA.SPS, each with a duty officer, signing a checkpoint every second.
fn found(dir: &std::path::Path, clock: &Arc<dyn Clock>) -> federation::Federation {
    let specs: Vec<_> = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|m| MemberSpec {
            id: a(m),
            name: (*m).to_owned(),
            officers: vec![("duty officer".to_owned(), Role::Officer)],
            focal_points: vec![],
        })
        .collect();
    let fed = federation::found(dir, &specs, clock.now()).unwrap();
    for m in &fed.members {
        let mut text = std::fs::read_to_string(&m.config_path).unwrap();
        text.push_str("\n[audit]\ncheckpoint_secs = 1\n");
        std::fs::write(&m.config_path, text).unwrap();
    }
    fed
}

/// Both relays of [`found`], running, and an RS.MUP duty officer connected.
struct Running {
    fed: federation::Federation,
    roster: kurir_certs::Roster,
    nodes: Vec<Node>,
    officer: Client,
}

async fn start_both(dir: &std::path::Path, clock: &Arc<dyn Clock>) -> Running {
    let mut fed = found(dir, clock);
    let roster = kurir_certs::Roster::load(&fed.roster_path, None, clock.now()).unwrap();
    let mut nodes = Vec::new();
    for m in &mut fed.members {
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
    Running {
        fed,
        roster,
        nodes,
        officer,
    }
}

/// Stops everything [`start_both`] started and exports RS.MUP's audit log
/// offline into `dir/export`.
async fn stop_and_export(
    dir: &std::path::Path,
    fed: &federation::Federation,
    clock: &Arc<dyn Clock>,
    nodes: Vec<Node>,
    officer: Client,
) -> (std::path::PathBuf, kurir_proto::audit::Bundle) {
    officer.close().await;
    for node in nodes {
        node.shutdown().await.unwrap();
    }
    let rs = fed.member(&a("RS.MUP")).unwrap();
    let data = rs.config_path.parent().unwrap().join("data");
    let out = dir.join("export");
    kurir_relay::audit::export(&data, &out, clock.now()).unwrap();
    let bundle =
        kurir_proto::audit::Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap())
            .unwrap();
    (out, bundle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_cosign_each_others_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let Running {
        fed,
        roster,
        nodes,
        officer,
    } = start_both(dir.path(), &clock).await;
    notice(&officer, "BA.SPS").await;

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
    // The export carries the cosignatures for offline auditors.
    let (out, bundle) = stop_and_export(dir.path(), &fed, &clock, nodes, officer).await;
    let ba = (a("BA.SPS"), roster.log_key(&a("BA.SPS")).unwrap());
    let cosigned = bundle
        .checkpoints
        .iter()
        .filter(|n| {
            !kurir_proto::audit::cosigners(&n.0, std::slice::from_ref(&ba))
                .unwrap()
                .is_empty()
        })
        .count();
    assert!(
        cosigned >= 1,
        "no exported checkpoint carries BA.SPS's cosignature"
    );
    // The auditor's check accepts the export and names the cosigner...
    let verified = kurir_audit::load_verified(&out).unwrap();
    assert!(
        verified
            .cosigned
            .iter()
            .any(|(_, by)| by.iter().any(|(who, _)| who == &a("BA.SPS")))
    );
    // ...and calls a forged cosignature forged.
    let mut forged = bundle.clone();
    let note = forged
        .checkpoints
        .iter_mut()
        .find(|n| {
            !kurir_proto::audit::cosigners(&n.0, std::slice::from_ref(&ba))
                .unwrap()
                .is_empty()
        })
        .unwrap();
    let text = String::from_utf8(note.0.clone()).unwrap();
    let line_start = text.find("— kurir/BA.SPS ").unwrap();
    let line_end = line_start + text[line_start..].find('\n').unwrap();
    // Change one base64 character of the signature (not the key id).
    let at = line_end - 3;
    let mut bytes = note.0.clone();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    note.0 = bytes;
    let dir2 = dir.path().join("forged");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("bundle.cbor"), forged.encode().unwrap()).unwrap();
    let err = kurir_audit::load_verified(&dir2).unwrap_err();
    assert!(err.to_string().contains("forged"), "{err}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts a relay again on the address its configuration names.
async fn start(config: &std::path::Path, clock: Arc<dyn Clock>) -> Node {
    Node::start(RelayConfig::load(config).unwrap(), clock, None)
        .await
        .unwrap()
}

async fn notice(client: &Client, to: &str) -> kurir_proto::MessageId {
    let answer = client
        .request(&Request::Submit(Submission {
            to: vec![a(to)],
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
    match answer {
        Response::Submitted { msg_id, .. } => msg_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_rolled_back_to_an_earlier_copy_is_exposed_by_its_witness() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut fed = found(dir.path(), &clock);
    let rs_config = fed.member(&a("RS.MUP")).unwrap().config_path.clone();
    let rs_data = rs_config.parent().unwrap().join("data");
    let ba = fed.member_mut(&a("BA.SPS")).unwrap();
    let ba_node = Node::start(
        RelayConfig::load(&ba.config_path).unwrap(),
        clock.clone(),
        ba.socket.take(),
    )
    .await
    .unwrap();
    // RS starts once and stops: the copy an attacker (or a careless restore)
    // will bring back later.
    let rs = fed.member_mut(&a("RS.MUP")).unwrap();
    let rs_node = Node::start(
        RelayConfig::load(&rs.config_path).unwrap(),
        clock.clone(),
        rs.socket.take(),
    )
    .await
    .unwrap();
    rs_node.shutdown().await.unwrap();
    let old = dir.path().join("old-copy");
    copy_dir(&rs_data, &old);
    let old_size = {
        let store =
            kurir_relay::store::Store::open(&old, kurir_relay::store::Durability::ProcessCrash)
                .unwrap();
        let size = store.log_state().size;
        store.close().unwrap();
        size
    };

    // RS runs on: traffic, checkpoints, and BA cosigns them.
    let rs_node = start(&rs_config, clock.clone()).await;
    let rs = fed.member(&a("RS.MUP")).unwrap();
    let officer = Client::connect_with_dir(
        rs_node.local_addr(),
        LOCAL_HOST,
        &rs.id,
        rs.officer_dir("duty officer").unwrap(),
    )
    .await
    .unwrap();
    notice(&officer, "BA.SPS").await;
    notice(&officer, "BA.SPS").await;
    officer.close().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let witnessed = loop {
        if let Some(w) = ba_node.store().witnessed(&a("RS.MUP")).unwrap()
            && w.size >= old_size + 4
        {
            break w;
        }
        assert!(
            Instant::now() < deadline,
            "BA.SPS never cosigned RS.MUP's grown log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    rs_node.shutdown().await.unwrap();

    // The old copy is put back. It is consistent with its own checkpoint,
    // so the relay starts...
    std::fs::remove_dir_all(&rs_data).unwrap();
    copy_dir(&old, &rs_data);
    let mut toml = std::fs::read_to_string(&rs_config).unwrap();
    toml.push_str("\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&rs_config, toml).unwrap();
    let rs_node = start(&rs_config, clock.clone()).await;
    // ...but its witness refuses the shorter log, and the relay raises the alarm.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alarm = loop {
        if let Some(alarm) = rs_node.integrity_alarm() {
            break alarm;
        }
        assert!(Instant::now() < deadline, "no alarm after the rollback");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(alarm.contains("rolled back"), "{alarm}");
    assert!(alarm.contains(&witnessed.size.to_string()), "{alarm}");
    // And shows it to the operator's monitoring.
    let text = kurir_tests::scrape_metrics(rs_node.metrics_addr().unwrap())
        .await
        .unwrap();
    assert!(text.contains("\nkurir_integrity_alarm 1\n"), "{text}");
    let raised: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("kurir_integrity_alarms_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(raised >= 1, "{text}");
    // BA.SPS still holds the longer history it cosigned.
    assert_eq!(
        ba_node.store().witnessed(&a("RS.MUP")).unwrap(),
        Some(witnessed)
    );
    rs_node.shutdown().await.unwrap();
    ba_node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_receipt_gains_the_receivers_inclusion_proof_and_the_export_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let Running {
        fed,
        roster,
        nodes,
        officer,
    } = start_both(dir.path(), &clock).await;
    let id = notice(&officer, "BA.SPS").await;

    // BA.SPS signs a checkpoint covering the arrival; RS.MUP asks for the
    // proof, checks it and keeps it beside the receipt.
    let deadline = Instant::now() + Duration::from_secs(60);
    let proof = loop {
        if let Some(p) = nodes[0].store().receipt_proof(id, &a("BA.SPS")).unwrap() {
            break kurir_proto::audit::InclusionProof::decode(&p).unwrap();
        }
        assert!(Instant::now() < deadline, "no inclusion proof stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(nodes[0].store().unproven().unwrap().is_empty());
    // It proves the very entry the receipt names, in BA.SPS's signed log.
    let receipt = nodes[0]
        .store()
        .deliveries_of(id)
        .unwrap()
        .into_iter()
        .find_map(|d| match d.state {
            kurir_relay::core::delivery::DeliveryState::Delivered { receipt, .. } => Some(receipt),
            _ => None,
        })
        .unwrap();
    let receipt = kurir_proto::receipt::receipt_unverified(&receipt).unwrap();
    assert_eq!(Some(proof.index), receipt.log_index);
    let ba_log = NoteVerifier::ed25519(
        &log_origin(&a("BA.SPS")),
        roster.log_key(&a("BA.SPS")).unwrap(),
    )
    .unwrap();
    let size = proof.verify(&receipt.leaf_hash.unwrap(), &ba_log).unwrap();
    assert!(size > proof.index);
    let ba_entry = &nodes[1].store().log_entries().unwrap()[proof.index as usize];
    assert_eq!(
        kurir_proto::merkle::leaf_hash(ba_entry),
        receipt.leaf_hash.unwrap()
    );

    // The offline export carries proof and envelopes, and verifies.
    let (out, bundle) = stop_and_export(dir.path(), &fed, &clock, nodes, officer).await;
    assert!(bundle.receipts.iter().any(|r| r.inclusion.is_some()));
    assert_eq!(bundle.envelopes.len(), 1);
    let v = kurir_audit::load_verified(&out).unwrap();
    assert_eq!(v.envelopes, 1);
    assert_eq!(
        v.log
            .receipts
            .iter()
            .filter_map(|r| r.included_in)
            .map(|(s, _)| s)
            .collect::<Vec<_>>(),
        vec![size]
    );
    // A proof that no longer matches the receipt is named.
    let mut bad = bundle.clone();
    for r in &mut bad.receipts {
        if let Some(p) = &mut r.inclusion {
            let mut proof = kurir_proto::audit::InclusionProof::decode(&p.0).unwrap();
            proof.hashes[0].0[0] ^= 1;
            p.0 = proof.encode().unwrap();
        }
    }
    let bad_dir = dir.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("bundle.cbor"), bad.encode().unwrap()).unwrap();
    let err = kurir_audit::load_verified(&bad_dir)
        .unwrap_err()
        .to_string();
    assert!(err.contains("inclusion proof does not hold"), "{err}");
    // So is a missing envelope, and an envelope signed by nobody in the roster.
    let mut bad = bundle.clone();
    bad.envelopes.clear();
    std::fs::write(bad_dir.join("bundle.cbor"), bad.encode().unwrap()).unwrap();
    let err = kurir_audit::load_verified(&bad_dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names an envelope the bundle does not hold"),
        "{err}"
    );
    let mut bad = bundle;
    let last = bad.envelopes[0].0.len() - 1;
    bad.envelopes[0].0[last] ^= 1;
    std::fs::write(bad_dir.join("bundle.cbor"), bad.encode().unwrap()).unwrap();
    let err = kurir_audit::load_verified(&bad_dir)
        .unwrap_err()
        .to_string();
    assert!(err.contains("envelope 1"), "{err}");
}

/// BA.SPS's log key, as the test playing BA.SPS holds it.
fn log_key_of(h: &kurir_tests::Harness, who: &str) -> kurir_proto::ed25519_dalek::SigningKey {
    kurir_certs::keys::read_secret_key(
        &h.authority_dir(who)
            .unwrap()
            .join(kurir_certs::authority::layout::LOG_KEY),
    )
    .unwrap()
}

/// `note`'s text with BA.SPS's cosignature of it (made with `key`), and no
/// other line.
fn cosigned_by(text: &str, key: &kurir_proto::ed25519_dalek::SigningKey) -> String {
    let note = kurir_proto::checkpoint::Note::new(text).unwrap();
    let unsigned = SignedCheckpoint::from_note(note).unwrap();
    let now = SystemClock.now().0 / 1000;
    let line = unsigned
        .cosign(&log_origin(&a("BA.SPS")), key, now)
        .unwrap();
    format!("{text}\n{line}")
}

/// `note` padded with lines in BA.SPS's name (under made-up key ids) to
/// `len` bytes.
fn padded_to(note: &str, len: usize) -> Vec<u8> {
    use base64::Engine as _;
    let name = log_origin(&a("BA.SPS"));
    let mut text = note.to_owned();
    let mut id = 0xabc0_0000u32;
    loop {
        let room = len.saturating_sub(text.len());
        // "— " (4 bytes), the name, a space, the base64, a newline.
        let overhead = 4 + name.len() + 2;
        if room < overhead + 12 {
            break;
        }
        let b64 = ((room - overhead) / 4 * 4).min(4000);
        let mut payload = id.to_be_bytes().to_vec();
        payload.resize(b64 / 4 * 3, 0x33);
        text.push_str(&format!(
            "\u{2014} {name} {}\n",
            base64::engine::general_purpose::STANDARD.encode(payload)
        ));
        id += 1;
    }
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_witness_cannot_poison_our_checkpoints() {
    use kurir_proto::audit::PeerResponse;
    use kurir_tests::witness::HostileWitness;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let mut h = kurir_tests::Harness::new(&["RS.MUP", "BA.SPS", "ME.UP"]).unwrap();
    h.set_checkpoint_interval(Duration::from_millis(200));
    // BA.SPS is played by the test: to RS.MUP's first request it answers
    // with a cosignature of another root of the size asked, to the second
    // with the right cosignature padded to the limit of a note with more
    // lines in its name, then correctly.
    let key = log_key_of(&h, "BA.SPS");
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let answer = Arc::new(move |request: &kurir_proto::audit::PeerRequest| {
        let kurir_proto::audit::PeerRequest::Cosign { checkpoint, .. } = request else {
            return PeerResponse::Proofs { proofs: vec![] };
        };
        let Ok(sent) = SignedCheckpoint::parse(checkpoint) else {
            return PeerResponse::Refused {
                reason: "no checkpoint".into(),
                witnessed_size: 0,
            };
        };
        if sent.checkpoint().origin() != log_origin(&a("RS.MUP")) {
            return PeerResponse::Refused {
                reason: "not today".into(),
                witnessed_size: 0,
            };
        }
        let text = sent.note().text().to_owned();
        let note = match count.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let other = kurir_proto::checkpoint::Checkpoint::new(
                    sent.checkpoint().origin(),
                    sent.checkpoint().size(),
                    kurir_proto::Digest([0x55; 32]),
                )
                .unwrap();
                cosigned_by(&other.to_string(), &key).into_bytes()
            }
            // The frame of the answer holds at most 64 KiB.
            1 => padded_to(&cosigned_by(&text, &key), 65_480),
            _ => cosigned_by(&text, &key).into_bytes(),
        };
        PeerResponse::Cosigned { note }
    });
    let witness = HostileWitness::start(&mut h, "BA.SPS", answer).unwrap();
    h.start("RS.MUP").await.unwrap();
    h.start("ME.UP").await.unwrap();

    // RS.MUP asks again until it holds BA.SPS's valid cosignature; what it
    // stores never carries a line in BA.SPS's name that does not verify,
    // nor two, nor outgrows a note.
    let ba = NoteVerifier::cosigner(
        &log_origin(&a("BA.SPS")),
        h.roster().log_key(&a("BA.SPS")).unwrap(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let notes = h.node("RS.MUP").unwrap().store().checkpoints().unwrap();
        let mut cosigned = false;
        for note in &notes {
            let c = SignedCheckpoint::parse(note)
                .unwrap_or_else(|e| panic!("a stored checkpoint no longer parses: {e}"));
            let lines = c
                .signatures()
                .iter()
                .filter(|s| s.name() == log_origin(&a("BA.SPS")))
                .count();
            assert!(lines <= 1, "{lines} lines in BA.SPS's name");
            if lines == 1 {
                c.verify_cosignature(&ba).unwrap_or_else(|e| {
                    panic!("a stored line in BA.SPS's name does not verify: {e}")
                });
                cosigned = true;
            }
        }
        if cosigned && asked.load(Ordering::SeqCst) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "never cosigned by BA.SPS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The answer over another root was refused and said so.
    kurir_tests::logs::await_line("refusing BA.SPS's answer", |l| {
        l.contains("WARN") && l.contains("BA.SPS") && l.contains("not the checkpoint sent")
    })
    .await
    .unwrap();

    // RS.MUP starts again on what it stored, and its export verifies.
    h.restart("RS.MUP").await.unwrap();
    h.stop("RS.MUP").await.unwrap();
    let data = h.config("RS.MUP").unwrap().data_dir;
    let out = h.dir().join("export-rs");
    kurir_relay::audit::export(&data, &out, SystemClock.now()).unwrap();
    let verified = kurir_audit::load_verified(&out).unwrap();
    assert!(
        verified
            .cosigned
            .iter()
            .any(|(_, by)| by.iter().any(|(who, _)| who == &a("BA.SPS"))),
        "the export carries BA.SPS's cosignature"
    );
    witness.close().await;
    h.shutdown().await.unwrap();
}
