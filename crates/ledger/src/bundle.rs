//! Evidence bundles (K27.1.3 evidence preservation, K25.3): a set of
//! records pinned with their inclusion proofs against one signed
//! checkpoint, in one self-contained JSON file that anyone can check
//! offline. (Not to be confused with the C2SP *entry bundles* of
//! [`crate::tile`].)
//!
//! # Format (`mamori-evidence-bundle/1`)
//!
//! One UTF-8 JSON object with exactly these members (unknown members are
//! refused, so nothing unchecked can ride along looking authoritative):
//!
//! | member | type | meaning |
//! | --- | --- | --- |
//! | `format` | string | always `"mamori-evidence-bundle/1"` |
//! | `origin` | string | the log's origin, the first line of the checkpoint |
//! | `verifier_key` | string | the signed-note verifier key `<name>+<8 hex key id>+<base64(0x01 ‖ Ed25519 public key)>` |
//! | `checkpoint` | string | the signed note (c2sp.org/tlog-checkpoint): `<origin>\n<size>\n<base64 root>\n`, a blank line, then `— <name> <base64(key id ‖ signature)>\n` |
//! | `frozen_by` | string | who froze it, as records name people (`person:12`) |
//! | `frozen_by_login` | string | that person's login |
//! | `frozen_at` | string | when, RFC 3339 in Japan Standard Time |
//! | `reason` | string | why (required, free text) |
//! | `query` | object | the selection as asked (see the server's `ledger::bundle`) |
//! | `records` | array | at least one `{"index", "leaf", "inclusion_proof"}`, by index |
//! | `records[].index` | integer | the record's index in the log (from 0) |
//! | `records[].leaf` | string | standard base64 of the record's exact leaf bytes (the canonical encoding of [`crate::record`]) |
//! | `records[].inclusion_proof` | array of strings | standard base64 of each 32-byte hash of the RFC 9162 §2.1.3 inclusion proof of `index` in the tree of the checkpoint's size |
//!
//! The bundle itself is not signed: what is authenticated is each record,
//! by its proof up to a root the log's key signed. `frozen_by`, `reason`
//! and `query` are the freezer's statement; the freeze is also a record
//! (`ledger.freeze`) whose detail carries the reason, the count, the
//! checkpoint size and the [`records_digest`], so it too ends up in the log.
//!
//! # Checking it with any RFC 9162 verifier
//!
//! 1. Open `checkpoint` as a C2SP signed note with a key you trust (Go:
//!    `note.Open(msg, note.VerifierList(note.NewVerifier(key)))`); its text
//!    is `origin`, tree size `N` and the root hash `R` (base64), one a line.
//! 2. For each record, leaf hash = SHA-256(0x00 ‖ base64-decode(`leaf`))
//!    (RFC 9162 §2.1.1), then verify the inclusion proof of `index` in the
//!    tree of size `N` against `R` (RFC 9162 §2.1.3.2; Go:
//!    `tlog.CheckRecord(proof, N, R, index, tlog.RecordHash(leaf))`).
//!
//! [`verify_bundle`] does exactly this, and `mamori ledger verify-bundle`
//! runs it.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::hash::Hash;
use crate::note::Verifier;
use crate::proof::verify_inclusion;

/// The `format` member of this version.
pub const FORMAT: &str = "mamori-evidence-bundle/1";

/// An evidence bundle as it is written to and read from its file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub origin: String,
    pub verifier_key: String,
    pub checkpoint: String,
    pub frozen_by: String,
    pub frozen_by_login: String,
    pub frozen_at: String,
    pub reason: String,
    pub query: serde_json::Value,
    pub records: Vec<BundleRecord>,
}

/// One frozen record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleRecord {
    pub index: u64,
    /// Base64 of the exact leaf bytes.
    pub leaf: String,
    /// Base64 hashes of the inclusion proof.
    pub inclusion_proof: Vec<String>,
}

impl BundleRecord {
    pub fn new(index: u64, leaf: &[u8], proof: &[Hash]) -> BundleRecord {
        BundleRecord {
            index,
            leaf: B64.encode(leaf),
            inclusion_proof: proof.iter().map(Hash::to_base64).collect(),
        }
    }
}

