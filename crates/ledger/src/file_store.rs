//! [`FileStore`]: the embedded default store, four files in one directory.
//!
//! - `entries.bin`: the entries, concatenated, append-only.
//! - `offsets.bin`: for record `i`, the end offset of its entry in
//!   `entries.bin` (u64 little-endian), so record `i` spans
//!   `offsets[i-1]..offsets[i]`.
//! - `hashes.bin`: the stored hashes (32 bytes each) in the order of
//!   [`crate::tree::stored_hash_index`].
//! - `commit.bin`: two 64-byte slots, each `magic ‖ generation ‖ size ‖
//!   entries length ‖ SHA-256 of those 32 bytes`; the valid slot with the
//!   highest generation is the committed state.
//!
//! Durability protocol for one batch:
//! 1. write the batch's entries, offsets and hashes past the committed ends;
//! 2. `fdatasync` the three data files (one sync each per batch, issued
//!    in parallel);
//! 3. write the next generation into the *other* commit slot and
//!    `fdatasync` it. The batch is acknowledged only after this.
//!
//! A crash before step 3 completes leaves the previous slot intact (a torn
//! slot fails its checksum), so the committed size is the old one; on open,
//! anything past the committed ends of the data files (a torn write after
//! `kill -9`) is truncated away. Files *shorter* than the commit says mean
//! data was deleted behind our back: the store still opens, for
//! verification, but refuses appends.
//!
//! One `FileStore` should open a directory at a time (opening truncates
//! what is not yet committed, which would cut a concurrent writer's batch);
//! readers beside the writer use [`FileStore::snapshot`].
//!
//! # Pruning (retention, K16.2.1)
//!
//! After its retention period a record's *content* may be removed while its
//! leaf hash stays in `hashes.bin`, so the tree, every checkpoint and every
//! inclusion or consistency proof stay valid ([`FileStore::prune`]). Two
//! more files:
//!
//! - `pruned.bin`: a bitmap, bit `i % 8` of byte `i / 8` set when record `i`
//!   is pruned (created at the first prune). A pruned record reads as
//!   `None`; full verification then uses its stored leaf hash.
//! - `prune.pending`: the journal of the prune in progress, `magic ‖ count ‖
//!   indexes (u64 LE each) ‖ SHA-256 of the preceding bytes`; empty when
//!   no prune is in progress.
//!
//! Crash-safe order of one prune: (1) write the journal and `fdatasync` it;
//! (2) set the records' bits in the bitmap and `fdatasync` it; (3)
//! overwrite the records' bytes in `entries.bin` with zeros and
//! `fdatasync` it; (4) empty the journal. Marking before zeroing means that
//! at every instant a record is either unmarked with its original bytes
//! (verifies by its content) or marked (verifies by its stored hash): a
//! crash never leaves a zeroed but unmarked record, which would fail
//! verification. A crash after (1) leaves the journal: [`FileStore::open`]
//! finishes that prune (steps 2 to 4 are idempotent); a torn journal (bad
//! checksum) means the crash came before (2), and it is discarded. Readers
//! read a span's bytes *before* its bits, so a reader beside a prune sees a
//! zeroed record only together with its mark.
//!
//! Tampering stays evident: clearing a mark of a zeroed record makes the
//! zeros the record's content, which does not hash to its leaf (a
//! `LeafMismatch` at that record). What a bitmap cannot tell is a record
//! pruned by someone with write access to the files; the server lists every
//! index it prunes in a `ledger.prune` record, against which the bitmap
//! can be checked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::hash::{Hash, HASH_SIZE};
use crate::store::{check_append, check_range, EntryBatch, Store, StoreError};
use crate::tile::MAX_ENTRY_SIZE;
use crate::tree::{stored_hash_count, HashReader, TreeError};

