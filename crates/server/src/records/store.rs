//! SQL for the records table.

use super::Record;
use crate::db::Conn;
use sqlx::Row;

pub async fn insert(conn: &mut Conn, time_us: i64, r: &Record) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO records (time_us, actor, action, target, result, clause, source_ip, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(time_us)
    .bind(r.actor.record_ref())
    .bind(r.action)
    .bind(&r.target)
    .bind(r.outcome.code())
    .bind(r.clause)
    .bind(&r.source_ip)
    .bind(r.detail.to_string())
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

/// A stored record as read back.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StoredRecord {
    pub index: i64,
    pub time_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub clause: String,
    pub source_ip: String,
    pub detail: serde_json::Value,
}

/// Filters for reading records back.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action_prefix: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

fn clean(s: &Option<String>) -> String {
    // PostgreSQL refuses NUL in text; no stored value holds control characters.
    s.as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

pub async fn list(conn: &mut Conn, f: &Filter) -> Result<Vec<StoredRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, time_us, actor, action, target, result, clause, source_ip, detail FROM records
         WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR target = $2)
           AND ($3 = '' OR action LIKE $3) AND ($4 = 0 OR id < $4)
         ORDER BY id DESC LIMIT $5",
    )
    .bind(clean(&f.actor))
    .bind(clean(&f.target))
    .bind(
        f.action_prefix
            .as_ref()
            .map(|_| format!("{}%", clean(&f.action_prefix).replace('%', "")))
            .unwrap_or_default(),
    )
    .bind(f.before.unwrap_or(0))
    .bind(f.limit.clamp(1, 500))
    .fetch_all(conn)
    .await?;
    rows.iter().map(row_to_record).collect()
}

/// Records with an index above `after`, oldest first (the ledger's outbox).
pub async fn after(
    conn: &mut Conn,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, time_us, actor, action, target, result, clause, source_ip, detail FROM records
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row_to_record).collect()
}

fn row_to_record(r: &sqlx::any::AnyRow) -> Result<StoredRecord, sqlx::Error> {
    let detail: String = r.try_get(8)?;
    Ok(StoredRecord {
        index: r.try_get(0)?,
        time_us: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        result: r.try_get(5)?,
        clause: r.try_get(6)?,
        source_ip: r.try_get(7)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

pub async fn count(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM records")
        .fetch_one(conn)
        .await?
        .try_get(0)
}
