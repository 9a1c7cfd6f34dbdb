//! Helpers that build bodies for tests and the demo: realistic, fixed content.

use crate::time::Date;

use super::{
    Decision, DocumentType, EvidenceItem, IdentityDocument, OperationalNotice, Person, Priority,
    Procedure, ReadmissionReply, ReadmissionRequest, Sex,
};

/// A notice about a planned joint operation.
pub fn notice() -> OperationalNotice {
    OperationalNotice {
        subject: "Joint patrol at Horgoš, 3 December".to_owned(),
        text: "Border police of both sides meet at 06:00 at the Horgoš/Röszke crossing.".to_owned(),
        priority: Priority::Normal,
        attachments: vec![],
    }
}

/// A standard-procedure readmission request with one passport.
pub fn readmission_request() -> ReadmissionRequest {
    ReadmissionRequest {
        procedure: Procedure::Standard,
        person: Person {
            surname: "EXAMPLE".to_owned(),
            given_names: "Ana Maria".to_owned(),
            birth_surname: None,
            aliases: vec!["Anna Example".to_owned()],
            birth_date: Date::from_days_since_epoch(7411),
            birth_place: "Podgorica, ME".to_owned(),
            sex: Sex::Female,
            nationalities: vec!["ME".to_owned()],
            languages: vec!["sr".to_owned(), "en".to_owned()],
            last_address: None,
        },
        documents: vec![IdentityDocument {
            document_type: DocumentType::Passport,
            number: "P0000000".to_owned(),
            issuer: "ME".to_owned(),
            issued_on: None,
            valid_until: Some(Date::from_days_since_epoch(21945)),
            copy: None,
        }],
        evidence: vec![EvidenceItem {
            annex: 1,
            description: "Valid passport".to_owned(),
            attachment: None,
        }],
        apprehension: None,
        transit: None,
        proposed_transfer: None,
        health: None,
        escort: None,
        remarks: None,
    }
}

/// A confirming reply.
pub fn confirmation() -> ReadmissionReply {
    ReadmissionReply {
        decision: Decision::Confirmed,
        reasons: vec![],
        travel_document: None,
        remarks: None,
    }
}
