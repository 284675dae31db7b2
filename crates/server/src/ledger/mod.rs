//! The access-record ledger (SPEC §3.5; K16.2.1–3, K16.3.2–3): every record,
//! Mamori's own and those ward systems send, in one append-only Merkle log
//! (`mamori-ledger`) with signed checkpoints.
//!
//! Storage: with the embedded default the log lives in files under
//! `<data>/ledger` (`FileStore`); with PostgreSQL it lives in the database
//! (`ledger_entries`, `ledger_hashes`, `ledger_head`), and several servers
//! append to one ordered log under an advisory lock. Event ids and the
//! search index live in the database on both.
//!
//! Writes go through one sequencer task (group commit): requests that arrive
//! while a batch is being made durable form the next batch, and each caller
//! is answered only once its batch is durable.
//!
//! Durability protocol with the file store (it cannot share a transaction
//! with the database): (1) the batch is appended to the files and fsynced;
//! (2) its event ids and index rows are committed to the database; (3) the
//! callers are answered. A crash after (1) leaves records in the log that
//! the database does not know; at start the sequencer re-indexes every
//! record past the database's index from the log itself (each record
//! carries its sender and event id), so a resend after the crash answers
//! its original index and nothing is logged twice.
//!
//! Retention (K16.2.1): after its period a record's content is pruned and
//! its leaf hash kept, so every proof still verifies
//! ([`Ledger::prune_expired`], run from the watch loop); nothing else
//! deletes or edits a record.
//!
//! Mamori's own records are written by `records::append` into the `records`
//! table in the same transaction as the change they record (so no change
//! commits without its record); the outbox mover then appends them to the
//! ledger as system `mamori`, event id `r<id>`, within moments. A crash in
//! between only delays them: the mover resumes from its saved position and
//! the event ids make the replay idempotent.

pub mod api;
pub mod bundle;
pub mod search;
pub mod search_api;
pub mod search_pages;
pub mod store;

use crate::db::{Db, Engine};
use mamori_ledger::{
    tile::{self, Tile, TileKind},
    tree, verify_consistency, AccessRecord, AccessResult, Checkpoint, FileStore, Hash, Log, Signer,
    StreamVerifier,
};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// The last integrity alarm raised in this process, for the page banner.
static ALARM: RwLock<Option<String>> = RwLock::new(None);

/// The integrity alarm, if one was raised (shown to the セキュリティ総括管理者).
pub fn current_alarm() -> Option<String> {
    ALARM.read().ok().and_then(|a| a.clone())
}

/// Records per batch at most (a request may carry up to 1,000).
const MAX_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("ledger storage: {0}")]
    Storage(String),
    #[error("index {index} is beyond the tree of size {size}")]
    BeyondTree { index: u64, size: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("the ledger sequencer has stopped")]
    Stopped,
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
    #[error("the content of record {index} was pruned after its retention period")]
    Pruned { index: u64 },
}

impl From<store::ReadError> for LedgerError {
    fn from(e: store::ReadError) -> Self {
        match e {
            store::ReadError::Db(e) => LedgerError::Db(e),
            other => LedgerError::Storage(other.to_string()),
        }
    }
}

impl From<mamori_ledger::TreeError> for LedgerError {
    fn from(e: mamori_ledger::TreeError) -> Self {
        LedgerError::Invalid(e.to_string())
    }
}

impl From<mamori_ledger::LogError> for LedgerError {
    fn from(e: mamori_ledger::LogError) -> Self {
        LedgerError::Storage(e.to_string())
    }
}

/// Where the Merkle log lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Files with SQLite, the database with PostgreSQL.
    Auto,
    File,
    Sql,
}

enum Backend {
    File(Arc<RwLock<Log<FileStore>>>),
    Sql,
}

struct Job {
    records: Vec<AccessRecord>,
    reply: oneshot::Sender<Result<Vec<Appended>, String>>,
}

/// What [`Ledger::rotate_key`] did.
#[derive(Debug, Clone)]
pub struct RotatedKey {
    pub retired: String,
    pub new: String,
    /// The log at rotation, signed by both keys.
    pub handover: String,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where a submitted record ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    /// The event id was already in the log: this is its original index.
    pub duplicate: bool,
}

struct Inner {
    db: Db,
    backend: Backend,
    signer: Signer,
    origin: String,
    queue: mpsc::Sender<Job>,
    outbox: Notify,
    /// Set when a verification found a mismatch (shown to the セキュリティ総括管理者).
    alarm: RwLock<Option<String>>,
    /// Held for the writer's lifetime: one process appends to the file log.
    _writer_lock: Option<std::fs::File>,
}

#[derive(Clone)]
pub struct Ledger(Arc<Inner>);

fn io(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(e.to_string())
}

/// Reads or creates the checkpoint signing key (`<data>/ledger/signing.key`
/// or the configured path, mode 0600). Servers sharing one PostgreSQL must
/// share this file.
fn signing_key(path: &Path, origin: &str) -> Result<Signer, LedgerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Signer::parse(text.trim()).map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = Signer::generate(origin).map_err(io)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            crate::app::write_private(path, signer.to_private_key_string().as_bytes())
                .map_err(io)?;
            Ok(signer)
        }
        Err(e) => Err(io(e)),
    }
}

