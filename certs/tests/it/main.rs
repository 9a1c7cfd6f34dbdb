//! Integration tests of kurir-certs: one test binary (faster to link).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod common;
mod files;
mod revoke;
mod roster;
mod tls;
