//! `kurir-certs roster`: `keygen`, `new`, `add`, `update`, `remove`, `keys`,
//! `sign`, `verify`, `show` (and `revoke-node`, `revoke-key` in `revoke`). Edits leave an unsigned draft; `verify` and
//! `show` print through `report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kurir_certs::error::{PkiError, RosterError};
use kurir_certs::files::Overwrite;
use kurir_certs::roster::{Editor, FocalPoint, RosterKey, SignedRoster};
use kurir_certs::{keys, roster};
use kurir_proto::{AuthorityId, KeyId, Timestamp};

use super::report::report;
use crate::exit::UsageError;
use kurir_certs::cli::{MemberArgs, RosterCmd};

fn parse_roster_key(arg: &str, n: usize) -> Result<RosterKey> {
    let (label, pubarg) = match arg.split_once('=') {
        Some((l, p)) => (l.to_owned(), p),
        None => {
            let stem = Path::new(arg)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|_| Path::new(arg).exists())
                .unwrap_or_else(|| format!("roster key {n}"));
            (stem, arg)
        }
    };
    let key = keys::read_public_key(pubarg)?;
    Ok(RosterKey { label, key })
}

fn parse_focal_point(arg: &str) -> Result<FocalPoint> {
    let parts: Vec<&str> = arg.split('|').collect();
    let [name, role, phone, email] = parts.as_slice() else {
        return Err(UsageError(format!(
            "--focal-point {arg:?}: expected NAME|ROLE|PHONE|EMAIL"
        ))
        .into());
    };
    Ok(FocalPoint {
        name: (*name).to_owned(),
        role: (*role).to_owned(),
        phone: (*phone).to_owned(),
        email: (*email).to_owned(),
    })
}

pub(super) fn save_draft(editor: Editor, path: &Path, now: Timestamp) -> Result<u8> {
    let was_signed = editor.was_signed();
    let draft = editor.finish(now)?;
    draft.save(path)?;
    let version = draft.body().map(|b| b.version).unwrap_or(0);
    if was_signed {
        eprintln!(
            "the roster was signed: it is now an unsigned draft of version {version}; \
             the signatures were removed"
        );
    }
    eprintln!("wrote {} (version {version}, unsigned)", path.display());
    Ok(0)
}

