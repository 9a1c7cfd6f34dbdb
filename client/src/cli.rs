//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES;

const EXAMPLES: &str = "\
Examples:
  kurir profile init --relay 10.0.0.5:7443 --server-name relay.mup.rs \\
      --authority RS.MUP --officer-dir ~/kurir/officer --roster ~/kurir/roster.cbor
  kurir send notice --to ME.UP,MK.MVR --subject \"Joint patrol\" --text \"06:00 at Horgos\"
  kurir readmission template > person.toml
  kurir readmission request --to BA.SPS --procedure standard --person person.toml
  kurir inbox --unread
  kurir show 019ac7e2-... --save-dir ./case-files
  kurir readmission reply RS.MUP:2026-000123 --confirm
  kurir case RS.MUP:2026-000123
  kurir deadlines --overdue

The profile comes from --profile FILE, else KURIR_PROFILE, else
$XDG_CONFIG_HOME/kurir/profile.toml (or ~/.config/kurir/profile.toml).
--json prints JSON Lines, each {\"type\": ..., \"data\": {...}} (docs/CLI.md).";

/// kurir for officers: send notices and readmission applications to other
/// authorities through your own relay, read and verify what arrives, and
/// follow cases and their deadlines.
#[derive(Debug, Parser)]
#[command(
    name = "kurir",
    version,
    arg_required_else_help = true,
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}")
)]
pub struct Cli {
    /// The profile file (relay, certificate, roster). Also KURIR_PROFILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Print JSON Lines ({"type","data"}) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for the relay to answer the connection.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or show the profile.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Who the relay says you are (checks the profile and the certificate).
    Whoami,
    /// Send a message that belongs to no case.
    #[command(subcommand)]
    Send(SendCmd),
    /// Readmission applications, replies and deadline extensions.
    #[command(subcommand)]
    Readmission(ReadmissionCmd),
    /// Transfer arrangements and the handover.
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// List received messages (or sent ones with --sent).
    Inbox(InboxArgs),
    /// Show one message, verified against the roster; save its attachments.
    /// The relay logs every read of a body, and refuses one the message's
    /// handling level does not allow your role or name (exit 4); --envelope
    /// shows the rest to every role.
    #[command(
        after_help = "Example:\n  kurir show 019ac7e2-4b1c-7d2e-9f00-0123456789ab --save-dir ./files"
    )]
    Show(ShowArgs),
    /// Delivery status of a sent message: per recipient, with the receipt.
    #[command(
        after_help = "Example:\n  kurir status 019ac7e2-4b1c-7d2e-9f00-0123456789ab --wait 30"
    )]
    Status(StatusArgs),
    /// A readmission case: its thread in order, its state and deadlines.
    #[command(after_help = "Example:\n  kurir case RS.MUP:2026-000123")]
    Case(CaseArgs),
    /// Open deadlines of every case this authority takes part in.
    Deadlines(DeadlinesArgs),
    /// Print messages as they arrive (until Ctrl-C).
    Watch,
    /// Audit tools, offline: verify, reconcile and show exported audit logs.
    #[command(subcommand)]
    Audit(AuditCmd),
}

