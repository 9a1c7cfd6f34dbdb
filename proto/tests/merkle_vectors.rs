//! The Merkle proof vectors in `tests/vectors/merkle-proofs/` (from
//! transparency-dev/merkle, Apache-2.0: see the README there) and property
//! tests of `kurir_proto::merkle`.
//!
//! Every case in `inclusion/`, `consistency/` and `subtreeinclusion/` runs;
//! those with `"wantErr": false` must verify and the others must fail.
//! (Upstream's `subtreeconsistency/` is not copied: subtree consistency
//! proofs are not implemented.)
//!
//! Some cases hold values that are not 32-byte hashes. A `Digest` cannot
//! hold them, so the harness does what a caller decoding them must do and
//! counts the case as refused (`MalformedHash`) before any proof is checked:
//! empty strings, truncated hashes, empty proof entries. The exception are
//! the placeholders `"don't care 1"` and `"don't care 2"`, which the vectors
//! use where any hash would do: they get a stand-in 32-byte value (the
//! placeholder zero-padded, so equal placeholders stay equal and different
//! ones different) and run through the verifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kurir_proto::Digest;
use kurir_proto::merkle::{self, CompactRange, ProofError, Subtree};
use proptest::prelude::*;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/merkle-proofs");
    assert!(
        dir.is_dir(),
        "the Merkle proof vectors are missing: expected the directory {}",
        dir.display()
    );
    dir
}

/// Every `.json` file under `dir`, sorted.
fn cases(kind: &str) -> Vec<(String, Value)> {
    let root = vectors_dir().join(kind);
    assert!(root.is_dir(), "missing vector directory {}", root.display());
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", root.display());
    files
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            (name, value)
        })
        .collect()
}

/// A hash field that is not a 32-byte hash.
#[derive(Debug)]
struct MalformedHash;

/// Decodes a hash field; `"don't care"` placeholders get a stand-in (see the
/// module docs), counted in `stand_ins`.
fn hash(value: &Value, stand_ins: &mut usize) -> Result<Digest, MalformedHash> {
    let text = value.as_str().expect("hash fields are strings");
    let bytes = BASE64.decode(text).expect("hash fields are base64");
    if let Some(d) = Digest::from_slice(&bytes) {
        return Ok(d);
    }
    if !bytes.starts_with(b"don't care") {
        return Err(MalformedHash);
    }
    *stand_ins += 1;
    let mut padded = [0u8; 32];
    padded[..bytes.len()].copy_from_slice(&bytes);
    Ok(Digest(padded))
}

fn proof(value: &Value, stand_ins: &mut usize) -> Result<Vec<Digest>, MalformedHash> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|h| hash(h, stand_ins)).collect(),
        other => panic!("proof is neither null nor a list: {other}"),
    }
}

fn u64_field(case: &Value, field: &str) -> u64 {
    case[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not a u64: {}", case[field]))
}

/// The 8 leaves of the RFC 6962 reference tree, which the vectors use.
fn reference_leaves() -> Vec<Digest> {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    data.iter().map(|d| merkle::leaf_hash(d)).collect()
}

/// Why a case was refused: at decoding or by the verifier.
#[derive(Debug)]
enum Refused {
    #[allow(dead_code)] // Read through Debug.
    MalformedHash(MalformedHash),
    #[allow(dead_code)]
    Proof(ProofError),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::MalformedHash(_) => f.write_str("a hash field is not 32 bytes"),
            Refused::Proof(e) => e.fmt(f),
        }
    }
}

impl From<MalformedHash> for Refused {
    fn from(e: MalformedHash) -> Self {
        Refused::MalformedHash(e)
    }
}

impl From<ProofError> for Refused {
    fn from(e: ProofError) -> Self {
        Refused::Proof(e)
    }
}

#[derive(Default)]
struct Tally {
    verified: usize,
    refused: usize,
    stand_ins: usize,
    regenerated: usize,
    failures: Vec<String>,
    errors: BTreeMap<String, usize>,
}

impl Tally {
    fn record(&mut self, name: &str, case: &Value, result: Result<(), Refused>) {
        let want_err = case["wantErr"].as_bool().expect("wantErr is a bool");
        match (&result, want_err) {
            (Ok(()), false) => self.verified += 1,
            (Err(e), true) => {
                self.refused += 1;
                let kind = match e {
                    Refused::MalformedHash(_) => "MalformedHash".to_owned(),
                    Refused::Proof(e) => {
                        let kind = format!("{e:?}");
                        kind.split([' ', '{', '(']).next().unwrap_or("").to_owned()
                    }
                };
                *self.errors.entry(kind).or_default() += 1;
            }
            (Ok(()), true) => self.failures.push(format!(
                "{name} ({}): verified, but must fail",
                case["desc"]
            )),
            (Err(e), false) => self.failures.push(format!(
                "{name} ({}): must verify, but failed: {e}",
                case["desc"]
            )),
        }
    }

