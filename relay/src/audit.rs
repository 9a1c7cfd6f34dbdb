//! `kurir-relay audit-export`: a self-contained bundle of a stopped relay's
//! audit log, for auditors to verify offline with `kurir audit verify`.
//!
//! This module collects the bundle from the store ([`collect`], also what
//! the officer API's `audit_export` answers with); the bundle directory is
//! written by [`kurir_audit::bundle::write`], which describes its layout.
//! The bundle holds ids, digests and signatures only: no message bodies.

use std::path::{Path, PathBuf};

use kurir_audit::bundle::{self, WriteError};
use kurir_proto::Timestamp;
use kurir_proto::audit::{
    BUNDLE_FORMAT, Bundle, BundleReceipt, ReceiptKind, serde_bytes_vec::Bytes,
};

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
    /// Any other failure to write the bundle directory.
    #[error(transparent)]
    Bundle(WriteError),
}

impl From<WriteError> for ExportError {
    fn from(e: WriteError) -> ExportError {
        match e {
            WriteError::NotEmpty { path } => ExportError::NotEmpty(path),
            WriteError::Encode(e) => ExportError::Encode(e.to_string()),
            WriteError::ReadDir { path, source }
            | WriteError::CreateDir { path, source }
            | WriteError::Write { path, source } => ExportError::Write { path, source },
            other => ExportError::Bundle(other),
        }
    }
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
    // Refused before the store is opened; written only once collected.
    bundle::ensure_empty(out)?;
    let store = Store::open(data_dir, Durability::ProcessCrash)?;
    let bundle = collect(&store, now);
    store.close()?;
    let bundle = bundle?.ok_or_else(|| ExportError::Empty(data_dir.to_owned()))?;
    bundle::write(&bundle, out)?;
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
            kind: ReceiptKind::Issued,
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
                    kind: ReceiptKind::Held,
                    receipt,
                    inclusion: inclusion.map(Bytes),
                });
            }
        }
    }
    for r in store.refusals()? {
        receipts.push(BundleReceipt {
            kind: ReceiptKind::Issued,
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
