//! Writes the store fixture of the current format under
//! `relay/tests/fixtures/` (see the README there): a relay's data
//! directory after real traffic, which `relay/tests/store_format.rs` opens
//! with the code of every later format. Ignored: it is run by hand, once
//! per format, before the format changes.
//!
//! ```text
//! cargo test -p kurir-tests --test store_fixture -- --ignored
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kurir_proto::api::{Request, Response};
use kurir_proto::audit::{Event, log_origin};
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_tests::{DUTY_OFFICER, Harness, authority, await_final, request, submit_notice};

/// Where the fixtures live.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../relay/tests/fixtures")
}

/// Copies the directory `from` to `to` (files and directories only).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// RS.MUP sends two notices to BA.SPS and receives one from it, which its
/// duty officer reads; both sign checkpoints and cosign each other's. Once
/// RS.MUP's newest checkpoint covers that traffic and carries BA.SPS's
/// cosignature and RS.MUP holds the inclusion proofs of its receipts, both
/// stop and RS.MUP's data directory is copied to the fixture, with
/// `expected.toml` naming what a store opened from it must hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes relay/tests/fixtures/: run by hand before changing the store's format"]
async fn write_store_fixture() {
    let out = fixtures().join(format!(
        "store-format-{}",
        kurir_relay::store::FORMAT_VERSION
    ));
    assert!(
        !out.exists(),
        "{} exists: remove it first to write it again",
        out.display()
    );
    let mut h = Harness::new(&["RS.MUP", "BA.SPS"]).unwrap();
    h.set_checkpoint_interval(Duration::from_millis(200));
    h.start("RS.MUP").await.unwrap();
    h.start("BA.SPS").await.unwrap();
    let rs = h.officer("RS.MUP", DUTY_OFFICER).await.unwrap();
    let ba = h.officer("BA.SPS", DUTY_OFFICER).await.unwrap();

    let mut sent = Vec::new();
    for _ in 0..2 {
        let id = submit_notice(&rs, &["BA.SPS"]).await.unwrap();
        assert_eq!(await_final(&rs, id).await.unwrap()[0].state, "delivered");
        sent.push(id);
    }
    let received = submit_notice(&ba, &["RS.MUP"]).await.unwrap();
    assert_eq!(
        await_final(&ba, received).await.unwrap()[0].state,
        "delivered"
    );
    let fetched = request(
        &rs,
        &Request::Fetch {
            msg_id: received,
            envelope_only: false,
        },
    )
    .await
    .unwrap();
    assert!(matches!(fetched, Response::Message { .. }), "{fetched:?}");
    let marked = request(&rs, &Request::MarkRead { msg_id: received })
        .await
        .unwrap();
    assert!(matches!(marked, Response::Marked { .. }), "{marked:?}");
    rs.close().await;
    ba.close().await;
    // Entries up to the last that is not an echo of cosigning.
    let traffic = h
        .log("RS.MUP")
        .unwrap()
        .iter()
        .rposition(|e| e.event != Event::PeerCheckpoint)
        .map_or(0, |i| i as u64 + 1);

    // RS.MUP's newest checkpoint covers the traffic (echoes of cosigning
    // after it stay uncovered until the next), BA.SPS cosigned it, and the
    // receipts RS.MUP holds all have their inclusion proofs.
    let ba_key = h.roster().log_key(&authority("BA.SPS").unwrap()).unwrap();
    let cosigner =
        NoteVerifier::cosigner(&log_origin(&authority("BA.SPS").unwrap()), ba_key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let store = h.node("RS.MUP").unwrap().store();
        let covered = store.last_checkpoint().unwrap().map(|note| {
            let signed = SignedCheckpoint::parse(&note).unwrap();
            (
                signed.checkpoint().size(),
                signed.verify_cosignature(&cosigner).is_ok(),
            )
        });
        let unproven = store.unproven().unwrap().len();
        if unproven == 0 && covered.is_some_and(|(size, cosigned)| size >= traffic && cosigned) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RS.MUP's log did not settle within a minute: {traffic} entries of traffic, \
             newest checkpoint (size, cosigned) {covered:?}, {unproven} receipts unproven"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop("RS.MUP").await.unwrap();
    h.stop("BA.SPS").await.unwrap();

    let data = h.config("RS.MUP").unwrap().data_dir;
    let check = kurir_tests::verify_audit_log(h.roster(), "RS.MUP", &data).unwrap();
    copy_dir(&data, &out.join("data"));
    let list = |ids: &[kurir_proto::MessageId]| {
        ids.iter()
            .map(|id| format!("\"{id}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let expected = format!(
        "# What a store opened from data/ holds (written by tests/tests/store_fixture.rs).\n\
         authority = \"RS.MUP\"\n\
         sent = [{}]\n\
         received = [{}]\n\
         read = [{}]\n\
         entries = {}\n\
         checkpoints = {}\n",
        list(&sent),
        list(&[received]),
        list(&[received]),
        check.bundle.entries.len(),
        check.bundle.checkpoints.len(),
    );
    std::fs::write(out.join("expected.toml"), expected).unwrap();
    h.shutdown().await.unwrap();
}
