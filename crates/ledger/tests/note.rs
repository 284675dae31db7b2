//! Signed notes and checkpoints, with the known answers of Go's
//! golang.org/x/mod/sumdb/note tests (Ed25519 signing is deterministic, so
//! our signature must equal Go's byte for byte).

use mamori_ledger::checkpoint::open_checkpoint;
use mamori_ledger::note::{self, key_id, NoteError};
use mamori_ledger::{Checkpoint, CheckpointError, Hash, Signer, Verifier};

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn key_id_known_value() {
    let v = Verifier::parse(PETER_VKEY).expect("Go's test key parses");
    assert_eq!(v.key_id(), 0xc74f20a3);
    let mut k = vec![0x01];
    k.extend_from_slice(v.public_key());
    assert_eq!(key_id("PeterNeumann", &k), 0xc74f20a3);
    assert_eq!(v.to_key_string(), PETER_VKEY);
    let s = Signer::parse(PETER_SKEY).expect("Go's signer key parses");
    assert_eq!(s.verifier(), v);
    assert_eq!(s.to_private_key_string(), PETER_SKEY);
    assert!(
        !format!("{s:?}").contains("AYEK"),
        "Debug must not leak the key"
    );
}

#[test]
fn mangled_keys_are_rejected() {
    for key in [PETER_VKEY, PETER_SKEY] {
        let parse = |k: &str| {
            if key.starts_with("PRIVATE") {
                Signer::parse(k).is_ok()
            } else {
                Verifier::parse(k).is_ok()
            }
        };
        assert!(parse(key));
        let b = key.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i == 0 && j == b.len() {
                    continue;
                }
                let sub = std::str::from_utf8(&b[i..j]).expect("ascii");
                assert!(!parse(sub), "substring {sub:?} accepted");
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(!parse(s), "mangled {s:?} accepted");
            }
        }
    }
    // Wrong key length with an adjusted id; unknown algorithm.
    assert!(Verifier::parse(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    )
    .is_err());
    assert!(matches!(
        Verifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::UnknownAlgorithm(_))
    ));
}

#[test]
fn signing_matches_go_byte_for_byte() {
    let s = Signer::parse(PETER_SKEY).expect("key");
    let msg = note::sign(TEXT, &[&s]).expect("sign");
    assert_eq!(msg, format!("{TEXT}\n{PETER_SIG}"));
    assert_eq!(note::sign("abc", &[&s]), Err(NoteError::BadText));
    assert_eq!(note::sign("a\tb\n", &[&s]), Err(NoteError::BadText));
}

#[test]
fn open_like_go() {
    let peter = Verifier::parse(PETER_VKEY).expect("key");
    let enoch = Verifier::parse(ENOCH_VKEY).expect("key");
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");

    // One known, one unknown signer.
    let n = note::open(both.as_bytes(), std::slice::from_ref(&peter)).expect("opens");
    assert_eq!(n.text, TEXT);
    assert_eq!(n.verified.len(), 1);
    assert_eq!(n.verified[0].key_id, 0xc74f20a3);
    assert_eq!(n.unverified.len(), 1);
    assert_eq!(n.unverified[0].name, "EnochRoot");

    // Both known.
    let n = note::open(both.as_bytes(), &[peter.clone(), enoch.clone()]).expect("opens");
    assert_eq!(n.verified.len(), 2);

    // None known.
    assert_eq!(
        note::open(both.as_bytes(), &[]),
        Err(NoteError::NoKnownSignature)
    );

    // Duplicated verifier in use.
    let only_enoch = format!("{TEXT}\n{ENOCH_SIG}");
    assert!(matches!(
        note::open(
            only_enoch.as_bytes(),
            &[enoch.clone(), peter.clone(), enoch.clone()]
        ),
        Err(NoteError::AmbiguousKey { .. })
    ));
    // Duplicated verifier not in use.
    let only_peter = format!("{TEXT}\n{PETER_SIG}");
    assert!(note::open(
        only_peter.as_bytes(),
        &[enoch.clone(), peter.clone(), enoch.clone()]
    )
    .is_ok());

    // Too many signatures.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert!(matches!(
        note::open(many.as_bytes(), std::slice::from_ref(&peter)),
        Err(NoteError::Malformed(_))
    ));

    // Invalid signature from a known key.
    let (a, b) = PETER_SIG.split_at(60);
    let bad = format!("{TEXT}\n{a}ABCD{b}");
    assert!(matches!(
        note::open(bad.as_bytes(), std::slice::from_ref(&peter)),
        Err(NoteError::InvalidSignature { .. })
    ));

    // Malformed encodings.
    for m in [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ] {
        assert!(matches!(note::open(m.as_bytes(), std::slice::from_ref(&peter)), Err(NoteError::Malformed(_))), "{m:?}");
    }
    let mut invalid_utf8 = format!("{TEXT}\n{PETER_SIG}").into_bytes();
    invalid_utf8.insert(0, 0xff);
    assert!(matches!(
        note::open(&invalid_utf8, &[peter]),
        Err(NoteError::Malformed(_))
    ));
}

#[test]
fn tampered_text_or_signature_is_rejected() {
    let s = Signer::generate("mamori.example/ledger").expect("key");
    let v = s.verifier();
    let msg = note::sign(TEXT, &[&s]).expect("sign");
    assert!(note::open(msg.as_bytes(), std::slice::from_ref(&v)).is_ok());
    // Flip every bit of the text, then every byte of the signature line.
    let bytes = msg.as_bytes();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x20] {
            let mut m = bytes.to_vec();
            m[i] ^= bit;
            assert!(
                note::open(&m, std::slice::from_ref(&v)).is_err(),
                "flip at {i} accepted"
            );
        }
    }
}

#[test]
fn checkpoint_round_trip_and_tamper() {
    let s = Signer::generate("example.com/ward").expect("key");
    let other = Signer::generate("example.com/witness").expect("key");
    let cp = Checkpoint::new("example.com/ward", 12345, Hash::leaf(b"root"));
    let msg = cp.sign(&[&s, &other]).expect("sign");
    // Only the log's key is known: the witness signature is ignored.
    let (back, note) = open_checkpoint(msg.as_bytes(), &[s.verifier()]).expect("opens");
    assert_eq!(back, cp);
    assert_eq!(note.unverified.len(), 1);

    let tampered = msg.replacen("12345", "12346", 1);
    assert!(matches!(
        open_checkpoint(tampered.as_bytes(), &[s.verifier()]),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
    // A note that is validly signed but not a checkpoint.
    let not_cp = note::sign("hello\n", &[&s]).expect("sign");
    assert!(matches!(
        open_checkpoint(not_cp.as_bytes(), &[s.verifier()]),
        Err(CheckpointError::Malformed(_))
    ));
    // Only the witness key known: fine (at least one known signature).
    assert!(open_checkpoint(msg.as_bytes(), &[other.verifier()]).is_ok());
    // A stranger's key: refused.
    let stranger = Signer::generate("example.com/ward").expect("key");
    assert!(open_checkpoint(msg.as_bytes(), &[stranger.verifier()]).is_err());
}
