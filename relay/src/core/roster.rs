//! What a newer roster changes for a running relay, and what to do with a
//! roster file that is not the roster in force. The roster has already
//! been verified against the one in force ([`kurir_certs::Roster::accept_with`]:
//! k of n, the old and the new quorum on a key-set change, version only
//! forward); this decides on its contents only.
//!
//! - [`diff`]: the members added and removed, and those whose endpoints,
//!   CA certificate or keys changed: the driver swaps the roster in every
//!   part that reads it, closes the connections of members removed (their
//!   own close code) and of members whose endpoints or CA changed (they
//!   are dialed again, against the new roster), and ends the deliveries
//!   queued for members removed;
//! - [`file_versus`]: a roster file older than the roster in force (the
//!   relay adopted a newer one since the file was written) is behind, not
//!   an error: the relay keeps the roster in force and warns, at start as
//!   while it runs;
//! - [`versus_peer`]: what a peer's roster version and fingerprint say
//!   (same, ahead: fetch its chain, behind, or a conflict: an alarm), and
//!   [`chain_after`]: which of the rosters this relay holds to send a peer
//!   that is behind.

use kurir_certs::roster::{Member, RosterBody};
use kurir_proto::AuthorityId;

/// What a newer roster changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterChange {
    /// The version in force before.
    pub from: u64,
    /// The new version.
    pub to: u64,
    /// Members the new roster lists and the old one does not.
    pub added: Vec<AuthorityId>,
    /// Members the old roster lists and the new one does not: their
    /// connections are closed, new ones refused, deliveries to them ended.
    pub removed: Vec<AuthorityId>,
    /// Members whose endpoints changed: the connection to them is closed,
    /// the next delivery dials the new endpoint.
    pub endpoints: Vec<AuthorityId>,
    /// Members whose CA certificate changed: their connections were
    /// authenticated against the old CA, and are closed.
    pub cas: Vec<AuthorityId>,
    /// Members whose message keys, log key, kinds or focal points changed
    /// (read per operation from the roster in force; nothing to close).
    pub details: Vec<AuthorityId>,
    /// Whether the new roster no longer lists this relay's own authority.
    pub me_removed: bool,
}

impl RosterChange {
    /// The members whose open connections end: removed, or reached at
    /// other endpoints, or under another CA.
    pub fn to_close(&self) -> Vec<AuthorityId> {
        let mut out: Vec<AuthorityId> = self
            .removed
            .iter()
            .chain(&self.endpoints)
            .chain(&self.cas)
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What changes from `old` to `new`, seen from the relay of `me`.
pub fn diff(me: &AuthorityId, old: &RosterBody, new: &RosterBody) -> RosterChange {
    let mut change = RosterChange {
        from: old.version,
        to: new.version,
        ..RosterChange::default()
    };
    for m in &new.members {
        match old.member(&m.id) {
            None => change.added.push(m.id.clone()),
            Some(was) => compare(was, m, &mut change),
        }
    }
    for m in &old.members {
        if new.member(&m.id).is_none() {
            change.removed.push(m.id.clone());
        }
    }
    change.me_removed = old.member(me).is_some() && new.member(me).is_none();
    change
}

fn compare(was: &Member, now: &Member, change: &mut RosterChange) {
    if was.endpoints != now.endpoints {
        change.endpoints.push(now.id.clone());
    }
    if was.tls_ca != now.tls_ca {
        change.cas.push(now.id.clone());
    }
    if was.message_keys != now.message_keys
        || was.log_key != now.log_key
        || was.kinds != now.kinds
        || was.focal_points != now.focal_points
        || was.name != now.name
        || was.revoked_node_certs != now.revoked_node_certs
    {
        change.details.push(now.id.clone());
    }
}

/// A roster file compared with the roster in force, by version (the file
/// has been decoded, not yet verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileVersus {
    /// The file is newer: verify it against the roster in force and, if it
    /// passes, put it in force.
    Newer,
    /// The same version: nothing to do if it is the same roster; the same
    /// version with other content is refused (verification says so).
    Same,
    /// The file is older than the roster in force (adopted from a peer, or
    /// installed since): keep the roster in force, warn that the file is
    /// behind. Never a reason to stop or refuse to start.
    Behind {
        /// The file's version.
        file: u64,
        /// The version in force.
        in_force: u64,
    },
}

/// Compares a roster file's version with the version in force.
pub fn file_versus(file: u64, in_force: u64) -> FileVersus {
    use std::cmp::Ordering;
    match file.cmp(&in_force) {
        Ordering::Greater => FileVersus::Newer,
        Ordering::Equal => FileVersus::Same,
        Ordering::Less => FileVersus::Behind { file, in_force },
    }
}

/// A peer's roster in force compared with ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRoster {
    /// The same roster.
    Same,
    /// The peer holds a newer version: take the rosters it sends, each
    /// verified against the roster in force.
    Ahead {
        /// The peer's version.
        theirs: u64,
    },
    /// The peer is behind: it fetches from us (we may send it the chain).
    Behind {
        /// The peer's version.
        theirs: u64,
    },
    /// The same version with another fingerprint: two different rosters
    /// claim one version. An alarm; nothing is taken.
    Conflict {
        /// The version both claim.
        version: u64,
    },
}

