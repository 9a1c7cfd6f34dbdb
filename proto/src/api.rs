//! The officer API: what the `kurir` CLI and its own relay say to each other
//! on ALPN `kurir-client/1`.
//!
//! Each request opens one bidirectional QUIC stream and sends one frame
//! holding a [`Request`]; the relay answers with one frame holding a
//! [`Response`] and finishes the stream, except for [`Request::Subscribe`],
//! which is answered with [`Response::Subscribed`] once the subscription is
//! in place, then a stream of [`Response::Event`] frames until either side
//! closes it, and [`Request::SubmitWait`], answered with two frames (the
//! submission's answer, then the delivery status). Both are deterministic CBOR maps whose `op` / `type` field
//! names the variant (see `docs/PROTOCOL.md` §15).
//!
//! The officer's identity and role come from the TLS client certificate,
//! never from the request.

use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};
use crate::ids::{AuthorityId, CaseId, MessageId};
use crate::message::{Handling, MessageKind, Procedure};
use crate::time::{Date, Timestamp};

/// The ALPN protocol id of peer relays.
pub const ALPN_PEER: &[u8] = b"kurir/1";
/// The ALPN protocol id of officers.
pub const ALPN_CLIENT: &[u8] = b"kurir-client/1";

/// The longest a [`Request::Status`] waits for its deliveries to become
/// final before the relay answers with the status as it is (60 s).
pub const MAX_STATUS_WAIT_MS: u64 = 60_000;

/// A request from an officer's client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Who am I, as the relay sees my certificate?
    Whoami,
    /// Sign and send a message. The relay fills in id, sender, times and
    /// digest, and signs with the authority's message key.
    Submit(Submission),
    /// [`Request::Submit`], then the delivery status on the same stream:
    /// the relay answers [`Response::Submitted`] (or the refusal) as it
    /// answers `submit`, then, once every delivery is final or after
    /// `wait_ms` (capped at [`MAX_STATUS_WAIT_MS`]), [`Response::Status`] as
    /// it answers `status` with that wait, and finishes the stream. One
    /// exchange for a sender who waits for the receipts.
    SubmitWait {
        /// What to send.
        submission: Submission,
        /// The longest to wait for every delivery to become final.
        wait_ms: u64,
    },
    /// List received messages.
    Inbox {
        /// Only those no officer has read yet.
        #[serde(default)]
        unread_only: bool,
        /// Only this kind.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<MessageKind>,
        /// Only this case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        case_id: Option<CaseId>,
    },
    /// One received (or sent) message: in full, or only its signed
    /// envelope. The body goes only to an officer whose role and name the
    /// message's handling level allows (`docs/PROTOCOL.md` §15), and every
    /// body given or refused is in the audit log; the envelope goes to
    /// every role and is no read of the body.
    Fetch {
        /// The message.
        msg_id: MessageId,
        /// Only the envelope and metadata, not the body. Absent on the wire
        /// when false (what clients sent before the flag existed).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        envelope_only: bool,
    },
    /// Mark a received message read.
    MarkRead {
        /// The message.
        msg_id: MessageId,
    },
    /// Delivery status of a sent message.
    Status {
        /// The message.
        msg_id: MessageId,
        /// Answer only once every delivery is final (delivered, rejected or
        /// expired), or after this many ms, whichever comes first; at once
        /// when absent. The relay caps it at [`MAX_STATUS_WAIT_MS`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_ms: Option<u64>,
    },
    /// Every sent message, newest last.
    Sent,
    /// A readmission case: its thread of messages and its deadlines.
    Case {
        /// The case.
        case_id: CaseId,
    },
    /// Open deadlines of every case this authority takes part in.
    Deadlines {
        /// Only those already past.
        #[serde(default)]
        overdue_only: bool,
    },
    /// Receive an [`Response::Event`] for each message that arrives from now on.
    Subscribe,
    /// The relay's audit log as an export bundle (auditor and admin roles).
    AuditExport,
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Recipients.
    pub to: Vec<AuthorityId>,
    /// The kind of `body`.
    pub kind: MessageKind,
    /// The case, where the kind needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    /// The message answered, where the kind needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// The readmission procedure, for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<Procedure>,
    /// Sensitivity.
    pub handling: Handling,
    /// Legal basis for sending the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// Expiry from now, in ms; the relay's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
    /// The body: deterministic CBOR of the kind's struct ([`crate::Message::encode`]).
    #[serde(with = "cbor::bytes")]
    pub body: Vec<u8>,
}