impl Ledger {
    /// Opens the ledger. The writer (`mamori serve`) takes the file log's
    /// lock, re-indexes what a crash left unindexed, and starts the
    /// sequencer and the outbox mover; other commands open it read-only
    /// (their records wait in the outbox for the server to move).
    pub async fn open(
        db: Db,
        data_dir: &Path,
        origin: &str,
        kind: StoreKind,
        key_path: Option<&Path>,
        writer: bool,
    ) -> Result<Ledger, LedgerError> {
        let dir = data_dir.join("ledger");
        std::fs::create_dir_all(&dir).map_err(io)?;
        let key_path = key_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("signing.key"));
        let signer = signing_key(&key_path, origin)?;
        {
            let mut conn = db.pool().acquire().await?;
            store::register_key(&mut conn, &signer.verifier().to_key_string(), now_secs()).await?;
        }
        let file = match kind {
            StoreKind::File => true,
            StoreKind::Sql => false,
            StoreKind::Auto => db.engine() == Engine::Sqlite,
        };
        let mut writer_lock = None;
        let backend = if file {
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("writer.lock"))
                .map_err(io)?;
            let locked = lock.try_lock().is_ok();
            if writer && !locked {
                return Err(LedgerError::Storage(format!(
                    "another mamori process is writing the ledger in {} (stop it first)",
                    dir.display()
                )));
            }
            let log_dir = dir.join("log");
            // Without the lock (a server is running) open read-only: never
            // truncate or append beside the writer.
            let read_only = !locked || (!writer && log_dir.join("commit.bin").exists());
            let log =
                tokio::task::spawn_blocking(move || -> Result<Log<FileStore>, LedgerError> {
                    let store = if read_only {
                        FileStore::open_read_only(&log_dir)
                    } else {
                        FileStore::open(&log_dir)
                    }
                    .map_err(io)?;
                    Log::open(store).map_err(io)
                })
                .await
                .map_err(io)??;
            if writer {
                writer_lock = Some(lock);
            }
            Backend::File(Arc::new(RwLock::new(log)))
        } else {
            Backend::Sql
        };
        let (tx, rx) = mpsc::channel(1024);
        let ledger = Ledger(Arc::new(Inner {
            db,
            backend,
            signer,
            origin: signer_origin(origin),
            queue: tx,
            outbox: Notify::new(),
            alarm: RwLock::new(None),
            _writer_lock: writer_lock,
        }));
        if writer {
            ledger.reindex_tail().await?;
            tokio::spawn(ledger.clone().sequencer(rx));
            tokio::spawn(ledger.clone().outbox_mover());
        }
        Ok(ledger)
    }

    pub fn origin(&self) -> &str {
        &self.0.origin
    }

    /// Replaces the checkpoint signing key (K16.2.2), from the command
    /// line with the server stopped (the file log's writer lock is taken;
    /// with PostgreSQL, restart every server afterwards). The log as it
    /// stands is signed by both the old and the new key (the handover, kept
    /// with the old key's row), the old key file is kept beside the new one
    /// as `<file>.retired-<key id>`, and every key that ever signed stays
    /// in `ledger_keys`, so every earlier checkpoint remains verifiable.
    pub async fn rotate_key(
        &self,
        data_dir: &Path,
        key_path: Option<&Path>,
        now: i64,
    ) -> Result<RotatedKey, LedgerError> {
        let dir = data_dir.join("ledger");
        if matches!(self.0.backend, Backend::File(_)) {
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("writer.lock"))
                .map_err(io)?;
            if lock.try_lock().is_err() {
                return Err(LedgerError::Storage(
                    "the server is running: stop it before rotating the signing key".into(),
                ));
            }
        }
        let path = key_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("signing.key"));
        let old = &self.0.signer;
        let new = Signer::generate(old.name()).map_err(io)?;
        let size = self.size().await?;
        let root = self.root_at(size).await?;
        let handover = Checkpoint::new(&self.0.origin, size, root)
            .sign(&[old, &new])
            .map_err(io)?;
        let retired_path = path.with_file_name(format!(
            "{}.retired-{:08x}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("signing.key"),
            old.key_id()
        ));
        crate::app::write_private(&retired_path, old.to_private_key_string().as_bytes())
            .map_err(io)?;
        let old_key = old.verifier().to_key_string();
        let new_key = new.verifier().to_key_string();
        {
            let mut tx = self.0.db.begin().await?;
            store::retire_key(&mut tx, &old_key, &handover, now).await?;
            store::register_key(&mut tx, &new_key, now).await?;
            let rec = crate::records::Record::new(
                crate::records::Who::Cli,
                "ledger.key.rotate",
                "ledger:signing-key",
                "K16.2.2",
            )
            .detail(
                serde_json::json!({ "retired": old_key, "new": new_key, "handover_size": size }),
            );
            crate::records::append(&mut tx, now * 1_000_000, &rec).await?;
            tx.commit().await?;
        }
        let tmp = path.with_extension("new");
        crate::app::write_private(&tmp, new.to_private_key_string().as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(RotatedKey {
            retired: old_key,
            new: new_key,
            handover,
        })
    }

    /// The signed-note verifier key `<name>+<hex id>+<base64>`.
    pub fn verifier_key(&self) -> String {
        self.0.signer.verifier().to_key_string()
    }

    /// Appends records (group commit) and returns their indexes once durable.
    pub async fn submit(&self, records: Vec<AccessRecord>) -> Result<Vec<Appended>, LedgerError> {
        if records.is_empty() {
            return Ok(vec![]);
        }
        let (reply, wait) = oneshot::channel();
        self.0
            .queue
            .send(Job { records, reply })
            .await
            .map_err(|_| LedgerError::Stopped)?;
        wait.await
            .map_err(|_| LedgerError::Stopped)?
            .map_err(LedgerError::Storage)
    }

    /// Wakes the outbox mover (after a transaction that wrote records).
    pub fn poke(&self) {
        self.0.outbox.notify_one();
    }

    async fn sequencer(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            let mut count = jobs[0].records.len();
            while count < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => {
                        count += j.records.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            let all: Vec<&AccessRecord> = jobs.iter().flat_map(|j| j.records.iter()).collect();
            match self.append_batch(&all).await {
                Ok(result) => {
                    let mut at = 0;
                    for job in jobs {
                        let n = job.records.len();
                        let _ = job.reply.send(Ok(result[at..at + n].to_vec()));
                        at += n;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "ledger append failed");
                    for job in jobs {
                        let _ = job.reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    /// Dedups by (system, event id) against the database and within the
    /// batch, appends the new records durably, then indexes them.
    async fn append_batch(&self, records: &[&AccessRecord]) -> Result<Vec<Appended>, LedgerError> {
        let db = &self.0.db;
        let postgres = db.engine() == Engine::Postgres;
        let mut tx = db.begin().await?;
        if matches!(self.0.backend, Backend::Sql) {
            store::lock_writer(&mut tx, postgres).await?;
        }
        // Known event ids, per system.
        let mut known: std::collections::HashMap<(String, String), u64> =
            std::collections::HashMap::new();
        let mut by_system: std::collections::BTreeMap<&str, Vec<&str>> =
            std::collections::BTreeMap::new();
        for r in records {
            by_system
                .entry(r.system.as_str())
                .or_default()
                .push(r.event_id.as_str());
        }
        for (system, ids) in &by_system {
            for (id, idx) in store::known_events(&mut tx, system, ids).await? {
                known.insert((system.to_string(), id), idx);
            }
        }
        // Decide each record: duplicate of a known one, of an earlier one in
        // this batch, or new.
        enum Slot {
            Known(u64),
            /// Position among the fresh records; `true` for a repeat within the batch.
            New(usize, bool),
        }
        let mut slots = Vec::with_capacity(records.len());
        let mut fresh: Vec<&AccessRecord> = Vec::new();
        let mut in_batch: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::new();
        for r in records {
            if let Some(i) = known.get(&(r.system.clone(), r.event_id.clone())) {
                slots.push(Slot::Known(*i));
            } else if let Some(k) = in_batch.get(&(r.system.as_str(), r.event_id.as_str())) {
                slots.push(Slot::New(*k, true));
            } else {
                in_batch.insert((r.system.as_str(), r.event_id.as_str()), fresh.len());
                slots.push(Slot::New(fresh.len(), false));
                fresh.push(r);
            }
        }
        let encoded: Vec<Vec<u8>> = fresh
            .iter()
            .map(|r| r.encode().map_err(|e| LedgerError::Invalid(e.to_string())))
            .collect::<Result<_, _>>()?;
        let first = if encoded.is_empty() {
            0
        } else {
            match &self.0.backend {
                Backend::File(log) => {
                    // The file append is not part of the database transaction:
                    // release the write lock while it syncs, as the protocol
                    // in the module docs allows.
                    drop(tx);
                    let log = Arc::clone(log);
                    let entries = encoded.clone();
                    let range = tokio::task::spawn_blocking(move || {
                        let mut log = log
                            .write()
                            .map_err(|_| LedgerError::Storage("log lock poisoned".into()))?;
                        log.append(&entries).map_err(LedgerError::from)
                    })
                    .await
                    .map_err(io)??;
                    tx = db.begin().await?;
                    range.start
                }
                Backend::Sql => {
                    let size = store::head(&mut tx).await?;
                    let frontier_idx = tree::tree_hash_indexes(size)?;
                    let roots = store::read_hashes(&mut tx, &frontier_idx).await?;
                    let mut frontier = mamori_ledger::Frontier::from_hashes(size, &roots)?;
                    let mut hashes = Vec::with_capacity(encoded.len() * 2);
                    for e in &encoded {
                        frontier.push(Hash::leaf(e), &mut hashes)?;
                    }
                    store::append(
                        &mut tx,
                        size,
                        &encoded,
                        tree::stored_hash_count(size),
                        &hashes,
                    )
                    .await?;
                    size
                }
            }
        };
        let results: Vec<&str> = fresh.iter().map(|r| r.result.as_str()).collect();
        let rows: Vec<store::IndexRow> = fresh
            .iter()
            .enumerate()
            .map(|(k, r)| store::IndexRow {
                idx: first + k as u64,
                time_us: r.time_micros,
                system: &r.system,
                event_id: &r.event_id,
                actor: &r.actor,
                action: &r.action,
                asset: &r.asset,
                result: results[k],
            })
            .collect();
        store::index(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(slots
            .into_iter()
            .map(|s| match s {
                Slot::Known(i) => Appended {
                    index: i,
                    duplicate: true,
                },
                Slot::New(k, repeat) => Appended {
                    index: first + k as u64,
                    duplicate: repeat,
                },
            })
            .collect())
    }

    /// After a crash between the file append and the database commit, the
    /// log holds records the index lacks: index them from the log itself.
    async fn reindex_tail(&self) -> Result<(), LedgerError> {
        let size = self.size().await?;
        let mut conn = self.0.db.pool().acquire().await?;
        let mut at = store::indexed_size(&mut conn).await?;
        if at > size {
            let msg = format!("the search index knows {at} records but the log has {size}");
            tracing::error!("{msg}");
            self.raise_alarm(msg);
            return Ok(());
        }
        while at < size {
            let n = (size - at).min(1000);
            let entries = self.read_entries(at, n).await?;
            let decoded: Vec<(u64, AccessRecord)> = entries
                .into_iter()
                .enumerate()
                .filter_map(|(k, e)| {
                    e.and_then(|b| AccessRecord::decode(&b).ok())
                        .map(|r| (at + k as u64, r))
                })
                .collect();
            let rows: Vec<store::IndexRow> = decoded
                .iter()
                .map(|(i, r)| store::IndexRow {
                    idx: *i,
                    time_us: r.time_micros,
                    system: &r.system,
                    event_id: &r.event_id,
                    actor: &r.actor,
                    action: &r.action,
                    asset: &r.asset,
                    result: r.result.as_str(),
                })
                .collect();
            let mut tx = self.0.db.begin().await?;
            store::index(&mut tx, &rows).await?;
            tx.commit().await?;
            tracing::warn!(
                from = at,
                count = n,
                "re-indexed ledger records written before a crash"
            );
            at += n;
        }
        Ok(())
    }

    /// Moves Mamori's own records from the `records` table into the log.
    async fn outbox_mover(self) {
        loop {
            match self.move_outbox().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "moving records into the ledger failed"),
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(500), self.0.outbox.notified()).await;
        }
    }

    /// Moves one batch; `true` when there may be more.
    pub async fn move_outbox(&self) -> Result<bool, LedgerError> {
        let (from, rows) = {
            let mut conn = self.0.db.pool().acquire().await?;
            let from = store::outbox_position(&mut conn).await?;
            let rows = crate::records::store::after(&mut conn, from, 1000).await?;
            (from, rows)
        };
        if rows.is_empty() {
            return Ok(false);
        }
        let last = rows.last().map(|r| r.index).unwrap_or(from);
        let more = rows.len() == 1000;
        let records = rows.iter().map(own_record).collect::<Vec<_>>();
        self.submit(records).await?;
        let mut conn = self.0.db.pool().acquire().await?;
        store::set_outbox_position(&mut conn, last).await?;
        Ok(more)
    }

    /// Current number of records in the log.
    pub async fn size(&self) -> Result<u64, LedgerError> {
        match &self.0.backend {
            Backend::File(log) => Ok(log
                .read()
                .map_err(|_| LedgerError::Storage("log lock poisoned".into()))?
                .size()),
            Backend::Sql => {
                let mut conn = self.0.db.pool().acquire().await?;
                Ok(store::head(&mut conn).await?)
            }
        }
    }

    async fn read_hashes(&self, indexes: Vec<u64>) -> Result<Vec<Hash>, LedgerError> {
        match &self.0.backend {
            Backend::File(log) => {
                let log = Arc::clone(log);
                tokio::task::spawn_blocking(move || {
                    let log = log
                        .read()
                        .map_err(|_| LedgerError::Storage("log lock poisoned".into()))?;
                    mamori_ledger::HashReader::read_hashes(log.store(), &indexes)
                        .map_err(LedgerError::from)
                })
                .await
                .map_err(io)?
            }
            Backend::Sql => {
                let mut conn = self.0.db.pool().acquire().await?;
                Ok(store::read_hashes(&mut conn, &indexes).await?)
            }
        }
    }

    /// Entries `start..start+count` (`None` where pruned).
    pub async fn read_entries(
        &self,
        start: u64,
        count: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, LedgerError> {
        match &self.0.backend {
            Backend::File(log) => {
                let log = Arc::clone(log);
                tokio::task::spawn_blocking(move || {
                    let log = log
                        .read()
                        .map_err(|_| LedgerError::Storage("log lock poisoned".into()))?;
                    log.read_entries(start, count).map_err(LedgerError::from)
                })
                .await
                .map_err(io)?
            }
            Backend::Sql => {
                let mut conn = self.0.db.pool().acquire().await?;
                let rows = store::read_entries(&mut conn, start, count).await?;
                let mut out = vec![None; count as usize];
                for (i, data) in rows {
                    if let Some(slot) = out.get_mut((i - start) as usize) {
                        *slot = data;
                    }
                }
                Ok(out)
            }
        }
    }

    pub async fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        let idx = tree::tree_hash_indexes(size)?;
        Ok(tree::tree_hash_from(size, &self.read_hashes(idx).await?)?)
    }

    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        let current = self.size().await?;
        if size > current || index >= size {
            return Err(LedgerError::BeyondTree {
                index: index.max(size),
                size: current,
            });
        }
        let idx = tree::inclusion_proof_indexes(index, size)?;
        Ok(tree::inclusion_proof_from(
            index,
            size,
            &self.read_hashes(idx).await?,
        )?)
    }

    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        let current = self.size().await?;
        if to > current {
            return Err(LedgerError::BeyondTree {
                index: to,
                size: current,
            });
        }
        if from > to {
            return Err(LedgerError::Invalid(format!(
                "from ({from}) is greater than to ({to})"
            )));
        }
        let idx = tree::consistency_proof_indexes(from, to)?;
        Ok(tree::consistency_proof_from(
            from,
            to,
            &self.read_hashes(idx).await?,
        )?)
    }

    /// A C2SP hash tile or entry bundle.
    pub async fn tile(&self, t: &Tile) -> Result<Vec<u8>, LedgerError> {
        let size = self.size().await?;
        if !t.is_within(size) {
            return Err(LedgerError::BeyondTree {
                index: t.record_range().end,
                size,
            });
        }
        match t.kind() {
            TileKind::Hashes { .. } => {
                let idx =
                    tile::tile_hash_indexes(t).map_err(|e| LedgerError::Invalid(e.to_string()))?;
                let hashes = self.read_hashes(idx).await?;
                tile::tile_data_from_hashes(t, &hashes)
                    .map_err(|e| LedgerError::Invalid(e.to_string()))
            }
            TileKind::Entries => {
                let r = t.record_range();
                let entries = self.read_entries(r.start, r.end - r.start).await?;
                let mut all = Vec::with_capacity(entries.len());
                for (k, e) in entries.into_iter().enumerate() {
                    all.push(e.ok_or(LedgerError::Pruned {
                        index: r.start + k as u64,
                    })?);
                }
                tile::entry_bundle(&all).map_err(|e| LedgerError::Invalid(e.to_string()))
            }
        }
    }

    /// The latest signed checkpoint; signs a new one first when the log has
    /// grown since (never one inconsistent with the last: checked by a
    /// consistency proof and the independent verifier).
    pub async fn checkpoint(&self, now: i64) -> Result<String, LedgerError> {
        let size = self.size().await?;
        let last = {
            let mut conn = self.0.db.pool().acquire().await?;
            store::last_checkpoint(&mut conn).await?
        };
        if let Some((s, body, _)) = &last {
            if *s == size {
                return Ok(body.clone());
            }
        }
        let root = self.root_at(size).await?;
        if let Some((s, body, _)) = &last {
            let prev = signed_body(body).map_err(|e| {
                LedgerError::Inconsistent(format!("stored checkpoint unreadable: {e}"))
            })?;
            if *s > size {
                let msg = format!("the log has {size} records but a checkpoint for {s} was signed");
                self.raise_alarm(msg.clone());
                return Err(LedgerError::Inconsistent(msg));
            }
            let proof = self.consistency_proof(*s, size).await?;
            if !verify_consistency(*s, size, &prev.root, &root, &proof) {
                let msg = format!("the log no longer extends the checkpoint of size {s}");
                self.raise_alarm(msg.clone());
                return Err(LedgerError::Inconsistent(msg));
            }
        }
        let body = Checkpoint::new(&self.0.origin, size, root)
            .sign(&[&self.0.signer])
            .map_err(io)?;
        let mut conn = self.0.db.pool().acquire().await?;
        store::put_checkpoint(&mut conn, size, &body, now).await?;
        Ok(body)
    }

    pub fn alarm(&self) -> Option<String> {
        self.0.alarm.read().ok().and_then(|a| a.clone())
    }

    fn raise_alarm(&self, msg: String) {
        if let Ok(mut a) = self.0.alarm.write() {
            *a = Some(msg.clone());
        }
        if let Ok(mut a) = ALARM.write() {
            *a = Some(msg);
        }
    }

    /// The server's own periodic work: sign a checkpoint when the log has
    /// grown, and verify the whole log now and then; a mismatch raises the
    /// alarm (a banner for the セキュリティ総括管理者) and is itself a record.
    /// Also prunes records past their retention, at the default
    /// `ledger.prune_secs` ([`Ledger::watch_every`] takes the interval).
    pub async fn watch(
        self,
        checkpoint_every: Duration,
        verify_every: Duration,
        clock: crate::clock::Clock,
    ) {
        let prune_every =
            Duration::from_secs(crate::config::LedgerConfig::default().prune_secs.max(60));
        self.watch_every(checkpoint_every, verify_every, prune_every, clock)
            .await
    }

    /// As [`Ledger::watch`], pruning the content of records past their
    /// retention every `prune_every` (K16.2.1, [`Ledger::prune_expired`]).
    /// Pruning runs beside the signing and verification, so a long first
    /// run does not hold checkpoints back.
    pub async fn watch_every(
        self,
        checkpoint_every: Duration,
        verify_every: Duration,
        prune_every: Duration,
        clock: crate::clock::Clock,
    ) {
        let pruning = async {
            let mut prune = tokio::time::interval(prune_every);
            prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                prune.tick().await;
                if let Err(e) = self.prune_expired(clock.unix_micros()).await {
                    tracing::error!(error = %e, "pruning records past their retention failed");
                }
            }
        };
        tokio::join!(
            pruning,
            self.sign_and_verify(checkpoint_every, verify_every, &clock)
        );
    }

    async fn sign_and_verify(
        &self,
        checkpoint_every: Duration,
        verify_every: Duration,
        clock: &crate::clock::Clock,
    ) {
        let mut sign = tokio::time::interval(checkpoint_every);
        let mut verify = tokio::time::interval(verify_every);
        loop {
            tokio::select! {
                _ = sign.tick() => {
                    if let Err(e) = self.checkpoint(clock.unix()).await {
                        tracing::error!(error = %e, "signing a checkpoint failed");
                    }
                }
                _ = verify.tick() => {
                    if let Err(e) = self.verify_and_record(clock).await {
                        tracing::error!(error = %e, "verifying the ledger failed");
                    }
                }
            }
        }
    }

    /// Verifies the whole log ([`Ledger::verify`]) and writes the outcome as
    /// a `ledger.verify` record (K16.2.2), which the compliance check reads.
    pub async fn verify_and_record(
        &self,
        clock: &crate::clock::Clock,
    ) -> Result<Verified, LedgerError> {
        let v = self.verify().await?;
        let ok = v.problem.is_none();
        let rec = crate::records::Record::new(crate::records::Who::Scheduler, "ledger.verify", "ledger", "K16.2.2")
            .outcome(if ok { crate::records::Outcome::Success } else { crate::records::Outcome::Failure })
            .detail(serde_json::json!({ "size": v.size, "problem": v.problem, "first_bad": v.first_bad }));
        if !ok {
            tracing::error!(problem = ?v.problem, first_bad = ?v.first_bad, "the ledger does not verify");
        }
        let written = async {
            let mut tx = self.0.db.begin().await?;
            crate::records::append(&mut tx, clock.unix_micros(), &rec).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "recording a verification failed");
        }
        Ok(v)
    }

    /// Recomputes the whole tree from the stored records and compares every
    /// stored hash and the last signed checkpoint; names the first record
    /// that does not match.
    pub async fn verify(&self) -> Result<Verified, LedgerError> {
        let (last, keys) = {
            let mut conn = self.0.db.pool().acquire().await?;
            (
                store::last_checkpoint(&mut conn).await?,
                store::keys(&mut conn).await?,
            )
        };
        // The latest checkpoint must carry a valid signature by a key the
        // ledger has used (the current one, or one retired by a rotation).
        if let Some((size, body, _)) = &last {
            let known: Vec<mamori_ledger::note::Verifier> = keys
                .iter()
                .filter_map(|k| mamori_ledger::note::Verifier::parse(&k.key).ok())
                .collect();
            let signed = mamori_ledger::note::open(body.as_bytes(), &known)
                .map(|n| !n.verified.is_empty())
                .unwrap_or(false);
            if !signed {
                let msg = format!(
                    "the checkpoint of size {size} is not signed by any key the ledger has used"
                );
                self.raise_alarm(msg.clone());
                return Ok(Verified::bad(*size, msg, None));
            }
        }
        let trusted = last.and_then(|(_, body, _)| signed_body(&body).ok());
        let v = match &self.0.backend {
            Backend::File(log) => {
                let snapshot = log
                    .read()
                    .map_err(|_| LedgerError::Storage("log lock poisoned".into()))?
                    .store()
                    .snapshot()
                    .map_err(io)?;
                tokio::task::spawn_blocking(move || verify_file(&snapshot, trusted.as_ref()))
                    .await
                    .map_err(io)?
            }
            Backend::Sql => self.verify_sql(trusted.as_ref()).await?,
        };
        if let Some(bad) = &v.problem {
            self.raise_alarm(bad.clone());
        }
        Ok(v)
    }

    async fn verify_sql(&self, trusted: Option<&Checkpoint>) -> Result<Verified, LedgerError> {
        let size = self.size().await?;
        let mut v = StreamVerifier::new();
        let mut conn = self.0.db.pool().acquire().await?;
        let mut at = 0;
        while at < size {
            let n = (size - at).min(2000);
            let entries = store::read_entries(&mut conn, at, n).await?;
            let h0 = tree::stored_hash_count(at);
            let h1 = tree::stored_hash_count(at + n);
            let hashes = store::hash_range(&mut conn, h0, h1 - h0).await?;
            let mut by_idx = std::collections::HashMap::new();
            for (i, e) in entries {
                by_idx.insert(i, e);
            }
            let mut hmap = std::collections::HashMap::new();
            for (i, h) in hashes {
                hmap.insert(i, h);
            }
            for i in at..at + n {
                if trusted.is_some_and(|c| c.size == i && c.root != v.root()) {
                    return Ok(Verified::bad(
                        size,
                        format!(
                            "record {}: the log does not match the signed checkpoint of size {i}",
                            i.saturating_sub(1)
                        ),
                        Some(i.saturating_sub(1)),
                    ));
                }
                let (s0, s1) = (tree::stored_hash_count(i), tree::stored_hash_count(i + 1));
                let mut stored = Vec::with_capacity((s1 - s0) as usize);
                for k in s0..s1 {
                    match hmap
                        .get(&k)
                        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                    {
                        Some(h) => stored.push(Hash(h)),
                        None => {
                            return Ok(Verified::bad(
                                size,
                                format!("record {i}: stored hash {k} is missing"),
                                Some(i),
                            ))
                        }
                    }
                }
                let entry = match by_idx.get(&i) {
                    Some(e) => e.as_deref(),
                    None => {
                        return Ok(Verified::bad(
                            size,
                            format!("record {i} is missing"),
                            Some(i),
                        ))
                    }
                };
                if let Err(p) = v.push(entry, &stored) {
                    return Ok(Verified::bad(
                        size,
                        format!("record {}: {p:?}", p.index().unwrap_or(i)),
                        Some(p.index().unwrap_or(i)),
                    ));
                }
            }
            at += n;
        }
        if let Some(c) = trusted {
            if c.size == size && c.root != v.root() || c.size > size {
                return Ok(Verified::bad(
                    size,
                    format!(
                        "the log does not match the signed checkpoint of size {}",
                        c.size
                    ),
                    None,
                ));
            }
        }
        Ok(Verified {
            size,
            root: v.root(),
            problem: None,
            first_bad: None,
        })
    }
}

