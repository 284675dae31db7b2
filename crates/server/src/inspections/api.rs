//! JSON API for self-inspection (K32.1, K29, K32.3). Every route is in the
//! OpenAPI document.

use super::service::{self, AnswersInput, CampaignInput};
use super::{Campaign, Compilation, InspectionSummary, InspectionView, Question};
use crate::app::{AppState, Routes};
use crate::auth::perm::{AnswerInspections, ManageInspections, ViewInspections};
use crate::auth::{ActorScope, Require};
use crate::incidents::api::{file_download, path_id, Created};
use crate::web::error::{ApiError, AppError};
use crate::web::json::ApiJson;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/inspection-campaigns", list_campaigns)
        .post("/api/v1/inspection-campaigns", open_campaign)
        .get("/api/v1/inspection-campaigns/{id}", get_campaign)
        .post("/api/v1/inspection-campaigns/{id}/close", close_campaign)
        .get("/api/v1/inspection-campaigns/{id}/compilation", compilation)
        .get("/api/v1/inspections", list_inspections)
        .get("/api/v1/inspections/{id}", get_inspection)
        .put("/api/v1/inspections/{id}/answers", save_answers)
        .post("/api/v1/inspections/{id}/submit", submit)
        .post("/api/v1/inspections/{id}/return", return_inspection)
        .post("/api/v1/inspections/{id}/evidence", upload_evidence)
        .get("/api/v1/inspections/{id}/evidence/{aid}", download_evidence)
}

/// Campaigns, newest deadline first.
#[utoipa::path(get, path = "/api/v1/inspection-campaigns", tag = "inspections",
    responses((status = 200, body = Vec<Campaign>), (status = 403, body = crate::web::error::Problem)))]
pub async fn list_campaigns(
    State(state): State<AppState>,
    _req: Require<ViewInspections>,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    Ok(Json(service::campaigns(&state).await?))
}

/// Order a self-inspection campaign (K32.1; the セキュリティ統括者): the
/// questions are snapshotted from the catalog's procedural controls and
/// one inspection goes to each department's セキュリティ管理者.
#[utoipa::path(post, path = "/api/v1/inspection-campaigns", tag = "inspections", request_body = CampaignInput,
    responses((status = 201, body = Created), (status = 422, description = "a field is missing or wrong (e.g. a malformed date); `field` names it", body = crate::web::error::Problem)))]
pub async fn open_campaign(
    State(state): State<AppState>,
    req: Require<ManageInspections>,
    ApiJson(input): ApiJson<CampaignInput>,
) -> Result<Response, ApiError> {
    let id = service::open_campaign(&state, &req.actor, &input).await?;
    let url = format!("/api/v1/inspection-campaigns/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id, url }),
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignDetail {
    #[serde(flatten)]
    pub campaign: Campaign,
    /// The questions as snapshotted when the campaign opened.
    pub questions: Vec<Question>,
}

/// A campaign with its questions.
#[utoipa::path(get, path = "/api/v1/inspection-campaigns/{id}", tag = "inspections", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignDetail), (status = 404, body = crate::web::error::Problem)))]
pub async fn get_campaign(
    State(state): State<AppState>,
    _req: Require<ViewInspections>,
    Path(id): Path<String>,
) -> Result<Json<CampaignDetail>, ApiError> {
    let id = path_id(&id, "inspection_campaign")?;
    let (campaign, questions) = service::campaign(&state, id).await?;
    Ok(Json(CampaignDetail {
        campaign,
        questions,
    }))
}

/// Close a campaign: no more answers or submissions (409 if already closed).
#[utoipa::path(post, path = "/api/v1/inspection-campaigns/{id}/close", tag = "inspections", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::web::error::Problem), (status = 409, body = crate::web::error::Problem)))]
pub async fn close_campaign(
    State(state): State<AppState>,
    req: Require<ManageInspections>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "inspection_campaign")?;
    service::close_campaign(&state, &req.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The campaign compiled ward-wide (K32.3): status per department, the
/// distribution of the submitted answers per question, non-conformities
/// with department and clause. Ward-wide viewers only.
#[utoipa::path(get, path = "/api/v1/inspection-campaigns/{id}/compilation", tag = "inspections", params(("id" = i64, Path)),
    responses((status = 200, body = Compilation), (status = 403, body = crate::web::error::Problem), (status = 404, body = crate::web::error::Problem)))]
pub async fn compilation(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    Path(id): Path<String>,
) -> Result<Json<Compilation>, ApiError> {
    if req.scope != ActorScope::Ward {
        return Err(AppError::Forbidden("view_inspections").into());
    }
    let id = path_id(&id, "inspection_campaign")?;
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        service::compile(&mut conn, id, state.clock().today()).await?,
    ))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct InspectionQuery {
    /// Only this campaign's inspections.
    pub campaign_id: Option<String>,
}

/// Inspections in my scope (my department's, or all for ward-wide viewers).
#[utoipa::path(get, path = "/api/v1/inspections", tag = "inspections", params(InspectionQuery),
    responses((status = 200, body = Vec<InspectionSummary>), (status = 422, body = crate::web::error::Problem)))]
