//! Sealing and opening messages.
//!
//! A message on the wire is a **parcel**, the deterministic-CBOR array
//!
//! ```text
//! [ envelope: bstr,   ; tagged COSE_Sign1 over the header (see crate::cose)
//!   salt:     bstr,   ; 32 random bytes
//!   body:     bstr ]  ; deterministic CBOR of the message (see crate::message)
//! ```
//!
//! The header inside the envelope commits to the body through
//! `body_digest = SHA-256("kurir/v1/body\0" ‖ salt ‖ body)`. Salt and body can
//! later be erased (retention) while the envelope and its signature remain
//! verifiable.
//!
//! An envelope is signed alone (content type [`CONTENT_TYPE_HEADER`], the
//! header as its payload) or in a batch with the envelopes of other messages
//! of the same sender ([`sign_prepared`], content type [`CONTENT_TYPE_HEADER_BATCH`],
//! `docs/PROTOCOL.md` §6.1): one signature over the Merkle root of their
//! headers, each envelope carrying its own header and inclusion path. Both
//! forms verify alone; [`verify_envelope`] takes either.

use ciborium::value::Value;
use ed25519_dalek::SigningKey;

use crate::batch::{SignatureCheck, Strict};
use crate::cbor::{self, CborError};
use crate::cose::batch::Form;
use crate::cose::{self, CONTENT_TYPE_HEADER, CONTENT_TYPE_HEADER_BATCH, KeyLookup};
use crate::digest::Digest;
use crate::error::{OpenError, SealError};
use crate::header::Header;
use crate::ids::{AuthorityId, KeyId};
use crate::message::{BodyError, Message, MessageKind};
use crate::time::Timestamp;

/// The batch form of envelopes (`docs/PROTOCOL.md` §6.1).
const BATCH: Form = Form {
    content_type: CONTENT_TYPE_HEADER_BATCH,
    what: "envelope",
    head: "envelope batch head",
    signer: "from",
};

/// Length of the body salt in bytes.
pub const SALT_LEN: usize = 32;

/// The default largest parcel a relay accepts: 8 MiB.
pub const DEFAULT_MAX_PARCEL: usize = 8 << 20;

/// A sealed message as it travels: signed envelope, salt and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    /// The tagged COSE_Sign1 bytes, exactly as signed.
    pub envelope: Vec<u8>,
    /// The body salt.
    pub salt: [u8; SALT_LEN],
    /// The deterministic-CBOR body.
    pub body: Vec<u8>,
}

