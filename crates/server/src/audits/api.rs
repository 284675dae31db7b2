//! JSON API of external audits and findings (K32.2). Every route is in the
//! OpenAPI document.

use super::service::{self, AuditInput, AuditorInput, EntryInput, FindingInput, NewAuditor};
use super::store::FindingFilter;
use super::{AuditSummary, AuditView, FindingSummary, FindingView, SEVERITIES};
use crate::app::{AppState, Routes};
use crate::auth::perm::{FollowUpFindings, ManageAudits, ReadFindings, ViewAudits};
use crate::auth::Require;
use crate::incidents::api::{path_id, Created};
use crate::web::error::{ApiError, AppError};
use crate::web::json::ApiJson;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/audits", list)
        .post("/api/v1/audits", create)
        .get("/api/v1/audits/{id}", get)
        .put("/api/v1/audits/{id}", update)
        .post("/api/v1/audits/{id}/close", close)
        .post("/api/v1/audits/{id}/auditors", add_auditor)
        .post("/api/v1/audits/{id}/findings", add_finding)
        .get("/api/v1/audit-findings", findings)
        .get("/api/v1/audit-findings/{id}", finding)
        .post("/api/v1/audit-findings/{id}/entries", follow_up)
}

fn created(url: String, id: i64) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id, url }),
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub audits: Vec<AuditSummary>,
}

