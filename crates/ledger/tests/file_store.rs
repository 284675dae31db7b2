//! FileStore: durability across crashes, and tampering found by the full
//! verification with the first bad record named.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use mamori_ledger::tree::{split_stored_hash_index, stored_hash_count, stored_hash_index};
use mamori_ledger::{Checkpoint, FileStore, Hash, Log, MemoryStore, Problem, Store, StoreError};

fn entry(i: u64) -> Vec<u8> {
    // Varying lengths so that offsets matter.
    format!("record {i} {}", "x".repeat((i % 7) as usize)).into_bytes()
}

fn fill(log: &mut Log<FileStore>, from: u64, to: u64, batch: u64) {
    let mut i = from;
    while i < to {
        let end = (i + batch).min(to);
        let b: Vec<Vec<u8>> = (i..end).map(entry).collect();
        log.append(&b).expect("append");
        i = end;
    }
}

fn open(dir: &Path) -> Log<FileStore> {
    Log::open(FileStore::open(dir).expect("open store")).expect("open log")
}

#[test]
fn round_trip_and_same_answers_as_memory() {
    let d = TempDir::new("rt");
    let mut log = open(&d.0);
    fill(&mut log, 0, 1000, 97);
    let mut mem = Log::open(MemoryStore::new()).expect("mem");
    mem.append(&(0..1000).map(entry).collect::<Vec<_>>())
        .expect("append");
    assert_eq!(log.root(), mem.root());
    drop(log);
    let log = open(&d.0);
    assert_eq!(log.size(), 1000);
    assert_eq!(log.root(), mem.root());
    for (i, n) in [(0, 1), (5, 1000), (999, 1000), (511, 512), (300, 777)] {
        assert_eq!(
            log.inclusion_proof(i, n).expect("p"),
            mem.inclusion_proof(i, n).expect("p")
        );
    }
    for (m, n) in [(1, 1000), (512, 1000), (999, 1000), (7, 13)] {
        assert_eq!(
            log.consistency_proof(m, n).expect("p"),
            mem.consistency_proof(m, n).expect("p")
        );
        assert_eq!(log.root_at(m).expect("r"), mem.root_at(m).expect("r"));
    }
    let got = log.read_entries(990, 10).expect("read");
    for (k, e) in got.iter().enumerate() {
        assert_eq!(e.as_deref(), Some(entry(990 + k as u64).as_slice()));
    }
    assert!(log.read_entries(995, 6).is_err());
    assert!(log.verify_all(None).is_intact());
}

fn append_garbage(path: &Path, n: usize) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    let g: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
    f.write_all(&g).expect("write");
}

#[test]
fn torn_writes_past_the_commit_are_truncated() {
    let d = TempDir::new("torn");
    let mut log = open(&d.0);
    fill(&mut log, 0, 300, 50);
    let root = log.root();
    drop(log);
    // A crash mid-batch: partial data in every file, and a half-written
    // next commit slot (generation 6 goes to slot 0; 7 would go to slot 1).
    append_garbage(&d.0.join("entries.bin"), 1234);
    append_garbage(&d.0.join("offsets.bin"), 13);
    append_garbage(&d.0.join("hashes.bin"), 77);
    let commit = d.0.join("commit.bin");
    let mut c = std::fs::read(&commit).expect("read commit");
    for b in &mut c[64..100] {
        *b ^= 0x5a;
    }
    std::fs::write(&commit, &c).expect("write commit");

    let mut log = open(&d.0);
    assert_eq!(log.size(), 300);
    assert_eq!(log.root(), root);
    assert!(log.store().damage().is_none());
    // The uncommitted tails are gone from the files themselves.
    let len = |name: &str| std::fs::metadata(d.0.join(name)).expect("meta").len();
    let entries_len: u64 = (0..300).map(|i| entry(i).len() as u64).sum();
    assert_eq!(len("entries.bin"), entries_len);
    assert_eq!(len("offsets.bin"), 300 * 8);
    assert_eq!(len("hashes.bin"), stored_hash_count(300) * 32);
    assert!(log.verify_all(None).is_intact());
    fill(&mut log, 300, 450, 50);
    drop(log);
    let log = open(&d.0);
    assert_eq!(log.size(), 450);
    assert!(log.verify_all(None).is_intact());
}

/// Runs as the child process of `kill_9_loses_no_acknowledged_record`:
/// appends forever and prints each acknowledged size.
#[test]
fn kill9_child() {
    let Ok(dir) = std::env::var("MAMORI_LEDGER_KILL9_DIR") else {
        return;
    };
    let mut log = open(Path::new(&dir));
    loop {
        let from = log.size();
        let b: Vec<Vec<u8>> = (from..from + 100).map(entry).collect();
        log.append(&b).expect("append");
        println!("acked {}", log.size());
    }
}

