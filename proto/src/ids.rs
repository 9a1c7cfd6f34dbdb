//! Validated identifiers: authorities, messages, cases and keys.
//!
//! Each type can only be built through a constructor that checks it, so a value
//! of the type is always well formed ("parse, don't validate"). Parse errors say
//! what is wrong and show an example of a valid value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::digest::domain;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason} (example of a valid value: {example})")]
pub struct IdError {
    /// Which kind of identifier was being parsed.
    pub what: &'static str,
    /// The input, cut to 64 characters.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// A valid value of the same kind.
    pub example: &'static str,
}

impl IdError {
    fn new(what: &'static str, input: &str, reason: &'static str, example: &'static str) -> Self {
        IdError {
            what,
            input: input.chars().take(64).collect(),
            reason,
            example,
        }
    }
}

/// A member authority of the federation: `CC.AGENCY`.
///
/// `CC` is an ISO 3166-1 alpha-2 country code (two upper-case ASCII letters),
/// `AGENCY` an upper-case agency code of 2 to 16 ASCII letters and digits that
/// starts with a letter: `RS.MUP`, `BA.SPS`, `ME.UP`, `MK.MVR`, `AT.BMI`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthorityId(String);

impl AuthorityId {
    const WHAT: &'static str = "authority id";
    const EXAMPLE: &'static str = "RS.MUP";

    /// Parses and checks an authority id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let err = |reason| IdError::new(Self::WHAT, s, reason, Self::EXAMPLE);
        let (country, agency) = s
            .split_once('.')
            .ok_or_else(|| err("expected COUNTRY.AGENCY with a dot between them"))?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(
                "the country must be an ISO 3166-1 alpha-2 code in upper case",
            ));
        }
        if !(2..=16).contains(&agency.len()) {
            return Err(err("the agency code must be 2 to 16 characters long"));
        }
        if !agency.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(err("the agency code must start with an upper-case letter"));
        }
        if !agency
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(err(
                "the agency code may only hold upper-case letters A-Z and digits",
            ));
        }
        Ok(AuthorityId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166-1 alpha-2 country code.
    pub fn country(&self) -> &str {
        &self.0[..2]
    }
}

/// A message id: a UUID of version 7 (time-ordered, RFC 9562).
///
/// On the wire it is a 16-byte CBOR byte string; as text, the hyphenated
/// lower-case UUID form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    const WHAT: &'static str = "message id";
    const EXAMPLE: &'static str = "019b0c7e-8f3a-7c2d-9a41-5e6f7a8b9c0d";

    /// Builds a new id from a Unix time in milliseconds and 10 random bytes.
    ///
    /// `proto` has no clock and no random source: the caller supplies both.
    pub fn new_v7(unix_millis: u64, random: [u8; 10]) -> Self {
        MessageId(uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid())
    }

    /// Checks 16 bytes from the wire.
    pub fn from_bytes(bytes: [u8; 16]) -> Result<Self, IdError> {
        Self::check(uuid::Uuid::from_bytes(bytes), &hex::encode(bytes))
    }

    /// Parses the hyphenated text form.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let uuid = uuid::Uuid::try_parse(s).map_err(|_| {
            IdError::new(
                Self::WHAT,
                s,
                "not a UUID in the hyphenated form",
                Self::EXAMPLE,
            )
        })?;
        Self::check(uuid, s)
    }

    fn check(uuid: uuid::Uuid, input: &str) -> Result<Self, IdError> {
        if uuid.get_version_num() != 7 || uuid.get_variant() != uuid::Variant::RFC4122 {
            return Err(IdError::new(
                Self::WHAT,
                input,
                "must be a UUID of version 7 with the RFC 9562 variant",
                Self::EXAMPLE,
            ));
        }
        Ok(MessageId(uuid))
    }

    /// The 16 bytes of the UUID.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The Unix time in milliseconds embedded in the id.
    pub fn unix_millis(&self) -> u64 {
        let b = self.0.as_bytes();
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

/// A readmission case: `AUTHORITY:LOCAL`, the authority that opened the case
/// and its own reference, e.g. `RS.MUP:2026-000123`.
///
/// `LOCAL` is 1 to 40 ASCII letters, digits, `-`, `_` or `/`. Scoping the case
/// by the authority that opened it keeps ids unique across the federation
/// without coordination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId(String);

impl CaseId {
    const WHAT: &'static str = "case id";
    const EXAMPLE: &'static str = "RS.MUP:2026-000123";

    /// Parses and checks a case id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let err = |reason| IdError::new(Self::WHAT, s, reason, Self::EXAMPLE);
        let (authority, local) = s
            .split_once(':')
            .ok_or_else(|| err("expected AUTHORITY:REFERENCE with a colon between them"))?;
        AuthorityId::parse(authority)
            .map_err(|_| err("the part before the colon must be an authority id such as RS.MUP"))?;
        if !(1..=40).contains(&local.len()) {
            return Err(err("the reference must be 1 to 40 characters long"));
        }
        if !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/'))
        {
            return Err(err(
                "the reference may only hold ASCII letters, digits, '-', '_' and '/'",
            ));
        }
        Ok(CaseId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The authority that opened the case.
    pub fn authority(&self) -> AuthorityId {
        let (authority, _) = self.0.split_once(':').unwrap_or_default();
        AuthorityId(authority.to_owned())
    }
}

/// The id of an Ed25519 public key: the first 16 bytes of
/// SHA-256(`"kurir/v1/key-id"` ‖ 0x00 ‖ public key).
///
/// Carried as `kid` in COSE protected headers; as text, 32 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 16]);

impl KeyId {
    const WHAT: &'static str = "key id";
    const EXAMPLE: &'static str = "3d4017c3e843895a92b70aa74d1b7ebc";
    /// Length of a key id in bytes.
    pub const LEN: usize = 16;

    /// Derives the id of an Ed25519 public key.
    pub fn of(key: &ed25519_dalek::VerifyingKey) -> Self {
        let mut h = Sha256::new();
        h.update(domain::KEY_ID);
        h.update(key.as_bytes());
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        KeyId(id)
    }

    /// Checks a key id taken from the wire.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        let id: [u8; 16] = bytes.try_into().map_err(|_| {
            IdError::new(
                Self::WHAT,
                &hex::encode(bytes),
                "must be exactly 16 bytes",
                Self::EXAMPLE,
            )
        })?;
        Ok(KeyId(id))
    }

    /// Parses 32 hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| {
            IdError::new(
                Self::WHAT,
                s,
                "must be exactly 32 hexadecimal digits",
                Self::EXAMPLE,
            )
        })?;
        Ok(KeyId(id))
    }

    /// The 16 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

