//! Deciding about what arrives: parcels from peers (accept or refuse, and
//! the receipt that goes back) and receipts for what this relay sent.
//!
//! Pure functions over the bytes, the roster and `now`; the driver stores
//! the result durably before it answers. A parcel goes through
//! [`check_parcel`]; an accepted one becomes an [`Arrival`] (the record,
//! the audit entry, the receipt and, with the case as stored, the
//! [`CaseChange`] or the refusal of a message that does not fit its case),
//! a refused one a [`Rejected`] (the signed rejection, its record and
//! entry). A message id received before is answered by [`duplicate`]: the
//! original receipt for the same sender and envelope, `id_conflict`
//! otherwise.

use kurir_proto::api::Summary;
use kurir_proto::audit::Entry;
use kurir_proto::batch::{SignatureCheck, Strict};
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{Message, MessageKind};
use kurir_proto::receipt::open_receipt_with;
use kurir_proto::{
    AuthorityId, Digest, Header, KeyLookup, MessageId, OpenContext, OpenError, Parcel, Receipt,
    ReceiptStatus, RejectCode, SealError, Timestamp, Verified, frame, open_with, seal_receipt,
};

use super::cases::{self, CaseChange};
use super::deadline::{Agreements, Case};
use super::delivery::Outcome;
use super::events;
use crate::store::{InboxRecord, RefusalRecord};

/// What the roster says beyond keys.
pub trait Federation: KeyLookup {
    /// Whether `member` exchanges messages of this kind.
    fn accepts(&self, member: &AuthorityId, kind: MessageKind) -> bool;
}

/// What the receiver knows when a parcel arrives.
#[derive(Clone, Copy)]
pub struct InboundContext<'a> {
    /// This relay's authority.
    pub me: &'a AuthorityId,
    /// The receiver's clock.
    pub now: Timestamp,
    /// Largest parcel accepted.
    pub max_parcel: usize,
    /// How far in the future `created_at` may lie, in ms.
    pub max_clock_skew_ms: u64,
    /// Checks the envelope's signature: a
    /// [`kurir_proto::batch::Remembered`], so that the envelopes of one
    /// batch (PROTOCOL.md §6.1) cost one verification.
    pub sigs: &'a (dyn SignatureCheck + Sync),
}

impl std::fmt::Debug for InboundContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundContext")
            .field("me", &self.me)
            .field("now", &self.now)
            .field("max_parcel", &self.max_parcel)
            .field("max_clock_skew_ms", &self.max_clock_skew_ms)
            .finish_non_exhaustive()
    }
}

/// Why a parcel is refused, and what to put in the signed rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason code.
    pub code: RejectCode,
    /// A sentence for the sender's operators (no personal data).
    pub detail: String,
    /// The message id, when the envelope verified.
    pub msg_id: Option<MessageId>,
    /// See [`Receipt::envelope_digest`].
    pub envelope_digest: Digest,
}

impl Refusal {
    /// A frame over the size limit, refused before its payload is read:
    /// there is no envelope to name, so the rejection names what was read,
    /// the frame's 4-byte length prefix ([`too_large_digest`]); the sender
    /// matches it to the parcel it sent on that stream.
    pub fn too_large(e: &frame::FrameError) -> Refusal {
        let envelope_digest = match e {
            frame::FrameError::TooLarge { len, .. } => u32::try_from(*len)
                .map(|declared| too_large_digest(declared as usize))
                .unwrap_or_else(|_| Digest::of_envelope(&[])),
            _ => Digest::of_envelope(&[]),
        };
        Refusal {
            code: RejectCode::TooLarge,
            detail: e.to_string(),
            msg_id: None,
            envelope_digest,
        }
    }

    /// A new parcel this relay cannot store now for lack of disk space: a
    /// transient refusal, so the sender retries later. It is not recorded
    /// (recording it is the write that was refused).
    pub fn low_space(msg_id: MessageId, envelope_digest: Digest) -> Refusal {
        Refusal {
            code: RejectCode::Internal,
            detail: "the receiving relay is low on disk space; try again later".into(),
            msg_id: Some(msg_id),
            envelope_digest,
        }
    }
}