/// Runs a `roster` subcommand.
pub(super) fn roster_cmd(cmd: RosterCmd, now: Timestamp) -> Result<u8> {
    match cmd {
        RosterCmd::Keygen { out, force } => {
            let key = keys::generate_ed25519()?;
            let overwrite = Overwrite::from_force(force);
            let mut pub_path = out.clone().into_os_string();
            pub_path.push(".pub");
            let pub_path = PathBuf::from(pub_path);
            kurir_certs::files::check_absent(&pub_path, overwrite)?;
            keys::write_secret_key(&out, &key, overwrite)?;
            keys::write_public_key(&pub_path, &key.verifying_key(), overwrite)?;
            println!(
                "roster key {}  public {}",
                KeyId::of(&key.verifying_key()),
                hex::encode(key.verifying_key().as_bytes())
            );
            eprintln!(
                "wrote {} (secret, 0600) and {}",
                out.display(),
                pub_path.display()
            );
            Ok(0)
        }
        RosterCmd::New {
            out,
            threshold,
            keys: key_args,
            force,
        } => {
            kurir_certs::files::check_absent(&out, Overwrite::from_force(force))?;
            let mut roster_keys = Vec::new();
            for (i, k) in key_args.iter().enumerate() {
                roster_keys.push(parse_roster_key(k, i + 1)?);
            }
            let editor = Editor::create(threshold, roster_keys, now)?;
            save_draft(editor, &out, now)
        }
        RosterCmd::Add(args) => member_edit(args, true, now),
        RosterCmd::Update(args) => member_edit(args, false, now),
        RosterCmd::Remove { roster, id } => {
            let id = AuthorityId::parse(&id).map_err(|error| PkiError::Id {
                field: "--id",
                error,
            })?;
            let mut editor = Editor::open(&SignedRoster::load(&roster)?)?;
            editor.remove_member(&id)?;
            eprintln!("removed {id}");
            save_draft(editor, &roster, now)
        }
        RosterCmd::RevokeNode {
            roster,
            member,
            cert,
            fingerprint,
            reason,
        } => super::revoke::revoke_node(
            &roster,
            &member,
            cert.as_deref(),
            fingerprint.as_deref(),
            &reason,
            now,
        ),
        RosterCmd::RevokeKey {
            roster,
            member,
            kid,
            at,
        } => super::revoke::revoke_key(&roster, &member, &kid, at.as_deref(), now),
        RosterCmd::Keys {
            roster,
            add,
            remove,
            threshold,
        } => {
            let mut editor = Editor::open(&SignedRoster::load(&roster)?)?;
            for kid in &remove {
                let kid = KeyId::parse(kid).map_err(|e| UsageError(format!("--remove: {e}")))?;
                editor.remove_roster_key(&kid)?;
            }
            let n = editor.body.roster_keys.len();
            for (i, k) in add.iter().enumerate() {
                editor.add_roster_key(parse_roster_key(k, n + i + 1)?)?;
            }
            if let Some(k) = threshold {
                editor.body.threshold = k;
            }
            save_draft(editor, &roster, now)
        }
        RosterCmd::Sign { roster, key } => {
            let mut signed = SignedRoster::load(&roster)?;
            let body = signed.body().map_err(|problems| RosterError::Invalid {
                path: Some(roster.clone()),
                problems,
            })?;
            let key = keys::read_secret_key(&key)?;
            let kid = KeyId::of(&key.verifying_key());
            if !body.roster_keys.iter().any(|k| k.id() == kid) {
                eprintln!(
                    "warning: key {kid} is not a roster key of this version; its signature \
                     only counts for a relay whose current roster lists it"
                );
            }
            signed.sign(&key);
            signed.save(&roster)?;
            let (_, problems) = signed.check(None, now);
            let valid = problems.is_empty();
            println!(
                "signed version {} with {kid}; {} signature(s){}",
                body.version,
                signed.signatures.len(),
                if valid {
                    "; the roster is now valid".to_owned()
                } else {
                    format!(
                        "; not yet valid ({} of {} needed)",
                        signed.signatures.len(),
                        body.threshold
                    )
                }
            );
            Ok(0)
        }
        RosterCmd::Verify {
            roster,
            previous,
            json,
        } => {
            let signed = SignedRoster::load(&roster)?;
            let current = match &previous {
                Some(p) => Some(
                    kurir_certs::Roster::load(p, None, now)
                        .with_context(|| format!("--previous {}", p.display()))?,
                ),
                None => None,
            };
            let (body, problems) = signed.check(current.as_ref(), now);
            report(&roster, &signed, body.as_ref(), &problems, json, false);
            Ok(if problems.is_empty() { 0 } else { 4 })
        }
        RosterCmd::Show { roster, json } => {
            let signed = SignedRoster::load(&roster)?;
            let (body, problems) = signed.check(None, now);
            report(&roster, &signed, body.as_ref(), &problems, json, true);
            Ok(0)
        }
    }
}

fn member_edit(args: MemberArgs, add: bool, now: Timestamp) -> Result<u8> {
    let mut member = roster::member_from_file(&args.member)?;
    if !args.kinds.is_empty() {
        member.kinds = args.kinds.clone();
    }
    if !args.focal_points.is_empty() {
        member.focal_points = args
            .focal_points
            .iter()
            .map(|f| parse_focal_point(f))
            .collect::<Result<_>>()?;
    }
    let id = member.id.clone();
    let signed = SignedRoster::load(&args.roster)?;
    let current = signed
        .body()
        .map_err(|p| anyhow::anyhow!("{}: {p}", args.roster.display()))?;
    let long = roster::long_new_keys(&current, &member);
    if !long.is_empty() {
        if !args.allow_long_key {
            return Err(UsageError(format!(
                "{}; message keys are valid for at most {} days (PKI.md \"Key lifetimes\"): make \
                 the key again with `kurir-certs authority rotate-key --key-days N`, or pass \
                 --allow-long-key to take it anyway",
                long.join("; "),
                roster::MAX_KEY_LIFETIME_MS / kurir_certs::x509::DAY_MS
            ))
            .into());
        }
        for l in &long {
            eprintln!("warning: {l} (taken: --allow-long-key)");
        }
    }
    let mut editor = Editor::open(&signed)?;
    if add {
        editor.add_member(member)?;
        eprintln!("added {id}");
    } else {
        editor.update_member(member)?;
        eprintln!("updated {id}");
    }
    save_draft(editor, &args.roster, now)
}
