//! Proof verification, written directly from the algorithms of RFC 9162
//! §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
//!
//! These share no code with the provers in [`crate::tree`] (only the node
//! hash), so that tests can cross-check one against the other. They are
//! what an outside auditor runs to check a K16.2.2 access record against a
//! signed checkpoint.

use crate::hash::Hash;

/// Checks that `leaf_hash` is record `index` of the tree of `size` records
/// whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    // Step 1.
    if index >= size {
        return false;
    }
    // Step 2-3.
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        // 4a.
        if sn == 0 {
            return false;
        }
        // 4b.
        if fn_ & 1 == 1 || fn_ == sn {
            r = Hash::node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = Hash::node(&r, p);
        }
        // 4c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    sn == 0 && r == *root
}

/// Checks that the tree of `old` records with root `old_root` is a prefix
/// of the tree of `new` records with root `new_root` (RFC 9162 §2.1.4.2).
///
/// Edge cases, which the RFC algorithm does not cover: `old == new` needs
/// an empty proof and equal roots; `old == 0` needs an empty proof and
/// `old_root` equal to the empty-tree hash (every tree extends the empty
/// one, but a checkpoint claiming size 0 with another root is wrong).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == 0 {
        return proof.is_empty() && *old_root == Hash::EMPTY_TREE;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    // Step 1.
    if proof.is_empty() {
        return false;
    }
    // Step 2: when `old` is a power of two the old root is itself a node of
    // the new tree and is not sent; start from it.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    // Step 3.
    let mut fn_ = old - 1;
    let mut sn = new - 1;
    // Step 4.
    if fn_ & 1 == 1 {
        while fn_ & 1 == 1 {
            fn_ >>= 1;
            sn >>= 1;
        }
    }
    // Step 5.
    let mut fr = path[0];
    let mut sr = path[0];
    // Step 6.
    for c in &path[1..] {
        // 6a.
        if sn == 0 {
            return false;
        }
        // 6b.
        if fn_ & 1 == 1 || fn_ == sn {
            fr = Hash::node(c, &fr);
            sr = Hash::node(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = Hash::node(&sr, c);
        }
        // 6c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    fr == *old_root && sr == *new_root && sn == 0
}