pub async fn list_inspections(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    q: Result<Query<InspectionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<InspectionSummary>>, ApiError> {
    let q = q.map(|q| q.0).unwrap_or_default();
    let campaign = match q.campaign_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| AppError::invalid("campaign_id", "inspection.bad_id", &[]))?,
        ),
    };
    Ok(Json(service::list(&state, &req.scope, campaign).await?))
}

/// A department's inspection: questions, answers, evidence, and the
/// department's automatic-check results (live until submitted, then as
/// they were at submission).
#[utoipa::path(get, path = "/api/v1/inspections/{id}", tag = "inspections", params(("id" = i64, Path)),
    responses((status = 200, body = InspectionView), (status = 404, body = crate::web::error::Problem)))]
pub async fn get_inspection(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    Path(id): Path<String>,
) -> Result<Json<InspectionView>, ApiError> {
    let id = path_id(&id, "inspection")?;
    Ok(Json(service::view(&state, &req.scope, id).await?))
}

/// Save draft answers (the department's セキュリティ管理者). Refused with 409
/// once submitted or when the campaign is closed; an unknown question is a
/// 422 naming `answers[i].question_id`.
#[utoipa::path(put, path = "/api/v1/inspections/{id}/answers", tag = "inspections", params(("id" = i64, Path)),
    request_body = AnswersInput,
    responses((status = 200, body = InspectionView), (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn save_answers(
    State(state): State<AppState>,
    req: Require<AnswerInspections>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AnswersInput>,
) -> Result<Json<InspectionView>, ApiError> {
    let id = path_id(&id, "inspection")?;
    service::save_answers(&state, &req.actor, &req.scope, id, &input).await?;
    Ok(Json(service::view(&state, &req.scope, id).await?))
}

/// Submit to the セキュリティ統括者 (K32.1). Every question must be answered,
/// with a comment for "partly" and "does not conform"; afterwards the
/// inspection is read-only.
#[utoipa::path(post, path = "/api/v1/inspections/{id}/submit", tag = "inspections", params(("id" = i64, Path)),
    responses((status = 200, body = InspectionView), (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    req: Require<AnswerInspections>,
    Path(id): Path<String>,
) -> Result<Json<InspectionView>, ApiError> {
    let id = path_id(&id, "inspection")?;
    service::submit(&state, &req.actor, &req.scope, id).await?;
    Ok(Json(service::view(&state, &req.scope, id).await?))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    /// What to correct.
    #[serde(default)]
    pub reason: String,
}

/// Return a submitted inspection to its department for correction, with a
/// reason (the セキュリティ統括者).
#[utoipa::path(post, path = "/api/v1/inspections/{id}/return", tag = "inspections", params(("id" = i64, Path)),
    request_body = ReturnInput,
    responses((status = 204), (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn return_inspection(
    State(state): State<AppState>,
    req: Require<ManageInspections>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ReturnInput>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "inspection")?;
    service::return_for_correction(&state, &req.actor, &req.scope, id, &input.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// The question the evidence supports.
    pub question_id: String,
    /// The file's name; its extension decides the allowed type.
    pub name: String,
}

/// Attach evidence to an answer: the raw body, `?question_id=&name=`, and
/// the header `X-Mamori-Upload: 1`. Larger than the setting
/// `inspection.evidence_max_kb` → 422 naming `file`; nothing is stored.
#[utoipa::path(post, path = "/api/v1/inspections/{id}/evidence", tag = "inspections",
    params(("id" = i64, Path), EvidenceQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Created), (status = 409, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn upload_evidence(
    State(state): State<AppState>,
    req: Require<AnswerInspections>,
    Path(id): Path<String>,
    q: Result<Query<EvidenceQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "inspection")?;
    if headers.get("x-mamori-upload").and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(AppError::invalid("X-Mamori-Upload", "incident.upload_header", &[]).into());
    }
    let q = q.map(|q| q.0).unwrap_or_default();
    let question = q
        .question_id
        .trim()
        .parse::<i64>()
        .map_err(|_| AppError::invalid("question_id", "inspection.bad_id", &[]))?;
    service::check_evidence_target(&state, &req.scope, id, question).await?;
    let max = {
        let mut conn = state.db().pool().acquire().await?;
        service::evidence_max_bytes(&mut conn).await?
    };
    let stored =
        crate::incidents::attachments::store_file_within(&state, "file", &q.name, &body, max)
            .await?
            .map_err(|e| AppError::Invalid(vec![e]))?;
    let eid = service::add_evidence(&state, &req.actor, &req.scope, id, question, &stored).await?;
    let url = format!("/api/v1/inspections/{id}/evidence/{eid}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id: eid, url }),
    )
        .into_response())
}

/// Download evidence (for those who may see the inspection).
#[utoipa::path(get, path = "/api/v1/inspections/{id}/evidence/{aid}", tag = "inspections",
    params(("id" = i64, Path), ("aid" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = crate::web::error::Problem)))]
pub async fn download_evidence(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    Path((id, eid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "inspection")?;
    let eid = path_id(&eid, "evidence")?;
    let (e, bytes) = service::read_evidence(&state, &req.scope, id, eid).await?;
    Ok(file_download(&e.file_name, bytes))
}
