//! All SQL of self-inspection: campaigns, their question snapshots, the
//! departments' inspections, answers and evidence.

use super::{Campaign, Evidence, InspectionSummary, Question};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use sqlx::any::AnyRow;
use sqlx::Row;

const CAMPAIGN_SELECT: &str = "SELECT c.id, c.title, c.fiscal_year, c.starts_on, c.due_on, c.note,
    c.status, c.ordered_by, p.name_kanji, c.created_at, c.closed_at,
    (SELECT COUNT(*) FROM inspection_questions q WHERE q.campaign_id = c.id),
    (SELECT COUNT(*) FROM inspections i WHERE i.campaign_id = c.id),
    (SELECT COUNT(*) FROM inspections i WHERE i.campaign_id = c.id AND i.status = 'submitted')
    FROM inspection_campaigns c LEFT JOIN persons p ON p.id = c.ordered_by";

fn campaign_from_row(r: &AnyRow, today: &str) -> Result<Campaign, sqlx::Error> {
    let due_on: String = r.try_get(4)?;
    Ok(Campaign {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        fiscal_year: r.try_get(2)?,
        starts_on: r.try_get(3)?,
        past_due: due_on.as_str() < today,
        due_on,
        note: r.try_get(5)?,
        status: r.try_get(6)?,
        ordered_by: r.try_get::<Option<i64>, _>(7)?.map(PersonId),
        ordered_by_name: r.try_get(8)?,
        created_at: r.try_get(9)?,
        closed_at: r.try_get(10)?,
        question_count: r.try_get(11)?,
        inspection_count: r.try_get(12)?,
        submitted_count: r.try_get(13)?,
    })
}

pub struct NewCampaign<'a> {
    pub title: &'a str,
    pub fiscal_year: i64,
    pub starts_on: &'a str,
    pub due_on: &'a str,
    pub note: &'a str,
    pub ordered_by: Option<PersonId>,
}

pub async fn insert_campaign(
    conn: &mut Conn,
    n: &NewCampaign<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO inspection_campaigns (title, fiscal_year, starts_on, due_on, note, status, ordered_by, created_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7) RETURNING id",
    )
    .bind(n.title)
    .bind(n.fiscal_year)
    .bind(n.starts_on)
    .bind(n.due_on)
    .bind(n.note)
    .bind(n.ordered_by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn list_campaigns(conn: &mut Conn, today: &str) -> Result<Vec<Campaign>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{CAMPAIGN_SELECT} ORDER BY c.due_on DESC, c.id DESC"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| campaign_from_row(r, today)).collect()
}

pub async fn get_campaign(
    conn: &mut Conn,
    id: i64,
    today: &str,
) -> Result<Option<Campaign>, sqlx::Error> {
    let row = sqlx::query(&format!("{CAMPAIGN_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| campaign_from_row(&r, today)).transpose()
}

pub async fn close_campaign(
    conn: &mut Conn,
    id: i64,
    by: Option<PersonId>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE inspection_campaigns SET status = 'closed', closed_at = $2, closed_by = $3
         WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(now)
    .bind(by.map(|p| p.0))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub struct NewQuestion<'a> {
    pub control_id: &'a str,
    pub clauses: &'a [String],
    pub title_ja: &'a str,
    pub title_en: &'a str,
    pub question_ja: &'a str,
    pub question_en: &'a str,
}

pub async fn insert_question(
    conn: &mut Conn,
    campaign: i64,
    seq: i64,
    q: &NewQuestion<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inspection_questions (campaign_id, seq, control_id, clauses, title_ja, title_en, question_ja, question_en)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(campaign)
    .bind(seq)
    .bind(q.control_id)
    .bind(q.clauses.join(" "))
    .bind(q.title_ja)
    .bind(q.title_en)
    .bind(q.question_ja)
    .bind(q.question_en)
    .execute(conn)
    .await?;
    Ok(())
}

fn split_clauses(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub async fn questions(conn: &mut Conn, campaign: i64) -> Result<Vec<Question>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, seq, control_id, clauses, title_ja, title_en, question_ja, question_en
         FROM inspection_questions WHERE campaign_id = $1 ORDER BY seq",
    )
    .bind(campaign)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Question {
                id: r.try_get(0)?,
                seq: r.try_get(1)?,
                control_id: r.try_get(2)?,
                clauses: split_clauses(&r.try_get::<String, _>(3)?),
                title_ja: r.try_get(4)?,
                title_en: r.try_get(5)?,
                question_ja: r.try_get(6)?,
                question_en: r.try_get(7)?,
            })
        })
        .collect()
}