impl Parcel {
    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        // An array of three byte strings, written directly: nothing to sort,
        // nothing that can fail, no copy of the body into a `Value`.
        let mut out = Vec::with_capacity(self.envelope.len() + self.body.len() + 64);
        cbor::write_head(4, 3, &mut out);
        for part in [&self.envelope[..], &self.salt[..], &self.body[..]] {
            cbor::write_head(2, part.len() as u64, &mut out);
            out.extend_from_slice(part);
        }
        out
    }

    /// Decodes the wire encoding (structure only; see [`open`] for the checks).
    pub fn from_bytes(bytes: &[u8]) -> Result<Parcel, OpenError> {
        match Parcel::from_canonical(bytes) {
            Some(parcel) => Ok(parcel),
            None => Parcel::from_value_bytes(bytes),
        }
    }

    /// [`Parcel::from_bytes`] through a CBOR value, which names what is
    /// wrong with the encoding.
    fn from_value_bytes(bytes: &[u8]) -> Result<Parcel, OpenError> {
        let malformed = |reason: &str| OpenError::Malformed {
            what: "parcel",
            reason: reason.to_owned(),
        };
        let value = cbor::decode_value(bytes).map_err(|e| match e {
            CborError::NonCanonical | CborError::DuplicateKey => OpenError::NonCanonical {
                what: "parcel",
                source: e,
            },
            e => OpenError::Malformed {
                what: "parcel",
                reason: e.to_string(),
            },
        })?;
        let Value::Array(items) = value else {
            return Err(malformed("expected an array [envelope, salt, body]"));
        };
        let [
            Value::Bytes(envelope),
            Value::Bytes(salt),
            Value::Bytes(body),
        ] = <[Value; 3]>::try_from(items)
            .map_err(|_| malformed("expected an array of three items [envelope, salt, body]"))?
        else {
            return Err(malformed(
                "expected three byte strings [envelope, salt, body]",
            ));
        };
        let salt = salt
            .try_into()
            .map_err(|_| malformed("the salt must be exactly 32 bytes"))?;
        Ok(Parcel {
            envelope,
            salt,
            body,
        })
    }

    /// The parts of a parcel in exactly the encoding [`Parcel::to_bytes`]
    /// writes, read as slices (the body copied once); `None` for anything
    /// else, which [`Parcel::from_bytes`] then decodes in full to say what
    /// is wrong.
    fn from_canonical(bytes: &[u8]) -> Option<Parcel> {
        let [envelope, salt, body] = canonical_parts(bytes)?;
        Some(Parcel {
            envelope: envelope.to_vec(),
            salt: salt.try_into().ok()?,
            body: body.to_vec(),
        })
    }

    /// The digest of the envelope of a parcel's bytes, without copying the
    /// body: `None` unless the bytes are in the encoding
    /// [`Parcel::to_bytes`] writes (decode those with [`Parcel::from_bytes`]).
    pub fn envelope_digest_of(bytes: &[u8]) -> Option<Digest> {
        canonical_parts(bytes).map(|[envelope, _, _]| Digest::of_envelope(envelope))
    }

    /// The digest of the envelope, as receipts and the audit log name it.
    pub fn envelope_digest(&self) -> Digest {
        Digest::of_envelope(&self.envelope)
    }
}

/// Signs a message.
///
/// Sorts `header.to`, sets `header.body_digest` from `salt` and the encoded
/// body, checks the header and the body, and signs the header with `key`. The
/// salt must come from a cryptographic random source (`proto` has none).
pub fn seal(
    header: Header,
    message: &Message,
    salt: [u8; SALT_LEN],
    key: &SigningKey,
) -> Result<Parcel, SealError> {
    let mut header = header;
    if header.kind != message.kind() {
        return Err(SealError::KindMismatch {
            header: header.kind,
            body: message.kind(),
        });
    }
    message.validate()?;
    check_consistent(&header, message).map_err(SealError::Inconsistent)?;
    let body = message.encode()?;
    header.to.sort();
    header.body_digest = Digest::of_body(&salt, &body);
    Unsigned::new(header, salt, body)?.sign_alone(key)
}

/// A message body together with the message it encodes. Its bytes are the
/// message's deterministic encoding ([`Message::encode`]): they were
/// decoded into it, and decoding accepts nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    message: Message,
    body: Vec<u8>,
}

impl EncodedMessage {
    /// Decodes and validates a body of `kind` ([`Message::decode`]) and
    /// keeps its bytes.
    pub fn decode(kind: MessageKind, body: Vec<u8>) -> Result<EncodedMessage, BodyError> {
        let message = Message::decode(kind, &body)?;
        Ok(EncodedMessage { message, body })
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }
}

/// [`seal`] for a body already encoded: the body's bytes go into the parcel
/// as they are, not encoded again (for large attachments, two passes over
/// the body fewer). Returns the message too.
pub fn seal_encoded(
    header: Header,
    encoded: EncodedMessage,
    salt: [u8; SALT_LEN],
    key: &SigningKey,
) -> Result<(Parcel, Message), SealError> {
    let (unsigned, message) = prepare(header, encoded, salt)?;
    Ok((unsigned.sign_alone(key)?, message))
}

