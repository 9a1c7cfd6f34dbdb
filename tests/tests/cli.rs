//! End-to-end tests of the `kurir` command line: a federation founded in a
//! temp dir, relays running in-process on 127.0.0.1 with a manual clock, and
//! the command line (`kurir-test-cli`, the `kurir` binary's `main`) driven as
//! an officer would, with one profile per officer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use kurir_certs::officer::Role;
use kurir_demo::federation::{self, LOCAL_HOST, MemberSpec};
use kurir_proto::AuthorityId;
use kurir_relay::clock::{Clock, ManualClock, SystemClock};
use kurir_relay::config::RelayConfig;
use kurir_relay::node::Node;
use serde_json::Value;

const DAY_MS: u64 = 86_400_000;

/// The `kurir` command line under test (`src/bin/kurir-test-cli.rs`).
const KURIR: &str = env!("CARGO_BIN_EXE_kurir-test-cli");

/// A running federation and a profile per officer.
struct Fed {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    nodes: Vec<Node>,
    clock: ManualClock,
    /// (authority, officer name) -> profile path.
    profiles: HashMap<(String, String), PathBuf>,
}

impl Fed {
    fn start(members: &[&str]) -> Fed {
        Fed::start_with(members, 0, |_| {})
    }

    /// Founds (`days_ago` days before now), runs `before` on the founded
    /// federation, then starts the relays.
    fn start_with(
        members: &[&str],
        days_ago: u64,
        before: impl FnOnce(&federation::Federation),
    ) -> Fed {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // The relays' clock starts at the real time (TLS checks use it) and
        // moves only when a test says so.
        let clock = ManualClock::new(SystemClock.now());
        let specs: Vec<MemberSpec> = members
            .iter()
            .map(|m| MemberSpec {
                id: AuthorityId::parse(m).unwrap(),
                name: format!("Authority {m}"),
                officers: vec![
                    ("duty officer".to_owned(), Role::Officer),
                    ("auditor".to_owned(), Role::Auditor),
                    ("former officer".to_owned(), Role::Officer),
                ],
                focal_points: vec![],
            })
            .collect();
        let founded_at = kurir_proto::Timestamp(clock.now().0 - days_ago * DAY_MS);
        let mut fed = federation::found(&dir.path().join("fed"), &specs, founded_at).unwrap();
        before(&fed);
        let mut nodes = Vec::new();
        let mut profiles = HashMap::new();
        for m in &mut fed.members {
            let config = RelayConfig::load(&m.config_path).unwrap();
            let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
            let node = rt
                .block_on(Node::start(config, shared_clock, m.socket.take()))
                .unwrap();
            for (name, _, officer_dir) in &m.officers {
                let path = dir
                    .path()
                    .join(format!("{}-{}.toml", m.id, name.replace(' ', "_")));
                std::fs::write(
                    &path,
                    format!(
                        "relay = \"{}\"\nserver_name = \"{LOCAL_HOST}\"\nauthority = \"{}\"\n\
                         officer_dir = \"{}\"\nroster = \"{}\"\n",
                        node.local_addr(),
                        m.id,
                        officer_dir.display(),
                        fed.roster_path.display()
                    ),
                )
                .unwrap();
                profiles.insert((m.id.to_string(), name.clone()), path);
            }
            nodes.push(node);
        }
        Fed {
            dir,
            rt,
            nodes,
            clock,
            profiles,
        }
    }

    /// Like [`Fed::start`], with relays that sign a checkpoint every
    /// second (when there is news) and so cosign each other's.
    fn start_checkpointing(members: &[&str]) -> Fed {
        Fed::start_with(members, 0, |f| {
            for m in &f.members {
                let mut text = std::fs::read_to_string(&m.config_path).unwrap();
                text.push_str("\n[audit]\ncheckpoint_secs = 1\n");
                std::fs::write(&m.config_path, text).unwrap();
            }
        })
    }

    fn profile(&self, who: &str, officer: &str) -> &Path {
        &self.profiles[&(who.to_owned(), officer.to_owned())]
    }

    /// `kurir --profile <who's duty officer profile>`.
    fn kurir(&self, who: &str) -> Command {
        self.kurir_as(who, "duty officer")
    }

    fn kurir_as(&self, who: &str, officer: &str) -> Command {
        let mut cmd = Command::new(KURIR);
        cmd.env_remove("KURIR_PROFILE")
            .current_dir(self.dir.path())
            .arg("--profile")
            .arg(self.profile(who, officer))
            .timeout(Duration::from_secs(60));
        cmd
    }

    /// Stops the relay of `who` (the `i`th member) and starts it again on
    /// the same port and data directory.
    fn restart(&mut self, i: usize, who: &str) {
        let node = self.nodes.remove(i);
        self.rt.block_on(node.shutdown()).unwrap();
        let config_path = self.dir.path().join(format!("fed/{who}/relay.toml"));
        let config = RelayConfig::load(&config_path).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        // The stopped relay's port and database lock are released a moment
        // after it stops.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let node = loop {
            let started = self
                .rt
                .block_on(Node::start(config.clone(), clock.clone(), None));
            if started.is_ok() || std::time::Instant::now() > deadline {
                break started.unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.nodes.insert(i, node);
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for Fed {
    fn drop(&mut self) {
        for node in self.nodes.drain(..) {
            let _ = self.rt.block_on(node.shutdown());
        }
    }
}

/// Runs a command that must succeed and returns its JSON lines.
fn json_ok(cmd: &mut Command) -> Vec<Value> {
    let out = cmd.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed with {:?}\nstdout: {}\nstderr: {}",
        cmd,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            assert!(l.starts_with("{\"type\":\""), "type comes first: {l}");
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["type"].is_string() && v.get("data").is_some(), "{l}");
            v
        })
        .collect()
}

/// The `data` of the only line of `kind`.
fn one(lines: &[Value], kind: &str) -> Value {
    let found: Vec<&Value> = lines.iter().filter(|l| l["type"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} line expected in {lines:?}");
    found[0]["data"].clone()
}

/// Runs a command that must fail with `code`; returns stderr.
fn fails(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "no data on failure: {out:?}");
    stderr
}

/// Waits (polling `kurir status --wait`) until the message is delivered to
/// every recipient; checks each receipt verified.
fn delivered(fed: &Fed, who: &str, msg_id: &str) -> Value {
    let lines = json_ok(fed.kurir(who).args(["status", msg_id, "--wait", "30"]));
    delivered_in(&lines, msg_id)
}

/// The `status` line among `lines` (of `kurir status --wait`, or of a
/// command that sent `msg_id` with `--wait`): every delivery delivered,
/// its receipt verified, accepted and signed by the recipient.
fn delivered_in(lines: &[Value], msg_id: &str) -> Value {
    let status = one(lines, "status");
    assert_eq!(status["summary"]["msg_id"], msg_id, "{status}");
    for d in status["deliveries"].as_array().unwrap() {
        assert_eq!(d["state"], "delivered", "{status}");
        assert_eq!(d["receipt"]["verified"], true, "{status}");
        assert_eq!(d["receipt"]["status"], "accepted", "{status}");
        assert_eq!(d["receipt"]["signer"], d["peer"], "{status}");
    }
    status
}

fn person_file(fed: &Fed) -> PathBuf {
    let out = fed
        .kurir("RS.MUP")
        .args(["readmission", "template"])
        .output()
        .unwrap();
    assert!(out.status.success());
    fed.file("person.toml", &out.stdout)
}

/// Sends a standard readmission request from RS.MUP to BA.SPS; returns
/// (message id, case id).
fn request_readmission(fed: &Fed) -> (String, String) {
    let person = person_file(fed);
    let out = fed
        .kurir("RS.MUP")
        .args(["readmission", "template", "--document"])
        .output()
        .unwrap();
    let document = fed.file("passport.toml", &out.stdout);
    let scan = fed.file("passport-scan.pdf", b"%PDF-1.4 scan of the passport");
    let lines = json_ok(fed.kurir("RS.MUP").args([
        "readmission",
        "request",
        "--to",
        "BA.SPS",
        "--procedure",
        "standard",
        "--person",
        person.to_str().unwrap(),
        "--document",
        document.to_str().unwrap(),
        "--evidence",
        scan.to_str().unwrap(),
        "--annex",
        "1",
        "--legal-basis",
        "EU-BA readmission agreement, Art. 3",
        "--wait",
        "30",
    ]));
    let s = one(&lines, "submitted");
    assert_eq!(s["kind"], "readmission-request");
    let case = s["case_id"].as_str().unwrap().to_owned();
    assert!(case.starts_with("RS.MUP:"), "{case}");
    let msg = s["msg_id"].as_str().unwrap().to_owned();
    // With `--wait`, its delivery follows in the same run.
    delivered_in(&lines, &msg);
    (msg, case)
}

