//! SQL for the ledger: event ids, the search index, checkpoints, the
//! outbox position, and the SQL-backed Merkle log (entries, stored hashes,
//! head). Multi-row inserts keep a batch of 1,000 records to a few
//! statements.

use crate::db::Conn;
use mamori_ledger::Hash;
use sqlx::Row;

/// Rows per multi-row statement. Kept small on purpose: binding a parameter
/// in SQLite looks its name up linearly (`sqlite3_bind_parameter_name`), so
/// a statement with thousands of parameters costs quadratic time; at 400
/// rows it took 57% of ingest CPU. 40 rows × 7 columns stays cheap.
const CHUNK: usize = 40;

/// `($1, $2), ($3, $4), …` for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

fn idx_i64(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// Original indexes of already-known event ids of one system.
pub async fn known_events(
    conn: &mut Conn,
    system: &str,
    ids: &[&str],
) -> Result<Vec<(String, u64)>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT event_id, idx FROM ledger_events WHERE system = $1 AND event_id IN ({list})"
        );
        let mut q = sqlx::query(&sql).bind(system);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64));
        }
    }
    Ok(out)
}

/// One record's searchable fields.
pub struct IndexRow<'a> {
    pub idx: u64,
    pub time_us: i64,
    pub system: &'a str,
    pub event_id: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub asset: &'a str,
    pub result: &'a str,
}

/// Writes event ids and search-index rows for appended records.
pub async fn index(conn: &mut Conn, rows: &[IndexRow<'_>]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO ledger_events (system, event_id, idx) VALUES {}",
            placeholders(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(r.system).bind(r.event_id).bind(idx_i64(r.idx));
        }
        q.execute(&mut *conn).await?;
        let sql = format!(
            "INSERT INTO ledger_index (idx, time_us, system, actor, action, asset, result) VALUES {}",
            placeholders(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(idx_i64(r.idx))
                .bind(r.time_us)
                .bind(r.system)
                .bind(r.actor)
                .bind(r.action)
                .bind(r.asset)
                .bind(r.result);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records indexed so far (the next index the search index expects).
pub async fn indexed_size(conn: &mut Conn) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_index")
        .fetch_one(conn)
        .await?;
    Ok(r.try_get::<i64, _>(0)?.max(0) as u64)
}

pub async fn head(conn: &mut Conn) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("SELECT size FROM ledger_head WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok(r.try_get::<i64, _>(0)?.max(0) as u64)
}

/// Takes the one-writer lock of the SQL log for this transaction, so that
/// several servers sharing one PostgreSQL append one ordered log and it can
/// never fork. (SQLite transactions here already hold the write lock.)
pub async fn lock_writer(conn: &mut Conn, postgres: bool) -> Result<(), sqlx::Error> {
    if postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(72616) ")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn append(
    conn: &mut Conn,
    first: u64,
    entries: &[Vec<u8>],
    first_hash: u64,
    hashes: &[Hash],
) -> Result<(), sqlx::Error> {
    for (n, chunk) in entries.chunks(CHUNK).enumerate() {
        let sql = format!(
            "INSERT INTO ledger_entries (idx, data) VALUES {}",
            placeholders(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (i, e) in chunk.iter().enumerate() {
            q = q
                .bind(idx_i64(first + (n * CHUNK + i) as u64))
                .bind(e.clone());
        }
        q.execute(&mut *conn).await?;
    }
    for (n, chunk) in hashes.chunks(CHUNK).enumerate() {
        let sql = format!(
            "INSERT INTO ledger_hashes (idx, hash) VALUES {}",
            placeholders(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (i, h) in chunk.iter().enumerate() {
            q = q
                .bind(idx_i64(first_hash + (n * CHUNK + i) as u64))
                .bind(h.0.to_vec());
        }
        q.execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE ledger_head SET size = $1 WHERE id = 1")
        .bind(idx_i64(first + entries.len() as u64))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("stored hash {0} is missing or malformed")]
    BadHash(u64),
}

/// Stored hashes by index, in the order asked.
pub async fn read_hashes(conn: &mut Conn, indexes: &[u64]) -> Result<Vec<Hash>, ReadError> {
    let mut found = std::collections::HashMap::with_capacity(indexes.len());
    for chunk in indexes.chunks(CHUNK) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT idx, hash FROM ledger_hashes WHERE idx IN ({list})");
        let mut q = sqlx::query(&sql);
        for i in chunk {
            q = q.bind(idx_i64(*i));
        }
        for r in q.fetch_all(&mut *conn).await? {
            let i = r.try_get::<i64, _>(0)? as u64;
            let bytes: Vec<u8> = r.try_get(1)?;
            let h: [u8; 32] = bytes.try_into().map_err(|_| ReadError::BadHash(i))?;
            found.insert(i, Hash(h));
        }
    }
    indexes
        .iter()
        .map(|i| found.get(i).copied().ok_or(ReadError::BadHash(*i)))
        .collect()
}

/// Stored hashes `start..start + count` in order (for verification).
pub async fn hash_range(
    conn: &mut Conn,
    start: u64,
    count: u64,
) -> Result<Vec<(u64, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT idx, hash FROM ledger_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    )
    .bind(idx_i64(start))
    .bind(idx_i64(start + count))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?)))
        .collect()
}

/// Entries `start..start + count`; `None` for a pruned (or missing) entry.
pub async fn read_entries(
    conn: &mut Conn,
    start: u64,
    count: u64,
) -> Result<Vec<(u64, Option<Vec<u8>>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT idx, data FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    )
    .bind(idx_i64(start))
    .bind(idx_i64(start + count))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?)))
        .collect()
}

