#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kurir_proto::audit::{Entry, Record};
use kurir_proto::merkle::CompactRange;
use kurir_proto::{Digest, Timestamp};

use super::*;
use crate::testing::{T0, auth, empty, push};

/// A log of `n` entries, one a second from T0, each linked to the last.
fn log(n: u64) -> Vec<Entry> {
    let mut l = empty("RS.MUP");
    for i in 0..n {
        let mut e = Entry::new(
            Timestamp(T0 + i * 1000),
            Record::Started {
                version: format!("kurir-relay {i}"),
            },
        );
        e.prev = l.entries.last().map(Entry::leaf_hash);
        push(&mut l, e);
    }
    l.entries
}

fn root_at(entries: &[Entry], size: u64) -> Digest {
    let mut r = CompactRange::new();
    for e in &entries[..size as usize] {
        r.append(e.leaf_hash());
    }
    r.root()
}

fn cosigned(size: u64, root: Digest, at: Option<u64>) -> Witnessed {
    Witnessed {
        size,
        root,
        cosigned_at: at.map(Timestamp),
        source: WitnessSource::PeerLog {
            peer: auth("BA.SPS"),
            entry: 7,
        },
    }
}

const EXPORT: Timestamp = Timestamp(T0 + 3_600_000);

#[test]
fn witnessed_roots_that_match_and_are_covered_pass() {
    let entries = log(10);
    let views = [
        cosigned(4, root_at(&entries, 4), Some(T0)),
        cosigned(10, root_at(&entries, 10), Some(T0 + 20_000)),
    ];
    check_witnessed(&entries, 10, EXPORT, &views).unwrap();
}

#[test]
fn a_rewritten_entry_contradicts_the_root_a_peer_cosigned() {
    let original = log(10);
    let view = cosigned(8, root_at(&original, 8), Some(T0 + 10_000));
    let mut rewritten = original.clone();
    rewritten[6].code = Some("changed".into());
    let err = check_witnessed(&rewritten, 6, EXPORT, &[view]).unwrap_err();
    assert!(
        matches!(err, Problem::WitnessedRootDiffers { size: 8, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("rewritten"), "{err}");
}

#[test]
fn dropped_checkpoints_are_named_when_cosigned_before_the_export() {
    let entries = log(10);
    let view = cosigned(9, root_at(&entries, 9), Some(T0 + 10_000));
    // The bundle's newest checkpoint covers 5: 5..9 were cosigned before
    // the export yet no checkpoint of the bundle covers them.
    let err = check_witnessed(&entries, 5, EXPORT, std::slice::from_ref(&view)).unwrap_err();
    assert!(
        matches!(
            err,
            Problem::WitnessedNotCovered {
                size: 9,
                newest: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("dropped"), "{err}");
    // The log cut below the cosigned size as well.
    let err = check_witnessed(&entries[..7], 5, EXPORT, std::slice::from_ref(&view)).unwrap_err();
    assert!(err.to_string().contains("the log was cut"), "{err}");
    // Cosigned within the clock slack of the export (or after it): the
    // relay may have signed it after exporting.
    let late = Witnessed {
        cosigned_at: Some(Timestamp(EXPORT.0 - MAX_CLOCK_SKEW_MS + 1)),
        ..view.clone()
    };
    check_witnessed(&entries, 5, EXPORT, &[late]).unwrap();
    // A checkpoint with no cosignature is not dated: only its root counts.
    let undated = Witnessed {
        cosigned_at: None,
        ..view
    };
    check_witnessed(&entries, 5, EXPORT, &[undated]).unwrap();
}

#[test]
fn cosignatures_and_checkpoints_after_the_export_are_refused() {
    let entries = log(10);
    let ok = vec![(10, vec![(auth("BA.SPS"), (T0 + 20_000) / 1000)])];
    check_times(&entries, &ok, EXPORT).unwrap();
    // A cosignature an hour after the export.
    let late = vec![(10, vec![(auth("BA.SPS"), (EXPORT.0 + 3_600_000) / 1000)])];
    let err = check_times(&entries, &late, EXPORT).unwrap_err();
    assert!(
        matches!(err, Problem::CosignedAfterExport { number: 1, .. }),
        "{err}"
    );
    // A checkpoint covering entries dated after the export.
    let err = check_times(&entries, &ok, Timestamp(T0 - MAX_CLOCK_SKEW_MS - 1)).unwrap_err();
    assert!(
        matches!(err, Problem::CheckpointAfterExport { entry: 9, .. }),
        "{err}"
    );
}
