//! `kurir-certs officer`: `issue`, `revoke`.

use anyhow::Result;
use kurir_certs::authority::{self, Authority};
use kurir_certs::files::Overwrite;
use kurir_certs::officer::{self, RevokeOutcome};
use kurir_proto::Timestamp;

use kurir_certs::cli::OfficerCmd;

/// Runs an `officer` subcommand.
pub(super) fn officer_cmd(cmd: OfficerCmd, now: Timestamp) -> Result<u8> {
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
