//! The command line of `kurir-relay` as clap sees it, in the library so
//! that `kurir-docgen` renders its man page and shell completions from the
//! same definitions the binary parses with.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The kurir relay: exchanges signed messages with the relays of other
/// authorities over QUIC with mutual TLS, stores every message and receipt
/// durably before acknowledging it, and serves this authority's officers.
///
/// The demo (a four-authority federation on loopback) is the separate
/// `kurir-demo` binary: the daemon does not link the officer's CLI library.
///
/// Exit codes: 0 success; 1 the relay failed while running, or the export
/// failed, or the audit log does not verify, or `roster install` refused
/// the roster; 2 usage or configuration
/// error (the message names the file and key); 3 the relay could not start
/// (PKI files, roster, storage, address), or the data dir cannot be opened;
/// 4 backup or restore refused (the output directory is not empty, the
/// data directory is not empty without --force, the relay is running).
#[derive(Debug, Parser)]
#[command(name = "kurir-relay", version, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay until SIGTERM or Ctrl-C.
    ///
    /// On a signal it stops accepting, lets in-flight deliveries finish,
    /// flushes the store and exits 0.
    ///
    /// Example: kurir-relay run --config /etc/kurir/relay.toml
    Run {
        /// The configuration file (see docs/CONFIG.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Export the audit log of a stopped relay for offline verification.
    ///
    /// Writes DIR/bundle.cbor (entries, signed checkpoints, receipts and the
    /// roster: ids and digests, no message bodies), the roster and each
    /// checkpoint as text. Verify it with `kurir audit verify DIR`.
    ///
    /// Example: kurir-relay audit-export --data-dir /var/lib/kurir --out audit-2026-11
    AuditExport {
        /// The relay's data directory (`[storage] data_dir`); the relay must be stopped.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Where to write the bundle: a new or empty directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Manage the roster of a relay, running or not.
    Roster {
        /// What to do.
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Check the whole audit log of a stopped relay.
    ///
    /// Reads every entry (each there, decodable, numbered, linked to the one
    /// before) and checks every stored checkpoint's root and Merkle
    /// frontier, every stored subtree hash and the last-checkpoint.note
    /// beside the database against the log. The relay's start checks only
    /// the entries after its newest checkpoint. Exit 0 with a summary; 1
    /// naming the first fault found; 3 when the data dir cannot be opened
    /// (missing, or the relay still running).
    ///
    /// Example: kurir-relay verify-log --data-dir /var/lib/kurir
    VerifyLog {
        /// The relay's data directory (`[storage] data_dir`); the relay must be stopped.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Write a checked snapshot of the relay's data directory to DIR.
    ///
    /// On a running relay, the relay takes the snapshot itself, through its
    /// store's writer between two commits, so that it holds exactly what
    /// was acknowledged up to one commit; the command asks for it on the
    /// admin socket in the data directory (DATA/admin.sock, reachable by
    /// the relay's user only) and copies it. On a stopped relay the command
    /// opens the store and takes the snapshot the same way. The snapshot
    /// is one file, store.snapshot (every tree of the store, streamed in a
    /// versioned format with a SHA-256 trailer; it holds every message
    /// body's key), beside the body files it names and store-format;
    /// directories 0700, files 0600. Memory does not grow with the store.
    ///
    /// The copy is then checked from its file, streaming: checksum and
    /// counts, the audit log's entries chained and its Merkle root
    /// recomputed against the commit and the newest checkpoint, every body
    /// file a record names present; and its log size, root and message
    /// counts compared with the snapshot's. Prints the size, the log size,
    /// the newest checkpoint, the commit (log size and root) and how long
    /// the store's writer was held. DIR must not exist or be empty: nothing
    /// is overwritten. Run it as the relay's
    /// user. Exit 0 when written and checked; 1 when it fails; 2 for a bad
    /// configuration; 4 when DIR is not empty.
    ///
    /// Example: kurir-relay backup --config /etc/kurir/relay.toml --out /var/backups/kurir/2026-12-06
    Backup {
        /// The relay's configuration file (its `[storage] data_dir` is backed up).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Where to write the snapshot: a new or empty directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Put a snapshot written by `backup` in place of the relay's data directory.
    ///
    /// Refused while the relay runs (it holds the database lock): stop it
    /// first. Refused when the data directory holds anything, unless
    /// --force, which keeps the old data directory aside, renamed to
    /// DATA.before-restore-TIME (never deleted). A new store is built
    /// from the backup file beside the data directory, checked record by
    /// record as `backup` checks it, then as verify-log checks a data
    /// directory; one that does not check out changes nothing. A backup in
    /// the older layout (a copy of the database directory) is refused. Modes stay private (0700/0600); ownership is not changed:
    /// run it as the relay's user, or as root and then `chown -R` the data
    /// directory to that user. A snapshot older than the relay's last state lacks what was
    /// acknowledged after it: see docs/OPERATIONS.md, "Backups and restore".
    /// Exit 0 when restored; 1 when the snapshot does not check out or a
    /// file operation fails; 2 for a bad configuration; 4 when refused.
    ///
    /// Example: kurir-relay restore --from /var/backups/kurir/2026-12-06 --config /etc/kurir/relay.toml
    Restore {
        /// The snapshot directory (written by `kurir-relay backup`).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The relay's configuration file (its `[storage] data_dir` is replaced).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Put the snapshot in place of a data directory that holds data,
        /// keeping the old one aside (renamed, not deleted).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Install a newer signed roster for this relay.
    ///
    /// Verifies FILE against the roster in force (the newer of the
    /// configured roster file and the copy the relay keeps beside its
    /// database): k of n of its roster keys, the current quorum too when
    /// the key set changes, a higher version. Then FILE replaces the
    /// configured roster file atomically. The running relay takes it on
    /// SIGHUP or within `[roster] check_secs`, verifies it again, stores it
    /// and applies it without a restart. Exit 0 installed (or already in
    /// force); 1 refused (the message says why: older, same version with
    /// other content, bad or too few signatures); 2 configuration error;
    /// 3 a file could not be read or written.
    ///
    /// Example: kurir-relay roster install roster-v2.cbor --config /etc/kurir/relay.toml
    Install {
        /// The signed roster file to install.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The relay's configuration file (see docs/CONFIG.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}
