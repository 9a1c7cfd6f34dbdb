use std::cell::Cell;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use sha2::{Digest as _, Sha512};

use super::*;

/// A signing key of the test's own, one of five.
fn signer(n: usize) -> SigningKey {
    SigningKey::from_bytes(&[(n % 5) as u8 + 1; 32])
}

fn message(n: usize) -> Vec<u8> {
    format!("kurir batch test message {n}").into_bytes()
}

/// A key whose secret scalar the test knows, to build signatures with a
/// chosen `R` as only the key's holder could.
struct Holder {
    a: Scalar,
    key: VerifyingKey,
}

impl Holder {
    fn new(seed: u64) -> Holder {
        let a = Scalar::from(seed) * Scalar::from(0x1234_5678_9abc_def1_u64);
        let point = EdwardsPoint::mul_base(&a);
        Holder {
            a,
            key: VerifyingKey::from_bytes(&point.compress().to_bytes()).unwrap(),
        }
    }

    /// `s = r + k·a` for a given `R` (whose discrete log `r` the caller
    /// supplies): valid for the cofactored equation.
    fn sign_with(&self, r: Scalar, big_r: EdwardsPoint, m: &[u8]) -> Signature {
        let r_bytes = big_r.compress().to_bytes();
        let k = challenge(&r_bytes, self.key.as_bytes(), m);
        let s = r + k * self.a;
        Signature::from_components(r_bytes, s.to_bytes())
    }
}

fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// RFC 8032 §5.1.7's cofactored equation `[8][s]B = [8]R + [8][k]A`.
fn cofactored(key: &VerifyingKey, m: &[u8], sig: &Signature) -> bool {
    let (Some(r), Some(a)) = (
        CompressedEdwardsY(*sig.r_bytes()).decompress(),
        CompressedEdwardsY(key.to_bytes()).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*sig.s_bytes())) else {
        return false;
    };
    let k = challenge(sig.r_bytes(), key.as_bytes(), m);
    (EdwardsPoint::mul_base(&s) - r - a * k)
        .mul_by_cofactor()
        .is_identity()
}

fn errors_match(a: &Result<(), SignatureError>, b: &Result<(), SignatureError>) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn good_signatures_pass_in_every_batch_size() {
    for size in [1, 7, 64, 256] {
        let mut batch = Batch::with_batch_size(size);
        for n in 0..200 {
            let m = message(n);
            let sig = signer(n).sign(&m);
            batch.push(n, signer(n).verifying_key(), m, sig);
        }
        assert_eq!(batch.len(), 200);
        assert!(batch.verify().is_ok(), "batch size {size}");
        assert!(batch.verdicts().iter().all(Result::is_ok));
    }
    assert!(Batch::<()>::new().verify().is_ok());
}

#[test]
fn one_bad_signature_anywhere_is_named_with_the_strict_error() {
    let messages: Vec<Vec<u8>> = (0..150).map(message).collect();
    for bad in [0, 1, 63, 64, 65, 127, 128, 149] {
        let mut batch = Batch::new();
        let mut strict = None;
        for (n, m) in messages.iter().enumerate() {
            let key = signer(n).verifying_key();
            let mut sig = signer(n).sign(m);
            if n == bad {
                // Another message's signature.
                sig = signer(n).sign(b"something else");
                strict = Some(key.verify_strict(m, &sig));
            }
            // Borrowed from the caller's messages.
            batch.push(n, key, &m[..], sig);
        }
        let failure = batch.verify().unwrap_err();
        assert_eq!(*failure.label, bad);
        assert!(errors_match(&Err(failure.error), &strict.unwrap()));
        let verdicts = batch.verdicts();
        for (n, v) in verdicts.iter().enumerate() {
            assert_eq!(v.is_err(), n == bad, "item {n}");
        }
    }
}

