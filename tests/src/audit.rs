//! Verifying a stopped relay's audit log offline with the export code.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use kurir_certs::Roster;
use kurir_relay::clock::{Clock, SystemClock};

use crate::authority;

/// What [`verify_audit_log`] found in a stopped relay's data directory.
#[derive(Debug)]
pub struct AuditCheck {
    /// The offline bundle (what `kurir-relay audit-export` writes).
    pub bundle: kurir_proto::audit::Bundle,
    /// What [`kurir_proto::audit::verify_log`] established.
    pub report: kurir_proto::audit::LogReport,
}

/// Opens the store in `data_dir` of the stopped relay of `who`, builds its
/// offline audit bundle with the export code (`kurir_relay::audit::collect`)
/// and verifies the log and every checkpoint with `who`'s log keys from
/// `roster`, current and earlier ([`kurir_proto::audit::verify_log`]).
pub fn verify_audit_log(roster: &Roster, who: &str, data_dir: &Path) -> Result<AuditCheck> {
    use kurir_relay::store::{Durability, Store};
    let id = authority(who)?;
    let keys = roster.all_log_keys(&id);
    if keys.is_empty() {
        return Err(anyhow!("the roster lists no log key for {id}"));
    }
    let verifiers = keys
        .into_iter()
        .map(|key| {
            kurir_proto::checkpoint::NoteVerifier::ed25519(
                &kurir_proto::audit::log_origin(&id),
                key,
            )
            .map_err(|e| anyhow!("log key of {id}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let store = Store::open(data_dir, Durability::ProcessCrash)
        .with_context(|| format!("opening the store of {id}"))?;
    let bundle = kurir_relay::audit::collect(&store, SystemClock.now());
    store.close()?;
    let bundle = bundle?.ok_or_else(|| anyhow!("the store of {id} holds no relay data"))?;
    let entries: Vec<Vec<u8>> = bundle.entries.iter().map(|b| b.0.clone()).collect();
    let checkpoints: Vec<Vec<u8>> = bundle.checkpoints.iter().map(|b| b.0.clone()).collect();
    let report = kurir_proto::audit::verify_log(&entries, &checkpoints, &verifiers)
        .with_context(|| format!("the audit log of {id} does not verify"))?;
    Ok(AuditCheck { bundle, report })
}
