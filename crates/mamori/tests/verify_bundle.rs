//! `mamori ledger verify-bundle` (K27.1.3): an evidence bundle checks
//! offline — exit 0 when it verifies, 1 naming the first bad record, 2 for
//! a file that is not a bundle — and never opens a database.

use mamori_ledger::bundle::{Bundle, BundleRecord, FORMAT};
use mamori_ledger::{Hash, Log, MemoryStore, Signer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ORIGIN: &str = "mamori.test/ledger";

/// A bundle of records 2, 5 and 7 of a log of 10, and its signer.
fn bundle() -> (Bundle, Signer) {
    let signer = Signer::generate(ORIGIN).unwrap();
    let mut log = Log::open(MemoryStore::new()).unwrap();
    let entries: Vec<Vec<u8>> = (0..10).map(|i| format!("leaf {i}").into_bytes()).collect();
    log.append(&entries).unwrap();
    let note = log.sign_checkpoint(ORIGIN, &signer, None).unwrap().note;
    let records = [2u64, 5, 7]
        .iter()
        .map(|&i| {
            BundleRecord::new(
                i,
                &entries[i as usize],
                &log.inclusion_proof(i, 10).unwrap(),
            )
        })
        .collect();
    let b = Bundle {
        format: FORMAT.into(),
        origin: ORIGIN.into(),
        verifier_key: signer.verifier().to_key_string(),
        checkpoint: note,
        frozen_by: "person:1".into(),
        frozen_by_login: "tester".into(),
        frozen_at: "2026-11-29T10:00:00+09:00".into(),
        reason: "事故 2026-001".into(),
        query: serde_json::json!({ "indexes": [2, 5, 7] }),
        records,
    };
    (b, signer)
}

/// Runs the command with a data folder and database it must not touch.
fn verify(dir: &Path, file: &Path, key: Option<&str>) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mamori"));
    c.arg("--data")
        .arg(dir.join("no-data"))
        .arg("--database")
        .arg("postgres://nobody@127.0.0.1:1/none")
        .env("MAMORI_LOG", "warn")
        .args(["ledger", "verify-bundle"])
        .arg(file);
    if let Some(k) = key {
        c.args(["--key", k]);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (status.code().unwrap_or(-1), text)
}

#[test]
fn k27_1_3_verify_bundle_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (good, signer) = bundle();
    let key = signer.verifier().to_key_string();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let good_file = write("good.json", good.to_json().as_bytes());

    let (code, out) = verify(dir.path(), &good_file, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified: 3 records"), "{out}");
    assert!(out.contains("with the key in the bundle"), "{out}");
    let (code, out) = verify(dir.path(), &good_file, Some(&key));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("with the trusted key"), "{out}");
    assert!(out.contains("事故 2026-001"), "{out}");

    // Record 5's leaf altered (one bit), its proof kept: record 5 is named.
    let mut bad = good.clone();
    let proof: Vec<Hash> = bad.records[1]
        .inclusion_proof
        .iter()
        .map(|h| Hash::from_base64(h).unwrap())
        .collect();
    bad.records[1] = BundleRecord::new(5, b"leaf 4", &proof);
    let bad_file = write("bad.json", bad.to_json().as_bytes());
    let (code, out) = verify(dir.path(), &bad_file, Some(&key));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 5"), "{out}");

    // Another key: the signature does not verify, and says with which key.
    let other = Signer::generate(ORIGIN).unwrap().verifier().to_key_string();
    let (code, out) = verify(dir.path(), &good_file, Some(&other));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature") && out.contains(&other), "{out}");
    let mut swapped = good.clone();
    swapped.verifier_key = other.clone();
    let swapped_file = write("swapped.json", swapped.to_json().as_bytes());
    assert_eq!(verify(dir.path(), &swapped_file, None).0, 1);
    // …which a trusted key sees through: the checkpoint is still good.
    assert_eq!(verify(dir.path(), &swapped_file, Some(&key)).0, 0);

    // Not a bundle: exit 2.
    for (name, bytes) in [
        ("garbage.json", &b"\x00\xffgarbage"[..]),
        ("empty.json", b""),
        ("array.json", b"[1, 2]"),
        ("half.json", &good.to_json().as_bytes()[..100]),
    ] {
        let (code, out) = verify(dir.path(), &write(name, bytes), None);
        assert_eq!(code, 2, "{name}: {out}");
    }
    assert_eq!(
        verify(dir.path(), &dir.path().join("missing.json"), None).0,
        2
    );
    assert_eq!(verify(dir.path(), &good_file, Some("not-a-key")).0, 2);

    // Offline: nothing was created where the data folder would be.
    assert!(!dir.path().join("no-data").exists());

    // An outside RFC 9162 verifier (Go's tlog and note) agrees.
    if let Some(go) = go_verifier() {
        let run = |file: &Path, key: &str| {
            let o = Command::new(&go)
                .args(["-key", key, "-bundle"])
                .arg(file)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            (o.status.code().unwrap_or(-1), text)
        };
        let (code, out) = run(&good_file, &key);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("OK bundle: 3 records"), "{out}");
        let (code, out) = run(&bad_file, &key);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("record 5"), "{out}");
        assert_eq!(run(&good_file, &other).0, 1);
        let _ = std::fs::remove_file(&go);
    }
}

/// Builds verifiers/tlog-go (as ledger_live.rs does).
fn go_verifier() -> Option<PathBuf> {
    const INSTALL: &str = "apt-get install -y golang-go golang-golang-x-mod-dev";
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("mamori-tlog-verify-b{}", std::process::id()));
    let ok = Command::new("sh")
        .arg(root.join("verifiers/tlog-go/build.sh"))
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(out);
    }
    if std::env::var("MAMORI_SKIP_GO").as_deref() == Ok("1") {
        println!("SKIPPED Go verifier: not installed (MAMORI_SKIP_GO=1); run `{INSTALL}`");
        return None;
    }
    panic!("the Go verifier does not build: run `{INSTALL}` (or set MAMORI_SKIP_GO=1)");
}
