//! JSON API of training (K9): sessions, attendance, completion by
//! department, and the K9.2 instructions to 情報化推進リーダー.

use super::service;
use super::{AudienceMember, Instruction, InstructionInput, Session, SessionInput, UnitCompletion};
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    AcknowledgeInstructions, AttendTraining, InstructPromotionLeaders, ManageTraining,
    ViewTrainingRecords,
};
use crate::auth::{Actor, Require};
use crate::web::error::{ApiError, AppError};
use crate::web::json::ApiJson;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mamori_policy::permission::Action;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/training/sessions", list)
        .post("/api/v1/training/sessions", create)
        .get("/api/v1/training/sessions/{id}", get)
        .post("/api/v1/training/sessions/{id}/attendance", attendance)
        .post("/api/v1/training/sessions/{id}/self-report", self_report)
        .get("/api/v1/training/completion", completion)
        .get("/api/v1/training/instructions", instructions)
        .post("/api/v1/training/instructions", instruct)
        .post("/api/v1/training/instructions/{id}/acknowledge", acknowledge)
}

#[derive(OpenApi)]
#[openapi(
    paths(list, create, get, attendance, self_report, completion, instructions, instruct, acknowledge),
    components(schemas(Session, SessionInput, AudienceMember, UnitCompletion, Instruction, InstructionInput,
        SessionList, SessionEntry, SessionDetail, AttendanceInput, Created)),
    tags((name = "training", description = "training sessions, attendance and completion by department (K9.1, K9.3); the security manager's instructions to 情報化推進リーダー (K9.2)"))
)]
pub struct ApiDoc;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEntry {
    #[serde(flatten)]
    pub session: Session,
    /// I am in its audience.
    pub for_me: bool,
    /// I attended (or reported attending).
    pub attended: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionEntry>,
}

/// Sessions with what they mean for me.
pub(crate) async fn entries(state: &AppState, actor: &Actor) -> Result<Vec<SessionEntry>, AppError> {
    let me = actor.person_id.map(|p| p.0);
    let mut out = Vec::new();
    for s in service::sessions(state).await? {
        let all = service::audience(state, s.id, None).await?;
        let mine = all.iter().find(|m| Some(m.person_id) == me);
        out.push(SessionEntry {
            for_me: mine.is_some(),
            attended: mine.is_some_and(|m| m.attended),
            session: s,
        });
    }
    Ok(out)
}

/// Training sessions, newest first, with whether each is for me and
/// whether I attended.
#[utoipa::path(get, path = "/api/v1/training/sessions", tag = "training",
    responses((status = 200, body = SessionList)))]
pub async fn list(
    State(state): State<AppState>,
    req: Require<AttendTraining>,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(SessionList {
        sessions: entries(&state, &req.actor).await?,
    }))
}

