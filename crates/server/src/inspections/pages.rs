//! Pages of self-inspection: the campaigns and my department's inspections
//! (with the form to order a campaign, for the セキュリティ統括者), a
//! campaign's ward-wide compilation, and a department's inspection with its
//! answer form, evidence uploads, the automatic-check results beside the
//! questions, and the return form. A form that does not go through
//! re-renders with what was typed and a Japanese message.

use super::service::{self, AnswerInput, AnswersInput, CampaignInput};
use super::{InspectionView, ANSWERS, STATUSES};
use crate::app::{AppState, Routes};
use crate::auth::perm::{AnswerInspections, ManageInspections, ViewInspections};
use crate::auth::{Actor, ActorScope, Require};
use crate::incidents::api::path_id;
use crate::incidents::pages::{field, read_multipart_files};
use crate::org::pages::{form_errors, NoticeQuery};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/inspections", list_page)
        .post("/inspections/campaigns", open_submit)
        .get("/inspections/campaigns/{id}", campaign_page)
        .post("/inspections/campaigns/{id}/close", close_submit)
        .get("/inspections/{id}", inspection_page)
        .post("/inspections/{id}", answers_submit)
        .post("/inspections/{id}/return", return_submit)
}

const CAMPAIGN_FIELDS: &[&str] = &[
    "title",
    "fiscal_year",
    "starts_on",
    "due_on",
    "note",
    "org_unit_ids",
];

/// An error a form shows: field errors as they are, a conflict (closed
/// campaign, already submitted) as a message on the form.
fn form_failure(e: AppError) -> Result<(Vec<FieldError>, StatusCode), PageError> {
    match e {
        AppError::Invalid(errors) => Ok((errors, StatusCode::UNPROCESSABLE_ENTITY)),
        AppError::Conflict(code) => Ok((
            vec![FieldError::new("form", code, &[])],
            StatusCode::CONFLICT,
        )),
        e => Err(PageError(e)),
    }
}

fn pairs_get<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

// ---------------------------------------------------------------------------
// The list and the campaign form

async fn list_page(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = n.notice(&[("opened", "inspection.notice_opened")]);
    render_list(&state, &req.actor, &req.scope, notice, None, StatusCode::OK).await
}

async fn render_list(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    notice: Option<&str>,
    failed: Option<(&[(String, String)], Vec<FieldError>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let campaigns = service::campaigns(state).await?;
    let mine = service::list(state, scope, None).await?;
    let may_order = actor.scope(Action::ManageInspections).is_some();
    let departments = if may_order {
        let mut conn = state.db().pool().acquire().await?;
        super::store::departments(&mut conn, &crate::org::pages::today(state))
            .await?
            .into_iter()
            .map(|d| json!({ "id": d.0 .0, "name": d.1, "manager": d.3 }))
            .collect()
    } else {
        vec![]
    };
    let (typed, chosen, errors) = match failed {
        Some((pairs, errors)) => {
            let mut typed = serde_json::Map::new();
            for f in CAMPAIGN_FIELDS {
                typed.insert(f.to_string(), json!(pairs_get(pairs, f)));
            }
            let chosen: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == "org_unit_ids")
                .map(|(_, v)| v.clone())
                .collect();
            (Value::Object(typed), chosen, errors)
        }
        None => (json!({}), vec![], vec![]),
    };
    let html = render(
        "inspections.html",
        &Chrome::for_actor(actor),
        json!({
            "notice": notice,
            "campaigns": campaigns,
            "inspections": mine,
            "ward_wide": *scope == ActorScope::Ward,
            "may_order": may_order,
            "departments": departments,
            "typed": typed,
            "chosen": chosen,
            "errors": form_errors(&errors, CAMPAIGN_FIELDS, "c-"),
            "today": crate::org::pages::today(state),
        }),
    )?;
    Ok((status, html).into_response())
}

/// The campaign form as the service takes it (a malformed year or unit
/// id is an error of that field, not a failed parse of the whole form).
fn campaign_input(pairs: &[(String, String)]) -> (CampaignInput, Vec<FieldError>) {
    let mut errors = Vec::new();
    let fy = pairs_get(pairs, "fiscal_year").trim();
    let fiscal_year = if fy.is_empty() {
        None
    } else {
        match fy.parse::<i64>() {
            Ok(y) => Some(y),
            Err(_) => {
                errors.push(FieldError::new(
                    "fiscal_year",
                    "inspection.bad_fiscal_year",
                    &[],
                ));
                None
            }
        }
    };
    let mut ids = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "org_unit_ids") {
        match crate::org::pages::parse_id(v) {
            Some(id) => ids.push(id),
            None => errors.push(FieldError::new(
                "org_unit_ids",
                "inspection.not_a_department",
                &[("id", v.chars().take(20).collect())],
            )),
        }
    }
    (
        CampaignInput {
            title: pairs_get(pairs, "title").into(),
            fiscal_year,
            starts_on: pairs_get(pairs, "starts_on").into(),
            due_on: pairs_get(pairs, "due_on").into(),
            note: pairs_get(pairs, "note").into(),
            org_unit_ids: ids,
        },
        errors,
    )
}

