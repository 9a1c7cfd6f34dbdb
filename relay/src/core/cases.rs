//! The rules of readmission cases, in both directions: what an officer may
//! send in a case ([`check_outgoing`], before the message is signed), what
//! a peer may send ([`check_incoming`]: the same rules from the other side,
//! before the parcel is accepted), and what a message sent or received does
//! to its case ([`sent`], [`received`]: a request opens the case, any other
//! message is recorded in it). The case itself, its clock and its state
//! changes are [`super::deadline`].
//!
//! Pure: the driver reads the case as stored (holding its cases lock, so
//! cases change one message at a time) and stores what these functions
//! return in the same commit as the message.

use kurir_proto::api::{CaseState, Summary};
use kurir_proto::message::{Message, MessageKind};
use kurir_proto::{AuthorityId, CaseId, Header, RejectCode, Timestamp};

use super::deadline::{Agreements, Case};

/// Whether messages of this kind belong to a readmission case.
pub fn is_case_kind(kind: MessageKind) -> bool {
    kind.needs_case()
}

/// Why an officer's readmission message may not be sent in its case. The
/// text tells the officer what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaseRefusal {
    /// A readmission message without a case id.
    #[error("a {kind} must name its case")]
    NoCaseId {
        /// The message's kind.
        kind: MessageKind,
    },
    /// A request for a case that exists already.
    #[error("case {case_id} exists already; a new request needs a new case id")]
    Exists {
        /// The case.
        case_id: CaseId,
    },
    /// A request opening a case under another authority's prefix.
    #[error("case {case_id} belongs to {owner}; cases this relay opens start with {me}:")]
    NotOurs {
        /// The case.
        case_id: CaseId,
        /// The authority its id names.
        owner: AuthorityId,
        /// This relay's authority.
        me: AuthorityId,
    },
    /// A message other than a request for a case this relay does not know.
    #[error(
        "no readmission case {case_id} at this relay: check the case id (kurir case, kurir inbox)"
    )]
    Unknown {
        /// The case.
        case_id: CaseId,
    },
    /// Recipients other than the case's other party alone.
    #[error("messages of case {case_id} go to {other} only")]
    OtherParty {
        /// The case.
        case_id: CaseId,
        /// The other party of the case.
        other: AuthorityId,
    },
    /// The case is closed.
    #[error(
        "case {case_id} is closed ({}); nothing more can be sent in it",
        .state.as_str()
    )]
    Closed {
        /// The case.
        case_id: CaseId,
        /// Its state.
        state: CaseState,
    },
    /// A second request in a case.
    #[error("case {case_id} already has a readmission request; open a new case")]
    HasRequest {
        /// The case.
        case_id: CaseId,
    },
    /// A reply or an extension request from the requesting side.
    #[error("only {requested} (the requested authority) can send this in case {case_id}")]
    OnlyRequested {
        /// The case.
        case_id: CaseId,
        /// The requested authority.
        requested: AuthorityId,
    },
    /// A second reply.
    #[error("case {case_id} has been answered already ({})", .state.as_str())]
    Answered {
        /// The case.
        case_id: CaseId,
        /// Its state.
        state: CaseState,
    },
    /// An extension request once the request was answered or deemed accepted.
    #[error("case {case_id} is not awaiting a reply ({})", .state.as_str())]
    NotAwaitingReply {
        /// The case.
        case_id: CaseId,
        /// Its state.
        state: CaseState,
    },
    /// An extension request over what the agreement leaves.
    #[error(
        "an extension of {days} days is over the agreed maximum: {left} of {max} days are left"
    )]
    ExtensionTooLong {
        /// The days asked for.
        days: u16,
        /// The days still left.
        left: u16,
        /// The agreed maximum in total.
        max: u16,
    },
    /// An extension decision from the requested side.
    #[error(
        "only {requesting} (the requesting authority) decides on an extension in case {case_id}"
    )]
    OnlyRequesting {
        /// The case.
        case_id: CaseId,
        /// The requesting authority.
        requesting: AuthorityId,
    },
    /// An extension granted over what the agreement leaves.
    #[error("granting {days} days is over the agreed maximum: {left} of {max} days are left")]
    GrantTooLong {
        /// The days granted.
        days: u16,
        /// The days still left.
        left: u16,
        /// The agreed maximum in total.
        max: u16,
    },
    /// A peer's message in a case it is not the other party of.
    #[error(
        "{from} is not a party to case {case_id} (between {requesting} and {requested}); \
         only {requesting} and {requested} send messages in it"
    )]
    NotAParty {
        /// The case.
        case_id: CaseId,
        /// The peer that sent the message.
        from: AuthorityId,
        /// The requesting authority.
        requesting: AuthorityId,
        /// The requested authority.
        requested: AuthorityId,
    },
    /// A peer's request opening a case under another authority's prefix.
    #[error(
        "case {case_id} belongs to {owner}; a case {from} opens must have an id starting \
         with {from}:"
    )]
    ForeignCaseId {
        /// The case.
        case_id: CaseId,
        /// The authority its id names.
        owner: AuthorityId,
        /// The peer that sent the request.
        from: AuthorityId,
    },
    /// A transfer message in a case not accepted.
    #[error(
        "case {case_id} is not accepted ({}); a transfer needs a confirmed or deemed-accepted case",
        .state.as_str()
    )]
    NotAccepted {
        /// The case.
        case_id: CaseId,
        /// Its state.
        state: CaseState,
    },
}

