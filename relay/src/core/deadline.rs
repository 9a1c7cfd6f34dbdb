//! The readmission clock: the state of each readmission case and its
//! deadlines, computed from the agreement between the two authorities.
//!
//! Pure: every function takes `now` (and the agreements) and returns the new
//! state and the events to record. Dates are UTC calendar dates.
//!
//! Rules (each number is an [`Agreement`] parameter, never hard-coded):
//! - reply due: `standard`/`transit` — the request's date plus N calendar
//!   days; `accelerated` — the N-th working day after it in the requested
//!   authority's country (weekends and that country's public holidays skipped);
//! - extension: on a reasoned request the requested side may get up to M
//!   more days in total, added to the reply due date when granted;
//! - no reply by the end of the due date: the request is deemed accepted;
//! - transfer due: K months after acceptance (confirmation or deemed).

use std::collections::{BTreeSet, HashMap};

use kurir_proto::api::{CaseEvent, CaseState, CaseView, Deadline, DeadlineKind, Summary};
use kurir_proto::audit::CaseDeadline;
use kurir_proto::message::{Decision, Message, Procedure};
use kurir_proto::{AuthorityId, CaseId, Date, Header, MessageId, Timestamp};
use serde::{Deserialize, Serialize};

/// Time limits agreed between two authorities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Agreement {
    /// Reply time limit, standard procedure, in calendar days.
    pub reply_days_standard: u16,
    /// Reply time limit, transit procedure, in calendar days.
    pub reply_days_transit: u16,
    /// Reply time limit, accelerated procedure, in working days.
    pub reply_working_days_accelerated: u16,
    /// Most extension days the requested side may be granted in total.
    pub max_extension_days: u16,
    /// Transfer time limit after acceptance, in months.
    pub transfer_months: u16,
    /// Record "due soon" this many days before a reply is due.
    pub due_soon_days: u16,
}

impl Default for Agreement {
    fn default() -> Self {
        Agreement {
            reply_days_standard: 10,
            reply_days_transit: 10,
            reply_working_days_accelerated: 2,
            max_extension_days: 6,
            transfer_months: 3,
            due_soon_days: 2,
        }
    }
}

/// The agreements of this authority, and public holidays by country.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agreements {
    /// For pairs without their own entry.
    pub default: Agreement,
    /// Per unordered pair of authorities.
    pub pairs: HashMap<(AuthorityId, AuthorityId), Agreement>,
    /// Public holidays by ISO 3166-1 alpha-2 country code.
    pub holidays: HashMap<String, BTreeSet<Date>>,
}

impl Agreements {
    /// The agreement between `a` and `b` (in either order).
    pub fn between(&self, a: &AuthorityId, b: &AuthorityId) -> &Agreement {
        let key = if a <= b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        self.pairs.get(&key).unwrap_or(&self.default)
    }

    /// Monday to Friday and not a public holiday in `country`.
    pub fn is_working_day(&self, country: &str, d: Date) -> bool {
        d.iso_weekday() <= 5 && !self.holidays.get(country).is_some_and(|h| h.contains(&d))
    }

    /// The reply due date for a request of `procedure` dated `from`.
    pub fn reply_due(
        &self,
        requesting: &AuthorityId,
        requested: &AuthorityId,
        procedure: Procedure,
        from: Date,
    ) -> Date {
        let a = self.between(requesting, requested);
        match procedure {
            Procedure::Standard => from.add_days(i64::from(a.reply_days_standard)),
            Procedure::Transit => from.add_days(i64::from(a.reply_days_transit)),
            Procedure::Accelerated => {
                let mut d = from;
                let mut left = a.reply_working_days_accelerated;
                while left > 0 {
                    d = d.add_days(1);
                    if self.is_working_day(requested.country(), d) {
                        left -= 1;
                    }
                }
                d
            }
        }
    }
}

/// `d` plus `months` calendar months, the day clamped to the month's end
/// (31 January + 1 month = 28 or 29 February).
pub fn add_months(d: Date, months: u16) -> Date {
    let total = u32::from(d.month()) - 1 + u32::from(months);
    let year = d.year().saturating_add((total / 12) as u16);
    let month = (total % 12) as u8 + 1;
    let mut day = d.day();
    loop {
        if let Ok(date) = Date::new(year, month, day) {
            return date;
        }
        if day <= 28 {
            // Past year 9999: stay at the latest representable date.
            return d;
        }
        day -= 1;
    }
}

/// A deadline event from [`Case::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineEvent {
    /// `due_soon`, `deemed_accepted` or `transfer_overdue`.
    pub code: CaseDeadline,
    /// The event as recorded in the case.
    pub event: CaseEvent,
}

