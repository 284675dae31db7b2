//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519, in the
//! key formats of Go's `golang.org/x/mod/sumdb/note`:
//!
//! - verifier key: `<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte seed)>`
//! - key id: the first 4 bytes (big-endian) of
//!   SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)
//!
//! A note is its text (ending in a newline), a blank line, then one line
//! per signature: `— <name> <base64(key id ‖ signature)>` (em dash U+2014).

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte for Ed25519 (signed-note §Signature types).
pub const ALG_ED25519: u8 = 0x01;
/// Notes with more signatures are refused, as Go does, so that a hostile
/// note cannot make us verify without end. The spec asks for at least 16.
pub const MAX_SIGNATURES: usize = 100;
/// Largest note accepted by [`open`].
pub const MAX_NOTE_SIZE: usize = 1 << 20;

const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    #[error("key id does not match key name and public key")]
    KeyIdMismatch,
    #[error("unknown signature algorithm {0:#04x}")]
    UnknownAlgorithm(u8),
    #[error("invalid key name (empty, or contains a space or '+')")]
    BadKeyName,
    #[error("note text must end with a newline and contain no control characters")]
    BadText,
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("more than one known key is {name}+{key_id:08x}")]
    AmbiguousKey { name: String, key_id: u32 },
    #[error("a note needs at least one signer")]
    NoSigners,
    #[error("note has no signature from a known key")]
    NoKnownSignature,
}

/// Key id of a key: the first 4 bytes, big-endian, of
/// SHA-256(name ‖ 0x0A ‖ alg ‖ public key).
pub fn key_id(name: &str, alg_and_public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg_and_public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Key names are non-empty and contain no Unicode space and no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn ed25519_key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut k = [0u8; 33];
    k[0] = ALG_ED25519;
    k[1..].copy_from_slice(public.as_bytes());
    key_id(name, &k)
}

/// Splits `s` at the first `+`.
fn chop(s: &str) -> (&str, &str) {
    s.split_once('+').unwrap_or((s, ""))
}

fn parse_key_id(hex: &str) -> Result<u32, NoteError> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::MalformedKey("key id must be 8 hex digits"));
    }
    u32::from_str_radix(hex, 16).map_err(|_| NoteError::MalformedKey("key id must be 8 hex digits"))
}

/// Decodes `base64(0x01 ‖ 32 bytes)`.
fn parse_ed25519_key(b64: &str) -> Result<[u8; 32], NoteError> {
    if b64.len() > 64 {
        return Err(NoteError::MalformedKey("key too long"));
    }
    let raw = B64
        .decode(b64)
        .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
    let (alg, key) = raw
        .split_first()
        .ok_or(NoteError::MalformedKey("empty key"))?;
    if *alg != ALG_ED25519 {
        return Err(NoteError::UnknownAlgorithm(*alg));
    }
    <[u8; 32]>::try_from(key).map_err(|_| NoteError::MalformedKey("Ed25519 key must be 32 bytes"))
}

/// An Ed25519 note signer (the server's checkpoint key).
pub struct Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl Signer {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<Signer, NoteError> {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        Signer::from_seed(name, &seed)
    }