    fn finish(self, kind: &str) {
        println!(
            "{kind}: {} verified, {} refused as expected, {} proofs regenerated identically, \
             {} non-32-byte values stood in; refusals by error: {:?}",
            self.verified, self.refused, self.regenerated, self.stand_ins, self.errors
        );
        assert!(
            self.failures.is_empty(),
            "{kind}: {} of {} cases wrong:\n{}",
            self.failures.len(),
            self.verified + self.refused + self.failures.len(),
            self.failures.join("\n")
        );
        assert!(self.verified > 0, "{kind}: no case that must verify");
        assert!(self.refused > 0, "{kind}: no case that must fail");
    }
}

#[test]
fn missing_hashes_are_refused_by_digest() {
    for bad in ["", "ZG9uJ3QgY2FyZSAx", "dG9vIHNob3J0"] {
        let bytes = BASE64.decode(bad).unwrap();
        assert!(Digest::from_slice(&bytes).is_none(), "{bad}");
    }
}

#[test]
fn inclusion_vectors() {
    let reference = reference_leaves();
    let mut tally = Tally::default();
    for (name, case) in cases("inclusion") {
        let mut stand_ins = 0;
        let mut regenerated = 0;
        let mut run = || -> Result<(), Refused> {
            let index = u64_field(&case, "leafIdx");
            let size = u64_field(&case, "treeSize");
            let root = hash(&case["root"], &mut stand_ins)?;
            let leaf = hash(&case["leafHash"], &mut stand_ins)?;
            let path = proof(&case["proof"], &mut stand_ins)?;
            merkle::verify_inclusion(&leaf, index, size, &path, &root)?;
            // Where the case is about the reference tree, our generator
            // must give the very same proof.
            if size <= 8 && merkle::root(&reference[..size as usize]) == root {
                assert_eq!(
                    merkle::inclusion_proof(&reference, index, size).unwrap(),
                    path,
                    "{name}: the generated proof differs"
                );
                regenerated += 1;
            }
            Ok(())
        };
        let result = run();
        tally.stand_ins += stand_ins;
        tally.regenerated += regenerated;
        tally.record(&name, &case, result);
    }
    tally.finish("inclusion");
}

#[test]
fn consistency_vectors() {
    let reference = reference_leaves();
    let mut tally = Tally::default();
    for (name, case) in cases("consistency") {
        let mut stand_ins = 0;
        let mut regenerated = 0;
        let mut run = || -> Result<(), Refused> {
            let old_size = u64_field(&case, "size1");
            let new_size = u64_field(&case, "size2");
            let old_root = hash(&case["root1"], &mut stand_ins)?;
            let new_root = hash(&case["root2"], &mut stand_ins)?;
            let path = proof(&case["proof"], &mut stand_ins)?;
            merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &path)?;
            if new_size <= 8 && merkle::root(&reference[..new_size as usize]) == new_root {
                assert_eq!(
                    merkle::consistency_proof(&reference, old_size, new_size).unwrap(),
                    path,
                    "{name}: the generated proof differs"
                );
                regenerated += 1;
            }
            Ok(())
        };
        let result = run();
        tally.stand_ins += stand_ins;
        tally.regenerated += regenerated;
        tally.record(&name, &case, result);
    }
    tally.finish("consistency");
}

#[test]
fn subtree_inclusion_vectors() {
    let mut tally = Tally::default();
    for (name, case) in cases("subtreeinclusion") {
        let mut stand_ins = 0;
        let mut run = || -> Result<(), Refused> {
            let index = u64_field(&case, "leafIdx");
            let start = u64_field(&case, "start");
            let end = u64_field(&case, "end");
            let root = hash(&case["root"], &mut stand_ins)?;
            let leaf = hash(&case["leafHash"], &mut stand_ins)?;
            let path = proof(&case["proof"], &mut stand_ins)?;
            let subtree = Subtree::new(start, end)?;
            merkle::verify_subtree_inclusion(&leaf, index, subtree, &path, &root)?;
            Ok(())
        };
        let result = run();
        tally.stand_ins += stand_ins;
        tally.record(&name, &case, result);
    }
    tally.finish("subtreeinclusion");
}

