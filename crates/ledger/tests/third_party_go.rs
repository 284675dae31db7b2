//! Third-party verification: Go's `golang.org/x/mod/sumdb/tlog` and
//! `golang.org/x/mod/sumdb/note` (Debian's packaged sources, not ours), via
//! `verifiers/tlog-go`, must accept the checkpoints, C2SP tiles, entry
//! bundles and proofs this crate produces, and reject tampered ones.
//!
//! Needs `go` and `/usr/share/gocode/src/golang.org/x/mod`
//! (`apt-get install -y golang-go golang-golang-x-mod-dev`). Without them
//! the test fails, unless `MAMORI_SKIP_GO=1`, when it prints SKIPPED.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::TempDir;
use mamori_ledger::record::{new_salt, AccessRecord, AccessResult};
use mamori_ledger::tile::new_tiles;
use mamori_ledger::{Hash, Log, MemoryStore, Signer, Tile, TileKind};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "mamori.example.lg.jp/ledger";
const GOCODE_MOD: &str = "/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog";
const INSTALL: &str = "apt-get install -y golang-go golang-golang-x-mod-dev";
const OLD_SIZE: u64 = 2_345;
const NEW_SIZE: u64 = 3_000;

fn verifier_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../verifiers/tlog-go")
}

/// `false` when Go or Debian's x/mod sources are missing and
/// MAMORI_SKIP_GO=1; panics when they are missing otherwise.
fn go_available(test: &str) -> bool {
    let go = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let xmod = Path::new(GOCODE_MOD).is_dir();
    if go && xmod {
        return true;
    }
    let missing = match (go, xmod) {
        (false, false) => "`go` and the Debian golang.org/x/mod sources",
        (false, true) => "`go`",
        _ => "the Debian golang.org/x/mod sources (/usr/share/gocode/src/golang.org/x/mod)",
    };
    if std::env::var("MAMORI_SKIP_GO").as_deref() == Ok("1") {
        println!("SKIPPED {test}: {missing} not installed (MAMORI_SKIP_GO=1); run `{INSTALL}`");
        return false;
    }
    panic!("{missing} not installed: run `{INSTALL}` (or set MAMORI_SKIP_GO=1 to skip this test)");
}

/// Builds `tlog-verify` once per source version, cached under the target
/// directory.
fn verifier_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = verifier_dir();
        let mut h = Sha256::new();
        for f in ["main.go", "build.sh"] {
            h.update(std::fs::read(dir.join(f)).expect("read verifier source"));
        }
        let digest = h.finalize();
        let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tlog-verify-go");
        let bin = cache.join(format!("tlog-verify-{tag}"));
        if bin.is_file() {
            return bin;
        }
        std::fs::create_dir_all(&cache).expect("create cache dir");
        let tmp = cache.join(format!("tlog-verify-{tag}.{}.tmp", std::process::id()));
        let out = Command::new("sh")
            .arg(dir.join("build.sh"))
            .arg(&tmp)
            .env("GOCACHE", cache.join("gocache"))
            .output()
            .expect("run verifiers/tlog-go/build.sh");
        assert!(
            out.status.success(),
            "building the Go verifier failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).expect("move binary into place");
        bin
    })
}

fn run(args: &[&str]) -> Output {
    Command::new(verifier_binary())
        .args(args)
        .output()
        .expect("run tlog-verify")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}stderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn accept(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "Go verifier rejected {args:?}:\n{}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with("OK "), "{}", text(&o));
    assert_eq!(out.lines().count(), 1, "one-line summary: {out}");
    out
}

/// The verifier must exit 1 with a FAIL line mentioning `why`.
#[track_caller]
fn reject(args: &[&str], why: &str, case: &str) {
    let o = run(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{case}: the Go verifier should reject:\n{}",
        text(&o)
    );
    assert!(
        stderr.starts_with("FAIL: ") && stderr.contains(why),
        "{case}: expected a FAIL mentioning {why:?}:\n{}",
        text(&o)
    );
}

