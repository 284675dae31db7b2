//! All SQL of incidents, their steps, timeline, attachments, drafts and
//! notifications. Failure records and procedures: `failures::store`.

use super::{AttachmentView, EntryView, IncidentSummary, StepView};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use sqlx::any::AnyRow;
use sqlx::Row;

const SUMMARY_SELECT: &str = "SELECT i.id, i.kind, i.lost_item, i.title, i.noticed_at, i.system_code,
    i.reporter_id, p.name_kanji, i.reporter_unit_id, u.name, i.outside_org, i.status, i.security,
    i.created_at, i.description,
    (SELECT COUNT(*) FROM incident_steps s WHERE s.incident_id = i.id AND s.completed_at IS NULL AND s.due_at < $1) AS overdue
    FROM incidents i JOIN persons p ON p.id = i.reporter_id
    LEFT JOIN org_units u ON u.id = i.reporter_unit_id";

fn summary_from_row(r: &AnyRow) -> Result<(IncidentSummary, String), sqlx::Error> {
    Ok((
        IncidentSummary {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            lost_item: r.try_get(2)?,
            title: r.try_get(3)?,
            noticed_at: r.try_get(4)?,
            system_code: r.try_get(5)?,
            reporter_id: PersonId(r.try_get(6)?),
            reporter_name: r.try_get(7)?,
            reporter_unit_id: r.try_get::<Option<i64>, _>(8)?.map(OrgUnitId),
            reporter_unit_name: r.try_get(9)?,
            outside_org: r.try_get::<i64, _>(10)? != 0,
            status: r.try_get(11)?,
            security: r.try_get::<i64, _>(12)? != 0,
            created_at: r.try_get(13)?,
            overdue: r.try_get::<i64, _>(15)? > 0,
        },
        r.try_get(14)?,
    ))
}

pub struct NewIncident<'a> {
    pub kind: &'a str,
    pub lost_item: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub noticed_at: i64,
    pub system_code: &'a str,
    pub reporter_id: PersonId,
    pub reporter_unit_id: Option<OrgUnitId>,
    pub outside_org: bool,
}

pub async fn insert(conn: &mut Conn, n: &NewIncident<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO incidents (kind, lost_item, title, description, noticed_at, system_code, reporter_id,
            reporter_unit_id, outside_org, status, security, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'at_manager', 0, $10, $10) RETURNING id",
    )
    .bind(n.kind)
    .bind(n.lost_item)
    .bind(n.title)
    .bind(n.description)
    .bind(n.noticed_at)
    .bind(n.system_code)
    .bind(n.reporter_id.0)
    .bind(n.reporter_unit_id.map(|u| u.0))
    .bind(i64::from(n.outside_org))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

/// One report with its description.
pub async fn get(
    conn: &mut Conn,
    id: i64,
    now: i64,
) -> Result<Option<(IncidentSummary, String)>, sqlx::Error> {
    let row = sqlx::query(&format!("{SUMMARY_SELECT} WHERE i.id = $2"))
        .bind(now)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(summary_from_row).transpose()
}

