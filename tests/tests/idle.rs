//! An idle federation's logs stay still: cosigning a checkpoint records a
//! `peer_checkpoint` entry at the witness, which must not lead to a
//! checkpoint of its own, cosigned by the others, recorded… for ever. And a
//! member asking to be cosigned over and over grows our log by at most one
//! entry per half checkpoint interval.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kurir_proto::audit::serde_bytes_vec::Bytes;
use kurir_proto::audit::{Event, PeerRequest, PeerResponse, log_origin};
use kurir_proto::checkpoint::{Checkpoint, NoteVerifier, SignedCheckpoint};
use kurir_proto::merkle::{consistency_proof, leaf_hash, root};
use kurir_proto::{AuthorityId, Digest};
use kurir_tests::{DUTY_OFFICER, Harness, await_final, submit_notice};

const MEMBERS: [&str; 4] = ["RS.MUP", "BA.SPS", "ME.UP", "MK.MVR"];

/// The checkpoint interval of the relays in these tests.
const INTERVAL: Duration = Duration::from_millis(200);

fn a(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

/// Per relay: how many log entries and checkpoints it holds.
fn sizes(h: &Harness) -> Vec<(usize, usize)> {
    MEMBERS
        .iter()
        .map(|m| {
            let store = h.node(m).unwrap().store();
            (
                store.log_entries().unwrap().len(),
                store.checkpoints().unwrap().len(),
            )
        })
        .collect()
}

/// Whether every relay's newest checkpoint carries every other member's
/// valid cosignature (nobody is due a cosigning request).
fn all_cosigned(h: &Harness) -> bool {
    MEMBERS.iter().all(|owner| {
        let Some(note) = h.node(owner).unwrap().store().last_checkpoint().unwrap() else {
            return false;
        };
        let signed = SignedCheckpoint::parse(&note).unwrap();
        MEMBERS.iter().filter(|w| *w != owner).all(|w| {
            let key = h.roster().log_key(&a(w)).unwrap();
            let v = NoteVerifier::cosigner(&log_origin(&a(w)), key).unwrap();
            signed.verify_cosignature(&v).is_ok()
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_federation_adds_no_log_entries() {
    let mut h = Harness::new(&MEMBERS).unwrap();
    h.set_checkpoint_interval(INTERVAL);
    for m in MEMBERS {
        h.start(m).await.unwrap();
    }
    let officer = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let id = submit_notice(&officer, &["BA.SPS"]).await.unwrap();
    await_final(&officer, id).await.unwrap();
    officer.close().await;

    // Cosigning of that activity settles: every newest checkpoint cosigned
    // by every other member, and nothing changing for 5 intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = sizes(&h);
    let mut still = 0;
    while still < 5 {
        tokio::time::sleep(INTERVAL).await;
        let now = sizes(&h);
        if now == last && all_cosigned(&h) {
            still += 1;
        } else {
            still = 0;
        }
        assert!(
            Instant::now() < deadline,
            "cosigning never settled: (entries, checkpoints) per relay went from {last:?} to \
             {now:?} in one interval"
        );
        last = now;
    }

    // Then, over 15 intervals, no relay adds an entry or a checkpoint.
    let settled = last;
    for _ in 0..15 {
        tokio::time::sleep(INTERVAL).await;
        assert_eq!(sizes(&h), settled, "an idle relay's log grew");
    }
    h.shutdown().await.unwrap();
}

/// The `peer_checkpoint` entries about RS.MUP in BA.SPS's log.
fn recorded(h: &Harness) -> usize {
    h.log("BA.SPS")
        .unwrap()
        .iter()
        .filter(|e| e.event == Event::PeerCheckpoint && e.peer == Some(a("RS.MUP")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flooding_cosigning_requests_gets_too_soon_and_grows_our_log_slowly() {
    // BA.SPS signs every second, so it cosigns for a member at most every
    // 500 ms. The test plays RS.MUP: a log growing by one entry per
    // request, each checkpoint signed with RS.MUP's log key and proven
    // consistent with what BA.SPS cosigned last.
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    h.set_checkpoint_interval(Duration::from_millis(1000));
    h.start("BA.SPS").await.unwrap();
    let key = kurir_certs::keys::read_secret_key(
        &h.authority_dir("RS.MUP")
            .unwrap()
            .join(kurir_certs::authority::layout::LOG_KEY),
    )
    .unwrap();
    let origin = log_origin(&a("RS.MUP"));
    let leaves: Vec<Digest> = (0u64..10_000)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let note = |size: usize| {
        let c = Checkpoint::new(&origin, size as u64, root(&leaves[..size])).unwrap();
        SignedCheckpoint::sign(c, &origin, &key)
            .unwrap()
            .note()
            .to_string()
            .into_bytes()
    };
    let request = |size: usize, old: usize| {
        let proof = if old == 0 {
            vec![]
        } else {
            consistency_proof(&leaves[..size], old as u64, size as u64).unwrap()
        };
        PeerRequest::Cosign {
            checkpoint: note(size),
            old_size: old as u64,
            proof: proof.into_iter().map(|d| Bytes(d.0.to_vec())).collect(),
        }
        .encode()
        .unwrap()
    };
    let link = h.peer_link("RS.MUP", "BA.SPS").await.unwrap();
    let before = recorded(&h);
    let (mut cosigned, mut too_soon, mut witnessed) = (0, 0, 0usize);
    let start = Instant::now();
    let mut size = 1;
    while start.elapsed() < Duration::from_secs(3) {
        let answer = link.exchange(&request(size, witnessed)).await.unwrap();
        match PeerResponse::decode(&answer).unwrap() {
            PeerResponse::Cosigned { .. } => {
                cosigned += 1;
                witnessed = size;
            }
            PeerResponse::Refused {
                reason,
                witnessed_size,
            } => {
                assert!(reason.starts_with("too soon: "), "{reason}");
                assert!(reason.contains("ask again after"), "{reason}");
                assert_eq!(witnessed_size, witnessed as u64);
                too_soon += 1;
            }
            other => panic!("{other:?}"),
        }
        size += 1;
    }
    let elapsed = start.elapsed();
    let grown = recorded(&h) - before;
    assert!(too_soon > 0, "no request was refused as too soon");
    assert_eq!(grown, cosigned, "one entry per cosignature");
    let allowed = (elapsed.as_millis() / 500) as usize + 1;
    assert!(
        grown <= allowed,
        "{grown} entries in {elapsed:?}, at most {allowed} allowed"
    );

    // The checkpoint cosigned last, asked again once the gap has passed:
    // cosigned again, with no new entry.
    let entries = h.log("BA.SPS").unwrap().len();
    let mut again = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while again.is_none() {
        let answer = link.exchange(&request(witnessed, witnessed)).await.unwrap();
        match PeerResponse::decode(&answer).unwrap() {
            PeerResponse::Cosigned { note } => again = Some(note),
            PeerResponse::Refused { reason, .. } => {
                assert!(reason.starts_with("too soon: "), "{reason}");
                assert!(Instant::now() < deadline, "never cosigned again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        h.log("BA.SPS").unwrap().len(),
        entries,
        "no entry for a checkpoint cosigned before"
    );
    link.close().await;
    h.shutdown().await.unwrap();
}