/// `n` distinct leaf hashes.
fn make_leaves(seed: u64, n: usize) -> Vec<Digest> {
    (0..n as u64)
        .map(|i| merkle::leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

fn flip(d: &Digest, byte: usize, bit: u8) -> Digest {
    let mut out = *d;
    out.0[byte % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_proofs_verify_and_tampering_fails(
        seed: u64,
        n in 1usize..300,
        index_pick: usize,
        which: usize,
        byte: usize,
        bit: u8,
    ) {
        let leaves = make_leaves(seed, n);
        let size = n as u64;
        let index = (index_pick % n) as u64;
        let root = merkle::root(&leaves);
        let leaf = leaves[index as usize];
        let path = merkle::inclusion_proof(&leaves, index, size).unwrap();
        prop_assert!(merkle::verify_inclusion(&leaf, index, size, &path, &root).is_ok());

        // A flipped bit in the root.
        let bad_root = flip(&root, byte, bit);
        prop_assert!(
            matches!(
                merkle::verify_inclusion(&leaf, index, size, &path, &bad_root),
                Err(ProofError::RootMismatch { .. })
            ),
            "flipped root accepted"
        );
        // A flipped bit in the leaf.
        prop_assert!(
            merkle::verify_inclusion(&flip(&leaf, byte, bit), index, size, &path, &root).is_err()
        );
        // A flipped bit in one proof hash.
        if !path.is_empty() {
            let mut bad = path.clone();
            let j = which % bad.len();
            bad[j] = flip(&bad[j], byte, bit);
            prop_assert!(matches!(
                merkle::verify_inclusion(&leaf, index, size, &bad, &root),
                Err(ProofError::RootMismatch { .. })
            ), "unexpected result");
            // One hash too few.
            prop_assert!(matches!(
                merkle::verify_inclusion(&leaf, index, size, &path[1..], &root),
                Err(ProofError::WrongProofLength { .. })
            ), "unexpected result");
        }
        // One hash too many.
        let mut longer = path.clone();
        longer.push(root);
        prop_assert!(matches!(
            merkle::verify_inclusion(&leaf, index, size, &longer, &root),
            Err(ProofError::WrongProofLength { .. })
        ), "unexpected result");
        // The index of another leaf.
        if n > 1 {
            let other = (index + 1) % size;
            prop_assert!(merkle::verify_inclusion(&leaf, other, size, &path, &root).is_err());
        }
        // An index past the end.
        prop_assert!(matches!(
            merkle::verify_inclusion(&leaf, size, size, &path, &root),
            Err(ProofError::IndexOutOfRange { .. })
        ), "unexpected result");
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_fails(
        seed: u64,
        n in 1usize..300,
        old_pick: usize,
        which: usize,
        byte: usize,
        bit: u8,
    ) {
        let leaves = make_leaves(seed, n);
        let new_size = n as u64;
        let old_size = 1 + (old_pick % n) as u64;
        let old_root = merkle::root(&leaves[..old_size as usize]);
        let new_root = merkle::root(&leaves);
        let path = merkle::consistency_proof(&leaves, old_size, new_size).unwrap();
        prop_assert!(
            merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &path).is_ok()
        );

        let bad_old = flip(&old_root, byte, bit);
        prop_assert!(
            merkle::verify_consistency(old_size, new_size, &bad_old, &new_root, &path).is_err()
        );
        let bad_new = flip(&new_root, byte, bit);
        prop_assert!(
            merkle::verify_consistency(old_size, new_size, &old_root, &bad_new, &path).is_err()
        );
        if !path.is_empty() {
            let mut bad = path.clone();
            let j = which % bad.len();
            bad[j] = flip(&bad[j], byte, bit);
            prop_assert!(
                merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &bad).is_err()
            );
            prop_assert!(matches!(
                merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &path[1..]),
                Err(ProofError::WrongProofLength { .. })
            ), "unexpected result");
        }
        // The sizes swapped.
        if old_size < new_size {
            prop_assert!(matches!(
                merkle::verify_consistency(new_size, old_size, &new_root, &old_root, &path),
                Err(ProofError::OldSizeExceedsNew { .. })
            ), "unexpected result");
        }
    }

    #[test]
    fn compact_range_matches_root_for_every_prefix(seed: u64, n in 0usize..200) {
        let leaves = make_leaves(seed, n);
        let mut range = CompactRange::new();
        prop_assert_eq!(range.root(), merkle::EMPTY_ROOT);
        for (i, leaf) in leaves.iter().enumerate() {
            prop_assert_eq!(range.append(*leaf), i as u64);
            prop_assert_eq!(range.size(), i as u64 + 1);
            prop_assert_eq!(range.nodes().len(), range.size().count_ones() as usize);
            prop_assert_eq!(range.root(), merkle::root(&leaves[..=i]));
        }
        let saved = CompactRange::from_parts(range.size(), range.nodes().to_vec()).unwrap();
        prop_assert_eq!(saved, range);
    }

    #[test]
    fn subtree_inclusion_proofs_verify(seed: u64, level in 0u32..7, slot: u64, len_pick: u64, pick: u64) {
        // A subtree of up to 2^level leaves starting at a multiple of 2^level.
        let width = 1u64 << level;
        let start = (slot % 4) * width;
        let len = 1 + len_pick % width;
        let subtree = Subtree::new(start, start + len).unwrap();
        let leaves = make_leaves(seed, (start + len) as usize);
        let index = start + pick % len;
        let root = merkle::subtree_root(&leaves, subtree).unwrap();
        prop_assert_eq!(root, merkle::root(&leaves[start as usize..]));
        let path = merkle::subtree_inclusion_proof(&leaves, index, subtree).unwrap();
        let leaf = leaves[index as usize];
        prop_assert!(merkle::verify_subtree_inclusion(&leaf, index, subtree, &path, &root).is_ok());
        if start > 0 {
            prop_assert!(matches!(
                merkle::verify_subtree_inclusion(&leaf, start - 1, subtree, &path, &root),
                Err(ProofError::IndexOutOfRange { .. })
            ), "unexpected result");
        }
    }
}

#[test]
fn exhaustive_small_trees() {
    let leaves = make_leaves(7, 33);
    for n in 1..=33usize {
        let size = n as u64;
        let root = merkle::root(&leaves[..n]);
        for index in 0..size {
            let path = merkle::inclusion_proof(&leaves, index, size).unwrap();
            merkle::verify_inclusion(&leaves[index as usize], index, size, &path, &root).unwrap();
        }
        for old in 1..=size {
            let old_root = merkle::root(&leaves[..old as usize]);
            let path = merkle::consistency_proof(&leaves, old, size).unwrap();
            merkle::verify_consistency(old, size, &old_root, &root, &path).unwrap();
        }
    }
}

#[test]
fn edge_cases_give_precise_errors() {
    let leaves = make_leaves(1, 5);
    let root = merkle::root(&leaves);
    assert_eq!(
        merkle::inclusion_proof(&leaves, 5, 5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        merkle::inclusion_proof(&leaves, 0, 6),
        Err(ProofError::NotEnoughLeaves {
            size: 6,
            available: 5
        })
    );
    assert_eq!(
        merkle::verify_inclusion(&leaves[0], 0, 0, &[], &merkle::EMPTY_ROOT),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        merkle::consistency_proof(&leaves, 0, 5),
        Err(ProofError::EmptyOldTree { new_size: 5 })
    );
    assert_eq!(
        merkle::consistency_proof(&leaves, 4, 3),
        Err(ProofError::OldSizeExceedsNew {
            old_size: 4,
            new_size: 3
        })
    );
    assert_eq!(merkle::consistency_proof(&leaves, 3, 3), Ok(vec![]));
    assert_eq!(
        merkle::verify_consistency(0, 5, &merkle::EMPTY_ROOT, &root, &[]),
        Err(ProofError::EmptyOldTree { new_size: 5 })
    );
    merkle::verify_consistency(0, 0, &merkle::EMPTY_ROOT, &merkle::EMPTY_ROOT, &[]).unwrap();
    merkle::verify_consistency(5, 5, &root, &root, &[]).unwrap();
    assert_eq!(
        merkle::verify_consistency(5, 5, &root, &root, &[root]),
        Err(ProofError::WrongProofLength {
            expected: 0,
            got: 1
        })
    );
    let proof = merkle::consistency_proof(&leaves, 3, 5).unwrap();
    let old = merkle::root(&leaves[..3]);
    assert!(matches!(
        merkle::verify_consistency(3, 5, &root, &root, &proof),
        Err(ProofError::OldRootMismatch { .. })
    ));
    assert!(matches!(
        merkle::verify_consistency(3, 5, &old, &old, &proof),
        Err(ProofError::NewRootMismatch { .. })
    ));
    assert_eq!(
        Subtree::new(3, 5),
        Err(ProofError::InvalidSubtree { start: 3, end: 5 })
    );
    // Sizes near the top of u64 do not overflow.
    assert!(merkle::verify_inclusion(&leaves[0], u64::MAX - 1, u64::MAX, &[], &root).is_err());
    assert!(merkle::verify_consistency(u64::MAX - 1, u64::MAX, &root, &root, &[]).is_err());
}