/// Takes the report's row lock for this transaction (PostgreSQL; SQLite
/// write transactions are serialised anyway), so two changes to one report
/// — a step acted on while the escalation runs — never both open the next
/// step.
pub async fn lock(conn: &mut Conn, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE incidents SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut Conn,
    id: i64,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE incidents SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_security(conn: &mut Conn, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE incidents SET security = 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Filters of a list. Units: `None` for the whole ward, else these units
/// (already expanded to everything below them).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub reporter: Option<PersonId>,
    pub units: Option<Vec<OrgUnitId>>,
    /// Also reports whose steps or notifications reached this person.
    pub involving: Option<PersonId>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub system_code: Option<String>,
    pub security_only: bool,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// The WHERE clause and its text binds ($2 onwards; $1 is "now").
fn where_clause(f: &Filter) -> (String, Vec<String>) {
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let next = |v: String, binds: &mut Vec<String>| {
        binds.push(v);
        format!("${}", binds.len() + 1)
    };
    let mut who: Vec<String> = Vec::new();
    if let Some(p) = f.reporter {
        who.push(format!("i.reporter_id = {}", p.0));
    }
    if let Some(units) = &f.units {
        if !units.is_empty() {
            // Integers the code produced itself (ARCHITECTURE.md: the only
            // formatted SQL fragments).
            let list: Vec<String> = units.iter().map(|u| u.0.to_string()).collect();
            who.push(format!("i.reporter_unit_id IN ({})", list.join(",")));
        }
    }
    if let Some(p) = f.involving {
        who.push(format!(
            "EXISTS (SELECT 1 FROM incident_steps s WHERE s.incident_id = i.id AND s.person_id = {0})
             OR EXISTS (SELECT 1 FROM notifications n WHERE n.incident_id = i.id AND n.person_id = {0})",
            p.0
        ));
    }
    let restricted = f.reporter.is_some() || f.units.is_some() || f.involving.is_some();
    if restricted {
        if who.is_empty() {
            conds.push("1 = 0".into());
        } else {
            conds.push(format!("({})", who.join(" OR ")));
        }
    }
    if let Some(k) = &f.kind {
        let p = next(k.clone(), &mut binds);
        conds.push(format!("i.kind = {p}"));
    }
    if let Some(s) = &f.status {
        let p = next(s.clone(), &mut binds);
        conds.push(format!("i.status = {p}"));
    }
    if let Some(s) = &f.system_code {
        let p = next(s.clone(), &mut binds);
        conds.push(format!("i.system_code = {p}"));
    }
    if f.security_only {
        conds.push("i.security = 1".into());
    }
    if let Some(t) = f.from {
        conds.push(format!("i.created_at >= {t}"));
    }
    if let Some(t) = f.to {
        conds.push(format!("i.created_at < {t}"));
    }
    let w = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (w, binds)
}

pub async fn list(
    conn: &mut Conn,
    f: &Filter,
    now: i64,
    limit: i64,
) -> Result<Vec<IncidentSummary>, sqlx::Error> {
    let (w, binds) = where_clause(f);
    let sql = format!("{SUMMARY_SELECT}{w} ORDER BY i.created_at DESC, i.id DESC LIMIT {limit}");
    let mut q = sqlx::query(&sql).bind(now);
    for b in &binds {
        q = q.bind(b.clone());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| summary_from_row(r).map(|(s, _)| s))
        .collect()
}

/// Counts by (kind, status) under the same filter.
pub async fn counts(
    conn: &mut Conn,
    f: &Filter,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let (w, binds) = where_clause(f);
    // `$1` is unused here but keeps the numbering of `where_clause`.
    let sql = format!(
        "SELECT i.kind, i.status, COUNT(*) FROM incidents i{w}{} GROUP BY i.kind, i.status ORDER BY i.kind, i.status",
        if w.is_empty() { " WHERE $1 = $1" } else { " AND $1 = $1" }
    );
    let mut q = sqlx::query(&sql).bind(0i64);
    for b in &binds {
        q = q.bind(b.clone());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

// ---------------------------------------------------------------------------
// Steps

pub struct NewStep<'a> {
    pub incident_id: i64,
    pub seq: i64,
    pub role: &'a str,
    pub person_id: Option<PersonId>,
    pub org_unit_id: Option<OrgUnitId>,
    pub substitute: &'a str,
    pub opened_at: i64,
    pub due_at: i64,
}

pub async fn insert_step(conn: &mut Conn, s: &NewStep<'_>) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO incident_steps (incident_id, seq, role, person_id, org_unit_id, substitute, opened_at, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(s.incident_id)
    .bind(s.seq)
    .bind(s.role)
    .bind(s.person_id.map(|p| p.0))
    .bind(s.org_unit_id.map(|u| u.0))
    .bind(s.substitute)
    .bind(s.opened_at)
    .bind(s.due_at)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

const STEP_SELECT: &str =
    "SELECT s.id, s.seq, s.role, s.person_id, p.name_kanji, s.org_unit_id, s.substitute,
    s.opened_at, s.due_at, s.acknowledged_at, s.completed_at, s.escalated_at, s.incident_id
    FROM incident_steps s LEFT JOIN persons p ON p.id = s.person_id";

fn step_from_row(r: &AnyRow, now: i64) -> Result<(i64, StepView), sqlx::Error> {
    let due_at: i64 = r.try_get(8)?;
    let completed_at: Option<i64> = r.try_get(10)?;
    Ok((
        r.try_get(12)?,
        StepView {
            id: r.try_get(0)?,
            seq: r.try_get(1)?,
            role: r.try_get(2)?,
            person_id: r.try_get::<Option<i64>, _>(3)?.map(PersonId),
            person_name: r.try_get(4)?,
            org_unit_id: r.try_get::<Option<i64>, _>(5)?.map(OrgUnitId),
            substitute: r.try_get(6)?,
            opened_at: r.try_get(7)?,
            due_at,
            acknowledged_at: r.try_get(9)?,
            completed_at,
            escalated_at: r.try_get(11)?,
            overdue: completed_at.is_none() && due_at < now,
        },
    ))
}

pub async fn steps(conn: &mut Conn, incident: i64, now: i64) -> Result<Vec<StepView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{STEP_SELECT} WHERE s.incident_id = $1 ORDER BY s.seq"
    ))
    .bind(incident)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| step_from_row(r, now).map(|(_, s)| s))
        .collect()
}

