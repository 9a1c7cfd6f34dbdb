//! The demo's second act: AT.BMI (Austria, Federal Ministry of the
//! Interior) joins the running federation. Its authority directory is
//! created; roster v2 adding it is signed by 2 of the 3 roster keys and
//! installed at RS.MUP alone (`kurir_relay::install::install`, what
//! `kurir-relay roster install` runs, then RS.MUP's reload, what `SIGHUP`
//! does); BA.SPS, ME.UP and MK.MVR take it from their peers, none of them
//! restarted; AT.BMI's relay starts, and its officer exchanges an
//! operational notice with ME.UP, each message and receipt verified
//! against roster v2.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kurir_certs::officer::Role;
use kurir_certs::roster::Editor;
use kurir_certs::{Roster, SignedRoster};
use kurir_proto::api::Submission;
use kurir_proto::message::{Handling, Message, MessageKind, examples};
use kurir_relay::clock::Clock;
use kurir_relay::config::RelayConfig;
use kurir_relay::install::{Installed, install};
use kurir_relay::node::{Node, RosterReload};

use crate::federation::{self, FoundedMember, MemberSpec};
use crate::run::{
    DemoError, STEP_TIMEOUT, Timeline, await_delivery, fail, fetch_verified, id, next_arrival,
    officer, send,
};

/// The joining authority.
pub(crate) const JOINS: &str = "AT.BMI";

/// Gives `m` a roster file of its own, holding `bytes`, in place of the
/// federation's shared one: a roster installed at one relay then reaches
/// the others only through the relays themselves.
pub(crate) fn own_roster_file(m: &FoundedMember, bytes: &[u8]) -> Result<PathBuf, DemoError> {
    let home = m
        .config_path
        .parent()
        .ok_or_else(|| fail(format!("{} has no home directory", m.id)))?;
    let path = home.join("roster.cbor");
    std::fs::write(&path, bytes).map_err(|e| fail(format!("writing {}: {e}", path.display())))?;
    let text = std::fs::read_to_string(&m.config_path)
        .map_err(|e| fail(format!("reading {}: {e}", m.config_path.display())))?;
    let changed = text.replace("path = \"../roster.cbor\"", "path = \"roster.cbor\"");
    if changed == text {
        return Err(fail(format!(
            "{} does not name the federation's roster file",
            m.config_path.display()
        )));
    }
    std::fs::write(&m.config_path, changed)
        .map_err(|e| fail(format!("writing {}: {e}", m.config_path.display())))?;
    Ok(path)
}