fn record(i: u64) -> Vec<u8> {
    let results = [
        AccessResult::Success,
        AccessResult::Failure,
        AccessResult::Denied,
    ];
    AccessRecord {
        time_micros: 1_735_689_600_000_000 + i as i64 * 1_000_003,
        system: ["mamori", "facility", "library"][(i % 3) as usize].into(),
        event_id: format!("ev-{i:06}"),
        actor: format!("staff/{:04}", i % 97),
        action: ["read", "reservation.update", "login"][(i % 7 % 3) as usize].into(),
        asset: format!("asset/{}", "x".repeat((i % 40) as usize)),
        result: results[(i % 5 % 3) as usize],
        source_address: (i % 4 != 3).then(|| format!("192.0.2.{}", i % 250)),
        detail: (i % 11 < 1).then(|| format!(r#"{{"n":{i}}}"#)),
        salt: new_salt(),
    }
    .encode()
    .expect("encode record")
}

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

fn inclusion_json(index: u64, size: u64, hashes: &[Hash]) -> String {
    let hs: Vec<String> = hashes
        .iter()
        .map(|h| format!("\"{}\"", h.to_base64()))
        .collect();
    format!(
        "{{\"index\":{index},\"size\":{size},\"hashes\":[{}]}}",
        hs.join(",")
    )
}

fn consistency_json(from: u64, to: u64, hashes: &[Hash]) -> String {
    let hs: Vec<String> = hashes
        .iter()
        .map(|h| format!("\"{}\"", h.to_base64()))
        .collect();
    format!(
        "{{\"from\":{from},\"to\":{to},\"hashes\":[{}]}}",
        hs.join(",")
    )
}

/// Writes the C2SP layout of `log` at its current size into `dir`: the
/// signed checkpoint, the key, every hash tile and entry bundle (partial
/// ones included; tiles of earlier sizes already there are left, as a
/// static tile server keeps them) and the given proofs.
fn write_layout(
    dir: &Path,
    log: &Log<MemoryStore>,
    note: &str,
    signer: &Signer,
    inclusion: &[(u64, u64)],
    consistency: &[(u64, u64)],
) -> usize {
    let size = log.size();
    write(dir, "checkpoint", note.as_bytes());
    write(
        dir,
        "key",
        format!("{}\n", signer.verifier().to_key_string()).as_bytes(),
    );
    let mut tiles = new_tiles(0, size);
    for n in 0..size.div_ceil(256) {
        let w = (size - n * 256).min(256) as u32;
        tiles.push(Tile::new(TileKind::Entries, n, w).expect("bundle"));
    }
    for t in &tiles {
        write(dir, &t.path(), &log.read_tile(t).expect("read tile"));
    }
    for &(i, n) in inclusion {
        let p = log.inclusion_proof(i, n).expect("inclusion proof");
        write(
            dir,
            &format!("proof/inclusion/{i}-{n}.json"),
            inclusion_json(i, n, &p).as_bytes(),
        );
    }
    for &(m, n) in consistency {
        let p = log.consistency_proof(m, n).expect("consistency proof");
        write(
            dir,
            &format!("proof/consistency/{m}-{n}.json"),
            consistency_json(m, n, &p).as_bytes(),
        );
    }
    tiles.len()
}

struct Fixture {
    _tmp: TempDir,
    /// The log at NEW_SIZE (tiles of OLD_SIZE still there).
    new: PathBuf,
    /// The log as published at OLD_SIZE.
    old: PathBuf,
    /// The signed checkpoint at OLD_SIZE, outside both layouts.
    prev: PathBuf,
    key: String,
    signer: Signer,
}

fn fixture() -> Fixture {
    let tmp = TempDir::new("third-party-go");
    let (new, old, prev) = (
        tmp.0.join("new"),
        tmp.0.join("old"),
        tmp.0.join("prev.checkpoint"),
    );
    let signer = Signer::generate(ORIGIN).expect("key");
    let mut log = Log::open(MemoryStore::new()).expect("open");
    let first: Vec<Vec<u8>> = (0..OLD_SIZE).map(record).collect();
    // A few batches, so the log is built as the server builds it.
    for chunk in first.chunks(700) {
        log.append(chunk).expect("append");
    }
    let cp1 = log.sign_checkpoint(ORIGIN, &signer, None).expect("sign");
    std::fs::write(&prev, &cp1.note).expect("write prev");
    let old_incl = [(0, OLD_SIZE), (1000, OLD_SIZE), (2344, OLD_SIZE), (5, 6)];
    let old_cons = [(1, OLD_SIZE), (256, OLD_SIZE), (2000, OLD_SIZE)];
    for d in [&old, &new] {
        write_layout(d, &log, &cp1.note, &signer, &old_incl, &old_cons);
    }

    let rest: Vec<Vec<u8>> = (OLD_SIZE..NEW_SIZE).map(record).collect();
    log.append(&rest).expect("append");
    let cp2 = log
        .sign_checkpoint(ORIGIN, &signer, Some(&cp1.checkpoint))
        .expect("sign");
    let inclusion = [
        (0, NEW_SIZE),
        (255, NEW_SIZE),
        (256, NEW_SIZE),
        (2344, NEW_SIZE),
        (2345, NEW_SIZE),
        (2999, NEW_SIZE),
        (1234, 2048),
    ];
    let consistency = [
        (1, NEW_SIZE),
        (255, NEW_SIZE),
        (256, NEW_SIZE),
        (OLD_SIZE, NEW_SIZE),
        (2816, NEW_SIZE),
        (NEW_SIZE, NEW_SIZE),
        (100, 2048),
    ];
    write_layout(&new, &log, &cp2.note, &signer, &inclusion, &consistency);
    Fixture {
        new,
        old,
        prev,
        key: signer.verifier().to_key_string(),
        signer,
        _tmp: tmp,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Replaces `rel` under `dir` with `f(original)` while `check` runs.
fn tampered(dir: &Path, rel: &str, f: impl FnOnce(&mut Vec<u8>), check: impl FnOnce()) {
    let p = dir.join(rel);
    let original = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut data = original.clone();
    f(&mut data);
    assert_ne!(data, original, "tampering {rel} changed nothing");
    std::fs::write(&p, &data).expect("write tampered");
    check();
    std::fs::write(&p, &original).expect("restore");
}

fn flip(at: usize) -> impl FnOnce(&mut Vec<u8>) {
    move |d: &mut Vec<u8>| d[at] ^= 0x01
}

/// Replaces proof hash `k` of a proof file with another valid hash.
fn tamper_proof_hash(k: usize) -> impl FnOnce(&mut Vec<u8>) {
    move |d: &mut Vec<u8>| {
        let text = String::from_utf8(d.clone()).expect("utf-8");
        let start = text.find("\"hashes\":[").expect("hashes") + "\"hashes\":[".len();
        let quoted: Vec<&str> = text[start..text.len() - 2].split(',').collect();
        let old = quoted[k].trim_matches('"');
        let mut raw = B64.decode(old).expect("base64");
        raw[7] ^= 0x80;
        *d = text.replacen(old, &B64.encode(raw), 1).into_bytes();
    }
}

#[test]
fn go_tlog_accepts_mamori_logs_and_rejects_tampering() {
    if !go_available("go_tlog_accepts_mamori_logs_and_rejects_tampering") {
        return;
    }
    let started = std::time::Instant::now();
    verifier_binary();
    let fx = fixture();
    let (new, old, prev, key) = (s(&fx.new), s(&fx.old), s(&fx.prev), fx.key.as_str());

    // Accepted: the current log, with the earlier checkpoint; the key from
    // the layout; the log as published at the earlier size (its partial
    // tiles tile/0/009.p/41 and tile/1/000.p/9).
    let out = accept(&["-key", key, "-origin", ORIGIN, "-prev", prev, new]);
    assert!(
        out.contains("size 3000")
            && out.contains("3000 entries")
            && out.contains("11 inclusion and 10 consistency")
            && out.contains("extends earlier checkpoint of size 2345"),
        "{out}"
    );
    accept(&[new]);
    let out = accept(&["-key", key, old]);
    assert!(out.contains("size 2345") && out.contains("4 inclusion and 3 consistency"));
    accept(&[
        "-key",
        key,
        "-inclusion",
        "1000:2345",
        "-consistency",
        "256",
        old,
    ]);
    accept(&["-key", key, "-entries=false", new]);

    let dir = &fx.new;
    let args = ["-key", key, "-prev", prev, new];
    // Hash tiles: full level-0 tiles (first, middle, last) fail against
    // their parent, with or without reading the entries; the partial
    // level-0 and level-1 tiles fail the root.
    let no_entries = ["-key", key, "-entries=false", new];
    for t in ["tile/0/000", "tile/0/003", "tile/0/010"] {
        let why = format!("tile {t} does not match its hash in parent tile tile/1/000.p/11");
        tampered(dir, t, flip(100), || {
            reject(&args, &why, &format!("byte flipped in {t}"));
            reject(&no_entries, &why, &format!("{t}, entries not read"));
        });
    }
    for t in ["tile/0/011.p/184", "tile/1/000.p/11"] {
        tampered(dir, t, flip(100), || {
            reject(
                &args,
                "recomputing the root of size 3000 from the tiles",
                &format!("byte flipped in {t}"),
            )
        });
    }
    // A tile one hash short.
    tampered(
        dir,
        "tile/0/004",
        |d| d.truncate(d.len() - 32),
        || reject(&args, "tile/0/004", "truncated tile"),
    );
    // Entry bundles, full and partial: the record content changed.
    for (b, first) in [
        ("tile/entries/005", 5 * 256),
        ("tile/entries/011.p/184", 11 * 256),
    ] {
        tampered(dir, b, flip(12), || {
            reject(&args, &format!("record {first} "), &format!("flip in {b}"))
        });
    }
    // A bundle with one entry too many.
    tampered(
        dir,
        "tile/entries/002",
        |d| d.extend_from_slice(&[0, 1, 7]),
        || reject(&args, "257 entries", "extra entry"),
    );
    // An emptied bundle.
    tampered(
        dir,
        "tile/entries/007",
        |d| d.clear(),
        || reject(&args, "tile/entries/007", "empty bundle"),
    );
    // The checkpoint: its signature, its size, its root.
    tampered(
        dir,
        "checkpoint",
        |d| {
            let n = d.len();
            d[n - 10] = if d[n - 10] == b'A' { b'B' } else { b'A' };
        },
        || reject(&args, "signature", "checkpoint signature"),
    );
    tampered(
        dir,
        "checkpoint",
        |d| {
            let text = String::from_utf8(d.clone()).expect("utf-8");
            *d = text.replacen("\n3000\n", "\n2999\n", 1).into_bytes();
        },
        || reject(&args, "signature", "checkpoint size edited"),
    );
    // Proofs: one hash changed, in inclusion and consistency proofs.
    for (f, k) in [
        ("proof/inclusion/2345-3000.json", 0),
        ("proof/inclusion/0-3000.json", 11),
        ("proof/inclusion/1234-2048.json", 3),
    ] {
        tampered(dir, f, tamper_proof_hash(k), || {
            reject(&args, "inclusion proof", f)
        });
    }
    for (f, k) in [
        ("proof/consistency/2345-3000.json", 0),
        ("proof/consistency/1-3000.json", 2),
        ("proof/consistency/100-2048.json", 1),
    ] {
        tampered(dir, f, tamper_proof_hash(k), || {
            reject(&args, "consistency proof", f)
        });
    }
    // A proof whose echoed parameters do not match its request.
    tampered(
        dir,
        "proof/inclusion/255-3000.json",
        |d| {
            let text = String::from_utf8(d.clone()).expect("utf-8");
            *d = text
                .replacen("\"index\":255", "\"index\":254", 1)
                .into_bytes();
        },
        || reject(&args, "\"index\" is 254", "echoed index"),
    );

    // Another key, and a key file that does not match the checkpoint.
    let other = Signer::generate(ORIGIN).expect("key").verifier();
    reject(
        &["-key", &other.to_key_string(), new],
        "signature check failed",
        "wrong key",
    );
    tampered(
        dir,
        "key",
        |d| *d = format!("{other}\n").into_bytes(),
        || reject(&[new], "signature check failed", "replaced key file"),
    );

    // A forked earlier checkpoint: the same key and size, but record 100
    // differs, so the current log does not extend it.
    let mut fork = Log::open(MemoryStore::new()).expect("open");
    let mut entries: Vec<Vec<u8>> = (0..OLD_SIZE).map(record).collect();
    entries[100] = b"rewritten".to_vec();
    fork.append(&entries).expect("append");
    let cp = fork
        .sign_checkpoint(ORIGIN, &fx.signer, None)
        .expect("sign");
    let fork_prev = fx.prev.with_file_name("fork.checkpoint");
    std::fs::write(&fork_prev, &cp.note).expect("write");
    reject(
        &["-key", key, "-prev", s(&fork_prev), new],
        "not consistent with the earlier checkpoint",
        "forked earlier checkpoint",
    );
    // An earlier checkpoint signed by another key.
    let stranger = Signer::generate(ORIGIN).expect("key");
    let cp = fork.sign_checkpoint(ORIGIN, &stranger, None).expect("sign");
    std::fs::write(&fork_prev, &cp.note).expect("write");
    reject(
        &["-key", key, "-prev", s(&fork_prev), new],
        "earlier checkpoint",
        "earlier checkpoint by another key",
    );

    println!(
        "third-party Go verification: accepted and rejected as expected in {:.1?}",
        started.elapsed()
    );
}

/// Serves `dir` as SPEC §4's HTTP ledger API would, requiring a bearer
/// token. Bounded: stops when `stop` is set (the listener is
/// non-blocking).
fn serve(
    dir: PathBuf,
    token: &'static str,
    stop: Arc<AtomicBool>,
) -> (String, std::thread::JoinHandle<u32>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!(
        "http://{}/api/v1/ledger",
        listener.local_addr().expect("addr")
    );
    let handle = std::thread::spawn(move || {
        let mut served = 0u32;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((conn, _)) => {
                    if handle_conn(conn, &dir, token) {
                        served += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => break,
            }
        }
        served
    });
    (url, handle)
}

fn handle_conn(conn: TcpStream, dir: &Path, token: &str) -> bool {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return false;
    }
    let mut authorized = false;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("authorization")
                        && value.trim() == format!("Bearer {token}")
                    {
                        authorized = true;
                    }
                }
            }
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let rel = target.strip_prefix("/api/v1/ledger/").unwrap_or("");
    // proof/inclusion?index=I&size=N → proof/inclusion/I-N.json
    let file = match rel.split_once('?') {
        Some((kind @ ("proof/inclusion" | "proof/consistency"), q)) => {
            let vals: Vec<&str> = q
                .split('&')
                .filter_map(|kv| kv.split_once('=').map(|x| x.1))
                .collect();
            (vals.len() == 2).then(|| format!("{kind}/{}-{}.json", vals[0], vals[1]))
        }
        Some(_) => None,
        None if !rel.contains("..") && !rel.is_empty() => Some(rel.to_owned()),
        None => None,
    };
    let (status, body) = if !authorized {
        ("401 Unauthorized", b"missing bearer token".to_vec())
    } else {
        match file.and_then(|f| std::fs::read(dir.join(f)).ok()) {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"not found".to_vec()),
        }
    };
    let mut w = &conn;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes()).is_ok() && w.write_all(&body).is_ok()
}

