//! `kurir-relay audit-export`: a self-contained bundle of a stopped relay's
//! audit log, for auditors to verify offline with `kurir audit verify`.
//!
//! ```text
//! OUT/
//!   bundle.cbor              everything, deterministic CBOR (kurir_proto::audit::Bundle)
//!   roster.cbor              the roster the relay had accepted (also in the bundle)
//!   checkpoints/<size>.note  each signed checkpoint as text (also in the bundle)
//! ```
//!
//! The bundle holds ids, digests and signatures only: no message bodies.

use std::path::{Path, PathBuf};

use kurir_proto::Timestamp;
use kurir_proto::audit::{BUNDLE_FORMAT, Bundle, BundleReceipt, serde_bytes_vec::Bytes};

use crate::core::delivery::DeliveryState;
use crate::store::{Durability, Store, StoreError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The store could not be opened or read (a running relay holds it).
    #[error("{0} (stop the relay before exporting from its data directory)")]
    Store(#[from] StoreError),
    /// The data directory has no relay data.
    #[error("{0} holds no relay data (no roster or authority recorded)")]
    Empty(PathBuf),
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The output directory exists and is not empty.
    #[error("{0} is not empty: give a new or empty directory")]
    NotEmpty(PathBuf),
    /// Encoding failed.
    #[error("cannot encode the bundle: {0}")]
    Encode(String),
}

/// What was exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries.
    pub entries: usize,
    /// Checkpoints.
    pub checkpoints: usize,
    /// Receipts.
    pub receipts: usize,
}

/// Exports the audit log in `data_dir` (of a stopped relay) to `out`.
pub fn export(data_dir: &Path, out: &Path, now: Timestamp) -> Result<ExportReport, ExportError> {
    if !data_dir.join("db").exists() {
        return Err(ExportError::Empty(data_dir.to_owned()));
    }
    if out.exists()
        && out
            .read_dir()
            .map_err(|source| ExportError::Write {
                path: out.to_owned(),
                source,
            })?
            .next()
            .is_some()
    {
        return Err(ExportError::NotEmpty(out.to_owned()));
    }
    let store = Store::open(data_dir, Durability::ProcessCrash)?;
    let bundle = collect(&store, now);
    store.close()?;
    let bundle = bundle?.ok_or_else(|| ExportError::Empty(data_dir.to_owned()))?;
    let files = bundle
        .files()
        .map_err(|e| ExportError::Encode(e.to_string()))?;
    for (name, bytes) in files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ExportError::Write {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| ExportError::Write { path, source })?;
    }
    Ok(ExportReport {
        entries: bundle.entries.len(),
        checkpoints: bundle.checkpoints.len(),
        receipts: bundle.receipts.len(),
    })
}

/// The bundle of everything in `store` now (a running relay's or a stopped
/// one's); `None` when the store holds no relay data yet.
pub fn collect(store: &Store, now: Timestamp) -> Result<Option<Bundle>, ExportError> {
    let (Some(authority), Some(roster)) = (store.authority()?, store.roster()?) else {
        return Ok(None);
    };
    // Oldest version first (a roster that does not decode sorts first and
    // is named by the verifier).
    let mut rosters = store.rosters()?;
    rosters.sort_by_key(|b| {
        kurir_certs::SignedRoster::decode(b)
            .ok()
            .and_then(|s| s.body().ok())
            .map(|body| body.version)
    });
    let inbox = store.inbox_all()?;
    let mut envelopes = Vec::new();
    let mut receipts = Vec::new();
    for r in &inbox {
        receipts.push(BundleReceipt {
            kind: "issued".into(),
            receipt: r.receipt.clone(),
            inclusion: None,
        });
        envelopes.extend(Store::envelope(&r.parcel));
    }
    for o in store.outbound_all()? {
        envelopes.extend(Store::envelope(&o.parcel));
        for d in store.deliveries_of(o.msg_id)? {
            let inclusion = match &d.state {
                DeliveryState::Delivered { .. } => store.receipt_proof(o.msg_id, &d.peer)?,
                _ => None,
            };
            if let DeliveryState::Delivered { receipt, .. }
            | DeliveryState::Rejected { receipt, .. } = d.state
            {
                receipts.push(BundleReceipt {
                    kind: "held".into(),
                    receipt,
                    inclusion: inclusion.map(Bytes),
                });
            }
        }
    }
    for r in store.refusals()? {
        receipts.push(BundleReceipt {
            kind: "issued".into(),
            receipt: r.receipt,
            inclusion: None,
        });
    }
    Ok(Some(Bundle {
        format: BUNDLE_FORMAT.into(),
        authority,
        exported_at: now,
        roster,
        rosters: rosters.into_iter().map(Bytes).collect(),
        entries: store.log_entries()?.into_iter().map(Bytes).collect(),
        checkpoints: store.checkpoints()?.into_iter().map(Bytes).collect(),
        receipts,
        envelopes: envelopes.into_iter().map(Bytes).collect(),
    }))
}
