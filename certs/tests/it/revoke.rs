//! Revocation in the roster through `kurir-certs`: `roster revoke-node`
//! and `roster revoke-key` edit the draft, `verify` and `show` print the
//! revocations and the key-lifetime warnings; a roster that revokes nothing
//! keeps its bytes (a file written before the fields existed decodes and
//! re-encodes to the same bytes and fingerprint).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use kurir_certs::roster::{self, SignedRoster};
use kurir_proto::Timestamp;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kurir-certs"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{args:?}\n{out}\n{err}");
    format!("{out}{err}")
}

#[track_caller]
fn fails(dir: &Path, args: &[&str], exit: i32, expect: &str) {
    let o = run(dir, args);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(exit), "{args:?}\n{all}");
    assert!(
        all.contains(expect),
        "{args:?}: expected {expect:?} in\n{all}"
    );
}

fn sign(d: &Path) {
    ok(
        d,
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k1"],
    );
    ok(
        d,
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k2"],
    );
}

fn federation(d: &Path) {
    for (id, host) in [
        ("RS.MUP", "relay.rs.example"),
        ("BA.SPS", "relay.ba.example"),
    ] {
        ok(
            d,
            &[
                "authority",
                "init",
                "--id",
                id,
                "--name",
                "Ministry",
                "--relay-host",
                host,
                "--relay-port",
                "7443",
                "--out",
                id,
            ],
        );
    }
    // Open-ended keys, as every key `authority init` made before keys were
    // bounded: taken only with --allow-long-key.
    open_ended(&d.join("RS.MUP/member.json"));
    open_ended(&d.join("BA.SPS/member.json"));
    for k in ["k1", "k2"] {
        ok(d, &["roster", "keygen", "--out", k]);
    }
    ok(
        d,
        &[
            "roster",
            "new",
            "--out",
            "roster.cbor",
            "--threshold",
            "2",
            "--key",
            "k1.pub",
            "--key",
            "k2.pub",
        ],
    );
    for m in ["RS.MUP/member.json", "BA.SPS/member.json"] {
        let add = ["roster", "add", "--roster", "roster.cbor", "--member", m];
        fails(d, &add, 2, "has no valid_until (at most 730 days)");
        ok(d, &[&add[..], &["--allow-long-key"]].concat());
    }
    sign(d);
}

/// Removes `valid_until` from every message key of a member.json.
fn open_ended(path: &Path) {
    let mut member: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    for k in member["message_keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("valid_until");
    }
    fs::write(path, serde_json::to_string_pretty(&member).unwrap()).unwrap();
}

/// (valid_from, valid_until) of the newest message key of a member.json.
fn newest_window(path: &Path) -> (u64, Option<u64>) {
    let member: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let k = member["message_keys"].as_array().unwrap().last().unwrap();
    (k["valid_from"].as_u64().unwrap(), k["valid_until"].as_u64())
}

const DAY: u64 = 86_400_000;