/// [`seal_encoded`] without the signature: the header completed (`to`
/// sorted, `body_digest` set) and checked, ready for [`sign_prepared`] alone or with
/// other messages. Returns the message too.
pub fn prepare(
    header: Header,
    encoded: EncodedMessage,
    salt: [u8; SALT_LEN],
) -> Result<(Unsigned, Message), SealError> {
    let EncodedMessage { message, body } = encoded;
    let mut header = header;
    if header.kind != message.kind() {
        return Err(SealError::KindMismatch {
            header: header.kind,
            body: message.kind(),
        });
    }
    check_consistent(&header, &message).map_err(SealError::Inconsistent)?;
    header.to.sort();
    header.body_digest = Digest::of_body(&salt, &body);
    Ok((Unsigned::new(header, salt, body)?, message))
}

/// A message whose header is complete and checked, not signed yet
/// ([`prepare`], then [`sign_prepared`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsigned {
    header: Header,
    /// The header's deterministic encoding, the payload to sign.
    encoded: Vec<u8>,
    salt: [u8; SALT_LEN],
    body: Vec<u8>,
}

impl Unsigned {
    fn new(header: Header, salt: [u8; SALT_LEN], body: Vec<u8>) -> Result<Unsigned, SealError> {
        Ok(Unsigned {
            encoded: header.encode()?,
            header,
            salt,
            body,
        })
    }

    /// The header as it will be signed.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The length of the parcel's wire encoding ([`Parcel::to_bytes`]) in
    /// the single form, as signing it alone would give: for the size limit
    /// before signing. A batched envelope is longer (its head and path).
    pub fn parcel_len(&self) -> usize {
        fn bstr(n: usize) -> usize {
            cbor::head_len(n as u64) + n
        }
        // {1: -8, 3: content type, 4: h'kid'}
        let protected = 4 + bstr(CONTENT_TYPE_HEADER.len()) + 1 + bstr(16);
        // 18([protected, {}, payload, signature])
        let envelope = 2 + bstr(protected) + 1 + bstr(self.encoded.len()) + bstr(64);
        1 + bstr(envelope) + bstr(SALT_LEN) + bstr(self.body.len())
    }

    /// The single form: the header as the payload of its own signature.
    fn sign_alone(self, key: &SigningKey) -> Result<Parcel, SealError> {
        Ok(Parcel {
            envelope: cose::sign1(CONTENT_TYPE_HEADER, self.encoded, key),
            salt: self.salt,
            body: self.body,
        })
    }
}

/// Signs messages of one sender: one message alone gets the single form
/// (what [`seal`] makes); two or more share one signature over their batch
/// head (`docs/PROTOCOL.md` §6.1), each envelope verifiable alone. The
/// parcels are in the order of `unsigned`.
pub fn sign_prepared(unsigned: Vec<Unsigned>, key: &SigningKey) -> Result<Vec<Parcel>, SealError> {
    let Some(first) = unsigned.first() else {
        return Ok(Vec::new());
    };
    if unsigned.len() == 1 {
        return unsigned.into_iter().map(|u| u.sign_alone(key)).collect();
    }
    let from = first.header.from.clone();
    if let Some(other) = unsigned.iter().find(|u| u.header.from != from) {
        return Err(SealError::Inconsistent(format!(
            "a batch holds messages of one sender, not {from} and {}",
            other.header.from
        )));
    }
    let (payloads, parts): (Vec<_>, Vec<_>) = unsigned
        .into_iter()
        .map(|u| (u.encoded, (u.salt, u.body)))
        .unzip();
    let envelopes = cose::batch::seal(BATCH, &from, payloads, key)?;
    Ok(envelopes
        .into_iter()
        .zip(parts)
        .map(|(envelope, (salt, body))| Parcel {
            envelope,
            salt,
            body,
        })
        .collect())
}

