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

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hash::{Hash, HASH_SIZE};
use crate::store::{check_append, check_range, EntryBatch, Store, StoreError};
use crate::tile::MAX_ENTRY_SIZE;
use crate::tree::{stored_hash_count, HashReader, TreeError};

const ENTRIES: &str = "entries.bin";
const OFFSETS: &str = "offsets.bin";
const HASHES: &str = "hashes.bin";
const COMMIT: &str = "commit.bin";
const MAGIC: [u8; 8] = *b"MAMORI\x00\x01";
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
        };
        store.recover(true)?;
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
    /// serving). Safe because committed bytes are never rewritten; the
    /// snapshot does not see later appends.
    pub fn snapshot(&self) -> Result<FileStore, StoreError> {
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
        EntryBatch::from_parts(data, spans)
            .ok_or_else(|| StoreError::Corrupt("entry spans outside the read buffer".into()))
    }
}
