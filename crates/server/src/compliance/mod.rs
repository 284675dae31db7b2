//! Automatic compliance checks (issue 7 point 3; Y8, K29, K32): each check
//! computes from live data whether the ward complies with one clause, and
//! names the offending items (a person, an account, an asset, an incident,
//! a unit) with a link to the page where it is put right.
//!
//! A check is one entry of [`CHECKS`] plus one function (`checks.rs`). All
//! checks run together ([`run_all`]) on the schedule
//! (`compliance.check_interval_minutes`, from the background task) and on
//! demand (`POST /api/v1/compliance/runs`, the button on `/compliance`).
//! Every run is kept (`compliance_runs`, `compliance_results` with the items
//! as JSON) and is a `compliance.run` record, so "since when" is the start
//! of the current failing streak, and each item keeps its first appearance
//! in the streak (or a date from the data, such as a leaving date).

pub mod api;
pub mod checks;
pub mod pages;
pub mod store;

use crate::app::AppState;
use crate::db::Conn;
use crate::records::{self, Record, Who};
use crate::web::error::AppError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use utoipa::ToSchema;

/// One offending item of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckItem {
    /// Stable key within the check (e.g. `account:12`), so an item can be
    /// followed from run to run.
    pub key: String,
    /// What is wrong, in the ward's language (names and codes are data).
    pub label: String,
    /// The org unit the item belongs to, for the department view and the
    /// self-inspection of that unit.
    pub unit_id: Option<i64>,
    /// Since when the item is wrong (Unix seconds): a time from the data
    /// when the check knows it, else the first run that found it.
    pub since: Option<i64>,
    /// The page of the offending thing.
    pub link: Option<String>,
}

impl CheckItem {
    pub fn new(key: impl Into<String>, label: impl Into<String>) -> CheckItem {
        CheckItem {
            key: key.into(),
            label: label.into(),
            unit_id: None,
            since: None,
            link: None,
        }
    }
    pub fn unit(mut self, unit: Option<i64>) -> CheckItem {
        self.unit_id = unit;
        self
    }
    pub fn since(mut self, since: Option<i64>) -> CheckItem {
        self.since = since;
        self
    }
    pub fn link(mut self, link: impl Into<String>) -> CheckItem {
        self.link = Some(link.into());
        self
    }
}

/// What a check function returns.
pub type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<CheckItem>, AppError>> + Send + 'a>>;

/// A check: reads live data at `now` (Unix seconds) and returns the
/// offending items (none: the check passes).
pub type CheckFn = for<'a> fn(&'a AppState, i64) -> CheckFuture<'a>;

/// One automatic check.
#[derive(Clone, Copy)]
pub struct CheckDef {
    /// Stable id, e.g. `k17.3.departed-accounts` (interfaces.md).
    pub id: &'static str,
    /// The clause as the policy writes it, e.g. `K17.3`.
    pub clause: &'static str,
    pub title_ja: &'static str,
    pub title_en: &'static str,
    pub run: CheckFn,
}

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDef").field("id", &self.id).finish()
    }
}

/// Every check, in the order the dashboard lists them.
pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "k17.3.departed-accounts",
        clause: "K17.3",
        title_ja: "退職・異動した職員のアカウントや旧所属の権限が残っていない",
        title_en: "No active account or old-post rights of retired or transferred staff",
        run: checks::departed_accounts,
    },
    CheckDef {
        id: "k17.4.password-expired",
        clause: "K17.4",
        title_ja: "有効期間を過ぎたパスワードがない",
        title_en: "No password past the ward's maximum age",
        run: checks::password_expired,
    },
    CheckDef {
        id: "k17.2.shared-unjustified",
        clause: "K17.2",
        title_ja: "共用アカウントに理由と責任者がある",
        title_en: "Every shared account has a justification and an owner",
        run: checks::shared_unjustified,
    },
    CheckDef {
        id: "k18.operator-limit",
        clause: "K18",
        title_ja: "管理者権限の保持者がシステムごとの上限以内",
        title_en: "Admin rights holders within the limit per system",
        run: checks::operator_limit,
    },
    CheckDef {
        id: "k3.2.1.secret-without-rules",
        clause: "K3.2.1",
        title_ja: "秘密情報にアクセス権（許可）が定められている",
        title_en: "Every secret asset has access rules (grants)",
        run: checks::secret_without_rules,
    },
    CheckDef {
        id: "k3.2.1.review-overdue",
        clause: "K3.2.1",
        title_ja: "秘密情報のアクセス権の棚卸しが期限内",
        title_en: "Access reviews of secret assets are not overdue",
        run: checks::review_overdue,
    },
    CheckDef {
        id: "k16.2.2.ledger-unverified",
        clause: "K16.2.2",
        title_ja: "記録（台帳）が最近検証され、改ざんがない",
        title_en: "The ledger was verified recently and matches",
        run: checks::ledger_unverified,
    },
    CheckDef {
        id: "k30.2.viewer-limit",
        clause: "K30.2",
        title_ja: "指名閲覧者が上限以内",
        title_en: "Designated viewers within the limit",
        run: checks::viewer_limit,
    },
    CheckDef {
        id: "k10.chain-overdue",
        clause: "K10",
        title_ja: "事故等の報告が期限内に上がっている",
        title_en: "No incident with an overdue reporting-chain step",
        run: checks::chain_overdue,
    },
    CheckDef {
        id: "k9.training-unattended",
        clause: "K9",
        title_ja: "必修の研修を全員が受講している",
        title_en: "Everyone attended the required training",
        run: checks::training_unattended,
    },
    CheckDef {
        id: crate::inspections::check::ID,
        clause: "K32.1",
        title_ja: "各部署が自己点検を期限内に提出している",
        title_en: "Every department filed its self-inspection by the deadline",
        run: crate::inspections::check::run,
    },
];

