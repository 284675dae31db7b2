//! SQL of the compliance checks: runs and results, and the reads the checks
//! make that no other module's store already offers.

use super::{CheckItem, RunPoint, RunSummary};
use crate::db::Conn;
use sqlx::Row;

/// A check's result as stored.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub check_id: String,
    pub passed: bool,
    pub item_count: i64,
    pub since: Option<i64>,
    pub items: Vec<CheckItem>,
    pub error: bool,
}

pub struct NewRun<'a> {
    pub started_at: i64,
    pub finished_at: i64,
    pub trigger: &'a str,
    pub requested_by: Option<i64>,
    pub passed: i64,
    pub failed: i64,
}

const RUN_SELECT: &str =
    "SELECT id, started_at, finished_at, trigger_kind, requested_by, passed, failed FROM compliance_runs";

fn run_row(r: &sqlx::any::AnyRow) -> Result<RunSummary, sqlx::Error> {
    Ok(RunSummary {
        id: r.try_get(0)?,
        started_at: r.try_get(1)?,
        finished_at: r.try_get(2)?,
        trigger: r.try_get(3)?,
        requested_by: r.try_get(4)?,
        passed: r.try_get(5)?,
        failed: r.try_get(6)?,
    })
}

pub async fn insert_run(conn: &mut Conn, r: &NewRun<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO compliance_runs (started_at, finished_at, trigger_kind, requested_by, passed, failed)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(r.started_at)
    .bind(r.finished_at)
    .bind(r.trigger)
    .bind(r.requested_by)
    .bind(r.passed)
    .bind(r.failed)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

pub async fn set_run_record(conn: &mut Conn, run: i64, record: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE compliance_runs SET record_id = $1 WHERE id = $2")
        .bind(record)
        .bind(run)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_result(conn: &mut Conn, run: i64, r: &ResultRow) -> Result<(), sqlx::Error> {
    let items = serde_json::to_string(&r.items).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO compliance_results (run_id, check_id, passed, item_count, since, items, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run)
    .bind(&r.check_id)
    .bind(i64::from(r.passed))
    .bind(r.item_count)
    .bind(r.since)
    .bind(items)
    .bind(if r.error { Some("error") } else { None })
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn last_run(conn: &mut Conn) -> Result<Option<RunSummary>, sqlx::Error> {
    let row = sqlx::query(&format!("{RUN_SELECT} ORDER BY id DESC LIMIT 1"))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(run_row).transpose()
}

/// The last `limit` runs, newest first.
pub async fn runs(conn: &mut Conn, limit: i64) -> Result<Vec<RunSummary>, sqlx::Error> {
    let rows = sqlx::query(&format!("{RUN_SELECT} ORDER BY id DESC LIMIT $1"))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(run_row).collect()
}

pub async fn results_of(conn: &mut Conn, run: i64) -> Result<Vec<ResultRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT check_id, passed, item_count, since, items, error FROM compliance_results WHERE run_id = $1",
    )
    .bind(run)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let items: String = r.try_get(4)?;
            Ok(ResultRow {
                check_id: r.try_get(0)?,
                passed: r.try_get::<i64, _>(1)? != 0,
                item_count: r.try_get(2)?,
                since: r.try_get(3)?,
                items: serde_json::from_str(&items).unwrap_or_default(),
                error: r.try_get::<Option<String>, _>(5)?.is_some(),
            })
        })
        .collect()
}

