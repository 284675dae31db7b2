//! Pages of ledger search and analysis (K16.2.3) and of the restricted
//! viewing of staff records (K30): the designated viewer's search with the
//! report form, one record, the manager's reports, and the analysis with a
//! chart drawn as inline SVG on the server (the CSP allows no script and no
//! inline style; bars take their colour from a class in `mamori.css`).

use super::search::{self, Analysis, Bucket, Kind, ReportInput, SearchPage};
use super::search_api::{
    parse_index, parse_query, reports_and_viewers, AnalysisQuery, SearchQuery,
};
use crate::app::{AppState, Routes};
use crate::auth::perm::{AnalyzeLedger, ReadViewingReports, ViewStaffRecords};
use crate::auth::{ActorScope, Require};
use crate::org::pages::form_errors;
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::i18n::{self, Lang};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/ledger/search", search_page)
        .get("/ledger/search/{index}", record_page)
        .post("/ledger/viewing-reports", report_submit)
        .get("/ledger/viewing-reports", reports_page)
        .get("/ledger/analysis", analysis_page)
}

/// A moment for people: 和暦 date and time in Japanese, ISO in English (JST).
pub fn when(us: i64) -> String {
    let (date, hms) = search::jst_parts(us);
    if i18n::current() == Lang::Ja {
        match crate::clock::parse_date_str(&date) {
            Some(d) => format!("{} {hms}", mamori_policy::wareki::format_date_ja(d)),
            None => String::new(),
        }
    } else {
        format!("{date} {hms}")
    }
}

/// Just the date, 和暦 in Japanese.
fn day(us: i64) -> String {
    let (date, _) = search::jst_parts(us);
    match crate::clock::parse_date_str(&date) {
        Some(d) if i18n::current() == Lang::Ja => mamori_policy::wareki::format_date_ja(d),
        _ => date,
    }
}

/// A JST local time as a `datetime-local` input shows it.
fn local_input(us: i64) -> String {
    let (date, hms) = search::jst_parts(us);
    format!("{date}T{}", &hms[..hms.len().min(5)])
}

// ---------------------------------------------------------------------------
// Search (designated viewers)

/// The search form's fields, and `done` after filing a report.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchPageQuery {
    actor: Option<String>,
    asset: Option<String>,
    system: Option<String>,
    action: Option<String>,
    result: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
    limit: Option<String>,
    done: Option<String>,
}

impl SearchPageQuery {
    fn to_api(&self) -> SearchQuery {
        SearchQuery {
            actor: self.actor.clone(),
            asset: self.asset.clone(),
            system: self.system.clone(),
            action: self.action.clone(),
            result: self.result.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            before: self.before.clone(),
            limit: self.limit.clone(),
        }
    }

    /// The form was sent (even blank): a search runs, and is recorded.
    fn submitted(&self) -> bool {
        [
            &self.actor,
            &self.asset,
            &self.system,
            &self.action,
            &self.result,
            &self.from,
            &self.to,
            &self.before,
        ]
        .iter()
        .any(|f| f.is_some())
    }
}

/// The report form as typed.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
struct ReportForm {
    #[serde(default)]
    org_unit_id: String,
    #[serde(default)]
    period_from: String,
    #[serde(default)]
    period_to: String,
    #[serde(default)]
    summary: String,
}

const SEARCH_FIELDS: [&str; 9] = [
    "actor", "asset", "system", "action", "result", "from", "to", "before", "limit",
];
const REPORT_FIELDS: [&str; 4] = ["org_unit_id", "period_from", "period_to", "summary"];

