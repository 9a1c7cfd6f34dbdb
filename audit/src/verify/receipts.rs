//! The bundle's receipts: each one's signature, and the entry of the log
//! that records it; a held acceptance's inclusion proof into the receiver's
//! signed log.

use kurir_certs::Roster;
use kurir_proto::audit::{Bundle, BundleReceipt, Entry, Event, InclusionProof, ReceiptKind};
use kurir_proto::audit::{log_origin, receipt_digest};
use kurir_proto::batch::SignatureCheck;
use kurir_proto::checkpoint::{NoteVerifier, SignedCheckpoint};
use kurir_proto::receipt::open_receipt_with;
use kurir_proto::{AuthorityId, Digest, Receipt, ReceiptStatus};

use super::{AnyRoster, KeptReceipt, log_keys};
use crate::error::{InclusionProblem, ReceiptProblem};

/// Checks every receipt of the bundle, in order, against the rosters and
/// the (verified) `entries`.
pub(super) fn check(
    bundle: &Bundle,
    entries: &[Entry],
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> Result<Vec<KeptReceipt>, ReceiptProblem> {
    bundle
        .receipts
        .iter()
        .enumerate()
        .map(|(i, r)| check_one(i + 1, r, &bundle.authority, entries, rosters, sigs))
        .collect()
}

/// Checks receipt `number` of a bundle of `authority`'s log.
fn check_one(
    number: usize,
    r: &BundleReceipt,
    authority: &AuthorityId,
    entries: &[Entry],
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> Result<KeptReceipt, ReceiptProblem> {
    let v = open_receipt_with(&r.receipt, &AnyRoster(rosters), sigs).map_err(|error| {
        ReceiptProblem::Invalid {
            number,
            kind: r.kind,
            error,
        }
    })?;
    let rc = v.receipt;
    let digest = receipt_digest(&r.receipt);
    let mut included_in = None;
    let logged = |event: Event| {
        entries
            .iter()
            .any(|e| e.event == event && e.receipt_digest == Some(digest))
    };
    match (r.kind, &rc.status) {
        (ReceiptKind::Issued, ReceiptStatus::Accepted) => {
            if &rc.receiver != authority {
                return Err(ReceiptProblem::IssuedByOther {
                    number,
                    issuer: rc.receiver.clone(),
                    authority: authority.clone(),
                });
            }
            let (Some(index), Some(leaf)) = (rc.log_index, rc.leaf_hash) else {
                return Err(ReceiptProblem::NamesNoEntry { number });
            };
            let entry = entries
                .get(index as usize)
                .ok_or(ReceiptProblem::EntryMissing { number, index })?;
            if entry.leaf_hash() != leaf
                || entry.event != Event::Received
                || entry.msg_id != rc.msg_id
            {
                return Err(ReceiptProblem::NotTheArrival {
                    number,
                    index,
                    msg_id: rc.msg_id,
                });
            }
        }
        (ReceiptKind::Issued, ReceiptStatus::Rejected { .. }) => {
            if !logged(Event::Refused) {
                return Err(ReceiptProblem::RejectionNotLogged {
                    number,
                    authority: authority.clone(),
                });
            }
        }
        (ReceiptKind::Held, status) => {
            if &rc.sender != authority {
                return Err(ReceiptProblem::HeldForOther {
                    number,
                    sender: rc.sender.clone(),
                    authority: authority.clone(),
                });
            }
            let event = match status {
                ReceiptStatus::Accepted => Event::Delivered,
                ReceiptStatus::Rejected { .. } => Event::Rejected,
            };
            if !logged(event) {
                return Err(ReceiptProblem::NotLogged {
                    number,
                    receiver: rc.receiver.clone(),
                    msg_id: rc.msg_id,
                });
            }
            if let Some(proof) = &r.inclusion {
                included_in = Some(check_inclusion(&proof.0, &rc, rosters, sigs).map_err(
                    |problem| ReceiptProblem::Inclusion {
                        number,
                        receiver: rc.receiver.clone(),
                        problem,
                    },
                )?);
            }
        }
    }
    if r.inclusion.is_some() && r.kind == ReceiptKind::Issued {
        return Err(ReceiptProblem::IssuedWithProof {
            number,
            authority: authority.clone(),
        });
    }
    Ok(KeptReceipt {
        kind: r.kind,
        receipt: rc,
        digest,
        included_in,
    })
}

/// Checks a held receipt's inclusion proof: it proves the very entry the
/// receipt names, in a checkpoint signed by the receiver's log key. Returns
/// that checkpoint's size and root.
fn check_inclusion(
    proof: &[u8],
    receipt: &Receipt,
    rosters: &[Roster],
    sigs: &dyn SignatureCheck,
) -> Result<(u64, Digest), InclusionProblem> {
    let proof = InclusionProof::decode(proof).map_err(InclusionProblem::Decode)?;
    let (Some(index), Some(leaf)) = (receipt.log_index, receipt.leaf_hash) else {
        return Err(InclusionProblem::NamesNoEntry);
    };
    if proof.index != index {
        return Err(InclusionProblem::OtherEntry {
            proof: proof.index,
            receipt: index,
        });
    }
    let receiver = &receipt.receiver;
    let mut held = Err(InclusionProblem::NoLogKey {
        receiver: receiver.clone(),
    });
    for key in log_keys(rosters, receiver) {
        let log = NoteVerifier::ed25519(&log_origin(receiver), key)
            .map_err(|e| InclusionProblem::LogKey(Box::new(e)))?;
        held = proof
            .verify_with(&leaf, &log, sigs)
            .map_err(InclusionProblem::DoesNotHold);
        if held.is_ok() {
            break;
        }
    }
    let size = held?;
    let root = SignedCheckpoint::parse(&proof.checkpoint)
        .map(|c| *c.checkpoint().root())
        .map_err(|e| InclusionProblem::Checkpoint(Box::new(e)))?;
    Ok((size, root))
}
