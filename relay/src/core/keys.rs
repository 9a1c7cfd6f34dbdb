//! Which message key signs: the relay holds every message key of its
//! authority that the roster lists, each with the validity the roster gives
//! it, and signs each envelope and receipt with the newest key valid at the
//! moment of that signature (the envelope's `created_at`, the receipt's
//! `received_at`: the times peers check the key's validity against).
//!
//! A key chosen once at start would keep signing after its `valid_until`,
//! and peers would refuse everything the relay signs from then on
//! (`key_not_valid`). When no key is valid at a moment (the last key
//! expired, or a gap between two keys), nothing is signed: the caller
//! refuses the submission, or answers no receipt, with [`NoValidKey`].
//! A key the roster revokes (`revoked_at`) is not valid from that moment
//! on: the newest other key valid then signs, or nothing does.
//!
//! Pure: the driver reads the key files and the roster (at start, when a
//! roster is put in force, and on SIGHUP) and passes `now` to
//! [`MessageKeys::at`].

use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, PublicKey, Timestamp};

/// One message key the relay holds, with what the roster says of it.
#[derive(Clone)]
pub struct HeldKey {
    /// The private half.
    pub key: SigningKey,
    /// The roster's entry for it (authority, public key, validity).
    pub listed: PublicKey,
}

impl std::fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldKey")
            .field("kid", &KeyId::of(&self.listed.key))
            .field("valid_from", &self.listed.valid_from)
            .field("valid_until", &self.listed.valid_until)
            .finish_non_exhaustive()
    }
}

/// The message keys of this authority, newest first by `valid_from`.
#[derive(Debug, Clone)]
pub struct MessageKeys {
    me: AuthorityId,
    keys: Vec<HeldKey>,
}

impl MessageKeys {
    /// The keys of `me` among `held`: keys the roster lists for another
    /// authority are left out.
    pub fn new(me: AuthorityId, held: Vec<HeldKey>) -> MessageKeys {
        let mut keys: Vec<HeldKey> = held
            .into_iter()
            .filter(|k| k.listed.authority == me && k.listed.key == k.key.verifying_key())
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.listed.valid_from));
        MessageKeys { me, keys }
    }

    /// The same keys as a newer roster lists them (`lookup`): each with the
    /// validity and `revoked_at` that roster gives it, a key it no longer
    /// lists for this authority left out. What the relay signs with when
    /// its key files cannot be read again: never a key with the validity
    /// of a roster no longer in force.
    pub fn relisted(&self, lookup: &dyn KeyLookup) -> MessageKeys {
        let held = self
            .keys
            .iter()
            .filter_map(|k| {
                let listed = lookup.lookup(&KeyId::of(&k.key.verifying_key()))?;
                Some(HeldKey {
                    key: k.key.clone(),
                    listed,
                })
            })
            .collect();
        MessageKeys::new(self.me.clone(), held)
    }

    /// The key to sign with at `t`: of the keys valid at `t`, the one that
    /// became valid last.
    pub fn at(&self, t: Timestamp) -> Result<&SigningKey, NoValidKey> {
        self.keys
            .iter()
            .find(|k| k.listed.valid_at(t))
            .map(|k| &k.key)
            .ok_or_else(|| self.none_at(t))
    }

    /// How many keys the relay holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the relay holds no key of its authority.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The validity of every key held, newest first: (key id, from, until).
    pub fn windows(&self) -> Vec<KeyWindow> {
        self.keys
            .iter()
            .map(|k| KeyWindow {
                kid: KeyId::of(&k.listed.key),
                valid_from: k.listed.valid_from,
                valid_until: end_of(&k.listed),
            })
            .collect()
    }

    /// When the key valid at `t` stops being valid with no other key to
    /// follow it: `None` when a key is valid from then on, or none is
    /// valid at `t`.
    pub fn last_valid_until(&self, t: Timestamp) -> Option<Timestamp> {
        let mut at = t;
        // Walk from key to key while one is valid at the end of the last.
        for _ in 0..=self.keys.len() {
            let current = self.keys.iter().find(|k| k.listed.valid_at(at))?;
            match end_of(&current.listed) {
                None => return None,
                Some(until) => at = until,
            }
            if !self.keys.iter().any(|k| k.listed.valid_at(at)) {
                return Some(at);
            }
        }
        None
    }

    fn none_at(&self, at: Timestamp) -> NoValidKey {
        NoValidKey {
            me: self.me.clone(),
            at,
            held: self.windows(),
        }
    }
}