/// One line of the inbox or of the sent list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The message.
    pub msg_id: MessageId,
    /// Kind.
    pub kind: MessageKind,
    /// Sender.
    pub from: AuthorityId,
    /// Recipients.
    pub to: Vec<AuthorityId>,
    /// Case, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    /// Answered message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// When the sender created it.
    pub created_at: Timestamp,
    /// When this relay stored it (received, or submitted).
    pub stored_at: Timestamp,
    /// When an officer first read it (received messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Timestamp>,
}

impl DeliveryStatus {
    /// Whether the delivery is over: `delivered`, `rejected`, `expired` or
    /// `failed`.
    pub fn is_final(&self) -> bool {
        matches!(
            self.state.as_str(),
            "delivered" | "rejected" | "expired" | "failed"
        )
    }
}

impl Summary {
    /// The summary of a message with this header, stored (received or
    /// submitted) at `stored_at`.
    pub fn of(h: &crate::Header, stored_at: Timestamp, read_at: Option<Timestamp>) -> Summary {
        Summary {
            msg_id: h.id,
            kind: h.kind,
            from: h.from.clone(),
            to: h.to.clone(),
            case_id: h.case_id.clone(),
            in_reply_to: h.in_reply_to,
            created_at: h.created_at,
            stored_at,
            read_at,
        }
    }
}

/// Delivery of a sent message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryStatus {
    /// The recipient.
    pub peer: AuthorityId,
    /// queued, sending, retrying, delivered, rejected, expired or failed.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the state was reached (delivered, rejected, expired, failed)
    /// or is next due (retrying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// Reason code (rejected: the recipient's; failed: `not_a_member`) or
    /// last error (retrying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The recipient's signed receipt or rejection.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub receipt: Option<Vec<u8>>,
    /// Once the recipient's checkpoints cover the entry its receipt names:
    /// the inclusion proof (`kurir_proto::audit::InclusionProof` bytes).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub inclusion: Option<Vec<u8>>,
}

/// Where a readmission case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Request sent; the requested authority has not answered.
    AwaitingReply,
    /// Readmission confirmed by the requested authority.
    Confirmed,
    /// Readmission rejected by the requested authority.
    Rejected,
    /// No reply by the due date: deemed accepted under the agreement.
    DeemedAccepted,
    /// A transfer has been arranged.
    TransferArranged,
    /// The person was handed over: the case is closed.
    HandedOver,
}

impl CaseState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::AwaitingReply => "awaiting_reply",
            CaseState::Confirmed => "confirmed",
            CaseState::Rejected => "rejected",
            CaseState::DeemedAccepted => "deemed_accepted",
            CaseState::TransferArranged => "transfer_arranged",
            CaseState::HandedOver => "handed_over",
        }
    }

    /// Whether nothing more is expected in the case.
    pub fn is_closed(self) -> bool {
        matches!(self, CaseState::Rejected | CaseState::HandedOver)
    }
}

/// Something that happened in a case, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEvent {
    /// When (the relay's clock).
    pub at: Timestamp,
    /// What, as a short sentence (ids and dates, no personal data).
    pub what: String,
}

/// Which deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// The requested authority must reply to the readmission request.
    Reply,
    /// The transfer must take place after acceptance.
    Transfer,
}

/// An open deadline of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    /// The case.
    pub case_id: CaseId,
    /// Which deadline.
    pub kind: DeadlineKind,
    /// The last day on which it is met (UTC calendar date).
    pub due: Date,
    /// Who must act: the requested authority for a reply, the requesting
    /// one for a transfer.
    pub party: AuthorityId,
    /// The other authority of the case.
    pub counterpart: AuthorityId,
    /// Days from today to `due` (negative when overdue).
    pub days_left: i64,
    /// Past its due date.
    pub overdue: bool,
}

/// A readmission case as this relay knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseView {
    /// The case.
    pub case_id: CaseId,
    /// The authority that asked for readmission.
    pub requesting: AuthorityId,
    /// The authority asked to readmit.
    pub requested: AuthorityId,
    /// The procedure.
    pub procedure: Procedure,
    /// Where it stands.
    pub state: CaseState,
    /// The reply deadline (with any extension), while it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_due: Option<Date>,
    /// Extension days granted so far.
    pub extension_days: u16,
    /// The transfer deadline, once readmission is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_due: Option<Date>,
    /// Every message of the case, in order.
    pub messages: Vec<Summary>,
    /// What happened, in order (including deadline events).
    pub events: Vec<CaseEvent>,
}

/// When and under which retention rule a body was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasedBody {
    /// When.
    pub at: Timestamp,
    /// The rule, e.g. `operational-notice: 30 days after it was read`.
    pub policy: String,
}

