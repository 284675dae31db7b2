//! JSON API for incidents, failure records and failure procedures
//! (K10, K16.4, K26, K27). Every route is in the OpenAPI document.

use super::failures::{
    self, CriticalInput, FailureInput, FailureQuery, FailureRecord, ProcedureInput,
    ProcedureSummary, RecurrenceReport, SystemProcedures,
};
use super::response::{self, EntryInput, EvidenceInput};
use super::service::{self, ListScope, NotificationView, ReportInput, StepInput};
use super::{attachments, store, IncidentSummary, IncidentView};
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    HandleIncidents, ManageFailureProcedures, ReadIncidents, RecordFailures, ReportEmergencyAction,
    ReportIncident, UseOwnAccount, ViewFailureProcedures, ViewFailureRecords,
};
use crate::auth::Require;
use crate::web::error::{ApiError, AppError, FieldError};
use crate::web::json::ApiJson;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.post("/api/v1/incidents", report)
        .get("/api/v1/incidents", list)
        .get("/api/v1/incidents/{id}", get)
        .post("/api/v1/incidents/{id}/steps/{step}", act)
        .post("/api/v1/incidents/{id}/promote", promote)
        .post("/api/v1/incidents/{id}/entries", add_entry)
        .post("/api/v1/incidents/{id}/emergency-actions", emergency_action)
        .post("/api/v1/incidents/{id}/evidence", evidence)
        .post("/api/v1/incidents/{id}/attachments", upload)
        .get("/api/v1/incidents/{id}/attachments/{aid}", download)
        .put("/api/v1/incidents/{id}/failure-record", record_failure)
        .get("/api/v1/notifications", notifications)
        .get("/api/v1/me/notification-address", get_address)
        .put("/api/v1/me/notification-address", put_address)
        .get("/api/v1/failure-records", failure_records)
        .get("/api/v1/failure-records/recurrence", recurrence)
        .get("/api/v1/failure-procedures", procedures)
        .post("/api/v1/failure-procedures", write_procedure)
        .put("/api/v1/failure-procedures/critical", set_critical)
}

/// A path id; anything else is "not found" (never a 400 without a problem).
pub(crate) fn path_id(s: &str, what: &'static str) -> Result<i64, AppError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(AppError::NotFound(what))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
    pub url: String,
}

/// Report an incident or failure (K10.1; 指定管理者 staff too, K33.1.6).
/// The report goes to the reporter's セキュリティ管理者 at once.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = ReportInput,
    responses((status = 201, body = Created), (status = 422, description = "a field is missing or wrong; `field` names it", body = crate::web::error::Problem)))]
