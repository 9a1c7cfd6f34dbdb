//! The signed federation roster: who the members are, where their relays
//! listen, which CA issues their TLS certificates, which keys sign their
//! messages, receipts and logs, and which message kinds they accept.
//!
//! # Encoding
//!
//! A roster file is one deterministic-CBOR map (RFC 8949 §4.2.1, see
//! [`kurir_proto::cbor`]) with text keys:
//!
//! ```text
//! { "body": bstr,                        ; deterministic CBOR of the body below
//!   "signatures": [ { "kid": bstr .size 16, "sig": bstr .size 64 } ... ] }
//!
//! body = { "format": 1, "version": uint, "issued_at": uint (Unix ms),
//!          "threshold": uint, "roster_keys": [ {"label": tstr, "key": bstr .size 32} ],
//!          "members": [ member ... ] }             ; sorted by id
//! member = { "id": tstr, "name": tstr, "endpoints": [ {"host": tstr, "port": uint} ],
//!            "tls_ca": bstr (DER), "message_keys": [ {"key": bstr, "valid_from": uint,
//!            ? "valid_until": uint} ], "log_key": bstr, "kinds": [ tstr ],
//!            "focal_points": [ {"name","role","phone","email": tstr} ] }
//! ```
//!
//! Each signature is Ed25519 over `"kurir/v1/roster\0" ‖ body`, by a roster
//! key; `kid` is its [`KeyId`].
//!
//! # Trust rule
//!
//! A roster is valid on its own when its body is well formed and at least
//! `threshold` distinct roster keys *of its own key set* have signed it, and
//! no signature in the file is bad or duplicated (a signature by a key outside
//! its key set is skipped: it may be by a key of the previous version). A relay
//! that already trusts a roster (`current`) accepts a new one only if, in
//! addition, its version is higher and at least `current.threshold` distinct
//! keys *of the current key set* signed it, and every signature is by a key of
//! either set: so changing the roster keys needs the old quorum and the new one. Equal version and identical bytes is a
//! no-op ([`Accepted::Unchanged`]); equal version with other bytes is refused.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use kurir_proto::cbor;
use kurir_proto::{AuthorityId, KeyId, KeyLookup, MessageKind, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{FileError, RosterError};
use crate::files;
use crate::x509::{self, CertInfo, DAY_MS};

/// Domain tag prefixed to the body before signing.
pub const SIGNING_DOMAIN: &[u8] = b"kurir/v1/roster\0";
/// The body format this version writes and reads.
pub const FORMAT: u64 = 1;
/// How long two message keys of one member may both be valid.
pub const MAX_KEY_OVERLAP_MS: u64 = 30 * DAY_MS;
/// How far in the future `issued_at` may lie (clock skew).
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60_000;

// ---------------------------------------------------------------------------
// Wire types: lenient, so that every problem can be named precisely.

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFile {
    #[serde(with = "cbor::bytes")]
    body: Vec<u8>,
    signatures: Vec<WireSig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSig {
    #[serde(with = "cbor::bytes")]
    kid: Vec<u8>,
    #[serde(with = "cbor::bytes")]
    sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBody {
    format: u64,
    version: u64,
    issued_at: u64,
    threshold: u64,
    roster_keys: Vec<WireRosterKey>,
    members: Vec<WireMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRosterKey {
    label: String,
    #[serde(with = "cbor::bytes")]
    key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMember {
    id: String,
    name: String,
    endpoints: Vec<WireEndpoint>,
    #[serde(with = "cbor::bytes")]
    tls_ca: Vec<u8>,
    message_keys: Vec<WireKey>,
    #[serde(with = "cbor::bytes")]
    log_key: Vec<u8>,
    kinds: Vec<String>,
    focal_points: Vec<FocalPoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEndpoint {
    host: String,
    port: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKey {
    #[serde(with = "cbor::bytes")]
    key: Vec<u8>,
    valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<u64>,
}

// ---------------------------------------------------------------------------
// Validated types.

/// A roster key: one of the n keys of which k must sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterKey {
    /// Who holds it (free text, e.g. "RS.MUP roster officer 1").
    pub label: String,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
}

impl RosterKey {
    /// The key id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.key)
    }
}

/// A relay endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (the node certificate's DNS SAN) or IP address.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

/// A message/receipt key with its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// First moment it may sign.
    pub valid_from: Timestamp,
    /// First moment it may no longer sign (`None`: open-ended).
    pub valid_until: Option<Timestamp>,
}

impl MessageKey {
    /// The key id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.key)
    }
}

/// A person to contact at a member authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPoint {
    /// Name.
    pub name: String,
    /// Role or function.
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// E-mail address.
    pub email: String,
}

/// A member authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Authority id.
    pub id: AuthorityId,
    /// Display name.
    pub name: String,
    /// Relay endpoints, preferred first.
    pub endpoints: Vec<Endpoint>,
    /// The authority's TLS CA certificate (DER).
    pub tls_ca: Vec<u8>,
    /// Message/receipt keys, by `valid_from`; old keys stay.
    pub message_keys: Vec<MessageKey>,
    /// Audit-log (checkpoint) key.
    pub log_key: VerifyingKey,
    /// Message kinds the member accepts.
    pub kinds: Vec<MessageKind>,
    /// Focal points.
    pub focal_points: Vec<FocalPoint>,
}

/// The signed content of a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterBody {
    /// Version; strictly increasing.
    pub version: u64,
    /// When this version was made.
    pub issued_at: Timestamp,
    /// How many roster keys must sign (k).
    pub threshold: u64,
    /// The roster keys (n).
    pub roster_keys: Vec<RosterKey>,
    /// Members, sorted by id.
    pub members: Vec<Member>,
}