const ENTRIES: &str = "entries.bin";
const OFFSETS: &str = "offsets.bin";
const HASHES: &str = "hashes.bin";
const COMMIT: &str = "commit.bin";
const PRUNED: &str = "pruned.bin";
const PENDING: &str = "prune.pending";
const MAGIC: [u8; 8] = *b"MAMORI\x00\x01";
const PENDING_MAGIC: [u8; 8] = *b"MAMORIP\x01";
/// Zeros are written in pieces of at most this many bytes.
const ZERO_CHUNK: u64 = 1 << 20;
const SLOT: usize = 64;
/// Hashes this close together are fetched in one read: a proof's
/// lower-level siblings sit next to each other in the stored order.
const COALESCE_GAP: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Commit {
    generation: u64,
    size: u64,
    entries_len: u64,
}

impl Commit {
    fn encode(&self) -> [u8; SLOT] {
        let mut s = [0u8; SLOT];
        s[0..8].copy_from_slice(&MAGIC);
        s[8..16].copy_from_slice(&self.generation.to_le_bytes());
        s[16..24].copy_from_slice(&self.size.to_le_bytes());
        s[24..32].copy_from_slice(&self.entries_len.to_le_bytes());
        let sum = Sha256::digest(&s[..32]);
        s[32..].copy_from_slice(&sum);
        s
    }

    fn decode(s: &[u8]) -> Option<Commit> {
        if s.len() != SLOT || s[0..8] != MAGIC || Sha256::digest(&s[..32])[..] != s[32..] {
            return None;
        }
        let u = |r: std::ops::Range<usize>| {
            s.get(r)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        Some(Commit {
            generation: u(8..16)?,
            size: u(16..24)?,
            entries_len: u(24..32)?,
        })
    }
}

/// The file-backed store. See the module documentation for the layout and
/// the durability protocol.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    entries: File,
    offsets: File,
    hashes: File,
    commit: File,
    state: Commit,
    damage: Option<String>,
    poisoned: bool,
    read_only: bool,
    /// `pruned.bin`, once it exists (read-only handles open it lazily: a
    /// writer beside them may create it later).
    pruned: OnceLock<File>,
    /// Serialises prunes ([`FileStore::prune`] takes `&self`).
    prune_lock: Mutex<()>,
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Reads into `buf` from `offset` until full or end of file; returns the
/// number of bytes read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl FileStore {
    /// Opens the store in `dir`, creating it if empty, and truncates any
    /// uncommitted tail left by a crash.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let entries = open_rw(&dir.join(ENTRIES))?;
        let offsets = open_rw(&dir.join(OFFSETS))?;
        let hashes = open_rw(&dir.join(HASHES))?;
        let commit = open_rw(&dir.join(COMMIT))?;

        let state = if commit.metadata()?.len() == 0 {
            for f in [&entries, &offsets, &hashes] {
                if f.metadata()?.len() != 0 {
                    return Err(StoreError::Corrupt(
                        "data files exist but the commit record is empty".into(),
                    ));
                }
            }
            let zero = Commit {
                generation: 0,
                size: 0,
                entries_len: 0,
            };
            let mut both = [0u8; 2 * SLOT];
            both[..SLOT].copy_from_slice(&zero.encode());
            both[SLOT..].copy_from_slice(&zero.encode());
            commit.write_all_at(&both, 0)?;
            commit.sync_all()?;
            // The new files' directory entries must be durable too.
            File::open(&dir)?.sync_all()?;
            zero
        } else {
            let mut both = [0u8; 2 * SLOT];
            let got = read_at_most(&commit, &mut both, 0)?;
            let slots = [
                Commit::decode(&both[..SLOT.min(got)]),
                Commit::decode(&both[SLOT..got.max(SLOT)]),
            ];
            slots
                .into_iter()
                .flatten()
                .max_by_key(|c| c.generation)
                .ok_or_else(|| StoreError::Corrupt("no valid commit slot".into()))?
        };

