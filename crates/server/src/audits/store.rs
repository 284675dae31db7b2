//! All SQL of external audits. Routes never see a row.

use super::{phase, AuditSummary, AuditorView, FindingEntry, FindingSummary};
use crate::db::Conn;
use crate::ids::{AccountId, PersonId};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The audit window of an auditor account, if the account was created for
/// an audit.
#[derive(Debug, Clone)]
pub struct AuditorWindow {
    pub starts_on: String,
    pub ends_on: String,
    pub status: String,
}

pub async fn auditor_window(
    conn: &mut Conn,
    account: AccountId,
) -> Result<Option<AuditorWindow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT a.starts_on, a.ends_on, a.status FROM audit_auditors x
         JOIN audits a ON a.id = x.audit_id WHERE x.account_id = $1",
    )
    .bind(account.0)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(AuditorWindow {
            starts_on: r.try_get(0)?,
            ends_on: r.try_get(1)?,
            status: r.try_get(2)?,
        })
    })
    .transpose()
}

pub struct NewAudit<'a> {
    pub title: &'a str,
    pub scope: &'a str,
    pub auditor_org: &'a str,
    pub starts_on: &'a str,
    pub ends_on: &'a str,
    pub ordered_by: Option<PersonId>,
}

pub async fn insert_audit(conn: &mut Conn, a: &NewAudit<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO audits (title, scope, auditor_org, starts_on, ends_on, status, ordered_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $7) RETURNING id",
    )
    .bind(a.title)
    .bind(a.scope)
    .bind(a.auditor_org)
    .bind(a.starts_on)
    .bind(a.ends_on)
    .bind(a.ordered_by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn update_audit(
    conn: &mut Conn,
    id: i64,
    a: &NewAudit<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audits SET title = $1, scope = $2, auditor_org = $3, starts_on = $4, ends_on = $5, updated_at = $6
         WHERE id = $7",
    )
    .bind(a.title)
    .bind(a.scope)
    .bind(a.auditor_org)
    .bind(a.starts_on)
    .bind(a.ends_on)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn close_audit(conn: &mut Conn, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE audits SET status = 'closed', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

const AUDIT_COLS: &str = "a.id, a.title, a.scope, a.auditor_org, a.starts_on, a.ends_on, a.status, a.ordered_by,
    p.name_kanji, a.created_at,
    (SELECT COUNT(*) FROM audit_findings f WHERE f.audit_id = a.id AND f.status <> 'closed'),
    (SELECT COUNT(*) FROM audit_findings f WHERE f.audit_id = a.id AND f.status <> 'closed' AND f.due_on < $1)";

fn audit_row(r: &AnyRow, today: &str) -> Result<AuditSummary, sqlx::Error> {
    let status: String = r.try_get(6)?;
    let starts_on: String = r.try_get(4)?;
    let ends_on: String = r.try_get(5)?;
    Ok(AuditSummary {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        scope: r.try_get(2)?,
        auditor_org: r.try_get(3)?,
        phase: phase(&status, &starts_on, &ends_on, today).into(),
        starts_on,
        ends_on,
        status,
        ordered_by: r.try_get::<Option<i64>, _>(7)?.map(PersonId),
        ordered_by_name: r.try_get(8)?,
        created_at: r.try_get(9)?,
        open_findings: r.try_get(10)?,
        overdue_findings: r.try_get(11)?,
    })
}

pub async fn list_audits(conn: &mut Conn, today: &str) -> Result<Vec<AuditSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {AUDIT_COLS} FROM audits a LEFT JOIN persons p ON p.id = a.ordered_by
         ORDER BY a.starts_on DESC, a.id DESC"
    );
    let rows = sqlx::query(&sql).bind(today).fetch_all(conn).await?;
    rows.iter().map(|r| audit_row(r, today)).collect()
}

pub async fn get_audit(
    conn: &mut Conn,
    id: i64,
    today: &str,
) -> Result<Option<AuditSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {AUDIT_COLS} FROM audits a LEFT JOIN persons p ON p.id = a.ordered_by WHERE a.id = $2"
    );
    let row = sqlx::query(&sql)
        .bind(today)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| audit_row(&r, today)).transpose()
}

pub async fn insert_auditor(
    conn: &mut Conn,
    audit: i64,
    person: PersonId,
    account: AccountId,
    assignment: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_auditors (audit_id, person_id, account_id, assignment_id, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(audit)
    .bind(person.0)
    .bind(account.0)
    .bind(assignment)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn count_auditors(conn: &mut Conn, audit: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) FROM audit_auditors WHERE audit_id = $1")
        .bind(audit)
        .fetch_one(conn)
        .await?;
    row.try_get(0)
}

pub async fn list_auditors(
    conn: &mut Conn,
    audit: i64,
    active: bool,
) -> Result<Vec<AuditorView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT x.person_id, x.account_id, c.login, p.name_kanji FROM audit_auditors x
         JOIN accounts c ON c.id = x.account_id JOIN persons p ON p.id = x.person_id
         WHERE x.audit_id = $1 ORDER BY x.id",
    )
    .bind(audit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditorView {
                person_id: PersonId(r.try_get(0)?),
                account_id: r.try_get(1)?,
                login: r.try_get(2)?,
                name: r.try_get(3)?,
                active,
            })
        })
        .collect()
}