/// The check with this id.
pub fn def(id: &str) -> Option<&'static CheckDef> {
    CHECKS.iter().find(|c| c.id == id)
}

/// A run's id.
pub type RunId = i64;

/// Why a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Demand,
}

impl Trigger {
    pub fn code(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Demand => "demand",
        }
    }
}

/// The latest result of one check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckStatus {
    pub id: String,
    pub clause: String,
    pub title_ja: String,
    pub title_en: String,
    /// Whether it passed in the latest run; `None` before any run.
    pub passed: Option<bool>,
    /// Start of the current failing streak (Unix seconds).
    pub since: Option<i64>,
    pub items: Vec<CheckItem>,
    pub item_count: i64,
    /// The latest run's id and time.
    pub run_id: Option<i64>,
    pub run_at: Option<i64>,
    /// The check could not be computed (the reason is in the server log).
    pub error: bool,
}

/// One point of a check's history (for charts).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunPoint {
    pub run_id: i64,
    pub run_at: i64,
    pub passed: bool,
    pub item_count: i64,
}

/// One run, summed up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: i64,
    /// `schedule` or `demand`.
    pub trigger: String,
    pub requested_by: Option<i64>,
    pub passed: i64,
    pub failed: i64,
}

/// The latest result of each check (every check of [`CHECKS`], also one
/// that has not run yet).
pub async fn latest(conn: &mut Conn) -> Result<Vec<CheckStatus>, AppError> {
    let run = store::last_run(conn).await?;
    let results = match &run {
        Some(r) => store::results_of(conn, r.id).await?,
        None => vec![],
    };
    let by_id: HashMap<&str, &store::ResultRow> =
        results.iter().map(|r| (r.check_id.as_str(), r)).collect();
    Ok(CHECKS
        .iter()
        .map(|c| {
            let r = by_id.get(c.id);
            CheckStatus {
                id: c.id.into(),
                clause: c.clause.into(),
                title_ja: c.title_ja.into(),
                title_en: c.title_en.into(),
                passed: r.map(|r| r.passed),
                since: r.and_then(|r| r.since),
                items: r.map(|r| r.items.clone()).unwrap_or_default(),
                item_count: r.map(|r| r.item_count).unwrap_or(0),
                run_id: run.as_ref().map(|r| r.id),
                run_at: run.as_ref().map(|r| r.started_at),
                error: r.map(|r| r.error).unwrap_or(false),
            }
        })
        .collect())
}

/// The latest results with only the items in `unit_id` and the units below
/// it; a check passes for the unit when none of its items is there.
pub async fn latest_for_unit(conn: &mut Conn, unit_id: i64) -> Result<Vec<CheckStatus>, AppError> {
    let units: std::collections::HashSet<i64> =
        crate::org::store::descendants(conn, crate::ids::OrgUnitId(unit_id))
            .await?
            .into_iter()
            .map(|u| u.0)
            .collect();
    let mut all = latest(conn).await?;
    for s in &mut all {
        s.items
            .retain(|i| i.unit_id.is_some_and(|u| units.contains(&u)));
        s.item_count = s.items.len() as i64;
        if s.passed.is_some() && !s.error {
            s.passed = Some(s.items.is_empty());
            if s.items.is_empty() {
                s.since = None;
            } else {
                s.since = s.items.iter().filter_map(|i| i.since).min().or(s.since);
            }
        }
    }
    Ok(all)
}