/// One signature in a roster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterSignature {
    /// The signing key's id.
    pub kid: Vec<u8>,
    /// The signature bytes.
    pub sig: Vec<u8>,
}

// ---------------------------------------------------------------------------
// Problems.

/// One thing wrong with a roster, naming the field, member or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not a roster in deterministic CBOR.
    Encoding {
        /// Which part (`file` or `body`).
        part: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// A field has an invalid value.
    Field {
        /// The field, e.g. `members[1] (BA.SPS).message_keys[0].valid_until`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Two members with one id.
    DuplicateMember(String),
    /// One key id used twice.
    DuplicateKey {
        /// The key id.
        kid: String,
        /// First use.
        first: String,
        /// Second use.
        second: String,
    },
    /// A signature's bytes are not well formed.
    MalformedSignature {
        /// Index in the file.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A signature by a key that is neither in this roster nor in the current one.
    UnknownSigner {
        /// Index in the file.
        index: usize,
        /// Key id.
        kid: String,
    },
    /// The same key signed twice.
    DuplicateSignature {
        /// Index of the second one.
        index: usize,
        /// Key id.
        kid: String,
    },
    /// The signature does not verify over this body.
    BadSignature {
        /// Index in the file.
        index: usize,
        /// Key id.
        kid: String,
        /// The key's label.
        label: String,
    },
    /// Fewer valid signatures than the threshold.
    TooFewSignatures {
        /// Valid signatures counted.
        valid: usize,
        /// Needed.
        threshold: u64,
        /// Whose keys and threshold.
        of: &'static str,
    },
    /// Lower version than the current roster.
    Rollback {
        /// This roster's version.
        version: u64,
        /// The current version.
        current: u64,
    },
    /// Same version as the current roster, different content.
    SameVersion {
        /// The version.
        version: u64,
    },
    /// Issued in the future.
    IssuedInFuture {
        /// `issued_at`.
        issued_at: Timestamp,
        /// Now.
        now: Timestamp,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Encoding { part, reason } => write!(
                f,
                "{part}: not a kurir roster in deterministic CBOR: {reason}"
            ),
            Problem::Field { field, reason } => write!(f, "{field}: {reason}"),
            Problem::DuplicateMember(id) => write!(
                f,
                "members: {id} is listed twice; each authority may appear once"
            ),
            Problem::DuplicateKey { kid, first, second } => write!(
                f,
                "{second}: key {kid} is already used as {first}; key ids must be unique in the roster"
            ),
            Problem::MalformedSignature { index, reason } => {
                write!(f, "signatures[{index}]: {reason}")
            }
            Problem::UnknownSigner { index, kid } => write!(
                f,
                "signatures[{index}]: key {kid} is not a roster key (neither of this roster nor of the current one)"
            ),
            Problem::DuplicateSignature { index, kid } => write!(
                f,
                "signatures[{index}]: key {kid} signed more than once; it counts once"
            ),
            Problem::BadSignature { index, kid, label } => write!(
                f,
                "signatures[{index}]: the signature of key {kid} ({label}) does not match the body; \
                 the roster was changed after signing, or signed with another key"
            ),
            Problem::TooFewSignatures {
                valid,
                threshold,
                of,
            } => write!(
                f,
                "signatures: {valid} valid signature(s) by {of}, {threshold} required"
            ),
            Problem::Rollback { version, current } => write!(
                f,
                "version: {version} is lower than the current roster's version {current}; refusing a rollback"
            ),
            Problem::SameVersion { version } => write!(
                f,
                "version: {version} equals the current roster's version but the content differs; \
                 a changed roster needs a higher version"
            ),
            Problem::IssuedInFuture { issued_at, now } => write!(
                f,
                "issued_at: {issued_at} lies in the future (now {now}); check the clocks"
            ),
        }
    }
}

/// A list of problems, one per line when displayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Body validation and encoding.

fn field(field: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

fn ed25519(bytes: &[u8], at: &str, problems: &mut Vec<Problem>) -> Option<VerifyingKey> {
    let Ok(arr) = <[u8; 32]>::try_from(bytes) else {
        problems.push(field(
            at,
            format!(
                "an Ed25519 public key has 32 bytes, this has {}",
                bytes.len()
            ),
        ));
        return None;
    };
    match VerifyingKey::from_bytes(&arr) {
        Ok(k) if !k.is_weak() => Some(k),
        Ok(_) => {
            problems.push(field(at, "weak (small-order) Ed25519 public key"));
            None
        }
        Err(_) => {
            problems.push(field(at, "not a valid Ed25519 public key"));
            None
        }
    }
}

impl RosterBody {
    /// The deterministic CBOR bytes that roster keys sign.
    pub fn encode(&self) -> Result<Vec<u8>, RosterError> {
        cbor::to_vec(&self.to_wire()).map_err(|e| RosterError::Encode(e.to_string()))
    }

    fn to_wire(&self) -> WireBody {
        WireBody {
            format: FORMAT,
            version: self.version,
            issued_at: self.issued_at.0,
            threshold: self.threshold,
            roster_keys: self
                .roster_keys
                .iter()
                .map(|k| WireRosterKey {
                    label: k.label.clone(),
                    key: k.key.as_bytes().to_vec(),
                })
                .collect(),
            members: self
                .members
                .iter()
                .map(|m| WireMember {
                    id: m.id.to_string(),
                    name: m.name.clone(),
                    endpoints: m
                        .endpoints
                        .iter()
                        .map(|e| WireEndpoint {
                            host: e.host.clone(),
                            port: u64::from(e.port),
                        })
                        .collect(),
                    tls_ca: m.tls_ca.clone(),
                    message_keys: m
                        .message_keys
                        .iter()
                        .map(|k| WireKey {
                            key: k.key.as_bytes().to_vec(),
                            valid_from: k.valid_from.0,
                            valid_until: k.valid_until.map(|t| t.0),
                        })
                        .collect(),
                    log_key: m.log_key.as_bytes().to_vec(),
                    kinds: m.kinds.iter().map(|k| k.to_string()).collect(),
                    focal_points: m.focal_points.clone(),
                })
                .collect(),
        }
    }

    /// Decodes and validates body bytes (structure only: the member CA
    /// certificates' validity at a given time is checked by
    /// [`SignedRoster::check`]).
    pub fn decode(bytes: &[u8]) -> Result<RosterBody, Problems> {
        let wire: WireBody = cbor::from_slice(bytes).map_err(|e| {
            Problems(vec![Problem::Encoding {
                part: "body",
                reason: e.to_string(),
            }])
        })?;
        let mut problems = Vec::new();
        let body = validate(&wire, &mut problems);
        match body {
            Some(b) if problems.is_empty() => Ok(b),
            _ => Err(Problems(problems)),
        }
    }

    /// Checks the body as [`RosterBody::decode`] would.
    pub fn check(&self) -> Result<(), Problems> {
        let bytes = self.encode().map_err(|e| {
            Problems(vec![Problem::Encoding {
                part: "body",
                reason: e.to_string(),
            }])
        })?;
        RosterBody::decode(&bytes).map(|_| ())
    }

    /// The member with this id.
    pub fn member(&self, id: &AuthorityId) -> Option<&Member> {
        self.members.iter().find(|m| &m.id == id)
    }
}

fn validate(w: &WireBody, problems: &mut Vec<Problem>) -> Option<RosterBody> {
    if w.format != FORMAT {
        problems.push(field(
            "format",
            format!(
                "format {} is not supported (this kurir reads {FORMAT})",
                w.format
            ),
        ));
        return None;
    }
    if w.version == 0 {
        problems.push(field("version", "versions start at 1"));
    }
    let mut seen_keys: HashMap<KeyId, String> = HashMap::new();
    let mut note_key = |kid: KeyId, at: String, problems: &mut Vec<Problem>| {
        if let Some(first) = seen_keys.get(&kid) {
            problems.push(Problem::DuplicateKey {
                kid: kid.to_string(),
                first: first.clone(),
                second: at,
            });
        } else {
            seen_keys.insert(kid, at);
        }
    };

    let mut roster_keys = Vec::new();
    if w.roster_keys.is_empty() {
        problems.push(field("roster_keys", "at least one roster key is needed"));
    }
    for (i, k) in w.roster_keys.iter().enumerate() {
        let at = format!("roster_keys[{i}]");
        if k.label.trim().is_empty() {
            problems.push(field(format!("{at}.label"), "must not be empty"));
        }
        if let Some(key) = ed25519(&k.key, &format!("{at}.key"), problems) {
            note_key(KeyId::of(&key), at, problems);
            roster_keys.push(RosterKey {
                label: k.label.clone(),
                key,
            });
        }
    }
    let n = w.roster_keys.len() as u64;
    if w.threshold == 0 || w.threshold > n {
        problems.push(field(
            "threshold",
            format!(
                "{} is not between 1 and the number of roster keys ({n})",
                w.threshold
            ),
        ));
    }

    let mut members = Vec::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut previous_id: Option<String> = None;
    for (i, m) in w.members.iter().enumerate() {
        let at = format!(
            "members[{i}] ({})",
            m.id.chars().take(24).collect::<String>()
        );
        if !ids.insert(m.id.clone()) {
            problems.push(Problem::DuplicateMember(m.id.clone()));
        } else if previous_id.as_ref().is_some_and(|p| p > &m.id) {
            problems.push(field(format!("{at}.id"), "members must be sorted by id"));
        }
        previous_id = Some(m.id.clone());
        if let Some(member) = validate_member(m, &at, problems, &mut note_key) {
            members.push(member);
        }
    }
    Some(RosterBody {
        version: w.version,
        issued_at: Timestamp(w.issued_at),
        threshold: w.threshold,
        roster_keys,
        members,
    })
}

fn validate_member(
    m: &WireMember,
    at: &str,
    problems: &mut Vec<Problem>,
    note_key: &mut impl FnMut(KeyId, String, &mut Vec<Problem>),
) -> Option<Member> {
    let before = problems.len();
    let id = match AuthorityId::parse(&m.id) {
        Ok(id) => Some(id),
        Err(e) => {
            problems.push(field(format!("{at}.id"), e.to_string()));
            None
        }
    };
    if m.name.trim().is_empty() {
        problems.push(field(format!("{at}.name"), "must not be empty"));
    }
    if m.endpoints.is_empty() {
        problems.push(field(
            format!("{at}.endpoints"),
            "at least one relay endpoint is needed",
        ));
    }
    let mut endpoints = Vec::new();
    for (j, e) in m.endpoints.iter().enumerate() {
        if let Err(reason) = crate::authority::check_host(&e.host) {
            problems.push(field(format!("{at}.endpoints[{j}].host"), reason));
        }
        match u16::try_from(e.port) {
            Ok(port) if port != 0 => endpoints.push(Endpoint {
                host: e.host.clone(),
                port,
            }),
            _ => problems.push(field(
                format!("{at}.endpoints[{j}].port"),
                format!("{} is not a port between 1 and 65535", e.port),
            )),
        }
    }
    match CertInfo::parse(&m.tls_ca) {
        Err(reason) => problems.push(field(format!("{at}.tls_ca"), reason)),
        Ok(info) => {
            if !info.is_ca {
                problems.push(field(
                    format!("{at}.tls_ca"),
                    "the certificate is not a CA certificate (basic constraints)",
                ));
            }
        }
    }
    if m.message_keys.is_empty() {
        problems.push(field(
            format!("{at}.message_keys"),
            "at least one message key is needed",
        ));
    }
    let mut message_keys = Vec::new();
    for (j, k) in m.message_keys.iter().enumerate() {
        let kat = format!("{at}.message_keys[{j}]");
        if let Some(until) = k.valid_until
            && until <= k.valid_from
        {
            problems.push(field(
                format!("{kat}.valid_until"),
                format!(
                    "{} is not after valid_from {}",
                    Timestamp(until),
                    Timestamp(k.valid_from)
                ),
            ));
        }
        if j > 0 && m.message_keys[j - 1].valid_from > k.valid_from {
            problems.push(field(
                format!("{kat}.valid_from"),
                "message keys must be listed oldest first (by valid_from)",
            ));
        }
        if let Some(key) = ed25519(&k.key, &format!("{kat}.key"), problems) {
            note_key(KeyId::of(&key), kat.clone(), problems);
            message_keys.push(MessageKey {
                key,
                valid_from: Timestamp(k.valid_from),
                valid_until: k.valid_until.map(Timestamp),
            });
        }
    }
    // Overlap: any two keys may be valid together for at most MAX_KEY_OVERLAP_MS.
    for a in 0..message_keys.len() {
        for b in a + 1..message_keys.len() {
            let (ka, kb) = (&message_keys[a], &message_keys[b]);
            let start = ka.valid_from.max(kb.valid_from);
            let end = match (ka.valid_until, kb.valid_until) {
                (None, None) => None,
                (Some(x), None) | (None, Some(x)) => Some(x),
                (Some(x), Some(y)) => Some(x.min(y)),
            };
            let too_long = match end {
                None => true,
                Some(end) => end.0.saturating_sub(start.0) > MAX_KEY_OVERLAP_MS,
            };
            if too_long {
                problems.push(field(
                    format!("{at}.message_keys[{a}] and [{b}]"),
                    format!(
                        "keys {} and {} are both valid for more than {} days; \
                         give the older key a valid_until (rotate with a bounded overlap)",
                        ka.id(),
                        kb.id(),
                        MAX_KEY_OVERLAP_MS / DAY_MS
                    ),
                ));
            }
        }
    }
    let log_key = ed25519(&m.log_key, &format!("{at}.log_key"), problems);
    if let Some(k) = &log_key {
        note_key(KeyId::of(k), format!("{at}.log_key"), problems);
    }
    let mut kinds = Vec::new();
    for (j, k) in m.kinds.iter().enumerate() {
        match k.parse::<MessageKind>() {
            Ok(kind) if kinds.contains(&kind) => problems.push(field(
                format!("{at}.kinds[{j}]"),
                format!("{kind} is listed twice"),
            )),
            Ok(kind) => kinds.push(kind),
            Err(e) => problems.push(field(format!("{at}.kinds[{j}]"), e.to_string())),
        }
    }
    for (j, fp) in m.focal_points.iter().enumerate() {
        if fp.name.trim().is_empty() {
            problems.push(field(
                format!("{at}.focal_points[{j}].name"),
                "must not be empty",
            ));
        }
        if !fp.email.is_empty() && !fp.email.contains('@') {
            problems.push(field(
                format!("{at}.focal_points[{j}].email"),
                format!("{:?} is not an e-mail address", fp.email),
            ));
        }
    }
    if problems.len() != before {
        return None;
    }
    Some(Member {
        id: id?,
        name: m.name.clone(),
        endpoints,
        tls_ca: m.tls_ca.clone(),
        message_keys,
        log_key: log_key?,
        kinds,
        focal_points: m.focal_points.clone(),
    })
}

// ---------------------------------------------------------------------------
// The signed file.

/// A roster file as read, signatures not yet checked: what the editing and
/// signing commands work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRoster {
    /// The body bytes exactly as signed.
    pub body_bytes: Vec<u8>,
    /// The signatures.
    pub signatures: Vec<RosterSignature>,
}

impl SignedRoster {
    /// An unsigned roster for `body`.
    pub fn unsigned(body: &RosterBody) -> Result<SignedRoster, RosterError> {
        Ok(SignedRoster {
            body_bytes: body.encode()?,
            signatures: Vec::new(),
        })
    }

    /// Parses a roster file (structure only).
    pub fn decode(bytes: &[u8]) -> Result<SignedRoster, Problems> {
        let wire: WireFile = cbor::from_slice(bytes).map_err(|e| {
            Problems(vec![Problem::Encoding {
                part: "file",
                reason: e.to_string(),
            }])
        })?;
        Ok(SignedRoster {
            body_bytes: wire.body,
            signatures: wire
                .signatures
                .into_iter()
                .map(|s| RosterSignature {
                    kid: s.kid,
                    sig: s.sig,
                })
                .collect(),
        })
    }

    /// Reads a roster file.
    pub fn load(path: &Path) -> Result<SignedRoster, RosterError> {
        let bytes = files::read(path)?;
        SignedRoster::decode(&bytes).map_err(|problems| RosterError::Invalid {
            path: Some(path.to_owned()),
            problems,
        })
    }

    /// The file bytes.
    pub fn encode(&self) -> Result<Vec<u8>, RosterError> {
        let wire = WireFile {
            body: self.body_bytes.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSig {
                    kid: s.kid.clone(),
                    sig: s.sig.clone(),
                })
                .collect(),
        };
        cbor::to_vec(&wire).map_err(|e| RosterError::Encode(e.to_string()))
    }

    /// Writes the file (replacing it atomically).
    pub fn save(&self, path: &Path) -> Result<(), RosterError> {
        files::replace(path, &self.encode()?, 0o644)?;
        Ok(())
    }

    /// The body, validated (signatures not checked).
    pub fn body(&self) -> Result<RosterBody, Problems> {
        RosterBody::decode(&self.body_bytes)
    }

    /// Adds (or replaces) the signature of `key`. Signatures stay sorted by
    /// key id, so signing in any order gives the same file.
    pub fn sign(&mut self, key: &SigningKey) {
        let kid = KeyId::of(&key.verifying_key());
        let mut msg = SIGNING_DOMAIN.to_vec();
        msg.extend_from_slice(&self.body_bytes);
        let sig = key.sign(&msg);
        self.signatures.retain(|s| s.kid != kid.as_bytes());
        self.signatures.push(RosterSignature {
            kid: kid.as_bytes().to_vec(),
            sig: sig.to_bytes().to_vec(),
        });
        self.signatures.sort_by(|a, b| a.kid.cmp(&b.kid));
    }

    /// SHA-256 of the file bytes, as 64 hex digits: compare it out of band
    /// before trusting a first roster.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.encode().unwrap_or_default()))
    }

    /// Checks everything: body, signatures, threshold, and against
    /// `current` the version and the current quorum. Returns the body and
    /// every problem found.
    pub fn check(
        &self,
        current: Option<&Roster>,
        now: Timestamp,
    ) -> (Option<RosterBody>, Vec<Problem>) {
        let mut problems = Vec::new();
        let body = match self.body() {
            Ok(b) => Some(b),
            Err(p) => {
                problems.extend(p.0);
                None
            }
        };
        // Keys usable for signatures: this roster's (if its body decoded) and the current one's.
        let own: Vec<RosterKey> = body
            .as_ref()
            .map(|b| b.roster_keys.clone())
            .unwrap_or_default();
        let old: Vec<RosterKey> = current
            .map(|c| c.body.roster_keys.clone())
            .unwrap_or_default();
        let mut msg = SIGNING_DOMAIN.to_vec();
        msg.extend_from_slice(&self.body_bytes);
        let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut valid: BTreeSet<KeyId> = BTreeSet::new();
        for (index, s) in self.signatures.iter().enumerate() {
            let kid = match KeyId::from_slice(&s.kid) {
                Ok(k) => k,
                Err(e) => {
                    problems.push(Problem::MalformedSignature {
                        index,
                        reason: format!("kid: {e}"),
                    });
                    continue;
                }
            };
            if !seen.insert(s.kid.clone()) {
                problems.push(Problem::DuplicateSignature {
                    index,
                    kid: kid.to_string(),
                });
                continue;
            }
            let Some(rk) = own.iter().chain(old.iter()).find(|k| k.id() == kid) else {
                // Without a current roster, a signature by a key this version
                // dropped cannot be checked: it is skipped (it never counts).
                // Against a current roster every signer must be known.
                if current.is_some() || body.is_none() {
                    problems.push(Problem::UnknownSigner {
                        index,
                        kid: kid.to_string(),
                    });
                }
                continue;
            };
            let Ok(sig) = Signature::from_slice(&s.sig) else {
                problems.push(Problem::MalformedSignature {
                    index,
                    reason: format!(
                        "sig: an Ed25519 signature has 64 bytes, this has {}",
                        s.sig.len()
                    ),
                });
                continue;
            };
            if rk.key.verify_strict(&msg, &sig).is_err() {
                problems.push(Problem::BadSignature {
                    index,
                    kid: kid.to_string(),
                    label: rk.label.clone(),
                });
                continue;
            }
            valid.insert(kid);
        }
        if let Some(b) = &body {
            let count = own.iter().filter(|k| valid.contains(&k.id())).count();
            if (count as u64) < b.threshold {
                problems.push(Problem::TooFewSignatures {
                    valid: count,
                    threshold: b.threshold,
                    of: "this roster's keys",
                });
            }
            if b.issued_at.0 > now.0.saturating_add(MAX_CLOCK_SKEW_MS) {
                problems.push(Problem::IssuedInFuture {
                    issued_at: b.issued_at,
                    now,
                });
            }
            for (i, m) in b.members.iter().enumerate() {
                if let Ok(info) = CertInfo::parse(&m.tls_ca)
                    && !info.valid_at(now)
                {
                    problems.push(field(
                        format!("members[{i}] ({}).tls_ca", m.id),
                        format!(
                            "the CA certificate is not valid now ({now}): valid from {} until {}",
                            info.not_before, info.not_after
                        ),
                    ));
                }
            }
        }
        if let Some(c) = current {
            let count = old.iter().filter(|k| valid.contains(&k.id())).count();
            if (count as u64) < c.body.threshold {
                problems.push(Problem::TooFewSignatures {
                    valid: count,
                    threshold: c.body.threshold,
                    of: "the current roster's keys",
                });
            }
            if let Some(b) = &body {
                if b.version < c.body.version {
                    problems.push(Problem::Rollback {
                        version: b.version,
                        current: c.body.version,
                    });
                } else if b.version == c.body.version && self.body_bytes != c.body_bytes {
                    problems.push(Problem::SameVersion { version: b.version });
                }
            }
        }
        (body, problems)
    }
}