macro_rules! text_id {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(AuthorityId);
text_id!(CaseId);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

/// In message bodies a message id is a 16-byte byte string, as in the header.
impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes_16(d)?;
        MessageId::from_bytes(bytes).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for KeyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

fn serde_bytes_16<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = [u8; 16];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string of 16 bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<[u8; 16], E> {
            v.try_into()
                .map_err(|_| E::invalid_length(v.len(), &"16 bytes"))
        }
    }
    d.deserialize_bytes(V)
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for MessageId {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<MessageId>;
    fn arbitrary_with((): ()) -> Self::Strategy {
        use proptest::prelude::*;
        (0u64..(1 << 48), any::<[u8; 10]>())
            .prop_map(|(ms, r)| MessageId::new_v7(ms, r))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_ids() {
        for ok in [
            "RS.MUP",
            "BA.SPS",
            "ME.UP",
            "MK.MVR",
            "AT.BMI",
            "EU.FRONTEX1",
        ] {
            assert_eq!(AuthorityId::parse(ok).unwrap().as_str(), ok);
        }
        for (bad, reason) in [
            ("RSMUP", "dot"),
            ("rs.MUP", "upper case"),
            ("SRB.MUP", "alpha-2"),
            ("RS.M", "2 to 16"),
            ("RS.1MUP", "start with"),
            ("RS.MU-P", "may only hold"),
            ("RS.", "2 to 16"),
        ] {
            let err = AuthorityId::parse(bad).unwrap_err();
            assert!(err.reason.contains(reason), "{bad}: {err}");
            assert!(err.to_string().contains("RS.MUP"), "{err}");
        }
    }

    #[test]
    fn message_ids() {
        let id = MessageId::new_v7(1_764_000_000_123, [7; 10]);
        assert_eq!(id.unix_millis(), 1_764_000_000_123);
        let text = id.to_string();
        assert_eq!(MessageId::parse(&text).unwrap(), id);
        assert_eq!(MessageId::from_bytes(*id.as_bytes()).unwrap(), id);
        // A version-4 UUID is refused.
        let err = MessageId::parse("3f2b8c1e-7d4a-4b6e-9c2d-1a2b3c4d5e6f").unwrap_err();
        assert!(err.reason.contains("version 7"), "{err}");
        assert!(MessageId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn case_ids() {
        let c = CaseId::parse("RS.MUP:2026-000123").unwrap();
        assert_eq!(c.authority().as_str(), "RS.MUP");
        assert!(CaseId::parse("RS.MUP").is_err());
        assert!(CaseId::parse("rs.mup:1").is_err());
        assert!(CaseId::parse("RS.MUP:").is_err());
        assert!(CaseId::parse("RS.MUP:a b").is_err());
        assert!(CaseId::parse(&format!("RS.MUP:{}", "x".repeat(41))).is_err());
    }

    #[test]
    fn key_ids() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let id = KeyId::of(&key);
        assert_eq!(KeyId::parse(&id.to_string()).unwrap(), id);
        assert!(KeyId::parse("abc").is_err());
        assert!(KeyId::from_slice(&[0; 15]).is_err());
    }
}
