//! `mamori-ledger`: the tamper-evident, append-only log behind Mamori's
//! access-record ledger (K16.2.2: access records kept so that tampering is
//! evident; K16.3.2-3, K30, K27.1.3).
//!
//! - [`hash`]: RFC 9162 leaf and node hashing.
//! - [`tree`]: the stored-hash layout of Go's tlog, tree hashes, and
//!   inclusion/consistency proof generation, each split into "which hashes"
//!   and "compute from hashes" for stores that fetch asynchronously.
//! - [`proof`]: independent RFC 9162 proof verifiers.
//! - [`tile`]: C2SP tlog-tiles paths, tiles and entry bundles.
//! - [`note`], [`checkpoint`]: C2SP signed notes (Ed25519) and checkpoints.
//! - [`record`]: the canonical binary encoding of an access record.
//! - [`store`], [`file_store`]: the storage trait, an in-memory store and
//!   the durable file store.
//! - [`log`]: the log itself: append, roots, proofs, checkpoint signing,
//!   full verification.
//! - [`bundle`]: evidence bundles (K27.1.3): frozen records with their
//!   inclusion proofs and a signed checkpoint, checked offline.
//!
//! Nothing here knows HTTP or SQL.

pub mod bundle;
pub mod checkpoint;
#[cfg(unix)]
pub mod file_store;
pub mod hash;
pub mod log;
pub mod note;
pub mod proof;
pub mod record;
pub mod store;
pub mod tile;
pub mod tree;

pub use checkpoint::{open_checkpoint, Checkpoint, CheckpointError};
#[cfg(unix)]
pub use file_store::FileStore;
pub use hash::Hash;
pub use log::{
    verify_store, Log, LogError, Problem, SignedCheckpoint, StreamVerifier, VerifyReport,
};
pub use note::{Note, NoteError, Signer, Verifier};
pub use proof::{verify_consistency, verify_inclusion};
pub use record::{AccessRecord, AccessResult, RecordError};
pub use store::{EntryBatch, MemoryStore, Store, StoreError};
pub use tile::{Tile, TileError, TileKind};
pub use tree::{Frontier, HashReader, TreeError};