/// `kurir audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify an audit bundle (from `kurir-relay audit-export`) with no network:
    /// the roster's signatures, every entry, every checkpoint signature and
    /// root, and every receipt against the log. Exit 0 only if all holds;
    /// otherwise the first bad item is named (exit 4).
    #[command(after_help = "Example:\n  kurir audit verify ./audit-2026-11 --min-cosigners 2")]
    Verify {
        /// The bundle directory (holds bundle.cbor).
        dir: PathBuf,
        /// Require the newest checkpoint to carry at least this many peers'
        /// valid cosignatures (forged ones always fail the check).
        #[arg(long, value_name = "N", default_value_t = 0)]
        min_cosigners: usize,
        /// The auditor's own anchors.
        #[command(flatten)]
        anchors: AnchorArgs,
    },
    /// Download your relay's audit log as a bundle (auditor or admin
    /// certificate), write it to a new or empty directory, and verify it.
    #[command(after_help = "Example:\n  kurir audit export --out ./audit-rs-2026-11")]
    Export {
        /// Where to write the bundle: a new or empty directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Cross-check the bundles of two authorities, each first verified as by
    /// `audit verify`: every message one sent the other received (same
    /// digest), every receipt one holds the other issued and logged.
    /// Missing, extra and contradictory records are listed (exit 4);
    /// messages not delivered yet are listed as pending (exit 0).
    #[command(
        after_help = "Example:\n  kurir audit reconcile ./audit-rs-2026-11 ./audit-ba-2026-11"
    )]
    Reconcile {
        /// The first authority's bundle directory.
        dir_a: PathBuf,
        /// The second authority's bundle directory.
        dir_b: PathBuf,
        /// The auditor's own anchors (for both bundles; each bundle is also
        /// held to what the other's log records cosigning of it).
        #[command(flatten)]
        anchors: AnchorArgs,
    },
    /// Print a verified bundle's entries as a timeline: time, event,
    /// message, peer, case, officer serial, code. With --reads, who read
    /// (or was refused) a message's body: time, event, officer, role,
    /// serial, reason.
    #[command(
        after_help = "Examples:\n  kurir audit show ./audit-2026-11 --case RS.MUP:2026-000123\n  kurir audit show ./audit-2026-11 --from 2026-11-01 --to 2026-11-28T13:54:10Z\n  kurir audit show ./audit-2026-11 --reads --message 019ac7e2-4b1c-7d2e-9f00-0123456789ab"
    )]
    Show {
        /// The bundle directory (holds bundle.cbor).
        dir: PathBuf,
        /// Only this case: entries naming it and every entry about one of
        /// its messages.
        #[arg(long, value_name = "CASE")]
        case: Option<String>,
        /// Only entries at or after TIME: RFC 3339 UTC (2026-11-28T13:54:10Z)
        /// or a date (YYYY-MM-DD, from its start).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only entries at or before TIME: RFC 3339 UTC or a date (YYYY-MM-DD,
        /// to its end).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Only entries about this message (its id).
        #[arg(long, value_name = "ID")]
        message: Option<String>,
        /// Only the reads: every body given (`body_read`) or refused
        /// (`body_refused`), and every mark read (`read`), with the officer's
        /// name, role and certificate serial: who saw the message.
        #[arg(long)]
        reads: bool,
        /// The auditor's own anchors.
        #[command(flatten)]
        anchors: AnchorArgs,
    },
    /// Write the auditor's report: one self-contained HTML file (no network,
    /// no external fonts, scripts or styles; prints on A4) from the bundles
    /// of one or more authorities. Each bundle is verified as by `audit
    /// verify` and the bundles are reconciled pairwise. It shows who exported
    /// what and when, the roster, the verdict with the newest cosigned
    /// checkpoints, every readmission case with its deadlines (met, missed,
    /// deemed accepted) and, for a case deemed accepted, the proof of
    /// silence from the asked authority's own log; the traffic between
    /// authorities; refusals and rejections; reads of personal data by
    /// officer certificate; every reconciliation finding with its entries.
    /// No message body is in the report. A bundle that does not verify
    /// means no report (exit 4) unless --include-failures, which names it
    /// at the top; findings between logs are in the report and exit 4.
    #[command(
        after_help = "Example:\n  kurir audit report ./audit-rs ./audit-ba ./audit-me ./audit-mk \\\n      --roster roster.cbor --out report-2026-12.html"
    )]
    Report {
        /// The bundle directories, one per authority.
        #[arg(required = true, value_name = "BUNDLE")]
        dirs: Vec<PathBuf>,
        /// The HTML file to write (not replaced unless --force).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write the report even when bundles fail verification: what failed
        /// is named at the top, and nothing else in it comes from them.
        #[arg(long)]
        include_failures: bool,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
        /// The auditor's own anchors (for every bundle; each is also held to
        /// what the others' logs record cosigning of it).
        #[command(flatten)]
        anchors: AnchorArgs,
    },
    /// Prove that the authority asked in a readmission case sent nothing in
    /// it before the asking authority deemed the request accepted, from the
    /// asked authority's own log covered by a checkpoint its peers cosigned
    /// after that moment. Give both authorities' bundles. Prints the proof
    /// (entries with their leaf hashes, the checkpoint and its cosigners);
    /// exit 0 only when it holds, 4 when it does not.
    #[command(
        name = "prove-deadline",
        after_help = "Example:\n  kurir audit prove-deadline RS.MUP:2026-000123 ./audit-rs ./audit-ba --roster roster.cbor"
    )]
    ProveDeadline {
        /// The readmission case.
        case: String,
        /// The bundle directories: the asking and the asked authority's.
        #[arg(required = true, value_name = "BUNDLE")]
        dirs: Vec<PathBuf>,
        /// The auditor's own anchors.
        #[command(flatten)]
        anchors: AnchorArgs,
    },
}

