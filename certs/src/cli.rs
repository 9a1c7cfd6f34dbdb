//! The command line as clap sees it: every command group, subcommand, flag
//! and help text of `kurir-certs`, in the library so that `kurir-docgen`
//! renders its man page and shell completions from the same definitions.

use std::path::PathBuf;

use crate::officer::Role;
use clap::{Args, Parser, Subcommand};
use kurir_proto::MessageKind;

/// kurir PKI: create an authority's CA and keys, issue and revoke officer
/// certificates, and build, sign and verify the federation roster that says
/// who the members are, where their relays listen and which keys they use.
///
/// See docs/PKI.md for the step-by-step guide.
#[derive(Debug, Parser)]
#[command(name = "kurir-certs", version, arg_required_else_help = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
pub enum AuthorityCmd {
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
        /// Validity of the message key in days (its valid_until; `roster
        /// add` refuses more than 730 without --allow-long-key).
        #[arg(long, default_value_t = crate::authority::DEFAULT_KEY_DAYS)]
        key_days: u32,
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
    /// Rotate the audit-log key: a new log.key, the old one kept as
    /// log.key.N and listed in member.json with its end; then `roster
    /// update` with member.json, and install that roster.
    #[command(after_help = EXIT_CODES)]
    RotateLogKey {
        /// Authority directory.
        #[arg(long)]
        authority: PathBuf,
        /// Days from now until the old key stops verifying: the relay must
        /// have the roster that lists the new key in force before then.
        #[arg(long, default_value_t = 7)]
        until_days: u32,
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
        /// Validity of the new key in days from its start (its valid_until;
        /// `roster update` refuses more than 730 without --allow-long-key).
        #[arg(long, default_value_t = crate::authority::DEFAULT_KEY_DAYS)]
        key_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum OfficerCmd {
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
pub enum RosterCmd {
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
    /// Revoke a node certificate of a member: every relay refuses it at the
    /// handshake once the signed roster is in force, and closes the
    /// connections that presented it.
    #[command(after_help = EXIT_CODES)]
    RevokeNode {
        /// Roster file (edited in place).
        #[arg(long)]
        roster: PathBuf,
        /// The member's authority id.
        #[arg(long)]
        member: String,
        /// The node certificate (PEM) to revoke.
        #[arg(
            long,
            conflicts_with = "fingerprint",
            required_unless_present = "fingerprint"
        )]
        cert: Option<PathBuf>,
        /// Its SHA-256 fingerprint instead (64 hex digits).
        #[arg(long)]
        fingerprint: Option<String>,
        /// Why (e.g. "relay host compromised").
        #[arg(long)]
        reason: String,
    },
    /// Revoke a message key of a member from a moment on: what it signed
    /// before stays valid, what it signed at or after is refused.
    #[command(after_help = EXIT_CODES)]
    RevokeKey {
        /// Roster file (edited in place).
        #[arg(long)]
        roster: PathBuf,
        /// The member's authority id.
        #[arg(long)]
        member: String,
        /// The key id (as `roster show` prints it).
        #[arg(long)]
        kid: String,
        /// From when: RFC 3339 UTC (`2026-12-06T10:00:00Z`) or Unix
        /// milliseconds; default now.
        #[arg(long)]
        at: Option<String>,
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
pub struct MemberArgs {
    /// Roster file (edited in place).
    #[arg(long)]
    pub roster: PathBuf,
    /// The authority's member.json.
    #[arg(long)]
    pub member: PathBuf,
    /// Message kinds the member accepts, comma-separated (default: from member.json).
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<MessageKind>,
    /// A focal point `NAME|ROLE|PHONE|EMAIL` (repeatable; replaces member.json's list).
    #[arg(long = "focal-point")]
    pub focal_points: Vec<String>,
    /// Take a new message key without `valid_until` or valid for more than
    /// 730 days (refused otherwise).
    #[arg(long)]
    pub allow_long_key: bool,
}

/// The exit codes, shown after the help of every command.
pub const EXIT_CODES: &str = "\
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
