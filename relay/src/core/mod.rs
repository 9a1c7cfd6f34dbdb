//! The sans-IO core: state machines that take events and `now` and return
//! what to do. No sockets, no files, no clock; the tokio layer drives them.

pub mod cosign;
pub mod deadline;
pub mod delivery;
pub mod inbound;
pub mod proofs;
pub mod retention;
pub mod witness;