/// Error classes, so the CLI can map them to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule; fix it.
    BadRequest,
    /// The officer's role does not allow it.
    Forbidden,
    /// No such message.
    NotFound,
    /// The relay cannot do it now (storage, shutdown); try again.
    Unavailable,
}

/// The relay's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// Answer to [`Request::Whoami`].
    Identity {
        /// The relay's authority.
        authority: AuthorityId,
        /// The officer's name from the certificate.
        officer: String,
        /// officer, auditor or admin.
        role: String,
    },
    /// The message is signed and durably queued for delivery.
    Submitted {
        /// Its id.
        msg_id: MessageId,
        /// Its `created_at`.
        created_at: Timestamp,
    },
    /// Answer to [`Request::Inbox`] and [`Request::Sent`].
    List {
        /// The messages.
        items: Vec<Summary>,
    },
    /// Answer to [`Request::Fetch`]: the parcel as received or sent, for the
    /// client to verify and show; `receipt` is the receipt this relay issued
    /// (received messages). When the body was erased under the retention
    /// policy, `erased` says when and why and `parcel` holds only the signed
    /// envelope (which still verifies).
    Message {
        /// The summary.
        summary: Summary,
        /// The parcel bytes, or only the envelope when `erased` or
        /// `envelope_only` is set.
        #[serde(with = "cbor::bytes")]
        parcel: Vec<u8>,
        /// The receipt this relay sent back, for received messages.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
        receipt: Option<Vec<u8>>,
        /// Set when the body was erased.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        erased: Option<ErasedBody>,
        /// Set when only the envelope was asked for (`Fetch` with
        /// `envelope_only`): `parcel` holds the envelope alone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        envelope_only: bool,
    },
    /// Answer to [`Request::MarkRead`].
    Marked {
        /// The message.
        msg_id: MessageId,
        /// When it was first read (earlier marks stay).
        read_at: Timestamp,
    },
    /// Answer to [`Request::Status`].
    Status {
        /// The message.
        summary: Summary,
        /// One per recipient.
        deliveries: Vec<DeliveryStatus>,
    },
    /// Answer to [`Request::Case`].
    Case(CaseView),
    /// Answer to [`Request::Deadlines`].
    Deadlines {
        /// Open deadlines, soonest first.
        items: Vec<Deadline>,
    },
    /// Answer to [`Request::AuditExport`]: a [`crate::audit::Bundle`].
    AuditBundle {
        /// The deterministic-CBOR bundle (`bundle.cbor`).
        #[serde(with = "cbor::bytes")]
        bundle: Vec<u8>,
    },
    /// The first answer to [`Request::Subscribe`]: the subscription is in
    /// place, and every message that arrives from now on comes as an
    /// [`Response::Event`]. (A relay before it sent none: a message that
    /// arrived while the request was on its way could be missed.)
    Subscribed,
    /// A new message arrived (after [`Request::Subscribe`]).
    Event {
        /// The message.
        summary: Summary,
    },
    /// The request failed.
    Error {
        /// The class.
        code: ErrorCode,
        /// What went wrong and what to do.
        message: String,
    },
}

impl Request {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Request, CborError> {
        cbor::from_slice(bytes)
    }
}

impl Response {
    /// Deterministic CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::to_vec(self)
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Response, CborError> {
        cbor::from_slice(bytes)
    }

    /// An error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

mod opt_bytes {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        crate::cbor::bytes::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> MessageId {
        MessageId::new_v7(1_795_874_050_000, [1; 10])
    }

    #[test]
    fn a_status_request_without_a_wait_is_the_same_bytes_as_before() {
        // Clients that never wait send exactly what they sent before
        // `wait_ms` existed, so relays of either version understand them.
        let bytes = Request::Status {
            msg_id: id(),
            wait_ms: None,
        }
        .encode()
        .unwrap();
        let value: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        let keys: Vec<String> = value
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_text().unwrap().to_owned())
            .collect();
        assert_eq!(keys, ["op", "msg_id"]);
    }

