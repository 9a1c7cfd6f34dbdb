//! `relay.toml` parsing never panics on any text: every problem is an
//! error that names the file.
#![no_main]

use std::path::Path;

use kurir_relay::config::RelayConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/relay.toml");
    if let Err(e) = RelayConfig::parse(text, path) {
        assert!(e.to_string().contains("/fuzz/relay.toml"), "{e}");
    }
});