// ---- Retention (K16.2.1, SPEC §3.5) ----

/// The ward's two levels (SPEC §3.4), as retention uses them.
pub const SECRET: &str = "secret";
pub const GENERAL: &str = "general";

/// Records examined per query while pruning.
const PRUNE_PAGE: i64 = 2000;
/// Index ranges listed in one `ledger.prune` record (keeps its detail small).
const RANGES_PER_RECORD: usize = 200;
const DAY_US: i64 = 86_400 * 1_000_000;

/// The classification of a record by its sender: the system's entry in
/// the asset register (an asset of kind `system` with the same code, K3.1)
/// if it has one; else its row in the older `system_classification`
/// table; else Mamori's own records (system `mamori`) are general; any
/// other system — unregistered, or unknown, such as `mamori-access`, the
/// decisions on 秘密情報 — is secret, because keeping records longer is the
/// safe side. `store::system_classifications` gathers the first two.
pub fn classification_of(
    explicit: &std::collections::HashMap<String, String>,
    system: &str,
) -> &'static str {
    match explicit.get(system).map(String::as_str) {
        Some(GENERAL) => GENERAL,
        Some(_) => SECRET,
        None if system == "mamori" => GENERAL,
        None => SECRET,
    }
}

/// `1-3,7,9-12` style ranges of sorted, distinct indexes.
fn index_ranges(indexes: &[u64]) -> Vec<std::ops::RangeInclusive<u64>> {
    let mut out: Vec<std::ops::RangeInclusive<u64>> = Vec::new();
    for &i in indexes {
        match out.last_mut() {
            Some(r) if *r.end() + 1 == i => *r = *r.start()..=i,
            _ => out.push(i..=i),
        }
    }
    out
}