/// What an auditor trusts outside a bundle (`kurir audit verify`,
/// `reconcile`, `show`). Without `--roster` or `--roster-sha256`, the
/// profile's roster is the anchor when there is a profile.
#[derive(Debug, Clone, Default, Args)]
pub struct AnchorArgs {
    /// The federation roster you trust (obtained out of band): the bundle's
    /// roster history must include it or follow from it. Default: the
    /// profile's roster, if there is a profile.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// The SHA-256 fingerprint (64 hex digits) of the roster you trust, as
    /// the federation publishes it; the bundle must hold that roster. With
    /// --roster, the file must have this fingerprint.
    #[arg(long, value_name = "HEX")]
    pub roster_sha256: Option<String>,
    /// A signed checkpoint of the bundle's authority you hold (e.g.
    /// `checkpoints/<size>.note` of an earlier export, with its peers'
    /// cosignatures): the log must have its root at its size, and if a peer
    /// cosigned it before the export a checkpoint of the bundle must cover
    /// it. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Vec<PathBuf>,
}

/// `kurir profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Write a profile (never overwrites without --force).
    #[command(
        after_help = "Example:\n  kurir profile init --relay 10.0.0.5:7443 --server-name relay.mup.rs \\\n      --authority RS.MUP --officer-dir ~/kurir/officer --roster ~/kurir/roster.cbor"
    )]
    Init(ProfileInit),
    /// Print the profile in use, with its resolved paths.
    Show,
}

/// `kurir profile init`
#[derive(Debug, Args)]
pub struct ProfileInit {
    /// The relay's address, IP:PORT.
    #[arg(long)]
    pub relay: String,
    /// The DNS name in the relay's certificate.
    #[arg(long)]
    pub server_name: String,
    /// Your authority, e.g. RS.MUP.
    #[arg(long)]
    pub authority: String,
    /// The directory from `kurir-certs officer issue` (officer.crt.pem,
    /// officer.key.pem, ca.crt.pem).
    #[arg(long, value_name = "DIR")]
    pub officer_dir: PathBuf,
    /// The federation roster file.
    #[arg(long, value_name = "FILE")]
    pub roster: PathBuf,
    /// Where to write (default: --profile, KURIR_PROFILE or the default location).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing profile.
    #[arg(long)]
    pub force: bool,
}

/// `kurir send ...`
#[derive(Debug, Subcommand)]
pub enum SendCmd {
    /// An operational notice to one or more authorities.
    #[command(
        after_help = "Examples:\n  kurir send notice --to ME.UP,MK.MVR --subject \"Joint patrol\" --text \"06:00 at Horgos\"\n  kurir send notice --to BA.SPS --subject \"Lists\" --text-file note.txt --attach list.pdf --priority high\n  kurir send notice --to ME.UP --subject \"Arrival\" --text \"Bus 14:20\" --wait 30"
    )]
    Notice(NoticeArgs),
}

/// Sensitivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HandlingArg {
    /// Routine.
    #[value(name = "H0")]
    H0,
    /// Internal: officers of the recipient authority.
    #[value(name = "H1")]
    H1,
    /// Sensitive: personal data, need to know.
    #[value(name = "H2")]
    H2,
    /// Restricted: named focal points only.
    #[value(name = "H3")]
    H3,
}

/// Urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PriorityArg {
    /// For information.
    Low,
    /// Normal working priority.
    Normal,
    /// Needs attention today.
    High,
    /// Needs attention now.
    Urgent,
}

/// `kurir send notice`
#[derive(Debug, Args)]
pub struct NoticeArgs {
    /// Recipients, comma-separated (e.g. ME.UP,MK.MVR).
    #[arg(long, value_delimiter = ',', required = true)]
    pub to: Vec<String>,
    /// One-line subject.
    #[arg(long)]
    pub subject: String,
    /// The text.
    #[arg(
        long,
        conflicts_with = "text_file",
        required_unless_present = "text_file"
    )]
    pub text: Option<String>,
    /// Read the text from a file.
    #[arg(long, value_name = "FILE")]
    pub text_file: Option<PathBuf>,
    /// Attach a file (repeatable); pdf, jpg, png, txt or other.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Handling code.
    #[arg(long, value_enum, default_value = "H1", ignore_case = true)]
    pub handling: HandlingArg,
    /// Priority.
    #[arg(long, value_enum, default_value = "normal")]
    pub priority: PriorityArg,
    /// Legal basis for sending the data.
    #[arg(long)]
    pub legal_basis: Option<String>,
    #[command(flatten)]
    pub wait: WaitArg,
}

/// `--wait SECS` of the commands that send a message.
#[derive(Debug, Args)]
pub struct WaitArg {
    /// Wait up to SECS for every delivery to be final (delivered, rejected
    /// or expired), then show the status as `kurir status` does; exit 3 if
    /// some delivery is still open then.
    #[arg(long = "wait", value_name = "SECS")]
    pub secs: Option<u64>,
}

/// `kurir readmission ...`
#[derive(Debug, Subcommand)]
pub enum ReadmissionCmd {
    /// Print an annotated example person (or document) file.
    #[command(
        after_help = "Example:\n  kurir readmission template > person.toml\n  kurir readmission template --document > passport.toml"
    )]
    Template {
        /// A document file instead of a person file.
        #[arg(long)]
        document: bool,
    },
    /// Send a readmission application.
    #[command(
        after_help = "Examples:\n  kurir readmission request --to BA.SPS --procedure standard --person person.toml \\\n      --document passport.toml --evidence passport.pdf --annex 1\n  kurir readmission request --to RS.MUP --procedure accelerated --person p.json \\\n      --apprehended-on 2026-11-27 --apprehended-at \"Batrovci border crossing\""
    )]
    Request(Box<RequestArgs>),
    /// Reply to a readmission request: confirm or reject.
    #[command(
        after_help = "Examples:\n  kurir readmission reply RS.MUP:2026-000123 --confirm --wait 30\n  kurir readmission reply RS.MUP:2026-000123 --reject --reason \"Not a national of BA\""
    )]
    Reply(ReplyArgs),
    /// Ask the requesting authority for more time to reply.
    #[command(
        after_help = "Example:\n  kurir readmission extend RS.MUP:2026-000123 --days 6 --reason \"Identity check with the registry pending\""
    )]
    Extend(ExtendArgs),
    /// Decide on an extension request: grant or refuse.
    #[command(
        after_help = "Examples:\n  kurir readmission decide RS.MUP:2026-000123 --grant\n  kurir readmission decide RS.MUP:2026-000123 --refuse --reason \"Person in detention\""
    )]
    Decide(DecideArgs),
}

/// Readmission procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcedureArg {
    /// Standard time limit.
    Standard,
    /// Apprehended in the border region: shorter time limit.
    Accelerated,
    /// Transit through the requested state.
    Transit,
}

/// Means of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// By air.
    Air,
    /// By road.
    Road,
    /// By rail.
    Rail,
    /// By sea or river.
    Water,
}

