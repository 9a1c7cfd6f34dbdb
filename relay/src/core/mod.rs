//! The sans-IO core: state machines and decisions that take events and
//! `now` and return what to do. No sockets, no files, no clock, no logs;
//! the tokio layer ([`crate::node`]) reads what they need from the store,
//! calls them, and stores and sends what they return.
//!
//! - [`submit`]: an officer's submission checked, signed and made ready
//!   to store ([`submit::submit`]);
//! - [`inbound`]: what arrives from peers: a parcel checked, accepted
//!   ([`inbound::Arrival`]) or refused ([`inbound::Rejected`]), and the
//!   receipts for what this relay sent;
//! - [`cases`]: the rules of readmission cases in both directions: what
//!   may be sent, and what a message sent or received does to its case;
//! - [`deadline`]: the readmission clock: agreements, due dates, a case's
//!   state and its deadline events;
//! - [`delivery`]: the sender's outbox, a state machine per delivery;
//! - [`parcels`]: which sent parcels stay in memory for their delivery
//!   attempts, within a byte budget;
//! - [`crl`]: whether a CRL read while the relay runs replaces the one
//!   in force (rollback refused) and whose open connections it ends;
//! - [`roster`]: what a newer roster changes (members added, removed,
//!   reached elsewhere, under another CA), and a roster file behind the
//!   roster in force;
//! - [`expiry`]: what expires when, the seconds left for the metrics, and
//!   the warnings due 30, 7 and 1 days ahead (once each);
//! - [`access`]: who may read a message body (handling level, role, focal
//!   points, `[reads]`);
//! - [`events`]: the audit entries, one function per event;
//! - [`keys`]: which of this authority's message keys signs at a moment;
//! - [`witness`] and [`cosign`]: both sides of cosigning checkpoints;
//! - [`pacing`]: when to sign a checkpoint, ask a member again, or cosign
//!   for one, so that an idle federation's logs stay still;
//! - [`proofs`]: inclusion proofs for held receipts;
//! - [`retention`]: which bodies are due for erasure.

pub mod access;
pub mod cases;
pub mod cosign;
pub mod crl;
pub mod deadline;
pub mod delivery;
pub mod events;
pub mod expiry;
pub mod inbound;
pub mod keys;
pub mod pacing;
pub mod parcels;
pub mod proofs;
pub mod retention;
pub mod roster;
pub mod submit;
pub mod witness;

#[cfg(test)]
mod fixtures;
