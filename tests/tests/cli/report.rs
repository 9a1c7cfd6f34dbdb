//! `kurir audit report` and `kurir audit prove-deadline` on a four-authority
//! federation on a simulated clock: one case answered in time, one deemed
//! accepted with no reply, notices between members. The report is rendered
//! in headless Chromium (Debian's `chromium`), read back from the rendered
//! DOM, and printed to PDF. Without a browser the browser part says so on
//! stderr and is skipped; with `KURIR_REQUIRE_BROWSER=1` (CI) a missing
//! browser fails the test.

use std::process::Command as Process;
use std::time::Instant;

use super::*;

const MEMBERS: [&str; 4] = ["RS.MUP", "BA.SPS", "ME.UP", "MK.MVR"];

/// Exports `who`'s log from its running relay (as its auditor) into a new
/// directory.
fn export_running(fed: &Fed, who: &str, n: usize) -> PathBuf {
    let out = fed.dir.path().join(format!("live-{who}-{n}"));
    let ok = fed
        .kurir_as(who, "auditor")
        .args(["audit", "export", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    out
}

/// BA.SPS confirms `case`; returns once RS.MUP holds the reply.
fn reply(fed: &Fed, case: &str) {
    let lines = json_ok(
        fed.kurir("BA.SPS")
            .args(["readmission", "reply", case, "--confirm"]),
    );
    let id = one(&lines, "submitted")["msg_id"]
        .as_str()
        .unwrap()
        .to_owned();
    delivered(fed, "BA.SPS", &id);
}

#[test]
fn the_report_of_four_bundles_shows_deadlines_and_a_proof_of_silence_in_a_real_browser() {
    let mut fed = Fed::start_checkpointing(&MEMBERS);
    let roster = fed.dir.path().join("fed/roster.cbor");
    // Traffic: notices between members, a case answered in time, and a
    // case that BA.SPS never answers.
    for (from, to) in [
        ("RS.MUP", "BA.SPS"),
        ("ME.UP", "RS.MUP"),
        ("MK.MVR", "BA.SPS"),
    ] {
        let id = notice(&fed, from, to);
        delivered(&fed, from, &id);
    }
    let (_, answered) = request_readmission(&fed);
    reply(&fed, &answered);
    let (silent_msg, silent) = request_readmission(&fed);
    // BA.SPS's officer reads the request; its auditor is refused the body.
    json_ok(fed.kurir("BA.SPS").args(["show", &silent_msg]));
    fails(
        fed.kurir_as("BA.SPS", "auditor")
            .args(["show", &silent_msg]),
        4,
    );

    // Twelve days later (standard procedure: 10): both clocks deem the
    // silent case accepted when asked about it.
    fed.clock.advance(12 * DAY_MS);
    for who in ["RS.MUP", "BA.SPS"] {
        let view = one(&json_ok(fed.kurir(who).args(["case", &silent])), "case");
        assert_eq!(view["state"], "deemed_accepted", "{who}: {view}");
    }
    // A minute later BA.SPS sends a notice: its next checkpoint covers its
    // deemed acceptance and is cosigned after it.
    fed.clock.advance(60_000);
    let id = notice(&fed, "BA.SPS", "ME.UP");
    delivered(&fed, "BA.SPS", &id);

    // Until the cosignatures are in, the proof is "not covered" (exit 4);
    // then it holds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    let proof = loop {
        n += 1;
        let dirs = [
            export_running(&fed, "RS.MUP", n),
            export_running(&fed, "BA.SPS", n),
        ];
        let out = audit(&["prove-deadline", &silent], &[&dirs[0], &dirs[1]])
            .arg("--roster")
            .arg(&roster)
            .arg("--json")
            .output()
            .unwrap();
        let line: Value =
            serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap_or_default())
                .unwrap_or(Value::Null);
        if out.status.success() {
            break line["data"].clone();
        }
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        assert_eq!(line["data"]["code"], "not_covered", "{out:?}");
        assert!(Instant::now() < deadline, "no cosigned checkpoint: {out:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(proof["holds"], true);
    assert_eq!(proof["requesting"], "RS.MUP");
    assert_eq!(proof["requested"], "BA.SPS");
    assert_eq!(proof["checkpoint"]["authority"], "BA.SPS");
    assert!(
        !proof["checkpoint"]["cosigned_by"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(proof["request_received"]["authority"], "BA.SPS");
    assert_eq!(proof["deemed_accepted"]["authority"], "RS.MUP");

    // The answered case has no proof of silence: BA.SPS replied.
    let live = [
        export_running(&fed, "RS.MUP", 1000),
        export_running(&fed, "BA.SPS", 1000),
    ];
    let err = fails(
        audit(&["prove-deadline", &answered], &[&live[0], &live[1]])
            .arg("--roster")
            .arg(&roster),
        4,
    );
    assert!(
        err.contains("not_deemed") || err.contains("no deemed acceptance"),
        "{err}"
    );

    // The whole federation, stopped and exported.
    let bundles = stop_and_export(&mut fed, &MEMBERS);
    let dirs: Vec<&Path> = bundles.iter().map(PathBuf::as_path).collect();
    let page = fed.dir.path().join("report.html");
    let out = report_cmd(&dirs, &roster, &page).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("VERIFIED"), "{text}");
    assert!(text.contains("1 with a proof of silence"), "{text}");
    let html = std::fs::read_to_string(&page).unwrap();
    for personal in ["EXAMPLE", "Ana Maria", "1990-04-17", "Podgorica"] {
        assert!(
            !html.contains(personal),
            "the body's {personal:?} reached the report"
        );
    }

    // Not replaced without --force.
    let err = fails(&mut report_cmd(&dirs, &roster, &page), 2);
    assert!(err.contains("--force"), "{err}");

    let expected_matrix = [
        ("RS.MUP", "BA.SPS", 3),
        ("BA.SPS", "RS.MUP", 1),
        ("ME.UP", "RS.MUP", 1),
        ("MK.MVR", "BA.SPS", 1),
        ("BA.SPS", "ME.UP", 1),
        ("RS.MUP", "ME.UP", 0),
    ];
    let Some(browser) = browser() else {
        return;
    };
    let dom = render(&browser, &page, fed.dir.path());
    assert!(
        dom.contains("id=\"verdict\"") && dom.contains("data-verdict=\"verified\""),
        "{dom}"
    );
    assert!(dom.contains(&format!(
        "data-case=\"{answered}\" data-reply=\"met\" data-transfer=\"open\" data-silence=\"none\""
    )));
    assert!(dom.contains(&format!(
        "data-case=\"{silent}\" data-reply=\"deemed_accepted\" data-transfer=\"open\" \
         data-silence=\"holds\""
    )));
    assert!(dom.contains("Proof of silence: holds."), "{dom}");
    // The reads of the silent case's request at BA.SPS, with who read:
    // `kurir show` reads the body and marks the message read; the auditor
    // is refused.
    assert_eq!(dom.matches("<tr class=\"read\">").count(), 3, "{dom}");
    assert!(dom.contains("marked read"));
    assert!(dom.contains("duty officer (officer)") && dom.contains("body read"));
    assert!(dom.contains("auditor (auditor)") && dom.contains("body refused: role_not_allowed"));
    for (from, to, n) in expected_matrix {
        assert!(
            dom.contains(&format!("data-from=\"{from}\" data-to=\"{to}\">{n}</td>")),
            "{from} -> {to}: {n}"
        );
    }
    assert_eq!(external_references(&dom), Vec::<String>::new());
    let pdf = fed.dir.path().join("report.pdf");
    run_browser(
        &browser,
        fed.dir.path(),
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
        &page,
    );
    let pdf = std::fs::read(&pdf).unwrap();
    assert!(
        pdf.starts_with(b"%PDF") && pdf.len() > 5_000,
        "{}",
        pdf.len()
    );
    // A picture for docs/AUDIT.md, when asked for.
    if let Some(to) = std::env::var_os("KURIR_REPORT_SCREENSHOT") {
        run_browser(
            &browser,
            fed.dir.path(),
            &[
                &format!("--screenshot={}", PathBuf::from(to).display()),
                "--window-size=1000,2000",
            ],
            &page,
        );
    }
}

#[test]
fn no_report_from_a_bundle_that_does_not_verify_or_has_another_roster() {
    let mut fed = Fed::start(&["RS.MUP", "BA.SPS"]);
    let id = notice(&fed, "RS.MUP", "BA.SPS");
    delivered(&fed, "RS.MUP", &id);
    let roster = fed.dir.path().join("fed/roster.cbor");
    let bundles = stop_and_export(&mut fed, &["RS.MUP", "BA.SPS"]);
    // One flipped byte in BA.SPS's bundle.
    let file = bundles[1].join("bundle.cbor");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let dirs: Vec<&Path> = bundles.iter().map(PathBuf::as_path).collect();
    let page = fed.dir.path().join("report.html");
    let err = fails(&mut report_cmd(&dirs, &roster, &page), 4);
    assert!(err.contains("no report written"), "{err}");
    assert!(err.contains("audit-BA.SPS"), "{err}");
    assert!(!page.exists());
    // With --include-failures: written, and it says so at the top.
    let out = report_cmd(&dirs, &roster, &page)
        .arg("--include-failures")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    let top = html.find("data-verdict=\"not-verified\"").unwrap();
    let named = html.find("audit-BA.SPS").unwrap();
    let bundles_section = html.find("Bundles: who exported").unwrap();
    assert!(top < named && named < bundles_section, "{html}");
    assert!(!html.contains("data-bundle=\"BA.SPS\""), "{html}");

    // A roster of another federation with the same authority ids.
    let other = tempfile::tempdir().unwrap();
    let specs: Vec<MemberSpec> = ["RS.MUP", "BA.SPS"]
        .iter()
        .map(|m| MemberSpec {
            id: AuthorityId::parse(m).unwrap(),
            name: format!("Authority {m}"),
            officers: vec![],
            focal_points: vec![],
        })
        .collect();
    let foreign = federation::found(other.path(), &specs, fed.clock.now()).unwrap();
    let good = stop_and_export_again(&fed, "RS.MUP");
    let err = fails(
        audit(&["report"], &[&good])
            .arg("--roster")
            .arg(&foreign.roster_path)
            .arg("--out")
            .arg(&page)
            .arg("--force"),
        4,
    );
    assert!(err.contains("roster"), "{err}");
}

/// `kurir audit report DIRS --roster ROSTER --out PAGE`.
fn report_cmd(dirs: &[&Path], roster: &Path, page: &Path) -> Command {
    let mut cmd = audit(&["report"], dirs);
    cmd.arg("--roster").arg(roster).arg("--out").arg(page);
    cmd
}

/// A fresh export of `who`'s (stopped) relay.
fn stop_and_export_again(fed: &Fed, who: &str) -> PathBuf {
    let data = fed.dir.path().join(format!("fed/{who}/data"));
    let out = fed.dir.path().join(format!("again-{who}"));
    kurir_relay::audit::export(&data, &out, fed.clock.now()).unwrap();
    out
}

/// Debian's Chromium, or `None` after saying why on stderr (an error when
/// `KURIR_REQUIRE_BROWSER=1`).
fn browser() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("KURIR_REQUIRE_BROWSER").is_none(),
            "KURIR_REQUIRE_BROWSER is set and no chromium is installed (apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED the browser checks of the audit report: no chromium installed \
             (apt-get install chromium); the report itself was checked"
        );
    }
    found
}

/// Runs headless Chromium on `page` with `extra` flags; returns stdout.
fn run_browser(browser: &Path, tmp: &Path, extra: &[&str], page: &Path) -> String {
    let profile = tempfile::tempdir_in(tmp).unwrap();
    let mut child = Process::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {extra:?}: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            unreachable!("chromium {extra:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The DOM Chromium rendered from `page`.
fn render(browser: &Path, page: &Path, tmp: &Path) -> String {
    run_browser(browser, tmp, &["--dump-dom"], page)
}

/// Every reference in `dom` to something outside the file: URLs and the
/// attributes and CSS that would load them. The SVG namespace name is an
/// identifier, never fetched.
fn external_references(dom: &str) -> Vec<String> {
    let dom = dom.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    [
        "http:", "https:", "ftp:", "src=", "href=", "url(", "@import", "<link", "<script",
    ]
    .iter()
    .filter(|needle| dom.contains(*needle))
    .map(|needle| needle.to_string())
    .collect()
}
