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
//!            ? "valid_until": uint, ? "revoked_at": uint} ], "log_key": bstr,
//!            "kinds": [ tstr ], "focal_points": [ {"name","role","phone","email": tstr} ],
//!            ? "revoked_node_certs": [ {"sha256": bstr .size 32, "revoked_at": uint,
//!                                      "reason": tstr} ] }  ; left out when empty
//! ```
//!
//! `revoked_at` and `revoked_node_certs` are left out when absent or empty
//! (an explicit null or empty list is not the deterministic encoding), so a
//! roster that revokes nothing has the bytes it had before they existed.
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
//!
//! # Layout
//!
//! - `body`: the validated types ([`RosterBody`], [`Member`], keys,
//!   endpoints, focal points);
//! - `wire`: the CBOR structs of the file and the body;
//! - `codec`: encoding and decoding the body, naming every problem;
//! - `signed`: the file as read ([`SignedRoster`]) and signing it;
//! - `verify`: the trust rule above ([`SignedRoster::check`]) and verifying
//!   a file into a [`Roster`] (the members' CA dates checked or not:
//!   [`CaDates`]);
//! - `trusted`: the verified [`Roster`], [`Accepted`], and
//!   [`KeyLookup`](kurir_proto::KeyLookup) over it;
//! - `edit`: [`member_from_file`] and the [`Editor`];
//! - `log_keys`: log-key rotation: a member's earlier log keys
//!   ([`PastLogKey`]), which key verifies what ([`Member::log_keys_at`],
//!   [`Roster::log_keys_at`]), and keeping the history on `roster update`.
//! - `revocation`: revoked node certificates ([`RevokedCert`]), message
//!   keys' `revoked_at`, the editor's revoke commands and the key-lifetime
//!   rule ([`MAX_KEY_LIFETIME_MS`]).
//!
//! [`Problem`] and [`Problems`], which [`RosterError::Invalid`] carries, are
//! defined beside it in [`crate::error`] and re-exported here.
//!
//! [`RosterError::Invalid`]: crate::error::RosterError::Invalid
//! [`KeyId`]: kurir_proto::KeyId

mod body;
mod codec;
mod edit;
mod log_keys;
mod revocation;
mod signed;
mod trusted;
mod verify;
mod wire;

pub use body::{
    Endpoint, FocalPoint, Member, MessageKey, PastLogKey, RevokedCert, RosterBody, RosterKey,
    RosterSignature,
};
pub use edit::{Editor, ca_der_from_pem, member_from_file};
pub use revocation::{
    MAX_KEY_LIFETIME_MS, key_lifetime_warnings, long_new_keys, parse_fingerprint,
};
pub use signed::SignedRoster;
pub use trusted::{Accepted, Roster};
pub use verify::CaDates;

pub use crate::error::{Problem, Problems};

use crate::x509::DAY_MS;

/// Domain tag prefixed to the body before signing.
pub const SIGNING_DOMAIN: &[u8] = b"kurir/v1/roster\0";
/// The body format this version writes and reads.
pub const FORMAT: u64 = 1;
/// How long two message keys of one member may both be valid.
pub const MAX_KEY_OVERLAP_MS: u64 = 30 * DAY_MS;
/// How far in the future `issued_at` may lie (clock skew).
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60_000;