/// Hold a session (K9.1). A security manager aims it at units in their
/// scope; the ward-wide organisers at all staff, units or roles.
#[utoipa::path(post, path = "/api/v1/training/sessions", tag = "training", request_body = SessionInput,
    responses((status = 201, body = Created), (status = 422, description = "a field is wrong; `field` names it", body = crate::web::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    req: Require<ManageTraining>,
    ApiJson(input): ApiJson<SessionInput>,
) -> Result<Response, ApiError> {
    let id = service::create_session(&state, &req.actor, &req.scope, &input).await?;
    let url = format!("/api/v1/training/sessions/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id, url }),
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub entry: SessionEntry,
    /// The audience in my `ViewTrainingRecords` or `ManageTraining` scope
    /// (empty without either).
    pub audience: Vec<AudienceMember>,
    pub completion: Vec<UnitCompletion>,
}

pub(crate) async fn detail(state: &AppState, actor: &Actor, id: i64) -> Result<SessionDetail, AppError> {
    let session = service::session(state, id).await?;
    let all = service::audience(state, id, None).await?;
    let me = actor.person_id.map(|p| p.0);
    let mine = all.iter().find(|m| Some(m.person_id) == me);
    let entry = SessionEntry {
        for_me: mine.is_some(),
        attended: mine.is_some_and(|m| m.attended),
        session,
    };
    let scope = actor
        .scope(Action::ViewTrainingRecords)
        .or_else(|| actor.scope(Action::ManageTraining));
    let audience = match &scope {
        Some(s) => service::audience(state, id, Some(s)).await?,
        None => vec![],
    };
    let completion = service::completion(&audience);
    Ok(SessionDetail {
        entry,
        audience,
        completion,
    })
}

/// A session with its audience and completion by department (within my scope).
#[utoipa::path(get, path = "/api/v1/training/sessions/{id}", tag = "training",
    params(("id" = i64, Path)), responses((status = 200, body = SessionDetail), (status = 404, body = crate::web::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    req: Require<AttendTraining>,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let id = path_id(&id, "training_session")?;
    Ok(Json(detail(&state, &req.actor, id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceInput {
    pub person_ids: Vec<i64>,
    /// `true` marks them attended, `false` removes the mark.
    #[serde(default = "yes")]
    pub attended: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    pub changed: usize,
}

/// Mark (or unmark) attendance (K9.3), for people of the audience in my scope,
/// once the session's date has come.
#[utoipa::path(post, path = "/api/v1/training/sessions/{id}/attendance", tag = "training",
    params(("id" = i64, Path)), request_body = AttendanceInput,
    responses((status = 200, description = "how many changed"), (status = 422, body = crate::web::error::Problem)))]
pub async fn attendance(
    State(state): State<AppState>,
    req: Require<ManageTraining>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AttendanceInput>,
) -> Result<Json<Changed>, ApiError> {
    let id = path_id(&id, "training_session")?;
    let changed = service::mark_attendance(
        &state,
        &req.actor,
        &req.scope,
        id,
        &input.person_ids,
        input.attended,
    )
    .await?;
    Ok(Json(Changed { changed }))
}

/// Report my own attendance of a session I am in the audience of (K9.3);
/// it is kept as a self-report.
#[utoipa::path(post, path = "/api/v1/training/sessions/{id}/self-report", tag = "training",
    params(("id" = i64, Path)), responses((status = 204), (status = 422, body = crate::web::error::Problem)))]
pub async fn self_report(
    State(state): State<AppState>,
    req: Require<AttendTraining>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "training_session")?;
    service::self_report(&state, &req.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Completion by department over every required session held so far (my scope).
#[utoipa::path(get, path = "/api/v1/training/completion", tag = "training",
    responses((status = 200, body = [UnitCompletion])))]
pub async fn completion(
    State(state): State<AppState>,
    req: Require<ViewTrainingRecords>,
) -> Result<Json<Vec<UnitCompletion>>, ApiError> {
    Ok(Json(service::overall_completion(&state, Some(&req.scope)).await?))
}

/// K9.2 instructions in my scope, and those I gave or received.
#[utoipa::path(get, path = "/api/v1/training/instructions", tag = "training",
    responses((status = 200, body = [Instruction])))]
pub async fn instructions(
    State(state): State<AppState>,
    req: Require<ViewTrainingRecords>,
) -> Result<Json<Vec<Instruction>>, ApiError> {
    Ok(Json(
        service::instructions(&state, &req.actor, Some(&req.scope)).await?,
    ))
}

/// Instruct a 情報化推進リーダー of one of my units (K9.2).
#[utoipa::path(post, path = "/api/v1/training/instructions", tag = "training", request_body = InstructionInput,
    responses((status = 201, body = Created), (status = 422, body = crate::web::error::Problem)))]
pub async fn instruct(
    State(state): State<AppState>,
    req: Require<InstructPromotionLeaders>,
    ApiJson(input): ApiJson<InstructionInput>,
) -> Result<Response, ApiError> {
    let id = service::instruct(&state, &req.actor, &req.scope, &input).await?;
    let url = "/api/v1/training/instructions".to_string();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id, url }),
    )
        .into_response())
}

/// Acknowledge an instruction addressed to me (K9.2).
#[utoipa::path(post, path = "/api/v1/training/instructions/{id}/acknowledge", tag = "training",
    params(("id" = i64, Path)), responses((status = 204), (status = 404, body = crate::web::error::Problem)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    req: Require<AcknowledgeInstructions>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "instruction")?;
    service::acknowledge(&state, &req.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