/// The `envelope_digest` of a `too_large` rejection of a frame declaring
/// `declared` bytes: the digest, with the envelope tag, of the frame's
/// length prefix (the bytes the receiver read), which the sender computes
/// from the parcel it sent.
pub fn too_large_digest(declared: usize) -> Digest {
    let prefix = u32::try_from(declared).unwrap_or(u32::MAX).to_be_bytes();
    Digest::of_envelope(&prefix)
}

/// Checks a parcel that `tls_peer` sent: everything [`kurir_proto::open`]
/// checks, then that the signed sender is the TLS peer, that `created_at`
/// is not in the future beyond the allowed skew, and that the roster lets
/// both sides exchange this kind.
pub fn check_parcel(
    bytes: &[u8],
    tls_peer: &AuthorityId,
    federation: &dyn Federation,
    ctx: &InboundContext<'_>,
) -> Result<Verified, Refusal> {
    // What a refusal names: the envelope's digest, read without copying the
    // body where the parcel is well formed.
    let envelope_digest = Parcel::envelope_digest_of(bytes).unwrap_or_else(|| {
        Parcel::from_bytes(bytes)
            .map(|p| p.envelope_digest())
            .unwrap_or_else(|_| Digest::of_envelope(bytes))
    });
    let open_ctx = OpenContext {
        me: ctx.me,
        now: ctx.now,
        max_parcel: ctx.max_parcel,
    };
    let verified = open_with(bytes, federation, &open_ctx, ctx.sigs).map_err(|e| Refusal {
        code: e.code(),
        detail: e.to_string(),
        msg_id: None,
        envelope_digest,
    })?;
    let h = &verified.header;
    let refuse = |code, detail: String| Refusal {
        code,
        detail,
        msg_id: Some(h.id),
        envelope_digest,
    };
    if &h.from != tls_peer {
        return Err(refuse(
            RejectCode::TransportMismatch,
            format!(
                "the envelope is from {} but the connection is from {tls_peer}",
                h.from
            ),
        ));
    }
    if h.created_at > ctx.now.plus_millis(ctx.max_clock_skew_ms) {
        return Err(refuse(
            RejectCode::NotYetValid,
            format!(
                "created_at {} is more than {} s ahead of the receiver's clock ({})",
                h.created_at,
                ctx.max_clock_skew_ms / 1000,
                ctx.now
            ),
        ));
    }
    for member in [&h.from, ctx.me] {
        if !federation.accepts(member, h.kind) {
            return Err(refuse(
                RejectCode::KindNotAllowed,
                format!("the roster does not allow {member} to exchange {}", h.kind),
            ));
        }
    }
    Ok(verified)
}

/// The receipt for an accepted parcel.
pub fn acceptance(v: &Verified, me: &AuthorityId, received_at: Timestamp) -> Receipt {
    Receipt {
        msg_id: Some(v.header.id),
        envelope_digest: v.envelope_digest,
        sender: v.header.from.clone(),
        receiver: me.clone(),
        received_at,
        status: ReceiptStatus::Accepted,
        log_index: None,
        leaf_hash: None,
    }
}

/// An accepted parcel: everything the driver stores for it, and what it
/// answers with.
#[derive(Debug)]
pub struct Arrival {
    /// The signed header.
    pub header: Header,
    /// The receipt: the store signs it once it has numbered `entry`, whose
    /// index and leaf hash it names.
    pub receipt: Receipt,
    /// The `received` audit entry.
    pub entry: Entry,
    /// The inbox record, holding the parcel as received.
    pub record: InboxRecord,
    /// What subscribers are told.
    pub summary: Summary,
    /// The decoded body, for [`Arrival::case_change`]; the driver drops it
    /// before the commit.
    pub message: Message,
}

impl Arrival {
    /// What the message does to its case as stored (`stored`: read with
    /// the header's case id, under the driver's cases lock), received by
    /// `me`; or, for a message its sender may not send in that case
    /// ([`cases::check_incoming`]), the refusal (`not_a_party` or
    /// `case_conflict`): the parcel is then not accepted.
    pub fn case_change(
        &self,
        me: &AuthorityId,
        stored: Option<Case>,
        agreements: &Agreements,
    ) -> Result<CaseChange, Refusal> {
        cases::received(
            me,
            &self.header,
            &self.message,
            stored,
            self.record.received_at,
            agreements,
        )
        .map_err(|r| Refusal {
            code: r.code(),
            detail: r.to_string(),
            msg_id: Some(self.header.id),
            envelope_digest: self.receipt.envelope_digest,
        })
    }
}