#[test]
fn the_first_of_several_bad_signatures_is_named() {
    let mut batch = Batch::new();
    for n in 0..300 {
        let m = message(n);
        let sig = if n == 200 || n == 70 || n == 71 {
            signer(n + 1).sign(&m)
        } else {
            signer(n).sign(&m)
        };
        batch.push(
            format!("envelope {}", n + 1),
            signer(n).verifying_key(),
            m,
            sig,
        );
    }
    let failure = batch.verify().unwrap_err();
    assert_eq!(failure.label, "envelope 71");
    assert!(failure.to_string().starts_with("signature envelope 71: "));
}

/// A small-order `R` from a key's holder (`R` = the identity, `s = k·a`)
/// and a small-order key (the identity, with `R` the identity and `s = 0`)
/// satisfy the batch equation, and plain `verify` and `verify_batch` accept
/// them; the batch refuses them as `verify_strict` does.
#[test]
fn small_order_r_and_small_order_keys_are_refused() {
    let holder = Holder::new(3);
    let m = b"a message".to_vec();
    let small_r = holder.sign_with(Scalar::ZERO, EdwardsPoint::identity(), &m);
    let identity = EdwardsPoint::identity().compress().to_bytes();
    let weak_key = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(weak_key.is_weak());
    let weak_sig = Signature::from_components(identity, [0; 32]);
    // Another small-order point as R, with the weak key: [s]B = R needs
    // s = 0 and R the identity, so an order-2 R would not hold; the
    // identity is the one that does.
    let cases = [(holder.key, small_r), (weak_key, weak_sig)];
    for (key, sig) in cases {
        use ed25519_dalek::Verifier;
        assert!(key.verify(&m, &sig).is_ok(), "plain verify accepts it");
        assert!(
            verify_batch(&[&m], &[sig], &[key]).is_ok(),
            "so does verify_batch"
        );
        let strict = key.verify_strict(&m, &sig);
        assert!(strict.is_err());
        // Alone, and among good signatures.
        let mut alone = Batch::new();
        alone.push("alone", key, &m[..], sig);
        let failure = alone.verify().unwrap_err();
        assert_eq!(*failure.label, "alone");
        assert!(errors_match(&Err(failure.error), &strict));
        let mut mixed = Batch::new();
        for n in 0..10 {
            let good = message(n);
            mixed.push(
                n,
                signer(n).verifying_key(),
                good.clone(),
                signer(n).sign(&good),
            );
        }
        mixed.push(10, key, m.clone(), sig);
        mixed.push(
            11,
            signer(11).verifying_key(),
            message(11),
            signer(11).sign(&message(11)),
        );
        assert_eq!(*mixed.verify().unwrap_err().label, 10);
    }
}

/// A signature whose `R` has a torsion component, made by the key's holder:
/// `verify_strict` refuses it, it satisfies the cofactored equation, and a
/// batch accepts it or refuses it (with the strict error) depending on its
/// coefficient. This is the only difference from `verify_strict`.
#[test]
fn a_holders_torsion_signature_is_the_only_difference() {
    let holder = Holder::new(5);
    let mut accepted = 0;
    for n in 0..32 {
        let m = message(n);
        let r = Scalar::from(1000 + n as u64);
        let big_r = EdwardsPoint::mul_base(&r) + EIGHT_TORSION[1];
        let sig = holder.sign_with(r, big_r, &m);
        let strict = holder.key.verify_strict(&m, &sig);
        assert!(strict.is_err());
        assert!(cofactored(&holder.key, &m, &sig));
        let mut batch = Batch::new();
        batch.push(n, holder.key, &m[..], sig);
        match batch.verify() {
            Ok(()) => accepted += 1,
            Err(f) => assert!(errors_match(&Err(f.error), &strict)),
        }
    }
    // 128-bit coefficients divisible by 8 are one in eight.
    assert!((1..32).contains(&accepted), "{accepted}");
}