#[test]
fn kill_9_loses_no_acknowledged_record() {
    let d = TempDir::new("kill9");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked_total = 0u64;
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("MAMORI_LEDGER_KILL9_DIR", &d.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let want = 3 + round * 7;
        let mut seen = 0;
        let start = Instant::now();
        let mut acked = 0u64;
        while seen < want && start.elapsed() < Duration::from_secs(60) {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(n) = l.strip_prefix("acked ") {
                        acked = n.parse().expect("number");
                        seen += 1;
                    }
                }
                _ => break,
            }
        }
        child.kill().expect("SIGKILL");
        // Lines already in the pipe were acknowledged too.
        for l in lines.map_while(Result::ok) {
            if let Some(n) = l.strip_prefix("acked ") {
                acked = n.parse().expect("number");
            }
        }
        let _ = child.wait();
        assert!(seen > 0, "child made no progress");
        let log = open(&d.0);
        assert!(
            log.size() >= acked,
            "lost acknowledged records: {} < {acked}",
            log.size()
        );
        assert!(acked >= acked_total);
        acked_total = log.size();
        let report = log.verify_all(None);
        assert!(report.is_intact(), "{report:?}");
        let sample = log.read_entries(acked - 1, 1).expect("read");
        assert_eq!(sample[0].as_deref(), Some(entry(acked - 1).as_slice()));
    }
}

/// Builds a small log and returns its directory and byte layout.
fn small_log(tag: &str, n: u64) -> (TempDir, Vec<u64>) {
    let d = TempDir::new(tag);
    let mut log = open(&d.0);
    fill(&mut log, 0, n, 6);
    let ends: Vec<u64> = (0..n)
        .scan(0u64, |acc, i| {
            *acc += entry(i).len() as u64;
            Some(*acc)
        })
        .collect();
    (d, ends)
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("read");
    b[at] ^= 0x01;
    std::fs::write(path, &b).expect("write");
}

fn first_bad(dir: &Path) -> Option<Problem> {
    open_store_log(dir).verify_all(None).problem
}

fn open_store_log(dir: &Path) -> Log<FileStore> {
    Log::open(FileStore::open(dir).expect("open")).expect("log")
}

#[test]
fn every_altered_entry_byte_is_found_at_its_record() {
    let n = 23;
    let (d, ends) = small_log("entry-bytes", n);
    let path = d.0.join("entries.bin");
    for at in 0..*ends.last().expect("non-empty") as usize {
        let record = ends
            .iter()
            .position(|&e| (at as u64) < e)
            .expect("in range") as u64;
        flip_byte(&path, at);
        assert_eq!(
            first_bad(&d.0),
            Some(Problem::LeafMismatch { index: record }),
            "byte {at}"
        );
        flip_byte(&path, at);
    }
    assert_eq!(first_bad(&d.0), None);
}

#[test]
fn every_altered_hash_byte_is_found_at_its_record() {
    let n = 23;
    let (d, _) = small_log("hash-bytes", n);
    let path = d.0.join("hashes.bin");
    // Every byte of the first hashes, then a sample of the rest.
    let total = stored_hash_count(n) as usize * 32;
    for at in (0..total).filter(|a| *a < 256 || a % 7 == 0) {
        let s = (at / 32) as u64;
        let (level, k) = split_stored_hash_index(s);
        assert_eq!(stored_hash_index(level, k), s);
        let record = ((k + 1) << level) - 1;
        let want = if level == 0 {
            Problem::LeafMismatch { index: record }
        } else {
            Problem::NodeMismatch {
                index: record,
                level,
            }
        };
        flip_byte(&path, at);
        // Altering the frontier's hashes also changes what `open` rebuilds;
        // the verification must still name the record.
        assert_eq!(first_bad(&d.0), Some(want), "byte {at}");
        flip_byte(&path, at);
    }
    assert_eq!(first_bad(&d.0), None);
}

#[test]
fn every_altered_offset_byte_is_found_at_its_record() {
    let n = 23u64;
    let (d, _) = small_log("offset-bytes", n);
    let path = d.0.join("offsets.bin");
    for at in 0..(n as usize * 8) {
        let record = (at / 8) as u64;
        flip_byte(&path, at);
        let p = first_bad(&d.0).expect("found");
        assert_eq!(p.index(), Some(record), "byte {at}: {p:?}");
        flip_byte(&path, at);
    }
    assert_eq!(first_bad(&d.0), None);
}

