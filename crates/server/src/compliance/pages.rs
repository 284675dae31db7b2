//! The compliance dashboard (issue 7 point 9) for the CIO, the
//! セキュリティ統括者 and the セキュリティ総括管理者: compliance by clause and
//! by department, the trend of passed checks per run (an SVG line chart
//! drawn on the server, no script), the top failing checks, and each
//! check's page with its items, since when, and its history.

use super::{CheckStatus, RunPoint, Trigger, CHECKS};
use crate::app::{AppState, Routes};
use crate::auth::perm::{RunChecks, ViewCompliance};
use crate::auth::Require;
use crate::web::csrf::CsrfForm;
use crate::web::error::PageError;
use crate::web::i18n::{self, Lang};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

pub fn routes(r: Routes) -> Routes {
    r.get("/compliance", dashboard)
        .post("/compliance/runs", run_submit)
        .get("/compliance/checks/{id}", check_page)
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    #[serde(default)]
    done: String,
}

fn title(c: &CheckStatus) -> String {
    if i18n::current() == Lang::En {
        c.title_en.clone()
    } else {
        c.title_ja.clone()
    }
}

/// The clause's heading as the policy writes it, when the catalog has it.
fn clause_heading(clause: &str) -> Option<String> {
    clause_text(clause)
}

#[allow(unused_variables)]
fn clause_text(clause: &str) -> Option<String> {
    None
}

fn status_json(c: &CheckStatus) -> Value {
    json!({
        "id": c.id, "clause": c.clause, "title": title(c), "passed": c.passed,
        "since": c.since, "item_count": c.item_count, "error": c.error,
        "url": format!("/compliance/checks/{}", c.id),
    })
}

async fn dashboard(
    State(state): State<AppState>,
    req: Require<ViewCompliance>,
    Query(n): Query<Notice>,
) -> Result<Response, PageError> {
    let mut conn = state.db().pool().acquire().await.map_err(crate::web::error::AppError::from)?;
    let latest = super::latest(&mut conn).await?;
    let run = super::store::last_run(&mut conn).await.map_err(crate::web::error::AppError::from)?;
    let runs = super::store::runs(&mut conn, 60).await.map_err(crate::web::error::AppError::from)?;
    let units: HashMap<i64, String> = crate::org::store::list_units(&mut conn)
        .await
        .map_err(crate::web::error::AppError::from)?
        .into_iter()
        .map(|u| (u.id.0, u.name))
        .collect();
    drop(conn);

    // By clause, in the order of the checks.
    let mut clauses: Vec<(String, Vec<Value>)> = Vec::new();
    for c in &latest {
        match clauses.iter_mut().find(|(k, _)| *k == c.clause) {
            Some((_, v)) => v.push(status_json(c)),
            None => clauses.push((c.clause.clone(), vec![status_json(c)])),
        }
    }
    let by_clause: Vec<Value> = clauses
        .into_iter()
        .map(|(clause, checks)| {
            let failing = checks.iter().filter(|c| c["passed"] == json!(false)).count();
            json!({ "clause": clause, "heading": clause_heading(&clause), "checks": checks, "failing": failing })
        })
        .collect();

    // By department: failing items per unit.
    let mut by_unit: BTreeMap<String, (Option<i64>, i64, Vec<String>)> = BTreeMap::new();
    for c in latest.iter().filter(|c| c.passed == Some(false)) {
        for item in &c.items {
            let name = item
                .unit_id
                .and_then(|u| units.get(&u).cloned())
                .unwrap_or_else(|| i18n::t(i18n::current(), "compliance.ward_wide", &[]));
            let e = by_unit.entry(name).or_insert((item.unit_id, 0, vec![]));
            e.1 += 1;
            if !e.2.contains(&c.clause) {
                e.2.push(c.clause.clone());
            }
        }
    }
    let mut by_department: Vec<Value> = by_unit
        .into_iter()
        .map(|(name, (id, n, clauses))| json!({ "unit": name, "unit_id": id, "items": n, "clauses": clauses.join(", ") }))
        .collect();
    by_department.sort_by(|a, b| b["items"].as_i64().cmp(&a["items"].as_i64()));

    // Top failing checks: most items first.
    let mut failing: Vec<&CheckStatus> = latest.iter().filter(|c| c.passed == Some(false)).collect();
    failing.sort_by(|a, b| b.item_count.cmp(&a.item_count).then(a.since.cmp(&b.since)));
    let top: Vec<Value> = failing.iter().take(5).map(|c| status_json(c)).collect();

    let passed = latest.iter().filter(|c| c.passed == Some(true)).count();
    let mut points: Vec<(i64, i64)> = runs.iter().map(|r| (r.started_at, r.passed)).collect();
    points.reverse();
    let html = render(
        "compliance.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "run": run, "total": CHECKS.len(), "passed": passed,
            "by_clause": by_clause, "by_department": by_department, "top": top,
            "chart": line_chart(&points, CHECKS.len() as i64),
            "may_run": req.actor.scope(Action::RunChecks).is_some(),
            "notice": (n.done == "run").then_some("compliance.done.run"),
        }),
    )?;
    Ok(html.into_response())
}