/// AT.BMI joins while the founding relays (`nodes`, in founding order)
/// run; its relay is pushed onto `nodes`. Returns roster v2.
pub(crate) async fn join(
    fed: &mut federation::Federation,
    nodes: &mut Vec<Node>,
    roster: &Roster,
    clock: &Arc<dyn Clock>,
    t: &mut Timeline,
) -> Result<Roster, DemoError> {
    let spec = MemberSpec {
        id: id(JOINS)?,
        name: "Federal Ministry of the Interior of Austria".into(),
        officers: vec![
            ("duty officer".to_owned(), Role::Officer),
            ("auditor".to_owned(), Role::Auditor),
        ],
        focal_points: vec![],
    };
    let entry = fed.join(&spec, clock.now()).map_err(fail)?;
    let new = fed
        .member(&spec.id)
        .ok_or_else(|| fail("AT.BMI was not founded"))?;
    t.say(format!(
        "{JOINS} (Austria, Federal Ministry of the Interior) created its authority directory {} \
         (CA, node certificate, message and log keys, officers)",
        new.authority_dir.display()
    ));

    // Roster v2: v1 with AT.BMI added, signed by roster keys 1 and 3.
    let current = SignedRoster::decode(roster.to_bytes()).map_err(|p| fail(format!("{p:?}")))?;
    let mut editor = Editor::open(&current).map_err(fail)?;
    editor.add_member(entry).map_err(fail)?;
    let mut next = editor.finish(clock.now()).map_err(fail)?;
    for i in [0, 2] {
        let key = fed
            .roster_keys
            .get(i)
            .ok_or_else(|| fail(format!("no roster key {i}")))?;
        next.sign(key);
    }
    let bytes = next.encode().map_err(fail)?;
    let v2 = Roster::verify_against(&bytes, Some(roster), clock.now()).map_err(fail)?;
    let file = fed.dir.join("roster-v2.cbor");
    std::fs::write(&file, &bytes).map_err(|e| fail(format!("writing {}: {e}", file.display())))?;
    t.say(format!(
        "roster v{} adding {JOINS} signed by 2 of 3 roster keys (fingerprint {}…)",
        v2.version(),
        &v2.fingerprint()[..16]
    ));

    // Installed at RS.MUP alone, then RS.MUP's reload.
    let rs = fed
        .members
        .first()
        .ok_or_else(|| fail("no founding member"))?;
    match install(&rs.config_path, &file, clock.now()).map_err(fail)? {
        Installed::Written {
            path,
            from,
            version,
            ..
        } => t.say(format!(
            "roster v{version} installed at {} (replacing v{from} in {}), as `kurir-relay roster \
             install` does",
            rs.id,
            path.display()
        )),
        other => return Err(fail(format!("roster install at RS.MUP: {other:?}"))),
    }
    let rs_node = nodes.first().ok_or_else(|| fail("RS.MUP is not running"))?;
    match rs_node.reload_roster().await.map_err(fail)? {
        RosterReload::Applied { change, .. } => {
            let added: Vec<&str> = change.added.iter().map(|a| a.as_str()).collect();
            t.say(format!(
                "{} reloaded it (what SIGHUP does): roster v{} in force, added {}",
                rs.id,
                change.to,
                added.join(", ")
            ));
        }
        other => return Err(fail(format!("RS.MUP did not take roster v2: {other:?}"))),
    }

    // The other founding relays take it from their peers, no restart.
    let waited = Instant::now();
    for (m, node) in fed.members.iter().zip(nodes.iter()).skip(1) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let (version, _) = node.roster_in_force();
            if version == v2.version() {
                break;
            }
            if Instant::now() > deadline {
                return Err(fail(format!(
                    "{} still has roster v{version} after {STEP_TIMEOUT:?}",
                    m.id
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        t.say(format!(
            "{} has roster v{} in force, taken from its peers without a restart ({} ms after \
             the install)",
            m.id,
            v2.version(),
            waited.elapsed().as_millis()
        ));
    }

    // AT.BMI's relay starts with roster v2.
    let new = fed
        .member_mut(&spec.id)
        .ok_or_else(|| fail("AT.BMI was not founded"))?;
    own_roster_file(new, &bytes)?;
    let config = RelayConfig::load(&new.config_path).map_err(fail)?;
    let node = Node::start(config, clock.clone(), new.socket.take())
        .await
        .map_err(|e| fail(format!("relay {JOINS}: {e}")))?;
    t.say(format!(
        "relay {JOINS} listening on {} with roster v{}",
        node.local_addr(),
        v2.version()
    ));
    nodes.push(node);
    notice_both_ways(fed, &v2, t).await?;
    Ok(v2)
}

/// AT.BMI's officer and ME.UP's (whose relay never restarted) exchange an
/// operational notice, each fetched, verified and its receipt verified
/// against roster v2.
async fn notice_both_ways(
    fed: &federation::Federation,
    v2: &Roster,
    t: &mut Timeline,
) -> Result<(), DemoError> {
    let at = officer(fed, JOINS, "duty officer").await?;
    let me = officer(fed, "ME.UP", "duty officer").await?;
    let mut at_inbox = at.subscribe().await.map_err(fail)?;
    let mut me_inbox = me.subscribe().await.map_err(fail)?;
    let body = Message::OperationalNotice(examples::notice())
        .encode()
        .map_err(fail)?;
    let notice = |to: &str| -> Result<Submission, DemoError> {
        Ok(Submission {
            to: vec![id(to)?],
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            expires_in_ms: None,
            body: body.clone(),
        })
    };
    let sent = send(&at, notice("ME.UP")?).await?;
    t.say(format!(
        "{JOINS} officer sent operational-notice {sent} to ME.UP"
    ));
    let s = next_arrival(&mut me_inbox).await?;
    if s.msg_id != sent {
        return Err(fail(format!(
            "ME.UP received {} instead of {sent}",
            s.msg_id
        )));
    }
    t.say(format!(
        "ME.UP received {} {} from {}",
        s.kind, s.msg_id, s.from
    ));
    fetch_verified(&me, v2, s.msg_id, t, "ME.UP officer").await?;
    await_delivery(&at, v2, sent, t).await?;

    let answer = send(&me, notice(JOINS)?).await?;
    t.say(format!(
        "ME.UP officer sent operational-notice {answer} to {JOINS}"
    ));
    let s = next_arrival(&mut at_inbox).await?;
    if s.msg_id != answer {
        return Err(fail(format!(
            "{JOINS} received {} instead of {answer}",
            s.msg_id
        )));
    }
    t.say(format!(
        "{JOINS} received {} {} from {}",
        s.kind, s.msg_id, s.from
    ));
    fetch_verified(&at, v2, s.msg_id, t, &format!("{JOINS} officer")).await?;
    await_delivery(&me, v2, answer, t).await?;
    for c in [at, me] {
        c.close().await;
    }
    Ok(())
}
