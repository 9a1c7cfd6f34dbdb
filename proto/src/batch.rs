//! Ed25519 signatures verified many at a time.
//!
//! Verifying one signature (`verify_strict`) costs two scalar
//! multiplications; ed25519-dalek's [`verify_batch`] checks a whole batch
//! with one multi-scalar multiplication, at a fraction of the cost per
//! signature. The offline audit verifier, which checks every signature of
//! an export, uses it. The relay, which verifies one receipt or envelope per
//! stream, does not batch; it uses [`Remembered`] instead, so the receipts
//! of one batch (signed once, PROTOCOL.md §10.1) and the proofs of one
//! answer (one checkpoint) cost one verification.
//!
//! # What is accepted
//!
//! `verify_strict` accepts a signature `(R, s)` by key `A` on message `M`
//! only if `s` is canonical, `R` and `A` are not of small order, and
//! `R == [s]B − [k]A` exactly, with `k = SHA-512(R ‖ A ‖ M)` (the
//! cofactorless equation; comparing encodings also refuses a non-canonical
//! `R`). [`verify_batch`] checks `Σ zᵢ(Rᵢ − [sᵢ]B + [kᵢ]Aᵢ) = 0` with
//! 128-bit `zᵢ` drawn from a transcript of every input, and refuses a
//! non-canonical `s`, but does not refuse small-order `R` or `A`. So before
//! a signature joins a batch, [`Batch`] makes the cheap checks
//! `verify_strict` makes: `R` is a canonical encoding of a point that is not
//! of small order, and `A` is not of small order (once per distinct key).
//! An item that fails them gets `verify_strict`'s verdict (a rejection).
//!
//! With those checks, a signature the batch accepts satisfies the cofactored
//! equation of RFC 8032 §5.1.7, `[8][s]B = [8]R + [8][k]A`, which RFC 8032
//! lets verifiers use, except with probability at most 2⁻¹²⁸ per batch tried
//! (if the prime-order part of some `Rᵢ − [sᵢ]B + [kᵢ]Aᵢ` is not zero, at most
//! one value of `zᵢ` in 2¹²⁸ makes the sum zero). Refusing small-order keys
//! keeps a weak key, for which that equation holds for every message, from
//! verifying anything. What
//! the batch may accept that `verify_strict` refuses is only a signature
//! whose `R` carries a small-order (torsion) component, `R = [r]B + T`:
//! making one needs `r` and `s = r + k·a`, that is the signing key, so it is
//! a second encoding of a signature the key's holder could make anyway, never
//! a forgery of a message. Whether such a signature passes depends on the
//! batch it lands in.
//!
//! When a batch fails, each of its items is verified with `verify_strict`,
//! so the failure names exactly the items `verify_strict` refuses, with its
//! error.
//!
//! # Three ways to use it
//!
//! - [`Batch`]: push `(label, key, message, signature)` items, then
//!   [`Batch::verify`] names the first item (in push order) that fails.
//! - [`Remembered`]: a [`SignatureCheck`] that remembers the signatures it
//!   verified and answers a repeat without verifying it again: the receipts
//!   of one batch (`docs/PROTOCOL.md` §10.1) all carry the same signature
//!   over the same bytes, so a sender checks it once.
//! - [`batched`]: runs a whole verification (any function that checks its
//!   signatures through a [`SignatureCheck`]) with every signature verified
//!   in batches, yet with the outcome, and the first error, it has when each
//!   is verified on the spot ([`Strict`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, SignatureError, VerifyingKey, verify_batch};
use sha2::{Digest as _, Sha256};

/// Signatures per [`verify_batch`] call. The cost per signature falls with
/// the batch size, steeply up to about 64 and slowly beyond
/// (`docs/PERFORMANCE.md`, `verify/*`); a failed batch is verified again
/// one by one, so larger batches make a bad signature dearer to find.
pub const BATCH_SIZE: usize = 64;

