//! Roster decoding never panics, and what decodes is exactly its own
//! encoding (the signed roster is deterministic CBOR).
#![no_main]

use kurir_certs::roster::{RosterBody, SignedRoster};
use kurir_certs::Roster;
use kurir_proto::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedRoster::decode(data) {
        assert_eq!(signed.encode().ok().as_deref(), Some(data));
        let _ = signed.body();
    }
    if let Ok(body) = RosterBody::decode(data) {
        assert_eq!(body.encode().ok().as_deref(), Some(data));
        let _ = body.check();
    }
    // The full check (k-of-n signatures, every field) at a fixed time.
    let _ = Roster::verify(data, Timestamp(1_795_874_050_000));
});