pub async fn report(
    State(state): State<AppState>,
    req: Require<ReportIncident>,
    ApiJson(input): ApiJson<ReportInput>,
) -> Result<Response, ApiError> {
    let id = service::report(&state, &req.actor, &input, &[]).await?;
    let url = format!("/api/v1/incidents/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id, url }),
    )
        .into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `mine` (default) or `all` (everything in my scope; needs `ViewIncidents`).
    pub scope: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub system_code: Option<String>,
    /// `1` for security incidents only.
    pub security: Option<String>,
    /// Reported on or after this date (or time).
    pub from: Option<String>,
    /// Reported up to the end of this date (or before this time).
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentList {
    pub incidents: Vec<IncidentSummary>,
    /// Counts by kind and status under the same filter.
    pub counts: Vec<KindStatusCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KindStatusCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

/// Builds the filter of a list query (shared with the pages and exports).
pub(crate) async fn list_filter(
    conn: &mut crate::db::Conn,
    actor: &crate::auth::Actor,
    q: &ListQuery,
) -> Result<store::Filter, AppError> {
    let which = match q.scope.as_deref().unwrap_or("mine") {
        "mine" | "" => ListScope::Mine,
        "all" => ListScope::All,
        _ => return Err(AppError::invalid("scope", "incident.bad_scope", &[])),
    };
    let mut f = service::filter_for(conn, actor, which).await?;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    f.kind = given(&q.kind);
    if let Some(k) = &f.kind {
        if super::Kind::parse(k).is_none() {
            return Err(AppError::invalid("kind", "incident.bad_kind", &[]));
        }
    }
    f.status = given(&q.status);
    if let Some(s) = &f.status {
        if !super::STATUSES.contains(&s.as_str()) {
            return Err(AppError::invalid("status", "incident.bad_status", &[]));
        }
    }
    f.system_code = given(&q.system_code);
    f.security_only = q.security.as_deref() == Some("1");
    let mut errors = Vec::new();
    if let Some(v) = given(&q.from) {
        match service::parse_time(&v) {
            Some(t) => f.from = Some(t),
            None => errors.push(FieldError::new(
                "from",
                "incident.bad_time",
                &[("value", v.chars().take(40).collect())],
            )),
        }
    }
    if let Some(v) = given(&q.to) {
        // A date covers its whole day.
        let whole_day = if v.contains(':') { 0 } else { 86_400 };
        match service::parse_time(&v) {
            Some(t) => f.to = Some(t + whole_day),
            None => errors.push(FieldError::new(
                "to",
                "incident.bad_time",
                &[("value", v.chars().take(40).collect())],
            )),
        }
    }
    crate::web::json::done(errors)?;
    Ok(f)
}

/// Reports: mine, or all in my scope, with counts by kind and status.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery),
    responses((status = 200, body = IncidentList), (status = 403, body = crate::web::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Query(q): Query<ListQuery>,
) -> Result<Json<IncidentList>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    let f = list_filter(&mut conn, &req.actor, &q).await?;
    let now = state.clock().unix();
    let incidents = store::list(&mut conn, &f, now, 1000).await?;
    let counts = store::counts(&mut conn, &f)
        .await?
        .into_iter()
        .map(|(kind, status, count)| KindStatusCount {
            kind,
            status,
            count,
        })
        .collect();
    Ok(Json(IncidentList { incidents, counts }))
}

/// One report with its chain (person, acknowledgement, deadline of each
/// step), timeline, attachments and K27 checklist.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = IncidentView), (status = 404, body = crate::web::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = path_id(&id, "incident")?;
    Ok(Json(service::view(&state, &req.actor, id).await?))
}

/// The holder of a step acts on it: `acknowledge`, `forward` (manager →
/// 統括者, K10.2), `report` (統括者 → CIO, K10.3), `instruct` (統括者 →
/// manager, K10.3). Someone else gets 422 naming `step`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/steps/{step}", tag = "incidents",
    params(("id" = i64, Path), ("step" = i64, Path)), request_body = StepInput,
    responses((status = 204), (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn act(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path((id, step)): Path<(String, String)>,
    ApiJson(input): ApiJson<StepInput>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "incident")?;
    let step = path_id(&step, "incident step")?;
    service::act_on_step(&state, &req.actor, id, step, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteInput {
    pub reason: String,
}

/// Promote a report to a security incident (K27).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/promote", tag = "incidents", params(("id" = i64, Path)),
    request_body = PromoteInput, responses((status = 204), (status = 409, body = crate::web::error::Problem)))]
pub async fn promote(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PromoteInput>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "incident")?;
    service::promote(&state, &req.actor, id, &input.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a K27 / K25 entry to the timeline (see `incidents::response`).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/entries", tag = "incidents", params(("id" = i64, Path)),
    request_body = EntryInput, responses((status = 204), (status = 403, body = crate::web::error::Problem),
    (status = 422, body = crate::web::error::Problem)))]
pub async fn add_entry(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EntryInput>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "incident")?;
    response::add_entry(&state, &req.actor, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator reports a network cut or system stop taken on their own
/// judgement in an emergency (K27.1.2 ただし書き): `measure`, `at`, `note`
/// (why). The report's manager is told (事後報告).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/emergency-actions", tag = "incidents", params(("id" = i64, Path)),
    request_body = EntryInput, responses((status = 204), (status = 422, body = crate::web::error::Problem)))]