/// `kurir readmission request`
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The requested authority.
    #[arg(long)]
    pub to: String,
    /// The procedure.
    #[arg(long, value_enum)]
    pub procedure: ProcedureArg,
    /// The person file (TOML or JSON; see `kurir readmission template`).
    #[arg(long, value_name = "FILE")]
    pub person: PathBuf,
    /// A document file (repeatable; see `kurir readmission template --document`).
    #[arg(long, value_name = "FILE")]
    pub document: Vec<PathBuf>,
    /// An evidence file (repeatable), each followed by its --annex.
    #[arg(long, value_name = "FILE")]
    pub evidence: Vec<PathBuf>,
    /// The agreement annex of the --evidence before it (1 to 9).
    #[arg(long, value_name = "N")]
    pub annex: Vec<u8>,
    /// The case id (default: a new one: your authority, the year and six
    /// digits, e.g. RS.MUP:2026-000123).
    #[arg(long, value_name = "CASE")]
    pub case: Option<String>,
    /// Date of apprehension (accelerated procedure), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub apprehended_on: Option<String>,
    /// Place of apprehension (accelerated procedure).
    #[arg(long, value_name = "PLACE")]
    pub apprehended_at: Option<String>,
    /// State of final destination (transit procedure).
    #[arg(long)]
    pub transit_destination: Option<String>,
    /// Proposed transfer date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE", requires = "transfer_crossing")]
    pub transfer_date: Option<String>,
    /// Proposed border crossing point or airport.
    #[arg(long, value_name = "PLACE", requires = "transfer_date")]
    pub transfer_crossing: Option<String>,
    /// Proposed means of transport.
    #[arg(long, value_enum, default_value = "road")]
    pub transport: TransportArg,
    /// Health: need for medical care (with the person's consent).
    #[arg(long)]
    pub health: Option<String>,
    /// Whether the person must be escorted, and why.
    #[arg(long)]
    pub escort_needs: Option<String>,
    /// Anything else the requested authority should know.
    #[arg(long)]
    pub remarks: Option<String>,
    /// Legal basis, e.g. "EU-BA readmission agreement, Art. 3".
    #[arg(long)]
    pub legal_basis: Option<String>,
    /// Handling code.
    #[arg(long, value_enum, default_value = "H2", ignore_case = true)]
    pub handling: HandlingArg,
    #[command(flatten)]
    pub wait: WaitArg,
}

/// Which message a case command answers.
#[derive(Debug, Args)]
pub struct CaseTarget {
    /// The case, e.g. RS.MUP:2026-000123.
    pub case: String,
    /// The message id answered (default: looked up in the case).
    #[arg(long, value_name = "ID")]
    pub in_reply_to: Option<String>,
    #[command(flatten)]
    pub wait: WaitArg,
}

/// `kurir readmission reply`
#[derive(Debug, Args)]
pub struct ReplyArgs {
    #[command(flatten)]
    pub target: CaseTarget,
    /// Confirm readmission.
    #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
    pub confirm: bool,
    /// Reject readmission (give --reason).
    #[arg(long, requires = "reason")]
    pub reject: bool,
    /// A reason for the rejection (repeatable).
    #[arg(long)]
    pub reason: Vec<String>,
    /// The travel document your authority will issue, if needed.
    #[arg(long)]
    pub travel_document: Option<String>,
    /// Anything else.
    #[arg(long)]
    pub remarks: Option<String>,
}

/// `kurir readmission extend`
#[derive(Debug, Args)]
pub struct ExtendArgs {
    #[command(flatten)]
    pub target: CaseTarget,
    /// Extra days asked for.
    #[arg(long)]
    pub days: u16,
    /// Why.
    #[arg(long)]
    pub reason: String,
}

/// `kurir readmission decide`
#[derive(Debug, Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub target: CaseTarget,
    /// Grant the extension.
    #[arg(long, conflicts_with = "refuse", required_unless_present = "refuse")]
    pub grant: bool,
    /// Refuse it (give --reason).
    #[arg(long, requires = "reason")]
    pub refuse: bool,
    /// Days granted (default: the days asked for).
    #[arg(long, conflicts_with = "refuse")]
    pub days: Option<u16>,
    /// Why (required when refusing).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `kurir transfer ...`