/// What one run of [`Ledger::prune_expired`] pruned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub secret: u64,
    pub general: u64,
}

impl Ledger {
    /// Prunes the content of every record past its retention period (the
    /// settings `ledger.retention_days.secret` / `.general`; secret records
    /// are kept for the larger of the two), keeping its leaf hash so the
    /// tree, every checkpoint and every proof still verify. `now_us` is
    /// Unix microseconds. Each pruned span is a `ledger.prune` record
    /// (classification, retention, count and index ranges; never content).
    ///
    /// A record is due when both its own time and its *arrival* are older
    /// than the retention: arrival is bounded by the first checkpoint
    /// covering the record, so a sender cannot get records pruned early by
    /// back-dating them, and nothing is pruned before a checkpoint covers
    /// it. Progress per classification (`ledger_retention`) keeps each run
    /// to what became due since the last one.
    ///
    /// Only this deletes anything from a record, and only its content.
    pub async fn prune_expired(&self, now_us: i64) -> Result<PruneReport, LedgerError> {
        let (secret_days, general_days, explicit) = {
            let mut conn = self.0.db.pool().acquire().await?;
            let days = |key: &str, v: i64| {
                let floor = crate::settings::def(key).map_or(365, |d| d.min);
                v.max(floor)
            };
            let s_key = "ledger.retention_days.secret";
            let g_key = "ledger.retention_days.general";
            let secret = days(s_key, crate::settings::get(&mut conn, s_key).await?);
            let general = days(g_key, crate::settings::get(&mut conn, g_key).await?);
            let explicit = store::system_classifications(&mut conn).await?;
            (secret.max(general), general, explicit)
        };
        let mut report = PruneReport::default();
        for (class, days) in [(SECRET, secret_days), (GENERAL, general_days)] {
            let cutoff = now_us.saturating_sub(days.saturating_mul(DAY_US));
            let size = self.size().await?;
            let (bound, done_bound, done_cutoff) = {
                let mut conn = self.0.db.pool().acquire().await?;
                let bound = store::checkpointed_by(&mut conn, cutoff.div_euclid(1_000_000)).await?;
                let (b, c) = store::retention_progress(&mut conn, class).await?;
                (bound.min(size), b, c)
            };
            if bound <= done_bound && cutoff <= done_cutoff {
                continue;
            }
            let mine = |system: &str| classification_of(&explicit, system) == class;
            let mut pruned = 0;
            // Records that arrived since the last run.
            let mut from = done_bound;
            while from < bound {
                let rows = {
                    let mut conn = self.0.db.pool().acquire().await?;
                    store::due_by_index(&mut conn, from, bound, cutoff, PRUNE_PAGE).await?
                };
                let Some((last, _)) = rows.last() else { break };
                from = last + 1;
                let due: Vec<u64> = rows
                    .iter()
                    .filter(|(_, s)| mine(s))
                    .map(|(i, _)| *i)
                    .collect();
                pruned += self.prune_indexes(class, days, &due, now_us).await?;
                if (rows.len() as i64) < PRUNE_PAGE {
                    break;
                }
            }
            // Records that arrived earlier and whose own time has come.
            let below = bound.min(done_bound);
            if cutoff > done_cutoff && below > 0 {
                let mut after = None;
                loop {
                    let rows = {
                        let mut conn = self.0.db.pool().acquire().await?;
                        store::due_by_time(&mut conn, done_cutoff, cutoff, below, after, PRUNE_PAGE)
                            .await?
                    };
                    let Some((i, t, _)) = rows.last() else { break };
                    after = Some((*t, *i));
                    let mut due: Vec<u64> = rows
                        .iter()
                        .filter(|(_, _, s)| mine(s))
                        .map(|(i, _, _)| *i)
                        .collect();
                    due.sort_unstable();
                    pruned += self.prune_indexes(class, days, &due, now_us).await?;
                    if (rows.len() as i64) < PRUNE_PAGE {
                        break;
                    }
                }
            }
            let mut conn = self.0.db.pool().acquire().await?;
            store::set_retention_progress(&mut conn, class, bound, cutoff).await?;
            if class == SECRET {
                report.secret = pruned;
            } else {
                report.general = pruned;
            }
        }
        Ok(report)
    }

