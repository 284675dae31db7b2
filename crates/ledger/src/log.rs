//! [`Log`]: the append-only, tamper-evident log over a [`Store`] (K16.2.2).
//!
//! It appends batches, answers roots and proofs, signs checkpoints without
//! ever contradicting an earlier one, and verifies the whole store.

use std::ops::Range;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::hash::Hash;
use crate::note::Signer;
use crate::proof::verify_consistency;
use crate::store::{EntryBatch, Store, StoreError};
use crate::tile::{self as tiles, Tile, TileError, TileKind, MAX_ENTRY_SIZE};
use crate::tree::{self, split_stored_hash_index, stored_hash_count, Frontier, TreeError};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("entry {position} of the batch is {len} bytes; the maximum is {max}")]
    EntryTooLarge {
        position: usize,
        len: usize,
        max: usize,
    },
    #[error("size {size} is beyond the log size {log_size}")]
    BeyondSize { size: u64, log_size: u64 },
    #[error("the last signed checkpoint is for origin {found:?}, not {expected:?}")]
    OriginMismatch { expected: String, found: String },
    #[error("refusing to sign size {size}: a checkpoint for size {signed} was already signed")]
    WouldShrink { size: u64, signed: u64 },
    #[error("the log is not consistent with the checkpoint signed at size {signed}")]
    Inconsistent { signed: u64 },
    #[error(transparent)]
    Tile(#[from] TileError),
    #[error("tile {0} is not available at the current log size")]
    TileNotAvailable(String),
    #[error("record {index} was pruned; its bundle cannot be served")]
    Pruned { index: u64 },
}

/// What a full verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records examined (the store's size).
    pub size: u64,
    /// Root recomputed from the entries.
    pub root: Hash,
    /// Records whose content was pruned (their stored leaf hash was used).
    pub pruned: u64,
    /// The first problem, or `None` if the log is intact.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }

    /// The first record that does not match, if one can be named.
    pub fn first_bad_index(&self) -> Option<u64> {
        self.problem.as_ref().and_then(Problem::index)
    }
}

/// The first mismatch found by a full verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The entry of record `index` does not hash to its stored leaf hash.
    LeafMismatch { index: u64 },
    /// A node hash stored with record `index` (at tree `level`) is wrong.
    NodeMismatch { index: u64, level: u32 },
    /// Data of record `index` (entry, offset or hash) is missing or unreadable.
    Missing { index: u64, detail: String },
    /// The store holds fewer records than a trusted checkpoint: records
    /// from `index` on were deleted.
    Truncated { index: u64, checkpoint_size: u64 },
    /// Every stored hash agrees with the entries, but the root at the
    /// trusted checkpoint's size differs: the log was rewritten wholesale,
    /// and which record changed cannot be told from the store alone.
    RootMismatch { size: u64 },
}

impl Problem {
    pub fn index(&self) -> Option<u64> {
        match self {
            Problem::LeafMismatch { index }
            | Problem::NodeMismatch { index, .. }
            | Problem::Missing { index, .. }
            | Problem::Truncated { index, .. } => Some(*index),
            Problem::RootMismatch { .. } => None,
        }
    }
}

/// Recomputes the tree record by record from entries and compares each
/// stored hash. Pure: feed it what any store returns (the SQL store feeds
/// it from its own async reads).
#[derive(Clone, Debug, Default)]
pub struct StreamVerifier {
    frontier: Frontier,
    scratch: Vec<Hash>,
    pruned: u64,
}

