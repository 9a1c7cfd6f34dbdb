//! Smoke test of `kurir-bench --mode federation`: three relays, a few
//! notices each, a 2 s idle phase; every notice delivered and the counts
//! consistent with what was sent.

use std::process::Command;

#[test]
fn three_relays_deliver_every_notice_and_count_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_kurir-bench"))
        .args([
            "--mode",
            "federation",
            "--relays",
            "3",
            "-m",
            "4",
            "-w",
            "2",
            "--idle-secs",
            "2",
            "--checkpoint-secs",
            "1",
            "--verify-every",
            "2",
            "--json",
        ])
        .output()
        .expect("kurir-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kurir-bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "one line per N: {stdout}");
    assert_eq!(lines[0]["type"], "federation");
    let r = &lines[0]["data"];
    assert_eq!(r["relays"], 3);
    // 3 relays × 4 notices, each followed to a stored receipt; notices
    // 0 and 2 of each relay verified here.
    assert_eq!(r["delivered"], 12);
    assert_eq!(r["receipts_verified"], 6);
    assert!(r["msgs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["idle_secs"].as_f64().unwrap() >= 2.0);
    let relays = r["per_relay"].as_array().unwrap();
    assert_eq!(relays.len(), 3);
    let mut ids: Vec<_> = relays
        .iter()
        .map(|p| p["authority"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["XA.R01", "XA.R02", "XA.R03"]);
    for p in relays {
        let busy = &p["busy"];
        // Each relay submitted 4 (submitted + delivered entries) and
        // received 4 (2 from each other member): at least 12 entries.
        assert!(
            busy["entries"].as_u64().unwrap() >= 12,
            "{}: {busy}",
            p["authority"]
        );
        assert!(p["busy_data_bytes"].as_i64().unwrap() > 0, "{p}");
        // The traffic earned a checkpoint (signed at the next 1 s tick),
        // and the relay cosigned a checkpoint of a member's.
        assert!(busy["checkpoints"].as_u64().unwrap() >= 1, "{p}");
        assert!(busy["cosigned_for_peers"].as_u64().unwrap() >= 1, "{p}");
        assert!(p["busy_cpu_secs"].as_f64().unwrap() >= 0.0);
        // Idle: only cosigning echoes at most, never messages.
        let idle = &p["idle"];
        assert!(
            idle["entries"].as_u64().unwrap() <= idle["cosigned_for_peers"].as_u64().unwrap(),
            "{p}"
        );
        assert!(p["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
}