/// A parcel whose message id this relay has received before (`original`,
/// as stored): from the same sender with the same envelope it is a true
/// duplicate, answered with the original receipt, byte for byte. Anything
/// else under that id (another sender, or another envelope) is refused
/// `id_conflict`: the first arrival stands, and neither sender gets the
/// other's receipt.
pub fn duplicate(
    original: &InboxRecord,
    from: &AuthorityId,
    msg_id: MessageId,
    envelope_digest: Digest,
) -> Result<Vec<u8>, Refusal> {
    let original_digest = crate::store::envelope_of(&original.parcel).map(Digest::of_envelope);
    if &original.from == from && original_digest == Some(envelope_digest) {
        return Ok(original.receipt.clone());
    }
    let detail = if &original.from == from {
        format!(
            "message id {msg_id} was received from {from} before with another envelope; \
             a new message needs a new id"
        )
    } else {
        format!(
            "message id {msg_id} was received from another member before; this message \
             is not accepted: send it again under a new id"
        )
    };
    Err(Refusal {
        code: RejectCode::IdConflict,
        detail,
        msg_id: Some(msg_id),
        envelope_digest,
    })
}

/// What an accepted parcel stores: `bytes` as received, `verified` what
/// [`check_parcel`] made of them. The verified parcel's own copy of the
/// body is dropped here: `bytes` is what is stored.
pub fn arrival(bytes: Vec<u8>, verified: Verified, me: &AuthorityId, now: Timestamp) -> Arrival {
    let receipt = acceptance(&verified, me, now);
    let Verified {
        header,
        message,
        envelope_digest,
        ..
    } = verified;
    let h = &header;
    let entry = events::received(now, h, envelope_digest);
    let record = InboxRecord {
        msg_id: h.id,
        from: h.from.clone(),
        kind: h.kind,
        case_id: h.case_id.clone(),
        in_reply_to: h.in_reply_to,
        received_at: now,
        parcel: bytes,
        erased: None,
        receipt: Vec::new(),
        read: None,
    };
    let summary = Summary::of(h, now, None);
    Arrival {
        header,
        receipt,
        entry,
        record,
        summary,
        message,
    }
}

/// A refused parcel: the signed rejection to send back, once its record
/// and audit entry are stored.
#[derive(Debug)]
pub struct Rejected {
    /// The signed rejection.
    pub receipt: Vec<u8>,
    /// The record of the refusal (with a copy of the rejection).
    pub record: RefusalRecord,
    /// The `refused` audit entry.
    pub entry: Entry,
}

/// The signed rejection of `refusal` for `tls_peer`, with what to store
/// before it is sent.
pub fn reject(
    refusal: Refusal,
    me: &AuthorityId,
    tls_peer: &AuthorityId,
    now: Timestamp,
    key: &SigningKey,
) -> Result<Rejected, SealError> {
    let bytes = sign_rejection(&refusal, me, tls_peer, now, key)?;
    let entry = events::refused(now, &refusal, tls_peer, &bytes);
    let record = RefusalRecord {
        from: tls_peer.clone(),
        msg_id: refusal.msg_id,
        envelope_digest: refusal.envelope_digest.0.to_vec(),
        at: now,
        code: refusal.code.as_str().to_owned(),
        detail: refusal.detail,
        receipt: bytes.clone(),
    };
    Ok(Rejected {
        receipt: bytes,
        record,
        entry,
    })
}

/// The rejection of `refusal`, signed with `key`.
pub fn sign_rejection(
    refusal: &Refusal,
    me: &AuthorityId,
    tls_peer: &AuthorityId,
    now: Timestamp,
    key: &SigningKey,
) -> Result<Vec<u8>, SealError> {
    seal_receipt(&rejection(refusal, me, tls_peer, now), key)
}

