//! [`CompactRange`]: an append-only Merkle tree in O(log n) memory, the
//! incremental form of the RFC 9162 §2.1.1 hash.

use crate::digest::Digest;

use super::hash::{EMPTY_ROOT, node_hash};

/// An append-only Merkle tree kept in O(log n) memory: the roots of the
/// perfect subtrees that make up the tree, one per set bit of its size,
/// largest (leftmost) first.
///
/// The relay keeps one in memory and stores the leaves elsewhere; [`root`]
/// and [`CompactRange::root`] agree for every size.
///
/// [`root`]: super::root
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<Digest>,
}

/// Why [`CompactRange::from_parts`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a compact range of size {size} has {expected} nodes (one per set bit of the size), \
     not {got}"
)]
pub struct CompactRangeError {
    /// The size given.
    pub size: u64,
    /// The number of nodes that size needs.
    pub expected: usize,
    /// The number of nodes given.
    pub got: usize,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// The range of all of `leaves`, appended in order.
    pub fn from_leaves<'a>(leaves: impl IntoIterator<Item = &'a Digest>) -> CompactRange {
        let mut range = CompactRange::new();
        for leaf in leaves {
            range.append(*leaf);
        }
        range
    }

    /// Rebuilds a range saved with [`CompactRange::size`] and
    /// [`CompactRange::nodes`]; the node count must match the size.
    pub fn from_parts(size: u64, nodes: Vec<Digest>) -> Result<CompactRange, CompactRangeError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(CompactRangeError {
                size,
                expected,
                got: nodes.len(),
            });
        }
        Ok(CompactRange { size, nodes })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest first.
    pub fn nodes(&self) -> &[Digest] {
        &self.nodes
    }

    /// Appends one leaf hash (see [`leaf_hash`]) and returns its index.
    ///
    /// [`leaf_hash`]: super::leaf_hash
    pub fn append(&mut self, leaf: Digest) -> u64 {
        self.append_with(leaf, |_, _, _| {})
    }

    /// Appends one leaf hash like [`CompactRange::append`], and reports
    /// every perfect subtree it completes to `completed(level, n, root)`:
    /// the leaf itself (level 0, `n` = its index), then each larger subtree
    /// the leaf closes (`2^level` leaves from leaf `n · 2^level`). Storing
    /// them lets [`inclusion_proof_from`] prove any entry without the
    /// leaves.
    ///
    /// [`inclusion_proof_from`]: super::inclusion_proof_from
    pub fn append_with(&mut self, leaf: Digest, mut completed: impl FnMut(u8, u64, Digest)) -> u64 {
        let index = self.size;
        completed(0, index, leaf);
        let mut hash = leaf;
        let mut size = self.size;
        let mut level = 0u8;
        while size & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => break,
            }
            size >>= 1;
            level += 1;
            completed(level, ((index + 1) >> level).saturating_sub(1), hash);
        }
        self.nodes.push(hash);
        self.size += 1;
        index
    }

    /// The root of the tree of all leaves appended so far.
    pub fn root(&self) -> Digest {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return EMPTY_ROOT;
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn leaves(n: u8) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&[i])).collect()
    }

    #[test]
    fn compact_range_from_parts_checks_node_count() {
        let r = CompactRange::from_leaves(&leaves(5));
        let back = CompactRange::from_parts(r.size(), r.nodes().to_vec()).unwrap();
        assert_eq!(back, r);
        let err = CompactRange::from_parts(7, r.nodes().to_vec()).unwrap_err();
        assert_eq!(err.expected, 3);
    }
}
