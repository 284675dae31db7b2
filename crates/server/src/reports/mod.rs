//! The compiled inspection and audit report (K32.3–4, SPEC §3.9): the
//! セキュリティ統括者 compiles the results of the self-inspections (K32.1)
//! and the external audits (K32.2) for the 最高情報統括責任者, who reports
//! them to the 情報化推進本部.
//!
//! [`build`] gathers everything into one [`ComplianceReport`]; the HTML page,
//! the JSON API, the PDF ([`pdf`]) and `mamori report export` all render
//! that one struct, so they cannot disagree.

pub mod api;
pub mod pages;
pub mod pdf;

use crate::app::AppState;
use crate::audits::{AuditSummary, FindingSummary};
use crate::clock::date_str;
use crate::web::error::AppError;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Status of a clause in the report.
pub const CLAUSE_STATUSES: [&str; 6] = [
    "noncompliant",
    "compliant",
    "attested",
    "enforced",
    "not_applicable",
    "no_data",
];

/// The report, as every rendering sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComplianceReport {
    /// The day the report speaks for (the ward's today), `YYYY-MM-DD`.
    pub as_of: String,
    /// The same day in 和暦, e.g. `令和8年11月28日`.
    pub as_of_wareki: String,
    pub generated_at: i64,
    /// The policy version in force on `as_of` (Y10, K34), if the catalog knows.
    pub policy_version: Option<String>,
    pub totals: Totals,
    /// Clause by clause: what serves it and how it stands.
    pub clauses: Vec<ClauseRow>,
    /// Compliance over time: the share of automatic checks passing, per day.
    pub trend: Vec<TrendPoint>,
    /// Findings of external audits not yet closed, most urgent first.
    pub open_findings: Vec<FindingSummary>,
    pub audits: Vec<AuditSummary>,
    /// The compiled self-inspection (K32.1). `None` until the
    /// self-inspection campaigns provide it (see ARCHITECTURE.md).
    pub self_inspection: Option<SelfInspection>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Totals {
    pub clauses: i64,
    pub compliant: i64,
    pub noncompliant: i64,
    pub checks: i64,
    pub checks_failing: i64,
    pub open_findings: i64,
    pub overdue_findings: i64,
    pub high_findings: i64,
}

/// One row of the clause-by-clause table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClauseRow {
    /// The clause id, e.g. `K17.3`.
    pub clause: String,
    /// The clause in Japanese as the policy cites it, e.g. `基準第17条第3項`.
    pub clause_ja: String,
    /// The article's heading or the clause's opening words.
    pub heading: String,
    /// One of [`CLAUSE_STATUSES`].
    pub status: String,
    pub checks_passed: i64,
    pub checks_failed: i64,
    pub open_findings: i64,
    /// The failing checks and findings, briefly.
    pub note: String,
}

/// Compliance on one day: how many automatic checks passed of those run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendPoint {
    pub date: String,
    pub passed: i64,
    pub total: i64,
}

/// The ward-wide compilation of one self-inspection campaign (K32.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SelfInspection {
    pub campaign: String,
    pub departments: i64,
    pub submitted: i64,
    pub rows: Vec<SelfInspectionRow>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SelfInspectionRow {
    pub unit: String,
    /// `not_started`, `draft`, `submitted` or `returned`.
    pub status: String,
    pub manager: Option<String>,
    /// Answers "does not conform" or "partly" in the submitted inspection.
    pub noncompliant: i64,
}

