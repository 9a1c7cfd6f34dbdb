//! Receipts signed in batches (`docs/PROTOCOL.md` §10.1), in the batch form
//! of [`crate::cose::batch`]: content type [`CONTENT_TYPE_RECEIPT_BATCH`],
//! head field 1 the `receiver` that signs every receipt of the batch.

use ed25519_dalek::SigningKey;

use super::{Receipt, malformed};
use crate::batch::SignatureCheck;
use crate::cose::{self, CONTENT_TYPE_RECEIPT_BATCH, KeyLookup, Verified1, batch::Form};
use crate::error::{OpenError, SealError};

/// The batch form of receipts.
const FORM: Form = Form {
    content_type: CONTENT_TYPE_RECEIPT_BATCH,
    what: "receipt",
    head: "receipt batch head",
    signer: "receiver",
};

/// Signs receipts of one receiver as a batch: one signature over the head,
/// one COSE_Sign1 per receipt, in order.
pub(super) fn seal_batch(
    receipts: &[Receipt],
    key: &SigningKey,
) -> Result<Vec<Vec<u8>>, SealError> {
    let Some(first) = receipts.first() else {
        return Ok(Vec::new());
    };
    if let Some(other) = receipts.iter().find(|r| r.receiver != first.receiver) {
        return Err(SealError::Receipt(format!(
            "a batch holds receipts of one receiver, not {} and {}",
            first.receiver, other.receiver
        )));
    }
    let payloads = receipts
        .iter()
        .map(Receipt::encode)
        .collect::<Result<Vec<_>, _>>()?;
    cose::batch::seal(FORM, &first.receiver, payloads, key)
}

/// Verifies one batched receipt: the signature over the head, that the
/// receipt is leaf `index` of the head's tree, and that it names the head's
/// receiver. The caller checks the key against the receiver and the time.
pub(super) fn open(
    parsed: cose::Parsed1<'_>,
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<(Receipt, Verified1), OpenError> {
    let opened = cose::batch::open(FORM, parsed, keys, sigs)?;
    let receipt = Receipt::decode(&opened.payload)?;
    if receipt.receiver != opened.signer {
        return Err(malformed(format!(
            "the receipt names {} as the receiver, its batch {}",
            receipt.receiver, opened.signer
        )));
    }
    Ok((receipt, opened.signed))
}

/// The receipt a batched receipt carries, **without verifying anything**.
pub(super) fn payload_unverified(sign1: coset::CoseSign1) -> Option<Vec<u8>> {
    cose::batch::payload_unverified(FORM, sign1)
}
