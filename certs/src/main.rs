//! `kurir-certs`: the PKI and the signed federation roster, for admins.
//!
//! A thin command line over the `kurir_certs` library; `docs/PKI.md` is the
//! guide. Data goes to stdout, diagnostics to stderr.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use kurir_certs::authority::{self, Authority, InitParams};
use kurir_certs::error::{FileError, PkiError, RosterError, TlsError};
use kurir_certs::files::Overwrite;
use kurir_certs::officer::{self, RevokeOutcome, Role};
use kurir_certs::roster::{Editor, FocalPoint, Problem, RosterBody, RosterKey, SignedRoster};
use kurir_certs::{keys, roster, x509};
use kurir_proto::{AuthorityId, KeyId, MessageKind, Timestamp};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error
  2  usage error (bad arguments)
  3  invalid input: a missing or unreadable file, a key file with too-open
     permissions, a malformed file, id or argument, a refused edit
     (e.g. a duplicate member)
  4  verification failed: a roster with bad, missing, duplicated or too few
     signatures, a rollback, invalid fields, or a certificate that is expired
     or not yet valid
  5  an output file exists; nothing was overwritten (use --force)";

/// kurir PKI: create an authority's CA and keys, issue and revoke officer
/// certificates, and build, sign and verify the federation roster that says
/// who the members are, where their relays listen and which keys they use.
///
/// See docs/PKI.md for the step-by-step guide.
#[derive(Debug, Parser)]
#[command(name = "kurir-certs", version, arg_required_else_help = true, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// An authority's CA, node certificate and signing keys.
    #[command(subcommand)]
    Authority(AuthorityCmd),
    /// Officer client certificates.
    #[command(subcommand)]
    Officer(OfficerCmd),
    /// The signed federation roster.
    #[command(subcommand)]
    Roster(RosterCmd),
}