/// What the clause table is built from: checks by clause and findings.
#[derive(Debug, Clone, Default)]
pub struct ClauseInput {
    /// Clause id → (Japanese heading or text, kinds of controls serving it).
    pub catalog: BTreeMap<String, (String, Vec<&'static str>)>,
    /// Clause id → (check title, passed) for each automatic check.
    pub checks: BTreeMap<String, Vec<(String, bool)>>,
    /// Clause id → departments' self-inspection answers that do not (fully)
    /// conform, as notes.
    pub attested_fail: BTreeMap<String, Vec<String>>,
}

/// The clause in Japanese, `基準第17条第3項`, or the id when it is not one.
fn clause_ja(id: &str) -> String {
    id.parse::<mamori_policy::ClauseId>()
        .map(|c| c.ja())
        .unwrap_or_else(|_| id.to_string())
}

/// Builds the clause-by-clause table: every clause of the catalog that
/// something serves, and every clause a check or an open finding names.
pub fn clause_rows(input: &ClauseInput, findings: &[FindingSummary]) -> Vec<ClauseRow> {
    let mut ids: Vec<String> = input.catalog.keys().cloned().collect();
    ids.extend(input.checks.keys().cloned());
    ids.extend(input.attested_fail.keys().cloned());
    ids.extend(findings.iter().flat_map(|f| f.clauses.iter().cloned()));
    ids.sort_by_key(|id| sort_key(id));
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let checks = input.checks.get(&id).cloned().unwrap_or_default();
            let fs: Vec<&FindingSummary> = findings
                .iter()
                .filter(|f| f.clauses.contains(&id))
                .collect();
            let failed: Vec<&String> = checks.iter().filter(|c| !c.1).map(|c| &c.0).collect();
            let passed = checks.iter().filter(|c| c.1).count() as i64;
            let (heading, kinds) = input
                .catalog
                .get(&id)
                .cloned()
                .unwrap_or_else(|| (String::new(), vec![]));
            let attested_fail = input.attested_fail.get(&id).cloned().unwrap_or_default();
            let status = if !failed.is_empty() || !fs.is_empty() || !attested_fail.is_empty() {
                "noncompliant"
            } else if passed > 0 {
                "compliant"
            } else if kinds.contains(&"procedural") {
                "attested"
            } else if kinds.contains(&"enforced") {
                "enforced"
            } else if !kinds.is_empty() && kinds.iter().all(|k| *k == "not_applicable") {
                "not_applicable"
            } else {
                "no_data"
            };
            let mut note: Vec<String> = failed.iter().map(|s| s.to_string()).collect();
            note.extend(fs.iter().map(|f| f.title.clone()));
            note.extend(attested_fail);
            ClauseRow {
                clause_ja: clause_ja(&id),
                clause: id,
                heading,
                status: status.into(),
                checks_passed: passed,
                checks_failed: failed.len() as i64,
                open_findings: fs.len() as i64,
                note: note.join("／"),
            }
        })
        .collect()
}

/// Sorts clause ids by document and numbers (K2 before K10).
fn sort_key(id: &str) -> (String, Vec<u32>, String) {
    let doc: String = id.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let rest = &id[doc.len()..];
    let nums = rest
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
        .collect();
    (doc, nums, rest.to_string())
}

fn totals(clauses: &[ClauseRow], input: &ClauseInput, findings: &[FindingSummary]) -> Totals {
    let checks: Vec<&(String, bool)> = input.checks.values().flatten().collect();
    Totals {
        clauses: clauses.len() as i64,
        compliant: clauses.iter().filter(|c| c.status == "compliant").count() as i64,
        noncompliant: clauses
            .iter()
            .filter(|c| c.status == "noncompliant")
            .count() as i64,
        checks: checks.len() as i64,
        checks_failing: checks.iter().filter(|c| !c.1).count() as i64,
        open_findings: findings.len() as i64,
        overdue_findings: findings.iter().filter(|f| f.overdue).count() as i64,
        high_findings: findings.iter().filter(|f| f.severity == "high").count() as i64,
    }
}

/// The catalog's side of the clause table: every clause a control names,
/// with its heading (the article's, for a paragraph or item) and the kinds
/// of the controls serving it.
pub fn catalog_input() -> ClauseInput {
    use mamori_policy::catalog::catalog;
    let cat = catalog();
    let mut input = ClauseInput::default();
    for control in &cat.controls {
        for id in &control.clauses {
            let heading = heading_of(cat, id);
            let entry = input
                .catalog
                .entry(id.to_string())
                .or_insert_with(|| (heading, vec![]));
            let kind = control.kind.as_str();
            if !entry.1.contains(&kind) {
                entry.1.push(kind);
            }
        }
    }
    input
}

/// The heading of a clause or of the nearest clause above it that has one;
/// else the clause's opening words.
fn heading_of(cat: &mamori_policy::catalog::Catalog, id: &mamori_policy::ClauseId) -> String {
    let mut cur = cat.clause(id);
    let first = cur.map(|c| c.text_ja.chars().take(24).collect::<String>());
    while let Some(c) = cur {
        if let Some(h) = c.heading_ja.as_ref().filter(|h| !h.is_empty()) {
            return h
                .trim_matches(|c| c == '（' || c == '）' || c == '(' || c == ')')
                .to_string();
        }
        cur = c.parent.as_ref().and_then(|p| cat.clause(p));
    }
    first.unwrap_or_default()
}

/// Compliance over time: for each run of the checks, how many passed; the
/// last run of each day.
async fn trend(conn: &mut crate::db::Conn) -> Result<Vec<TrendPoint>, AppError> {
    let mut runs: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
    for def in crate::compliance::CHECKS {
        for p in crate::compliance::history(conn, def.id, 400).await? {
            let e = runs.entry(p.run_id).or_insert((p.run_at, 0, 0));
            e.1 += i64::from(p.passed);
            e.2 += 1;
        }
    }
    let mut by_day: BTreeMap<String, TrendPoint> = BTreeMap::new();
    for (_, (at, passed, total)) in runs {
        let date = crate::clock::format_unix(at)
            .chars()
            .take(10)
            .collect::<String>();
        by_day.insert(
            date.clone(),
            TrendPoint {
                date,
                passed,
                total,
            },
        );
    }
    Ok(by_day.into_values().collect())
}