/// A check's last `limit` results, newest first.
pub async fn history(
    conn: &mut Conn,
    check: &str,
    limit: i64,
) -> Result<Vec<RunPoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.run_id, u.started_at, r.passed, r.item_count FROM compliance_results r
         JOIN compliance_runs u ON u.id = r.run_id WHERE r.check_id = $1
         ORDER BY r.run_id DESC LIMIT $2",
    )
    .bind(check)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RunPoint {
                run_id: r.try_get(0)?,
                run_at: r.try_get(1)?,
                passed: r.try_get::<i64, _>(2)? != 0,
                item_count: r.try_get(3)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reads of the checks

/// A person with what a check says of them.
#[derive(Debug, Clone)]
pub struct PersonFact {
    pub person_id: i64,
    pub name: String,
    pub employee_number: String,
    pub unit_id: Option<i64>,
    /// A date (`YYYY-MM-DD`) the fact dates from.
    pub date: Option<String>,
    pub count: i64,
}

fn person_fact(r: &sqlx::any::AnyRow) -> Result<PersonFact, sqlx::Error> {
    Ok(PersonFact {
        person_id: r.try_get(0)?,
        name: r.try_get(1)?,
        employee_number: r.try_get(2)?,
        unit_id: r.try_get(3)?,
        date: r.try_get(4)?,
        count: r.try_get(5)?,
    })
}

/// K17.3: people whose leaving date has come and whose account is still
/// enabled (count = the account id).
pub async fn departed_with_account(
    conn: &mut Conn,
    today: &str,
) -> Result<Vec<PersonFact>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name_kanji, p.employee_number, p.org_unit_id, p.left_on, a.id
         FROM persons p JOIN accounts a ON a.person_id = p.id
         WHERE p.left_on IS NOT NULL AND p.left_on <= $1 AND a.disabled = 0 ORDER BY p.id",
    )
    .bind(today)
    .fetch_all(conn)
    .await?;
    rows.iter().map(person_fact).collect()
}

/// K17.3: people whose leaving date has come who still hold grants,
/// operator appointments or roles (count = how many).
pub async fn departed_with_rights(
    conn: &mut Conn,
    today: &str,
) -> Result<Vec<PersonFact>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name_kanji, p.employee_number, p.org_unit_id, p.left_on,
           (SELECT COUNT(*) FROM access_grants g WHERE g.subject_kind = 'person' AND g.subject_id = p.id AND g.ended_at IS NULL)
         + (SELECT COUNT(*) FROM asset_operators o WHERE o.person_id = p.id AND o.ended_at IS NULL)
         + (SELECT COUNT(*) FROM role_assignments r WHERE r.person_id = p.id AND (r.valid_to IS NULL OR r.valid_to >= p.left_on))
         FROM persons p WHERE p.left_on IS NOT NULL AND p.left_on <= $1 ORDER BY p.id",
    )
    .bind(today)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(person_fact)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|f| f.count > 0)
        .collect())
}

/// K17.3: transfers, dispatches and retirements whose date has come but
/// which were not applied (the old post's rights still work); count = the
/// event id.
pub async fn unapplied_moves(conn: &mut Conn, today: &str) -> Result<Vec<(PersonFact, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name_kanji, p.employee_number, p.org_unit_id, e.effective_date, e.id, e.kind
         FROM personnel_events e JOIN persons p ON p.employee_number = e.employee_number
         WHERE e.status = 'scheduled' AND e.kind IN ('transfer', 'dispatch', 'retire') AND e.effective_date <= $1
         ORDER BY e.id",
    )
    .bind(today)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((person_fact(r)?, r.try_get(6)?)))
        .collect()
}

/// K17.3: after an applied transfer or dispatch, grants, operator
/// appointments or roles from before the move that are still open.
pub async fn moved_with_old_rights(conn: &mut Conn) -> Result<Vec<PersonFact>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name_kanji, p.employee_number, p.org_unit_id, e.effective_date,
           (SELECT COUNT(*) FROM access_grants g WHERE g.subject_kind = 'person' AND g.subject_id = p.id
              AND g.ended_at IS NULL AND g.created_at < e.applied_at)
         + (SELECT COUNT(*) FROM asset_operators o WHERE o.person_id = p.id AND o.ended_at IS NULL AND o.created_at < e.applied_at)
         + (SELECT COUNT(*) FROM role_assignments r WHERE r.person_id = p.id AND r.valid_from < e.effective_date
              AND r.created_at < e.applied_at AND (r.valid_to IS NULL OR r.valid_to >= e.effective_date))
         FROM personnel_events e JOIN persons p ON p.employee_number = e.employee_number
         WHERE e.status = 'applied' AND e.kind IN ('transfer', 'dispatch') AND e.applied_at IS NOT NULL
         ORDER BY e.id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(person_fact)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|f| f.count > 0)
        .collect())
}

