//! What `roster verify` and `roster show` print: a readable report, or JSON
//! Lines (`{"type", "data"}` objects: `roster`, `member`, `warning`,
//! `problem`, `summary`). Warnings (message keys beyond the lifetime rule)
//! do not make a roster invalid.

use std::path::Path;

use kurir_certs::roster::{self, Problem, RosterBody, SignedRoster};
use kurir_certs::x509;
use kurir_proto::KeyId;

fn json_line(kind: &str, data: serde_json::Value) {
    println!("{}", serde_json::json!({ "type": kind, "data": data }));
}

/// Prints the report on a roster file, as text or (`json`) JSON Lines;
/// `full` adds every member.
pub(super) fn report(
    path: &Path,
    signed: &SignedRoster,
    body: Option<&RosterBody>,
    problems: &[Problem],
    json: bool,
    full: bool,
) {
    let fingerprint = signed.fingerprint();
    if json {
        if let Some(b) = body {
            json_line(
                "roster",
                serde_json::json!({
                    "file": path.display().to_string(),
                    "version": b.version,
                    "issued_at": b.issued_at.0,
                    "threshold": b.threshold,
                    "fingerprint": fingerprint,
                    "roster_keys": b.roster_keys.iter().map(|k| serde_json::json!({
                        "kid": k.id().to_string(), "label": k.label,
                        "public": hex::encode(k.key.as_bytes())})).collect::<Vec<_>>(),
                    "signatures": signed.signatures.iter().map(|s| hex::encode(&s.kid)).collect::<Vec<_>>(),
                }),
            );
            if full {
                for m in &b.members {
                    json_line("member", member_json(m));
                }
            }
        }
        for w in body.map(roster::key_lifetime_warnings).unwrap_or_default() {
            json_line("warning", serde_json::json!({ "message": w }));
        }
        for p in problems {
            json_line("problem", serde_json::json!({ "message": p.to_string() }));
        }
        json_line(
            "summary",
            serde_json::json!({ "valid": problems.is_empty(), "problems": problems.len() }),
        );
        return;
    }
    println!("roster {}", path.display());
    println!("  sha256      {fingerprint}");
    if let Some(b) = body {
        println!("  version     {}", b.version);
        println!("  issued at   {}", b.issued_at);
        println!(
            "  threshold   {} of {} roster keys",
            b.threshold,
            b.roster_keys.len()
        );
        for k in &b.roster_keys {
            let signed_by = signed.signatures.iter().any(|s| s.kid == k.id().as_bytes());
            println!(
                "  roster key  {}  {}{}",
                k.id(),
                k.label,
                if signed_by { "  (signed)" } else { "" }
            );
        }
        println!("  members     {}", b.members.len());
        if full {
            for m in &b.members {
                print_member(m);
            }
        } else {
            print_revocations(b);
        }
    }
    println!("  signatures  {}", signed.signatures.len());
    if let Some(b) = body {
        for (i, s) in signed.signatures.iter().enumerate() {
            if !b
                .roster_keys
                .iter()
                .any(|k| k.id().as_bytes() == s.kid.as_slice())
            {
                println!(
                    "  note: signatures[{i}] is by key {}, not a roster key of this version; \
                     it counts only for a relay whose current roster lists it",
                    hex::encode(&s.kid)
                );
            }
        }
    }
    if let Some(b) = body {
        for w in roster::key_lifetime_warnings(b) {
            println!("  warning: {w}");
        }
    }
    if problems.is_empty() {
        println!("VALID");
    } else {
        println!("NOT VALID: {} problem(s)", problems.len());
        for p in problems {
            println!("  - {p}");
        }
    }
}

fn member_json(m: &roster::Member) -> serde_json::Value {
    let mut member = serde_json::json!({
        "id": m.id.to_string(),
        "name": m.name,
        "endpoints": m.endpoints.iter().map(|e| format!("{}:{}", e.host, e.port)).collect::<Vec<_>>(),
        "tls_ca_sha256": x509::fingerprint(&m.tls_ca),
        "message_keys": m.message_keys.iter().map(|k| serde_json::json!({
            "kid": k.id().to_string(),
            "public": hex::encode(k.key.as_bytes()),
            "valid_from": k.valid_from.0,
            "valid_until": k.valid_until.map(|t| t.0),
            "revoked_at": k.revoked_at.map(|t| t.0),
        })).collect::<Vec<_>>(),
        "revoked_node_certs": m.revoked_node_certs.iter().map(|r| serde_json::json!({
            "sha256": r.sha256_hex(),
            "revoked_at": r.revoked_at.0,
            "reason": r.reason,
        })).collect::<Vec<_>>(),
        "log_key": KeyId::of(&m.log_key).to_string(),
        "kinds": m.kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "focal_points": m.focal_points,
    });
    // Only after a log-key rotation, so earlier output keeps its shape.
    if !m.log_keys_before.is_empty() {
        member["log_keys_before"] = m
            .log_keys_before
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": KeyId::of(&k.key).to_string(),
                    "public": hex::encode(k.key.as_bytes()),
                    "valid_until": k.valid_until.0,
                })
            })
            .collect();
    }
    member
}

fn print_member(m: &roster::Member) {
    println!("  member {}  {}", m.id, m.name);
    for e in &m.endpoints {
        println!("    endpoint      {}:{}", e.host, e.port);
    }
    let ca = x509::CertInfo::parse(&m.tls_ca)
        .map(|i| format!("valid {} .. {}", i.not_before, i.not_after))
        .unwrap_or_default();
    println!("    tls ca sha256 {}  {ca}", x509::fingerprint(&m.tls_ca));
    for k in &m.message_keys {
        let until = k
            .valid_until
            .map(|t| t.to_string())
            .unwrap_or_else(|| "open".into());
        let revoked = k
            .revoked_at
            .map(|t| format!("  REVOKED at {t}"))
            .unwrap_or_default();
        println!(
            "    message key   {}  {} .. {until}{revoked}",
            k.id(),
            k.valid_from
        );
    }
    for r in &m.revoked_node_certs {
        println!(
            "    revoked node certificate sha256 {}  at {}  ({})",
            r.sha256_hex(),
            r.revoked_at,
            r.reason
        );
    }
    println!("    log key       {}", KeyId::of(&m.log_key));
    for k in &m.log_keys_before {
        println!(
            "    log key was   {}  .. {}",
            KeyId::of(&k.key),
            k.valid_until
        );
    }
    let kinds: Vec<String> = m.kinds.iter().map(|k| k.to_string()).collect();
    println!("    kinds         {}", kinds.join(", "));
    for f in &m.focal_points {
        println!(
            "    focal point   {} ({}), {}, {}",
            f.name, f.role, f.phone, f.email
        );
    }
}

/// The revocations of every member, for `roster verify` (which does not
/// print the members in full).
fn print_revocations(b: &RosterBody) {
    for m in &b.members {
        for k in m.message_keys.iter().filter(|k| k.revoked_at.is_some()) {
            if let Some(at) = k.revoked_at {
                println!("  revoked     {} message key {} from {at}", m.id, k.id());
            }
        }
        for r in &m.revoked_node_certs {
            println!(
                "  revoked     {} node certificate sha256 {} at {} ({})",
                m.id,
                r.sha256_hex(),
                r.revoked_at,
                r.reason
            );
        }
    }
}