// ---------------------------------------------------------------------------
// The verified roster.

/// A roster whose signatures have been verified. The relay trusts exactly
/// what it says.
#[derive(Debug, Clone)]
pub struct Roster {
    body: RosterBody,
    body_bytes: Vec<u8>,
    file_bytes: Vec<u8>,
    keys: HashMap<KeyId, PublicKey>,
}

/// The outcome of [`Roster::accept`].
#[derive(Debug, Clone)]
pub enum Accepted {
    /// A newer roster: replace the current one with it.
    Newer(Roster),
    /// The same roster as the current one (same version, same bytes).
    Unchanged,
}

impl Roster {
    /// Verifies a roster file on its own (no current roster): body valid and
    /// signed by `threshold` of its own roster keys. Use this for the first
    /// roster only after comparing its fingerprint out of band.
    pub fn verify(bytes: &[u8], now: Timestamp) -> Result<Roster, RosterError> {
        Self::verify_against(bytes, None, now)
    }

    /// Verifies a roster file, and when `current` is given also the version
    /// rule and the current quorum (see the module docs).
    pub fn verify_against(
        bytes: &[u8],
        current: Option<&Roster>,
        now: Timestamp,
    ) -> Result<Roster, RosterError> {
        let invalid = |problems: Vec<Problem>| RosterError::Invalid {
            path: None,
            problems: Problems(problems),
        };
        let signed = SignedRoster::decode(bytes).map_err(|p| invalid(p.0))?;
        let (body, problems) = signed.check(current, now);
        match body {
            Some(body) if problems.is_empty() => Ok(Roster::from_parts(body, signed, bytes)),
            _ => Err(invalid(problems)),
        }
    }