/// The first moment a key may no longer sign: its `valid_until` or its
/// `revoked_at`, whichever comes first.
fn end_of(k: &PublicKey) -> Option<Timestamp> {
    match (k.valid_until, k.revoked_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A key's id and validity, for messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWindow {
    /// The key id.
    pub kid: KeyId,
    /// First moment it may sign.
    pub valid_from: Timestamp,
    /// First moment it may no longer sign (`valid_until` or `revoked_at`).
    pub valid_until: Option<Timestamp>,
}

impl std::fmt::Display for KeyWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.valid_until {
            Some(until) => write!(f, "{} (from {} until {until})", self.kid, self.valid_from),
            None => write!(f, "{} (from {})", self.kid, self.valid_from),
        }
    }
}

/// No message key of this authority is valid at a moment: nothing can be
/// signed that peers would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no message key of {me} is valid at {at}: the keys this relay holds that the roster lists \
     are {}; put the next key in the authority's message-keys directory (kurir-certs authority \
     rotate-key), have it added to the roster and install that roster (kurir-relay roster \
     install, or the file and SIGHUP), or check the clock",
    held_list(.held)
)]
pub struct NoValidKey {
    /// This authority.
    pub me: AuthorityId,
    /// The moment of the signature.
    pub at: Timestamp,
    /// The keys held, newest first.
    pub held: Vec<KeyWindow>,
}