async fn search_page(
    State(state): State<AppState>,
    req: Require<ViewStaffRecords>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let q: SearchPageQuery = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(AppError::Invalid(errors)) => {
            return render_search(
                &state,
                &req,
                &SearchQuery::default(),
                None,
                &errors,
                None,
                None,
            )
            .await
        }
        Err(e) => return Err(e.into()),
    };
    let api = q.to_api();
    let notice = (q.done.as_deref() == Some("reported")).then_some("ledger.viewing.filed");
    if !q.submitted() {
        return render_search(&state, &req, &api, None, &[], None, notice).await;
    }
    let found = match api.check() {
        Ok((filter, before, limit)) => {
            search::search(&state, &req.actor, &req.scope, &filter, before, limit).await
        }
        Err(e) => Err(e),
    };
    match found {
        Ok(page) => render_search(&state, &req, &api, Some(page), &[], None, notice).await,
        Err(AppError::Invalid(errors)) => {
            render_search(&state, &req, &api, None, &errors, None, None).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn render_search(
    state: &AppState,
    req: &Require<ViewStaffRecords>,
    q: &SearchQuery,
    found: Option<SearchPage>,
    errors: &[FieldError],
    report: Option<(&ReportForm, &[FieldError])>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let units = search::viewer_units(&req.scope);
    let (viewers, max) = search::viewer_counts(state, Some(&units)).await?;
    let (first_unreported, unreported) = search::unreported(state, &req.actor).await?;
    let records = match &found {
        None => Value::Null,
        Some(page) => {
            let actors: Vec<&str> = page.records.iter().map(|h| h.actor.as_str()).collect();
            let names = {
                let mut conn = state.db().pool().acquire().await?;
                search::names(&mut conn, &actors).await?
            };
            Value::Array(
                page.records
                    .iter()
                    .map(|h| {
                        json!({
                            "index": h.index, "when": when(h.time_us), "time": h.time,
                            "system": h.system, "actor": h.actor, "name": names.get(&h.actor),
                            "action": h.action, "asset": h.asset, "result": h.result,
                        })
                    })
                    .collect(),
            )
        }
    };
    let next = found.as_ref().and_then(|p| p.next_before).map(|b| {
        let mut next = q.clone();
        next.before = Some(b.to_string());
        format!(
            "/ledger/search?{}",
            serde_urlencoded::to_string(&next).unwrap_or_default()
        )
    });
    let (form, report_errors) = match report {
        Some((f, e)) => (f.clone(), e),
        None => (
            ReportForm {
                org_unit_id: units.first().map(|u| u.to_string()).unwrap_or_default(),
                period_from: first_unreported
                    .map(|s| local_input(s * 1_000_000))
                    .unwrap_or_default(),
                ..Default::default()
            },
            &[][..],
        ),
    };
    let unit_options: Vec<Value> = viewers
        .iter()
        .map(|v| json!({ "id": v.org_unit_id.to_string(), "name": v.org_unit_name }))
        .collect();
    let status = if errors.is_empty() && report_errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = render(
        "ledger_search.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "q": q,
            "errors": form_errors(errors, &SEARCH_FIELDS, "s-"),
            "searched": found.is_some(),
            "records": records,
            "next": next,
            "viewers": viewers,
            "max_viewers": max,
            "any_over": viewers.iter().any(|v| v.over_limit),
            "unreported": unreported,
            "report": form,
            "report_errors": form_errors(report_errors, &REPORT_FIELDS, "r-"),
            "unit_options": unit_options,
            "notice": notice,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn record_page(
    State(state): State<AppState>,
    req: Require<ViewStaffRecords>,
    Path(index): Path<String>,
) -> Result<Response, PageError> {
    let index = parse_index(&index).map_err(|_| AppError::NotFound("record"))?;
    let r = search::view(&state, &req.actor, &req.scope, index).await?;
    let names = {
        let mut conn = state.db().pool().acquire().await?;
        search::names(&mut conn, &[r.actor.as_str()]).await?
    };
    let time_us = search::parse_instant(&r.time, false).unwrap_or(0);
    let detail = r
        .detail
        .as_ref()
        .and_then(|d| serde_json::to_string_pretty(d).ok());
    Ok(render(
        "ledger_record.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "r": r, "when": when(time_us), "name": names.get(&r.actor), "detail": detail,
        }),
    )?
    .into_response())
}

async fn report_submit(
    State(state): State<AppState>,
    req: Require<ViewStaffRecords>,
    CsrfForm(form): CsrfForm<ReportForm>,
) -> Result<Response, PageError> {
    let blank = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    let unit = match blank(&form.org_unit_id) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            vec![FieldError::new(
                "org_unit_id",
                "ledger.viewing.not_your_unit",
                &[],
            )]
        }),
    };
    let filed = match unit {
        Err(errors) => Err(AppError::Invalid(errors)),
        Ok(unit) => {
            let input = ReportInput {
                org_unit_id: unit,
                period_from: blank(&form.period_from),
                period_to: blank(&form.period_to),
                summary: form.summary.clone(),
            };
            search::file_report(&state, &req.actor, &req.scope, &input).await
        }
    };
    match filed {
        Ok(_) => Ok(Redirect::to("/ledger/search?done=reported").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_search(
                &state,
                &req,
                &SearchQuery::default(),
                None,
                &[],
                Some((&form, &errors)),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// Viewing reports (security managers)

async fn reports_page(
    State(state): State<AppState>,
    req: Require<ReadViewingReports>,
) -> Result<Response, PageError> {
    let (reports, viewers, max) = reports_and_viewers(&state, &req.scope).await?;
    let rows: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "viewer": r.viewer_name, "unit": r.org_unit_name,
                "from": when(r.period_from * 1_000_000), "to": when(r.period_to * 1_000_000),
                "from_time": r.period_from_time, "to_time": r.period_to_time,
                "searches": r.searches, "summary": r.summary,
                "filed": when(r.created_at * 1_000_000),
            })
        })
        .collect();
    Ok(render(
        "ledger_viewing_reports.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "reports": rows, "viewers": viewers, "max_viewers": max,
            "any_over": viewers.iter().any(|v| v.over_limit),
        }),
    )?
    .into_response())
}