fn truncate_by(path: &Path, bytes: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    let len = f.metadata().expect("meta").len();
    f.set_len(len - bytes).expect("truncate");
}

#[test]
fn a_deleted_tail_is_found() {
    let n = 40;
    // Entries: cutting into record 39's bytes.
    let (d, _) = small_log("tail-entries", n);
    truncate_by(&d.0.join("entries.bin"), 3);
    let log = open_store_log(&d.0);
    assert!(log.store().damage().is_some());
    let report = log.verify_all(None);
    assert!(
        matches!(report.problem, Some(Problem::Missing { index: 39, .. })),
        "{report:?}"
    );
    // A damaged store refuses appends rather than writing past a hole.
    let mut log = log;
    assert!(matches!(
        log.append(&[b"x".to_vec()]),
        Err(mamori_ledger::LogError::Store(StoreError::NotAppendable(_)))
    ));

    // Offsets: the last 5 records' offsets are gone.
    let (d, _) = small_log("tail-offsets", n);
    truncate_by(&d.0.join("offsets.bin"), 5 * 8);
    assert_eq!(first_bad(&d.0).and_then(|p| p.index()), Some(35));

    // Hashes: the last stored hash (written with record 39) is gone.
    let (d, _) = small_log("tail-hashes", n);
    truncate_by(&d.0.join("hashes.bin"), 32);
    let store = FileStore::open(&d.0).expect("open");
    // Opening the log needs the frontier, which is now incomplete, so
    // verify the store directly.
    let report = mamori_ledger::verify_store(&store, None);
    assert_eq!(report.first_bad_index(), Some(39), "{report:?}");
}

#[test]
fn a_consistently_shortened_or_rewritten_log_fails_against_the_checkpoint() {
    let (d, _) = small_log("cp-full", 50);
    let log = open_store_log(&d.0);
    let cp = Checkpoint::new("o", 50, log.root());
    assert!(log.verify_all(Some(&cp)).is_intact());
    // Someone replaces the files with a log of only 40 records.
    let (short, _) = small_log("cp-short", 40);
    let report = open_store_log(&short.0).verify_all(Some(&cp));
    assert_eq!(
        report.problem,
        Some(Problem::Truncated {
            index: 40,
            checkpoint_size: 50
        })
    );
    // Or with 50 records where record 17 differs, hashes recomputed.
    let r = TempDir::new("cp-rewritten");
    let mut forged = open(&r.0);
    let mut b: Vec<Vec<u8>> = (0..50).map(entry).collect();
    b[17] = b"forged".to_vec();
    forged.append(&b).expect("append");
    let report = forged.verify_all(Some(&cp));
    assert_eq!(report.problem, Some(Problem::RootMismatch { size: 50 }));
    // An older checkpoint is checked at its own size.
    let old = Checkpoint::new("o", 10, log.root_at(10).expect("root"));
    assert!(forged.verify_all(Some(&old)).is_intact());
    let old = Checkpoint::new("o", 20, log.root_at(20).expect("root"));
    assert_eq!(
        forged.verify_all(Some(&old)).problem,
        Some(Problem::RootMismatch { size: 20 })
    );
}

#[test]
fn commit_without_data_and_data_without_commit() {
    let d = TempDir::new("nocommit");
    {
        let mut log = open(&d.0);
        fill(&mut log, 0, 10, 10);
    }
    std::fs::remove_file(d.0.join("commit.bin")).expect("rm");
    assert!(matches!(FileStore::open(&d.0), Err(StoreError::Corrupt(_))));
    // Both slots destroyed.
    let d = TempDir::new("badcommit");
    {
        let mut log = open(&d.0);
        fill(&mut log, 0, 10, 10);
    }
    std::fs::write(d.0.join("commit.bin"), [0u8; 128]).expect("write");
    assert!(matches!(FileStore::open(&d.0), Err(StoreError::Corrupt(_))));
}

#[test]
fn store_rejects_wrong_hash_counts_and_oversized_entries() {
    let d = TempDir::new("contract");
    let mut s = FileStore::open(&d.0).expect("open");
    let e: &[u8] = b"a";
    assert!(matches!(
        s.append(&[e], &[]),
        Err(StoreError::HashCount { .. })
    ));
    let big = vec![0u8; 70_000];
    let mut log = Log::open(s).expect("log");
    assert!(log.append(&[big]).is_err());
    assert_eq!(log.size(), 0);
    log.append(&[e]).expect("append");
    assert_eq!(log.root(), Hash::leaf(b"a"));
}

