//! The Merkle tree over stored hashes, laid out as in Go's
//! `golang.org/x/mod/sumdb/tlog`.
//!
//! Every hash the tree will ever need is stored once, in the order it
//! becomes computable: appending record `n` stores its leaf hash followed by
//! the hash of every complete subtree that record closes (one per trailing
//! 1-bit of `n`). [`stored_hash_index`] maps (level, index within level) to
//! that position, so storage is an append-only array of 32-byte hashes.
//!
//! Each operation comes in three forms so that an asynchronous store (an SQL
//! database) can fetch what it needs in one round trip:
//! - `*_indexes(...)`: which stored hashes are needed, in order;
//! - `*_from(..., hashes)`: a pure function of those hashes (same order);
//! - a convenience form taking a [`HashReader`], which calls
//!   [`HashReader::read_hashes`] exactly once.
//!
//! Proof generation follows RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1
//! (PROOF/SUBPROOF). The verifiers live apart, in [`crate::proof`].

use crate::hash::Hash;

/// Largest tree this crate accepts. Keeping sizes below 2^62 keeps every
/// stored-hash index (about twice the leaf index) inside `u64` without
/// overflow checks on each step.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// Errors from tree computations and hash reads.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {old} is larger than tree size {new}")]
    SizeOrder { old: u64, new: u64 },
    #[error("tree size {0} exceeds the supported maximum")]
    TreeTooLarge(u64),
    #[error("expected {expected} hashes, got {got}")]
    HashCount { expected: usize, got: usize },
    #[error("stored hash {0} is not available")]
    MissingHash(u64),
    #[error("reading stored hashes: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Source of stored hashes. Implementations should fetch all requested
/// indexes in one go (one query, or one batch of reads): every operation in
/// this crate asks exactly once.
pub trait HashReader {
    /// Returns the hashes at `indexes`, in the same order.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError>;
}

/// The whole stored-hash array held in memory (tests, small tools).
impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|u| self.get(u))
                    .copied()
                    .ok_or(TreeError::MissingHash(i))
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.as_slice().read_hashes(indexes)
    }
}

/// Position in storage of the `n`-th hash at `level` (level 0 = leaves).
///
/// Valid while `(n + 1) << level` stays within [`MAX_TREE_SIZE`]; beyond
/// that the result is meaningless (but computing it never panics).
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // Level L's n-th hash is stored right after level 0's hash number
    // ((n + 1) << L) - 1, i.e. just after the last leaf of its subtree,
    // preceded by the L hashes of the levels below it.
    let last_leaf = n.wrapping_add(1).wrapping_shl(level).wrapping_sub(1);
    // Leaf m is preceded by m + m/2 + m/4 + ... hashes, which is
    // 2m - popcount(m).
    let before = last_leaf
        .wrapping_mul(2)
        .wrapping_sub(u64::from(last_leaf.count_ones()));
    before.wrapping_add(u64::from(level))
}

/// Inverse of [`stored_hash_index`]: the (level, n) stored at `index`.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // stored_hash_index(0, n) <= 2n, so the leaf that stored `index` is at
    // least index/2, and at most log2(index) leaves further on.
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    loop {
        // Record n stores 1 + trailing_ones(n) hashes.
        let next = index_n + 1 + u64::from(n.trailing_ones());
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    // `index` was stored with record n: it is (0, n), (1, n/2), (2, n/4)...
    let level = (index - index_n) as u32;
    (level, n.checked_shr(level).unwrap_or(0))
}

/// Number of hashes stored for a tree of `n` records.
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    stored_hash_index(0, n - 1) + 1 + u64::from((n - 1).trailing_ones())
}

fn check_size(n: u64) -> Result<(), TreeError> {
    if n > MAX_TREE_SIZE {
        Err(TreeError::TreeTooLarge(n))
    } else {
        Ok(())
    }
}

fn check_count(expected: usize, got: usize) -> Result<(), TreeError> {
    if expected == got {
        Ok(())
    } else {
        Err(TreeError::HashCount { expected, got })
    }
}

