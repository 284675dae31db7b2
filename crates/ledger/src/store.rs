//! Storage for the log: the entries (leaf data) and the stored hashes.
//!
//! A [`Store`] only keeps what it is given; the Merkle computations live in
//! [`crate::tree`] and [`crate::log`]. [`MemoryStore`] is for tests and
//! tools; [`crate::file_store::FileStore`] is the embedded default; the
//! server's SQL store follows the same contract with its own async API.

use std::ops::Range;

use crate::hash::Hash;
use crate::tree::{stored_hash_count, HashReader, TreeError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("records {start}..{end} are beyond the log size {size}")]
    OutOfRange { start: u64, end: u64, size: u64 },
    #[error("expected {expected} new stored hashes, got {got}")]
    HashCount { expected: u64, got: u64 },
    #[error("the data of record {index} is missing or damaged: {what}")]
    Damaged { index: u64, what: String },
    #[error("entry {position} of the batch is {len} bytes, more than {max}")]
    EntryTooLarge {
        position: usize,
        len: usize,
        max: usize,
    },
    #[error("the store is damaged ({0}); it can be verified but not appended to")]
    NotAppendable(String),
    #[error("this store handle is read-only")]
    ReadOnly,
    #[error("an earlier write failed; reopen the store")]
    Poisoned,
    #[error("store metadata is unusable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl StoreError {
    /// The record whose data is missing or damaged, if this error names one.
    pub fn record_index(&self) -> Option<u64> {
        match self {
            StoreError::Damaged { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// Where the log's entries and stored hashes live.
///
/// Contract: records are numbered from 0 and never change once appended;
/// `append` is durable when it returns `Ok` (an acknowledged record survives
/// a crash); a failed `append` leaves the visible size unchanged.
pub trait Store: HashReader {
    /// Number of records durably stored.
    fn size(&self) -> u64;

    /// Appends `entries` as records `size()..size() + entries.len()`, with
    /// `hashes` the stored hashes they add (exactly
    /// `stored_hash_count(new) - stored_hash_count(old)` of them, in
    /// stored order). Returns the index of the first entry.
    fn append(&mut self, entries: &[&[u8]], hashes: &[Hash]) -> Result<u64, StoreError>;

    /// Reads records `start..start + count`. `None` is a record whose
    /// content was pruned after its retention period (its leaf hash stays).
    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Reads records `start..start + count` into one buffer. Full
    /// verification reads through this; stores that can fill one buffer
    /// without an allocation per entry should override it.
    fn read_entry_batch(&self, start: u64, count: u64) -> Result<EntryBatch, StoreError> {
        let entries = self.read_entries(start, count)?;
        let mut batch = EntryBatch::default();
        for e in entries {
            batch.push(e.as_deref());
        }
        Ok(batch)
    }
}

/// Consecutive entries held back to back in one buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryBatch {
    data: Vec<u8>,
    spans: Vec<Option<Range<usize>>>,
}

impl EntryBatch {
    /// A batch over `data`, where entry `i` is `data[spans[i]]` (`None`
    /// if pruned). Returns `None` if a span lies outside `data`.
    pub fn from_parts(data: Vec<u8>, spans: Vec<Option<Range<usize>>>) -> Option<EntryBatch> {
        let fits = spans
            .iter()
            .flatten()
            .all(|r| r.start <= r.end && r.end <= data.len());
        fits.then_some(EntryBatch { data, spans })
    }

    /// Appends one entry (`None` if pruned).
    pub fn push(&mut self, entry: Option<&[u8]>) {
        self.spans.push(entry.map(|e| {
            let start = self.data.len();
            self.data.extend_from_slice(e);
            start..self.data.len()
        }));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Entry `i`: `None` if out of range, `Some(None)` if pruned.
    pub fn get(&self, i: usize) -> Option<Option<&[u8]>> {
        let span = self.spans.get(i)?;
        Some(span.as_ref().map(|r| &self.data[r.clone()]))
    }

    /// The entries in order (`None` for pruned ones).
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        self.spans
            .iter()
            .map(|s| s.as_ref().map(|r| &self.data[r.clone()]))
    }
}

pub(crate) fn check_append(size: u64, entries: usize, hashes: usize) -> Result<(), StoreError> {
    let new = size + entries as u64;
    let expected = stored_hash_count(new) - stored_hash_count(size);
    if expected != hashes as u64 {
        return Err(StoreError::HashCount {
            expected,
            got: hashes as u64,
        });
    }
    Ok(())
}

pub(crate) fn check_range(start: u64, count: u64, size: u64) -> Result<(), StoreError> {
    match start.checked_add(count) {
        Some(end) if end <= size => Ok(()),
        _ => Err(StoreError::OutOfRange {
            start,
            end: start.saturating_add(count),
            size,
        }),
    }
}

/// A store in memory: for tests, tools and small demos. Not durable.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    entries: Vec<Option<Vec<u8>>>,
    hashes: Vec<Hash>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the content of record `index`, keeping its leaf hash, as a
    /// retention rule does.
    pub fn prune(&mut self, index: u64) -> Result<(), StoreError> {
        check_range(index, 1, self.size())?;
        self.entries[index as usize] = None;
        Ok(())
    }
}

impl HashReader for MemoryStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.hashes.read_hashes(indexes)
    }
}

impl Store for MemoryStore {
    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn append(&mut self, entries: &[&[u8]], hashes: &[Hash]) -> Result<u64, StoreError> {
        let first = self.size();
        check_append(first, entries.len(), hashes.len())?;
        self.entries
            .extend(entries.iter().map(|e| Some(e.to_vec())));
        self.hashes.extend_from_slice(hashes);
        Ok(first)
    }

    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        check_range(start, count, self.size())?;
        Ok(self.entries[start as usize..(start + count) as usize].to_vec())
    }
}