#[test]
fn a_snapshot_reads_beside_the_writer() {
    let d = TempDir::new("snapshot");
    let mut log = open(&d.0);
    fill(&mut log, 0, 100, 10);
    let snap = log.store().snapshot().expect("snapshot");
    let root = log.root();
    fill(&mut log, 100, 200, 10);
    assert_eq!(snap.size(), 100);
    let report = mamori_ledger::verify_store(&snap, None);
    assert!(report.is_intact());
    assert_eq!(report.root, root);
    let mut snap = snap;
    let e: &[u8] = b"x";
    assert!(matches!(
        snap.append(&[e], &[Hash::leaf(e)]),
        Err(StoreError::ReadOnly)
    ));
    assert!(log.verify_all(None).is_intact());
}

// ---- Pruning (retention, K16.2.1) ----

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const PRUNE: [u64; 7] = [3, 10, 11, 12, 13, 64, 199];

#[test]
fn pruned_records_keep_their_proofs_and_verification() {
    let d = TempDir::new("prune");
    let mut log = open(&d.0);
    fill(&mut log, 0, 200, 17);
    let cp = Checkpoint::new("example.org/log", 200, log.root());
    let old_root = log.root();
    assert_eq!(
        log.store().prune(&PRUNE).expect("prune"),
        PRUNE.len() as u64
    );
    // Pruning again changes nothing; beyond the log is refused.
    assert_eq!(log.store().prune(&[3, 10, 199]).expect("again"), 0);
    assert!(matches!(
        log.store().prune(&[200]),
        Err(StoreError::OutOfRange { .. })
    ));
    assert_eq!(log.root(), old_root);
    drop(log);

    let mut log = open(&d.0);
    assert_eq!(log.root(), old_root);
    assert_eq!(log.store().pruned_indexes().expect("marks"), PRUNE.to_vec());
    let all = log.read_entries(0, 200).expect("read");
    for (i, e) in all.iter().enumerate() {
        let i = i as u64;
        if PRUNE.contains(&i) {
            assert_eq!(e, &None, "record {i} is pruned");
            assert!(log.store().is_pruned(i).expect("is_pruned"));
        } else {
            assert_eq!(e.as_deref(), Some(entry(i).as_slice()));
        }
    }
    // The content is gone from the disk itself; the rest is still there.
    let bytes = std::fs::read(d.0.join("entries.bin")).expect("entries");
    for i in 0..200 {
        assert_eq!(
            contains(&bytes, &entry(i)),
            !PRUNE.contains(&i),
            "record {i} on disk"
        );
    }
    // Proofs for pruned records still verify against the old checkpoint.
    for &i in &PRUNE {
        let proof = log.inclusion_proof(i, 200).expect("proof");
        assert!(mamori_ledger::verify_inclusion(
            &Hash::leaf(&entry(i)),
            i,
            200,
            &proof,
            &cp.root
        ));
    }
    let report = log.verify_all(Some(&cp));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.pruned, PRUNE.len() as u64);

    // Appending continues, and the log extends the old checkpoint.
    fill(&mut log, 200, 333, 50);
    let proof = log.consistency_proof(200, 333).expect("consistency");
    assert!(mamori_ledger::verify_consistency(
        200,
        333,
        &cp.root,
        &log.root(),
        &proof
    ));
    let mut mem = Log::open(MemoryStore::new()).expect("mem");
    mem.append(&(0..333).map(entry).collect::<Vec<_>>())
        .expect("append");
    assert_eq!(log.root(), mem.root());
    assert!(log.verify_all(Some(&cp)).is_intact());
    // A whole range at once.
    assert_eq!(log.store().prune_range(100..150).expect("range"), 50);
    drop(log);
    let log = Log::open(FileStore::open_read_only(&d.0).expect("ro")).expect("log");
    let report = log.verify_all(Some(&cp));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.pruned, PRUNE.len() as u64 + 50);
    let mut marks: Vec<u64> = PRUNE.iter().copied().chain(100..150).collect();
    marks.sort_unstable();
    assert_eq!(log.store().pruned_indexes().expect("marks"), marks);
    // The bundles of pruned records cannot be served; hash tiles can.
    let t = mamori_ledger::Tile::parse_path("tile/entries/000.p/200").expect("tile");
    assert!(matches!(
        log.read_tile(&t),
        Err(mamori_ledger::LogError::Pruned { index: 3 })
    ));
    let t = mamori_ledger::Tile::parse_path("tile/0/000.p/200").expect("tile");
    assert!(log.read_tile(&t).is_ok());
}