impl CaseRefusal {
    /// The reason code of the signed rejection when a peer's message is
    /// refused for this reason: `not_a_party` when the sender has no part
    /// in the case (or claims another's case id), `case_conflict` when the
    /// message does not fit the case.
    pub fn code(&self) -> RejectCode {
        match self {
            CaseRefusal::NotAParty { .. } | CaseRefusal::ForeignCaseId { .. } => {
                RejectCode::NotAParty
            }
            _ => RejectCode::CaseConflict,
        }
    }
}

/// Checks a readmission message this relay is about to send in the case
/// `case_id` to `to` (sorted, without duplicates), against the case as
/// stored (`stored`, read with that id): a request opens a new case of
/// this relay's own, any other message goes to the case's other party
/// alone and must fit the case ([`Case::check_outgoing`]).
pub fn check_outgoing(
    me: &AuthorityId,
    message: &Message,
    case_id: Option<&CaseId>,
    to: &[AuthorityId],
    stored: Option<&Case>,
    agreements: &Agreements,
) -> Result<(), CaseRefusal> {
    let case_id = case_id.ok_or(CaseRefusal::NoCaseId {
        kind: message.kind(),
    })?;
    match (message, stored) {
        (Message::ReadmissionRequest(_), Some(_)) => Err(CaseRefusal::Exists {
            case_id: case_id.clone(),
        }),
        (Message::ReadmissionRequest(_), None) => {
            if case_id.authority() != *me {
                return Err(CaseRefusal::NotOurs {
                    case_id: case_id.clone(),
                    owner: case_id.authority(),
                    me: me.clone(),
                });
            }
            Ok(())
        }
        (_, None) => Err(CaseRefusal::Unknown {
            case_id: case_id.clone(),
        }),
        (_, Some(case)) => {
            let other = if case.requesting == *me {
                &case.requested
            } else {
                &case.requesting
            };
            if to != std::slice::from_ref(other) {
                return Err(CaseRefusal::OtherParty {
                    case_id: case_id.clone(),
                    other: other.clone(),
                });
            }
            case.check_outgoing(me, message, agreements)
        }
    }
}

/// Checks a readmission message a peer sent (`header.from`, already
/// checked to be the TLS peer) to this relay (`me`) at `now`, against the
/// case as stored (`stored`, read with the header's case id): the rules of
/// [`check_outgoing`] from the other side. A request opens a new case in
/// the sender's own namespace and goes to this relay alone; any other
/// message needs a case this relay knows, comes from the case's other
/// party, goes to this relay alone and fits the case as its clock stands
/// at `now` ([`Case::check_outgoing`] with the sender in place of this
/// relay). One exception: a reply that arrives after this relay deemed the
/// request accepted is taken (recorded, the state unchanged), since the
/// sender could not know.
pub fn check_incoming(
    me: &AuthorityId,
    header: &Header,
    message: &Message,
    stored: Option<&Case>,
    now: Timestamp,
    agreements: &Agreements,
) -> Result<(), CaseRefusal> {
    if !is_case_kind(header.kind) {
        return Ok(());
    }
    let case_id = header.case_id.as_ref().ok_or(CaseRefusal::NoCaseId {
        kind: message.kind(),
    })?;
    let from = &header.from;
    let to_me_alone = header.to.as_slice() == std::slice::from_ref(me);
    let only_to_me = || CaseRefusal::OtherParty {
        case_id: case_id.clone(),
        other: me.clone(),
    };
    let Some(case) = stored else {
        return match message {
            Message::ReadmissionRequest(_) if case_id.authority() != *from => {
                Err(CaseRefusal::ForeignCaseId {
                    case_id: case_id.clone(),
                    owner: case_id.authority(),
                    from: from.clone(),
                })
            }
            Message::ReadmissionRequest(_) if !to_me_alone => Err(only_to_me()),
            Message::ReadmissionRequest(_) => Ok(()),
            _ => Err(CaseRefusal::Unknown {
                case_id: case_id.clone(),
            }),
        };
    };
    let other = if case.requesting == *me {
        &case.requested
    } else if case.requested == *me {
        &case.requesting
    } else {
        // Not a case of ours at all (never stored by this relay's rules).
        from
    };
    if from != other || from == me {
        return Err(CaseRefusal::NotAParty {
            case_id: case_id.clone(),
            from: from.clone(),
            requesting: case.requesting.clone(),
            requested: case.requested.clone(),
        });
    }
    if !to_me_alone {
        return Err(only_to_me());
    }
    let mut at_now = case.clone();
    at_now.tick(now, agreements);
    if matches!(message, Message::ReadmissionReply(_))
        && at_now.state == CaseState::DeemedAccepted
        && *from == case.requested
    {
        return Ok(());
    }
    at_now.check_outgoing(from, message, agreements)
}