    /// Prunes `indexes` (sorted) in the backend and records each span of
    /// up to [`RANGES_PER_RECORD`] ranges. On the SQL log the prune and its
    /// record commit together, under the writer's lock; on the file log the
    /// prune is made durable first (under the log's write lock), then
    /// recorded: a crash in between repeats the prune (a no-op) and its
    /// record at the next run, as the progress was not saved.
    async fn prune_indexes(
        &self,
        class: &str,
        days: i64,
        indexes: &[u64],
        now_us: i64,
    ) -> Result<u64, LedgerError> {
        let ranges = index_ranges(indexes);
        let mut total = 0;
        for chunk in ranges.chunks(RANGES_PER_RECORD) {
            let idx: Vec<u64> = chunk.iter().flat_map(|r| r.clone()).collect();
            let listed: Vec<String> = chunk
                .iter()
                .map(|r| {
                    if r.start() == r.end() {
                        r.start().to_string()
                    } else {
                        format!("{}-{}", r.start(), r.end())
                    }
                })
                .collect();
            let rec = crate::records::Record::new(
                crate::records::Who::Scheduler,
                "ledger.prune",
                "ledger",
                "K16.2.1",
            )
            .detail(serde_json::json!({
                "classification": class,
                "retention_days": days,
                "count": idx.len(),
                "ranges": listed,
            }));
            match &self.0.backend {
                Backend::File(log) => {
                    let log = Arc::clone(log);
                    let list = idx.clone();
                    tokio::task::spawn_blocking(move || {
                        // The write lock keeps the prune apart from appends.
                        let log = log
                            .write()
                            .map_err(|_| LedgerError::Storage("log lock poisoned".into()))?;
                        log.store().prune(&list).map_err(io)
                    })
                    .await
                    .map_err(io)??;
                    let mut tx = self.0.db.begin().await?;
                    crate::records::append(&mut tx, now_us, &rec).await?;
                    tx.commit().await?;
                }
                Backend::Sql => {
                    let postgres = self.0.db.engine() == Engine::Postgres;
                    let mut tx = self.0.db.begin().await?;
                    store::lock_writer(&mut tx, postgres).await?;
                    store::prune_entries(&mut tx, &idx).await?;
                    crate::records::append(&mut tx, now_us, &rec).await?;
                    tx.commit().await?;
                }
            }
            total += idx.len() as u64;
        }
        if total > 0 {
            self.poke();
        }
        Ok(total)
    }
}

