//! The runbooks of `docs/PKI.md` performed step by step with the real
//! binaries, as an administrator would: §4.1 "add a member, live" and §7.1
//! "remove a member, live". `kurir-certs` (`kurir-test-certs`, built from
//! the binary's own sources), `kurir-relay roster install`
//! (`kurir-test-relay-cli`) and `kurir` (`kurir-test-cli`) run as child
//! processes; the relays run in-process, so the step "send the relay
//! `SIGHUP`" is `Node::reload_roster`, what the binary's `SIGHUP` handler
//! calls. Each step's exit code and output are checked as PKI.md shows
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kurir_certs::files::Overwrite;
use kurir_certs::officer::Role;
use kurir_demo::federation::{self, LOCAL_HOST, MemberSpec};
use kurir_proto::AuthorityId;
use kurir_relay::clock::{Clock, SystemClock};
use kurir_relay::config::RelayConfig;
use kurir_relay::node::{Node, RosterReload};

const CERTS: &str = env!("CARGO_BIN_EXE_kurir-test-certs");
const RELAY: &str = env!("CARGO_BIN_EXE_kurir-test-relay-cli");
const KURIR: &str = env!("CARGO_BIN_EXE_kurir-test-cli");

/// How long a relay may take to adopt a roster from its peers (relays
/// here check every second).
const ADOPT_WITHIN: Duration = Duration::from_secs(30);

