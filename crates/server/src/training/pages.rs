//! Pages of training (K9): the session list with my attendance and the
//! self-report button, the organiser's form, completion by department, the
//! K9.2 instructions; a session's page with its audience and the marking
//! form. Forms that do not go through re-render with what was typed.

use super::api::{detail, entries, path_id};
use super::{service, InstructionInput, SessionInput, AUDIENCES, AUDIENCE_ROLES};
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    AcknowledgeInstructions, AttendTraining, InstructPromotionLeaders, ManageTraining,
};
use crate::auth::{Actor, Require};
use crate::org::pages::{form_errors, NoticeQuery};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/training", list_page)
        .post("/training", create_submit)
        .post("/training/instructions", instruct_submit)
        .post("/training/instructions/{id}/acknowledge", acknowledge_submit)
        .get("/training/{id}", session_page)
        .post("/training/{id}/attendance", attendance_submit)
        .post("/training/{id}/self-report", self_report_submit)
}

const NOTICES: &[(&str, &str)] = &[
    ("created", "training.done.created"),
    ("marked", "training.done.marked"),
    ("reported", "training.done.reported"),
    ("instructed", "training.done.instructed"),
    ("acknowledged", "training.done.acknowledged"),
];

struct Failed {
    form: &'static str,
    typed: Value,
    errors: Vec<FieldError>,
}