impl Case {
    /// Checks that a message this relay is about to send fits the case:
    /// the case is open, the sender is the party that may send this kind,
    /// and an extension stays within the agreed maximum.
    pub fn check_outgoing(
        &self,
        me: &AuthorityId,
        message: &Message,
        agreements: &Agreements,
    ) -> Result<(), CaseRefusal> {
        let case_id = || self.case_id.clone();
        if self.state.is_closed() {
            return Err(CaseRefusal::Closed {
                case_id: case_id(),
                state: self.state,
            });
        }
        let requested_side = *me == self.requested;
        let max = agreements
            .between(&self.requesting, &self.requested)
            .max_extension_days;
        match message {
            Message::ReadmissionRequest(_) => Err(CaseRefusal::HasRequest { case_id: case_id() }),
            Message::ReadmissionReply(_) | Message::DeadlineExtensionRequest(_)
                if !requested_side =>
            {
                Err(CaseRefusal::OnlyRequested {
                    case_id: case_id(),
                    requested: self.requested.clone(),
                })
            }
            Message::ReadmissionReply(_) if self.state != CaseState::AwaitingReply => {
                Err(CaseRefusal::Answered {
                    case_id: case_id(),
                    state: self.state,
                })
            }
            Message::DeadlineExtensionRequest(r) => {
                if self.state != CaseState::AwaitingReply {
                    return Err(CaseRefusal::NotAwaitingReply {
                        case_id: case_id(),
                        state: self.state,
                    });
                }
                let left = max.saturating_sub(self.extension_days);
                if r.days > left {
                    return Err(CaseRefusal::ExtensionTooLong {
                        days: r.days,
                        left,
                        max,
                    });
                }
                Ok(())
            }
            Message::DeadlineExtensionDecision(d) => {
                if requested_side {
                    return Err(CaseRefusal::OnlyRequesting {
                        case_id: case_id(),
                        requesting: self.requesting.clone(),
                    });
                }
                let left = max.saturating_sub(self.extension_days);
                if d.granted && d.days > left {
                    return Err(CaseRefusal::GrantTooLong {
                        days: d.days,
                        left,
                        max,
                    });
                }
                Ok(())
            }
            Message::TransferArrangement(_) | Message::HandoverConfirmation(_)
                if !matches!(
                    self.state,
                    CaseState::Confirmed | CaseState::DeemedAccepted | CaseState::TransferArranged
                ) =>
            {
                Err(CaseRefusal::NotAccepted {
                    case_id: case_id(),
                    state: self.state,
                })
            }
            _ => Ok(()),
        }
    }
}

/// What a message does to its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseChange {
    /// Nothing: not a readmission message, or a request that opens no
    /// case (it names no case or no recipient).
    Unchanged,
    /// A readmission request opened this case.
    Opened(Case),
    /// The message was recorded in this case.
    Recorded(Case),
    /// The message names a case this relay does not know: it is kept
    /// without one.
    Unknown(CaseId),
}

impl CaseChange {
    /// The case to store with the message, if any.
    pub fn into_case(self) -> Option<Case> {
        match self {
            CaseChange::Opened(case) | CaseChange::Recorded(case) => Some(case),
            CaseChange::Unchanged | CaseChange::Unknown(_) => None,
        }
    }
}