impl StreamVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records verified so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root of the records verified so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    pub fn pruned(&self) -> u64 {
        self.pruned
    }

    /// Verifies the next record: `entry` is its content (`None` if pruned)
    /// and `stored` the hashes stored with it (its leaf hash first; the
    /// hashes at stored indexes `stored_hash_count(i)..stored_hash_count(i+1)`).
    pub fn push(&mut self, entry: Option<&[u8]>, stored: &[Hash]) -> Result<(), Problem> {
        self.push_leaf(entry.map(Hash::leaf), stored)
    }

    /// As [`StreamVerifier::push`], with the leaf hash of the entry already
    /// computed (`None` if pruned), so callers can hash leaves in parallel.
    pub fn push_leaf(&mut self, leaf: Option<Hash>, stored: &[Hash]) -> Result<(), Problem> {
        let index = self.frontier.size();
        let leaf = match leaf {
            Some(h) => h,
            None => match stored.first() {
                Some(h) => {
                    self.pruned += 1;
                    *h
                }
                None => {
                    return Err(Problem::Missing {
                        index,
                        detail: "no stored leaf hash".into(),
                    })
                }
            },
        };
        self.scratch.clear();
        if self.frontier.push(leaf, &mut self.scratch).is_err() {
            return Err(Problem::Missing {
                index,
                detail: "tree too large".into(),
            });
        }
        if stored.len() != self.scratch.len() {
            return Err(Problem::Missing {
                index,
                detail: format!(
                    "{} stored hashes, expected {}",
                    stored.len(),
                    self.scratch.len()
                ),
            });
        }
        for (level, (want, got)) in self.scratch.iter().zip(stored).enumerate() {
            if want != got {
                return Err(if level == 0 {
                    Problem::LeafMismatch { index }
                } else {
                    Problem::NodeMismatch {
                        index,
                        level: level as u32,
                    }
                });
            }
        }
        Ok(())
    }
}

/// Records read per batch during a full verification.
const VERIFY_CHUNK: u64 = 4096;

/// The record with which stored hash `index` was written.
fn record_of_stored_hash(index: u64) -> u64 {
    let (level, n) = split_stored_hash_index(index);
    ((n + 1) << level) - 1
}

/// Verifies every record of `store`: recomputes each leaf hash from its
/// entry and every stored hash, and compares them with what is stored;
/// with a `trusted` checkpoint, also checks that the store still holds
/// that tree. Reports the first record that does not match.
pub fn verify_store<S: Store + ?Sized>(store: &S, trusted: Option<&Checkpoint>) -> VerifyReport {
    let size = store.size();
    let mut v = StreamVerifier::new();
    let finish = |v: &StreamVerifier, problem: Option<Problem>| VerifyReport {
        size,
        root: v.root(),
        pruned: v.pruned(),
        problem,
    };
    let check_trusted = |v: &StreamVerifier| -> Option<Problem> {
        match trusted {
            Some(cp) if cp.size == v.size() && cp.root != v.root() => {
                Some(Problem::RootMismatch { size: cp.size })
            }
            _ => None,
        }
    };
    if let Some(p) = check_trusted(&v) {
        return finish(&v, Some(p));
    }
    let mut start = 0;
    while start < size {
        let count = VERIFY_CHUNK.min(size - start);
        let result = verify_chunk(store, &mut v, start, count, &check_trusted);
        match result {
            Ok(None) => {}
            Ok(Some(p)) => return finish(&v, Some(p)),
            Err(_) => {
                // Something in this chunk could not be read: go record by
                // record to find the first one that fails.
                for i in v.size()..start + count {
                    match verify_chunk(store, &mut v, i, 1, &check_trusted) {
                        Ok(None) => {}
                        Ok(Some(p)) => return finish(&v, Some(p)),
                        Err(detail) => {
                            return finish(&v, Some(Problem::Missing { index: i, detail }));
                        }
                    }
                }
            }
        }
        start += count;
    }
    if let Some(cp) = trusted {
        if cp.size > size {
            return finish(
                &v,
                Some(Problem::Truncated {
                    index: size,
                    checkpoint_size: cp.size,
                }),
            );
        }
    }
    finish(&v, None)
}