    /// The key with Ed25519 seed (RFC 8032 private key) `seed`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Signer, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        let key = SigningKey::from_bytes(seed);
        Ok(Signer {
            name: name.to_owned(),
            key_id: ed25519_key_id(name, &key.verifying_key()),
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`; the id
    /// must match the derived public key.
    pub fn parse(skey: &str) -> Result<Signer, NoteError> {
        let (p1, rest) = chop(skey);
        let (p2, rest) = chop(rest);
        if p1 != "PRIVATE" || p2 != "KEY" {
            return Err(NoteError::MalformedKey("must start with PRIVATE+KEY+"));
        }
        let (name, rest) = chop(rest);
        let (hex, b64) = chop(rest);
        if !is_valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        let id = parse_key_id(hex)?;
        let seed = parse_ed25519_key(b64)?;
        let s = Signer::from_seed(name, &seed)?;
        if s.key_id != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(s)
    }

    /// The private key string accepted by [`Signer::parse`]. Secret.
    pub fn to_private_key_string(&self) -> String {
        let mut k = [0u8; 33];
        k[0] = ALG_ED25519;
        k[1..].copy_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            B64.encode(k)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching public verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Raw Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

impl fmt::Debug for Signer {
    // Never print the private key, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}+{:08x})", self.name, self.key_id)
    }
}

/// An Ed25519 note verifier (a public key with its name).
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// The verifier for Ed25519 public key `public_key` named `name`.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<Verifier, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        Ok(Verifier {
            name: name.to_owned(),
            key_id: ed25519_key_id(name, &key),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x01 ‖ public key)>`; the id must
    /// match.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let (name, rest) = chop(vkey);
        let (hex, b64) = chop(rest);
        if !is_valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        let id = parse_key_id(hex)?;
        let key = parse_ed25519_key(b64)?;
        let v = Verifier::new(name, &key)?;
        if v.key_id != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(v)
    }

    /// The verifier key string (served at `GET /api/v1/ledger/key`).
    pub fn to_key_string(&self) -> String {
        let mut k = [0u8; 33];
        k[0] = ALG_ED25519;
        k[1..].copy_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(k))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Checks a raw Ed25519 signature. Strict verification refuses
    /// malleable (non-canonical) signatures and small-order keys.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_string())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier({})", self.to_key_string())
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub key_id: u32,
    /// base64(key id ‖ signature), as on the line.
    pub base64: String,
}

/// An opened note: its text and signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signatures by known keys, all verified.
    pub verified: Vec<Signature>,
    /// Signatures by keys we do not know (ignored, kept for display).
    pub unverified: Vec<Signature>,
}

fn check_text(text: &str) -> bool {
    text.ends_with('\n') && !text.chars().any(|c| c < ' ' && c != '\n')
}

/// Signs `text` (which must end in a newline) with each signer and returns
/// the encoded note.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    if !check_text(text) {
        return Err(NoteError::BadText);
    }
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 120);
    out.push_str(text);
    out.push('\n');
    for s in signers {
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&s.key_id.to_be_bytes());
        raw.extend_from_slice(&s.sign(text.as_bytes()));
        out.push_str(SIG_PREFIX);
        out.push_str(&s.name);
        out.push(' ');
        out.push_str(&B64.encode(raw));
        out.push('\n');
    }
    Ok(out)
}

/// Opens a note, verifying signatures by the `known` keys.
///
/// Signatures by unknown keys are ignored (listed in
/// [`Note::unverified`]); a known key whose signature fails rejects the
/// whole note; at least one known signature is required.
pub fn open(msg: &[u8], known: &[Verifier]) -> Result<Note, NoteError> {
    use NoteError::Malformed as M;
    if msg.len() > MAX_NOTE_SIZE {
        return Err(M("too large"));
    }
    let msg = std::str::from_utf8(msg).map_err(|_| M("not UTF-8"))?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(M("control character"));
    }
    // The text is separated from the signatures by the last blank line.
    let split = msg.rfind("\n\n").ok_or(M("no signature block"))?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(M("signature block must end with a newline"));
    }

    let mut note = Note {
        text: text.to_owned(),
        verified: Vec::new(),
        unverified: Vec::new(),
    };
    let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(M("too many signatures"));
    }
    for line in lines {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(M("signature line must start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(M("signature line needs a name and a signature"))?;
        if !is_valid_key_name(name) || b64.is_empty() {
            return Err(M("bad signature line"));
        }
        let raw = B64.decode(b64).map_err(|_| M("signature is not base64"))?;
        if raw.len() < 5 {
            return Err(M("signature too short"));
        }
        let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let sig = Signature {
            name: name.to_owned(),
            key_id,
            base64: b64.to_owned(),
        };
        let mut matching = known
            .iter()
            .filter(|v| v.name == name && v.key_id == key_id);
        let Some(v) = matching.next() else {
            // Unknown key: ignored, but identical lines are kept once.
            if !note.unverified.contains(&sig) {
                note.unverified.push(sig);
            }
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: name.to_owned(),
                key_id,
            });
        }
        if note
            .verified
            .iter()
            .any(|s| s.name == name && s.key_id == key_id)
        {
            continue;
        }
        if !v.verify(text.as_bytes(), &raw[4..]) {
            return Err(NoteError::InvalidSignature {
                name: name.to_owned(),
                key_id,
            });
        }
        note.verified.push(sig);
    }
    if note.verified.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(note)
}