/// Splits `[lo, hi)` into maximal aligned complete subtrees, left to right,
/// calling `f(level, index_within_level)` for each.
fn for_each_piece(mut lo: u64, hi: u64, mut f: impl FnMut(u32, u64)) {
    while lo < hi {
        let mut level = 63 - (hi - lo).leading_zeros();
        if lo != 0 {
            level = level.min(lo.trailing_zeros());
        }
        f(level, lo >> level);
        lo += 1 << level;
    }
}

fn piece_count(lo: u64, hi: u64) -> usize {
    let mut c = 0;
    for_each_piece(lo, hi, |_, _| c += 1);
    c
}

fn push_subtree_indexes(lo: u64, hi: u64, out: &mut Vec<u64>) {
    for_each_piece(lo, hi, |level, k| out.push(stored_hash_index(level, k)));
}

/// MTH(D[lo:hi]) from the hashes of its pieces (left to right): the RFC's
/// recursive split always puts the larger, complete subtree on the left, so
/// folding from the right reproduces it.
fn fold_pieces(pieces: &[Hash]) -> Hash {
    let mut iter = pieces.iter().rev();
    let Some(first) = iter.next() else {
        return Hash::EMPTY_TREE;
    };
    iter.fold(*first, |acc, left| Hash::node(left, &acc))
}

/// Computes MTH for a list of ranges, consuming `hashes` piece by piece.
fn hash_ranges(ranges: &[(u64, u64)], hashes: &[Hash]) -> Result<Vec<Hash>, TreeError> {
    let expected: usize = ranges.iter().map(|&(lo, hi)| piece_count(lo, hi)).sum();
    check_count(expected, hashes.len())?;
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for &(lo, hi) in ranges {
        let c = piece_count(lo, hi);
        out.push(fold_pieces(&hashes[at..at + c]));
        at += c;
    }
    Ok(out)
}

fn range_indexes(ranges: &[(u64, u64)]) -> Vec<u64> {
    let mut out = Vec::new();
    for &(lo, hi) in ranges {
        push_subtree_indexes(lo, hi, &mut out);
    }
    out
}

fn read_checked<R: HashReader + ?Sized>(r: &R, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
    let hashes = r.read_hashes(indexes)?;
    check_count(indexes.len(), hashes.len())?;
    Ok(hashes)
}

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

// ---------------------------------------------------------------- tree hash

/// Stored hashes needed for the root of the tree of size `n`.
pub fn tree_hash_indexes(n: u64) -> Result<Vec<u64>, TreeError> {
    check_size(n)?;
    let mut out = Vec::new();
    push_subtree_indexes(0, n, &mut out);
    Ok(out)
}

/// Root of the tree of size `n` from the hashes named by
/// [`tree_hash_indexes`]. The empty tree's root is [`Hash::EMPTY_TREE`].
pub fn tree_hash_from(n: u64, hashes: &[Hash]) -> Result<Hash, TreeError> {
    check_size(n)?;
    Ok(hash_ranges(&[(0, n)], hashes)?[0])
}

/// Root of the tree of size `n`, reading stored hashes from `r`.
pub fn tree_hash<R: HashReader + ?Sized>(n: u64, r: &R) -> Result<Hash, TreeError> {
    let idx = tree_hash_indexes(n)?;
    tree_hash_from(n, &read_checked(r, &idx)?)
}

// ----------------------------------------------------------- stored hashes

/// Stored hashes needed to compute the new hashes of record `n`: the roots
/// of the complete subtrees that record `n` closes, lowest level first.
pub fn stored_hashes_indexes(n: u64) -> Result<Vec<u64>, TreeError> {
    check_size(n.saturating_add(1))?;
    let m = n.trailing_ones();
    Ok((0..m)
        .map(|level| stored_hash_index(level, (n >> level) - 1))
        .collect())
}