    /// Reads and verifies a roster file (see [`Roster::verify_against`]).
    pub fn load(
        path: &Path,
        current: Option<&Roster>,
        now: Timestamp,
    ) -> Result<Roster, RosterError> {
        let bytes = files::read(path)?;
        Self::verify_against(&bytes, current, now).map_err(|e| match e {
            RosterError::Invalid { problems, .. } => RosterError::Invalid {
                path: Some(path.to_owned()),
                problems,
            },
            other => other,
        })
    }

    /// What a relay calls when a roster arrives: refuses anything invalid,
    /// older, or of equal version with other content.
    pub fn accept(
        bytes: &[u8],
        current: Option<&Roster>,
        now: Timestamp,
    ) -> Result<Accepted, RosterError> {
        if let Some(c) = current
            && c.file_bytes == bytes
        {
            return Ok(Accepted::Unchanged);
        }
        let new = Self::verify_against(bytes, current, now)?;
        if let Some(c) = current
            && new.body_bytes == c.body_bytes
        {
            // Same body, other signature set: nothing new to trust.
            return Ok(Accepted::Unchanged);
        }
        Ok(Accepted::Newer(new))
    }

    fn from_parts(body: RosterBody, signed: SignedRoster, bytes: &[u8]) -> Roster {
        let mut keys = HashMap::new();
        for m in &body.members {
            for k in &m.message_keys {
                keys.insert(
                    k.id(),
                    PublicKey {
                        authority: m.id.clone(),
                        key: k.key,
                        valid_from: k.valid_from,
                        valid_until: k.valid_until,
                    },
                );
            }
        }
        Roster {
            body,
            body_bytes: signed.body_bytes,
            file_bytes: bytes.to_vec(),
            keys,
        }
    }