/// The signed rejection for a refused parcel.
pub fn rejection(r: &Refusal, me: &AuthorityId, tls_peer: &AuthorityId, now: Timestamp) -> Receipt {
    let mut detail = r.detail.clone();
    if detail.len() > kurir_proto::receipt::MAX_DETAIL {
        let mut cut = kurir_proto::receipt::MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    Receipt {
        msg_id: r.msg_id,
        envelope_digest: r.envelope_digest,
        sender: tls_peer.clone(),
        receiver: me.clone(),
        received_at: now,
        status: ReceiptStatus::Rejected {
            reason: r.code,
            detail: Some(detail),
        },
        log_index: None,
        leaf_hash: None,
    }
}

/// What the sender expects a receipt to say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The message sent.
    pub msg_id: MessageId,
    /// Its envelope digest.
    pub envelope_digest: Digest,
    /// This relay (the sender).
    pub me: &'a AuthorityId,
    /// The peer it was sent to.
    pub peer: &'a AuthorityId,
    /// The length of the parcel sent (its frame's declared length): a
    /// `too_large` rejection names it instead of an envelope.
    pub parcel_len: usize,
}

/// Why a receipt that came back for a parcel is not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Its signature or format does not hold.
    #[error("unverifiable receipt: {0}")]
    Unverifiable(#[source] OpenError),
    /// Signed by another receiver than the peer the parcel went to.
    #[error("receipt signed by {receiver} for a parcel sent to {peer}")]
    OtherReceiver {
        /// The receiver it names.
        receiver: AuthorityId,
        /// The peer the parcel went to.
        peer: AuthorityId,
    },
    /// It names another sender than this relay.
    #[error("receipt names {0} as the sender")]
    OtherSender(AuthorityId),
    /// It is for another envelope.
    #[error("receipt is for another envelope (digest differs)")]
    OtherEnvelope,
    /// It is for another message.
    #[error("receipt is for message {0}")]
    OtherMessage(MessageId),
}

/// Verifies a receipt that came back for a parcel: the peer's signature
/// with a roster key, and that it speaks of exactly this message, sender and
/// receiver. An unverifiable receipt is an error (the driver retries).
pub fn check_receipt(
    bytes: &[u8],
    keys: &dyn KeyLookup,
    expected: &Expected<'_>,
) -> Result<Outcome, ReceiptError> {
    check_receipt_with(bytes, keys, expected, &Strict)
}

/// [`check_receipt`], with the signature checked by `sigs`: the relay
/// passes one [`kurir_proto::batch::Remembered`] for all its receipts, so
/// the receipts of one batch (`docs/PROTOCOL.md` §10.1) cost one signature
/// verification.
pub fn check_receipt_with(
    bytes: &[u8],
    keys: &dyn KeyLookup,
    expected: &Expected<'_>,
    sigs: &dyn SignatureCheck,
) -> Result<Outcome, ReceiptError> {
    let v = open_receipt_with(bytes, keys, sigs).map_err(ReceiptError::Unverifiable)?;
    let r = &v.receipt;
    if &r.receiver != expected.peer {
        return Err(ReceiptError::OtherReceiver {
            receiver: r.receiver.clone(),
            peer: expected.peer.clone(),
        });
    }
    if &r.sender != expected.me {
        return Err(ReceiptError::OtherSender(r.sender.clone()));
    }
    if r.envelope_digest != expected.envelope_digest && !too_large_of_this(r, expected) {
        return Err(ReceiptError::OtherEnvelope);
    }
    if let Some(id) = r.msg_id
        && id != expected.msg_id
    {
        return Err(ReceiptError::OtherMessage(id));
    }
    Ok(match &r.status {
        ReceiptStatus::Accepted => Outcome::Accepted {
            receipt: bytes.to_vec(),
            entry: r.log_index.zip(r.leaf_hash),
        },
        ReceiptStatus::Rejected { reason, detail } => Outcome::Rejected {
            code: *reason,
            detail: detail.clone(),
            receipt: bytes.to_vec(),
        },
    })
}