/// Fields that both header and body carry must agree.
fn check_consistent(header: &Header, message: &Message) -> Result<(), String> {
    if let Message::ReadmissionRequest(r) = message
        && header.procedure != Some(r.procedure)
    {
        return Err(format!(
            "the header's procedure ({}) differs from the request's ({})",
            header.procedure.map_or("none", |p| p.as_str()),
            r.procedure.as_str()
        ));
    }
    Ok(())
}

/// A signed envelope whose signature and key have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEnvelope {
    /// The signed header.
    pub header: Header,
    /// The key that signed it.
    pub kid: KeyId,
    /// [`Digest::of_envelope`].
    pub envelope_digest: Digest,
}

/// A parcel whose envelope, body and addressing have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed header.
    pub header: Header,
    /// The decoded body.
    pub message: Message,
    /// The key that signed it.
    pub kid: KeyId,
    /// [`Digest::of_envelope`].
    pub envelope_digest: Digest,
    /// The parcel as received, for storage and forwarding.
    pub parcel: Parcel,
}

/// What the receiver knows when it opens a parcel.
#[derive(Debug, Clone)]
pub struct OpenContext<'a> {
    /// The authority this relay serves.
    pub me: &'a AuthorityId,
    /// The receiver's clock.
    pub now: Timestamp,
    /// The largest parcel accepted, in bytes.
    pub max_parcel: usize,
}

/// Envelope, salt and body of a parcel in exactly the encoding
/// [`Parcel::to_bytes`] writes, as slices.
fn canonical_parts(bytes: &[u8]) -> Option<[&[u8]; 3]> {
    let rest = bytes.strip_prefix(&[0x83])?;
    let (envelope, rest) = cbor::split_byte_string(rest)?;
    let (salt, rest) = cbor::split_byte_string(rest)?;
    let (body, rest) = cbor::split_byte_string(rest)?;
    rest.is_empty().then_some([envelope, salt, body])
}

/// Checks a signed envelope alone: structure, profile, signature, the
/// signing key's owner and validity at `created_at`, and the header's rules.
///
/// This is what an auditor can still check after the body was erased.
pub fn verify_envelope(
    envelope: &[u8],
    keys: &dyn KeyLookup,
) -> Result<VerifiedEnvelope, OpenError> {
    verify_envelope_with(envelope, keys, &Strict)
}

