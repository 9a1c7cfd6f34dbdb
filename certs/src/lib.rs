//! `kurir-certs`: the PKI and the signed federation roster.
//!
//! Every authority has its own CA (kept offline), a node TLS certificate for
//! its relay, an Ed25519 message/receipt key and a log key, and issues
//! officer client certificates that carry a role. The **roster** lists the
//! member authorities with their endpoints, CA certificates and keys; it is
//! versioned and valid only with k of n roster-key signatures. Relays trust
//! exactly what the current roster says. `docs/PKI.md` is the operator's
//! guide.
//!
//! # Layout
//!
//! - [`authority`]: `authority init`, the authority directory and `member.json`.
//! - [`officer`]: officer certificates with roles, revocation and the CRL.
//! - [`roster`]: the roster format, signing, k-of-n verification, version
//!   rule, editing, and [`kurir_proto::KeyLookup`] over it.
//! - [`tls`]: rustls server and client configurations and [`tls::Identity`].
//! - [`x509`]: what is read from certificates; identity URI SANs.
//! - [`keys`]: Ed25519 key files and randomness.
//! - [`files`]: `0600` writes, no silent overwrite, permission checks.
//! - [`error`]: one error enum per area.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authority;
pub mod error;
pub mod files;
pub mod keys;
pub mod officer;
pub mod roster;
pub mod tls;
pub mod x509;

pub use error::{FileError, PkiError, RosterError, TlsError};
pub use roster::{Accepted, Roster, SignedRoster};
pub use tls::{FederationVerifier, Identity};