    /// The verified content.
    pub fn body(&self) -> &RosterBody {
        &self.body
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.body.version
    }

    /// The members.
    pub fn members(&self) -> &[Member] {
        &self.body.members
    }

    /// The member with this id.
    pub fn member(&self, id: &AuthorityId) -> Option<&Member> {
        self.body.member(id)
    }

    /// Whether the member `to` lists `kind` among the kinds it exchanges.
    pub fn accepts(&self, to: &AuthorityId, kind: MessageKind) -> bool {
        self.member(to).is_some_and(|m| m.kinds.contains(&kind))
    }

    /// Whether `from` may send `to` a message of `kind`: both are members
    /// and both list the kind.
    pub fn allows(&self, from: &AuthorityId, to: &AuthorityId, kind: MessageKind) -> bool {
        self.accepts(from, kind) && self.accepts(to, kind)
    }

    /// The audit-log key of a member.
    pub fn log_key(&self, id: &AuthorityId) -> Option<VerifyingKey> {
        self.member(id).map(|m| m.log_key)
    }

    /// The exact file bytes (to store, or to pass on to peers).
    pub fn to_bytes(&self) -> &[u8] {
        &self.file_bytes
    }

    /// SHA-256 of the file bytes, 64 hex digits.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.file_bytes))
    }
}

