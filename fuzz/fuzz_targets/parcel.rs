//! Opening arbitrary bytes as a parcel never panics; a parcel that opens
//! re-encodes to the same bytes, and its header to the bytes that were signed.
//!
//! Seed the corpus with the parcels of `proto/tests/vectors/envelopes.json`
//! (see fuzz/README.md) so the fuzzer starts from signed, valid input; the
//! key ring below holds the vectors' public keys.
#![no_main]

use std::sync::LazyLock;

use kurir_proto::ed25519_dalek::SigningKey;
use kurir_proto::*;
use libfuzzer_sys::fuzz_target;

/// The seeds of the vector keys (see proto/tests/vectors/envelopes.json).
const KEYS: [(&str, &str); 2] = [
    ("RS.MUP", "257cdabb83e4a3f20d6c5ea7155e4ab2650cceeb54d0ce637338fa2022534726"),
    ("BA.SPS", "23c08c377dbb16d732d14933f187d2e2bace512d466e95933fbb4a24422cf183"),
];

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    let mut ring = KeyRing::new();
    for (authority, seed) in KEYS {
        let mut bytes = [0u8; 32];
        if hex::decode_to_slice(seed, &mut bytes).is_ok()
            && let Ok(authority) = AuthorityId::parse(authority)
        {
            ring.insert(PublicKey {
                authority,
                key: SigningKey::from_bytes(&bytes).verifying_key(),
                valid_from: Timestamp(0),
                valid_until: None,
                revoked_at: None,
            });
        }
    }
    ring
});

static ME: LazyLock<Option<AuthorityId>> = LazyLock::new(|| AuthorityId::parse("ME.UP").ok());

fuzz_target!(|data: &[u8]| {
    let Some(me) = ME.as_ref() else { return };
    let ctx = OpenContext {
        me,
        now: Timestamp(1_795_874_050_000),
        max_parcel: DEFAULT_MAX_PARCEL,
    };
    if let Ok(opened) = open(data, &*RING, &ctx) {
        assert_eq!(opened.parcel.to_bytes(), data);
        assert_eq!(opened.envelope_digest, Digest::of_envelope(&opened.parcel.envelope));
    }
    // The structural decoders on their own.
    if let Ok(parcel) = Parcel::from_bytes(data) {
        assert_eq!(parcel.to_bytes(), data);
        let _ = verify_envelope(&parcel.envelope, &*RING);
    }
    let _ = Receipt::decode(data);
});
