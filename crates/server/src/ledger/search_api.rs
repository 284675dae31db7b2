//! JSON API of ledger search and analysis (K16.2.3) and of the restricted
//! viewing of staff records with its reports (K30). The rules live in
//! `search`; here are parameters and answers.

use super::search::{
    self, Analysis, FilterInput, Kind, ReportInput, SearchPage, ViewerCount, ViewingReport,
};
use crate::app::{AppState, Routes};
use crate::auth::perm::{AnalyzeLedger, ReadViewingReports, ViewStaffRecords};
use crate::auth::Require;
use crate::web::error::{ApiError, AppError, FieldError};
use crate::web::json::ApiJson;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/ledger/search", search)
        .get("/api/v1/ledger/search/{index}", view)
        .get("/api/v1/ledger/analysis", analysis)
        .get("/api/v1/ledger/viewing-reports", list_reports)
        .post("/api/v1/ledger/viewing-reports", file_report)
}

/// Parses a query string; an unknown or repeated parameter is a 422 that
/// names the query (never a plain-text 400).
pub fn parse_query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, AppError> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
        let detail: String = e
            .to_string()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        AppError::invalid("query", "ledger.search.bad_query", &[("detail", detail)])
    })
}

/// Search parameters. Every filter is optional; text filters are exact
/// except `action`, a prefix.
#[derive(Debug, Default, Clone, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The actor, e.g. `person:12`, `account:7`.
    pub actor: Option<String>,
    /// The asset (target), e.g. `person:12`, `patron/123`.
    pub asset: Option<String>,
    /// The sending system, e.g. `mamori`, `library`.
    pub system: Option<String>,
    /// A prefix of the action, e.g. `auth.`.
    pub action: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: Option<String>,
    /// From (inclusive): RFC 3339, a JST local time `2026-11-29T09:30`, or a
    /// date (`2026-11-29`, `令和8年11月29日`) meaning its JST midnight.
    pub from: Option<String>,
    /// To (exclusive); a date includes that whole day.
    pub to: Option<String>,
    /// Cursor: the `next_before` of the previous page.
    pub before: Option<String>,
    /// Records per page, 1–500 (default 100).
    pub limit: Option<String>,
}

impl SearchQuery {
    pub fn filter_input(&self) -> FilterInput {
        FilterInput {
            actor: self.actor.clone(),
            asset: self.asset.clone(),
            system: self.system.clone(),
            action: self.action.clone(),
            result: self.result.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    /// (filter, cursor, page size), or every field at fault.
    pub fn check(&self) -> Result<(search::Filter, Option<u64>, i64), AppError> {
        let mut errors = Vec::new();
        let filter = self.filter_input().check(&mut errors);
        let before = number(&mut errors, "before", &self.before, 0, i64::MAX);
        let limit = number(&mut errors, "limit", &self.limit, 1, search::MAX_PAGE_SIZE)
            .unwrap_or(search::PAGE_SIZE);
        crate::web::json::done(errors)?;
        Ok((filter, before.map(|b| b as u64), limit))
    }
}

/// An integer parameter within [min, max]; blank is none.
fn number(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &Option<String>,
    min: i64,
    max: i64,
) -> Option<i64> {
    let v = value.as_deref()?.trim();
    if v.is_empty() {
        return None;
    }
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.push(FieldError::new(
                field,
                "field.out_of_range",
                &[("min", min.to_string()), ("max", max.to_string())],
            ));
            None
        }
    }
}

/// Search staff records, newest first (K30.2): only designated viewers, only
/// records of the staff of the units they were designated for. Each search
/// is itself a record (`ledger.search`).
#[utoipa::path(get, path = "/api/v1/ledger/search", tag = "ledger", params(SearchQuery),
    responses((status = 200, body = SearchPage),
              (status = 403, description = "not a designated viewer", body = crate::web::error::Problem),
              (status = 422, description = "a parameter is wrong; `field` names it", body = crate::web::error::Problem)))]
pub async fn search(
    State(state): State<AppState>,
    req: Require<ViewStaffRecords>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchPage>, ApiError> {
    let q: SearchQuery = parse_query(raw.as_deref())?;
    let (filter, before, limit) = q.check()?;
    Ok(Json(
        search::search(&state, &req.actor, &req.scope, &filter, before, limit).await?,
    ))
}

/// Open one staff record (K30.2). A record outside the viewer's units is
/// "not found". Each opening, allowed or not, is itself a record (`ledger.view`).
#[utoipa::path(get, path = "/api/v1/ledger/search/{index}", tag = "ledger", params(("index" = u64, Path)),
    responses((status = 200, body = crate::ledger::api::RecordView),
              (status = 403, body = crate::web::error::Problem),
              (status = 404, description = "no such record in the viewer's units", body = crate::web::error::Problem)))]
pub async fn view(
    State(state): State<AppState>,
    req: Require<ViewStaffRecords>,
    Path(index): Path<String>,
) -> Result<Json<search::RecordView>, ApiError> {
    let index = parse_index(&index)?;
    Ok(Json(
        search::view(&state, &req.actor, &req.scope, index).await?,
    ))
}

