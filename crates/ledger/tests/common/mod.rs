//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::Cell;
use std::path::PathBuf;

use mamori_ledger::{Hash, HashReader, TreeError};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n: u64 = rand::random();
        let p = std::env::temp_dir().join(format!("mamori-ledger-{tag}-{n:016x}"));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// MTH from the RFC 9162 §2.1.1 definition, recursively over leaf hashes.
pub fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::EMPTY_TREE,
        1 => leaves[0],
        n => {
            let k = split(n);
            Hash::node(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// PATH(m, D[n]) from RFC 9162 §2.1.3.1, recursively.
pub fn reference_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = reference_path(m, &leaves[..k]);
        p.push(reference_root(&leaves[k..]));
        p
    } else {
        let mut p = reference_path(m - k, &leaves[k..]);
        p.push(reference_root(&leaves[..k]));
        p
    }
}

/// PROOF(m, D[n]) from RFC 9162 §2.1.4.1, recursively.
pub fn reference_consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn sub(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![reference_root(leaves)]
            };
        }
        let k = split(n);
        if m <= k {
            let mut p = sub(m, &leaves[..k], b);
            p.push(reference_root(&leaves[k..]));
            p
        } else {
            let mut p = sub(m - k, &leaves[k..], false);
            p.push(reference_root(&leaves[..k]));
            p
        }
    }
    if m == 0 || m == leaves.len() {
        return Vec::new();
    }
    sub(m, leaves, true)
}

/// A hash reader over a vector that counts its calls, to check the
/// one-batch-read rule.
pub struct CountingReader {
    pub hashes: Vec<Hash>,
    pub calls: Cell<usize>,
}

impl HashReader for CountingReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.calls.set(self.calls.get() + 1);
        self.hashes.read_hashes(indexes)
    }
}

/// All stored hashes of a log of `entries`, built with `stored_hashes`.
pub fn build_stored(entries: &[Vec<u8>]) -> Vec<Hash> {
    let mut all = Vec::new();
    for (n, e) in entries.iter().enumerate() {
        let new = mamori_ledger::tree::stored_hashes(n as u64, e, &all).expect("stored hashes");
        all.extend(new);
    }
    all
}