/// New hashes to store when appending record `n` whose leaf hash is `leaf`,
/// given the hashes named by [`stored_hashes_indexes`]. The result starts
/// with `leaf` and is stored from index `stored_hash_count(n)` on.
pub fn stored_hashes_from(n: u64, leaf: Hash, hashes: &[Hash]) -> Result<Vec<Hash>, TreeError> {
    check_size(n.saturating_add(1))?;
    check_count(n.trailing_ones() as usize, hashes.len())?;
    let mut out = Vec::with_capacity(hashes.len() + 1);
    let mut h = leaf;
    out.push(h);
    for left in hashes {
        h = Hash::node(left, &h);
        out.push(h);
    }
    Ok(out)
}

/// New hashes to store when appending record `n` with contents `data`.
pub fn stored_hashes<R: HashReader + ?Sized>(
    n: u64,
    data: &[u8],
    r: &R,
) -> Result<Vec<Hash>, TreeError> {
    let idx = stored_hashes_indexes(n)?;
    stored_hashes_from(n, Hash::leaf(data), &read_checked(r, &idx)?)
}

// --------------------------------------------------------------- inclusion

/// RFC 9162 §2.1.3.1 PATH(index, D[0:size]) as the leaf ranges whose
/// Merkle tree hashes make up the proof, deepest first.
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, TreeError> {
    check_size(size)?;
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0, size);
    // Walk down from the root; each level contributes the sibling subtree.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// Stored hashes needed for the inclusion proof of record `index` in the
/// tree of size `size`.
pub fn inclusion_proof_indexes(index: u64, size: u64) -> Result<Vec<u64>, TreeError> {
    Ok(range_indexes(&inclusion_ranges(index, size)?))
}

/// Inclusion proof from the hashes named by [`inclusion_proof_indexes`].
pub fn inclusion_proof_from(
    index: u64,
    size: u64,
    hashes: &[Hash],
) -> Result<Vec<Hash>, TreeError> {
    hash_ranges(&inclusion_ranges(index, size)?, hashes)
}

/// Inclusion proof of record `index` in the tree of size `size`.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    r: &R,
) -> Result<Vec<Hash>, TreeError> {
    let ranges = inclusion_ranges(index, size)?;
    hash_ranges(&ranges, &read_checked(r, &range_indexes(&ranges))?)
}

// ------------------------------------------------------------- consistency

/// RFC 9162 §2.1.4.1 PROOF(old, D[0:new]) as leaf ranges. An `old` of 0 or
/// equal to `new` gives the empty proof.
fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, TreeError> {
    check_size(new)?;
    if old > new {
        return Err(TreeError::SizeOrder { old, new });
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[lo:hi], b), iteratively: `whole` is b, true while the
    // subtree's left edge is the old tree's left edge (then the old root is
    // known to the verifier and need not be sent).
    let (mut lo, mut hi, mut whole) = (0, new, true);
    while old != hi {
        let k = split_point(hi - lo);
        if old <= lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            whole = false;
        }
    }
    if !whole {
        out.push((lo, hi));
    }
    out.reverse();
    Ok(out)
}

/// Stored hashes needed for the consistency proof from size `old` to `new`.
pub fn consistency_proof_indexes(old: u64, new: u64) -> Result<Vec<u64>, TreeError> {
    Ok(range_indexes(&consistency_ranges(old, new)?))
}

/// Consistency proof from the hashes named by [`consistency_proof_indexes`].
pub fn consistency_proof_from(old: u64, new: u64, hashes: &[Hash]) -> Result<Vec<Hash>, TreeError> {
    hash_ranges(&consistency_ranges(old, new)?, hashes)
}

/// Consistency proof between the trees of sizes `old` and `new`.
pub fn consistency_proof<R: HashReader + ?Sized>(
    old: u64,
    new: u64,
    r: &R,
) -> Result<Vec<Hash>, TreeError> {
    let ranges = consistency_ranges(old, new)?;
    hash_ranges(&ranges, &read_checked(r, &range_indexes(&ranges))?)
}

// ---------------------------------------------------------------- frontier

