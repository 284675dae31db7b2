//! Log behaviour: checkpoint signing rules, tiles served from a log,
//! pruned records, and the access-record encoding as leaf data.

mod common;

use common::reference_root;
use mamori_ledger::checkpoint::open_checkpoint;
use mamori_ledger::log::LogError;
use mamori_ledger::record::{new_salt, AccessRecord, AccessResult};
use mamori_ledger::tile::{
    entry_bundle, new_tiles, parse_entry_bundle_for, parse_tile_data, read_tile_data,
    tile_data_from_hashes, tile_hash_indexes,
};
use mamori_ledger::tree::HashReader;
use mamori_ledger::{Checkpoint, Hash, Log, MemoryStore, Problem, Signer, Store, Tile, TileKind};

const ORIGIN: &str = "mamori.example.lg.jp/ledger";

fn log_of(n: u64) -> Log<MemoryStore> {
    let mut log = Log::open(MemoryStore::new()).expect("open");
    let e: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
    log.append(&e).expect("append");
    log
}

#[test]
fn k16_2_2_checkpoints_never_contradict_earlier_ones() {
    let signer = Signer::generate(ORIGIN).expect("key");
    let mut log = log_of(10);
    let first = log.sign_checkpoint(ORIGIN, &signer, None).expect("first");
    let (cp, _) = open_checkpoint(first.note.as_bytes(), &[signer.verifier()]).expect("opens");
    assert_eq!(cp, first.checkpoint);
    assert_eq!((cp.size, cp.root), (10, log.root()));

    log.append(&[b"more".to_vec()]).expect("append");
    // The caller passes the persisted checkpoint; the log checks it.
    let second = log
        .sign_checkpoint(ORIGIN, &signer, Some(&cp))
        .expect("second");
    assert_eq!(second.checkpoint.size, 11);
    // Re-signing at the same size is fine.
    log.sign_checkpoint(ORIGIN, &signer, Some(&second.checkpoint))
        .expect("same size");

    // A fresh Log (restart) given a checkpoint larger than the log.
    let mut small = log_of(5);
    assert!(matches!(
        small.sign_checkpoint(ORIGIN, &signer, Some(&cp)),
        Err(LogError::WouldShrink {
            size: 5,
            signed: 10
        })
    ));
    // A checkpoint this log does not extend.
    let mut other = Log::open(MemoryStore::new()).expect("open");
    other
        .append(&(0..12u64).map(|i| vec![i as u8]).collect::<Vec<_>>())
        .expect("append");
    assert!(matches!(
        other.sign_checkpoint(ORIGIN, &signer, Some(&cp)),
        Err(LogError::Inconsistent { signed: 10 })
    ));
    // Another log's checkpoint.
    assert!(matches!(
        log.sign_checkpoint("elsewhere", &signer, Some(&cp)),
        Err(LogError::OriginMismatch { .. })
    ));
    // A claimed empty checkpoint must carry the empty root.
    let bogus_empty = Checkpoint::new(ORIGIN, 0, Hash::leaf(b"x"));
    assert!(log_of(3)
        .sign_checkpoint(ORIGIN, &signer, Some(&bogus_empty))
        .is_err());
    let empty = Checkpoint::new(ORIGIN, 0, Hash::EMPTY_TREE);
    assert!(log_of(3)
        .sign_checkpoint(ORIGIN, &signer, Some(&empty))
        .is_ok());
}

#[test]
fn log_remembers_what_it_signed() {
    let signer = Signer::generate(ORIGIN).expect("key");
    let mut log = log_of(4);
    log.sign_checkpoint(ORIGIN, &signer, None).expect("sign");
    assert_eq!(log.last_signed().map(|c| c.size), Some(4));
    log.append(&[b"x".to_vec()]).expect("append");
    // Even without the caller's copy, the remembered one is checked.
    let c = log.sign_checkpoint(ORIGIN, &signer, None).expect("sign");
    assert_eq!(c.checkpoint.size, 5);
}

#[test]
fn tiles_served_from_a_log_match_the_tree() {
    let n = 70_000u64;
    let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("e{i}").into_bytes()).collect();
    let mut log = Log::open(MemoryStore::new()).expect("open");
    log.append(&entries).expect("append");
    let leaves: Vec<Hash> = entries.iter().map(|e| Hash::leaf(e)).collect();
    let tiles = new_tiles(0, n);
    assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
    for t in tiles
        .iter()
        .filter(|t| t.index() % 50 == 0 || t.is_partial())
    {
        let data = read_tile_data(t, log.store()).expect("tile");
        // Split form: indexes, fetch, build.
        let idx = tile_hash_indexes(t).expect("indexes");
        let fetched = log.store().read_hashes(&idx).expect("fetch");
        assert_eq!(tile_data_from_hashes(t, &fetched).expect("build"), data);
        let hashes = parse_tile_data(t, &data).expect("parse");
        let TileKind::Hashes { level } = t.kind() else {
            unreachable!()
        };
        let span = 1usize << (8 * level);
        for (k, h) in hashes.iter().enumerate() {
            let lo = (t.index() as usize * 256 + k) * span;
            assert_eq!(
                *h,
                reference_root(&leaves[lo..lo + span]),
                "{} hash {k}",
                t.path()
            );
        }
    }
    // An entry bundle hashes to its level-0 tile.
    let t0 = Tile::new(TileKind::Hashes { level: 0 }, 273, 112).expect("tile");
    let eb = Tile::new(TileKind::Entries, 273, 112).expect("bundle");
    assert!(eb.is_within(n) && t0.is_within(n));
    assert!(!Tile::new(TileKind::Entries, 273, 113)
        .expect("tile")
        .is_within(n));
    // The Log serves the same bytes, and refuses tiles beyond its size.
    assert_eq!(
        log.read_tile(&t0).expect("tile"),
        read_tile_data(&t0, log.store()).expect("tile")
    );
    let too_far = Tile::new(TileKind::Entries, 273, 113).expect("tile");
    assert!(matches!(
        log.read_tile(&too_far),
        Err(LogError::TileNotAvailable(_))
    ));
    let r = eb.record_range();
    let chunk = log.read_entries(r.start, r.end - r.start).expect("read");
    let chunk: Vec<Vec<u8>> = chunk.into_iter().map(|e| e.expect("not pruned")).collect();
    let bundle = entry_bundle(&chunk).expect("bundle");
    assert_eq!(log.read_tile(&eb).expect("bundle"), bundle);
    let hashes =
        parse_tile_data(&t0, &read_tile_data(&t0, log.store()).expect("tile")).expect("parse");
    for (e, h) in parse_entry_bundle_for(&eb, &bundle)
        .expect("parse")
        .iter()
        .zip(&hashes)
    {
        assert_eq!(Hash::leaf(e), *h);
    }
}

