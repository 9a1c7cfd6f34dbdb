//! Who may read a message body: the officer's role and name, the
//! message's handling level and kind, this authority's focal points in the
//! roster, and `[reads]` (`docs/SECURITY.md`, "Hostile members: handling
//! levels and reads").
//!
//! | level | body readable by |
//! |-------|------------------|
//! | H0, H1 | role `officer`, and any role `[reads.h2]` grants for the kind |
//! | H2 | the roles `[reads.h2]` names for the kind (default: `officer`) |
//! | H3 | role `officer` whose certificate name is one of this authority's focal points in the roster |
//!
//! A role granted H2 bodies of a kind also reads H0 and H1 bodies of it: a
//! lower level is never stricter. Names are compared exactly after trimming
//! white space at both ends (no case folding, no Unicode normalisation).
//! The envelope (`Fetch` with `envelope_only`) is open to every role and is
//! not decided here. Received and sent messages are governed alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kurir_certs::roster::FocalPoint;
use kurir_proto::audit::ReadRefusal;
use kurir_proto::message::Handling;
use kurir_proto::{AuthorityId, MessageKind, Role};

/// `[reads]`: the roles that read H2 bodies, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPolicy {
    /// The roles per kind; a kind not listed is read by role `officer`
    /// only. An empty set closes the kind's H2 bodies to every role.
    pub h2: BTreeMap<MessageKind, BTreeSet<Role>>,
}

impl ReadPolicy {
    /// The roles that read H2 bodies of `kind`.
    pub fn h2_roles(&self, kind: MessageKind) -> BTreeSet<Role> {
        self.h2
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| BTreeSet::from([Role::Officer]))
    }

    /// The policy in words, for the log at start: `officer` for every kind
    /// but those named, e.g. `readmission-request: officer, admin`.
    pub fn describe(&self) -> String {
        let mut parts = vec!["H2 bodies: role officer for every kind".to_owned()];
        for (kind, roles) in &self.h2 {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            parts.push(match names.is_empty() {
                true => format!("{kind}: no role"),
                false => format!("{kind}: {}", names.join(", ")),
            });
        }
        match parts.len() {
            1 => parts.remove(0),
            _ => format!("{} but {}", parts[0], parts[1..].join("; ")),
        }
    }

    /// The roles that read H0 and H1 bodies of `kind`: officers, and the
    /// roles granted H2 bodies of it.
    pub fn h1_roles(&self, kind: MessageKind) -> BTreeSet<Role> {
        let mut roles = self.h2_roles(kind);
        roles.insert(Role::Officer);
        roles
    }
}

/// Who asks for a body: the facts of the officer's certificate.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The role in the certificate.
    pub role: Role,
    /// The name in the certificate.
    pub name: &'a str,
}

/// What the body of the message is, for deciding.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// Its handling level.
    pub handling: Handling,
    /// Its kind.
    pub kind: MessageKind,
    /// This relay's authority.
    pub me: &'a AuthorityId,
    /// This authority's focal points as the roster lists them.
    pub focal_points: &'a [FocalPoint],
}

/// A body refused: why, and who may read it instead (the text the officer
/// gets with `Forbidden`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The reason code the audit entry records.
    pub reason: ReadRefusal,
    /// The message's level.
    pub handling: Handling,
    /// The message's kind.
    pub kind: MessageKind,
    /// Who may read the body, in words.
    pub may_read: String,
    /// The reader, as its certificate names it: `"NAME" (ROLE)`.
    pub reader: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the body of this {kind} message is handling level {level} ({meaning}): it may be \
             read by {who}, and you are {reader}. The envelope is open to every role \
             (`kurir show ID --envelope`)",
            kind = self.kind,
            level = self.handling.as_str(),
            meaning = meaning(self.handling),
            who = self.may_read,
            reader = self.reader,
        )
    }
}