pub fn parse_index(s: &str) -> Result<u64, AppError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::invalid("index", "ledger.bad_index", &[]));
    }
    s.parse::<u64>()
        .ok()
        .filter(|i| *i <= i64::MAX as u64)
        .ok_or_else(|| AppError::invalid("index", "ledger.bad_index", &[]))
}

/// Analysis parameters: the kind, and the search filters (no cursor).
#[derive(Debug, Default, Clone, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalysisQuery {
    /// `daily` (default), `hourly`, `off_hours`, `bulk`, `outside_unit`,
    /// `failed_logins` or `admin_actions`.
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub asset: Option<String>,
    pub system: Option<String>,
    /// A prefix of the action.
    pub action: Option<String>,
    pub result: Option<String>,
    /// From (inclusive); by default the range ends today and spans 1 day
    /// (`hourly`) or 30 days.
    pub from: Option<String>,
    /// To (exclusive; a date includes that day). At most 31 days hourly, 400 otherwise.
    pub to: Option<String>,
}

impl AnalysisQuery {
    pub fn check(&self) -> Result<(Kind, search::Filter), AppError> {
        let mut errors = Vec::new();
        let kind = match self.kind.as_deref().map(str::trim) {
            None | Some("") => Some(Kind::Daily),
            Some(k) => {
                let k = Kind::parse(k);
                if k.is_none() {
                    errors.push(FieldError::new("kind", "ledger.analysis.bad_kind", &[]));
                }
                k
            }
        };
        let filter = FilterInput {
            actor: self.actor.clone(),
            asset: self.asset.clone(),
            system: self.system.clone(),
            action: self.action.clone(),
            result: self.result.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
        .check(&mut errors);
        crate::web::json::done(errors)?;
        Ok((kind.unwrap_or(Kind::Daily), filter))
    }
}

/// Counts of access records (K16.2.3): per hour or day, and the canned
/// analyses (off-hours, bulk access, access outside one's unit, failed
/// logins, admin actions). No record is opened. A security manager counts
/// only the records of their units' staff.
#[utoipa::path(get, path = "/api/v1/ledger/analysis", tag = "ledger", params(AnalysisQuery),
    responses((status = 200, body = Analysis),
              (status = 403, body = crate::web::error::Problem),
              (status = 422, description = "a parameter is wrong, or the range is too long", body = crate::web::error::Problem)))]
pub async fn analysis(
    State(state): State<AppState>,
    req: Require<AnalyzeLedger>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Analysis>, ApiError> {
    let q: AnalysisQuery = parse_query(raw.as_deref())?;
    let (kind, filter) = q.check()?;
    Ok(Json(
        search::analyse(&state, &req.actor, &req.scope, kind, &filter).await?,
    ))
}

/// File a report on a viewing session (K30.3). Only designated viewers; the
/// number of searches and openings in the period is counted from their records.
#[utoipa::path(post, path = "/api/v1/ledger/viewing-reports", tag = "ledger", request_body = ReportInput,
    responses((status = 201, body = ViewingReport),
              (status = 403, body = crate::web::error::Problem),
              (status = 422, body = crate::web::error::Problem)))]
pub async fn file_report(
    State(state): State<AppState>,
    req: Require<ViewStaffRecords>,
    ApiJson(input): ApiJson<ReportInput>,
) -> Result<(StatusCode, Json<ViewingReport>), ApiError> {
    let report = search::file_report(&state, &req.actor, &req.scope, &input).await?;
    Ok((StatusCode::CREATED, Json(report)))
}

/// Viewing reports and the number of designated viewers per unit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportsAnswer {
    /// Newest first, for the units in the reader's scope.
    pub reports: Vec<ViewingReport>,
    /// Designated viewers per unit today.
    pub viewers: Vec<ViewerCount>,
    /// The ward's limit (`ledger.max_viewers_per_unit`, K30.2).
    pub max_viewers_per_unit: i64,
}

/// The reports of the designated viewers of the units in scope (K30.3),
/// with the number of viewers per unit against the ward's limit (K30.2).
#[utoipa::path(get, path = "/api/v1/ledger/viewing-reports", tag = "ledger",
    responses((status = 200, body = ReportsAnswer), (status = 403, body = crate::web::error::Problem)))]
pub async fn list_reports(
    State(state): State<AppState>,
    req: Require<ReadViewingReports>,
) -> Result<Json<ReportsAnswer>, ApiError> {
    let (reports, viewers, max) = reports_and_viewers(&state, &req.scope).await?;
    Ok(Json(ReportsAnswer {
        reports,
        viewers,
        max_viewers_per_unit: max,
    }))
}

/// Reports and viewer counts for a reader's scope (also for the page).
pub async fn reports_and_viewers(
    state: &AppState,
    scope: &crate::auth::ActorScope,
) -> Result<(Vec<ViewingReport>, Vec<ViewerCount>, i64), AppError> {
    let reports = search::list_reports(state, scope, 200).await?;
    let units = {
        let mut conn = state.db().pool().acquire().await?;
        search::Within::of(&mut conn, scope).await?
    };
    let units = match &units {
        search::Within::Ward => None,
        search::Within::Units(u) => Some(u.as_slice()),
    };
    let (viewers, max) = search::viewer_counts(state, units).await?;
    Ok((reports, viewers, max))
}