impl Bundle {
    /// The file's text (pretty JSON, ending with a newline).
    pub fn to_json(&self) -> String {
        // Serialising plain strings, integers and a JSON value cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// SHA-256 over `index (8 bytes, big-endian) ‖ leaf hash` of each record in
/// bundle order: a short name for exactly this set of records, written in
/// the `ledger.freeze` record and printed by the verifier, so a bundle can
/// be matched with the record of its freezing.
pub fn records_digest(records: impl IntoIterator<Item = (u64, Hash)>) -> Hash {
    let mut h = Sha256::new();
    for (index, leaf) in records {
        h.update(index.to_be_bytes());
        h.update(leaf.0);
    }
    Hash(h.finalize().into())
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The file is not a bundle of this format (exit 2 in the CLI).
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The key given to check against is not a verifier key (exit 2).
    #[error("the key given to check against is malformed: {0}")]
    BadTrustedKey(String),
    /// The checkpoint's signature does not verify with the key used.
    #[error(
        "the checkpoint's signature does not verify with the {key_source} key {key}: {detail}"
    )]
    Signature {
        key: String,
        key_source: KeySource,
        detail: String,
    },
    /// The checkpoint is for another log than the bundle names.
    #[error("the checkpoint is for origin {found:?} but the bundle names {expected:?}")]
    Origin { expected: String, found: String },
    /// A record's leaf and proof do not lead to the checkpoint's root.
    #[error("record {index} (entry {position} of the bundle): {reason}")]
    Record {
        position: usize,
        index: u64,
        reason: String,
    },
}

impl BundleError {
    /// The file (or the key given) cannot be read, as opposed to read and
    /// found not to verify.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            BundleError::Malformed(_) | BundleError::BadTrustedKey(_)
        )
    }
}

/// Which key the checkpoint was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The key in the bundle: shows the bundle is intact and self-consistent,
    /// not that the log's owner signed it.
    Bundle,
    /// A key the user supplied and trusts.
    Trusted,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySource::Bundle => "bundled",
            KeySource::Trusted => "trusted",
        })
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
    /// The verifier key the checkpoint verified with.
    pub key: String,
    pub key_source: KeySource,
    /// With a trusted key: whether the bundle's own key is the same one.
    pub bundled_key_matches: bool,
    pub records: usize,
    pub first_index: u64,
    pub last_index: u64,
    pub records_digest: Hash,
    pub frozen_by: String,
    pub frozen_by_login: String,
    pub frozen_at: String,
    pub reason: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verified: {} records (indexes {}..={}) are in the log {} of size {}, root {}",
            self.records,
            self.first_index,
            self.last_index,
            self.origin,
            self.tree_size,
            self.root.to_base64()
        )?;
        match self.key_source {
            KeySource::Trusted => writeln!(
                f,
                "checkpoint signature: verified with the trusted key {}{}",
                self.key,
                if self.bundled_key_matches {
                    " (the bundle carries the same key)"
                } else {
                    " (the bundle carries a different key, not used)"
                }
            )?,
            KeySource::Bundle => writeln!(
                f,
                "checkpoint signature: verified with the key in the bundle {} \
                 (pass --key with a key you trust to check who signed it)",
                self.key
            )?,
        }
        writeln!(f, "records digest: {}", self.records_digest.to_hex())?;
        writeln!(
            f,
            "frozen by {} ({}) at {}",
            self.frozen_by_login, self.frozen_by, self.frozen_at
        )?;
        write!(f, "reason: {}", self.reason)
    }
}

fn malformed(msg: impl Into<String>) -> BundleError {
    BundleError::Malformed(msg.into())
}

