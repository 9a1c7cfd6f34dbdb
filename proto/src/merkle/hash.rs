//! Hashing (RFC 9162 §2.1.1): leaf and node hashes, the Merkle tree hash
//! `MTH` of a list of leaf hashes, and of a range read from stored perfect
//! subtrees.

use crate::digest::Digest;

use super::ProofError;

/// The root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Digest = Digest([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Prefix of a leaf hash.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner node hash.
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest::of(&[&[LEAF_PREFIX], data])
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of(&[&[NODE_PREFIX], left.as_bytes(), right.as_bytes()])
}

/// The largest power of two strictly below `n` (`n >= 2`): the size of the
/// left subtree of a tree of `n` leaves.
pub(super) fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let below = n - 1;
    1 << (usize::BITS - 1 - below.leading_zeros())
}

/// The Merkle tree hash `MTH(D[n])` of these leaf hashes (RFC 9162 §2.1.1).
///
/// The root of no leaves is [`EMPTY_ROOT`].
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => EMPTY_ROOT,
        _ => mth(leaves),
    }
}

/// `MTH` of a non-empty slice.
pub(super) fn mth(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&mth(left), &mth(right))
        }
    }
}

/// The first `size` leaves, or [`ProofError::NotEnoughLeaves`].
pub(super) fn prefix(leaves: &[Digest], size: u64) -> Result<&[Digest], ProofError> {
    usize::try_from(size)
        .ok()
        .and_then(|n| leaves.get(..n))
        .ok_or(ProofError::NotEnoughLeaves {
            size,
            available: leaves.len() as u64,
        })
}

/// `MTH(D[start..start + n])` from stored perfect subtrees. Every range the
/// RFC 9162 recursion asks for starts at a multiple of its largest power of
/// two, so each perfect piece is a stored subtree.
pub(super) fn stored_mth<E>(
    start: u64,
    n: u64,
    subtree: &mut impl FnMut(u8, u64) -> Result<Digest, E>,
) -> Result<Digest, E> {
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return subtree(level as u8, start >> level);
    }
    let k = split_point_u64(n);
    let left = stored_mth(start, k, subtree)?;
    let right = stored_mth(start + k, n - k, subtree)?;
    Ok(node_hash(&left, &right))
}

/// The largest power of two smaller than `n` (`n >= 2`).
pub(super) fn split_point_u64(n: u64) -> u64 {
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::CompactRange;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, Digest::of(&[]));
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(CompactRange::new().root(), EMPTY_ROOT);
    }

    /// RFC 6962 reference values (the certificate-transparency test suite):
    /// the empty leaf and the 8 leaves 0x, 00, 10, 2021, 3031, 40414243,
    /// 5051525354555657, 606162636465666768696a6b6c6d6e6f.
    #[test]
    fn rfc6962_reference_roots() {
        assert_eq!(
            leaf_hash(b"").to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
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
        let hashes: Vec<Digest> = data.iter().map(|d| leaf_hash(d)).collect();
        let expect = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, want) in expect.iter().enumerate() {
            assert_eq!(root(&hashes[..=n]).to_string(), *want, "size {}", n + 1);
        }
    }
}