fn kinds(case: &Value) -> Vec<String> {
    case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_notice_reaches_the_recipients_inbox_verified() {
    let fed = Fed::start(&["RS.MUP", "ME.UP", "MK.MVR"]);
    let who = one(&json_ok(fed.kurir("ME.UP").arg("whoami")), "identity");
    assert_eq!(who["authority"], "ME.UP");
    assert_eq!(who["role"], "officer");

    // Large enough for both relays to keep the body in a body file of its
    // own (bodies of 256 KiB and more sealed).
    let names = b"names of the patrol members\n".repeat(20_000);
    let list = fed.file("list.txt", &names);
    let lines = json_ok(fed.kurir("RS.MUP").args([
        "send",
        "notice",
        "--to",
        "ME.UP,MK.MVR",
        "--subject",
        "Joint patrol at Horgos",
        "--text",
        "06:00 at the crossing",
        "--attach",
        list.to_str().unwrap(),
        "--priority",
        "high",
        "--handling",
        "h0",
    ]));
    let sent = one(&lines, "submitted");
    let id = sent["msg_id"].as_str().unwrap().to_owned();
    assert_eq!(sent["to"], serde_json::json!(["ME.UP", "MK.MVR"]));
    let status = delivered(&fed, "RS.MUP", &id);
    assert_eq!(status["deliveries"].as_array().unwrap().len(), 2);

    // Human status output names each recipient and the verified receipt.
    let out = fed.kurir("RS.MUP").args(["status", &id]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ME.UP") && text.contains("delivered"),
        "{text}"
    );
    assert!(text.contains("verified against the roster"), "{text}");

    for who in ["ME.UP", "MK.MVR"] {
        let inbox = json_ok(fed.kurir(who).args(["inbox", "--unread"]));
        assert!(
            inbox
                .iter()
                .any(|l| l["type"] == "message" && l["data"]["msg_id"] == id.as_str()),
            "{who}: {inbox:?}"
        );
    }
    let human = fed.kurir("ME.UP").arg("inbox").output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(
        human.contains(&id) && human.contains("operational-notice"),
        "{human}"
    );

    let save = fed.dir.path().join("saved");
    let shown =
        json_ok(
            fed.kurir("ME.UP")
                .args(["show", &id, "--save-dir", save.to_str().unwrap()]),
        );
    let m = one(&shown, "message");
    assert_eq!(m["signature"]["verified"], true);
    assert_eq!(m["signature"]["signer"], "RS.MUP");
    assert_eq!(m["body"]["subject"], "Joint patrol at Horgos");
    assert_eq!(m["body"]["priority"], "high");
    assert_eq!(m["header"]["handling"], "H0");
    assert_eq!(m["receipt"]["verified"], true);
    assert_eq!(m["receipt"]["signer"], "ME.UP");
    assert!(m["summary"]["read_at"].is_string());
    let saved = one(&shown, "saved");
    assert_eq!(saved["media_type"], "text/plain");
    assert_eq!(std::fs::read(save.join("list.txt")).unwrap(), names);
    // The sender and both recipients keep the body in a body file.
    let files = body_files(fed.dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    // Read now; saving again never overwrites.
    let inbox = json_ok(fed.kurir("ME.UP").args(["inbox", "--unread"]));
    assert!(inbox.is_empty(), "{inbox:?}");
    let again =
        json_ok(
            fed.kurir("ME.UP")
                .args(["show", &id, "--save-dir", save.to_str().unwrap()]),
        );
    assert!(
        one(&again, "saved")["path"]
            .as_str()
            .unwrap()
            .ends_with("list (1).txt")
    );
    let human = fed.kurir("MK.MVR").args(["show", &id]).output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(
        human.contains("signature   verified: signed by RS.MUP with key"),
        "{human}"
    );
    assert!(human.contains("--save-dir"), "{human}");
}

#[test]
fn a_full_readmission_case_from_request_to_handover() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let (request, case) = request_readmission(&fed);

    // BA.SPS sees the request, its deadline, and reads it.
    let inbox = json_ok(fed.kurir("BA.SPS").args([
        "inbox",
        "--kind",
        "readmission-request",
        "--case",
        &case,
    ]));
    assert_eq!(one(&inbox, "message")["msg_id"], request.as_str());
    let deadlines = json_ok(fed.kurir("BA.SPS").arg("deadlines"));
    let d = one(&deadlines, "deadline");
    assert_eq!(d["case_id"], case.as_str());
    assert_eq!(d["kind"], "reply");
    assert_eq!(d["party"], "BA.SPS");
    assert_eq!(d["overdue"], false);
    let shown = one(
        &json_ok(fed.kurir("BA.SPS").args(["show", &request])),
        "message",
    );
    assert_eq!(shown["header"]["procedure"], "standard");
    assert_eq!(shown["body"]["person"]["surname"], "EXAMPLE");
    assert_eq!(shown["body"]["evidence"][0]["annex"], 1);
    assert_eq!(
        shown["body"]["evidence"][0]["attachment"]["media_type"],
        "application/pdf"
    );

    // Reply: confirm, and wait for its delivery.
    let lines = json_ok(fed.kurir("BA.SPS").args([
        "readmission",
        "reply",
        &case,
        "--confirm",
        "--wait",
        "30",
    ]));
    let reply = one(&lines, "submitted");
    assert_eq!(reply["in_reply_to"], request.as_str());
    assert_eq!(reply["to"], serde_json::json!(["RS.MUP"]));
    delivered_in(&lines, reply["msg_id"].as_str().unwrap());
    let view = one(&json_ok(fed.kurir("RS.MUP").args(["case", &case])), "case");
    assert_eq!(view["state"], "confirmed");
    assert!(view["transfer_due"].is_string(), "{view}");

    // Transfer proposed by the requesting side.
    let date = kurir_proto::Timestamp(fed.clock.now().0 + 7 * DAY_MS)
        .date()
        .to_string();
    let arrangement = one(
        &json_ok(fed.kurir("RS.MUP").args([
            "transfer",
            "propose",
            &case,
            "--date",
            &date,
            "--time",
            "09:30",
            "--crossing",
            "Sremska Raca",
            "--escort",
            "Marko Markovic|inspector|RS.MUP",
        ])),
        "submitted",
    );
    delivered(&fed, "RS.MUP", arrangement["msg_id"].as_str().unwrap());

    // Handover confirmed by the requested side.
    let handover = one(
        &json_ok(fed.kurir("BA.SPS").args([
            "transfer",
            "confirm",
            &case,
            "--place",
            "Sremska Raca",
            "--received-by",
            "Border police of BA, shift 2",
        ])),
        "submitted",
    );
    assert_eq!(handover["in_reply_to"], arrangement["msg_id"]);
    delivered(&fed, "BA.SPS", handover["msg_id"].as_str().unwrap());

    // `kurir case` shows the whole thread in order, on both sides.
    for who in ["RS.MUP", "BA.SPS"] {
        let view = one(&json_ok(fed.kurir(who).args(["case", &case])), "case");
        assert_eq!(view["state"], "handed_over", "{who}: {view}");
        assert_eq!(view["requesting"], "RS.MUP");
        assert_eq!(view["requested"], "BA.SPS");
        assert_eq!(
            kinds(&view),
            [
                "readmission-request",
                "readmission-reply",
                "transfer-arrangement",
                "handover-confirmation"
            ],
            "{who}"
        );
        assert!(!view["events"].as_array().unwrap().is_empty());
    }
    let human = fed.kurir("RS.MUP").args(["case", &case]).output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("state: handed over"), "{human}");
    assert!(human.contains("handover-confirmation"), "{human}");
    assert!(human.contains("timeline:"), "{human}");

    // The case is closed: another reply is refused with exit 4.
    let err = fails(
        fed.kurir("BA.SPS")
            .args(["readmission", "reply", &case, "--confirm"]),
        4,
    );
    assert!(err.contains("closed"), "{err}");
}

#[test]
fn no_reply_in_time_is_deemed_accepted() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let (_, case) = request_readmission(&fed);
    let overdue = json_ok(fed.kurir("BA.SPS").args(["deadlines", "--overdue"]));
    assert!(overdue.is_empty(), "{overdue:?}");
    let view = one(&json_ok(fed.kurir("BA.SPS").args(["case", &case])), "case");
    assert_eq!(view["state"], "awaiting_reply");
    let due = view["reply_due"].as_str().unwrap().to_owned();

    // Twelve days later, nobody has replied (standard procedure: 10 days).
    fed.clock.advance(12 * DAY_MS);
    for who in ["RS.MUP", "BA.SPS"] {
        let view = one(&json_ok(fed.kurir(who).args(["case", &case])), "case");
        assert_eq!(view["state"], "deemed_accepted", "{who}: {view}");
        assert!(view["transfer_due"].is_string(), "{view}");
        let events: Vec<&str> = view["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["what"].as_str().unwrap())
            .collect();
        assert!(
            events.iter().any(|e| e.contains("deemed")),
            "{who}: {events:?}"
        );
    }
    // The open deadline now is RS.MUP's transfer.
    let deadlines = json_ok(fed.kurir("RS.MUP").arg("deadlines"));
    let d = one(&deadlines, "deadline");
    assert_eq!(d["kind"], "transfer");
    assert_eq!(d["party"], "RS.MUP");
    let human = fed.kurir("BA.SPS").args(["case", &case]).output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("state: deemed accepted"), "{human}");
    assert!(
        human.contains(&due) || human.contains("transfer due"),
        "{human}"
    );
    // Too late to reply.
    let err = fails(
        fed.kurir("BA.SPS")
            .args(["readmission", "reply", &case, "--confirm"]),
        4,
    );
    assert!(err.contains("deemed_accepted"), "{err}");
}

