//! Receipts held until their inclusion proof is stored: a peer's receipt
//! that names its log entry is kept in `unproven` (set in the transaction
//! that records the delivery), until a proof of that entry in a checkpoint
//! the peer signed is stored in `receipt_proofs`.

use kurir_proto::{AuthorityId, Digest, MessageId};

use super::keys::recipient_key;
use super::trees::TreeId;
use super::writer::{Op, OpResult, Pending, Writer};
use super::{Store, StoreError, Unproven};

/// The `unproven` value of a receipt: the index ‖ leaf hash it names.
pub(super) fn unproven_value(index: u64, leaf: &Digest) -> Vec<u8> {
    let mut v = index.to_be_bytes().to_vec();
    v.extend_from_slice(&leaf.0);
    v
}

impl Store {
    /// Held receipts whose inclusion proof is not stored yet, oldest
    /// message first.
    pub fn unproven(&self) -> Result<Vec<Unproven>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeId::Unproven)?.iter() {
            let (key, value) = item.map_err(|e| self.sled(e))?;
            let bad = |what: &str| StoreError::Corrupt {
                path: self.path.clone(),
                tree: "unproven",
                reason: format!("{what} in key {}", hex::encode(&key)),
            };
            let msg_id = key
                .get(..16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .and_then(|b| MessageId::from_bytes(b).ok())
                .ok_or_else(|| bad("no message id"))?;
            let peer = key
                .get(16..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|p| AuthorityId::parse(p).ok())
                .ok_or_else(|| bad("no authority id"))?;
            let (Some(index), Some(leaf)) = (
                value
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes),
                value.get(8..).and_then(Digest::from_slice),
            ) else {
                return Err(bad("a value that is not index ‖ leaf hash"));
            };
            out.push(Unproven {
                msg_id,
                peer,
                index,
                leaf,
            });
        }
        Ok(out)
    }

    /// Stores inclusion proofs of held receipts (each already verified) and
    /// forgets that they were due.
    pub async fn store_proofs(
        &self,
        proofs: Vec<(MessageId, AuthorityId, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let rows = proofs
            .into_iter()
            .map(|(id, peer, proof)| (recipient_key(id, &peer), proof))
            .collect();
        self.submit_op(Op::Proofs(rows), vec![]).await.map(drop)
    }

    /// The stored inclusion proof of the receipt `peer` gave for `msg_id`.
    pub fn receipt_proof(
        &self,
        msg_id: MessageId,
        peer: &AuthorityId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(TreeId::ReceiptProofs)?
            .get(recipient_key(msg_id, peer))
            .map_err(|e| self.sled(e))?
            .map(|v| v.to_vec()))
    }
}

impl Writer {
    /// [`Op::Proofs`]: each proof stored, its receipt no longer held.
    pub(super) fn store_proofs(
        &self,
        proofs: Vec<(Vec<u8>, Vec<u8>)>,
        pending: &mut Pending,
    ) -> Result<OpResult, StoreError> {
        for (key, proof) in proofs {
            pending.put(TreeId::ReceiptProofs, key.clone(), proof);
            pending.remove(TreeId::Unproven, key);
        }
        Ok(OpResult::Done)
    }
}