/// An account as the password and shared-account checks see it.
#[derive(Debug, Clone)]
pub struct AccountFact {
    pub account_id: i64,
    pub login: String,
    pub person_id: Option<i64>,
    pub name: Option<String>,
    pub unit_id: Option<i64>,
    pub changed_at: i64,
    pub justification: String,
    pub owner_status: Option<String>,
    pub owner_left_on: Option<String>,
}

/// K17.4: accounts in use (enabled, not of a person who left, with a
/// password) whose password was last set before `cutoff`.
pub async fn stale_passwords(conn: &mut Conn, cutoff: i64, today: &str) -> Result<Vec<AccountFact>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.id, a.login, a.person_id, p.name_kanji, COALESCE(p.org_unit_id, a.shared_org_unit_id),
                COALESCE(a.password_changed_at, a.created_at)
         FROM accounts a LEFT JOIN persons p ON p.id = a.person_id
         WHERE a.disabled = 0 AND a.password_hash IS NOT NULL
           AND (p.id IS NULL OR p.left_on IS NULL OR p.left_on > $2)
           AND COALESCE(a.password_changed_at, a.created_at) < $1
         ORDER BY a.login",
    )
    .bind(cutoff)
    .bind(today)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AccountFact {
                account_id: r.try_get(0)?,
                login: r.try_get(1)?,
                person_id: r.try_get(2)?,
                name: r.try_get(3)?,
                unit_id: r.try_get(4)?,
                changed_at: r.try_get(5)?,
                justification: String::new(),
                owner_status: None,
                owner_left_on: None,
            })
        })
        .collect()
}

/// K17.2: shared accounts in use (neither disabled nor locked by hand),
/// with their justification and their owner's standing.
pub async fn shared_in_use(conn: &mut Conn) -> Result<Vec<AccountFact>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.id, a.login, a.shared_owner_id, p.name_kanji, a.shared_org_unit_id, a.created_at,
                COALESCE(a.shared_justification, ''), p.status, p.left_on
         FROM accounts a LEFT JOIN persons p ON p.id = a.shared_owner_id
         WHERE a.kind = 'shared' AND a.disabled = 0 AND a.manual_lock = 0 ORDER BY a.login",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AccountFact {
                account_id: r.try_get(0)?,
                login: r.try_get(1)?,
                person_id: r.try_get(2)?,
                name: r.try_get(3)?,
                unit_id: r.try_get(4)?,
                changed_at: r.try_get(5)?,
                justification: r.try_get(6)?,
                owner_status: r.try_get(7)?,
                owner_left_on: r.try_get(8)?,
            })
        })
        .collect()
}

/// Live assets with their current grant count (K3.2.1).
pub async fn grant_counts(conn: &mut Conn) -> Result<std::collections::HashMap<i64, i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT asset_id, COUNT(*) FROM access_grants WHERE ended_at IS NULL GROUP BY asset_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The latest `ledger.verify` record: (time in µs, outcome, detail).
pub async fn last_verification(conn: &mut Conn) -> Result<Option<(i64, String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT time_us, result, detail FROM records WHERE action = 'ledger.verify' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

/// K10: open incidents with a chain step past its deadline and not done:
/// (incident, title, reporter's unit, earliest overdue deadline, roles late).
pub async fn overdue_chains(
    conn: &mut Conn,
    now: i64,
) -> Result<Vec<(i64, String, Option<i64>, i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.id, i.title, i.reporter_unit_id, s.due_at, s.role FROM incident_steps s
         JOIN incidents i ON i.id = s.incident_id
         WHERE s.completed_at IS NULL AND s.due_at < $1 AND i.status NOT IN ('closed', 'chain_done')
         ORDER BY i.id, s.seq",
    )
    .bind(now)
    .fetch_all(conn)
    .await?;
    let mut out: Vec<(i64, String, Option<i64>, i64, String)> = Vec::new();
    for r in &rows {
        let id: i64 = r.try_get(0)?;
        let due: i64 = r.try_get(3)?;
        let role: String = r.try_get(4)?;
        match out.last_mut() {
            Some(last) if last.0 == id => {
                last.3 = last.3.min(due);
                last.4.push(',');
                last.4.push_str(&role);
            }
            _ => out.push((id, r.try_get(1)?, r.try_get(2)?, due, role)),
        }
    }
    Ok(out)
}