// ---------------------------------------------------------------------------
// Analysis

async fn analysis_page(
    State(state): State<AppState>,
    req: Require<AnalyzeLedger>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (q, parsed) = match parse_query::<AnalysisQuery>(raw.as_deref()) {
        Ok(q) => {
            let checked = q.check();
            (q, checked)
        }
        Err(e) => (AnalysisQuery::default(), Err(e)),
    };
    let result = match parsed {
        Ok((kind, filter)) => search::analyse(&state, &req.actor, &req.scope, kind, &filter)
            .await
            .map(Some),
        Err(e) => Err(e),
    };
    let (analysis, errors) = match result {
        Ok(a) => (a, vec![]),
        Err(AppError::Invalid(errors)) => (None, errors),
        Err(e) => return Err(e.into()),
    };
    let scope_units = scope_unit_names(&state, &req.scope).await?;
    let kind = analysis
        .as_ref()
        .map(|a| a.kind)
        .or_else(|| q.kind.as_deref().and_then(Kind::parse))
        .unwrap_or(Kind::Daily);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = render(
        "ledger_analysis.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "q": q,
            "kind": kind.code(),
            "kinds": Kind::ALL.iter().map(|k| k.code()).collect::<Vec<_>>(),
            "errors": form_errors(&errors, &["kind", "actor", "asset", "system", "action", "result", "from", "to"], "a-"),
            "a": analysis.as_ref().map(analysis_view),
            "scope_units": scope_units,
            "work_start": format!("{}:{:02}", search::WORK_START_MINUTE / 60, search::WORK_START_MINUTE % 60),
            "work_end": format!("{}:{:02}", search::WORK_END_MINUTE / 60, search::WORK_END_MINUTE % 60),
            "bulk_records": search::BULK_RECORDS,
            "bulk_minutes": search::BULK_WINDOW_SECS / 60,
            "max_sources": search::MAX_SOURCE_SCAN,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn scope_unit_names(state: &AppState, scope: &ActorScope) -> Result<Vec<String>, AppError> {
    let ActorScope::Units(units) = scope else {
        return Ok(vec![]);
    };
    let mut conn = state.db().pool().acquire().await?;
    let mut out = Vec::new();
    for u in units {
        if let Some(unit) = crate::org::store::get_unit(&mut conn, *u).await? {
            out.push(if i18n::current() == Lang::En && !unit.name_en.is_empty() {
                unit.name_en
            } else {
                unit.name
            });
        }
    }
    Ok(out)
}

fn analysis_view(a: &Analysis) -> Value {
    let hourly = a.bucket_secs == Some(3600);
    let group = |g: &search::Group| {
        json!({
            "actor": g.actor, "name": g.name, "action": g.action, "source": g.source,
            "count": g.count, "first": when(g.first_us), "last": when(g.last_us),
            "first_time": g.first, "last_time": g.last,
            "reached": g.reached,
        })
    };
    json!({
        "kind": a.kind.code(),
        "from": when(a.from_us), "to": when(a.to_us), "from_time": a.from, "to_time": a.to,
        "ward_wide": a.ward_wide,
        "total": a.total, "matched": a.matched, "truncated": a.truncated,
        "chart": (!a.buckets.is_empty()).then(|| chart(&a.buckets, hourly)),
        "buckets": a.buckets.iter().map(|b| json!({ "label": bucket_label(b, hourly), "count": b.count })).collect::<Vec<_>>(),
        "groups": a.groups.iter().map(group).collect::<Vec<_>>(),
        "sources": a.sources.iter().map(group).collect::<Vec<_>>(),
    })
}

fn bucket_label(b: &Bucket, hourly: bool) -> String {
    if hourly {
        let (_, hms) = search::jst_parts(b.start_us);
        format!("{} {}", day(b.start_us), hms.get(..5).unwrap_or(""))
    } else {
        day(b.start_us)
    }
}

/// Bar chart geometry for the template: a viewBox of 760 × 240, bars with
/// a title each, a few x labels and three y gridlines.
fn chart(buckets: &[Bucket], hourly: bool) -> Value {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 48.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 28.0;
    let n = buckets.len().max(1);
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let top = nice_ceiling(max.max(1));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.8).max(0.5);
    let fmt = |v: f64| format!("{v:.1}");
    let bars: Vec<Value> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let h = plot_h * b.count as f64 / top as f64;
            json!({
                "x": fmt(LEFT + slot * i as f64 + (slot - bar_w) / 2.0),
                "y": fmt(TOP + plot_h - h),
                "w": fmt(bar_w),
                "h": fmt(h),
                "title": i18n::t(i18n::current(), "ledger.analysis.bar_title",
                    &[("when", bucket_label(b, hourly)), ("count", b.count.to_string())]),
            })
        })
        .collect();
    // At most about 12 x labels.
    let every = n.div_ceil(12).max(1);
    let labels: Vec<Value> = buckets
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, b)| {
            let (date, hms) = search::jst_parts(b.start_us);
            let text = if hourly && n <= 48 {
                hms.get(..2).unwrap_or("").to_string()
            } else {
                date.get(5..).unwrap_or("").replace('-', "/")
            };
            json!({ "x": fmt(LEFT + slot * i as f64 + slot / 2.0), "text": text })
        })
        .collect();
    let grid: Vec<Value> = [0, top / 2, top]
        .iter()
        .map(|v| json!({ "y": fmt(TOP + plot_h - plot_h * *v as f64 / top as f64), "label": v }))
        .collect();
    json!({
        "w": W, "h": H, "left": LEFT, "right": fmt(W - RIGHT), "base": fmt(TOP + plot_h),
        "label_y": fmt(H - 8.0), "bars": bars, "labels": labels, "grid": grid,
    })
}

/// The smallest 2, 4, 6, 8 or 10 × 10ⁿ at least `v`: an even top, so the
/// middle gridline has a whole number.
fn nice_ceiling(v: i64) -> i64 {
    let mut p = 1i64;
    while p <= i64::MAX / 100 {
        for m in [2, 4, 6, 8, 10] {
            if m * p >= v {
                return m * p;
            }
        }
        p *= 10;
    }
    v.saturating_add(v % 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_tops_are_round() {
        assert_eq!(nice_ceiling(1), 2);
        assert_eq!(nice_ceiling(3), 4);
        assert_eq!(nice_ceiling(12), 20);
        assert_eq!(nice_ceiling(21), 40);
        assert_eq!(nice_ceiling(500), 600);
    }
}