fn first(f: &[(String, String)], name: &str) -> String {
    f.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn all(f: &[(String, String)], name: &str) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

async fn list_page(
    State(state): State<AppState>,
    req: Require<AttendTraining>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    render_list(&state, &req.actor, None, n.notice(NOTICES), StatusCode::OK).await
}

async fn render_list(
    state: &AppState,
    actor: &Actor,
    failed: Option<Failed>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let today = crate::clock::date_str(state.clock().today());
    let sessions = entries(state, actor).await?;
    let manage = actor.scope(Action::ManageTraining);
    let records = actor.scope(Action::ViewTrainingRecords);
    let mut conn = state.db().pool().acquire().await.map_err(AppError::from)?;
    let all_units = crate::org::store::list_units(&mut conn).await.map_err(AppError::from)?;
    let manage_units = match &manage {
        Some(s) => service::scope_units(&mut conn, s).await?,
        None => Some(Default::default()),
    };
    let units: Vec<Value> = all_units
        .iter()
        .filter(|u| manage_units.as_ref().is_none_or(|set| set.contains(&u.id.0)))
        .map(|u| json!({ "id": u.id.0, "name": u.name }))
        .collect();
    let names: std::collections::HashMap<i64, String> =
        all_units.iter().map(|u| (u.id.0, u.name.clone())).collect();
    // Leaders the actor may instruct (K9.2).
    let mut leaders = Vec::new();
    if let Some(scope) = actor.scope(Action::InstructPromotionLeaders) {
        let set = service::scope_units(&mut conn, &scope).await?;
        for a in crate::org::store::list_assignments(&mut conn, None, None, Some(&today))
            .await
            .map_err(AppError::from)?
        {
            if a.role == mamori_policy::Role::PromotionLeader.code()
                && a.org_unit_id
                    .is_some_and(|u| set.as_ref().is_none_or(|s| s.contains(&u.0)))
            {
                let unit = a.org_unit_id.and_then(|u| names.get(&u.0).cloned()).unwrap_or_default();
                leaders.push(json!({ "id": a.person_id.0, "name": a.person_name, "unit": unit }));
            }
        }
    }
    drop(conn);
    let completion = match &records {
        Some(s) => service::overall_completion(state, Some(s)).await?,
        None => vec![],
    };
    let instructions = service::instructions(state, actor, records.as_ref()).await?;
    let me = actor.person_id.map(|p| p.0);
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|e| {
            let s = &e.session;
            let audience_units: Vec<String> =
                s.units.iter().filter_map(|u| names.get(u).cloned()).collect();
            json!({
                "id": s.id, "title": s.title, "held_on": s.held_on, "required": s.required,
                "audience": s.audience, "units": audience_units, "roles": s.roles,
                "for_me": e.for_me, "attended": e.attended,
                "may_report": e.for_me && !e.attended && s.held_on <= today && s.cancelled_at.is_none(),
                "organiser": s.organiser_name,
            })
        })
        .collect();
    let instructions: Vec<Value> = instructions
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "unit": i.unit_name, "from": i.from_name, "to": i.to_name, "body": i.body,
                "created_at": i.created_at, "acknowledged_at": i.acknowledged_at,
                "may_ack": Some(i.to_person_id) == me && i.acknowledged_at.is_none()
                    && actor.scope(Action::AcknowledgeInstructions).is_some(),
            })
        })
        .collect();
    let (form, typed, errors) = match failed {
        Some(f) => (f.form, f.typed, f.errors),
        None => ("", json!({}), vec![]),
    };
    let html = render(
        "training.html",
        &Chrome::for_actor(actor),
        json!({
            "notice": notice, "sessions": sessions, "completion": completion,
            "may_manage": manage.is_some(), "ward_organiser": matches!(manage, Some(crate::auth::ActorScope::Ward)),
            "may_view_records": records.is_some(),
            "may_instruct": actor.scope(Action::InstructPromotionLeaders).is_some(),
            "units": units, "leaders": leaders, "instructions": instructions,
            "audiences": AUDIENCES,
            "roles": AUDIENCE_ROLES.iter().map(|r| r.code()).collect::<Vec<_>>(),
            "failed_form": form, "typed": typed,
            "errors": form_errors(&errors, &["title", "held_on", "description", "audience", "units", "roles", "to_person_id", "body"], &format!("{form}-")),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn create_submit(
    State(state): State<AppState>,
    req: Require<ManageTraining>,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut errors = Vec::new();
    let units: Vec<i64> = all(&f, "units")
        .iter()
        .filter_map(|u| match u.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(FieldError::new("units", "training.unknown_unit", &[]));
                None
            }
        })
        .collect();
    let input = SessionInput {
        title: first(&f, "title"),
        held_on: first(&f, "held_on"),
        description: first(&f, "description"),
        audience: first(&f, "audience"),
        units,
        roles: all(&f, "roles"),
        required: matches!(first(&f, "required").as_str(), "1" | "on" | "true"),
    };
    let outcome = if errors.is_empty() {
        service::create_session(&state, &req.actor, &req.scope, &input).await
    } else {
        Err(AppError::Invalid(errors))
    };
    match outcome {
        Ok(id) => Ok(Redirect::to(&format!("/training/{id}?done=created")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_list(
                &state,
                &req.actor,
                Some(Failed {
                    form: "new",
                    typed: json!(input),
                    errors,
                }),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn instruct_submit(
    State(state): State<AppState>,
    req: Require<InstructPromotionLeaders>,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let to = first(&f, "to_person_id");
    let body = first(&f, "body");
    let outcome = match to.trim().parse::<i64>() {
        Ok(to_person_id) => {
            service::instruct(
                &state,
                &req.actor,
                &req.scope,
                &InstructionInput {
                    to_person_id,
                    body: body.clone(),
                },
            )
            .await
        }
        Err(_) => Err(AppError::invalid("to_person_id", "training.not_a_leader", &[])),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/training?done=instructed").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_list(
                &state,
                &req.actor,
                Some(Failed {
                    form: "ins",
                    typed: json!({ "to_person_id": to, "body": body }),
                    errors,
                }),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn acknowledge_submit(
    State(state): State<AppState>,
    req: Require<AcknowledgeInstructions>,
    Path(id): Path<String>,
    CsrfForm(_f): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "instruction")?;
    service::acknowledge(&state, &req.actor, id).await?;
    Ok(Redirect::to("/training?done=acknowledged").into_response())
}

async fn session_page(
    State(state): State<AppState>,
    req: Require<AttendTraining>,
    Path(id): Path<String>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "training_session")?;
    render_session(&state, &req.actor, id, None, n.notice(NOTICES), StatusCode::OK).await
}

async fn render_session(
    state: &AppState,
    actor: &Actor,
    id: i64,
    errors: Option<Vec<FieldError>>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let d = detail(state, actor, id).await?;
    let today = crate::clock::date_str(state.clock().today());
    let s = &d.entry.session;
    let mut conn = state.db().pool().acquire().await.map_err(AppError::from)?;
    let names: std::collections::HashMap<i64, String> = crate::org::store::list_units(&mut conn)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|u| (u.id.0, u.name))
        .collect();
    drop(conn);
    let may_mark = actor.scope(Action::ManageTraining).is_some() && s.held_on <= today;
    let html = render(
        "training_session.html",
        &Chrome::for_actor(actor),
        json!({
            "s": s, "for_me": d.entry.for_me, "attended": d.entry.attended,
            "units": s.units.iter().filter_map(|u| names.get(u).cloned()).collect::<Vec<_>>(),
            "may_report": d.entry.for_me && !d.entry.attended && s.held_on <= today && s.cancelled_at.is_none(),
            "may_mark": may_mark, "not_yet": s.held_on > today,
            "audience": d.audience, "completion": d.completion, "notice": notice,
            "errors": form_errors(errors.as_deref().unwrap_or(&[]), &["person_ids", "session"], "mark-"),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn attendance_submit(
    State(state): State<AppState>,
    req: Require<ManageTraining>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "training_session")?;
    let persons: Vec<i64> = all(&f, "person_ids")
        .iter()
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    let attended = first(&f, "action") != "unmark";
    match service::mark_attendance(&state, &req.actor, &req.scope, id, &persons, attended).await {
        Ok(_) => Ok(Redirect::to(&format!("/training/{id}?done=marked")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_session(
                &state,
                &req.actor,
                id,
                Some(errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn self_report_submit(
    State(state): State<AppState>,
    req: Require<AttendTraining>,
    Path(id): Path<String>,
    CsrfForm(_f): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "training_session")?;
    match service::self_report(&state, &req.actor, id).await {
        Ok(()) => Ok(Redirect::to(&format!("/training/{id}?done=reported")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_session(
                &state,
                &req.actor,
                id,
                Some(errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