/// The roots of the complete subtrees covering records `[0, size)` (a
/// "compact range"), largest first. Enough to append records and compute the
/// current root without reading storage: a writer keeps one in memory and
/// rebuilds it after a restart from [`tree_hash_indexes`]`(size)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` records from the hashes
    /// named by [`tree_hash_indexes`]`(size)`.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Result<Self, TreeError> {
        check_size(size)?;
        check_count(size.count_ones() as usize, hashes.len())?;
        Ok(Frontier {
            size,
            roots: hashes.to_vec(),
        })
    }

    /// Reads the frontier of a tree of `size` records.
    pub fn read<R: HashReader + ?Sized>(size: u64, r: &R) -> Result<Self, TreeError> {
        let idx = tree_hash_indexes(size)?;
        Self::from_hashes(size, &read_checked(r, &idx)?)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Subtree roots, largest (leftmost) first.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Appends a record with leaf hash `leaf`, pushing onto `out` the hashes
    /// to store for it (the same as [`stored_hashes`]).
    pub fn push(&mut self, leaf: Hash, out: &mut Vec<Hash>) -> Result<(), TreeError> {
        check_size(self.size.saturating_add(1))?;
        let mut h = leaf;
        out.push(h);
        let mut s = self.size;
        while s & 1 == 1 {
            // A set low bit means a subtree of the same height is waiting on
            // the left; the invariant roots.len() == popcount(size) makes
            // the pop succeed.
            let Some(left) = self.roots.pop() else { break };
            h = Hash::node(&left, &h);
            out.push(h);
            s >>= 1;
        }
        self.roots.push(h);
        self.size += 1;
        Ok(())
    }

    /// Root of the tree of `size()` records.
    pub fn root(&self) -> Hash {
        fold_pieces(&self.roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hash_index_matches_go_layout() {
        // Go tlog: record 0 stores (0,0); record 1 stores (0,1),(1,0);
        // record 2 stores (0,2); record 3 stores (0,3),(1,1),(2,0).
        let want = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
            (0, 5),
            (1, 2),
            (0, 6),
        ];
        for (i, &(l, n)) in want.iter().enumerate() {
            assert_eq!(stored_hash_index(l, n), i as u64, "({l},{n})");
            assert_eq!(split_stored_hash_index(i as u64), (l, n));
        }
        assert_eq!(stored_hash_count(0), 0);
        assert_eq!(stored_hash_count(1), 1);
        assert_eq!(stored_hash_count(2), 3);
        assert_eq!(stored_hash_count(3), 4);
        assert_eq!(stored_hash_count(4), 7);
    }

    #[test]
    fn split_inverts_index_far_out() {
        for i in (0..200_000u64).chain((1u64 << 40)..(1u64 << 40) + 2000) {
            let (l, n) = split_stored_hash_index(i);
            assert_eq!(stored_hash_index(l, n), i);
        }
    }

    #[test]
    fn frontier_matches_stored_hashes() {
        let mut all: Vec<Hash> = Vec::new();
        let mut f = Frontier::new();
        for n in 0..300u64 {
            let data = n.to_be_bytes();
            let via_reader = stored_hashes(n, &data, &all).expect("stored hashes");
            let mut via_frontier = Vec::new();
            f.push(Hash::leaf(&data), &mut via_frontier).expect("push");
            assert_eq!(via_reader, via_frontier);
            assert_eq!(all.len() as u64, stored_hash_count(n));
            all.extend(via_reader);
            assert_eq!(f.root(), tree_hash(n + 1, &all).expect("root"));
            assert_eq!(Frontier::read(n + 1, &all).expect("read"), f);
        }
    }

    #[test]
    fn wrong_hash_count_is_an_error_not_a_panic() {
        assert!(matches!(
            inclusion_proof_from(3, 8, &[]),
            Err(TreeError::HashCount { .. })
        ));
        assert!(matches!(
            tree_hash_from(5, &[Hash::EMPTY_TREE; 7]),
            Err(TreeError::HashCount { .. })
        ));
        assert!(inclusion_proof_indexes(8, 8).is_err());
        assert!(consistency_proof_indexes(9, 8).is_err());
        assert!(tree_hash_indexes(u64::MAX).is_err());
    }
}