/// Message keys of every member, old ones included, so that old messages
/// and receipts still verify; the caller checks `valid_at` for the signing
/// time.
impl KeyLookup for Roster {
    fn lookup(&self, kid: &KeyId) -> Option<PublicKey> {
        self.keys.get(kid).cloned()
    }
}

/// Reads the key-file-independent parts of a member from its CA PEM.
pub fn ca_der_from_pem(pem: &str, path: &Path) -> Result<Vec<u8>, FileError> {
    let certs = x509::pem_certificates(pem).map_err(|reason| FileError::Malformed {
        path: path.to_owned(),
        reason: format!("tls_ca_pem: {reason}"),
    })?;
    Ok(certs[0].to_vec())
}

// ---------------------------------------------------------------------------
// Editing.

/// Builds a roster member from an authority's `member.json`.
pub fn member_from_file(path: &Path) -> Result<Member, RosterError> {
    let f = crate::authority::MemberFile::load(path)?;
    let bad = |reason: String| RosterError::MemberFile {
        path: path.to_owned(),
        reason,
    };
    let id = AuthorityId::parse(&f.id).map_err(|e| bad(format!("id: {e}")))?;
    let tls_ca = ca_der_from_pem(&f.tls_ca_pem, path)?;
    let mut message_keys = Vec::new();
    for (i, k) in f.message_keys.iter().enumerate() {
        let key = crate::keys::parse_public_hex(&k.public)
            .map_err(|e| bad(format!("message_keys[{i}].public: {e}")))?;
        message_keys.push(MessageKey {
            key,
            valid_from: Timestamp(k.valid_from),
            valid_until: k.valid_until.map(Timestamp),
        });
    }
    let log_key =
        crate::keys::parse_public_hex(&f.log_key).map_err(|e| bad(format!("log_key: {e}")))?;
    let mut kinds = Vec::new();
    for (i, k) in f.kinds.iter().enumerate() {
        kinds.push(
            k.parse::<MessageKind>()
                .map_err(|e| bad(format!("kinds[{i}]: {e}")))?,
        );
    }
    if kinds.is_empty() {
        kinds = MessageKind::ALL.to_vec();
    }
    let endpoints = f
        .endpoints
        .iter()
        .map(|e| Endpoint {
            host: e.host.clone(),
            port: e.port,
        })
        .collect();
    let focal_points = f
        .focal_points
        .iter()
        .map(|p| FocalPoint {
            name: p.name.clone(),
            role: p.role.clone(),
            phone: p.phone.clone(),
            email: p.email.clone(),
        })
        .collect();
    Ok(Member {
        id,
        name: f.name,
        endpoints,
        tls_ca,
        message_keys,
        log_key,
        kinds,
        focal_points,
    })
}