        let mut store = FileStore {
            dir,
            entries,
            offsets,
            hashes,
            commit,
            state,
            damage: None,
            poisoned: false,
            read_only: false,
            pruned: OnceLock::new(),
            prune_lock: Mutex::new(()),
        };
        store.recover(true)?;
        match OpenOptions::new()
            .read(true)
            .write(true)
            .open(store.dir.join(PRUNED))
        {
            Ok(f) => {
                let _ = store.pruned.set(f);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if store.damage.is_none() {
            store.finish_pending_prune()?;
        }
        Ok(store)
    }

    /// Opens an existing store read-only, beside a writer that may be
    /// running: nothing is created or truncated, and only what is committed
    /// is seen (for `mamori ledger verify` while the server runs).
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let ro = |name: &str| File::open(dir.join(name));
        let (entries, offsets, hashes, commit) =
            (ro(ENTRIES)?, ro(OFFSETS)?, ro(HASHES)?, ro(COMMIT)?);
        let mut both = [0u8; 2 * SLOT];
        let got = read_at_most(&commit, &mut both, 0)?;
        let slots = [
            Commit::decode(&both[..SLOT.min(got)]),
            Commit::decode(&both[SLOT..got.max(SLOT)]),
        ];
        let state = slots
            .into_iter()
            .flatten()
            .max_by_key(|c| c.generation)
            .ok_or_else(|| StoreError::Corrupt("no valid commit slot".into()))?;
        let mut store = FileStore {
            dir,
            entries,
            offsets,
            hashes,
            commit,
            state,
            damage: None,
            poisoned: false,
            read_only: true,
            pruned: OnceLock::new(),
            prune_lock: Mutex::new(()),
        };
        store.recover(false)?;
        Ok(store)
    }

    /// Cuts each data file back to its committed length (when `truncate`),
    /// and notes (without repairing) any file that is shorter than committed.
    fn recover(&mut self, truncate: bool) -> Result<(), StoreError> {
        let want = [
            (&self.entries, self.state.entries_len, ENTRIES),
            (&self.offsets, self.state.size * 8, OFFSETS),
            (
                &self.hashes,
                stored_hash_count(self.state.size) * HASH_SIZE as u64,
                HASHES,
            ),
        ];
        let mut damage = Vec::new();
        for (file, len, name) in want {
            let actual = file.metadata()?.len();
            if actual > len {
                if truncate {
                    file.set_len(len)?;
                    file.sync_all()?;
                }
            } else if actual < len {
                damage.push(format!("{name} is {actual} bytes, committed {len}"));
            }
        }
        if damage.is_empty() && self.state.size > 0 {
            let mut last = [0u8; 8];
            let got = read_at_most(&self.offsets, &mut last, (self.state.size - 1) * 8)?;
            if got != 8 || u64::from_le_bytes(last) != self.state.entries_len {
                damage.push("last offset does not match the committed entries length".into());
            }
        }
        if !damage.is_empty() {
            self.damage = Some(damage.join("; "));
        }
        Ok(())
    }