pub async fn emergency_action(
    State(state): State<AppState>,
    req: Require<ReportEmergencyAction>,
    Path(id): Path<String>,
    ApiJson(mut input): ApiJson<EntryInput>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "incident")?;
    input.kind = "emergency_action".into();
    response::add_entry(&state, &req.actor, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceAnswer {
    /// The evidence bundle frozen, if one was.
    pub bundle_id: Option<i64>,
    pub bundle_url: Option<String>,
}

/// Preserve evidence (K27.1.3): link ledger records and/or freeze a bundle.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/evidence", tag = "incidents", params(("id" = i64, Path)),
    request_body = EvidenceInput, responses((status = 201, body = EvidenceAnswer), (status = 422, body = crate::web::error::Problem)))]
pub async fn evidence(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EvidenceInput>,
) -> Result<(StatusCode, Json<EvidenceAnswer>), ApiError> {
    let id = path_id(&id, "incident")?;
    let b = response::preserve_evidence(&state, &req.actor, id, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(EvidenceAnswer {
            bundle_id: b,
            bundle_url: b.map(|b| format!("/api/v1/ledger/evidence/{b}")),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name; its extension decides the allowed type.
    #[serde(default)]
    pub name: String,
}

/// Attach a file to a report: the raw body, `?name=` the file name, and
/// the header `X-Mamori-Upload: 1` (a custom header no cross-site form can
/// send). Size and type limits as in the report form.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/attachments", tag = "incidents",
    params(("id" = i64, Path), UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201), (status = 422, body = crate::web::error::Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    req: Require<ReportIncident>,
    Path(id): Path<String>,
    q: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "incident")?;
    if headers.get("x-mamori-upload").and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(AppError::invalid("X-Mamori-Upload", "incident.upload_header", &[]).into());
    }
    let name = q.map(|q| q.0.name).unwrap_or_default();
    let stored = attachments::store_file(&state, "file", &name, &body)
        .await?
        .map_err(|e| AppError::Invalid(vec![e]))?;
    attachments::attach(&state, &req.actor, id, &[stored]).await?;
    Ok(StatusCode::CREATED)
}

/// Download an attachment (for those who may see the report).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/attachments/{aid}", tag = "incidents",
    params(("id" = i64, Path), ("aid" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = crate::web::error::Problem)))]
pub async fn download(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Path((id, aid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "incident")?;
    let aid = path_id(&aid, "attachment")?;
    let (a, bytes) = attachments::read(&state, &req.actor, id, aid).await?;
    Ok(file_download(&a.file_name, bytes))
}

/// A stored file served as a download whatever its type, so it never
/// renders here (evidence of inspections is served the same way).
pub(crate) fn file_download(file_name: &str, bytes: Vec<u8>) -> Response {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Record or correct the failure record of a report (K16.4).
#[utoipa::path(put, path = "/api/v1/incidents/{id}/failure-record", tag = "failures", params(("id" = i64, Path)),
    request_body = FailureInput, responses((status = 200, body = FailureRecord), (status = 422, body = crate::web::error::Problem)))]
pub async fn record_failure(
    State(state): State<AppState>,
    req: Require<RecordFailures>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<FailureInput>,
) -> Result<Json<FailureRecord>, ApiError> {
    let id = path_id(&id, "incident")?;
    Ok(Json(
        failures::record(&state, &req.actor, &req.scope, id, &input).await?,
    ))
}

/// My notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "incidents",
    responses((status = 200, body = Vec<NotificationView>)))]