#[test]
fn a_restored_pruned_slot_is_found() {
    // Someone removes the mark of a pruned record (its bytes stay zeros).
    let d = TempDir::new("prune-tamper");
    let mut log = open(&d.0);
    fill(&mut log, 0, 40, 7);
    log.store().prune(&[5, 21]).expect("prune");
    drop(log);
    assert_eq!(first_bad(&d.0), None);
    let path = d.0.join("pruned.bin");
    let mut bitmap = std::fs::read(&path).expect("bitmap");
    bitmap[21 / 8] &= !(1 << (21 % 8));
    std::fs::write(&path, &bitmap).expect("write");
    assert_eq!(first_bad(&d.0), Some(Problem::LeafMismatch { index: 21 }));
    // The whole bitmap deleted: the first pruned record is named.
    std::fs::remove_file(&path).expect("rm");
    assert_eq!(first_bad(&d.0), Some(Problem::LeafMismatch { index: 5 }));
}

fn journal(indexes: &[u64]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut b = b"MAMORIP\x01".to_vec();
    b.extend_from_slice(&(indexes.len() as u64).to_le_bytes());
    for i in indexes {
        b.extend_from_slice(&i.to_le_bytes());
    }
    let sum = Sha256::digest(&b);
    b.extend_from_slice(&sum);
    b
}

#[test]
fn a_prune_interrupted_by_a_crash_is_finished_at_open() {
    let pruned = [4u64, 5, 6, 30];
    let cases: [(&str, bool, bool); 3] = [
        // Crash after the journal, before any mark.
        ("journal-only", false, true),
        // Crash after the marks, before the zeros.
        ("marked", true, true),
        // Journal torn: the crash came before the marks; nothing happens.
        ("torn", false, false),
    ];
    for (tag, marked, complete_journal) in cases {
        let d = TempDir::new(&format!("prune-crash-{tag}"));
        let mut log = open(&d.0);
        fill(&mut log, 0, 50, 9);
        let cp = Checkpoint::new("example.org/log", 50, log.root());
        let original = std::fs::read(d.0.join("entries.bin")).expect("entries");
        log.store().prune(&pruned).expect("prune");
        drop(log);
        // Rebuild the state the crash left: original bytes, marks or not,
        // and the journal (complete or torn).
        std::fs::write(d.0.join("entries.bin"), &original).expect("restore");
        if !marked {
            std::fs::write(d.0.join("pruned.bin"), []).expect("unmark");
        }
        let mut j = journal(&pruned);
        if !complete_journal {
            j.truncate(j.len() - 5);
        }
        std::fs::write(d.0.join("prune.pending"), &j).expect("journal");

        // Beside the crash state, before any writer opens it, the log verifies.
        let ro = FileStore::open_read_only(&d.0).expect("ro");
        let report = mamori_ledger::verify_store(&ro, Some(&cp));
        assert!(report.is_intact(), "{tag}: {report:?}");
        assert_eq!(report.pruned, if marked { 4 } else { 0 }, "{tag}");
        drop(ro);

        let log = open(&d.0);
        let report = log.verify_all(Some(&cp));
        assert!(report.is_intact(), "{tag}: {report:?}");
        let bytes = std::fs::read(d.0.join("entries.bin")).expect("entries");
        let done = complete_journal;
        assert_eq!(report.pruned, if done { 4 } else { 0 }, "{tag}");
        for i in pruned {
            assert_eq!(contains(&bytes, &entry(i)), !done, "{tag}: record {i}");
            assert_eq!(
                log.read_entries(i, 1).expect("read")[0].is_none(),
                done,
                "{tag}"
            );
        }
        assert_eq!(
            std::fs::metadata(d.0.join("prune.pending"))
                .expect("journal")
                .len(),
            0,
            "{tag}: the journal is emptied"
        );
    }
}

#[test]
fn read_only_handles_and_snapshots_see_prunes_and_cannot_prune() {
    let d = TempDir::new("prune-ro");
    let mut log = open(&d.0);
    fill(&mut log, 0, 64, 8);
    // Taken before pruned.bin exists.
    let snap = log.store().snapshot().expect("snapshot");
    let ro = FileStore::open_read_only(&d.0).expect("ro");
    log.store().prune(&[1, 2, 63]).expect("prune");
    for s in [&snap, &ro] {
        let got = s.read_entries(0, 4).expect("read");
        assert_eq!(got[0].as_deref(), Some(entry(0).as_slice()));
        assert_eq!(got[1], None);
        assert_eq!(got[2], None);
        let report = mamori_ledger::verify_store(s, None);
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.pruned, 3);
        assert!(matches!(s.prune(&[5]), Err(StoreError::ReadOnly)));
    }
    fill(&mut log, 64, 80, 8);
    assert!(log.verify_all(None).is_intact());
}