/// Key lifetimes bounded: `authority init` and `rotate-key` give a new key
/// a `valid_until` (730 days by default, `--key-days`); `roster add` and
/// `update` refuse a new key without one or valid for more than 730 days
/// unless `--allow-long-key`; a key already in the roster (BA.SPS's
/// open-ended one) stays and only warns.
#[test]
fn new_message_keys_are_bounded_and_a_longer_one_needs_allow_long_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    federation(d);
    let init = |id: &str, host: &str, more: &[&str]| {
        let args = [
            &[
                "authority",
                "init",
                "--id",
                id,
                "--name",
                "Ministry",
                "--relay-host",
                host,
                "--out",
                id,
            ][..],
            more,
        ]
        .concat();
        ok(d, &args);
    };
    init("MK.MVR", "relay.mk.example", &[]);
    let (from, until) = newest_window(&d.join("MK.MVR/member.json"));
    assert_eq!(until, Some(from + 730 * DAY), "init's default");
    ok(
        d,
        &[
            "roster",
            "add",
            "--roster",
            "roster.cbor",
            "--member",
            "MK.MVR/member.json",
        ],
    );

    // A member whose key is valid for 731 days: refused, then taken with
    // --allow-long-key (a warning).
    init("ME.UP", "relay.me.example", &["--key-days", "731"]);
    let add = [
        "roster",
        "add",
        "--roster",
        "roster.cbor",
        "--member",
        "ME.UP/member.json",
    ];
    fails(d, &add, 2, "is valid for 731 days, more than 730");
    fails(d, &add, 2, "--allow-long-key");
    let out = ok(d, &[&add[..], &["--allow-long-key"]].concat());
    assert!(out.contains("warning: ME.UP: new message key"), "{out}");

    // rotate-key --key-days 30: bounded; roster update takes it.
    ok(
        d,
        &[
            "authority",
            "rotate-key",
            "--authority",
            "RS.MUP",
            "--key-days",
            "30",
        ],
    );
    let (from, until) = newest_window(&d.join("RS.MUP/member.json"));
    assert_eq!(until, Some(from + 30 * DAY));
    let update = [
        "roster",
        "update",
        "--roster",
        "roster.cbor",
        "--member",
        "RS.MUP/member.json",
    ];
    ok(d, &update);
    // rotate-key --key-days 1000: refused by roster update.
    ok(
        d,
        &[
            "authority",
            "rotate-key",
            "--authority",
            "RS.MUP",
            "--in-days",
            "8",
            "--key-days",
            "1000",
        ],
    );
    fails(d, &update, 2, "is valid for 1000 days, more than 730");
    ok(d, &[&update[..], &["--allow-long-key"]].concat());
    fails(
        d,
        &[
            "authority",
            "rotate-key",
            "--authority",
            "RS.MUP",
            "--in-days",
            "9",
            "--key-days",
            "0",
        ],
        3,
        "--key-days",
    );

    // BA.SPS's open-ended key is already in the roster: an update without
    // --allow-long-key takes the member, the roster still verifies with a
    // warning (MK.MVR's bounded key has none).
    ok(
        d,
        &[
            "roster",
            "update",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS/member.json",
        ],
    );
    sign(d);
    let out = ok(d, &["roster", "verify", "--roster", "roster.cbor"]);
    assert!(out.contains("VALID"), "{out}");
    assert!(
        out.contains("warning: BA.SPS: message/receipt key") && out.contains("has no valid_until"),
        "{out}"
    );
    assert!(!out.contains("warning: MK.MVR"), "{out}");
}

