//! [`Role`]: what an officer's certificate lets it do at its relay. Named
//! in officer certificates (`kurir-certs`), in the officer API, and in the
//! audit entries of reads ([`crate::audit::Record::BodyRead`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an officer may do at its relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends and reads messages.
    Officer,
    /// Reads the audit log and exports bundles.
    Auditor,
    /// Administers the relay.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Officer, Role::Auditor, Role::Admin];

    /// The name in certificates and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {:?} (expected officer, auditor or admin)",
                    s.chars().take(32).collect::<String>()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let e = "root".parse::<Role>().unwrap_err();
        assert!(e.contains("officer, auditor or admin"), "{e}");
    }
}