/// [`verify_envelope`], with the signature checked by `sigs` (for
/// [`crate::batch::batched`]).
pub fn verify_envelope_with(
    envelope: &[u8],
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<VerifiedEnvelope, OpenError> {
    // Parsed once, whichever form it has.
    let parsed = cose::Parsed1::parse(envelope, "envelope")?;
    let (payload, signed, batch_signer) = match parsed.content_type() {
        Some(CONTENT_TYPE_HEADER_BATCH) => {
            let opened = cose::batch::open(BATCH, parsed, keys, sigs)?;
            (opened.payload, opened.signed, Some(opened.signer))
        }
        _ => {
            let (mut signed, _) = parsed.verify(CONTENT_TYPE_HEADER, keys, sigs, None)?;
            (std::mem::take(&mut signed.payload), signed, None)
        }
    };
    let header = Header::decode(&payload).map_err(|e| match e {
        crate::header::HeaderError::UnsupportedVersion(v) => OpenError::UnsupportedVersion(v),
        crate::header::HeaderError::Cbor(
            source @ (CborError::NonCanonical | CborError::DuplicateKey),
        ) => OpenError::NonCanonical {
            what: "header",
            source,
        },
        e => OpenError::InvalidHeader(e),
    })?;
    if let Some(signer) = batch_signer
        && signer != header.from
    {
        return Err(OpenError::Malformed {
            what: "envelope",
            reason: format!(
                "the header names {} as the sender, its batch {signer}",
                header.from
            ),
        });
    }
    if signed.key.authority != header.from {
        return Err(OpenError::SignerMismatch {
            kid: signed.kid,
            owner: signed.key.authority,
            claimed: header.from,
        });
    }
    if let Some(revoked_at) = signed.key.revoked_at
        && signed.key.revoked_by(header.created_at)
    {
        return Err(OpenError::KeyRevoked {
            kid: signed.kid,
            at: header.created_at,
            revoked_at,
        });
    }
    if !signed.key.valid_at(header.created_at) {
        return Err(OpenError::KeyNotValid {
            kid: signed.kid,
            at: header.created_at,
            valid_from: signed.key.valid_from,
            valid_until: signed.key.valid_until,
        });
    }
    Ok(VerifiedEnvelope {
        header,
        kid: signed.kid,
        envelope_digest: Digest::of_envelope(envelope),
    })
}

/// Reads the header of an envelope **without verifying the signature**: for
/// envelopes a relay verified before it stored them. Never use it on input
/// from the network.
pub fn header_unverified(envelope: &[u8]) -> Option<Header> {
    use coset::TaggedCborSerializable;
    let sign1 = coset::CoseSign1::from_tagged_slice(envelope).ok()?;
    let batched = matches!(
        &sign1.protected.header.content_type,
        Some(coset::ContentType::Text(ct)) if ct == CONTENT_TYPE_HEADER_BATCH
    );
    let payload = match batched {
        true => cose::batch::payload_unverified(BATCH, sign1)?,
        false => sign1.payload?,
    };
    Header::decode(&payload).ok()
}

/// Checks a parcel without regard to who receives it or when: the envelope
/// (see [`verify_envelope`]), the body digest, and the body against its kind.
pub fn verify(parcel: Parcel, keys: &dyn KeyLookup) -> Result<Verified, OpenError> {
    verify_with(parcel, keys, &Strict)
}

/// [`verify`], with the signature checked by `sigs` (a relay passes a
/// [`crate::batch::Remembered`], so that the envelopes of one batch cost
/// one verification).
pub fn verify_with(
    parcel: Parcel,
    keys: &dyn KeyLookup,
    sigs: &dyn SignatureCheck,
) -> Result<Verified, OpenError> {
    let env = verify_envelope_with(&parcel.envelope, keys, sigs)?;
    let actual = Digest::of_body(&parcel.salt, &parcel.body);
    if actual != env.header.body_digest {
        return Err(OpenError::DigestMismatch {
            expected: env.header.body_digest,
            actual,
        });
    }
    let message = Message::decode(env.header.kind, &parcel.body).map_err(OpenError::InvalidBody)?;
    check_consistent(&env.header, &message).map_err(|reason| {
        OpenError::InvalidBody(crate::message::BodyError::Invalid {
            kind: env.header.kind,
            reason,
        })
    })?;
    Ok(Verified {
        header: env.header,
        message,
        kid: env.kid,
        envelope_digest: env.envelope_digest,
        parcel,
    })
}

/// Opens a parcel received from the network: everything [`verify`] checks,
/// plus the size limit (first, before decoding), that this relay is a
/// recipient, and that the message has not expired.
pub fn open(
    bytes: &[u8],
    keys: &dyn KeyLookup,
    ctx: &OpenContext<'_>,
) -> Result<Verified, OpenError> {
    open_with(bytes, keys, ctx, &Strict)
}

/// [`open`], with the signature checked by `sigs` (see [`verify_with`]).
pub fn open_with(
    bytes: &[u8],
    keys: &dyn KeyLookup,
    ctx: &OpenContext<'_>,
    sigs: &dyn SignatureCheck,
) -> Result<Verified, OpenError> {
    if bytes.len() > ctx.max_parcel {
        return Err(OpenError::TooLarge {
            what: "parcel",
            size: bytes.len(),
            max: ctx.max_parcel,
        });
    }
    let verified = verify_with(Parcel::from_bytes(bytes)?, keys, sigs)?;
    let header = &verified.header;
    if !header.to.contains(ctx.me) {
        return Err(OpenError::WrongRecipient {
            me: ctx.me.clone(),
            to: header
                .to
                .iter()
                .map(AuthorityId::as_str)
                .collect::<Vec<_>>()
                .join(","),
        });
    }
    if ctx.now >= header.expires_at {
        return Err(OpenError::Expired {
            expires_at: header.expires_at,
            now: ctx.now,
        });
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cose::{KeyRing, PublicKey};

    proptest! {
        /// The slice decoder takes only what the full decoder accepts, and
        /// gives the same parcel; anything else goes to the full decoder.
        #[test]
        fn the_parcel_fast_path_agrees_with_the_full_decoder(
            envelope in proptest::collection::vec(any::<u8>(), 0..40),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in any::<usize>(),
        ) {
            let mut bytes = Parcel { envelope, salt: [3; 32], body }.to_bytes();
            for (i, b) in edits {
                let n = bytes.len();
                bytes[i % n] = b;
            }
            if cut % 4 == 0 {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            let full = Parcel::from_value_bytes(&bytes);
            if let Some(fast) = Parcel::from_canonical(&bytes) {
                prop_assert_eq!(Some(&fast), full.as_ref().ok());
            }
            prop_assert_eq!(
                Parcel::envelope_digest_of(&bytes),
                Parcel::from_canonical(&bytes).map(|p| p.envelope_digest())
            );
            prop_assert_eq!(
                format!("{:?}", Parcel::from_bytes(&bytes)),
                format!("{full:?}")
            );
        }
    }

    /// `parcel_len` is the length of the signed parcel, across every
    /// length at which a CBOR head grows.
    #[test]
    fn the_parcel_length_is_known_before_signing() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let message = Message::OperationalNotice(crate::message::examples::notice());
        let header = header_for(&message, MessageId::new_v7(1_000, [1; 10]), Timestamp(1));
        for len in [0, 1, 23, 24, 200, 255, 256, 65_535, 65_536, 70_000] {
            let u = Unsigned::new(header.clone(), [2; SALT_LEN], vec![0xa0; len]).unwrap();
            let expected = u.parcel_len();
            assert_eq!(
                u.sign_alone(&key).unwrap().to_bytes().len(),
                expected,
                "{len}"
            );
        }
    }

    /// A batch head that names another sender than its headers is refused,
    /// although the key is the headers' sender's.
    #[test]
    fn a_batch_head_names_the_sender_of_its_headers() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let rs = AuthorityId::parse("RS.MUP").unwrap();
        let mut ring = KeyRing::new();
        ring.insert(PublicKey {
            authority: rs.clone(),
            key: key.verifying_key(),
            valid_from: Timestamp(0),
            valid_until: None,
            revoked_at: None,
        });
        let message = Message::OperationalNotice(crate::message::examples::notice());
        let headers: Vec<Vec<u8>> = (0..2u8)
            .map(|n| {
                let mut h = header_for(&message, MessageId::new_v7(1_000, [n; 10]), Timestamp(1));
                h.body_digest = Digest([n; 32]);
                h.encode().unwrap()
            })
            .collect();
        let as_signed = cose::batch::seal(BATCH, &rs, headers.clone(), &key).unwrap();
        verify_envelope(&as_signed[1], &ring).unwrap();
        let other = AuthorityId::parse("ME.UP").unwrap();
        let envelopes = cose::batch::seal(BATCH, &other, headers, &key).unwrap();
        let e = verify_envelope(&envelopes[1], &ring)
            .unwrap_err()
            .to_string();
        assert!(e.contains("its batch ME.UP"), "{e}");
    }

    #[test]
    fn a_parcel_with_a_longer_head_than_needed_is_refused_as_non_canonical() {
        // [h'01', salt, h''] with the first length in two bytes.
        let mut bytes = vec![0x83, 0x58, 0x01, 0x01, 0x58, 0x20];
        bytes.extend_from_slice(&[3; 32]);
        bytes.push(0x40);
        assert_eq!(Parcel::from_canonical(&bytes), None);
        assert!(
            matches!(
                Parcel::from_bytes(&bytes),
                Err(OpenError::NonCanonical { what: "parcel", .. })
            ),
            "{:?}",
            Parcel::from_bytes(&bytes)
        );
    }
    use crate::ids::{CaseId, MessageId};
    use crate::message::{Handling, MessageKind, Procedure};
    use proptest::prelude::*;

    fn header_for(message: &Message, id: MessageId, now: Timestamp) -> Header {
        let kind = message.kind();
        let procedure = match message {
            Message::ReadmissionRequest(r) => Some(r.procedure),
            _ => None,
        };
        Header {
            id,
            kind,
            from: AuthorityId::parse("RS.MUP").unwrap(),
            to: vec![AuthorityId::parse("BA.SPS").unwrap()],
            created_at: now,
            expires_at: now.plus_millis(1),
            case_id: kind
                .needs_case()
                .then(|| CaseId::parse("RS.MUP:2026-1").unwrap()),
            in_reply_to: kind.needs_in_reply_to().then_some(id),
            procedure: procedure
                .or((kind == MessageKind::ReadmissionRequest).then_some(Procedure::Standard)),
            handling: Handling::H2,
            legal_basis: None,
            body_digest: Digest([0; 32]),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every kind survives seal → wire bytes → open, with the header and
        /// body unchanged and the parcel byte-identical.
        #[test]
        fn every_kind_seals_and_opens(
            message: Message,
            id: MessageId,
            now in 0u64..(1 << 47),
            salt: [u8; 32],
            seed: [u8; 32],
        ) {
            prop_assume!(message.validate().is_ok());
            let key = SigningKey::from_bytes(&seed);
            let mut ring = KeyRing::new();
            ring.insert(PublicKey {
                authority: AuthorityId::parse("RS.MUP").unwrap(),
                key: key.verifying_key(),
                valid_from: Timestamp(0),
                valid_until: None,
                revoked_at: None,
            });
            let header = header_for(&message, id, Timestamp(now));
            let parcel = seal(header.clone(), &message, salt, &key).unwrap();
            let bytes = parcel.to_bytes();
            let me = AuthorityId::parse("BA.SPS").unwrap();
            let ctx = OpenContext { me: &me, now: Timestamp(now), max_parcel: usize::MAX };
            let opened = open(&bytes, &ring, &ctx).unwrap();
            prop_assert_eq!(&opened.message, &message);
            prop_assert_eq!(opened.header.id, header.id);
            prop_assert_eq!(opened.header.body_digest, Digest::of_body(&salt, &parcel.body));
            prop_assert_eq!(&opened.parcel.to_bytes(), &bytes);
            // Sealing the encoded body gives the same parcel, byte for byte
            // (Ed25519 signatures are deterministic), and the message back.
            let encoded = EncodedMessage::decode(message.kind(), message.encode().unwrap()).unwrap();
            prop_assert_eq!(encoded.message(), &message);
            let (same, back) = seal_encoded(header.clone(), encoded, salt, &key).unwrap();
            prop_assert_eq!(same.to_bytes(), bytes);
            prop_assert_eq!(back, message.clone());
            // Under a header of another kind, it is refused as `seal` refuses.
            let other = if message.kind() == MessageKind::OperationalNotice {
                MessageKind::ReadmissionReply
            } else {
                MessageKind::OperationalNotice
            };
            let encoded = EncodedMessage::decode(message.kind(), message.encode().unwrap()).unwrap();
            let wrong = Header { kind: other, ..header };
            let refused = seal_encoded(wrong, encoded, salt, &key);
            prop_assert!(matches!(refused, Err(SealError::KindMismatch { .. })), "{refused:?}");
        }
    }
}