/// How a verification checks one Ed25519 signature.
pub trait SignatureCheck {
    /// Whether `signature` by `key` over `message` holds.
    fn check(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError>;
}

/// Each signature on the spot, with `verify_strict`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Strict;

impl SignatureCheck for Strict {
    fn check(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        key.verify_strict(message, signature)
    }
}

/// How many verified signatures a [`Remembered`] keeps by default.
pub const REMEMBERED: usize = 4096;

/// A [`SignatureCheck`] that remembers the last signatures its inner check
/// accepted (at most a fixed number, the oldest forgotten first) and accepts
/// a repeat of one without checking it again. A signature is remembered
/// under `SHA-256(key ‖ message ‖ signature)` (key and signature have fixed
/// lengths, so the message is delimited); one that failed is not
/// remembered and is checked again each time. It may be shared between
/// tasks.
#[derive(Debug)]
pub struct Remembered<C = Strict> {
    inner: C,
    capacity: usize,
    seen: Mutex<Seen>,
}

/// The remembered signatures, and their order for forgetting.
#[derive(Debug, Default)]
struct Seen {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Default for Remembered<Strict> {
    fn default() -> Self {
        Remembered::new(Strict, REMEMBERED)
    }
}

impl<C: SignatureCheck> Remembered<C> {
    /// Remembers up to `capacity` signatures (at least one) that `inner`
    /// accepted.
    pub fn new(inner: C, capacity: usize) -> Self {
        Remembered {
            inner,
            capacity: capacity.max(1),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn fingerprint(key: &VerifyingKey, message: &[u8], signature: &Signature) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update(message);
        h.update(signature.to_bytes());
        h.finalize().into()
    }
}

impl<C: SignatureCheck> SignatureCheck for Remembered<C> {
    fn check(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let print = Self::fingerprint(key, message, signature);
        // A poisoned lock only loses the memory: check as if never seen.
        if self.seen.lock().is_ok_and(|seen| seen.set.contains(&print)) {
            return Ok(());
        }
        self.inner.check(key, message, signature)?;
        if let Ok(mut seen) = self.seen.lock()
            && seen.set.insert(print)
        {
            seen.order.push_back(print);
            while seen.order.len() > self.capacity {
                if let Some(old) = seen.order.pop_front() {
                    seen.set.remove(&old);
                }
            }
        }
        Ok(())
    }
}

/// A signature that does not verify: the label it was pushed with and
/// `verify_strict`'s error.
#[derive(Debug)]
pub struct Failure<L> {
    /// The caller's name for the item.
    pub label: L,
    /// Why `verify_strict` refuses it.
    pub error: SignatureError,
}

impl<L: fmt::Display> fmt::Display for Failure<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signature {}: {}", self.label, self.error)
    }
}

impl<L: fmt::Display + fmt::Debug> std::error::Error for Failure<L> {}

/// One signature to verify.
#[derive(Debug)]
struct Item<'m, L> {
    label: L,
    key: VerifyingKey,
    message: Cow<'m, [u8]>,
    signature: Signature,
}

/// Signatures collected to be verified in batches of [`BATCH_SIZE`]
/// (see the module documentation for exactly what is accepted).
///
/// Messages are borrowed where the caller can lend them for the batch's
/// life, owned otherwise.
#[derive(Debug)]
pub struct Batch<'m, L> {
    items: Vec<Item<'m, L>>,
    size: usize,
}

