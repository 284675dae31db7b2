//! Property tests: appends always verify, proofs verify with the
//! independent verifier and agree with a recursive reference
//! implementation, any flipped byte is refused, and parsers never panic.

mod common;

use common::{reference_consistency, reference_path, reference_root};
use mamori_ledger::checkpoint::Checkpoint;
use mamori_ledger::record::{AccessRecord, AccessResult};
use mamori_ledger::tile::{parse_entry_bundle, Tile, TileKind};
use mamori_ledger::{note, verify_consistency, verify_inclusion, Hash, Log, MemoryStore};
use proptest::prelude::*;

fn batches() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..20),
        1..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_append_sequence_verifies(batches in batches()) {
        let mut log = Log::open(MemoryStore::new()).expect("open");
        let mut leaves = Vec::new();
        for b in &batches {
            let range = log.append(b).expect("append");
            prop_assert_eq!(range.start, leaves.len() as u64);
            leaves.extend(b.iter().map(|e| Hash::leaf(e)));
            prop_assert_eq!(log.root(), reference_root(&leaves));
            let report = log.verify_all(None);
            prop_assert!(report.is_intact(), "{:?}", report);
            prop_assert_eq!(report.root, log.root());
        }
        // Reopening rebuilds the same frontier.
        let size = log.size();
        let root = log.root();
        let log = Log::open(log.into_store()).expect("reopen");
        prop_assert_eq!(log.size(), size);
        prop_assert_eq!(log.root(), root);
    }

    #[test]
    fn proofs_verify_and_flips_are_refused(
        n in 1u64..300,
        i_seed in any::<u64>(),
        m_seed in any::<u64>(),
        flip in any::<(usize, u8)>(),
    ) {
        let entries: Vec<Vec<u8>> = (0..n).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut log = Log::open(MemoryStore::new()).expect("open");
        log.append(&entries).expect("append");
        let leaves: Vec<Hash> = entries.iter().map(|e| Hash::leaf(e)).collect();
        let i = i_seed % n;
        let m = 1 + m_seed % n;
        let root_n = log.root();
        let root_m = log.root_at(m).expect("root at m");
        prop_assert_eq!(root_m, reference_root(&leaves[..m as usize]));

        let proof = log.inclusion_proof(i, n).expect("inclusion");
        prop_assert_eq!(&proof, &reference_path(i as usize, &leaves));
        prop_assert!(verify_inclusion(&leaves[i as usize], i, n, &proof, &root_n));

        let cproof = log.consistency_proof(m, n).expect("consistency");
        prop_assert_eq!(&cproof, &reference_consistency(m as usize, &leaves));
        prop_assert!(verify_consistency(m, n, &root_m, &root_n, &cproof));

        let (pos, bit) = flip;
        let bit = 1u8 << (bit % 8);
        let byte = pos % 32;
        let flipped = |h: &Hash| { let mut h = *h; h.0[byte] ^= bit; h };
        // Flip a byte of the leaf, the root, and (if any) a proof element.
        prop_assert!(!verify_inclusion(&flipped(&leaves[i as usize]), i, n, &proof, &root_n));
        prop_assert!(!verify_inclusion(&leaves[i as usize], i, n, &proof, &flipped(&root_n)));
        if !proof.is_empty() {
            let mut p = proof.clone();
            let k = pos % p.len();
            p[k] = flipped(&p[k]);
            prop_assert!(!verify_inclusion(&leaves[i as usize], i, n, &p, &root_n));
        }
        if m < n {
            prop_assert!(!verify_consistency(m, n, &flipped(&root_m), &root_n, &cproof));
            prop_assert!(!verify_consistency(m, n, &root_m, &flipped(&root_n), &cproof));
            let mut p = cproof.clone();
            let k = pos % p.len();
            p[k] = flipped(&p[k]);
            prop_assert!(!verify_consistency(m, n, &root_m, &root_n, &p));
        } else {
            prop_assert!(!verify_consistency(m, n, &root_m, &flipped(&root_n), &cproof));
        }
    }

    #[test]
    fn every_proof_in_small_trees(n in 1u64..40) {
        let entries: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; (i % 5) as usize]).collect();
        let mut log = Log::open(MemoryStore::new()).expect("open");
        log.append(&entries).expect("append");
        let root = log.root();
        for i in 0..n {
            let p = log.inclusion_proof(i, n).expect("proof");
            prop_assert!(verify_inclusion(&Hash::leaf(&entries[i as usize]), i, n, &p, &root));
        }
        for m in 0..=n {
            let p = log.consistency_proof(m, n).expect("proof");
            let rm = log.root_at(m).expect("root");
            prop_assert!(verify_consistency(m, n, &rm, &root, &p));
        }
    }
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[^\\x00-\\x1f\\x7f]{{1,{max}}}"))
        .expect("regex")
        .prop_filter("byte length", move |s| s.len() <= max)
}