/// The last `limit` results of a check, oldest first.
pub async fn history(
    conn: &mut Conn,
    check_id: &str,
    limit: i64,
) -> Result<Vec<RunPoint>, AppError> {
    let mut points = store::history(conn, check_id, limit.clamp(1, 10_000)).await?;
    points.reverse();
    Ok(points)
}

/// Runs every check now (on demand); see [`run_all_as`].
pub async fn run_all(state: &AppState) -> Result<RunId, AppError> {
    run_all_as(state, Trigger::Demand, &Who::Scheduler, None).await
}

/// Runs every check, keeps the results and appends the `compliance.run`
/// record in the same transaction. A check that fails to compute is kept
/// as failed with `error` set (and logged), and the others still run.
pub async fn run_all_as(
    state: &AppState,
    trigger: Trigger,
    who: &Who,
    requested_by: Option<i64>,
) -> Result<RunId, AppError> {
    let started = state.clock().unix();
    let mut computed = Vec::with_capacity(CHECKS.len());
    for c in CHECKS {
        let outcome = (c.run)(state, started).await;
        if let Err(e) = &outcome {
            tracing::error!(check = c.id, error = %e, "a compliance check could not be computed");
        }
        computed.push((c, outcome));
    }
    let finished = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let previous = match store::last_run(&mut tx).await? {
        Some(r) => store::results_of(&mut tx, r.id).await?,
        None => vec![],
    };
    let prev: HashMap<&str, &store::ResultRow> =
        previous.iter().map(|r| (r.check_id.as_str(), r)).collect();
    let mut rows = Vec::with_capacity(computed.len());
    for (c, outcome) in computed {
        let before = prev.get(c.id).filter(|p| !p.passed);
        let (mut items, error) = match outcome {
            Ok(items) => (items, None),
            Err(e) => (vec![], Some(e.to_string())),
        };
        let passed = error.is_none() && items.is_empty();
        // An item keeps the time it first appeared in the failing streak,
        // unless the data says since when it is wrong.
        for item in &mut items {
            if item.since.is_none() {
                item.since = before
                    .and_then(|p| p.items.iter().find(|i| i.key == item.key))
                    .and_then(|i| i.since)
                    .or(Some(started));
            }
        }
        let since = if passed {
            None
        } else {
            before.and_then(|p| p.since).or(Some(started))
        };
        rows.push(store::ResultRow {
            check_id: c.id.to_string(),
            passed,
            item_count: items.len() as i64,
            since,
            items,
            error: error.is_some(),
        });
    }
    let passed = rows.iter().filter(|r| r.passed).count() as i64;
    let failed = rows.len() as i64 - passed;
    let run_id = store::insert_run(
        &mut tx,
        &store::NewRun {
            started_at: started,
            finished_at: finished,
            trigger: trigger.code(),
            requested_by,
            passed,
            failed,
        },
    )
    .await?;
    for r in &rows {
        store::insert_result(&mut tx, run_id, r).await?;
    }
    let failing: Vec<serde_json::Value> = rows
        .iter()
        .filter(|r| !r.passed)
        .map(|r| serde_json::json!({ "check": r.check_id, "items": r.item_count }))
        .collect();
    let rec = Record::new(who.clone(), "compliance.run", format!("compliance_run:{run_id}"), "K32.1")
        .detail(serde_json::json!({
            "run_id": run_id, "trigger": trigger.code(), "passed": passed, "failed": failed, "failing": failing,
        }));
    let record_id = records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    store::set_run_record(&mut tx, run_id, record_id).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(run_id)
}

/// Runs the checks when the last run is older than the ward's interval
/// (`compliance.check_interval_minutes`); called every minute by the
/// background task. Returns the new run, if one ran.
pub async fn run_if_due(state: &AppState) -> Result<Option<RunId>, AppError> {
    let due = {
        let mut conn = state.db().pool().acquire().await?;
        let minutes = crate::settings::get(&mut conn, "compliance.check_interval_minutes").await?;
        match store::last_run(&mut conn).await? {
            Some(r) => state.clock().unix() - r.started_at >= minutes * 60,
            None => true,
        }
    };
    if !due {
        return Ok(None);
    }
    run_all_as(state, Trigger::Schedule, &Who::Scheduler, None)
        .await
        .map(Some)
}