#[test]
fn bad_inputs_say_what_to_do_with_documented_exit_codes() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let notice = |to: &str| {
        let mut c = fed.kurir("RS.MUP");
        c.args([
            "send",
            "notice",
            "--to",
            to,
            "--subject",
            "s",
            "--text",
            "t",
        ]);
        c
    };
    // Unknown authority: 2, naming the members.
    let err = fails(&mut notice("XK.MUP"), 2);
    assert!(
        err.contains("XK.MUP is not a member") && err.contains("BA.SPS"),
        "{err}"
    );
    let err = fails(&mut notice("serbia"), 2);
    assert!(err.contains("serbia"), "{err}");
    // Usage errors from clap are 2 as well.
    fails(
        fed.kurir("RS.MUP")
            .args(["send", "notice", "--to", "BA.SPS"]),
        2,
    );

    // A person file without a surname: 2, naming file, field and line.
    let person = std::fs::read_to_string(person_file(&fed)).unwrap();
    let bad = fed.file(
        "no-surname.toml",
        person.replace("surname = \"EXAMPLE\"\n", "").as_bytes(),
    );
    let err = fails(
        fed.kurir("RS.MUP").args([
            "readmission",
            "request",
            "--to",
            "BA.SPS",
            "--procedure",
            "standard",
            "--person",
            bad.to_str().unwrap(),
        ]),
        2,
    );
    assert!(
        err.contains("no-surname.toml") && err.contains("missing field `surname`"),
        "{err}"
    );
    assert!(err.contains("line"), "{err}");
    // Accelerated without the apprehension: 2.
    let good = fed.file("person.toml", person.as_bytes());
    let err = fails(
        fed.kurir("RS.MUP").args([
            "readmission",
            "request",
            "--to",
            "BA.SPS",
            "--procedure",
            "accelerated",
            "--person",
            good.to_str().unwrap(),
        ]),
        2,
    );
    assert!(err.contains("--apprehended-on"), "{err}");

    // An attachment over the size limit: 2, before anything is sent.
    let big = fed.dir.path().join("big.pdf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(9 << 20)
        .unwrap();
    let err = fails(
        notice("BA.SPS").args(["--attach", big.to_str().unwrap()]),
        2,
    );
    assert!(err.contains("over the limit"), "{err}");
    let sent = json_ok(fed.kurir("RS.MUP").args(["inbox", "--sent"]));
    assert!(sent.is_empty(), "nothing was sent: {sent:?}");

    // An auditor cannot send: 4.
    let err = fails(
        fed.kurir_as("RS.MUP", "auditor").args([
            "send",
            "notice",
            "--to",
            "BA.SPS",
            "--subject",
            "s",
            "--text",
            "t",
        ]),
        4,
    );
    assert!(err.contains("auditor"), "{err}");

    // Unknown case: 5; unknown message: 5.
    let err = fails(
        fed.kurir("BA.SPS")
            .args(["readmission", "reply", "RS.MUP:2026-999999", "--confirm"]),
        5,
    );
    assert!(err.contains("RS.MUP:2026-999999"), "{err}");
    fails(
        fed.kurir("BA.SPS")
            .args(["show", "019ac7e2-4b1c-7d2e-9f00-0123456789ab"]),
        5,
    );

    // An extension over the agreed days: the relay refuses, 4.
    let (_, case) = request_readmission(&fed);
    let err = fails(
        fed.kurir("BA.SPS").args([
            "readmission",
            "extend",
            &case,
            "--days",
            "7",
            "--reason",
            "registry check pending",
        ]),
        4,
    );
    assert!(err.contains("maximum"), "{err}");
    // Only the requested side replies: 2, before sending.
    let err = fails(
        fed.kurir("RS.MUP")
            .args(["readmission", "reply", &case, "--confirm"]),
        2,
    );
    assert!(err.contains("only BA.SPS replies"), "{err}");

    // With --json, the error is a JSON line on stderr.
    let err = fails(notice("XK.MUP").arg("--json"), 2);
    let v: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["data"]["exit"], 2);

    // A profile that does not exist: 2, never a default.
    let mut c = Command::new(KURIR);
    let err = fails(
        c.args(["--profile", "/nonexistent/profile.toml", "inbox"]),
        2,
    );
    assert!(err.contains("/nonexistent/profile.toml"), "{err}");
}

#[test]
fn an_unreachable_relay_is_exit_3() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    // A socket that is bound but never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let text = std::fs::read_to_string(fed.profile("RS.MUP", "duty officer")).unwrap();
    let addr = fed.nodes[0].local_addr().to_string();
    let profile = fed.file(
        "silent.toml",
        text.replace(&addr, &silent.local_addr().unwrap().to_string())
            .as_bytes(),
    );
    let mut c = Command::new(KURIR);
    let err = fails(
        c.args(["--profile", profile.to_str().unwrap()])
            .args(["--connect-timeout", "1", "inbox"]),
        3,
    );
    assert!(err.contains("did not answer"), "{err}");
    // Bad input is found before the relay is contacted: 2, not 3.
    let bad = fed.file("p.toml", b"surname = \"X\"\n");
    let mut c = Command::new(KURIR);
    let err = fails(
        c.args(["--profile", profile.to_str().unwrap()])
            .args(["--connect-timeout", "1", "readmission", "request"])
            .args(["--to", "BA.SPS", "--procedure", "standard", "--person"])
            .arg(&bad),
        2,
    );
    assert!(err.contains("missing field `given_names`"), "{err}");
}

#[test]
fn a_revoked_certificate_is_exit_3_and_says_so() {
    let fed = Fed::start_with(&["RS.MUP", "BA.SPS"], 0, |fed| {
        let rs = &fed.members[0];
        let cert = rs
            .officer_dir("former officer")
            .unwrap()
            .join("officer.crt.pem");
        let serial = kurir_certs::officer::serial_of(cert.to_str().unwrap()).unwrap();
        let authority = kurir_certs::authority::Authority::open(&rs.authority_dir).unwrap();
        kurir_certs::officer::revoke(&authority, &serial, SystemClock.now()).unwrap();
    });
    let err = fails(fed.kurir_as("RS.MUP", "former officer").arg("inbox"), 3);
    assert!(err.contains("REVOKED"), "{err}");
    // The others still work.
    json_ok(fed.kurir("RS.MUP").arg("inbox"));
}

#[test]
fn an_expired_certificate_is_exit_3_before_connecting() {
    let fed = Fed::start_with(&["RS.MUP", "BA.SPS"], 3, |fed| {
        // Issued two days ago for one day.
        let rs = &fed.members[0];
        let authority = kurir_certs::authority::Authority::open(&rs.authority_dir).unwrap();
        let at = kurir_proto::Timestamp(SystemClock.now().0 - 2 * DAY_MS);
        let out = rs.officer_dir("former officer").unwrap();
        kurir_certs::officer::issue(
            &authority,
            "former officer",
            Some(Role::Officer),
            1,
            at,
            out,
            kurir_certs::files::Overwrite::Replace,
        )
        .unwrap();
    });
    let err = fails(fed.kurir_as("RS.MUP", "former officer").arg("whoami"), 3);
    assert!(err.contains("expired on"), "{err}");
    json_ok(fed.kurir("RS.MUP").arg("whoami"));
}

#[test]
fn extensions_and_rejections_follow_the_case() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let (request, case) = request_readmission(&fed);
    let before = one(&json_ok(fed.kurir("BA.SPS").args(["case", &case])), "case");
    let due = kurir_proto::Date::parse(before["reply_due"].as_str().unwrap()).unwrap();

    // BA.SPS asks for 4 days; RS.MUP grants what was asked.
    let ask = one(
        &json_ok(fed.kurir("BA.SPS").args([
            "readmission",
            "extend",
            &case,
            "--days",
            "4",
            "--reason",
            "identity check with the registry pending",
        ])),
        "submitted",
    );
    assert_eq!(ask["kind"], "deadline-extension-request");
    assert_eq!(ask["in_reply_to"], request.as_str());
    delivered(&fed, "BA.SPS", ask["msg_id"].as_str().unwrap());
    // Only the requesting side decides.
    let err = fails(
        fed.kurir("BA.SPS")
            .args(["readmission", "decide", &case, "--grant"]),
        4,
    );
    assert!(err.contains("decides"), "{err}");
    let grant = one(
        &json_ok(
            fed.kurir("RS.MUP")
                .args(["readmission", "decide", &case, "--grant"]),
        ),
        "submitted",
    );
    assert_eq!(grant["in_reply_to"], ask["msg_id"]);
    delivered(&fed, "RS.MUP", grant["msg_id"].as_str().unwrap());
    for who in ["RS.MUP", "BA.SPS"] {
        let view = one(&json_ok(fed.kurir(who).args(["case", &case])), "case");
        assert_eq!(view["extension_days"], 4, "{who}: {view}");
        assert_eq!(view["reply_due"], due.add_days(4).to_string(), "{who}");
    }
    let shown = one(
        &json_ok(
            fed.kurir("BA.SPS")
                .args(["show", grant["msg_id"].as_str().unwrap()]),
        ),
        "message",
    );
    assert_eq!(shown["body"]["granted"], true);
    assert_eq!(shown["body"]["days"], 4);
    // 2 more days would exceed the agreed 6.
    let err = fails(
        fed.kurir("BA.SPS").args([
            "readmission",
            "extend",
            &case,
            "--days",
            "3",
            "--reason",
            "more",
        ]),
        4,
    );
    assert!(err.contains("2 of 6 days are left"), "{err}");

    // A rejection with reasons closes the case.
    let reply = one(
        &json_ok(fed.kurir("BA.SPS").args([
            "readmission",
            "reply",
            &case,
            "--reject",
            "--reason",
            "Not a national of Bosnia and Herzegovina",
        ])),
        "submitted",
    );
    delivered(&fed, "BA.SPS", reply["msg_id"].as_str().unwrap());
    let view = one(&json_ok(fed.kurir("RS.MUP").args(["case", &case])), "case");
    assert_eq!(view["state"], "rejected");
    let err = fails(
        fed.kurir("RS.MUP").args([
            "transfer",
            "propose",
            &case,
            "--date",
            "2030-01-01",
            "--crossing",
            "Sremska Raca",
        ]),
        4,
    );
    assert!(err.contains("closed"), "{err}");
}