#[derive(Debug, Subcommand)]
enum AuthorityCmd {
    /// Create an authority directory: CA, node TLS certificate, message key,
    /// log key, empty CRL and member.json.
    #[command(after_help = EXIT_CODES)]
    Init {
        /// Authority id, COUNTRY.AGENCY (e.g. RS.MUP).
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Host name of the relay (DNS SAN of the node certificate).
        #[arg(long)]
        relay_host: String,
        /// UDP port of the relay.
        #[arg(long, default_value_t = 7443)]
        relay_port: u16,
        /// Validity of the CA certificate in days.
        #[arg(long, default_value_t = 3650)]
        ca_days: u32,
        /// Validity of the node certificate in days.
        #[arg(long, default_value_t = 730)]
        node_days: u32,
        /// Directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Issue a new relay TLS certificate and key under the same CA, replacing
    /// node.crt.pem and node.key.pem (the roster does not change).
    #[command(after_help = EXIT_CODES)]
    RenewNode {
        /// Authority directory (needs the CA private key).
        #[arg(long)]
        authority: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 730)]
        days: u32,
    },
    /// Add a new message/receipt key; the current key stays valid for an
    /// overlap period and stays in member.json for old messages.
    #[command(after_help = EXIT_CODES)]
    RotateKey {
        /// Authority directory.
        #[arg(long)]
        authority: PathBuf,
        /// Days from now until the new key becomes valid: time to sign and
        /// distribute the roster that lists it before the relay signs with it.
        #[arg(long, default_value_t = 7)]
        in_days: u32,
        /// Days the old key stays valid after the new one starts (at most 30).
        #[arg(long, default_value_t = 7)]
        overlap_days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum OfficerCmd {
    /// Issue an officer client certificate with a role.
    #[command(after_help = EXIT_CODES)]
    Issue {
        /// Authority directory (needs the CA private key).
        #[arg(long)]
        authority: PathBuf,
        /// The officer's name (certificate common name).
        #[arg(long)]
        name: String,
        /// officer, auditor or admin.
        #[arg(long)]
        role: Role,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Directory for officer.crt.pem, officer.key.pem and ca.crt.pem.
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Revoke an officer certificate: add it to the CRL (crl.pem) the relay reads.
    #[command(after_help = EXIT_CODES)]
    Revoke {
        /// Authority directory (needs the CA private key).
        #[arg(long)]
        authority: PathBuf,
        /// Serial number in hex (as printed by `officer issue`) or the certificate file.
        target: String,
    },
}

#[derive(Debug, Subcommand)]
enum RosterCmd {
    /// Generate a roster signing key (FILE, 0600) and its public key (FILE.pub).
    #[command(after_help = EXIT_CODES)]
    Keygen {
        /// Secret key file to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Start a new roster (version 1, unsigned, no members).
    #[command(after_help = EXIT_CODES)]
    New {
        /// Roster file to write.
        #[arg(long)]
        out: PathBuf,
        /// Number of roster-key signatures required (k).
        #[arg(long)]
        threshold: u64,
        /// A roster key: `LABEL=PUB` or `PUB`, where PUB is a .pub file or 64 hex digits.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Add a member from its member.json.
    #[command(after_help = EXIT_CODES)]
    Add(MemberArgs),
    /// Update a member from its member.json (old message keys stay).
    #[command(after_help = EXIT_CODES)]
    Update(MemberArgs),
    /// Remove a member.
    #[command(after_help = EXIT_CODES)]
    Remove {
        /// Roster file (edited in place).
        #[arg(long)]
        roster: PathBuf,
        /// The member's authority id.
        #[arg(long)]
        id: String,
    },
    /// Change the roster keys or the threshold.
    #[command(after_help = EXIT_CODES)]
    Keys {
        /// Roster file (edited in place).
        #[arg(long)]
        roster: PathBuf,
        /// Add a roster key: `LABEL=PUB` or `PUB`.
        #[arg(long)]
        add: Vec<String>,
        /// Remove a roster key by key id.
        #[arg(long)]
        remove: Vec<String>,
        /// New threshold k.
        #[arg(long)]
        threshold: Option<u64>,
    },
    /// Sign the roster with a roster key.
    #[command(after_help = EXIT_CODES)]
    Sign {
        /// Roster file (signature added in place).
        #[arg(long)]
        roster: PathBuf,
        /// Roster secret key file (from `roster keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify a roster: exit 0 if valid, 4 with every problem listed if not.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// Roster file.
        #[arg(long)]
        roster: PathBuf,
        /// The currently trusted roster: also check the version rule and its quorum.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// JSON Lines output.
        #[arg(long)]
        json: bool,
    },
    /// Show a roster's content and what is wrong with it, if anything.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// Roster file.
        #[arg(long)]
        roster: PathBuf,
        /// JSON Lines output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct MemberArgs {
    /// Roster file (edited in place).
    #[arg(long)]
    roster: PathBuf,
    /// The authority's member.json.
    #[arg(long)]
    member: PathBuf,
    /// Message kinds the member accepts, comma-separated (default: from member.json).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<MessageKind>,
    /// A focal point `NAME|ROLE|PHONE|EMAIL` (repeatable; replaces member.json's list).
    #[arg(long = "focal-point")]
    focal_points: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn file_code(e: &FileError) -> u8 {
    match e {
        FileError::Exists { .. } => 5,
        _ => 3,
    }
}

/// Maps an error to the documented exit code.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<FileError>() {
            return file_code(e);
        }
        if let Some(e) = cause.downcast_ref::<PkiError>() {
            return match e {
                PkiError::File(f) => file_code(f),
                PkiError::CertificateTime { .. } => 4,
                PkiError::Rcgen { .. } | PkiError::Random => 1,
                _ => 3,
            };
        }
        if let Some(e) = cause.downcast_ref::<RosterError>() {
            return match e {
                RosterError::File(f) => file_code(f),
                RosterError::Invalid { .. } => 4,
                RosterError::Encode(_) => 1,
                _ => 3,
            };
        }
        if let Some(e) = cause.downcast_ref::<TlsError>() {
            return match e {
                TlsError::File(f) => file_code(f),
                _ => 3,
            };
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
    }
    1
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn run(cli: Cli) -> Result<u8> {
    let now = x509::now();
    match cli.command {
        Command::Authority(cmd) => authority_cmd(cmd, now),
        Command::Officer(cmd) => officer_cmd(cmd, now),
        Command::Roster(cmd) => roster_cmd(cmd, now),
    }
}

fn authority_cmd(cmd: AuthorityCmd, now: Timestamp) -> Result<u8> {
    match cmd {
        AuthorityCmd::Init {
            id,
            name,
            relay_host,
            relay_port,
            ca_days,
            node_days,
            out,
            force,
        } => {
            let id = AuthorityId::parse(&id).map_err(|error| PkiError::Id {
                field: "--id",
                error,
            })?;
            let params = InitParams {
                id: id.clone(),
                name,
                relay_host,
                relay_port,
                ca_days,
                node_days,
                now,
                overwrite: Overwrite::from_force(force),
            };
            let report = authority::init(&out, &params)
                .with_context(|| format!("authority init {}", out.display()))?;
            println!("authority {id} created in {}", out.display());
            println!("ca certificate sha256:   {}", report.ca_fingerprint);
            println!("node certificate sha256: {}", report.node_fingerprint);
            println!(
                "message key {}  public {}",
                KeyId::of(&report.message_key),
                hex::encode(report.message_key.as_bytes())
            );
            println!(
                "log key     {}  public {}",
                KeyId::of(&report.log_key),
                hex::encode(report.log_key.as_bytes())
            );
            for f in &report.files {
                eprintln!("wrote {}", f.display());
            }
            eprintln!(
                "next: keep ca.key.pem offline; send {} to the roster maintainers",
                out.join(authority::layout::MEMBER).display()
            );
            Ok(0)
        }
        AuthorityCmd::RenewNode { authority, days } => {
            let a = Authority::open(&authority)?;
            let fingerprint = a.renew_node(days, now)?;
            println!("node certificate sha256: {fingerprint}");
            eprintln!(
                "replaced {} and {}; copy both to the relay host and restart or reload the relay",
                a.path(authority::layout::NODE_CERT).display(),
                a.path(authority::layout::NODE_KEY).display()
            );
            Ok(0)
        }
        AuthorityCmd::RotateKey {
            authority,
            in_days,
            overlap_days,
        } => {
            if overlap_days > 30 {
                return Err(UsageError("--overlap-days: at most 30".into()).into());
            }
            let mut a = Authority::open(&authority)?;
            let from = now.plus_millis(u64::from(in_days) * x509::DAY_MS);
            let key = a.rotate_message_key(from, u64::from(overlap_days) * x509::DAY_MS)?;
            println!(
                "message key {}  public {}  valid from {from}",
                KeyId::of(&key),
                hex::encode(key.as_bytes())
            );
            eprintln!(
                "next: `kurir-certs roster update --member {}` and sign the new roster version",
                authority.join(authority::layout::MEMBER).display()
            );
            Ok(0)
        }
    }
}

fn officer_cmd(cmd: OfficerCmd, now: Timestamp) -> Result<u8> {
    match cmd {
        OfficerCmd::Issue {
            authority,
            name,
            role,
            days,
            out,
            force,
        } => {
            let a = Authority::open(&authority)?;
            let issued = officer::issue(
                &a,
                &name,
                Some(role),
                days,
                now,
                &out,
                Overwrite::from_force(force),
            )?;
            println!("officer {name:?} ({role}) of {}", a.id);
            println!("serial {}", issued.serial);
            println!("certificate sha256 {}", issued.fingerprint);
            println!("valid until {}", issued.not_after);
            for f in &issued.files {
                eprintln!("wrote {}", f.display());
            }
            Ok(0)
        }
        OfficerCmd::Revoke { authority, target } => {
            let a = Authority::open(&authority)?;
            let serial = officer::serial_of(&target)?;
            match officer::revoke(&a, &serial, now)? {
                RevokeOutcome::Revoked { serial, crl_number } => {
                    println!("revoked {serial}; crl.pem is now CRL number {crl_number}");
                    eprintln!(
                        "next: copy {} to the relay host (the relay reloads it)",
                        a.path(authority::layout::CRL).display()
                    );
                }
                RevokeOutcome::AlreadyRevoked { serial } => {
                    println!("{serial} was already revoked; nothing changed");
                }
            }
            Ok(0)
        }
    }
}

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

fn save_draft(editor: Editor, path: &Path, now: Timestamp) -> Result<u8> {
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

fn roster_cmd(cmd: RosterCmd, now: Timestamp) -> Result<u8> {
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
    let mut editor = Editor::open(&SignedRoster::load(&args.roster)?)?;
    if add {
        editor.add_member(member)?;
        eprintln!("added {id}");
    } else {
        editor.update_member(member)?;
        eprintln!("updated {id}");
    }
    save_draft(editor, &args.roster, now)
}

fn json_line(kind: &str, data: serde_json::Value) {
    println!("{}", serde_json::json!({ "type": kind, "data": data }));
}

fn report(
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
    serde_json::json!({
        "id": m.id.to_string(),
        "name": m.name,
        "endpoints": m.endpoints.iter().map(|e| format!("{}:{}", e.host, e.port)).collect::<Vec<_>>(),
        "tls_ca_sha256": x509::fingerprint(&m.tls_ca),
        "message_keys": m.message_keys.iter().map(|k| serde_json::json!({
            "kid": k.id().to_string(),
            "public": hex::encode(k.key.as_bytes()),
            "valid_from": k.valid_from.0,
            "valid_until": k.valid_until.map(|t| t.0),
        })).collect::<Vec<_>>(),
        "log_key": KeyId::of(&m.log_key).to_string(),
        "kinds": m.kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "focal_points": m.focal_points,
    })
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
        println!("    message key   {}  {} .. {until}", k.id(), k.valid_from);
    }
    println!("    log key       {}", KeyId::of(&m.log_key));
    let kinds: Vec<String> = m.kinds.iter().map(|k| k.to_string()).collect();
    println!("    kinds         {}", kinds.join(", "));
    for f in &m.focal_points {
        println!(
            "    focal point   {} ({}), {}, {}",
            f.name, f.role, f.phone, f.email
        );
    }
}