/// The role assignments of an audit's auditors (their 外部監査人 role).
pub async fn auditor_assignments(conn: &mut Conn, audit: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query("SELECT assignment_id FROM audit_auditors WHERE audit_id = $1")
        .bind(audit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Moves the validity of an auditor's role assignment with the audit's period.
pub async fn set_assignment_period(
    conn: &mut Conn,
    assignment: i64,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE role_assignments SET valid_from = $1, valid_to = $2 WHERE id = $3")
        .bind(from)
        .bind(to)
        .bind(assignment)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct NewFinding<'a> {
    pub audit_id: i64,
    pub title: &'a str,
    pub description: &'a str,
    pub severity: &'a str,
    pub clauses: &'a str,
    pub owner_id: PersonId,
    pub due_on: &'a str,
    pub created_by: Option<PersonId>,
}

pub async fn insert_finding(
    conn: &mut Conn,
    f: &NewFinding<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO audit_findings (audit_id, title, description, severity, clauses, owner_id, due_on, status,
                                     created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $9) RETURNING id",
    )
    .bind(f.audit_id)
    .bind(f.title)
    .bind(f.description)
    .bind(f.severity)
    .bind(f.clauses)
    .bind(f.owner_id.0)
    .bind(f.due_on)
    .bind(f.created_by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn set_finding_status(
    conn: &mut Conn,
    id: i64,
    status: &str,
    closed_at: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_findings SET status = $1, closed_at = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(closed_at)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub audit_id: Option<i64>,
    /// Only those this person owns.
    pub owner: Option<PersonId>,
    /// Only those not closed.
    pub open_only: bool,
    /// Only those not closed and past their due date.
    pub overdue_only: bool,
    pub severity: Option<String>,
}

const FINDING_COLS: &str =
    "f.id, f.audit_id, a.title, f.title, f.severity, f.clauses, f.owner_id, p.name_kanji,
    f.due_on, f.status, f.created_at, f.closed_at, f.description";

fn finding_row(r: &AnyRow, today: &str) -> Result<(FindingSummary, String), sqlx::Error> {
    let clauses: String = r.try_get(5)?;
    let status: String = r.try_get(9)?;
    let due_on: String = r.try_get(8)?;
    Ok((
        FindingSummary {
            id: r.try_get(0)?,
            audit_id: r.try_get(1)?,
            audit_title: r.try_get(2)?,
            title: r.try_get(3)?,
            severity: r.try_get(4)?,
            clauses: clauses
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
            owner_id: PersonId(r.try_get(6)?),
            owner_name: r.try_get(7)?,
            overdue: status != "closed" && due_on.as_str() < today,
            due_on,
            status,
            created_at: r.try_get(10)?,
            closed_at: r.try_get(11)?,
        },
        r.try_get(12)?,
    ))
}

pub async fn list_findings(
    conn: &mut Conn,
    f: &FindingFilter,
    today: &str,
) -> Result<Vec<FindingSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {FINDING_COLS} FROM audit_findings f JOIN audits a ON a.id = f.audit_id
         JOIN persons p ON p.id = f.owner_id
         WHERE ($1 = 0 OR f.audit_id = $2) AND ($3 = 0 OR f.owner_id = $4)
           AND ($5 = 0 OR f.status <> 'closed') AND ($6 = 0 OR (f.status <> 'closed' AND f.due_on < $7))
           AND ($8 = '' OR f.severity = $8)
         ORDER BY CASE f.status WHEN 'closed' THEN 1 ELSE 0 END, f.due_on, f.id"
    );
    let rows = sqlx::query(&sql)
        .bind(i64::from(f.audit_id.is_some()))
        .bind(f.audit_id.unwrap_or(0))
        .bind(i64::from(f.owner.is_some()))
        .bind(f.owner.map(|p| p.0).unwrap_or(0))
        .bind(i64::from(f.open_only))
        .bind(i64::from(f.overdue_only))
        .bind(today)
        .bind(f.severity.clone().unwrap_or_default())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| finding_row(r, today).map(|x| x.0))
        .collect()
}

/// A finding and its description.
pub async fn get_finding(
    conn: &mut Conn,
    id: i64,
    today: &str,
) -> Result<Option<(FindingSummary, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {FINDING_COLS} FROM audit_findings f JOIN audits a ON a.id = f.audit_id
         JOIN persons p ON p.id = f.owner_id WHERE f.id = $1"
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.map(|r| finding_row(&r, today)).transpose()
}

pub async fn insert_entry(
    conn: &mut Conn,
    finding: i64,
    kind: &str,
    note: &str,
    actor: &str,
    at: i64,
    record_id: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO audit_finding_entries (finding_id, kind, note, actor, at, record_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(finding)
    .bind(kind)
    .bind(note)
    .bind(actor)
    .bind(at)
    .bind(record_id)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn entries(conn: &mut Conn, finding: i64) -> Result<Vec<FindingEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.id, e.kind, e.note, e.actor, e.at, e.record_id, p.name_kanji
         FROM audit_finding_entries e
         LEFT JOIN persons p ON e.actor = 'person:' || CAST(p.id AS TEXT)
         WHERE e.finding_id = $1 ORDER BY e.id",
    )
    .bind(finding)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FindingEntry {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                note: r.try_get(2)?,
                actor: r.try_get(3)?,
                at: r.try_get(4)?,
                record_id: r.try_get(5)?,
                actor_name: r.try_get(6)?,
            })
        })
        .collect()
}

/// The name of a person, if they exist.
pub async fn person_name(conn: &mut Conn, id: PersonId) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT name_kanji FROM persons WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}