#[test]
fn only_reduced_y_coordinates_are_canonical() {
    let p_minus_1 = {
        let mut b = [0xff; 32];
        b[0] = 0xec;
        b[31] = 0x7f;
        b
    };
    assert!(y_is_reduced(&p_minus_1));
    assert!(y_is_reduced(&ED25519_BASEPOINT_POINT.compress().to_bytes()));
    // y + p for every y < 19 (with either sign bit): the encodings that
    // `decompress` reduces.
    for y in 0u8..19 {
        for sign in [0, 0x80] {
            let mut b = p_minus_1;
            b[0] = 0xed + y;
            b[31] |= sign;
            assert!(!y_is_reduced(&b), "{y}");
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            canonical[31] = sign;
            assert!(y_is_reduced(&canonical));
            if let Some(point) = CompressedEdwardsY(b).decompress() {
                // The same point as the canonical encoding: strict refuses
                // the longer one, and so does the batch.
                assert_ne!(point.compress().to_bytes(), b);
            }
        }
    }
}

/// What is done to a good signature.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    None,
    Message,
    RBit(u8),
    SBit(u8),
    NonCanonicalS,
    OtherKey,
    SmallOrderR,
    WeakKey,
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        6 => Just(Corruption::None),
        1 => Just(Corruption::Message),
        1 => (0u8..255).prop_map(Corruption::RBit),
        1 => (0u8..250).prop_map(Corruption::SBit),
        1 => Just(Corruption::NonCanonicalS),
        1 => Just(Corruption::OtherKey),
        1 => Just(Corruption::SmallOrderR),
        1 => Just(Corruption::WeakKey),
    ]
}

fn item(n: usize, c: Corruption) -> (VerifyingKey, Vec<u8>, Signature) {
    let m = message(n);
    let key = signer(n);
    let sig = key.sign(&m);
    let flip = |bytes: [u8; 64], bit: usize| {
        let mut b = bytes;
        b[bit / 8] ^= 1 << (bit % 8);
        Signature::from_bytes(&b)
    };
    match c {
        Corruption::None => (key.verifying_key(), m, sig),
        Corruption::Message => (key.verifying_key(), message(n + 1000), sig),
        Corruption::RBit(bit) => (key.verifying_key(), m, flip(sig.to_bytes(), bit.into())),
        Corruption::SBit(bit) => (
            key.verifying_key(),
            m,
            flip(sig.to_bytes(), 256 + usize::from(bit)),
        ),
        Corruption::NonCanonicalS => {
            // s + ℓ: the same scalar, not reduced.
            let s = Scalar::from_canonical_bytes(*sig.s_bytes()).unwrap();
            let l_minus_1 = -Scalar::ONE;
            let mut wide = [0u8; 32];
            let mut carry = 0u16;
            let (sb, lb) = (s.to_bytes(), (l_minus_1).to_bytes());
            for i in 0..32 {
                // s + (ℓ − 1) + 1
                let v = u16::from(sb[i]) + u16::from(lb[i]) + carry + u16::from(i == 0);
                wide[i] = v as u8;
                carry = v >> 8;
            }
            (
                key.verifying_key(),
                m,
                Signature::from_components(*sig.r_bytes(), wide),
            )
        }
        Corruption::OtherKey => (signer(n + 1).verifying_key(), m, sig),
        Corruption::SmallOrderR => {
            let holder = Holder::new(n as u64 + 1);
            let sig = holder.sign_with(Scalar::ZERO, EdwardsPoint::identity(), &m);
            (holder.key, m, sig)
        }
        Corruption::WeakKey => {
            let identity = EdwardsPoint::identity().compress().to_bytes();
            (
                VerifyingKey::from_bytes(&identity).unwrap(),
                m,
                Signature::from_components(identity, [0; 32]),
            )
        }
    }
}

