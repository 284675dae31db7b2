//! SQL for policy reviews and the versions they produce (Y10, K34).

use crate::db::Conn;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A review as stored.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub id: i64,
    pub reviewed_on: String,
    pub summary: String,
    pub clauses: String,
    pub outcome: String,
    pub reviewer_name: Option<String>,
    pub reviewer_role: String,
    pub created_at: i64,
}

/// A version added by a review.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub id: i64,
    pub label: String,
    pub effective_on: String,
    pub note: String,
    pub documents: String,
    pub review_id: i64,
}

pub struct NewReview<'a> {
    pub reviewed_on: &'a str,
    pub summary: &'a str,
    pub clauses: &'a str,
    pub outcome: &'a str,
    pub reviewer_id: Option<i64>,
    pub reviewer_role: &'a str,
    pub now: i64,
}

pub async fn insert_review(conn: &mut Conn, r: &NewReview<'_>) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO policy_reviews (reviewed_on, summary, clauses, outcome, reviewer_id, reviewer_role, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(r.reviewed_on)
    .bind(r.summary)
    .bind(r.clauses)
    .bind(r.outcome)
    .bind(r.reviewer_id)
    .bind(r.reviewer_role)
    .bind(r.now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_version(
    conn: &mut Conn,
    label: &str,
    effective_on: &str,
    note: &str,
    documents: &str,
    review_id: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO policy_versions (label, effective_on, note, documents, review_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(label)
    .bind(effective_on)
    .bind(note)
    .bind(documents)
    .bind(review_id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn label_taken(conn: &mut Conn, label: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) FROM policy_versions WHERE label = $1")
        .bind(label)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}

fn review_from_row(r: &AnyRow) -> Result<ReviewRow, sqlx::Error> {
    Ok(ReviewRow {
        id: r.try_get(0)?,
        reviewed_on: r.try_get(1)?,
        summary: r.try_get(2)?,
        clauses: r.try_get(3)?,
        outcome: r.try_get(4)?,
        reviewer_name: r.try_get(5)?,
        reviewer_role: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

const REVIEW_SELECT: &str = "SELECT r.id, r.reviewed_on, r.summary, r.clauses, r.outcome, p.name_kanji, r.reviewer_role, r.created_at
    FROM policy_reviews r LEFT JOIN persons p ON p.id = r.reviewer_id";

/// Every review, newest first.
pub async fn reviews(conn: &mut Conn) -> Result<Vec<ReviewRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{REVIEW_SELECT} ORDER BY r.reviewed_on DESC, r.id DESC"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(review_from_row).collect()
}

pub async fn review(conn: &mut Conn, id: i64) -> Result<Option<ReviewRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{REVIEW_SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(review_from_row).transpose()
}

/// Every version added by a review, oldest first.
pub async fn versions(conn: &mut Conn) -> Result<Vec<VersionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, label, effective_on, note, documents, review_id FROM policy_versions
         ORDER BY effective_on, id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(VersionRow {
                id: r.try_get(0)?,
                label: r.try_get(1)?,
                effective_on: r.try_get(2)?,
                note: r.try_get(3)?,
                documents: r.try_get(4)?,
                review_id: r.try_get(5)?,
            })
        })
        .collect()
}
