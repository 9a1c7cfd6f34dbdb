//! The `kurir-certs` binary: the admin's path, and exit codes on bad input.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kurir-certs"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert_eq!(
        code(&o),
        0,
        "{args:?}\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[track_caller]
fn fails(dir: &Path, args: &[&str], exit: i32, expect: &str) -> String {
    let o = run(dir, args);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(code(&o), exit, "{args:?}\n{all}");
    assert!(
        all.contains(expect),
        "{args:?}: expected {expect:?} in\n{all}"
    );
    all
}

fn init(dir: &Path, id: &str, host: &str) {
    ok(
        dir,
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

#[test]
fn found_a_federation_sign_verify_rotate_and_roll_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    init(d, "RS.MUP", "relay.rs.example");
    init(d, "BA.SPS", "relay.ba.example");
    for k in ["k1", "k2", "k3"] {
        let out = ok(d, &["roster", "keygen", "--out", k]);
        assert!(out.starts_with("roster key "), "{out}");
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
            "--key",
            "ops=k3.pub",
        ],
    );
    ok(
        d,
        &[
            "roster",
            "add",
            "--roster",
            "roster.cbor",
            "--member",
            "RS.MUP/member.json",
            "--focal-point",
            "Ana Anić|duty officer|+381 11 000 000|ana@mup.example",
        ],
    );
    ok(
        d,
        &[
            "roster",
            "add",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS/member.json",
            "--kinds",
            "operational-notice,readmission-request,readmission-reply",
        ],
    );
    // A duplicate member is refused (3), the file unchanged.
    fails(
        d,
        &[
            "roster",
            "add",
            "--roster",
            "roster.cbor",
            "--member",
            "BA.SPS/member.json",
        ],
        3,
        "BA.SPS is already a member",
    );
    // Unsigned: not valid (4), and says why.
    fails(
        d,
        &["roster", "verify", "--roster", "roster.cbor"],
        4,
        "0 valid signature(s) by this roster's keys, 2 required",
    );
    ok(
        d,
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k1"],
    );
    fails(
        d,
        &["roster", "verify", "--roster", "roster.cbor"],
        4,
        "1 valid signature(s)",
    );
    ok(
        d,
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k3"],
    );
    let out = ok(d, &["roster", "verify", "--roster", "roster.cbor"]);
    assert!(
        out.contains("VALID") && out.contains("version     1"),
        "{out}"
    );
    let show = ok(d, &["roster", "show", "--roster", "roster.cbor"]);
    assert!(
        show.contains("member RS.MUP") && show.contains("Ana Anić (duty officer)"),
        "{show}"
    );
    let json = ok(d, &["roster", "show", "--roster", "roster.cbor", "--json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "roster");
    assert_eq!(lines[0]["data"]["version"], 1);
    assert_eq!(lines.iter().filter(|l| l["type"] == "member").count(), 2);
    assert_eq!(lines.last().unwrap()["data"]["valid"], true);
    fs::copy(d.join("roster.cbor"), d.join("roster-v1.cbor")).unwrap();

    // Tampering with the file: verify fails with 4 and names the signatures.
    let mut bytes = fs::read(d.join("roster.cbor")).unwrap();
    let at = bytes.windows(6).position(|w| w == b"BA.SPS").unwrap();
    bytes[at + 3] = b'X';
    fs::write(d.join("tampered.cbor"), &bytes).unwrap();
    fails(
        d,
        &["roster", "verify", "--roster", "tampered.cbor"],
        4,
        "does not match the body",
    );
    let o = run(
        d,
        &["roster", "verify", "--roster", "tampered.cbor", "--json"],
    );
    assert_eq!(code(&o), 4);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bad: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "problem").collect();
    assert_eq!(bad.len(), 3, "{lines:?}"); // two bad signatures and too few
    assert!(
        bad[0]["data"]["message"]
            .as_str()
            .unwrap()
            .starts_with("signatures[0]")
    );
    assert_eq!(lines.last().unwrap()["data"]["valid"], false);

    // Key rotation: a new message key, the roster updated to version 2.
    let out = ok(
        d,
        &[
            "authority",
            "rotate-key",
            "--authority",
            "RS.MUP",
            "--in-days",
            "1",
        ],
    );
    assert!(out.starts_with("message key "), "{out}");
    ok(
        d,
        &[
            "roster",
            "update",
            "--roster",
            "roster.cbor",
            "--member",
            "RS.MUP/member.json",
        ],
    );
    ok(
        d,
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k2"],
    );
    ok(
        d,
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k3"],
    );
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
    assert!(out.contains("version     2"), "{out}");
    let show = ok(d, &["roster", "show", "--roster", "roster.cbor"]);
    assert_eq!(show.matches("message key ").count(), 3, "{show}");
    assert!(!show.contains("log key was"), "{show}");

    // Log-key rotation: log.key.1 keeps the old key, member.json lists it,
    // the roster (version 3) carries it with its end.
    std::fs::copy(d.join("roster.cbor"), d.join("roster-v2.cbor")).unwrap();
    let old_log = std::fs::read(d.join("RS.MUP/log.key")).unwrap();
    let out = ok(
        d,
        &[
            "authority",
            "rotate-log-key",
            "--authority",
            "RS.MUP",
            "--until-days",
            "3",
        ],
    );
    assert!(out.starts_with("log key "), "{out}");
    assert_eq!(std::fs::read(d.join("RS.MUP/log.key.1")).unwrap(), old_log);
    assert_ne!(std::fs::read(d.join("RS.MUP/log.key")).unwrap(), old_log);
    for args in [
        &[
            "roster",
            "update",
            "--roster",
            "roster.cbor",
            "--member",
            "RS.MUP/member.json",
        ][..],
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k2"],
        &["roster", "sign", "--roster", "roster.cbor", "--key", "k3"],
    ] {
        ok(d, args);
    }
    let out = ok(
        d,
        &[
            "roster",
            "verify",
            "--roster",
            "roster.cbor",
            "--previous",
            "roster-v2.cbor",
        ],
    );
    assert!(out.contains("version     3"), "{out}");
    let show = ok(d, &["roster", "show", "--roster", "roster.cbor"]);
    assert_eq!(show.matches("log key was ").count(), 1, "{show}");
    // A second rotation keeps both earlier keys.
    ok(
        d,
        &[
            "authority",
            "rotate-log-key",
            "--authority",
            "RS.MUP",
            "--until-days",
            "5",
        ],
    );
    assert!(d.join("RS.MUP/log.key.2").exists());
    let member = std::fs::read_to_string(d.join("RS.MUP/member.json")).unwrap();
    assert!(member.matches("\"valid_until\"").count() >= 2, "{member}");
    // An end before the earlier key's end is refused.
    fails(
        d,
        &[
            "authority",
            "rotate-log-key",
            "--authority",
            "RS.MUP",
            "--until-days",
            "1",
        ],
        3,
        "must stay valid after the earlier one ends",
    );
    // Rolling back to version 1 is refused.
    fails(
        d,
        &[
            "roster",
            "verify",
            "--roster",
            "roster-v1.cbor",
            "--previous",
            "roster.cbor",
        ],
        4,
        "refusing a rollback",
    );
}

#[test]
fn officers_issue_and_revoke() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    init(d, "RS.MUP", "relay.rs.example");
    let out = ok(
        d,
        &[
            "officer",
            "issue",
            "--authority",
            "RS.MUP",
            "--name",
            "Ana Anić",
            "--role",
            "auditor",
            "--days",
            "30",
            "--out",
            "ana",
        ],
    );
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial "))
        .unwrap()
        .to_owned();
    let mode = fs::metadata(d.join("ana/officer.key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Issuing into the same directory again is refused (5).
    fails(
        d,
        &[
            "officer",
            "issue",
            "--authority",
            "RS.MUP",
            "--name",
            "Ana",
            "--role",
            "officer",
            "--out",
            "ana",
        ],
        5,
        "already exists",
    );
    fails(
        d,
        &[
            "officer",
            "issue",
            "--authority",
            "RS.MUP",
            "--name",
            "Ana",
            "--role",
            "boss",
            "--out",
            "x",
        ],
        2,
        "unknown role",
    );
    let out = ok(d, &["officer", "revoke", "--authority", "RS.MUP", &serial]);
    assert!(
        out.contains("revoked") && out.contains("CRL number 2"),
        "{out}"
    );
    let out = ok(
        d,
        &[
            "officer",
            "revoke",
            "--authority",
            "RS.MUP",
            "ana/officer.crt.pem",
        ],
    );
    assert!(out.contains("already revoked"), "{out}");
    fails(
        d,
        &["officer", "revoke", "--authority", "RS.MUP", "zz"],
        3,
        "SERIAL|FILE",
    );
}

#[test]
fn bad_input_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Usage.
    fails(d, &["roster", "frobnicate"], 2, "unrecognized subcommand");
    // Malformed authority id.
    fails(
        d,
        &[
            "authority",
            "init",
            "--id",
            "rs.mup",
            "--name",
            "x",
            "--relay-host",
            "h.example",
            "--out",
            "x",
        ],
        3,
        "--id: invalid authority id \"rs.mup\"",
    );
    // Missing file.
    fails(
        d,
        &["roster", "verify", "--roster", "missing.cbor"],
        3,
        "missing.cbor: cannot read",
    );
    // Not a roster.
    fs::write(d.join("junk.cbor"), b"hello").unwrap();
    fails(
        d,
        &["roster", "verify", "--roster", "junk.cbor"],
        4,
        "not a kurir roster",
    );
    // Existing output.
    init(d, "RS.MUP", "relay.rs.example");
    fails(
        d,
        &[
            "authority",
            "init",
            "--id",
            "RS.MUP",
            "--name",
            "x",
            "--relay-host",
            "h.example",
            "--out",
            "RS.MUP",
        ],
        5,
        "already exists; refusing to overwrite it (pass --force",
    );
    // A key file readable by others.
    ok(d, &["roster", "keygen", "--out", "k1"]);
    ok(
        d,
        &[
            "roster",
            "new",
            "--out",
            "r.cbor",
            "--threshold",
            "1",
            "--key",
            "k1.pub",
        ],
    );
    fs::set_permissions(d.join("k1"), fs::Permissions::from_mode(0o644)).unwrap();
    fails(
        d,
        &["roster", "sign", "--roster", "r.cbor", "--key", "k1"],
        3,
        "k1: private key file has mode 0644",
    );
    // A roster key given as garbage.
    fails(
        d,
        &[
            "roster",
            "new",
            "--out",
            "r2.cbor",
            "--threshold",
            "1",
            "--key",
            "nothex",
        ],
        3,
        "neither a readable file nor a key",
    );
    // Threshold above the number of keys.
    fails(
        d,
        &[
            "roster",
            "new",
            "--out",
            "r3.cbor",
            "--threshold",
            "2",
            "--key",
            "k1.pub",
        ],
        3,
        "threshold: 2 is not between 1 and the number of roster keys (1)",
    );
    // --help documents the exit codes.
    let help = ok(d, &["--help"]);
    assert!(
        help.contains("Exit codes:") && help.contains("verification failed"),
        "{help}"
    );
}