fn held_list(held: &[KeyWindow]) -> String {
    if held.is_empty() {
        return "none".to_owned();
    }
    held.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What goes in force when the relay reads its `message-keys/` directory
/// again against the roster in force ([`choose`]).
#[derive(Debug)]
pub enum Choice {
    /// The keys read from the directory: one of them is valid now.
    Read {
        /// The keys to sign with from now on.
        keys: MessageKeys,
        /// Whether their windows differ from those of the keys in force.
        changed: bool,
        /// When they stop being valid with no later key held, if that is
        /// within the first expiry warning's reach (30 days): further off
        /// it is the expiry gauges' and warnings' to say.
        ends_soon: Option<Timestamp>,
    },
    /// The keys in force stay, as the roster in force lists them.
    Kept {
        /// The keys in force, relisted.
        keys: MessageKeys,
        /// Why the directory's keys were not taken: none of them is valid
        /// now (`None` when the directory could not be read at all).
        refused: Option<NoValidKey>,
        /// Set when the kept keys sign nothing either: submissions and
        /// receipts are refused until a key the roster lists is installed.
        /// Signing with a key the roster revoked or ended would only make
        /// peers refuse what this relay signs.
        signs_nothing: Option<NoValidKey>,
    },
}

/// Which message keys go in force at `now`. `current` is the keys in force
/// already relisted against the roster in force ([`MessageKeys::relisted`]:
/// a key that roster revoked or ended is never kept with the validity of an
/// older roster); `read` is what the directory gave, matched against the
/// same roster, or `None` when it could not be read.
///
/// The keys read win when one of them is valid now; otherwise the keys in
/// force stay, even when none of them is valid either.
pub fn choose(current: MessageKeys, read: Option<MessageKeys>, now: Timestamp) -> Choice {
    let refused = match read {
        Some(next) => match next.at(now) {
            Ok(_) => {
                let changed = next.windows() != current.windows();
                let soon = now.plus_millis(crate::core::expiry::WARN_DAYS[0] * 86_400_000);
                let ends_soon = next.last_valid_until(now).filter(|end| *end <= soon);
                return Choice::Read {
                    keys: next,
                    changed,
                    ends_soon,
                };
            }
            Err(e) => Some(e),
        },
        None => None,
    };
    let signs_nothing = current.at(now).err();
    Choice::Kept {
        keys: current,
        refused,
        signs_nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn me() -> AuthorityId {
        AuthorityId::parse("RS.MUP").unwrap()
    }

    fn held(n: u8, from: u64, until: Option<u64>) -> HeldKey {
        let key = SigningKey::from_bytes(&[n; 32]);
        HeldKey {
            listed: PublicKey {
                authority: me(),
                key: key.verifying_key(),
                valid_from: Timestamp(from),
                valid_until: until.map(Timestamp),
                revoked_at: None,
            },
            key,
        }
    }

    fn kid(k: &SigningKey) -> KeyId {
        KeyId::of(&k.verifying_key())
    }

    #[test]
    fn the_newest_key_valid_at_each_moment_signs() {
        // Key 1 until 10 h; key 2 from 8 h (two hours of overlap).
        let keys = MessageKeys::new(
            me(),
            vec![held(1, 0, Some(10 * HOUR)), held(2, 8 * HOUR, None)],
        );
        let one = kid(&SigningKey::from_bytes(&[1; 32]));
        let two = kid(&SigningKey::from_bytes(&[2; 32]));
        assert_eq!(kid(keys.at(Timestamp(HOUR)).unwrap()), one);
        assert_eq!(kid(keys.at(Timestamp(8 * HOUR - 1)).unwrap()), one);
        // In the overlap the newer key signs.
        assert_eq!(kid(keys.at(Timestamp(8 * HOUR)).unwrap()), two);
        assert_eq!(kid(keys.at(Timestamp(9 * HOUR)).unwrap()), two);
        // After the first one's end, only the second.
        assert_eq!(kid(keys.at(Timestamp(10 * HOUR)).unwrap()), two);
        assert_eq!(kid(keys.at(Timestamp(1000 * HOUR)).unwrap()), two);
        assert_eq!(keys.last_valid_until(Timestamp(HOUR)), None);
    }

    #[test]
    fn a_moment_no_key_covers_is_refused_and_named() {
        // Key 1 until 10 h, key 2 from 12 h until 20 h: a gap, then nothing.
        let keys = MessageKeys::new(
            me(),
            vec![
                held(2, 12 * HOUR, Some(20 * HOUR)),
                held(1, 0, Some(10 * HOUR)),
            ],
        );
        assert!(keys.at(Timestamp(9 * HOUR)).is_ok());
        let gap = keys.at(Timestamp(11 * HOUR)).unwrap_err();
        assert_eq!(gap.at, Timestamp(11 * HOUR));
        assert_eq!(gap.held.len(), 2);
        let text = gap.to_string();
        assert!(
            text.starts_with("no message key of RS.MUP is valid at "),
            "{text}"
        );
        assert!(text.contains("kurir-certs authority rotate-key"), "{text}");
        assert!(keys.at(Timestamp(12 * HOUR)).is_ok());
        assert!(
            keys.at(Timestamp(20 * HOUR)).is_err(),
            "valid_until is exclusive"
        );
        assert!(keys.at(Timestamp(0)).is_ok());
        assert_eq!(
            keys.last_valid_until(Timestamp(HOUR)),
            Some(Timestamp(10 * HOUR))
        );
        assert_eq!(
            keys.last_valid_until(Timestamp(13 * HOUR)),
            Some(Timestamp(20 * HOUR))
        );
        assert_eq!(keys.last_valid_until(Timestamp(11 * HOUR)), None);
    }

    #[test]
    fn a_revoked_newest_key_gives_way_to_the_next_valid_one_or_to_none() {
        // Key 1 until 100 h; key 2 from 8 h, revoked at 9 h.
        let one = kid(&SigningKey::from_bytes(&[1; 32]));
        let two = kid(&SigningKey::from_bytes(&[2; 32]));
        let mut newest = held(2, 8 * HOUR, None);
        newest.listed.revoked_at = Some(Timestamp(9 * HOUR));
        let keys = MessageKeys::new(me(), vec![held(1, 0, Some(100 * HOUR)), newest]);
        assert_eq!(kid(keys.at(Timestamp(8 * HOUR)).unwrap()), two);
        // From revoked_at on, the older key still valid signs.
        assert_eq!(kid(keys.at(Timestamp(9 * HOUR)).unwrap()), one);
        assert_eq!(kid(keys.at(Timestamp(99 * HOUR)).unwrap()), one);
        // When that one ends there is none, and the error says so.
        let err = keys.at(Timestamp(100 * HOUR)).unwrap_err();
        assert!(
            err.to_string().contains("no message key of RS.MUP"),
            "{err}"
        );
        assert_eq!(
            keys.last_valid_until(Timestamp(9 * HOUR)),
            Some(Timestamp(100 * HOUR))
        );
        // A revoked only key: nothing signs from revoked_at on.
        let mut only = held(3, 0, None);
        only.listed.revoked_at = Some(Timestamp(5 * HOUR));
        let keys = MessageKeys::new(me(), vec![only]);
        assert!(keys.at(Timestamp(4 * HOUR)).is_ok());
        assert!(keys.at(Timestamp(5 * HOUR)).is_err());
        assert_eq!(
            keys.last_valid_until(Timestamp(HOUR)),
            Some(Timestamp(5 * HOUR))
        );
        assert_eq!(keys.windows()[0].valid_until, Some(Timestamp(5 * HOUR)));
    }

    #[test]
    fn keys_of_other_authorities_or_mismatched_halves_are_not_held() {
        let mut other = held(3, 0, None);
        other.listed.authority = AuthorityId::parse("BA.SPS").unwrap();
        let mut mismatched = held(4, 0, None);
        mismatched.listed.key = SigningKey::from_bytes(&[5; 32]).verifying_key();
        let keys = MessageKeys::new(me(), vec![other, mismatched]);
        assert!(keys.is_empty());
        let err = keys.at(Timestamp(HOUR)).unwrap_err();
        assert!(err.to_string().contains("are none;"), "{err}");
    }

    fn windows_of(choice: &Choice) -> Vec<KeyWindow> {
        match choice {
            Choice::Read { keys, .. } | Choice::Kept { keys, .. } => keys.windows(),
        }
    }

    #[test]
    fn keys_read_that_are_valid_now_go_in_force_and_say_whether_they_changed() {
        let current = MessageKeys::new(me(), vec![held(1, 0, None)]);
        let read = MessageKeys::new(me(), vec![held(1, 0, None), held(2, HOUR, None)]);
        let choice = choose(current.clone(), Some(read.clone()), Timestamp(2 * HOUR));
        assert!(matches!(
            choice,
            Choice::Read {
                changed: true,
                ends_soon: None,
                ..
            }
        ));
        assert_eq!(windows_of(&choice), read.windows());
        // The same keys again: nothing changed.
        let again = choose(read.clone(), Some(read), Timestamp(2 * HOUR));
        assert!(matches!(again, Choice::Read { changed: false, .. }));
    }

    #[test]
    fn keys_read_that_end_within_thirty_days_say_when() {
        let day = 24 * HOUR;
        let current = MessageKeys::new(me(), vec![]);
        let ending = MessageKeys::new(me(), vec![held(1, 0, Some(20 * day))]);
        match choose(current.clone(), Some(ending), Timestamp(day)) {
            Choice::Read { ends_soon, .. } => assert_eq!(ends_soon, Some(Timestamp(20 * day))),
            other => panic!("expected the keys read, got {other:?}"),
        }
        // Forty days off is the expiry warnings' to say, not this choice's.
        let later = MessageKeys::new(me(), vec![held(1, 0, Some(41 * day))]);
        match choose(current, Some(later), Timestamp(day)) {
            Choice::Read { ends_soon, .. } => assert_eq!(ends_soon, None),
            other => panic!("expected the keys read, got {other:?}"),
        }
    }

    #[test]
    fn keys_read_with_none_valid_now_leave_the_keys_in_force() {
        let current = MessageKeys::new(me(), vec![held(1, 0, None)]);
        // Only a key that starts tomorrow.
        let read = MessageKeys::new(me(), vec![held(2, 30 * HOUR, None)]);
        let choice = choose(current.clone(), Some(read), Timestamp(HOUR));
        match &choice {
            Choice::Kept {
                refused: Some(e),
                signs_nothing: None,
                ..
            } => assert_eq!(e.at, Timestamp(HOUR)),
            other => panic!("expected the keys in force to stay, got {other:?}"),
        }
        assert_eq!(windows_of(&choice), current.windows());
    }

    #[test]
    fn an_unreadable_directory_leaves_the_keys_in_force_even_when_they_sign_nothing() {
        let current = MessageKeys::new(me(), vec![held(1, 0, Some(HOUR))]);
        match choose(current.clone(), None, Timestamp(HOUR / 2)) {
            Choice::Kept {
                refused: None,
                signs_nothing: None,
                ..
            } => {}
            other => panic!("expected the keys in force to stay, got {other:?}"),
        }
        // Past its end the kept key signs nothing, and the choice says so.
        match choose(current, None, Timestamp(2 * HOUR)) {
            Choice::Kept {
                refused: None,
                signs_nothing: Some(e),
                ..
            } => assert_eq!(e.at, Timestamp(2 * HOUR)),
            other => panic!("expected no valid key, got {other:?}"),
        }
    }

    #[test]
    fn a_roster_that_revokes_the_only_key_leaves_nothing_to_sign_with() {
        // The key in force, relisted against a roster that revoked it an
        // hour ago; the directory holds only that key.
        let mut revoked = held(1, 0, None);
        revoked.listed.revoked_at = Some(Timestamp(HOUR));
        let current = MessageKeys::new(me(), vec![revoked.clone()]);
        let read = MessageKeys::new(me(), vec![revoked]);
        match choose(current, Some(read), Timestamp(2 * HOUR)) {
            Choice::Kept {
                refused: Some(_),
                signs_nothing: Some(_),
                keys,
            } => assert!(keys.at(Timestamp(2 * HOUR)).is_err()),
            other => panic!("expected nothing to sign with, got {other:?}"),
        }
    }
}