/// A readmission case as the relay tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The case.
    pub case_id: CaseId,
    /// Who asked.
    pub requesting: AuthorityId,
    /// Who was asked.
    pub requested: AuthorityId,
    /// The procedure.
    pub procedure: Procedure,
    /// The request message.
    pub request: MessageId,
    /// Where it stands.
    pub state: CaseState,
    /// The reply due date without extensions.
    pub base_reply_due: Date,
    /// Extension days granted.
    pub extension_days: u16,
    /// Extension days asked for and not yet decided.
    pub extension_pending: u16,
    /// The day readmission was accepted (confirmed or deemed).
    pub accepted_on: Option<Date>,
    /// Messages of the case, in order.
    pub messages: Vec<Summary>,
    /// What happened, in order.
    pub events: Vec<CaseEvent>,
    /// "Reply due soon" was recorded.
    pub due_soon_noted: bool,
    /// "Transfer overdue" was recorded.
    pub transfer_overdue_noted: bool,
}

impl Case {
    /// The reply due date with extensions.
    pub fn reply_due(&self) -> Date {
        self.base_reply_due.add_days(i64::from(self.extension_days))
    }

    /// The transfer due date, once accepted.
    pub fn transfer_due(&self, agreements: &Agreements) -> Option<Date> {
        let months = agreements
            .between(&self.requesting, &self.requested)
            .transfer_months;
        self.accepted_on.map(|d| add_months(d, months))
    }

    /// Opens a case for a readmission request sent or received at `at`.
    pub fn open(
        header: &Header,
        summary: Summary,
        procedure: Procedure,
        at: Timestamp,
        agreements: &Agreements,
    ) -> Option<Case> {
        let case_id = header.case_id.clone()?;
        let requested = header.to.first()?.clone();
        let base_reply_due = agreements.reply_due(&header.from, &requested, procedure, at.date());
        Some(Case {
            events: vec![CaseEvent {
                at,
                what: format!(
                    "{} asked {} to readmit ({} procedure, message {}); reply due {}",
                    header.from,
                    requested,
                    procedure.as_str(),
                    header.id,
                    base_reply_due
                ),
            }],
            case_id,
            requesting: header.from.clone(),
            requested,
            procedure,
            request: header.id,
            state: CaseState::AwaitingReply,
            base_reply_due,
            extension_days: 0,
            extension_pending: 0,
            accepted_on: None,
            messages: vec![summary],
            due_soon_noted: false,
            transfer_overdue_noted: false,
        })
    }

    /// Records a message of the case (sent or received) at `at`.
    pub fn apply(
        &mut self,
        header: &Header,
        summary: Summary,
        message: &Message,
        at: Timestamp,
        agreements: &Agreements,
    ) {
        self.tick(at, agreements);
        self.messages.push(summary);
        let what = match message {
            Message::ReadmissionReply(r) => match (self.state, r.decision) {
                (CaseState::AwaitingReply, Decision::Confirmed) => {
                    self.state = CaseState::Confirmed;
                    self.accepted_on = Some(at.date());
                    format!(
                        "{} confirmed readmission; transfer due by {}",
                        header.from,
                        self.transfer_due(agreements).unwrap_or(at.date())
                    )
                }
                (CaseState::AwaitingReply, Decision::Rejected) => {
                    self.state = CaseState::Rejected;
                    format!(
                        "{} rejected readmission: {}",
                        header.from,
                        r.reasons.join("; ")
                    )
                }
                (state, _) => format!(
                    "{} replied after the case was {} (recorded, state unchanged)",
                    header.from,
                    state.as_str()
                ),
            },
            Message::DeadlineExtensionRequest(r) => {
                self.extension_pending = r.days;
                format!(
                    "{} asked for {} more days: {}",
                    header.from, r.days, r.reason
                )
            }
            Message::DeadlineExtensionDecision(d) => {
                self.extension_pending = 0;
                if d.granted {
                    let max = agreements
                        .between(&self.requesting, &self.requested)
                        .max_extension_days;
                    self.extension_days = self.extension_days.saturating_add(d.days).min(max);
                    if self.state == CaseState::DeemedAccepted && at.date() <= self.reply_due() {
                        // Granted in time: the request is open again.
                        self.state = CaseState::AwaitingReply;
                        self.accepted_on = None;
                    }
                    format!(
                        "{} granted {} more days; reply now due {}",
                        header.from,
                        d.days,
                        self.reply_due()
                    )
                } else {
                    format!("{} refused the extension", header.from)
                }
            }
            Message::TransferArrangement(t) => {
                self.state = CaseState::TransferArranged;
                format!(
                    "{} proposed the transfer on {} at {}, {}",
                    header.from, t.date, t.time, t.border_crossing
                )
            }
            Message::HandoverConfirmation(h) => {
                self.state = CaseState::HandedOver;
                format!(
                    "{} confirmed the handover at {} ({}): case closed",
                    header.from, h.place, h.handed_over_at
                )
            }
            other => format!("{} sent a {}", header.from, other.kind()),
        };
        self.events.push(CaseEvent { at, what });
    }