/// Compares a peer's roster in force (`theirs`, version and fingerprint)
/// with ours.
pub fn versus_peer(ours: (u64, &str), theirs: (u64, &str)) -> PeerRoster {
    use std::cmp::Ordering;
    match theirs.0.cmp(&ours.0) {
        Ordering::Greater => PeerRoster::Ahead { theirs: theirs.0 },
        Ordering::Less => PeerRoster::Behind { theirs: theirs.0 },
        Ordering::Equal if theirs.1 == ours.1 => PeerRoster::Same,
        Ordering::Equal => PeerRoster::Conflict { version: ours.0 },
    }
}

/// Of the rosters this relay holds (`held`: version and signed bytes, in
/// any order), those newer than `after`, oldest first, at most `max`.
pub fn chain_after(mut held: Vec<(u64, Vec<u8>)>, after: u64, max: usize) -> Vec<Vec<u8>> {
    held.retain(|(v, _)| *v > after);
    held.sort_by_key(|(v, _)| *v);
    held.dedup_by_key(|(v, _)| *v);
    held.into_iter().take(max).map(|(_, b)| b).collect()
}

#[cfg(test)]
mod tests {
    use kurir_certs::roster::Endpoint;
    use kurir_proto::Timestamp;
    use kurir_proto::ed25519_dalek::SigningKey;

    use super::*;

    fn id(s: &str) -> AuthorityId {
        AuthorityId::parse(s).unwrap()
    }

    fn member(name: &str, seed: u8) -> Member {
        Member {
            id: id(name),
            name: format!("{name} (test)"),
            endpoints: vec![Endpoint {
                host: "localhost".into(),
                port: 7000 + u16::from(seed),
            }],
            tls_ca: vec![seed; 4],
            message_keys: vec![],
            log_key: SigningKey::from_bytes(&[seed; 32]).verifying_key(),
            log_keys_before: Vec::new(),
            kinds: vec![],
            focal_points: vec![],
            revoked_node_certs: vec![],
        }
    }

    fn body(version: u64, members: Vec<Member>) -> RosterBody {
        RosterBody {
            version,
            issued_at: Timestamp(0),
            threshold: 1,
            roster_keys: vec![],
            members,
        }
    }