/// Runs `program args` in `dir`; its exit code and output.
fn run(program: &str, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(program)
        .current_dir(dir)
        .env_remove("KURIR_PROFILE")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a step that must exit 0; its stdout and stderr.
#[track_caller]
fn step(program: &str, dir: &Path, args: &[&str]) -> (String, String) {
    let (code, out, err) = run(program, dir, args);
    assert_eq!(code, 0, "{args:?}\nstdout: {out}\nstderr: {err}");
    (out, err)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `kurir` profile for an officer of `who`.
fn profile(
    dir: &Path,
    who: &str,
    addr: std::net::SocketAddr,
    officer_dir: &Path,
    roster: &Path,
) -> PathBuf {
    let path = dir.join(format!("{who}-officer.toml"));
    std::fs::write(
        &path,
        format!(
            "relay = \"{addr}\"\nserver_name = \"{LOCAL_HOST}\"\nauthority = \"{who}\"\n\
             officer_dir = \"{}\"\nroster = \"{}\"\n",
            officer_dir.display(),
            roster.display()
        ),
    )
    .unwrap();
    path
}

/// Waits until `node` has roster `version` in force.
fn await_version(node: &Node, who: &str, version: u64) {
    let deadline = Instant::now() + ADOPT_WITHIN;
    loop {
        let (v, _) = node.roster_in_force();
        if v == version {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} still has roster version {v}, not {version}, after {ADOPT_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn add_a_member_and_remove_a_member_as_pki_md_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The federation as it stands: RS.MUP and BA.SPS, roster version 1,
    // each relay with a roster file of its own (so a roster reaches BA.SPS
    // only through RS.MUP), checkpoints (and roster exchanges) every second.
    let specs: Vec<MemberSpec> = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|m| MemberSpec {
            id: AuthorityId::parse(m).unwrap(),
            name: format!("Authority {m}"),
            officers: vec![("duty officer".to_owned(), Role::Officer)],
            focal_points: vec![],
        })
        .collect();
    let mut fed = federation::found(&dir.join("fed"), &specs, clock.now()).unwrap();
    // The maintainers' working copy and two of the three roster keys.
    let work = dir.join("maintainers");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(&fed.roster_path, work.join("roster.cbor")).unwrap();
    for (i, key) in fed.roster_keys.iter().take(2).enumerate() {
        let path = work.join(format!("holder{}.key", i + 1));
        kurir_certs::keys::write_secret_key(&path, key, Overwrite::Refuse).unwrap();
    }
    let mut nodes = Vec::new();
    for m in &mut fed.members {
        let own = m.config_path.parent().unwrap().join("roster.cbor");
        std::fs::copy(&fed.roster_path, &own).unwrap();
        let text = std::fs::read_to_string(&m.config_path)
            .unwrap()
            .replace("path = \"../roster.cbor\"", "path = \"roster.cbor\"")
            + "\n[audit]\ncheckpoint_secs = 1\n";
        std::fs::write(&m.config_path, text).unwrap();
        let config = RelayConfig::load(&m.config_path).unwrap();
        nodes.push(
            rt.block_on(Node::start(config, clock.clone(), m.socket.take()))
                .unwrap(),
        );
    }
    let (rs, ba) = (&nodes[0], &nodes[1]);
    let rs_config = fed.members[0].config_path.clone();
    let ba_officer = fed.members[1]
        .officer_dir("duty officer")
        .unwrap()
        .to_owned();
    let ba_profile = profile(
        dir,
        "BA.SPS",
        ba.local_addr(),
        &ba_officer,
        &fed.members[1]
            .config_path
            .parent()
            .unwrap()
            .join("roster.cbor"),
    );

    // ---- §4.1 add a member, live ----
    // 1. AT.BMI creates its authority directory and an officer, and
    //    prepares its relay host (not started yet).
    let at_home = dir.join("at-bmi-host");
    std::fs::create_dir_all(&at_home).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let at_addr = socket.local_addr().unwrap();
    let port = at_addr.port().to_string();
    let (out, _) = step(
        CERTS,
        &at_home,
        &[
            "authority",
            "init",
            "--id",
            "AT.BMI",
            "--name",
            "Federal Ministry of the Interior",
            "--relay-host",
            LOCAL_HOST,
            "--relay-port",
            &port,
            "--out",
            "at-bmi",
        ],
    );
    assert!(out.contains("authority AT.BMI created in at-bmi"), "{out}");
    assert!(at_home.join("at-bmi/member.json").is_file());
    let (out, _) = step(
        CERTS,
        &at_home,
        &[
            "officer",
            "issue",
            "--authority",
            "at-bmi",
            "--name",
            "duty officer",
            "--role",
            "officer",
            "--days",
            "365",
            "--out",
            "officer",
        ],
    );
    assert!(
        out.contains("officer \"duty officer\" (officer) of AT.BMI"),
        "{out}"
    );

    // 2. The next roster version: add, two signatures, verify against v1.
    std::fs::copy(work.join("roster.cbor"), work.join("roster-v1.cbor")).unwrap();
    let member = at_home.join("at-bmi/member.json");
    let (_, err) = step(
        CERTS,
        &work,
        &[
            "roster",
            "add",
            "--roster",
            "roster.cbor",
            "--member",
            s(&member),
        ],
    );
    assert!(
        err.contains("added AT.BMI") && err.contains("wrote roster.cbor (version 2, unsigned)"),
        "{err}"
    );
    let (out, _) = step(
        CERTS,
        &work,
        &[
            "roster",
            "sign",
            "--roster",
            "roster.cbor",
            "--key",
            "holder1.key",
        ],
    );
    assert!(
        out.contains("signed version 2") && out.contains("not yet valid (1 of 2 needed)"),
        "{out}"
    );
    let (out, _) = step(
        CERTS,
        &work,
        &[
            "roster",
            "sign",
            "--roster",
            "roster.cbor",
            "--key",
            "holder2.key",
        ],
    );
    assert!(
        out.contains("2 signature(s); the roster is now valid"),
        "{out}"
    );
    let (out, err) = step(
        CERTS,
        &work,
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
        out.contains("version     2")
            && out.contains("members     3")
            && out.trim_end().ends_with("VALID"),
        "{out}{err}"
    );

    // 3. Installed at one running relay, RS.MUP.
    let v2 = work.join("roster.cbor");
    let (out, _) = step(
        RELAY,
        dir,
        &["roster", "install", s(&v2), "--config", s(&rs_config)],
    );
    assert!(
        out.contains("installed roster version 2 (fingerprint"),
        "{out}"
    );

    // 4. RS.MUP's reload (SIGHUP): version 2 in force, AT.BMI added.
    match rt.block_on(rs.reload_roster()).unwrap() {
        RosterReload::Applied { change, .. } => {
            assert_eq!((change.from, change.to), (1, 2));
            assert_eq!(change.added, vec![AuthorityId::parse("AT.BMI").unwrap()]);
        }
        other => panic!("{other:?}"),
    }

    // 5. BA.SPS takes it from its peer, with no restart.
    await_version(ba, "BA.SPS", 2);

    // 6. AT.BMI's relay starts with the new roster in its roster file.
    std::fs::copy(&v2, at_home.join("roster.cbor")).unwrap();
    let at_config = at_home.join("relay.toml");
    std::fs::write(
        &at_config,
        format!(
            "[identity]\nauthority = \"AT.BMI\"\nauthority_dir = \"at-bmi\"\n\n\
             [network]\nlisten = \"{at_addr}\"\n\n[roster]\npath = \"roster.cbor\"\n\n\
             [storage]\ndata_dir = \"data\"\ndurability = \"process-crash\"\n\n\
             [retry]\ninitial_secs = 1\nmax_secs = 5\n\n[audit]\ncheckpoint_secs = 1\n"
        ),
    )
    .unwrap();
    let at_node = rt
        .block_on(Node::start(
            RelayConfig::load(&at_config).unwrap(),
            clock.clone(),
            Some(socket),
        ))
        .unwrap();
    let at = &at_node;

    // 7. AT.BMI's officer exchanges with BA.SPS, which never restarted.
    let at_profile = profile(
        dir,
        "AT.BMI",
        at.local_addr(),
        &at_home.join("officer"),
        &at_home.join("roster.cbor"),
    );
    let (out, _) = step(
        KURIR,
        dir,
        &[
            "--profile",
            s(&at_profile),
            "send",
            "notice",
            "--to",
            "BA.SPS",
            "--subject",
            "Joint patrol",
            "--text",
            "06:00 at the crossing",
        ],
    );
    assert!(out.starts_with("sent operational-notice "), "{out}");
    let id = out
        .split_whitespace()
        .find(|w| w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4)
        .unwrap_or_else(|| panic!("no message id in {out}"))
        .to_owned();
    let (out, _) = step(
        KURIR,
        dir,
        &["--profile", s(&at_profile), "status", &id, "--wait", "30"],
    );
    assert!(out.contains("BA.SPS delivered after 1 attempt(s)"), "{out}");
    assert!(
        out.contains("accepted by BA.SPS") && out.contains("verified against the roster"),
        "{out}"
    );
    let (out, _) = step(KURIR, dir, &["--profile", s(&ba_profile), "inbox"]);
    assert!(
        out.contains(&id[..8]) || out.contains("Joint patrol"),
        "{out}"
    );
    assert!(out.contains("AT.BMI"), "{out}");

    // ---- §7.1 remove a member, live ----
    // 1. Remove BA.SPS; two signatures; verify against v2.
    std::fs::copy(work.join("roster.cbor"), work.join("roster-v2.cbor")).unwrap();
    let (_, err) = step(
        CERTS,
        &work,
        &[
            "roster",
            "remove",
            "--roster",
            "roster.cbor",
            "--id",
            "BA.SPS",
        ],
    );
    assert!(
        err.contains("removed BA.SPS") && err.contains("version 3"),
        "{err}"
    );
    for key in ["holder1.key", "holder2.key"] {
        step(
            CERTS,
            &work,
            &["roster", "sign", "--roster", "roster.cbor", "--key", key],
        );
    }
    let (out, _) = step(
        CERTS,
        &work,
        &[
            "roster",
            "verify",
            "--roster",
            "roster.cbor",
            "--previous",
            "roster-v2.cbor",
        ],
    );
    assert!(
        out.contains("version     3") && out.trim_end().ends_with("VALID"),
        "{out}"
    );
    // 2. Installed at RS.MUP and reloaded there.
    let (out, _) = step(
        RELAY,
        dir,
        &["roster", "install", s(&v2), "--config", s(&rs_config)],
    );
    assert!(
        out.contains("installed roster version 3 (fingerprint"),
        "{out}"
    );
    match rt.block_on(rs.reload_roster()).unwrap() {
        RosterReload::Applied { change, .. } => {
            assert_eq!(change.removed, vec![AuthorityId::parse("BA.SPS").unwrap()]);
        }
        other => panic!("{other:?}"),
    }
    // 3. AT.BMI takes it from RS.MUP.
    await_version(at, "AT.BMI", 3);
    // 4. An officer who addresses BA.SPS is told it is not a member.
    std::fs::copy(&v2, at_home.join("roster.cbor")).unwrap();
    let (code, out, err) = run(
        KURIR,
        dir,
        &[
            "--profile",
            s(&at_profile),
            "send",
            "notice",
            "--to",
            "BA.SPS",
            "--subject",
            "s",
            "--text",
            "t",
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("BA.SPS is not a member"), "{err}");

    rt.block_on(at_node.shutdown()).unwrap();
    for node in nodes {
        rt.block_on(node.shutdown()).unwrap();
    }
}