pub async fn last_checkpoint(conn: &mut Conn) -> Result<Option<(u64, String, i64)>, sqlx::Error> {
    let r = sqlx::query(
        "SELECT size, body, signed_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

pub async fn put_checkpoint(
    conn: &mut Conn,
    size: u64,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO ledger_checkpoints (size, body, signed_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
        .bind(idx_i64(size))
        .bind(body)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn outbox_position(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT last_record_id FROM ledger_outbox WHERE id = 1")
        .fetch_one(conn)
        .await?
        .try_get(0)
}

pub async fn set_outbox_position(conn: &mut Conn, last: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ledger_outbox SET last_record_id = $1 WHERE id = 1 AND last_record_id < $1",
    )
    .bind(last)
    .execute(conn)
    .await?;
    Ok(())
}

/// Search-index rows for one page of a search.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IndexedRecord {
    pub index: u64,
    pub time_us: i64,
    pub system: String,
    pub actor: String,
    pub action: String,
    pub asset: String,
    pub result: String,
}

// ---- Retention (K16.2.1): see `Ledger::prune_expired` ----

/// Systems with an explicit classification (`secret` or `general`), by
/// code. A system without one is secret (the interim rule in
/// `Ledger::prune_expired`).
pub async fn system_classifications(
    conn: &mut Conn,
) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.code, c.classification FROM systems s
         JOIN system_classification c ON c.system_id = s.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: std::collections::HashMap<String, String> = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    // The asset register classifies systems (K3.1); it wins over the
    // interim table for every system it holds.
    let registered = sqlx::query(
        "SELECT a.code, l.is_secret FROM assets a
         JOIN classification_levels l ON l.axis = 'confidentiality' AND l.code = a.confidentiality
         WHERE a.kind = 'system' AND a.retired_at IS NULL",
    )
    .fetch_all(conn)
    .await?;
    for r in registered {
        let secret: i64 = r.try_get(1)?;
        out.insert(
            r.try_get(0)?,
            if secret != 0 { "secret" } else { "general" }.to_string(),
        );
    }
    Ok(out)
}

/// Makes the pruning job start over (after a system's classification
/// changed), so records that became due under the new one are found.
pub async fn restart_pruning(conn: &mut Conn) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ledger_retention SET bound_idx = 0, cutoff_us = $1")
        .bind(-i64::MAX)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a system's classification (`secret` or `general`); `false` if no
/// system has that code. Interim, until the asset register classifies
/// systems: the caller records the change. Pruning progress starts over,
/// so records that became due under the new classification are found.
pub async fn set_system_classification(
    conn: &mut Conn,
    system: &str,
    classification: &str,
) -> Result<bool, sqlx::Error> {
    let Some(row) = sqlx::query("SELECT id FROM systems WHERE code = $1")
        .bind(system)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(false);
    };
    let id: i64 = row.try_get(0)?;
    sqlx::query(
        "INSERT INTO system_classification (system_id, classification) VALUES ($1, $2)
         ON CONFLICT (system_id) DO UPDATE SET classification = excluded.classification",
    )
    .bind(id)
    .bind(classification)
    .execute(&mut *conn)
    .await?;
    restart_pruning(conn).await?;
    Ok(true)
}