/// Verification outcome.
#[derive(Debug, Clone)]
pub struct Verified {
    pub size: u64,
    pub root: Hash,
    pub problem: Option<String>,
    pub first_bad: Option<u64>,
}

impl Verified {
    fn bad(size: u64, problem: String, first_bad: Option<u64>) -> Verified {
        Verified {
            size,
            root: Hash([0; 32]),
            problem: Some(problem),
            first_bad,
        }
    }
}

/// Full verification of a file store (also used by `mamori ledger verify`).
pub fn verify_file(store: &FileStore, trusted: Option<&Checkpoint>) -> Verified {
    let report = mamori_ledger::verify_store(store, trusted);
    let size = mamori_ledger::Store::size(store);
    match report.problem {
        None => Verified {
            size,
            root: report_root(store, size),
            problem: None,
            first_bad: None,
        },
        Some(p) => Verified {
            size,
            root: Hash([0; 32]),
            first_bad: p.index(),
            problem: Some(format!("{p:?}")),
        },
    }
}

fn report_root(store: &FileStore, size: u64) -> Hash {
    tree::tree_hash(size, store).unwrap_or(Hash([0; 32]))
}

/// The checkpoint of a stored signed note (its body, before the blank line
/// that starts the signatures).
fn signed_body(note: &str) -> Result<Checkpoint, mamori_ledger::CheckpointError> {
    let body = note.split("\n\n").next().unwrap_or("");
    Checkpoint::parse(&format!("{body}\n"))
}