/// A verification in the shape of the audit verifier's: items in order,
/// each with a structural check and a signature; the first problem is the
/// error.
fn verify_items(
    items: &[(VerifyingKey, Vec<u8>, Signature)],
    structurally_bad: Option<usize>,
    sigs: &dyn SignatureCheck,
) -> Result<usize, String> {
    for (n, (key, m, sig)) in items.iter().enumerate() {
        if structurally_bad == Some(n) {
            return Err(format!("item {n} is malformed"));
        }
        sigs.check(key, m, sig)
            .map_err(|e| format!("item {n}: {e:?}"))?;
    }
    Ok(items.len())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        rng_seed: RngSeed::Fixed(0x6b75_7269_7262_6174),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random mixes of good and corrupted signatures: every verdict is
    /// `verify_strict`'s, the first failure named is the first strict one,
    /// and [`batched`] gives what a run with [`Strict`] gives.
    #[test]
    fn batches_agree_with_strict_verification(
        corruptions in prop::collection::vec(corruption(), 1..160),
        structurally_bad in prop::option::of(0usize..160),
    ) {
        let items: Vec<_> = corruptions.iter().enumerate().map(|(n, c)| item(n, *c)).collect();
        let strict: Vec<_> = items.iter().map(|(k, m, s)| k.verify_strict(m, s)).collect();
        let mut batch = Batch::new();
        for (n, (k, m, s)) in items.iter().enumerate() {
            batch.push(n, *k, &m[..], *s);
        }
        let verdicts = batch.verdicts();
        for (n, (v, s)) in verdicts.iter().zip(&strict).enumerate() {
            prop_assert!(errors_match(v, s), "item {} ({:?}): {:?} vs {:?}", n, corruptions[n], v, s);
        }
        match (batch.verify(), strict.iter().position(Result::is_err)) {
            (Ok(()), None) => {}
            (Err(f), Some(first)) => prop_assert_eq!(*f.label, first),
            (got, want) => prop_assert!(false, "{:?} vs first strict failure {:?}", got.map_err(|f| *f.label), want),
        }
        let runs = Cell::new(0);
        let got = batched(|sigs| {
            runs.set(runs.get() + 1);
            verify_items(&items, structurally_bad, sigs)
        });
        prop_assert_eq!(got, verify_items(&items, structurally_bad, &Strict));
        // One run when every signature the first run relied on holds.
        let relied_on = structurally_bad.map_or(items.len(), |b| b.min(items.len()));
        if strict[..relied_on].iter().all(Result::is_ok) {
            prop_assert_eq!(runs.get(), 1);
        } else {
            prop_assert_eq!(runs.get(), 2);
        }
    }
}

#[test]
fn batched_reports_the_first_error_in_the_verifications_order() {
    let mut items: Vec<_> = (0..300).map(|n| item(n, Corruption::None)).collect();
    // Two bad signatures in different batches, and a structural error
    // between them.
    items[250] = item(250, Corruption::Message);
    items[90] = item(90, Corruption::OtherKey);
    let strict = verify_items(&items, Some(150), &Strict);
    assert!(
        strict.as_ref().unwrap_err().starts_with("item 90: "),
        "{strict:?}"
    );
    assert_eq!(batched(|s| verify_items(&items, Some(150), s)), strict);
    // The structural error comes first when it is before every bad one.
    assert_eq!(
        batched(|s| verify_items(&items, Some(40), s)),
        Err("item 40 is malformed".to_owned())
    );
    items[90] = item(90, Corruption::None);
    assert_eq!(
        batched(|s| verify_items(&items, None, s)),
        verify_items(&items, None, &Strict)
    );
}