/// The latest self-inspection campaign compiled ward-wide (K32.1, K32.3);
/// its nonconformities mark their clauses in the table.
async fn self_inspection(
    conn: &mut crate::db::Conn,
    today: time::Date,
    input: &mut ClauseInput,
) -> Result<Option<SelfInspection>, AppError> {
    let campaigns = crate::inspections::store::list_campaigns(conn, &date_str(today)).await?;
    let Some(latest) = campaigns.first() else {
        return Ok(None);
    };
    let c = crate::inspections::service::compile(conn, latest.id, today).await?;
    for n in &c.nonconformities {
        for clause in &n.clauses {
            input
                .attested_fail
                .entry(clause.clone())
                .or_default()
                .push(format!("{}：{}", n.org_unit_name, n.title_ja));
        }
    }
    let rows = c
        .departments
        .iter()
        .map(|d| SelfInspectionRow {
            unit: d.org_unit_name.clone(),
            status: d.status.clone(),
            manager: d.manager_name.clone(),
            noncompliant: c
                .nonconformities
                .iter()
                .filter(|n| n.org_unit_id == d.org_unit_id)
                .count() as i64,
        })
        .collect();
    Ok(Some(SelfInspection {
        campaign: c.campaign.title.clone(),
        departments: c.departments.len() as i64,
        submitted: c.counts.submitted,
        rows,
    }))
}

/// The report for `mamori report export`: PDF, or JSON. A missing font
/// names the setting.
pub async fn export(state: &AppState, pdf: bool) -> Result<Vec<u8>, String> {
    if pdf {
        let report = build(state).await.map_err(|e| e.to_string())?;
        self::pdf::render(&report, &state.config().report.font_path).map_err(|e| match e {
            self::pdf::PdfError::Font { .. } => {
                format!("{e} (setting report.font_path, MAMORI_REPORT_FONT)")
            }
            other => other.to_string(),
        })
    } else {
        let report = build(state).await.map_err(|e| e.to_string())?;
        serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())
    }
}

/// Gathers the report as of the ward's today.
pub async fn build(state: &AppState) -> Result<ComplianceReport, AppError> {
    let today_d = state.clock().today();
    let today = date_str(today_d);
    let mut conn = state.db().pool().acquire().await?;
    let mut open_findings = crate::audits::service::open_findings(&mut conn, &today).await?;
    let rank = |s: &str| {
        crate::audits::SEVERITIES
            .iter()
            .position(|x| *x == s)
            .unwrap_or(9)
    };
    open_findings.sort_by(|a, b| {
        (!a.overdue, rank(&a.severity), &a.due_on).cmp(&(!b.overdue, rank(&b.severity), &b.due_on))
    });
    let audits = crate::audits::store::list_audits(&mut conn, &today).await?;
    let mut input = catalog_input();
    // (the self-inspection's nonconformities are added below)
    for c in crate::compliance::latest(&mut conn).await? {
        if let Some(passed) = c.passed {
            input
                .checks
                .entry(c.clause.clone())
                .or_default()
                .push((c.title_ja.clone(), passed));
        }
    }
    let trend = trend(&mut conn).await?;
    let self_inspection = self_inspection(&mut conn, today_d, &mut input).await?;
    drop(conn);
    let catalog = mamori_policy::catalog::catalog();
    let policy_version = catalog.version_on(today_d).map(|v| v.label.clone());
    let clauses = clause_rows(&input, &open_findings);
    let totals = totals(&clauses, &input, &open_findings);
    Ok(ComplianceReport {
        as_of_wareki: mamori_policy::wareki::format_date_ja(today_d),
        as_of: today,
        generated_at: state.clock().unix(),
        policy_version,
        totals,
        clauses,
        trend,
        open_findings,
        audits,
        self_inspection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_ids_sort_by_number() {
        let mut v = vec!["K10.1", "K2.1", "K17.3", "K17.10", "Y4.1"];
        v.sort_by_key(|id| sort_key(id));
        assert_eq!(v, ["K2.1", "K10.1", "K17.3", "K17.10", "Y4.1"]);
    }

    #[test]
    fn a_failing_check_or_an_open_finding_makes_a_clause_noncompliant() {
        let mut input = ClauseInput::default();
        input
            .checks
            .insert("K17.4".into(), vec![("期限切れのパスワード".into(), true)]);
        input
            .checks
            .insert("K18".into(), vec![("運用管理者の上限".into(), false)]);
        input
            .catalog
            .insert("K9.1".into(), ("研修".into(), vec!["procedural"]));
        let rows = clause_rows(&input, &[]);
        let st: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.clause.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(
            st,
            [
                ("K9.1", "attested"),
                ("K17.4", "compliant"),
                ("K18", "noncompliant")
            ]
        );
    }
}