async fn open_submit(
    State(state): State<AppState>,
    req: Require<ManageInspections>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (input, mut errors) = campaign_input(&pairs);
    // A malformed year or unit id stops the form before anything is opened.
    let outcome = if errors.is_empty() {
        service::open_campaign(&state, &req.actor, &input).await
    } else {
        Err(AppError::Invalid(vec![]))
    };
    match outcome {
        Ok(id) => {
            Ok(Redirect::to(&format!("/inspections/campaigns/{id}?done=opened")).into_response())
        }
        Err(e) => {
            let (more, status) = form_failure(e)?;
            errors.extend(more);
            let view = req
                .actor
                .scope(Action::ViewInspections)
                .unwrap_or(ActorScope::Ward);
            render_list(
                &state,
                &req.actor,
                &view,
                None,
                Some((&pairs, errors)),
                status,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------
// A campaign

async fn campaign_page(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    Path(id): Path<String>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "inspection_campaign")?;
    let notice = n.notice(&[
        ("opened", "inspection.notice_opened"),
        ("closed", "inspection.notice_closed"),
    ]);
    render_campaign(
        &state,
        &req.actor,
        &req.scope,
        id,
        notice,
        vec![],
        StatusCode::OK,
    )
    .await
}

async fn render_campaign(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    notice: Option<&str>,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (campaign, questions) = service::campaign(state, id).await?;
    let compilation = if *scope == ActorScope::Ward {
        let mut conn = state.db().pool().acquire().await?;
        Some(service::compile(&mut conn, id, state.clock().today()).await?)
    } else {
        None
    };
    let mine = service::list(state, scope, Some(id)).await?;
    let html = render(
        "inspection_campaign.html",
        &Chrome::for_actor(actor),
        json!({
            "notice": notice,
            "campaign": campaign,
            "questions": questions,
            "compilation": compilation,
            "inspections": mine,
            "may_manage": actor.scope(Action::ManageInspections).is_some(),
            "errors": form_errors(&errors, &[], "x-"),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn close_submit(
    State(state): State<AppState>,
    req: Require<ManageInspections>,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "inspection_campaign")?;
    match service::close_campaign(&state, &req.actor, id).await {
        Ok(()) => {
            Ok(Redirect::to(&format!("/inspections/campaigns/{id}?done=closed")).into_response())
        }
        Err(e) => {
            let (errors, status) = form_failure(e)?;
            let view = req
                .actor
                .scope(Action::ViewInspections)
                .unwrap_or(ActorScope::Ward);
            render_campaign(&state, &req.actor, &view, id, None, errors, status).await
        }
    }
}

// ---------------------------------------------------------------------------
// A department's inspection

async fn inspection_page(
    State(state): State<AppState>,
    req: Require<ViewInspections>,
    Path(id): Path<String>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "inspection")?;
    let notice = n.notice(&[
        ("saved", "inspection.notice_saved"),
        ("submitted", "inspection.notice_submitted"),
        ("evidence", "inspection.notice_evidence"),
        ("returned", "inspection.notice_returned"),
    ]);
    let view = service::view(&state, &req.scope, id).await?;
    render_inspection(&req.actor, view, notice, None, vec![], StatusCode::OK)
}

/// The inspection page; `typed` are answers typed in a refused form
/// (question id → (answer, comment)).
fn render_inspection(
    actor: &Actor,
    view: InspectionView,
    notice: Option<&str>,
    typed: Option<&AnswersInput>,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<Response, PageError> {
    render_inspection_with(actor, view, notice, typed, "", errors, status)
}

fn render_inspection_with(
    actor: &Actor,
    mut view: InspectionView,
    notice: Option<&str>,
    typed: Option<&AnswersInput>,
    typed_reason: &str,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<Response, PageError> {
    if let Some(t) = typed {
        for q in &mut view.questions {
            if let Some(a) = t.answers.iter().find(|a| a.question_id == q.question.id) {
                q.answer = Some(a.answer.clone()).filter(|s| !s.is_empty());
                q.comment = a.comment.clone();
            }
        }
    }
    let fields: Vec<String> = view
        .questions
        .iter()
        .flat_map(|q| {
            [
                format!("a-{}", q.question.id),
                format!("c-{}", q.question.id),
                format!("e-{}", q.question.id),
            ]
        })
        .chain(["reason".to_string()])
        .collect();
    let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let may_answer = view.editable && actor.scope(Action::AnswerInspections).is_some();
    let may_return = view.summary.status == "submitted"
        && view.summary.campaign_status == "open"
        && actor.scope(Action::ManageInspections).is_some();
    let html = render(
        "inspection.html",
        &Chrome::for_actor(actor),
        json!({
            "notice": notice,
            "i": view,
            "answers": ANSWERS,
            "statuses": STATUSES,
            "may_answer": may_answer,
            "may_return": may_return,
            "typed_reason": typed_reason,
            "errors": form_errors(&errors, &field_refs, "f-"),
            "allowed": crate::incidents::attachments::ALLOWED.iter().map(|a| a.0).collect::<Vec<_>>().join(", "),
        }),
    )?;
    Ok((status, html).into_response())
}

/// The answers of the form: `a-<question id>` and `c-<question id>`; a
/// field naming no question of this campaign is an error of that field.
fn answers_from_form(pairs: &[(String, String)]) -> (AnswersInput, Vec<FieldError>) {
    let mut answers: Vec<AnswerInput> = Vec::new();
    let mut errors = Vec::new();
    for (k, v) in pairs {
        let (kind, id) = match k.split_once('-') {
            Some((kind @ ("a" | "c"), id)) => (kind, id),
            _ => continue,
        };
        let Some(qid) = crate::org::pages::parse_id(id) else {
            errors.push(FieldError::new(
                k.clone(),
                "inspection.unknown_question",
                &[("id", id.chars().take(20).collect())],
            ));
            continue;
        };
        let pos = match answers.iter().position(|a| a.question_id == qid) {
            Some(p) => p,
            None => {
                answers.push(AnswerInput {
                    question_id: qid,
                    ..Default::default()
                });
                answers.len() - 1
            }
        };
        if kind == "a" {
            answers[pos].answer = v.clone();
        } else {
            answers[pos].comment = v.clone();
        }
    }
    (AnswersInput { answers }, errors)
}

/// The inspection form (multipart): answers, comments, and evidence files
/// under `e-<question id>`. The answers are saved first, so a refused file
/// (too large, wrong type) loses nothing typed: the page comes back with
/// the answers saved as a draft and the file's message beside its question.
async fn answers_submit(
    State(state): State<AppState>,
    req: Require<AnswerInspections>,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "inspection")?;
    let (pairs, files, mut errors) =
        read_multipart_files(&req.actor, multipart, "form", |n| n.starts_with("e-")).await?;
    let (input, more) = answers_from_form(&pairs);
    errors.extend(more);
    let submitting = field(&pairs, "action") == "submit";
    let outcome: Result<(), AppError> = async {
        if !errors.is_empty() {
            return Err(AppError::Invalid(std::mem::take(&mut errors)));
        }
        service::save_answers(&state, &req.actor, &req.scope, id, &input).await?;
        let mut file_errors = Vec::new();
        if !files.is_empty() {
            let max = {
                let mut conn = state.db().pool().acquire().await?;
                service::evidence_max_bytes(&mut conn).await?
            };
            for (f, name, bytes) in &files {
                let qid = f[2..].parse::<i64>().unwrap_or(0);
                if let Err(e) = service::check_evidence_target(&state, &req.scope, id, qid).await {
                    match e {
                        AppError::Invalid(_) => file_errors.push(FieldError::new(
                            f.clone(),
                            "inspection.unknown_question",
                            &[("id", f[2..].chars().take(20).collect())],
                        )),
                        e => return Err(e),
                    }
                    continue;
                }
                match crate::incidents::attachments::store_file_within(&state, f, name, bytes, max)
                    .await?
                {
                    Ok(stored) => {
                        service::add_evidence(&state, &req.actor, &req.scope, id, qid, &stored)
                            .await?;
                    }
                    Err(e) => file_errors.push(e),
                }
            }
        }
        if !file_errors.is_empty() {
            file_errors.push(FieldError::new(
                "form",
                "inspection.saved_despite_files",
                &[],
            ));
            return Err(AppError::Invalid(file_errors));
        }
        if submitting {
            service::submit(&state, &req.actor, &req.scope, id).await?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            let done = if submitting { "submitted" } else { "saved" };
            Ok(Redirect::to(&format!("/inspections/{id}?done={done}")).into_response())
        }
        Err(e) => {
            let (errors, status) = form_failure(e)?;
            let view = service::view(&state, &req.scope, id).await?;
            render_inspection(&req.actor, view, None, Some(&input), errors, status)
        }
    }
}

async fn return_submit(
    State(state): State<AppState>,
    req: Require<ManageInspections>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "inspection")?;
    let reason = pairs_get(&pairs, "reason");
    match service::return_for_correction(&state, &req.actor, &req.scope, id, reason).await {
        Ok(()) => Ok(Redirect::to(&format!("/inspections/{id}?done=returned")).into_response()),
        Err(e) => {
            let (errors, status) = form_failure(e)?;
            let view = service::view(&state, &req.scope, id).await?;
            render_inspection_with(&req.actor, view, None, None, reason, errors, status)
        }
    }
}