/// The same signature over the same message by the same key, met again in
/// a run (the envelopes or receipts of one batch): collected once; and when
/// it is bad, every place it is met gets the strict error, the first of
/// them named.
#[test]
fn a_repeated_signature_is_verified_once_per_run() {
    let items: Vec<_> = (0..10).map(|n| item(n % 3, Corruption::None)).collect();
    let run = Deferred {
        refused: &[],
        pending: RefCell::new(Batch::new()),
        failed: RefCell::new(Vec::new()),
        seen: RefCell::new(HashSet::new()),
    };
    assert_eq!(verify_items(&items, None, &run), Ok(10));
    assert_eq!(run.pending.borrow().len(), 3, "three distinct signatures");
    run.flush();
    assert!(run.failed.borrow().is_empty());
    assert_eq!(batched(|s| verify_items(&items, None, s)), Ok(10));
    // One of the three bad: named where it is first met, as strictly.
    let mut bad: Vec<_> = (0..10)
        .map(|n| match n % 3 {
            1 => item(1, Corruption::Message),
            k => item(k, Corruption::None),
        })
        .collect();
    let strict = verify_items(&bad, None, &Strict);
    assert!(
        strict.as_ref().unwrap_err().starts_with("item 1: "),
        "{strict:?}"
    );
    assert_eq!(batched(|s| verify_items(&bad, None, s)), strict);
    // A structural error before its first use comes first.
    bad[1] = item(1, Corruption::None);
    bad[4] = item(1, Corruption::Message);
    assert_eq!(
        batched(|s| verify_items(&bad, Some(2), s)),
        Err("item 2 is malformed".to_owned())
    );
    assert_eq!(
        batched(|s| verify_items(&bad, None, s)),
        verify_items(&bad, None, &Strict)
    );
}

/// Counts the signatures it is asked about, and checks them strictly.
#[derive(Default)]
struct Counting(Cell<usize>);

// `Remembered` needs its inner check to be shareable only where it is
// shared; the tests use it on one thread.
impl SignatureCheck for &Counting {
    fn check(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.0.set(self.0.get() + 1);
        Strict.check(key, message, signature)
    }
}

#[test]
fn a_remembered_signature_is_not_verified_again() {
    let counting = Counting::default();
    let memo = Remembered::new(&counting, 8);
    let (k0, k1) = (signer(0), signer(1));
    let sig = k0.sign(&message(0));
    let key = k0.verifying_key();
    memo.check(&key, &message(0), &sig).unwrap();
    memo.check(&key, &message(0), &sig).unwrap();
    memo.check(&key, &message(0), &sig).unwrap();
    assert_eq!(counting.0.get(), 1, "a repeat costs no verification");
    // Another message, signature or key is verified (and refused).
    assert!(memo.check(&key, &message(1), &sig).is_err());
    assert_eq!(counting.0.get(), 2);
    let other_sig = k0.sign(&message(1));
    assert!(memo.check(&key, &message(0), &other_sig).is_err());
    assert_eq!(counting.0.get(), 3);
    assert!(memo.check(&k1.verifying_key(), &message(0), &sig).is_err());
    assert_eq!(counting.0.get(), 4);
    // A refused one is not remembered: asked again, it is verified again.
    assert!(memo.check(&key, &message(1), &sig).is_err());
    assert_eq!(counting.0.get(), 5);
    // A new valid one is verified once, then remembered.
    memo.check(&key, &message(1), &other_sig).unwrap();
    memo.check(&key, &message(1), &other_sig).unwrap();
    assert_eq!(counting.0.get(), 6);
}

#[test]
fn remembered_signatures_are_bounded_oldest_forgotten_first() {
    let counting = Counting::default();
    let memo = Remembered::new(&counting, 2);
    let k = signer(0);
    let sigs: Vec<_> = (0..3).map(|i| k.sign(&message(i))).collect();
    for (i, s) in sigs.iter().enumerate() {
        memo.check(&k.verifying_key(), &message(i), s).unwrap();
    }
    assert_eq!(counting.0.get(), 3);
    // The newest two are remembered, the first was forgotten.
    memo.check(&k.verifying_key(), &message(2), &sigs[2])
        .unwrap();
    memo.check(&k.verifying_key(), &message(1), &sigs[1])
        .unwrap();
    assert_eq!(counting.0.get(), 3);
    memo.check(&k.verifying_key(), &message(0), &sigs[0])
        .unwrap();
    assert_eq!(counting.0.get(), 4);
}