/// Org units that have a セキュリティ管理者 of their own on `date`, with the
/// first holder: the departments a campaign goes to.
pub async fn departments(
    conn: &mut Conn,
    date: &str,
) -> Result<Vec<(OrgUnitId, String, PersonId, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.id, u.name, p.id, p.name_kanji FROM role_assignments ra
         JOIN org_units u ON u.id = ra.org_unit_id JOIN persons p ON p.id = ra.person_id
         WHERE ra.role = 'security_manager'
           AND ra.valid_from <= $1 AND (ra.valid_to IS NULL OR ra.valid_to >= $1)
           AND u.valid_from <= $1 AND (u.valid_to IS NULL OR u.valid_to >= $1)
           AND p.status = 'active'
         ORDER BY u.code, u.id, ra.valid_from, ra.id",
    )
    .bind(date)
    .fetch_all(conn)
    .await?;
    let mut out: Vec<(OrgUnitId, String, PersonId, String)> = Vec::new();
    for r in &rows {
        let unit = OrgUnitId(r.try_get(0)?);
        if out.iter().any(|d| d.0 == unit) {
            continue;
        }
        out.push((unit, r.try_get(1)?, PersonId(r.try_get(2)?), r.try_get(3)?));
    }
    Ok(out)
}

pub async fn insert_inspection(
    conn: &mut Conn,
    campaign: i64,
    unit: OrgUnitId,
    manager: Option<PersonId>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO inspections (campaign_id, org_unit_id, manager_id, status, updated_at)
         VALUES ($1, $2, $3, 'not_started', $4) RETURNING id",
    )
    .bind(campaign)
    .bind(unit.0)
    .bind(manager.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

const INSPECTION_SELECT: &str = "SELECT i.id, i.campaign_id, c.title, c.status, c.due_on,
    i.org_unit_id, u.name, i.manager_id, p.name_kanji, i.status, i.updated_at, i.submitted_at,
    i.returned_at, i.return_reason
    FROM inspections i JOIN inspection_campaigns c ON c.id = i.campaign_id
    JOIN org_units u ON u.id = i.org_unit_id LEFT JOIN persons p ON p.id = i.manager_id";

fn inspection_from_row(r: &AnyRow) -> Result<InspectionSummary, sqlx::Error> {
    Ok(InspectionSummary {
        id: r.try_get(0)?,
        campaign_id: r.try_get(1)?,
        campaign_title: r.try_get(2)?,
        campaign_status: r.try_get(3)?,
        due_on: r.try_get(4)?,
        org_unit_id: OrgUnitId(r.try_get(5)?),
        org_unit_name: r.try_get(6)?,
        manager_id: r.try_get::<Option<i64>, _>(7)?.map(PersonId),
        manager_name: r.try_get(8)?,
        status: r.try_get(9)?,
        updated_at: r.try_get(10)?,
        submitted_at: r.try_get(11)?,
        returned_at: r.try_get(12)?,
        return_reason: r.try_get(13)?,
    })
}

/// Inspections of one campaign (or all), newest campaign first.
pub async fn list_inspections(
    conn: &mut Conn,
    campaign: Option<i64>,
) -> Result<Vec<InspectionSummary>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{INSPECTION_SELECT} WHERE ($1 = 0 OR i.campaign_id = $1)
         ORDER BY c.due_on DESC, c.id DESC, u.code, i.id"
    ))
    .bind(campaign.unwrap_or(0))
    .fetch_all(conn)
    .await?;
    rows.iter().map(inspection_from_row).collect()
}

