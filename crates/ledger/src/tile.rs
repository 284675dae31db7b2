//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the log served as static
//! tiles of 256 hashes (tile height 8) and bundles of 256 entries.
//!
//! Paths are `tile/<L>/<N>[.p/<W>]` for hash tiles and
//! `tile/entries/<N>[.p/<W>]` for entry bundles, where `<N>` is written in
//! zero-padded 3-digit groups, all but the last prefixed with `x`
//! (`x001/x234/067`), and `<W>` (1..=255) marks a partial tile.
//! [`Tile::parse_path`] is fed raw URL paths: it accepts only the canonical
//! form and returns an error for anything else.
//!
//! The hash at position `i` of tile `(L, N)` is the stored hash at tree
//! level `8L`, index `256N + i` (see [`crate::tree::stored_hash_index`]).

use std::fmt::Write as _;
use std::ops::Range;

use crate::hash::{Hash, HASH_SIZE};
use crate::tree::{stored_hash_index, HashReader, TreeError, MAX_TREE_SIZE};

/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;
/// Largest entry an entry bundle can carry (its length is a uint16).
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// Highest tile level whose hashes fit a `u64` tree level (8 × 7 = 56).
const MAX_TILE_LEVEL: u8 = 7;
/// A path longer than this cannot be canonical (7 groups of `N` at most).
const MAX_PATH_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TileError {
    #[error("malformed tile path: {0}")]
    MalformedPath(&'static str),
    #[error("tile lies beyond the largest supported tree")]
    OutOfRange,
    #[error("tile width must be 1..=256, got {0}")]
    BadWidth(u32),
    #[error("tile level must be 0..=7, got {0}")]
    BadLevel(u64),
    #[error("entry bundles carry no hashes")]
    NotAHashTile,
    #[error("hash tiles carry no entries")]
    NotAnEntryBundle,
    #[error("expected {expected} bytes of tile data, got {got}")]
    WrongDataSize { expected: usize, got: usize },
    #[error("expected {expected} hashes, got {got}")]
    WrongHashCount { expected: usize, got: usize },
    #[error("entry {index} is {len} bytes, more than a bundle can hold")]
    EntryTooLarge { index: usize, len: usize },
    #[error("a bundle holds 1..=256 entries, got {0}")]
    BadEntryCount(usize),
    #[error("entry bundle is truncated at byte {0}")]
    TruncatedBundle(usize),
}

/// What a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Hashes at tile level `level` (tree level `8 * level`).
    Hashes { level: u8 },
    /// An entry bundle: the records themselves.
    Entries,
}

/// One tile or entry bundle. Always valid: constructed through
/// [`Tile::new`] or [`Tile::parse_path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tile {
    kind: TileKind,
    index: u64,
    width: u32,
}

impl Tile {
    /// A tile of `kind` at `index` within its level, holding `width`
    /// (1..=256; 256 = full) hashes or entries.
    pub fn new(kind: TileKind, index: u64, width: u32) -> Result<Tile, TileError> {
        if !(1..=TILE_WIDTH).contains(&width) {
            return Err(TileError::BadWidth(width));
        }
        let level = match kind {
            TileKind::Hashes { level } if level > MAX_TILE_LEVEL => {
                return Err(TileError::BadLevel(u64::from(level)))
            }
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        };
        // Refuse tiles reaching past MAX_TREE_SIZE so that every index
        // derived from a tile is computed without overflow.
        let end = index
            .checked_mul(u64::from(TILE_WIDTH))
            .and_then(|x| x.checked_add(u64::from(width)))
            .and_then(|x| x.checked_mul(1u64 << (TILE_HEIGHT * u32::from(level))))
            .ok_or(TileError::OutOfRange)?;
        if end > MAX_TREE_SIZE {
            return Err(TileError::OutOfRange);
        }
        Ok(Tile { kind, index, width })
    }

    pub fn kind(&self) -> TileKind {
        self.kind
    }

    /// `N`: the tile's position within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes (or entries) in the tile; 256 when full.
    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    fn tree_level(&self) -> u32 {
        match self.kind {
            TileKind::Hashes { level } => TILE_HEIGHT * u32::from(level),
            TileKind::Entries => 0,
        }
    }