/// Edits a roster. A signed roster being edited becomes a draft of the next
/// version: its signatures are dropped, its version goes up by one. A draft
/// (no signatures) keeps its version.
#[derive(Debug, Clone)]
pub struct Editor {
    /// The body being edited.
    pub body: RosterBody,
    was_signed: bool,
}

fn edit_err(problems: Problems) -> RosterError {
    RosterError::Edit(format!("the edited roster would not be valid:\n{problems}"))
}

impl Editor {
    /// A new roster, version 1.
    pub fn create(
        threshold: u64,
        roster_keys: Vec<RosterKey>,
        now: Timestamp,
    ) -> Result<Editor, RosterError> {
        let body = RosterBody {
            version: 1,
            issued_at: now,
            threshold,
            roster_keys,
            members: Vec::new(),
        };
        body.check().map_err(edit_err)?;
        Ok(Editor {
            body,
            was_signed: false,
        })
    }

    /// Opens a roster file for editing.
    pub fn open(signed: &SignedRoster) -> Result<Editor, RosterError> {
        let body = signed.body().map_err(|problems| RosterError::Invalid {
            path: None,
            problems,
        })?;
        Ok(Editor {
            body,
            was_signed: !signed.signatures.is_empty(),
        })
    }

    /// Adds a member; refuses a duplicate.
    pub fn add_member(&mut self, member: Member) -> Result<(), RosterError> {
        if self.body.member(&member.id).is_some() {
            return Err(RosterError::Edit(format!(
                "{} is already a member; use `roster update` to change its entry",
                member.id
            )));
        }
        self.body.members.push(member);
        self.body.members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(())
    }