/// Whether `r` is a `too_large` rejection of the parcel this relay sent on
/// the stream it came back on: it names no message, and the digest of the
/// frame prefix the receiver read ([`too_large_digest`]) or, from relays
/// before that, the digest of nothing.
fn too_large_of_this(r: &Receipt, expected: &Expected<'_>) -> bool {
    matches!(
        r.status,
        ReceiptStatus::Rejected {
            reason: RejectCode::TooLarge,
            ..
        }
    ) && r.msg_id.is_none()
        && (r.envelope_digest == too_large_digest(expected.parcel_len)
            || r.envelope_digest == Digest::of_envelope(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurir_proto::ed25519_dalek::SigningKey;
    use kurir_proto::message::{Handling, Message, examples};
    use kurir_proto::{Header, KeyRing, PublicKey, open_receipt, seal, seal_receipt};

    const NOW: Timestamp = Timestamp(1_795_874_050_000);

    struct Fed {
        ring: KeyRing,
        refuse: Option<(AuthorityId, MessageKind)>,
    }

    impl KeyLookup for Fed {
        fn lookup(&self, kid: &kurir_proto::KeyId) -> Option<PublicKey> {
            self.ring.lookup(kid)
        }
    }

    impl Federation for Fed {
        fn accepts(&self, member: &AuthorityId, kind: MessageKind) -> bool {
            self.refuse.as_ref() != Some(&(member.clone(), kind))
        }
    }

    fn a(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn fed() -> Fed {
        let mut ring = KeyRing::new();
        for (n, who) in [(1, "RS.MUP"), (2, "ME.UP")] {
            ring.insert(PublicKey {
                authority: a(who),
                key: key(n).verifying_key(),
                valid_from: Timestamp(0),
                valid_until: None,
                revoked_at: None,
            });
        }
        Fed { ring, refuse: None }
    }

    fn parcel(created_at: Timestamp) -> Vec<u8> {
        let m = Message::OperationalNotice(examples::notice());
        seal(notice(created_at), &m, [3; 32], &key(1))
            .unwrap()
            .to_bytes()
    }

    fn notice(created_at: Timestamp) -> Header {
        Header {
            id: MessageId::new_v7(created_at.0, [5; 10]),
            kind: MessageKind::OperationalNotice,
            from: a("RS.MUP"),
            to: vec![a("ME.UP")],
            created_at,
            expires_at: created_at.plus_millis(86_400_000),
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            body_digest: Digest([0; 32]),
        }
    }

    fn ctx(me: &AuthorityId) -> InboundContext<'_> {
        InboundContext {
            me,
            now: NOW,
            max_parcel: 1 << 20,
            max_clock_skew_ms: 60_000,
            sigs: &kurir_proto::batch::Strict,
        }
    }

    #[test]
    fn accepts_a_good_parcel_and_builds_its_receipt() {
        let me = a("ME.UP");
        let v = check_parcel(&parcel(NOW), &a("RS.MUP"), &fed(), &ctx(&me)).unwrap();
        let r = acceptance(&v, &me, NOW.plus_millis(3));
        assert_eq!(r.sender, a("RS.MUP"));
        assert_eq!(r.msg_id, Some(v.header.id));
    }

    #[test]
    fn refuses_a_sender_other_than_the_tls_peer() {
        let me = a("ME.UP");
        let err = check_parcel(&parcel(NOW), &a("BA.SPS"), &fed(), &ctx(&me)).unwrap_err();
        assert_eq!(err.code, RejectCode::TransportMismatch);
        assert!(err.msg_id.is_some());
    }

    #[test]
    fn refuses_far_future_and_disallowed_kinds() {
        let me = a("ME.UP");
        let future = parcel(NOW.plus_millis(60_001));
        let err = check_parcel(&future, &a("RS.MUP"), &fed(), &ctx(&me)).unwrap_err();
        assert_eq!(err.code, RejectCode::NotYetValid);
        assert!(
            check_parcel(
                &parcel(NOW.plus_millis(60_000)),
                &a("RS.MUP"),
                &fed(),
                &ctx(&me)
            )
            .is_ok()
        );

        let mut f = fed();
        f.refuse = Some((me.clone(), MessageKind::OperationalNotice));
        let err = check_parcel(&parcel(NOW), &a("RS.MUP"), &f, &ctx(&me)).unwrap_err();
        assert_eq!(err.code, RejectCode::KindNotAllowed);
    }

    #[test]
    fn protocol_failures_carry_their_code_and_a_digest() {
        let me = a("MK.MVR");
        let err = check_parcel(&parcel(NOW), &a("RS.MUP"), &fed(), &ctx(&me)).unwrap_err();
        assert_eq!(err.code, RejectCode::WrongRecipient);
        let err = check_parcel(b"garbage", &a("RS.MUP"), &fed(), &ctx(&me)).unwrap_err();
        assert_eq!(err.code, RejectCode::Malformed);
        assert_eq!(err.envelope_digest, Digest::of_envelope(b"garbage"));
        let r = rejection(&err, &me, &a("RS.MUP"), NOW);
        assert!(seal_receipt(&r, &key(2)).is_ok());
    }

    #[test]
    fn a_batched_receipt_is_checked_like_a_single_one() {
        let me = a("RS.MUP");
        let peer = a("ME.UP");
        let bytes = parcel(NOW);
        let v = check_parcel(&bytes, &me, &fed(), &ctx(&peer)).unwrap();
        let mine = acceptance(&v, &peer, NOW);
        let other = Receipt {
            envelope_digest: Digest([7; 32]),
            ..mine.clone()
        };
        let sealed = kurir_proto::seal_receipts(&[other, mine], &key(2)).unwrap();
        let expected = Expected {
            msg_id: v.header.id,
            envelope_digest: v.envelope_digest,
            me: &me,
            peer: &peer,
            parcel_len: bytes.len(),
        };
        let sigs = kurir_proto::batch::Remembered::default();
        assert!(matches!(
            check_receipt_with(&sealed[1], &fed(), &expected, &sigs).unwrap(),
            Outcome::Accepted { receipt, .. } if receipt == sealed[1]
        ));
        // Its neighbour in the batch is another envelope's receipt.
        assert!(matches!(
            check_receipt_with(&sealed[0], &fed(), &expected, &sigs),
            Err(ReceiptError::OtherEnvelope)
        ));
    }

    /// The envelopes of one batch (PROTOCOL.md §6.1) arriving on their own
    /// streams: each checked as a single one is, the batch's signature
    /// verified once through the relay's [`kurir_proto::batch::Remembered`].
    #[test]
    fn the_envelopes_of_a_batch_cost_one_verification() {
        use kurir_proto::ed25519_dalek::{Signature, SignatureError, VerifyingKey};
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Counting(AtomicUsize);
        impl SignatureCheck for &Counting {
            fn check(
                &self,
                k: &VerifyingKey,
                m: &[u8],
                s: &Signature,
            ) -> Result<(), SignatureError> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Strict.check(k, m, s)
            }
        }
        let me = a("ME.UP");
        let prepared: Vec<_> = (0..3u8)
            .map(|n| {
                let mut h = notice(NOW);
                h.id = MessageId::new_v7(NOW.0, [n; 10]);
                let m = Message::OperationalNotice(examples::notice());
                let encoded =
                    kurir_proto::EncodedMessage::decode(m.kind(), m.encode().unwrap()).unwrap();
                kurir_proto::prepare(h, encoded, [n; 32]).unwrap().0
            })
            .collect();
        let parcels = kurir_proto::sign_prepared(prepared, &key(1)).unwrap();
        let counting = Counting(AtomicUsize::new(0));
        let memo = kurir_proto::batch::Remembered::new(&counting, 16);
        let ctx = InboundContext {
            sigs: &memo,
            ..ctx(&me)
        };
        for (n, p) in parcels.iter().enumerate() {
            let v = check_parcel(&p.to_bytes(), &a("RS.MUP"), &fed(), &ctx).unwrap();
            assert_eq!(v.header.id, MessageId::new_v7(NOW.0, [n as u8; 10]));
            assert_eq!(v.envelope_digest, p.envelope_digest());
        }
        assert_eq!(counting.0.load(Ordering::SeqCst), 1);
        // From another TLS peer, the batch is refused as a single one is.
        let err = check_parcel(&parcels[0].to_bytes(), &a("BA.SPS"), &fed(), &ctx).unwrap_err();
        assert_eq!(err.code, RejectCode::TransportMismatch);
    }

    #[test]
    fn receipts_must_match_what_was_sent() {
        let me = a("RS.MUP");
        let peer = a("ME.UP");
        let bytes = parcel(NOW);
        let v = check_parcel(&bytes, &me, &fed(), &ctx(&peer)).unwrap();
        let receipt = seal_receipt(&acceptance(&v, &peer, NOW), &key(2)).unwrap();
        let expected = Expected {
            msg_id: v.header.id,
            envelope_digest: v.envelope_digest,
            me: &me,
            peer: &peer,
            parcel_len: bytes.len(),
        };
        assert!(matches!(
            check_receipt(&receipt, &fed(), &expected).unwrap(),
            Outcome::Accepted { .. }
        ));
        let other = Expected {
            envelope_digest: Digest([0; 32]),
            ..expected.clone()
        };
        assert!(
            check_receipt(&receipt, &fed(), &other)
                .unwrap_err()
                .to_string()
                .contains("digest")
        );
        // Signed by the sender itself: refused.
        let forged = seal_receipt(&acceptance(&v, &peer, NOW), &key(1)).unwrap();
        assert!(check_receipt(&forged, &fed(), &expected).is_err());
    }

    #[test]
    fn an_accepted_parcel_is_stored_as_received_with_its_entry_and_receipt() {
        use kurir_proto::audit::Event;
        let me = a("ME.UP");
        let bytes = parcel(NOW);
        let v = check_parcel(&bytes, &a("RS.MUP"), &fed(), &ctx(&me)).unwrap();
        let (id, digest) = (v.header.id, v.envelope_digest);
        let arrival = arrival(bytes.clone(), v, &me, NOW.plus_millis(3));
        // The record holds the parcel as it came.
        assert_eq!(arrival.record.parcel, bytes);
        assert_eq!(arrival.record.msg_id, id);
        assert_eq!(arrival.record.from, a("RS.MUP"));
        assert_eq!(arrival.record.received_at, NOW.plus_millis(3));
        assert!(arrival.record.receipt.is_empty() && arrival.record.read.is_none());
        // The receipt is the acceptance; the store adds index and leaf hash.
        assert_eq!(arrival.receipt.msg_id, Some(id));
        assert_eq!(arrival.receipt.receiver, me);
        assert_eq!(arrival.receipt.status, ReceiptStatus::Accepted);
        assert_eq!(arrival.receipt.log_index, None);
        assert_eq!(arrival.entry.event, Event::Received);
        assert_eq!(arrival.entry.msg_id, Some(id));
        assert_eq!(arrival.entry.envelope_digest, Some(digest));
        assert_eq!(arrival.entry.peer, Some(a("RS.MUP")));
        assert_eq!(
            arrival.summary,
            Summary::of(&arrival.header, NOW.plus_millis(3), None)
        );
        // A notice belongs to no case.
        assert_eq!(
            arrival.case_change(&me, None, &Agreements::default()),
            Ok(CaseChange::Unchanged)
        );
    }

    #[test]
    fn a_refusal_is_signed_and_recorded_with_its_entry() {
        use kurir_proto::audit::{Event, receipt_digest};
        let me = a("ME.UP");
        let peer = a("RS.MUP");
        let refusal = check_parcel(b"garbage", &peer, &fed(), &ctx(&me)).unwrap_err();
        let rejected = reject(refusal.clone(), &me, &peer, NOW, &key(2)).unwrap();
        let v = open_receipt(&rejected.receipt, &fed()).unwrap();
        assert_eq!(v.receipt, rejection(&refusal, &me, &peer, NOW));
        assert_eq!(rejected.record.receipt, rejected.receipt);
        assert_eq!(rejected.record.from, peer);
        assert_eq!(rejected.record.at, NOW);
        assert_eq!(rejected.record.code, RejectCode::Malformed.as_str());
        assert_eq!(rejected.record.detail, refusal.detail);
        assert_eq!(
            rejected.record.envelope_digest,
            refusal.envelope_digest.0.to_vec()
        );
        assert_eq!(rejected.entry.event, Event::Refused);
        assert_eq!(
            rejected.entry.receipt_digest,
            Some(receipt_digest(&rejected.receipt))
        );
        assert_eq!(
            rejected.entry.code.as_deref(),
            Some(RejectCode::Malformed.as_str())
        );
    }

    #[test]
    fn oversized_frames_and_a_full_disk_are_refused_as_such() {
        let e = frame::payload_len(u32::MAX.to_be_bytes(), 1024).unwrap_err();
        let r = Refusal::too_large(&e);
        assert_eq!(r.code, RejectCode::TooLarge);
        assert_eq!(r.detail, e.to_string());
        assert_eq!(r.msg_id, None);
        // It names the prefix it read: the declared length.
        assert_eq!(r.envelope_digest, too_large_digest(u32::MAX as usize));
        assert_eq!(
            r.envelope_digest,
            Digest::of_envelope(&u32::MAX.to_be_bytes())
        );

        let id = MessageId::new_v7(NOW.0, [5; 10]);
        let r = Refusal::low_space(id, Digest([4; 32]));
        assert_eq!(r.code, RejectCode::Internal);
        assert_eq!(
            r.detail,
            "the receiving relay is low on disk space; try again later"
        );
        assert_eq!((r.msg_id, r.envelope_digest), (Some(id), Digest([4; 32])));
    }

    #[test]
    fn a_known_id_is_a_duplicate_only_from_the_same_sender_with_the_same_envelope() {
        let me = a("ME.UP");
        let bytes = parcel(NOW);
        let v = check_parcel(&bytes, &a("RS.MUP"), &fed(), &ctx(&me)).unwrap();
        let (id, digest) = (v.header.id, v.envelope_digest);
        let mut original = arrival(bytes, v, &me, NOW).record;
        original.receipt = b"the original receipt".to_vec();
        assert_eq!(
            duplicate(&original, &a("RS.MUP"), id, digest),
            Ok(original.receipt.clone())
        );
        let other = duplicate(&original, &a("BA.SPS"), id, Digest([9; 32])).unwrap_err();
        assert_eq!(other.code, RejectCode::IdConflict);
        assert_eq!(
            (other.msg_id, other.envelope_digest),
            (Some(id), Digest([9; 32]))
        );
        assert!(other.detail.contains("another member"), "{}", other.detail);
        let resealed = duplicate(&original, &a("RS.MUP"), id, Digest([9; 32])).unwrap_err();
        assert_eq!(resealed.code, RejectCode::IdConflict);
        assert!(
            resealed.detail.contains("another envelope"),
            "{}",
            resealed.detail
        );
    }

    #[test]
    fn a_too_large_rejection_is_matched_to_the_parcel_sent_on_its_stream() {
        let (me, peer) = (a("RS.MUP"), a("ME.UP"));
        let bytes = parcel(NOW);
        let v = check_parcel(&bytes, &me, &fed(), &ctx(&peer)).unwrap();
        let expected = Expected {
            msg_id: v.header.id,
            envelope_digest: v.envelope_digest,
            me: &me,
            peer: &peer,
            parcel_len: bytes.len(),
        };
        let too_large = |declared: usize| {
            let e = frame::payload_len((declared as u32).to_be_bytes(), 16).unwrap_err();
            Refusal::too_large(&e)
        };
        let signed = |r: &Refusal| sign_rejection(r, &peer, &me, NOW, &key(2)).unwrap();
        // Naming the length of this parcel: rejected at once.
        let answer = signed(&too_large(bytes.len()));
        assert!(matches!(
            check_receipt(&answer, &fed(), &expected).unwrap(),
            Outcome::Rejected {
                code: RejectCode::TooLarge,
                ..
            }
        ));
        // From a relay before this change: the digest of nothing.
        let mut old = too_large(bytes.len());
        old.envelope_digest = Digest::of_envelope(&[]);
        assert!(check_receipt(&signed(&old), &fed(), &expected).is_ok());
        // Another length, or another code with that digest: not this parcel.
        let answer = signed(&too_large(bytes.len() + 1));
        assert!(matches!(
            check_receipt(&answer, &fed(), &expected),
            Err(ReceiptError::OtherEnvelope)
        ));
        let mut malformed = too_large(bytes.len());
        malformed.code = RejectCode::Malformed;
        assert!(check_receipt(&signed(&malformed), &fed(), &expected).is_err());
    }
}