impl<L> Default for Batch<'_, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'m, L> Batch<'m, L> {
    /// An empty batch, verified [`BATCH_SIZE`] signatures at a time.
    pub fn new() -> Self {
        Self::with_batch_size(BATCH_SIZE)
    }

    /// An empty batch, verified `size` signatures at a time (at least one).
    pub fn with_batch_size(size: usize) -> Self {
        Batch {
            items: Vec::new(),
            size: size.max(1),
        }
    }

    /// Adds a signature; `label` names it if it fails.
    pub fn push(
        &mut self,
        label: L,
        key: VerifyingKey,
        message: impl Into<Cow<'m, [u8]>>,
        signature: Signature,
    ) {
        self.items.push(Item {
            label,
            key,
            message: message.into(),
            signature,
        });
    }

    /// How many signatures it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Verifies every signature; the error names the first one, in push
    /// order, that does not verify, with `verify_strict`'s error.
    pub fn verify(&self) -> Result<(), Failure<&L>> {
        let mut weak = WeakKeys::default();
        for chunk in self.items.chunks(self.size) {
            let Some(verdicts) = judge(chunk, &mut weak) else {
                continue;
            };
            for (item, verdict) in chunk.iter().zip(verdicts) {
                if let Err(error) = verdict {
                    return Err(Failure {
                        label: &item.label,
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Every signature's verdict, in push order.
    pub fn verdicts(&self) -> Vec<Result<(), SignatureError>> {
        let mut weak = WeakKeys::default();
        let mut out = Vec::with_capacity(self.items.len());
        for chunk in self.items.chunks(self.size) {
            match judge(chunk, &mut weak) {
                Some(verdicts) => out.extend(verdicts),
                None => out.extend(chunk.iter().map(|_| Ok(()))),
            }
        }
        out
    }
}

/// Whether each distinct key seen is of small order.
#[derive(Debug, Default)]
struct WeakKeys(HashMap<[u8; 32], bool>);

impl WeakKeys {
    fn is_weak(&mut self, key: &VerifyingKey) -> bool {
        *self
            .0
            .entry(key.to_bytes())
            .or_insert_with(|| key.is_weak())
    }
}

/// Whether a point encoding's y coordinate is below p = 2²⁵⁵ − 19.
/// `decompress` reduces a larger one; `verify_strict` compares encodings,
/// so it refuses it.
fn y_is_reduced(bytes: &[u8; 32]) -> bool {
    // p is ed ff ff … ff 7f, little-endian: y ≥ p only if all of y's bits
    // but the lowest byte's are ones and that byte is at least 0xed.
    !(bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// The checks `verify_strict` makes that `verify_batch` does not: `R` is a
/// canonical encoding of a point not of small order, `A` is not of small
/// order.
fn fit_for_batch<L>(item: &Item<'_, L>, weak: &mut WeakKeys) -> bool {
    let r = item.signature.r_bytes();
    y_is_reduced(r)
        && CompressedEdwardsY(*r)
            .decompress()
            .is_some_and(|point| !point.is_small_order())
        && !weak.is_weak(&item.key)
}

/// Verifies one chunk: `None` if every signature holds, otherwise each
/// one's verdict (`verify_strict`'s, except where the batch of the rest
/// passed).
fn judge<L>(chunk: &[Item<'_, L>], weak: &mut WeakKeys) -> Option<Vec<Result<(), SignatureError>>> {
    let fit: Vec<bool> = chunk.iter().map(|i| fit_for_batch(i, weak)).collect();
    let mut messages = Vec::with_capacity(chunk.len());
    let mut signatures = Vec::with_capacity(chunk.len());
    let mut keys = Vec::with_capacity(chunk.len());
    for (item, _) in chunk.iter().zip(&fit).filter(|(_, fit)| **fit) {
        messages.push(item.message.as_ref());
        signatures.push(item.signature);
        keys.push(item.key);
    }
    let batch_holds = verify_batch(&messages, &signatures, &keys).is_ok();
    if batch_holds && fit.iter().all(|f| *f) {
        return None;
    }
    Some(
        chunk
            .iter()
            .zip(&fit)
            .map(|(item, fit)| {
                if *fit && batch_holds {
                    Ok(())
                } else {
                    item.key.verify_strict(&item.message, &item.signature)
                }
            })
            .collect(),
    )
}

/// Runs `verify` with its signatures checked in batches, and returns what
/// it returns when every signature is checked on the spot with
/// `verify_strict` (up to the torsion signatures of the module
/// documentation, which a batch may accept).
///
/// The first run answers every signature "valid" at once and collects it;
/// the collected signatures are verified in batches of [`BATCH_SIZE`] as
/// they fill up and at the end. If every one holds, that run's result is
/// the answer: each answer it relied on was true, so it took the path a run
/// with [`Strict`] takes, to the same end (a success, or the same first
/// error). If some do not hold, `verify` runs again with those answered by
/// `verify_strict` (its error) and the rest collected as before, until a run
/// relies on no answer that proves false. A verification that meets a bad
/// signature thus costs two runs (the second up to that signature), one whose
/// signatures all hold one run. Nothing is kept per signature between runs
/// but the refused ones.
///
/// `verify` must be a function of its inputs alone: it is run once or more,
/// and only the last run's result counts, so it must have no side effects
/// (no output, no writes) and must make the same checks for the same
/// answers.
pub fn batched<T, E>(mut verify: impl FnMut(&dyn SignatureCheck) -> Result<T, E>) -> Result<T, E> {
    let mut refused: Vec<Owned> = Vec::new();
    loop {
        let run = Deferred {
            refused: &refused,
            pending: RefCell::new(Batch::new()),
            failed: RefCell::new(Vec::new()),
            seen: RefCell::new(HashSet::new()),
        };
        let result = verify(&run);
        run.flush();
        let failed = run.failed.into_inner();
        if failed.is_empty() {
            return result;
        }
        refused.extend(failed);
    }
}

/// A signature with its key and message.
#[derive(Debug)]
struct Owned {
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
}

impl Owned {
    fn is(&self, key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
        self.signature == *signature && self.key == *key && self.message == message
    }
}

/// One run of [`batched`]: signatures known to fail get `verify_strict`'s
/// verdict; the others are answered valid and verified in batches.
#[derive(Debug)]
struct Deferred<'r> {
    refused: &'r [Owned],
    pending: RefCell<Batch<'static, ()>>,
    /// Answered valid, found not to be.
    failed: RefCell<Vec<Owned>>,
    /// The signatures collected in this run ([`Remembered::fingerprint`]):
    /// a repeat (the envelopes or receipts of one batch, PROTOCOL.md §6.1
    /// and §10.1, all carry the same signature over the same head) is
    /// answered as the first was, and verified once. If it fails, every
    /// repeat's answer relied on it, and the next run refuses them all.
    seen: RefCell<HashSet<[u8; 32]>>,
}

impl Deferred<'_> {
    /// Verifies the pending signatures, keeping those that fail.
    fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        let verdicts = batch.verdicts();
        let mut failed = self.failed.borrow_mut();
        for (item, verdict) in batch.items.into_iter().zip(verdicts) {
            if verdict.is_err() {
                failed.push(Owned {
                    key: item.key,
                    message: item.message.into_owned(),
                    signature: item.signature,
                });
            }
        }
    }
}

impl SignatureCheck for Deferred<'_> {
    fn check(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        if self.refused.iter().any(|r| r.is(key, message, signature)) {
            return key.verify_strict(message, signature);
        }
        let print = Remembered::<Strict>::fingerprint(key, message, signature);
        if !self.seen.borrow_mut().insert(print) {
            return Ok(());
        }
        let full = {
            let mut pending = self.pending.borrow_mut();
            pending.push((), *key, message.to_vec(), *signature);
            pending.len() >= BATCH_SIZE
        };
        if full {
            self.flush();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