#[derive(Debug, Subcommand)]
pub enum TransferCmd {
    /// Propose the transfer arrangements.
    #[command(
        after_help = "Example:\n  kurir transfer propose RS.MUP:2026-000123 --date 2026-12-10 --time 09:30 \\\n      --crossing \"Sremska Raca\" --transport road --escort \"Marko Markovic|inspector|RS.MUP\""
    )]
    Propose(ProposeArgs),
    /// Confirm the handover took place.
    #[command(
        after_help = "Example:\n  kurir transfer confirm RS.MUP:2026-000123 --place \"Sremska Raca\" --received-by \"Border police BA\""
    )]
    Confirm(ConfirmArgs),
}

/// `kurir transfer propose`
#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub target: CaseTarget,
    /// Date of transfer, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub date: String,
    /// Local time at the crossing, HH:MM.
    #[arg(long, value_name = "HH:MM", default_value = "09:00")]
    pub time: String,
    /// Border crossing point or airport.
    #[arg(long, value_name = "PLACE")]
    pub crossing: String,
    /// Means of transport.
    #[arg(long, value_enum, default_value = "road")]
    pub transport: TransportArg,
    /// Flight number, vehicle or train details.
    #[arg(long)]
    pub transport_details: Option<String>,
    /// An escort member, "NAME|ROLE|ORGANISATION" (repeatable).
    #[arg(long)]
    pub escort: Vec<String>,
}

/// `kurir transfer confirm`
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub target: CaseTarget,
    /// When the person was handed over: RFC 3339 UTC
    /// (2026-12-10T09:45:00Z) or "now".
    #[arg(long, value_name = "TIME", default_value = "now")]
    pub at: String,
    /// Where.
    #[arg(long)]
    pub place: String,
    /// Officer or service that received the person.
    #[arg(long)]
    pub received_by: String,
    /// Anything else.
    #[arg(long)]
    pub remarks: Option<String>,
}

/// `kurir inbox`
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Only messages no officer has read yet.
    #[arg(long)]
    pub unread: bool,
    /// Only this kind (e.g. readmission-request).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only this case.
    #[arg(long)]
    pub case: Option<String>,
    /// Sent messages instead of received ones.
    #[arg(long, conflicts_with = "unread")]
    pub sent: bool,
}

/// `kurir show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The message id.
    pub id: String,
    /// Save the attachments into this directory (never overwrites).
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
    /// Do not mark the message read.
    #[arg(long)]
    pub no_mark_read: bool,
    /// Only the signed envelope (kind, parties, case, handling level):
    /// open to every role, not a read of the body, never marks it read.
    #[arg(long, conflicts_with = "save_dir")]
    pub envelope: bool,
}

/// `kurir status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The message id.
    pub id: String,
    /// Wait up to SECS for every delivery to be final (delivered, rejected
    /// or expired).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

/// `kurir case`
#[derive(Debug, Args)]
pub struct CaseArgs {
    /// The case, e.g. RS.MUP:2026-000123.
    pub case: String,
}

/// `kurir deadlines`
#[derive(Debug, Args)]
pub struct DeadlinesArgs {
    /// Only those already past.
    #[arg(long)]
    pub overdue: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_exit_codes_and_examples() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("kurir send notice"), "{help}");
    }

    #[test]
    fn reply_needs_confirm_or_reject_with_reason() {
        assert!(Cli::try_parse_from(["kurir", "readmission", "reply", "RS.MUP:1"]).is_err());
        assert!(
            Cli::try_parse_from(["kurir", "readmission", "reply", "RS.MUP:1", "--reject"]).is_err()
        );
        assert!(
            Cli::try_parse_from([
                "kurir",
                "readmission",
                "reply",
                "RS.MUP:1",
                "--reject",
                "--reason",
                "no"
            ])
            .is_ok()
        );
        let err = Cli::try_parse_from(["kurir", "send", "notice", "--to", "ME.UP"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