#[test]
fn pruned_records_keep_the_tree_verifiable() {
    let mut log = log_of(100);
    let root = log.root();
    let mut store = log.into_store();
    store.prune(17).expect("prune");
    store.prune(64).expect("prune");
    log = Log::open(store).expect("reopen");
    let report = log.verify_all(None);
    assert!(report.is_intact());
    assert_eq!(report.pruned, 2);
    assert_eq!(report.root, root);
    assert_eq!(log.read_entries(17, 1).expect("read")[0], None);
    let p = log.inclusion_proof(17, 100).expect("proof");
    assert!(mamori_ledger::verify_inclusion(
        &Hash::leaf(&17u64.to_be_bytes()),
        17,
        100,
        &p,
        &root
    ));
}

/// A store wrapper that alters what it returns, for tamper tests on the
/// generic verification path.
struct Tampered {
    inner: MemoryStore,
    entry: Option<u64>,
    hash: Option<u64>,
}

impl HashReader for Tampered {
    fn read_hashes(&self, idx: &[u64]) -> Result<Vec<Hash>, mamori_ledger::TreeError> {
        let mut h = self.inner.read_hashes(idx)?;
        for (k, i) in idx.iter().enumerate() {
            if Some(*i) == self.hash {
                h[k].0[5] ^= 0x40;
            }
        }
        Ok(h)
    }
}

impl Store for Tampered {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn append(&mut self, e: &[&[u8]], h: &[Hash]) -> Result<u64, mamori_ledger::StoreError> {
        self.inner.append(e, h)
    }
    fn read_entries(
        &self,
        s: u64,
        c: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, mamori_ledger::StoreError> {
        let mut v = self.inner.read_entries(s, c)?;
        for (k, e) in v.iter_mut().enumerate() {
            if Some(s + k as u64) == self.entry {
                if let Some(e) = e {
                    e.push(0);
                }
            }
        }
        Ok(v)
    }
}

#[test]
fn first_bad_index_across_verify_chunks() {
    let n = 10_000u64;
    let store = log_of(n).into_store();
    let mut t = Tampered {
        inner: store,
        entry: None,
        hash: None,
    };
    for bad in [0u64, 1, 4095, 4096, 8191, 9999] {
        t.entry = Some(bad);
        let r = mamori_ledger::verify_store(&t, None);
        assert_eq!(r.problem, Some(Problem::LeafMismatch { index: bad }));
    }
    t.entry = Some(9000);
    // A wrong node hash stored with record 5000 comes first.
    let s = mamori_ledger::tree::stored_hash_index(3, 5000 >> 3);
    t.hash = Some(s);
    let r = mamori_ledger::verify_store(&t, None);
    assert_eq!(
        r.problem,
        Some(Problem::NodeMismatch {
            index: 5007,
            level: 3
        })
    );
}

#[test]
fn access_records_are_leaf_data() {
    let rec = AccessRecord {
        time_micros: 1_735_689_600_000_000,
        system: "facility".into(),
        event_id: "e-1".into(),
        actor: "staff/0042".into(),
        action: "reservation.update".into(),
        asset: "room/3F-A".into(),
        result: AccessResult::Success,
        source_address: Some("2001:db8::1".into()),
        detail: Some(r#"{"from":"10:00","to":"11:00"}"#.into()),
        salt: new_salt(),
    };
    let bytes = rec.encode().expect("encode");
    let mut log = Log::open(MemoryStore::new()).expect("open");
    let r = log.append(std::slice::from_ref(&bytes)).expect("append");
    let back = log.read_entries(r.start, 1).expect("read");
    let back = back[0].as_deref().expect("present");
    assert_eq!(AccessRecord::decode(back).expect("decode"), rec);
    assert_eq!(log.root(), Hash::leaf(&bytes));
    // Same content, another salt: another leaf.
    let again = AccessRecord {
        salt: new_salt(),
        ..rec.clone()
    };
    assert_ne!(
        Hash::leaf(&again.encode().expect("encode")),
        Hash::leaf(&bytes)
    );
}