/// What a message this relay sends at `now` does to its case as stored
/// (after [`check_outgoing`] let it through).
pub fn sent(
    header: &Header,
    message: &Message,
    stored: Option<Case>,
    now: Timestamp,
    agreements: &Agreements,
) -> CaseChange {
    change(header, message, stored, now, agreements)
}

/// What a message received by this relay (`me`) from a peer at `now` does
/// to its case as stored, once [`check_incoming`] let it through; a
/// message that does not may not be accepted, and changes nothing.
pub fn received(
    me: &AuthorityId,
    header: &Header,
    message: &Message,
    stored: Option<Case>,
    now: Timestamp,
    agreements: &Agreements,
) -> Result<CaseChange, CaseRefusal> {
    check_incoming(me, header, message, stored.as_ref(), now, agreements)?;
    Ok(change(header, message, stored, now, agreements))
}

/// Both directions: a request opens its case, any other message is
/// recorded in the case it names.
fn change(
    header: &Header,
    message: &Message,
    stored: Option<Case>,
    now: Timestamp,
    agreements: &Agreements,
) -> CaseChange {
    if !is_case_kind(header.kind) {
        return CaseChange::Unchanged;
    }
    let Some(case_id) = header.case_id.as_ref() else {
        return CaseChange::Unchanged;
    };
    let summary = Summary::of(header, now, None);
    match (message, stored) {
        (Message::ReadmissionRequest(r), None) => {
            match Case::open(header, summary, r.procedure, now, agreements) {
                Some(case) => CaseChange::Opened(case),
                None => CaseChange::Unchanged,
            }
        }
        (_, Some(mut case)) => {
            case.apply(header, summary, message, now, agreements);
            CaseChange::Recorded(case)
        }
        (_, None) => CaseChange::Unknown(case_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{a, agreements, at, d, header, open, summary};
    use kurir_proto::message::{
        DeadlineExtensionDecision, DeadlineExtensionRequest, Procedure, examples,
    };

    #[test]
    fn extensions_move_the_due_date_within_the_maximum() {
        let ag = agreements();
        let mut case = open(Procedure::Standard, at("2027-03-01", 9));
        let me_requested = a("BA.SPS");
        let ask = Message::DeadlineExtensionRequest(DeadlineExtensionRequest {
            days: 7,
            reason: "identity check with the registry".into(),
        });
        let err = case.check_outgoing(&me_requested, &ask, &ag).unwrap_err();
        assert!(err.to_string().contains("over the agreed maximum"), "{err}");
        let ask = Message::DeadlineExtensionRequest(DeadlineExtensionRequest {
            days: 4,
            reason: "identity check with the registry".into(),
        });
        case.check_outgoing(&me_requested, &ask, &ag).unwrap();
        // The requesting side may not ask for an extension.
        assert!(case.check_outgoing(&a("RS.MUP"), &ask, &ag).is_err());
        let h = header(
            MessageKind::DeadlineExtensionRequest,
            "BA.SPS",
            "RS.MUP",
            at("2027-03-05", 9),
            2,
        );
        case.apply(&h, summary(&h), &ask, at("2027-03-05", 9), &ag);
        let grant = Message::DeadlineExtensionDecision(DeadlineExtensionDecision {
            granted: true,
            days: 4,
            reason: None,
        });
        case.check_outgoing(&a("RS.MUP"), &grant, &ag).unwrap();
        let h = header(
            MessageKind::DeadlineExtensionDecision,
            "RS.MUP",
            "BA.SPS",
            at("2027-03-06", 9),
            3,
        );
        case.apply(&h, summary(&h), &grant, at("2027-03-06", 9), &ag);
        assert_eq!(case.extension_days, 4);
        assert_eq!(case.reply_due(), d("2027-03-15"));
        // 2 more days are left of 6; 3 is too many.
        let more = Message::DeadlineExtensionRequest(DeadlineExtensionRequest {
            days: 3,
            reason: "x".into(),
        });
        assert!(case.check_outgoing(&me_requested, &more, &ag).is_err());
        // Not deemed accepted on the old due date.
        case.tick(at("2027-03-12", 9), &ag);
        assert_eq!(case.state, CaseState::AwaitingReply);
    }

    #[test]
    fn full_case_to_handover_and_closed_case_refuses_more() {
        let ag = agreements();
        let mut case = open(Procedure::Accelerated, at("2027-03-08", 9));
        assert_eq!(case.reply_due(), d("2027-03-10"));
        let reply = Message::ReadmissionReply(examples::confirmation());
        // Only the requested side replies.
        assert!(case.check_outgoing(&a("RS.MUP"), &reply, &ag).is_err());
        case.check_outgoing(&a("BA.SPS"), &reply, &ag).unwrap();
        let h = header(
            MessageKind::ReadmissionReply,
            "BA.SPS",
            "RS.MUP",
            at("2027-03-09", 9),
            2,
        );
        case.apply(&h, summary(&h), &reply, at("2027-03-09", 9), &ag);
        assert_eq!(case.state, CaseState::Confirmed);
        assert_eq!(case.transfer_due(&ag), Some(d("2027-06-09")));
        // A second reply is refused.
        assert!(
            case.check_outgoing(&a("BA.SPS"), &reply, &ag)
                .unwrap_err()
                .to_string()
                .contains("answered")
        );
        let transfer = Message::TransferArrangement(kurir_proto::message::TransferArrangement {
            date: d("2027-03-20"),
            time: "09:30".into(),
            border_crossing: "Rača".into(),
            transport: kurir_proto::message::Transport::Road,
            transport_details: None,
            escorts: vec![],
        });
        case.check_outgoing(&a("RS.MUP"), &transfer, &ag).unwrap();
        let h = header(
            MessageKind::TransferArrangement,
            "RS.MUP",
            "BA.SPS",
            at("2027-03-10", 9),
            3,
        );
        case.apply(&h, summary(&h), &transfer, at("2027-03-10", 9), &ag);
        assert_eq!(case.state, CaseState::TransferArranged);
        let handover = Message::HandoverConfirmation(kurir_proto::message::HandoverConfirmation {
            handed_over_at: at("2027-03-20", 10),
            place: "Rača".into(),
            received_by: "Border police".into(),
            remarks: None,
        });
        let h = header(
            MessageKind::HandoverConfirmation,
            "BA.SPS",
            "RS.MUP",
            at("2027-03-20", 11),
            4,
        );
        case.apply(&h, summary(&h), &handover, at("2027-03-20", 11), &ag);
        assert_eq!(case.state, CaseState::HandedOver);
        assert!(case.deadlines(d("2027-03-21"), &ag).is_empty());
        assert!(
            case.check_outgoing(&a("RS.MUP"), &transfer, &ag)
                .unwrap_err()
                .to_string()
                .contains("closed")
        );
        assert_eq!(case.view(&ag).messages.len(), 4);
        // Opened, due soon (the day before the due date), confirmed,
        // transfer proposed, handed over.
        assert_eq!(case.events.len(), 5, "{:#?}", case.events);
        assert!(case.events[1].what.contains("due soon"));
    }

    fn transfer() -> Message {
        Message::TransferArrangement(kurir_proto::message::TransferArrangement {
            date: d("2027-03-20"),
            time: "09:30".into(),
            border_crossing: "Rača".into(),
            transport: kurir_proto::message::Transport::Road,
            transport_details: None,
            escorts: vec![],
        })
    }

    #[test]
    fn a_transfer_needs_an_accepted_case() {
        let ag = agreements();
        let case = open(Procedure::Standard, at("2027-03-01", 9));
        let transfer = Message::TransferArrangement(kurir_proto::message::TransferArrangement {
            date: d("2027-03-20"),
            time: "09:30".into(),
            border_crossing: "Rača".into(),
            transport: kurir_proto::message::Transport::Road,
            transport_details: None,
            escorts: vec![],
        });
        assert!(
            case.check_outgoing(&a("RS.MUP"), &transfer, &ag)
                .unwrap_err()
                .to_string()
                .contains("not accepted")
        );
    }

    fn request() -> Message {
        Message::ReadmissionRequest(Box::new(examples::readmission_request()))
    }

    fn case_id(s: &str) -> CaseId {
        CaseId::parse(s).unwrap()
    }

    #[test]
    fn a_request_opens_a_new_case_of_this_relays_own() {
        let ag = agreements();
        let (rs, ba) = (a("RS.MUP"), a("BA.SPS"));
        let ours = case_id("RS.MUP:2026-7");
        let to = [ba.clone()];
        assert_eq!(
            check_outgoing(&rs, &request(), Some(&ours), &to, None, &ag),
            Ok(())
        );
        let theirs = case_id("BA.SPS:2026-7");
        let err = check_outgoing(&rs, &request(), Some(&theirs), &to, None, &ag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "case BA.SPS:2026-7 belongs to BA.SPS; cases this relay opens start with RS.MUP:"
        );
        let existing = open(Procedure::Standard, at("2027-03-01", 9));
        let err =
            check_outgoing(&rs, &request(), Some(&ours), &to, Some(&existing), &ag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "case RS.MUP:2026-7 exists already; a new request needs a new case id"
        );
        let err = check_outgoing(&rs, &request(), None, &to, None, &ag).unwrap_err();
        assert_eq!(err.to_string(), "a readmission-request must name its case");
    }

    #[test]
    fn other_messages_need_a_known_case_and_go_to_its_other_party_only() {
        let ag = agreements();
        let (rs, ba) = (a("RS.MUP"), a("BA.SPS"));
        let id = case_id("RS.MUP:2026-7");
        let to_rs = [rs.clone()];
        let reply = Message::ReadmissionReply(examples::confirmation());
        let err = check_outgoing(&ba, &reply, Some(&id), &to_rs, None, &ag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no readmission case RS.MUP:2026-7 at this relay: check the case id (kurir case, \
             kurir inbox)"
        );
        let case = open(Procedure::Standard, at("2027-03-01", 9));
        let both = [ba.clone(), a("ME.UP")];
        let err = check_outgoing(&rs, &transfer(), Some(&id), &both, Some(&case), &ag).unwrap_err();
        assert_eq!(
            err,
            CaseRefusal::OtherParty {
                case_id: id.clone(),
                other: ba.clone()
            }
        );
        assert_eq!(
            err.to_string(),
            "messages of case RS.MUP:2026-7 go to BA.SPS only"
        );
        // The requested side answers the requesting one.
        assert_eq!(
            check_outgoing(&ba, &reply, Some(&id), &to_rs, Some(&case), &ag),
            Ok(())
        );
        // The case's own rules come last.
        let err = check_outgoing(&rs, &reply, Some(&id), &[ba], Some(&case), &ag).unwrap_err();
        assert_eq!(
            err.to_string(),
            "only BA.SPS (the requested authority) can send this in case RS.MUP:2026-7"
        );
    }

    #[test]
    fn refusals_read_as_before() {
        let ag = agreements();
        let case = open(Procedure::Standard, at("2027-03-01", 9));
        let (rs, ba) = (a("RS.MUP"), a("BA.SPS"));
        let ask = |days| {
            Message::DeadlineExtensionRequest(DeadlineExtensionRequest {
                days,
                reason: "x".into(),
            })
        };
        assert_eq!(
            case.check_outgoing(&ba, &ask(7), &ag)
                .unwrap_err()
                .to_string(),
            "an extension of 7 days is over the agreed maximum: 6 of 6 days are left"
        );
        let grant = |days| {
            Message::DeadlineExtensionDecision(DeadlineExtensionDecision {
                granted: true,
                days,
                reason: None,
            })
        };
        assert_eq!(
            case.check_outgoing(&rs, &grant(9), &ag)
                .unwrap_err()
                .to_string(),
            "granting 9 days is over the agreed maximum: 6 of 6 days are left"
        );
        assert_eq!(
            case.check_outgoing(&ba, &grant(1), &ag)
                .unwrap_err()
                .to_string(),
            "only RS.MUP (the requesting authority) decides on an extension in case RS.MUP:2026-7"
        );
        assert_eq!(
            case.check_outgoing(&rs, &request(), &ag)
                .unwrap_err()
                .to_string(),
            "case RS.MUP:2026-7 already has a readmission request; open a new case"
        );
        assert_eq!(
            case.check_outgoing(&rs, &transfer(), &ag)
                .unwrap_err()
                .to_string(),
            "case RS.MUP:2026-7 is not accepted (awaiting_reply); a transfer needs a confirmed \
             or deemed-accepted case"
        );
        let mut answered = case.clone();
        answered.state = CaseState::Confirmed;
        assert_eq!(
            answered
                .check_outgoing(&ba, &ask(1), &ag)
                .unwrap_err()
                .to_string(),
            "case RS.MUP:2026-7 is not awaiting a reply (confirmed)"
        );
        assert_eq!(
            answered
                .check_outgoing(
                    &ba,
                    &Message::ReadmissionReply(examples::confirmation()),
                    &ag
                )
                .unwrap_err()
                .to_string(),
            "case RS.MUP:2026-7 has been answered already (confirmed)"
        );
        answered.state = CaseState::Rejected;
        assert_eq!(
            answered
                .check_outgoing(&rs, &transfer(), &ag)
                .unwrap_err()
                .to_string(),
            "case RS.MUP:2026-7 is closed (rejected); nothing more can be sent in it"
        );
    }

    #[test]
    fn a_request_opens_its_case_and_other_messages_are_recorded_in_theirs() {
        let ag = agreements();
        let when = at("2027-03-01", 9);
        let h = header(MessageKind::ReadmissionRequest, "RS.MUP", "BA.SPS", when, 1);
        // Received or sent alike.
        for change in [
            received(&a("BA.SPS"), &h, &request(), None, when, &ag).unwrap(),
            sent(&h, &request(), None, when, &ag),
        ] {
            let CaseChange::Opened(case) = change else {
                panic!("{change:?}")
            };
            assert_eq!(case, open(Procedure::Standard, when));
        }
        let case = open(Procedure::Standard, when);
        let later = at("2027-03-02", 9);
        let h = header(MessageKind::ReadmissionReply, "BA.SPS", "RS.MUP", later, 2);
        let reply = Message::ReadmissionReply(examples::confirmation());
        let rs = a("RS.MUP");
        let Ok(CaseChange::Recorded(after)) =
            received(&rs, &h, &reply, Some(case.clone()), later, &ag)
        else {
            panic!("recorded")
        };
        assert_eq!(after.state, CaseState::Confirmed);
        assert_eq!(after.messages.len(), 2);
        assert_eq!(after.messages[1], Summary::of(&h, later, None));
        // A reply for a case this relay does not know is refused.
        assert_eq!(
            received(&rs, &h, &reply, None, later, &ag),
            Err(CaseRefusal::Unknown {
                case_id: case_id("RS.MUP:2026-7")
            })
        );
        assert_eq!(
            CaseChange::Unknown(case_id("RS.MUP:2026-7")).into_case(),
            None
        );
        assert_eq!(CaseChange::Recorded(after.clone()).into_case(), Some(after));
    }

    #[test]
    fn messages_outside_cases_change_none() {
        let ag = agreements();
        let when = at("2027-03-01", 9);
        let notice = Message::OperationalNotice(examples::notice());
        let h = header(MessageKind::OperationalNotice, "RS.MUP", "BA.SPS", when, 1);
        let case = open(Procedure::Standard, when);
        assert_eq!(
            received(&a("BA.SPS"), &h, &notice, Some(case), when, &ag),
            Ok(CaseChange::Unchanged)
        );
        let mut no_id = header(MessageKind::ReadmissionRequest, "RS.MUP", "BA.SPS", when, 1);
        no_id.case_id = None;
        assert_eq!(
            sent(&no_id, &request(), None, when, &ag),
            CaseChange::Unchanged
        );
    }

    /// A header of `kind` in `case` from `from` to `to`.
    fn incoming(kind: MessageKind, from: &str, to: &[&str], case: &str, n: u8) -> Header {
        let mut h = header(kind, from, "BA.SPS", at("2027-03-02", 9), n);
        h.to = to.iter().map(|t| a(t)).collect();
        h.case_id = Some(case_id(case));
        h
    }

    #[test]
    fn a_peer_opens_only_its_own_cases_and_only_with_this_relay() {
        let ag = agreements();
        let (ba, now) = (a("BA.SPS"), at("2027-03-02", 9));
        let check = |from, to: &[&str], case| {
            let h = incoming(MessageKind::ReadmissionRequest, from, to, case, 1);
            check_incoming(&ba, &h, &request(), None, now, &ag)
        };
        assert_eq!(check("RS.MUP", &["BA.SPS"], "RS.MUP:2026-7"), Ok(()));
        let err = check("ME.UP", &["BA.SPS"], "RS.MUP:2026-7").unwrap_err();
        assert_eq!(err.code(), RejectCode::NotAParty);
        assert_eq!(
            err.to_string(),
            "case RS.MUP:2026-7 belongs to RS.MUP; a case ME.UP opens must have an id starting \
             with ME.UP:"
        );
        let err = check("RS.MUP", &["BA.SPS", "ME.UP"], "RS.MUP:2026-7").unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict);
        assert_eq!(
            err.to_string(),
            "messages of case RS.MUP:2026-7 go to BA.SPS only"
        );
        // A request for a case that exists: refused, whoever sends it.
        let case = open(Procedure::Standard, at("2027-03-01", 9));
        let h = incoming(
            MessageKind::ReadmissionRequest,
            "RS.MUP",
            &["BA.SPS"],
            "RS.MUP:2026-7",
            2,
        );
        let err = check_incoming(&ba, &h, &request(), Some(&case), now, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict, "{err}");
        // Another kind in a case this relay does not know.
        let h = incoming(
            MessageKind::TransferArrangement,
            "RS.MUP",
            &["BA.SPS"],
            "RS.MUP:2026-8",
            3,
        );
        let err = check_incoming(&ba, &h, &transfer(), None, now, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict, "{err}");
    }

    #[test]
    fn only_the_other_party_sends_in_a_case_and_only_its_own_side() {
        let ag = agreements();
        let (ba, rs, now) = (a("BA.SPS"), a("RS.MUP"), at("2027-03-02", 9));
        let case = open(Procedure::Standard, at("2027-03-01", 9));
        let reply = Message::ReadmissionReply(examples::confirmation());
        // At BA.SPS (requested): ME.UP is no party; RS.MUP may not reply.
        let h = incoming(
            MessageKind::ReadmissionReply,
            "ME.UP",
            &["BA.SPS"],
            "RS.MUP:2026-7",
            1,
        );
        let err = check_incoming(&ba, &h, &reply, Some(&case), now, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::NotAParty);
        assert_eq!(
            err.to_string(),
            "ME.UP is not a party to case RS.MUP:2026-7 (between RS.MUP and BA.SPS); only \
             RS.MUP and BA.SPS send messages in it"
        );
        let h = incoming(
            MessageKind::ReadmissionReply,
            "RS.MUP",
            &["BA.SPS"],
            "RS.MUP:2026-7",
            2,
        );
        let err = check_incoming(&ba, &h, &reply, Some(&case), now, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict);
        // At RS.MUP (requesting): BA.SPS replies, to RS.MUP alone.
        let h = incoming(
            MessageKind::ReadmissionReply,
            "BA.SPS",
            &["RS.MUP"],
            "RS.MUP:2026-7",
            3,
        );
        assert_eq!(
            check_incoming(&rs, &h, &reply, Some(&case), now, &ag),
            Ok(())
        );
        let h = incoming(
            MessageKind::ReadmissionReply,
            "BA.SPS",
            &["ME.UP", "RS.MUP"],
            "RS.MUP:2026-7",
            4,
        );
        let err = check_incoming(&rs, &h, &reply, Some(&case), now, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict);
        // Extensions: over the maximum, or from the wrong side, refused.
        let grant = |days| {
            Message::DeadlineExtensionDecision(DeadlineExtensionDecision {
                granted: true,
                days,
                reason: None,
            })
        };
        let h = incoming(
            MessageKind::DeadlineExtensionDecision,
            "RS.MUP",
            &["BA.SPS"],
            "RS.MUP:2026-7",
            5,
        );
        assert_eq!(
            check_incoming(&ba, &h, &grant(2), Some(&case), now, &ag),
            Ok(())
        );
        let err = check_incoming(&ba, &h, &grant(u16::MAX), Some(&case), now, &ag).unwrap_err();
        assert_eq!(
            err,
            CaseRefusal::GrantTooLong {
                days: u16::MAX,
                left: 6,
                max: 6
            }
        );
        let h = incoming(
            MessageKind::DeadlineExtensionDecision,
            "BA.SPS",
            &["RS.MUP"],
            "RS.MUP:2026-7",
            6,
        );
        let err = check_incoming(&rs, &h, &grant(1), Some(&case), now, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict);
        // A refused message changes nothing.
        assert!(received(&rs, &h, &grant(1), Some(case.clone()), now, &ag).is_err());
    }

    #[test]
    fn a_reply_after_deemed_acceptance_is_recorded_without_changing_the_state() {
        let ag = agreements();
        let rs = a("RS.MUP");
        let case = open(Procedure::Standard, at("2027-03-01", 9));
        // Due 2027-03-11: deemed accepted on the 12th.
        let late = at("2027-03-12", 9);
        let mut h = incoming(
            MessageKind::ReadmissionReply,
            "BA.SPS",
            &["RS.MUP"],
            "RS.MUP:2026-7",
            1,
        );
        h.created_at = late;
        let reply = Message::ReadmissionReply(examples::confirmation());
        let Ok(CaseChange::Recorded(after)) = received(&rs, &h, &reply, Some(case), late, &ag)
        else {
            panic!("recorded")
        };
        assert_eq!(after.state, CaseState::DeemedAccepted);
        assert_eq!(after.messages.len(), 2);
        // An extension request then is refused: the reply is no longer awaited.
        let ask = Message::DeadlineExtensionRequest(DeadlineExtensionRequest {
            days: 1,
            reason: "x".into(),
        });
        let h = incoming(
            MessageKind::DeadlineExtensionRequest,
            "BA.SPS",
            &["RS.MUP"],
            "RS.MUP:2026-7",
            2,
        );
        let err = check_incoming(&rs, &h, &ask, Some(&after), late, &ag).unwrap_err();
        assert_eq!(err.code(), RejectCode::CaseConflict, "{err}");
    }
}
