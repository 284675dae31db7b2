//! RFC 9162 §2.1.1 hashing: the leaf and interior-node hashes of the Merkle
//! tree, with the 0x00 / 0x01 prefixes that keep a leaf from ever being
//! mistaken for a node (second-preimage resistance).

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Size in bytes of every hash in the tree.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash of a leaf, an interior node or a whole tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
    pub const EMPTY_TREE: Hash = Hash([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
        0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
        0xb8, 0x55,
    ]);

    /// Leaf hash: SHA-256(0x00 ‖ data).
    pub fn leaf(data: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(data);
        Hash(h.finalize().into())
    }

    /// Interior node hash: SHA-256(0x01 ‖ left ‖ right).
    pub fn node(left: &Hash, right: &Hash) -> Hash {
        let mut buf = [0u8; 1 + 2 * HASH_SIZE];
        buf[0] = 0x01;
        buf[1..33].copy_from_slice(&left.0);
        buf[33..].copy_from_slice(&right.0);
        Hash(Sha256::digest(buf).into())
    }

    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }

    /// Takes a hash from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_SIZE]>::try_from(bytes).ok().map(Hash)
    }

    /// Lower-case hexadecimal, as in test vectors and logs.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(2 * HASH_SIZE);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses 64 hexadecimal digits (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let b = s.as_bytes();
        if b.len() != 2 * HASH_SIZE {
            return None;
        }
        let mut out = [0u8; HASH_SIZE];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Hash(out))
    }

    /// Standard padded base64 (RFC 4648 §4), as used in checkpoints and the
    /// proof API.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Parses canonical standard base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Option<Hash> {
        // 32 bytes always encode to 44 characters; checking first bounds the
        // work done on hostile input.
        if s.len() != 44 {
            return None;
        }
        let v = B64.decode(s).ok()?;
        Hash::from_slice(&v)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_is_sha256_of_nothing() {
        assert_eq!(Hash(Sha256::digest(b"").into()), Hash::EMPTY_TREE);
    }

    #[test]
    fn hex_and_base64_round_trip() {
        let h = Hash::leaf(b"abc");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(Hash::from_base64(&h.to_base64()), Some(h));
        assert_eq!(Hash::from_hex("zz"), None);
        assert_eq!(Hash::from_base64("AAAA"), None);
        // Non-canonical trailing bits must not decode to the same hash.
        let mut b = h.to_base64().into_bytes();
        b[42] = if b[42] == b'A' { b'B' } else { b'A' };
        let s = String::from_utf8(b).unwrap_or_default();
        assert_ne!(Hash::from_base64(&s), Some(h));
    }
}
