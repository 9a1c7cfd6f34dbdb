//! File names inside an authority directory (drawn in [`crate::authority`],
//! which re-exports this module as `authority::layout`). It sits below
//! `authority`, `officer` and `crl`, which all name these files.

/// CA certificate.
pub const CA_CERT: &str = "ca.crt.pem";
/// CA private key.
pub const CA_KEY: &str = "ca.key.pem";
/// Node (relay) certificate.
pub const NODE_CERT: &str = "node.crt.pem";
/// Node (relay) private key.
pub const NODE_KEY: &str = "node.key.pem";
/// Directory of message signing keys, one `<KID>.key` each.
pub const MESSAGE_KEYS: &str = "message-keys";
/// Audit-log signing key.
pub const LOG_KEY: &str = "log.key";
/// Public member description.
pub const MEMBER: &str = "member.json";
/// Officer certificate revocation list.
pub const CRL: &str = "crl.pem";
/// Register of revocations.
pub const REVOCATIONS: &str = "revocations.json";
/// Copies of issued officer certificates.
pub const OFFICERS: &str = "officers";
