//! Rules and transactions of external audits (K32.2). Every change writes
//! its record in the same transaction.

use super::store::{self, FindingFilter, NewAudit, NewFinding};
use super::{phase, AuditSummary, AuditView, FindingSummary, FindingView, ENTRY_KINDS, SEVERITIES};
use crate::app::AppState;
use crate::auth::Actor;
use crate::clock::date_str;
use crate::db::Conn;
use crate::ids::{AccountId, PersonId};
use crate::records::{self, Record};
use crate::web::error::{AppError, FieldError};
use crate::web::json::{check_date, check_text, done};
use mamori_policy::permission::Action;
use mamori_policy::{ClauseId, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 10_000;
/// At most this many auditor accounts per audit.
const MAX_AUDITORS: i64 = 20;

/// The refusal for an auditor account used outside its audit (K32.2), if any.
pub fn window_refusal(w: &store::AuditorWindow, today: &str) -> Option<AppError> {
    let wareki = |d: &str| {
        crate::clock::parse_date_str(d)
            .map(mamori_policy::wareki::format_date_ja)
            .unwrap_or_else(|| d.to_string())
    };
    if w.status == "closed" {
        Some(AppError::AuditorAccess {
            code: "error.auditor_audit_closed",
            date: wareki(&w.ends_on),
        })
    } else if today > w.ends_on.as_str() {
        Some(AppError::AuditorAccess {
            code: "error.auditor_expired",
            date: wareki(&w.ends_on),
        })
    } else if today < w.starts_on.as_str() {
        Some(AppError::AuditorAccess {
            code: "error.auditor_not_yet",
            date: wareki(&w.starts_on),
        })
    } else {
        None
    }
}

/// Refuses an auditor account outside its audit's period; other accounts pass.
pub async fn check_auditor_window(
    conn: &mut Conn,
    account: AccountId,
    today: &str,
) -> Result<(), AppError> {
    match store::auditor_window(conn, account).await? {
        Some(w) => match window_refusal(&w, today) {
            Some(e) => Err(e),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// An audit as ordered (K32.2): what, when, by whom.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditInput {
    #[serde(default)]
    pub title: String,
    /// The systems and management set-up audited.
    #[serde(default)]
    pub scope: String,
    /// The outside organisation with expert knowledge that audits.
    #[serde(default)]
    pub auditor_org: String,
    /// First day (`YYYY-MM-DD` or 和暦, e.g. `令和8年12月1日`).
    #[serde(default)]
    pub starts_on: String,
    /// Last day; auditor accounts stop working after it.
    #[serde(default)]
    pub ends_on: String,
}

struct CheckedAudit {
    starts_on: String,
    ends_on: String,
}

fn check_audit(input: &AuditInput, today: &str, new: bool) -> Result<CheckedAudit, AppError> {
    let mut e = Vec::new();
    check_text(&mut e, "title", &input.title, MAX_TITLE, true);
    check_text(&mut e, "scope", &input.scope, MAX_TEXT, true);
    check_text(&mut e, "auditor_org", &input.auditor_org, MAX_TITLE, true);
    let date = |e: &mut Vec<FieldError>, field: &str, v: &str| {
        if v.trim().is_empty() {
            e.push(FieldError::new(field, "field.required", &[]));
            None
        } else {
            check_date(e, field, v.trim()).map(date_str)
        }
    };
    let starts = date(&mut e, "starts_on", &input.starts_on);
    let ends = date(&mut e, "ends_on", &input.ends_on);
    if let (Some(s), Some(t)) = (&starts, &ends) {
        if t < s {
            e.push(FieldError::new("ends_on", "field.end_before_start", &[]).with_clause("K32.2"));
        } else if new && t.as_str() < today {
            e.push(FieldError::new("ends_on", "audit.end_in_past", &[]).with_clause("K32.2"));
        }
    }
    done(e)?;
    match (starts, ends) {
        (Some(starts_on), Some(ends_on)) => Ok(CheckedAudit { starts_on, ends_on }),
        _ => Err(AppError::invalid("starts_on", "field.required", &[])),
    }
}

fn audit_record(actor: &Actor, action: &'static str, id: i64) -> Record {
    Record::new(actor.who(), action, format!("audit:{id}"), "K32.2").from_ip(actor.ip())
}

/// Orders an audit (the セキュリティ統括者, K32.2).
pub async fn create_audit(
    state: &AppState,
    actor: &Actor,
    input: &AuditInput,
) -> Result<i64, AppError> {
    let today = date_str(state.clock().today());
    let c = check_audit(input, &today, true)?;
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let id = store::insert_audit(
        &mut tx,
        &NewAudit {
            title: input.title.trim(),
            scope: input.scope.trim(),
            auditor_org: input.auditor_org.trim(),
            starts_on: &c.starts_on,
            ends_on: &c.ends_on,
            ordered_by: actor.person_id,
        },
        now,
    )
    .await?;
    let rec = audit_record(actor, "audit.order", id).detail(json!({
        "title": input.title.trim(), "auditor_org": input.auditor_org.trim(),
        "starts_on": c.starts_on, "ends_on": c.ends_on,
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

/// Changes an audit's particulars or period; the auditors' role follows the
/// period (an extension extends their access, a shorter one ends it sooner).
pub async fn update_audit(
    state: &AppState,
    actor: &Actor,
    id: i64,
    input: &AuditInput,
) -> Result<(), AppError> {
    let today = date_str(state.clock().today());
    let c = check_audit(input, &today, false)?;
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let before = store::get_audit(&mut tx, id, &today)
        .await?
        .ok_or(AppError::NotFound("audit"))?;
    if before.status == "closed" {
        return Err(AppError::Conflict("audit.closed"));
    }
    store::update_audit(
        &mut tx,
        id,
        &NewAudit {
            title: input.title.trim(),
            scope: input.scope.trim(),
            auditor_org: input.auditor_org.trim(),
            starts_on: &c.starts_on,
            ends_on: &c.ends_on,
            ordered_by: before.ordered_by,
        },
        now,
    )
    .await?;
    for a in store::auditor_assignments(&mut tx, id).await? {
        store::set_assignment_period(&mut tx, a, &c.starts_on, &c.ends_on).await?;
    }
    let rec = audit_record(actor, "audit.update", id).detail(json!({
        "title": input.title.trim(), "auditor_org": input.auditor_org.trim(),
        "starts_on": { "from": before.starts_on, "to": c.starts_on },
        "ends_on": { "from": before.ends_on, "to": c.ends_on },
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// Closes an audit: its auditor accounts stop working at once.
pub async fn close_audit(state: &AppState, actor: &Actor, id: i64) -> Result<(), AppError> {
    let today = date_str(state.clock().today());
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let a = store::get_audit(&mut tx, id, &today)
        .await?
        .ok_or(AppError::NotFound("audit"))?;
    if a.status == "closed" {
        return Err(AppError::Conflict("audit.closed"));
    }
    store::close_audit(&mut tx, id, now).await?;
    let rec =
        audit_record(actor, "audit.close", id).detail(json!({ "open_findings": a.open_findings }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// An auditor to create an account for.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditorInput {
    /// Name in kanji (or as the auditor writes it).
    #[serde(default)]
    pub name: String,
    /// Name in kana.
    #[serde(default)]
    pub name_kana: String,
}

/// A new auditor account: the one-time password is shown once and must be
/// changed at first login.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewAuditor {
    pub person_id: PersonId,
    pub account_id: i64,
    pub login: String,
    pub one_time_password: String,
    /// The account works from this day …
    pub valid_from: String,
    /// … to this day (the audit's last day).
    pub valid_to: String,
}

/// Creates an auditor account for an audit: a person of the auditing
/// organisation holding the 外部監査人 role for the audit's period only.
pub async fn add_auditor(
    state: &AppState,
    actor: &Actor,
    audit: i64,
    input: &AuditorInput,
) -> Result<NewAuditor, AppError> {
    let mut e = Vec::new();
    check_text(&mut e, "name", &input.name, 100, true);
    check_text(&mut e, "name_kana", &input.name_kana, 100, false);
    done(e)?;
    let today = date_str(state.clock().today());
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let a = store::get_audit(&mut tx, audit, &today)
        .await?
        .ok_or(AppError::NotFound("audit"))?;
    match phase(&a.status, &a.starts_on, &a.ends_on, &today) {
        "closed" => return Err(AppError::Conflict("audit.closed")),
        "ended" => return Err(AppError::Conflict("audit.ended")),
        _ => {}
    }
    let n = store::count_auditors(&mut tx, audit).await?;
    if n >= MAX_AUDITORS {
        return Err(AppError::Conflict("audit.too_many_auditors"));
    }
    let login = format!("audit{audit:04}-{}", n + 1);
    if crate::identity::store::by_login(&mut tx, &login)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict("audit.login_taken"));
    }
    let kana = if input.name_kana.trim().is_empty() {
        input.name.trim()
    } else {
        input.name_kana.trim()
    };
    let person = crate::people::store::insert_person(
        &mut tx,
        &crate::people::store::NewPerson {
            employee_number: &login,
            name_kanji: input.name.trim(),
            name_kana: kana,
            name_romaji: "",
            birth_date: None,
            employment: "outside",
            org_unit_id: None,
            title: &a.auditor_org,
            status: "active",
            hired_on: Some(&a.starts_on),
        },
        now,
    )
    .await?;
    let account =
        crate::identity::store::insert_personal_account(&mut tx, person, &login, false, now)
            .await?;
    let assignment = crate::org::store::insert_assignment(
        &mut tx,
        &crate::org::store::NewAssignment {
            person_id: person,
            role: Role::ExternalAuditor.code(),
            org_unit_id: None,
            system_id: None,
            valid_from: &a.starts_on,
            valid_to: Some(&a.ends_on),
            created_by: actor.person_id,
        },
        now,
    )
    .await?;
    store::insert_auditor(&mut tx, audit, person, account, assignment.0, now).await?;
    let rec = audit_record(actor, "audit.auditor_create", audit).detail(json!({
        "person": person.record_ref(), "account": account.record_ref(), "login": login,
        "valid_from": a.starts_on, "valid_to": a.ends_on,
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    let otp =
        crate::identity::service::reset_password(state, actor.who(), actor.ip(), account).await?;
    state.ledger().poke();
    Ok(NewAuditor {
        person_id: person,
        account_id: account.0,
        login,
        one_time_password: otp,
        valid_from: a.starts_on,
        valid_to: a.ends_on,
    })
}

/// A finding as the 統括者 records it from the auditor's report.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingInput {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// `high`, `medium`, `low` or `observation`.
    #[serde(default)]
    pub severity: String,
    /// Clause ids, separated by commas or spaces, e.g. `K17.3, K11.1.2`.
    #[serde(default)]
    pub clauses: String,
    /// The owner's employee number (their login).
    #[serde(default)]
    pub owner: String,
    /// Due date (`YYYY-MM-DD` or 和暦), today or later.
    #[serde(default)]
    pub due_on: String,
}

/// A clause as the policy writes it, `基準第11条第1項第2号` (or 要綱…),
/// as an id, `K11.1.2`.
fn ja_clause(s: &str) -> Option<String> {
    let s: String = s
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            _ => c,
        })
        .collect();
    let (doc, rest) = if let Some(r) = s.strip_prefix("基準") {
        ("K", r)
    } else if let Some(r) = s.strip_prefix("要綱") {
        ("Y", r)
    } else {
        return None;
    };
    let mut out = doc.to_string();
    let mut rest = rest;
    for (i, unit) in ["条", "項", "号"].iter().enumerate() {
        let Some(r) = rest.strip_prefix('第') else {
            break;
        };
        let end = r.find(unit)?;
        let n: u32 = r[..end].parse().ok()?;
        if i > 0 {
            out.push('.');
        }
        out.push_str(&n.to_string());
        rest = &r[end + unit.len()..];
    }
    (rest.is_empty() && out.len() > 1).then_some(out)
}

/// Parses a list of clause ids; names the first bad one.
pub fn parse_clauses(e: &mut Vec<FieldError>, field: &str, v: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in v
        .split(|c: char| c == ',' || c == '、' || c == '，' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let canonical = ja_clause(part).unwrap_or_else(|| part.to_string());
        match canonical.parse::<ClauseId>() {
            Ok(id) => {
                let s = id.to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Err(_) => {
                e.push(FieldError::new(
                    field,
                    "finding.bad_clause",
                    &[("value", part.chars().take(40).collect())],
                ));
                return out;
            }
        }
    }
    if out.is_empty() {
        e.push(FieldError::new(field, "field.required", &[]));
    }
    out
}

/// Records a finding of an audit (the 統括者, K32.2).
pub async fn add_finding(
    state: &AppState,
    actor: &Actor,
    audit: i64,
    input: &FindingInput,
) -> Result<i64, AppError> {
    let today = date_str(state.clock().today());
    let now = state.clock().unix();
    let mut e = Vec::new();
    check_text(&mut e, "title", &input.title, MAX_TITLE, true);
    check_text(&mut e, "description", &input.description, MAX_TEXT, false);
    let severity = input.severity.trim();
    if severity.is_empty() {
        e.push(FieldError::new("severity", "field.required", &[]));
    } else if !SEVERITIES.contains(&severity) {
        e.push(FieldError::new(
            "severity",
            "finding.bad_severity",
            &[("value", severity.chars().take(40).collect())],
        ));
    }
    let clauses = parse_clauses(&mut e, "clauses", &input.clauses);
    let due = if input.due_on.trim().is_empty() {
        e.push(FieldError::new("due_on", "field.required", &[]));
        None
    } else {
        check_date(&mut e, "due_on", input.due_on.trim()).map(date_str)
    };
    if let Some(d) = &due {
        if d.as_str() < today.as_str() {
            e.push(FieldError::new("due_on", "finding.due_in_past", &[]));
        }
    }
    let mut tx = state.db().begin().await?;
    let owner_login = input.owner.trim();
    let owner = if owner_login.is_empty() {
        e.push(FieldError::new("owner", "field.required", &[]));
        None
    } else {
        match crate::people::store::person_by_number(&mut tx, owner_login).await? {
            Some(p) if p.status == "retired" => {
                e.push(FieldError::new("owner", "finding.owner_retired", &[]));
                None
            }
            Some(p) => Some(p),
            None => {
                e.push(FieldError::new("owner", "finding.no_such_owner", &[]));
                None
            }
        }
    };
    done(e)?;
    let (Some(owner), Some(due)) = (owner, due) else {
        return Err(AppError::invalid("owner", "field.required", &[]));
    };
    let a = store::get_audit(&mut tx, audit, &today)
        .await?
        .ok_or(AppError::NotFound("audit"))?;
    if a.status == "closed" {
        return Err(AppError::Conflict("audit.closed"));
    }
    let clause_list = clauses.join(",");
    let id = store::insert_finding(
        &mut tx,
        &NewFinding {
            audit_id: audit,
            title: input.title.trim(),
            description: input.description.trim(),
            severity,
            clauses: &clause_list,
            owner_id: owner.id,
            due_on: &due,
            created_by: actor.person_id,
        },
        now,
    )
    .await?;
    let rec = Record::new(
        actor.who(),
        "audit.finding_create",
        format!("audit_finding:{id}"),
        "K32.2",
    )
    .from_ip(actor.ip())
    .detail(json!({
        "audit": audit, "title": input.title.trim(), "severity": severity, "clauses": clauses,
        "owner": owner.id.record_ref(), "due_on": due,
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

/// A follow-up entry on a finding.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// `progress` (owner or 統括者), `close` (owner or 統括者, needs a
    /// note) or `reopen` (the 統括者).
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub note: String,
}

/// Writes a follow-up entry; `close` and `reopen` change the status.
pub async fn follow_up(
    state: &AppState,
    actor: &Actor,
    finding: i64,
    input: &EntryInput,
) -> Result<(), AppError> {
    let today = date_str(state.clock().today());
    let now = state.clock().unix();
    let mut e = Vec::new();
    let kind = input.kind.trim();
    if kind.is_empty() {
        e.push(FieldError::new("kind", "field.required", &[]));
    } else if !ENTRY_KINDS.contains(&kind) {
        e.push(FieldError::new("kind", "finding.bad_entry_kind", &[]));
    }
    check_text(&mut e, "note", &input.note, MAX_TEXT, true);
    done(e)?;
    let manages = actor.scope(Action::ManageAudits).is_some();
    let mut tx = state.db().begin().await?;
    let (f, _) = store::get_finding(&mut tx, finding, &today)
        .await?
        .ok_or(AppError::NotFound("finding"))?;
    let owns = actor.person_id == Some(f.owner_id);
    if !owns && !manages {
        // Someone else's finding is not theirs to see, unless they read all.
        return Err(if actor.scope(Action::ViewAudits).is_some() {
            AppError::Forbidden("follow_up_findings")
        } else {
            AppError::NotFound("finding")
        });
    }
    let (status, closed_at, action): (&str, Option<i64>, &'static str) = match kind {
        "close" => {
            if f.status == "closed" {
                return Err(AppError::Conflict("finding.already_closed"));
            }
            ("closed", Some(now), "audit.finding_close")
        }
        "reopen" => {
            if !manages {
                return Err(AppError::Forbidden("manage_audits"));
            }
            if f.status != "closed" {
                return Err(AppError::Conflict("finding.not_closed"));
            }
            ("open", None, "audit.finding_reopen")
        }
        _ => {
            if f.status == "closed" {
                return Err(AppError::Conflict("finding.already_closed"));
            }
            ("in_progress", None, "audit.finding_progress")
        }
    };
    store::set_finding_status(&mut tx, finding, status, closed_at, now).await?;
    let rec = Record::new(
        actor.who(),
        action,
        format!("audit_finding:{finding}"),
        "K32.2",
    )
    .from_ip(actor.ip())
    .detail(json!({ "audit": f.audit_id, "from": f.status, "to": status }));
    let record_id = records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    store::insert_entry(
        &mut tx,
        finding,
        kind,
        input.note.trim(),
        &actor.who().record_ref(),
        now,
        record_id,
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

pub async fn list_audits(state: &AppState) -> Result<Vec<AuditSummary>, AppError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::list_audits(&mut conn, &today).await?)
}

pub async fn get_audit(state: &AppState, id: i64) -> Result<AuditView, AppError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let summary = store::get_audit(&mut conn, id, &today)
        .await?
        .ok_or(AppError::NotFound("audit"))?;
    let active = summary.phase == "in_progress";
    let auditors = store::list_auditors(&mut conn, id, active).await?;
    let findings = store::list_findings(
        &mut conn,
        &FindingFilter {
            audit_id: Some(id),
            ..Default::default()
        },
        &today,
    )
    .await?;
    Ok(AuditView {
        summary,
        auditors,
        findings,
    })
}

/// Findings the actor may read: all with `ViewAudits`, else their own.
pub async fn list_findings(
    state: &AppState,
    actor: &Actor,
    mut filter: FindingFilter,
) -> Result<Vec<FindingSummary>, AppError> {
    let today = date_str(state.clock().today());
    if actor.scope(Action::ViewAudits).is_none() {
        match actor.person_id {
            Some(p) => filter.owner = Some(p),
            None => return Ok(vec![]),
        }
    }
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::list_findings(&mut conn, &filter, &today).await?)
}

pub async fn get_finding(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<FindingView, AppError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let (summary, description) = store::get_finding(&mut conn, id, &today)
        .await?
        .ok_or(AppError::NotFound("finding"))?;
    if actor.scope(Action::ViewAudits).is_none() && actor.person_id != Some(summary.owner_id) {
        return Err(AppError::NotFound("finding"));
    }
    let entries = store::entries(&mut conn, id).await?;
    Ok(FindingView {
        summary,
        description,
        entries,
    })
}

/// Every open finding of every audit (for the report and the overdue list).
pub async fn open_findings(conn: &mut Conn, today: &str) -> Result<Vec<FindingSummary>, AppError> {
    Ok(store::list_findings(
        conn,
        &FindingFilter {
            open_only: true,
            ..Default::default()
        },
        today,
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_as_the_policy_writes_them() {
        assert_eq!(
            ja_clause("基準第11条第1項第2号").as_deref(),
            Some("K11.1.2")
        );
        assert_eq!(ja_clause("要綱第４条").as_deref(), Some("Y4"));
        assert_eq!(ja_clause("基準第17条第3項").as_deref(), Some("K17.3"));
        assert_eq!(ja_clause("基準第x条"), None);
        assert_eq!(ja_clause("K17.3"), None);
        let mut e = Vec::new();
        assert_eq!(
            parse_clauses(&mut e, "c", "K17.3, 基準第11条第1項第2号、K17.3"),
            ["K17.3", "K11.1.2"]
        );
        assert!(e.is_empty());
        parse_clauses(&mut e, "c", "Z9");
        assert_eq!(e[0].code, "finding.bad_clause");
    }
}