/// Leaf hashes of a chunk of entries. Leaf hashing is most of the work of
/// a full verification and needs no order, so it is split over two
/// threads when the machine has them.
fn leaf_hashes(entries: &EntryBatch) -> Vec<Option<Hash>> {
    let hash_range = |r: std::ops::Range<usize>| -> Vec<Option<Hash>> {
        r.filter_map(|i| entries.get(i))
            .map(|e| e.map(Hash::leaf))
            .collect()
    };
    let n = entries.len();
    let parallel = std::thread::available_parallelism().map_or(1, |p| p.get());
    if parallel < 2 || n < 256 {
        return hash_range(0..n);
    }
    std::thread::scope(|s| {
        let other = s.spawn(|| hash_range(n / 2..n));
        let mut out = hash_range(0..n / 2);
        match other.join() {
            Ok(rest) => out.extend(rest),
            // Unreachable in practice (hashing does not panic); recompute
            // rather than propagate.
            Err(_) => out.extend(hash_range(n / 2..n)),
        }
        out
    })
}

/// Verifies records `start..start+count`. `Err` means the data could not
/// be read (the caller narrows it down); `Ok(Some)` is a mismatch.
fn verify_chunk<S: Store + ?Sized>(
    store: &S,
    v: &mut StreamVerifier,
    start: u64,
    count: u64,
    check_trusted: &dyn Fn(&StreamVerifier) -> Option<Problem>,
) -> Result<Option<Problem>, String> {
    let entries = store
        .read_entry_batch(start, count)
        .map_err(|e| e.to_string())?;
    let (lo, hi) = (stored_hash_count(start), stored_hash_count(start + count));
    let indexes: Vec<u64> = (lo..hi).collect();
    let hashes = match store.read_hashes(&indexes) {
        Ok(h) => h,
        Err(TreeError::MissingHash(i)) if count > 1 => {
            return Err(format!("stored hash {i} missing"));
        }
        Err(TreeError::MissingHash(i)) => {
            return Ok(Some(Problem::Missing {
                index: record_of_stored_hash(i),
                detail: format!("stored hash {i} missing"),
            }))
        }
        Err(e) => return Err(e.to_string()),
    };
    if entries.len() as u64 != count || hashes.len() != indexes.len() {
        return Err("short read".into());
    }
    let leaves = leaf_hashes(&entries);
    let mut at = 0usize;
    for (k, leaf) in leaves.into_iter().enumerate() {
        let i = start + k as u64;
        let n = (stored_hash_count(i + 1) - stored_hash_count(i)) as usize;
        if let Err(p) = v.push_leaf(leaf, &hashes[at..at + n]) {
            return Ok(Some(p));
        }
        at += n;
        if let Some(p) = check_trusted(v) {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The result of signing: the checkpoint and its signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The signed note text, as served at `GET /api/v1/ledger/checkpoint`.
    pub note: String,
}

/// The log: a [`Store`] plus the in-memory frontier of its tree.
#[derive(Debug)]
pub struct Log<S: Store> {
    store: S,
    frontier: Frontier,
    last_signed: Option<Checkpoint>,
}

impl<S: Store> Log<S> {
    /// Opens the log over `store`, reading the roots of its complete
    /// subtrees (at most 62 hashes, one read). This fails if those hashes
    /// are unreadable; [`verify_store`] on the bare store still names the
    /// first damaged record.
    pub fn open(store: S) -> Result<Log<S>, LogError> {
        let frontier = Frontier::read(store.size(), &store)?;
        Ok(Log {
            store,
            frontier,
            last_signed: None,
        })
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root of the whole log.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Root of the log when it had `size` records.
    pub fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        self.check_size(size)?;
        if size == self.size() {
            return Ok(self.root());
        }
        Ok(tree::tree_hash(size, &self.store)?)
    }

    fn check_size(&self, size: u64) -> Result<(), LogError> {
        if size > self.size() {
            return Err(LogError::BeyondSize {
                size,
                log_size: self.size(),
            });
        }
        Ok(())
    }

    /// Appends a batch durably; returns the indexes given to the entries.
    pub fn append<E: AsRef<[u8]>>(&mut self, entries: &[E]) -> Result<Range<u64>, LogError> {
        let refs: Vec<&[u8]> = entries.iter().map(AsRef::as_ref).collect();
        if let Some((position, e)) = refs
            .iter()
            .enumerate()
            .find(|(_, e)| e.len() > MAX_ENTRY_SIZE)
        {
            return Err(LogError::EntryTooLarge {
                position,
                len: e.len(),
                max: MAX_ENTRY_SIZE,
            });
        }
        let mut next = self.frontier.clone();
        let mut hashes = Vec::with_capacity(refs.len() * 2 + 64);
        for e in &refs {
            next.push(Hash::leaf(e), &mut hashes)?;
        }
        let first = self.store.append(&refs, &hashes)?;
        // The frontier advances only once the store has the batch durably.
        self.frontier = next;
        Ok(first..first + refs.len() as u64)
    }

    /// Reads records `start..start+count` (`None` = pruned content).
    pub fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Option<Vec<u8>>>, LogError> {
        Ok(self.store.read_entries(start, count)?)
    }

    /// Inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size)?;
        Ok(tree::inclusion_proof(index, size, &self.store)?)
    }

    /// Consistency proof from the tree of `old` records to that of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(new)?;
        Ok(tree::consistency_proof(old, new, &self.store)?)
    }

    /// The bytes of a tile or entry bundle (C2SP tlog-tiles), if the log
    /// is large enough to determine it.
    pub fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, LogError> {
        if !tile.is_within(self.size()) {
            return Err(LogError::TileNotAvailable(tile.path()));
        }
        match tile.kind() {
            TileKind::Hashes { .. } => {
                let hashes = self.store.read_hashes(&tiles::tile_hash_indexes(tile)?)?;
                Ok(tiles::tile_data_from_hashes(tile, &hashes)?)
            }
            TileKind::Entries => {
                let r = tile.record_range();
                let batch = self.store.read_entry_batch(r.start, r.end - r.start)?;
                let mut entries = Vec::with_capacity(batch.len());
                for (k, e) in batch.iter().enumerate() {
                    entries.push(e.ok_or(LogError::Pruned {
                        index: r.start + k as u64,
                    })?);
                }
                Ok(tiles::entry_bundle(&entries)?)
            }
        }
    }

    /// The last checkpoint this `Log` signed, if any.
    pub fn last_signed(&self) -> Option<&Checkpoint> {
        self.last_signed.as_ref()
    }

    /// Signs a checkpoint for the current size.
    ///
    /// `last` is the last checkpoint signed for this log, as persisted by
    /// the caller (the one this `Log` signed itself is also remembered).
    /// The signature is refused if the log is smaller than that checkpoint
    /// or does not extend it (checked with a consistency proof and the
    /// independent verifier): a log must never sign two checkpoints that
    /// contradict each other.
    pub fn sign_checkpoint(
        &mut self,
        origin: &str,
        signer: &Signer,
        last: Option<&Checkpoint>,
    ) -> Result<SignedCheckpoint, LogError> {
        let size = self.size();
        let root = self.root();
        for prev in [last, self.last_signed.as_ref()].into_iter().flatten() {
            if prev.origin != origin {
                return Err(LogError::OriginMismatch {
                    expected: origin.to_owned(),
                    found: prev.origin.clone(),
                });
            }
            if prev.size > size {
                return Err(LogError::WouldShrink {
                    size,
                    signed: prev.size,
                });
            }
            let proof = self.consistency_proof(prev.size, size)?;
            if !verify_consistency(prev.size, size, &prev.root, &root, &proof) {
                return Err(LogError::Inconsistent { signed: prev.size });
            }
        }
        let checkpoint = Checkpoint::new(origin, size, root);
        let note = checkpoint.sign(&[signer])?;
        self.last_signed = Some(checkpoint.clone());
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Full verification of the store (see [`verify_store`]).
    pub fn verify_all(&self, trusted: Option<&Checkpoint>) -> VerifyReport {
        verify_store(&self.store, trusted)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }
}