    /// The records `[start, end)` covered by this tile's contents.
    pub fn record_range(&self) -> Range<u64> {
        let shift = self.tree_level();
        let first = self.index * u64::from(TILE_WIDTH);
        (first << shift)..((first + u64::from(self.width)) << shift)
    }

    /// Whether a tree of `size` records determines every hash (or entry) of
    /// this tile, so that it may be served.
    pub fn is_within(&self, size: u64) -> bool {
        let available = size >> self.tree_level();
        self.index * u64::from(TILE_WIDTH) + u64::from(self.width) <= available
    }

    /// The canonical path, `tile/<L>/<N>[.p/<W>]` or
    /// `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut s = String::with_capacity(40);
        s.push_str("tile/");
        match self.kind {
            TileKind::Hashes { level } => {
                let _ = write!(s, "{level}");
            }
            TileKind::Entries => s.push_str("entries"),
        }
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().rev().enumerate() {
            let prefix = if i + 1 < groups.len() { "x" } else { "" };
            let _ = write!(s, "/{prefix}{g:03}");
        }
        if self.is_partial() {
            let _ = write!(s, ".p/{}", self.width);
        }
        s
    }

    /// Parses a canonical tile path. Never panics; anything that
    /// [`Tile::path`] would not produce is an error.
    pub fn parse_path(path: &str) -> Result<Tile, TileError> {
        use TileError::MalformedPath as M;
        if path.len() > MAX_PATH_LEN {
            return Err(M("too long"));
        }
        let rest = path
            .strip_prefix("tile/")
            .ok_or(M("must start with tile/"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (first, mut rest) = parts.split_first().ok_or(M("missing level"))?;
        let kind = if *first == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(first).ok_or(M("level is not a canonical decimal"))?;
            if level > 63 {
                return Err(M("level must be 0..=63"));
            }
            let level = u8::try_from(level)
                .ok()
                .filter(|l| *l <= MAX_TILE_LEVEL)
                .ok_or(TileError::BadLevel(level))?;
            TileKind::Hashes { level }
        };

        let mut width = TILE_WIDTH;
        let last_group: &str;
        match rest {
            [groups @ .., before, w] if before.ends_with(".p") => {
                let w = parse_decimal(w).ok_or(M("width is not a canonical decimal"))?;
                if !(1..u64::from(TILE_WIDTH)).contains(&w) {
                    return Err(M("partial width must be 1..=255"));
                }
                width = w as u32;
                last_group = &before[..before.len() - 2];
                rest = groups;
            }
            [groups @ .., last] => {
                last_group = last;
                rest = groups;
            }
            [] => return Err(M("missing index")),
        }
        // `rest` now holds the x-prefixed groups, `last_group` the final one.
        if rest.len() > 6 {
            return Err(M("index too large"));
        }
        let mut n: u64 = 0;
        for (i, g) in rest.iter().enumerate() {
            let digits = g
                .strip_prefix('x')
                .ok_or(M("index group must start with x"))?;
            let v = parse_group(digits).ok_or(M("index group must be 3 digits"))?;
            if i == 0 && v == 0 {
                return Err(M("index has a leading zero group"));
            }
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(v))
                .ok_or(TileError::OutOfRange)?;
        }
        let v = parse_group(last_group).ok_or(M("last index group must be 3 digits"))?;
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(v))
            .ok_or(TileError::OutOfRange)?;
        Tile::new(kind, n, width)
    }
}

/// A decimal with no sign and no leading zero, at most 20 digits.
fn parse_decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    s.parse().ok()
}