    /// Replaces a member's entry. Message keys are merged by key id: keys
    /// already in the roster stay (so old messages still verify), keys in
    /// `member` win for their windows.
    pub fn update_member(&mut self, member: Member) -> Result<(), RosterError> {
        let Some(old) = self.body.members.iter_mut().find(|m| m.id == member.id) else {
            return Err(RosterError::Edit(format!(
                "{} is not a member; use `roster add`",
                member.id
            )));
        };
        let mut keys = member.message_keys.clone();
        for k in &old.message_keys {
            if !keys.iter().any(|n| n.id() == k.id()) {
                keys.push(k.clone());
            }
        }
        keys.sort_by_key(|k| k.valid_from);
        *old = Member {
            message_keys: keys,
            ..member
        };
        Ok(())
    }

    /// Mutable access to a member.
    pub fn member_mut(&mut self, id: &AuthorityId) -> Result<&mut Member, RosterError> {
        self.body
            .members
            .iter_mut()
            .find(|m| &m.id == id)
            .ok_or_else(|| RosterError::Edit(format!("{id} is not a member of the roster")))
    }

    /// Removes a member.
    pub fn remove_member(&mut self, id: &AuthorityId) -> Result<Member, RosterError> {
        let at = self
            .body
            .members
            .iter()
            .position(|m| &m.id == id)
            .ok_or_else(|| RosterError::Edit(format!("{id} is not a member of the roster")))?;
        Ok(self.body.members.remove(at))
    }

    /// Adds a roster key.
    pub fn add_roster_key(&mut self, key: RosterKey) -> Result<(), RosterError> {
        if self.body.roster_keys.iter().any(|k| k.id() == key.id()) {
            return Err(RosterError::Edit(format!(
                "roster key {} is already in the roster",
                key.id()
            )));
        }
        self.body.roster_keys.push(key);
        Ok(())
    }

    /// Removes a roster key.
    pub fn remove_roster_key(&mut self, kid: &KeyId) -> Result<(), RosterError> {
        let before = self.body.roster_keys.len();
        self.body.roster_keys.retain(|k| &k.id() != kid);
        if self.body.roster_keys.len() == before {
            return Err(RosterError::Edit(format!(
                "roster key {kid} is not in the roster"
            )));
        }
        Ok(())
    }

    /// Checks the result and returns the unsigned roster file.
    pub fn finish(mut self, now: Timestamp) -> Result<SignedRoster, RosterError> {
        if self.was_signed {
            self.body.version = self.body.version.saturating_add(1);
        }
        self.body.issued_at = now;
        self.body.check().map_err(edit_err)?;
        SignedRoster::unsigned(&self.body)
    }

    /// Whether the roster had signatures (and so becomes the next version).
    pub fn was_signed(&self) -> bool {
        self.was_signed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_member_key(valid_until: Option<u64>) -> WireKey {
        WireKey {
            key: vec![7; 32],
            valid_from: 1,
            valid_until,
        }
    }

    #[test]
    fn absent_valid_until_is_left_out_not_null() {
        let bytes = cbor::to_vec(&wire_member_key(None)).unwrap();
        // {"key": h'07..', "valid_from": 1}: two entries.
        assert_eq!(bytes[0], 0xa2);
        // The same with an explicit null is not the deterministic encoding.
        let value = ciborium_value_with_null(&bytes);
        assert!(cbor::from_slice::<WireKey>(&value).is_err());
        assert_eq!(
            cbor::from_slice::<WireKey>(&bytes).unwrap(),
            wire_member_key(None)
        );
    }

    /// Re-encodes a two-entry map with a third entry "valid_until": null.
    fn ciborium_value_with_null(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0xa3];
        out.extend_from_slice(&bytes[1..]);
        out.push(0x6b);
        out.extend_from_slice(b"valid_until");
        out.push(0xf6);
        out
    }

    #[test]
    fn signing_message_is_domain_separated() {
        let body = RosterBody {
            version: 1,
            issued_at: Timestamp(0),
            threshold: 1,
            roster_keys: vec![RosterKey {
                label: "k".into(),
                key: SigningKey::from_bytes(&[1; 32]).verifying_key(),
            }],
            members: Vec::new(),
        };
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut signed = SignedRoster::unsigned(&body).unwrap();
        signed.sign(&key);
        let sig = Signature::from_slice(&signed.signatures[0].sig).unwrap();
        let mut msg = b"kurir/v1/roster\0".to_vec();
        msg.extend_from_slice(&body.encode().unwrap());
        assert!(key.verifying_key().verify_strict(&msg, &sig).is_ok());
        // Not a signature over the bare body.
        assert!(
            key.verifying_key()
                .verify_strict(&body.encode().unwrap(), &sig)
                .is_err()
        );
        // Unknown fields in the body are refused.
        #[derive(Serialize)]
        struct Extra {
            #[serde(flatten)]
            body: WireBody,
            extra: u64,
        }
        let bytes = cbor::to_vec(&Extra {
            body: body.to_wire(),
            extra: 1,
        })
        .unwrap();
        assert!(RosterBody::decode(&body.encode().unwrap()).is_ok());
        assert!(RosterBody::decode(&bytes).is_err());
    }
}