    #[test]
    fn a_body_fetch_is_the_same_bytes_as_before_the_envelope_flag() {
        let keys = |r: &Request| -> Vec<String> {
            let bytes = r.encode().unwrap();
            let value: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
            value
                .as_map()
                .unwrap()
                .iter()
                .map(|(k, _)| k.as_text().unwrap().to_owned())
                .collect()
        };
        let body = Request::Fetch {
            msg_id: id(),
            envelope_only: false,
        };
        assert_eq!(keys(&body), ["op", "msg_id"]);
        let envelope = Request::Fetch {
            msg_id: id(),
            envelope_only: true,
        };
        assert_eq!(keys(&envelope), ["op", "msg_id", "envelope_only"]);
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let submission = Submission {
            to: vec![AuthorityId::parse("ME.UP").unwrap()],
            kind: MessageKind::OperationalNotice,
            case_id: None,
            in_reply_to: None,
            procedure: None,
            handling: Handling::H1,
            legal_basis: None,
            expires_in_ms: Some(5),
            body: vec![0xa0],
        };
        let requests = [
            Request::Whoami,
            Request::Subscribe,
            Request::Sent,
            Request::Deadlines { overdue_only: true },
            Request::Case {
                case_id: CaseId::parse("RS.MUP:2026-1").unwrap(),
            },
            Request::Inbox {
                unread_only: true,
                kind: Some(MessageKind::ReadmissionRequest),
                case_id: None,
            },
            Request::Fetch {
                msg_id: id(),
                envelope_only: false,
            },
            Request::Fetch {
                msg_id: id(),
                envelope_only: true,
            },
            Request::Status {
                msg_id: id(),
                wait_ms: None,
            },
            Request::Status {
                msg_id: id(),
                wait_ms: Some(250),
            },
            Request::Submit(submission.clone()),
            Request::SubmitWait {
                submission,
                wait_ms: 30_000,
            },
        ];
        for r in requests {
            let bytes = r.encode().unwrap();
            assert_eq!(Request::decode(&bytes).unwrap(), r);
        }
        let summary = Summary {
            msg_id: id(),
            kind: MessageKind::OperationalNotice,
            from: AuthorityId::parse("RS.MUP").unwrap(),
            to: vec![AuthorityId::parse("ME.UP").unwrap()],
            case_id: None,
            in_reply_to: None,
            created_at: Timestamp(1),
            stored_at: Timestamp(2),
            read_at: None,
        };
        let case = CaseView {
            case_id: CaseId::parse("RS.MUP:2026-1").unwrap(),
            requesting: AuthorityId::parse("RS.MUP").unwrap(),
            requested: AuthorityId::parse("BA.SPS").unwrap(),
            procedure: Procedure::Accelerated,
            state: CaseState::AwaitingReply,
            reply_due: Some(Date::EPOCH),
            extension_days: 0,
            transfer_due: None,
            messages: vec![summary.clone()],
            events: vec![CaseEvent {
                at: Timestamp(5),
                what: "request received".into(),
            }],
        };
        let responses = [
            Response::Case(case),
            Response::Deadlines {
                items: vec![Deadline {
                    case_id: CaseId::parse("RS.MUP:2026-1").unwrap(),
                    kind: DeadlineKind::Reply,
                    due: Date::EPOCH,
                    party: AuthorityId::parse("BA.SPS").unwrap(),
                    counterpart: AuthorityId::parse("RS.MUP").unwrap(),
                    days_left: -2,
                    overdue: true,
                }],
            },
            Response::error(ErrorCode::Forbidden, "auditors cannot submit"),
            Response::Message {
                summary: summary.clone(),
                parcel: vec![1, 2],
                receipt: Some(vec![3]),
                erased: Some(ErasedBody {
                    at: Timestamp(9),
                    policy: "operational-notice: 30 days after it was read".into(),
                }),
                envelope_only: false,
            },
            Response::Message {
                summary: summary.clone(),
                parcel: vec![1],
                receipt: None,
                erased: None,
                envelope_only: true,
            },
            Response::Status {
                summary,
                deliveries: vec![DeliveryStatus {
                    peer: AuthorityId::parse("ME.UP").unwrap(),
                    state: "delivered".into(),
                    attempts: 1,
                    at: Some(Timestamp(3)),
                    reason: None,
                    receipt: Some(vec![4]),
                    inclusion: Some(vec![5]),
                }],
            },
        ];
        for r in responses {
            let bytes = r.encode().unwrap();
            assert_eq!(Response::decode(&bytes).unwrap(), r);
        }
    }

    #[test]
    fn unknown_operations_and_fields_are_refused() {
        let v = ciborium::value::Value::Map(vec![("op".into(), "delete_everything".into())]);
        let bytes = cbor::encode_value(&v).unwrap();
        assert!(Request::decode(&bytes).is_err());
        let v = ciborium::value::Value::Map(vec![
            ("op".into(), "whoami".into()),
            ("as".into(), "admin".into()),
        ]);
        let bytes = cbor::encode_value(&v).unwrap();
        assert!(Request::decode(&bytes).is_err());
    }
}