/// How far pruning has gone for a classification: every record of it
/// with `idx < bound` and `time_us <= cutoff` is pruned.
pub async fn retention_progress(
    conn: &mut Conn,
    classification: &str,
) -> Result<(u64, i64), sqlx::Error> {
    let r =
        sqlx::query("SELECT bound_idx, cutoff_us FROM ledger_retention WHERE classification = $1")
            .bind(classification)
            .fetch_optional(conn)
            .await?;
    match r {
        Some(r) => Ok((r.try_get::<i64, _>(0)?.max(0) as u64, r.try_get(1)?)),
        None => Ok((0, -i64::MAX)),
    }
}

pub async fn set_retention_progress(
    conn: &mut Conn,
    classification: &str,
    bound: u64,
    cutoff_us: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE ledger_retention SET bound_idx = $1, cutoff_us = $2 WHERE classification = $3",
    )
    .bind(idx_i64(bound))
    .bind(cutoff_us)
    .bind(classification)
    .execute(conn)
    .await?;
    Ok(())
}

/// The largest log size covered by a checkpoint signed at or before
/// `signed_at` (Unix seconds): every record below it had arrived by then.
pub async fn checkpointed_by(conn: &mut Conn, signed_at: i64) -> Result<u64, sqlx::Error> {
    let r =
        sqlx::query("SELECT COALESCE(MAX(size), 0) FROM ledger_checkpoints WHERE signed_at <= $1")
            .bind(signed_at)
            .fetch_one(conn)
            .await?;
    Ok(r.try_get::<i64, _>(0)?.max(0) as u64)
}

/// Index rows `from <= idx < to` with `time_us <= max_time_us`, by index,
/// at most `limit`: (idx, system). Mamori's `ledger.prune` records are
/// never due: they are what verification checks pruned records against.
pub async fn due_by_index(
    conn: &mut Conn,
    from: u64,
    to: u64,
    max_time_us: i64,
    limit: i64,
) -> Result<Vec<(u64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT idx, system FROM ledger_index WHERE idx >= $1 AND idx < $2 AND time_us <= $3
           AND NOT (system = 'mamori' AND action = 'ledger.prune')
         ORDER BY idx LIMIT $4",
    )
    .bind(idx_i64(from))
    .bind(idx_i64(to))
    .bind(max_time_us)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)?.max(0) as u64, r.try_get(1)?)))
        .collect()
}

