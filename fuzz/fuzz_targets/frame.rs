//! Frame decoding never panics, never reads past the buffer, and never yields
//! a payload over the limit.
#![no_main]

use kurir_proto::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a limit so small and large limits are both explored.
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(pick) * 64;
    while let Ok(Some((payload, used))) = frame::decode(rest, max) {
        assert!(payload.len() <= max);
        assert_eq!(used, frame::PREFIX_LEN + payload.len());
        assert!(used <= rest.len());
        // What decodes encodes back to the same bytes.
        assert_eq!(frame::encode(payload, max).ok().as_deref(), Some(&rest[..used]));
        rest = &rest[used..];
    }
});