fn meaning(h: Handling) -> &'static str {
    match h {
        Handling::H0 => "routine",
        Handling::H1 => "internal",
        Handling::H2 => "sensitive, need to know",
        Handling::H3 => "restricted to named focal points",
    }
}

/// Decides whether `reader` may read `body`.
pub fn may_read(reader: Reader<'_>, body: Body<'_>, policy: &ReadPolicy) -> Result<(), Refused> {
    let refused = |reason, may_read: String| Refused {
        reason,
        handling: body.handling,
        kind: body.kind,
        may_read,
        reader: format!("{:?} ({})", reader.name, reader.role),
    };
    let by_role = |roles: BTreeSet<Role>, what: &str| {
        if roles.contains(&reader.role) {
            return Ok(());
        }
        let who = if roles.is_empty() {
            format!("no role ({what})")
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            format!("role {} ({what})", names.join(" or "))
        };
        Err(refused(ReadRefusal::RoleNotAllowed, who))
    };
    match body.handling {
        Handling::H0 | Handling::H1 => by_role(
            policy.h1_roles(body.kind),
            &format!(
                "officers, and the roles [reads.h2] grants for {}",
                body.kind
            ),
        ),
        Handling::H2 => by_role(
            policy.h2_roles(body.kind),
            &format!("[reads.h2] for {} at this relay", body.kind),
        ),
        Handling::H3 => {
            let names: Vec<&str> = body
                .focal_points
                .iter()
                .map(|p| p.name.trim())
                .filter(|n| !n.is_empty())
                .collect();
            let who = if names.is_empty() {
                format!(
                    "officers the roster names as focal points of {}, and it names none: ask \
                     the roster's administrators to list them",
                    body.me
                )
            } else {
                let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
                format!(
                    "officers the roster names as focal points of {}: {}",
                    body.me,
                    quoted.join(", ")
                )
            };
            if reader.role != Role::Officer {
                return Err(refused(ReadRefusal::RoleNotAllowed, who));
            }
            if names.contains(&reader.name.trim()) {
                Ok(())
            } else {
                Err(refused(ReadRefusal::NotAFocalPoint, who))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::core::fixtures::a;

    const KIND: MessageKind = MessageKind::ReadmissionRequest;

    fn focal(name: &str) -> FocalPoint {
        FocalPoint {
            name: name.into(),
            role: "focal point".into(),
            phone: String::new(),
            email: String::new(),
        }
    }

    fn decide(
        role: Role,
        name: &str,
        handling: Handling,
        points: &[FocalPoint],
        policy: &ReadPolicy,
    ) -> Result<(), ReadRefusal> {
        let me = a("BA.SPS");
        let body = Body {
            handling,
            kind: KIND,
            me: &me,
            focal_points: points,
        };
        may_read(Reader { role, name }, body, policy).map_err(|r| r.reason)
    }

    #[test]
    fn by_default_officers_read_h0_to_h2_and_no_one_else_reads_a_body() {
        let policy = ReadPolicy::default();
        let points = [focal("Ana Focal")];
        for h in [Handling::H0, Handling::H1, Handling::H2] {
            assert_eq!(decide(Role::Officer, "Bob", h, &points, &policy), Ok(()));
            for role in [Role::Auditor, Role::Admin] {
                assert_eq!(
                    decide(role, "Bob", h, &points, &policy),
                    Err(ReadRefusal::RoleNotAllowed),
                    "{role} {h:?}"
                );
            }
        }
    }

    #[test]
    fn h3_is_for_officers_named_as_focal_points() {
        let policy = ReadPolicy::default();
        let points = [focal("Ana Focal"), focal("  Marko Focal ")];
        let h3 = |role, name: &str| decide(role, name, Handling::H3, &points, &policy);
        assert_eq!(h3(Role::Officer, "Ana Focal"), Ok(()));
        assert_eq!(h3(Role::Officer, " Marko Focal"), Ok(()), "trimmed");
        assert_eq!(
            h3(Role::Officer, "ana focal"),
            Err(ReadRefusal::NotAFocalPoint),
            "exact, no case folding"
        );
        assert_eq!(
            h3(Role::Officer, "Ana Focal Jr"),
            Err(ReadRefusal::NotAFocalPoint)
        );
        assert_eq!(
            h3(Role::Admin, "Ana Focal"),
            Err(ReadRefusal::RoleNotAllowed),
            "an admin with a focal point's name is still an admin"
        );
        assert_eq!(
            decide(Role::Officer, "Ana Focal", Handling::H3, &[], &policy),
            Err(ReadRefusal::NotAFocalPoint),
            "no focal points: no one"
        );
        assert_eq!(
            decide(Role::Officer, "", Handling::H3, &[focal(" ")], &policy),
            Err(ReadRefusal::NotAFocalPoint),
            "a blank focal point matches no one"
        );
    }

    #[test]
    fn reads_h2_narrows_and_widens_per_kind() {
        let points = [focal("Ana Focal")];
        let closed = ReadPolicy {
            h2: BTreeMap::from([(KIND, BTreeSet::new())]),
        };
        assert_eq!(
            decide(Role::Officer, "Bob", Handling::H2, &points, &closed),
            Err(ReadRefusal::RoleNotAllowed)
        );
        assert_eq!(
            decide(Role::Officer, "Bob", Handling::H1, &points, &closed),
            Ok(()),
            "H1 stays open to officers"
        );
        let other_kind = ReadPolicy {
            h2: BTreeMap::from([(MessageKind::OperationalNotice, BTreeSet::new())]),
        };
        assert_eq!(
            decide(Role::Officer, "Bob", Handling::H2, &points, &other_kind),
            Ok(()),
            "only the kind named changes"
        );
        let admins = ReadPolicy {
            h2: BTreeMap::from([(KIND, BTreeSet::from([Role::Officer, Role::Admin]))]),
        };
        for h in [Handling::H0, Handling::H1, Handling::H2] {
            assert_eq!(decide(Role::Admin, "Root", h, &points, &admins), Ok(()));
            assert_eq!(
                decide(Role::Auditor, "Eve", h, &points, &admins),
                Err(ReadRefusal::RoleNotAllowed)
            );
        }
        assert_eq!(
            decide(Role::Admin, "Ana Focal", Handling::H3, &points, &admins),
            Err(ReadRefusal::RoleNotAllowed),
            "[reads] does not open H3"
        );
    }

    #[test]
    fn the_policy_in_words() {
        assert_eq!(
            ReadPolicy::default().describe(),
            "H2 bodies: role officer for every kind"
        );
        let p = ReadPolicy {
            h2: BTreeMap::from([
                (KIND, BTreeSet::from([Role::Officer, Role::Admin])),
                (MessageKind::OperationalNotice, BTreeSet::new()),
            ]),
        };
        assert_eq!(
            p.describe(),
            "H2 bodies: role officer for every kind but operational-notice: no role; \
             readmission-request: officer, admin"
        );
    }

    #[test]
    fn a_refusal_says_the_level_and_who_may_read() {
        let me = a("BA.SPS");
        let points = [focal("Ana Focal")];
        let body = Body {
            handling: Handling::H3,
            kind: KIND,
            me: &me,
            focal_points: &points,
        };
        let reader = Reader {
            role: Role::Officer,
            name: "duty officer",
        };
        let text = may_read(reader, body, &ReadPolicy::default())
            .unwrap_err()
            .to_string();
        for part in [
            "H3",
            "focal points of BA.SPS",
            "\"Ana Focal\"",
            "\"duty officer\"",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let closed = ReadPolicy {
            h2: BTreeMap::from([(KIND, BTreeSet::new())]),
        };
        let text = may_read(
            reader,
            Body {
                handling: Handling::H2,
                ..body
            },
            &closed,
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("no role ([reads.h2]"), "{text}");
    }
}