/// Open steps past their deadline and not yet escalated: (incident, step).
pub async fn overdue_steps(conn: &mut Conn, now: i64) -> Result<Vec<(i64, StepView)>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{STEP_SELECT} WHERE s.completed_at IS NULL AND s.escalated_at IS NULL AND s.due_at < $1
         ORDER BY s.due_at, s.id LIMIT 500"
    ))
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| step_from_row(r, now)).collect()
}

pub async fn acknowledge_step(conn: &mut Conn, step: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE incident_steps SET acknowledged_at = $1 WHERE id = $2 AND acknowledged_at IS NULL",
    )
    .bind(now)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(())
}

/// Completes a step (acknowledging it too if it was not). Returns whether
/// this call completed it (a step completes once).
pub async fn complete_step(conn: &mut Conn, step: i64, now: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE incident_steps SET completed_at = $1, acknowledged_at = COALESCE(acknowledged_at, $1)
         WHERE id = $2 AND completed_at IS NULL",
    )
    .bind(now)
    .bind(step)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Marks a step escalated; false if another server did it first.
pub async fn mark_escalated(conn: &mut Conn, step: i64, now: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE incident_steps SET escalated_at = $1 WHERE id = $2 AND escalated_at IS NULL AND completed_at IS NULL",
    )
    .bind(now)
    .bind(step)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

// ---------------------------------------------------------------------------
// Timeline

pub async fn insert_entry(
    conn: &mut Conn,
    incident: i64,
    kind: &str,
    actor: &str,
    at: i64,
    detail: &serde_json::Value,
    record_id: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO incident_entries (incident_id, kind, actor, at, detail, record_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(incident)
    .bind(kind)
    .bind(actor)
    .bind(at)
    .bind(detail.to_string())
    .bind(record_id)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn entries(conn: &mut Conn, incident: i64) -> Result<Vec<EntryView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.id, e.kind, e.actor, p.name_kanji, e.at, e.detail, e.record_id
         FROM incident_entries e
         LEFT JOIN persons p ON e.actor = 'person:' || CAST(p.id AS TEXT)
         WHERE e.incident_id = $1 ORDER BY e.id",
    )
    .bind(incident)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let detail: String = r.try_get(5)?;
            Ok(EntryView {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                actor: r.try_get(2)?,
                actor_name: r.try_get(3)?,
                at: r.try_get(4)?,
                detail: serde_json::from_str(&detail).unwrap_or_default(),
                record_id: r.try_get(6)?,
            })
        })
        .collect()
}

/// The entry kinds present on an incident.
pub async fn entry_kinds(conn: &mut Conn, incident: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT DISTINCT kind FROM incident_entries WHERE incident_id = $1")
        .bind(incident)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

// ---------------------------------------------------------------------------
// Attachments

pub struct NewAttachment<'a> {
    pub incident_id: i64,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub uploaded_by: Option<PersonId>,
}