async fn run_submit(
    State(state): State<AppState>,
    req: Require<RunChecks>,
    CsrfForm(_f): CsrfForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    super::run_all_as(
        &state,
        Trigger::Demand,
        &req.actor.who(),
        req.actor.person_id.map(|p| p.0),
    )
    .await?;
    Ok(Redirect::to("/compliance?done=run").into_response())
}

async fn check_page(
    State(state): State<AppState>,
    req: Require<ViewCompliance>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let d = super::api::detail(&state, &id).await?;
    let mut conn = state.db().pool().acquire().await.map_err(crate::web::error::AppError::from)?;
    let units: HashMap<i64, String> = crate::org::store::list_units(&mut conn)
        .await
        .map_err(crate::web::error::AppError::from)?
        .into_iter()
        .map(|u| (u.id.0, u.name))
        .collect();
    drop(conn);
    let items: Vec<Value> = d
        .check
        .items
        .iter()
        .map(|i| {
            json!({
                "key": i.key, "label": i.label, "since": i.since, "link": i.link,
                "unit": i.unit_id.and_then(|u| units.get(&u).cloned()),
            })
        })
        .collect();
    let points: Vec<(i64, i64)> = d.history.iter().map(|p| (p.run_at, p.item_count)).collect();
    let max = d.history.iter().map(|p| p.item_count).max().unwrap_or(0).max(1);
    let history: Vec<&RunPoint> = d.history.iter().rev().take(30).collect();
    let html = render(
        "compliance_check.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "check": status_json(&d.check), "heading": clause_heading(&d.check.clause),
            "items": items, "history": history,
            "chart": line_chart(&points, nice_top(max)),
            "may_run": req.actor.scope(Action::RunChecks).is_some(),
        }),
    )?;
    Ok(html.into_response())
}

fn nice_top(v: i64) -> i64 {
    let mut p = 1i64;
    loop {
        for m in [2, 4, 6, 8, 10] {
            if m * p >= v {
                return m * p;
            }
        }
        if p > i64::MAX / 100 {
            return v;
        }
        p *= 10;
    }
}

/// Line chart geometry for the template (viewBox 760 × 220): one point per
/// run, values from 0 to `top`, three gridlines and a few date labels.
pub fn line_chart(points: &[(i64, i64)], top: i64) -> Value {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 28.0;
    if points.is_empty() {
        return Value::Null;
    }
    let top = top.max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = points.len();
    let x = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: i64| TOP + plot_h - plot_h * v.clamp(0, top) as f64 / top as f64;
    let fmt = |v: f64| format!("{v:.1}");
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{},{}", fmt(x(i)), fmt(y(*v))))
        .collect();
    let dots: Vec<Value> = points
        .iter()
        .enumerate()
        .map(|(i, (at, v))| {
            json!({ "x": fmt(x(i)), "y": fmt(y(*v)),
                    "title": format!("{}: {v}", crate::clock::format_unix(*at)) })
        })
        .collect();
    let every = n.div_ceil(6).max(1);
    let labels: Vec<Value> = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == n - 1)
        .map(|(i, (at, _))| {
            let t = crate::clock::format_unix(*at);
            json!({ "x": fmt(x(i)), "text": t.get(5..).unwrap_or("").replace('-', "/") })
        })
        .collect();
    let grid: Vec<Value> = [0, top / 2, top]
        .iter()
        .map(|v| json!({ "y": fmt(y(*v)), "label": v }))
        .collect();
    json!({
        "w": W, "h": H, "left": LEFT, "right": fmt(W - RIGHT), "base": fmt(TOP + plot_h),
        "label_y": fmt(H - 8.0), "points": line.join(" "), "dots": dots, "labels": labels, "grid": grid,
    })
}