#[test]
fn profile_init_writes_a_profile_and_never_overwrites() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let text = std::fs::read_to_string(fed.profile("RS.MUP", "duty officer")).unwrap();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
            .unwrap()
            .trim_end_matches('"')
            .to_owned()
    };
    let config = fed.dir.path().join("xdg");
    let init = |force: bool| {
        let mut c = Command::new(KURIR);
        c.env_remove("KURIR_PROFILE")
            .env("XDG_CONFIG_HOME", &config)
            .args(["profile", "init", "--relay", &field("relay")])
            .args(["--server-name", LOCAL_HOST, "--authority", "RS.MUP"])
            .args(["--officer-dir", &field("officer_dir")])
            .args(["--roster", &field("roster")]);
        if force {
            c.arg("--force");
        }
        c
    };
    init(false).assert().success();
    let written = config.join("kurir/profile.toml");
    assert!(written.is_file());
    let err = fails(&mut init(false), 2);
    assert!(err.contains("--force"), "{err}");
    init(true).assert().success();
    // The default location is used when neither --profile nor KURIR_PROFILE is given.
    let mut c = Command::new(KURIR);
    let who = one(
        &json_ok(
            c.env_remove("KURIR_PROFILE")
                .env("XDG_CONFIG_HOME", &config)
                .arg("whoami"),
        ),
        "identity",
    );
    assert_eq!(who["officer"], "duty officer");
    // KURIR_PROFILE wins over the default.
    let mut c = Command::new(KURIR);
    let who = one(
        &json_ok(
            c.env("KURIR_PROFILE", fed.profile("BA.SPS", "auditor"))
                .env("XDG_CONFIG_HOME", &config)
                .arg("whoami"),
        ),
        "identity",
    );
    assert_eq!(who["authority"], "BA.SPS");
    assert_eq!(who["role"], "auditor");
}