pub async fn insert_attachment(
    conn: &mut Conn,
    a: &NewAttachment<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO incident_attachments (incident_id, file_name, content_type, size, sha256, uploaded_by, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(a.incident_id)
    .bind(a.file_name)
    .bind(a.content_type)
    .bind(a.size)
    .bind(a.sha256)
    .bind(a.uploaded_by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

fn attachment_from_row(r: &AnyRow) -> Result<AttachmentView, sqlx::Error> {
    let id: i64 = r.try_get(0)?;
    let incident: i64 = r.try_get(6)?;
    Ok(AttachmentView {
        id,
        file_name: r.try_get(1)?,
        content_type: r.try_get(2)?,
        size: r.try_get(3)?,
        sha256: r.try_get(4)?,
        uploaded_at: r.try_get(5)?,
        url: format!("/api/v1/incidents/{incident}/attachments/{id}"),
    })
}

const ATTACHMENT_SELECT: &str =
    "SELECT id, file_name, content_type, size, sha256, uploaded_at, incident_id FROM incident_attachments";

pub async fn attachments(
    conn: &mut Conn,
    incident: i64,
) -> Result<Vec<AttachmentView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{ATTACHMENT_SELECT} WHERE incident_id = $1 ORDER BY id"
    ))
    .bind(incident)
    .fetch_all(conn)
    .await?;
    rows.iter().map(attachment_from_row).collect()
}

pub async fn attachment(
    conn: &mut Conn,
    incident: i64,
    id: i64,
) -> Result<Option<AttachmentView>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "{ATTACHMENT_SELECT} WHERE incident_id = $1 AND id = $2"
    ))
    .bind(incident)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(attachment_from_row).transpose()
}

// ---------------------------------------------------------------------------
// Drafts (a report form that did not go through is kept for its author)

pub async fn save_draft(
    conn: &mut Conn,
    person: PersonId,
    body: &serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO incident_drafts (person_id, body, saved_at) VALUES ($1, $2, $3)
         ON CONFLICT (person_id) DO UPDATE SET body = excluded.body, saved_at = excluded.saved_at",
    )
    .bind(person.0)
    .bind(body.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn draft(
    conn: &mut Conn,
    person: PersonId,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let row = sqlx::query("SELECT body FROM incident_drafts WHERE person_id = $1")
        .bind(person.0)
        .fetch_optional(conn)
        .await?;
    Ok(row
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

pub async fn delete_draft(conn: &mut Conn, person: PersonId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM incident_drafts WHERE person_id = $1")
        .bind(person.0)
        .execute(conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// In-app notifications

pub async fn notify(
    conn: &mut Conn,
    person: PersonId,
    incident: i64,
    key: &str,
    params: &serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (person_id, incident_id, message_key, params, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(person.0)
    .bind(incident)
    .bind(key)
    .bind(params.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A notification as stored.
pub struct NotificationRow {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub key: String,
    pub params: serde_json::Value,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

pub async fn notifications(
    conn: &mut Conn,
    person: PersonId,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, incident_id, message_key, params, created_at, read_at FROM notifications
         WHERE person_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(person.0)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let params: String = r.try_get(3)?;
            Ok(NotificationRow {
                id: r.try_get(0)?,
                incident_id: r.try_get(1)?,
                key: r.try_get(2)?,
                params: serde_json::from_str(&params).unwrap_or_default(),
                created_at: r.try_get(4)?,
                read_at: r.try_get(5)?,
            })
        })
        .collect()
}

pub async fn mark_read(conn: &mut Conn, person: PersonId, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = $1 WHERE person_id = $2 AND read_at IS NULL",
    )
    .bind(now)
    .bind(person.0)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Whether a person was notified about an incident (so may open it).
pub async fn was_notified(
    conn: &mut Conn,
    person: PersonId,
    incident: i64,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query(
            "SELECT 1 FROM notifications WHERE person_id = $1 AND incident_id = $2 LIMIT 1",
        )
        .bind(person.0)
        .bind(incident)
        .fetch_optional(conn)
        .await?
        .is_some(),
    )
}
