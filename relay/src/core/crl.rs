//! Whether a CRL read while the relay runs replaces the one in force, and
//! which open officer connections it ends. The CRL has already been checked
//! against the authority's CA ([`kurir_certs::crl::check`]); this decides
//! on its number and contents only.
//!
//! - a higher `cRLNumber` replaces the one in force;
//! - the same number with the same revocations changes nothing;
//! - a lower number is a rollback (an old file put back), and the same
//!   number with other revocations is not a CRL `officer revoke` wrote:
//!   both are refused and the one in force stays.

use std::collections::BTreeSet;

/// What a CRL says, as far as the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct CrlFacts<'a> {
    /// Its `cRLNumber`.
    pub number: u64,
    /// The serials it revokes (hex).
    pub revoked: &'a BTreeSet<String>,
}

/// What to do with an offered CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlDecision {
    /// The CRL in force, again: nothing to do.
    Same,
    /// Put it in force, and close the open connections of these serials
    /// (revoked by it and not by the one in force).
    Apply {
        /// Serials it revokes that the CRL in force does not.
        newly_revoked: BTreeSet<String>,
    },
    /// Refused: its number is below the one in force.
    Rollback {
        /// The number in force.
        in_force: u64,
        /// The number offered.
        offered: u64,
    },
    /// Refused: the number in force, with other revocations.
    Conflict {
        /// The number both carry.
        number: u64,
    },
}

/// Decides on `offered` given the CRL `in_force`.
pub fn decide(in_force: CrlFacts<'_>, offered: CrlFacts<'_>) -> CrlDecision {
    use std::cmp::Ordering;
    match offered.number.cmp(&in_force.number) {
        Ordering::Less => CrlDecision::Rollback {
            in_force: in_force.number,
            offered: offered.number,
        },
        Ordering::Equal if offered.revoked == in_force.revoked => CrlDecision::Same,
        Ordering::Equal => CrlDecision::Conflict {
            number: offered.number,
        },
        Ordering::Greater => CrlDecision::Apply {
            newly_revoked: offered
                .revoked
                .difference(in_force.revoked)
                .cloned()
                .collect(),
        },
    }
}

/// Whether a refused CRL (`refusal`, its text) is worth an error in the
/// log: always when an admin asked (`SIGHUP`, `asked`), and in the periodic
/// check only when it is not the refusal logged last (`last`), so that a
/// missing or unreadable file is reported once, not at every check.
pub fn worth_logging(last: Option<&str>, refusal: &str, asked: bool) -> bool {
    asked || last != Some(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(serials: &[&str]) -> BTreeSet<String> {
        serials.iter().map(|s| (*s).to_owned()).collect()
    }

    fn facts(number: u64, revoked: &BTreeSet<String>) -> CrlFacts<'_> {
        CrlFacts { number, revoked }
    }

    #[test]
    fn a_newer_crl_applies_and_names_the_newly_revoked() {
        let old = set(&["0a"]);
        let new = set(&["0a", "0b"]);
        assert_eq!(
            decide(facts(2, &old), facts(3, &new)),
            CrlDecision::Apply {
                newly_revoked: set(&["0b"])
            }
        );
    }

    #[test]
    fn a_newer_crl_that_lifts_a_revocation_applies_and_closes_nothing() {
        let old = set(&["0a"]);
        let new = set(&[]);
        assert_eq!(
            decide(facts(2, &old), facts(3, &new)),
            CrlDecision::Apply {
                newly_revoked: set(&[])
            }
        );
    }

    #[test]
    fn the_same_crl_changes_nothing() {
        let old = set(&["0a"]);
        assert_eq!(decide(facts(2, &old), facts(2, &old)), CrlDecision::Same);
    }

    #[test]
    fn an_older_crl_is_a_rollback() {
        let old = set(&["0a", "0b"]);
        let older = set(&["0a"]);
        assert_eq!(
            decide(facts(3, &old), facts(2, &older)),
            CrlDecision::Rollback {
                in_force: 3,
                offered: 2
            }
        );
    }

    #[test]
    fn the_same_number_with_other_revocations_is_refused() {
        let old = set(&["0a"]);
        let other = set(&["0b"]);
        assert_eq!(
            decide(facts(2, &old), facts(2, &other)),
            CrlDecision::Conflict { number: 2 }
        );
    }

    #[test]
    fn a_refusal_repeated_by_the_periodic_check_is_logged_once() {
        let missing = "cannot read crl.pem: No such file or directory";
        assert!(worth_logging(None, missing, false));
        assert!(!worth_logging(Some(missing), missing, false));
        assert!(worth_logging(
            Some(missing),
            "crl.pem: not signed by the CA",
            false
        ));
        // An admin who asks always hears why.
        assert!(worth_logging(Some(missing), missing, true));
    }
}