pub async fn get_inspection(
    conn: &mut Conn,
    id: i64,
) -> Result<Option<InspectionSummary>, sqlx::Error> {
    let row = sqlx::query(&format!("{INSPECTION_SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(inspection_from_row).transpose()
}

/// The check results frozen at submission (JSON), or `""`.
pub async fn frozen_checks(conn: &mut Conn, id: i64) -> Result<String, sqlx::Error> {
    let row = sqlx::query("SELECT checks FROM inspections WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await?;
    row.try_get(0)
}

/// (question id, answer, comment) of an inspection.
pub async fn answers(
    conn: &mut Conn,
    inspection: i64,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT question_id, answer, comment FROM inspection_answers WHERE inspection_id = $1",
    )
    .bind(inspection)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

pub async fn put_answer(
    conn: &mut Conn,
    inspection: i64,
    question: i64,
    answer: &str,
    comment: &str,
    by: Option<PersonId>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inspection_answers (inspection_id, question_id, answer, comment, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (inspection_id, question_id) DO UPDATE SET answer = excluded.answer,
           comment = excluded.comment, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(inspection)
    .bind(question)
    .bind(answer)
    .bind(comment)
    .bind(now)
    .bind(by.map(|p| p.0))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn clear_answer(
    conn: &mut Conn,
    inspection: i64,
    question: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM inspection_answers WHERE inspection_id = $1 AND question_id = $2")
        .bind(inspection)
        .bind(question)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a draft saved (a returned inspection stays `returned` until it
/// is submitted again).
pub async fn touch(
    conn: &mut Conn,
    id: i64,
    by: Option<PersonId>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE inspections SET status = CASE WHEN status = 'not_started' THEN 'draft' ELSE status END,
           updated_at = $2, updated_by = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(by.map(|p| p.0))
    .execute(conn)
    .await?;
    Ok(())
}

/// Submits, if not submitted already; returns whether it changed.
pub async fn submit(
    conn: &mut Conn,
    id: i64,
    by: Option<PersonId>,
    now: i64,
    checks: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE inspections SET status = 'submitted', submitted_at = $2, submitted_by = $3,
           updated_at = $2, updated_by = $3, checks = $4
         WHERE id = $1 AND status <> 'submitted'",
    )
    .bind(id)
    .bind(now)
    .bind(by.map(|p| p.0))
    .bind(checks)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Returns a submitted inspection for correction; returns whether it changed.
pub async fn return_for_correction(
    conn: &mut Conn,
    id: i64,
    by: Option<PersonId>,
    now: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE inspections SET status = 'returned', returned_at = $2, returned_by = $3,
           return_reason = $4, updated_at = $2, updated_by = $3, checks = ''
         WHERE id = $1 AND status = 'submitted'",
    )
    .bind(id)
    .bind(now)
    .bind(by.map(|p| p.0))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub struct NewEvidence<'a> {
    pub inspection_id: i64,
    pub question_id: i64,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub uploaded_by: Option<PersonId>,
}

pub async fn insert_evidence(
    conn: &mut Conn,
    n: &NewEvidence<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO inspection_evidence (inspection_id, question_id, file_name, content_type, size, sha256, uploaded_by, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(n.inspection_id)
    .bind(n.question_id)
    .bind(n.file_name)
    .bind(n.content_type)
    .bind(n.size)
    .bind(n.sha256)
    .bind(n.uploaded_by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

const EVIDENCE_SELECT: &str = "SELECT id, inspection_id, question_id, file_name, content_type,
    size, sha256, uploaded_at FROM inspection_evidence";

fn evidence_from_row(r: &AnyRow) -> Result<Evidence, sqlx::Error> {
    let id: i64 = r.try_get(0)?;
    let inspection: i64 = r.try_get(1)?;
    Ok(Evidence {
        id,
        question_id: r.try_get(2)?,
        file_name: r.try_get(3)?,
        content_type: r.try_get(4)?,
        size: r.try_get(5)?,
        sha256: r.try_get(6)?,
        uploaded_at: r.try_get(7)?,
        url: format!("/api/v1/inspections/{inspection}/evidence/{id}"),
    })
}

pub async fn evidence_of(conn: &mut Conn, inspection: i64) -> Result<Vec<Evidence>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{EVIDENCE_SELECT} WHERE inspection_id = $1 ORDER BY question_id, id"
    ))
    .bind(inspection)
    .fetch_all(conn)
    .await?;
    rows.iter().map(evidence_from_row).collect()
}

pub async fn evidence(
    conn: &mut Conn,
    inspection: i64,
    id: i64,
) -> Result<Option<Evidence>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "{EVIDENCE_SELECT} WHERE inspection_id = $1 AND id = $2"
    ))
    .bind(inspection)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(evidence_from_row).transpose()
}

/// Answers of the submitted inspections of a campaign: (inspection id,
/// unit id, unit name, question id, answer, comment).
pub async fn submitted_answers(
    conn: &mut Conn,
    campaign: i64,
) -> Result<Vec<(i64, OrgUnitId, String, i64, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.id, i.org_unit_id, u.name, a.question_id, a.answer, a.comment
         FROM inspection_answers a JOIN inspections i ON i.id = a.inspection_id
         JOIN org_units u ON u.id = i.org_unit_id
         WHERE i.campaign_id = $1 AND i.status = 'submitted'
         ORDER BY u.code, i.id, a.question_id",
    )
    .bind(campaign)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                OrgUnitId(r.try_get(1)?),
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            ))
        })
        .collect()
}

/// One department whose self-inspection is not filed.
#[derive(Debug, Clone)]
pub struct Unfiled {
    pub inspection_id: i64,
    pub org_unit_id: OrgUnitId,
    pub org_unit_name: String,
    pub campaign_id: i64,
    pub campaign_title: String,
    pub due_on: String,
    pub status: String,
}

/// For each department, its latest inspection whose campaign's deadline
/// is before `today`, if that one is not submitted. A later campaign past
/// its deadline supersedes an earlier one (the department is judged on
/// its latest period); closing a campaign does not excuse it.
pub async fn unfiled(conn: &mut Conn, today: &str) -> Result<Vec<Unfiled>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.id, i.org_unit_id, u.name, c.id, c.title, c.due_on, i.status
         FROM inspections i JOIN inspection_campaigns c ON c.id = i.campaign_id
         JOIN org_units u ON u.id = i.org_unit_id
         WHERE c.due_on < $1 AND i.status <> 'submitted'
           AND NOT EXISTS (SELECT 1 FROM inspections i2
               JOIN inspection_campaigns c2 ON c2.id = i2.campaign_id
               WHERE i2.org_unit_id = i.org_unit_id AND c2.due_on < $1
                 AND (c2.due_on > c.due_on OR (c2.due_on = c.due_on AND c2.id > c.id)))
         ORDER BY u.code, i.id",
    )
    .bind(today)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Unfiled {
                inspection_id: r.try_get(0)?,
                org_unit_id: OrgUnitId(r.try_get(1)?),
                org_unit_name: r.try_get(2)?,
                campaign_id: r.try_get(3)?,
                campaign_title: r.try_get(4)?,
                due_on: r.try_get(5)?,
                status: r.try_get(6)?,
            })
        })
        .collect()
}