#[test]
fn go_tlog_reads_the_http_form_with_a_bearer_token() {
    if !go_available("go_tlog_reads_the_http_form_with_a_bearer_token") {
        return;
    }
    verifier_binary();
    let fx = fixture();
    let stop = Arc::new(AtomicBool::new(false));
    let (url, handle) = serve(fx.new.clone(), "s3cret-token", stop.clone());
    let key = fx.key.as_str();
    let out = accept(&[
        "-key",
        key,
        "-token",
        "s3cret-token",
        "-prev",
        s(&fx.prev),
        "-inclusion",
        "2999",
        "-inclusion",
        "1234:2048",
        "-consistency",
        "1,256",
        "-consistency",
        "100:2048",
        &url,
    ]);
    assert!(
        out.contains("size 3000")
            && out.contains("2 inclusion and 3 consistency")
            && out.contains("extends earlier checkpoint of size 2345"),
        "{out}"
    );
    reject(&["-key", key, &url], "401", "no token");
    reject(
        &[
            "-key",
            key,
            "-token",
            "s3cret-token",
            "-inclusion",
            "7:2345",
            &url,
        ],
        "404",
        "a proof the server does not have",
    );
    tampered(&fx.new, "tile/0/002", flip(5), || {
        reject(
            &["-key", key, "-token", "s3cret-token", &url],
            "tile tile/0/002 does not match",
            "tampered tile over HTTP",
        )
    });
    stop.store(true, Ordering::Relaxed);
    let served = handle.join().expect("server thread");
    assert!(served > 10, "only {served} requests served");
}