pub async fn notifications(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    Ok(Json(service::my_notifications(&state, &req.actor).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Where my incident notifications are mailed; empty to stop mail.
    pub email: String,
}

/// The address my incident notifications are mailed to (empty if none).
#[utoipa::path(get, path = "/api/v1/me/notification-address", tag = "incidents",
    responses((status = 200, body = AddressInput)))]
pub async fn get_address(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
) -> Result<Json<AddressInput>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    let email = match req.actor.person_id {
        Some(p) => crate::mail::address_of(&mut conn, p.0).await?,
        None => None,
    };
    Ok(Json(AddressInput {
        email: email.unwrap_or_default(),
    }))
}

/// Set (or, empty, remove) the address my incident notifications are mailed to.
#[utoipa::path(put, path = "/api/v1/me/notification-address", tag = "incidents", request_body = AddressInput,
    responses((status = 204), (status = 422, body = crate::web::error::Problem)))]
pub async fn put_address(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    ApiJson(input): ApiJson<AddressInput>,
) -> Result<StatusCode, ApiError> {
    crate::mail::set_own_address(&state, &req.actor, &input.email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Search failure records (K16.4) in my scope.
#[utoipa::path(get, path = "/api/v1/failure-records", tag = "failures", params(FailureQuery),
    responses((status = 200, body = Vec<FailureRecord>), (status = 422, body = crate::web::error::Problem)))]
pub async fn failure_records(
    State(state): State<AppState>,
    req: Require<ViewFailureRecords>,
    Query(q): Query<FailureQuery>,
) -> Result<Json<Vec<FailureRecord>>, ApiError> {
    Ok(Json(
        failures::search(&state, &req.actor, &req.scope, &q).await?,
    ))
}

/// Recurrence analysis (K10.4): the same system with the same cause twice
/// or more, counts per system and per month.
#[utoipa::path(get, path = "/api/v1/failure-records/recurrence", tag = "failures", params(FailureQuery),
    responses((status = 200, body = RecurrenceReport)))]
pub async fn recurrence(
    State(state): State<AppState>,
    req: Require<ViewFailureRecords>,
    Query(q): Query<FailureQuery>,
) -> Result<Json<RecurrenceReport>, ApiError> {
    let records = failures::search(&state, &req.actor, &req.scope, &q).await?;
    Ok(Json(failures::analyse(&records)))
}

/// Every registered system with its failure procedures (K26); `flagged`
/// when it needs one and has none.
#[utoipa::path(get, path = "/api/v1/failure-procedures", tag = "failures",
    responses((status = 200, body = Vec<SystemProcedures>)))]
pub async fn procedures(
    State(state): State<AppState>,
    _req: Require<ViewFailureProcedures>,
) -> Result<Json<Vec<SystemProcedures>>, ApiError> {
    Ok(Json(failures::overview(&state).await?))
}

/// Write a new version of a system's failure procedure (K26).
#[utoipa::path(post, path = "/api/v1/failure-procedures", tag = "failures", request_body = ProcedureInput,
    responses((status = 201, body = ProcedureSummary), (status = 422, body = crate::web::error::Problem)))]
pub async fn write_procedure(
    State(state): State<AppState>,
    req: Require<ManageFailureProcedures>,
    ApiJson(input): ApiJson<ProcedureInput>,
) -> Result<(StatusCode, Json<ProcedureSummary>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(failures::write_procedure(&state, &req.actor, &input).await?),
    ))
}

/// Say whether a system's failure greatly affects residents or the ward's
/// work (so it needs a procedure, K26).
#[utoipa::path(put, path = "/api/v1/failure-procedures/critical", tag = "failures", request_body = CriticalInput,
    responses((status = 204), (status = 422, body = crate::web::error::Problem)))]
pub async fn set_critical(
    State(state): State<AppState>,
    req: Require<ManageFailureProcedures>,
    ApiJson(input): ApiJson<CriticalInput>,
) -> Result<StatusCode, ApiError> {
    failures::set_critical(&state, &req.actor, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}