/// External audits, newest first, with their open and overdue findings.
#[utoipa::path(get, path = "/api/v1/audits", tag = "audits",
    responses((status = 200, body = AuditList), (status = 403, body = crate::web::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    _req: Require<ViewAudits>,
) -> Result<Json<AuditList>, ApiError> {
    Ok(Json(AuditList {
        audits: service::list_audits(&state).await?,
    }))
}

/// Order an external audit (the セキュリティ統括者, K32.2).
#[utoipa::path(post, path = "/api/v1/audits", tag = "audits", request_body = AuditInput,
    responses((status = 201, body = Created), (status = 422, description = "a field is missing or wrong; `field` names it", body = crate::web::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    ApiJson(input): ApiJson<AuditInput>,
) -> Result<Response, ApiError> {
    let id = service::create_audit(&state, &req.actor, &input).await?;
    Ok(created(format!("/api/v1/audits/{id}"), id))
}

/// One audit with its auditor accounts and findings.
#[utoipa::path(get, path = "/api/v1/audits/{id}", tag = "audits", params(("id" = i64, Path)),
    responses((status = 200, body = AuditView), (status = 404, body = crate::web::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    _req: Require<ViewAudits>,
    Path(id): Path<String>,
) -> Result<Json<AuditView>, ApiError> {
    let id = path_id(&id, "audit")?;
    Ok(Json(service::get_audit(&state, id).await?))
}

/// Change an open audit's particulars or period; the auditor accounts
/// follow the new period.
#[utoipa::path(put, path = "/api/v1/audits/{id}", tag = "audits", params(("id" = i64, Path)), request_body = AuditInput,
    responses((status = 204), (status = 404, body = crate::web::error::Problem), (status = 409, body = crate::web::error::Problem),
        (status = 422, body = crate::web::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AuditInput>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "audit")?;
    service::update_audit(&state, &req.actor, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Close an audit; its auditor accounts stop working at once.
#[utoipa::path(post, path = "/api/v1/audits/{id}/close", tag = "audits", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::web::error::Problem), (status = 409, body = crate::web::error::Problem)))]
pub async fn close(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "audit")?;
    service::close_audit(&state, &req.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an auditor account for the audit: read-only (外部監査人) from the
/// audit's first day to its last. The one-time password is shown once.
#[utoipa::path(post, path = "/api/v1/audits/{id}/auditors", tag = "audits", params(("id" = i64, Path)), request_body = AuditorInput,
    responses((status = 201, body = NewAuditor), (status = 404, body = crate::web::error::Problem),
        (status = 409, description = "the audit is closed or has ended", body = crate::web::error::Problem),
        (status = 422, body = crate::web::error::Problem)))]
pub async fn add_auditor(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AuditorInput>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "audit")?;
    let a = service::add_auditor(&state, &req.actor, id, &input).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

/// Record a finding of the audit: severity, clauses, owner, due date.
#[utoipa::path(post, path = "/api/v1/audits/{id}/findings", tag = "audits", params(("id" = i64, Path)), request_body = FindingInput,
    responses((status = 201, body = Created), (status = 404, body = crate::web::error::Problem),
        (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn add_finding(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<FindingInput>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "audit")?;
    let fid = service::add_finding(&state, &req.actor, id, &input).await?;
    Ok(created(format!("/api/v1/audit-findings/{fid}"), fid))
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    /// Only this audit's findings.
    pub audit_id: Option<String>,
    /// `open` (not closed), `overdue` (open and past due) or `all` (default).
    pub status: Option<String>,
    /// `high`, `medium`, `low` or `observation`.
    pub severity: Option<String>,
    /// `1`: only the findings I own.
    pub mine: Option<String>,
}

/// Builds the filter of a findings query (shared with the pages).
pub(crate) fn finding_filter(
    q: &FindingQuery,
    me: Option<crate::ids::PersonId>,
) -> Result<FindingFilter, AppError> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut f = FindingFilter::default();
    if let Some(a) = given(&q.audit_id) {
        f.audit_id = Some(
            a.parse::<i64>()
                .map_err(|_| AppError::invalid("audit_id", "finding.bad_audit_id", &[]))?,
        );
    }
    match given(&q.status).as_deref() {
        None | Some("all") => {}
        Some("open") => f.open_only = true,
        Some("overdue") => f.overdue_only = true,
        Some(_) => {
            return Err(AppError::invalid(
                "status",
                "finding.bad_status_filter",
                &[],
            ))
        }
    }
    if let Some(s) = given(&q.severity) {
        if !SEVERITIES.contains(&s.as_str()) {
            return Err(AppError::invalid(
                "severity",
                "finding.bad_severity",
                &[("value", s.chars().take(40).collect())],
            ));
        }
        f.severity = Some(s);
    }
    if q.mine.as_deref() == Some("1") {
        f.owner = Some(me.unwrap_or(crate::ids::PersonId(0)));
    }
    Ok(f)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingList {
    pub findings: Vec<FindingSummary>,
}

/// Findings: all of them for those who see audits, else the ones I own.
/// `status=overdue` lists the open ones past their due date.
#[utoipa::path(get, path = "/api/v1/audit-findings", tag = "audits", params(FindingQuery),
    responses((status = 200, body = FindingList), (status = 422, body = crate::web::error::Problem)))]
pub async fn findings(
    State(state): State<AppState>,
    req: Require<ReadFindings>,
    Query(q): Query<FindingQuery>,
) -> Result<Json<FindingList>, ApiError> {
    let f = finding_filter(&q, req.actor.person_id)?;
    Ok(Json(FindingList {
        findings: service::list_findings(&state, &req.actor, f).await?,
    }))
}

/// One finding with its follow-up entries.
#[utoipa::path(get, path = "/api/v1/audit-findings/{id}", tag = "audits", params(("id" = i64, Path)),
    responses((status = 200, body = FindingView), (status = 404, body = crate::web::error::Problem)))]
pub async fn finding(
    State(state): State<AppState>,
    req: Require<ReadFindings>,
    Path(id): Path<String>,
) -> Result<Json<FindingView>, ApiError> {
    let id = path_id(&id, "finding")?;
    Ok(Json(service::get_finding(&state, &req.actor, id).await?))
}

/// Follow-up on a finding: `progress`, `close` (with a note) by its owner
/// or the 統括者; `reopen` by the 統括者.
#[utoipa::path(post, path = "/api/v1/audit-findings/{id}/entries", tag = "audits", params(("id" = i64, Path)), request_body = EntryInput,
    responses((status = 201, body = FindingView), (status = 404, body = crate::web::error::Problem),
        (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn follow_up(
    State(state): State<AppState>,
    req: Require<FollowUpFindings>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "finding")?;
    service::follow_up(&state, &req.actor, id, &input).await?;
    let view = service::get_finding(&state, &req.actor, id).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}
