//! Known-answer tests: the 8-leaf tree of the Certificate Transparency
//! reference tests (as in transparency-dev/merkle), its roots, inclusion
//! and consistency proofs, and the corruptions a verifier must refuse.

mod common;

use common::{build_stored, CountingReader};
use mamori_ledger::tree::{
    consistency_proof, consistency_proof_from, consistency_proof_indexes, inclusion_proof,
    inclusion_proof_from, inclusion_proof_indexes, tree_hash, tree_hash_from, tree_hash_indexes,
};
use mamori_ledger::{verify_consistency, verify_inclusion, Hash, HashReader};

fn h(s: &str) -> Hash {
    Hash::from_hex(s).expect("64 hex digits")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| unhex(s))
    .collect()
}

/// Roots of the trees of sizes 1..=8.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (old size, new size, proof).
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn root(size: u64) -> Hash {
    h(ROOTS[size as usize - 1])
}

#[test]
fn roots_of_sizes_1_to_8() {
    let stored = build_stored(&leaves());
    for size in 1..=8u64 {
        assert_eq!(
            tree_hash(size, &stored).expect("root"),
            root(size),
            "size {size}"
        );
    }
    assert_eq!(tree_hash(0, &stored).expect("empty"), Hash::EMPTY_TREE);
    assert_eq!(
        Hash::EMPTY_TREE.to_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn known_inclusion_proofs_are_produced_and_verify() {
    let stored = build_stored(&leaves());
    for (index, size, want) in inclusion_vectors() {
        let got = inclusion_proof(index, size, &stored).expect("proof");
        assert_eq!(got, want, "inclusion {index} in {size}");
        let leaf = Hash::leaf(&leaves()[index as usize]);
        assert!(verify_inclusion(&leaf, index, size, &want, &root(size)));
    }
}

#[test]
fn known_consistency_proofs_are_produced_and_verify() {
    let stored = build_stored(&leaves());
    for (old, new, want) in consistency_vectors() {
        let got = consistency_proof(old, new, &stored).expect("proof");
        assert_eq!(got, want, "consistency {old} -> {new}");
        assert!(verify_consistency(old, new, &root(old), &root(new), &want));
    }
}

#[test]
fn split_form_matches_reader_form_with_one_read() {
    let stored = build_stored(&leaves());
    let reader = CountingReader {
        hashes: stored.clone(),
        calls: Default::default(),
    };
    for size in 1..=8u64 {
        for index in 0..size {
            let idx = inclusion_proof_indexes(index, size).expect("indexes");
            let fetched = stored.read_hashes(&idx).expect("fetch");
            let split = inclusion_proof_from(index, size, &fetched).expect("from");
            let before = reader.calls.get();
            assert_eq!(inclusion_proof(index, size, &reader).expect("proof"), split);
            assert_eq!(reader.calls.get(), before + 1);
        }
        for old in 0..=size {
            let idx = consistency_proof_indexes(old, size).expect("indexes");
            let fetched = stored.read_hashes(&idx).expect("fetch");
            let split = consistency_proof_from(old, size, &fetched).expect("from");
            let before = reader.calls.get();
            assert_eq!(consistency_proof(old, size, &reader).expect("proof"), split);
            assert_eq!(reader.calls.get(), before + 1);
        }
        let idx = tree_hash_indexes(size).expect("indexes");
        let fetched = stored.read_hashes(&idx).expect("fetch");
        assert_eq!(tree_hash_from(size, &fetched).expect("from"), root(size));
    }
}

const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn with(proof: &[Hash], f: impl FnOnce(&mut Vec<Hash>)) -> Vec<Hash> {
    let mut p = proof.to_vec();
    f(&mut p);
    p
}

/// The corruptions of transparency-dev's verifier tests: none may verify.
#[test]
fn corrupted_inclusion_proofs_are_rejected() {
    let some = h(SOME_HASH);
    for (index, size, proof) in inclusion_vectors().into_iter().skip(1) {
        let r = root(size);
        let leaf = Hash::leaf(&leaves()[index as usize]);
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>, String)> = vec![
            (
                index.wrapping_sub(1),
                size,
                r,
                leaf,
                proof.clone(),
                "index-1".into(),
            ),
            (index + 1, size, r, leaf, proof.clone(), "index+1".into()),
            (index ^ 2, size, r, leaf, proof.clone(), "index^2".into()),
            (index, size * 2, r, leaf, proof.clone(), "size*2".into()),
            (index, size / 2, r, leaf, proof.clone(), "size/2".into()),
            (
                index,
                size,
                r,
                Hash::leaf(b"WrongLeaf"),
                proof.clone(),
                "wrong leaf".into(),
            ),
            (
                index,
                size,
                Hash::EMPTY_TREE,
                leaf,
                proof.clone(),
                "empty root".into(),
            ),
            (index, size, some, leaf, proof.clone(), "random root".into()),
            (
                index,
                size,
                r,
                leaf,
                with(&proof, |p| p.push(r)),
                "trailing root".into(),
            ),
            (
                index,
                size,
                r,
                leaf,
                with(&proof, |p| p.insert(0, r)),
                "preceding root".into(),
            ),
        ];
        for i in 0..proof.len() {
            probes.push((
                index,
                size,
                r,
                leaf,
                with(&proof, |p| p[i].0[0] ^= 8),
                format!("bit in {i}"),
            ));
        }
        if !proof.is_empty() {
            probes.push((
                index,
                size,
                r,
                leaf,
                with(&proof, |p| {
                    p.pop();
                }),
                "removed".into(),
            ));
        }
        if proof.len() > 1 {
            probes.push((
                index,
                size,
                r,
                leaf,
                with(&proof, |p| p.insert(1, some)),
                "inserted".into(),
            ));
        }
        for (i, s, root, leaf, p, what) in probes {
            assert!(
                !verify_inclusion(&leaf, i, s, &p, &root),
                "{what} accepted for {index}/{size}"
            );
        }
    }
}

#[test]
fn corrupted_consistency_proofs_are_rejected() {
    for (old, new, proof) in consistency_vectors() {
        if proof.is_empty() {
            continue;
        }
        let (r1, r2) = (root(old), root(new));
        let wrong = Hash::leaf(b"WrongRoot");
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>, String)> = vec![
            (old - 1, new, r1, r2, proof.clone(), "old-1".into()),
            (old + 1, new, r1, r2, proof.clone(), "old+1".into()),
            (old ^ 2, new, r1, r2, proof.clone(), "old^2".into()),
            (old, new * 2, r1, r2, proof.clone(), "new*2".into()),
            (old, new / 2, r1, r2, proof.clone(), "new/2".into()),
            (old, new, wrong, r2, proof.clone(), "wrong root1".into()),
            (old, new, r1, wrong, proof.clone(), "wrong root2".into()),
            (old, new, r2, r1, proof.clone(), "swapped roots".into()),
            (old, new, r1, r2, vec![], "empty proof".into()),
            (
                old,
                new,
                r1,
                r2,
                with(&proof, |p| p.push(r1)),
                "trailing root1".into(),
            ),
            (
                old,
                new,
                r1,
                r2,
                with(&proof, |p| p.push(r2)),
                "trailing root2".into(),
            ),
            (
                old,
                new,
                r1,
                r2,
                with(&proof, |p| p.insert(0, r1)),
                "preceding root1".into(),
            ),
            (
                old,
                new,
                r1,
                r2,
                with(&proof, |p| p.insert(0, r2)),
                "preceding root2".into(),
            ),
            (
                old,
                new,
                r1,
                r2,
                with(&proof, |p| p.insert(0, proof[0])),
                "preceding proof[0]".into(),
            ),
            (
                old,
                new,
                r1,
                r2,
                with(&proof, |p| {
                    p.pop();
                }),
                "truncated".into(),
            ),
        ];
        for i in 0..proof.len() {
            probes.push((
                old,
                new,
                r1,
                r2,
                with(&proof, |p| p[i].0[0] ^= 16),
                format!("bit in {i}"),
            ));
        }
        for (o, n, a, b, p, what) in probes {
            assert!(
                !verify_consistency(o, n, &a, &b, &p),
                "{what} accepted for {old}->{new}"
            );
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let r1 = Hash::leaf(b"don't care 1");
    let r2 = Hash::leaf(b"don't care 2");
    let e = Hash::EMPTY_TREE;
    // (old, new, root1, root2, proof, accept)
    let cases: Vec<(u64, u64, Hash, Hash, Vec<Hash>, bool)> = vec![
        (0, 0, r1, r2, vec![], false),
        (1, 1, r1, r2, vec![], false),
        (0, 0, e, e, vec![], true),
        (0, 1, e, r2, vec![], true),
        (0, 1, r1, r2, vec![], false),
        (1, 1, r2, r2, vec![], true),
        (1, 0, r1, r2, vec![], false),
        (2, 1, r1, r2, vec![], false),
        (1, 2, r1, r2, vec![], false),
        (0, 0, e, e, vec![e], false),
        (0, 1, e, e, vec![e], false),
        (1, 1, e, e, vec![e], false),
    ];
    for (o, n, a, b, p, accept) in cases {
        assert_eq!(verify_consistency(o, n, &a, &b, &p), accept, "{o}->{n}");
    }
    // Inclusion in an empty or too-small tree never verifies.
    for (i, s) in [(0u64, 0u64), (1, 0), (2, 1)] {
        assert!(!verify_inclusion(&e, i, s, &[], &e));
    }
}