    #[test]
    fn a_member_added_and_one_removed() {
        let old = body(
            2,
            vec![
                member("BA.SPS", 1),
                member("MK.MVR", 2),
                member("RS.MUP", 3),
            ],
        );
        let new = body(
            3,
            vec![
                member("AT.BMI", 4),
                member("BA.SPS", 1),
                member("RS.MUP", 3),
            ],
        );
        let change = diff(&id("RS.MUP"), &old, &new);
        assert_eq!(change.from, 2);
        assert_eq!(change.to, 3);
        assert_eq!(change.added, vec![id("AT.BMI")]);
        assert_eq!(change.removed, vec![id("MK.MVR")]);
        assert!(change.endpoints.is_empty() && change.cas.is_empty() && change.details.is_empty());
        assert!(!change.me_removed);
        assert_eq!(change.to_close(), vec![id("MK.MVR")]);
    }

    #[test]
    fn endpoints_and_cas_changed_close_connections_details_do_not() {
        let old = body(
            1,
            vec![member("BA.SPS", 1), member("ME.UP", 2), member("RS.MUP", 3)],
        );
        let mut ba = member("BA.SPS", 1);
        ba.endpoints[0].port = 9999;
        let mut me = member("ME.UP", 2);
        me.tls_ca = vec![9; 4];
        let mut rs = member("RS.MUP", 3);
        rs.kinds = vec![kurir_proto::message::MessageKind::OperationalNotice];
        let new = body(2, vec![ba, me, rs]);
        let change = diff(&id("RS.MUP"), &old, &new);
        assert_eq!(change.endpoints, vec![id("BA.SPS")]);
        assert_eq!(change.cas, vec![id("ME.UP")]);
        assert_eq!(change.details, vec![id("RS.MUP")]);
        assert!(change.added.is_empty() && change.removed.is_empty());
        assert_eq!(change.to_close(), vec![id("BA.SPS"), id("ME.UP")]);
    }

    #[test]
    fn this_relay_removed_is_said() {
        let old = body(1, vec![member("BA.SPS", 1), member("MK.MVR", 2)]);
        let new = body(2, vec![member("BA.SPS", 1)]);
        assert!(diff(&id("MK.MVR"), &old, &new).me_removed);
        assert!(!diff(&id("BA.SPS"), &old, &new).me_removed);
    }

    #[test]
    fn the_same_roster_changes_nothing() {
        let old = body(4, vec![member("BA.SPS", 1), member("RS.MUP", 3)]);
        let change = diff(&id("RS.MUP"), &old, &old.clone());
        assert_eq!(change.to_close(), Vec::<AuthorityId>::new());
        assert!(change.added.is_empty() && change.details.is_empty());
    }

    #[test]
    fn a_peers_roster_is_same_ahead_behind_or_a_conflict() {
        assert_eq!(versus_peer((2, "aa"), (2, "aa")), PeerRoster::Same);
        assert_eq!(
            versus_peer((2, "aa"), (3, "bb")),
            PeerRoster::Ahead { theirs: 3 }
        );
        assert_eq!(
            versus_peer((2, "aa"), (1, "cc")),
            PeerRoster::Behind { theirs: 1 }
        );
        assert_eq!(
            versus_peer((2, "aa"), (2, "bb")),
            PeerRoster::Conflict { version: 2 }
        );
    }

    #[test]
    fn the_chain_a_peer_gets_is_newer_oldest_first_and_bounded() {
        let held = vec![
            (3, vec![3]),
            (1, vec![1]),
            (5, vec![5]),
            (2, vec![2]),
            (4, vec![4]),
        ];
        assert_eq!(
            chain_after(held.clone(), 2, 16),
            vec![vec![3], vec![4], vec![5]]
        );
        assert_eq!(chain_after(held.clone(), 1, 2), vec![vec![2], vec![3]]);
        assert!(chain_after(held, 5, 16).is_empty());
    }

    #[test]
    fn a_file_behind_the_roster_in_force_is_not_an_error() {
        assert_eq!(file_versus(3, 2), FileVersus::Newer);
        assert_eq!(file_versus(2, 2), FileVersus::Same);
        assert_eq!(
            file_versus(1, 2),
            FileVersus::Behind {
                file: 1,
                in_force: 2
            }
        );
    }
}