/// Index rows with `after_time < time_us <= upto_time` and `idx < below`,
/// by (time, index) after the keyset `after`, at most `limit`:
/// (idx, time_us, system). Never Mamori's `ledger.prune` records.
pub async fn due_by_time(
    conn: &mut Conn,
    after_time: i64,
    upto_time: i64,
    below: u64,
    after: Option<(i64, u64)>,
    limit: i64,
) -> Result<Vec<(u64, i64, String)>, sqlx::Error> {
    let (t0, i0) = after.unwrap_or((after_time, u64::MAX));
    let rows = sqlx::query(
        "SELECT idx, time_us, system FROM ledger_index
         WHERE time_us > $1 AND time_us <= $2 AND idx < $3
           AND (time_us > $4 OR (time_us = $4 AND idx > $5))
           AND NOT (system = 'mamori' AND action = 'ledger.prune')
         ORDER BY time_us, idx LIMIT $6",
    )
    .bind(after_time)
    .bind(upto_time)
    .bind(idx_i64(below))
    .bind(t0)
    .bind(idx_i64(i0))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>(0)?.max(0) as u64,
                r.try_get(1)?,
                r.try_get(2)?,
            ))
        })
        .collect()
}

/// Mamori's `ledger.prune` records not yet moved into the ledger (records
/// table id above `moved`, the outbox position): (time_us, detail).
pub async fn unmoved_prunes(
    conn: &mut Conn,
    moved: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT time_us, detail FROM records WHERE id > $1 AND action = 'ledger.prune' ORDER BY id",
    )
    .bind(moved)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Where the ledger's `ledger.prune` records are, by the search index.
pub async fn prune_record_indexes(conn: &mut Conn) -> Result<Vec<u64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT idx FROM ledger_index WHERE system = 'mamori' AND action = 'ledger.prune' ORDER BY idx",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<i64, _>(0)?.max(0) as u64))
        .collect()
}

/// (idx, time_us) of the index rows `first..=last`.
pub async fn index_times(
    conn: &mut Conn,
    first: u64,
    last: u64,
) -> Result<Vec<(u64, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT idx, time_us FROM ledger_index WHERE idx >= $1 AND idx <= $2")
        .bind(idx_i64(first))
        .bind(idx_i64(last))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)?.max(0) as u64, r.try_get(1)?)))
        .collect()
}

/// Prunes entries of the SQL log (their stored hashes stay). The caller
/// holds the writer lock (`lock_writer`). Returns how many were newly
/// pruned.
pub async fn prune_entries(conn: &mut Conn, indexes: &[u64]) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    for chunk in indexes.chunks(CHUNK) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE ledger_entries SET data = NULL WHERE idx IN ({list}) AND data IS NOT NULL"
        );
        let mut q = sqlx::query(&sql);
        for i in chunk {
            q = q.bind(idx_i64(*i));
        }
        n += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_every_cell() {
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}

// ---- Signing keys (K16.2.2) ----

/// Records a signing key the first time it is used.
pub async fn register_key(conn: &mut Conn, verifier: &str, now: i64) -> Result<(), sqlx::Error> {
    let id = verifier.split('+').nth(1).unwrap_or("").to_string();
    sqlx::query(
        "INSERT INTO ledger_keys (key_id, verifier, activated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(id)
    .bind(verifier)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a key retired and keeps its handover checkpoint.
pub async fn retire_key(
    conn: &mut Conn,
    verifier: &str,
    handover: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ledger_keys SET retired_at = $2, handover = $3 WHERE verifier = $1")
        .bind(verifier)
        .bind(now)
        .bind(handover)
        .execute(conn)
        .await?;
    Ok(())
}

/// A key that has signed checkpoints.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyRow {
    /// The signed-note key id (hex).
    pub key_id: String,
    /// `<name>+<hex id>+<base64>`.
    pub key: String,
    pub activated_at: i64,
    pub retired_at: Option<i64>,
    /// For a retired key: the log at rotation signed by it and its successor.
    pub handover: Option<String>,
}

/// Every key, oldest first.
pub async fn keys(conn: &mut Conn) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT key_id, verifier, activated_at, retired_at, handover FROM ledger_keys
         ORDER BY activated_at, key_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyRow {
                key_id: r.try_get(0)?,
                key: r.try_get(1)?,
                activated_at: r.try_get(2)?,
                retired_at: r.try_get(3)?,
                handover: r.try_get(4)?,
            })
        })
        .collect()
}
