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
//! Each module uses only modules listed after it: there is no import cycle.
//!
//! - [`cli`]: the command line of `kurir-certs` as clap sees it (the
//!   binary parses with it; `kurir-docgen` renders man pages and shell
//!   completions from it).
//! - [`tls`]: rustls server and client configurations and [`tls::Identity`];
//!   `tls::node` the relay's node certificate, swappable while it runs
//!   ([`tls::NodeCertificate`]).
//! - [`roster`]: the signed roster, one submodule per concern: `body` (the
//!   validated types), `wire` and `codec` (the CBOR format, encoding and
//!   decoding with every problem named), `signed` (the file as read, signing),
//!   `verify` (k of n, the version rule, key-set changes needing the old and
//!   the new quorum), `trusted` (the verified [`Roster`] and
//!   [`kurir_proto::KeyLookup`] over it), `edit` (the editor, members from
//!   `member.json`).
//! - [`officer`]: officer certificates with roles, and revoking them.
//! - [`authority`]: `authority init`, the authority directory and `member.json`.
//! - [`crl`]: the revocation register and the CRL, written by `authority
//!   init` and by `officer revoke`, and checked against the CA before a
//!   relay puts it in force ([`crl::check`]).
//! - [`layout`]: the file names inside an authority directory (also
//!   `authority::layout`).
//! - [`x509`]: what is read from certificates; identity URI SANs and the
//!   officer [`x509::Role`] they name.
//! - [`keys`]: Ed25519 key files and randomness.
//! - [`files`]: `0600` writes, no silent overwrite, permission checks.
//! - [`error`]: one error enum per area, and the [`error::Problems`] of a
//!   roster.
//!
//! The `kurir-certs` binary is in `src/bin/kurir-certs/`: `commands/` (one
//! module per command group, over [`cli`]) and `exit` (exit codes).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authority;
// The doc comments in `cli` are the help texts clap shows: an item-level
// doc on an argument struct or subcommand enum would change `--help`.
#[allow(missing_docs)]
pub mod cli;
pub mod crl;
pub mod error;
pub mod files;
pub mod keys;
pub mod layout;
pub mod officer;
pub mod roster;
pub mod tls;
pub mod x509;

pub use error::{FileError, PkiError, RosterError, TlsError};
pub use roster::{Accepted, Roster, SignedRoster};
pub use tls::{FederationVerifier, Identity};