/// Checks a bundle file offline: the checkpoint's signature with
/// `trusted_key` (or, without one, the key in the bundle), then every
/// record's inclusion proof against the checkpoint's root. Never panics.
///
/// Everything is decoded before anything is verified, so a malformed file
/// is always reported as such ([`BundleError::is_malformed`]); otherwise
/// the first failure is reported, the signature before the records.
pub fn verify_bundle(bytes: &[u8], trusted_key: Option<&str>) -> Result<Summary, BundleError> {
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if bundle.format != FORMAT {
        return Err(malformed(format!(
            "format is {:?}, expected {FORMAT:?}",
            bundle.format
        )));
    }
    if !bundle.query.is_object() {
        return Err(malformed("query must be a JSON object"));
    }
    if bundle.records.is_empty() {
        return Err(malformed("records is empty"));
    }
    let bundled = Verifier::parse(bundle.verifier_key.trim())
        .map_err(|e| malformed(format!("verifier_key: {e}")));
    let (verifier, source) = match trusted_key {
        Some(k) => (
            Verifier::parse(k.trim()).map_err(|e| BundleError::BadTrustedKey(e.to_string()))?,
            KeySource::Trusted,
        ),
        None => (bundled.clone()?, KeySource::Bundle),
    };
    // The checkpoint's text must parse before its signature is checked, so
    // that a garbled checkpoint is "malformed" and not "badly signed".
    let note = bundle.checkpoint.as_bytes();
    let text_end = bundle
        .checkpoint
        .rfind("\n\n")
        .ok_or_else(|| malformed("checkpoint: not a signed note (no signature block)"))?;
    Checkpoint::parse(&bundle.checkpoint[..text_end + 1])
        .map_err(|e| malformed(format!("checkpoint: {e}")))?;

    // Decode every record.
    let mut decoded = Vec::with_capacity(bundle.records.len());
    for (k, r) in bundle.records.iter().enumerate() {
        let leaf = B64
            .decode(&r.leaf)
            .map_err(|_| malformed(format!("records[{k}].leaf: not base64")))?;
        let proof = r
            .inclusion_proof
            .iter()
            .enumerate()
            .map(|(j, h)| {
                Hash::from_base64(h).ok_or_else(|| {
                    malformed(format!(
                        "records[{k}].inclusion_proof[{j}]: not base64 of 32 bytes"
                    ))
                })
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        decoded.push((r.index, Hash::leaf(&leaf), proof));
    }

    let key = verifier.to_key_string();
    let (cp, _) = crate::checkpoint::open_checkpoint(note, std::slice::from_ref(&verifier))
        .map_err(|e| BundleError::Signature {
            key: key.clone(),
            key_source: source,
            detail: e.to_string(),
        })?;
    if cp.origin != bundle.origin {
        return Err(BundleError::Origin {
            expected: bundle.origin,
            found: cp.origin,
        });
    }
    for (position, (index, leaf, proof)) in decoded.iter().enumerate() {
        let reason = if *index >= cp.size {
            Some(format!(
                "the index is beyond the checkpoint's tree of size {}",
                cp.size
            ))
        } else if !verify_inclusion(leaf, *index, cp.size, proof, &cp.root) {
            Some(
                "its leaf and inclusion proof do not lead to the checkpoint's root \
                 (the leaf or a proof hash was altered, or the record is not this one)"
                    .to_string(),
            )
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(BundleError::Record {
                position,
                index: *index,
                reason,
            });
        }
    }
    let indexes = decoded.iter().map(|(i, _, _)| *i);
    Ok(Summary {
        origin: cp.origin,
        tree_size: cp.size,
        root: cp.root,
        bundled_key_matches: bundled.is_ok_and(|b| b == verifier),
        key,
        key_source: source,
        records: decoded.len(),
        first_index: indexes.clone().min().unwrap_or(0),
        last_index: indexes.max().unwrap_or(0),
        records_digest: records_digest(decoded.iter().map(|(i, l, _)| (*i, *l))),
        frozen_by: bundle.frozen_by,
        frozen_by_login: bundle.frozen_by_login,
        frozen_at: bundle.frozen_at,
        reason: bundle.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Log, MemoryStore, Signer};

    const ORIGIN: &str = "mamori.test/ledger";

    /// A log of `n` records and a bundle of the records at `pick`.
    fn sample(n: u64, pick: &[u64]) -> (Bundle, Signer) {
        let signer = Signer::generate(ORIGIN).expect("key");
        let mut log = Log::open(MemoryStore::new()).expect("log");
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("record {i}").into_bytes()).collect();
        log.append(&entries).expect("append");
        let signed = log.sign_checkpoint(ORIGIN, &signer, None).expect("sign");
        let records = pick
            .iter()
            .map(|&i| {
                let leaf = log.read_entries(i, 1).expect("read")[0]
                    .clone()
                    .expect("entry");
                BundleRecord::new(i, &leaf, &log.inclusion_proof(i, n).expect("proof"))
            })
            .collect();
        let bundle = Bundle {
            format: FORMAT.into(),
            origin: ORIGIN.into(),
            verifier_key: signer.verifier().to_key_string(),
            checkpoint: signed.note,
            frozen_by: "person:1".into(),
            frozen_by_login: "tester".into(),
            frozen_at: "2026-11-29T10:00:00+09:00".into(),
            reason: "incident 1".into(),
            query: serde_json::json!({ "indexes": pick }),
            records,
        };
        (bundle, signer)
    }

    fn check(bundle: &Bundle, key: Option<&str>) -> Result<Summary, BundleError> {
        verify_bundle(bundle.to_json().as_bytes(), key)
    }

    #[test]
    fn k27_1_3_good_bundle_verifies() {
        for n in [1u64, 2, 7, 64, 100] {
            let pick: Vec<u64> = (0..n).step_by(3).collect();
            let (b, signer) = sample(n, &pick);
            let s = check(&b, None).expect("verifies");
            assert_eq!(s.records, pick.len());
            assert_eq!(s.tree_size, n);
            assert_eq!(s.key_source, KeySource::Bundle);
            let key = signer.verifier().to_key_string();
            let s = check(&b, Some(&key)).expect("verifies with the trusted key");
            assert_eq!(s.key_source, KeySource::Trusted);
            assert!(s.bundled_key_matches);
        }
    }

    #[test]
    fn k27_1_3_tampering_is_named() {
        let (good, _) = sample(20, &[3, 9, 17]);
        // A flipped bit in a leaf.
        let mut b = good.clone();
        let mut leaf = B64.decode(&b.records[1].leaf).unwrap();
        leaf[0] ^= 1;
        b.records[1].leaf = B64.encode(leaf);
        assert!(matches!(
            check(&b, None),
            Err(BundleError::Record {
                index: 9,
                position: 1,
                ..
            })
        ));
        // A flipped bit in a proof hash.
        let mut b = good.clone();
        let mut h = Hash::from_base64(&b.records[2].inclusion_proof[0]).unwrap();
        h.0[5] ^= 0x80;
        b.records[2].inclusion_proof[0] = h.to_base64();
        assert!(matches!(
            check(&b, None),
            Err(BundleError::Record { index: 17, .. })
        ));
        // Another index for the same leaf.
        let mut b = good.clone();
        b.records[0].index = 4;
        assert!(matches!(
            check(&b, None),
            Err(BundleError::Record { index: 4, .. })
        ));
        // Beyond the tree.
        let mut b = good.clone();
        b.records[0].index = 20;
        assert!(matches!(
            check(&b, None),
            Err(BundleError::Record { index: 20, .. })
        ));
        // Another key, in the bundle or given as trusted.
        let other = Signer::generate(ORIGIN).unwrap().verifier().to_key_string();
        let mut b = good.clone();
        b.verifier_key = other.clone();
        assert!(matches!(
            check(&b, None),
            Err(BundleError::Signature {
                key_source: KeySource::Bundle,
                ..
            })
        ));
        assert!(matches!(
            check(&good, Some(&other)),
            Err(BundleError::Signature {
                key_source: KeySource::Trusted,
                ..
            })
        ));
        // A flipped bit in the checkpoint's signature.
        let mut b = good.clone();
        let (text, sig) = b.checkpoint.rsplit_once(' ').unwrap();
        let mut raw = B64.decode(sig.trim_end()).unwrap();
        raw[10] ^= 1;
        b.checkpoint = format!("{text} {}\n", B64.encode(raw));
        assert!(matches!(
            check(&b, None),
            Err(BundleError::Signature { .. })
        ));
        // Another origin.
        let mut b = good.clone();
        b.origin = "elsewhere".into();
        assert!(matches!(check(&b, None), Err(BundleError::Origin { .. })));
    }

    #[test]
    fn malformed_files_are_malformed() {
        let (good, _) = sample(5, &[1]);
        let mut bad: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"not json".to_vec(),
            b"[]".to_vec(),
            b"{}".to_vec(),
            vec![0xff, 0xfe, 0x00],
        ];
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(&good.to_json()).unwrap();
            f(&mut v);
            v.to_string().into_bytes()
        };
        bad.push(edit(&|v| v["format"] = "other/1".into()));
        bad.push(edit(&|v| v["extra"] = true.into()));
        bad.push(edit(&|v| v["records"] = serde_json::json!([])));
        bad.push(edit(&|v| v["records"][0]["leaf"] = "***".into()));
        bad.push(edit(&|v| {
            v["records"][0]["inclusion_proof"][0] = "AAAA".into()
        }));
        bad.push(edit(&|v| v["records"][0]["index"] = (-1).into()));
        bad.push(edit(&|v| v["verifier_key"] = "nonsense".into()));
        bad.push(edit(&|v| v["checkpoint"] = "no signature\n".into()));
        bad.push(edit(&|v| v["query"] = "x".into()));
        for b in &bad {
            let e = verify_bundle(b, None).expect_err("must not verify");
            assert!(e.is_malformed(), "{e} for {:?}", String::from_utf8_lossy(b));
        }
        assert!(matches!(
            check(&good, Some("not a key")),
            Err(BundleError::BadTrustedKey(_))
        ));
    }

    #[test]
    fn digest_names_the_set() {
        let a = records_digest([(1, Hash::leaf(b"a")), (2, Hash::leaf(b"b"))]);
        let b = records_digest([(1, Hash::leaf(b"a")), (3, Hash::leaf(b"b"))]);
        assert_ne!(a, b);
    }
}