fn ba_kid(d: &Path) -> String {
    let member: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join("BA.SPS/member.json")).unwrap()).unwrap();
    member["message_keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn revoke_node_and_revoke_key_edit_the_draft_and_verify_prints_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    federation(d);
    // Open-ended keys (every key `authority init` makes): a warning, still valid.
    let out = ok(d, &["roster", "verify", "--roster", "roster.cbor"]);
    assert!(out.contains("VALID"), "{out}");
    assert!(
        out.contains("warning: BA.SPS: message/receipt key") && out.contains("has no valid_until"),
        "{out}"
    );
    let v1 = fs::read(d.join("roster.cbor")).unwrap();

    let cert = fs::read_to_string(d.join("BA.SPS/node.crt.pem")).unwrap();
    let der = kurir_certs::x509::pem_certificates(&cert).unwrap();
    let sha = kurir_certs::x509::fingerprint(&der[0]);
    // The certificate must be the member's.
    fails(
        d,
        &[
            "roster",
            "revoke-node",
            "--roster",
            "roster.cbor",
            "--member",
            "RS.MUP",
            "--cert",
            "BA.SPS/node.crt.pem",
            "--reason",
            "stolen",
        ],
        2,
        "is not a node certificate of RS.MUP",
    );
    fails(
        d,
        &[
            "roster",
            "revoke-node",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS",
            "--fingerprint",
            "abcd",
            "--reason",
            "stolen",
        ],
        2,
        "64 hex digits",
    );
    let out = ok(
        d,
        &[
            "roster",
            "revoke-node",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS",
            "--cert",
            "BA.SPS/node.crt.pem",
            "--reason",
            "relay host stolen",
        ],
    );
    assert!(
        out.contains(&format!("revoked node certificate sha256 {sha} of BA.SPS")),
        "{out}"
    );
    assert!(out.contains("unsigned draft of version 2"), "{out}");
    // The same again: refused, the file unchanged.
    let draft = fs::read(d.join("roster.cbor")).unwrap();
    fails(
        d,
        &[
            "roster",
            "revoke-node",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS",
            "--fingerprint",
            &sha,
            "--reason",
            "again",
        ],
        3,
        "is already revoked",
    );
    assert_eq!(fs::read(d.join("roster.cbor")).unwrap(), draft);

    let kid = ba_kid(d);
    fails(
        d,
        &[
            "roster",
            "revoke-key",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS",
            "--kid",
            &kid,
            "--at",
            "yesterday",
        ],
        2,
        "neither Unix milliseconds",
    );
    ok(
        d,
        &[
            "roster",
            "revoke-key",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS",
            "--kid",
            &kid,
            "--at",
            "2099-01-01T00:00:00Z",
        ],
    );
    sign(d);
    fs::write(d.join("roster-v1.cbor"), &v1).unwrap();
    let out = ok(
        d,
        &[
            "roster",
            "verify",
            "--roster",
            "roster.cbor",
            "--previous",
            "roster-v1.cbor",
        ],
    );
    assert!(
        out.contains("VALID") && out.contains("version     2"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "revoked     BA.SPS node certificate sha256 {sha} at "
        )) && out.contains("(relay host stolen)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "revoked     BA.SPS message key {kid} from 2099-01-01T00:00:00.000Z"
        )),
        "{out}"
    );
    // A revoked key is not flagged by the lifetime rule; RS.MUP's still is.
    assert!(!out.contains("warning: BA.SPS"), "{out}");
    assert!(out.contains("warning: RS.MUP"), "{out}");
    let show = ok(d, &["roster", "show", "--roster", "roster.cbor"]);
    assert!(
        show.contains("REVOKED at 2099-01-01T00:00:00.000Z"),
        "{show}"
    );
    assert!(
        show.contains(&format!("revoked node certificate sha256 {sha}")),
        "{show}"
    );
    let json = ok(d, &["roster", "show", "--roster", "roster.cbor", "--json"]);
    let ba = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["type"] == "member" && l["data"]["id"] == "BA.SPS")
        .unwrap();
    assert_eq!(ba["data"]["revoked_node_certs"][0]["sha256"], sha.as_str());
    assert_eq!(
        ba["data"]["revoked_node_certs"][0]["reason"],
        "relay host stolen"
    );
    assert_eq!(
        ba["data"]["message_keys"][0]["revoked_at"],
        4_070_908_800_000u64
    );

    // The revocations survive `roster update` from member.json.
    ok(
        d,
        &[
            "roster",
            "update",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS/member.json",
        ],
    );
    let body = SignedRoster::load(&d.join("roster.cbor"))
        .unwrap()
        .body()
        .unwrap();
    let m = body
        .members
        .iter()
        .find(|m| m.id.as_str() == "BA.SPS")
        .unwrap();
    assert_eq!(m.revoked_node_certs.len(), 1);
    assert_eq!(
        m.message_keys[0].revoked_at,
        Some(Timestamp(4_070_908_800_000))
    );

    // Version 1, which revokes nothing, carries neither field.
    let text = String::from_utf8_lossy(&v1);
    assert!(
        !text.contains("revoked"),
        "a roster without revocations names none"
    );
}

/// A roster written by kurir-certs before revocations existed (version 1
/// of RS.MUP and BA.SPS, 2 of 2 roster keys): the same bytes, the same
/// fingerprint, the same body bytes when re-encoded.
#[test]
fn a_roster_from_before_revocations_keeps_its_bytes_and_fingerprint() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/roster-before-revocation.cbor");
    let bytes = fs::read(&path).unwrap();
    let signed = SignedRoster::decode(&bytes).unwrap();
    assert_eq!(signed.encode().unwrap(), bytes);
    assert_eq!(
        signed.fingerprint(),
        include_str!("../data/roster-before-revocation.sha256").trim()
    );
    let body = signed.body().unwrap();
    assert!(body.members.iter().all(|m| m.revoked_node_certs.is_empty()
        && m.message_keys.iter().all(|k| k.revoked_at.is_none())));
    // The body re-encodes to the bytes that were signed.
    assert_eq!(body.encode().unwrap(), signed.body_bytes);
    let (checked, problems) = signed.check_with(None, body.issued_at, roster::CaDates::Unchecked);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(checked.unwrap(), body);
    assert_eq!(
        kurir_certs::Roster::verify_against_with(
            &bytes,
            None,
            body.issued_at,
            roster::CaDates::Unchecked
        )
        .unwrap()
        .fingerprint(),
        signed.fingerprint()
    );
}