fn record() -> impl Strategy<Value = AccessRecord> {
    (
        any::<i64>(),
        text(64),
        text(256),
        text(128),
        text(512),
        prop_oneof![
            Just(AccessResult::Success),
            Just(AccessResult::Failure),
            Just(AccessResult::Denied)
        ],
        prop::option::of(text(64)),
        prop::option::of(text(300)),
        (any::<[u8; 16]>(), text(128)),
    )
        .prop_map(
            |(t, system, actor, action, asset, result, src, detail, (salt, event_id))| {
                AccessRecord {
                    time_micros: t,
                    system,
                    event_id,
                    actor,
                    action,
                    asset,
                    result,
                    source_address: src,
                    detail,
                    salt,
                }
            },
        )
}

fn tile() -> impl Strategy<Value = Tile> {
    (
        prop_oneof![
            (0u8..=7).prop_map(|level| TileKind::Hashes { level }),
            Just(TileKind::Entries)
        ],
        prop_oneof![0u64..2000, any::<u64>()],
        1u32..=256,
    )
        .prop_filter_map("representable", |(k, n, w)| {
            let shift = match k {
                TileKind::Hashes { level } => 8 * u32::from(level),
                TileKind::Entries => 0,
            };
            Tile::new(k, n.checked_shr(shift + 8).unwrap_or(0), w).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn record_round_trips(r in record()) {
        let b = r.encode().expect("valid record encodes");
        prop_assert_eq!(AccessRecord::decode(&b), Ok(r));
    }

    #[test]
    fn record_decode_never_panics(b in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = AccessRecord::decode(&b) {
            // Whatever decodes is canonical: it re-encodes to the same bytes.
            prop_assert_eq!(r.encode().expect("re-encode"), b);
        }
    }

    #[test]
    fn record_decode_of_mutated_encodings(r in record(), pos in any::<usize>(), val in any::<u8>(), cut in any::<usize>()) {
        let mut b = r.encode().expect("valid");
        let p = pos % b.len();
        b[p] = val;
        b.truncate(b.len() - cut % 3);
        if let Ok(d) = AccessRecord::decode(&b) {
            prop_assert_eq!(d.encode().expect("re-encode"), b);
        }
    }

    #[test]
    fn tile_path_round_trips(t in tile()) {
        prop_assert_eq!(Tile::parse_path(&t.path()), Ok(t));
    }

    #[test]
    fn tile_parse_never_panics(s in ".{0,80}") {
        if let Ok(t) = Tile::parse_path(&s) {
            prop_assert_eq!(t.path(), s);
        }
    }

    #[test]
    fn tile_parse_near_miss_paths(s in "tile/(entries|[0-9]{1,3})(/x?[0-9]{1,4}){1,8}(\\.p/[0-9]{1,4})?/?") {
        if let Ok(t) = Tile::parse_path(&s) {
            prop_assert_eq!(t.path(), s);
        }
    }

    #[test]
    fn bundle_parse_never_panics(b in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_entry_bundle(&b);
    }

    #[test]
    fn checkpoint_and_note_parsers_never_panic(s in "(.{0,20}\n){0,6}", b in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Checkpoint::parse(&s);
        let _ = note::open(s.as_bytes(), &[]);
        let _ = note::open(&b, &[]);
        let _ = mamori_ledger::Verifier::parse(&s);
        let _ = mamori_ledger::Signer::parse(&s);
    }
}
