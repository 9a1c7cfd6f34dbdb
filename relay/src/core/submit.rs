//! Building a submission: what an officer's message becomes before it is
//! stored and queued. [`submit`] checks the recipients against the roster
//! and a readmission message against its case ([`super::cases`]), builds
//! the header and parcel, and returns everything the driver stores in one
//! commit: the [`OutboundRecord`], the parcel ([`Sealing`]: signed here,
//! or to be signed by the store with the other submissions of its group
//! commit, PROTOCOL.md §6.1), a queued [`Delivery`] per recipient, the
//! case change and the `submitted` audit entry. Or a [`SubmitRefusal`]
//! whose text goes back to the officer.
//!
//! Pure: the caller passes `now`, the randomness (the message id's random
//! bytes and the salt), the signing key and the case as stored.

use kurir_certs::tls::Officer;
use kurir_proto::api::Submission;
use kurir_proto::audit::Entry;
use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::message::{BodyError, MessageKind};
use kurir_proto::{
    AuthorityId, EncodedMessage, Header, MessageId, SALT_LEN, SealError, Timestamp, Unsigned,
    prepare, sign_prepared,
};

use super::cases::{self, CaseChange, CaseRefusal};
use super::deadline::{Agreements, Case};
use super::delivery::Delivery;
use super::events;
use super::inbound::Federation;
use crate::store::OutboundRecord;

/// What a submission needs of the roster beyond [`Federation`].
pub trait Members: Federation {
    /// The roster's version.
    fn version(&self) -> u64;
    /// Whether `authority` is a member of the federation.
    fn is_member(&self, authority: &AuthorityId) -> bool;
}

/// What the relay brings to a submission.
#[derive(Debug, Clone, Copy)]
pub struct SubmitContext<'a> {
    /// This relay's authority, the sender.
    pub me: &'a AuthorityId,
    /// The relay's clock.
    pub now: Timestamp,
    /// Signs the envelope (this relay's message key).
    pub message_key: &'a SigningKey,
    /// Expiry from now when the officer gives none, in ms.
    pub default_expiry_ms: u64,
    /// Whether a small parcel is left to be signed with its group
    /// ([`SIGN_ALONE_FROM`]); `false`: every parcel is signed alone here.
    pub sign_in_batches: bool,
    /// The largest parcel this relay sends, in bytes.
    pub max_parcel_bytes: usize,
    /// The readmission agreements (for the case rules).
    pub agreements: &'a Agreements,
}

/// The random values a submission uses (drawn by the caller; tests seed
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draws {
    /// The random bytes of the message id (UUIDv7).
    pub id: [u8; 10],
    /// The salt of the body digest.
    pub salt: [u8; SALT_LEN],
}