    /// A read-only handle on the records committed so far, for readers
    /// that run beside the writer (a periodic full verification, proof
    /// serving). Safe because committed bytes are never rewritten except
    /// by a prune, which marks a record before it zeroes it (and readers
    /// read the bytes before the marks); the snapshot does not see later
    /// appends, but does see later prunes.
    pub fn snapshot(&self) -> Result<FileStore, StoreError> {
        let pruned = OnceLock::new();
        if let Some(f) = self.pruned.get() {
            let _ = pruned.set(f.try_clone()?);
        }
        Ok(FileStore {
            dir: self.dir.clone(),
            entries: self.entries.try_clone()?,
            offsets: self.offsets.try_clone()?,
            hashes: self.hashes.try_clone()?,
            commit: self.commit.try_clone()?,
            state: self.state,
            damage: self.damage.clone(),
            poisoned: self.poisoned,
            read_only: true,
            pruned,
            prune_lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was found wrong at open, if anything (then appends are refused;
    /// run a full verification to find the first bad record).
    pub fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    fn write_batch(&mut self, entries: &[&[u8]], hashes: &[Hash]) -> io::Result<Commit> {
        let s = self.state;
        let total: usize = entries.iter().map(|e| e.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut offs = Vec::with_capacity(entries.len() * 8);
        let mut end = s.entries_len;
        for e in entries {
            data.extend_from_slice(e);
            end += e.len() as u64;
            offs.extend_from_slice(&end.to_le_bytes());
        }
        let mut hbuf = Vec::with_capacity(hashes.len() * HASH_SIZE);
        for h in hashes {
            hbuf.extend_from_slice(&h.0);
        }
        self.entries.write_all_at(&data, s.entries_len)?;
        self.offsets.write_all_at(&offs, s.size * 8)?;
        self.hashes
            .write_all_at(&hbuf, stored_hash_count(s.size) * HASH_SIZE as u64)?;
        // Each fdatasync waits for a device cache flush (about 3 ms on the
        // reference VM); issued together, the three share most of that wait.
        let (a, b, c) = std::thread::scope(|s| {
            let offsets = s.spawn(|| self.offsets.sync_data());
            let hashes = s.spawn(|| self.hashes.sync_data());
            let entries = self.entries.sync_data();
            let join = |h: std::thread::ScopedJoinHandle<'_, io::Result<()>>| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("sync thread panicked")))
            };
            (entries, join(offsets), join(hashes))
        });
        a?;
        b?;
        c?;
        let next = Commit {
            generation: s.generation + 1,
            size: s.size + entries.len() as u64,
            entries_len: end,
        };
        let slot = (next.generation % 2) * SLOT as u64;
        self.commit.write_all_at(&next.encode(), slot)?;
        self.commit.sync_data()?;
        Ok(next)
    }

    /// Reads `count` end offsets of records `start..`, plus the start
    /// offset of `start`.
    fn read_offsets(&self, start: u64, count: u64) -> Result<Vec<u64>, StoreError> {
        let (from, n) = if start == 0 {
            (0, count)
        } else {
            (start - 1, count + 1)
        };
        let mut buf = vec![0u8; n as usize * 8];
        let got = read_at_most(&self.offsets, &mut buf, from * 8)?;
        if got < buf.len() {
            return Err(StoreError::Damaged {
                index: from + (got / 8) as u64,
                what: "offset missing".into(),
            });
        }
        let mut out = Vec::with_capacity(count as usize + 1);
        if start == 0 {
            out.push(0);
        }
        out.extend(buf.chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        }));
        Ok(out)
    }
}

/// `indexes` (sorted, distinct) as runs of consecutive indexes.
fn runs(indexes: &[u64]) -> Vec<std::ops::Range<u64>> {
    let mut out: Vec<std::ops::Range<u64>> = Vec::new();
    for &i in indexes {
        match out.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

fn encode_pending(indexes: &[u64]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + indexes.len() * 8 + 32);
    b.extend_from_slice(&PENDING_MAGIC);
    b.extend_from_slice(&(indexes.len() as u64).to_le_bytes());
    for i in indexes {
        b.extend_from_slice(&i.to_le_bytes());
    }
    let sum = Sha256::digest(&b);
    b.extend_from_slice(&sum);
    b
}

/// The indexes of a complete journal; `None` if it is torn or not one.
fn decode_pending(b: &[u8]) -> Option<Vec<u64>> {
    let body_len = b.len().checked_sub(32)?;
    let (body, sum) = b.split_at(body_len);
    if body.len() < 16 || body[..8] != PENDING_MAGIC || Sha256::digest(body)[..] != *sum {
        return None;
    }
    let n = u64::from_le_bytes(body[8..16].try_into().ok()?);
    let rest = &body[16..];
    if rest.len() as u64 != n.checked_mul(8)? {
        return None;
    }
    Some(
        rest.chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
            .collect(),
    )
}

impl FileStore {
    /// Removes the content of committed records `indexes` for good, keeping
    /// their stored hashes: the tree, old checkpoints and all proofs still
    /// verify, and [`Store::read_entries`] answers `None` for them (see
    /// "Pruning" in the module documentation for the crash-safe order).
    /// Returns how many records were newly pruned (already pruned ones are
    /// skipped). Durable when it returns `Ok`.
    ///
    /// Takes `&self` so that it can be called through [`crate::Log::store`];
    /// prunes are serialised internally, and callers keep it apart from
    /// appends the way they serialise appends (the server holds the log's
    /// write lock). Refused on read-only handles and on a damaged store.
    pub fn prune(&self, indexes: &[u64]) -> Result<u64, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if let Some(d) = &self.damage {
            return Err(StoreError::NotAppendable(d.clone()));
        }
        let _guard = self
            .prune_lock
            .lock()
            .map_err(|_| StoreError::Corrupt("prune lock poisoned".into()))?;
        // An earlier prune of this process that failed half-way is
        // finished first.
        self.finish_pending_locked()?;
        let mut wanted = indexes.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let (Some(&lo), Some(&hi)) = (wanted.first(), wanted.last()) else {
            return Ok(0);
        };
        check_range(hi, 1, self.state.size)?;
        let marks = self.read_marks(lo, hi - lo + 1)?;
        let fresh: Vec<u64> = wanted
            .into_iter()
            .filter(|&i| !marks[(i - lo) as usize])
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        self.write_pending(&fresh)?;
        self.apply_prune(&fresh)?;
        self.clear_pending()?;
        Ok(fresh.len() as u64)
    }

    /// Prunes records `range` (see [`FileStore::prune`]).
    pub fn prune_range(&self, range: std::ops::Range<u64>) -> Result<u64, StoreError> {
        let all: Vec<u64> = range.collect();
        self.prune(&all)
    }

    /// Whether record `index` has been pruned.
    pub fn is_pruned(&self, index: u64) -> Result<bool, StoreError> {
        check_range(index, 1, self.state.size)?;
        Ok(self.read_marks(index, 1)?[0])
    }

    /// Every committed record marked pruned, ascending (one read of the
    /// bitmap), so a verifier can check each mark against the record of
    /// the prune that set it.
    pub fn pruned_indexes(&self) -> Result<Vec<u64>, StoreError> {
        let size = self.state.size;
        let Some(bitmap) = self.bitmap()? else {
            return Ok(Vec::new());
        };
        let mut buf = vec![0u8; size.div_ceil(8) as usize];
        read_at_most(bitmap, &mut buf, 0)?;
        let mut out = Vec::new();
        for (b, &byte) in buf.iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8 {
                let i = b as u64 * 8 + bit;
                if byte & (1 << bit) != 0 && i < size {
                    out.push(i);
                }
            }
        }
        Ok(out)
    }

    /// The bitmap, if it exists. Read-only handles look for it again each
    /// time until it appears (a writer beside them creates it at its first
    /// prune); the writer knows it exists only if it opened or created it.
    fn bitmap(&self) -> Result<Option<&File>, StoreError> {
        if let Some(f) = self.pruned.get() {
            return Ok(Some(f));
        }
        if !self.read_only {
            return Ok(None);
        }
        match File::open(self.dir.join(PRUNED)) {
            Ok(f) => {
                let _ = self.pruned.set(f);
                Ok(self.pruned.get())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether each of records `start..start + count` is marked pruned.
    fn read_marks(&self, start: u64, count: u64) -> Result<Vec<bool>, StoreError> {
        let mut out = vec![false; count as usize];
        let Some(bitmap) = self.bitmap()? else {
            return Ok(out);
        };
        if count == 0 {
            return Ok(out);
        }
        let (b0, b1) = (start / 8, (start + count - 1) / 8);
        let mut buf = vec![0u8; (b1 - b0 + 1) as usize];
        // A short read leaves zeros: nothing past the bitmap is pruned.
        read_at_most(bitmap, &mut buf, b0)?;
        for (k, m) in out.iter_mut().enumerate() {
            let i = start + k as u64;
            *m = buf[(i / 8 - b0) as usize] & (1 << (i % 8)) != 0;
        }
        Ok(out)
    }

    /// Journal step (1): durably lists the records about to be pruned.
    fn write_pending(&self, indexes: &[u64]) -> Result<(), StoreError> {
        let path = self.dir.join(PENDING);
        let existed = path.exists();
        let f = open_rw(&path)?;
        let bytes = encode_pending(indexes);
        f.set_len(0)?;
        f.write_all_at(&bytes, 0)?;
        f.sync_data()?;
        if !existed {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Journal step (4). Not synced: a journal that comes back after a
    /// crash only repeats a finished prune, which changes nothing.
    fn clear_pending(&self) -> Result<(), StoreError> {
        match OpenOptions::new().write(true).open(self.dir.join(PENDING)) {
            Ok(f) => Ok(f.set_len(0)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Finishes a prune interrupted by a crash (called by `open`).
    fn finish_pending_prune(&self) -> Result<(), StoreError> {
        let _guard = self
            .prune_lock
            .lock()
            .map_err(|_| StoreError::Corrupt("prune lock poisoned".into()))?;
        self.finish_pending_locked()
    }

    fn finish_pending_locked(&self) -> Result<(), StoreError> {
        let bytes = match std::fs::read(self.dir.join(PENDING)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(mut indexes) = decode_pending(&bytes) {
            // Only committed records can have been listed; anything else
            // is ignored rather than trusted.
            indexes.retain(|&i| i < self.state.size);
            indexes.sort_unstable();
            indexes.dedup();
            if !indexes.is_empty() {
                self.apply_prune(&indexes)?;
            }
        }
        // A torn journal: the crash came before any mark was set.
        self.clear_pending()
    }

    /// Steps (2) and (3): mark, sync, zero, sync. Idempotent.
    fn apply_prune(&self, indexes: &[u64]) -> Result<(), StoreError> {
        let (Some(&lo), Some(&hi)) = (indexes.first(), indexes.last()) else {
            return Ok(());
        };
        let bitmap = match self.pruned.get() {
            Some(f) => f,
            None => {
                let f = open_rw(&self.dir.join(PRUNED))?;
                // The new file's directory entry must be durable before
                // any record relies on its marks.
                f.sync_all()?;
                File::open(&self.dir)?.sync_all()?;
                let _ = self.pruned.set(f);
                self.pruned
                    .get()
                    .ok_or_else(|| StoreError::Corrupt("pruned.bin not open".into()))?
            }
        };
        let (b0, b1) = (lo / 8, hi / 8);
        let mut buf = vec![0u8; (b1 - b0 + 1) as usize];
        read_at_most(bitmap, &mut buf, b0)?;
        for &i in indexes {
            buf[(i / 8 - b0) as usize] |= 1 << (i % 8);
        }
        bitmap.write_all_at(&buf, b0)?;
        bitmap.sync_data()?;

        let zeros = vec![0u8; ZERO_CHUNK as usize];
        for run in runs(indexes) {
            let offs = self.read_offsets(run.start, run.end - run.start)?;
            for (k, w) in offs.windows(2).enumerate() {
                if w[1] < w[0] || w[1] > self.state.entries_len {
                    return Err(StoreError::Damaged {
                        index: run.start + k as u64,
                        what: "offset out of order".into(),
                    });
                }
            }
            let (mut at, end) = (offs[0], offs[offs.len() - 1]);
            while at < end {
                let n = (end - at).min(ZERO_CHUNK);
                self.entries.write_all_at(&zeros[..n as usize], at)?;
                at += n;
            }
        }
        self.entries.sync_data()?;
        Ok(())
    }
}

impl HashReader for FileStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        let count = stored_hash_count(self.state.size);
        let mut order: Vec<usize> = (0..indexes.len()).collect();
        order.sort_unstable_by_key(|&i| indexes[i]);
        if let Some(&i) = order.last() {
            if indexes[i] >= count {
                return Err(TreeError::MissingHash(indexes[i]));
            }
        }
        let mut out = vec![Hash::default(); indexes.len()];
        let mut buf = Vec::new();
        let mut k = 0;
        while k < order.len() {
            // Gather a run of nearby indexes and fetch it in one read.
            let first = indexes[order[k]];
            let mut last = first;
            let mut j = k;
            while j < order.len() && indexes[order[j]] <= last + COALESCE_GAP {
                last = indexes[order[j]];
                j += 1;
            }
            let n = (last - first + 1) as usize;
            buf.resize(n * HASH_SIZE, 0);
            let got = read_at_most(&self.hashes, &mut buf, first * HASH_SIZE as u64)
                .map_err(|e| TreeError::Read(Box::new(e)))?;
            if got < buf.len() {
                return Err(TreeError::MissingHash(first + (got / HASH_SIZE) as u64));
            }
            for &i in &order[k..j] {
                let at = (indexes[i] - first) as usize * HASH_SIZE;
                out[i].0.copy_from_slice(&buf[at..at + HASH_SIZE]);
            }
            k = j;
        }
        Ok(out)
    }
}

impl Store for FileStore {
    fn size(&self) -> u64 {
        self.state.size
    }

    fn append(&mut self, entries: &[&[u8]], hashes: &[Hash]) -> Result<u64, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if let Some(d) = &self.damage {
            return Err(StoreError::NotAppendable(d.clone()));
        }
        let first = self.state.size;
        check_append(first, entries.len(), hashes.len())?;
        if let Some((position, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.len() > MAX_ENTRY_SIZE)
        {
            return Err(StoreError::EntryTooLarge {
                position,
                len: e.len(),
                max: MAX_ENTRY_SIZE,
            });
        }
        if entries.is_empty() {
            return Ok(first);
        }
        match self.write_batch(entries, hashes) {
            Ok(next) => {
                self.state = next;
                Ok(first)
            }
            Err(e) => {
                // After a failed write or fsync the page cache may no longer
                // match the disk; only a reopen (which truncates to the
                // committed state) is safe.
                self.poisoned = true;
                Err(e.into())
            }
        }
    }

    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let batch = self.read_entry_batch(start, count)?;
        Ok(batch.iter().map(|e| e.map(<[u8]>::to_vec)).collect())
    }

    fn read_entry_batch(&self, start: u64, count: u64) -> Result<EntryBatch, StoreError> {
        check_range(start, count, self.state.size)?;
        if count == 0 {
            return Ok(EntryBatch::default());
        }
        let offs = self.read_offsets(start, count)?;
        for (i, w) in offs.windows(2).enumerate() {
            if w[1] < w[0] || w[1] - w[0] > MAX_ENTRY_SIZE as u64 || w[1] > self.state.entries_len {
                return Err(StoreError::Damaged {
                    index: start + i as u64,
                    what: "offset out of order".into(),
                });
            }
        }
        let (lo, hi) = (offs[0], offs[offs.len() - 1]);
        let mut data = vec![0u8; (hi - lo) as usize];
        let got = read_at_most(&self.entries, &mut data, lo)? as u64;
        let mut spans = Vec::with_capacity(count as usize);
        for (i, w) in offs.windows(2).enumerate() {
            if w[1] - lo > got {
                return Err(StoreError::Damaged {
                    index: start + i as u64,
                    what: "entry bytes missing".into(),
                });
            }
            spans.push(Some((w[0] - lo) as usize..(w[1] - lo) as usize));
        }
        // The marks are read after the bytes: a prune sets a record's mark
        // before zeroing it, so zeroed bytes read here come with their mark.
        let marks = self.read_marks(start, count)?;
        for (span, pruned) in spans.iter_mut().zip(marks) {
            if pruned {
                *span = None;
            }
        }
        EntryBatch::from_parts(data, spans)
            .ok_or_else(|| StoreError::Corrupt("entry spans outside the read buffer".into()))
    }
}