    /// Advances the clock: records "due soon", deems the request accepted
    /// after its due date, and notes an overdue transfer. Returns the new
    /// events (also appended to the case) with their codes.
    pub fn tick(&mut self, now: Timestamp, agreements: &Agreements) -> Vec<DeadlineEvent> {
        let today = now.date();
        let agreement = agreements.between(&self.requesting, &self.requested);
        let mut new = Vec::new();
        if self.state == CaseState::AwaitingReply {
            let due = self.reply_due();
            let left = due.days_since_epoch() - today.days_since_epoch();
            if today > due {
                self.state = CaseState::DeemedAccepted;
                self.accepted_on = Some(due.add_days(1));
                new.push((CaseDeadline::DeemedAccepted, format!(
                    "no reply from {} by {due}: readmission deemed accepted; transfer due by {}",
                    self.requested,
                    self.transfer_due(agreements).unwrap_or(today)
                )));
            } else if left <= i64::from(agreement.due_soon_days) && !self.due_soon_noted {
                self.due_soon_noted = true;
                new.push((
                    CaseDeadline::DueSoon,
                    format!(
                        "reply from {} due soon: {due} ({left} day(s) left)",
                        self.requested
                    ),
                ));
            }
        }
        if matches!(self.state, CaseState::Confirmed | CaseState::DeemedAccepted)
            && !self.transfer_overdue_noted
            && let Some(due) = self.transfer_due(agreements)
            && today > due
        {
            self.transfer_overdue_noted = true;
            new.push((
                CaseDeadline::TransferOverdue,
                format!("transfer overdue: it was due by {due}"),
            ));
        }
        let events: Vec<DeadlineEvent> = new
            .into_iter()
            .map(|(code, what)| DeadlineEvent {
                code,
                event: CaseEvent { at: now, what },
            })
            .collect();
        self.events.extend(events.iter().map(|e| e.event.clone()));
        events
    }

    /// The open deadlines of this case on `today`.
    pub fn deadlines(&self, today: Date, agreements: &Agreements) -> Vec<Deadline> {
        let deadline = |kind, due: Date, party: &AuthorityId, counterpart: &AuthorityId| {
            let days_left = due.days_since_epoch() - today.days_since_epoch();
            Deadline {
                case_id: self.case_id.clone(),
                kind,
                due,
                party: party.clone(),
                counterpart: counterpart.clone(),
                days_left,
                overdue: days_left < 0,
            }
        };
        match self.state {
            CaseState::AwaitingReply => vec![deadline(
                DeadlineKind::Reply,
                self.reply_due(),
                &self.requested,
                &self.requesting,
            )],
            CaseState::Confirmed | CaseState::DeemedAccepted | CaseState::TransferArranged => self
                .transfer_due(agreements)
                .map(|due| {
                    deadline(
                        DeadlineKind::Transfer,
                        due,
                        &self.requesting,
                        &self.requested,
                    )
                })
                .into_iter()
                .collect(),
            CaseState::Rejected | CaseState::HandedOver => vec![],
        }
    }

