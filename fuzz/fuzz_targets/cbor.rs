//! The deterministic-CBOR decoder never panics, and whatever it accepts is
//! exactly its own encoding.
#![no_main]

use kurir_proto::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cbor::decode_value(data) {
        assert_eq!(cbor::encode_value(&value).ok().as_deref(), Some(data));
    }
});