fn parse_group(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

/// Tiles (at every level) that are new or grew when the tree went from
/// `old` to `new` records, as Go tlog's `NewTiles`: the set to (re)publish.
pub fn new_tiles(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    if old >= new || new > MAX_TREE_SIZE {
        return out;
    }
    let mut level = 0u8;
    while level <= MAX_TILE_LEVEL && new >> (TILE_HEIGHT * u32::from(level)) > 0 {
        let shift = TILE_HEIGHT * u32::from(level);
        let (old_n, new_n) = (old >> shift, new >> shift);
        if old_n != new_n {
            let kind = TileKind::Hashes { level };
            for n in (old_n >> TILE_HEIGHT)..(new_n >> TILE_HEIGHT) {
                if let Ok(t) = Tile::new(kind, n, TILE_WIDTH) {
                    out.push(t);
                }
            }
            let n = new_n >> TILE_HEIGHT;
            let w = (new_n & u64::from(TILE_WIDTH - 1)) as u32;
            if w > 0 {
                if let Ok(t) = Tile::new(kind, n, w) {
                    out.push(t);
                }
            }
        }
        level += 1;
    }
    out
}

/// Stored hashes making up a hash tile, in tile order.
pub fn tile_hash_indexes(tile: &Tile) -> Result<Vec<u64>, TileError> {
    if tile.kind == TileKind::Entries {
        return Err(TileError::NotAHashTile);
    }
    let level = tile.tree_level();
    let first = tile.index * u64::from(TILE_WIDTH);
    Ok((0..u64::from(tile.width))
        .map(|i| stored_hash_index(level, first + i))
        .collect())
}

/// Tile bytes (the hashes concatenated) from the hashes named by
/// [`tile_hash_indexes`].
pub fn tile_data_from_hashes(tile: &Tile, hashes: &[Hash]) -> Result<Vec<u8>, TileError> {
    if tile.kind == TileKind::Entries {
        return Err(TileError::NotAHashTile);
    }
    if hashes.len() != tile.width as usize {
        return Err(TileError::WrongHashCount {
            expected: tile.width as usize,
            got: hashes.len(),
        });
    }
    let mut out = Vec::with_capacity(hashes.len() * HASH_SIZE);
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
    Ok(out)
}

/// Reads a hash tile's bytes through `r` (one batch read).
pub fn read_tile_data<R: HashReader + ?Sized>(tile: &Tile, r: &R) -> Result<Vec<u8>, TreeError> {
    let idx = tile_hash_indexes(tile).map_err(|e| TreeError::Read(Box::new(e)))?;
    let hashes = r.read_hashes(&idx)?;
    tile_data_from_hashes(tile, &hashes).map_err(|e| TreeError::Read(Box::new(e)))
}

/// Splits fetched tile bytes back into hashes, checking the size.
pub fn parse_tile_data(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>, TileError> {
    if tile.kind == TileKind::Entries {
        return Err(TileError::NotAHashTile);
    }
    let expected = tile.width as usize * HASH_SIZE;
    if data.len() != expected {
        return Err(TileError::WrongDataSize {
            expected,
            got: data.len(),
        });
    }
    Ok(data
        .chunks_exact(HASH_SIZE)
        .filter_map(Hash::from_slice)
        .collect())
}

/// An entry bundle: each entry as a big-endian uint16 length followed by
/// its bytes. Entries are the exact leaf bytes, so each one hashes to the
/// matching hash of the level-0 tile.
pub fn entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    if entries.is_empty() || entries.len() > TILE_WIDTH as usize {
        return Err(TileError::BadEntryCount(entries.len()));
    }
    let total: usize = entries.iter().map(|e| 2 + e.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for (index, e) in entries.iter().enumerate() {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge {
            index,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits an entry bundle into its entries. Never panics.
pub fn parse_entry_bundle(data: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        if out.len() == TILE_WIDTH as usize {
            return Err(TileError::BadEntryCount(out.len() + 1));
        }
        let len_bytes = data.get(at..at + 2).ok_or(TileError::TruncatedBundle(at))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let entry = data
            .get(at + 2..at + 2 + len)
            .ok_or(TileError::TruncatedBundle(at))?;
        out.push(entry);
        at += 2 + len;
    }
    if out.is_empty() {
        return Err(TileError::BadEntryCount(0));
    }
    Ok(out)
}

/// Checks a fetched entry bundle against its tile: the entry count must be
/// the tile's width.
pub fn parse_entry_bundle_for<'a>(tile: &Tile, data: &'a [u8]) -> Result<Vec<&'a [u8]>, TileError> {
    if tile.kind != TileKind::Entries {
        return Err(TileError::NotAnEntryBundle);
    }
    let entries = parse_entry_bundle(data)?;
    if entries.len() != tile.width as usize {
        return Err(TileError::BadEntryCount(entries.len()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, want: Result<(TileKind, u64, u32), ()>) {
        let got = Tile::parse_path(path).map(|t| (t.kind(), t.index(), t.width()));
        match want {
            Ok(w) => {
                assert_eq!(got, Ok(w), "{path}");
                let t = Tile::parse_path(path).expect("parsed above");
                assert_eq!(t.path(), path);
            }
            Err(()) => assert!(got.is_err(), "{path} should be rejected, got {got:?}"),
        }
    }

    #[test]
    fn paths() {
        let h0 = TileKind::Hashes { level: 0 };
        let h1 = TileKind::Hashes { level: 1 };
        let e = TileKind::Entries;
        check("tile/0/000", Ok((h0, 0, 256)));
        check("tile/0/x001/x234/067", Ok((h0, 1_234_067, 256)));
        check("tile/1/x001/x234/067.p/8", Ok((h1, 1_234_067, 8)));
        check("tile/entries/x001/x234/067.p/255", Ok((e, 1_234_067, 255)));
        check("tile/entries/123", Ok((e, 123, 256)));
        check("tile/0/999", Ok((h0, 999, 256)));
        check("tile/0/x001/000", Ok((h0, 1000, 256)));
        for bad in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "tile/00/000",
            "tile/-0/000",
            "tile/+1/000",
            "tile/64/000",
            "tile/8/000",
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x001",
            "tile/0/x01/002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/08",
            "tile/0/000.p/",
            "tile/0/000.p",
            "tile/0/000.p/5/6",
            "tile/0/000/",
            "/tile/0/000",
            "tile//000",
            "tile/data/000",
            "tile/entries/000.p/5.p/5",
            "tile/0/x999/x999/x999/x999/x999/x999/999",
            "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
            "tile/0/٣٣٣",
            "tile/7/001",
        ] {
            check(bad, Err(()));
        }
    }

    #[test]
    fn tile_indexes_are_level_8l_hashes() {
        let t = Tile::new(TileKind::Hashes { level: 1 }, 2, 3).expect("valid");
        assert_eq!(
            tile_hash_indexes(&t).expect("hash tile"),
            vec![
                stored_hash_index(8, 512),
                stored_hash_index(8, 513),
                stored_hash_index(8, 514)
            ]
        );
        assert_eq!(t.record_range(), (512 << 8)..(515 << 8));
    }

    #[test]
    fn new_tiles_for_70000() {
        // The spec's example: 273 full level-0 tiles, a partial one of width
        // 112, one full level-1 tile, a partial of 17 and a level-2 tile of 1.
        let tiles = new_tiles(0, 70_000);
        let count = |l: u8, full: bool| {
            tiles
                .iter()
                .filter(|t| t.kind() == TileKind::Hashes { level: l } && t.is_partial() != full)
                .count()
        };
        assert_eq!(count(0, true), 273);
        assert_eq!(count(1, true), 1);
        let widths: Vec<u32> = tiles
            .iter()
            .filter(|t| t.is_partial())
            .map(Tile::width)
            .collect();
        assert_eq!(widths, vec![112, 17, 1]);
        for t in &tiles {
            assert!(t.is_within(70_000));
        }
    }

    #[test]
    fn bundles() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[7u8; 300]];
        let b = entry_bundle(&entries).expect("bundle");
        assert_eq!(&b[..5], &[0, 0, 0, 1, b'a']);
        assert_eq!(parse_entry_bundle(&b).expect("parse"), entries);
        assert!(parse_entry_bundle(&b[..b.len() - 1]).is_err());
        assert!(parse_entry_bundle(&[0]).is_err());
        assert!(parse_entry_bundle(&[]).is_err());
        let big = vec![0u8; 65536];
        assert!(entry_bundle(&[big]).is_err());
        let t = Tile::new(TileKind::Entries, 0, 3).expect("valid");
        assert_eq!(parse_entry_bundle_for(&t, &b).expect("3 entries").len(), 3);
        let t4 = Tile::new(TileKind::Entries, 0, 4).expect("valid");
        assert!(parse_entry_bundle_for(&t4, &b).is_err());
    }
}