/// Checkpoint origins are key names: no spaces or `+`.
fn signer_origin(origin: &str) -> String {
    origin.replace([' ', '+'], "-")
}

/// One of Mamori's own records as a ledger record.
fn own_record(r: &crate::records::store::StoredRecord) -> AccessRecord {
    let detail = serde_json::json!({ "clause": r.clause, "detail": r.detail }).to_string();
    let clip = |s: &str, max: usize| -> String {
        let mut out: String = s.chars().filter(|c| !c.is_control()).collect();
        while out.len() > max {
            out.pop();
        }
        if out.is_empty() {
            "-".into()
        } else {
            out
        }
    };
    AccessRecord {
        time_micros: r.time_us,
        system: "mamori".into(),
        event_id: format!("r{}", r.index),
        actor: clip(&r.actor, mamori_ledger::record::MAX_ACTOR),
        action: clip(&r.action, mamori_ledger::record::MAX_ACTION),
        asset: clip(&r.target, mamori_ledger::record::MAX_ASSET),
        result: AccessResult::parse(&r.result).unwrap_or(AccessResult::Success),
        source_address: (!r.source_ip.is_empty())
            .then(|| clip(&r.source_ip, mamori_ledger::record::MAX_SOURCE_ADDRESS)),
        detail: (detail.len() <= mamori_ledger::record::MAX_DETAIL).then_some(detail),
        salt: mamori_ledger::record::new_salt(),
    }
}