#[test]
fn watch_prints_arrivals() {
    let fed = Fed::start(&["RS.MUP", "ME.UP"]);
    let mut child = std::process::Command::new(KURIR)
        .env_remove("KURIR_PROFILE")
        .arg("--profile")
        .arg(fed.profile("ME.UP", "duty officer"))
        .args(["--json", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The note on stderr comes once the relay has the subscription in
    // place: the one notice sent after it must be printed.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut note = String::new();
    stderr.read_line(&mut note).unwrap();
    assert!(note.contains("watching"), "{note}");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let sent = one(
        &json_ok(fed.kurir("RS.MUP").args([
            "send",
            "notice",
            "--to",
            "ME.UP",
            "--subject",
            "watch",
            "--text",
            "t",
        ])),
        "submitted",
    );
    let line = rx.recv_timeout(Duration::from_secs(20));
    child.kill().unwrap();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&line.expect("watch printed no arrival")).unwrap();
    assert_eq!(v["type"], "arrival");
    assert_eq!(v["data"]["from"], "RS.MUP");
    assert_eq!(v["data"]["msg_id"], sent["msg_id"]);
    assert_eq!(v["data"]["kind"], "operational-notice");
    assert!(v["data"]["msg_id"].is_string() && sent["msg_id"].is_string());
}

#[test]
fn help_documents_examples_and_exit_codes() {
    let out = Command::new(KURIR).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        help.contains("Exit codes:") && help.contains("5  not found"),
        "{help}"
    );
    assert!(help.contains("kurir readmission request"), "{help}");
    let out = Command::new(KURIR)
        .args(["readmission", "template"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let person: kurir_proto::message::Person =
        toml::from_str(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    assert_eq!(person.nationalities, ["ME"]);
}

#[test]
fn an_exported_audit_log_verifies_and_tampering_is_named() {
    let mut fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    // Three messages: three envelopes and three held receipts, whose
    // signatures `audit verify` checks in one batch.
    for _ in 1..=3 {
        let id = notice(&fed, "RS.MUP", "BA.SPS");
        delivered(&fed, "RS.MUP", &id);
    }
    // Over the relay: auditors may export, officers may not.
    let live = fed.dir.path().join("audit-live");
    let ok = one(
        &json_ok(
            fed.kurir_as("RS.MUP", "auditor")
                .args(["audit", "export", "--out"])
                .arg(&live),
        ),
        "audit_verified",
    );
    assert_eq!(ok["authority"], "RS.MUP");
    assert!(live.join("bundle.cbor").exists() && live.join("roster.cbor").exists());
    let err = fails(
        fed.kurir("RS.MUP")
            .args(["audit", "export", "--out"])
            .arg(fed.dir.path().join("x")),
        4,
    );
    assert!(err.contains("auditor"), "{err}");
    // Export needs stopped relays (the last checkpoint is signed at shutdown).
    let out = stop_and_export(&mut fed, &["RS.MUP"]).remove(0);
    let verify = |dir: &Path| {
        let mut cmd = Command::new(KURIR);
        cmd.env_remove("KURIR_PROFILE")
            .args(["audit", "verify"])
            .arg(dir)
            .timeout(Duration::from_secs(60));
        cmd
    };
    let report =
        kurir_proto::audit::Bundle::decode(&std::fs::read(out.join("bundle.cbor")).unwrap())
            .unwrap();
    assert!(report.entries.len() >= 4, "{report:?}");
    assert_eq!(report.checkpoints.len(), 1);
    let ok = one(&json_ok(&mut verify(&out)), "audit_verified");
    assert_eq!(ok["authority"], "RS.MUP");
    assert_eq!(ok["entries"], report.entries.len() as u64);
    assert_eq!(ok["entries_after_newest_checkpoint"], 0);
    // Nobody cosigned the final checkpoint (signed at shutdown): a required
    // quorum of cosigners fails.
    let err = fails(verify(&out).args(["--min-cosigners", "1"]), 4);
    assert!(err.contains("0 peer cosignature(s), 1 required"), "{err}");

    let tampered = |name: &str, change: &dyn Fn(&mut kurir_proto::audit::Bundle)| {
        let bytes = std::fs::read(out.join("bundle.cbor")).unwrap();
        let mut bundle = kurir_proto::audit::Bundle::decode(&bytes).unwrap();
        change(&mut bundle);
        let dir = fed.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bundle.cbor"), bundle.encode().unwrap()).unwrap();
        fails(&mut verify(&dir), 4)
    };
    let err = tampered("swapped", &|b| b.entries.swap(1, 2));
    assert!(err.contains("entry 1 says it is entry 2"), "{err}");
    let err = tampered("dropped", &|b| {
        b.entries.remove(2);
    });
    assert!(err.contains("entry 2 says it is entry 3"), "{err}");
    let err = tampered("flipped", &|b| {
        // The last byte of entry 2: its own link to entry 1.
        let e = &mut b.entries[2].0;
        let last = e.len() - 1;
        e[last] ^= 1;
    });
    assert!(err.contains("entry 2 was changed"), "{err}");
    // A byte of a field in the middle of an entry (the low byte of `at`,
    // which stays a valid entry): the next entry's link names it.
    let err = tampered("flipped-time", &|b| {
        let mut e = kurir_proto::audit::Entry::decode(&b.entries[1].0).unwrap();
        e.at = kurir_proto::Timestamp(e.at.0 ^ 1);
        b.entries[1].0 = e.encode();
    });
    assert!(err.contains("entry 1 was changed"), "{err}");
    let err = tampered("forged-checkpoint", &|b| {
        let note = &mut b.checkpoints[0].0;
        let at = note.len() - 5;
        note[at] = if note[at] == b'A' { b'B' } else { b'A' };
    });
    assert!(err.contains("checkpoint 1"), "{err}");
    let err = tampered("cut", &|b| {
        b.entries.pop();
    });
    assert!(err.contains("entries were removed"), "{err}");
    let err = tampered("receipt", &|b| {
        b.receipts[0].receipt[20] ^= 1;
    });
    assert!(err.contains("receipt 1"), "{err}");
    // A flipped bit in one signature among the batch's is named by index,
    // as the first bad item in the order of the checks (receipts before
    // envelopes), whatever follows it.
    let flip_signature = |bytes: &mut Vec<u8>| {
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
    };
    assert_eq!(report.envelopes.len(), 3);
    assert_eq!(report.receipts.len(), 3);
    let err = tampered("envelope-signature", &|b| {
        flip_signature(&mut b.envelopes[1].0)
    });
    assert!(
        err.contains("NOT VERIFIED: envelope 2: bad signature by key"),
        "{err}"
    );
    let err = tampered("receipt-signatures", &|b| {
        flip_signature(&mut b.receipts[2].receipt);
        flip_signature(&mut b.receipts[1].receipt);
        flip_signature(&mut b.envelopes[0].0);
    });
    assert!(
        err.contains("NOT VERIFIED: receipt 2 (held): bad signature by key"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// kurir audit reconcile and kurir audit show, on real exported bundles.

/// `kurir audit ARGS...`: offline, no profile.
fn audit(args: &[&str], dirs: &[&Path]) -> Command {
    let mut cmd = Command::new(KURIR);
    cmd.env_remove("KURIR_PROFILE")
        .arg("audit")
        .args(args)
        .args(dirs)
        .timeout(Duration::from_secs(60));
    cmd
}

/// Stops every relay still running, then exports the audit log of each of
/// `who` into `<tmp>/audit-<who>`.
fn stop_and_export(fed: &mut Fed, who: &[&str]) -> Vec<PathBuf> {
    for node in std::mem::take(&mut fed.nodes) {
        fed.rt.block_on(node.shutdown()).unwrap();
    }
    who.iter()
        .map(|w| {
            let data = fed.dir.path().join(format!("fed/{w}/data"));
            let out = fed.dir.path().join(format!("audit-{w}"));
            // Exported at the relays' own (manual) time, as a relay would.
            kurir_relay::audit::export(&data, &out, fed.clock.now()).unwrap();
            out
        })
        .collect()
}

/// Sends a notice from `from` to `to`; returns its message id.
fn notice(fed: &Fed, from: &str, to: &str) -> String {
    let lines = json_ok(fed.kurir(from).args([
        "send",
        "notice",
        "--to",
        to,
        "--subject",
        "Audit",
        "--text",
        "a notice",
    ]));
    one(&lines, "submitted")["msg_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Writes a copy of the bundle in `dir` with `change` applied, into `name`.
fn changed_bundle(
    fed: &Fed,
    dir: &Path,
    name: &str,
    change: &dyn Fn(&mut kurir_proto::audit::Bundle),
) -> PathBuf {
    let bytes = std::fs::read(dir.join("bundle.cbor")).unwrap();
    let mut bundle = kurir_proto::audit::Bundle::decode(&bytes).unwrap();
    change(&mut bundle);
    let out = fed.dir.path().join(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("bundle.cbor"), bundle.encode().unwrap()).unwrap();
    out
}

/// The receipt digest the `delivered` entry of `msg_id` records.
fn delivered_receipt_digest(bundle_dir: &Path, msg_id: &str) -> kurir_proto::Digest {
    let bytes = std::fs::read(bundle_dir.join("bundle.cbor")).unwrap();
    let bundle = kurir_proto::audit::Bundle::decode(&bytes).unwrap();
    let id = kurir_proto::MessageId::parse(msg_id).unwrap();
    bundle
        .entries
        .iter()
        .map(|b| kurir_proto::audit::Entry::decode(&b.0).unwrap())
        .find(|e| e.event == kurir_proto::audit::Event::Delivered && e.msg_id == Some(id))
        .and_then(|e| e.receipt_digest)
        .expect("a delivered entry with a receipt digest")
}

/// Runs a command that must exit `code`; returns (JSON lines on stdout, stderr).
fn json_exit(cmd: &mut Command, code: i32) -> (Vec<Value>, String) {
    let out = cmd.arg("--json").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            assert!(l.starts_with("{\"type\":\""), "type comes first: {l}");
            serde_json::from_str(l).unwrap()
        })
        .collect();
    (lines, stderr)
}

fn findings(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "finding")
        .map(|l| l["data"].clone())
        .collect()
}

#[test]
fn audit_reconcile_matches_two_real_bundles_and_names_a_deleted_receipt() {
    let mut fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let rs_to_ba = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &rs_to_ba);
    let ba_to_rs = notice(&fed, "BA.SPS", "RS.MUP");
    delivered(&fed, "BA.SPS", &ba_to_rs);
    // BA.SPS goes down; a notice sent now stays undelivered: pending.
    let ba = fed.nodes.remove(1);
    fed.rt.block_on(ba.shutdown()).unwrap();
    let pending = notice(&fed, "RS.MUP", "BA.SPS");
    let dirs = stop_and_export(&mut fed, &["RS.MUP", "BA.SPS"]);
    let (rs, ba) = (dirs[0].as_path(), dirs[1].as_path());

    // The two real bundles match: exit 0, the undelivered notice is pending.
    let (lines, _) = json_exit(&mut audit(&["reconcile"], &[rs, ba]), 0);
    let found = findings(&lines);
    assert_eq!(found.len(), 1, "{lines:?}");
    assert_eq!(found[0]["kind"], "pending");
    assert_eq!(found[0]["msg_id"], pending.as_str());
    assert_eq!(found[0]["from"], "RS.MUP");
    assert_eq!(found[0]["to"], "BA.SPS");
    let summary = one(&lines, "reconcile_summary");
    assert_eq!(summary["reconciled"], true, "{summary}");
    assert_eq!(summary["pending"], 1);
    assert_eq!(summary["missing"], 0);
    assert_eq!(summary["directions"][0]["sent"], 2, "{summary}");
    assert_eq!(summary["directions"][0]["matched"], 1, "{summary}");
    assert_eq!(summary["directions"][1]["matched"], 1, "{summary}");
    assert_eq!(summary["directions"][0]["held_receipts"], 1, "{summary}");
    assert_eq!(lines.last().unwrap()["type"], "reconcile_summary");
    // Human output, either order.
    let out = audit(&["reconcile"], &[ba, rs]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("RECONCILED"), "{text}");
    assert!(
        text.contains("PENDING") && text.contains(&pending),
        "{text}"
    );

    // The receipt for the first notice deleted from RS.MUP's held receipts:
    // the bundle still verifies on its own, but reconcile names the message.
    let digest = delivered_receipt_digest(rs, &rs_to_ba);
    let no_held = changed_bundle(&fed, rs, "rs-no-held", &|b| {
        b.receipts
            .retain(|r| kurir_proto::audit::receipt_digest(&r.receipt) != digest);
    });
    json_ok(&mut audit(&["verify"], &[&no_held]));
    let (lines, stderr) = json_exit(&mut audit(&["reconcile"], &[&no_held, ba]), 4);
    let found: Vec<Value> = findings(&lines)
        .into_iter()
        .filter(|f| f["kind"] != "pending")
        .collect();
    assert_eq!(found.len(), 1, "{lines:?}");
    assert_eq!(found[0]["kind"], "missing");
    assert_eq!(found[0]["msg_id"], rs_to_ba.as_str());
    assert_eq!(found[0]["receipt_digest"], digest.to_string());
    let detail = found[0]["detail"].as_str().unwrap();
    assert!(detail.contains("does not hold it"), "{detail}");
    assert_eq!(one(&lines, "reconcile_summary")["reconciled"], false);
    assert!(stderr.contains("do not reconcile"), "{stderr}");
    // Human output names the message, exit 4.
    let out = audit(&["reconcile"], &[&no_held, ba]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DO NOT RECONCILE"), "{text}");
    assert!(
        text.contains("MISSING") && text.contains(&rs_to_ba),
        "{text}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("1 missing"), "{stderr}");

    // The same receipt deleted from BA.SPS's issued receipts instead.
    let no_issued = changed_bundle(&fed, ba, "ba-no-issued", &|b| {
        b.receipts
            .retain(|r| kurir_proto::audit::receipt_digest(&r.receipt) != digest);
    });
    json_ok(&mut audit(&["verify"], &[&no_issued]));
    let (lines, _) = json_exit(&mut audit(&["reconcile"], &[rs, &no_issued]), 4);
    let found: Vec<Value> = findings(&lines)
        .into_iter()
        .filter(|f| f["kind"] != "pending")
        .collect();
    assert_eq!(found.len(), 1, "{lines:?}");
    assert_eq!(found[0]["kind"], "missing");
    assert_eq!(found[0]["msg_id"], rs_to_ba.as_str());
    let detail = found[0]["detail"].as_str().unwrap();
    assert!(detail.contains("does not list it as issued"), "{detail}");

    // A bundle that does not verify is reported as by `verify`; the same
    // authority twice is a usage error.
    let broken = changed_bundle(&fed, ba, "ba-broken", &|b| b.entries.swap(1, 2));
    let err = fails(&mut audit(&["reconcile"], &[rs, &broken]), 4);
    assert!(err.contains("NOT VERIFIED"), "{err}");
    let err = fails(&mut audit(&["reconcile"], &[rs, rs]), 2);
    assert!(err.contains("two authorities"), "{err}");
}

#[test]
fn audit_show_filters_by_case_and_time() {
    let mut fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let day0 = kurir_proto::Timestamp(fed.clock.now().0).date();
    let (request, case) = request_readmission(&fed);
    // Two days later, a notice outside the case.
    fed.clock.advance(2 * DAY_MS);
    let later = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &later);
    let dirs = stop_and_export(&mut fed, &["RS.MUP"]);
    let rs = dirs[0].as_path();
    let day2 = day0.add_days(2).to_string();
    let day0 = day0.to_string();

    let entries = |args: &[&str]| -> Vec<Value> {
        let mut a = vec!["show"];
        a.extend_from_slice(args);
        json_ok(&mut audit(&a, &[rs]))
            .into_iter()
            .map(|l| {
                assert_eq!(l["type"], "entry", "{l}");
                l["data"].clone()
            })
            .collect()
    };
    let of = |es: &[Value], event: &str, msg: &str| {
        es.iter().any(|e| e["event"] == event && e["msg_id"] == msg)
    };
    let all = entries(&[]);
    let verified = one(&json_ok(&mut audit(&["verify"], &[rs])), "audit_verified");
    assert_eq!(all.len() as u64, verified["entries"].as_u64().unwrap());
    assert!(all.iter().all(|e| e["covered"] == true), "{all:?}");
    assert!(of(&all, "submitted", &request) && of(&all, "submitted", &later));

    // --case: the case's entries, and the delivery of its message.
    let in_case = entries(&["--case", &case]);
    assert!(of(&in_case, "submitted", &request), "{in_case:?}");
    assert!(of(&in_case, "delivered", &request), "{in_case:?}");
    assert!(!of(&in_case, "submitted", &later), "{in_case:?}");
    assert!(
        in_case
            .iter()
            .all(|e| e["case_id"] == case.as_str() || e["msg_id"] == request.as_str()),
        "{in_case:?}"
    );
    let submitted = in_case.iter().find(|e| e["event"] == "submitted").unwrap();
    assert_eq!(submitted["code"], "readmission-request to BA.SPS");
    assert!(submitted["officer"].is_string(), "{submitted}");

    // Time filters: dates and RFC 3339 times.
    let first_days = entries(&["--to", &day0]);
    assert!(of(&first_days, "submitted", &request), "{first_days:?}");
    assert!(!of(&first_days, "submitted", &later), "{first_days:?}");
    let last_days = entries(&["--from", &day2]);
    assert!(of(&last_days, "submitted", &later), "{last_days:?}");
    assert!(!of(&last_days, "submitted", &request), "{last_days:?}");
    let at = last_days
        .iter()
        .find(|e| e["event"] == "submitted")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_owned();
    // 2026-11-30T15:04:05.123Z -> 2026-11-30T15:04:05Z, to the second.
    let second = format!("{}Z", &at[..19]);
    let exact = entries(&["--case", &case, "--from", &second]);
    assert!(exact.is_empty(), "{exact:?}");
    let exact = entries(&["--from", &second, "--to", &at]);
    assert!(of(&exact, "submitted", &later), "{exact:?}");
    assert!(entries(&["--case", &case, "--from", &day2]).is_empty());

    // Human timeline.
    let out = audit(&["show", "--case", &case], &[rs]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("case {case}")), "{text}");
    assert!(
        text.contains("TIME") && text.contains("EVENT") && text.contains("OFFICER"),
        "{text}"
    );
    assert!(
        text.contains(&request) && text.contains("delivered"),
        "{text}"
    );
    assert!(!text.contains(&later), "{text}");

    // Bad filters are exit 2, before the bundle is read.
    let err = fails(&mut audit(&["show", "--from", "yesterday"], &[rs]), 2);
    assert!(err.contains("--from"), "{err}");
    let err = fails(
        &mut audit(&["show", "--from", &day2, "--to", &day0], &[rs]),
        2,
    );
    assert!(err.contains("after --to"), "{err}");
    fails(&mut audit(&["show", "--case", "no case"], &[rs]), 2);
}

#[test]
fn a_body_is_erased_under_the_retention_policy_and_the_log_still_verifies() {
    let mut fed = Fed::start_with(&["RS.MUP", "BA.SPS"], 0, |f| {
        let ba = f.member(&AuthorityId::parse("BA.SPS").unwrap()).unwrap();
        let mut text = std::fs::read_to_string(&ba.config_path).unwrap();
        text.push_str("\n[retention]\nreceived_days = 1\n");
        std::fs::write(&ba.config_path, text).unwrap();
    });
    let lines = json_ok(fed.kurir("RS.MUP").args([
        "send",
        "notice",
        "--to",
        "BA.SPS",
        "--subject",
        "Retention test",
        "--text",
        "personal data here",
    ]));
    let id = one(&lines, "submitted")["msg_id"]
        .as_str()
        .unwrap()
        .to_owned();
    delivered(&fed, "RS.MUP", &id);
    // Read it: the retention clock starts.
    let shown = one(&json_ok(fed.kurir("BA.SPS").args(["show", &id])), "message");
    assert_eq!(shown["body"]["text"], "personal data here");
    // Not yet due: still there.
    fed.clock.advance(DAY_MS / 2);
    let shown = one(&json_ok(fed.kurir("BA.SPS").args(["show", &id])), "message");
    assert_eq!(shown["body"]["text"], "personal data here");
    // Past the retention period: erased, the signature still verifies.
    fed.clock.advance(DAY_MS);
    let shown = one(&json_ok(fed.kurir("BA.SPS").args(["show", &id])), "message");
    assert_eq!(shown["signature"]["verified"], true, "{shown}");
    assert!(shown["body"].get("text").is_none(), "{shown}");
    assert_eq!(
        shown["body"]["erased_under"],
        "retention.received_days = 1: 1 days after it was read"
    );
    let out = fed.kurir("BA.SPS").args(["show", &id]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("erased at") && text.contains("still verifies"),
        "{text}"
    );
    // The sender's copy is kept (no rule for sent messages).
    let theirs = one(&json_ok(fed.kurir("RS.MUP").args(["show", &id])), "message");
    assert_eq!(theirs["body"]["text"], "personal data here");

    // The exported log of BA.SPS still verifies and records the erasure.
    let out = stop_and_export(&mut fed, &["BA.SPS"]).remove(0);
    let mut cmd = Command::new(KURIR);
    cmd.env_remove("KURIR_PROFILE")
        .args(["audit", "verify"])
        .arg(&out);
    one(&json_ok(&mut cmd), "audit_verified");
    let mut cmd = Command::new(KURIR);
    cmd.env_remove("KURIR_PROFILE")
        .args(["audit", "show"])
        .arg(&out);
    let entries = json_ok(&mut cmd);
    assert!(
        entries.iter().any(|e| e["data"]["event"] == "body_erased"),
        "{entries:?}"
    );
}

#[test]
fn status_shows_the_receipts_inclusion_proof_once_the_receiver_signs_a_checkpoint() {
    let fed = Fed::start_checkpointing(&["RS.MUP", "BA.SPS"]);
    let id = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &id);
    // BA.SPS signs a checkpoint within a second; RS.MUP then fetches the
    // proof in its next round.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let inclusion = loop {
        let lines = json_ok(fed.kurir("RS.MUP").args(["status", &id]));
        let status = one(&lines, "status");
        let inclusion = status["deliveries"][0]["receipt"]["inclusion"].clone();
        if !inclusion.is_null() {
            break inclusion;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(inclusion["verified"], true, "{inclusion}");
    assert!(
        inclusion["checkpoint_size"].as_u64().unwrap() > inclusion["index"].as_u64().unwrap(),
        "{inclusion}"
    );
    let out = fed.kurir("RS.MUP").args(["status", &id]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("of BA.SPS's audit log, proven in its signed checkpoint of size"),
        "{text}"
    );
}

/// The body files under `dir`, at any depth (each relay's data dir has a
/// `bodies` directory).
fn body_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(body_files(&path));
        } else if path.extension().is_some_and(|e| e == "body")
            && path.parent().is_some_and(|p| p.ends_with("bodies"))
        {
            found.push(path);
        }
    }
    found
}

/// Shuts `who`'s relay down (found by the address in its officer's
/// profile).
fn stop(fed: &mut Fed, who: &str) {
    let profile = std::fs::read_to_string(fed.profile(who, "duty officer")).unwrap();
    let at = fed
        .nodes
        .iter()
        .position(|n| profile.contains(&format!("relay = \"{}\"", n.local_addr())))
        .unwrap();
    let down = fed.nodes.remove(at);
    fed.rt.block_on(down.shutdown()).unwrap();
}

/// `kurir status --wait` while a recipient's relay is down: the relay holds
/// the request until the wait ends, `kurir` prints the status as it is and
/// exits 3 naming what is still open.
#[test]
fn status_wait_ends_with_exit_3_while_a_recipient_is_down() {
    let mut fed = Fed::start(&["RS.MUP", "ME.UP"]);
    stop(&mut fed, "ME.UP");

    let id = notice(&fed, "RS.MUP", "ME.UP");
    let started = std::time::Instant::now();
    let out = fed
        .kurir("RS.MUP")
        .args(["status", &id, "--wait", "1", "--json"])
        .output()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not delivered to every recipient yet"),
        "{stderr}"
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = &status["data"]["deliveries"][0]["state"];
    assert!(
        state == "queued" || state == "retrying" || state == "sending",
        "{status}"
    );
}

// ---------------------------------------------------------------------------
// Hostile members: the auditor's anchors (issue #13, item 8). A member's
// insider holds every key of its relay and can rebuild its own bundle; the
// auditor holds the roster, checkpoints and the other side's log.

/// The fed's roster as the auditor holds it, and its SHA-256 in hex.
fn roster_and_sha(fed: &Fed) -> (PathBuf, String) {
    let path = fed.dir.path().join("fed").join("roster.cbor");
    let bytes = std::fs::read(&path).unwrap();
    let sha = kurir_proto::Digest::of(&[&bytes]).to_string();
    (path, sha)
}

#[test]
fn audit_verify_refuses_a_bundle_whose_rosters_do_not_reach_the_auditors_roster() {
    let mut fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let id = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &id);
    let (roster, sha) = roster_and_sha(&fed);
    assert!(roster.exists());
    let rs = stop_and_export(&mut fed, &["RS.MUP"]).remove(0);

    // Anchored to the federation's roster, by file or by fingerprint.
    let ok = one(
        &json_ok(audit(&["verify"], &[&rs]).arg("--roster").arg(&roster)),
        "audit_verified",
    );
    assert_eq!(ok["anchor"]["anchored"], true, "{ok}");
    assert_eq!(ok["anchor"]["how"], "held", "{ok}");
    assert_eq!(ok["anchor"]["sha256"], sha.as_str(), "{ok}");
    let ok = one(
        &json_ok(&mut audit(&["verify", "--roster-sha256", &sha], &[&rs])),
        "audit_verified",
    );
    assert_eq!(ok["anchor"]["anchored"], true, "{ok}");
    // The profile's roster is the default anchor, and the output says which.
    let out = audit(&["verify"], &[&rs])
        .arg("--profile")
        .arg(fed.profile("RS.MUP", "auditor"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("anchor      roster version 1"), "{text}");
    assert!(text.contains("from the profile's roster"), "{text}");
    // No anchor at all: verified against itself only, with a loud warning.
    let out = audit(&["verify"], &[&rs])
        .env("HOME", fed.dir.path())
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WARNING: no roster to anchor to"),
        "{out:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("anchor      NONE"));

    // The roster of another federation (same authority ids, other keys):
    // the bundle's history neither holds it nor follows from it.
    let specs = [MemberSpec {
        id: AuthorityId::parse("RS.MUP").unwrap(),
        name: "Authority RS.MUP".into(),
        officers: vec![],
        focal_points: vec![],
    }];
    let other = federation::found(&fed.dir.path().join("other"), &specs, fed.clock.now()).unwrap();
    let err = fails(
        audit(&["verify"], &[&rs])
            .arg("--roster")
            .arg(&other.roster_path),
        4,
    );
    assert!(err.contains("NOT VERIFIED"), "{err}");
    assert!(
        err.contains("neither include the roster you gave") && err.contains("version 1"),
        "{err}"
    );
    let other_sha =
        kurir_proto::Digest::of(&[&std::fs::read(&other.roster_path).unwrap()]).to_string();
    let err = fails(
        &mut audit(&["verify", "--roster-sha256", &other_sha], &[&rs]),
        4,
    );
    assert!(err.contains("neither include the roster you gave"), "{err}");
    // reconcile and show start from verify: refused the same way.
    let err = fails(
        audit(&["show"], &[&rs])
            .arg("--roster")
            .arg(&other.roster_path),
        4,
    );
    assert!(err.contains("neither include the roster you gave"), "{err}");
    // A file and a fingerprint that disagree, or a malformed fingerprint: 2.
    let err = fails(
        audit(&["verify", "--roster-sha256", &other_sha], &[&rs])
            .arg("--roster")
            .arg(&roster),
        2,
    );
    assert!(err.contains("not the"), "{err}");
    let err = fails(&mut audit(&["verify", "--roster-sha256", "abc"], &[&rs]), 2);
    assert!(err.contains("64 hex digits"), "{err}");
}

/// Entries of the bundle in `dir`.
fn bundle_of(dir: &Path) -> kurir_proto::audit::Bundle {
    kurir_proto::audit::Bundle::decode(&std::fs::read(dir.join("bundle.cbor")).unwrap()).unwrap()
}

/// Re-links every entry from `from` on to the one before it (as an insider
/// rewriting its log would).
fn relink(b: &mut kurir_proto::audit::Bundle, from: usize) {
    for i in from.max(1)..b.entries.len() {
        let prev = kurir_proto::audit::Entry::decode(&b.entries[i - 1].0)
            .unwrap()
            .leaf_hash();
        let mut e = kurir_proto::audit::Entry::decode(&b.entries[i].0).unwrap();
        e.prev = Some(prev);
        b.entries[i].0 = e.encode();
    }
}

#[test]
fn dropped_checkpoints_and_a_rewritten_tail_are_refused_against_the_cosigned_view() {
    let mut fed = Fed::start_checkpointing(&["RS.MUP", "BA.SPS"]);
    let id = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &id);
    // The relays cosign each other's checkpoints every second; wait until
    // RS.MUP holds several checkpoints BA.SPS cosigned after the message.
    // Idle relays sign no new checkpoints (cosigning alone is no news), so
    // RS.MUP is restarted (its `started` entry is) once its newest
    // checkpoint is cosigned.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    for round in 0.. {
        let live = fed.dir.path().join(format!("live-{round}"));
        let v = one(
            &json_ok(
                fed.kurir_as("RS.MUP", "auditor")
                    .args(["audit", "export", "--out"])
                    .arg(&live),
            ),
            "audit_verified",
        );
        if v["cosigned_checkpoints"].as_u64().unwrap() >= 3 {
            break;
        }
        if v["newest_checkpoint"]["cosigned_by"]
            .as_array()
            .is_some_and(|by| !by.is_empty())
        {
            fed.restart(0, "RS.MUP");
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Exported ten minutes later (the relays' clock), so every cosignature
    // surely precedes the export.
    fed.clock.advance(600_000);
    let dirs = stop_and_export(&mut fed, &["RS.MUP", "BA.SPS"]);
    let (rs, ba) = (dirs[0].as_path(), dirs[1].as_path());
    let (roster, _) = roster_and_sha(&fed);
    let anchored = |args: &[&str], dirs: &[&Path]| {
        let mut c = audit(args, dirs);
        c.arg("--roster").arg(&roster);
        c
    };
    json_ok(&mut anchored(&["reconcile"], &[rs, ba]));

    // What BA.SPS's log records cosigning of RS.MUP's log.
    let rs_bundle = bundle_of(rs);
    let entries: Vec<_> = rs_bundle
        .entries
        .iter()
        .map(|b| kurir_proto::audit::Entry::decode(&b.0).unwrap())
        .collect();
    let rs_id = AuthorityId::parse("RS.MUP").unwrap();
    let cosigned_by_ba: Vec<u64> = bundle_of(ba)
        .entries
        .iter()
        .map(|b| kurir_proto::audit::Entry::decode(&b.0).unwrap())
        .filter_map(|e| match e.record() {
            Ok(kurir_proto::audit::Record::PeerCheckpoint { peer, size, .. }) if peer == rs_id => {
                Some(size)
            }
            _ => None,
        })
        .collect();
    // K: a checkpoint of RS.MUP after every entry about a message (so that
    // no receipt or envelope names a rewritten entry), below a size BA.SPS
    // cosigned.
    let last_message = entries
        .iter()
        .rposition(|e| e.msg_id.is_some() || e.receipt_digest.is_some())
        .unwrap() as u64;
    let sizes: Vec<u64> = rs_bundle
        .checkpoints
        .iter()
        .map(|n| {
            kurir_proto::checkpoint::SignedCheckpoint::parse(&n.0)
                .unwrap()
                .checkpoint()
                .size()
        })
        .collect();
    let max_cosigned = *cosigned_by_ba.iter().max().unwrap();
    let k = *sizes
        .iter()
        .find(|&&s| s > last_message && s < max_cosigned)
        .unwrap_or_else(|| panic!("sizes {sizes:?}, cosigned {cosigned_by_ba:?}"));
    let drop_after_k = |b: &mut kurir_proto::audit::Bundle| {
        b.checkpoints.retain(|n| {
            kurir_proto::checkpoint::SignedCheckpoint::parse(&n.0)
                .unwrap()
                .checkpoint()
                .size()
                <= k
        });
    };
    // The insider drops every checkpoint after K and rewrites what follows.
    let rewritten = changed_bundle(&fed, rs, "rewritten", &|b| {
        drop_after_k(b);
        let i = k as usize;
        let mut e = kurir_proto::audit::Entry::decode(&b.entries[i].0).unwrap();
        e.at = kurir_proto::Timestamp(e.at.0 + 1);
        b.entries[i].0 = e.encode();
        relink(b, i + 1);
    });
    // On its own, with the roster anchored, the bundle verifies: the
    // entries after K are covered by no signature in it.
    let ok = one(
        &json_ok(&mut anchored(&["verify"], &[&rewritten])),
        "audit_verified",
    );
    assert!(
        ok["entries_after_newest_checkpoint"].as_u64().unwrap() > 0,
        "{ok}"
    );
    // With the other side's cosigned view it is refused: BA.SPS's log
    // records the root it cosigned, which the rewritten log does not have.
    let err = fails(&mut anchored(&["reconcile"], &[&rewritten, ba]), 4);
    assert!(
        err.contains("NOT VERIFIED")
            && err.contains("BA.SPS's log (entry")
            && err.contains("the log was rewritten after it was cosigned"),
        "{err}"
    );
    let err = fails(&mut anchored(&["reconcile"], &[ba, &rewritten]), 4);
    assert!(err.contains("rewritten after it was cosigned"), "{err}");
    // With a checkpoint the auditor kept (RS.MUP's own, cosigned by
    // BA.SPS) beyond K: refused by `verify` too.
    let kept = sizes
        .iter()
        .rev()
        .find(|&&s| s > k && cosigned_by_ba.contains(&s))
        .unwrap();
    let note = rs.join("checkpoints").join(format!("{kept:012}.note"));
    assert!(note.exists(), "{note:?}");
    let err = fails(
        anchored(&["verify"], &[&rewritten])
            .arg("--checkpoint")
            .arg(&note),
        4,
    );
    assert!(
        err.contains("the checkpoint given with --checkpoint (1)")
            && err.contains("rewritten after it was cosigned"),
        "{err}"
    );
    // Dropped checkpoints alone (entries intact): the size BA.SPS cosigned
    // ten minutes before the export is covered by no checkpoint.
    let dropped = changed_bundle(&fed, rs, "dropped", &|b| drop_after_k(b));
    json_ok(&mut anchored(&["verify"], &[&dropped]));
    let err = fails(&mut anchored(&["reconcile"], &[&dropped, ba]), 4);
    assert!(
        err.contains("before the export") && err.contains("checkpoints were dropped"),
        "{err}"
    );
    let err = fails(
        anchored(&["verify"], &[&dropped])
            .arg("--checkpoint")
            .arg(&note),
        4,
    );
    assert!(err.contains("checkpoints were dropped"), "{err}");
    // A bundle dated before its own cosignatures was put together later.
    let backdated = changed_bundle(&fed, rs, "backdated", &|b| {
        b.exported_at = kurir_proto::Timestamp(b.exported_at.0 - 3_600_000);
    });
    let err = fails(&mut anchored(&["verify"], &[&backdated]), 4);
    assert!(err.contains("after the bundle's export"), "{err}");
    // A checkpoint of another authority is not one of RS.MUP's.
    let ba_note = std::fs::read_dir(ba.join("checkpoints"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let err = fails(
        anchored(&["verify"], &[rs])
            .arg("--checkpoint")
            .arg(&ba_note),
        4,
    );
    assert!(
        err.contains("is not a signed checkpoint of RS.MUP"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Hostile members: the terminal (issue #13, item 10). Text from another
// authority must not drive the reader's terminal.

#[test]
fn escape_sequences_and_bidi_controls_from_another_authority_never_reach_the_terminal() {
    let fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    // An OSC title change, an erased line and a carriage return that would
    // print a false "from" line, and a right-to-left override.
    let subject = "Joint patrol\x1b]0;owned\x07\x1b[2K\r  from        ME.UP \u{202e}fdp.exe";
    let attachment = fed.file("scan\x1b]8;;x\x07\u{202e}fdp.exe", b"%PDF-1.7");
    let lines = json_ok(
        fed.kurir("RS.MUP")
            .args(["send", "notice", "--to", "BA.SPS", "--subject", subject])
            .args(["--text", "line one\n  receipt     forged\x1b[31m"])
            .arg("--attach")
            .arg(&attachment),
    );
    let id = one(&lines, "submitted")["msg_id"]
        .as_str()
        .unwrap()
        .to_owned();
    delivered(&fed, "RS.MUP", &id);
    let save = fed.dir.path().join("saved");
    let out = fed
        .kurir("BA.SPS")
        .args(["show", &id, "--no-mark-read", "--save-dir"])
        .arg(&save)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let raw = |t: &str| {
        t.chars()
            .any(|c| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c))
    };
    assert!(!raw(&text), "{text:?}");
    assert!(text.contains("Joint patrol\\x1b]0;owned\\x07"), "{text}");
    assert!(text.contains("\\u{202e}fdp.exe"), "{text}");
    // The body's second line stays under its field, not a line of ours.
    assert!(!text.contains("\n  receipt     forged"), "{text}");
    // The saved file's name has neither.
    let saved: Vec<String> = std::fs::read_dir(&save)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(!raw(&saved[0]), "{saved:?}");
    assert_eq!(saved[0], "scan_]8;;x__fdp.exe", "{saved:?}");
    // The inbox and the case list print no escape either.
    let out = fed.kurir("BA.SPS").arg("inbox").output().unwrap();
    assert!(!raw(&String::from_utf8(out.stdout).unwrap()));
    // JSON keeps the text exact (serde escapes the controls).
    let shown = one(
        &json_ok(fed.kurir("BA.SPS").args(["show", &id, "--no-mark-read"])),
        "message",
    );
    assert_eq!(shown["body"]["subject"], subject, "{shown}");
}

/// `kurir show --envelope` gives any role the verified envelope and no
/// body, and is no read (the message stays unread, nothing is logged); a
/// body the auditor may not read is refused with the relay's reason (exit
/// 4); `kurir audit show --reads --message` lists every read of the
/// message (each body read, the refusal, the mark) with the officer's
/// name, role and certificate serial.
#[test]
fn an_envelope_for_every_role_and_the_reads_of_a_message() {
    let mut fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let id = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &id);

    let m = one(
        &json_ok(
            fed.kurir_as("BA.SPS", "auditor")
                .args(["show", &id, "--envelope"]),
        ),
        "message",
    );
    assert_eq!(m["signature"]["verified"], true, "{m}");
    assert_eq!(m["header"]["handling"], "H1", "{m}");
    assert_eq!(m["body"]["not_fetched"], "envelope only", "{m}");
    let text = fed
        .kurir("BA.SPS")
        .args(["show", &id, "--envelope"])
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("not fetched (--envelope)"), "{text}");
    assert!(text.contains("read        not yet"), "{text}");
    let err = fails(fed.kurir_as("BA.SPS", "auditor").args(["show", &id]), 4);
    assert!(
        err.contains("handling level H1") && err.contains("role officer"),
        "{err}"
    );
    // Two reads by the duty officer (the first marks it read).
    for _ in 0..2 {
        json_ok(fed.kurir("BA.SPS").args(["show", &id]));
    }

    let dirs = stop_and_export(&mut fed, &["BA.SPS"]);
    let serial = |name: &str| {
        let cert = fed
            .dir
            .path()
            .join(format!("fed/BA.SPS/officers/{}", name.replace(' ', "_")))
            .join(kurir_certs::officer::officer_layout::CERT);
        kurir_certs::officer::serial_of(cert.to_str().unwrap()).unwrap()
    };
    let reads: Vec<Value> = json_ok(&mut audit(
        &["show", "--reads", "--message", &id],
        &[dirs[0].as_path()],
    ))
    .into_iter()
    .map(|l| l["data"].clone())
    .collect();
    let seen: Vec<(&str, &str, &str, &str)> = reads
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["reader"]["name"].as_str().unwrap_or("-"),
                e["reader"]["role"].as_str().unwrap_or("-"),
                e["reader"]["serial"].as_str().unwrap(),
            )
        })
        .collect();
    let (duty, auditor) = (serial("duty officer"), serial("auditor"));
    assert_eq!(
        seen,
        [
            ("body_refused", "auditor", "auditor", auditor.as_str()),
            ("body_read", "duty officer", "officer", duty.as_str()),
            ("read", "-", "-", duty.as_str()),
            ("body_read", "duty officer", "officer", duty.as_str()),
        ]
    );
    assert_eq!(reads[0]["reader"]["refused"], "role_not_allowed");

    let out = audit(&["show", "--reads", "--message", &id], &[dirs[0].as_path()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("OFFICER") && text.contains("SERIAL") && text.contains("REFUSED"),
        "{text}"
    );
    assert!(
        text.contains(&duty) && text.contains("role_not_allowed"),
        "{text}"
    );
    assert!(text.contains(&format!("message {id}, reads")), "{text}");
    let err = fails(
        &mut audit(
            &["show", "--reads", "--message", "nonsense"],
            &[dirs[0].as_path()],
        ),
        2,
    );
    assert!(err.contains("nonsense"), "{err}");
}

/// `kurir audit report` and `prove-deadline`, checked in a real browser.
#[path = "cli/report.rs"]
mod report;

/// `kurir send notice --wait SECS` is one exchange with the relay: it
/// prints the submission, then the status once every delivery is final,
/// with the verified receipt; while the recipient's relay is down it prints
/// the status as it is when the wait ends and exits 3, the message queued.
#[test]
fn send_wait_prints_the_receipt_or_exits_3_while_a_recipient_is_down() {
    let mut fed = Fed::start(&["RS.MUP", "ME.UP"]);
    let send = |fed: &Fed, wait: &str| {
        fed.kurir("RS.MUP")
            .args(["send", "notice", "--to", "ME.UP", "--subject", "Arrival"])
            .args(["--text", "Bus 14:20", "--wait", wait, "--json"])
            .output()
            .unwrap()
    };
    let out = send(&fed, "30");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let id = one(&lines, "submitted")["msg_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = one(&lines, "status");
    assert_eq!(status["summary"]["msg_id"], id.as_str(), "{status}");
    let d = &status["deliveries"][0];
    assert_eq!(d["state"], "delivered", "{status}");
    assert_eq!(d["receipt"]["verified"], true, "{status}");
    assert_eq!(d["receipt"]["signer"], "ME.UP", "{status}");

    stop(&mut fed, "ME.UP");
    let started = std::time::Instant::now();
    let out = send(&fed, "1");
    assert!(started.elapsed() >= Duration::from_secs(1), "waited");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not delivered to every recipient yet"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"submitted\""), "{stdout}");
    assert!(
        stdout.contains("\"queued\"")
            || stdout.contains("\"retrying\"")
            || stdout.contains("\"sending\""),
        "{stdout}"
    );
}
