//! Test fixtures shared by the core's unit tests: authorities, dates,
//! agreements with holidays, headers and an open readmission case.

use kurir_proto::api::Summary;
use kurir_proto::message::{Handling, MessageKind, Procedure};
use kurir_proto::{AuthorityId, CaseId, Date, Digest, Header, MessageId, Timestamp};

use super::deadline::{Agreements, Case};

pub(crate) fn a(s: &str) -> AuthorityId {
    AuthorityId::parse(s).unwrap()
}

pub(crate) fn d(s: &str) -> Date {
    Date::parse(s).unwrap()
}

pub(crate) fn at(date: &str, hour: u64) -> Timestamp {
    Timestamp(d(date).days_since_epoch() as u64 * 86_400_000 + hour * 3_600_000)
}

pub(crate) fn agreements() -> Agreements {
    let mut ag = Agreements::default();
    // Bosnia and Herzegovina: 1 and 2 January, 1 March; Serbia: 7 January.
    ag.holidays.insert(
        "BA".into(),
        [d("2027-01-01"), d("2027-01-02"), d("2027-03-01")].into(),
    );
    ag.holidays.insert("RS".into(), [d("2027-01-07")].into());
    ag
}

pub(crate) fn header(kind: MessageKind, from: &str, to: &str, when: Timestamp, n: u8) -> Header {
    Header {
        id: MessageId::new_v7(when.0, [n; 10]),
        kind,
        from: a(from),
        to: vec![a(to)],
        created_at: when,
        expires_at: when.plus_millis(1),
        case_id: Some(CaseId::parse("RS.MUP:2026-7").unwrap()),
        in_reply_to: None,
        procedure: None,
        handling: Handling::H2,
        legal_basis: None,
        body_digest: Digest([0; 32]),
    }
}

pub(crate) fn summary(h: &Header) -> Summary {
    Summary::of(h, h.created_at, None)
}

pub(crate) fn open(procedure: Procedure, when: Timestamp) -> Case {
    let h = header(MessageKind::ReadmissionRequest, "RS.MUP", "BA.SPS", when, 1);
    Case::open(&h, summary(&h), procedure, when, &agreements()).unwrap()
}
