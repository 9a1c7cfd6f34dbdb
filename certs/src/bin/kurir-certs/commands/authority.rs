//! `kurir-certs authority`: `init`, `renew-node`, `rotate-key`, `rotate-log-key`.

use anyhow::{Context, Result};
use kurir_certs::authority::{self, Authority, InitParams};
use kurir_certs::error::PkiError;
use kurir_certs::files::Overwrite;
use kurir_certs::x509;
use kurir_proto::{AuthorityId, KeyId, Timestamp};

use crate::exit::UsageError;
use kurir_certs::cli::AuthorityCmd;

/// Runs an `authority` subcommand.
pub(super) fn authority_cmd(cmd: AuthorityCmd, now: Timestamp) -> Result<u8> {
    match cmd {
        AuthorityCmd::Init {
            id,
            name,
            relay_host,
            relay_port,
            ca_days,
            node_days,
            key_days,
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
                key_days,
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
                "replaced {} and {} (a new key); copy both to the relay host and reload the relay \
                 (systemctl reload kurir-relay, SIGHUP): new connections present it, open ones \
                 keep theirs (PKI.md §6.1)",
                a.path(authority::layout::NODE_CERT).display(),
                a.path(authority::layout::NODE_KEY).display()
            );
            Ok(0)
        }
        AuthorityCmd::RotateKey {
            authority,
            in_days,
            overlap_days,
            key_days,
        } => {
            if overlap_days > 30 {
                return Err(UsageError("--overlap-days: at most 30".into()).into());
            }
            let mut a = Authority::open(&authority)?;
            let from = now.plus_millis(u64::from(in_days) * x509::DAY_MS);
            let key =
                a.rotate_message_key(from, u64::from(overlap_days) * x509::DAY_MS, key_days)?;
            let until = from.plus_millis(u64::from(key_days) * x509::DAY_MS);
            println!(
                "message key {}  public {}  valid from {from} until {until}",
                KeyId::of(&key),
                hex::encode(key.as_bytes())
            );
            eprintln!(
                "next: `kurir-certs roster update --member {}` and sign the new roster version",
                authority.join(authority::layout::MEMBER).display()
            );
            Ok(0)
        }
        AuthorityCmd::RotateLogKey {
            authority,
            until_days,
        } => {
            if until_days == 0 {
                return Err(UsageError("--until-days: at least 1".into()).into());
            }
            let mut a = Authority::open(&authority)?;
            let until = now.plus_millis(u64::from(until_days) * x509::DAY_MS);
            let (key, kept) = a.rotate_log_key(until)?;
            println!(
                "log key {}  public {}  (the old key kept in {}, valid until {until})",
                KeyId::of(&key),
                hex::encode(key.as_bytes()),
                kept.display()
            );
            eprintln!(
                "next: `kurir-certs roster update --member {}`, sign the new roster version, copy \
                 log.key and {} to the relay host and install the roster there (kurir-relay roster \
                 install, then SIGHUP) before {until}: the relay signs with the new key once that \
                 roster is in force (PKI.md §6.2)",
                authority.join(authority::layout::MEMBER).display(),
                kept.display()
            );
            Ok(0)
        }
    }
}