    /// The view officers get.
    pub fn view(&self, agreements: &Agreements) -> CaseView {
        CaseView {
            case_id: self.case_id.clone(),
            requesting: self.requesting.clone(),
            requested: self.requested.clone(),
            procedure: self.procedure,
            state: self.state,
            reply_due: (self.state == CaseState::AwaitingReply
                || self.state == CaseState::DeemedAccepted)
                .then(|| self.reply_due()),
            extension_days: self.extension_days,
            transfer_due: self.transfer_due(agreements),
            messages: self.messages.clone(),
            events: self.events.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{a, agreements, at, d, open};

    #[test]
    fn standard_is_calendar_days_across_weekends_and_holidays() {
        let ag = agreements();
        // Thursday 24 December 2026 + 10 days = Sunday 3 January 2027: calendar
        // days count weekends and holidays alike.
        let due = ag.reply_due(
            &a("RS.MUP"),
            &a("BA.SPS"),
            Procedure::Standard,
            d("2026-12-24"),
        );
        assert_eq!(due, d("2027-01-03"));
    }

    #[test]
    fn accelerated_counts_working_days_of_the_requested_country() {
        let ag = agreements();
        let (rs, ba) = (a("RS.MUP"), a("BA.SPS"));
        // Thursday 31 Dec 2026, requested BA: Fri 1 Jan and Sat 2 Jan are
        // holidays, Sun 3 a weekend; Mon 4 and Tue 5 are the 2 working days.
        assert_eq!(
            ag.reply_due(&rs, &ba, Procedure::Accelerated, d("2026-12-31")),
            d("2027-01-05")
        );
        // Requested RS instead: 1 and 2 January are working days there but
        // the 2nd is a Saturday: Fri 1, Mon 4.
        assert_eq!(
            ag.reply_due(&ba, &rs, Procedure::Accelerated, d("2026-12-31")),
            d("2027-01-04")
        );
        // Friday 26 Feb 2027 to BA: Mon 1 Mar is a holiday: Tue 2, Wed 3.
        assert_eq!(
            ag.reply_due(&rs, &ba, Procedure::Accelerated, d("2027-02-26")),
            d("2027-03-03")
        );
        // A plain week: Monday → Wednesday.
        assert_eq!(
            ag.reply_due(&rs, &ba, Procedure::Accelerated, d("2027-03-08")),
            d("2027-03-10")
        );
    }

    #[test]
    fn agreements_are_per_pair() {
        let mut ag = agreements();
        ag.pairs.insert(
            (a("BA.SPS"), a("RS.MUP")),
            Agreement {
                reply_days_standard: 14,
                ..Agreement::default()
            },
        );
        let due = ag.reply_due(
            &a("RS.MUP"),
            &a("BA.SPS"),
            Procedure::Standard,
            d("2027-03-01"),
        );
        assert_eq!(due, d("2027-03-15"));
        let other = ag.reply_due(
            &a("RS.MUP"),
            &a("ME.UP"),
            Procedure::Standard,
            d("2027-03-01"),
        );
        assert_eq!(other, d("2027-03-11"));
    }

    #[test]
    fn months_clamp_to_the_end_of_the_month() {
        assert_eq!(add_months(d("2027-01-31"), 1), d("2027-02-28"));
        assert_eq!(add_months(d("2028-01-31"), 1), d("2028-02-29"));
        assert_eq!(add_months(d("2026-11-30"), 3), d("2027-02-28"));
        assert_eq!(add_months(d("2026-10-15"), 3), d("2027-01-15"));
    }

    #[test]
    fn no_reply_by_the_due_date_is_deemed_accepted() {
        let ag = agreements();
        let mut case = open(Procedure::Standard, at("2027-03-01", 9));
        assert_eq!(case.reply_due(), d("2027-03-11"));
        // The whole due date still counts.
        assert!(
            case.tick(at("2027-03-11", 23), &ag)
                .iter()
                .any(|e| e.code.as_str() == "due_soon" && e.event.what.contains("due soon"))
        );
        assert_eq!(case.state, CaseState::AwaitingReply);
        let events = case.tick(at("2027-03-12", 0), &ag);
        assert_eq!(case.state, CaseState::DeemedAccepted);
        assert_eq!(events[0].code.as_str(), "deemed_accepted");
        assert!(
            events[0].event.what.contains("deemed accepted"),
            "{events:?}"
        );
        assert_eq!(case.accepted_on, Some(d("2027-03-12")));
        assert_eq!(case.transfer_due(&ag), Some(d("2027-06-12")));
        // Ticking again records nothing new.
        assert!(case.tick(at("2027-03-13", 0), &ag).is_empty());
        let dl = case.deadlines(d("2027-03-13"), &ag);
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].kind, DeadlineKind::Transfer);
        assert_eq!(dl[0].party, a("RS.MUP"));
        // The transfer deadline passes.
        let late = case.tick(at("2027-06-13", 0), &ag);
        assert_eq!(late[0].code.as_str(), "transfer_overdue", "{late:?}");
        assert!(case.deadlines(d("2027-06-13"), &ag)[0].overdue);
    }

    #[test]
    fn extensions_of_65535_days_saturate_instead_of_overflowing() {
        use crate::core::fixtures::{header, summary};
        use kurir_proto::message::{DeadlineExtensionDecision, MessageKind};
        let ag = agreements();
        let mut case = open(Procedure::Standard, at("2027-03-01", 9));
        for n in 2..4 {
            let h = header(
                MessageKind::DeadlineExtensionDecision,
                "RS.MUP",
                "BA.SPS",
                at("2027-03-02", 9),
                n,
            );
            let grant = Message::DeadlineExtensionDecision(DeadlineExtensionDecision {
                granted: true,
                days: u16::MAX,
                reason: None,
            });
            case.apply(&h, summary(&h), &grant, at("2027-03-02", 9), &ag);
        }
        assert_eq!(case.extension_days, 6, "capped at the agreed maximum");
        assert_eq!(case.reply_due(), d("2027-03-17"));
    }
}