/// Why a submission is refused; the text goes back to the officer as a
/// bad request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitRefusal {
    /// The body is not a valid message of its kind.
    #[error("{0}")]
    Body(#[from] BodyError),
    /// No recipient.
    #[error("no recipient: name at least one authority")]
    NoRecipient,
    /// A recipient is not in the roster.
    #[error("{to} is not a member of the federation (roster version {version})")]
    NotMember {
        /// The recipient.
        to: AuthorityId,
        /// The roster's version.
        version: u64,
    },
    /// A recipient does not exchange this kind.
    #[error("{to} does not accept {kind} messages (see the roster)")]
    KindNotAccepted {
        /// The recipient.
        to: AuthorityId,
        /// The kind.
        kind: MessageKind,
    },
    /// A readmission message does not fit its case.
    #[error("{0}")]
    Case(#[from] CaseRefusal),
    /// Header and body could not be sealed.
    #[error("{0}")]
    Seal(#[from] SealError),
    /// The sealed parcel is over the size limit.
    #[error("the message is {size} bytes, over the limit of {max} (attachments too large?)")]
    TooLarge {
        /// The parcel's size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Parcels of at least this many bytes (in the single form) are signed
/// alone when they are submitted; smaller ones when their group commits,
/// with the others of the group (PROTOCOL.md §6.1). A large body is sealed
/// into a body file of its own before its commit, under its envelope's
/// digest, and signing it costs little beside moving its bytes.
pub const SIGN_ALONE_FROM: usize = 64 * 1024;

/// The parcel of a submission.
#[derive(Debug)]
pub enum Sealing {
    /// Signed alone: the parcel's wire bytes.
    Signed(Vec<u8>),
    /// Checked and complete but for the signature, which the store adds
    /// when the submission's group commits, one signature for the group
    /// (`Store::submit_unsigned`).
    Unsigned(Box<Unsigned>),
}

/// A submission ready to store: everything one commit holds.
#[derive(Debug)]
pub struct Submitted {
    /// The header as built (its body digest set).
    pub header: Header,
    /// The record, its parcel empty: the parcel is [`Submitted::sealing`].
    pub record: OutboundRecord,
    /// The parcel, signed or to be signed.
    pub sealing: Sealing,
    /// One queued delivery per recipient.
    pub deliveries: Vec<Delivery>,
    /// What the message does to its case.
    pub case: CaseChange,
    /// The `submitted` audit entry; without its `envelope_digest` while
    /// the parcel is [`Sealing::Unsigned`] (the store sets it once signed).
    pub entry: Entry,
}

/// Builds an officer's submission `s`: checks it, signs it or leaves it to
/// be signed with its group ([`SIGN_ALONE_FROM`]), and returns what to
/// store. `stored_case` is the case the submission names
/// as stored, for a readmission message (`None` when there is none).
/// The body's bytes go into the parcel as they are (decoding proves them
/// the message's deterministic encoding), not encoded again.
pub fn submit(
    s: Submission,
    officer: &Officer,
    roster: &dyn Members,
    stored_case: Option<Case>,
    draws: Draws,
    ctx: &SubmitContext<'_>,
) -> Result<Submitted, SubmitRefusal> {
    let now = ctx.now;
    let Submission {
        to,
        kind,
        case_id,
        in_reply_to,
        procedure,
        handling,
        legal_basis,
        expires_in_ms,
        body,
    } = s;
    let encoded = EncodedMessage::decode(kind, body)?;
    if to.is_empty() {
        return Err(SubmitRefusal::NoRecipient);
    }
    for to in &to {
        if !roster.is_member(to) {
            return Err(SubmitRefusal::NotMember {
                to: to.clone(),
                version: roster.version(),
            });
        }
        if !roster.accepts(to, kind) {
            return Err(SubmitRefusal::KindNotAccepted {
                to: to.clone(),
                kind,
            });
        }
    }
    let mut to = to;
    to.sort();
    to.dedup();
    // Readmission messages must fit their case; the case is updated in the
    // same commit as the message.
    let in_case = cases::is_case_kind(kind);
    if in_case {
        cases::check_outgoing(
            ctx.me,
            encoded.message(),
            case_id.as_ref(),
            &to,
            stored_case.as_ref(),
            ctx.agreements,
        )?;
    }
    let header = Header {
        id: MessageId::new_v7(now.0, draws.id),
        kind,
        from: ctx.me.clone(),
        to: to.clone(),
        created_at: now,
        expires_at: now.plus_millis(expires_in_ms.unwrap_or(ctx.default_expiry_ms)),
        case_id,
        in_reply_to,
        procedure,
        handling,
        legal_basis,
        body_digest: kurir_proto::Digest([0; 32]),
    };
    let (unsigned, message) = prepare(header.clone(), encoded, draws.salt)?;
    let size = unsigned.parcel_len();
    if size > ctx.max_parcel_bytes {
        return Err(SubmitRefusal::TooLarge {
            size,
            max: ctx.max_parcel_bytes,
        });
    }
    let header = unsigned.header().clone();
    let (sealing, envelope_digest) = if ctx.sign_in_batches && size < SIGN_ALONE_FROM {
        (Sealing::Unsigned(Box::new(unsigned)), None)
    } else {
        let parcel = sign_prepared(vec![unsigned], ctx.message_key)?
            .pop()
            .ok_or_else(|| SealError::Cose("signing gave no parcel".into()))?;
        let digest = parcel.envelope_digest();
        (Sealing::Signed(parcel.to_bytes()), Some(digest))
    };
    let entry = events::submitted(now, &header, envelope_digest, &to, officer);
    let case = if in_case {
        cases::sent(&header, &message, stored_case, now, ctx.agreements)
    } else {
        CaseChange::Unchanged
    };
    drop(message);
    let deliveries: Vec<Delivery> = to
        .iter()
        .map(|p| Delivery::queued(header.id, p.clone(), header.expires_at))
        .collect();
    let record = OutboundRecord {
        msg_id: header.id,
        kind: header.kind,
        to,
        case_id: header.case_id.clone(),
        created_at: now,
        expires_at: header.expires_at,
        submitted_by: officer.name.clone(),
        parcel: Vec::new(),
        erased: None,
    };
    Ok(Submitted {
        header,
        record,
        sealing,
        deliveries,
        case,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{a, agreements, at, open};
    use kurir_proto::api::CaseState;
    use kurir_proto::audit::Event;
    use kurir_proto::message::{Handling, Message, Procedure, examples};
    use kurir_proto::{CaseId, KeyId, KeyRing, PublicKey, verify};

    /// A roster of RS.MUP, BA.SPS and ME.UP; ME.UP takes no readmission
    /// requests.
    struct Roster {
        ring: KeyRing,
    }

    impl kurir_proto::KeyLookup for Roster {
        fn lookup(&self, kid: &KeyId) -> Option<PublicKey> {
            self.ring.lookup(kid)
        }
    }

    impl Federation for Roster {
        fn accepts(&self, member: &AuthorityId, kind: MessageKind) -> bool {
            !(member == &a("ME.UP") && kind == MessageKind::ReadmissionRequest)
        }
    }

    impl Members for Roster {
        fn version(&self) -> u64 {
            4
        }

        fn is_member(&self, authority: &AuthorityId) -> bool {
            ["RS.MUP", "BA.SPS", "ME.UP"].contains(&authority.as_str())
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn roster() -> Roster {
        let mut ring = KeyRing::new();
        ring.insert(PublicKey {
            authority: a("RS.MUP"),
            key: key().verifying_key(),
            valid_from: Timestamp(0),
            valid_until: None,
            revoked_at: None,
        });
        Roster { ring }
    }

    fn officer() -> Officer {
        Officer {
            authority: a("RS.MUP"),
            name: "Ana Example".into(),
            role: kurir_certs::officer::Role::Officer,
            serial: "0a1b".into(),
        }
    }

    const DRAWS: Draws = Draws {
        id: [9; 10],
        salt: [3; 32],
    };

    fn notice(to: &[&str]) -> Submission {
        Submission {
            to: to.iter().map(|t| a(t)).collect(),
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            expires_in_ms: None,
            body: Message::OperationalNotice(examples::notice())
                .encode()
                .unwrap(),
        }
    }

    fn request(case_id: &str) -> Submission {
        Submission {
            kind: MessageKind::ReadmissionRequest,
            case_id: Some(CaseId::parse(case_id).unwrap()),
            procedure: Some(Procedure::Standard),
            handling: Handling::H2,
            legal_basis: Some("Readmission agreement, art. 5".into()),
            body: Message::ReadmissionRequest(Box::new(examples::readmission_request()))
                .encode()
                .unwrap(),
            ..notice(&["BA.SPS"])
        }
    }

    fn go(s: Submission, stored: Option<Case>, max: usize) -> Result<Submitted, SubmitRefusal> {
        go_batched(s, stored, max, true)
    }

    fn go_batched(
        s: Submission,
        stored: Option<Case>,
        max: usize,
        sign_in_batches: bool,
    ) -> Result<Submitted, SubmitRefusal> {
        let me = a("RS.MUP");
        let key = key();
        let ag = agreements();
        let ctx = SubmitContext {
            me: &me,
            now: at("2027-03-01", 9),
            message_key: &key,
            default_expiry_ms: 86_400_000,
            sign_in_batches,
            max_parcel_bytes: max,
            agreements: &ag,
        };
        submit(s, &officer(), &roster(), stored, DRAWS, &ctx)
    }

    fn refused(s: Submission) -> String {
        go(s, None, 1 << 20).unwrap_err().to_string()
    }

    #[test]
    fn a_good_submission_is_signed_queued_and_recorded() {
        let now = at("2027-03-01", 9);
        let s = go(notice(&["ME.UP", "BA.SPS", "ME.UP"]), None, 1 << 20).unwrap();
        // Recipients sorted, once each.
        let to = vec![a("BA.SPS"), a("ME.UP")];
        assert_eq!(s.header.to, to);
        assert_eq!(s.header.id, MessageId::new_v7(now.0, [9; 10]));
        assert_eq!(s.header.from, a("RS.MUP"));
        assert_eq!(s.header.created_at, now);
        assert_eq!(s.header.expires_at, now.plus_millis(86_400_000));
        assert_eq!(s.record.msg_id, s.header.id);
        assert_eq!(s.record.to, to);
        assert_eq!(s.record.submitted_by, "Ana Example");
        assert_eq!(s.record.erased, None);
        let peers: Vec<_> = s.deliveries.iter().map(|d| d.peer.clone()).collect();
        assert_eq!(peers, to);
        assert!(
            s.deliveries
                .iter()
                .all(|d| d.state == super::super::delivery::DeliveryState::Queued
                    && d.attempts == 0
                    && d.expires_at == s.header.expires_at)
        );
        assert_eq!(s.case, CaseChange::Unchanged);
        // A small parcel is left to be signed with its group: signed, it
        // is this relay's and carries the body.
        let Sealing::Unsigned(unsigned) = &s.sealing else {
            panic!("{:?}", s.sealing)
        };
        assert_eq!(unsigned.header(), &s.header);
        assert!(s.record.parcel.is_empty(), "the parcel is in `sealing`");
        let parcel = kurir_proto::sign_prepared(vec![(**unsigned).clone()], &key())
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(parcel.to_bytes().len(), unsigned.parcel_len());
        let v = verify(parcel, &roster()).unwrap();
        assert_eq!(v.header, s.header);
        assert_eq!(v.message, Message::OperationalNotice(examples::notice()));
        assert_eq!(s.entry.event, Event::Submitted);
        assert_eq!(s.entry.msg_id, Some(s.header.id));
        assert_eq!(
            s.entry.envelope_digest, None,
            "set by the store once signed"
        );
        assert_eq!(s.entry.officer.as_deref(), Some("0a1b"));
        assert_eq!(
            s.entry.code.as_deref(),
            Some("operational-notice to BA.SPS,ME.UP")
        );
        // The same draws and time give the same parcel.
        let again = go(notice(&["BA.SPS", "ME.UP"]), None, 1 << 20).unwrap();
        let Sealing::Unsigned(same) = &again.sealing else {
            panic!("{:?}", again.sealing)
        };
        assert_eq!(same, unsigned);
    }

    /// With `sign_in_batches` off, a small parcel is signed at once too,
    /// in the single form.
    #[test]
    fn without_batches_every_parcel_is_signed_alone() {
        let s = go_batched(notice(&["BA.SPS"]), None, 1 << 20, false).unwrap();
        let Sealing::Signed(bytes) = &s.sealing else {
            panic!("{:?}", s.sealing)
        };
        let parcel = kurir_proto::Parcel::from_bytes(bytes).unwrap();
        assert_eq!(
            kurir_proto::cose::content_type(&parcel.envelope).as_deref(),
            Some(kurir_proto::cose::CONTENT_TYPE_HEADER)
        );
        assert_eq!(s.entry.envelope_digest, Some(parcel.envelope_digest()));
        assert_eq!(verify(parcel, &roster()).unwrap().header, s.header);
    }

    /// A parcel of [`SIGN_ALONE_FROM`] bytes or more is signed at once,
    /// alone, and its entry names its envelope.
    #[test]
    fn a_large_parcel_is_signed_alone_at_once() {
        let mut s = notice(&["BA.SPS"]);
        let mut message = Message::decode(MessageKind::OperationalNotice, &s.body).unwrap();
        if let Message::OperationalNotice(n) = &mut message {
            n.text = "x".repeat(SIGN_ALONE_FROM);
        }
        s.body = message.encode().unwrap();
        let s = go(s, None, 1 << 20).unwrap();
        let Sealing::Signed(bytes) = &s.sealing else {
            panic!("{:?}", s.sealing)
        };
        assert!(bytes.len() >= SIGN_ALONE_FROM);
        let parcel = kurir_proto::Parcel::from_bytes(bytes).unwrap();
        assert_eq!(s.entry.envelope_digest, Some(parcel.envelope_digest()));
        let v = verify(parcel, &roster()).unwrap();
        assert_eq!(v.header, s.header);
        assert_eq!(v.message, message);
        // Over the limit, refused before anything is signed.
        let e = go(
            Submission {
                body: v.parcel.body,
                ..notice(&["BA.SPS"])
            },
            None,
            SIGN_ALONE_FROM,
        )
        .unwrap_err();
        assert!(matches!(e, SubmitRefusal::TooLarge { .. }), "{e}");
    }

    #[test]
    fn the_officers_expiry_wins_over_the_default() {
        let now = at("2027-03-01", 9);
        let s = go(
            Submission {
                expires_in_ms: Some(5_000),
                ..notice(&["BA.SPS"])
            },
            None,
            1 << 20,
        )
        .unwrap();
        assert_eq!(s.header.expires_at, now.plus_millis(5_000));
        assert_eq!(s.deliveries[0].expires_at, now.plus_millis(5_000));
    }

    #[test]
    fn a_request_opens_its_case_in_the_same_commit() {
        let s = go(request("RS.MUP:2026-7"), None, 1 << 20).unwrap();
        let CaseChange::Opened(case) = &s.case else {
            panic!("{:?}", s.case)
        };
        assert_eq!(case.request, s.header.id);
        assert_eq!(case.state, CaseState::AwaitingReply);
        assert_eq!(case.requested, a("BA.SPS"));
        assert_eq!(s.entry.case_id, s.header.case_id);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert_eq!(
            refused(notice(&[])),
            "no recipient: name at least one authority"
        );
        assert_eq!(
            refused(notice(&["BA.SPS", "XK.MPB"])),
            "XK.MPB is not a member of the federation (roster version 4)"
        );
        assert_eq!(
            refused(Submission {
                to: vec![a("ME.UP")],
                ..request("RS.MUP:2026-7")
            }),
            "ME.UP does not accept readmission-request messages (see the roster)"
        );
        let garbage = Submission {
            body: vec![0xff],
            ..notice(&["BA.SPS"])
        };
        assert!(matches!(
            go(garbage, None, 1 << 20),
            Err(SubmitRefusal::Body(_))
        ));
        let err = go(
            Submission {
                procedure: Some(Procedure::Accelerated),
                ..request("RS.MUP:2026-7")
            },
            None,
            1 << 20,
        )
        .unwrap_err();
        assert!(matches!(err, SubmitRefusal::Seal(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "cannot seal: the header's procedure (accelerated) differs from the request's \
             (standard)"
        );
        let err = go(notice(&["BA.SPS"]), None, 100).unwrap_err();
        assert!(
            matches!(err, SubmitRefusal::TooLarge { max: 100, .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("the message is ")
                && err
                    .to_string()
                    .ends_with(" bytes, over the limit of 100 (attachments too large?)"),
            "{err}"
        );
    }

    #[test]
    fn case_problems_are_refused_before_signing() {
        assert_eq!(
            refused(Submission {
                case_id: None,
                ..request("RS.MUP:2026-7")
            }),
            "a readmission-request must name its case"
        );
        let existing = open(Procedure::Standard, at("2027-03-01", 8));
        let err = go(request("RS.MUP:2026-7"), Some(existing), 1 << 20).unwrap_err();
        assert!(matches!(
            err,
            SubmitRefusal::Case(CaseRefusal::Exists { .. })
        ));
        assert_eq!(
            err.to_string(),
            "case RS.MUP:2026-7 exists already; a new request needs a new case id"
        );
        // A notice naming a case is no case message: no case rules.
        let s = go(
            Submission {
                case_id: Some(CaseId::parse("BA.SPS:1").unwrap()),
                ..notice(&["BA.SPS"])
            },
            None,
            1 << 20,
        )
        .unwrap();
        assert_eq!(s.case, CaseChange::Unchanged);
    }
}
